// The core's side of the translator (src/cpu/jit): the helpers translated code calls (atomics,
// floating point, loads and stores that miss the inline TLB check), and the plumbing the host uses to
// translate a page (decode it whole, mark the code it covers) and to install or evict a
// translation.
//
// Helpers report through S_JIT_STATUS instead of raising anything themselves: on a fault they
// change nothing, so the translated code can stop in front of the instruction and let the
// interpreter execute it again (it faults the same way and takes the trap precisely); when the
// core must regain control (a write to translated code) the access is done and the translated
// code stops right after the instruction.
import * as L from "../layout";
import * as R from "./regions";
import * as O from "./ops";
import { stateBase, getState, setState, bumpCounter } from "./state";
import {
  atomicAddress, wasmToPhysical, memFault, clearMemFault, runLimit, rearmTranslation, storeRamSlow, loadRamSlow, ramLoadRefused,
  dataTlb, TLB_MASK, markCodeChunks, setRunLimit,
} from "./mmu";
import * as D from "../decoded";
import { decode16, decode32, decodedWord, decodedImm, decodedOp, decodedRd, decodedRs1, decodedRs2 } from "./decode";
import { executeFp } from "./exec";
import {
  csrInstruction, csrInstructionWrote, csrIllegal, csrSideEffects, clearCsrSideEffects, pendingInterrupt, CSR_SATP,
} from "./csr";
import { MSTATUS_SIE, MSTATUS_SPIE, MSTATUS_MIE, MSTATUS_MPIE, MSTATUS_SPP } from "./state";
import { loadReserved, storeConditional, amoWord, amoDouble, PARALLEL_HARTS } from "./atomics";

@inline function statusSlot(): usize { return stateBase() + <usize>L.S_JIT_STATUS; }

@inline function finishSlowPath(): void {
  let status = 0;
  if (memFault) {
    clearMemFault();
    status = L.JIT_STATUS_FAULT;
  } else if (runLimit == 0) {
    status = L.JIT_STATUS_EXIT;
  }
  store<i32>(statusSlot(), status);
}

@inline function atomicPtr(va: i64, size: i32, isLoadReserved: bool): usize {
  const e = dataTlb + ((<usize>(va >>> 12) & TLB_MASK) << R.TLB_ENTRY_SHIFT);
  const tag = load<i64>(e + (isLoadReserved ? R.TLB_TAG_R : R.TLB_TAG_W));
  if (tag == (va >>> 12) && (va & (size - 1)) == 0) return <usize>(va + load<i64>(e + R.TLB_ADDEND));
  return atomicAddress(va, size, isLoadReserved);
}

/**
 * LR, SC and AMO (op from the decoded word) at va with rs2's value `src`; returns what rd
 * receives. Same semantics as the interpreter's cases in exec.ts.
 */
export function jitAmo(word: u32, va: i64, src: i64): i64 {
  const op = decodedOp(word);
  let result: i64 = 0;
  if (op == O.OP_LR_W || op == O.OP_LR_D) {
    const size = op == O.OP_LR_W ? 4 : 8;
    const p = atomicPtr(va, size, true);
    if (!memFault) result = loadReserved(p, wasmToPhysical(p), size);
  } else if (op == O.OP_SC_W || op == O.OP_SC_D) {
    const size = op == O.OP_SC_W ? 4 : 8;
    const p = atomicPtr(va, size, false);
    if (!memFault) result = storeConditional(p, wasmToPhysical(p), size, src);
  } else if (op <= <u32>O.OP_AMOMAXU_W) {
    const p = atomicPtr(va, 4, false);
    if (!memFault) result = <i64>amoWord(op, p, <i32>src);
  } else {
    const p = atomicPtr(va, 8, false);
    if (!memFault) result = amoDouble(op, p, src);
  }
  finishSlowPath();
  return result;
}

/**
 * A store of translated code that missed the inline TLB check: done here when it is a RAM store
 * within one page (status 0, or JIT_STATUS_EXIT when it dropped code and the core must regain
 * control); anything else (a fault, MMIO, a page crossing) is left undone (JIT_STATUS_FAULT) for
 * the interpreter, which performs it exactly as it would have without the translation.
 */
