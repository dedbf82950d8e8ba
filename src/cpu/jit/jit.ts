// The translator's host side: collects the core's translation requests (a code page got hot),
// translates the pages (page-emitter.ts), compiles them in batches into wasm modules that share the
// core's memory and slow paths, and installs each page's function in the core's function table.
//
// Compilation is batched because V8 charges tens of microseconds per module whatever its size.
// Requests made during a run() are compiled when it returns: synchronously by default (V8
// compiles function bodies lazily on first call anyway, and tiers hot ones up to TurboFan in the
// background), or with WebAssembly.compile when `async` is set, in which case the guest keeps
// running interpreted until the module is ready. Installing checks that the page's code did not
// change since it was decoded (a generation number per pool page, bumped when a store touches a
// 64-byte chunk holding code: the covered instructions are marked before compiling), so a late
// install is harmless.
import * as L from "../layout.ts";
import * as O from "../opcodes.ts";
import * as D from "../decoded.ts";
import { portableClock } from "../../platform/clock.ts";
import { Code, ModuleBuilder, Op, ValType } from "./wasm-emitter.ts";
import type { DecodedPage } from "./instructions.ts";
import { findRoots } from "./control-flow.ts";
import { emitFetchTagCompare } from "./fetch-tlb.ts";
import { translatePage, type TranslatedFunction } from "./page-emitter.ts";
import { STRADDLE_OFFSET, parcelAfterPage } from "./straddle.ts";
import { FIRST_PAGE_FUNCTION, FN_AMO, FN_CHAIN, FN_CSR, FN_FP, FN_LOAD, FN_NOTE, FN_STORE } from "./frame.ts";
import {
  addCachedPage, decodeTranslation, encodeTranslation, translationKey, type CachedTranslation, type TranslationCache, type TranslationContext,
} from "./translation-cache.ts";

export interface JitOptions {
  /** Taken branches in a code page (counted by the interpreter) before it is translated. */
  threshold?: number;
  /** Translate every code page on its first execution, at once (stress-tests the translator). */
  eager?: boolean;
  /** Compile with WebAssembly.compile off the critical path; installs when the host's event loop runs. */
  async?: boolean;
  /** Pages compiled into one module at most. */
  batch?: number;
  /** Guest instructions per wasm function at most (regions of a page are grouped up to this). */
  functionSize?: number;
  /**
   * A persistent store of translations (translation-cache.ts). With one, every code page is
   * looked up at its first execution and a hit is installed at once; pages are then compiled one
   * module each (so that each can be stored on its own), and every fresh translation is stored.
   */
  cache?: TranslationCache;
}

/**
 * The default countdown. Boot runs a lot of code a few times: translating late costs little
 * (hot loops still get there within a millisecond of interpretation) and compiles much less.
 */
export const JIT_DEFAULT_THRESHOLD = 50_000;
export const JIT_DEFAULT_FUNCTION_SIZE = 64;
const DEFAULT_BATCH = 64;

/** The core exports the translator uses (src/cpu/wasm/jit.ts). */
export interface CoreJitExports {
  jitAmo: Function;
  jitFp: Function;
  jitStore: Function;
  jitLoad: Function;
  jitCsr: Function;
  jitDecodePage(ramPage: number): void;
  jitDecodeStraddling(ramPage: number, high: number): void;
  jitInstall(poolIndex: number, generation: number, count: number): number;
  jitEvict(poolIndex: number): void;
  jitRearm(poolIndex: number): void;
  jitPredecode(poolIndex: number, generation: number, count: number): void;
  jitMarkCode(poolIndex: number, generation: number, count: number): number;
}

/**
 * Where the translator's hart region and the guest RAM are in the memory (see
 * src/cpu/core-layout.ts). Translated code and the chaining function embed these addresses.
 */
export interface JitHart {
  hartBase: number;
  ramWasmBase: number;
}

export interface JitStats {
  requests: number;
  translations: number;
  instructions: number;
  modules: number;
  wasmBytes: number;
  stale: number;
  dropped: number;
  failures: number;
  translateMs: number;
  compileMs: number;
  /** Translation cache: pages installed from it, lookups that found nothing, translations stored, entries evicted, entries refused. */
  cacheHits: number;
  cacheMisses: number;
  cacheStores: number;
  cacheEvictions: number;
  cacheRejected: number;
}

