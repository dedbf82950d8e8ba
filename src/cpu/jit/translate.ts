// The RISC-V -> WebAssembly translator: the code of one guest physical page, as decoded by the
// core, becomes a few wasm functions that run it with guest registers in wasm locals.
//
// Regions. The page's control-flow graph (instructions, fall-through and static branch edges) is
// cut into single-entry regions (see partition): each region starts at an entry, and a region
// contains at most one loop, whose header is its entry. Entries are where control comes in from
// outside the translation (the interpreter, other pages, returns from calls, the instruction
// after a system instruction the interpreter ran) and every loop header: after any exit from
// inside a loop the interpreter then comes back in at the next iteration. Within a region, code
// is laid out in a topological order of the graph without back edges, so forward branches are
// `br` out of wasm blocks ending at their targets, back edges a `br` to the region's wasm loop.
//
// Functions. Consecutive regions are grouped into functions of up to `functionSize`
// instructions (see group): a function has a br_table at its start selecting the entry by pc,
// and control passes to a later region of the same function by a plain branch. Going to an
// earlier region, or one in another function, is a tail call; to another page, a tail call to
// the chaining function (jit.ts), which finds the target's translation the way the interpreter
// would (fetch TLB, page map, pool slot) and tail-calls it through the core's table, or returns
// to the interpreter. JALR within the page goes through the page's dispatcher function.
//
//   (func (param $pc i64) (param $left i32) (param $budget0 i32) (result i32)
//     prologue: $vbase = $pc & ~0xfff; $tlb = data TLB table; registers read -> i64 locals
//     block $exit
//       block $default
//         block $E(last) ... block $E0         one wasm block per entry, ending at the entry
//           br_table (pc) -> $E.. or $default
//         ...regions...
//       end     $default: not an entry here: the chaining function
//     end       $exit: S_PC and the return value from the exit code in $code
//
// Guest registers are written through: every write goes to the local and to the register file
// in memory. So nothing needs writing back on the way out, and no register value lives across
// the many exits, which keeps V8's compile time (SSA merges, register allocation) in check; a
// function loads the registers its regions may read before writing them.
//
// Loads and stores check the data TLB inline (the interpreter's TLB, same entries). On a miss,
// an MMIO or page-crossing access, a store to a page holding translated code, or any other
// unusual case, the function leaves in front of the instruction and the interpreter performs it
// (filling the TLB for next time, or raising the exception precisely).
//
// Exactness. Instructions are counted per segment (a run laid out consecutively that nothing
// jumps into): its length is taken from $left where it starts. At every entry the function
// leaves unless $left covers the longest run possible before the next entry or exit, so
// run(budget) never retires more than asked and instret stays exact. Functions return the
// number of instructions retired (budget0 - left); an exit in front of an instruction the
// interpreter must execute itself (system instructions, a faulting or unusual access, an entry
// the budget cannot cover) also sets JIT_RET_INTERPRET. Faults are never raised here: the
// interpreter re-executes the instruction, faults the same way and takes the trap with the
// precise pc and state.
import * as O from "../opcodes.ts";
import * as L from "../layout.ts";
import { Code, Op, ValType, type Label } from "./wasm-emitter.ts";

/** Function indices of the module's imports (see jit.ts); translated functions follow them. */
export const FN_AMO = 0;
export const FN_FP = 1;
/** (pc, left, budget0) -> retired: continues in the translation at pc if there is one, else returns to the interpreter. */
export const FN_CHAIN = 2;
export const FIRST_PAGE_FUNCTION = 3;

// Locals: three parameters, then scratch, then the guest registers.
const L_PC = 0; // i64 param: the guest pc of the entry
const L_LEFT = 1; // i32 param: instructions this call may still retire; counts down
const L_BUDGET0 = 2; // i32 param: instructions retired so far = budget0 - left
const L_E = 3; // i32: TLB entry address, slow-path status
const L_TLB = 4; // i32: data TLB table
const L_CODE = 5; // i32: exit code for the shared exit (see exitTo)
const L_VBASE = 6; // i64: virtual address of the page
const L_NPC = 7; // i64: JALR target
const L_VA = 8; // i64: effective address
const L_T = 9; // i64: scratch
const L_T2 = 10; // i64: scratch
const FIRST_REG_LOCAL = 11;

const STATE = L.STATE_BASE;
const STATUS = STATE + L.S_JIT_STATUS;
const MSTATUS_FS = 3n << 13n;
const MSTATUS_FS_DIRTY_SD = (3n << 13n) | (1n << 63n);
const NAN_BOX = -0x1_0000_0000n; // 0xffffffff_00000000

/** The decoded page: (word, imm) per 2-byte parcel, as the core's jitDecodePage writes them. */
export interface DecodedPage {
  word(offset: number): number;
  imm(offset: number): number;
}

/** A function of the translation (a group of regions, or the page's dispatcher); `index` is its index in the module. */
export interface TranslatedFunction {
  /** Page offsets of its entries (none for the page's dispatcher). */
  entries: number[];
  index: number;
  body: Uint8Array<ArrayBuffer>;
  locals: { count: number; type: ValType }[];
}

export interface Translation {
  functions: TranslatedFunction[];
  /** Page offsets of the instructions translated. */
  covered: number[];
  /** Guest instructions translated (for statistics). */
  instructions: number;
}

const enum Kind {
  Alu, // pure computation writing rd
  Nop,
  Branch, // conditional, falls through
  Jal, // unconditional, static target
  Jalr,
  Load,
  Store,
  FpLoad,
  FpStore,
  Fp, // F/D computation through the core
  Amo,
  Exit, // left to the interpreter: system instructions, CSRs, illegal, page-straddling
}

function kindOf(op: number): Kind {
  if (op >= O.OP_LI && op <= O.OP_REMUW) return Kind.Alu;
  if (op === O.OP_MV) return Kind.Alu;
  if ((op >= O.OP_BEQ && op <= O.OP_BGEU) || op === O.OP_BEQZ || op === O.OP_BNEZ) return Kind.Branch;
  if (op === O.OP_JAL || op === O.OP_J) return Kind.Jal;
  if (op === O.OP_JALR) return Kind.Jalr;
  if (op >= O.OP_LB && op <= O.OP_LWU) return Kind.Load;
  if (op >= O.OP_SB && op <= O.OP_SD) return Kind.Store;
  // The core keeps decoded code coherent with every store, and translations with it: FENCE.I
  // has nothing left to do.
  if (op === O.OP_NOP || op === O.OP_FENCE || op === O.OP_FENCE_I) return Kind.Nop;
  if (op >= O.OP_LR_W && op <= O.OP_AMOMAXU_D) return Kind.Amo;
  if (op === O.OP_FLW || op === O.OP_FLD) return Kind.FpLoad;
  if (op === O.OP_FSW || op === O.OP_FSD) return Kind.FpStore;
  if (op >= O.OP_FMADD_S && op <= O.OP_FCVT_D_S) return Kind.Fp;
  return Kind.Exit;
}

/** System instructions after which execution resumes at the next one once the interpreter ran them. */
function resumesAfter(op: number): boolean {
  return op === O.OP_ECALL || op === O.OP_WFI || op === O.OP_SFENCE_VMA || (op >= O.OP_CSRRW && op <= O.OP_CSRRCI);
}

/** True when control can continue with the next instruction in memory. */
export function fallsThrough(op: number): boolean {
  const k = kindOf(op);
  if (k === Kind.Jal || k === Kind.Jalr) return false;
  if (k === Kind.Exit) return resumesAfter(op);
  return true;
}

const FP_READS_X = new Set([
  O.OP_FMV_W_X, O.OP_FMV_D_X, O.OP_FCVT_S_W, O.OP_FCVT_S_WU, O.OP_FCVT_S_L, O.OP_FCVT_S_LU,
  O.OP_FCVT_D_W, O.OP_FCVT_D_WU, O.OP_FCVT_D_L, O.OP_FCVT_D_LU,
]);
const FP_WRITES_X = new Set([
  O.OP_FMV_X_W, O.OP_FMV_X_D, O.OP_FCLASS_S, O.OP_FCLASS_D, O.OP_FEQ_S, O.OP_FLT_S, O.OP_FLE_S,
  O.OP_FEQ_D, O.OP_FLT_D, O.OP_FLE_D, O.OP_FCVT_W_S, O.OP_FCVT_WU_S, O.OP_FCVT_L_S, O.OP_FCVT_LU_S,
  O.OP_FCVT_W_D, O.OP_FCVT_WU_D, O.OP_FCVT_L_D, O.OP_FCVT_LU_D,
]);
const BRANCH_COMPARE: Op[] = [Op.i64_eq, Op.i64_ne, Op.i64_lt_s, Op.i64_ge_s, Op.i64_lt_u, Op.i64_ge_u];

