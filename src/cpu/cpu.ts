// The host-side face of the execution engine: creates the wasm core, gives access to registers,
// CSRs and RAM, and routes the core's exits (MMIO, hypercalls, time) to TypeScript handlers.
// Imports neither Node nor the DOM: the caller supplies the compiled wasm module.
import * as L from "./layout.ts";
import { MENVCFG_STCE_BIT } from "./csr-numbers.ts";
import { portableClock, type HostClock } from "../platform/clock.ts";
import { Jit, type CoreJitExports, type JitOptions } from "./jit/jit.ts";
import type { TranslationCache } from "./jit/translation-cache.ts";
import { coreLayout, maxRamSize, type CoreLayout } from "./core-layout.ts";
import { hex64, SnapshotError, stateArray, stateInt, stateObject, stateRecord, stateU64 } from "../platform/persist.ts";

export type { JitOptions } from "./jit/jit.ts";
export type { TranslationCache } from "./jit/translation-cache.ts";

export const RAM_PHYS_BASE_DEFAULT = 0x8000_0000;
/** wasm32 gives 4 GiB; a single hart's region takes the start of it (see core-layout.ts). */
export const RAM_MAX_SIZE = maxRamSize(1);

export type AccessSize = 1 | 2 | 4 | 8;

/** What the core sees outside RAM. Values up to 4 bytes travel as numbers, 8-byte ones as bigint. */
export interface PhysicalBus {
  /** A load from a non-RAM physical address; undefined raises an access fault in the guest. */
  load(paddr: number, size: AccessSize): number | bigint | undefined;
  /** A store to a non-RAM (or watched) physical address; false raises an access fault. */
  store(paddr: number, size: AccessSize, value: number | bigint): boolean;
}

export interface CpuOptions {
  /** The compiled engine (build/cpu.wasm). */
  module: WebAssembly.Module;
  ramSize: number;
  ramBase?: number;
  hartId?: number;
  bus?: PhysicalBus;
  /** Serves ECALL from S-mode (paravirtual SBI). Without it, ECALL traps into the guest's M-mode. */
  hypercall?: (cpu: Cpu) => void;
  /** Current mtime in ticks of the timebase (TIMEBASE_FREQUENCY); default: timebaseTicks of a portable clock from construction. */
  readTime?: () => number;
  /** Supervisor timer compare CSR (Sstc). */
  sstc?: boolean;
  /**
   * The RISC-V -> wasm translator (src/cpu/jit): false/"off", true/"on", "eager" (translate every
   * code page at once; for tests) or options. Default: on. Off leaves the interpreter alone,
   * the reference the translator is tested against.
   */
  jit?: boolean | "on" | "off" | "eager" | JitOptions;
  /**
   * The machine's layout in memory: its harts' regions and its RAM (src/cpu/core-layout.ts).
   * Default: one hart and `ramSize` bytes of RAM.
   */
  layout?: CoreLayout;
  /** This Cpu's hart in `layout` (default 0): its state, TLB, decoded code and translations live there. */
  hartIndex?: number;
  /**
   * The memory to run in, shared with the machine's other Cpus (at least layout.memoryBytes;
   * it may be a shared memory, with the module built for one: build/cpu-shared.wasm).
   * Default: a memory of this Cpu's own, sized by `layout`.
   */
  memory?: WebAssembly.Memory;
  /**
   * The hart's state in `memory` was already set up by another Cpu of the same hart (the machine's
   * I/O thread prepares every hart, then a thread per hart runs it): this Cpu neither resets nor
   * configures the hart, it only attaches an engine instance (and a translator) to run it.
   */
  adopt?: boolean;
}

/**
 * The translator settings for a Cpu, or undefined when it is off. The core reads no environment:
 * Node front ends parse PARLEY_JIT and its tuning knobs (src/host/node/jit-environment.ts) and
 * pass the result here.
 */
export function resolveJitOptions(jit: CpuOptions["jit"]): JitOptions | undefined {
  const setting = jit ?? true;
  if (setting === false || setting === "off") return undefined;
  return setting === true || setting === "on" ? {} : setting === "eager" ? { eager: true } : { ...setting };
}

