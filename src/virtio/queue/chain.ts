// Descriptor chains: what the pure ring parsers return, and helpers device models use to move
// bytes between host buffers and a chain's guest buffers without trusting anything in it.
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

/**
 * Copies up to `dest.length` bytes of the chain's device-readable data, starting `offset` bytes
 * into it, into `dest`. Returns the number of bytes copied (less at the end of the data).
 */
export function readFromChain(memory: GuestMemory, chain: DescriptorChain, offset: number, dest: Uint8Array): number {
  let skip = offset;
  let done = 0;
  for (const b of chain.readable) {
    if (done >= dest.length) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, dest.length - done);
    const view = memory.view(b.addr + skip, n);
    if (!view) break; // cannot happen for a validated chain
    dest.set(view, done);
    done += n;
    skip = 0;
  }
  return done;
}

/**
 * Copies `src` into the chain's device-writable buffers starting `offset` bytes into them.
 * Returns the number of bytes written (less when the buffers are shorter).
 */
export function writeToChain(memory: GuestMemory, chain: DescriptorChain, offset: number, src: Uint8Array): number {
  let skip = offset;
  let done = 0;
  for (const b of chain.writable) {
    if (done >= src.length) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, src.length - done);
    if (!memory.write(b.addr + skip, src.subarray(done, done + n))) break;
    done += n;
    skip = 0;
  }
  return done;
}

/**
 * Visits the chain's device-readable data as guest RAM views (no copy), at most `limit` bytes
 * in total, in pieces of at most `pieceSize` bytes. The views alias guest memory: copy what must
 * outlive the callback. Returns the number of bytes visited.
 */
export function forEachReadable(
  memory: GuestMemory,
  chain: DescriptorChain,
  limit: number,
  pieceSize: number,
  visit: (bytes: Uint8Array) => void,
): number {
  let done = 0;
  for (const b of chain.readable) {
    for (let at = 0; at < b.len && done < limit; ) {
      const n = Math.min(b.len - at, limit - done, pieceSize);
      const view = memory.view(b.addr + at, n);
      if (!view) return done;
      visit(view);
      at += n;
      done += n;
    }
    if (done >= limit) break;
  }
  return done;
}

/** A little-endian reader over a view of guest memory (rings and descriptors are little-endian). */
export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