const rdOf = (w: number) => (w >>> 8) & 31;
const rs1Of = (w: number) => (w >>> 13) & 31;
const rs2Of = (w: number) => (w >>> 18) & 31;
const lenOf = (w: number) => ((w >>> 31) !== 0 ? 2 : 4);

/** Integer registers an instruction reads and writes (bit masks over x1..x31). */
function regUse(op: number, w: number): { reads: number; writes: number } {
  const rd = rdOf(w), rs1 = rs1Of(w), rs2 = rs2Of(w);
  const bit = (r: number) => (r === 0 ? 0 : 1 << r);
  switch (kindOf(op)) {
    case Kind.Alu:
      if (op === O.OP_LI || op === O.OP_AUIPC) return { reads: 0, writes: bit(rd) };
      if (op >= O.OP_ADD && op <= O.OP_REMUW) return { reads: bit(rs1) | bit(rs2), writes: bit(rd) };
      return { reads: bit(rs1), writes: bit(rd) };
    case Kind.Branch:
      return { reads: bit(rs1) | (op === O.OP_BEQZ || op === O.OP_BNEZ ? 0 : bit(rs2)), writes: 0 };
    case Kind.Jal:
      return { reads: 0, writes: op === O.OP_JAL ? bit(rd) : 0 };
    case Kind.Jalr:
    case Kind.Load:
      return { reads: bit(rs1), writes: bit(rd) };
    case Kind.Store:
      return { reads: bit(rs1) | bit(rs2), writes: 0 };
    case Kind.FpLoad:
    case Kind.FpStore:
      return { reads: bit(rs1), writes: 0 };
    case Kind.Amo:
      return { reads: bit(rs1) | bit(rs2), writes: bit(rd) };
    case Kind.Fp:
      return { reads: FP_READS_X.has(op) ? bit(rs1) : 0, writes: FP_WRITES_X.has(op) ? bit(rd) : 0 };
    default:
      return { reads: 0, writes: 0 };
  }
}

/**
 * Which offsets of the page to translate from: the instructions the interpreter executed
 * (`executed(offset)`) that are not simply reached by falling through from an executed one, and
 * those control was seen arriving at from elsewhere (`wanted(offset)`).
 */
export function findRoots(page: DecodedPage, executed: (offset: number) => boolean, wanted?: (offset: number) => boolean): number[] {
  const roots: number[] = [];
  for (let off = 0; off < 4096; off += 2) {
    if (!executed(off)) continue;
    if (wanted?.(off)) {
      roots.push(off);
      continue;
    }
    let reached = false;
    for (let back = 2; back <= 4; back += 2) {
      const prev = off - back;
      if (prev < 0 || !executed(prev)) continue;
      const w = page.word(prev);
      if (lenOf(w) === back && fallsThrough(w & 0xff)) reached = true;
    }
    if (!reached) roots.push(off);
  }
  return roots;
}

/** A wasm block or loop of a function body, over positions in the function's order [start, close). */
interface Interval {
  start: number; // opens in front of this position (-1: before the entry br_table)
  close: number; // closes in front of this position
  loop: boolean;
  label: Label;
}

/**
 * Translates the code reachable from `roots` (page offsets) into wasm function bodies, numbered
 * from `firstIndex` in their module; with `executed`, only instructions the interpreter has run
 * (control leaves to the interpreter where the rest begins).
 */
export function translatePage(
  page: DecodedPage,
  roots: number[],
  firstIndex: number,
  functionSize: number,
  executed?: (offset: number) => boolean,
): Translation | undefined {
  return new PageTranslator(page, executed, firstIndex, functionSize).translate(roots);
}

class PageTranslator {
  private readonly c = new Code();
  // Per parcel (offset / 2)
  private readonly visited = new Uint8Array(2048);
  private readonly entry = new Uint8Array(2048);
  private readonly pos = new Int32Array(2048).fill(-1); // position of the instruction there
  // Per position (the translated instructions in address order)
  private starts: number[] = [];
  private words: number[] = [];
  private regionOf: Int32Array = new Int32Array(0); // region (index into regionEntry) of each position
  private regionEntry: number[] = []; // entry position of each region
  private regionOrder: number[][] = []; // each region's positions in emission order (entry first)
  private rank: Int32Array = new Int32Array(0); // index of each position in its region's order
  private funcOfRegion: Int32Array = new Int32Array(0); // function of each region
  private funcRegions: number[][] = []; // regions of each function, in order
  private funcOrder: number[][] = []; // each function's positions in emission order
  private fpos: Int32Array = new Int32Array(0); // index of each position in its function's order
  private segLeft: Int32Array = new Int32Array(0); // instructions of the segment from here on (incl.)
  private segStartHere: Uint8Array = new Uint8Array(0);
  private runBound: Int32Array = new Int32Array(0); // longest run from here to an entry or exit
  private blockAt: (Interval | undefined)[] = []; // block closing in front of a position (forward target)
  private loopAt: (Interval | undefined)[] = []; // loop at a region's entry
  private regLocal = new Int32Array(32).fill(-1);
  private exitLabel: Label = 0;

  constructor(
    private readonly page: DecodedPage,
    private readonly executed: ((offset: number) => boolean) | undefined,
    private readonly firstIndex: number,
    private readonly functionSize: number,
  ) {}

  translate(roots: number[]): Translation | undefined {
    if (!this.discover(roots)) return undefined;
    this.partition();
    this.group();
    this.segments();
    const functions: TranslatedFunction[] = [];
    for (let f = 0; f < this.funcRegions.length; f++) functions.push(this.emitFunction(f));
    functions.push(this.emitDispatcher());
    return { functions, covered: this.starts, instructions: this.starts.length };
  }

  // ---- 1. instructions reachable from the roots, and the entries --------------------------
  private discover(roots: number[]): boolean {
    const { page, visited, entry, executed } = this;
    const work: number[] = [];
    const add = (off: number, isEntry: boolean) => {
      if (off < 0 || off >= 4096 || (off & 1) !== 0) return;
      if (isEntry) entry[off >> 1] = 1;
      if (!visited[off >> 1]) work.push(off);
    };
    // Code the interpreter never ran is left out (control leaves to the interpreter there),
    // which keeps translations, and V8's compile work, to what actually runs.
    const follow = (t: number) => executed === undefined || (t >= 0 && t < 4096 && executed(t));
    for (const r of roots) add(r, true);
    while (work.length) {
      let off = work.pop()!;
      while (off < 4096 && !visited[off >> 1]) {
        visited[off >> 1] = 1;
        const w = page.word(off);
        const op = w & 0xff;
        const len = lenOf(w);
        const kind = kindOf(op);
        if (kind === Kind.Branch) {
          const t = off + page.imm(off);
          if (follow(t)) add(t, false);
        }
        if (kind === Kind.Jal) {
          const t = off + page.imm(off);
          if (follow(t)) add(t, false);
          if (op === O.OP_JAL && follow(off + len)) add(off + len, true); // a call returns here through JALR
          break;
        }
        if (kind === Kind.Jalr) {
          if (rdOf(w) !== 0 && follow(off + len)) add(off + len, true);
          break;
        }
        if (kind === Kind.Exit) {
          if (resumesAfter(op) && follow(off + len)) add(off + len, true); // where the interpreter comes back
          break;
        }
        off += len;
        if (!follow(off)) break;
      }
    }
    for (let p = 0; p < 2048; p++) {
      if (!visited[p]) continue;
      this.pos[p] = this.starts.length;
      this.starts.push(p * 2);
      this.words.push(page.word(p * 2));
    }
    return this.starts.length > 0;
  }

