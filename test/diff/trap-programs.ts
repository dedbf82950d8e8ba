// Random programs for the interpreter-against-translator differential tests (interp-vs-jit.test.ts).
// Unlike the QEMU suite's sequences, these run as a kernel or a user program would (S- or U-mode
// under Sv39, or M-mode with or without MPRV) and do what only a full system can check: they loop
// (an outer loop repeats the whole sequence, so code gets hot and runs translated); trap in the
// middle of straight-line code (illegal instructions, breakpoints, ecalls, misaligned atomics,
// page and access faults on loads, stores and fetches, FP turned off) into M- or S-mode handlers
// that log the trap and resume after the faulting instruction; raise an interrupt; rewrite page
// tables; and rewrite their own code (on the running page and on another page, with and without
// FENCE.I) as well as data sharing a page with code.
//
// A case is a QEMU-suite sequence (generateCase, any group) with such items spliced in between
// its items, followed by the outer loop's tail. Both engines run it from the same state; the
// final states must be identical.
//
// Every program ends, at its final wfi (or, in U-mode, in the handler that wfi traps into):
// control flow goes forward but for the sequences' counted loops (whose counters nothing else
// writes) and the outer loop (whose counter is in memory no item writes); every trap resumes
// past the faulting instruction (a fetch fault at ra, past its call), and the code and slots
// rewritten hold ALU instructions only; the software interrupt is raised a bounded number of
// times (by items each pass, by the host), and each one taken clears its pending bit; and
// supervisor interrupts are always enabled again after a window that turns them off, so one
// pending at the end is taken before the final wfi (a pending, enabled interrupt wakes wfi even
// with SIE off: the hart would run on past the code). interp-vs-jit.test.ts runs more cases to
// their end on the interpreter than it compares, and fails on one that does not end.
import * as E from "./encode.ts";
import { CODE_BASE, SCRATCH, SCRATCH_SIZE } from "./layout.ts";
import { GROUPS, Rng, assemble, generateCase, hashSeed, liSequence, type Group, type Item, type Part, type PartContext } from "./generate.ts";
import type { MachineState } from "./layout.ts";

// ---- the address space (identity-mapped: virtual = physical) --------------------------------

export const RAM_BASE = 0x8000_0000;
export const RAM_SIZE = 1 << 20;
/** The generated code starts at CODE_BASE (64 bytes before a page end) and must end below NEAR_DATA. */
export const CODE_PAGES = [RAM_BASE, RAM_BASE + 0x3000] as const;
/** Data on the same page as the code's second half: stores there write a page holding code. */
export const NEAR_DATA = RAM_BASE + 0x1c00;
export const NEAR_DATA_SIZE = 0x400;
/** A page of called slots (an instruction, then `ret`), rewritten by the program, and data after them. */
export const FUNC_PAGE = RAM_BASE + 0x4000;
export const FUNC_SLOT_SIZE = 8;
export const FUNC_SLOTS = 64;
export const FUNC_DATA = FUNC_PAGE + 0x800;
export const FUNC_DATA_SIZE = 0x400;
/** Trap handlers (code) and their save and log areas. */
export const M_HANDLER = RAM_BASE + 0x6000;
export const S_HANDLER = RAM_BASE + 0x6800;
export const M_SAVE = RAM_BASE + 0x7000;
export const S_SAVE = RAM_BASE + 0x7800;
export const SAVE_SIZE = 0x400;
/** The outer loop's remaining trips (a doubleword). */
export const CONTROL = RAM_BASE + 0x8000;
/** Sv39 page tables: root, one level-1 table, one level-0 table covering RAM's first 2 MiB. */
export const PT_ROOT = RAM_BASE + 0x10000;
export const PT_L1 = RAM_BASE + 0x11000;
export const PT_L0 = RAM_BASE + 0x12000;
/** Pages that fault or take the slow path, each with its own page-table entry. */
export const HOLE_PAGE = RAM_BASE + 0x30000; // not mapped (V = 0): page faults
export const READONLY_PAGE = RAM_BASE + 0x31000; // R only: stores and AMOs fault
export const EXECONLY_PAGE = RAM_BASE + 0x32000; // X only: loads fault (MXR = 0)
export const UNACCESSED_PAGE = RAM_BASE + 0x33000; // R W with A = D = 0: the walk sets them
export const DEVICE_PAGE = RAM_BASE + 0x34000; // maps physical 0x1000_0000, where nothing is: access faults
export const DEVICE_PHYS = 0x1000_0000;
/** On the execute-only page: a `ret`, and a 32-bit instruction whose second half is on the next page (no X). */
export const EXECONLY_RET = 0;
export const EXECONLY_STRADDLE = 0xffe;
/** The page before the hole is mapped, so accesses can straddle into the hole. */
export const BEFORE_HOLE = HOLE_PAGE - 0x1000;