interface PreloadedPage {
  page: Uint8Array;
  functions: Pending["functions"];
  translation: CachedTranslation;
}

interface Pending {
  pool: number;
  generation: number;
  /** The page's functions: entry offsets and export name. */
  functions: { entries: number[]; exportName: string }[];
  covered: number[];
  /** Decode the covered instructions' pool slots at install (jitPredecode), so a later retranslation keeps them. */
  predecode: boolean;
  /** The translation cache's key of the page, when the translation is to be stored, and its functions. */
  key?: Uint8Array;
  translated?: TranslatedFunction[];
  instructions: number;
}

/**
 * Looks at what the translators of this thread make (PARLEY_JIT_PROFILE, PARLEY_JIT_DUMP in
 * src/host/node/jit-environment.ts): each module's bytes, and with `note` the translated code
 * reports its exits and transitions (frame.ts, Note) at a cost, for profiling only.
 */
export interface JitObserver {
  module?(bytes: Uint8Array): void;
  note?(note: number, pc: bigint): void;
}
let observer: JitObserver | undefined;
/** Sets the observer of the Jits created from now on in this thread. */
export function observeTranslations(o: JitObserver | undefined): void {
  observer = o;
}
const ignoreNote = () => {};

const I64 = ValType.i64;
/** For the statistics' translate and compile times only. */
const clock = portableClock();

export class Jit {
  readonly threshold: number;
  readonly eager: boolean;
  readonly async: boolean;
  readonly batch: number;
  readonly functionSize: number;
  readonly stats: JitStats = {
    requests: 0, translations: 0, instructions: 0, modules: 0, wasmBytes: 0, stale: 0, dropped: 0, failures: 0, translateMs: 0, compileMs: 0,
    cacheHits: 0, cacheMisses: 0, cacheStores: 0, cacheEvictions: 0, cacheRejected: 0,
  };
  readonly cache: TranslationCache | undefined;
  private readonly queue = new Set<number>();
  /** The pc each queued pool page was asked for at: its virtual page, for a straddling instruction's next page. */
  private readonly requestPc = new Map<number, number>();
  private readonly freeSlots: number[] = [];
  private readonly poolSlots = new Map<number, number[]>(); // pool page -> table slots of its translation
  /** Modules being compiled in the background (async). */
  private compiling = 0;
  private readonly words: Uint32Array;
  private readonly imms: Int32Array;
  private readonly page: DecodedPage;
  private readonly chain: Function;
  private readonly hartBase: number;
  private readonly parallelHarts: boolean;
  private readonly ramWasmBase: number;
  /** The translations preloaded from the cache: one instance, and the page (by its bytes) each is for. */
  private preloaded: { instance: WebAssembly.Instance; find(ramPage: number): PreloadedPage | undefined } | undefined;
  /**
   * Whether `preloaded` holds everything the store offered: then a page it lacks is a miss
   * without asking the store (which would hash the page's key), at each of a boot's ~1,900
   * first fetches.
   */
  private preloadedAll = false;
  private readonly observer = observer;

  constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly table: WebAssembly.Table,
    private readonly core: CoreJitExports,
    hart: JitHart,
    options: JitOptions = {},
  ) {
    this.hartBase = hart.hartBase;
    this.parallelHarts = isShared(memory);
    this.eager = options.eager ?? false;
    // Eager mode translates at first fetch; retranslating then follows the usual hotness.
    this.threshold = Math.max(1, Math.floor(options.threshold ?? JIT_DEFAULT_THRESHOLD));
    this.async = !this.eager && (options.async ?? false);
    this.functionSize = Math.max(1, Math.floor(options.functionSize ?? JIT_DEFAULT_FUNCTION_SIZE));
    this.batch = Math.max(1, options.batch ?? DEFAULT_BATCH);
    this.cache = options.cache;
    this.ramWasmBase = hart.ramWasmBase;
    // The decoded page, interleaved (word, imm) per parcel: slot = offset * 4 bytes.
    this.words = new Uint32Array(memory.buffer, hart.hartBase + L.HART_JIT_DECODE, 4096);
    this.imms = new Int32Array(memory.buffer, hart.hartBase + L.HART_JIT_DECODE, 4096);
    const words = this.words, imms = this.imms;
    this.page = { word: (off) => words[off], imm: (off) => imms[off + 1] };
    this.chain = chainModule(memory, table, hart);
    if (this.cache) this.preload(this.cache);
  }

  /** Whether the core asks for every code page at its first execution (JIT_FLAG_EAGER). */
  get requestsFirstFetch(): boolean {
    return this.eager || this.cache !== undefined;
  }

  /** The core asks for pool page `poolIndex` (hot, or first seen in eager mode or with a cache). */
  request(poolIndex: number, pc: number): void {
    this.stats.requests++;
    // In eager mode the request comes from the first fetch in the page, at pc: translate from there.
    if (this.eager) {
      this.compile([poolIndex], false, pc % 4096, pc);
      return;
    }
    // With a cache, the first request of a page comes from its first fetch: a hit is installed
    // before the fetch returns; a miss leaves the page to count its hotness as without a cache.
    // Later requests (the page got hot again: paths the translation lacks) translate afresh.
    if (this.cache && this.isFirstRequest(poolIndex)) {
      if (!this.installFromCache(poolIndex)) this.countHotness(poolIndex);
      return;
    }
    this.queue.add(poolIndex);
    this.requestPc.set(poolIndex, pc);
  }

  private isFirstRequest(pool: number): boolean {
    return new DataView(this.memory.buffer).getUint32(this.hartBase + L.HART_JIT_TRIES + pool * 4, true) === 1;
  }

  /** A page the cache had nothing for counts its taken branches from the usual threshold, as without a cache. */
  private countHotness(pool: number): void {
    new DataView(this.memory.buffer).setInt32(this.hartBase + L.HART_JIT_HOT + pool * 4, this.threshold, true);
  }

  private context(): TranslationContext {
    return {
      hartBase: this.hartBase, ramWasmBase: this.ramWasmBase, parallelHarts: this.parallelHarts,
      memoryPages: this.memory.buffer.byteLength / 65536, functionSize: this.functionSize, eager: this.eager,
    };
  }

  /** The cache key of RAM page `ramPage`'s current bytes (or of `bytes`). */
  private keyOf(cache: TranslationCache, ramPage: number, bytes = new Uint8Array(this.memory.buffer, this.ramWasmBase + ramPage * 4096, 4096)): Uint8Array {
    return translationKey(cache.version, this.context(), bytes);
  }

  /** Installs pool page `pool`'s translation from the cache; false when there is none to use. */
  private installFromCache(pool: number): boolean {
    const cache = this.cache!;
    const view = new DataView(this.memory.buffer);
    const owner = view.getInt32(this.hartBase + L.HART_POOL_OWNER + pool * 4, true);
    if (owner < 0) return false;
    const generation = view.getUint32(this.hartBase + L.HART_JIT_GEN + pool * 4, true);
    const install = (instance: WebAssembly.Instance, functions: Pending["functions"], t: CachedTranslation, page: Uint8Array) => {
      // As a fresh translation: its instructions become code (a store to them drops the page)
      // before the page is compared again, so another hart's store to them either shows in the
      // comparison or drops the page (and so refuses the install).
      this.core.jitDecodePage(owner);
      new Uint32Array(this.memory.buffer, this.hartBase + L.HART_JIT_INSTALL, t.covered.length).set(t.covered);
      const current = new Uint8Array(this.memory.buffer, this.ramWasmBase + owner * 4096, 4096);
      if (!this.core.jitMarkCode(pool, generation, t.covered.length) || !sameBytes(page, current)) {
        this.stats.stale++;
        return false;
      }
      this.stats.cacheHits++;
      this.install(instance, [{ pool, generation, functions, covered: t.covered, predecode: true, instructions: t.instructions }]);
      return true;
    };
    const preloaded = this.preloaded?.find(owner);
    if (preloaded) return install(this.preloaded!.instance, preloaded.functions, preloaded.translation, preloaded.page);
    if (this.preloadedAll) {
      this.stats.cacheMisses++;
      return false;
    }
    const t0 = clock.now();
    const key = this.keyOf(cache, owner);
    const stored = cache.get(key);
    if (!stored) {
      this.stats.cacheMisses++;
      return false;
    }
    const cached = decodeTranslation(stored);
    const builder = newModuleBuilder(this.memory);
    const functions = cached ? addCachedPage(builder, PAGE_TYPE, cached, "f") : [];
    const bytes = builder.toBytes();
    let instance: WebAssembly.Instance | undefined;
    try {
      if (cached) instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), this.imports());
    } catch {
      instance = undefined; // the engine refused it
    }
    if (!cached || !instance) {
      // Refused, and replaced when the page gets hot and is translated afresh.
      this.stats.cacheRejected++;
      return false;
    }
    this.stats.compileMs += clock.now() - t0;
    this.stats.modules++;
    this.stats.wasmBytes += bytes.length;
    return install(instance, functions, cached, key.subarray(key.length - 4096));
  }

  /**
   * Compiles every stored translation made for this hart and translator (up to the store's
   * preload bound) into one module, so that the pages found at their first execution cost no
   * compilation each: V8 charges per module, and compiles function bodies lazily anyway.
   */
  private preload(cache: TranslationCache): void {
    if (!cache.entries) return;
    const t0 = clock.now();
    const header = this.keyOf(cache, -1, new Uint8Array(4096)).subarray(0, -4096);
    const builder = newModuleBuilder(this.memory);
    const pages = new Map<number, PreloadedPage[]>();
    let count = 0;
    for (const { key, value } of cache.entries()) {
      if (key.length !== header.length + 4096 || !sameBytes(key.subarray(0, header.length), header)) continue;
      const translation = decodeTranslation(value);
      if (!translation) {
        this.stats.cacheRejected++;
        continue;
      }
      const page = key.slice(header.length);
      const functions = addCachedPage(builder, PAGE_TYPE, translation, `p${count++}_`);
      const hash = pageHash(page);
      pages.set(hash, [...(pages.get(hash) ?? []), { page, functions, translation }]);
    }
    if (!count) {
      this.preloadedAll = true;
      return;
    }
    const bytes = builder.toBytes();
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), this.imports());
    } catch {
      this.stats.cacheRejected += count; // one bad body spoils the module: the pages are looked up one by one instead
      return;
    }
    this.stats.compileMs += clock.now() - t0;
    this.stats.modules++;
    this.stats.wasmBytes += bytes.length;
    const memory = this.memory;
    const ramWasmBase = this.ramWasmBase;
    this.preloadedAll = true;
    this.preloaded = {
      instance,
      find(ramPage: number) {
        const current = new Uint8Array(memory.buffer, ramWasmBase + ramPage * 4096, 4096);
        return pages.get(pageHash(current))?.find((p) => sameBytes(p.page, current));
      },
    };
  }

  /** The core dropped the translation of pool page `poolIndex` (its page was written or reused). */
  dropped(poolIndex: number): void {
    const slots = this.poolSlots.get(poolIndex);
    if (!slots) return;
    this.poolSlots.delete(poolIndex);
    this.freeAll(slots);
    this.stats.dropped++;
  }

  private freeAll(slots: number[]): void {
    for (const slot of slots) {
      this.table.set(slot, null);
      this.freeSlots.push(slot);
    }
  }

  /** Called after every run(): compiles what was requested meanwhile. */
  afterRun(): void {
    if (this.queue.size === 0 || this.compiling > 0) return;
    const pools = [...this.queue].slice(0, this.batch);
    for (const p of pools) this.queue.delete(p);
    this.compile(pools, this.async);
  }

  private allocSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    const index = this.table.length;
    this.table.grow(Math.max(64, index >> 1));
    for (let i = this.table.length - 1; i > index; i--) this.freeSlots.push(i);
    return index;
  }

  private compile(pools: number[], async: boolean, eagerRoot?: number, eagerPc?: number): void {
    const t0 = clock.now();
    // With a cache every page gets a module of its own, stored as such: batches of a boot are
    // mostly single pages anyway (requests come one run() at a time).
    const cache = this.cache;
    const modules: { builder: ModuleBuilder; pending: Pending[] }[] = [];
    const view = new DataView(this.memory.buffer);
    for (const pool of pools) {
      const owner = view.getInt32(this.hartBase + L.HART_POOL_OWNER + pool * 4, true);
      if (owner < 0) continue;
      const generation = view.getUint32(this.hartBase + L.HART_JIT_GEN + pool * 4, true);
      this.core.jitDecodePage(owner);
      // A profiling translation reports its exits (a call per event): never stored for later runs.
      const key = cache && !this.observer?.note ? this.keyOf(cache, owner) : undefined;
      const straddleHigh = this.decodeStraddling(owner, view, eagerPc ?? this.requestPc.get(pool));
      this.requestPc.delete(pool);
      const poolBase = this.hartBase + L.HART_POOL + pool * L.POOL_PAGE_SIZE;
      // A pool slot is non-zero once the interpreter decoded (executed) it or it is a block entry.
      const executed = (off: number) => view.getUint32(poolBase + off * 4, true) !== 0;
      const wantBase = this.hartBase + L.HART_JIT_WANT + pool * L.JIT_WANT_BYTES;
      const wanted = (off: number) => ((view.getUint8(wantBase + (off >> 4)) >> ((off >> 1) & 7)) & 1) !== 0;
      const roots = findRoots(this.page, executed, wanted);
      // Eager mode translates everything reachable, run or not, to exercise the translator.
      if (eagerRoot !== undefined) roots.push(eagerRoot);
      if (!modules.length || cache) modules.push({ builder: newModuleBuilder(this.memory), pending: [] });
      const { builder, pending } = modules[modules.length - 1];
      let t: ReturnType<typeof translatePage>;
      try {
        const first = FIRST_PAGE_FUNCTION + builder.functionCount;
        t = roots.length ? translatePage(this.page, roots, first, this.functionSize, this.hartBase + L.HART_STATE, this.parallelHarts, eagerRoot === undefined ? executed : undefined, this.observer?.note !== undefined, straddleHigh) : undefined;
      } catch (err) {
        // A translator bug must not take the guest down: this page stays interpreted.
        this.stats.failures++;
        if (this.stats.failures <= 3) console.warn(`parley jit: page not translated: ${err instanceof Error ? err.message : err}`);
        t = undefined;
      }
      if (!t) {
        this.core.jitRearm(pool);
        continue;
      }
      // The covered instructions are code from now on: a store to them drops the page (and so
      // refuses this translation at install), a store elsewhere in the page does not. Another
      // hart may have rewritten one of them since the page was read: then the translation is stale.
      new Uint32Array(this.memory.buffer, this.hartBase + L.HART_JIT_INSTALL, t.covered.length).set(t.covered);
      if (!this.core.jitMarkCode(pool, generation, t.covered.length)) {
        this.stats.stale++;
        this.core.jitRearm(pool);
        continue;
      }
      const functions: Pending["functions"] = [];
      for (const f of t.functions) {
        const exportName = f.entries.length ? `f${f.index}` : undefined; // the dispatcher is internal
        const name = this.observer ? `ram${owner.toString(16)}_${f.entries.length ? f.entries[0].toString(16) : "dispatch"}` : undefined;
        if (builder.addFunction(PAGE_TYPE, f.locals, f.body, exportName, name) !== f.index) throw new Error("jit: function numbering");
        if (exportName) functions.push({ entries: f.entries, exportName });
      }
      pending.push({ pool, generation, functions, covered: t.covered, predecode: this.eager, key, translated: key && t.functions, instructions: t.instructions });
      this.stats.translations++;
      this.stats.instructions += t.instructions;
    }
    const t1 = clock.now();
    this.stats.translateMs += t1 - t0;
    for (const { builder, pending } of modules) {
      if (pending.length) this.compileModule(builder.toBytes(), pending, async);
    }
  }

  private imports(): WebAssembly.Imports {
    return { env: { memory: this.memory, amo: this.core.jitAmo, fp: this.core.jitFp, chain: this.chain, store: this.core.jitStore, note: this.observer?.note ?? ignoreNote, csr: this.core.jitCsr, load: this.core.jitLoad } };
  }

  private compileModule(bytes: Uint8Array<ArrayBuffer>, pending: Pending[], async: boolean): void {
    const t1 = clock.now();
    this.observer?.module?.(bytes);
    this.stats.modules++;
    this.stats.wasmBytes += bytes.length;
    if (!async) {
      let instance: WebAssembly.Instance;
      try {
        instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), this.imports());
      } catch (err) {
        this.compileFailed(pending, err);
        return;
      }
      this.stats.compileMs += clock.now() - t1;
      this.store(pending);
      this.install(instance, pending);
      return;
    }
    this.compiling++;
    WebAssembly.instantiate(bytes, this.imports()).then(
      ({ instance }) => {
        this.compiling--;
        this.stats.compileMs += clock.now() - t1;
        this.store(pending);
        this.install(instance, pending);
      },
      (err) => {
        this.compiling--;
        this.compileFailed(pending, err);
      },
    );
  }

  /** Stores the translation of a one-page module the engine accepted under its page's key. */
  private store(pending: Pending[]): void {
    const cache = this.cache;
    if (!cache || pending.length !== 1 || !pending[0].key || !pending[0].translated) return;
    const p = pending[0];
    const functions = p.translated!.map((f) => ({ entries: f.entries, locals: f.locals, body: f.body, relocations: f.relocations }));
    const entry = encodeTranslation({ instructions: p.instructions, covered: p.covered, functions });
    this.stats.cacheEvictions += cache.put(p.key!, entry);
    this.stats.cacheStores++;
  }

  /**
   * An instruction straddling the end of RAM page `owner`, asked for at `pc` (its virtual page):
   * decoded with the next page's first parcel as the fetch TLB maps it now (straddle.ts), which
   * is returned; undefined (the instruction stays the interpreter's) without one.
   */
  private decodeStraddling(owner: number, view: DataView, pc: number | undefined): number | undefined {
    if ((this.page.word(STRADDLE_OFFSET) & D.DECODED_OP_MASK) !== O.OP_CROSSPAGE || pc === undefined) return undefined;
    const high = parcelAfterPage(view, this.hartBase + L.HART_STATE, BigInt(pc) & -4096n);
    if (high !== undefined) this.core.jitDecodeStraddling(owner, high);
    return high;
  }

  /**
   * The engine refused a module (a translator bug: wasm validation failed). The guest must not
   * notice: its pages stay interpreted, and are asked for again only after more hotness.
   */
  private compileFailed(pending: Pending[], err: unknown): void {
    this.stats.failures += pending.length;
    if (this.stats.failures <= 3) console.warn(`parley jit: module not compiled: ${err instanceof Error ? err.message : err}`);
    for (const p of pending) this.core.jitRearm(p.pool);
  }

  private install(instance: WebAssembly.Instance, pending: Pending[]): void {
    const installList = new Uint32Array(this.memory.buffer, this.hartBase + L.HART_JIT_INSTALL, 2 * 2048);
    for (const p of pending) {
      const slots: number[] = [];
      let count = 0;
      for (const f of p.functions) {
        const slot = this.allocSlot();
        this.table.set(slot, instance.exports[f.exportName] as Function);
        slots.push(slot);
        for (const offset of f.entries) {
          installList[2 * count] = offset;
          installList[2 * count + 1] = slot;
          count++;
        }
      }
      if (!this.core.jitInstall(p.pool, p.generation, count)) {
        this.stats.stale++;
        this.freeAll(slots);
        continue;
      }
      const old = this.poolSlots.get(p.pool);
      if (old) this.freeAll(old);
      this.poolSlots.set(p.pool, slots);
      if (p.predecode) {
        installList.set(p.covered);
        this.core.jitPredecode(p.pool, p.generation, p.covered.length);
      }
    }
  }
}