  /** Layout position of a page offset, or -1 when it is not translated. */
  private posOf(off: number): number {
    return off >= 0 && off < 4096 && (off & 1) === 0 ? this.pos[off >> 1] : -1;
  }
  private isEntry(i: number): boolean {
    return this.entry[this.starts[i] >> 1] === 1;
  }
  /** Static in-page target of the branch or jump at position i, as a position, or -1. */
  private targetOf(i: number): number {
    const kind = kindOf(this.words[i] & 0xff);
    if (kind !== Kind.Branch && kind !== Kind.Jal) return -1;
    return this.posOf(this.starts[i] + this.page.imm(this.starts[i]));
  }
  /** Position of the next instruction in memory when control falls through to it, or -1. */
  private fallThroughOf(i: number): number {
    const w = this.words[i];
    const op = w & 0xff;
    if (!fallsThrough(op) || kindOf(op) === Kind.Exit) return -1;
    return this.posOf(this.starts[i] + lenOf(w));
  }

  // ---- 2. regions and their order --------------------------------------------------------------
  //
  // The control-flow graph (nodes: instructions, edges: fall-through and static branch targets)
  // is cut into regions, each entered at one entry only, and each a function. Control passing to
  // another region is a tail call. A region may contain one loop, whose header is the region's
  // entry (its back edges go to the entry); any other cycle makes its header an entry, starting a
  // region of its own. So every loop header is an entry: after any exit from inside a loop (end of
  // the run's budget, a fault, a system instruction) the interpreter comes back in at the next
  // iteration instead of running the rest of the loop itself. A node reached from two regions
  // becomes an entry too. Within a region, code is laid out in a topological order of the graph
  // without the back edges (not address order), so a rotated loop (entered by a jump into its
  // middle, as GCC likes to emit them) becomes a wasm loop starting at that jump's target.
  private partition(): void {
    const n = this.starts.length;
    this.entry[this.starts[0] >> 1] = 1; // nothing reaches the lowest instruction by falling through
    const regionOf = new Int32Array(n);
    const color = new Uint8Array(n);
    for (let changed = true; changed; ) {
      changed = false;
      // Claim nodes for the regions of the entries, in address order (the entries found shared
      // are added after the pass, so that stale claims do not cascade).
      regionOf.fill(-1);
      this.regionEntry = [];
      const shared: number[] = [];
      for (let e = 0; e < n; e++) {
        if (!this.isEntry(e)) continue;
        const r = this.regionEntry.length;
        this.regionEntry.push(e);
        regionOf[e] = r;
        const work = [e];
        while (work.length) {
          const i = work.pop()!;
          for (const j of this.successors(i)) {
            if (this.isEntry(j)) continue;
            if (regionOf[j] === -1) {
              regionOf[j] = r;
              work.push(j);
            } else if (regionOf[j] !== r) {
              shared.push(j);
            }
          }
        }
      }
      for (const j of shared) this.entry[this.starts[j] >> 1] = 1;
      if (shared.length) {
        changed = true;
        continue;
      }
      // A cycle that does not go through its region's entry: its header becomes an entry.
      color.fill(0);
      for (const e of this.regionEntry) {
        const r = regionOf[e];
        const stack: [number, number][] = [[e, 0]];
        color[e] = 1;
        while (stack.length && !changed) {
          const top = stack[stack.length - 1];
          const succ = this.successors(top[0]);
          if (top[1] >= succ.length) {
            color[top[0]] = 2;
            stack.pop();
            continue;
          }
          const j = succ[top[1]++];
          if (regionOf[j] !== r || j === e) continue;
          if (color[j] === 1) {
            this.entry[this.starts[j] >> 1] = 1;
            changed = true;
          } else if (color[j] === 0) {
            color[j] = 1;
            stack.push([j, 0]);
          }
        }
        if (changed) break;
      }
    }
    this.regionOf = regionOf;

    // Order each region: reverse post-order of a depth-first search that visits the branch
    // target before the fall-through successor, so the fall-through successor tends to come next.
    this.rank = new Int32Array(n);
    this.regionOrder = this.regionEntry.map((e) => {
      const r = regionOf[e];
      const post: number[] = [];
      const seen = new Uint8Array(n);
      const stack: [number, number][] = [[e, 0]];
      seen[e] = 1;
      while (stack.length) {
        const top = stack[stack.length - 1];
        const succ = this.successors(top[0]);
        if (top[1] >= succ.length) {
          post.push(top[0]);
          stack.pop();
          continue;
        }
        const j = succ[top[1]++];
        if (regionOf[j] !== r || j === e || seen[j]) continue;
        seen[j] = 1;
        stack.push([j, 0]);
      }
      const order = post.reverse();
      order.forEach((i, k) => (this.rank[i] = k));
      return order;
    });

  }

  /** Successor positions of position i within the translation (fall-through first, then target). */
  private successors(i: number): number[] {
    const f = this.fallThroughOf(i);
    const t = this.targetOf(i);
    if (f < 0) return t < 0 ? [] : [t];
    return t < 0 || t === f ? [f] : [t, f];
  }

  /**
   * Groups consecutive regions (in address order) into functions of at most `functionSize`
   * instructions. Within a function, control passes to a later region by a plain branch (the
   * function has an entry for each of its regions, through a br_table at its start, and guest
   * registers stay valid in locals); to an earlier one or another function by a tail call.
   * Fewer, bigger functions mean fewer transitions; the size limit keeps V8's optimizing compile
   * of each function fast (its cost grows faster than linearly).
   */
  private group(): void {
    this.funcOfRegion = new Int32Array(this.regionEntry.length);
    this.funcRegions = [];
    let size = Infinity;
    for (let r = 0; r < this.regionEntry.length; r++) {
      const n = this.regionOrder[r].length;
      if (size + n > this.functionSize) {
        this.funcRegions.push([]);
        size = 0;
      }
      this.funcRegions[this.funcRegions.length - 1].push(r);
      this.funcOfRegion[r] = this.funcRegions.length - 1;
      size += n;
    }
    this.fpos = new Int32Array(this.starts.length);
    this.funcOrder = this.funcRegions.map((regions) => {
      const order = regions.flatMap((r) => this.regionOrder[r]);
      order.forEach((i, k) => (this.fpos[i] = k));
      return order;
    });

    // Wasm structure, in positions of the function's order: a block for every entry, closing
    // at it (the br_table and forward branches from other regions land there); a loop over
    // [entry, last back edge] for a region whose entry has back edges; a block closing at every
    // other node jumped to forward (except by falling through to the next node laid out).
    const n = this.starts.length;
    this.blockAt = new Array(n);
    this.loopAt = new Array(n);
    for (const e of this.regionEntry) this.blockAt[e] = { start: -1, close: this.fpos[e], loop: false, label: 0 };
    for (let r = 0; r < this.regionOrder.length; r++) {
      const order = this.regionOrder[r];
      const e = order[0];
      for (const i of order) {
        for (const j of this.successors(i)) {
          if (this.regionOf[j] !== r) continue;
          if (j === e) {
            const loop = (this.loopAt[e] ??= { start: this.fpos[e], close: 0, loop: true, label: 0 });
            loop.close = Math.max(loop.close, this.fpos[i] + 1);
          } else if (this.fpos[j] !== this.fpos[i] + 1 || j !== this.fallThroughOf(i)) {
            const block = (this.blockAt[j] ??= { start: this.fpos[i], close: this.fpos[j], loop: false, label: 0 });
            block.start = Math.min(block.start, this.fpos[i]);
          }
        }
      }
    }
  }

  /**
   * The wasm blocks and loops of function f in opening order. A block that starts inside
   * another interval and closes after it must open where that one opens; going by closing
   * position, every interval closing earlier is final when a block is looked at. Loops open at
   * their entry and never move: nothing enters a region but at its entry.
   */
  private intervalsOf(f: number): Interval[] {
    const order = this.funcOrder[f];
    const list: Interval[] = [];
    for (const i of order) {
      const b = this.blockAt[i];
      if (b) list.push(b);
      const l = this.loopAt[i];
      if (l) list.push(l);
    }
    list.sort((x, y) => x.close - y.close);
    const minStartClosingAt = new Int32Array(order.length + 1).fill(order.length + 1);
    for (const iv of list) {
      if (!iv.loop) {
        let s = iv.start;
        for (;;) {
          let m = s;
          for (let p = Math.max(s + 1, 0); p < iv.close; p++) if (minStartClosingAt[p] < m) m = minStartClosingAt[p];
          if (m === s) break;
          s = m;
        }
        iv.start = s;
      }
      if (iv.start < minStartClosingAt[iv.close]) minStartClosingAt[iv.close] = iv.start;
    }
    // By start, the longer (outer) first; a block outside a loop of equal extent.
    list.sort((x, y) => x.start - y.start || y.close - x.close || Number(x.loop) - Number(y.loop));
    return list;
  }

