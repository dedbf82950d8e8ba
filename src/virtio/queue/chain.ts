// Descriptor chains: what the pure ring parsers return (ChainBuilder enforces the rules common to
// both ring layouts), and the one reader and writer device models use to move bytes between host
// buffers and a chain's guest buffers without trusting anything in it.
import type { DescriptorChain, GuestBuffer, GuestMemory } from "../types.ts";
import { VIRTQ_MAX_CHAIN_BYTES } from "../constants.ts";

/** Why a chain (or ring entry) was rejected; the queue consumes it and reports VirtqueueError. */
export interface ChainError {
  readonly error: string;
  /** Ring descriptors the rejected entry covered as far as it was read (packed rings skip them). */
  readonly descriptorCount: number;
  /** The id to return it under (split head / packed buffer id), when one could be determined. */
  readonly id?: number;
}

export function isChainError(value: DescriptorChain | ChainError): value is ChainError {
  return (value as ChainError).error !== undefined;
}

export function chainError(error: string, descriptorCount: number, id?: number): ChainError {
  return { error, descriptorCount, id };
}

/**
 * Collects the buffers of one chain while enforcing the rules common to both ring layouts:
 * every non-empty buffer lies inside guest RAM, device-readable buffers come before
 * device-writable ones (spec 2.7.4.2 / 2.8.17), and the chain holds at most 2^32 bytes
 * (spec 2.7.5.2). Zero-length buffers are accepted and dropped (they carry no data and
 * their address is meaningless).
 */
export class ChainBuilder {
  readonly readable: GuestBuffer[] = [];
  readonly writable: GuestBuffer[] = [];
  readableLength = 0;
  writableLength = 0;
  private sawWritable = false;

  constructor(private readonly memory: GuestMemory) {}

  /** Adds one buffer; returns an error message or undefined. */
  add(addr: number, len: number, writable: boolean): string | undefined {
    if (writable) this.sawWritable = true;
    else if (this.sawWritable) return "device-readable descriptor after a device-writable one";
    if (len === 0) return undefined;
    if (addr < 0 || !this.memory.contains(addr, len)) return `buffer 0x${addr.toString(16)}+${len} is outside guest RAM`;
    if (this.readableLength + this.writableLength + len > VIRTQ_MAX_CHAIN_BYTES) return "chain longer than 2^32 bytes";
    if (writable) {
      this.writable.push({ addr, len });
      this.writableLength += len;
    } else {
      this.readable.push({ addr, len });
      this.readableLength += len;
    }
    return undefined;
  }

  build(id: number, descriptorCount: number): DescriptorChain {
    return {
      id,
      readable: this.readable,
      writable: this.writable,
      readableLength: this.readableLength,
      writableLength: this.writableLength,
      descriptorCount,
    };
  }
}

// ---- Reading and writing a chain's buffers ---------------------------------------------------
//
// The one implementation every device model uses to move bytes between host buffers and guest
// buffers. The driver may split any part of a request over any number of buffers (spec 2.6.4
// "Message Framing"), so the device addresses bytes by offset into the concatenation of a chain's
// readable (or writable) buffers. Every piece goes through GuestMemory, which checks it against
// guest RAM, even though the queue layer already checked the chain: a buffer list may also be a
// slice of one (sliceBuffers) or come from a test. Zero-length buffers carry no data and are
// skipped, as the queue layer drops them.

/** Sum of the buffer lengths; NaN when an address or length is not a non-negative safe integer. */
export function totalLength(buffers: readonly GuestBuffer[]): number {
  let total = 0;
  for (const b of buffers) {
    if (!Number.isSafeInteger(b.len) || b.len < 0 || !Number.isSafeInteger(b.addr) || b.addr < 0) return NaN;
    total += b.len;
  }
  return Number.isSafeInteger(total) ? total : NaN;
}

/**
 * The sub-list covering bytes [start, start + length) of the concatenated buffers (empty pieces
 * are skipped). The caller guarantees start + length <= totalLength(buffers). Pure; the result
 * has at most buffers.length entries.
 */
