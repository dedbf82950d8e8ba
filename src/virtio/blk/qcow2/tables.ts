// Pure helpers over qcow2 tables (QEMU docs/interop/qcow2.txt, "Cluster mapping" and "Host
// cluster management"): decoding L1/L2/refcount-table entries into checked offsets, and reading
// and writing refcount block entries of any width (1 to 64 bits).

import { Qcow2FormatError } from "./header.ts";
import {
  L1E_OFFSET_MASK,
  L1E_RESERVED_MASK,
  L2E_OFFSET_MASK,
  L2E_STD_RESERVED_MASK,
  QCOW_OFLAG_COMPRESSED,
  QCOW_OFLAG_COPIED,
  QCOW_OFLAG_ZERO,
  REFT_RESERVED_MASK,
} from "./spec.ts";

/** What a guest cluster is, from its L2 entry. */
export type L2Mapping =
  | { kind: "unallocated" }
  /** Reads as zeroes; `host` is a preallocated cluster kept for later writes (0 if none). */
  | { kind: "zero"; host: number; copied: boolean }
  | { kind: "normal"; host: number; copied: boolean }
  /**
   * Compressed data at byte `host` (not aligned), `sectors` 512-byte sectors counted from the
   * sector holding `host` ("Compressed Clusters Descriptor").
   */
  | { kind: "compressed"; host: number; sectors: number };

function offsetOf(entry: bigint, mask: bigint): number {
  // Bits 9-55: at most 2^56, which may exceed 2^53; such an offset lies past any real file.
  const offset = entry & mask;
  return offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset);
}

/**
 * Decodes an L2 entry (standard or compressed) of an image with 2^clusterBits-byte clusters.
 * Throws Qcow2FormatError on reserved bits.
 */
export function decodeL2Entry(entry: bigint, clusterBits: number): L2Mapping {
  if (entry & QCOW_OFLAG_COMPRESSED) {
    // Bits 0..x-1 the host offset, x..61 the additional sectors, x = 62 - (cluster_bits - 8).
    const x = BigInt(62 - (clusterBits - 8));
    const host = entry & ((1n << x) - 1n) & 0x00ff_ffff_ffff_ffffn;
    const extra = Number((entry >> x) & ((1n << BigInt(clusterBits - 8)) - 1n));
    return { kind: "compressed", host: host > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(host), sectors: extra + 1 };
  }
  if (entry & L2E_STD_RESERVED_MASK) throw new Qcow2FormatError(`L2 entry 0x${entry.toString(16)} has reserved bits set`);
  const host = offsetOf(entry, L2E_OFFSET_MASK);
  const copied = (entry & QCOW_OFLAG_COPIED) !== 0n;
  if (entry & QCOW_OFLAG_ZERO) return { kind: "zero", host, copied };
  if (host === 0) {
    if (copied) throw new Qcow2FormatError(`L2 entry 0x${entry.toString(16)} maps a cluster to offset 0 (only valid with an external data file)`);
    return { kind: "unallocated" };
  }
  return { kind: "normal", host, copied };
}

/** The L2 entry for a data cluster at host (refcount one), optionally reading as zeroes. */
export function encodeL2Entry(host: number, zero = false): bigint {
  let entry = host === 0 ? 0n : BigInt(host) | QCOW_OFLAG_COPIED;
  if (zero) entry |= QCOW_OFLAG_ZERO;
  return entry;
}

/** Decodes an L1 entry into the L2 table's offset (0: none) and its "copied" bit. */
export function decodeL1Entry(entry: bigint): { offset: number; copied: boolean } {
  if (entry & L1E_RESERVED_MASK) throw new Qcow2FormatError(`L1 entry 0x${entry.toString(16)} has reserved bits set`);
  return { offset: offsetOf(entry, L1E_OFFSET_MASK), copied: (entry & QCOW_OFLAG_COPIED) !== 0n };
}

export function encodeL1Entry(offset: number): bigint {
  return offset === 0 ? 0n : BigInt(offset) | QCOW_OFLAG_COPIED;
}

/** Decodes a refcount table entry into the refcount block's offset (0: none). */
export function decodeRefcountTableEntry(entry: bigint): number {
  if (entry & REFT_RESERVED_MASK) throw new Qcow2FormatError(`refcount table entry 0x${entry.toString(16)} has reserved bits set`);
  return offsetOf(entry, ~REFT_RESERVED_MASK & 0xffff_ffff_ffff_ffffn);
}

/** Entries in a refcount block of clusterSize bytes with 2^order-bit refcounts. */
export function refcountsPerBlock(clusterSize: number, order: number): number {
  return (clusterSize * 8) / 2 ** order;
}

/** The largest refcount an entry of 2^order bits holds. */
export function maxRefcount(order: number): number {
  return order >= 6 ? Number.MAX_SAFE_INTEGER : 2 ** (2 ** order) - 1;
}

/** Refcount `index` of a block; sub-byte entries count bit 0 as the least significant (spec). */
export function getRefcount(block: Uint8Array, index: number, order: number): number {
  const bits = 2 ** order;
  if (bits < 8) {
    const bit = index * bits;
    return (block[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1);
  }
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  switch (bits) {
    case 8:
      return block[index];
    case 16:
      return view.getUint16(index * 2);
    case 32:
      return view.getUint32(index * 4);
    default: {
      const high = view.getUint32(index * 8);
      // Above 2^53 the count is only compared with 0 and 1 and can never be decremented to 0.
      return high >= 0x20_0000 ? Number.MAX_SAFE_INTEGER : high * 2 ** 32 + view.getUint32(index * 8 + 4);
    }
  }
}

export function setRefcount(block: Uint8Array, index: number, order: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > maxRefcount(order)) {
    throw new Qcow2FormatError(`refcount ${value} does not fit in ${2 ** order} bits`);
  }
  const bits = 2 ** order;
  if (bits < 8) {
    const bit = index * bits;
    const mask = ((1 << bits) - 1) << (bit & 7);
    block[bit >> 3] = (block[bit >> 3] & ~mask) | (value << (bit & 7));
    return;
  }
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  switch (bits) {
    case 8:
      block[index] = value;
      return;
    case 16:
      view.setUint16(index * 2, value);
      return;
    case 32:
      view.setUint32(index * 4, value);
      return;
    default:
      view.setUint32(index * 8, Math.floor(value / 2 ** 32));
      view.setUint32(index * 8 + 4, value >>> 0);
  }
}