export function jitStore(va: i64, value: i64, size: i32): void {
  if (!storeRamSlow(va, size, value)) {
    store<i32>(statusSlot(), L.JIT_STATUS_FAULT);
    return;
  }
  finishSlowPath();
}

/**
 * A load of translated code that missed the inline TLB check: done here when it is a RAM load
 * within one page (status 0; returns the value zero-extended, the translated code extends it as
 * the opcode needs); anything else (a fault, MMIO, a page crossing) is left undone
 * (JIT_STATUS_FAULT) for the interpreter, which performs it (or traps) exactly as it would have
 * without the translation.
 */
export function jitLoad(va: i64, size: i32): i64 {
  const value = loadRamSlow(va, size);
  store<i32>(statusSlot(), ramLoadRefused ? L.JIT_STATUS_FAULT : 0);
  return value;
}

/**
 * An F/D computation instruction (decoded word): operands and result in the register file in
 * memory. Returns 0, or 1 when it is illegal in the current state (nothing changed then).
 */
export function jitFp(word: u32): i32 {
  return executeFp(word, decodedRd(word), decodedRs1(word), decodedRs2(word)) ? 0 : 1;
}

/** mstatus bits whose change leaves the translated code's assumptions (TLB contexts, FS) intact. */
const MSTATUS_INTERRUPT_STACK: i64 = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_SPP;

/**
 * A CSR instruction (decoded word, CSR number `csr`, rs1's value `src` for the register forms)
 * that does not read a retirement counter (the translator leaves those to the interpreter, which
 * knows the exact count); returns what rd receives. Executed by csrInstruction (csr.ts), as the
 * interpreter's case in exec.ts is. Reports in S_JIT_STATUS: illegal here (JIT_STATUS_FAULT,
 * nothing changed: the interpreter executes it again and traps); done, but the translated code
 * must leave right after it (JIT_STATUS_EXIT): the write made an interrupt deliverable, which
 * the interpreter takes before the next instruction as it would after its own CSR write, or it
 * changed what translated code relies on (satp, mstatus beyond the interrupt-enable stack: the
 * data TLB context it loaded on entry, FS); or done (0), the common case of sstatus.SIE cleared or
 * set with nothing pending, and of plain registers (sscratch, sepc, time, ...).
 */
export function jitCsr(word: u32, csr: u32, src: i64): i64 {
  const mstatus = getState(L.S_MSTATUS);
  const old = csrInstruction(decodedOp(word), csr, decodedRs1(word), src);
  if (csrIllegal) { store<i32>(statusSlot(), L.JIT_STATUS_FAULT); return 0; }
  let status = 0;
  if (csrInstructionWrote) {
    if (csr == CSR_SATP || ((mstatus ^ getState(L.S_MSTATUS)) & ~MSTATUS_INTERRUPT_STACK) != 0) status = L.JIT_STATUS_EXIT;
    if (csrSideEffects) {
      clearCsrSideEffects();
      if (pendingInterrupt() >= 0) status = L.JIT_STATUS_EXIT;
      // Shared build: another thread may be raising one of this hart's interrupt lines right now
      // (its attention word): the interpreter would see it after this instruction, so leave.
      if (PARALLEL_HARTS && atomic.load<i32>(R.HART_BASE + <usize>L.HART_STATE + <usize>L.S_STOP_REQUEST) != 0) status = L.JIT_STATUS_EXIT;
    }
  }
  bumpCounter(L.S_JIT_CSR_ACCESSES);
  if (status != 0) {
    // The interpreter's loop ends, and takes the interrupt, once the translated code is back.
    setRunLimit(0);
    bumpCounter(L.S_JIT_CSR_EXITS);
  }
  store<i32>(statusSlot(), status);
  return old;
}

/**
 * Decodes every 2-byte parcel of RAM page `ramPage` into jitDecodeBase() (slot = offset * 4),
 * exactly as the interpreter would decode an instruction starting there.
 */