/** `jit` with the translation cache `cache` added (nothing changes when the translator is off or there is no cache). */
export function withTranslationCache(jit: CpuOptions["jit"], cache: TranslationCache | undefined): CpuOptions["jit"] {
  const options = cache ? resolveJitOptions(jit) : undefined;
  return options ? { ...options, cache } : jit;
}

/** The translator's counters (see Cpu.translatorCounters). */
export interface TranslatorCounters {
  /** Guest instructions retired by translated code (the rest ran on the interpreter). */
  instructionsTranslatedRetired: number;
  /** Calls from the interpreter into translated code, and block entries it ran itself instead. */
  entries: number;
  bounces: number;
  /** Code pages the core asked to translate, translations installed, and dropped (code written, page reused). */
  requests: number;
  installs: number;
  drops: number;
  /**
   * Decoded code pages dropped (their code was written, by any hart or DMA), and writes into
   * pages holding code that touched only their data and so dropped nothing (src/cpu/wasm/mmu.ts,
   * "Code chunks").
   */
  codePagesDropped: number;
  codePageDataWrites: number;
  /**
   * CSR instructions translated code executed itself, and those after which it still left for
   * the interpreter (the write made an interrupt deliverable, or changed satp or mstatus beyond
   * the interrupt enables).
   */
  csrAccesses: number;
  csrExits: number;
  /** Pages translated, guest instructions in them, wasm modules compiled and their size. */
  pagesTranslated: number;
  instructionsTranslated: number;
  modules: number;
  wasmBytes: number;
  /** Pages the translator could not translate (they stay interpreted). */
  failures: number;
  /** Host time spent translating and compiling. */
  translateMs: number;
  compileMs: number;
  /**
   * The persistent translation cache (JitOptions.cache): pages installed from it, first
   * executions it had nothing for, translations stored, entries evicted to stay within its
   * size, and entries refused (not a translation the engine accepts).
   */
  cacheHits: number;
  cacheMisses: number;
  cacheStores: number;
  cacheEvictions: number;
  cacheRejected: number;
}

type CacheCounter = "cacheHits" | "cacheMisses" | "cacheStores" | "cacheEvictions" | "cacheRejected";

/** What the translator of a hart did, from its counters in the hart's state and its host-side statistics. */
export function translatorCountersOf(
  state: (offset: number) => bigint,
  host: Pick<TranslatorCounters, "translateMs" | "compileMs" | "modules" | "wasmBytes" | "failures" | CacheCounter> & { translations: number; instructions: number },
): TranslatorCounters {
  const n = (offset: number) => Number(state(offset));
  return {
    instructionsTranslatedRetired: n(L.S_JIT_RETIRED),
    entries: n(L.S_JIT_ENTRIES),
    bounces: n(L.S_JIT_BOUNCES),
    requests: n(L.S_JIT_REQUESTS),
    installs: n(L.S_JIT_INSTALLS),
    drops: n(L.S_JIT_DROPS),
    codePagesDropped: n(L.S_CODE_INVALIDATIONS),
    codePageDataWrites: n(L.S_CODE_PAGE_DATA_WRITES),
    csrAccesses: n(L.S_JIT_CSR_ACCESSES),
    csrExits: n(L.S_JIT_CSR_EXITS),
    pagesTranslated: host.translations,
    instructionsTranslated: host.instructions,
    modules: host.modules,
    wasmBytes: host.wasmBytes,
    failures: host.failures,
    translateMs: host.translateMs,
    compileMs: host.compileMs,
    cacheHits: host.cacheHits,
    cacheMisses: host.cacheMisses,
    cacheStores: host.cacheStores,
    cacheEvictions: host.cacheEvictions,
    cacheRejected: host.cacheRejected,
  };
}

export { PRIV_U, PRIV_S, PRIV_M } from "./csr-numbers.ts";
/** menvcfg.STCE as a 64-bit mask, for the host side (the engine builds its own from the same bit). */
export const MENVCFG_STCE = 1n << BigInt(MENVCFG_STCE_BIT);

