// Helpers over the scatter-gather lists of a descriptor chain: the driver may split any part of a
// request over any number of buffers (virtio spec 1.3, 2.6.4 "Message Framing"), so the device
// addresses a request's parts by offset into the concatenation of the readable (or writable)
// buffers. sliceBuffers is pure; gather/scatter only touch guest memory through GuestMemory.view,
// which bounds-checks every access against guest RAM.

import type { GuestBuffer, GuestMemory } from "../types.ts";

/** Sum of the buffer lengths; NaN when a length is not a non-negative safe integer. */
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

/**
 * The guest address of byte `index` of the concatenated buffers, or undefined when out of range.
 * Pure.
 */
export function addressAt(buffers: readonly GuestBuffer[], index: number): number | undefined {
  let skip = index;
  for (const b of buffers) {
    if (skip < b.len) return b.addr + skip;
    skip -= b.len;
  }
  return undefined;
}

/**
 * Copies `into.length` bytes starting at byte `start` of the concatenated guest buffers into
 * `into`. False when the range runs past the buffers or a piece is not guest RAM. Reads only.
 */
export function gather(
  memory: Pick<GuestMemory, "view">,
  buffers: readonly GuestBuffer[],
  start: number,
  into: Uint8Array,
): boolean {
  let skip = start;
  let done = 0;
  for (const b of buffers) {
    if (done >= into.length) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, into.length - done);
    const view = memory.view(b.addr + skip, n);
    if (!view || view.length < n) return false;
    into.set(view.subarray(0, n), done);
    done += n;
    skip = 0;
  }
  return done === into.length;
}

/**
 * Copies `from` into the concatenated guest buffers starting at byte `start`, reporting every
 * piece with memory.written(). False when the range runs past the buffers or a piece is not
 * guest RAM (pieces before it may already have been written).
 */
export function scatter(
  memory: Pick<GuestMemory, "view" | "written">,
  buffers: readonly GuestBuffer[],
  start: number,
  from: Uint8Array,
): boolean {
  let skip = start;
  let done = 0;
  for (const b of buffers) {
    if (done >= from.length) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, from.length - done);
    const addr = b.addr + skip;
    const view = memory.view(addr, n);
    if (!view || view.length < n) return false;
    view.set(from.subarray(done, done + n));
    memory.written(addr, n);
    done += n;
    skip = 0;
  }
  return done === from.length;
}
