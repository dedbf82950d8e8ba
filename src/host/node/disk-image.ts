// Opening a disk image for virtio-blk: raw or qcow2, its qcow2 backing chain, and snapshot=on.
// The qcow2 logic is core code (src/virtio/blk/qcow2/); this adapter gives it Node files.
//
// Format: format=raw or format=qcow2 is used as given. Without it the format is probed from the
// magic, as QEMU does, but a probed raw image refuses guest writes that would make it look like
// qcow2 (src/virtio/blk/qcow2/probe.ts), so a guest cannot turn its disk into a qcow2 header that
// names a host file as backing file for the next start.
//
// Backing files are opened read-only, named as QEMU resolves them: an absolute path, or relative
// to the directory of the image that names it; their format is the header's backing format
// extension, else probed. Chains deeper than MAX_BACKING_CHAIN, loops and missing files are refused.
//
// snapshot=on: the image is opened read-only and all writes go to a temporary qcow2 overlay in
// the system's temporary directory, deleted from the directory as soon as it is created, so it
// disappears when Parley exits, however it exits.

import { mkdtemp, open, realpath, rmdir, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { constants as zlibConstants, inflateRawSync } from "node:zlib";
import { dirname, isAbsolute, join } from "node:path";
import type { BlockBackend } from "../../virtio/blk/backend.ts";
import { validateBlockId } from "../../virtio/blk/backend.ts";
import { SECTOR_SIZE } from "../../virtio/blk/spec.ts";
import type { ImageReader, RandomAccessFile } from "../../virtio/blk/qcow2/file.ts";
import { RawImageReader, readZeroFilled } from "../../virtio/blk/qcow2/file.ts";
import { hasQcow2Magic, newQcow2Image, Qcow2FormatError } from "../../virtio/blk/qcow2/header.ts";
import { Qcow2Image, readQcow2Header, type Qcow2Inflate } from "../../virtio/blk/qcow2/image.ts";
import { guardProbedRaw } from "../../virtio/blk/qcow2/probe.ts";
import { describeOpenError, openBlockFile } from "./block-file.ts";

export type DiskFormat = "raw" | "qcow2";

/** Backing files below one disk (QEMU has no fixed limit; this bounds the open and the recursion). */
export const MAX_BACKING_CHAIN = 16;

export interface DiskImageOptions {
  /** The image's format; absent: probed (see the header comment). */
  format?: DiskFormat;
  readOnly?: boolean;
  /** Writes go to a throw-away overlay; the image itself is opened read-only. */
  snapshot?: boolean;
  /** GET_ID serial; printable ASCII, <= 20 bytes. */
  id?: string;
}

/**
 * A regular file as a RandomAccessFile (positional I/O, sync = fdatasync). A throw-away file
 * (the snapshot=on overlay, which no crash can leave behind) skips the fdatasync.
 */
export class NodeRandomAccessFile implements RandomAccessFile {
  private length: number;
  private closed = false;
  private throwAway = false;
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    size: number,
  ) {
    this.length = size;
  }

  /** A new file for a throw-away overlay: created exclusively (mode 0600), never synced. */
  static async createThrowAway(path: string): Promise<NodeRandomAccessFile> {
    const file = await NodeRandomAccessFile.open(path, true, true);
    file.throwAway = true;
    return file;
  }

  static async open(path: string, writable: boolean, create = false): Promise<NodeRandomAccessFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, create ? "wx+" : writable ? "r+" : "r", 0o600);
    } catch (e) {
      throw describeOpenError(path, !writable, e);
    }
    try {
      const stat = await handle.stat();
      if (stat.isDirectory()) throw new Error(`disk image ${path} is a directory, not an image file`);
      if (!stat.isFile()) throw new Error(`disk image ${path} is not a regular file (block devices and pipes are not supported)`);
      return new NodeRandomAccessFile(handle, path, stat.size);
    } catch (e) {
      await handle.close().catch(() => {});
      throw e;
    }
  }

  get size(): number {
    return this.length;
  }

  async read(offset: number, into: Uint8Array): Promise<number> {
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await this.handle.read(into, done, into.length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, offset + done);
      if (bytesWritten === 0) throw new Error(`disk image ${this.path}: write made no progress at byte ${offset + done}`);
      done += bytesWritten;
    }
    this.length = Math.max(this.length, offset + data.length);
  }

  async sync(): Promise<void> {
    if (!this.throwAway) await this.handle.datasync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/**
 * QEMU's compressed clusters: raw deflate, which may stop without a final block once the cluster
 * is complete (hence the sync flush), followed by unrelated bytes up to the sector's end.
 * maxOutputLength bounds what a hostile stream can make us allocate.
 */
export const nodeInflate: Qcow2Inflate = (compressed, clusterSize) =>
  new Uint8Array(inflateRawSync(compressed, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: clusterSize }));

async function probeFormat(file: RandomAccessFile): Promise<DiskFormat> {
  const magic = new Uint8Array(4);
  await readZeroFilled(file, 0, magic);
  return hasQcow2Magic(magic) ? "qcow2" : "raw";
}

function checkSectorMultiple(path: string, size: number, what: string): void {
  if (size % SECTOR_SIZE !== 0) {
    throw new Error(`${what} ${path} is ${size} bytes, which is not a multiple of ${SECTOR_SIZE} (the virtio-blk sector size)`);
  }
}

/** Where QEMU looks for a backing file named `name` by the image at `imagePath`. */
export function resolveBackingPath(imagePath: string, name: string): string {
  if (name.startsWith("json:")) throw new Qcow2FormatError(`backing file "${name}": json: backing specifications are not supported`);
  const path = name.startsWith("file:") ? name.slice("file:".length) : name;
  return isAbsolute(path) ? path : join(dirname(imagePath), path);
}

