// The interpreter loop: fetch from the decoded-code pool, dispatch on the decoded op with one
// br_table, execute. Loads and stores try the TLB inline and fall back to the slow paths in
// mmu.ts; everything rare (traps, CSRs, xRET, hypercalls) lives in out-of-line functions.
import * as L from "../layout";
import * as O from "./ops";
import * as R from "./regions";
import * as D from "../decoded";
import {
  getX, setX, setXSafe, getState, setState, bumpCounter,
  PRIV_M, PRIV_S, PRIV_U, MSTATUS_TVM, MSTATUS_TW, MSTATUS_TSR,
  CAUSE_ILLEGAL_INSTRUCTION, CAUSE_BREAKPOINT, CAUSE_USER_ECALL,
} from "./state";
import {
  dataTlb, TLB_MASK,
  memFault, trapCause, trapTval, fetchTag, fetchBase, fetchRam, runLimit, crossPageRaw, crossPageSlot,
  loadSlow, storeSlow, fetchSlow, decodeIntoSlot, atomicAddress, wasmToPhysical,
  flushTranslated, flushPage, setRunLimit, clearMemFault, invalidateFetch,
  armBounce, requestTranslation, drainCodeQueue, dropSuspects,
} from "./mmu";
import {
  csrInstruction, csrInstructionWrote, csrIllegal, csrSideEffects, clearCsrSideEffects,
  takeTrap, checkInterrupts, wfiShouldWake, doMret, doSret,
} from "./csr";
import { loadReserved, storeConditional, amoWord, amoDouble, fence, PARALLEL_HARTS } from "./atomics";
import { roundingMode, fpEnabled, getS, setS, getD, setD, accrueFlags } from "./fpu";
import * as SF from "./softfloat";
// Decoded-word fields, short because the dispatch cases below use them on every line.
import {
  decodedOp, decodedRd as RD, decodedRs1 as RS1, decodedRs2 as RS2, decodedRs3, decodedLength as LEN,
} from "./decode";

@external("env", "sbiCall") declare function hostSbiCall(): void;

let wfiIdle = false;


// ---- memory fast paths --------------------------------------------------------------------------

@inline function tlbEntry(va: i64): usize {
  return dataTlb + ((<usize>(va >>> 12) & TLB_MASK) << R.TLB_ENTRY_SHIFT);
}

/** Zero-extended load; the slow path sets memFault on an exception. */
@inline function memLoad(va: i64, size: i32): i64 {
  const e = tlbEntry(va);
  if (load<i64>(e + R.TLB_TAG_R) == (va >>> 12) && (<u32>va & 0xfff) <= <u32>(4096 - size)) {
    const p = <usize>(va + load<i64>(e + R.TLB_ADDEND));
    if (size == 8) return load<i64>(p);
    if (size == 4) return <i64>load<u32>(p);
    if (size == 2) return <i64>load<u16>(p);
    return <i64>load<u8>(p);
  }
  return loadSlow(va, size);
}

@inline function memStore(va: i64, size: i32, value: i64): void {
  const e = tlbEntry(va);
  if (load<i64>(e + R.TLB_TAG_W) == (va >>> 12) && (<u32>va & 0xfff) <= <u32>(4096 - size)) {
    const p = <usize>(va + load<i64>(e + R.TLB_ADDEND));
    if (size == 8) store<i64>(p, value);
    else if (size == 4) store<u32>(p, <u32>value);
    else if (size == 2) store<u16>(p, <u16>value);
    else store<u8>(p, <u8>value);
    return;
  }
  storeSlow(va, size, value);
}

/** wasm address for an AMO/SC (write permission) or LR (read), or 0 with memFault set. */
@inline function atomicPtr(va: i64, size: i32, isLoadReserved: bool): usize {
  const e = tlbEntry(va);
  const tag = load<i64>(e + (isLoadReserved ? R.TLB_TAG_R : R.TLB_TAG_W));
  if (tag == (va >>> 12) && (va & (size - 1)) == 0) return <usize>(va + load<i64>(e + R.TLB_ADDEND));
  return atomicAddress(va, size, isLoadReserved);
}

// ---- arithmetic helpers ---------------------------------------------------------------------------