export function jitDecodePage(ramPage: u32): void {
  const ram = R.RAM_WASM_BASE + (<usize>ramPage << 12);
  for (let off: usize = 0; off < 4096; off += 2) {
    const low = <u32>load<u16>(ram + off);
    let word: u32;
    let imm: i32;
    if ((low & 3) != 3) {
      decode16(low);
      word = decodedWord;
      imm = decodedImm;
    } else if (off == 0xffe) {
      word = O.OP_CROSSPAGE;
      imm = 0;
    } else {
      decode32(low | (<u32>load<u16>(ram + off + 2) << 16));
      word = decodedWord;
      imm = decodedImm;
    }
    store<u32>(R.jitDecodeBase() + (off << D.DECODED_SLOT_SHIFT), word);
    store<i32>(R.jitDecodeBase() + (off << D.DECODED_SLOT_SHIFT) + D.DECODED_IMM_OFFSET, imm);
  }
}

/**
 * After jitDecodePage(ramPage): decodes the instruction that straddles the end of the page into
 * the last slot (offset 0xffe), given `high`, the first parcel of the page that follows it in the
 * guest's address space. The translated code checks at every execution that this parcel is still
 * what it finds there (src/cpu/jit/straddle.ts), and leaves the instruction to the interpreter if not.
 */
export function jitDecodeStraddling(ramPage: u32, high: u32): void {
  const ram = R.RAM_WASM_BASE + (<usize>ramPage << 12);
  const low = <u32>load<u16>(ram + 0xffe);
  if ((low & 3) != 3) return;
  decode32(low | ((high & 0xffff) << 16));
  store<u32>(R.jitDecodeBase() + (<usize>0xffe << D.DECODED_SLOT_SHIFT), decodedWord);
  store<i32>(R.jitDecodeBase() + (<usize>0xffe << D.DECODED_SLOT_SHIFT) + D.DECODED_IMM_OFFSET, decodedImm);
}

/** Turns the page's block entries back into ordinary decode slots. */
function clearEntries(poolIndex: u32): void {
  const pool = R.poolBase() + <usize>poolIndex * R.POOL_PAGE_SIZE;
  for (let slot = pool; slot < pool + R.POOL_PAGE_SIZE; slot += D.DECODED_SLOT_SIZE) {
    if (decodedOp(load<u32>(slot)) == O.OP_TRANSLATED) store<u64>(slot, 0); // OP_DECODE: decoded again on use
  }
}

/**
 * Installs a translation of pool page `poolIndex` compiled from generation `generation` of its
 * content: `count` entries wait at jitInstallBase() as (page offset, table index) pairs.
 * Returns 1, or 0 when the page changed meanwhile (nothing installed).
 */
export function jitInstall(poolIndex: u32, generation: u32, count: u32): i32 {
  if (poolIndex >= <u32>R.POOL_PAGES) return 0;
  if (load<u32>(R.jitGenBase() + (<usize>poolIndex << 2)) != generation) return 0;
  if (load<i32>(R.poolOwnerBase() + (<usize>poolIndex << 2)) < 0) return 0;
  clearEntries(poolIndex);
  const pool = R.poolBase() + <usize>poolIndex * R.POOL_PAGE_SIZE;
  for (let i: u32 = 0; i < count; i++) {
    const pair = R.jitInstallBase() + (<usize>i << 3);
    const offset = load<u32>(pair) & 0xffe;
    const slot = pool + (<usize>offset << D.DECODED_SLOT_SHIFT);
    markCodeChunks(poolIndex, offset, 4); // jitMarkCode marked it already; an entry is code whatever happens
    store<u32>(slot, O.OP_TRANSLATED);
    store<u32>(slot + D.DECODED_IMM_OFFSET, load<u32>(pair, 4));
  }
  store<u32>(R.jitFuncBase() + (<usize>poolIndex << 2), 1);
  rearmTranslation(poolIndex);
  bumpCounter(L.S_JIT_INSTALLS);
  return 1;
}

/** The host will not translate pool page `poolIndex` after its last request (nothing to do, stale). */
export function jitRearm(poolIndex: u32): void {
  if (poolIndex < <u32>R.POOL_PAGES) rearmTranslation(poolIndex);
}