export const enum ExitReason {
  Budget = L.EXIT_BUDGET,
  Wfi = L.EXIT_WFI,
  Stop = L.EXIT_STOP,
  /** WRS.NTO/STO (Zawrs): the hart waits until its reservation set is written. */
  Wrs = L.EXIT_WRS,
  /** A loop of PAUSEs longer than S_PLE_WINDOW: the hart spins, waiting for another. */
  Pause = L.EXIT_PAUSE,
}

interface CoreExports extends CoreJitExports {
  init(): void;
  run(budget: number): number;
  flushTlb(): void;
  invalidateCode(ramOffset: number, length: number): void;
  queueHostWrite(ramOffset: number, length: number): void;
  markDirtyRange(ramOffset: number, length: number): void;
  dropWriteTags(): void;
  remoteFence(): void;
  readCsr(csr: number): bigint;
  writeCsr(csr: number, value: bigint): void;
}

/** The timebase every hart reads through the time CSR and the CLINT's mtime: 10 MHz. */
export const TIMEBASE_FREQUENCY = 10_000_000;

/**
 * A reader of timebase ticks since this call, derived from `clock`: a machine makes one from its
 * HostClock and gives it to all of its harts, so they agree (one origin, the machine's start).
 */
export function timebaseTicks(clock: HostClock): () => number {
  const originMs = clock.now();
  const ticksPerMs = TIMEBASE_FREQUENCY / 1000;
  return () => Math.floor((clock.now() - originMs) * ticksPerMs);
}

/** A hart's architectural state in a snapshot (Cpu.saveState). 64-bit values are "0x…" hex. */
export interface CpuState {
  version: 1;
  x: string[];
  f: string[];
  pc: string;
  priv: number;
  csrs: Record<string, string>;
  pmpcfg: string[];
  pmpaddr: string[];
}

/** The CSRs (and CSR-like counters) a snapshot carries, by name, with their state-block slots. */
const CPU_STATE_CSRS: Record<string, number> = {
  mstatus: L.S_MSTATUS,
  misa: L.S_MISA,
  medeleg: L.S_MEDELEG,
  mideleg: L.S_MIDELEG,
  mie: L.S_MIE,
  mip: L.S_MIP,
  mtvec: L.S_MTVEC,
  mscratch: L.S_MSCRATCH,
  mepc: L.S_MEPC,
  mcause: L.S_MCAUSE,
  mtval: L.S_MTVAL,
  stvec: L.S_STVEC,
  sscratch: L.S_SSCRATCH,
  sepc: L.S_SEPC,
  scause: L.S_SCAUSE,
  stval: L.S_STVAL,
  satp: L.S_SATP,
  mcounteren: L.S_MCOUNTEREN,
  scounteren: L.S_SCOUNTEREN,
  menvcfg: L.S_MENVCFG,
  senvcfg: L.S_SENVCFG,
  stimecmp: L.S_STIMECMP,
  fcsr: L.S_FCSR,
  minstret: L.S_MINSTRET,
  mcycleOffset: L.S_MCYCLE_OFFSET,
  mcountinhibit: L.S_MCOUNTINHIBIT,
  mhartid: L.S_MHARTID,
  tselect: L.S_TSELECT,
};

export class Cpu {
  readonly memory: WebAssembly.Memory;
  readonly layout: CoreLayout;
  readonly hartIndex: number;
  /** Wasm address of this hart's region, and of guest RAM. */
  readonly hartBase: number;
  readonly ramWasmBase: number;
  readonly ramBase: number;
  readonly ramSize: number;
  /** The guest RAM as bytes, index 0 = guest physical ramBase. */
  readonly ram: Uint8Array;
  private readonly view: DataView;
  private readonly core: CoreExports;
  readonly table: WebAssembly.Table;
  /** The translator, when enabled (see src/cpu/jit). */
  readonly jit: Jit | undefined;
  bus: PhysicalBus | undefined;
  hypercall: ((cpu: Cpu) => void) | undefined;
  readTime: () => number;