// ---- the trap handlers ----------------------------------------------------------------------

/** Save area layout: saved t1, t2; trap count; the code's end; then LOG_ENTRIES entries of cause, epc, tval. */
export const LOG_COUNT = 16;
export const SAVE_END = 24;
export const LOG_FIRST = 32;
export const LOG_ENTRY = 32;
export const LOG_ENTRIES = 16;
const T0 = 5, T1 = 6, T2 = 7, RA = 1;

type Asm = number | string | ((at: (label: string) => number) => number);

/** Instruction words from a list with labels (strings) that branches refer to by offset. */
function assembleWithLabels(lines: readonly Asm[]): { words: number[]; labels: Map<string, number> } {
  const labels = new Map<string, number>();
  let n = 0;
  for (const l of lines) {
    if (typeof l === "string") labels.set(l, n * 4);
    else n++;
  }
  const words: number[] = [];
  for (const l of lines) {
    if (typeof l === "number") words.push(l);
    else if (typeof l === "function") {
      const here = words.length * 4;
      words.push(l((label) => labels.get(label)! - here));
    }
  }
  return { words, labels };
}

/**
 * A handler that logs the trap and resumes after the faulting instruction (whose length it reads
 * from the instruction's low bits), leaving every register as it found it. An instruction fetch
 * fault resumes at ra (the faulting fetch was a call); an interrupt (the supervisor software
 * interrupt a program raises) resumes at epc itself, with the pending bit cleared. A trap on the
 * code's final wfi (illegal in U-mode) halts in the handler. `m`: M-mode CSRs and mret, else
 * S-mode CSRs and sret. The scratch CSR holds the save area's address.
 */
function handlerProgram(m: boolean) {
  const [scratch, epc, cause, tval, ip] = m ? [0x340, 0x341, 0x342, 0x343, 0x344] : [0x140, 0x141, 0x142, 0x143, 0x144];
  return assembleWithLabels([
    E.csr("csrrw", T0, scratch, T0), // t0 = save area, scratch = the program's t0
    E.store("sd", T0, T1, 0),
    E.store("sd", T0, T2, 8),
    E.load("ld", T1, T0, LOG_COUNT),
    E.aluImm("addi", T2, T1, 1),
    E.store("sd", T0, T2, LOG_COUNT),
    E.aluImm("andi", T1, T1, LOG_ENTRIES - 1),
    E.shiftImm("slli", T1, T1, Math.log2(LOG_ENTRY)),
    E.aluReg("add", T1, T1, T0), // t1 + LOG_FIRST = this trap's log entry
    E.csr("csrrs", T2, cause, 0),
    E.store("sd", T1, T2, LOG_FIRST),
    E.csr("csrrs", T2, tval, 0),
    E.store("sd", T1, T2, LOG_FIRST + 16),
    E.csr("csrrs", T2, epc, 0),
    E.store("sd", T1, T2, LOG_FIRST + 8),
    E.aluImm("addi", T1, T2, 0), // t1 = epc
    // An interrupt first: one taken in front of the final wfi resumes there, not halts.
    E.csr("csrrs", T2, cause, 0),
    (at) => E.branch("blt", T2, 0, at("interrupt")),
    E.load("ld", T2, T0, SAVE_END),
    (at) => E.branch("beq", T1, T2, at("halt")),
    E.csr("csrrs", T2, cause, 0),
    E.aluImm("addi", T2, T2, -CAUSE_FETCH_ACCESS),
    (at) => E.branch("beq", T2, 0, at("fetch")),
    E.aluImm("addi", T2, T2, CAUSE_FETCH_ACCESS - CAUSE_FETCH_PAGE_FAULT),
    (at) => E.branch("beq", T2, 0, at("fetch")),
    // Resume after the faulting instruction: 4 bytes when its low two bits are 11, else 2.
    E.load("lhu", T2, T1, 0),
    E.aluImm("andi", T2, T2, 3),
    E.aluImm("addi", T2, T2, -3),
    (at) => E.branch("bne", T2, 0, at("short")),
    E.aluImm("addi", T1, T1, 4),
    (at) => E.jal(0, at("resume")),
    "short",
    E.aluImm("addi", T1, T1, 2),
    "resume",
    E.csr("csrrw", 0, epc, T1),
    "restore",
    E.load("ld", T1, T0, 0),
    E.load("ld", T2, T0, 8),
    E.csr("csrrw", T0, scratch, T0), // t0 restored, scratch = the save area again
    m ? 0x30200073 /* mret */ : 0x10200073 /* sret */,
    "interrupt",
    E.csr("csrrci", 0, ip, 2), // clear SSIP
    (at) => E.jal(0, at("restore")),
    "fetch",
    E.aluImm("addi", T1, RA, 0),
    (at) => E.jal(0, at("resume")),
    "halt",
    // An interrupt the host raises after the end would keep the wfi awake: SSIE off first.
    E.csr("csrrci", 0, m ? 0x304 : 0x104, 2),
    "idle",
    E.wfi(),
    (at) => E.jal(0, at("idle")),
  ]);
}

