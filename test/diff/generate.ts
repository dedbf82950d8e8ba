// Seeded generation of random instruction sequences that run to their end without trapping on
// any conforming RV64GC hart (so QEMU user mode and Parley must agree on the final state).
//
// Rules that keep a sequence trap-free and deterministic:
// - x31 holds the middle of the 4 KiB scratch buffer and is never written; every memory access
//   is at x31 + offset (directly, or through a register set up from x31 just before) and stays
//   inside the buffer. AMO/LR/SC addresses are naturally aligned; ordinary ones may not be.
// - Control flow only goes forward, to the start of a later item (or to the end), so every
//   sequence terminates and can be shrunk by deleting items.
// - An item is an atomic unit (one to a few instructions); branch targets are item boundaries,
//   so setup instructions (base registers, LR before SC) always run together with their user.
// - LR/SC only appear as LR; a few ALU ops; SC on the same address and width. Whether an SC
//   succeeds after other memory traffic is implementation-defined; this shape is not.
// - Only fflags/frm/fcsr are touched among CSRs, and frm always holds a valid mode (0..4), so
//   dynamic rounding (rm = 7) never traps.
import * as E from "./encode.ts";
import { BASE_REG, SCRATCH_BASE_REG_VALUE, SCRATCH_HI, SCRATCH_LO, SCRATCH_SIZE, type MachineState } from "./layout.ts";
import { INTERESTING_F32, INTERESTING_F64, INTERESTING_X, boxed, u64 } from "./values.ts";

// ---- PRNG -----------------------------------------------------------------------------------

/** splitmix32 step: a good mixer to turn (seed, group, index) into generator state. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Hashes a list of 32-bit integers into one (order-sensitive). */
export function hashSeed(parts: readonly number[]): number {
  let h = 0x2545f491;
  for (const p of parts) h = splitmix32(h ^ splitmix32(p >>> 0));
  return h;
}

/** xoshiro128**: small, fast, and plenty for test generation. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    this.s0 = splitmix32(seed);
    this.s1 = splitmix32(this.s0 ^ 0x1234567);
    this.s2 = splitmix32(this.s1 ^ 0x89abcdef);
    this.s3 = splitmix32(this.s2 ^ 0x5bd1e995) | 1;
  }

  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }
  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }
  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
  /** Picks a key of `weights` with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const keys = Object.keys(weights) as K[];
    let total = 0;
    for (const k of keys) total += weights[k];
    let r = (this.u32() / 0x1_0000_0000) * total;
    for (const k of keys) {
      r -= weights[k];
      if (r < 0) return k;
    }
    return keys[keys.length - 1];
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// ---- sequences ------------------------------------------------------------------------------

/** Where an instruction ends up, for encoders that depend on it (pc-relative forms). */
export interface PartContext {
  /** Offset of this instruction from the start of the code. */
  pc: number;
  /** Offset of the first instruction of the item. */
  itemPc: number;
  /** Offset of the item's branch target (the end of the code when the target is gone). */
  target: number;
}

export interface Part {
  size: 2 | 4;
  encode: (ctx: PartContext) => number;
}

/** An atomic run of instructions; shrinking deletes whole items. */
export interface Item {
  /** Increasing in sequence order; branch targets refer to ids. */
  id: number;
  kind: string;
  parts: Part[];
  /** Id of the item a branch/jump goes to; ids past the last item mean the end. */
  target?: number;
  /** Registers the item mentions, to print their initial values in a reproducer. */
  xs: number[];
  fs: number[];
  /** Scratch bytes it may access, as [offset from x31, size]. */
  mem: Array<[number, number]>;
}

/** Offsets of every item and the total size, resolving nothing yet. */
function itemOffsets(items: readonly Item[]): { offsets: number[]; end: number } {
  const offsets: number[] = [];
  let pc = 0;
  for (const item of items) {
    offsets.push(pc);
    for (const p of item.parts) pc += p.size;
  }
  return { offsets, end: pc };
}

/** The offset an item's target resolves to: the first remaining item at or after it, else the end. */
function resolveTarget(items: readonly Item[], offsets: readonly number[], end: number, target: number): number {
  for (let i = 0; i < items.length; i++) if (items[i].id >= target) return offsets[i];
  return end;
}

/** Encodes a sequence of items into little-endian code bytes. */
export function assemble(items: readonly Item[]): Uint8Array {
  const { offsets, end } = itemOffsets(items);
  const words: number[] = [];
  items.forEach((item, i) => {
    const target = item.target === undefined ? end : resolveTarget(items, offsets, end, item.target);
    let pc = offsets[i];
    for (const part of item.parts) {
      const w = part.encode({ pc, itemPc: offsets[i], target });
      if (E.insnSize(w) !== part.size) throw new Error(`item ${item.kind}: size mismatch`);
      words.push(w);
      pc += part.size;
    }
  });
  return E.toBytes(words);
}

// ---- groups ---------------------------------------------------------------------------------

export const GROUPS = ["integer", "muldiv", "atomic", "float", "double", "fpedge", "compressed", "mixed"] as const;
export type Group = (typeof GROUPS)[number];

/** Item kinds; each is generated by a method of SequenceBuilder of the same name. */
type Kind =
  | "aluImm"
  | "shiftImm"
  | "aluImmW"
  | "aluReg"
  | "aluRegW"
  | "lui"
  | "auipc"
  | "setConst"
  | "load"
  | "store"
  | "branch"
  | "jal"
  | "jalr"
  | "fence"
  | "hint"
  | "cHint"
  | "mulDiv"
  | "mulDivW"
  | "amo"
  | "lrsc"
  | "loneSc"
  | "fpArith"
  | "fsqrt"
  | "fma"
  | "fsgnj"
  | "fminmax"
  | "fcmp"
  | "fclass"
  | "fcvtToInt"
  | "fcvtFromInt"
  | "fcvtFpFp"
  | "fmvToX"
  | "fmvFromX"
  | "fpLoad"
  | "fpStore"
  | "fcsr"
  | "fpSpecial"
  | "smc"
  | "loop"
  | "cAlu"
  | "cArith"
  | "cLoad"
  | "cStore"
  | "cSpLoad"
  | "cSpStore"
  | "cSp"
  | "cBranch"
  | "cJump";

