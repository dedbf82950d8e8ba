// Guest RAM to and from a snapshot's memory file. The file is a 4 KiB header, then the RAM image at
// offset 4096 (page-aligned, so the image can also be mapped), written sparsely: pages that are all
// zero are never written, so they stay holes that cost neither disk blocks nor time, and restore
// reads only the runs of non-zero pages the snapshot's state lists (a fresh guest memory is zero).
//
// The header binds the file to its state file (the snapshot id) and to the machine's RAM size, so a
// memory file from another snapshot or a truncated one is refused before any guest memory is touched.
import { closeSync, fstatSync, openSync, readSync, writeSync, ftruncateSync } from "node:fs";
import { loadLibc, libcUnavailable, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./libc.ts";

export const MEMORY_FILE_MAGIC = "PARLEYMEM1";
export const MEMORY_FILE_HEADER = 4096;
export const PAGE_SIZE = 4096;

/** Runs of non-zero pages: [first page, page count], in increasing order, not touching. */
export type PageRuns = [number, number][];

export class MemoryFileError extends Error {
  override name = "MemoryFileError";
}

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);
/** Pages looked at together first: most of a guest's RAM is zero, or not, in long stretches. */
const CHUNK_PAGES = 16;
const ZERO_CHUNK = Buffer.alloc(PAGE_SIZE * CHUNK_PAGES);

/**
 * A test for "page i of `ram` is all zero", by the C library's memcmp (Buffer.compare) over the
 * page: far faster than reading the page from JavaScript, which matters since snapshots and
 * migration look at every page of RAM.
 */
export function zeroPageTester(ram: Uint8Array): (page: number) => boolean {
  const bytes = Buffer.from(ram.buffer, ram.byteOffset, ram.length);
  return (page) => bytes.compare(ZERO_PAGE, 0, PAGE_SIZE, page * PAGE_SIZE, (page + 1) * PAGE_SIZE) === 0;
}

