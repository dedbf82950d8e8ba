// An in-memory RandomAccessFile (src/virtio/blk/qcow2/file.ts): the qcow2 tests and fuzzing
// write images into it.
import type { RandomAccessFile } from "../blk/qcow2/file.ts";

/**
 * A RandomAccessFile in memory: for tests and fuzzing. `syncs` counts sync() calls; a write that
 * would make it longer than `limit` throws (fuzzing: a corrupt image must not make Parley write
 * far past its end).
 */
export class MemoryImageFile implements RandomAccessFile {
  bytes: Uint8Array;
  length: number;
  syncs = 0;
  closed = false;
  constructor(
    initial: Uint8Array = new Uint8Array(0),
    readonly limit = Number.MAX_SAFE_INTEGER,
  ) {
    this.bytes = initial.slice();
    this.length = initial.length;
  }
  get size(): number {
    return this.length;
  }
  contents(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
  async read(offset: number, into: Uint8Array): Promise<number> {
    const n = Math.max(0, Math.min(into.length, this.length - offset));
    into.set(this.bytes.subarray(offset, offset + n));
    return n;
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    const end = offset + data.length;
    if (end > this.limit) throw new Error(`memory file: a write to [${offset}, ${end}) passes its ${this.limit}-byte limit`);
    if (end > this.bytes.length) {
      const grown = new Uint8Array(Math.max(end, this.bytes.length * 2));
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes.set(data, offset);
    this.length = Math.max(this.length, end);
  }
  async sync(): Promise<void> {
    this.syncs++;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}
