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
// Guest registers live in i64 locals for the whole function, loops included: the prologue loads
// every register the function uses, and the registers it writes go back to the register file in
// memory only where control leaves it (the shared exit, a return, a tail call to another
// function or the chaining function, whose prologue loads them from memory again) and, one by
// one, before a helper that reads them there (the F/D helper). As every local holds its
// register's current value at every point, writing back any set of registers that includes
// those written since the function was entered is exact at any exit, whichever path led there:
// an exit in front of an instruction leaves the register file as the interpreter has it at that
// instruction. Each exit writes back the registers that may have been written on some path from
// an entry to it (a forward data flow over the function, its loops and JALR back to its entries
// included; see analyzeDirty); the shared exit, the union of those of the exits that use it.
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
  type Emitter, type Insn,
} from "./frame.ts";
import { selectInstruction } from "./select.ts";
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
  /** The registers (bit r) the current function writes: written back wherever control leaves it. */
  private written = 0;
  /** Per instruction of the current function (by its fpos): the registers that may have been written since the function was entered, in front of it. */
  private dirtyIn = new Int32Array(0);
  /** The position being emitted. */
  private current = -1;
  /** The registers the shared exit writes back: those of every exit that branches to it. */
  private sharedExitDirty = 0;
  private exitLabel: Label = 0;
  private dispatchLabel: Label = 0;
  private currentFunction = -1;

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
    this.analyzeDirty(f);
    this.current = -1;
    this.sharedExitDirty = 0;
    this.profile(Note.Enter, () => c.get(L_PC));
    this.prologue();

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
    this.writeBackSet(this.written);
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
      ],
    };
  }

  /** Gives each guest register the instructions of `order` use a local; returns how many. */
  private allocateRegisters(order: number[]): number {
    const { words } = this.flow;
    this.regLocals = new Int32Array(32).fill(-1);
    this.written = 0;
    let regCount = 0;
    for (const i of order) {
      const use = regUse(opOf(words[i]), words[i]);
      this.written |= use.writes;
      for (let reg = 1; reg < 32; reg++) {
        if ((((use.reads | use.writes) >>> reg) & 1) !== 0 && this.regLocals[reg] < 0) this.regLocals[reg] = FIRST_REG_LOCAL + regCount++;
      }
    }
    return regCount;
  }

  /**
   * The registers that may have been written since the function was entered, in front of each
   * of its instructions (dirtyIn): forward along its branches and fall-throughs within the
   * function, and from a JALR (which may go back to any entry of the function through its
   * br_table) to all its entries; a fixed point, as the function has loops.
   */
  private analyzeDirty(f: number): void {
    const { words, fpos, funcOfRegion, regionOf } = this.flow;
    const order = this.flow.funcOrder[f];
    const dirty = new Int32Array(order.length);
    const entries = order.filter((i) => this.flow.isEntry(i));
    let changed = true;
    const flowTo = (j: number, set: number) => {
      const k = fpos[j];
      if ((dirty[k] | set) === dirty[k]) return;
      dirty[k] |= set;
      changed = true;
    };
    while (changed) {
      changed = false;
      for (let k = 0; k < order.length; k++) {
        const i = order[k];
        const op = opOf(words[i]);
        const out = dirty[k] | regUse(op, words[i]).writes;
        for (const j of this.flow.successors(i)) if (funcOfRegion[regionOf[j]] === f) flowTo(j, out);
        if (kindOf(op) === Kind.Jalr) for (const e of entries) flowTo(e, out);
      }
    }
    this.dirtyIn = dirty;
  }

  /**
   * The registers to write back when control leaves at the instruction being emitted: those
   * that may be dirty in front of it and the one it writes (a superset is exact too: every local
   * holds its register's value).
   */
  private dirtyHere(): number {
    if (this.current < 0) return this.written;
    const w = this.flow.words[this.current];
    return this.dirtyIn[this.flow.fpos[this.current]] | regUse(opOf(w), w).writes;
  }

  /**
   * $vbase, $tlb and the registers: every register the function uses, also those it only writes,
   * whose locals are written back at every exit, also one reached before the write.
   */
  private prologue(): void {
    const c = this.c;
    c.get(L_PC);
    c.i64Const(-4096);
    c.op(Op.i64_and);
    c.set(L_VBASE);
    c.i32Const(0);
    c.mem(Op.i32_load, this.state + L.S_DATA_TLB);
    c.set(L_TLB);
    for (let reg = 1; reg < 32; reg++) {
      if (this.regLocals[reg] < 0) continue;
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
    this.writeBackSet(this.sharedExitDirty);
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
  beginRd(_rd: number): void {}
  endRd(rd: number): void {
    if (rd === 0) this.c.op(Op.drop);
    else this.c.set(this.regLocals[rd]);
  }
  writeBack(): void {
    this.writeBackSet(this.dirtyHere());
  }
  private writeBackSet(regs: number): void {
    for (let reg = 1; reg < 32; reg++) if (((regs >>> reg) & 1) !== 0) this.writeBackRegister(reg);
  }
  writeBackRegister(r: number): void {
    const c = this.c;
    c.i32Const(0);
    c.get(this.regLocals[r]);
    c.mem(Op.i64_store, this.state + L.S_X + r * 8);
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
      this.sharedExitDirty |= this.dirtyHere();
      c.i32Const(offset | (unretired << EXIT_UNRETIRED_SHIFT) | (interpret ? EXIT_INTERPRET : 0));
      c.set(L_CODE);
      c.br(this.exitLabel);
      return;
    }
    this.writeBack();
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
    this.writeBack(); // the callee loads the registers from memory
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

  private emitInstruction(i: number, off: number, w: number, imm: number): void {
    const c = this.c;
    const op = opOf(w);
    const len = lenOf(w);
    const rd = rdOf(w), rs1 = rs1Of(w), rs2 = rs2Of(w);
    const left = this.flow.segLeft[i];
    this.current = i;
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
    const goesOn = selectInstruction(this, x);
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
