// The page emitter: lays out a page's analysed code (control-flow.ts) as wasm functions, one per
// group of regions plus the page's dispatcher, and joins them: branches within a function, tail
// calls between functions and pages, and the shared exit to the interpreter. Each instruction's
// own code comes from instruction selection (select.ts).
//
// Going to an earlier region of the same function branches back to the function's entry
// br_table (a loop around it) with $pc set; to a region of another function is a tail call; to another page, a
// tail call to the chaining function (jit.ts), which finds the target's translation the way the
// interpreter would (fetch TLB, page map, pool slot) and tail-calls it through the core's table,
// or returns to the interpreter. JALR within the page goes back to the function's br_table, and
// from there, when the target is no entry of the function, to the page's dispatcher.
//
//   (func (param $pc i64) (param $left i32) (param $budget0 i32) (result i32)
//     prologue: $vbase = $pc & ~0xfff; $tlb = data TLB table; registers read -> i64 locals
//     block $exit
//       block $default
//         loop $dispatch                       an earlier entry or JALR: $pc = it, br $dispatch
//           block $E(last) ... block $E0       one wasm block per entry, ending at the entry
//             br_table (pc) -> $E.. or $default
//           ...regions...
//         end
//       end     $default: not an entry here: the page's dispatcher
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
// Functions return the number of instructions retired (budget0 - left); an exit in front of an
// instruction the interpreter must execute itself (system instructions, a faulting or unusual
// access, an entry the budget cannot cover) also sets JIT_RET_INTERPRET, so run(budget) never
// retires more than asked and instret stays exact. Faults are never raised here: the
// interpreter re-executes the instruction, faults the same way and takes the trap with the
// precise pc and state.
import * as L from "../layout.ts";
import { Code, Op, ValType, type Label } from "./wasm-emitter.ts";
import { ControlFlow, type Interval } from "./control-flow.ts";
import { Kind, fallsThrough, kindOf, lenOf, opOf, rdOf, regUse, rs1Of, rs2Of, type DecodedPage } from "./instructions.ts";
import {
  FIRST_PAGE_FUNCTION, FN_CHAIN, FN_NOTE, FIRST_REG_LOCAL, Note, L_BUDGET0, L_CODE, L_LEFT, L_PC, L_TLB, L_VBASE,
  EXIT_INTERPRET, EXIT_INTERPRET_TO_RET, EXIT_OFFSET_MASK, EXIT_UNRETIRED_MASK, EXIT_UNRETIRED_SHIFT,
  type Emitter, type Insn, type LoadGroup,
} from "./frame.ts";
import { selectInstruction } from "./select.ts";
import { INTEGER_LOAD_SIZE } from "./select-memory.ts";
import { STRADDLE_OFFSET, checkStraddle } from "./straddle.ts";

/** A function of the translation (a group of regions, or the page's dispatcher); `index` is its index in the module. */
export interface TranslatedFunction {
  /** Page offsets of its entries (none for the page's dispatcher). */
  entries: number[];
  index: number;
  body: Uint8Array<ArrayBuffer>;
  /** Body offsets of the 5-byte indices of calls to this page's functions (Code.relocations). */
  relocations: number[];
  locals: { count: number; type: ValType }[];
}

export interface Translation {
  functions: TranslatedFunction[];
  /** Page offsets of the instructions translated. */
  covered: number[];
  /** Guest instructions translated (for statistics). */
  instructions: number;
}

/**
 * Translates the code reachable from `roots` (page offsets) into wasm function bodies, numbered
 * from `firstIndex` in their module, for the hart whose state block is at wasm address
 * `stateBase` (on a memory shared with other threads when `parallelHarts`); with `executed`, only
 * instructions the interpreter has run
 * (control leaves to the interpreter where the rest begins). With `profiling`, the code reports
 * its exits and transitions through the FN_NOTE import. `straddleHigh`: the page's last parcel
 * starts an instruction decoded with this parcel of the next page (see straddle.ts).
 */