/** High 64 bits of the unsigned 128-bit product (wasm has no 64x64->128 multiply). */
function mulhu(a: i64, b: i64): i64 {
  const aLo = a & 0xffffffff, aHi = a >>> 32;
  const bLo = b & 0xffffffff, bHi = b >>> 32;
  const p0 = aLo * bLo;
  const p1 = aLo * bHi;
  const p2 = aHi * bLo;
  const p3 = aHi * bHi;
  const mid = (p0 >>> 32) + (p1 & 0xffffffff) + (p2 & 0xffffffff);
  return p3 + (p1 >>> 32) + (p2 >>> 32) + (mid >>> 32);
}
function mulh(a: i64, b: i64): i64 {
  let hi = mulhu(a, b);
  if (a < 0) hi -= b;
  if (b < 0) hi -= a;
  return hi;
}
function mulhsu(a: i64, b: i64): i64 {
  let hi = mulhu(a, b);
  if (a < 0) hi -= b;
  return hi;
}
// Division by zero and overflow have defined results in RISC-V (unprivileged ISA 13.2) but trap in wasm.
function div(a: i64, b: i64): i64 {
  if (b == 0) return -1;
  if (b == -1) return -a; // also gives INT64_MIN for INT64_MIN / -1
  return a / b;
}
function divu(a: i64, b: i64): i64 {
  if (b == 0) return -1;
  return <i64>(<u64>a / <u64>b);
}
function rem(a: i64, b: i64): i64 {
  if (b == 0) return a;
  if (b == -1) return 0;
  return a % b;
}
function remu(a: i64, b: i64): i64 {
  if (b == 0) return a;
  return <i64>(<u64>a % <u64>b);
}
function divw(a: i32, b: i32): i64 {
  if (b == 0) return -1;
  if (b == -1) return <i64>(-a);
  return <i64>(a / b);
}
function divuw(a: u32, b: u32): i64 {
  if (b == 0) return -1;
  return <i64><i32>(a / b);
}
function remw(a: i32, b: i32): i64 {
  if (b == 0) return <i64>a;
  if (b == -1) return 0;
  return <i64>(a % b);
}
function remuw(a: u32, b: u32): i64 {
  if (b == 0) return <i64><i32>a;
  return <i64><i32>(a % b);
}

// ---- translation trigger ---------------------------------------------------------------------------

/**
 * A taken branch or jump in the code page whose pool page is `codeBase`: counts down the page's
 * hotness (with the translator off the countdown starts at i32.MAX_VALUE and never matters).
 */
@inline function countTaken(codeBase: usize, pc: i64): void {
  const counter = R.jitHotBase() + ((codeBase - R.poolBase()) >> 12); // pool index * 4
  const left = load<i32>(counter) - 1;
  store<i32>(counter, left);
  if (left <= 0) requestTranslation(<u32>((codeBase - R.poolBase()) >> 14), pc);
  if (PARALLEL_HARTS) checkAttention();
}

/**
 * Shared build: another thread sets this hart's attention word (S_STOP_REQUEST) for an interrupt
 * line, a remote fence or an HSM change. Checked on every taken branch (and after translated code
 * returns), it ends the inner loop; the outer loop then leaves run() with EXIT_STOP.
 */
@inline function checkAttention(): void {
  if (atomic.load<i32>(R.HART_BASE + <usize>L.HART_STATE + <usize>L.S_STOP_REQUEST) != 0) setRunLimit(0);
}

// ---- rare paths ---------------------------------------------------------------------------------

/** Raises the exception recorded by a slow path; returns the handler's pc. */
function raiseMemoryFault(pc: i64): i64 {
  clearMemFault();
  return takeTrap(trapCause, trapTval, pc);
}

/** The instruction's raw bits, for the illegal-instruction tval. */
function instructionBits(pc: i64, word: u32): i64 {
  const offset = <usize>(pc & 0xfff);
  if ((word >>> 31) != 0) return <i64>load<u16>(fetchRam + offset);
  if (offset == 0xffe) return <i64>crossPageRaw;
  return <i64>load<u32>(fetchRam + offset);
}

function raiseIllegal(pc: i64, word: u32): i64 {
  return takeTrap(CAUSE_ILLEGAL_INSTRUCTION, instructionBits(pc, word), pc);
}

@inline function priv(): i32 { return <i32>getState(L.S_PRIV); }

/** ECALL: served by the host when it is the SBI implementation and the caller is S-mode. */
function doEcall(pc: i64): i64 {
  const p = priv();
  if (p == PRIV_S && (getState(L.S_FLAGS) & L.CONFIG_SBI_IN_HOST) != 0) {
    bumpCounter(L.S_ECALL_EXITS);
    setState(L.S_PC, pc);
    hostSbiCall();
    setRunLimit(0);
    return pc + 4;
  }
  return takeTrap(CAUSE_USER_ECALL + <i64>p, 0, pc);
}

// ---- the loop -----------------------------------------------------------------------------------

let exitReason: i32 = L.EXIT_BUDGET;
/** An exit an instruction asked for (EXIT_WRS, EXIT_PAUSE), taken when the inner loop ends. */
let requestedExit: i32 = 0;
/** Pause-loop exiting: where the last PAUSE was (in `executed` of this run) and how long the loop has spun. */
let lastPause: i32 = 0;
let pauseSpin: i32 = 0;

