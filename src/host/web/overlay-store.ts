// The local copy-on-write layer under a disk served over HTTP (http-disk.ts): the blocks the
// guest has written, by block index, and the set of blocks present. Two stores: one in memory
// (tests, or a browser without storage) and one in the Origin Private File System, which keeps
// the guest's writes across page loads.
//
// OPFS layout, in a directory named after the store:
//   data    the written blocks, each at index * blockSize (blocks never written are holes/zeroes)
//   bitmap  a versioned header followed by one bit per block (1 = present in `data`)
// The bitmap is rewritten on flush only, after `data` has been flushed, so a bit is never set for
// a block whose data did not reach the disk. A bitmap that cannot be trusted (bad magic, version,
// checksum, another disk's layout, or a data file too short for it) is treated as empty with a
// warning: the guest sees the server's disk again, which is better than a crash or garbage.

/** The disk an overlay belongs to. An overlay recorded for another layout is discarded. */
export interface OverlayLayout {
  /** Copy-on-write granularity in bytes (a multiple of 512). */
  blockSize: number;
  /** Number of blocks of the disk (the last may be partial on the server; it is whole here). */
  blockCount: number;
  /** Identifies the base image (its URL, size and validator); written overlays of another image are dropped. */
  source: string;
}

export interface OverlayStore {
  /**
   * Binds the store to a disk and loads its persistent set of present blocks. When what is stored
   * belongs to another layout (or cannot be trusted), the store starts empty and says why in
   * the returned warning. May be called again after close() (memory store) to model a reopen.
   */
  attach(layout: OverlayLayout): Promise<{ warning?: string }>;
  /** Whether block `index` was written locally (since the last clear). */
  has(index: number): boolean;
  /** Copies bytes [offsetInBlock, offsetInBlock + into.length) of a present block into `into`. */
  readBlock(index: number, into: Uint8Array, offsetInBlock?: number): Promise<void>;
  /** Stores a whole block (data.length === blockSize) and marks it present. */
  writeBlock(index: number, data: Uint8Array): Promise<void>;
  /** Makes every completed writeBlock and the set of present blocks durable. */
  flush(): Promise<void>;
  /** Forgets every block (durably): reads go back to the base image. */
  clear(): Promise<void>;
  /** Releases the store's resources (OPFS handles). */
  close(): Promise<void>;
}

// ---- Bitmap file format ----------------------------------------------------------------------

/** "PRLYOVL\0": a Parley overlay bitmap. */
export const OVERLAY_MAGIC = new Uint8Array([0x50, 0x52, 0x4c, 0x59, 0x4f, 0x56, 0x4c, 0x00]);
export const OVERLAY_VERSION = 1;
/** Longest accepted `source` string, in UTF-8 bytes (a URL plus a validator). */
export const OVERLAY_MAX_SOURCE_BYTES = 4096;

// Header (little endian): magic[8], version u32, blockSize u32, blockCount u64, dataSize u64,
// sourceLength u32, checksum u32 (FNV-1a over everything after the header), then source bytes,
// then the bitmap (ceil(blockCount / 8) bytes, bit i % 8 of byte i / 8 = block i).
const HEADER_BYTES = 8 + 4 + 4 + 8 + 8 + 4 + 4;

/** The content of a bitmap file. */
export interface OverlayBitmapFile {
  layout: OverlayLayout;
  /** Size of the data file when the bitmap was written; the data file must be at least this long. */
  dataSize: number;
  bits: Uint8Array;
}

function fnv1a(bytes: Uint8Array, hash = 0x811c9dc5): number {
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i], 0x01000193) >>> 0;
  return hash;
}

export function bitmapBytes(blockCount: number): number {
  return Math.ceil(blockCount / 8);
}

function checkLayout(layout: OverlayLayout): void {
  if (!Number.isSafeInteger(layout.blockSize) || layout.blockSize <= 0 || layout.blockSize % 512 !== 0) {
    throw new RangeError(`overlay blockSize ${layout.blockSize} is not a positive multiple of 512`);
  }
  if (!Number.isSafeInteger(layout.blockCount) || layout.blockCount < 0) {
    throw new RangeError(`overlay blockCount ${layout.blockCount} is not a non-negative integer`);
  }
  if (new TextEncoder().encode(layout.source).length > OVERLAY_MAX_SOURCE_BYTES) {
    throw new RangeError(`overlay source is longer than ${OVERLAY_MAX_SOURCE_BYTES} bytes`);
  }
}

