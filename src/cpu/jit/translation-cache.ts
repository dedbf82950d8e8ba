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

import { concatBytes } from "../../platform/bytes.ts";
import { FIRST_PAGE_FUNCTION } from "./frame.ts";
import { readPaddedU32, writePaddedU32, ValType, type FuncType, type ModuleBuilder } from "./wasm-emitter.ts";

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
  /**
   * Whole entries to compile ahead, most recently used first, up to a bound of the store's
   * choosing (optional: without it, every page is looked up with get at its first execution).
   */
  entries?(): Iterable<{ key: Uint8Array; value: Uint8Array }>;
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

/**
 * One page's translation as stored: its functions, numbered from FIRST_PAGE_FUNCTION in their
 * order, with the body offsets of their calls to each other (5-byte indices, so that the
 * functions can go into any module, next to other pages': addCachedPage).
 */
export interface CachedTranslation {
  /** Guest instructions the translation covers (statistics). */
  instructions: number;
  /** Page offsets of the instructions translated. */
  covered: number[];
  /** Functions with entries (page offsets) are called from the table; the page's dispatcher has none. */
  functions: { entries: number[]; locals: { count: number; type: ValType }[]; body: Uint8Array; relocations: number[] }[];
}

const KEY_FORMAT = "parley translation cache 2";
const ENTRY_MAGIC = 0x3243_4a50; // "PJC2"
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

/** The stored form: little-endian u32 fields; each body's bytes follow its fields, padded to 4. */
export function encodeTranslation(t: CachedTranslation): Uint8Array {
  const parts: Uint8Array[] = [];
  let words: number[] = [ENTRY_MAGIC, t.instructions, t.covered.length, ...t.covered, t.functions.length];
  const flush = () => {
    const chunk = new Uint8Array(words.length * 4);
    const view = new DataView(chunk.buffer);
    words.forEach((w, i) => view.setUint32(i * 4, w, true));
    parts.push(chunk);
    words = [];
  };
  for (const f of t.functions) {
    words.push(f.entries.length, ...f.entries, f.locals.length);
    for (const l of f.locals) words.push(l.count, l.type);
    words.push(f.relocations.length, ...f.relocations, f.body.length);
    flush();
    parts.push(f.body, new Uint8Array((4 - (f.body.length % 4)) % 4));
  }
  flush();
  return concatBytes(parts);
}

const VALUE_TYPES: readonly number[] = [ValType.i32, ValType.i64, ValType.f32, ValType.f64];
/** Bounds no translation of a 4 KiB page comes near; a stored entry beyond them is refused. */
const MAX_LOCAL_GROUPS = 64;
const MAX_BODY_BYTES = 1 << 24;

/**
 * Reads a stored translation, or undefined when the bytes are not one (truncated, garbage,
 * offsets that cannot be in a page, calls that are not 5-byte indices of the page's functions).
 * The bodies themselves are validated by the engine when compiled.
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
  const list = (count: number, max: number, check: (value: number) => boolean): number[] => {
    if (count > max) throw new RangeError("too long");
    const values: number[] = [];
    for (let i = 0; i < count; i++) {
      const value = word();
      if (!check(value)) throw new RangeError("out of range");
      values.push(value);
    }
    return values;
  };
  const inPage = (offset: number) => offset < PAGE_BYTES && offset % 2 === 0;
  try {
    if (word() !== ENTRY_MAGIC) return undefined;
    const instructions = word();
    const covered = list(word(), PAGE_BYTES / 2, inPage);
    const functionCount = word();
    if (functionCount > PAGE_BYTES) return undefined;
    const functions: CachedTranslation["functions"] = [];
    for (let i = 0; i < functionCount; i++) {
      const entries = list(word(), PAGE_BYTES / 2, inPage);
      const groups = word();
      if (groups > MAX_LOCAL_GROUPS) return undefined;
      const locals: CachedTranslation["functions"][number]["locals"] = [];
      for (let g = 0; g < groups; g++) {
        const count = word();
        const type = word();
        if (count > 1000 || !VALUE_TYPES.includes(type)) return undefined;
        locals.push({ count, type: type as ValType });
      }
      const relocations = list(word(), MAX_BODY_BYTES, () => true);
      const length = word();
      if (length > MAX_BODY_BYTES || at + length > bytes.length) return undefined;
      const body = bytes.slice(at, at + length);
      at += length + ((4 - (length % 4)) % 4);
      // Every relocation is a 5-byte index of one of the page's functions.
      for (const r of relocations) {
        const target = readPaddedU32(body, r);
        if (target < FIRST_PAGE_FUNCTION || target >= FIRST_PAGE_FUNCTION + functionCount) return undefined;
      }
      functions.push({ entries, locals, body, relocations });
    }
    if (at !== bytes.length) return undefined;
    return { instructions, covered, functions };
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

/**
 * Adds a stored page's functions to `builder` (whose imports are jit.ts's), renumbering their
 * calls to each other; the functions with entries are exported as `<prefix><i>`. Returns the
 * page's exports and their entries.
 */
export function addCachedPage(
  builder: ModuleBuilder,
  type: FuncType,
  t: CachedTranslation,
  prefix: string,
): { entries: number[]; exportName: string }[] {
  const shift = builder.functionCount; // FIRST_PAGE_FUNCTION + i becomes FIRST_PAGE_FUNCTION + shift + i
  const exports: { entries: number[]; exportName: string }[] = [];
  t.functions.forEach((f, i) => {
    const body = f.body.slice();
    for (const r of f.relocations) writePaddedU32(body, r, readPaddedU32(f.body, r) + shift);
    const exportName = f.entries.length ? `${prefix}${i}` : undefined;
    builder.addFunction(type, f.locals, body, exportName);
    if (exportName) exports.push({ entries: f.entries, exportName });
  });
  return exports;
}