const CAUSE_FETCH_ACCESS = 1;
const CAUSE_FETCH_PAGE_FAULT = 12;

export function trapHandler(m: boolean): number[] {
  return handlerProgram(m).words;
}

/** Where a handler stops the hart (a wfi) when the trapping instruction is the code's final wfi (U-mode). */
export const HALT_OFFSET = handlerProgram(true).labels.get("idle")!;

// ---- page tables ----------------------------------------------------------------------------

const PTE_V = 1, PTE_R = 2, PTE_W = 4, PTE_X = 8, PTE_U = 0x10, PTE_A = 0x40, PTE_D = 0x80;
const pte = (pa: number, flags: number) => BigInt(((pa >>> 12) << 10) | flags) & 0xffff_ffffn;

/**
 * The level-0 table: RAM identity-mapped R W X A D, except the special pages. For a U-mode
 * program every page is a user page but the handlers' code and save areas (S-mode cannot
 * execute user pages; it reads the trapping instruction with mstatus.SUM set).
 */
export function levelZeroTable(user: boolean): bigint[] {
  const entries: bigint[] = [];
  for (let i = 0; i < 512; i++) {
    const va = RAM_BASE + i * 0x1000;
    let flags = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D;
    let pa = va;
    if (va === HOLE_PAGE) flags = 0;
    else if (va === READONLY_PAGE) flags = PTE_V | PTE_R | PTE_A;
    else if (va === EXECONLY_PAGE) flags = PTE_V | PTE_X | PTE_A;
    else if (va === UNACCESSED_PAGE) flags = PTE_V | PTE_R | PTE_W;
    else if (va === DEVICE_PAGE) pa = DEVICE_PHYS;
    if (user && flags && va !== M_HANDLER && va !== M_SAVE) flags |= PTE_U;
    entries.push(va >= RAM_BASE + RAM_SIZE ? 0n : pte(pa, flags));
  }
  return entries;
}

/** satp for Sv39 with the root table at PT_ROOT. */
export const SATP_SV39 = (8n << 60n) | BigInt(PT_ROOT >>> 12);

/** The page-table pages' contents: root -> L1 (VA bits 38:30 = 2) -> L0 (bits 29:21 = 0). */
export function pageTables(user: boolean): Map<number, bigint[]> {
  const root = new Array<bigint>(512).fill(0n);
  root[(RAM_BASE / 2 ** 30) & 0x1ff] = pte(PT_L1, PTE_V);
  const l1 = new Array<bigint>(512).fill(0n);
  l1[0] = pte(PT_L0, PTE_V);
  return new Map([[PT_ROOT, root], [PT_L1, l1], [PT_L0, levelZeroTable(user)]]);
}

// ---- cases ----------------------------------------------------------------------------------

/** Kinds of the spliced-in items (each generated by the function of the same name below). */
export const SPECIAL_KINDS = [
  "illegal", "breakpoint", "ecall", "misalignedAtomic", "fault", "straddle", "unaccessed",
  "smcHere", "smcHereNoFence", "smcCall", "smcCallNoFence", "codePageData", "softInterrupt",
  "fpDisabled", "remap", "fetchFault", "reservationAcrossTrap", "csrAccess",
] as const;
export type SpecialKind = (typeof SPECIAL_KINDS)[number];

/**
 * Where a program runs: S-mode or U-mode under Sv39 (traps go to S- or M-mode), M-mode (no
 * translation; traps from M to M), or M-mode with MPRV set and MPP = U (fetches physical, loads
 * and stores translated and checked as U-mode's).
 */
export const MODES = ["S", "U", "M", "MPRV"] as const;
export type Mode = (typeof MODES)[number];
const MODE_WEIGHTS: Record<Mode, number> = { S: 0.45, U: 0.25, M: 0.15, MPRV: 0.15 };
/** Whether the program's pages are user pages (U-mode, and M-mode's loads and stores under MPRV with MPP = U). */
export const userPages = (mode: Mode) => mode === "U" || mode === "MPRV";
/**
 * Kinds left out in M-mode: fetching from the fault pages would run whatever RAM holds there, and
 * a supervisor interrupt stays pending in M-mode (it would keep the final wfi awake).
 */