type Weights = Partial<Record<Kind, number>>;

const INT_BASE: Weights = {
  aluImm: 6,
  shiftImm: 3,
  aluImmW: 3,
  aluReg: 6,
  aluRegW: 3,
  lui: 1,
  auipc: 1,
  setConst: 2,
  load: 4,
  store: 4,
  branch: 3,
  jal: 1,
  jalr: 1,
  fence: 0.3,
  hint: 0.3,
  loop: 1,
};

/** FP item weights, scaled; conversions between formats count more for the double group. */
function fpWeights(fmt: "s" | "d", scale: number): Weights {
  return {
    fpArith: 6 * scale,
    fsqrt: 2 * scale,
    fma: 4 * scale,
    fsgnj: 2 * scale,
    fminmax: 2 * scale,
    fcmp: 2 * scale,
    fclass: 1.5 * scale,
    fcvtToInt: 3 * scale,
    fcvtFromInt: 3 * scale,
    fcvtFpFp: (fmt === "d" ? 2 : 1) * scale,
    fmvToX: 1 * scale,
    fmvFromX: 1.5 * scale,
    fpLoad: 2 * scale,
    fpStore: 2 * scale,
    fcsr: 2 * scale,
    fpSpecial: 1.5 * scale,
  };
}

const C_WEIGHTS: Weights = {
  cAlu: 8,
  cArith: 4,
  cLoad: 3,
  cStore: 3,
  cSpLoad: 2,
  cSpStore: 2,
  cSp: 1.5,
  cBranch: 2,
  cJump: 1.5,
  cHint: 0.5,
};

interface GroupSpec {
  weights: Weights;
  /** Probability that an FP item uses double (else single) precision. */
  doubleShare: number;
}

const GROUP_SPECS: Record<Group, GroupSpec> = {
  integer: { weights: INT_BASE, doubleShare: 0 },
  muldiv: { weights: { ...scaleWeights(INT_BASE, 0.4), setConst: 4, mulDiv: 10, mulDivW: 6 }, doubleShare: 0 },
  atomic: { weights: { ...scaleWeights(INT_BASE, 0.4), amo: 10, lrsc: 4, loneSc: 1 }, doubleShare: 0 },
  float: { weights: { ...scaleWeights(INT_BASE, 0.15), ...fpWeights("s", 1) }, doubleShare: 0.1 },
  double: { weights: { ...scaleWeights(INT_BASE, 0.15), ...fpWeights("d", 1) }, doubleShare: 0.9 },
  // Boundary FP values re-injected before most operations, both formats.
  fpedge: {
    weights: {
      fpSpecial: 12,
      setConst: 2,
      fpArith: 4,
      fma: 4,
      fsqrt: 1.5,
      fminmax: 1.5,
      fcmp: 1.5,
      fclass: 1,
      fsgnj: 1,
      fcvtToInt: 3,
      fcvtFromInt: 2,
      fcvtFpFp: 2.5,
      fmvToX: 0.5,
      fcsr: 2,
    },
    doubleShare: 0.5,
  },
  compressed: { weights: { ...scaleWeights(INT_BASE, 0.3), ...C_WEIGHTS }, doubleShare: 0.5 },
  mixed: {
    weights: {
      ...INT_BASE,
      mulDiv: 3,
      mulDivW: 2,
      amo: 2,
      lrsc: 1,
      loneSc: 0.3,
      ...fpWeights("d", 0.4),
      ...scaleWeights(C_WEIGHTS, 0.5),
      smc: 0.5,
    },
    doubleShare: 0.5,
  },
};

function scaleWeights(w: Weights, k: number): Weights {
  const out: Weights = {};
  for (const key of Object.keys(w) as Kind[]) out[key] = (w[key] ?? 0) * k;
  return out;
}

// ---- operand choice -------------------------------------------------------------------------

const RMS: readonly E.Rm[] = [0, 1, 2, 3, 4, 7];
/** Registers the generated code may write: everything but x0 and the base register. */
const WRITABLE_X = Array.from({ length: 30 }, (_, i) => i + 1);
const C_REGS = [8, 9, 10, 11, 12, 13, 14, 15];

/** Immediates that exercise sign extension and boundaries. */
function imm12(rng: Rng): number {
  if (rng.chance(0.4)) return rng.pick([0, 1, -1, 2, 2047, -2048, 0x7ff, -2047, 0x555, -0x556, 31, 32, 63, 64]);
  if (rng.chance(0.5)) return rng.range(-16, 16);
  return rng.range(-2048, 2047);
}

function shamt(rng: Rng, max: number): number {
  return rng.chance(0.4) ? rng.pick([0, 1, max >> 1, (max >> 1) - 1, max]) : rng.range(0, max);
}

/** Builds the items of one sequence; each kind method fills in the current item. */
class SequenceBuilder {
  readonly items: Item[] = [];
  private current: Item | undefined;
  /** Registers most items use, so that results feed into later instructions. */
  private readonly hotX: number[];
  private readonly hotF: number[];
  /** A 64-byte window of the scratch buffer most accesses hit, so loads see earlier stores. */
  private readonly window: number;
  /** While a loop body is generated: its counter register, which nothing else may write. */
  private loopCounter = -1;