/** (pc, budget left, budget at the first entry) -> instructions retired. Also the chaining function's type. */
const PAGE_TYPE = { params: [I64, ValType.i32, ValType.i32], results: [ValType.i32] };


function newModuleBuilder(memory: WebAssembly.Memory): ModuleBuilder {
  const builder = new ModuleBuilder();
  declareImports(builder, memory);
  return builder;
}

function declareImports(b: ModuleBuilder, memory: WebAssembly.Memory): void {
  importMemory(b, memory);
  const amo = b.importFunction("env", "amo", { params: [ValType.i32, I64, I64], results: [I64] });
  const fp = b.importFunction("env", "fp", { params: [ValType.i32], results: [ValType.i32] });
  const chain = b.importFunction("env", "chain", PAGE_TYPE);
  const store = b.importFunction("env", "store", { params: [I64, I64, ValType.i32], results: [] });
  const note = b.importFunction("env", "note", { params: [ValType.i32, I64], results: [] });
  const csr = b.importFunction("env", "csr", { params: [ValType.i32, ValType.i32, I64], results: [I64] });
  const load = b.importFunction("env", "load", { params: [I64, ValType.i32], results: [I64] });
  if (amo !== FN_AMO || fp !== FN_FP || chain !== FN_CHAIN || store !== FN_STORE || note !== FN_NOTE || csr !== FN_CSR || load !== FN_LOAD) {
    throw new Error("jit: import order");
  }
}