const NOT_IN_M_MODE: readonly SpecialKind[] = ["fetchFault", "softInterrupt"];

export interface TrapCase {
  seed: number;
  index: number;
  group: Group;
  init: MachineState;
  /** The sequence's items with the special items spliced in (ids: base ids * 16, specials in between). */
  items: Item[];
  /** Where the program runs (see MODES). */
  mode: Mode;
  /** Causes delegated to S-mode (the rest go to M-mode). */
  medeleg: bigint;
  /** Interrupts delegated: the supervisor software interrupt or none (then S-mode cannot raise it). */
  mideleg: bigint;
  /**
   * Instruction counts (retired since the start) at which the host raises the supervisor
   * software interrupt, as a device would raise a line: run() budgets stop the hart exactly
   * there, in the middle of a block, and the next run() takes the interrupt. S- and U-mode only.
   */
  hostInterrupts: number[];
  /** Passes of the outer loop. */
  trips: number;
  /** The outer loop's tail (not shrinkable). */
  tail: Item;
  /** Initial words of the call slots (the instruction before each slot's `ret`). */
  slots: number[];
  /** Initial contents of the data pages the program reads (near data, read-only page, ...). */
  fill: number;
}

/** Causes a case may delegate: fetch, load and store faults, misaligned, illegal, breakpoint, ecall from U and S. */
const DELEGABLE = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15];
/** mip.SSIP / mideleg's bit for the supervisor software interrupt. */
export const SSIP = 2n;

/** Registers a special item may use as scratch (everything but x0 and the scratch base x31). */
const TEMPS = Array.from({ length: 30 }, (_, i) => i + 1);
const C_TEMPS = [8, 9, 10, 11, 12, 13, 14, 15];

const word = (w: number): Part => ({ size: E.insnSize(w), encode: () => w });

class SpecialBuilder {
  private slot = 0;
  readonly slots: number[] = [];

  /** `machine`: the program runs in M-mode, where mret is no illegal instruction. */
  constructor(
    private readonly rng: Rng,
    private readonly machine: boolean,
  ) {
    for (let i = 0; i < FUNC_SLOTS; i++) this.slots.push(this.aluInsn(1 + (i % 29) + 1));
  }

  /** Distinct temporaries. */
  private temps(n: number, pool = TEMPS): number[] {
    const out: number[] = [];
    while (out.length < n) {
      const r = this.rng.pick(pool);
      if (!out.includes(r)) out.push(r);
    }
    return out;
  }

  /** A word for a rewritten slot: one 32-bit ALU instruction, or two compressed ones. */
  private slotWord(): number {
    if (this.rng.chance(0.7)) return this.aluInsn();
    const half = () => {
      const rd = this.rng.range(2, 30);
      return this.rng.chance(0.5) ? E.cAddi(rd, this.rng.pick([1, -1, 5, -32, 31])) : E.cLi(rd, this.rng.range(-32, 31));
    };
    return (half() | (half() << 16)) >>> 0;
  }

  /** A random ALU/M instruction writing rd (never x31 or ra). */
  private aluInsn(rd = this.rng.pick(TEMPS.filter((r) => r !== 1))): number {
    const rng = this.rng;
    const rs = () => rng.range(0, 31);
    switch (rng.below(4)) {
      case 0: return E.aluImm(rng.pick(["addi", "xori", "ori", "andi", "slti", "sltiu"] as const), rd, rs(), rng.range(-2048, 2047));
      case 1: return E.aluReg(rng.pick(["add", "sub", "xor", "sra", "sll", "sltu"] as const), rd, rs(), rs());
      case 2: return E.aluReg(rng.pick(["mul", "mulh", "divu", "rem"] as const), rd, rs(), rs());
      default: return E.shiftImm(rng.pick(["slli", "srli", "srai"] as const), rd, rs(), rng.range(0, 63));
    }
  }