  constructor(
    private readonly rng: Rng,
    private readonly spec: GroupSpec,
    private readonly count: number,
  ) {
    // Half the hot registers are x8..x15 so that compressed forms can use them too.
    const pool = WRITABLE_X.filter((r) => !C_REGS.includes(r));
    this.hotX = [...sample(rng, C_REGS, 3), ...sample(rng, pool, 4)];
    this.hotF = [...sample(rng, C_REGS, 3), ...sample(rng, Array.from({ length: 32 }, (_, i) => i).filter((r) => !C_REGS.includes(r)), 3)];
    // Often straddle x31 itself, which is a page boundary: accesses there cross pages.
    this.window = rng.chance(0.4) ? rng.range(-48, -16) : rng.range(SCRATCH_LO, SCRATCH_HI - 64 - 8);
  }

  build(): Item[] {
    for (let id = 0; id < this.count; id++) {
      const kind = this.rng.weighted(this.spec.weights as Record<Kind, number>);
      this.current = { id, kind, parts: [], xs: [], fs: [], mem: [] };
      this[kind]();
      this.items.push(this.current);
    }
    return this.items;
  }

  // ---- item plumbing ----
  private get item(): Item {
    if (!this.current) throw new Error("no current item");
    return this.current;
  }
  private emit(word: number): void {
    this.item.parts.push({ size: E.insnSize(word), encode: () => word });
  }
  /** An instruction whose encoding depends on its position or the item's target. */
  private emitAt(size: 2 | 4, encode: (ctx: PartContext) => number): void {
    this.item.parts.push({ size, encode });
  }
  /** Picks a forward target 0..maxSkip items past this one (past the end means the end). */
  private chooseTarget(maxSkip: number): void {
    this.item.target = this.item.id + 1 + this.rng.range(0, maxSkip);
  }

  // ---- registers ----
  private useX(r: number): number {
    if (!this.item.xs.includes(r)) this.item.xs.push(r);
    return r;
  }
  private useF(r: number): number {
    if (!this.item.fs.includes(r)) this.item.fs.push(r);
    return r;
  }
  /** A source register: mostly hot ones, sometimes any (x0 and the base register included). */
  private xs(): number {
    const r = this.rng.chance(0.8) ? this.rng.pick(this.hotX) : this.rng.range(0, 31);
    return this.useX(r);
  }
  /** A destination register: never the base register; x0 now and then (result discarded). */
  private xd(): number {
    if (this.rng.chance(0.03)) return 0;
    return this.xdNonZero();
  }
  /** A destination that must not be x0 (compressed forms, address setup); never a loop counter. */
  private xdNonZero(): number {
    for (;;) {
      const r = this.rng.chance(0.85) ? this.rng.pick(this.hotX) : this.rng.pick(WRITABLE_X);
      if (r !== this.loopCounter) return this.useX(r);
    }
  }
  /** x8..x15, as source or destination of compressed forms; never a loop counter. */
  private xc(): number {
    for (;;) {
      const r = this.rng.chance(0.7) ? this.rng.pick(this.hotX.filter((h) => C_REGS.includes(h))) : this.rng.pick(C_REGS);
      if (r !== this.loopCounter) return this.useX(r);
    }
  }
  private f(): number {
    return this.useF(this.rng.chance(0.8) ? this.rng.pick(this.hotF) : this.rng.range(0, 31));
  }
  private fc(): number {
    return this.useF(this.rng.chance(0.7) ? this.rng.pick(this.hotF.filter((r) => C_REGS.includes(r))) : this.rng.pick(C_REGS));
  }
  private fmt(): E.Fmt {
    return this.rng.chance(this.spec.doubleShare) ? 1 : 0;
  }
  private rm(): E.Rm {
    return this.rng.pick(RMS);
  }

  // ---- memory ----
  /** An offset from x31 for a `size`-byte access inside the buffer, aligned when required. */
  private memOffset(size: number, mustAlign: boolean): number {
    const rng = this.rng;
    if (!mustAlign && size > 1 && rng.chance(0.1)) {
      // Straddle x31, a page boundary: the access is split across two pages.
      const off = rng.range(1 - size, -1);
      this.item.mem.push([off, size]);
      return off;
    }
    let off = rng.chance(0.75) ? this.window + rng.range(0, 63) : rng.range(SCRATCH_LO, SCRATCH_HI - size);
    if (mustAlign || rng.chance(0.5)) off -= ((off % size) + size) % size;
    off = Math.max(SCRATCH_LO, Math.min(off, SCRATCH_HI - size));
    this.item.mem.push([off, size]);
    return off;
  }
  /**
   * Makes `base + imm` address scratch offset `off`: either x31 itself, or a register set from
   * x31 by an addi emitted now (with imm = 0 when `zeroImm`, as AMOs have no offset).
   */
  private address(off: number, zeroImm = false): [number, number] {
    if (!zeroImm && this.rng.chance(0.5)) return [this.useX(BASE_REG), off];
    const base = this.xdNonZero();
    this.useX(BASE_REG);
    // Split off = k + imm with both halves in the signed 12-bit range.
    const k = zeroImm ? off : this.rng.range(Math.max(-2048, off - 2047), Math.min(2047, off + 2048));
    this.emit(E.aluImm("addi", base, BASE_REG, k));
    return [base, off - k];
  }
  /**
   * Sets r (x8..x15 or sp) to x31 + k so that a compressed access at r + [0, span) stays
   * inside the buffer; returns k.
   */
  private compressedBase(r: number, span: number): number {
    const k = Math.max(SCRATCH_LO, Math.min(this.window + this.rng.range(-span, 63), SCRATCH_HI - span));
    this.emit(E.aluImm("addi", this.useX(r), BASE_REG, k));
    this.useX(BASE_REG);
    return k;
  }
  /** Records a compressed access at base offset k + off. */
  private touch(off: number, size: number): number {
    this.item.mem.push([off, size]);
    return off;
  }