/** The runs of pages of `ram` holding any non-zero byte. */
export function nonZeroPageRuns(ram: Uint8Array): PageRuns {
  if (ram.length % PAGE_SIZE !== 0) throw new RangeError("RAM must be a whole number of pages");
  const bytes = Buffer.from(ram.buffer, ram.byteOffset, ram.length);
  const isZero = zeroPageTester(ram);
  const pages = ram.length / PAGE_SIZE;
  const runs: PageRuns = [];
  let runStart = -1;
  for (let page = 0; page < pages; page++) {
    if (page % CHUNK_PAGES === 0 && page + CHUNK_PAGES <= pages) {
      const offset = page * PAGE_SIZE;
      if (bytes.compare(ZERO_CHUNK, 0, ZERO_CHUNK.length, offset, offset + ZERO_CHUNK.length) === 0) {
        if (runStart >= 0) {
          runs.push([runStart, page - runStart]);
          runStart = -1;
        }
        page += CHUNK_PAGES - 1;
        continue;
      }
    }
    const nonZero = !isZero(page);
    if (nonZero && runStart < 0) runStart = page;
    if (!nonZero && runStart >= 0) {
      runs.push([runStart, page - runStart]);
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push([runStart, pages - runStart]);
  return runs;
}

function header(snapshotId: string, ramSize: number): Uint8Array {
  const bytes = new Uint8Array(MEMORY_FILE_HEADER);
  const text = JSON.stringify({ magic: MEMORY_FILE_MAGIC, snapshotId, ramSize, pageSize: PAGE_SIZE });
  bytes.set(new TextEncoder().encode(text));
  return bytes;
}

/**
 * Writes `ram` to `path` (created or truncated): the header, then every non-zero page at its offset.
 * Returns the runs written and the bytes of RAM written.
 */
export function writeMemoryFile(path: string, ram: Uint8Array, snapshotId: string, runs: PageRuns = nonZeroPageRuns(ram)): { runs: PageRuns; bytesWritten: number } {
  const fd = openSync(path, "w");
  try {
    ftruncateSync(fd, MEMORY_FILE_HEADER + ram.length);
    writeSync(fd, header(snapshotId, ram.length), 0, MEMORY_FILE_HEADER, 0);
    let bytesWritten = 0;
    for (const [first, count] of runs) {
      const offset = first * PAGE_SIZE;
      const length = count * PAGE_SIZE;
      let done = 0;
      while (done < length) done += writeSync(fd, ram, offset + done, length - done, MEMORY_FILE_HEADER + offset + done);
      bytesWritten += length;
    }
    return { runs, bytesWritten };
  } finally {
    closeSync(fd);
  }
}

/** An opened memory file whose header and size were checked; read() or map() fills RAM from it. */
export interface MemoryFile {
  readonly fd: number;
  /** Copies the runs of non-zero pages into `ram` (all zero before); returns the bytes read. */
  read(ram: Uint8Array, runs: PageRuns): number;
  /**
   * Maps the file's RAM image over `ram` (copy-on-write, MAP_PRIVATE | MAP_FIXED), as Firecracker
   * restores: nothing is read now, each page comes from the file (or is zero, for holes) when the
   * guest first touches it, and the guest's writes stay private to this process. Returns false,
   * changing nothing, where it cannot (no koffi or not Linux, host pages larger than 4 KiB, a
   * misaligned RAM): then read() instead. The file must not be truncated while the machine runs
   * (a process touching a mapped page past the end of its file gets SIGBUS); deleting or renaming
   * it is harmless, and Parley's own snapshots never rewrite a file in place.
   */
  map(ram: Uint8Array): boolean;
  /** Why map() returned false, if it did. */
  mapUnavailable: string | undefined;
  close(): void;
}

/** Opens and checks a memory file against its snapshot (id, RAM size, length); touches no RAM. */
export function openMemoryFile(path: string, snapshotId: string, ramSize: number): MemoryFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new MemoryFileError(`memory file ${path}: ${(err as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    if (size < MEMORY_FILE_HEADER) throw new MemoryFileError(`memory file ${path}: ${size} bytes is too short to be a Parley memory file`);
    const head = new Uint8Array(MEMORY_FILE_HEADER);
    readSync(fd, head, 0, MEMORY_FILE_HEADER, 0);
    const end = head.indexOf(0);
    let parsed: { magic?: unknown; snapshotId?: unknown; ramSize?: unknown; pageSize?: unknown };
    try {
      parsed = JSON.parse(new TextDecoder().decode(head.subarray(0, end < 0 ? head.length : end)));
    } catch {
      throw new MemoryFileError(`memory file ${path}: not a Parley memory file (no header)`);
    }
    if (parsed.magic !== MEMORY_FILE_MAGIC) throw new MemoryFileError(`memory file ${path}: not a Parley memory file (magic ${JSON.stringify(parsed.magic)})`);
    if (parsed.snapshotId !== snapshotId) throw new MemoryFileError(`memory file ${path} belongs to snapshot ${String(parsed.snapshotId)}, not to this state file's ${snapshotId}`);
    if (parsed.ramSize !== ramSize || parsed.pageSize !== PAGE_SIZE) throw new MemoryFileError(`memory file ${path}: holds ${String(parsed.ramSize)} bytes of RAM, the snapshot has ${ramSize}`);
    if (size !== MEMORY_FILE_HEADER + ramSize) throw new MemoryFileError(`memory file ${path}: ${size} bytes, expected ${MEMORY_FILE_HEADER + ramSize} (truncated or not this snapshot's)`);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return {
    fd,
    read(ram, runs) {
      let bytes = 0;
      for (const [first, count] of runs) {
        const offset = first * PAGE_SIZE;
        const length = count * PAGE_SIZE;
        let done = 0;
        while (done < length) {
          const n = readSync(fd, ram, offset + done, length - done, MEMORY_FILE_HEADER + offset + done);
          if (n === 0) throw new MemoryFileError(`memory file ended early at RAM offset ${offset + done}`);
          done += n;
        }
        bytes += length;
      }
      return bytes;
    },
    mapUnavailable: undefined as string | undefined,
    map(ram) {
      const libc = loadLibc();
      if (!libc) {
        this.mapUnavailable = libcUnavailable();
        return false;
      }
      if (libc.pageSize !== PAGE_SIZE) {
        this.mapUnavailable = `host pages are ${libc.pageSize} bytes, the memory file's ${PAGE_SIZE}`;
        return false;
      }
      const base = libc.address(new Uint8Array(ram.buffer, 0, 1)) + BigInt(ram.byteOffset);
      if (base % BigInt(PAGE_SIZE) !== 0n) {
        this.mapUnavailable = "guest RAM is not page-aligned in host memory";
        return false;
      }
      const mapped = libc.mmap(base, ram.length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, MEMORY_FILE_HEADER);
      if (mapped === undefined) {
        // A failed MAP_FIXED leaves the old mapping in place (Linux unmaps only on success).
        this.mapUnavailable = `mmap failed (errno ${libc.errno()})`;
        return false;
      }
      if (mapped !== base) throw new MemoryFileError(`mmap placed the memory file at 0x${mapped.toString(16)}, not over guest RAM at 0x${base.toString(16)}`);
      return true;
    },
    close: () => closeSync(fd),
  };
}

/** Checks runs from a state file against the RAM size: in order, within RAM, not overlapping. */
export function checkPageRuns(runs: unknown, ramSize: number, where: string): PageRuns {
  if (!Array.isArray(runs)) throw new MemoryFileError(`${where}: expected a list of [first page, count] runs`);
  const pages = ramSize / PAGE_SIZE;
  let next = 0;
  return runs.map((run, i) => {
    if (!Array.isArray(run) || run.length !== 2 || !run.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new MemoryFileError(`${where}[${i}]: expected [first page, count], got ${JSON.stringify(run)}`);
    }
    const [first, count] = run as [number, number];
    if (count === 0 || first < next || first + count > pages) throw new MemoryFileError(`${where}[${i}]: run [${first}, ${count}] is out of order or beyond ${pages} pages of RAM`);
    next = first + count;
    return [first, count];
  });
}