/** A memory import matches only a memory of the same sharedness (threads share the harts' memory). */
function importMemory(b: ModuleBuilder, memory: WebAssembly.Memory): void {
  b.importMemory("env", "memory", memory.buffer.byteLength / 65536, isShared(memory));
}

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
}

/**
 * The chaining function lives in a module of its own, instantiated once: it is the only one
 * besides the core that imports the table, because V8 updates every importing instance's
 * dispatch table on each table.set (with one per translated module that was quadratic).
 */
function chainModule(memory: WebAssembly.Memory, table: WebAssembly.Table, hart: JitHart): Function {
  const b = new ModuleBuilder();
  importMemory(b, memory);
  b.importTable("env", "table", 1);
  addChain(b, hart);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(b.toBytes()), { env: { memory, table } });
  return instance.exports.chain as Function;
}

// The chaining function's parameters and locals (PAGE_TYPE: pc, instructions left, budget at entry).
const P_PC = 0, P_LEFT = 1, P_BUDGET0 = 2, L_E = 3, L_POOL = 4, L_SLOT = 5, L_W = 6;

/**
 * The chaining function (pc, left, budget0) -> retired: what the interpreter would do at pc,
 * minus the interpreting. Looks pc up in the fetch TLB, the page map and the pool page, and if
 * the slot is a block entry of translated code, tail-calls it through the table; otherwise
 * stores pc and returns to the interpreter. Saves a round trip through the interpreter loop on
 * every jump between pages (calls and returns, mostly).
 */
