// A raw disk image file as a virtio-blk BlockBackend (src/virtio/blk/backend.ts), on Node's
// fs.promises FileHandle: positional reads and writes, flush = fdatasync. The device's requests
// use readInto / writeFrom: one preadv / pwritev (fs.readv / fs.writev, callback form: one trip
// through libuv's thread pool per request, no promise wrapper) straight between the file and the
// views of guest RAM the device passes.
//
// Discard (virtio spec 1.3, 5.2.6.2: "the device MAY deallocate") is a no-op: Node has no
// fallocate(FALLOC_FL_PUNCH_HOLE) and punching holes is only an optimisation. Write-zeroes must
// make the range read as zeroes, so it writes zero-filled chunks (bounded size); it never
// deallocates (writeZeroesMayUnmap = false, so the device reports write_zeroes_may_unmap = 0).
//
// The image is not locked against a second user (Node cannot flock); do not give the same image
// to two writers.

import { readv, writev } from "node:fs";
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { BlockBackend } from "../../virtio/blk/backend.ts";
import { byteLengthOf, checkBackendRange, remainingBuffers, validateBlockId } from "../../virtio/blk/backend.ts";
import { SECTOR_SIZE } from "../../virtio/blk/spec.ts";

/** Largest zero buffer used by writeZeroes (one per backend, allocated on first use). */
export const WRITE_ZEROES_CHUNK = 1024 * 1024;

export interface BlockFileOptions {
  /** Open the image read-only (the guest sees VIRTIO_BLK_F_RO). Default false. */
  readOnly?: boolean;
  /** GET_ID serial (Linux: /sys/block/vdX/serial, /dev/disk/by-id/virtio-ID); printable ASCII, <= 20 bytes. Default "". */
  id?: string;
}

/** A user-facing message for a failed open of a disk image (or of one of its backing files). */
export function describeOpenError(path: string, readOnly: boolean, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  let message: string;
  switch (code) {
    case "ENOENT":
      message = `disk image ${path} does not exist (create one with: truncate -s 1G ${path})`;
      break;
    case "ENOTDIR":
      message = `disk image ${path}: a component of the path is not a directory`;
      break;
    case "EISDIR":
      message = `disk image ${path} is a directory, not an image file`;
      break;
    case "EACCES":
    case "EPERM":
      message = readOnly
        ? `permission denied reading disk image ${path}`
        : `permission denied opening disk image ${path} for writing (use readonly=on to attach it read-only)`;
      break;
    case "EROFS":
      message = `disk image ${path} is on a read-only file system (use readonly=on)`;
      break;
    case "ETXTBSY":
    case "EBUSY":
      message = `disk image ${path} is busy`;
      break;
    case "ELOOP":
      message = `disk image ${path}: too many levels of symbolic links`;
      break;
    default:
      message = `cannot open disk image ${path}: ${e instanceof Error ? e.message : String(e)}`;
  }
  const error = new Error(message, { cause: e });
  if (code) (error as NodeJS.ErrnoException).code = code;
  return error;
}

class FileBlockBackend implements BlockBackend {
  readonly writeZeroesMayUnmap = false;
  private closed = false;
  private zeroes: Uint8Array | undefined;

  constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly size: number,
    readonly readOnly: boolean,
    readonly id: string,
  ) {}

  private check(offset: number, length: number, writing: boolean): void {
    if (this.closed) throw new Error(`disk image ${this.path} is closed`);
    if (writing && this.readOnly) throw new Error(`disk image ${this.path} is read-only`);
    checkBackendRange(this.size, offset, length);
  }

  async read(offset: number, into: Uint8Array): Promise<void> {
    this.check(offset, into.length, false);
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await this.handle.read(into, done, into.length - done, offset + done);
      if (bytesRead === 0) {
        // The file shrank under us: do not invent data.
        throw new Error(`disk image ${this.path}: unexpected end of file at byte ${offset + done}`);
      }
      done += bytesRead;
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check(offset, data.length, true);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, offset + done);
      if (bytesWritten === 0) throw new Error(`disk image ${this.path}: write made no progress at byte ${offset + done}`);
      done += bytesWritten;
    }
  }

  async readInto(offset: number, targets: readonly Uint8Array[]): Promise<void> {
    const length = byteLengthOf(targets);
    this.check(offset, length, false);
    await this.vectored(readv, offset, targets, length, (at) => `unexpected end of file at byte ${at}`);
  }

  async writeFrom(offset: number, sources: readonly Uint8Array[]): Promise<void> {
    const length = byteLengthOf(sources);
    this.check(offset, length, true);
    await this.vectored(writev, offset, sources, length, (at) => `write made no progress at byte ${at}`);
  }

  /**
   * One preadv / pwritev at a time until `length` bytes moved: either may move fewer bytes than
   * asked (end of file, more than IOV_MAX buffers, huge lengths); none at all is an error.
   */
  private async vectored(
    io: typeof readv | typeof writev,
    offset: number,
    buffers: readonly Uint8Array[],
    length: number,
    stalled: (at: number) => string,
  ): Promise<void> {
    let left = buffers;
    for (let done = 0; done < length; ) {
      const moved = await new Promise<number>((resolve, reject) =>
        io(this.handle.fd, left, offset + done, (e: NodeJS.ErrnoException | null, n: number) => (e ? reject(e) : resolve(n))),
      );
      if (moved === 0) throw new Error(`disk image ${this.path}: ${stalled(offset + done)}`);
      done += moved;
      left = remainingBuffers(left, moved);
    }
  }

  async flush(): Promise<void> {
    if (this.closed) throw new Error(`disk image ${this.path} is closed`);
    if (this.readOnly) return; // nothing of ours to make durable
    await this.handle.datasync();
  }

  async discard(offset: number, length: number): Promise<void> {
    // Advisory; see the header comment.
    this.check(offset, length, true);
  }

  async writeZeroes(offset: number, length: number, _unmap: boolean): Promise<void> {
    this.check(offset, length, true);
    if (length === 0) return;
    if (!this.zeroes || this.zeroes.length < Math.min(length, WRITE_ZEROES_CHUNK)) {
      this.zeroes = new Uint8Array(Math.min(length, WRITE_ZEROES_CHUNK));
    }
    const zeroes = this.zeroes;
    for (let done = 0; done < length; ) {
      const n = Math.min(zeroes.length, length - done);
      await this.write(offset + done, n === zeroes.length ? zeroes : zeroes.subarray(0, n));
      done += n;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/**
 * Opens a raw disk image (a regular file whose size is a multiple of 512 bytes) as a BlockBackend.
 * Rejects with a message meant for the user when the file is missing, a directory, not
 * accessible, or of an unusable size.
 */
export async function openBlockFile(path: string, options: BlockFileOptions = {}): Promise<BlockBackend> {
  const readOnly = options.readOnly ?? false;
  const id = options.id ?? "";
  const idError = validateBlockId(id);
  if (idError) throw new Error(idError);
  let handle: FileHandle;
  try {
    handle = await open(path, readOnly ? "r" : "r+");
  } catch (e) {
    throw describeOpenError(path, readOnly, e);
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw new Error(`disk image ${path} is a directory, not an image file`);
    if (!stat.isFile()) throw new Error(`disk image ${path} is not a regular file (block devices and pipes are not supported)`);
    const size = stat.size;
    if (size % SECTOR_SIZE !== 0) {
      const up = Math.ceil(size / SECTOR_SIZE) * SECTOR_SIZE;
      throw new Error(
        `disk image ${path} is ${size} bytes, which is not a multiple of ${SECTOR_SIZE} (the virtio-blk sector size); ` +
          `pad it with: truncate -s ${up} ${path}`,
      );
    }
    if (!Number.isSafeInteger(size)) throw new Error(`disk image ${path} is too large (${size} bytes)`);
    return new FileBlockBackend(handle, path, size, readOnly, id);
  } catch (e) {
    await handle.close().catch(() => {});
    throw e;
  }
}
