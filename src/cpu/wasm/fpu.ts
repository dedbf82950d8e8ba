// Glue between the executor and the software floating point: FS gating, rounding-mode
// resolution, NaN-boxing and fflags accrual (unprivileged ISA chapters 11-12).
import * as L from "../layout";
import * as C from "../csr-numbers";
import { getState, setState, getF, setFRaw, MSTATUS_FS } from "./state";
import { markFpDirty } from "./csr";
import { sfTakeFlags } from "./softfloat";
import { decodedRm } from "./decode";

const CANONICAL_NAN_S: u32 = 0x7fc00000;
const BOX_S: i64 = 0xffffffff_00000000;

/**
 * The rounding mode for an FP instruction: its static field, or frm when dynamic. -1 when the
 * instruction is illegal: FP disabled (mstatus.FS = Off) or frm holds a reserved value.
 */
@inline export function roundingMode(word: u32): i32 {
  if ((getState(L.S_MSTATUS) & MSTATUS_FS) == 0) return -1;
  let rm = decodedRm(word);
  if (rm == C.RM_DYNAMIC) {
    rm = <u32>(getState(L.S_FCSR) >> C.FCSR_FRM_SHIFT) & C.FCSR_FRM_MASK;
    if (rm > <u32>C.RM_MAX_VALID) return -1;
  }
  return <i32>rm;
}

/** FP instructions without a rounding mode are still illegal with mstatus.FS = Off. */
@inline export function fpEnabled(): bool {
  return (getState(L.S_MSTATUS) & MSTATUS_FS) != 0;
}

/** A single-precision operand: anything not NaN-boxed reads as the canonical NaN. */
@inline export function getS(i: u32): u32 {
  const v = getF(i);
  return (v >>> 32) == 0xffffffff ? <u32>v : CANONICAL_NAN_S;
}
@inline export function setS(i: u32, v: u32): void {
  setFRaw(i, BOX_S | <i64>v);
  markFpDirty();
}
@inline export function setD(i: u32, v: i64): void {
  setFRaw(i, v);
  markFpDirty();
}
@inline export function getD(i: u32): i64 {
  return getF(i);
}

/** Folds the exception flags raised by the last softfloat operation into fflags. */
@inline export function accrueFlags(): void {
  const flags = sfTakeFlags();
  if (flags != 0) {
    setState(L.S_FCSR, getState(L.S_FCSR) | <i64>flags);
    markFpDirty();
  }
}