function addChain(b: ModuleBuilder, hart: JitHart): void {
  const c = new Code();
  const h = hart.hartBase;
  emitFetchTlbHit(c, h);
  c.if();
  emitPoolPageOfPc(c, h, hart.ramWasmBase);
  c.if();
  emitDecodedSlotIsTranslated(c, h);
  c.if();
  emitTailCallTranslation(c, b, h);
  c.end();
  emitWantEntry(c, h);
  c.end();
  c.end();
  emitReturnToInterpreter(c, h);
  b.addFunction(PAGE_TYPE, [{ count: 4, type: ValType.i32 }], c.finish(), "chain");
}

/** Leaves true when the fetch TLB entry of pc (kept in L_E) may execute pc's page. */
function emitFetchTlbHit(c: Code, hartBase: number): void {
  emitFetchTagCompare(c, hartBase + L.HART_STATE + L.S_FETCH_TLB, () => c.get(P_PC), () => c.get(P_PC), L_E, Op.i64_eq);
}

/** Leaves (and keeps in L_POOL) the decoded-code pool page + 1 holding pc's RAM page, 0 if none. */
function emitPoolPageOfPc(c: Code, hartBase: number, ramWasmBase: number): void {
  // pool page + 1 = pagemap[(page's wasm address - ramWasmBase) >>> 12]
  c.get(P_PC);
  c.op(Op.i32_wrap_i64);
  c.i32Const(-4096);
  c.op(Op.i32_and);
  c.get(L_E);
  c.mem(Op.i32_load, L.TLB_ADDEND);
  c.op(Op.i32_add);
  c.i32Const(ramWasmBase);
  c.op(Op.i32_sub);
  c.i32Const(L.PAGE_SHIFT);
  c.op(Op.i32_shr_u);
  c.i32Const(2);
  c.op(Op.i32_shl);
  c.mem(Op.i32_load, hartBase + L.HART_PAGEMAP);
  c.tee(L_POOL);
}