export function translatePage(
  page: DecodedPage,
  roots: number[],
  firstIndex: number,
  functionSize: number,
  stateBase: number,
  parallelHarts: boolean,
  executed?: (offset: number) => boolean,
  profiling = false,
  straddleHigh?: number,
): Translation | undefined {
  const flow = new ControlFlow(page, executed, functionSize);
  if (!flow.analyze(roots)) return undefined;
  const emitter = new PageEmitter(flow, firstIndex, stateBase, parallelHarts, profiling, straddleHigh);
  const functions: TranslatedFunction[] = [];
  for (let f = 0; f < flow.funcRegions.length; f++) functions.push(emitter.emitFunction(f));
  functions.push(emitter.emitDispatcher());
  return { functions, covered: flow.starts, instructions: flow.starts.length };
}

class PageEmitter implements Emitter {
  readonly c = Object.assign(new Code(), { relocateCallsFrom: FIRST_PAGE_FUNCTION });
  private regLocals = new Int32Array(32).fill(-1);
  private exitLabel: Label = 0;
  private dispatchLabel: Label = 0;
  /** The instruction being emitted writes rd to its local only (see overwrittenBeforeAnyExit). */
  private localOnly = false;
  private currentFunction = -1;
  /** The current function's load groups, by position (see LoadGroup and findLoadGroups). */
  private loadGroups = new Map<number, LoadGroup>();

  constructor(
    private readonly flow: ControlFlow,
    private readonly firstIndex: number,
    readonly state: number,
    readonly parallelHarts: boolean,
    private readonly profiling: boolean,
    private readonly straddleHigh: number | undefined,
  ) {}

  emitFunction(f: number): TranslatedFunction {
    const { c } = this;
    const { starts, words, page } = this.flow;
    const order = this.flow.funcOrder[f];
    const regions = this.flow.funcRegions[f];
    c.resetCode();
    this.currentFunction = f;
    const regCount = this.allocateRegisters(order);
    this.findLoadGroups(order, FIRST_REG_LOCAL + regCount);
    this.profile(Note.Enter, () => c.get(L_PC));
    this.prologue(regions);

    this.exitLabel = c.block();
    const defaultLabel = c.block();
    const intervals = this.flow.intervalsOf(f);
    let next = 0;
    const open: Interval[] = [];
    const openUpTo = (k: number) => {
      while (next < intervals.length && intervals[next].start <= k) {
        const iv = intervals[next++];
        iv.label = iv.loop ? c.loop() : c.block();
        open.push(iv);
      }
    };
    // The entries' blocks, then the br_table over the parcels from the first entry to the last,
    // in a loop: going back to an entry of this function is a branch to the loop with $pc set.
    this.dispatchLabel = c.loop();
    openUpTo(-1);
    const entries = regions.map((r) => this.flow.starts[this.flow.regionEntry[r]]);
    const first = Math.min(...entries) >> 1;
    const last = Math.max(...entries) >> 1;
    const table: Label[] = [];
    for (let p = first; p <= last; p++) {
      const e = this.flow.pos[p];
      const iv = e >= 0 && this.flow.isEntry(e) && this.flow.funcOfRegion[this.flow.regionOf[e]] === f ? this.flow.blockAt[e] : undefined;
      table.push(iv ? iv.label : defaultLabel);
    }
    this.branchOnParcel(first, table, defaultLabel);
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
    c.end(); // $dispatch
    c.end(); // $default: pc (in this page, from a JALR) is no entry of this function: the page's dispatcher
    c.get(L_PC);
    c.get(L_LEFT);
    c.get(L_BUDGET0);
    c.returnCall(this.dispatcherIndex);
    c.end(); // $exit
    this.sharedExit();

    return {
      entries,
      index: this.firstIndex + f,
      body: c.finish(),
      relocations: [...c.relocations],
      locals: [
        { count: 3, type: ValType.i32 }, // e, tlb, code
        { count: 5, type: ValType.i64 }, // vbase, npc, va, t, t2
        { count: regCount, type: ValType.i64 },
        { count: 2, type: ValType.i32 }, // a load group's check passed, its host address
      ],
    };
  }