  build(kind: SpecialKind, id: number): Item {
    const item: Item = { id, kind, parts: [], xs: [], fs: [], mem: [] };
    const emit = (...ws: number[]) => ws.forEach((w) => item.parts.push(word(w)));
    const rng = this.rng;
    const li = (r: number, v: number) => emit(...liSequence(r, BigInt(v)));
    switch (kind) {
      case "illegal": {
        const [a, b] = this.temps(2);
        rng.pick([
          () => item.parts.push({ size: 2, encode: () => 0x0000 }), // the all-zero parcel
          () => emit(((rng.u32() & ~0x7f) | 0x0b) >>> 0), // custom-0: no such instruction here
          () => emit(E.csr("csrrs", a, 0x300, 0)), // mstatus from S-mode
          () => emit(E.csr("csrrw", a, 0xc00, b)), // writing the read-only cycle counter
          () => emit(this.machine ? 0x0000000b : 0x30200073), // mret in S- or U-mode
          () => emit(E.rType(E.OP.OP_FP, rng.pick([5, 6]), 0x01, rng.range(0, 31), rng.range(0, 31), rng.range(0, 31))), // fadd.d, reserved rm
          () => emit(((E.amo("amoadd", 8, a, 31, b, false, false) & ~(0x1f << 27)) | (0b00101 << 27)) >>> 0), // AMO funct5 unused
        ])();
        break;
      }
      case "breakpoint":
        emit(rng.chance(0.5) ? 0x00100073 : 0x9002); // ebreak, c.ebreak
        break;
      case "ecall":
        emit(0x00000073);
        break;
      case "fpDisabled": {
        // FP off (or Initial) around an FP instruction: off, it is illegal; Initial, it makes the
        // state Dirty. Translated code checks mstatus.FS inline. (U-mode: sstatus is illegal.)
        const [t] = this.temps(1);
        emit(E.lui(t, 0x6), E.csr("csrrc", 0, 0x100, t)); // FS = Off
        if (rng.chance(0.4)) emit(E.lui(t, 0x2), E.csr("csrrs", 0, 0x100, t)); // FS = Initial
        const f = () => rng.range(0, 31);
        emit(rng.pick([
          () => E.fpArith("fadd", 1, 7, f(), f(), f()),
          () => E.fld(f(), 31, rng.range(-200, 200) * 8),
          () => E.fmvXF(1, t, f()),
          () => E.csr("csrrs", t, E.CSR_FCSR, 0),
          () => E.cFldsp(f(), 0),
        ])());
        emit(E.lui(t, 0x6), E.csr("csrrs", 0, 0x100, t)); // FS = Dirty again
        break;
      }
      case "remap": {
        // Rewrites a page-table entry (read-only page: W; execute-only page: R), sfence.vma,
        // then accesses the page: translated code must not use what its TLB held.
        const [t, v] = this.temps(2, C_TEMPS);
        const [page, bit] = rng.chance(0.5) ? [READONLY_PAGE, PTE_W] : [EXECONLY_PAGE, PTE_R];
        li(t, PT_L0 + ((page - RAM_BASE) >>> 12) * 8);
        emit(E.load("ld", v, t, 0), E.aluImm("xori", v, v, bit), E.store("sd", t, v, 0), 0x12000073 /* sfence.vma */);
        this.access(emit, page + rng.range(0, 0xff0));
        break;
      }
      case "fetchFault": {
        // A call to code that cannot be fetched (unmapped, not executable, no memory there, or
        // a 32-bit instruction whose second half is on a page without X); the handler resumes
        // at ra. Or a call that works: code on the execute-only page.
        const [t] = this.temps(1, TEMPS.filter((r) => r !== RA));
        const target = rng.pick([
          HOLE_PAGE + rng.range(0, 1023) * 4, READONLY_PAGE + rng.range(0, 1023) * 4, DEVICE_PAGE + rng.range(0, 1023) * 4,
          EXECONLY_PAGE + EXECONLY_RET, EXECONLY_PAGE + EXECONLY_STRADDLE,
        ]);
        li(t, target);
        emit(E.jalr(RA, t, 0));
        break;
      }
      case "reservationAcrossTrap": {
        // lr; a trap; sc to the same place: whether the reservation survives must agree.
        const [t, d, v] = this.temps(3);
        const width = rng.pick([4, 8] as const);
        emit(E.aluImm("addi", t, 31, rng.range(-250, 250) * 8));
        emit(E.amo("lr", width, d, t, 0, false, false));
        emit(rng.pick([0x00000073, 0x00100073, 0x0000000b]));
        emit(E.amo("sc", width, v, t, d, false, false));
        break;
      }
      case "csrAccess":
        this.csrAccess(emit);
        break;
      case "softInterrupt":
        // Raises the supervisor software interrupt (sip.SSIP, writable when delegated; illegal
        // in U-mode): taken right after the CSR write, in the middle of the block.
        emit(E.csr("csrrsi", rng.chance(0.5) ? 0 : this.temps(1)[0], 0x144, 2));
        break;
      case "misalignedAtomic": {
        const [t, d, s] = this.temps(3);
        const width = rng.pick([4, 8] as const);
        const off = rng.range(-250, 250) * 8 + rng.range(1, width - 1);
        emit(E.aluImm("addi", t, 31, off));
        const op = rng.pick(["lr", "sc", "amoswap", "amoadd", "amomaxu"] as const);
        emit(E.amo(op, width, d, t, op === "lr" ? 0 : s, false, false));
        break;
      }
      case "fault": {
        // An access to a page that faults (or, for loads on the read-only page, one that does not).
        const page = rng.pick([HOLE_PAGE, READONLY_PAGE, EXECONLY_PAGE, DEVICE_PAGE]);
        this.access(emit, page + rng.range(0, 0xff0));
        break;
      }
      case "straddle":
        // Misaligned accesses across a boundary between pages of different permissions (into
        // the hole, read-only into execute-only, into the unaccessed page, into the device):
        // which byte faults, and whether a store wrote its first part, must agree.
        this.access(emit, rng.pick([HOLE_PAGE, EXECONLY_PAGE, UNACCESSED_PAGE, DEVICE_PAGE]) - rng.range(1, 7));
        break;
      case "unaccessed":
        this.access(emit, UNACCESSED_PAGE + rng.range(0, 0xff0));
        break;
      case "smcHere":
      case "smcHereNoFence": {
        // auipc t, 0; li m, A^B; toggle the slot (lw/xor/sw, or amoxor.w); [fence.i]; a few
        // instructions; slot: A or B. A and B may differ in length: one 32-bit instruction
        // against two compressed ones, so the instruction boundaries move.
        const [t, m, v] = this.temps(3);
        const a = this.slotWord(), b = this.slotWord();
        const fillers = Array.from({ length: rng.below(3) }, () => this.aluInsn());
        let slotOffset = 0;
        emit(E.auipc(t, 0), ...liSequence(m, BigInt.asIntN(32, BigInt((a ^ b) >>> 0))));
        if (rng.chance(0.7)) {
          item.parts.push({ size: 4, encode: () => E.load("lw", v, t, slotOffset) });
          emit(E.aluReg("xor", v, v, m));
          item.parts.push({ size: 4, encode: () => E.store("sw", t, v, slotOffset) });
        } else {
          // An AMO: traps (misaligned) when the slot is not 4-byte aligned, leaving it alone.
          item.parts.push({ size: 4, encode: () => E.aluImm("addi", v, t, slotOffset) });
          emit(E.amo("amoxor", 4, rng.chance(0.5) ? 0 : v, v, m, false, false));
        }
        if (kind === "smcHere") emit(E.fenceI());
        emit(...fillers);
        slotOffset = item.parts.reduce((sum, p) => sum + p.size, 0);
        if (E.insnSize(a) === 4) emit(a);
        else emit(a & 0xffff, a >>> 16);
        break;
      }
      case "smcCall":
      case "smcCallNoFence": {
        // Toggles a slot on the function page between its instruction and another, then calls it.
        const s = this.slot++ % FUNC_SLOTS;
        const [t, m, v] = this.temps(3, TEMPS.filter((r) => r !== 1));
        const a = this.slots[s];
        const b = this.aluInsn((a >>> 7) & 31);
        li(t, FUNC_PAGE + s * FUNC_SLOT_SIZE);
        emit(...liSequence(m, BigInt.asIntN(32, BigInt((a ^ b) >>> 0))), E.load("lw", v, t, 0), E.aluReg("xor", v, v, m), E.store("sw", t, v, 0));
        if (kind === "smcCall") emit(E.fenceI());
        emit(E.jalr(1, t, 0));
        break;
      }
      case "codePageData": {
        // Stores and loads to data sharing a page with code (the running code's, or the called slots').
        const [t, d] = this.temps(2);
        const [base, size] = rng.chance(0.5) ? [NEAR_DATA, NEAR_DATA_SIZE] : [FUNC_DATA, FUNC_DATA_SIZE];
        li(t, base + size / 2);
        for (let n = rng.range(1, 3); n > 0; n--) {
          const off = rng.range(-size / 2, size / 2 - 8);
          if (rng.chance(0.6)) emit(E.store(rng.pick(["sb", "sh", "sw", "sd"] as const), t, rng.range(0, 31), off));
          else emit(E.load(rng.pick(["lb", "lhu", "lw", "ld"] as const), d, t, off));
        }
        break;
      }
    }
    // For the reproducer: the register fields of the 32-bit instructions (FP ones included).
    for (const part of item.parts) {
      if (part.size !== 4) continue;
      const w = part.encode({ pc: 0, itemPc: 0, target: 0 });
      for (const shift of [7, 15, 20]) if (!item.xs.includes((w >>> shift) & 31)) item.xs.push((w >>> shift) & 31);
    }
    return item;
  }

