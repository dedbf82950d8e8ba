// Pure decoding of what the balloon driver puts in guest memory (virtio spec 1.3, 5.5.6): PFN
// arrays, memory statistics, reported free ranges. No Node, no DOM, no guest-sized allocation:
// every output is bounded by the input's length or by a caller-given limit, so these functions
// can be fuzzed with arbitrary bytes.
import {
  BALLOON_STAT_NAMES,
  VIRTIO_BALLOON_PAGE_SIZE,
  VIRTIO_BALLOON_PFN_SIZE,
  VIRTIO_BALLOON_STAT_SIZE,
  type BalloonStatName,
} from "./spec.ts";

/** A run of consecutive 4 KiB balloon pages, by guest physical address. */
export interface PageRun {
  addr: number;
  /** Number of VIRTIO_BALLOON_PAGE_SIZE pages. */
  pages: number;
}

export interface PfnDecodeResult {
  /** Valid PFNs merged into runs of consecutive frames, in input order. */
  runs: PageRun[];
  /** PFNs decoded (valid or not). */
  pfns: number;
  /** PFNs whose page is not entirely inside guest RAM (isValid said no). */
  invalid: number;
}

/**
 * Decodes an array of le32 page frame numbers (5.5.6: "addresses ... divided by 4096") into runs
 * of consecutive pages. A trailing partial entry (length not a multiple of 4) is ignored; callers
 * that treat it as malformed check the length first. `isValid(addr)` decides whether the 4 KiB
 * page at guest physical `addr` may be touched; invalid PFNs are counted and break runs.
 * Consecutive calls can continue a run across buffers by passing the previous result.
 */
export function decodePfns(
  bytes: Uint8Array,
  isValid: (addr: number) => boolean,
  into: PfnDecodeResult = { runs: [], pfns: 0, invalid: 0 },
): PfnDecodeResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.floor(bytes.byteLength / VIRTIO_BALLOON_PFN_SIZE);
  for (let i = 0; i < n; i++) {
    const pfn = view.getUint32(i * VIRTIO_BALLOON_PFN_SIZE, true);
    const addr = pfn * VIRTIO_BALLOON_PAGE_SIZE; // exact: < 2^44
    into.pfns++;
    if (!isValid(addr)) {
      into.invalid++;
      continue;
    }
    const last = into.runs.length > 0 ? into.runs[into.runs.length - 1] : undefined;
    if (last !== undefined && last.addr + last.pages * VIRTIO_BALLOON_PAGE_SIZE === addr) last.pages++;
    else into.runs.push({ addr, pages: 1 });
  }
  return into;
}

/** One struct virtio_balloon_stat (5.5.6.3). */
export interface BalloonStatEntry {
  tag: number;
  val: bigint;
}

/**
 * Decodes the statistics buffer: an array of packed 10-byte { le16 tag; le64 val; } entries
 * (5.5.6.3). At most `maxEntries` are read; a trailing partial entry is ignored.
 */
export function decodeBalloonStats(bytes: Uint8Array, maxEntries = 64): BalloonStatEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.min(maxEntries, Math.floor(bytes.byteLength / VIRTIO_BALLOON_STAT_SIZE));
  const out: BalloonStatEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = i * VIRTIO_BALLOON_STAT_SIZE;
    out.push({ tag: view.getUint16(at, true), val: view.getBigUint64(at + 2, true) });
  }
  return out;
}

/** The latest value of each statistic the driver supplied, by spec tag name (5.5.6.4). */
export type BalloonStats = Partial<Record<BalloonStatName, bigint>>;

/**
 * Folds decoded entries into named statistics. Unknown tags are ignored, as 5.5.6.3 requires
 * ("the device MUST ignore entries with tag values that it does not recognize"); a tag given
 * twice keeps its last value.
 */
export function namedBalloonStats(entries: readonly BalloonStatEntry[]): BalloonStats {
  const out: BalloonStats = {};
  for (const { tag, val } of entries) {
    const name = BALLOON_STAT_NAMES[tag];
    if (name !== undefined) out[name] = val;
  }
  return out;
}

/**
 * The largest page-aligned range inside [addr, addr + length), or undefined when it holds no
 * whole page. Used for free page reporting (5.5.6.6), whose buffers describe free memory by
 * address and length; only whole pages are given back to the host.
 */
export function alignRangeInward(addr: number, length: number, pageSize = VIRTIO_BALLOON_PAGE_SIZE): { addr: number; length: number } | undefined {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(length) || addr < 0 || length <= 0) return undefined;
  const start = Math.ceil(addr / pageSize) * pageSize;
  const end = Math.floor((addr + length) / pageSize) * pageSize;
  return end > start ? { addr: start, length: end - start } : undefined;
}