  // ---- RV64I ----
  aluImm(): void {
    const op = this.rng.pick(["addi", "slti", "sltiu", "xori", "ori", "andi"] as const);
    this.emit(E.aluImm(op, this.xd(), this.xs(), imm12(this.rng)));
  }
  shiftImm(): void {
    const op = this.rng.pick(["slli", "srli", "srai"] as const);
    this.emit(E.shiftImm(op, this.xd(), this.xs(), shamt(this.rng, 63)));
  }
  aluImmW(): void {
    if (this.rng.chance(0.4)) {
      this.emit(E.addiw(this.xd(), this.xs(), imm12(this.rng)));
    } else {
      const op = this.rng.pick(["slli", "srli", "srai"] as const);
      this.emit(E.shiftImmW(op, this.xd(), this.xs(), shamt(this.rng, 31)));
    }
  }
  aluReg(): void {
    const op = this.rng.pick(["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and"] as const);
    this.emit(E.aluReg(op, this.xd(), this.xs(), this.xs()));
  }
  aluRegW(): void {
    const op = this.rng.pick(["addw", "subw", "sllw", "srlw", "sraw"] as const);
    this.emit(E.aluRegW(op, this.xd(), this.xs(), this.xs()));
  }
  lui(): void {
    const imm = this.rng.chance(0.4) ? this.rng.pick([0, 1, 0x7ffff, 0x80000, 0xfffff]) : this.rng.below(0x100000);
    this.emit(E.lui(this.xd(), imm));
  }
  auipc(): void {
    const imm = this.rng.chance(0.4) ? this.rng.pick([0, 1, 0x7ffff, 0x80000, 0xfffff]) : this.rng.below(0x100000);
    this.emit(E.auipc(this.xd(), imm));
  }
  /** Loads a boundary value with the sequence a compiler's `li` would use. */
  setConst(): void {
    const rd = this.xdNonZero();
    for (const w of liSequence(rd, BigInt.asIntN(64, this.rng.pick(INTERESTING_X)))) this.emit(w);
  }
  load(): void {
    const op = this.rng.pick(["lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"] as const);
    const size = { lb: 1, lbu: 1, lh: 2, lhu: 2, lw: 4, lwu: 4, ld: 8 }[op];
    const [base, imm] = this.address(this.memOffset(size, false));
    this.emit(E.load(op, this.xd(), base, imm));
  }
  store(): void {
    const op = this.rng.pick(["sb", "sh", "sw", "sd"] as const);
    const size = { sb: 1, sh: 2, sw: 4, sd: 8 }[op];
    const [base, imm] = this.address(this.memOffset(size, false));
    this.emit(E.store(op, base, this.xs(), imm));
  }
  branch(): void {
    const op = this.rng.pick(["beq", "bne", "blt", "bge", "bltu", "bgeu"] as const);
    const rs1 = this.xs();
    const rs2 = this.rng.chance(0.1) ? rs1 : this.xs();
    this.chooseTarget(6);
    this.emitAt(4, (c) => E.branch(op, rs1, rs2, c.target - c.pc));
  }
  jal(): void {
    const rd = this.rng.chance(0.3) ? 0 : this.rng.chance(0.4) ? this.useX(1) : this.xd();
    this.chooseTarget(6);
    this.emitAt(4, (c) => E.jal(rd, c.target - c.pc));
  }
  /** auipc t, 0; jalr rd, off(t): an indirect forward jump, sometimes with the ignored low bit set. */
  jalr(): void {
    const t = this.xdNonZero();
    const rd = this.rng.chance(0.3) ? t : this.xd();
    const lowBit = this.rng.chance(0.3) ? 1 : 0;
    this.chooseTarget(6);
    this.emit(E.auipc(t, 0));
    this.emitAt(4, (c) => E.jalr(rd, t, c.target - c.itemPc + lowBit));
  }
  fence(): void {
    this.emit(this.rng.chance(0.5) ? E.fence() : E.fenceI());
  }

  /** Base-ISA HINTs and fence forms with reserved fields: no architectural effect. */
  hint(): void {
    const rng = this.rng;
    switch (rng.below(6)) {
      case 0:
        this.emit(E.aluImm(rng.pick(["addi", "slti", "xori", "andi"] as const), 0, this.xs(), imm12(rng)));
        break;
      case 1:
        this.emit(E.aluReg(rng.pick(["add", "sub", "sll", "sra", "or"] as const), 0, this.xs(), this.xs()));
        break;
      case 2:
        this.emit(rng.chance(0.5) ? E.lui(0, rng.below(0x100000)) : E.shiftImm("slli", 0, this.xs(), shamt(rng, 63)));
        break;
      case 3: // fence.tso, pause, fence with no sets, reserved fm values
        this.emit(E.fenceRaw(rng.pick([0, 8, rng.below(16)]), rng.below(16), rng.below(16)));
        break;
      case 4: // fence with the reserved rs1/rd fields set
        this.emit(E.fenceRaw(0, rng.below(16), rng.below(16), rng.range(0, 31), rng.range(0, 31)));
        break;
      default: // fence.i with the reserved imm/rs1/rd fields set
        this.emit(E.fenceIRaw(rng.below(4096), rng.range(0, 31), rng.range(0, 31)));
        break;
    }
  }