  /**
   * CSR instructions in the middle of a block, which translated code executes itself: trap CSRs
   * read and written (the handlers' scratch CSRs only read), supervisor interrupts disabled
   * around a window that may raise one (sip.SSIP, or the host's) and enabled again (taken right
   * after the enabling write), the FP CSRs (an invalid frm makes the next dynamic-rounding
   * instruction illegal), the retirement counters (exact at the instruction) and time (rd = x0:
   * its value is the host's). In U-mode every one but the FP CSRs is illegal, and in S-mode the
   * M-mode CSRs and the counters (mcounteren is 0).
   */
  private csrAccess(emit: (...ws: number[]) => void): void {
    const rng = this.rng;
    const [a, b] = this.temps(2);
    const anyOp = () => rng.pick(["csrrw", "csrrs", "csrrc", "csrrwi", "csrrsi", "csrrci"] as const);
    const source = (op: E.CsrOp) => (op.endsWith("i") ? rng.range(0, 31) : rng.pick([0, b]));
    switch (rng.below(5)) {
      case 0: {
        // sepc, scause, stval, mepc, mcause, mtval: the handlers set them on every trap; sscratch
        // and mscratch hold the save areas' addresses, so they are only read.
        const trapCsr = rng.pick([0x141, 0x142, 0x143, 0x341, 0x342, 0x343]);
        const op = anyOp();
        emit(E.csr(op, rng.pick([0, a]), trapCsr, source(op)));
        emit(E.csr(rng.pick(["csrrs", "csrrc"] as const), a, rng.pick([0x140, 0x340, trapCsr]), 0));
        break;
      }
      case 1: {
        // sstatus.SIE (or sie.SSIE) off, a window, on again. The enabling write always sets the
        // bit (with or without others): left off, an interrupt pending at the end would keep the
        // final wfi from sleeping, and the hart would run on past the end of the code.
        const [reg, bit] = rng.chance(0.7) ? [0x100, 2] : [0x104, 2];
        emit(E.csr("csrrci", rng.pick([0, a]), reg, bit));
        emit(this.aluInsn(b));
        if (!this.machine && rng.chance(0.6)) emit(E.csr("csrrsi", 0, 0x144, 2)); // raise SSIP while disabled
        emit(this.aluInsn(b));
        const op = rng.pick(["csrrsi", "csrrs"] as const), rd = rng.pick([0, a]), others = rng.chance(0.5);
        if (op === "csrrsi") emit(E.csr(op, rd, reg, others ? bit | rng.below(32) : bit));
        else emit(others ? E.aluImm("ori", b, b, bit) : E.aluImm("addi", b, 0, bit), E.csr(op, rd, reg, b));
        break;
      }
      case 2: {
        // fflags, frm, fcsr; then an instruction with the dynamic rounding mode.
        const op = anyOp();
        emit(E.csr(op, rng.pick([0, a]), rng.pick([E.CSR_FFLAGS, E.CSR_FRM, E.CSR_FCSR]), op.endsWith("i") ? rng.range(0, 31) : b));
        const f = () => rng.range(0, 31);
        emit(E.fpArith("fadd", 1, 7, f(), f(), f()));
        if (rng.chance(0.5)) emit(E.csr("csrrwi", 0, E.CSR_FRM, rng.range(0, 4))); // a valid mode again
        break;
      }
      case 3:
        // The retirement counters: the interpreter's, exact at the instruction.
        emit(E.csr("csrrs", a, rng.pick([0xc00, 0xc02, 0xb00, 0xb02]), 0));
        break;
      default:
        emit(E.csr("csrrs", 0, 0xc01, 0)); // time
        break;
    }
  }