/** Opens a qcow2 image (and its backing chain) over an already open file. Closes `file` on failure. */
async function openQcow2(file: NodeRandomAccessFile, readOnly: boolean, id: string, chain: string[]): Promise<Qcow2Image> {
  let backing: ImageReader | undefined;
  try {
    const header = await readQcow2Header(file);
    if (header.backingFile !== undefined) {
      backing = await openBacking(file.path, header.backingFile, header.backingFormat, chain);
    }
    return await Qcow2Image.open(file, header, { readOnly, id, backing, name: file.path, inflate: nodeInflate });
  } catch (e) {
    await backing?.close().catch(() => {});
    await file.close().catch(() => {});
    throw e;
  }
}

async function openBacking(imagePath: string, name: string, format: string | undefined, chain: string[]): Promise<ImageReader> {
  const path = resolveBackingPath(imagePath, name);
  const where = `backing file ${path} (named by ${imagePath})`;
  // chain holds the images above this one; the first is the disk itself.
  if (chain.length > MAX_BACKING_CHAIN) throw new Qcow2FormatError(`${where}: the chain has more than ${MAX_BACKING_CHAIN} backing files`);
  let real: string;
  try {
    real = await realpath(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`${where} does not exist`, { cause: e });
    throw new Error(`${where}: ${describeOpenError(path, true, e).message}`, { cause: e });
  }
  if (chain.includes(real)) throw new Qcow2FormatError(`${where}: the backing chain loops back to ${real}`);
  if (format !== undefined && format !== "raw" && format !== "qcow2") {
    throw new Qcow2FormatError(`${where}: backing format "${format}" is not supported (raw or qcow2)`);
  }
  const file = await NodeRandomAccessFile.open(real, false);
  try {
    const actual = format ?? (await probeFormat(file));
    if (actual === "raw") return new RawImageReader(file);
    return await openQcow2(file, true, "", [...chain, real]);
  } catch (e) {
    await file.close().catch(() => {});
    const message = e instanceof Error ? e.message : String(e);
    // A file deeper in the chain already named itself.
    if (message.startsWith("backing file ")) throw e;
    throw e instanceof Qcow2FormatError ? new Qcow2FormatError(`${where}: ${message}`) : new Error(`${where}: ${message}`, { cause: e });
  }
}

/** The image as a read-only ImageReader: the base of snapshot=on. */
async function openBase(path: string, format: DiskFormat | undefined): Promise<ImageReader> {
  const file = await NodeRandomAccessFile.open(path, false);
  let actual: DiskFormat;
  try {
    actual = format ?? (await probeFormat(file));
  } catch (e) {
    await file.close().catch(() => {});
    throw e;
  }
  if (actual === "raw") {
    checkSectorMultiple(path, file.size, "disk image");
    return new RawImageReader(file);
  }
  const image = await openQcow2(file, true, "", [await realpath(path)]);
  if (image.size % SECTOR_SIZE !== 0) {
    await image.close();
    throw new Qcow2FormatError(`the virtual size ${image.size} is not a multiple of ${SECTOR_SIZE} bytes (resize it: qemu-img resize)`);
  }
  return image;
}

/** An empty qcow2 overlay over `base` in an already unlinked temporary file. */
async function openSnapshotOverlay(base: ImageReader, id: string): Promise<Qcow2Image> {
  const dir = await mkdtemp(join(tmpdir(), "parley-snapshot-"));
  const path = join(dir, "overlay.qcow2");
  const file = await NodeRandomAccessFile.createThrowAway(path);
  await unlink(path);
  await rmdir(dir);
  try {
    await file.write(0, newQcow2Image(base.size));
    const header = await readQcow2Header(file);
    return await Qcow2Image.open(file, header, { id, backing: base, name: `the snapshot=on overlay of a ${base.size}-byte disk` });
  } catch (e) {
    await file.close().catch(() => {});
    throw e;
  }
}

/**
 * Opens a disk image as a BlockBackend: raw or qcow2 (given or probed), with its backing chain,
 * or behind a throw-away overlay (snapshot). Errors say what is wrong with which file.
 */
export async function openDiskImage(path: string, options: DiskImageOptions = {}): Promise<BlockBackend> {
  const readOnly = options.readOnly ?? false;
  const id = options.id ?? "";
  const idError = validateBlockId(id);
  if (idError) throw new Error(idError);
  if (options.snapshot && !readOnly) {
    const base = await openBase(path, options.format);
    try {
      return await openSnapshotOverlay(base, id);
    } catch (e) {
      await base.close().catch(() => {});
      throw e;
    }
  }
  let format = options.format;
  let probed = false;
  if (format === undefined) {
    const file = await NodeRandomAccessFile.open(path, false);
    try {
      format = await probeFormat(file);
    } finally {
      await file.close();
    }
    probed = true;
  }
  if (format === "raw") {
    const backend = await openBlockFile(path, { readOnly, id });
    return probed && !readOnly ? guardProbedRaw(backend) : backend;
  }
  const file = await NodeRandomAccessFile.open(path, !readOnly);
  const image = await openQcow2(file, readOnly, id, [await realpath(path)]);
  if (image.size % SECTOR_SIZE !== 0) {
    await image.close();
    throw new Qcow2FormatError(`the virtual size ${image.size} is not a multiple of ${SECTOR_SIZE} bytes (resize it: qemu-img resize)`);
  }
  return image;
}