/** Leaves true when pc's decoded slot (kept in L_SLOT, its word in L_W) is a translation's entry. */
function emitDecodedSlotIsTranslated(c: Code, hartBase: number): void {
  // slot = pool + (pool page + 1 - 1) * POOL_PAGE_SIZE + (pc & 0xffe) << DECODED_SLOT_SHIFT
  c.get(L_POOL);
  c.i32Const(Math.log2(L.POOL_PAGE_SIZE));
  c.op(Op.i32_shl);
  c.get(P_PC);
  c.op(Op.i32_wrap_i64);
  c.i32Const(0xffe);
  c.op(Op.i32_and);
  c.i32Const(D.DECODED_SLOT_SHIFT);
  c.op(Op.i32_shl);
  c.op(Op.i32_add);
  c.tee(L_SLOT);
  c.mem(Op.i32_load, hartBase + L.HART_POOL - L.POOL_PAGE_SIZE);
  c.tee(L_W);
  c.i32Const(D.DECODED_OP_MASK);
  c.op(Op.i32_and);
  c.i32Const(O.OP_TRANSLATED);
  c.op(Op.i32_eq);
}

/** Tail-calls the translated function whose table index is in pc's decoded slot. */
function emitTailCallTranslation(c: Code, b: ModuleBuilder, hartBase: number): void {
  c.get(P_PC);
  c.get(P_LEFT);
  c.get(P_BUDGET0);
  c.get(L_SLOT);
  c.mem(Op.i32_load, hartBase + L.HART_POOL - L.POOL_PAGE_SIZE + D.DECODED_IMM_OFFSET);
  c.returnCallIndirect(b.typeIndex(PAGE_TYPE), 0);
}