  /** li t, addr; one load, store, FP access, AMO or compressed access at t. */
  private access(emit: (...ws: number[]) => void, addr: number): void {
    const rng = this.rng;
    const [t, d] = this.temps(2, C_TEMPS);
    emit(...liSequence(t, BigInt(addr)));
    switch (rng.below(6)) {
      case 0: emit(E.load(rng.pick(["lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"] as const), d, t, 0)); break;
      case 1: emit(E.store(rng.pick(["sb", "sh", "sw", "sd"] as const), t, rng.range(0, 31), 0)); break;
      case 2: emit(rng.chance(0.5) ? E.fld(rng.range(0, 31), t, 0) : E.fsw(t, rng.range(0, 31), 0)); break;
      case 3: {
        const op = rng.pick(["amoswap", "amoadd", "amoor", "lr", "sc"] as const);
        emit(E.amo(op, rng.pick([4, 8] as const), d, t, op === "lr" ? 0 : rng.range(0, 31), false, false));
        break;
      }
      case 4: emit(rng.chance(0.5) ? E.cLd(d, t, 0) : E.cSw(t, d, 0)); break;
      default: emit(E.load("ld", d, t, 0), E.aluImm("addi", d, d, 1), E.store("sd", t, d, 0)); break;
    }
  }
}