  /**
   * A counted loop: li c, n; body; addi c, c, -1; bnez c, body. Re-executing the same decoded
   * instructions with new register values is where cached-decode bugs show. The body comes from
   * the group's own kinds, minus control flow (whose targets are item boundaries) and loops.
   */
  loop(): void {
    const rng = this.rng;
    // Fixed registers some kinds write (ra, sp, gp, t0/t1 in smc) cannot count.
    const candidates = this.hotX.filter((r) => ![1, 2, 3, 5, 6].includes(r));
    const c = this.useX(candidates.length ? rng.pick(candidates) : 20);
    this.emit(E.aluImm("addi", c, 0, rng.range(1, 4)));
    const bodyStart = this.item.parts.length;
    this.loopCounter = c;
    const weights = { ...(this.spec.weights as Record<Kind, number>) };
    for (const k of ["branch", "jal", "jalr", "cBranch", "cJump", "loop"] as const) delete weights[k];
    for (let n = rng.range(1, 5); n > 0; n--) this[rng.weighted(weights)]();
    this.loopCounter = -1;
    const bodyBytes = () => this.item.parts.slice(bodyStart).reduce((sum, p) => sum + p.size, 0);
    const compressed = (this.spec.weights.cAlu ?? 0) > 0 && rng.chance(0.5);
    this.emit(compressed ? E.cAddi(c, -1) : rng.chance(0.5) ? E.addiw(c, c, -1) : E.aluImm("addi", c, c, -1));
    const back = -bodyBytes();
    this.emit(compressed && C_REGS.includes(c) && back >= -256 ? E.cBranch(true, c, back) : E.branch("bne", c, 0, back));
  }

  // ---- M ----
  mulDiv(): void {
    const op = this.rng.pick(["mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"] as const);
    this.emit(E.aluReg(op, this.xd(), this.xs(), this.xs()));
  }
  mulDivW(): void {
    const op = this.rng.pick(["mulw", "divw", "divuw", "remw", "remuw"] as const);
    this.emit(E.aluRegW(op, this.xd(), this.xs(), this.xs()));
  }

  // ---- A ----
  private amoWidth(): 4 | 8 {
    return this.rng.chance(0.5) ? 4 : 8;
  }
  amo(): void {
    const op = this.rng.pick(["amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin", "amomax", "amominu", "amomaxu"] as const);
    const width = this.amoWidth();
    const [base] = this.address(this.memOffset(width, true), true);
    this.emit(E.amo(op, width, this.xd(), base, this.xs(), this.rng.chance(0.5), this.rng.chance(0.5)));
  }
  /** LR; up to three register-only ops that leave the address alone; SC to the same place. */
  lrsc(): void {
    const width = this.amoWidth();
    const [base] = this.address(this.memOffset(width, true), true);
    let rd = this.xd();
    if (rd === base) rd = 0;
    this.emit(E.amo("lr", width, rd, base, 0, this.rng.chance(0.5), this.rng.chance(0.5)));
    for (let n = this.rng.range(0, 3); n > 0; n--) {
      let d = this.xd();
      if (d === base) d = 0;
      this.emit(E.aluReg(this.rng.pick(["add", "sub", "xor", "or", "and"] as const), d, this.xs(), this.xs()));
    }
    this.emit(E.amo("sc", width, this.xd(), base, this.xs(), this.rng.chance(0.5), this.rng.chance(0.5)));
  }
  /** SC without a reservation (every earlier LR was consumed by its SC): must fail, store nothing. */
  loneSc(): void {
    const width = this.amoWidth();
    const [base] = this.address(this.memOffset(width, true), true);
    this.emit(E.amo("sc", width, this.xd(), base, this.xs(), false, false));
  }