/**
 * Decodes the pool slots of `count` instructions (u32 page offsets at jitInstallBase()) of pool
 * page `poolIndex` that are still undecoded, as if the interpreter had run them. Eager mode
 * uses it for the instructions its translations cover, which then never run interpreted: this
 * keeps decode bounces (which count against run()'s budget) as rare as without the translator.
 */
export function jitPredecode(poolIndex: u32, generation: u32, count: u32): void {
  if (poolIndex >= <u32>R.POOL_PAGES) return;
  if (load<u32>(R.jitGenBase() + (<usize>poolIndex << 2)) != generation) return;
  const owner = load<i32>(R.poolOwnerBase() + (<usize>poolIndex << 2));
  if (owner < 0) return;
  const pool = R.poolBase() + <usize>poolIndex * R.POOL_PAGE_SIZE;
  const ram = R.RAM_WASM_BASE + (<usize>owner << 12);
  for (let i: u32 = 0; i < count; i++) {
    const off = <usize>(load<u32>(R.jitInstallBase() + (<usize>i << 2)) & 0xffe);
    const slot = pool + (off << D.DECODED_SLOT_SHIFT);
    if (load<u32>(slot) != 0) continue;
    markCodeChunks(poolIndex, <u32>off, 4);
    const low = <u32>load<u16>(ram + off);
    if ((low & 3) != 3) decode16(low);
    else if (off == 0xffe) continue; // page-straddling: the interpreter decodes those on every fetch
    else decode32(low | (<u32>load<u16>(ram + off + 2) << 16));
    store<u32>(slot, decodedWord);
    store<i32>(slot + D.DECODED_IMM_OFFSET, decodedImm);
  }
}

/**
 * The host translated pool page `poolIndex` from generation `generation` of its content, decoded
 * by jitDecodePage just before: `count` instruction offsets (u32) at jitInstallBase() are the
 * instructions the translation covers. Their chunks now hold code (mmu.ts, "Code chunks"), so a
 * store there drops the page and the translation is refused at install. Called before the guest
 * runs again (the translation may be compiled while it runs). The chunks are marked after the
 * page was read, so the instructions are read again after marking: another thread's store that
 * came before the marks (and so was not seen as a store to code) shows there. Returns 1, or 0
 * when the page is gone or an instruction changed (the translation must not be installed).
 */
export function jitMarkCode(poolIndex: u32, generation: u32, count: u32): i32 {
  if (poolIndex >= <u32>R.POOL_PAGES) return 0;
  if (load<u32>(R.jitGenBase() + (<usize>poolIndex << 2)) != generation) return 0;
  const owner = load<i32>(R.poolOwnerBase() + (<usize>poolIndex << 2));
  if (owner < 0) return 0;
  for (let i: u32 = 0; i < count; i++) {
    markCodeChunks(poolIndex, load<u32>(R.jitInstallBase() + (<usize>i << 2)) & 0xffe, 4);
  }
  if (PARALLEL_HARTS) atomic.fence();
  const ram = R.RAM_WASM_BASE + (<usize>owner << 12);
  for (let i: u32 = 0; i < count; i++) {
    const off = <usize>(load<u32>(R.jitInstallBase() + (<usize>i << 2)) & 0xffe);
    const slot = R.jitDecodeBase() + (off << D.DECODED_SLOT_SHIFT);
    const low = <u32>load<u16>(ram + off);
    if ((low & 3) != 3) decode16(low);
    else if (off == 0xffe) continue; // never translated (decoded on every execution)
    else decode32(low | (<u32>load<u16>(ram + off + 2) << 16));
    if (decodedWord != load<u32>(slot) || decodedImm != load<i32>(slot + D.DECODED_IMM_OFFSET)) return 0;
  }
  return 1;
}

/** Removes pool page `poolIndex`'s translation (the host reclaims its table slot) and stops asking. */
export function jitEvict(poolIndex: u32): void {
  if (poolIndex >= <u32>R.POOL_PAGES) return;
  clearEntries(poolIndex);
  store<u32>(R.jitFuncBase() + (<usize>poolIndex << 2), 0);
  store<i32>(R.jitHotBase() + (<usize>poolIndex << 2), i32.MAX_VALUE);
}