/** How many special items a case gets, and the outer loop's passes. */
const MIN_SPECIALS = 2, MAX_SPECIALS = 8;
const MIN_TRIPS = 2, MAX_TRIPS = 6;
/** Host interrupts come within the first this many instructions (most programs retire several hundred). */
const MAX_INTERRUPT_AT = 400;
/** The code must end below NEAR_DATA (leaving room for the final wfi). */
export const CODE_LIMIT = NEAR_DATA - CODE_BASE - 4;

/** Case `index` for `seed`: the same arguments always give the same case. */
export function generateTrapCase(seed: number, index: number, kinds: readonly SpecialKind[] = SPECIAL_KINDS): TrapCase {
  const group = GROUPS[index % GROUPS.length];
  const base = generateCase(seed, group, index);
  const rng = new Rng(hashSeed([seed, 0x7ab5, index]));
  const mode = rng.weighted(MODE_WEIGHTS);
  const machine = mode === "M" || mode === "MPRV";
  if (machine) kinds = kinds.filter((k) => !NOT_IN_M_MODE.includes(k));
  const specials = new SpecialBuilder(rng, machine);
  const items: Item[] = base.items.map((it) => ({ ...it, id: it.id * 16, target: it.target === undefined ? undefined : it.target * 16 }));
  for (let n = rng.range(MIN_SPECIALS, MAX_SPECIALS); n > 0; n--) {
    const at = rng.range(0, items.length);
    const prevId = at === 0 ? -16 : items[at - 1].id;
    const nextId = at === items.length ? prevId + 16 : items[at].id;
    if (nextId - prevId < 2) continue; // no id left between them
    items.splice(at, 0, specials.build(rng.pick(kinds), Math.floor((prevId + nextId) / 2)));
  }
  let medeleg = 0n;
  const policy = rng.below(3); // none, all, or some delegated
  for (const cause of DELEGABLE) if (policy === 1 || (policy === 2 && rng.chance(0.5))) medeleg |= 1n << BigInt(cause);
  const tail = loopTail(rng);
  const mideleg = rng.chance(0.7) ? SSIP : 0n;
  const hostInterrupts = machine || rng.chance(0.5) ? [] : Array.from({ length: rng.range(1, 3) }, () => rng.range(1, MAX_INTERRUPT_AT)).sort((a, b) => a - b);
  return { seed, index, group, init: base.init, items, mode, medeleg, mideleg, hostInterrupts, trips: rng.range(MIN_TRIPS, MAX_TRIPS), tail, slots: specials.slots, fill: rng.u32() };
}

/** ld b, CONTROL; addi b, b, -1; sd b, CONTROL; beqz b, out; j start: one more pass. */
function loopTail(rng: Rng): Item {
  const [a, b] = [rng.range(1, 15), rng.range(16, 30)];
  const parts = [...liSequence(a, BigInt(CONTROL)), E.load("ld", b, a, 0), E.aluImm("addi", b, b, -1), E.store("sd", a, b, 0), E.branch("beq", b, 0, 8)].map(word);
  parts.push({ size: 4, encode: (c: PartContext) => E.jal(0, -c.pc) });
  return { id: Number.MAX_SAFE_INTEGER, kind: "loopTail", parts, xs: [a, b], fs: [], mem: [] };
}

/** The program's code: the items and the loop tail (forward targets past the last item land on the tail). */
export function assembleTrapCase(tc: TrapCase, items: readonly Item[] = tc.items): Uint8Array {
  const code = assemble([...items, tc.tail]);
  if (code.length > CODE_LIMIT) throw new Error(`case ${tc.index}: ${code.length} bytes of code do not fit below the near data`);
  return code;
}

/** Memory regions whose final contents are compared, [address, size, name]. */
export const COMPARED_MEMORY: ReadonlyArray<readonly [number, number, string]> = [
  [SCRATCH, SCRATCH_SIZE, "scratch"],
  [NEAR_DATA, NEAR_DATA_SIZE, "near data"],
  [FUNC_PAGE, 0x1000, "function page"],
  [M_SAVE, SAVE_SIZE, "M trap log"],
  [S_SAVE, SAVE_SIZE, "S trap log"],
  [CONTROL, 8, "loop counter"],
  [PT_L0, 0x1000, "level-0 page table"],
  [BEFORE_HOLE, 0x1000, "page before the hole"],
  [UNACCESSED_PAGE, 0x1000, "unaccessed page"],
  [HOLE_PAGE, 0x1000, "hole page (RAM in M-mode)"],
  [DEVICE_PAGE, 0x1000, "device page (RAM in M-mode)"],
  [CODE_BASE, NEAR_DATA - CODE_BASE, "code"],
];
