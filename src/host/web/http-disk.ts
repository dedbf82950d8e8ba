// A disk image on a web server as a virtio-blk BlockBackend (src/virtio/blk/backend.ts), for the
// browser: reads fetch only the parts needed with HTTP range requests (RFC 9110, 14), writes stay
// local in an OverlayStore (copy-on-write at the overlay's block size).
//
// - Reads are served per block: from the overlay when the block was written locally, otherwise
//   from aligned chunks of the image (CHUNK_SIZE, bigger than a block so that a sequential
//   reader makes few requests), kept in a small LRU cache. Concurrent requests for one chunk
//   share one fetch.
// - A write of part of a block first fills the block from the image (or the overlay), so the
//   overlay always holds whole blocks. Writes touching the same block are serialised (per-block
//   locks) so that two partial writes to one block both survive.
// - flush() persists the overlay (its data, then the set of present blocks).
// - Every failure (server gone, HTTP error, a response that is not the requested range, a
//   timeout) rejects the request with an Error: the device reports VIRTIO_BLK_S_IOERR.
//
// The image is expected not to change on the server. The first response's validator (ETag) and
// size are recorded; a later response with another ETag or total size fails the request, and the
// overlay is tied to them (OverlayLayout.source: size and ETag or Last-Modified, not the URL, so
// that serving the page on another port keeps the overlay), so edits made over one image are not
// replayed over another.

import type { BlockBackend } from "../../virtio/blk/backend.ts";
import { checkBackendRange, validateBlockId } from "../../virtio/blk/backend.ts";
import { SECTOR_SIZE } from "../../virtio/blk/spec.ts";
import type { OverlayStore } from "./overlay-store.ts";

export const DEFAULT_BLOCK_SIZE = 4096;
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
export const DEFAULT_CACHE_CHUNKS = 64;
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface HttpOverlayDiskOptions {
  url: string;
  overlay: OverlayStore;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Copy-on-write granularity in bytes: a multiple of 512 dividing the chunk size. Default 4096. */
  blockSize?: number;
  /** Bytes per range request: a multiple of blockSize. Default 64 KiB. */
  chunkSize?: number;
  /** Fetched chunks kept in memory. Default 64 (4 MiB with the default chunk size). */
  cacheChunks?: number;
  /** A request that takes longer fails. Default 30 s. */
  timeoutMs?: number;
  /** GET_ID serial. Default "". */
  id?: string;
  /** Where a discarded overlay is reported. Default console.warn. */
  warn?: (message: string) => void;
}

export type HttpOverlayDisk = BlockBackend & {
  /** Forgets every local write (durably): the disk reads as the server's image again. */
  discardOverlay(): Promise<void>;
};

/** Parses `Content-Range: bytes FIRST-LAST/TOTAL` (RFC 9110, 14.4). */
export function parseContentRange(header: string | null): { first: number; last: number; total: number } | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+)\s*$/i.exec(header);
  if (!m) return undefined;
  const [first, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (![first, last, total].every(Number.isSafeInteger) || first > last || last >= total) return undefined;
  return { first, last, total };
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.name === "TimeoutError" ? "timed out" : e.message;
  return String(e);
}

/** A promise chain per key: run(keys, fn) runs fn once every earlier holder of any key is done. */
class KeyedLocks {
  private readonly tails = new Map<number, Promise<void>>();

  async run<T>(keys: number[], fn: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const before: Promise<void>[] = [];
    for (const key of keys) {
      const tail = this.tails.get(key);
      if (tail) before.push(tail);
      this.tails.set(key, mine);
    }
    try {
      await Promise.all(before);
      return await fn();
    } finally {
      release();
      for (const key of keys) if (this.tails.get(key) === mine) this.tails.delete(key);
    }
  }
}

class HttpOverlayBlockBackend implements HttpOverlayDisk {
  readonly readOnly = false;
  readonly writeZeroesMayUnmap = false;
  private closed = false;
  private readonly cache = new Map<number, Uint8Array>();
  private readonly inflight = new Map<number, Promise<Uint8Array>>();
  private readonly locks = new KeyedLocks();

  constructor(
    private readonly url: string,
    private readonly overlay: OverlayStore,
    private readonly fetchFn: typeof fetch,
    readonly size: number,
    private readonly etag: string | undefined,
    readonly blockSize: number,
    private readonly chunkSize: number,
    private readonly cacheChunks: number,
    private readonly timeoutMs: number,
    readonly id: string,
  ) {}

  private check(offset: number, length: number): void {
    if (this.closed) throw new Error(`disk ${this.url} is closed`);
    checkBackendRange(this.size, offset, length);
  }