/** The page is decoded but pc is no entry: ask for one (want bit, and a hotter page). */
function emitWantEntry(c: Code, hartBase: number): void {
  c.get(L_POOL);
  c.i32Const(L.JIT_WANT_BYTES);
  c.op(Op.i32_mul);
  c.get(P_PC);
  c.op(Op.i32_wrap_i64);
  c.i32Const(0xfff);
  c.op(Op.i32_and);
  c.i32Const(4);
  c.op(Op.i32_shr_u);
  c.op(Op.i32_add);
  c.tee(L_W);
  c.get(L_W);
  c.mem(Op.i32_load8_u, hartBase + L.HART_JIT_WANT - L.JIT_WANT_BYTES);
  c.i32Const(1);
  c.get(P_PC);
  c.op(Op.i32_wrap_i64);
  c.i32Const(1);
  c.op(Op.i32_shr_u);
  c.i32Const(7);
  c.op(Op.i32_and);
  c.op(Op.i32_shl);
  c.op(Op.i32_or);
  c.mem(Op.i32_store8, hartBase + L.HART_JIT_WANT - L.JIT_WANT_BYTES);
  c.get(L_POOL);
  c.i32Const(2);
  c.op(Op.i32_shl);
  c.tee(L_W);
  c.get(L_W);
  c.mem(Op.i32_load, hartBase + L.HART_JIT_HOT - 4);
  c.i32Const(L.JIT_MISS_PENALTY);
  c.op(Op.i32_sub);
  c.mem(Op.i32_store, hartBase + L.HART_JIT_HOT - 4);
}

/** Stores pc for the interpreter and returns the instructions retired so far. */
function emitReturnToInterpreter(c: Code, hartBase: number): void {
  c.i32Const(0);
  c.get(P_PC);
  c.mem(Op.i64_store, hartBase + L.HART_STATE + L.S_PC);
  c.get(P_BUDGET0);
  c.get(P_LEFT);
  c.op(Op.i32_sub);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A quick hash of a page's bytes, to find its preloaded translation (the bytes are then compared). */
function pageHash(page: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < page.length; i += 4) {
    h = Math.imul(h ^ (page[i] | (page[i + 1] << 8) | (page[i + 2] << 16) | (page[i + 3] << 24)), 0x01000193);
    h ^= h >>> 15;
  }
  return h >>> 0;
}
