// Parsing of virtio-blk requests (virtio spec 1.3, 5.2.6 "Device Operation"). parseRequest is a
// pure function of the chain, the guest bytes it reads through GuestMemory.view and the device's
// limits: it has no side effects, so it can be table-tested and fuzzed on its own.
//
// A request chain is
//   device-readable:  struct virtio_blk_req { le32 type; le32 reserved; le64 sector; }
//                     then data[] for OUT / DISCARD / WRITE_ZEROES
//   device-writable:  data[] for IN / GET_ID, then u8 status as the very last byte
// with no assumption about how the driver split those parts into buffers (2.6.4 "Message
// Framing"): the header may span several buffers, and the status byte shares its buffer with data
// when the driver chose so.
//
// Policy for a guest that breaks the rules (the guest is untrusted):
//  - no device-writable byte (nowhere to put the status), or fewer than 16 readable bytes (no
//    header) or buffers that are not guest RAM: the chain is malformed; the device asks for a
//    reset (2.1.2 DEVICE_NEEDS_RESET), as QEMU does for the same cases;
//  - anything else wrong (length not a multiple of 512, out of capacity, data in the wrong
//    direction, too many segments, write to a read-only device, ...) completes the request with
//    VIRTIO_BLK_S_IOERR; request types or flags the device does not implement complete with
//    VIRTIO_BLK_S_UNSUPP (5.2.6.2).
// The host allocation made here is bounded by the device's own limits (16 header bytes, at most
// max_discard_seg / max_write_zeroes_seg segments of 16 bytes), never by a guest-chosen length.