  constructor(options: CpuOptions) {
    const ramBase = options.ramBase ?? RAM_PHYS_BASE_DEFAULT;
    const ramSize = options.ramSize;
    const layout = options.layout ?? coreLayout({ harts: 1, ramSize });
    if (layout.ramSize !== ramSize) throw new RangeError(`RAM size ${ramSize} differs from the layout's ${layout.ramSize}`);
    const hartIndex = options.hartIndex ?? 0;
    if (!Number.isInteger(hartIndex) || hartIndex < 0 || hartIndex >= layout.harts) {
      throw new RangeError(`hart index ${hartIndex} is outside the layout's ${layout.harts} hart(s)`);
    }
    this.layout = layout;
    this.hartIndex = hartIndex;
    this.hartBase = layout.hartBases[hartIndex];
    this.ramWasmBase = layout.ramWasmBase;
    this.ramBase = ramBase;
    this.ramSize = ramSize;
    if (options.memory) {
      if (options.memory.buffer.byteLength < layout.memoryBytes) {
        throw new RangeError(`the memory has ${options.memory.buffer.byteLength} bytes, the layout needs ${layout.memoryBytes}`);
      }
      this.memory = options.memory;
    } else {
      this.memory = new WebAssembly.Memory({ initial: layout.memoryPages, maximum: layout.memoryPages });
    }
    this.view = new DataView(this.memory.buffer);
    this.ram = new Uint8Array(this.memory.buffer, this.ramWasmBase, ramSize);
    this.bus = options.bus;
    this.hypercall = options.hypercall;
    this.readTime = options.readTime ?? timebaseTicks(portableClock());

    // The engine calls translated code through this table (slot 0 stays empty).
    this.table = new WebAssembly.Table({ element: "anyfunc", initial: 1 });
    const instance = new WebAssembly.Instance(options.module, {
      env: {
        memory: this.memory,
        table: this.table,
        hartBase: this.hartBase,
        ramWasmBase: this.ramWasmBase,
        hartIndex,
        hartCount: layout.harts,
        hartStride: layout.hartRegionSize,
        codeHoldersBase: layout.codeHoldersBase,
        dirtyLogBase: layout.dirtyLogBase,
        abort: (_msg: number, _file: number, line: number, col: number) => {
          throw new Error(`cpu core abort at ${line}:${col}`);
        },
        mmioRead: (paddr: number, size: number) => this.onMmioRead(paddr, size as AccessSize),
        mmioWrite: (paddr: number, size: number) => this.onMmioWrite(paddr, size as AccessSize),
        sbiCall: () => this.onHypercall(),
        readTime: () => this.readTime(),
        jitRequest: (poolIndex: number, pc: number) => this.jit?.request(poolIndex, pc),
        jitDropped: (tableIndex: number) => this.jit?.dropped(tableIndex),
      },
    });
    this.core = instance.exports as unknown as CoreExports;
    if (!options.adopt) {
      this.setState(L.S_RAM_PHYS_BASE, BigInt(ramBase));
      this.setState(L.S_RAM_SIZE, BigInt(ramSize));
      let flags = 0;
      if (options.sstc) flags |= L.CONFIG_SSTC;
      if (options.hypercall) flags |= L.CONFIG_SBI_IN_HOST;
      this.setState(L.S_FLAGS, BigInt(flags));
      this.setState(L.S_WATCH_LO, 0n);
      this.setState(L.S_WATCH_HI, 0n);
    }
    const jitOptions = resolveJitOptions(options.jit);
    if (jitOptions) {
      this.jit = new Jit(this.memory, this.table, this.core, { hartBase: this.hartBase, ramWasmBase: this.ramWasmBase }, jitOptions);
      this.setState(L.S_JIT_THRESHOLD, BigInt(this.jit.threshold));
      // JIT_FLAG_EAGER: a request at each page's first fetch (to translate it, or to look it up in the cache).
      this.setState(L.S_JIT_FLAGS, BigInt(this.jit.requestsFirstFetch ? L.JIT_FLAG_EAGER : 0));
    } else {
      this.setState(L.S_JIT_THRESHOLD, 0n);
      this.setState(L.S_JIT_FLAGS, 0n);
    }
    if (options.adopt) {
      // The instance's own view of the configuration (RAM, watch range, translation contexts).
      this.core.flushTlb();
      return;
    }
    this.core.init();
    this.setState(L.S_MHARTID, BigInt(options.hartId ?? hartIndex));
  }