  /** The wasm label that takes control from position i to position t (same function), if any. */
  private labelFor(i: number, t: number): Label | undefined {
    if (this.regionOf[t] === this.regionOf[i]) {
      return this.isEntry(t) ? this.loopAt[t]!.label : this.blockAt[t]!.label;
    }
    if (this.funcOfRegion[this.regionOf[t]] === this.funcOfRegion[this.regionOf[i]] && this.fpos[t] > this.fpos[i]) {
      return this.blockAt[t]!.label; // a later region's entry
    }
    return undefined;
  }

  // ---- 3. segments and budget bounds ----------------------------------------------------------
  private segments(): void {
    const n = this.starts.length;
    this.segLeft = new Int32Array(n);
    this.segStartHere = new Uint8Array(n);
    this.runBound = new Int32Array(n);
    for (const order of this.funcOrder) {
      // A segment: consecutive nodes of the order, each falling through to the next, no label.
      let count = 0;
      for (let k = order.length - 1; k >= 0; k--) {
        const i = order[k];
        const kind = kindOf(this.words[i] & 0xff);
        const next = k + 1 < order.length ? order[k + 1] : -1;
        const endsAfter =
          next < 0 || kind === Kind.Branch || kind === Kind.Jal || kind === Kind.Jalr || kind === Kind.Exit ||
          this.fallThroughOf(i) !== next || this.isLabel(next);
        if (endsAfter) count = 0;
        this.segLeft[i] = ++count;
      }
      for (let k = 0; k < order.length; k++) this.segStartHere[order[k]] = k === 0 || this.segLeft[order[k - 1]] === 1 ? 1 : 0;
    }
    for (const order of this.regionOrder) {
      // The budget is checked at the entry only: there the function leaves unless the budget
      // covers the longest run of instructions possible before it leaves or comes back to the
      // entry; the region without its back edges is a DAG, laid out in topological order.
      for (let k = order.length - 1; k >= 0; k--) {
        const i = order[k];
        let longest = 0;
        for (const j of this.successors(i)) {
          if (this.regionOf[j] === this.regionOf[i] && j !== order[0]) longest = Math.max(longest, this.runBound[j]);
        }
        this.runBound[i] = 1 + longest;
      }
    }
  }
  /** Control arrives at position i other than by falling through from the node laid out before it. */
  private isLabel(i: number): boolean {
    return this.isEntry(i) || this.blockAt[i] !== undefined;
  }

  // ---- 4. code --------------------------------------------------------------------------------
  private emitFunction(f: number): TranslatedFunction {
    const { c, starts, words, page } = this;
    const order = this.funcOrder[f];
    const regions = this.funcRegions[f];
    c.resetCode();

    this.regLocal = new Int32Array(32).fill(-1);
    let regCount = 0;
    for (const i of order) {
      const use = regUse(words[i] & 0xff, words[i]);
      for (let reg = 1; reg < 32; reg++) {
        if ((((use.reads | use.writes) >>> reg) & 1) !== 0 && this.regLocal[reg] < 0) this.regLocal[reg] = FIRST_REG_LOCAL + regCount++;
      }
    }
    let reads = 0;
    for (const r of regions) reads |= this.liveIn(r);

    // prologue: registers are written through to memory, so a function loads only those its
    // regions may read before writing them
    c.get(L_PC);
    c.i64Const(-4096);
    c.op(Op.i64_and);
    c.set(L_VBASE);
    c.i32Const(0);
    c.mem(Op.i32_load, STATE + L.S_DATA_TLB);
    c.set(L_TLB);
    for (let reg = 1; reg < 32; reg++) {
      if (((reads >>> reg) & 1) === 0) continue;
      c.i32Const(0);
      c.mem(Op.i64_load, STATE + L.S_X + reg * 8);
      c.set(this.regLocal[reg]);
    }

    this.exitLabel = c.block();
    const defaultLabel = c.block();
    const intervals = this.intervalsOf(f);
    let next = 0;
    const open: Interval[] = [];
    const openUpTo = (k: number) => {
      while (next < intervals.length && intervals[next].start <= k) {
        const iv = intervals[next++];
        iv.label = iv.loop ? c.loop() : c.block();
        open.push(iv);
      }
    };
    // The entries' blocks, then the br_table over the parcels from the first entry to the last.
    openUpTo(-1);
    const entries = regions.map((r) => this.starts[this.regionEntry[r]]);
    const first = Math.min(...entries) >> 1;
    const last = Math.max(...entries) >> 1;
    const table: Label[] = [];
    for (let p = first; p <= last; p++) {
      const e = this.pos[p];
      const iv = e >= 0 && this.isEntry(e) && this.funcOfRegion[this.regionOf[e]] === f ? this.blockAt[e] : undefined;
      table.push(iv ? iv.label : defaultLabel);
    }
    c.get(L_PC);
    c.op(Op.i32_wrap_i64);
    c.i32Const(0xfff);
    c.op(Op.i32_and);
    c.i32Const(1);
    c.op(Op.i32_shr_u);
    if (first !== 0) {
      c.i32Const(first);
      c.op(Op.i32_sub);
    }
    c.brTable(table, defaultLabel);
    for (let k = 0; k < order.length; k++) {
      while (open.length && open[open.length - 1].close === k) {
        open.pop();
        c.end();
      }
      for (const iv of open) if (iv.close <= k) throw new Error("jit: improperly nested control flow");
      openUpTo(k);
      const i = order[k];
      this.emitInstruction(i, starts[i], words[i], page.imm(starts[i]));
    }
    while (open.length && open[open.length - 1].close === order.length) {
      open.pop();
      c.end();
    }
    if (open.length) throw new Error("jit: unclosed control flow");
    c.op(Op.unreachable);
    c.end(); // $default: pc is no entry of this function (cannot happen: the dispatcher knows)
    c.get(L_PC);
    c.get(L_LEFT);
    c.get(L_BUDGET0);
    c.returnCall(FN_CHAIN);
    c.end(); // $exit: pc = vbase + offset, retired = budget0 - left - unretired, | INTERPRET
    c.i32Const(0);
    c.get(L_VBASE);
    c.get(L_CODE);
    c.i32Const(EXIT_OFFSET_MASK);
    c.op(Op.i32_and);
    c.op(Op.i64_extend_i32_u);
    c.op(Op.i64_add);
    c.mem(Op.i64_store, STATE + L.S_PC);
    c.get(L_BUDGET0);
    c.get(L_LEFT);
    c.op(Op.i32_sub);
    c.get(L_CODE);
    c.i32Const(EXIT_UNRETIRED_SHIFT);
    c.op(Op.i32_shr_u);
    c.i32Const(EXIT_UNRETIRED_MASK);
    c.op(Op.i32_and);
    c.op(Op.i32_sub);
    c.get(L_CODE);
    c.i32Const(EXIT_INTERPRET);
    c.op(Op.i32_and);
    c.i32Const(EXIT_INTERPRET_TO_RET);
    c.op(Op.i32_shl);
    c.op(Op.i32_or);

    return {
      entries,
      index: this.firstIndex + f,
      body: c.finish(),
      locals: [
        { count: 3, type: ValType.i32 }, // e, tlb, code
        { count: 5, type: ValType.i64 }, // vbase, npc, va, t, t2
        { count: regCount, type: ValType.i64 },
      ],
    };
  }

  /** The page's dispatcher function: its index follows the regions'. */
  private get dispatcherIndex(): number {
    return this.firstIndex + this.funcRegions.length;
  }

