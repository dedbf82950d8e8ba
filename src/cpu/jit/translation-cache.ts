// The persistent translation cache's core side: what a cached translation of a code page is
// keyed by, and its serialized form. The store itself is injected (TranslationCache): the core
// has no file system; src/host/node/jit-cache.ts keeps entries in a directory.
//
// A translation is a pure function of the page's 4 KiB (instructions are decoded from the page
// alone; one straddling the page's end is never translated), of the hart it was emitted for
// (translated code embeds the hart's state address), of the engine options that shape the code,
// and of the translator itself. The key holds all of it verbatim — the page's bytes included, not
// a hash of them — and a store returns an entry only for the exact key, so a hit is a translation
// of exactly the bytes in the page now; installing it then checks the page's generation as a
// fresh translation's install does.

/** The injected store: bytes by key. Implementations must never return a value stored under another key. */
export interface TranslationCache {
  /**
   * The translator's identity (package version and a hash of its code): part of every key, so
   * a changed translator never reuses what an older one emitted.
   */
  readonly version: string;
  /** The value stored under exactly `key`, or undefined (absent, unreadable, corrupt). */
  get(key: Uint8Array): Uint8Array | undefined;
  /** Stores `value` under `key` (replacing any); returns the number of entries evicted to make room. Never throws. */
  put(key: Uint8Array, value: Uint8Array): number;
}

/** What the code of a translation depends on besides the page's bytes and the translator's version. */
export interface TranslationContext {
  /** The hart's region in the wasm memory, where the translated code finds registers and TLB. */
  hartBase: number;
  ramWasmBase: number;
  /** Emitted for a memory shared with other threads (atomic accesses). */
  parallelHarts: boolean;
  /** The memory's size in 64 KiB pages (the module's memory import). */
  memoryPages: number;
  functionSize: number;
  eager: boolean;
}

/** One page's translation as stored: its module and what installing it needs. */
export interface CachedTranslation {
  /** Guest instructions the translation covers (statistics). */
  instructions: number;
  /** The module's exported functions (export name `f<index>`) and the page offsets each is entered at. */
  functions: { index: number; entries: number[] }[];
  /** Page offsets of the instructions translated. */
  covered: number[];
  /** The wasm module, importing what jit.ts's modules import. */
  module: Uint8Array<ArrayBuffer>;
}

const KEY_FORMAT = "parley translation cache 1";
const ENTRY_MAGIC = 0x3143_4a50; // "PJC1"
const PAGE_BYTES = 4096;

/** The key of page `page` (its 4096 bytes) translated in `context` by translator `version`. */
export function translationKey(version: string, context: TranslationContext, page: Uint8Array): Uint8Array {
  if (page.length !== PAGE_BYTES) throw new Error("translation cache: a key needs the page's 4096 bytes");
  const header = new TextEncoder().encode(
    `${KEY_FORMAT}\n${version}\nhart ${context.hartBase} ram ${context.ramWasmBase} shared ${context.parallelHarts} ` +
      `memory ${context.memoryPages} function ${context.functionSize} eager ${context.eager}\n`,
  );
  const key = new Uint8Array(header.length + PAGE_BYTES);
  key.set(header);
  key.set(page, header.length);
  return key;
}

/** The stored form: little-endian u32 fields, then the module's bytes. */
export function encodeTranslation(t: CachedTranslation): Uint8Array {
  const words: number[] = [ENTRY_MAGIC, t.instructions, t.functions.length];
  for (const f of t.functions) words.push(f.index, f.entries.length, ...f.entries);
  words.push(t.covered.length, ...t.covered, t.module.length);
  const out = new Uint8Array(words.length * 4 + t.module.length);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setUint32(i * 4, w, true));
  out.set(t.module, words.length * 4);
  return out;
}

/**
 * Reads a stored translation, or undefined when the bytes are not one (truncated, garbage, or
 * offsets that cannot be in a page). The module itself is validated by the engine when compiled.
 */
export function decodeTranslation(bytes: Uint8Array): CachedTranslation | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const word = (): number => {
    if (at + 4 > bytes.length) throw new RangeError("truncated");
    const w = view.getUint32(at, true);
    at += 4;
    return w;
  };
  const offsets = (count: number): number[] => {
    if (count > PAGE_BYTES / 2) throw new RangeError("too many offsets");
    const list: number[] = [];
    for (let i = 0; i < count; i++) {
      const offset = word();
      if (offset >= PAGE_BYTES || offset % 2 !== 0) throw new RangeError("offset outside the page");
      list.push(offset);
    }
    return list;
  };
  try {
    if (word() !== ENTRY_MAGIC) return undefined;
    const instructions = word();
    const functionCount = word();
    if (functionCount > PAGE_BYTES) return undefined;
    const functions: CachedTranslation["functions"] = [];
    for (let i = 0; i < functionCount; i++) {
      const index = word();
      functions.push({ index, entries: offsets(word()) });
    }
    const covered = offsets(word());
    const moduleLength = word();
    if (at + moduleLength !== bytes.length) return undefined;
    return { instructions, functions, covered, module: bytes.slice(at) };
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}