  /** The image bytes of chunk `index` (shorter at the end of the image). */
  private chunk(index: number): Promise<Uint8Array> {
    const cached = this.cache.get(index);
    if (cached) {
      this.cache.delete(index); // re-insert: Map order is the LRU order
      this.cache.set(index, cached);
      return Promise.resolve(cached);
    }
    let pending = this.inflight.get(index);
    if (!pending) {
      pending = this.fetchChunk(index).then(
        (bytes) => {
          this.inflight.delete(index);
          if (!this.closed) {
            this.cache.set(index, bytes);
            if (this.cache.size > this.cacheChunks) this.cache.delete(this.cache.keys().next().value!);
          }
          return bytes;
        },
        (e: unknown) => {
          this.inflight.delete(index); // the next request tries again
          throw e;
        },
      );
      this.inflight.set(index, pending);
    }
    return pending;
  }

  private async fetchChunk(index: number): Promise<Uint8Array> {
    const first = index * this.chunkSize;
    const last = Math.min(first + this.chunkSize, this.size) - 1;
    const what = `disk ${this.url} bytes ${first}-${last}`;
    let response: Response;
    try {
      response = await this.fetchFn(this.url, {
        headers: { Range: `bytes=${first}-${last}` },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new Error(`${what}: ${describe(e)}`, { cause: e });
    }
    try {
      if (response.status !== 206) {
        throw new Error(`${what}: HTTP ${response.status}${response.status === 200 ? " (the server ignored the range)" : ""}`);
      }
      const range = parseContentRange(response.headers.get("Content-Range"));
      if (!range || range.first !== first || range.last !== last) {
        throw new Error(`${what}: the server answered with range "${response.headers.get("Content-Range")}"`);
      }
      if (range.total !== this.size) throw new Error(`${what}: the image changed on the server (now ${range.total} bytes)`);
      const etag = response.headers.get("ETag") ?? undefined;
      if (this.etag && etag && etag !== this.etag) throw new Error(`${what}: the image changed on the server (ETag ${etag})`);
      const body = new Uint8Array(await response.arrayBuffer());
      if (body.length !== last - first + 1) throw new Error(`${what}: short response of ${body.length} bytes`);
      return body;
    } catch (e) {
      await response.body?.cancel().catch(() => {});
      if (e instanceof Error && e.message.startsWith(what)) throw e;
      throw new Error(`${what}: ${describe(e)}`, { cause: e });
    }
  }

  /** Copies image bytes [offset, offset + into.length) (within one chunk or more) from the server. */
  private async readImage(offset: number, into: Uint8Array): Promise<void> {
    const end = offset + into.length;
    const firstChunk = Math.floor(offset / this.chunkSize);
    const lastChunk = Math.floor((end - 1) / this.chunkSize);
    const copies: Promise<void>[] = [];
    for (let c = firstChunk; c <= lastChunk; c++) {
      const chunkStart = c * this.chunkSize;
      const from = Math.max(offset, chunkStart);
      const to = Math.min(end, chunkStart + this.chunkSize);
      copies.push(this.chunk(c).then((bytes) => into.set(bytes.subarray(from - chunkStart, to - chunkStart), from - offset)));
    }
    await Promise.all(copies);
  }

  async read(offset: number, into: Uint8Array): Promise<void> {
    this.check(offset, into.length);
    if (into.length === 0) return;
    const end = offset + into.length;
    const parts: Promise<void>[] = [];
    // Runs of consecutive blocks from the same source become one copy.
    let runStart = offset;
    let runLocal = this.overlay.has(Math.floor(offset / this.blockSize));
    const flushRun = (runEnd: number) => {
      const target = into.subarray(runStart - offset, runEnd - offset);
      parts.push(runLocal ? this.readLocal(runStart, target) : this.readImage(runStart, target));
    };
    for (let b = Math.floor(offset / this.blockSize) + 1; b * this.blockSize < end; b++) {
      const local = this.overlay.has(b);
      if (local !== runLocal) {
        flushRun(b * this.blockSize);
        runStart = b * this.blockSize;
        runLocal = local;
      }
    }
    flushRun(end);
    await Promise.all(parts);
  }

  /** Copies overlay bytes [offset, offset + into.length), all in present blocks. */
  private async readLocal(offset: number, into: Uint8Array): Promise<void> {
    for (let at = offset; at < offset + into.length; ) {
      const block = Math.floor(at / this.blockSize);
      const inBlock = at - block * this.blockSize;
      const n = Math.min(this.blockSize - inBlock, offset + into.length - at);
      await this.overlay.readBlock(block, into.subarray(at - offset, at - offset + n), inBlock);
      at += n;
    }
  }

  /** The current content of a whole block (the last block of the image is padded with zeroes). */
  private async currentBlock(index: number): Promise<Uint8Array> {
    const block = new Uint8Array(this.blockSize);
    if (this.overlay.has(index)) {
      await this.overlay.readBlock(index, block, 0);
    } else {
      const start = index * this.blockSize;
      await this.readImage(start, block.subarray(0, Math.min(this.blockSize, this.size - start)));
    }
    return block;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check(offset, data.length);
    await this.writeRange(offset, data.length, (block, at, n) => block.set(data.subarray(at - offset, at - offset + n), at % this.blockSize));
  }

  /**
   * Applies `fill(block, at, n)` to every block overlapping [offset, offset + length): whole blocks
   * start from zeroes, partial ones from their current content.
   */
  private async writeRange(offset: number, length: number, fill: (block: Uint8Array, at: number, n: number) => void): Promise<void> {
    if (length === 0) return;
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((offset + length - 1) / this.blockSize);
    const blocks: number[] = [];
    for (let b = first; b <= last; b++) blocks.push(b);
    await this.locks.run(blocks, async () => {
      await Promise.all(
        blocks.map(async (b) => {
          const blockStart = b * this.blockSize;
          const at = Math.max(offset, blockStart);
          const n = Math.min(offset + length, blockStart + this.blockSize) - at;
          const block = n === this.blockSize ? new Uint8Array(this.blockSize) : await this.currentBlock(b);
          fill(block, at, n);
          await this.overlay.writeBlock(b, block);
        }),
      );
    });
  }

  async flush(): Promise<void> {
    if (this.closed) throw new Error(`disk ${this.url} is closed`);
    await this.overlay.flush();
  }

  async discard(offset: number, length: number): Promise<void> {
    // Advisory (5.2.6.2: the device MAY deallocate): keeping the data is allowed.
    this.check(offset, length);
  }

  async writeZeroes(offset: number, length: number, _unmap: boolean): Promise<void> {
    this.check(offset, length);
    await this.writeRange(offset, length, (block, at, n) => block.fill(0, at % this.blockSize, (at % this.blockSize) + n));
  }

  async discardOverlay(): Promise<void> {
    if (this.closed) throw new Error(`disk ${this.url} is closed`);
    await this.overlay.clear();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    await this.overlay.close();
  }
}

/** Asks the server for the image's size (and checks that it serves ranges) with `Range: bytes=0-0`. */
async function probe(url: string, fetchFn: typeof fetch, timeoutMs: number): Promise<{ size: number; etag?: string; validator: string }> {
  let response: Response;
  try {
    response = await fetchFn(url, { headers: { Range: "bytes=0-0" }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new Error(`disk ${url}: ${describe(e)}`, { cause: e });
  }
  // Only the headers matter; a server that ignored the range would otherwise send the whole image.
  await response.body?.cancel().catch(() => {});
  if (response.status === 200) {
    throw new Error(`disk ${url}: the server does not support range requests (it answered 200 to "Range: bytes=0-0")`);
  }
  if (response.status !== 206) throw new Error(`disk ${url}: HTTP ${response.status}`);
  const range = parseContentRange(response.headers.get("Content-Range"));
  if (!range) throw new Error(`disk ${url}: no usable Content-Range in the answer ("${response.headers.get("Content-Range")}")`);
  const etag = response.headers.get("ETag") ?? undefined;
  return { size: range.total, etag, validator: etag ?? response.headers.get("Last-Modified") ?? "" };
}

/**
 * Opens the disk image at `url` (which must answer range requests) with local writes in `overlay`.
 * Rejects with a message meant for the user when the server cannot be used.
 */
export async function openHttpOverlayDisk(options: HttpOverlayDiskOptions): Promise<HttpOverlayDisk> {
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const chunkSize = options.chunkSize ?? Math.max(DEFAULT_CHUNK_SIZE, blockSize);
  const cacheChunks = options.cacheChunks ?? DEFAULT_CACHE_CHUNKS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const id = options.id ?? "";
  const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  if (!Number.isSafeInteger(blockSize) || blockSize <= 0 || blockSize % SECTOR_SIZE !== 0) {
    throw new RangeError(`blockSize ${blockSize} must be a positive multiple of ${SECTOR_SIZE}`);
  }
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0 || chunkSize % blockSize !== 0) {
    throw new RangeError(`chunkSize ${chunkSize} must be a positive multiple of blockSize ${blockSize}`);
  }
  if (!Number.isSafeInteger(cacheChunks) || cacheChunks < 1) throw new RangeError(`cacheChunks ${cacheChunks} must be at least 1`);
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs ${timeoutMs} must be positive`);
  const idError = validateBlockId(id);
  if (idError) throw new Error(idError);

  const { size, etag, validator } = await probe(options.url, fetchFn, timeoutMs);
  if (size % SECTOR_SIZE !== 0) {
    throw new Error(`disk ${options.url} is ${size} bytes, which is not a multiple of ${SECTOR_SIZE} (the virtio-blk sector size)`);
  }
  const blockCount = Math.ceil(size / blockSize);
  const { warning } = await options.overlay.attach({ blockSize, blockCount, source: `${size} ${validator}` });
  if (warning) (options.warn ?? ((m: string) => console.warn(m)))(warning);
  return new HttpOverlayBlockBackend(options.url, options.overlay, fetchFn, size, etag, blockSize, chunkSize, cacheChunks, timeoutMs, id);
}