  /**
   * The page's dispatcher (pc, left, budget0): tail-calls the region starting at pc, or the
   * chaining function if none does. JALR with a target in the same page (returns, switch
   * tables) comes here, saving the chaining function's lookups.
   */
  private emitDispatcher(): TranslatedFunction {
    const c = this.c;
    c.resetCode();
    const first = this.starts[this.regionEntry[0]] >> 1;
    const last = this.starts[this.regionEntry[this.regionEntry.length - 1]] >> 1;
    const outer = c.block();
    const blocks: Label[] = [];
    const regionAt = new Map<number, number>();
    this.regionEntry.forEach((pos, r) => regionAt.set(this.starts[pos] >> 1, r));
    for (let r = this.regionEntry.length - 1; r >= 0; r--) blocks[r] = c.block();
    const table: Label[] = [];
    for (let p = first; p <= last; p++) {
      const r = regionAt.get(p);
      table.push(r === undefined ? outer : blocks[r]);
    }
    c.get(L_PC);
    c.op(Op.i32_wrap_i64);
    c.i32Const(0xfff);
    c.op(Op.i32_and);
    c.i32Const(1);
    c.op(Op.i32_shr_u);
    if (first !== 0) {
      c.i32Const(first);
      c.op(Op.i32_sub);
    }
    c.brTable(table, outer);
    for (let r = 0; r < this.regionEntry.length; r++) {
      c.end();
      c.get(L_PC);
      c.get(L_LEFT);
      c.get(L_BUDGET0);
      c.returnCall(this.firstIndex + this.funcOfRegion[r]);
    }
    c.end();
    c.get(L_PC);
    c.get(L_LEFT);
    c.get(L_BUDGET0);
    c.returnCall(FN_CHAIN);
    return { entries: [], index: this.dispatcherIndex, body: c.finish(), locals: [] };
  }

  /** Registers read before being written on some path from the region's entry (liveness). */
  private liveIn(r: number): number {
    const order = this.regionOrder[r];
    const live = new Int32Array(order.length);
    // Reverse topological order; a second pass carries what the back edges to the entry need.
    for (let pass = 0; pass < 2; pass++) {
      for (let k = order.length - 1; k >= 0; k--) {
        const i = order[k];
        let out = 0;
        for (const j of this.successors(i)) if (this.regionOf[j] === r) out |= live[this.rank[j]];
        const use = regUse(this.words[i] & 0xff, this.words[i]);
        live[k] = use.reads | (out & ~use.writes);
      }
    }
    return live[0];
  }

  // ---- emission helpers ------------------------------------------------------------------------
  private getX(r: number): void {
    if (r === 0) this.c.i64Const(0);
    else this.c.get(this.regLocal[r]);
  }
  /** Before computing a value for rd: its store's address operand (registers are written through). */
  private beginRd(rd: number): void {
    if (rd !== 0) this.c.i32Const(0);
  }
  /** After: the value on the stack goes to rd's local and its memory slot (x0: dropped). */
  private endRd(rd: number): void {
    const c = this.c;
    if (rd === 0) {
      c.op(Op.drop);
      return;
    }
    c.tee(this.regLocal[rd]);
    c.mem(Op.i64_store, STATE + L.S_X + rd * 8);
  }
  /**
   * Leaves with pc = vbase + offset; `unretired` of the instructions already taken from $left
   * did not retire; `interpret` marks an exit in front of an instruction for the interpreter.
   * Offsets within the page share the exit code at the function's end (a few bytes each).
   */
  private exitTo(offset: number, unretired: number, interpret: boolean): void {
    const c = this.c;
    if (offset >= 0 && offset <= EXIT_OFFSET_MASK && unretired <= EXIT_UNRETIRED_MASK) {
      c.i32Const(offset | (unretired << EXIT_UNRETIRED_SHIFT) | (interpret ? EXIT_INTERPRET : 0));
      c.set(L_CODE);
      c.br(this.exitLabel);
      return;
    }
    c.i32Const(0);
    c.get(L_VBASE);
    if (offset !== 0) {
      c.i64Const(offset);
      c.op(Op.i64_add);
    }
    c.mem(Op.i64_store, STATE + L.S_PC);
    c.get(L_BUDGET0);
    c.get(L_LEFT);
    c.op(Op.i32_sub);
    if (unretired !== 0) {
      c.i32Const(unretired);
      c.op(Op.i32_sub);
    }
    if (interpret) {
      c.i32Const(L.JIT_RET_INTERPRET);
      c.op(Op.i32_or);
    }
    c.op(Op.return);
  }
  /** Control goes to page offset `target` from the instruction at position i. */
  private jumpTo(target: number, i: number): void {
    const c = this.c;
    const t = this.posOf(target);
    const label = t >= 0 ? this.labelFor(i, t) : undefined;
    if (label !== undefined) {
      c.br(label);
      return;
    }
    c.get(L_VBASE);
    if (target !== 0) {
      c.i64Const(target);
      c.op(Op.i64_add);
    }
    c.get(L_LEFT);
    c.get(L_BUDGET0);
    // Another region of this page (an entry): a direct tail call to its function. Anything
    // else: the chaining function finds the target's translation, if any.
    c.returnCall(t >= 0 ? this.firstIndex + this.funcOfRegion[this.regionOf[t]] : FN_CHAIN);
  }

