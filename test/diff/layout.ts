// Guest addresses used by both sides of the differential tests. They mirror oracle-layout.h
// (checked by oracle.ts when it builds the oracle) and fit inside Parley's RAM at 0x80000000,
// so code and scratch buffer have the same addresses under QEMU and under Parley.

/** 64 bytes before a page boundary: sequences cross it, sometimes in the middle of an instruction. */
export const CODE_BASE = 0x8000_0fc0;
/** Room for the generated code plus the oracle's epilogue (must stay below TRAP_BASE). */
export const CODE_MAX = 0x7000;
/** Parley only: mtvec points here, at a wfi, so a trap ends run() at a recognisable pc. */
export const TRAP_BASE = 0x8000_8000;
/** The scratch buffer straddles a page boundary (at its middle), for page-crossing accesses. */
export const SCRATCH = 0x8001_f800;
export const SCRATCH_SIZE = 0x1000;
/** The reserved base register x31 points at the middle of the scratch buffer (the boundary). */
export const BASE_REG = 31;
export const SCRATCH_BASE_REG_VALUE = SCRATCH + SCRATCH_SIZE / 2;
/** Offsets from x31 that stay inside the scratch buffer: [-2048, 2048). */
export const SCRATCH_LO = -SCRATCH_SIZE / 2;
export const SCRATCH_HI = SCRATCH_SIZE / 2;

/** The state a test case starts from (and, for results, ends in). */
export interface MachineState {
  /** x0..x31 as unsigned 64-bit values (x0 is 0). */
  x: bigint[];
  /** f0..f31 as raw 64-bit patterns. */
  f: bigint[];
  /** fflags in bits 4:0, frm in bits 7:5. */
  fcsr: number;
  /** The scratch buffer, SCRATCH_SIZE bytes. */
  mem: Uint8Array;
}
