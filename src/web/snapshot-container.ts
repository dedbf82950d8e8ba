// The page's snapshot file: one portable file (download, restore from disk) holding a paused
// machine's state (VirtMachine.saveState) and its RAM, without Node's crypto or files.
//
//   "PARLEYWS"  u32 version  u32 headerBytes  header (UTF-8 JSON)  page data  u32 crc32
//
// The header names the machine's shape (harts, MiB of RAM), the state, and RAM's non-zero pages
// as runs [firstPage, pageCount]; the page data is those pages in order. The CRC-32 (IEEE) covers
// every byte before it, so a truncated or corrupted file is refused before anything is built.
// Everything here is pure: the decoder checks all of it and names what is wrong.

export const WEB_SNAPSHOT_MAGIC = "PARLEYWS";
export const WEB_SNAPSHOT_VERSION = 1;
export const PAGE_SIZE = 4096;
/** wasm32's whole address space: no guest RAM is larger. */
const MAX_RAM_BYTES = 2 ** 32;
/** The JSON header (machine state: CPU, devices, queues) is well below this. */
const MAX_HEADER_BYTES = 64 * 2 ** 20;
const PREAMBLE_BYTES = 16;
const CRC_BYTES = 4;

export class WebSnapshotError extends Error {
  override name = "WebSnapshotError";
}

/** [first page, page count]: a run of RAM pages present in the file (the rest are zero). */
export type PageRun = [number, number];

/** What the machine was built with: a restore builds the same shape. */
export interface WebMachineShape {
  harts: number;
  memoryMiB: number;
  /** Whether a data disk (image/disk.img) was attached: its virtio slot is part of the state. */
  disk: boolean;
}

export interface WebSnapshotHeader {
  createdAt: string;
  shape: WebMachineShape;
  /** VirtMachine.saveState(): checked by the machine's own restoreState. */
  state: unknown;
  ramSize: number;
  runs: PageRun[];
}

export interface DecodedWebSnapshot {
  header: WebSnapshotHeader;
  /** The pages of header.runs, in order (a view into the file's bytes). */
  pages: Uint8Array;
}