  private emitInstruction(i: number, off: number, w: number, imm: number): void {
    const c = this.c;
    const op = w & 0xff;
    const len = lenOf(w);
    const rd = rdOf(w), rs1 = rs1Of(w), rs2 = rs2Of(w);
    const left = this.segLeft[i];
    if (this.isEntry(i)) {
      // Leave (for the interpreter to go on) unless the budget covers everything up to the next entry.
      c.get(L_LEFT);
      c.i32Const(this.runBound[i]);
      c.op(Op.i32_lt_s);
      c.if();
      this.exitTo(off, 0, true);
      c.end();
    }
    if (this.segStartHere[i]) {
      c.get(L_LEFT);
      c.i32Const(left);
      c.op(Op.i32_sub);
      c.set(L_LEFT);
    }
    // Exits in front of this instruction give back the rest of the segment including it; exits
    // after it give back the rest after it.
    const x: Ctx = { i, off, len, imm, rd, rs1, rs2, before: left, after: left - 1 };

    switch (op) {
      case O.OP_LI: this.beginRd(rd); c.i64Const(imm); this.endRd(rd); break;
      case O.OP_MV: this.beginRd(rd); this.getX(rs1); this.endRd(rd); break;
      case O.OP_AUIPC:
        this.beginRd(rd);
        c.get(L_VBASE);
        c.i64Const(off + imm);
        c.op(Op.i64_add);
        this.endRd(rd);
        break;
      case O.OP_ADDI: this.binaryImm(x, Op.i64_add); break;
      case O.OP_SLTI: this.compare(x, Op.i64_lt_s, true); break;
      case O.OP_SLTIU: this.compare(x, Op.i64_lt_u, true); break;
      case O.OP_XORI: this.binaryImm(x, Op.i64_xor); break;
      case O.OP_ORI: this.binaryImm(x, Op.i64_or); break;
      case O.OP_ANDI: this.binaryImm(x, Op.i64_and); break;
      case O.OP_SLLI: this.binaryImm(x, Op.i64_shl); break;
      case O.OP_SRLI: this.binaryImm(x, Op.i64_shr_u); break;
      case O.OP_SRAI: this.binaryImm(x, Op.i64_shr_s); break;
      case O.OP_ADDIW: this.binaryImmW(x, Op.i32_add); break;
      case O.OP_SLLIW: this.binaryImmW(x, Op.i32_shl); break;
      case O.OP_SRLIW: this.binaryImmW(x, Op.i32_shr_u); break;
      case O.OP_SRAIW: this.binaryImmW(x, Op.i32_shr_s); break;
      case O.OP_ADD: this.binary(x, Op.i64_add); break;
      case O.OP_SUB: this.binary(x, Op.i64_sub); break;
      case O.OP_SLL: this.binary(x, Op.i64_shl); break; // wasm shifts count modulo 64, as RISC-V does
      case O.OP_SLT: this.compare(x, Op.i64_lt_s, false); break;
      case O.OP_SLTU: this.compare(x, Op.i64_lt_u, false); break;
      case O.OP_XOR: this.binary(x, Op.i64_xor); break;
      case O.OP_SRL: this.binary(x, Op.i64_shr_u); break;
      case O.OP_SRA: this.binary(x, Op.i64_shr_s); break;
      case O.OP_OR: this.binary(x, Op.i64_or); break;
      case O.OP_AND: this.binary(x, Op.i64_and); break;
      case O.OP_ADDW: this.binaryW(x, Op.i32_add); break;
      case O.OP_SUBW: this.binaryW(x, Op.i32_sub); break;
      case O.OP_SLLW: this.binaryW(x, Op.i32_shl); break; // i32 shifts count modulo 32
      case O.OP_SRLW: this.binaryW(x, Op.i32_shr_u); break;
      case O.OP_SRAW: this.binaryW(x, Op.i32_shr_s); break;
      case O.OP_MUL: this.binary(x, Op.i64_mul); break;
      case O.OP_MULH: case O.OP_MULHSU: case O.OP_MULHU: this.mulHigh(x, op); break;
      case O.OP_MULW: this.binaryW(x, Op.i32_mul); break;
      // Division by zero and overflow have defined results in RISC-V but trap in wasm.
      case O.OP_DIV: this.divide(x, Op.i64_div_s, DIV_ZERO_ALL_ONES, DIV_MINUS_ONE_NEGATE); break;
      case O.OP_DIVU: this.divide(x, Op.i64_div_u, DIV_ZERO_ALL_ONES, DIV_NONE); break;
      case O.OP_REM: this.divide(x, Op.i64_rem_s, DIV_ZERO_DIVIDEND, DIV_MINUS_ONE_ZERO); break;
      case O.OP_REMU: this.divide(x, Op.i64_rem_u, DIV_ZERO_DIVIDEND, DIV_NONE); break;
      case O.OP_DIVW: this.divideW(x, Op.i32_div_s, DIV_ZERO_ALL_ONES, DIV_MINUS_ONE_NEGATE); break;
      case O.OP_DIVUW: this.divideW(x, Op.i32_div_u, DIV_ZERO_ALL_ONES, DIV_NONE); break;
      case O.OP_REMW: this.divideW(x, Op.i32_rem_s, DIV_ZERO_DIVIDEND, DIV_MINUS_ONE_ZERO); break;
      case O.OP_REMUW: this.divideW(x, Op.i32_rem_u, DIV_ZERO_DIVIDEND, DIV_NONE); break;

      case O.OP_BEQ: case O.OP_BNE: case O.OP_BLT: case O.OP_BGE: case O.OP_BLTU: case O.OP_BGEU:
      case O.OP_BEQZ: case O.OP_BNEZ: {
        this.getX(rs1);
        if (op === O.OP_BEQZ) c.op(Op.i64_eqz);
        else if (op === O.OP_BNEZ) {
          c.op(Op.i64_eqz);
          c.op(Op.i32_eqz);
        } else {
          this.getX(rs2);
          c.op(BRANCH_COMPARE[op - O.OP_BEQ]);
        }
        const target = off + imm;
        const t = this.posOf(target);
        if (target === off + len) {
          c.op(Op.drop); // a branch to the next instruction: both ways lead there
        } else if (t >= 0 && this.labelFor(i, t) !== undefined) {
          c.brIf(this.labelFor(i, t)!);
        } else {
          c.if();
          this.jumpTo(target, i);
          c.end();
        }
        break;
      }
      case O.OP_JAL: case O.OP_J:
        if (op === O.OP_JAL && rd !== 0) {
          this.beginRd(rd);
          c.get(L_VBASE);
          c.i64Const(off + len);
          c.op(Op.i64_add);
          this.endRd(rd);
        }
        this.jumpTo(off + imm, i);
        break;
      case O.OP_JALR:
        this.getX(rs1);
        if (imm !== 0) {
          c.i64Const(imm);
          c.op(Op.i64_add);
        }
        c.i64Const(-2);
        c.op(Op.i64_and);
        c.set(L_NPC); // before writing rd, which may be rs1
        if (rd !== 0) {
          this.beginRd(rd);
          c.get(L_VBASE);
          c.i64Const(off + len);
          c.op(Op.i64_add);
          this.endRd(rd);
        }
        // A target in this page: the page's dispatcher; elsewhere: the chaining function.
        c.get(L_NPC);
        c.get(L_VBASE);
        c.op(Op.i64_sub);
        c.i64Const(4096);
        c.op(Op.i64_lt_u);
        c.if();
        c.get(L_NPC);
        c.get(L_LEFT);
        c.get(L_BUDGET0);
        c.returnCall(this.dispatcherIndex);
        c.end();
        c.get(L_NPC);
        c.get(L_LEFT);
        c.get(L_BUDGET0);
        c.returnCall(FN_CHAIN);
        break;

      case O.OP_LB: this.load(x, 1, Op.i64_load8_s, false); break;
      case O.OP_LH: this.load(x, 2, Op.i64_load16_s, false); break;
      case O.OP_LW: this.load(x, 4, Op.i64_load32_s, false); break;
      case O.OP_LD: this.load(x, 8, Op.i64_load, false); break;
      case O.OP_LBU: this.load(x, 1, Op.i64_load8_u, false); break;
      case O.OP_LHU: this.load(x, 2, Op.i64_load16_u, false); break;
      case O.OP_LWU: this.load(x, 4, Op.i64_load32_u, false); break;
      case O.OP_SB: this.store(x, 1, Op.i64_store8, false); break;
      case O.OP_SH: this.store(x, 2, Op.i64_store16, false); break;
      case O.OP_SW: this.store(x, 4, Op.i64_store32, false); break;
      case O.OP_SD: this.store(x, 8, Op.i64_store, false); break;
      case O.OP_FLW: this.requireFp(x); this.load(x, 4, Op.i64_load32_u, true); break;
      case O.OP_FLD: this.requireFp(x); this.load(x, 8, Op.i64_load, true); break;
      case O.OP_FSW: this.requireFp(x); this.store(x, 4, Op.i64_store32, true); break;
      case O.OP_FSD: this.requireFp(x); this.store(x, 8, Op.i64_store, true); break;

      default: {
        const kind = kindOf(op);
        if (kind === Kind.Nop) break;
        if (kind === Kind.Amo) {
          c.i32Const(w);
          this.getX(rs1);
          this.getX(rs2);
          c.call(FN_AMO);
          c.set(L_T);
          this.checkStatus(x);
          this.beginRd(rd);
          c.get(L_T);
          this.endRd(rd);
          break;
        }
        if (kind === Kind.Fp) {
          if (!this.fpInline(x, op, w)) this.fpHelper(x, op, w);
          break;
        }
        // System instruction, CSR access, illegal or page-straddling instruction: the interpreter's.
        this.exitTo(off, x.before, true);
        return;
      }
    }

    // Fall through to the next instruction in memory unless it is the next one laid out here.
    if (fallsThrough(op)) {
      const nextOff = off + len;
      const order = this.funcOrder[this.funcOfRegion[this.regionOf[i]]];
      const laidOutNext = this.fpos[i] + 1 < order.length ? order[this.fpos[i] + 1] : -1;
      if (laidOutNext < 0 || this.starts[laidOutNext] !== nextOff) this.jumpTo(nextOff, i);
    }
  }