import type { DescriptorChain, GuestBuffer, GuestMemory } from "../types.ts";
import { addressAt, readFromBuffers, sliceBuffers, totalLength } from "../queue/chain.ts";
import {
  SECTOR_SIZE,
  VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_REQ_HEADER_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from "./spec.ts";

/** What the parser needs to know about the device and the negotiated features. */
export interface BlkRequestLimits {
  /** Disk size in 512-byte sectors (config capacity). At most 2^44 (a 2^53-byte disk). */
  readonly capacitySectors: number;
  /** VIRTIO_BLK_F_RO offered: every write request fails with IOERR (5.2.6.2). */
  readonly readOnly: boolean;
  /** VIRTIO_BLK_F_DISCARD negotiated; otherwise DISCARD is UNSUPP. */
  readonly discard: boolean;
  /** VIRTIO_BLK_F_WRITE_ZEROES negotiated; otherwise WRITE_ZEROES is UNSUPP. */
  readonly writeZeroes: boolean;
  /** Config max_discard_sectors / max_discard_seg / max_write_zeroes_sectors / max_write_zeroes_seg. */
  readonly maxDiscardSectors: number;
  readonly maxDiscardSeg: number;
  readonly maxWriteZeroesSectors: number;
  readonly maxWriteZeroesSeg: number;
}

/** A byte range of the disk, already checked to lie inside the capacity. */
export interface BlkRange {
  readonly offset: number;
  readonly length: number;
}

export interface BlkReadRequest {
  readonly type: typeof VIRTIO_BLK_T_IN;
  /** First sector, and the same position in bytes. */
  readonly sector: number;
  readonly offset: number;
  /** Bytes to read: a multiple of 512, offset + length <= disk size. */
  readonly length: number;
  /** The device-writable data buffers (the status byte excluded), total `length`. */
  readonly data: readonly GuestBuffer[];
}

export interface BlkWriteRequest {
  readonly type: typeof VIRTIO_BLK_T_OUT;
  readonly sector: number;
  readonly offset: number;
  readonly length: number;
  /** The device-readable data buffers (the header excluded), total `length`. */
  readonly data: readonly GuestBuffer[];
}

export interface BlkFlushRequest {
  readonly type: typeof VIRTIO_BLK_T_FLUSH;
}

export interface BlkGetIdRequest {
  readonly type: typeof VIRTIO_BLK_T_GET_ID;
  /** VIRTIO_BLK_ID_BYTES (20) device-writable bytes for the ID string. */
  readonly data: readonly GuestBuffer[];
}

export interface BlkDiscardRequest {
  readonly type: typeof VIRTIO_BLK_T_DISCARD;
  readonly ranges: readonly BlkRange[];
}

export interface BlkWriteZeroesRequest {
  readonly type: typeof VIRTIO_BLK_T_WRITE_ZEROES;
  readonly ranges: readonly (BlkRange & { readonly unmap: boolean })[];
}

export type BlkRequest =
  | BlkReadRequest
  | BlkWriteRequest
  | BlkFlushRequest
  | BlkGetIdRequest
  | BlkDiscardRequest
  | BlkWriteZeroesRequest;

export type BlkParseResult =
  /** A valid request for the device to perform; its status byte is at guest address statusAddr. */
  | { readonly kind: "request"; readonly request: BlkRequest; readonly statusAddr: number }
  /** A request to complete at once with `status` (IOERR or UNSUPP); `type` is the raw header type. */
  | {
      readonly kind: "reject";
      readonly type: number;
      readonly status: typeof VIRTIO_BLK_S_IOERR | typeof VIRTIO_BLK_S_UNSUPP;
      readonly statusAddr: number;
      readonly reason: string;
    }
  /** Not a virtio-blk request at all: the device must not complete it and asks for a reset. */
  | { readonly kind: "malformed"; readonly reason: string };

/** Above this the high word of a le64 sector cannot be a sector of a disk smaller than 2^53 bytes. */
const MAX_SECTOR_HIGH_WORD = 0x20_0000; // 2^21: 2^21 * 2^32 sectors = 2^53 sectors

/**
 * The 64-bit sector number (lo, hi words) as a number when it addresses a range of `bytes` bytes
 * lying entirely inside a disk of capacitySectors sectors; undefined otherwise. Overflow-safe:
 * every intermediate value stays below 2^53.
 */
export function checkSectorRange(lo: number, hi: number, bytes: number, capacitySectors: number): number | undefined {
  if (hi >= MAX_SECTOR_HIGH_WORD) return undefined;
  const sector = hi * 0x1_0000_0000 + lo;
  if (sector > capacitySectors) return undefined;
  if (bytes > (capacitySectors - sector) * SECTOR_SIZE) return undefined;
  return sector;
}

function reject(
  type: number,
  status: typeof VIRTIO_BLK_S_IOERR | typeof VIRTIO_BLK_S_UNSUPP,
  statusAddr: number,
  reason: string,
): BlkParseResult {
  return { kind: "reject", type, status, statusAddr, reason };
}

/**
 * Parses the request carried by `chain` (5.2.6). Pure: reads guest memory through memory.view,
 * writes nothing, allocates at most max(maxDiscardSeg, maxWriteZeroesSeg) * 16 bytes.
 */
export function parseRequest(
  chain: DescriptorChain,
  memory: Pick<GuestMemory, "view">,
  limits: BlkRequestLimits,
): BlkParseResult {
  // Recompute the lengths rather than trusting the summary fields.
  const readableLength = totalLength(chain.readable);
  const writableLength = totalLength(chain.writable);
  if (Number.isNaN(readableLength) || Number.isNaN(writableLength)) {
    return { kind: "malformed", reason: "descriptor buffer with an invalid address or length" };
  }
  if (readableLength !== chain.readableLength || writableLength !== chain.writableLength) {
    return { kind: "malformed", reason: "chain lengths do not match its buffers" };
  }

  // The status byte is the last device-writable byte (5.2.6).
  if (writableLength < 1) {
    return { kind: "malformed", reason: "no device-writable status byte" };
  }
  const statusAddr = addressAt(chain.writable, writableLength - 1)!;
  if (!memory.view(statusAddr, 1)) {
    return { kind: "malformed", reason: "status byte outside guest RAM" };
  }

  if (readableLength < VIRTIO_BLK_REQ_HEADER_SIZE) {
    return { kind: "malformed", reason: `request header too short (${readableLength} of ${VIRTIO_BLK_REQ_HEADER_SIZE} bytes)` };
  }
  const header = new Uint8Array(VIRTIO_BLK_REQ_HEADER_SIZE);
  if (readFromBuffers(memory, chain.readable, 0, header) !== header.length) {
    return { kind: "malformed", reason: "request header outside guest RAM" };
  }
  const hv = new DataView(header.buffer);
  const type = hv.getUint32(0, true);
  // hv.getUint32(4) is `reserved` (formerly ioprio): ignored.
  const sectorLo = hv.getUint32(8, true);
  const sectorHi = hv.getUint32(12, true);

  // data[] in each direction: after the header / before the status byte.
  const outData = readableLength - VIRTIO_BLK_REQ_HEADER_SIZE;
  const inData = writableLength - 1;

  switch (type) {
    case VIRTIO_BLK_T_IN: {
      if (outData !== 0) return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, "read request with device-readable data");
      if (inData % SECTOR_SIZE !== 0) {
        return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, `read length ${inData} is not a multiple of 512`);
      }
      const sector = checkSectorRange(sectorLo, sectorHi, inData, limits.capacitySectors);
      if (sector === undefined) return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, "read beyond capacity");
      return {
        kind: "request",
        statusAddr,
        request: {
          type,
          sector,
          offset: sector * SECTOR_SIZE,
          length: inData,
          data: sliceBuffers(chain.writable, 0, inData),
        },
      };
    }

    case VIRTIO_BLK_T_OUT: {
      // 5.2.6.2: IOERR for a write when VIRTIO_BLK_F_RO is offered, and no data written.
      if (limits.readOnly) return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, "write to a read-only device");
      if (inData !== 0) return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, "write request with device-writable data");
      if (outData % SECTOR_SIZE !== 0) {
        return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, `write length ${outData} is not a multiple of 512`);
      }
      const sector = checkSectorRange(sectorLo, sectorHi, outData, limits.capacitySectors);
      if (sector === undefined) return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, "write beyond capacity");
      return {
        kind: "request",
        statusAddr,
        request: {
          type,
          sector,
          offset: sector * SECTOR_SIZE,
          length: outData,
          data: sliceBuffers(chain.readable, VIRTIO_BLK_REQ_HEADER_SIZE, outData),
        },
      };
    }

    case VIRTIO_BLK_T_FLUSH:
      // 5.2.6.1: the driver sets sector to 0 and SHOULD NOT include data; both are ignored.
      return { kind: "request", statusAddr, request: { type } };

    case VIRTIO_BLK_T_GET_ID: {
      if (outData !== 0) return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, "GET_ID with device-readable data");
      // 5.2.6.1: "The length of data MUST be 20 bytes for VIRTIO_BLK_T_GET_ID requests."
      if (inData !== VIRTIO_BLK_ID_BYTES) {
        return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, `GET_ID data is ${inData} bytes, not ${VIRTIO_BLK_ID_BYTES}`);
      }
      return { kind: "request", statusAddr, request: { type, data: sliceBuffers(chain.writable, 0, inData) } };
    }

    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
      const discard = type === VIRTIO_BLK_T_DISCARD;
      const name = discard ? "DISCARD" : "WRITE_ZEROES";
      if (!(discard ? limits.discard : limits.writeZeroes)) {
        return reject(type, VIRTIO_BLK_S_UNSUPP, statusAddr, `${name} without its feature`);
      }
      if (limits.readOnly) return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, `${name} on a read-only device`);
      if (inData !== 0) return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, `${name} with device-writable data`);
      if (outData === 0 || outData % VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE !== 0) {
        return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, `${name} data of ${outData} bytes is not a whole number of segments`);
      }
      const count = outData / VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE;
      const maxSeg = discard ? limits.maxDiscardSeg : limits.maxWriteZeroesSeg;
      const maxSectors = discard ? limits.maxDiscardSectors : limits.maxWriteZeroesSectors;
      // Checked before allocating: the segment array is at most maxSeg * 16 bytes.
      if (count > maxSeg) return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, `${name} with ${count} segments (max ${maxSeg})`);
      const segBytes = new Uint8Array(outData);
      if (readFromBuffers(memory, chain.readable, VIRTIO_BLK_REQ_HEADER_SIZE, segBytes) !== segBytes.length) {
        return { kind: "malformed", reason: `${name} segments outside guest RAM` };
      }
      const sv = new DataView(segBytes.buffer);
      // 5.2.6.2: UNSUPP when any unknown flag is set, and for DISCARD when unmap is set; checked
      // over every segment before any range so the answer does not depend on segment order.
      const allowedFlags = discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
      for (let i = 0; i < count; i++) {
        const flags = sv.getUint32(i * VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE + 12, true);
        if ((flags & ~allowedFlags) >>> 0 !== 0) {
          return reject(type, VIRTIO_BLK_S_UNSUPP, statusAddr, `${name} segment ${i} has unsupported flags 0x${flags.toString(16)}`);
        }
      }
      const ranges: { offset: number; length: number; unmap: boolean }[] = [];
      for (let i = 0; i < count; i++) {
        const base = i * VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE;
        const lo = sv.getUint32(base, true);
        const hi = sv.getUint32(base + 4, true);
        const numSectors = sv.getUint32(base + 8, true);
        const flags = sv.getUint32(base + 12, true);
        if (numSectors > maxSectors) {
          return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, `${name} segment ${i}: ${numSectors} sectors (max ${maxSectors})`);
        }
        const length = numSectors * SECTOR_SIZE;
        const sector = checkSectorRange(lo, hi, length, limits.capacitySectors);
        if (sector === undefined) return reject(type, VIRTIO_BLK_S_IOERR, statusAddr, `${name} segment ${i} beyond capacity`);
        ranges.push({ offset: sector * SECTOR_SIZE, length, unmap: (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0 });
      }
      if (discard) {
        return { kind: "request", statusAddr, request: { type, ranges: ranges.map(({ offset, length }) => ({ offset, length })) } };
      }
      return { kind: "request", statusAddr, request: { type, ranges } };
    }

    default:
      // GET_LIFETIME (no VIRTIO_BLK_F_LIFETIME), SECURE_ERASE (no VIRTIO_BLK_F_SECURE_ERASE), zoned
      // commands (no VIRTIO_BLK_F_ZONED), legacy SCSI / barrier types and anything unknown.
      return reject(type, VIRTIO_BLK_S_UNSUPP, statusAddr, `unsupported request type ${type}`);
  }
}