/** Runs of pages that are not all zero. */
export function nonZeroPageRuns(ram: Uint8Array): PageRun[] {
  if (ram.length % PAGE_SIZE !== 0) throw new RangeError("RAM must be a whole number of pages");
  const words = new Uint32Array(ram.buffer, ram.byteOffset, ram.length / 4);
  const wordsPerPage = PAGE_SIZE / 4;
  const runs: PageRun[] = [];
  let runStart = -1;
  const pages = ram.length / PAGE_SIZE;
  for (let page = 0; page < pages; page++) {
    let zero = true;
    for (let i = page * wordsPerPage, end = i + wordsPerPage; i < end; i++) {
      if (words[i] !== 0) {
        zero = false;
        break;
      }
    }
    if (!zero && runStart < 0) runStart = page;
    if (zero && runStart >= 0) {
      runs.push([runStart, page - runStart]);
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push([runStart, pages - runStart]);
  return runs;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib and PNG compute it. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The file for a paused machine's state and RAM (only non-zero pages are stored). */
export function encodeWebSnapshot(options: { shape: WebMachineShape; state: unknown; ram: Uint8Array; createdAt?: string }): Uint8Array {
  const { ram } = options;
  const runs = nonZeroPageRuns(ram);
  const header: WebSnapshotHeader = { createdAt: options.createdAt ?? new Date().toISOString(), shape: options.shape, state: options.state, ramSize: ram.length, runs };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const pageBytes = runs.reduce((sum, [, count]) => sum + count * PAGE_SIZE, 0);
  const out = new Uint8Array(PREAMBLE_BYTES + headerBytes.length + pageBytes + CRC_BYTES);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(WEB_SNAPSHOT_MAGIC), 0);
  view.setUint32(8, WEB_SNAPSHOT_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  out.set(headerBytes, PREAMBLE_BYTES);
  let at = PREAMBLE_BYTES + headerBytes.length;
  for (const [first, count] of runs) {
    out.set(ram.subarray(first * PAGE_SIZE, (first + count) * PAGE_SIZE), at);
    at += count * PAGE_SIZE;
  }
  view.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

const isWholeNumber = (v: unknown, min: number, max: number): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;

function checkShape(value: unknown): WebMachineShape {
  if (typeof value !== "object" || value === null) throw new WebSnapshotError("snapshot: header.shape: expected an object");
  const shape = value as Record<string, unknown>;
  if (!isWholeNumber(shape.harts, 1, 32)) throw new WebSnapshotError("snapshot: header.shape.harts: expected a whole number from 1 to 32");
  if (!isWholeNumber(shape.memoryMiB, 1, MAX_RAM_BYTES / 2 ** 20)) throw new WebSnapshotError("snapshot: header.shape.memoryMiB: expected a whole number of MiB up to 4096");
  if (typeof shape.disk !== "boolean") throw new WebSnapshotError("snapshot: header.shape.disk: expected true or false");
  return { harts: shape.harts, memoryMiB: shape.memoryMiB, disk: shape.disk };
}

/** Runs must be in order, not overlap or touch, and lie within RAM. Returns the pages they cover. */
function checkRuns(value: unknown, ramPages: number): { runs: PageRun[]; pages: number } {
  if (!Array.isArray(value)) throw new WebSnapshotError("snapshot: header.runs: expected an array");
  let next = 0;
  let pages = 0;
  const runs: PageRun[] = value.map((run: unknown, i) => {
    if (!Array.isArray(run) || run.length !== 2 || !isWholeNumber(run[0], 0, ramPages) || !isWholeNumber(run[1], 1, ramPages)) {
      throw new WebSnapshotError(`snapshot: header.runs[${i}]: expected [first page, page count] within ${ramPages} pages`);
    }
    const [first, count] = run as PageRun;
    if (first < next) throw new WebSnapshotError(`snapshot: header.runs[${i}]: starts at page ${first}, before the end of the previous run (${next})`);
    if (first + count > ramPages) throw new WebSnapshotError(`snapshot: header.runs[${i}]: ends at page ${first + count}, beyond RAM's ${ramPages} pages`);
    next = first + count;
    pages += count;
    return [first, count];
  });
  return { runs, pages };
}

/** Parses and checks a snapshot file; throws WebSnapshotError saying what is wrong. */
export function decodeWebSnapshot(bytes: Uint8Array): DecodedWebSnapshot {
  if (bytes.length < PREAMBLE_BYTES + CRC_BYTES) throw new WebSnapshotError(`snapshot: ${bytes.length} bytes is too short for a Parley web snapshot`);
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== WEB_SNAPSHOT_MAGIC) throw new WebSnapshotError("snapshot: not a Parley web snapshot (no PARLEYWS signature)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== WEB_SNAPSHOT_VERSION) throw new WebSnapshotError(`snapshot: format version ${version}; this page reads version ${WEB_SNAPSHOT_VERSION}`);
  const headerLength = view.getUint32(12, true);
  const body = bytes.length - CRC_BYTES;
  if (headerLength > MAX_HEADER_BYTES || PREAMBLE_BYTES + headerLength > body) throw new WebSnapshotError(`snapshot: header of ${headerLength} bytes does not fit in the file (truncated?)`);
  const storedCrc = view.getUint32(body, true);
  if (crc32(bytes.subarray(0, body)) !== storedCrc) throw new WebSnapshotError("snapshot: checksum mismatch (the file is truncated or corrupted)");
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength)));
  } catch {
    throw new WebSnapshotError("snapshot: the header is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new WebSnapshotError("snapshot: header: expected an object");
  const raw = parsed as Record<string, unknown>;
  if (typeof raw.createdAt !== "string") throw new WebSnapshotError("snapshot: header.createdAt: expected a string");
  const shape = checkShape(raw.shape);
  if (raw.ramSize !== shape.memoryMiB * 2 ** 20) throw new WebSnapshotError(`snapshot: header.ramSize: expected ${shape.memoryMiB} MiB in bytes (${shape.memoryMiB * 2 ** 20})`);
  if (!("state" in raw) || typeof raw.state !== "object" || raw.state === null) throw new WebSnapshotError("snapshot: header.state: expected the machine's state (an object)");
  const { runs, pages } = checkRuns(raw.runs, raw.ramSize / PAGE_SIZE);
  const dataStart = PREAMBLE_BYTES + headerLength;
  if (body - dataStart !== pages * PAGE_SIZE) throw new WebSnapshotError(`snapshot: ${body - dataStart} bytes of page data, the header's runs need ${pages * PAGE_SIZE}`);
  return {
    header: { createdAt: raw.createdAt, shape, state: raw.state, ramSize: raw.ramSize as number, runs },
    pages: bytes.subarray(dataStart, body),
  };
}

/** Copies a decoded snapshot's pages into RAM (which the caller made all zero, as a fresh machine's is). */
export function copyPagesIntoRam(ram: Uint8Array, decoded: DecodedWebSnapshot): void {
  if (ram.length !== decoded.header.ramSize) throw new WebSnapshotError(`snapshot: ${decoded.header.ramSize} bytes of RAM, the machine has ${ram.length}`);
  let at = 0;
  for (const [first, count] of decoded.header.runs) {
    ram.set(decoded.pages.subarray(at, at + count * PAGE_SIZE), first * PAGE_SIZE);
    at += count * PAGE_SIZE;
  }
}