  private binary(x: Ctx, wasmOp: Op): void {
    this.beginRd(x.rd);
    this.getX(x.rs1);
    this.getX(x.rs2);
    this.c.op(wasmOp);
    this.endRd(x.rd);
  }
  private binaryImm(x: Ctx, wasmOp: Op): void {
    this.beginRd(x.rd);
    this.getX(x.rs1);
    this.c.i64Const(x.imm);
    this.c.op(wasmOp);
    this.endRd(x.rd);
  }
  private wrap(r: number): void {
    this.getX(r);
    this.c.op(Op.i32_wrap_i64);
  }
  private binaryW(x: Ctx, wasmOp: Op): void {
    this.beginRd(x.rd);
    this.wrap(x.rs1);
    this.wrap(x.rs2);
    this.c.op(wasmOp);
    this.c.op(Op.i64_extend_i32_s);
    this.endRd(x.rd);
  }
  private binaryImmW(x: Ctx, wasmOp: Op): void {
    this.beginRd(x.rd);
    this.wrap(x.rs1);
    this.c.i32Const(x.imm);
    this.c.op(wasmOp);
    this.c.op(Op.i64_extend_i32_s);
    this.endRd(x.rd);
  }
  private compare(x: Ctx, wasmOp: Op, withImm: boolean): void {
    this.beginRd(x.rd);
    this.getX(x.rs1);
    if (withImm) this.c.i64Const(x.imm);
    else this.getX(x.rs2);
    this.c.op(wasmOp);
    this.c.op(Op.i64_extend_i32_u);
    this.endRd(x.rd);
  }
  /** MULH, MULHSU, MULHU: wasm has no 64x64->128 multiply, so 32-bit halves. */
  private mulHigh(x: Ctx, op: number): void {
    const c = this.c;
    const lo = (r: number) => {
      this.getX(r);
      c.i64Const(0xffffffff);
      c.op(Op.i64_and);
    };
    const hi = (r: number) => {
      this.getX(r);
      c.i64Const(32);
      c.op(Op.i64_shr_u);
    };
    const a = x.rs1, b = x.rs2;
    this.beginRd(x.rd);
    lo(a); hi(b); c.op(Op.i64_mul); c.set(L_T); // p1 = aLo * bHi
    hi(a); lo(b); c.op(Op.i64_mul); c.set(L_T2); // p2 = aHi * bLo
    // mid = (aLo * bLo >>> 32) + (p1 & mask) + (p2 & mask); result = aHi * bHi + (p1 >>> 32) + (p2 >>> 32) + (mid >>> 32)
    lo(a); lo(b); c.op(Op.i64_mul); c.i64Const(32); c.op(Op.i64_shr_u);
    c.get(L_T); c.i64Const(0xffffffff); c.op(Op.i64_and); c.op(Op.i64_add);
    c.get(L_T2); c.i64Const(0xffffffff); c.op(Op.i64_and); c.op(Op.i64_add);
    c.i64Const(32); c.op(Op.i64_shr_u);
    hi(a); hi(b); c.op(Op.i64_mul); c.op(Op.i64_add);
    c.get(L_T); c.i64Const(32); c.op(Op.i64_shr_u); c.op(Op.i64_add);
    c.get(L_T2); c.i64Const(32); c.op(Op.i64_shr_u); c.op(Op.i64_add);
    // signed corrections: mulh subtracts (a < 0 ? b : 0) and (b < 0 ? a : 0); mulhsu only the first
    if (op === O.OP_MULH || op === O.OP_MULHSU) {
      this.getX(a); c.i64Const(63); c.op(Op.i64_shr_s); this.getX(b); c.op(Op.i64_and); c.op(Op.i64_sub);
    }
    if (op === O.OP_MULH) {
      this.getX(b); c.i64Const(63); c.op(Op.i64_shr_s); this.getX(a); c.op(Op.i64_and); c.op(Op.i64_sub);
    }
    this.endRd(x.rd);
  }
  /** rd = rs2 == 0 ? (all ones | rs1) : rs2 == -1 ? (-rs1 | 0) : rs1 op rs2 */
  private divide(x: Ctx, wasmOp: Op, zero: number, minusOne: number): void {
    const c = this.c;
    this.beginRd(x.rd);
    this.getX(x.rs2);
    c.op(Op.i64_eqz);
    c.if(ValType.i64);
    if (zero === DIV_ZERO_ALL_ONES) c.i64Const(-1);
    else this.getX(x.rs1);
    c.else();
    if (minusOne !== DIV_NONE) {
      this.getX(x.rs2);
      c.i64Const(-1);
      c.op(Op.i64_eq);
      c.if(ValType.i64);
      if (minusOne === DIV_MINUS_ONE_NEGATE) {
        c.i64Const(0);
        this.getX(x.rs1);
        c.op(Op.i64_sub);
      } else c.i64Const(0);
      c.else();
    }
    this.getX(x.rs1);
    this.getX(x.rs2);
    c.op(wasmOp);
    if (minusOne !== DIV_NONE) c.end();
    c.end();
    this.endRd(x.rd);
  }
  /** The 32-bit divisions: operands are the low words, the result is sign-extended. */
  private divideW(x: Ctx, wasmOp: Op, zero: number, minusOne: number): void {
    const c = this.c;
    this.beginRd(x.rd);
    this.wrap(x.rs2);
    c.op(Op.i32_eqz);
    c.if(ValType.i64);
    if (zero === DIV_ZERO_ALL_ONES) c.i64Const(-1);
    else {
      this.wrap(x.rs1);
      c.op(Op.i64_extend_i32_s);
    }
    c.else();
    if (minusOne !== DIV_NONE) {
      this.wrap(x.rs2);
      c.i32Const(-1);
      c.op(Op.i32_eq);
      c.if(ValType.i64);
      if (minusOne === DIV_MINUS_ONE_NEGATE) {
        c.i32Const(0);
        this.wrap(x.rs1);
        c.op(Op.i32_sub);
        c.op(Op.i64_extend_i32_s);
      } else c.i64Const(0);
      c.else();
    }
    this.wrap(x.rs1);
    this.wrap(x.rs2);
    c.op(wasmOp);
    c.op(Op.i64_extend_i32_s);
    if (minusOne !== DIV_NONE) c.end();
    c.end();
    this.endRd(x.rd);
  }

  /** An F/D computation by the core's softfloat (operands in memory, which registers are written through to). */
  private fpHelper(x: Ctx, op: number, w: number): void {
    const c = this.c;
    c.i32Const(w);
    c.call(FN_FP);
    c.if();
    this.exitTo(x.off, x.before, true); // illegal here (FS off, bad rounding mode): the interpreter traps
    c.end();
    if (FP_WRITES_X.has(op) && x.rd !== 0) {
      c.i32Const(0);
      c.mem(Op.i64_load, STATE + L.S_X + x.rd * 8);
      c.set(this.regLocal[x.rd]);
    }
  }

  private fReg(r: number, type: Op.i64_load | Op.f64_load | Op.i64_load32_s): void {
    this.c.i32Const(0);
    this.c.mem(type, STATE + L.S_F + r * 8);
  }

  /**
   * FP operations that wasm does exactly (bit moves, sign injection, compares of non-NaN
   * doubles, integer-to-double conversions that need no rounding), inline; the other cases of
   * the same instructions fall back to the core's softfloat, which also raises the flags.
   * Returns false for instructions left to the helper entirely.
   */
  private fpInline(x: Ctx, op: number, w: number): boolean {
    const c = this.c;
    const SIGN = -0x8000_0000_0000_0000n;
    switch (op) {
      case O.OP_FMV_X_D: case O.OP_FMV_X_W:
        this.requireFp(x);
        this.beginRd(x.rd);
        this.fReg(x.rs1, op === O.OP_FMV_X_D ? Op.i64_load : Op.i64_load32_s);
        this.endRd(x.rd);
        return true;
      case O.OP_FMV_D_X: case O.OP_FMV_W_X:
        this.requireFp(x);
        c.i32Const(0);
        this.getX(x.rs1);
        if (op === O.OP_FMV_W_X) {
          c.i64Const(0xffffffff);
          c.op(Op.i64_and);
          c.i64Const(NAN_BOX);
          c.op(Op.i64_or);
        }
        c.mem(Op.i64_store, STATE + L.S_F + x.rd * 8);
        this.markFpDirty();
        return true;
      case O.OP_FSGNJ_D: case O.OP_FSGNJN_D: case O.OP_FSGNJX_D:
        this.requireFp(x);
        c.i32Const(0);
        this.fReg(x.rs1, Op.i64_load);
        if (op !== O.OP_FSGNJX_D) {
          c.i64Const(~SIGN);
          c.op(Op.i64_and);
        }
        this.fReg(x.rs2, Op.i64_load);
        if (op === O.OP_FSGNJN_D) {
          c.i64Const(-1);
          c.op(Op.i64_xor);
        }
        c.i64Const(SIGN);
        c.op(Op.i64_and);
        c.op(op === O.OP_FSGNJX_D ? Op.i64_xor : Op.i64_or);
        c.mem(Op.i64_store, STATE + L.S_F + x.rd * 8);
        this.markFpDirty();
        return true;
      case O.OP_FEQ_D: case O.OP_FLT_D: case O.OP_FLE_D: {
        // NaN operands raise flags (FLT/FLE always, FEQ for signaling ones): the helper does those.
        this.requireFp(x);
        this.beginRd(x.rd);
        this.fReg(x.rs1, Op.f64_load);
        this.fReg(x.rs1, Op.f64_load);
        c.op(Op.f64_eq);
        this.fReg(x.rs2, Op.f64_load);
        this.fReg(x.rs2, Op.f64_load);
        c.op(Op.f64_eq);
        c.op(Op.i32_and);
        c.if(ValType.i64);
        this.fReg(x.rs1, Op.f64_load);
        this.fReg(x.rs2, Op.f64_load);
        c.op(op === O.OP_FEQ_D ? Op.f64_eq : op === O.OP_FLT_D ? Op.f64_lt : Op.f64_le);
        c.op(Op.i64_extend_i32_u);
        c.else();
        this.fpHelper(x, op, w);
        if (x.rd !== 0) c.get(this.regLocal[x.rd]);
        else c.i64Const(0);
        c.end();
        this.endRd(x.rd);
        return true;
      }
      case O.OP_FCVT_D_W: case O.OP_FCVT_D_WU: case O.OP_FCVT_D_L: case O.OP_FCVT_D_LU: {
        this.requireFp(x);
        this.requireRoundingMode(x, w);
        const wide = op === O.OP_FCVT_D_L || op === O.OP_FCVT_D_LU;
        if (wide) {
          // exact (no rounding, no flags) when |value| <= 2^53 (unsigned: value <= 2^53)
          this.getX(x.rs1);
          if (op === O.OP_FCVT_D_L) {
            c.i64Const(2 ** 53);
            c.op(Op.i64_add);
            c.i64Const(2 ** 54);
          } else c.i64Const(2 ** 53);
          c.op(Op.i64_le_u);
          c.if();
        }
        c.i32Const(0);
        this.getX(x.rs1);
        if (!wide) c.op(Op.i32_wrap_i64);
        c.op(op === O.OP_FCVT_D_W ? Op.f64_convert_i32_s : op === O.OP_FCVT_D_WU ? Op.f64_convert_i32_u : op === O.OP_FCVT_D_L ? Op.f64_convert_i64_s : Op.f64_convert_i64_u);
        c.mem(Op.f64_store, STATE + L.S_F + x.rd * 8);
        this.markFpDirty();
        if (wide) {
          c.else();
          this.fpHelper(x, op, w);
          c.end();
        }
        return true;
      }
    }
    return false;
  }