  // ---- F / D ----
  fpArith(): void {
    const op = this.rng.pick(["fadd", "fsub", "fmul", "fdiv"] as const);
    this.emit(E.fpArith(op, this.fmt(), this.rm(), this.f(), this.f(), this.f()));
  }
  fsqrt(): void {
    this.emit(E.fsqrt(this.fmt(), this.rm(), this.f(), this.f()));
  }
  fma(): void {
    const op = this.rng.pick(["fmadd", "fmsub", "fnmsub", "fnmadd"] as const);
    this.emit(E.fma(op, this.fmt(), this.rm(), this.f(), this.f(), this.f(), this.f()));
  }
  fsgnj(): void {
    const op = this.rng.pick(["fsgnj", "fsgnjn", "fsgnjx"] as const);
    const fs1 = this.f();
    this.emit(E.fsgnj(op, this.fmt(), this.f(), fs1, this.rng.chance(0.2) ? fs1 : this.f()));
  }
  fminmax(): void {
    this.emit(E.fminmax(this.rng.chance(0.5), this.fmt(), this.f(), this.f(), this.f()));
  }
  fcmp(): void {
    const op = this.rng.pick(["feq", "flt", "fle"] as const);
    this.emit(E.fcmp(op, this.fmt(), this.xd(), this.f(), this.f()));
  }
  fclass(): void {
    this.emit(E.fclass(this.fmt(), this.xd(), this.f()));
  }
  fcvtToInt(): void {
    this.emit(E.fcvtIntFromFp(this.rng.below(4) as E.IntKind, this.fmt(), this.rm(), this.xd(), this.f()));
  }
  fcvtFromInt(): void {
    this.emit(E.fcvtFpFromInt(this.rng.below(4) as E.IntKind, this.fmt(), this.rm(), this.f(), this.xs()));
  }
  fcvtFpFp(): void {
    this.emit(E.fcvtFpFp(this.rng.chance(0.5) ? 0 : 1, this.rm(), this.f(), this.f()));
  }
  fmvToX(): void {
    this.emit(E.fmvXF(this.fmt(), this.xd(), this.f()));
  }
  fmvFromX(): void {
    this.emit(E.fmvFX(this.fmt(), this.f(), this.xs()));
  }
  fpLoad(): void {
    const fmt = this.fmt();
    const [base, imm] = this.address(this.memOffset(fmt ? 8 : 4, false));
    this.emit(fmt ? E.fld(this.f(), base, imm) : E.flw(this.f(), base, imm));
  }
  fpStore(): void {
    const fmt = this.fmt();
    const [base, imm] = this.address(this.memOffset(fmt ? 8 : 4, false));
    this.emit(fmt ? E.fsd(base, this.f(), imm) : E.fsw(base, this.f(), imm));
  }
  /** Reads and writes of fflags/frm/fcsr; every write leaves frm in 0..4. */
  fcsr(): void {
    const rng = this.rng;
    const rd = this.xd();
    switch (rng.below(9)) {
      case 0: // frcsr / frrm / frflags
        this.emit(E.csr("csrrs", rd, rng.pick([E.CSR_FCSR, E.CSR_FRM, E.CSR_FFLAGS]), 0));
        break;
      case 1: // fsrmi
        this.emit(E.csr("csrrwi", rd, E.CSR_FRM, rng.range(0, 4)));
        break;
      case 2: // fsflagsi, csrrsi/csrrci fflags
        this.emit(E.csr(rng.pick(["csrrwi", "csrrsi", "csrrci"] as const), rd, E.CSR_FFLAGS, rng.range(0, 31)));
        break;
      case 3: // clearing frm bits keeps it <= its old value, hence valid
        this.emit(E.csr("csrrci", rd, E.CSR_FRM, rng.range(0, 31)));
        break;
      case 4: // fsflags/csrrs/csrrc fflags from any register: only the low 5 bits count
        this.emit(E.csr(rng.pick(["csrrw", "csrrs", "csrrc"] as const), rd, E.CSR_FFLAGS, this.xs()));
        break;
      case 5: // csrrc on frm or fcsr from any register
        this.emit(E.csr("csrrc", rd, rng.pick([E.CSR_FRM, E.CSR_FCSR]), this.xs()));
        break;
      case 6: {
        // fscsr from a register with a valid frm field and random reserved bits above bit 7
        const t = this.xdNonZero();
        const v = (rng.range(-8, 7) << 8) | (rng.range(0, 4) << 5) | rng.range(0, 31);
        this.emit(E.aluImm("addi", t, 0, v));
        this.emit(E.csr("csrrw", rd, E.CSR_FCSR, t));
        break;
      }
      case 7: {
        // fsrm from a register: bits above the 3-bit field are ignored
        const t = this.xdNonZero();
        this.emit(E.aluImm("addi", t, 0, (rng.range(-256, 255) << 3) | rng.range(0, 4)));
        this.emit(E.csr("csrrw", rd, E.CSR_FRM, t));
        break;
      }
      default: // csrrwi fcsr: frm becomes 0, fflags the immediate
        this.emit(E.csr("csrrwi", rd, E.CSR_FCSR, rng.range(0, 31)));
        break;
    }
  }

  /** Re-injects a boundary FP value mid-sequence: li t, bits; fmv.d.x f, t. */
  fpSpecial(): void {
    const rng = this.rng;
    const bits = rng.chance(0.5) ? rng.pick(INTERESTING_F64) : rng.chance(0.8) ? boxed(rng.pick(INTERESTING_F32)) : BigInt(rng.pick(INTERESTING_F32));
    const t = this.xdNonZero();
    for (const w of liSequence(t, bits)) this.emit(w);
    this.emit(E.fmvFX(1, this.f(), t));
  }

  /**
   * Self-modifying code: stores a new instruction over a nop later in this item, then fence.i,
   * after which the new instruction must execute (auipc t, 0; li v, insn; sw v, off(t); fence.i; nop).
   */
  smc(): void {
    const t = this.xdNonZero();
    let v = this.xdNonZero();
    if (v === t) v = t === 5 ? 6 : 5;
    this.useX(v);
    const rng = this.rng;
    const insn = rng.pick([
      () => E.aluImm(rng.pick(["addi", "xori", "sltiu"] as const), this.xd(), this.xs(), imm12(rng)),
      () => E.aluReg(rng.pick(["add", "sub", "sra", "mul", "divu"] as const), this.xd(), this.xs(), this.xs()),
      () => E.fpArith(rng.pick(["fadd", "fmul"] as const), this.fmt(), this.rm(), this.f(), this.f(), this.f()),
    ])();
    const li = liSequence(v, BigInt.asIntN(32, BigInt(insn)));
    const slotOffset = 4 * (1 + li.length + 2);
    this.emit(E.auipc(t, 0));
    for (const w of li) this.emit(w);
    this.emit(E.store("sw", t, v, slotOffset));
    this.emit(E.fenceI());
    this.emit(E.aluImm("addi", 0, 0, 0));
  }