export function encodeBitmapFile(file: OverlayBitmapFile): Uint8Array {
  const source = new TextEncoder().encode(file.layout.source);
  const out = new Uint8Array(HEADER_BYTES + source.length + file.bits.length);
  const view = new DataView(out.buffer);
  out.set(OVERLAY_MAGIC, 0);
  view.setUint32(8, OVERLAY_VERSION, true);
  view.setUint32(12, file.layout.blockSize, true);
  view.setBigUint64(16, BigInt(file.layout.blockCount), true);
  view.setBigUint64(24, BigInt(file.dataSize), true);
  view.setUint32(32, source.length, true);
  out.set(source, HEADER_BYTES);
  out.set(file.bits, HEADER_BYTES + source.length);
  view.setUint32(36, fnv1a(out.subarray(HEADER_BYTES)), true);
  return out;
}

/** Parses a bitmap file; returns a reason instead when it cannot be trusted. */
export function decodeBitmapFile(bytes: Uint8Array): OverlayBitmapFile | { invalid: string } {
  if (bytes.length < HEADER_BYTES) return { invalid: `bitmap is ${bytes.length} bytes, shorter than its ${HEADER_BYTES}-byte header` };
  for (let i = 0; i < OVERLAY_MAGIC.length; i++) {
    if (bytes[i] !== OVERLAY_MAGIC[i]) return { invalid: "bitmap has no overlay magic" };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== OVERLAY_VERSION) return { invalid: `bitmap version ${version} (expected ${OVERLAY_VERSION})` };
  const blockSize = view.getUint32(12, true);
  const blockCount = Number(view.getBigUint64(16, true));
  const dataSize = Number(view.getBigUint64(24, true));
  const sourceLength = view.getUint32(32, true);
  const checksum = view.getUint32(36, true);
  if (blockSize === 0 || blockSize % 512 !== 0) return { invalid: `bitmap blockSize ${blockSize}` };
  if (!Number.isSafeInteger(blockCount) || !Number.isSafeInteger(dataSize)) return { invalid: "bitmap sizes out of range" };
  if (sourceLength > OVERLAY_MAX_SOURCE_BYTES) return { invalid: `bitmap source of ${sourceLength} bytes` };
  const expected = HEADER_BYTES + sourceLength + bitmapBytes(blockCount);
  if (bytes.length !== expected) return { invalid: `bitmap is ${bytes.length} bytes, expected ${expected} for ${blockCount} blocks` };
  if (fnv1a(bytes.subarray(HEADER_BYTES)) !== checksum) return { invalid: "bitmap checksum mismatch (torn or corrupted write)" };
  let source: string;
  try {
    source = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(HEADER_BYTES, HEADER_BYTES + sourceLength));
  } catch {
    return { invalid: "bitmap source is not UTF-8" };
  }
  const bits = bytes.slice(HEADER_BYTES + sourceLength);
  return { layout: { blockSize, blockCount, source }, dataSize, bits };
}

function sameLayout(a: OverlayLayout, b: OverlayLayout): boolean {
  return a.blockSize === b.blockSize && a.blockCount === b.blockCount && a.source === b.source;
}

/** Highest present block + 1 (0 when none). */
function presentEnd(bits: Uint8Array): number {
  for (let byte = bits.length - 1; byte >= 0; byte--) {
    if (bits[byte] !== 0) return byte * 8 + (31 - Math.clz32(bits[byte])) + 1;
  }
  return 0;
}

function getBit(bits: Uint8Array, index: number): boolean {
  return (bits[index >>> 3] & (1 << (index & 7))) !== 0;
}

function setBit(bits: Uint8Array, index: number): void {
  bits[index >>> 3] |= 1 << (index & 7);
}

/**
 * Checks a decoded bitmap against the disk being attached and the data file actually there.
 * Returns the bits to use, or a warning saying why the overlay starts empty.
 */