  /** An instruction whose rounding-mode field says dynamic needs a valid frm, else it is illegal. */
  private requireRoundingMode(x: Ctx, w: number): void {
    if (((w >>> 28) & 7) !== 7) return; // static modes were validated by the decoder
    const c = this.c;
    c.i32Const(0);
    c.mem(Op.i32_load, STATE + L.S_FCSR);
    c.i32Const(5);
    c.op(Op.i32_shr_u);
    c.i32Const(7);
    c.op(Op.i32_and);
    c.i32Const(4);
    c.op(Op.i32_gt_u);
    c.if();
    this.exitTo(x.off, x.before, true);
    c.end();
  }

  /** After a helper call: a fault leaves in front of the instruction, an exit request after it. */
  private checkStatus(x: Ctx): void {
    const c = this.c;
    c.i32Const(0);
    c.mem(Op.i32_load, STATUS);
    c.tee(L_E);
    c.if();
    c.get(L_E);
    c.i32Const(L.JIT_STATUS_FAULT);
    c.op(Op.i32_eq);
    c.if();
    this.exitTo(x.off, x.before, true);
    c.end();
    // the access was done, but the core wants control back: complete the instruction, leave after it
    this.beginRd(x.rd);
    c.get(L_T);
    this.endRd(x.rd);
    this.exitTo(x.off + x.len, x.after, false);
    c.end();
  }
  /**
   * $va = x[rs1] + imm and $e = its data TLB entry; leaves "the TLB hits for all `size` bytes"
   * on the stack. Comparing the tag (the page number of the entry's page) with the page of the
   * access's last byte checks both at once: an access crossing into the next page looks that
   * page up at the first page's index, where its tag cannot be (tag & mask == index).
   */
  private tlbLookup(x: Ctx, tagOffset: number, size: number): void {
    const c = this.c;
    this.getX(x.rs1);
    if (x.imm !== 0) {
      c.i64Const(x.imm);
      c.op(Op.i64_add);
    }
    c.tee(L_VA);
    // entry = tlb + ((va >>> 12) & (TLB_ENTRIES - 1)) * 32
    c.op(Op.i32_wrap_i64);
    c.i32Const(7);
    c.op(Op.i32_shr_u);
    c.i32Const((L.TLB_ENTRIES - 1) << 5);
    c.op(Op.i32_and);
    c.get(L_TLB);
    c.op(Op.i32_add);
    c.tee(L_E);
    c.mem(Op.i64_load, tagOffset);
    c.get(L_VA);
    if (size > 1) {
      c.i64Const(size - 1);
      c.op(Op.i64_add);
    }
    c.i64Const(12);
    c.op(Op.i64_shr_u);
    c.op(Op.i64_eq);
  }
  /** wasm address = va + addend; the low 32 bits of both suffice. */
  private hostAddress(): void {
    const c = this.c;
    c.get(L_VA);
    c.op(Op.i32_wrap_i64);
    c.get(L_E);
    c.mem(Op.i32_load, 24);
    c.op(Op.i32_add);
  }
  /**
   * A load: inline on a TLB hit; otherwise (miss, MMIO, page crossing) the function leaves in
   * front of it and the interpreter performs it, filling the TLB for the next time.
   */
  private load(x: Ctx, size: number, fastOp: Op, fp: boolean): void {
    const c = this.c;
    if (fp) c.i32Const(0);
    else this.beginRd(x.rd);
    this.tlbLookup(x, 0, size);
    c.if(ValType.i64);
    this.hostAddress();
    c.mem(fastOp, 0);
    c.else();
    this.exitTo(x.off, x.before, true);
    c.end();
    if (!fp) {
      this.endRd(x.rd);
      return;
    }
    if (size === 4) {
      c.i64Const(NAN_BOX);
      c.op(Op.i64_or);
    }
    c.mem(Op.i64_store, STATE + L.S_F + x.rd * 8);
    this.markFpDirty();
  }
  private store(x: Ctx, size: number, storeOp: Op, fp: boolean): void {
    const c = this.c;
    this.tlbLookup(x, 8, size);
    c.if();
    this.hostAddress();
    if (fp) {
      c.i32Const(0);
      c.mem(Op.i64_load, STATE + L.S_F + x.rs2 * 8);
    } else this.getX(x.rs2);
    c.mem(storeOp, 0);
    c.else();
    this.exitTo(x.off, x.before, true);
    c.end();
  }
  /** FP loads and stores need mstatus.FS != Off, else the interpreter raises illegal-instruction. */
  private requireFp(x: Ctx): void {
    const c = this.c;
    c.i32Const(0);
    c.mem(Op.i64_load, STATE + L.S_MSTATUS);
    c.i64Const(MSTATUS_FS);
    c.op(Op.i64_and);
    c.op(Op.i64_eqz);
    c.if();
    this.exitTo(x.off, x.before, true);
    c.end();
  }
  private markFpDirty(): void {
    const c = this.c;
    c.i32Const(0);
    c.i32Const(0);
    c.mem(Op.i64_load, STATE + L.S_MSTATUS);
    c.i64Const(MSTATUS_FS_DIRTY_SD);
    c.op(Op.i64_or);
    c.mem(Op.i64_store, STATE + L.S_MSTATUS);
  }
}

interface Ctx {
  i: number;
  off: number;
  len: number;
  imm: number;
  rd: number;
  rs1: number;
  rs2: number;
  /** Instructions of the segment not retired when leaving in front of this instruction. */
  before: number;
  /** ... and when leaving right after it. */
  after: number;
}

// Exit codes (exitTo): page offset (up to 4096, the page end), instructions not retired, interpret.
const EXIT_OFFSET_MASK = 0x1fff;
const EXIT_UNRETIRED_SHIFT = 13;
const EXIT_UNRETIRED_MASK = 0x7ff;
const EXIT_INTERPRET = 1 << 24;
const EXIT_INTERPRET_TO_RET = 6; // EXIT_INTERPRET << 6 == JIT_RET_INTERPRET

const DIV_ZERO_ALL_ONES = 0;
const DIV_ZERO_DIVIDEND = 1;
const DIV_NONE = 0;
const DIV_MINUS_ONE_NEGATE = 1;
const DIV_MINUS_ONE_ZERO = 2;
