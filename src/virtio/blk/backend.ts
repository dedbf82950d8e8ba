// The storage behind a virtio-blk device. The device model only sees this interface; the host side
// (a raw image file in src/host/node/block-file.ts, an in-memory disk here, anything else in a
// browser) is injected. Every method rejects on error; the device reports VIRTIO_BLK_S_IOERR.

import { SECTOR_SIZE, VIRTIO_BLK_ID_BYTES } from "./spec.ts";

export interface BlockBackend {
  /** Size in bytes: a multiple of 512 and a safe integer. Fixed for the backend's lifetime. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Device ID string returned by VIRTIO_BLK_T_GET_ID (the guest's disk serial), ASCII, <= 20 bytes. */
  readonly id: string;
  /**
   * Whether writeZeroes(..., unmap = true) may deallocate storage: the device reports it in
   * config write_zeroes_may_unmap (5.2.6.2). Absent means false.
   */
  readonly writeZeroesMayUnmap?: boolean;
  /** Fills `into` with the bytes at [offset, offset + into.length). */
  read(offset: number, into: Uint8Array): Promise<void>;
  /** Writes `data` at offset. May stay in a volatile cache until flush(). */
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * Optional scatter read (readv): fills `targets` one after the other with the bytes at
   * [offset, offset + their total length). The device passes views of guest RAM (over a
   * SharedArrayBuffer when harts run on threads), so the data moves once, with one host call per
   * request; the backend writes inside the targets only. A backend without it (qcow2) is read
   * through a bounce buffer with read().
   */
  readInto?(offset: number, targets: readonly Uint8Array[]): Promise<void>;
  /** Optional gather write (writev): `sources` one after the other at offset; see readInto. */
  writeFrom?(offset: number, sources: readonly Uint8Array[]): Promise<void>;
  /** Makes every completed write durable (fdatasync). A rejection means data may have been lost. */
  flush(): Promise<void>;
  /** Advisory (5.2.6.2: the device MAY deallocate); afterwards the range's content is undefined. */
  discard(offset: number, length: number): Promise<void>;
  /** Afterwards the range reads as zeroes; with unmap the backend may deallocate it. */
  writeZeroes(offset: number, length: number, unmap: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * Checks a GET_ID string: printable ASCII, at most 20 bytes (5.2.6). Returns an error message, or
 * undefined when it is fine. For the command line's id= option.
 */
export function validateBlockId(id: string): string | undefined {
  if (id.length > VIRTIO_BLK_ID_BYTES) return `disk id "${id}" is longer than ${VIRTIO_BLK_ID_BYTES} characters`;
  if (!/^[\x20-\x7e]*$/.test(id)) return `disk id "${id}" must be printable ASCII`;
  return undefined;
}

/**
 * The 20-byte GET_ID data for an id: ASCII, NUL-padded, truncated to 20 bytes (no terminator at
 * 20). Characters that are not printable ASCII become "_".
 */
export function encodeBlockId(id: string): Uint8Array {
  const out = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  for (let i = 0; i < out.length && i < id.length; i++) {
    const c = id.charCodeAt(i);
    out[i] = c >= 0x20 && c <= 0x7e ? c : 0x5f;
  }
  return out;
}

/** The total length of a list of buffers (the length of a readInto / writeFrom). */
export function byteLengthOf(buffers: readonly Uint8Array[]): number {
  let total = 0;
  for (const b of buffers) total += b.length;
  return total;
}

/**
 * What is left of `buffers` once their first `done` bytes are transferred: for a readv/writev that
 * moved fewer bytes than asked (a short count, or more buffers than the host's IOV_MAX).
 */
export function remainingBuffers(buffers: readonly Uint8Array[], done: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = done;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

/** Throws unless [offset, offset + length) is a valid byte range of a disk of `size` bytes. */
export function checkBackendRange(size: number, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset > size ||
    length > size - offset
  ) {
    throw new RangeError(`block range [${offset}, +${length}) outside the ${size}-byte disk`);
  }
}

export interface MemoryBlockBackendOptions {
  /** Size in bytes (multiple of 512); ignored when `data` is given. */
  size?: number;
  /** Initial contents, used in place (not copied). Length must be a multiple of 512. */
  data?: Uint8Array;
  readOnly?: boolean;
  id?: string;
}

/** Calls made on a MemoryBlockBackend, for tests. */
export interface MemoryBlockBackendCalls {
  reads: number;
  writes: number;
  flushes: number;
  discards: number;
  writeZeroes: number;
}

/** A RAM disk: the reference backend for tests and for a browser without storage. */
export class MemoryBlockBackend implements BlockBackend {
  readonly data: Uint8Array;
  readonly size: number;
  readonly readOnly: boolean;
  readonly id: string;
  readonly writeZeroesMayUnmap = true;
  readonly calls: MemoryBlockBackendCalls = { reads: 0, writes: 0, flushes: 0, discards: 0, writeZeroes: 0 };
  closed = false;

  constructor(options: MemoryBlockBackendOptions = {}) {
    const data = options.data ?? new Uint8Array(options.size ?? 1024 * 1024);
    if (data.length % SECTOR_SIZE !== 0) {
      throw new RangeError(`in-memory disk of ${data.length} bytes is not a multiple of ${SECTOR_SIZE}`);
    }
    this.data = data;
    this.size = data.length;
    this.readOnly = options.readOnly ?? false;
    this.id = options.id ?? "";
  }

  private check(offset: number, length: number, writing: boolean): void {
    if (this.closed) throw new Error("block backend is closed");
    if (writing && this.readOnly) throw new Error("block backend is read-only");
    checkBackendRange(this.size, offset, length);
  }

  async read(offset: number, into: Uint8Array): Promise<void> {
    this.check(offset, into.length, false);
    this.calls.reads++;
    into.set(this.data.subarray(offset, offset + into.length));
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check(offset, data.length, true);
    this.calls.writes++;
    this.data.set(data, offset);
  }

  async readInto(offset: number, targets: readonly Uint8Array[]): Promise<void> {
    this.check(offset, byteLengthOf(targets), false);
    this.calls.reads++;
    let at = offset;
    for (const target of targets) {
      target.set(this.data.subarray(at, at + target.length));
      at += target.length;
    }
  }

  async writeFrom(offset: number, sources: readonly Uint8Array[]): Promise<void> {
    this.check(offset, byteLengthOf(sources), true);
    this.calls.writes++;
    let at = offset;
    for (const source of sources) {
      this.data.set(source, at);
      at += source.length;
    }
  }

  async flush(): Promise<void> {
    if (this.closed) throw new Error("block backend is closed");
    this.calls.flushes++;
  }

  async discard(offset: number, length: number): Promise<void> {
    this.check(offset, length, true);
    this.calls.discards++;
    // "Deallocating" a RAM disk: the content of a discarded range is undefined; zero is fine.
    this.data.fill(0, offset, offset + length);
  }

  async writeZeroes(offset: number, length: number, _unmap: boolean): Promise<void> {
    this.check(offset, length, true);
    this.calls.writeZeroes++;
    this.data.fill(0, offset, offset + length);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
