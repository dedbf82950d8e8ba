// Decoding of the parameter kinds that several SBI extensions share (SBI spec v2.0 §3):
// EID/FID registers, 32-bit parameters, hart lists (§3.1) and physical address ranges (§3.2).
// Pure functions over bigint: no host access, no allocation proportional to guest input.
import { SBI_ERR_INVALID_PARAM, type PhysicalRange, type SbiErrorCode } from "./types.ts";

export const XLEN = 64n;
const U64_MASK = (1n << XLEN) - 1n;
/** 2^XLEN - 1: "-1" as an unsigned long. */
export const ULONG_MAX = U64_MASK;

/**
 * An id no extension or function can have: EIDs and FIDs are signed 32-bit (SBI spec §3), so
 * anything outside [-2^31, 2^31) never matches a table entry.
 */
export const SBI_ID_INVALID = -0x1_0000_0000;

/**
 * a7/a6 to an EID/FID. SBI spec §3: they "are encoded as signed 32-bit integers" and follow the
 * standard calling convention, which on RV64 keeps 32-bit values sign-extended to 64 bits. A
 * register that is not such a sign extension carries no valid id; like OpenSBI and KVM (which
 * compare the whole register) Parley then reports SBI_ERR_NOT_SUPPORTED rather than guessing.
 */
export function decodeSbiId(register: bigint): number {
  const value = BigInt.asIntN(64, register);
  return BigInt.asIntN(32, value) === value ? Number(value) : SBI_ID_INVALID;
}

/**
 * A parameter the spec declares 32 bits wide (uint32_t reset_type, suspend_type...). SBI spec §3:
 * "In case the data is defined as 32bit wide, higher privilege software must ensure that it only
 * uses 32 bit data" -- the upper half of the register is ignored. This also accepts both the
 * zero-extended (0x80000000) and the psABI sign-extended (0xffffffff80000000) forms.
 */
export function u32Param(register: bigint): number {
  return Number(register & 0xffff_ffffn);
}

// ---- hart list (SBI spec §3.1) -------------------------------------------------------------

/** hart_mask_base = -1: ignore hart_mask, all available harts (SBI spec §3.1). */
export const SBI_HART_MASK_BASE_ALL = ULONG_MAX;

export type HartListResult = { harts: number[] } | { error: SbiErrorCode };

/**
 * Expands (hart_mask, hart_mask_base) into hart ids. SBI spec §3.1, "Hart Mask Errors":
 * SBI_ERR_INVALID_PARAM when "either hart_mask_base, or at least one hartid from hart_mask, is
 * not valid". hartid = hart_mask_base + bit is computed without wrapping at 2^64, so a base
 * near 2^64 cannot alias small hart ids. An empty mask with a valid base targets no hart.
 */
export function decodeHartMask(hartMask: bigint, hartMaskBase: bigint, hartCount: number): HartListResult {
  const count = BigInt(hartCount);
  const mask = hartMask & U64_MASK;
  const base = hartMaskBase & U64_MASK;
  if (base === SBI_HART_MASK_BASE_ALL) return { harts: allHarts(hartCount) };
  if (base >= count) return { error: SBI_ERR_INVALID_PARAM };
  // Every set bit must name a hart: the highest set bit decides.
  if (mask !== 0n && base + BigInt(mask.toString(2).length - 1) >= count) return { error: SBI_ERR_INVALID_PARAM };
  const harts: number[] = [];
  for (let bit = 0; mask >> BigInt(bit) !== 0n; bit++) {
    if ((mask >> BigInt(bit)) & 1n) harts.push(Number(base) + bit);
  }
  return { harts };
}

export function allHarts(hartCount: number): number[] {
  return Array.from({ length: hartCount }, (_, i) => i);
}

// ---- physical ranges (SBI spec §3.2) -------------------------------------------------------

/**
 * True when [paddr, paddr+length) lies entirely inside one RAM region. All arithmetic is in
 * bigint, so a length near 2^64 or a range wrapping past 2^64 is simply "not RAM" -- never an
 * overflow, never an allocation. A zero length is inside RAM when paddr is within a region.
 */
export function rangeInRam(regions: readonly PhysicalRange[], paddr: bigint, length: bigint): boolean {
  if (paddr < 0n || length < 0n || paddr + length > ULONG_MAX + 1n) return false;
  return regions.some((r) => paddr >= r.base && paddr + length <= r.base + r.size && (length > 0n || paddr < r.base + r.size));
}

/**
 * A shared-memory range given as (num_bytes, base_addr_lo, base_addr_hi) (SBI spec §3.2 and
 * §12): on RV64 base_addr_hi holds address bits 64..127, so any non-zero value points above
 * the 64-bit physical address space and cannot be RAM.
 */
export function sharedMemoryInRam(regions: readonly PhysicalRange[], numBytes: bigint, lo: bigint, hi: bigint): boolean {
  return hi === 0n && rangeInRam(regions, lo, numBytes);
}
