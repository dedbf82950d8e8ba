// The execution engine's exports: what src/cpu/cpu.ts calls.
import * as L from "../layout";
import * as C from "../csr-numbers";
import { getState, setState, PRIV_M, MSTATUS_FS } from "./state";
import { configureMemory, resetCodeCache, flushAll, invalidateRange, updateContexts, drainCodeQueue, dropSuspects } from "./mmu";
export { queueHostWrite, markDirtyRange, dropWriteTags } from "./mmu";
import { csrRead, csrWrite, csrIllegal, resetHart, CSR_FFLAGS, CSR_FCSR, CSR_MINSTRET } from "./csr";
export { run } from "./exec";
export { jitAmo, jitFp, jitStore, jitLoad, jitCsr, jitDecodePage, jitDecodeStraddling, jitInstall, jitEvict, jitRearm, jitPredecode, jitMarkCode } from "./jit";

/** Applies the configuration in the state block and resets the hart. */
export function init(): void {
  configureMemory();
  resetCodeCache();
  resetHart();
}

/**
 * A remote fence (SBI RFENCE) performed by this hart's own thread: SFENCE.VMA's effect (every
 * translation dropped) and FENCE.I's (code other harts wrote, suspect pages).
 */
export function remoteFence(): void {
  flushTlb();
  drainCodeQueue();
  dropSuspects();
}

export function flushTlb(): void {
  configureMemory(); // the watch range may have changed
  flushAll();
  updateContexts();
}

/** The host wrote guest RAM at [offset, offset + length) directly (DMA, loaders). */
export function invalidateCode(offset: u32, length: u32): void {
  invalidateRange(offset, length);
}

/** CSR read with M-mode rights for the host (FP CSRs readable even with FS = Off). */
export function readCsr(csr: u32): i64 {
  if (csr >= <u32>CSR_FFLAGS && csr <= <u32>CSR_FCSR) {
    const fcsr = getState(L.S_FCSR);
    return csr == CSR_FCSR ? fcsr & 0xff : csr == CSR_FFLAGS ? fcsr & C.FCSR_FFLAGS_MASK : (fcsr >> C.FCSR_FRM_SHIFT) & C.FCSR_FRM_MASK;
  }
  const saved = getState(L.S_PRIV);
  setState(L.S_PRIV, PRIV_M);
  const value = csrRead(csr);
  setState(L.S_PRIV, saved);
  return csrIllegal ? 0 : value;
}

/** CSR write with M-mode rights for the host. */
export function writeCsr(csr: u32, value: i64): void {
  const saved = getState(L.S_PRIV);
  const savedStatus = getState(L.S_MSTATUS);
  setState(L.S_PRIV, PRIV_M);
  if (csr == CSR_MINSTRET) setState(L.S_MINSTRET, value); // no instruction retires around a host write
  else csrWrite(csr, value);
  setState(L.S_PRIV, saved);
  // An FP CSR written by the host does not count as the guest dirtying its FP state.
  if (csr >= <u32>CSR_FFLAGS && csr <= <u32>CSR_FCSR) setState(L.S_MSTATUS, (getState(L.S_MSTATUS) & ~MSTATUS_FS) | (savedStatus & MSTATUS_FS) | (savedStatus & (<i64>1 << 63)));
  updateContexts();
}
