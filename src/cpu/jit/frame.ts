// The shape of a translated function, shared by the page emitter (page-emitter.ts) and
// instruction selection (select*.ts): its parameters and locals, the module's imported helpers,
// the exit codes, and the interface through which an instruction's code is emitted.
import type { Code, Label } from "./wasm-emitter.ts";

/** Function indices of the module's imports (see jit.ts); translated functions follow them. */
export const FN_AMO = 0;
export const FN_FP = 1;
/** (pc, left, budget0) -> retired: continues in the translation at pc if there is one, else returns to the interpreter. */
export const FN_CHAIN = 2;
/** (va, value, size): a store that missed the inline TLB check (see select-memory.ts). */
export const FN_STORE = 3;
/** (note, pc) -> (): counts an event for a translation profile (see Note); called only when profiling. */
export const FN_NOTE = 4;
/** (word, csr, rs1's value) -> rd's value: a CSR instruction (see select-memory.ts, csrAccess). */
export const FN_CSR = 5;
/** (va, size) -> the value zero-extended: a load that missed the inline TLB check (see select-memory.ts). */
export const FN_LOAD = 6;
export const FIRST_PAGE_FUNCTION = 7;

/**
 * Events translated code reports when the translator profiles (PARLEY_JIT_PROFILE): why it left
 * for the interpreter, and how control passed between translated functions.
 */
export const enum Note {
  /** A translated function was entered (from the interpreter, a chain or a tail call). */
  Enter,
  /** Left at an entry: the budget does not cover the run to the next entry (or attention asked). */
  ExitBudget,
  /** Left in front of a load whose inline TLB check missed and the core's helper did not do (fault, MMIO, page crossing). */
  ExitLoad,
  /** Left in front of a store whose inline TLB check missed (also: page with translated code). */
  ExitStore,
  /** Left in front of an instruction the interpreter executes (system, CSR, illegal, straddling). */
  ExitSystem,
  /** Left around an F/D, atomic or CSR instruction (FS off, bad rounding mode, helper fault or exit). */
  ExitHelper,
  /** Tail call to the chaining function (a jump to another page, or a JALR out of the page). */
  Chain,
  /** JALR to the page's own dispatcher. */
  Dispatch,
  /** Direct tail call to another function of the same page. */
  TailCall,
  /** Back to an earlier entry of the same function, through its br_table. */
  Redispatch,
}
export const NOTE_NAMES = ["enter", "exit-budget", "exit-load", "exit-store", "exit-system", "exit-helper", "chain", "dispatch", "tail-call", "redispatch"];

// Locals: three parameters, then scratch, then the guest registers.
export const L_PC = 0; // i64 param: the guest pc of the entry
export const L_LEFT = 1; // i32 param: instructions this call may still retire; counts down
export const L_BUDGET0 = 2; // i32 param: instructions retired so far = budget0 - left
export const L_E = 3; // i32: TLB entry address, slow-path status
export const L_TLB = 4; // i32: data TLB table
export const L_CODE = 5; // i32: exit code for the shared exit (see PageEmitter.exitTo)
export const L_VBASE = 6; // i64: virtual address of the page
export const L_NPC = 7; // i64: JALR target
export const L_VA = 8; // i64: effective address
export const L_T = 9; // i64: scratch
export const L_T2 = 10; // i64: scratch
export const FIRST_REG_LOCAL = 11;

// Exit codes (exitTo): page offset (up to 4096, the page end), instructions not retired, interpret.
export const EXIT_OFFSET_MASK = 0x1fff;
export const EXIT_UNRETIRED_SHIFT = 13;
export const EXIT_UNRETIRED_MASK = 0x7ff;
export const EXIT_INTERPRET = 1 << 24;
export const EXIT_INTERPRET_TO_RET = 6; // EXIT_INTERPRET << 6 == JIT_RET_INTERPRET

/** One instruction being translated. */
export interface Insn {
  /** Its layout position, page offset, length, decoded word, op and immediate. */
  i: number;
  off: number;
  len: number;
  w: number;
  op: number;
  imm: number;
  rd: number;
  rs1: number;
  rs2: number;
  /** Instructions of the segment not retired when leaving in front of this instruction. */
  before: number;
  /** ... and when leaving right after it. */
  after: number;
}

/** What instruction selection emits through: the function's code and its guest-state helpers. */
export interface Emitter {
  readonly c: Code;
  /** The i64 local holding guest register r (r != 0). */
  regLocal(r: number): number;
  /** Pushes x[r] (0 for x0). */
  getX(r: number): void;
  /** Before computing a value for rd: its store's address operand (registers are written through). */
  beginRd(rd: number): void;
  /** After: the value on the stack goes to rd's local and its memory slot (x0: dropped). */
  endRd(rd: number): void;
  /** Leaves with pc = page + offset; see PageEmitter.exitTo. `why` is for the profile. */
  exitTo(offset: number, unretired: number, interpret: boolean, why: Note): void;
  /** When profiling: reports `note` with the pc that `pushPc` pushes (an i64); otherwise nothing. */
  profile(note: Note, pushPc: () => void): void;
  /** Control goes to page offset `target` from the instruction at position i. */
  jumpTo(target: number, i: number): void;
  /** The wasm label taking control from position i to page offset `target`, when a branch can. */
  branchLabel(i: number, target: number): Label | undefined;
  /**
   * Wasm address of the hart's state block. Each Cpu has its own translator, so its code embeds
   * its own hart's addresses as constants (the engine reads them from an imported global).
   */
  readonly state: number;
  /**
   * The memory is shared with harts in other threads (build/cpu-shared.wasm): FENCE needs a real
   * barrier then (see src/cpu/wasm/atomics.ts).
   */
  readonly parallelHarts: boolean;
  /** Control goes to the pc in i64 local `pcLocal`, an offset of this page (JALR). */
  dispatchInPage(pcLocal: number): void;
  /** The load group (see LoadGroup) the load at position i belongs to, if any. */
  loadGroupOf(i: number): LoadGroup | undefined;
}

/**
 * Loads through one base register within a segment (straight-line code nothing jumps into, in
 * which the base register is not written before the last of them): one TLB check at the first
 * covers all of them when their bytes lie in one page, so each then loads straight from the
 * page's host address plus its offset. When the check fails (their bytes cross a page end, or
 * the page is not in the TLB), each load calls the core's load helper, as on a TLB miss.
 */
export interface LoadGroup {
  /** Whether this load is the group's first: the check is emitted in front of it. */
  first: boolean;
  /** The lowest offset from the base register any of them accesses, and the highest byte's. */
  lo: number;
  hi: number;
  /** i32 locals: whether the check passed, and the host address of base + lo when it did. */
  okLocal: number;
  hostLocal: number;
}
