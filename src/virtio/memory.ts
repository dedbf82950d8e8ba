// Guest RAM as virtio devices see it (DMA), over the CPU's raw RAM view.
//
// Addresses and lengths come from the guest: descriptor addresses are 64-bit, lengths 32-bit.
// Every check here works for any number (negative, fractional, NaN, Infinity, beyond 2^53) and
// for bigints, without ever computing `paddr + length` in a way that could round: anything that
// is not a non-negative safe integer is outside RAM.
import type { GuestMemory } from "./types.ts";

/** A guest physical address that lies outside every RAM (used for unrepresentable addresses). */
export const INVALID_ADDRESS = -1;

/**
 * A 64-bit guest value given as two 32-bit halves, as a safe integer, or INVALID_ADDRESS when it is
 * 2^53 or more (no guest RAM lies there; Number cannot represent every such address exactly).
 */
export function u64FromHalves(low: number, high: number): number {
  const lo = low >>> 0;
  const hi = high >>> 0;
  if (hi > 0x1f_ffff) return INVALID_ADDRESS;
  return hi * 0x1_0000_0000 + lo;
}

/** A guest address given as a bigint (or number), as a safe integer or INVALID_ADDRESS. */
export function toGuestAddress(value: number | bigint): number {
  if (typeof value === "bigint") {
    return value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : INVALID_ADDRESS;
  }
  return Number.isSafeInteger(value) && value >= 0 ? value : INVALID_ADDRESS;
}

/**
 * The offset of [paddr, paddr + length) inside a RAM of `ramLength` bytes at `ramBase`, or -1.
 * Pure and overflow-safe: both subtractions are exact because all operands are safe integers.
 */
export function ramOffset(ramBase: number, ramLength: number, paddr: number | bigint, length: number | bigint): number {
  const p = toGuestAddress(paddr);
  const n = toGuestAddress(length);
  if (p < 0 || n < 0) return -1;
  if (p < ramBase) return -1;
  const offset = p - ramBase;
  if (offset > ramLength || n > ramLength - offset) return -1;
  return offset;
}

/**
 * GuestMemory over `ram` (index 0 = guest physical `ramBase`). `written(paddr, len)` is told about
 * every write made here or reported through written(), e.g. `(p, n) => cpu.ramWritten(p, n)` so
 * that decoded code for those pages is dropped.
 */
export function ramGuestMemory(ram: Uint8Array, ramBase: number, written: (paddr: number, length: number) => void): GuestMemory {
  if (!Number.isSafeInteger(ramBase) || ramBase < 0) throw new RangeError(`RAM base ${ramBase} is not a valid address`);
  if (ramBase + ram.length > Number.MAX_SAFE_INTEGER) throw new RangeError("RAM ends beyond 2^53");
  const length = ram.length;
  // The signatures take number (the contract); bigints are accepted as well at run time.
  return {
    contains(paddr: number, len: number): boolean {
      return ramOffset(ramBase, length, paddr, len) >= 0;
    },
    view(paddr: number, len: number): Uint8Array | undefined {
      const offset = ramOffset(ramBase, length, paddr, len);
      if (offset < 0) return undefined;
      const n = Number(len);
      return ram.subarray(offset, offset + n);
    },
    write(paddr: number, bytes: Uint8Array): boolean {
      const offset = ramOffset(ramBase, length, paddr, bytes.length);
      if (offset < 0) return false;
      ram.set(bytes, offset);
      if (bytes.length > 0) written(ramBase + offset, bytes.length);
      return true;
    },
    written(paddr: number, len: number): void {
      const offset = ramOffset(ramBase, length, paddr, len);
      if (offset < 0 || Number(len) === 0) return;
      written(ramBase + offset, Number(len));
    },
  };
}