  // ---- C ----
  /** Register-immediate compressed forms. */
  cAlu(): void {
    const rng = this.rng;
    const nz = (lo: number, hi: number) => {
      const v = rng.range(lo, hi - 1);
      return v >= 0 ? v + 1 : v;
    };
    switch (rng.below(9)) {
      case 0:
        this.emit(E.cAddi(this.xdNonZero(), nz(-32, 31)));
        break;
      case 1:
        this.emit(E.cAddiw(this.xdNonZero(), rng.range(-32, 31)));
        break;
      case 2:
        this.emit(E.cLi(this.xdNonZero(), rng.range(-32, 31)));
        break;
      case 3: {
        let rd = this.xdNonZero();
        if (rd === 2) rd = this.useX(3);
        this.emit(E.cLui(rd, nz(-32, 31)));
        break;
      }
      case 4:
        this.emit(E.cSrli(this.xc(), rng.range(1, 63)));
        break;
      case 5:
        this.emit(E.cSrai(this.xc(), rng.range(1, 63)));
        break;
      case 6:
        this.emit(E.cAndi(this.xc(), rng.range(-32, 31)));
        break;
      case 7:
        this.emit(E.cSlli(this.xdNonZero(), rng.range(1, 63)));
        break;
      default:
        this.emit(E.cNop());
        break;
    }
  }
  /** Register-register compressed forms. */
  cArith(): void {
    switch (this.rng.below(3)) {
      case 0: {
        const op = this.rng.pick(["c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw"] as const);
        this.emit(E.cArith(op, this.xc(), this.xc()));
        break;
      }
      case 1:
        this.emit(E.cMv(this.xdNonZero(), this.nonZeroSrc()));
        break;
      default:
        this.emit(E.cAdd(this.xdNonZero(), this.nonZeroSrc()));
        break;
    }
  }
  private nonZeroSrc(): number {
    const r = this.xs();
    return r === 0 ? this.useX(BASE_REG) : r;
  }
  /** c.lw / c.ld / c.fld through a base in x8..x15 set up from x31. */
  cLoad(): void {
    const kind = this.rng.below(3);
    const base = this.xc();
    if (kind === 0) {
      const k = this.compressedBase(base, 128);
      const off = this.rng.range(0, 31) * 4;
      this.touch(k + off, 4);
      this.emit(E.cLw(this.xc(), base, off));
    } else {
      const k = this.compressedBase(base, 256);
      const off = this.rng.range(0, 31) * 8;
      this.touch(k + off, 8);
      this.emit(kind === 1 ? E.cLd(this.xc(), base, off) : E.cFld(this.fc(), base, off));
    }
  }
  cStore(): void {
    const kind = this.rng.below(3);
    const base = this.xc();
    if (kind === 0) {
      const k = this.compressedBase(base, 128);
      const off = this.rng.range(0, 31) * 4;
      this.touch(k + off, 4);
      this.emit(E.cSw(base, this.xc(), off));
    } else {
      const k = this.compressedBase(base, 256);
      const off = this.rng.range(0, 31) * 8;
      this.touch(k + off, 8);
      this.emit(kind === 1 ? E.cSd(base, this.xc(), off) : E.cFsd(base, this.fc(), off));
    }
  }
  /** c.lwsp / c.ldsp / c.fldsp with sp pointed into the buffer. */
  cSpLoad(): void {
    const kind = this.rng.below(3);
    const word = kind === 0 ? 4 : 8;
    const k = this.compressedBase(2, 64 * word);
    const off = this.rng.range(0, 63) * word;
    this.touch(k + off, word);
    if (kind === 0) this.emit(E.cLwsp(this.xdNonZero(), off));
    else this.emit(kind === 1 ? E.cLdsp(this.xdNonZero(), off) : E.cFldsp(this.f(), off));
  }
  cSpStore(): void {
    const kind = this.rng.below(3);
    const word = kind === 0 ? 4 : 8;
    const k = this.compressedBase(2, 64 * word);
    const off = this.rng.range(0, 63) * word;
    this.touch(k + off, word);
    if (kind === 0) this.emit(E.cSwsp(this.xs(), off));
    else this.emit(kind === 1 ? E.cSdsp(this.xs(), off) : E.cFsdsp(this.f(), off));
  }
  /** Stack-pointer arithmetic: c.addi4spn and c.addi16sp (no memory access). */
  cSp(): void {
    this.useX(2);
    if (this.rng.chance(0.5)) {
      this.emit(E.cAddi4spn(this.xc(), this.rng.range(1, 255) * 4));
    } else {
      const v = this.rng.range(-32, 30);
      this.emit(E.cAddi16sp((v >= 0 ? v + 1 : v) * 16));
    }
  }
  /** Compressed HINTs (rd = x0, zero immediates or shift amounts): they change nothing. */
  cHint(): void {
    const rng = this.rng;
    const nz = rng.chance(0.5) ? rng.range(1, 31) : rng.range(-32, -1);
    switch (rng.below(8)) {
      case 0:
        this.emit(E.cCiRaw(0, 0, nz, 0b01)); // c.addi x0, nzimm
        break;
      case 1:
        this.emit(E.cCiRaw(0, this.xdNonZero(), 0, 0b01)); // c.addi rd, 0
        break;
      case 2:
        this.emit(E.cCiRaw(2, 0, rng.range(-32, 31), 0b01)); // c.li x0, imm
        break;
      case 3:
        this.emit(E.cCiRaw(3, 0, nz, 0b01)); // c.lui x0, nzimm
        break;
      case 4:
        this.emit(E.cCiRaw(0, rng.chance(0.5) ? 0 : this.xdNonZero(), rng.chance(0.5) ? 0 : rng.range(1, 63), 0b10)); // c.slli x0 / c.slli64
        break;
      case 5:
        this.emit(E.cShiftZero(rng.chance(0.5), this.xc())); // c.srli64 / c.srai64
        break;
      default:
        this.emit(E.cMvAddToZero(rng.chance(0.5), this.nonZeroSrc())); // c.mv / c.add x0, rs2
        break;
    }
  }
  cBranch(): void {
    const rs1 = this.xc();
    const bnez = this.rng.chance(0.5);
    this.chooseTarget(6);
    this.emitAt(2, (c) => E.cBranch(bnez, rs1, c.target - c.pc));
  }
  /** c.j, or auipc + addi + c.jr/c.jalr (c.jalr links x1). */
  cJump(): void {
    this.chooseTarget(6);
    if (this.rng.chance(0.4)) {
      this.emitAt(2, (c) => E.cJ(c.target - c.pc));
      return;
    }
    const t = this.xdNonZero();
    const link = this.rng.chance(0.5);
    if (link) this.useX(1);
    this.emit(E.auipc(t, 0));
    this.emitAt(4, (c) => E.aluImm("addi", t, t, c.target - c.itemPc));
    this.emit(link ? E.cJalr(t) : E.cJr(t));
  }
}