  // ---- registers and state ------------------------------------------------------------
  private stateAddr(offset: number): number {
    return this.hartBase + L.HART_STATE + offset;
  }
  getState(offset: number): bigint {
    return this.view.getBigUint64(this.stateAddr(offset), true);
  }
  setState(offset: number, value: bigint): void {
    this.view.setBigUint64(this.stateAddr(offset), BigInt.asUintN(64, value), true);
  }
  /** Reads x[i] as an unsigned 64-bit value. */
  x(i: number): bigint {
    return i === 0 ? 0n : this.getState(L.S_X + i * 8);
  }
  setX(i: number, value: bigint): void {
    if (i !== 0) this.setState(L.S_X + i * 8, value);
  }
  /** Reads f[i] as raw 64 bits. */
  f(i: number): bigint {
    return this.getState(L.S_F + i * 8);
  }
  setF(i: number, value: bigint): void {
    this.setState(L.S_F + i * 8, value);
  }
  get pc(): bigint {
    return this.getState(L.S_PC);
  }
  set pc(value: bigint) {
    this.setState(L.S_PC, value);
  }
  get priv(): number {
    return Number(this.getState(L.S_PRIV));
  }
  set priv(value: number) {
    this.setState(L.S_PRIV, BigInt(value));
    this.core.flushTlb();
  }
  get instret(): bigint {
    return this.getState(L.S_MINSTRET);
  }
  readCsr(csr: number): bigint {
    return BigInt.asUintN(64, this.core.readCsr(csr));
  }
  writeCsr(csr: number, value: bigint): void {
    this.core.writeCsr(csr, BigInt.asIntN(64, value));
  }
  /** Sets or clears bits of mip from outside (device interrupt lines). */
  setPendingInterrupt(mask: number, asserted: boolean): void {
    const mip = this.getState(L.S_MIP);
    this.setState(L.S_MIP, asserted ? mip | BigInt(mask) : mip & ~BigInt(mask));
  }
  /** Stores to guest physical [lo, hi) leave the core through bus.store even though they are RAM. */
  watchStores(lo: number, hi: number): void {
    this.setState(L.S_WATCH_LO, BigInt(lo));
    this.setState(L.S_WATCH_HI, BigInt(hi));
    this.core.flushTlb();
  }
  /** Traps taken so far by cause: exceptions 0..31, interrupts 32..63. */
  /** What the translator did, or undefined when it is off (counters since the Cpu was made). */
  translatorCounters(): TranslatorCounters | undefined {
    if (!this.jit) return undefined;
    return translatorCountersOf((offset) => this.getState(offset), this.jit.stats);
  }

  trapCounts(): bigint[] {
    const out: bigint[] = [];
    for (let i = 0; i < 64; i++) out.push(this.getState(L.S_TRAP_COUNTS + i * 8));
    return out;
  }

  // ---- RAM ------------------------------------------------------------------------------
  /** True when [paddr, paddr+length) lies inside guest RAM. */
  isRam(paddr: number, length: number): boolean {
    return paddr >= this.ramBase && length >= 0 && paddr + length <= this.ramBase + this.ramSize;
  }
  private ramOffset(paddr: number, length: number): number {
    if (!this.isRam(paddr, length)) {
      throw new RangeError(`guest physical range 0x${paddr.toString(16)}+${length} is outside RAM`);
    }
    return paddr - this.ramBase;
  }
  /** Copies bytes into guest RAM (as a DMA write: cached decoded code for those pages is dropped, the pages are logged dirty). */
  writeRam(paddr: number, bytes: Uint8Array): void {
    const off = this.ramOffset(paddr, bytes.length);
    this.ram.set(bytes, off);
    this.core.invalidateCode(off, bytes.length);
  }
  readRam(paddr: number, length: number): Uint8Array {
    const off = this.ramOffset(paddr, length);
    return this.ram.slice(off, off + length);
  }
  /** Tells the core that the host wrote guest RAM directly through `ram` (also logs the pages dirty). */
  ramWritten(paddr: number, length: number): void {
    this.core.invalidateCode(this.ramOffset(paddr, length), length);
  }