  /**
   * Finds the load groups of a function (see LoadGroup): within each segment, MIN_GROUP_LOADS or
   * more integer loads through the same base register, from the first one to the last before the
   * base register is written, with only computations, loads and stores in between (a CSR instruction may change
   * the address translation; everything else that could ends the segment). Groups whose bytes
   * span more than a page are left out; their check could never pass. Groups do not overlap
   * (loads through other base registers between a group's first and last load stay ungrouped).
   */
  private findLoadGroups(order: number[], firstLocal: number): void {
    const { words, segLeft } = this.flow;
    this.loadGroups = new Map();
    for (let k = 0; k < order.length; k++) {
      const i = order[k];
      const w = words[i];
      if (kindOf(opOf(w)) !== Kind.Load) continue;
      const base = rs1Of(w);
      if (base === 0 || rdOf(w) === base) continue;
      const members = [k];
      for (let m = k + 1; m < k + segLeft[i]; m++) {
        const j = order[m];
        const wj = words[j];
        const kind = kindOf(opOf(wj));
        if (!GROUP_SPAN_KINDS.has(kind)) break;
        if (kind === Kind.Load && rs1Of(wj) === base) members.push(m);
        if (((regUse(opOf(wj), wj).writes >>> base) & 1) !== 0) break;
      }
      if (members.length < MIN_GROUP_LOADS) continue;
      let lo = Infinity;
      let hi = -Infinity;
      for (const m of members) {
        const off = this.flow.starts[order[m]];
        const imm = this.flow.page.imm(off);
        lo = Math.min(lo, imm);
        hi = Math.max(hi, imm + INTEGER_LOAD_SIZE.get(opOf(words[order[m]]))! - 1);
      }
      if (hi - lo >= 1 << L.PAGE_SHIFT) continue;
      members.forEach((m, n) => {
        this.loadGroups.set(order[m], { first: n === 0, lo, hi, okLocal: firstLocal, hostLocal: firstLocal + 1 });
      });
      // Groups do not overlap: they share the two locals.
      k = members[members.length - 1];
    }
  }
  loadGroupOf(i: number): LoadGroup | undefined {
    return this.loadGroups.get(i);
  }

  /** Gives each guest register the instructions of `order` use a local; returns how many. */
  private allocateRegisters(order: number[]): number {
    const { words } = this.flow;
    this.regLocals = new Int32Array(32).fill(-1);
    let regCount = 0;
    for (const i of order) {
      const use = regUse(opOf(words[i]), words[i]);
      for (let reg = 1; reg < 32; reg++) {
        if ((((use.reads | use.writes) >>> reg) & 1) !== 0 && this.regLocals[reg] < 0) this.regLocals[reg] = FIRST_REG_LOCAL + regCount++;
      }
    }
    return regCount;
  }

  /**
   * $vbase, $tlb and the registers. Registers are written through to memory, so a function
   * loads only those its regions may read before writing them.
   */
  private prologue(regions: number[]): void {
    const c = this.c;
    let reads = 0;
    for (const r of regions) reads |= this.flow.liveIn(r);
    c.get(L_PC);
    c.i64Const(-4096);
    c.op(Op.i64_and);
    c.set(L_VBASE);
    c.i32Const(0);
    c.mem(Op.i32_load, this.state + L.S_DATA_TLB);
    c.set(L_TLB);
    for (let reg = 1; reg < 32; reg++) {
      if (((reads >>> reg) & 1) === 0) continue;
      c.i32Const(0);
      c.mem(Op.i64_load, this.state + L.S_X + reg * 8);
      c.set(this.regLocals[reg]);
    }
  }

  /** br_table on pc's parcel in the page: table[k] is the label for parcel first + k. */
  private branchOnParcel(first: number, table: Label[], fallback: Label): void {
    const c = this.c;
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
    c.brTable(table, fallback);
  }

  /** The exit all exitTo codes share: pc = vbase + offset, retired = budget0 - left - unretired, | INTERPRET. */
  private sharedExit(): void {
    const c = this.c;
    c.i32Const(0);
    c.get(L_VBASE);
    c.get(L_CODE);
    c.i32Const(EXIT_OFFSET_MASK);
    c.op(Op.i32_and);
    c.op(Op.i64_extend_i32_u);
    c.op(Op.i64_add);
    c.mem(Op.i64_store, this.state + L.S_PC);
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
  }

  /** The page's dispatcher function: its index follows the regions'. */
  get dispatcherIndex(): number {
    return this.firstIndex + this.flow.funcRegions.length;
  }

