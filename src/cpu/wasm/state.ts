// Hart state accessors and architectural constants shared by the engine's modules.
import * as L from "../layout";
import * as C from "../csr-numbers";
import { HART_BASE } from "./regions";

/** This hart's state block. */
@inline export function stateBase(): usize { return HART_BASE + <usize>L.HART_STATE; }

@inline export function getX(i: u32): i64 { return load<i64>(stateBase() + (<usize>i << 3)); }
/** Writes x[i]; callers guarantee i != 0 (the decoder turns writes to x0 by pure ALU ops into NOPs). */
@inline export function setX(i: u32, v: i64): void { store<i64>(stateBase() + (<usize>i << 3), v); }
/** Writes x[i] for ops that may name x0 (loads, jumps, CSR, AMO, FP-to-int): x0 is re-zeroed. */
@inline export function setXSafe(i: u32, v: i64): void {
  store<i64>(stateBase() + (<usize>i << 3), v);
  store<i64>(stateBase(), 0);
}
@inline export function getF(i: u32): i64 { return load<i64>(stateBase() + L.S_F + (<usize>i << 3)); }
@inline export function setFRaw(i: u32, v: i64): void { store<i64>(stateBase() + L.S_F + (<usize>i << 3), v); }

@inline export function getState(offset: i32): i64 { return load<i64>(stateBase() + <usize>offset); }
@inline export function setState(offset: i32, v: i64): void { store<i64>(stateBase() + <usize>offset, v); }
@inline export function bumpCounter(offset: i32): void { store<i64>(stateBase() + <usize>offset, load<i64>(stateBase() + <usize>offset) + 1); }

// Privilege levels: the shared definition in src/cpu/csr-numbers.ts.
export { PRIV_U, PRIV_S, PRIV_M } from "../csr-numbers";

// mstatus fields (privileged ISA 3.1.6).
export const MSTATUS_SIE: i64 = 1 << 1;
export const MSTATUS_MIE: i64 = 1 << 3;
export const MSTATUS_SPIE: i64 = 1 << 5;
export const MSTATUS_UBE: i64 = 1 << 6;
export const MSTATUS_MPIE: i64 = 1 << 7;
export const MSTATUS_SPP: i64 = 1 << 8;
export const MSTATUS_VS: i64 = 3 << 9;
export const MSTATUS_MPP_SHIFT: i64 = 11;
export const MSTATUS_MPP: i64 = 3 << 11;
export const MSTATUS_FS: i64 = C.MSTATUS_FS;
export const MSTATUS_FS_INITIAL: i64 = C.MSTATUS_FS_INITIAL;
export const MSTATUS_FS_DIRTY: i64 = C.MSTATUS_FS_DIRTY;
export const MSTATUS_XS: i64 = 3 << 15;
export const MSTATUS_MPRV: i64 = 1 << 17;
export const MSTATUS_SUM: i64 = 1 << 18;
export const MSTATUS_MXR: i64 = 1 << 19;
export const MSTATUS_TVM: i64 = 1 << 20;
export const MSTATUS_TW: i64 = 1 << 21;
export const MSTATUS_TSR: i64 = 1 << 22;
export const MSTATUS_UXL: i64 = 3 << 32;
export const MSTATUS_SXL: i64 = 3 << 34;
export const MSTATUS_SD: i64 = 1 << 63;

// Interrupt numbers and mip bits: the shared definition in src/cpu/interrupts.ts.
export * from "../interrupts";

// Exception causes (privileged ISA table 3.6).
export const CAUSE_MISALIGNED_FETCH: i64 = 0;
export const CAUSE_FETCH_ACCESS: i64 = 1;
export const CAUSE_ILLEGAL_INSTRUCTION: i64 = 2;
export const CAUSE_BREAKPOINT: i64 = 3;
export const CAUSE_MISALIGNED_LOAD: i64 = 4;
export const CAUSE_LOAD_ACCESS: i64 = 5;
export const CAUSE_MISALIGNED_STORE: i64 = 6;
export const CAUSE_STORE_ACCESS: i64 = 7;
export const CAUSE_USER_ECALL: i64 = 8;
export const CAUSE_SUPERVISOR_ECALL: i64 = 9;
export const CAUSE_MACHINE_ECALL: i64 = 11;
export const CAUSE_FETCH_PAGE_FAULT: i64 = 12;
export const CAUSE_LOAD_PAGE_FAULT: i64 = 13;
export const CAUSE_STORE_PAGE_FAULT: i64 = 15;
export const CAUSE_INTERRUPT: i64 = 1 << 63;

// menvcfg (privileged ISA 3.1.18).
export const MENVCFG_FIOM: i64 = 1;
export const MENVCFG_STCE: i64 = <i64>1 << C.MENVCFG_STCE_BIT;

// Memory access kinds used by translation and the slow paths.
export const ACCESS_FETCH: i32 = 0;
export const ACCESS_LOAD: i32 = 1;
export const ACCESS_STORE: i32 = 2;
