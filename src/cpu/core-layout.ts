// Where a machine's harts and its guest RAM live in the one wasm memory they share: N hart
// regions (each laid out as in layout.ts, at offsets from its base), the code-holder map (per RAM
// page, a bit per hart that holds decoded code of it), the dirty-page log (its on/off word and a
// bit per RAM page), then guest RAM. Every Cpu
// of the machine gets the same answer, so any of them can compute any other's addresses.
import * as L from "./layout.ts";

/** wasm32 addresses 4 GiB at most. */
export const WASM32_MEMORY_BYTES = 0x1_0000_0000;
export const WASM_PAGE_BYTES = 0x1_0000;

export interface CoreLayoutOptions {
  harts: number;
  /** Guest RAM in bytes, a positive multiple of 4 KiB. */
  ramSize: number;
}

export interface CoreLayout {
  readonly harts: number;
  readonly ramSize: number;
  /** Wasm address of each hart's region (its state block is at HART_STATE from there). */
  readonly hartBases: readonly number[];
  /** Bytes from one hart's base to the next's. */
  readonly hartRegionSize: number;
  /** Wasm address of the code-holder map: a u32 per RAM page, bit i set while hart i has decoded code of it. */
  readonly codeHoldersBase: number;
  /** Wasm address of the dirty-page log: the word DIRTY_LOG_ON, then the bitmap at DIRTY_LOG_BITMAP (layout.ts). */
  readonly dirtyLogBase: number;
  /** u32 words in the dirty bitmap (one per 32 RAM pages). */
  readonly dirtyBitmapWords: number;
  /** Wasm address of guest RAM's first byte. */
  readonly ramWasmBase: number;
  /** The memory the machine needs, in bytes and in wasm pages. */
  readonly memoryBytes: number;
  readonly memoryPages: number;
}

/** The code-holder map has a bit per hart in a u32. */
export const MAX_HARTS = 32;

const alignUp = (n: number, to: number) => Math.ceil(n / to) * to;

/** One hart's region for `ramSize` bytes of RAM: the fixed part, then a page map entry per RAM page. */
export function hartRegionSize(ramSize: number): number {
  return alignUp(L.HART_PAGEMAP + (ramSize / 4096) * 4, L.HART_REGION_ALIGN);
}

export function coreLayout({ harts, ramSize }: CoreLayoutOptions): CoreLayout {
  if (!Number.isInteger(harts) || harts < 1) throw new RangeError(`hart count must be a positive integer, got ${harts}`);
  if (!Number.isInteger(ramSize) || ramSize <= 0 || ramSize % 4096 !== 0) {
    throw new RangeError(`RAM size must be a positive multiple of 4 KiB, got ${ramSize}`);
  }
  const region = hartRegionSize(ramSize);
  const hartBases = Array.from({ length: harts }, (_, i) => L.HARTS_BASE + i * region);
  const codeHoldersBase = L.HARTS_BASE + harts * region;
  const dirtyLogBase = alignUp(codeHoldersBase + (ramSize / 4096) * 4, 64);
  const dirtyBitmapWords = dirtyBitmapWordsFor(ramSize);
  const ramWasmBase = alignUp(dirtyLogBase + L.DIRTY_LOG_BITMAP + dirtyBitmapWords * 4, L.RAM_WASM_ALIGN);
  const memoryBytes = alignUp(ramWasmBase + ramSize, WASM_PAGE_BYTES);
  if (memoryBytes > WASM32_MEMORY_BYTES) {
    const mib = (n: number) => `${Math.ceil(n / 2 ** 20)} MiB`;
    throw new RangeError(
      `${harts} hart${harts === 1 ? "" : "s"} and ${mib(ramSize)} of RAM do not fit in wasm32's 4 GiB: ` +
        `the harts take ${mib(ramWasmBase)} (${mib(region)} each), leaving ${ramLeft(harts)} for RAM`,
    );
  }
  if (harts > MAX_HARTS) throw new RangeError(`at most ${MAX_HARTS} harts share code-holder bits, got ${harts}`);
  return { harts, ramSize, hartBases, hartRegionSize: region, codeHoldersBase, dirtyLogBase, dirtyBitmapWords, ramWasmBase, memoryBytes, memoryPages: memoryBytes / WASM_PAGE_BYTES };
}

/** The dirty bitmap's size in u32 words for `ramSize` bytes of RAM (a bit per page). */
export function dirtyBitmapWordsFor(ramSize: number): number {
  return Math.ceil(ramSize / 4096 / 32);
}

/** The most RAM (bytes, a multiple of 4 KiB) that fits beside `harts` harts. */
export function maxRamSize(harts: number): number {
  // Each RAM page costs 4096 bytes plus 4 of page map per hart, 4 of code-holder map and a bit of
  // dirty bitmap; search down from the estimate because of the alignments.
  let ram = Math.floor((WASM32_MEMORY_BYTES - L.HARTS_BASE - harts * L.HART_PAGEMAP) / (4096 + 4 * harts + 4)) * 4096;
  while (ram > 0) {
    try {
      coreLayout({ harts, ramSize: ram });
      return ram;
    } catch {
      ram -= 0x10_0000;
      ram -= ram % 0x10_0000;
    }
  }
  return 0;
}

function ramLeft(harts: number): string {
  return `${Math.floor(maxRamSize(harts) / 2 ** 20)} MiB`;
}