export function validateBitmap(
  decoded: OverlayBitmapFile | { invalid: string },
  layout: OverlayLayout,
  dataFileSize: number,
): { bits: Uint8Array } | { warning: string } {
  if ("invalid" in decoded) return { warning: `local disk overlay discarded: ${decoded.invalid}` };
  if (!sameLayout(decoded.layout, layout)) {
    return { warning: "local disk overlay discarded: it was recorded for another disk image or block size" };
  }
  const needed = presentEnd(decoded.bits) * layout.blockSize;
  if (dataFileSize < decoded.dataSize || dataFileSize < needed) {
    return {
      warning: `local disk overlay discarded: the data file is ${dataFileSize} bytes, the bitmap expects at least ${Math.max(decoded.dataSize, needed)}`,
    };
  }
  return { bits: decoded.bits };
}

function checkIndex(layout: OverlayLayout | undefined, index: number): OverlayLayout {
  if (!layout) throw new Error("overlay store is not attached to a disk");
  if (!Number.isSafeInteger(index) || index < 0 || index >= layout.blockCount) {
    throw new RangeError(`overlay block ${index} outside the disk's ${layout.blockCount} blocks`);
  }
  return layout;
}

// ---- Memory store ------------------------------------------------------------------------------

/**
 * An overlay in memory. Like the OPFS store, only flushed blocks survive a reopen: attach() (after
 * close()) keeps the blocks that were present at the last flush or clear.
 */
export function memoryOverlayStore(): OverlayStore {
  let layout: OverlayLayout | undefined;
  let present = new Set<number>();
  let durable = { layout: undefined as OverlayLayout | undefined, present: new Set<number>() };
  const blocks = new Map<number, Uint8Array>();
  return {
    async attach(next) {
      checkLayout(next);
      layout = next;
      if (durable.layout && !sameLayout(durable.layout, next)) {
        blocks.clear();
        present = new Set();
        durable = { layout: next, present: new Set() };
        return { warning: "local disk overlay discarded: it was recorded for another disk image or block size" };
      }
      present = new Set(durable.present);
      for (const index of [...blocks.keys()]) if (!present.has(index)) blocks.delete(index);
      return {};
    },
    has(index) {
      return present.has(index);
    },
    async readBlock(index, into, offsetInBlock = 0) {
      const { blockSize } = checkIndex(layout, index);
      const block = blocks.get(index);
      if (!block || !present.has(index)) throw new Error(`overlay block ${index} is not present`);
      if (offsetInBlock < 0 || offsetInBlock + into.length > blockSize) throw new RangeError("overlay read beyond the block");
      into.set(block.subarray(offsetInBlock, offsetInBlock + into.length));
    },
    async writeBlock(index, data) {
      const { blockSize } = checkIndex(layout, index);
      if (data.length !== blockSize) throw new RangeError(`overlay write of ${data.length} bytes, not one ${blockSize}-byte block`);
      blocks.set(index, data.slice());
      present.add(index);
    },
    async flush() {
      durable = { layout, present: new Set(present) };
    },
    async clear() {
      blocks.clear();
      present = new Set();
      durable = { layout, present: new Set() };
    },
    async close() {
      layout = undefined;
    },
  };
}

// ---- OPFS store ---------------------------------------------------------------------------------

// The parts of the File System API used here, declared structurally: the DOM library that the rest
// of the code compiles against lacks createSyncAccessHandle (worker-only), and tests supply fakes.

export interface SyncAccessHandleLike {
  read(buffer: Uint8Array, options?: { at?: number }): number;
  write(buffer: Uint8Array, options?: { at?: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}

export interface FileHandleLike {
  createSyncAccessHandle(): Promise<SyncAccessHandleLike>;
}

export interface DirectoryHandleLike {
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<DirectoryHandleLike>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<FileHandleLike>;
}

export const OPFS_DATA_FILE = "data";
export const OPFS_BITMAP_FILE = "bitmap";

function readExactly(handle: SyncAccessHandleLike, into: Uint8Array, at: number, what: string): void {
  let done = 0;
  while (done < into.length) {
    const n = handle.read(into.subarray(done), { at: at + done });
    if (n <= 0) throw new Error(`${what}: short read at byte ${at + done}`);
    done += n;
  }
}

function writeExactly(handle: SyncAccessHandleLike, data: Uint8Array, at: number, what: string): void {
  let done = 0;
  while (done < data.length) {
    const n = handle.write(data.subarray(done), { at: at + done });
    if (n <= 0) throw new Error(`${what}: write made no progress at byte ${at + done}`);
    done += n;
  }
}

/**
 * An overlay in the Origin Private File System, in directory `name` at its root. Needs a dedicated
 * worker (synchronous access handles); a second store of the same name cannot open while one is
 * open (the browser locks the files). A discarded overlay is reported by attach()'s warning
 * (openHttpOverlayDisk passes it to its `warn` option).
 */
export async function opfsOverlayStore(name: string): Promise<OverlayStore> {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: () => Promise<unknown> } } }).navigator?.storage;
  if (!storage?.getDirectory) throw new Error("this browser has no Origin Private File System (navigator.storage.getDirectory)");
  const root = (await storage.getDirectory()) as DirectoryHandleLike;
  return opfsOverlayStoreIn(root, name);
}