/** Executes at most `budget` instructions (traps and decode bounces count against it). */
export function run(budget: i32): i32 {
  exitReason = L.EXIT_BUDGET;
  wfiIdle = false;
  requestedExit = 0;
  lastPause = -(L.PLE_GAP + 1); // the first PAUSE of a run starts a loop, it does not continue one
  pauseSpin = 0;
  clearMemFault();
  let pc = getState(L.S_PC);
  let executed: i32 = 0;
  let notRetired: i32 = 0;
  let instretBase = getState(L.S_MINSTRET);
  // Code other harts wrote becomes visible at every slice, even without FENCE.I.
  drainCodeQueue();
  pc = checkInterrupts(pc);
  while (true) {
    setRunLimit(budget);
    // The current code page, cached in locals; anything that changes it ends this loop.
    let codeTag = fetchTag;
    let codeBase = fetchBase;
    while (executed < runLimit) {
      executed++;
      let slot: usize;
      if (((pc ^ codeTag) >>> 12) == 0) {
        slot = codeBase + ((<usize>pc & 0xffe) << D.DECODED_SLOT_SHIFT);
      } else {
        slot = fetchSlow(pc);
        if (slot == 0) { pc = raiseMemoryFault(pc); notRetired++; continue; }
        codeTag = fetchTag;
        codeBase = fetchBase;
      }
      const w = load<u32>(slot);
      const imm = <i64>load<i32>(slot, D.DECODED_IMM_OFFSET);
      switch (decodedOp(w)) {
        case O.OP_DECODE: decodeIntoSlot(slot, pc); notRetired++; break;
        case O.OP_CROSSPAGE: invalidateFetch(); notRetired++; break;
        case O.OP_ILLEGAL: pc = takeTrap(CAUSE_ILLEGAL_INSTRUCTION, imm & 0xffffffff, pc); notRetired++; break;
        case O.OP_NOP: pc += LEN(w); break;
        // This hart's own stores already dropped its stale code; other harts' stores wait in its queue.
        case O.OP_FENCE_I: drainCodeQueue(); dropSuspects(); pc += LEN(w); break;
        case O.OP_FENCE: fence(imm); pc += LEN(w); break;
        case O.OP_PAUSE: {
          pc += LEN(w);
          const window = <i32>getState(L.S_PLE_WINDOW);
          if (window > 0) {
            const gap = executed - lastPause;
            pauseSpin = gap <= L.PLE_GAP ? pauseSpin + gap : 0;
            lastPause = executed;
            if (pauseSpin >= window) {
              pauseSpin = 0;
              requestedExit = L.EXIT_PAUSE;
              setRunLimit(0);
            }
          }
          break;
        }
        case O.OP_WRS_NTO:
        case O.OP_WRS_STO: {
          // Zawrs: stall while the reservation set is valid and no interrupt is pending (enabled
          // in mie, whatever the global enables, as for WFI). The host does the stalling: run()
          // returns EXIT_WRS with pc after the instruction; the stall may end early, as the spec allows.
          pc += LEN(w);
          if (getState(L.S_RESERVATION) != -1 && !wfiShouldWake()) {
            setState(L.S_WRS_KIND, decodedOp(w) == O.OP_WRS_STO ? 1 : 0);
            requestedExit = L.EXIT_WRS;
            setRunLimit(0);
          }
          break;
        }

        // ---- integer computation
        case O.OP_LI: setX(RD(w), imm); pc += LEN(w); break;
        case O.OP_MV: setX(RD(w), getX(RS1(w))); pc += LEN(w); break;
        case O.OP_AUIPC: setX(RD(w), pc + imm); pc += LEN(w); break;
        case O.OP_ADDI: setX(RD(w), getX(RS1(w)) + imm); pc += LEN(w); break;
        case O.OP_SLTI: setX(RD(w), getX(RS1(w)) < imm ? 1 : 0); pc += LEN(w); break;
        case O.OP_SLTIU: setX(RD(w), <u64>getX(RS1(w)) < <u64>imm ? 1 : 0); pc += LEN(w); break;
        case O.OP_XORI: setX(RD(w), getX(RS1(w)) ^ imm); pc += LEN(w); break;
        case O.OP_ORI: setX(RD(w), getX(RS1(w)) | imm); pc += LEN(w); break;
        case O.OP_ANDI: setX(RD(w), getX(RS1(w)) & imm); pc += LEN(w); break;
        case O.OP_SLLI: setX(RD(w), getX(RS1(w)) << imm); pc += LEN(w); break;
        case O.OP_SRLI: setX(RD(w), getX(RS1(w)) >>> imm); pc += LEN(w); break;
        case O.OP_SRAI: setX(RD(w), getX(RS1(w)) >> imm); pc += LEN(w); break;
        case O.OP_ADDIW: setX(RD(w), <i64>(<i32>getX(RS1(w)) + <i32>imm)); pc += LEN(w); break;
        case O.OP_SLLIW: setX(RD(w), <i64>(<i32>getX(RS1(w)) << <i32>imm)); pc += LEN(w); break;
        case O.OP_SRLIW: setX(RD(w), <i64><i32>(<u32>getX(RS1(w)) >>> <u32>imm)); pc += LEN(w); break;
        case O.OP_SRAIW: setX(RD(w), <i64>(<i32>getX(RS1(w)) >> <i32>imm)); pc += LEN(w); break;
        case O.OP_ADD: setX(RD(w), getX(RS1(w)) + getX(RS2(w))); pc += LEN(w); break;
        case O.OP_SUB: setX(RD(w), getX(RS1(w)) - getX(RS2(w))); pc += LEN(w); break;
        case O.OP_SLL: setX(RD(w), getX(RS1(w)) << getX(RS2(w))); pc += LEN(w); break;
        case O.OP_SLT: setX(RD(w), getX(RS1(w)) < getX(RS2(w)) ? 1 : 0); pc += LEN(w); break;
        case O.OP_SLTU: setX(RD(w), <u64>getX(RS1(w)) < <u64>getX(RS2(w)) ? 1 : 0); pc += LEN(w); break;
        case O.OP_XOR: setX(RD(w), getX(RS1(w)) ^ getX(RS2(w))); pc += LEN(w); break;
        case O.OP_SRL: setX(RD(w), getX(RS1(w)) >>> getX(RS2(w))); pc += LEN(w); break;
        case O.OP_SRA: setX(RD(w), getX(RS1(w)) >> getX(RS2(w))); pc += LEN(w); break;
        case O.OP_OR: setX(RD(w), getX(RS1(w)) | getX(RS2(w))); pc += LEN(w); break;
        case O.OP_AND: setX(RD(w), getX(RS1(w)) & getX(RS2(w))); pc += LEN(w); break;
        case O.OP_ADDW: setX(RD(w), <i64>(<i32>getX(RS1(w)) + <i32>getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_SUBW: setX(RD(w), <i64>(<i32>getX(RS1(w)) - <i32>getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_SLLW: setX(RD(w), <i64>(<i32>getX(RS1(w)) << (<i32>getX(RS2(w)) & 31))); pc += LEN(w); break;
        case O.OP_SRLW: setX(RD(w), <i64><i32>(<u32>getX(RS1(w)) >>> (<u32>getX(RS2(w)) & 31))); pc += LEN(w); break;
        case O.OP_SRAW: setX(RD(w), <i64>(<i32>getX(RS1(w)) >> (<i32>getX(RS2(w)) & 31))); pc += LEN(w); break;
        case O.OP_MUL: setX(RD(w), getX(RS1(w)) * getX(RS2(w))); pc += LEN(w); break;
        case O.OP_MULH: setX(RD(w), mulh(getX(RS1(w)), getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_MULHSU: setX(RD(w), mulhsu(getX(RS1(w)), getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_MULHU: setX(RD(w), mulhu(getX(RS1(w)), getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_DIV: setX(RD(w), div(getX(RS1(w)), getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_DIVU: setX(RD(w), divu(getX(RS1(w)), getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_REM: setX(RD(w), rem(getX(RS1(w)), getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_REMU: setX(RD(w), remu(getX(RS1(w)), getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_MULW: setX(RD(w), <i64>(<i32>getX(RS1(w)) * <i32>getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_DIVW: setX(RD(w), divw(<i32>getX(RS1(w)), <i32>getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_DIVUW: setX(RD(w), divuw(<u32>getX(RS1(w)), <u32>getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_REMW: setX(RD(w), remw(<i32>getX(RS1(w)), <i32>getX(RS2(w)))); pc += LEN(w); break;
        case O.OP_REMUW: setX(RD(w), remuw(<u32>getX(RS1(w)), <u32>getX(RS2(w)))); pc += LEN(w); break;

        // ---- control transfer
        case O.OP_BEQ: if (getX(RS1(w)) == getX(RS2(w))) { pc += imm; countTaken(codeBase, pc); } else pc += LEN(w); break;
        case O.OP_BNE: if (getX(RS1(w)) != getX(RS2(w))) { pc += imm; countTaken(codeBase, pc); } else pc += LEN(w); break;
        case O.OP_BLT: if (getX(RS1(w)) < getX(RS2(w))) { pc += imm; countTaken(codeBase, pc); } else pc += LEN(w); break;
        case O.OP_BGE: if (getX(RS1(w)) >= getX(RS2(w))) { pc += imm; countTaken(codeBase, pc); } else pc += LEN(w); break;
        case O.OP_BLTU: if (<u64>getX(RS1(w)) < <u64>getX(RS2(w))) { pc += imm; countTaken(codeBase, pc); } else pc += LEN(w); break;
        case O.OP_BGEU: if (<u64>getX(RS1(w)) >= <u64>getX(RS2(w))) { pc += imm; countTaken(codeBase, pc); } else pc += LEN(w); break;
        case O.OP_BEQZ: if (getX(RS1(w)) == 0) { pc += imm; countTaken(codeBase, pc); } else pc += LEN(w); break;
        case O.OP_BNEZ: if (getX(RS1(w)) != 0) { pc += imm; countTaken(codeBase, pc); } else pc += LEN(w); break;
        case O.OP_JAL: setX(RD(w), pc + LEN(w)); pc += imm; countTaken(codeBase, pc); break;
        case O.OP_J: pc += imm; countTaken(codeBase, pc); break;
        case O.OP_JALR: {
          const target = (getX(RS1(w)) + imm) & ~1;
          setXSafe(RD(w), pc + LEN(w));
          pc = target;
          countTaken(codeBase, pc);
          break;
        }

        // ---- a block entry of translated code (src/cpu/jit): run it with the budget left
        case O.OP_TRANSLATED: {
          bumpCounter(L.S_JIT_ENTRIES);
          const budget = runLimit - executed + 1;
          const r = call_indirect<i32>(<u32>imm, pc, budget, budget);
          pc = getState(L.S_PC);
          executed += (r & 0x3fff_ffff) - 1; // this iteration already counted one
          setState(L.S_JIT_RETIRED, getState(L.S_JIT_RETIRED) + <i64>(r & 0x3fff_ffff));
          if ((r & L.JIT_RET_INTERPRET) != 0) {
            armBounce(pc);
            codeTag = -1;
            if (PARALLEL_HARTS) checkAttention();
          }
          break;
        }

        // ---- loads and stores
        case O.OP_LB: { const v = memLoad(getX(RS1(w)) + imm, 1); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } setXSafe(RD(w), <i64><i8>v); pc += LEN(w); break; }
        case O.OP_LH: { const v = memLoad(getX(RS1(w)) + imm, 2); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } setXSafe(RD(w), <i64><i16>v); pc += LEN(w); break; }
        case O.OP_LW: { const v = memLoad(getX(RS1(w)) + imm, 4); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } setXSafe(RD(w), <i64><i32>v); pc += LEN(w); break; }
        case O.OP_LD: { const v = memLoad(getX(RS1(w)) + imm, 8); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } setXSafe(RD(w), v); pc += LEN(w); break; }
        case O.OP_LBU: { const v = memLoad(getX(RS1(w)) + imm, 1); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } setXSafe(RD(w), v); pc += LEN(w); break; }
        case O.OP_LHU: { const v = memLoad(getX(RS1(w)) + imm, 2); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } setXSafe(RD(w), v); pc += LEN(w); break; }
        case O.OP_LWU: { const v = memLoad(getX(RS1(w)) + imm, 4); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } setXSafe(RD(w), v); pc += LEN(w); break; }
        case O.OP_SB: memStore(getX(RS1(w)) + imm, 1, getX(RS2(w))); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } pc += LEN(w); break;
        case O.OP_SH: memStore(getX(RS1(w)) + imm, 2, getX(RS2(w))); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } pc += LEN(w); break;
        case O.OP_SW: memStore(getX(RS1(w)) + imm, 4, getX(RS2(w))); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } pc += LEN(w); break;
        case O.OP_SD: memStore(getX(RS1(w)) + imm, 8, getX(RS2(w))); if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; } pc += LEN(w); break;

        // ---- system
        case O.OP_ECALL: {
          const next = doEcall(pc);
          if (next != pc + 4) notRetired++; // it trapped into the guest rather than being served here
          pc = next;
          break;
        }
        case O.OP_EBREAK: pc = takeTrap(CAUSE_BREAKPOINT, pc, pc); notRetired++; break;
        case O.OP_MRET:
          if (priv() != PRIV_M) { pc = raiseIllegal(pc, w); notRetired++; break; }
          pc = doMret(); setRunLimit(0); break;
        case O.OP_SRET: {
          const p = priv();
          if (p == PRIV_U || (p == PRIV_S && (getState(L.S_MSTATUS) & MSTATUS_TSR) != 0)) { pc = raiseIllegal(pc, w); notRetired++; break; }
          pc = doSret(); setRunLimit(0); break;
        }
        case O.OP_WFI: {
          const p = priv();
          if (p == PRIV_U || (p < PRIV_M && (getState(L.S_MSTATUS) & MSTATUS_TW) != 0)) { pc = raiseIllegal(pc, w); notRetired++; break; }
          pc += LEN(w);
          if (!wfiShouldWake()) { wfiIdle = true; setRunLimit(0); }
          break;
        }
        case O.OP_SFENCE_VMA: {
          const p = priv();
          if (p == PRIV_U || (p == PRIV_S && (getState(L.S_MSTATUS) & MSTATUS_TVM) != 0)) { pc = raiseIllegal(pc, w); notRetired++; break; }
          if (RS1(w) == 0) flushTranslated(); else flushPage(getX(RS1(w)));
          pc += LEN(w);
          break;
        }
        case O.OP_CSRRW: case O.OP_CSRRS: case O.OP_CSRRC: case O.OP_CSRRWI: case O.OP_CSRRSI: case O.OP_CSRRCI: {
          // Make the counters exact for this instruction: it sees everything retired before it.
          setState(L.S_MINSTRET, instretBase + <i64>(executed - notRetired - 1));
          const old = csrInstruction(decodedOp(w), <u32>imm & 0xfff, RS1(w), getX(RS1(w)));
          if (csrIllegal) { pc = raiseIllegal(pc, w); notRetired++; break; }
          if (csrInstructionWrote) {
            instretBase = getState(L.S_MINSTRET) - <i64>(executed - notRetired - 1);
            if (csrSideEffects) { clearCsrSideEffects(); setRunLimit(0); }
          }
          setXSafe(RD(w), old);
          pc += LEN(w);
          break;
        }

        // ---- atomics (A extension): atomics.ts, atomic across harts in parallel threads
        case O.OP_LR_W: case O.OP_LR_D: {
          const size = decodedOp(w) == O.OP_LR_W ? 4 : 8;
          const p = atomicPtr(getX(RS1(w)), size, true);
          if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; }
          setXSafe(RD(w), loadReserved(p, wasmToPhysical(p), size));
          pc += LEN(w);
          break;
        }
        case O.OP_SC_W: case O.OP_SC_D: {
          const size = decodedOp(w) == O.OP_SC_W ? 4 : 8;
          const value = getX(RS2(w));
          const p = atomicPtr(getX(RS1(w)), size, false);
          if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; }
          setXSafe(RD(w), storeConditional(p, wasmToPhysical(p), size, value));
          pc += LEN(w);
          break;
        }
        case O.OP_AMOSWAP_W: case O.OP_AMOADD_W: case O.OP_AMOXOR_W: case O.OP_AMOAND_W: case O.OP_AMOOR_W:
        case O.OP_AMOMIN_W: case O.OP_AMOMAX_W: case O.OP_AMOMINU_W: case O.OP_AMOMAXU_W: {
          const b = <i32>getX(RS2(w));
          const p = atomicPtr(getX(RS1(w)), 4, false);
          if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; }
          setXSafe(RD(w), <i64>amoWord(decodedOp(w), p, b));
          pc += LEN(w);
          break;
        }
        case O.OP_AMOSWAP_D: case O.OP_AMOADD_D: case O.OP_AMOXOR_D: case O.OP_AMOAND_D: case O.OP_AMOOR_D:
        case O.OP_AMOMIN_D: case O.OP_AMOMAX_D: case O.OP_AMOMINU_D: case O.OP_AMOMAXU_D: {
          const b = getX(RS2(w));
          const p = atomicPtr(getX(RS1(w)), 8, false);
          if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; }
          setXSafe(RD(w), amoDouble(decodedOp(w), p, b));
          pc += LEN(w);
          break;
        }

        // ---- floating point: loads and stores
        case O.OP_FLW: {
          if (!fpEnabled()) { pc = raiseIllegal(pc, w); notRetired++; break; }
          const v = memLoad(getX(RS1(w)) + imm, 4);
          if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; }
          setS(RD(w), <u32>v); pc += LEN(w); break;
        }
        case O.OP_FLD: {
          if (!fpEnabled()) { pc = raiseIllegal(pc, w); notRetired++; break; }
          const v = memLoad(getX(RS1(w)) + imm, 8);
          if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; }
          setD(RD(w), v); pc += LEN(w); break;
        }
        case O.OP_FSW: {
          if (!fpEnabled()) { pc = raiseIllegal(pc, w); notRetired++; break; }
          memStore(getX(RS1(w)) + imm, 4, getD(RS2(w)));
          if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; }
          pc += LEN(w); break;
        }
        case O.OP_FSD: {
          if (!fpEnabled()) { pc = raiseIllegal(pc, w); notRetired++; break; }
          memStore(getX(RS1(w)) + imm, 8, getD(RS2(w)));
          if (memFault) { pc = raiseMemoryFault(pc); notRetired++; break; }
          pc += LEN(w); break;
        }

        default: {
          // Everything else is F/D computation: out of line, it is far off the integer hot path.
          if (!executeFp(w, RD(w), RS1(w), RS2(w))) { pc = raiseIllegal(pc, w); notRetired++; break; }
          pc += LEN(w);
          break;
        }
      }
    }
    if (getState(L.S_STOP_REQUEST) != 0) { exitReason = L.EXIT_STOP; break; }
    // Before the budget: a WFI that happens to be the budget's last instruction still idles
    // the hart (else the host would resume it as if WFI had been a no-op).
    if (wfiIdle) {
      if (!wfiShouldWake()) { exitReason = L.EXIT_WFI; break; }
      wfiIdle = false;
    }
    if (requestedExit != 0) { exitReason = requestedExit; break; }
    if (executed >= budget) break;
    pc = checkInterrupts(pc);
  }
  setState(L.S_PC, pc);
  setState(L.S_MINSTRET, instretBase + <i64>(executed - notRetired));
  return exitReason;
}

const SIGN_S: u32 = 0x8000_0000;
const SIGN_D: i64 = 1 << 63;

/** F and D computation instructions; false when the instruction is illegal in the current state. */
export function executeFp(w: u32, rd: u32, rs1: u32, rs2: u32): bool {
  const op = decodedOp(w);
  const rs3 = decodedRs3(w);
  // Operations that take no rounding mode still need the FPU enabled.
  if (!fpEnabled()) return false;
  switch (op) {
    case O.OP_FSGNJ_S: setS(rd, (getS(rs1) & ~SIGN_S) | (getS(rs2) & SIGN_S)); return true;
    case O.OP_FSGNJN_S: setS(rd, (getS(rs1) & ~SIGN_S) | (~getS(rs2) & SIGN_S)); return true;
    case O.OP_FSGNJX_S: setS(rd, getS(rs1) ^ (getS(rs2) & SIGN_S)); return true;
    case O.OP_FSGNJ_D: setD(rd, (getD(rs1) & ~SIGN_D) | (getD(rs2) & SIGN_D)); return true;
    case O.OP_FSGNJN_D: setD(rd, (getD(rs1) & ~SIGN_D) | (~getD(rs2) & SIGN_D)); return true;
    case O.OP_FSGNJX_D: setD(rd, getD(rs1) ^ (getD(rs2) & SIGN_D)); return true;
    case O.OP_FMV_X_W: setXSafe(rd, <i64><i32>getD(rs1)); return true;
    case O.OP_FMV_X_D: setXSafe(rd, getD(rs1)); return true;
    case O.OP_FMV_W_X: setS(rd, <u32>getX(rs1)); return true;
    case O.OP_FMV_D_X: setD(rd, getX(rs1)); return true;
    case O.OP_FCLASS_S: setXSafe(rd, <i64>SF.f32_classify(getS(rs1))); return true;
    case O.OP_FCLASS_D: setXSafe(rd, <i64>SF.f64_classify(<u64>getD(rs1))); return true;
    case O.OP_FMIN_S: setS(rd, SF.f32_min(getS(rs1), getS(rs2))); accrueFlags(); return true;
    case O.OP_FMAX_S: setS(rd, SF.f32_max(getS(rs1), getS(rs2))); accrueFlags(); return true;
    case O.OP_FMIN_D: setD(rd, <i64>SF.f64_min(<u64>getD(rs1), <u64>getD(rs2))); accrueFlags(); return true;
    case O.OP_FMAX_D: setD(rd, <i64>SF.f64_max(<u64>getD(rs1), <u64>getD(rs2))); accrueFlags(); return true;
    case O.OP_FEQ_S: setXSafe(rd, <i64>SF.f32_eq(getS(rs1), getS(rs2))); accrueFlags(); return true;
    case O.OP_FLT_S: setXSafe(rd, <i64>SF.f32_lt(getS(rs1), getS(rs2))); accrueFlags(); return true;
    case O.OP_FLE_S: setXSafe(rd, <i64>SF.f32_le(getS(rs1), getS(rs2))); accrueFlags(); return true;
    case O.OP_FEQ_D: setXSafe(rd, <i64>SF.f64_eq(<u64>getD(rs1), <u64>getD(rs2))); accrueFlags(); return true;
    case O.OP_FLT_D: setXSafe(rd, <i64>SF.f64_lt(<u64>getD(rs1), <u64>getD(rs2))); accrueFlags(); return true;
    case O.OP_FLE_D: setXSafe(rd, <i64>SF.f64_le(<u64>getD(rs1), <u64>getD(rs2))); accrueFlags(); return true;
  }
  const rmSigned = roundingMode(w);
  if (rmSigned < 0) return false;
  const rm = <u32>rmSigned;
  switch (op) {
    case O.OP_FADD_S: setS(rd, SF.f32_add(getS(rs1), getS(rs2), rm)); break;
    case O.OP_FSUB_S: setS(rd, SF.f32_sub(getS(rs1), getS(rs2), rm)); break;
    case O.OP_FMUL_S: setS(rd, SF.f32_mul(getS(rs1), getS(rs2), rm)); break;
    case O.OP_FDIV_S: setS(rd, SF.f32_div(getS(rs1), getS(rs2), rm)); break;
    case O.OP_FSQRT_S: setS(rd, SF.f32_sqrt(getS(rs1), rm)); break;
    case O.OP_FMADD_S: setS(rd, SF.f32_mulAdd(getS(rs1), getS(rs2), getS(rs3), rm)); break;
    case O.OP_FMSUB_S: setS(rd, SF.f32_mulAdd(getS(rs1), getS(rs2), getS(rs3) ^ SIGN_S, rm)); break;
    case O.OP_FNMSUB_S: setS(rd, SF.f32_mulAdd(getS(rs1) ^ SIGN_S, getS(rs2), getS(rs3), rm)); break;
    case O.OP_FNMADD_S: setS(rd, SF.f32_mulAdd(getS(rs1) ^ SIGN_S, getS(rs2), getS(rs3) ^ SIGN_S, rm)); break;
    case O.OP_FADD_D: setD(rd, <i64>SF.f64_add(<u64>getD(rs1), <u64>getD(rs2), rm)); break;
    case O.OP_FSUB_D: setD(rd, <i64>SF.f64_sub(<u64>getD(rs1), <u64>getD(rs2), rm)); break;
    case O.OP_FMUL_D: setD(rd, <i64>SF.f64_mul(<u64>getD(rs1), <u64>getD(rs2), rm)); break;
    case O.OP_FDIV_D: setD(rd, <i64>SF.f64_div(<u64>getD(rs1), <u64>getD(rs2), rm)); break;
    case O.OP_FSQRT_D: setD(rd, <i64>SF.f64_sqrt(<u64>getD(rs1), rm)); break;
    case O.OP_FMADD_D: setD(rd, <i64>SF.f64_mulAdd(<u64>getD(rs1), <u64>getD(rs2), <u64>getD(rs3), rm)); break;
    case O.OP_FMSUB_D: setD(rd, <i64>SF.f64_mulAdd(<u64>getD(rs1), <u64>getD(rs2), <u64>(getD(rs3) ^ SIGN_D), rm)); break;
    case O.OP_FNMSUB_D: setD(rd, <i64>SF.f64_mulAdd(<u64>(getD(rs1) ^ SIGN_D), <u64>getD(rs2), <u64>getD(rs3), rm)); break;
    case O.OP_FNMADD_D: setD(rd, <i64>SF.f64_mulAdd(<u64>(getD(rs1) ^ SIGN_D), <u64>getD(rs2), <u64>(getD(rs3) ^ SIGN_D), rm)); break;
    // FP -> integer: 32-bit results are sign-extended, also for the unsigned forms.
    case O.OP_FCVT_W_S: setXSafe(rd, <i64>SF.f32_to_i32(getS(rs1), rm)); break;
    case O.OP_FCVT_WU_S: setXSafe(rd, <i64><i32>SF.f32_to_u32(getS(rs1), rm)); break;
    case O.OP_FCVT_L_S: setXSafe(rd, SF.f32_to_i64(getS(rs1), rm)); break;
    case O.OP_FCVT_LU_S: setXSafe(rd, <i64>SF.f32_to_u64(getS(rs1), rm)); break;
    case O.OP_FCVT_W_D: setXSafe(rd, <i64>SF.f64_to_i32(<u64>getD(rs1), rm)); break;
    case O.OP_FCVT_WU_D: setXSafe(rd, <i64><i32>SF.f64_to_u32(<u64>getD(rs1), rm)); break;
    case O.OP_FCVT_L_D: setXSafe(rd, SF.f64_to_i64(<u64>getD(rs1), rm)); break;
    case O.OP_FCVT_LU_D: setXSafe(rd, <i64>SF.f64_to_u64(<u64>getD(rs1), rm)); break;
    // integer -> FP
    case O.OP_FCVT_S_W: setS(rd, SF.i32_to_f32(<i32>getX(rs1), rm)); break;
    case O.OP_FCVT_S_WU: setS(rd, SF.u32_to_f32(<u32>getX(rs1), rm)); break;
    case O.OP_FCVT_S_L: setS(rd, SF.i64_to_f32(getX(rs1), rm)); break;
    case O.OP_FCVT_S_LU: setS(rd, SF.u64_to_f32(<u64>getX(rs1), rm)); break;
    case O.OP_FCVT_D_W: setD(rd, <i64>SF.i32_to_f64(<i32>getX(rs1), rm)); break;
    case O.OP_FCVT_D_WU: setD(rd, <i64>SF.u32_to_f64(<u32>getX(rs1), rm)); break;
    case O.OP_FCVT_D_L: setD(rd, <i64>SF.i64_to_f64(getX(rs1), rm)); break;
    case O.OP_FCVT_D_LU: setD(rd, <i64>SF.u64_to_f64(<u64>getX(rs1), rm)); break;
    // precision changes
    case O.OP_FCVT_S_D: setS(rd, SF.f64_to_f32(<u64>getD(rs1), rm)); break;
    case O.OP_FCVT_D_S: setD(rd, <i64>SF.f32_to_f64(getS(rs1))); break;
    default: return false;
  }
  accrueFlags();
  return true;
}