  // ---- execution ------------------------------------------------------------------------
  /** Runs at most `budget` instructions; returns why it stopped. */
  run(budget: number): ExitReason {
    this.setState(L.S_STOP_REQUEST, 0n);
    const reason = this.core.run(budget) as ExitReason;
    this.jit?.afterRun();
    return reason;
  }
  /**
   * Runs at most `budget` instructions, leaving the attention word (S_STOP_REQUEST) as it is: a
   * hart on a thread of its own clears it itself, atomically, before deciding to run, so that a
   * request another thread makes meanwhile is never lost.
   */
  runUntilAttention(budget: number): ExitReason {
    const reason = this.core.run(budget) as ExitReason;
    this.jit?.afterRun();
    return reason;
  }
  /** Byte address in `memory` of the 32-bit attention word other threads set (Atomics-ready: 4-aligned). */
  get attentionAddress(): number {
    return this.stateAddr(L.S_STOP_REQUEST);
  }
  /**
   * Another thread wrote guest RAM at [paddr, paddr + length): queues the pages for the harts
   * holding decoded code of them, without touching this Cpu's own hart (which may be running).
   */
  hostWroteRam(paddr: number, length: number): void {
    this.core.queueHostWrite(this.ramOffset(paddr, length), length);
  }
  /** Asks a running core to return from run() after the current instruction (call from a handler). */
  requestStop(): void {
    this.setState(L.S_STOP_REQUEST, 1n);
  }
  flushTlb(): void {
    this.core.flushTlb();
  }
  /** What an SBI remote fence asks of this hart: SFENCE.VMA of everything and FENCE.I. */
  remoteFence(): void {
    this.core.remoteFence();
  }

  // ---- snapshot -------------------------------------------------------------------------
  /**
   * The hart's architectural state (src/platform/persist.ts): integer and FP registers, pc,
   * privilege and every CSR the engine keeps, by name. Not saved: the TLB and decoded or translated
   * code (rebuilt), the LR reservation (dropped: the next SC fails and the guest retries, which the
   * ISA allows for any reason), counters and configuration (set up by the machine's constructor).
   */
  saveState(): CpuState {
    const csrs: Record<string, string> = {};
    for (const [name, offset] of Object.entries(CPU_STATE_CSRS)) csrs[name] = hex64(this.getState(offset));
    const pmpcfg = Array.from({ length: 8 }, (_, i) => hex64(this.getState(L.S_PMPCFG + i * 8)));
    const pmpaddr = Array.from({ length: 64 }, (_, i) => hex64(this.getState(L.S_PMPADDR + i * 8)));
    return {
      version: 1,
      x: Array.from({ length: 32 }, (_, i) => hex64(this.x(i))),
      f: Array.from({ length: 32 }, (_, i) => hex64(this.f(i))),
      pc: hex64(this.pc),
      priv: this.priv,
      csrs,
      pmpcfg,
      pmpaddr,
    };
  }

  /** Checks the whole state first (SnapshotError naming the field), then applies it and drops the TLB. */
  restoreState(state: unknown, where = "cpu"): void {
    const s = stateObject(state, where, [1]);
    const x = stateArray(s.x, `${where}.x`, 32).map((v, i) => stateU64(v, `${where}.x[${i}]`));
    const f = stateArray(s.f, `${where}.f`, 32).map((v, i) => stateU64(v, `${where}.f[${i}]`));
    const pc = stateU64(s.pc, `${where}.pc`);
    const priv = stateInt(s.priv, `${where}.priv`, 0, 3);
    if (priv === 2) throw new SnapshotError(`${where}.priv: 2 is not a privilege level (0 = U, 1 = S, 3 = M)`);
    const csrRecord = stateRecord(s.csrs, `${where}.csrs`);
    const csrs = Object.entries(CPU_STATE_CSRS).map(([name, offset]) => [offset, stateU64(csrRecord[name], `${where}.csrs.${name}`)] as const);
    const pmpcfg = stateArray(s.pmpcfg, `${where}.pmpcfg`, 8).map((v, i) => stateU64(v, `${where}.pmpcfg[${i}]`));
    const pmpaddr = stateArray(s.pmpaddr, `${where}.pmpaddr`, 64).map((v, i) => stateU64(v, `${where}.pmpaddr[${i}]`));
    x.forEach((v, i) => this.setX(i, v));
    f.forEach((v, i) => this.setF(i, v));
    this.setState(L.S_PC, pc);
    this.setState(L.S_PRIV, BigInt(priv));
    for (const [offset, value] of csrs) this.setState(offset, value);
    pmpcfg.forEach((v, i) => this.setState(L.S_PMPCFG + i * 8, v));
    pmpaddr.forEach((v, i) => this.setState(L.S_PMPADDR + i * 8, v));
    this.setState(L.S_RESERVATION, 0xffff_ffff_ffff_ffffn);
    this.core.flushTlb();
  }