  /**
   * The page's dispatcher (pc, left, budget0): tail-calls the region starting at pc, or the
   * chaining function if none does. JALR with a target in the same page (returns, switch
   * tables) comes here, saving the chaining function's lookups.
   */
  emitDispatcher(): TranslatedFunction {
    const c = this.c;
    c.resetCode();
    const first = this.flow.starts[this.flow.regionEntry[0]] >> 1;
    const last = this.flow.starts[this.flow.regionEntry[this.flow.regionEntry.length - 1]] >> 1;
    const outer = c.block();
    const blocks: Label[] = [];
    const regionAt = new Map<number, number>();
    this.flow.regionEntry.forEach((pos, r) => regionAt.set(this.flow.starts[pos] >> 1, r));
    for (let r = this.flow.regionEntry.length - 1; r >= 0; r--) blocks[r] = c.block();
    const table: Label[] = [];
    for (let p = first; p <= last; p++) {
      const r = regionAt.get(p);
      table.push(r === undefined ? outer : blocks[r]);
    }
    this.branchOnParcel(first, table, outer);
    for (let r = 0; r < this.flow.regionEntry.length; r++) {
      c.end();
      c.get(L_PC);
      c.get(L_LEFT);
      c.get(L_BUDGET0);
      c.returnCall(this.firstIndex + this.flow.funcOfRegion[r]);
    }
    c.end();
    this.profile(Note.Chain, () => c.get(L_PC));
    c.get(L_PC);
    c.get(L_LEFT);
    c.get(L_BUDGET0);
    c.returnCall(FN_CHAIN);
    return { entries: [], index: this.dispatcherIndex, body: c.finish(), relocations: [...c.relocations], locals: [] };
  }