/** opfsOverlayStore on a given root directory (the seam for tests). */
export async function opfsOverlayStoreIn(root: DirectoryHandleLike, name: string): Promise<OverlayStore> {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(name) || name === "." || name === "..") {
    throw new Error(`overlay store name "${name}" must be 1-128 letters, digits, '.', '_' or '-'`);
  }
  const dir = await root.getDirectoryHandle(name, { create: true });
  const data = await (await dir.getFileHandle(OPFS_DATA_FILE, { create: true })).createSyncAccessHandle();
  let bitmap: SyncAccessHandleLike;
  try {
    bitmap = await (await dir.getFileHandle(OPFS_BITMAP_FILE, { create: true })).createSyncAccessHandle();
  } catch (e) {
    data.close();
    throw e;
  }
  let layout: OverlayLayout | undefined;
  let bits: Uint8Array = new Uint8Array(0);
  let closed = false;

  const open = (): OverlayLayout => {
    if (closed) throw new Error(`overlay store ${name} is closed`);
    if (!layout) throw new Error("overlay store is not attached to a disk");
    return layout;
  };

  const writeBitmap = (): void => {
    const l = open();
    const file = encodeBitmapFile({ layout: l, dataSize: data.getSize(), bits });
    bitmap.truncate(0);
    writeExactly(bitmap, file, 0, `overlay ${name}/${OPFS_BITMAP_FILE}`);
    bitmap.flush();
  };

  return {
    async attach(next) {
      if (closed) throw new Error(`overlay store ${name} is closed`);
      checkLayout(next);
      layout = next;
      const size = bitmap.getSize();
      if (size === 0) {
        bits = new Uint8Array(bitmapBytes(next.blockCount));
        return {};
      }
      const raw = new Uint8Array(size);
      readExactly(bitmap, raw, 0, `overlay ${name}/${OPFS_BITMAP_FILE}`);
      const checked = validateBitmap(decodeBitmapFile(raw), next, data.getSize());
      if ("bits" in checked) {
        bits = checked.bits;
        return {};
      }
      bits = new Uint8Array(bitmapBytes(next.blockCount));
      data.truncate(0);
      writeBitmap();
      return { warning: checked.warning };
    },
    has(index) {
      return layout !== undefined && index >= 0 && index < layout.blockCount && getBit(bits, index);
    },
    async readBlock(index, into, offsetInBlock = 0) {
      open();
      const { blockSize } = checkIndex(layout, index);
      if (!getBit(bits, index)) throw new Error(`overlay block ${index} is not present`);
      if (offsetInBlock < 0 || offsetInBlock + into.length > blockSize) throw new RangeError("overlay read beyond the block");
      readExactly(data, into, index * blockSize + offsetInBlock, `overlay ${name}/${OPFS_DATA_FILE}`);
    },
    async writeBlock(index, block) {
      open();
      const { blockSize } = checkIndex(layout, index);
      if (block.length !== blockSize) throw new RangeError(`overlay write of ${block.length} bytes, not one ${blockSize}-byte block`);
      writeExactly(data, block, index * blockSize, `overlay ${name}/${OPFS_DATA_FILE}`);
      setBit(bits, index);
    },
    async flush() {
      open();
      // Data first: a bit must never be durable before its block.
      data.flush();
      writeBitmap();
    },
    async clear() {
      const l = open();
      bits = new Uint8Array(bitmapBytes(l.blockCount));
      // Data first: an old bitmap left by a crash in between then no longer fits the (empty) data
      // file and is discarded on the next attach, which is the outcome wanted anyway.
      data.truncate(0);
      data.flush();
      writeBitmap();
    },
    async close() {
      if (closed) return;
      closed = true;
      data.close();
      bitmap.close();
    },
  };
}