export function sliceBuffers(buffers: readonly GuestBuffer[], start: number, length: number): GuestBuffer[] {
  const out: GuestBuffer[] = [];
  let skip = start;
  let left = length;
  for (const b of buffers) {
    if (left <= 0) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, left);
    if (n > 0) out.push({ addr: b.addr + skip, len: n });
    left -= n;
    skip = 0;
  }
  return out;
}

/** The guest address of byte `index` of the concatenated buffers, or undefined when out of range. Pure. */
export function addressAt(buffers: readonly GuestBuffer[], index: number): number | undefined {
  let skip = index;
  for (const b of buffers) {
    if (skip < b.len) return b.addr + skip;
    skip -= b.len;
  }
  return undefined;
}

/**
 * Copies bytes of the concatenated buffers, starting `offset` bytes into them, into `into`.
 * Returns how many were copied: `into.length` unless the buffers end first or a piece is not
 * guest RAM (then it stops there). Reads only.
 */
export function readFromBuffers(memory: Pick<GuestMemory, "view">, buffers: readonly GuestBuffer[], offset: number, into: Uint8Array): number {
  let skip = offset;
  let done = 0;
  for (const b of buffers) {
    if (done >= into.length) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, into.length - done);
    const view = memory.view(b.addr + skip, n);
    if (!view || view.length < n) break;
    into.set(view.subarray(0, n), done);
    done += n;
    skip = 0;
  }
  return done;
}

/**
 * Copies `from` into the concatenated buffers starting `offset` bytes into them (every piece is
 * reported to the memory's written()). Returns how many bytes were written: `from.length` unless
 * the buffers end first or a piece is not guest RAM (pieces before it stay written).
 */
export function writeToBuffers(memory: Pick<GuestMemory, "write">, buffers: readonly GuestBuffer[], offset: number, from: Uint8Array): number {
  let skip = offset;
  let done = 0;
  for (const b of buffers) {
    if (done >= from.length) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, from.length - done);
    if (!memory.write(b.addr + skip, from.subarray(done, done + n))) break;
    done += n;
    skip = 0;
  }
  return done;
}

/**
 * Views of guest RAM (no copy) for every non-empty buffer, in order, for host I/O straight into or
 * out of guest memory; undefined when any piece is not entirely guest RAM (then nothing may be
 * moved). Each view covers exactly its buffer, so whatever is written through them stays inside
 * the buffers; writes must be reported with reportWritten() afterwards.
 */
export function guestViews(memory: Pick<GuestMemory, "view">, buffers: readonly GuestBuffer[]): Uint8Array[] | undefined {
  const views: Uint8Array[] = [];
  for (const b of buffers) {
    if (b.len === 0) continue;
    const view = memory.view(b.addr, b.len);
    if (!view || view.length !== b.len) return undefined;
    views.push(view);
  }
  return views;
}

/** Reports writes made through guestViews() of these buffers (drops decoded code, marks pages dirty). */
export function reportWritten(memory: Pick<GuestMemory, "written">, buffers: readonly GuestBuffer[]): void {
  for (const b of buffers) if (b.len > 0) memory.written(b.addr, b.len);
}

/**
 * Exactly `length` bytes starting `offset` bytes into the concatenated buffers, or undefined when
 * the buffers hold fewer or a piece is not guest RAM. The caller bounds `length`.
 */
export function readExactly(memory: Pick<GuestMemory, "view">, buffers: readonly GuestBuffer[], offset: number, length: number): Uint8Array | undefined {
  const out = new Uint8Array(length);
  return readFromBuffers(memory, buffers, offset, out) === length ? out : undefined;
}

/** readFromBuffers() over the chain's device-readable buffers. */
export function readFromChain(memory: Pick<GuestMemory, "view">, chain: DescriptorChain, offset: number, into: Uint8Array): number {
  return readFromBuffers(memory, chain.readable, offset, into);
}

/** writeToBuffers() over the chain's device-writable buffers. */
export function writeToChain(memory: Pick<GuestMemory, "write">, chain: DescriptorChain, offset: number, from: Uint8Array): number {
  return writeToBuffers(memory, chain.writable, offset, from);
}

/** A little-endian reader over a view of guest memory (rings and descriptors are little-endian). */
export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