  regLocal(r: number): number {
    return this.regLocals[r];
  }
  getX(r: number): void {
    if (r === 0) this.c.i64Const(0);
    else this.c.get(this.regLocals[r]);
  }
  /** Before computing a value for rd: its store's address operand (registers are written through). */
  beginRd(rd: number): void {
    if (rd !== 0 && !this.localOnly) this.c.i32Const(0);
  }
  /** After: the value on the stack goes to rd's local and its memory slot (x0: dropped). */
  endRd(rd: number): void {
    const c = this.c;
    if (rd === 0) {
      c.op(Op.drop);
      return;
    }
    if (this.localOnly) {
      c.set(this.regLocals[rd]);
      return;
    }
    c.tee(this.regLocals[rd]);
    c.mem(Op.i64_store, this.state + L.S_X + rd * 8);
  }
  /**
   * Leaves with pc = vbase + offset; `unretired` of the instructions already taken from $left
   * did not retire; `interpret` marks an exit in front of an instruction for the interpreter.
   * Offsets within the page share the exit code at the function's end (a few bytes each).
   */
  exitTo(offset: number, unretired: number, interpret: boolean, why: Note): void {
    const c = this.c;
    this.profile(why, () => {
      c.get(L_VBASE);
      c.i64Const(offset);
      c.op(Op.i64_add);
    });
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
    c.mem(Op.i64_store, this.state + L.S_PC);
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
  jumpTo(target: number, i: number): void {
    const c = this.c;
    const t = this.flow.posOf(target);
    const label = t >= 0 ? this.flow.labelFor(i, t) : undefined;
    if (label !== undefined) {
      c.br(label);
      return;
    }
    if (t >= 0 && this.flow.funcOfRegion[this.flow.regionOf[t]] === this.currentFunction) {
      // An earlier entry of this function: again through its br_table (registers stay in locals).
      c.get(L_VBASE);
      c.i64Const(target);
      c.op(Op.i64_add);
      c.set(L_PC);
      this.profile(Note.Redispatch, () => c.get(L_PC));
      c.br(this.dispatchLabel);
      return;
    }
    const pushTarget = () => {
      c.get(L_VBASE);
      if (target !== 0) {
        c.i64Const(target);
        c.op(Op.i64_add);
      }
    };
    this.profile(t >= 0 ? Note.TailCall : Note.Chain, pushTarget);
    pushTarget();
    c.get(L_LEFT);
    c.get(L_BUDGET0);
    // Another region of this page (an entry): a direct tail call to its function. Anything
    // else: the chaining function finds the target's translation, if any.
    c.returnCall(t >= 0 ? this.firstIndex + this.flow.funcOfRegion[this.flow.regionOf[t]] : FN_CHAIN);
  }
  /**
   * JALR within the page: through this function's br_table (registers stay in locals), whose
   * default is the page's dispatcher (which tail-calls the entry's function, or the chaining
   * function when pc is no entry).
   */
  dispatchInPage(pcLocal: number): void {
    const c = this.c;
    c.get(pcLocal);
    c.set(L_PC);
    this.profile(Note.Dispatch, () => c.get(L_PC));
    c.br(this.dispatchLabel);
  }
  profile(note: Note, pushPc: () => void): void {
    if (!this.profiling) return;
    this.c.i32Const(note);
    pushPc();
    this.c.call(FN_NOTE);
  }
  branchLabel(i: number, target: number): Label | undefined {
    const t = this.flow.posOf(target);
    return t >= 0 ? this.flow.labelFor(i, t) : undefined;
  }

  /**
   * Whether the register that the computation or load at position i writes is written again,
   * further along the same straight run of code, with only computations in between and at that
   * point: nothing can leave the function or read the register file meanwhile, so the write
   * through to memory would be overwritten unseen and is left out.
   */
  private overwrittenBeforeAnyExit(i: number): boolean {
    const { words, fpos, segStartHere } = this.flow;
    const kind = kindOf(opOf(words[i]));
    const rd = rdOf(words[i]);
    if ((kind !== Kind.Alu && kind !== Kind.Load) || rd === 0) return false;
    const order = this.flow.funcOrder[this.currentFunction];
    for (let k = fpos[i] + 1; k < order.length; k++) {
      const j = order[k];
      if (segStartHere[j] || kindOf(opOf(words[j])) !== Kind.Alu) return false;
      if (rdOf(words[j]) === rd) return true;
    }
    return false;
  }

  private emitInstruction(i: number, off: number, w: number, imm: number): void {
    const c = this.c;
    const op = opOf(w);
    const len = lenOf(w);
    const rd = rdOf(w), rs1 = rs1Of(w), rs2 = rs2Of(w);
    const left = this.flow.segLeft[i];
    if (this.flow.isEntry(i)) {
      // Leave (for the interpreter to go on) unless the budget covers everything up to the next entry.
      c.get(L_LEFT);
      c.i32Const(this.flow.runBound[i]);
      c.op(Op.i32_lt_s);
      if (this.parallelHarts) {
        // ... or another thread asked this hart for attention (an interrupt line, a remote fence,
        // an HSM change): entries are where loops come back, so a busy hart notices promptly.
        c.i32Const(0);
        c.mem(Op.i32_load, this.state + L.S_STOP_REQUEST);
        c.op(Op.i32_or);
      }
      c.if();
      this.exitTo(off, 0, true, Note.ExitBudget);
      c.end();
    }
    if (this.flow.segStartHere[i]) {
      c.get(L_LEFT);
      c.i32Const(left);
      c.op(Op.i32_sub);
      c.set(L_LEFT);
    }
    // Exits in front of this instruction give back the rest of the segment including it; exits
    // after it give back the rest after it.
    const x: Insn = { i, off, len, w, op, imm, rd, rs1, rs2, before: left, after: left - 1 };
    // A straddling instruction decoded with the next page's parcel (else it is OP_CROSSPAGE, the interpreter's).
    if (off === STRADDLE_OFFSET && len === 4 && this.straddleHigh !== undefined) checkStraddle(this, this.straddleHigh, x.before);
    this.localOnly = this.overwrittenBeforeAnyExit(i);
    const goesOn = selectInstruction(this, x);
    this.localOnly = false;
    if (!goesOn) return;

    // Fall through to the next instruction in memory unless it is the next one laid out here.
    if (fallsThrough(op)) {
      const { funcOrder, funcOfRegion, regionOf, fpos, starts } = this.flow;
      const nextOff = off + len;
      const order = funcOrder[funcOfRegion[regionOf[i]]];
      const laidOutNext = fpos[i] + 1 < order.length ? order[fpos[i] + 1] : -1;
      if (laidOutNext < 0 || starts[laidOutNext] !== nextOff) this.jumpTo(nextOff, i);
    }
  }
}

/**
 * Loads a group needs at least: its check costs about what two loads' own checks do, and groups
 * of two measured slower (docs/PERFORMANCE.md, "Boot to init: where the time goes now, and two
 * translator changes").
 */
const MIN_GROUP_LOADS = 3;
/** What may lie between the loads of a group: nothing that can change the address translation. */
const GROUP_SPAN_KINDS = new Set([Kind.Alu, Kind.Nop, Kind.Load, Kind.Store, Kind.FpLoad, Kind.FpStore, Kind.Fp]);