/** Sign-extends the low 12 bits. */
function sext12(v: bigint): bigint {
  return BigInt.asIntN(12, v);
}

/** The instruction words of the usual `li rd, v` expansion (lui/addiw, then slli/addi steps). */
export function liSequence(rd: number, v: bigint): number[] {
  v = BigInt.asIntN(64, v);
  if (v >= -(1n << 31n) && v < 1n << 31n) {
    const lo = sext12(v);
    const hi = Number(BigInt.asUintN(20, (v - lo) >> 12n));
    if (hi === 0) return [E.aluImm("addi", rd, 0, Number(lo))];
    return lo === 0n ? [E.lui(rd, hi)] : [E.lui(rd, hi), E.addiw(rd, rd, Number(lo))];
  }
  const lo = sext12(v);
  let rest = (v - lo) >> 12n;
  let shift = 12;
  while ((rest & 1n) === 0n) {
    rest >>= 1n;
    shift++;
  }
  const out = [...liSequence(rd, rest), E.shiftImm("slli", rd, rd, shift)];
  if (lo !== 0n) out.push(E.aluImm("addi", rd, rd, Number(lo)));
  return out;
}

function sample<T>(rng: Rng, items: readonly T[], n: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < n && pool.length) out.push(pool.splice(rng.below(pool.length), 1)[0]);
  return out;
}

// ---- initial state --------------------------------------------------------------------------

function initialX(rng: Rng): bigint {
  switch (rng.below(5)) {
    case 0:
    case 1:
      return rng.pick(INTERESTING_X);
    case 2:
      return u64(BigInt(rng.range(-64, 64)));
    case 3:
      return u64(BigInt.asIntN(32, rng.u64()));
    default:
      return rng.u64();
  }
}

/** Random double with a moderate exponent, so arithmetic stays mostly in range. */
function moderateDouble(rng: Rng): bigint {
  const exp = BigInt(1023 + rng.range(-40, 40));
  return (BigInt(rng.below(2)) << 63n) | (exp << 52n) | (rng.u64() & ((1n << 52n) - 1n));
}

function moderateSingle(rng: Rng): number {
  const exp = 127 + rng.range(-20, 20);
  return ((rng.below(2) << 31) | (exp << 23) | (rng.u32() & 0x7fffff)) >>> 0;
}

function initialF(rng: Rng): bigint {
  switch (rng.below(10)) {
    case 0:
    case 1:
    case 2:
      return rng.pick(INTERESTING_F64);
    case 3:
    case 4:
      return boxed(rng.pick(INTERESTING_F32));
    case 5: {
      // An improperly boxed single: single-precision reads must see the canonical NaN.
      const upper = rng.pick([0n, 0xffff_fffen, 0x7fff_ffffn, BigInt(rng.u32())]);
      return (upper << 32n) | BigInt(rng.chance(0.5) ? rng.pick(INTERESTING_F32) : moderateSingle(rng));
    }
    case 6:
      return moderateDouble(rng);
    case 7:
      return boxed(moderateSingle(rng));
    default:
      return rng.u64();
  }
}

function initialMemory(rng: Rng): Uint8Array {
  const mem = new Uint8Array(SCRATCH_SIZE);
  for (let i = 0; i < SCRATCH_SIZE; i += 4) {
    const w = rng.u32();
    mem[i] = w & 0xff;
    mem[i + 1] = (w >>> 8) & 0xff;
    mem[i + 2] = (w >>> 16) & 0xff;
    mem[i + 3] = w >>> 24;
  }
  // Sprinkle boundary values (integer and FP) at aligned slots.
  const dv = new DataView(mem.buffer);
  for (let n = 0; n < 128; n++) {
    const slot = rng.below(SCRATCH_SIZE / 8) * 8;
    const kind = rng.below(3);
    if (kind === 0) dv.setBigUint64(slot, rng.pick(INTERESTING_X), true);
    else if (kind === 1) dv.setBigUint64(slot, rng.pick(INTERESTING_F64), true);
    else dv.setUint32(slot + rng.below(2) * 4, rng.pick(INTERESTING_F32), true);
  }
  return mem;
}

export function initialState(rng: Rng): MachineState {
  const x = [0n];
  for (let i = 1; i < 31; i++) x.push(initialX(rng));
  x.push(BigInt(SCRATCH_BASE_REG_VALUE));
  const f: bigint[] = [];
  for (let i = 0; i < 32; i++) f.push(initialF(rng));
  const fcsr = (rng.range(0, 4) << 5) | (rng.chance(0.5) ? 0 : rng.range(0, 31));
  return { x, f, fcsr, mem: initialMemory(rng) };
}

// ---- cases ----------------------------------------------------------------------------------

export interface TestCase {
  seed: number;
  group: Group;
  index: number;
  init: MachineState;
  items: Item[];
}

/** Sequence length in items (about 1.3 instructions each). */
const MIN_ITEMS = 15;
const MAX_ITEMS = 45;

/** The case `index` of `group` for `seed`: the same arguments always give the same case. */
export function generateCase(seed: number, group: Group, index: number): TestCase {
  const rng = new Rng(hashSeed([seed, GROUPS.indexOf(group), index]));
  const init = initialState(rng);
  const items = new SequenceBuilder(rng, GROUP_SPECS[group], rng.range(MIN_ITEMS, MAX_ITEMS)).build();
  return { seed, group, index, init, items };
}