  // ---- dirty-page log (live migration; src/cpu/wasm/mmu.ts, "Dirty-page log") -------------------
  // The log is the machine's, shared by every Cpu of its layout: any of them may turn it on or off
  // and harvest it. Turning it on and harvesting are only half of the protocol: every hart must
  // then drop its write tags (dropWriteTags, on the hart's own thread while it may run) before the
  // harvested pages are copied; VirtMachine.startDirtyLog/takeDirtyPages do the whole of it.
  private dirtyLogWords(): Uint32Array {
    // A fresh view each time: a view of a growable memory's old buffer would be detached.
    return new Uint32Array(this.memory.buffer, this.layout.dirtyLogBase, L.DIRTY_LOG_BITMAP / 4 + this.layout.dirtyBitmapWords);
  }
  /** Whether stores are being logged (the machine-wide on/off word). */
  get dirtyLogging(): boolean {
    return Atomics.load(this.dirtyLogWords(), L.DIRTY_LOG_ON / 4) !== 0;
  }
  /** Turns logging on or off; turning it on marks nothing (the caller copies all of RAM first). */
  setDirtyLogging(on: boolean): void {
    Atomics.store(this.dirtyLogWords(), L.DIRTY_LOG_ON / 4, on ? 1 : 0);
  }
  /** The dirty bitmap (bit i of word i >>> 5 = RAM page i), each word exchanged with 0 atomically. */
  exchangeDirtyBitmap(): Uint32Array {
    const words = this.dirtyLogWords();
    const first = L.DIRTY_LOG_BITMAP / 4;
    const out = new Uint32Array(this.layout.dirtyBitmapWords);
    for (let i = 0; i < out.length; i++) {
      // Most words are 0 between harvests: read before exchanging (no write, no cache-line steal).
      if (Atomics.load(words, first + i) !== 0) out[i] = Atomics.exchange(words, first + i, 0);
    }
    return out;
  }
  /** Marks guest physical [paddr, paddr + length) dirty if logging is on (a host write that bypasses ramWritten). */
  markDirty(paddr: number, length: number): void {
    this.core.markDirtyRange(this.ramOffset(paddr, length), length);
  }
  /** Drops this hart's write tags (call on the thread that runs the hart, or while it does not run). */
  dropWriteTags(): void {
    this.core.dropWriteTags();
  }
  /** Stores of this hart that set a page's dirty bit (took the slow path to do it) since the Cpu was made. */
  get dirtyFaults(): number {
    return Number(this.getState(L.S_DIRTY_FAULTS));
  }

  // ---- exits ----------------------------------------------------------------------------
  private onMmioRead(paddr: number, size: AccessSize): number {
    const value = this.bus?.load(paddr, size);
    if (value === undefined) return 1;
    const addr = this.stateAddr(L.S_MMIO_DATA);
    if (typeof value === "bigint") this.view.setBigUint64(addr, BigInt.asUintN(64, value), true);
    else {
      this.view.setUint32(addr, value >>> 0, true);
      this.view.setUint32(addr + 4, 0, true);
    }
    return 0;
  }
  private onMmioWrite(paddr: number, size: AccessSize): number {
    const addr = this.stateAddr(L.S_MMIO_DATA);
    const value: number | bigint =
      size === 8 ? this.view.getBigUint64(addr, true) : this.view.getUint32(addr, true) & (size === 4 ? 0xffffffff : (1 << (size * 8)) - 1);
    const ok = this.bus?.store(paddr, size, size === 8 ? value : Number(value) >>> 0) ?? false;
    return ok ? 0 : 1;
  }
  private onHypercall(): void {
    this.hypercall?.(this);
  }
}
