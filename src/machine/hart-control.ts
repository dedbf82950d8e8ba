// The shared-memory protocol between a machine's I/O thread and its hart threads (one thread per
// hart, see hart-thread.ts and hart-threads.ts). Everything crosses threads here, through
// Atomics on one SharedArrayBuffer, never through messages:
//
// - a mailbox per hart: the hart posts a request (an MMIO access, a hypercall, an HSM edge to
//   complete), rings the I/O thread's doorbell and sleeps until the answer is there. Device models
//   run on the I/O thread only, one request at a time, as QEMU's BQL serialises them.
// - interrupt lines per hart (PLIC and CLINT outputs, levels), a software-interrupt request word
//   (SBI IPIs) and the SBI timer deadline: written by the I/O thread, merged into the hart's mip by
//   the hart's own thread, the only writer of its mip, so no guest CSR write can lose a line.
// - the HSM state of each hart, written by the I/O thread (it owns the SBI HSM table), read by the
//   hart's thread to know whether to run, sleep, or complete an edge.
// - remote-fence counters: requested (bumped by the I/O thread) and done (by the target's thread);
//   the calling hart waits until every target's done count reaches what was requested.
//
// The attention word that makes a running hart look up is the engine's S_STOP_REQUEST in the
// hart's state block (in the guest memory, where translated code can read it); ATTENTION_* are its bits.
import type { HsmState } from "../sbi/index.ts";

/** Attention bits: why another thread wants a hart to leave run() and look around. */
export const ATTENTION_INTERRUPT = 1 << 0; // interrupt lines, IPIs or the SBI timer changed
export const ATTENTION_FENCE = 1 << 1; // a remote SFENCE.VMA / FENCE.I to perform and acknowledge
export const ATTENTION_HSM = 1 << 2; // the hart's HSM state changed (start, stop, suspend)
export const ATTENTION_EXIT = 1 << 3; // the machine is ending
export const ATTENTION_YIELD = 1 << 4; // another hart of this thread became runnable: end the slice

/** Mailbox states. */
export const MAILBOX_IDLE = 0;
export const MAILBOX_POSTED = 1;
export const MAILBOX_ANSWERED = 2;

/** What a hart asks of the I/O thread. */
export const REQUEST_MMIO_READ = 1;
export const REQUEST_MMIO_WRITE = 2;
export const REQUEST_HYPERCALL = 3;
export const REQUEST_HSM_EDGE = 4;

/** HSM edges a hart's thread completes through the I/O thread (REQUEST_HSM_EDGE's argument). */
export const EDGE_START_DONE = 1;
export const EDGE_STOP_DONE = 2;
export const EDGE_SUSPEND_DONE = 3;
/** wake + resume-done: the answer carries a non-retentive suspend's entry point, if any. */
export const EDGE_RESUME = 4;

/** Software-interrupt request bits (SBI IPI and legacy clear_ipi). */
export const SOFT_SET = 1;
export const SOFT_CLEAR = 2;

// ---- layout -----------------------------------------------------------------------------------
/**
 * Machine-wide words (Int32 indices): the I/O thread's doorbell, the exit flag, and per host
 * thread a wake word (bumped whenever one of its harts needs attention) and the hart it is
 * running (-1: none).
 */
const DOORBELL = 0;
const EXIT = 1;
/** Non-zero while the I/O thread asks every hart thread to stop at its next pass (a VM pause). */
const PAUSE = 2;
/** Hart threads stopped for the pause (each adds one when it stops, takes it back when it goes on). */
const PAUSED_THREADS = 3;
/**
 * Float64 index: timebase ticks the guest's clock is behind the host's timebase (time spent paused,
 * or the difference to a snapshot's guest time). Written only while every hart thread is stopped.
 */
const F_GUEST_TIME_OFFSET = 2;
const THREAD_WAKE = 16;
const THREAD_CURRENT = 48;
export const MAX_HOST_THREADS = 32;
const HEADER_BYTES = 4 * (THREAD_CURRENT + MAX_HOST_THREADS);
const HART_BLOCK_BYTES = 512;

// Per-hart Int32 words, from the hart's block.
const W_MAILBOX = 0;
const W_KIND = 1;
const W_SIZE = 2;
const W_RESULT = 3;
const W_HSM = 4;
const W_FENCE_REQUESTED = 5;
const W_FENCE_DONE = 6;
const W_FENCE_WAIT = 7;
const W_LINES = 8;
const W_SOFT = 9;
const W_ARGUMENT = 10;
const W_RUNNING = 11;
const W_THREAD = 12;
// Per-hart BigInt64 slots, from the hart's block.
const Q_ADDRESS = 8;
const Q_VALUE = 9;
const Q_VALUE2 = 10;
const Q_TIMER = 11;
const Q_START_ADDR = 12;
const Q_START_OPAQUE = 13;
const Q_STEAL_SHMEM = 14;
// Per-hart Float64 slots: statistics the hart's thread publishes.
const F_STATS = 16;

/** What a hart thread publishes for the ledger (its translator's host-side counters and its sleeps). */
export const HART_THREAD_STATS = [
  "pagesTranslated",
  "instructionsTranslated",
  "modules",
  "wasmBytes",
  "failures",
  "translateMs",
  "compileMs",
  "cacheHits",
  "cacheMisses",
  "cacheStores",
  "cacheEvictions",
  "cacheRejected",
  "sleeps",
  "attentionExits",
  "runningNs",
  "stealNs",
  "haltedNs",
  "suspendedNs",
  "parkedNs",
  "wrsParks",
  "wrsTimeouts",
  "wrsWaitNs",
  "pauseExits",
  "directedYields",
] as const;
export type HartThreadStats = Record<(typeof HART_THREAD_STATS)[number], number>;
if ((F_STATS + HART_THREAD_STATS.length) * 8 > HART_BLOCK_BYTES) throw new Error("hart-control: the statistics overflow a hart's block");

const NEVER = -1n; // as a signed 64-bit value: 0xffff_ffff_ffff_ffff

/** Views of a machine's control block; both sides make one over the same buffer. */
export class HartControl {
  readonly i32: Int32Array;
  readonly i64: BigInt64Array;
  readonly f64: Float64Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly harts: number,
  ) {
    this.i32 = new Int32Array(buffer);
    this.i64 = new BigInt64Array(buffer);
    this.f64 = new Float64Array(buffer);
  }

  static create(harts: number, initialState: (hart: number) => HsmState, threadOf: (hart: number) => number): HartControl {
    const control = new HartControl(new SharedArrayBuffer(HEADER_BYTES + harts * HART_BLOCK_BYTES), harts);
    for (let hart = 0; hart < harts; hart++) {
      control.setHsm(hart, initialState(hart));
      control.setTimer(hart, NEVER);
      control.i32[control.word(hart, W_THREAD)] = threadOf(hart);
      control.setStealShmem(hart, undefined);
    }
    for (let thread = 0; thread < MAX_HOST_THREADS; thread++) control.setCurrent(thread, -1);
    return control;
  }

  // ---- host threads -----------------------------------------------------------------------------------
  threadOf(hart: number): number {
    return this.i32[this.word(hart, W_THREAD)];
  }
  threadWake(thread: number): number {
    return Atomics.load(this.i32, THREAD_WAKE + thread);
  }
  /** Wakes the thread running `hart` (it looks at all its harts' attention bits). */
  wakeThreadOf(hart: number): void {
    const index = THREAD_WAKE + this.threadOf(hart);
    Atomics.add(this.i32, index, 1);
    Atomics.notify(this.i32, index);
  }
  /** The thread's side: sleeps until its wake word moves from `seen`, at most `ms`. */
  waitThread(thread: number, seen: number, ms: number): void {
    Atomics.wait(this.i32, THREAD_WAKE + thread, seen, ms);
  }
  setCurrent(thread: number, hart: number): void {
    Atomics.store(this.i32, THREAD_CURRENT + thread, hart);
  }
  /** The hart the thread is running a slice of, or -1. */
  current(thread: number): number {
    return Atomics.load(this.i32, THREAD_CURRENT + thread);
  }

  private word(hart: number, field: number): number {
    return (HEADER_BYTES + hart * HART_BLOCK_BYTES) / 4 + field;
  }
  private slot(hart: number, field: number): number {
    return (HEADER_BYTES + hart * HART_BLOCK_BYTES) / 8 + field;
  }

  // ---- the doorbell and the exit flag ------------------------------------------------------------
  ringDoorbell(): void {
    Atomics.add(this.i32, DOORBELL, 1);
    Atomics.notify(this.i32, DOORBELL);
  }
  doorbell(): number {
    return Atomics.load(this.i32, DOORBELL);
  }
  /** Resolves when the doorbell moved from `seen` or after `ms` (the I/O thread's event loop goes on). */
  async waitForDoorbell(seen: number, ms: number): Promise<void> {
    const wait = (Atomics as unknown as AtomicsWithWaitAsync).waitAsync(this.i32, DOORBELL, seen, ms);
    if (wait.async) await wait.value;
  }
  get exiting(): boolean {
    return Atomics.load(this.i32, EXIT) !== 0;
  }
  setExiting(): void {
    Atomics.store(this.i32, EXIT, 1);
  }

  // ---- pausing the harts (a VM pause: snapshots, migration, PATCH /vm) ---------------------------------
  /** The I/O thread: asks every hart thread to stop at its next pass (set their attention too). */
  requestPause(): void {
    Atomics.store(this.i32, PAUSE, 1);
  }
  /** The I/O thread: lets the stopped threads go on. */
  releasePause(): void {
    Atomics.store(this.i32, PAUSE, 0);
    Atomics.notify(this.i32, PAUSE);
  }
  get pauseRequested(): boolean {
    return Atomics.load(this.i32, PAUSE) !== 0;
  }
  /** Hart threads stopped for the pause now. */
  get pausedThreads(): number {
    return Atomics.load(this.i32, PAUSED_THREADS);
  }
  /**
   * A hart thread: stopped for the pause (rings the doorbell so the I/O thread counts it) until the
   * pause is released or the machine ends.
   */
  stopForPause(): void {
    Atomics.add(this.i32, PAUSED_THREADS, 1);
    this.ringDoorbell();
    while (Atomics.load(this.i32, PAUSE) !== 0 && !this.exiting) Atomics.wait(this.i32, PAUSE, 1, 50);
    Atomics.sub(this.i32, PAUSED_THREADS, 1);
  }
  /** Ticks to subtract from the host timebase for guest time (see F_GUEST_TIME_OFFSET). */
  get guestTimeOffset(): number {
    return this.f64[F_GUEST_TIME_OFFSET];
  }
  setGuestTimeOffset(ticks: number): void {
    this.f64[F_GUEST_TIME_OFFSET] = ticks;
  }

  // ---- mailboxes ----------------------------------------------------------------------------------
  mailbox(hart: number): number {
    return Atomics.load(this.i32, this.word(hart, W_MAILBOX));
  }
  /** The hart's side: posts a request (its arguments already written) and rings the doorbell. */
  post(hart: number, kind: number): void {
    Atomics.store(this.i32, this.word(hart, W_KIND), kind);
    Atomics.store(this.i32, this.word(hart, W_MAILBOX), MAILBOX_POSTED);
    this.ringDoorbell();
  }
  /**
   * The hart's side: waits for the answer, spinning briefly first (most requests are answered
   * within microseconds, sooner than a sleeping thread wakes). Returns false if the machine ends first.
   */
  awaitAnswer(hart: number): boolean {
    const index = this.word(hart, W_MAILBOX);
    for (let spin = 0; spin < 2000; spin++) {
      if (Atomics.load(this.i32, index) === MAILBOX_ANSWERED) return this.takeAnswer(index);
    }
    while (Atomics.load(this.i32, index) !== MAILBOX_ANSWERED) {
      if (this.exiting) return false;
      Atomics.wait(this.i32, index, MAILBOX_POSTED, 50);
    }
    return this.takeAnswer(index);
  }
  private takeAnswer(index: number): true {
    Atomics.store(this.i32, index, MAILBOX_IDLE);
    return true;
  }
  /** The I/O thread's side: the answer's fields are written; wakes the hart. */
  answer(hart: number): void {
    const index = this.word(hart, W_MAILBOX);
    Atomics.store(this.i32, index, MAILBOX_ANSWERED);
    Atomics.notify(this.i32, index);
  }
  kind(hart: number): number {
    return Atomics.load(this.i32, this.word(hart, W_KIND));
  }
  size(hart: number): number {
    return this.i32[this.word(hart, W_SIZE)];
  }
  setSize(hart: number, size: number): void {
    this.i32[this.word(hart, W_SIZE)] = size;
  }
  result(hart: number): number {
    return this.i32[this.word(hart, W_RESULT)];
  }
  setResult(hart: number, result: number): void {
    this.i32[this.word(hart, W_RESULT)] = result;
  }
  argument(hart: number): number {
    return this.i32[this.word(hart, W_ARGUMENT)];
  }
  setArgument(hart: number, argument: number): void {
    this.i32[this.word(hart, W_ARGUMENT)] = argument;
  }
  address(hart: number): number {
    return Number(this.i64[this.slot(hart, Q_ADDRESS)]);
  }
  setAddress(hart: number, address: number): void {
    this.i64[this.slot(hart, Q_ADDRESS)] = BigInt(address);
  }
  value(hart: number): bigint {
    return BigInt.asUintN(64, this.i64[this.slot(hart, Q_VALUE)]);
  }
  setValue(hart: number, value: bigint): void {
    this.i64[this.slot(hart, Q_VALUE)] = BigInt.asIntN(64, value);
  }
  value2(hart: number): bigint {
    return BigInt.asUintN(64, this.i64[this.slot(hart, Q_VALUE2)]);
  }
  setValue2(hart: number, value: bigint): void {
    this.i64[this.slot(hart, Q_VALUE2)] = BigInt.asIntN(64, value);
  }

  // ---- HSM, start parameters ---------------------------------------------------------------------
  hsm(hart: number): HsmState {
    return Atomics.load(this.i32, this.word(hart, W_HSM)) as HsmState;
  }
  setHsm(hart: number, state: HsmState): void {
    Atomics.store(this.i32, this.word(hart, W_HSM), state);
  }
  setStart(hart: number, addr: bigint, opaque: bigint): void {
    this.i64[this.slot(hart, Q_START_ADDR)] = BigInt.asIntN(64, addr);
    this.i64[this.slot(hart, Q_START_OPAQUE)] = BigInt.asIntN(64, opaque);
  }
  start(hart: number): { addr: bigint; opaque: bigint } {
    return {
      addr: BigInt.asUintN(64, this.i64[this.slot(hart, Q_START_ADDR)]),
      opaque: BigInt.asUintN(64, this.i64[this.slot(hart, Q_START_OPAQUE)]),
    };
  }

  // ---- SBI steal-time accounting -----------------------------------------------------------------
  /**
   * The guest physical address of the hart's steal-time record (SBI STA), undefined when none:
   * set by the I/O thread when it serves the hart's set_shmem call (or a hart_start, which clears
   * it), read by the hart's thread before each slice to write the record itself.
   */
  setStealShmem(hart: number, addr: bigint | undefined): void {
    Atomics.store(this.i64, this.slot(hart, Q_STEAL_SHMEM), addr === undefined ? NEVER : BigInt.asIntN(64, addr));
  }
  stealShmem(hart: number): bigint | undefined {
    const addr = Atomics.load(this.i64, this.slot(hart, Q_STEAL_SHMEM));
    return addr === NEVER ? undefined : BigInt.asUintN(64, addr);
  }

  // ---- interrupt lines, software interrupts, the SBI timer ------------------------------------------
  setLine(hart: number, mask: number, asserted: boolean): void {
    const index = this.word(hart, W_LINES);
    if (asserted) Atomics.or(this.i32, index, mask);
    else Atomics.and(this.i32, index, ~mask);
  }
  lines(hart: number): number {
    return Atomics.load(this.i32, this.word(hart, W_LINES));
  }
  requestSoftware(hart: number, bits: number): void {
    Atomics.or(this.i32, this.word(hart, W_SOFT), bits);
  }
  takeSoftware(hart: number): number {
    return Atomics.exchange(this.i32, this.word(hart, W_SOFT), 0);
  }
  setTimer(hart: number, deadline: bigint): void {
    Atomics.store(this.i64, this.slot(hart, Q_TIMER), BigInt.asIntN(64, deadline));
  }
  timer(hart: number): bigint {
    return BigInt.asUintN(64, Atomics.load(this.i64, this.slot(hart, Q_TIMER)));
  }

  // ---- remote fences --------------------------------------------------------------------------------
  /** The I/O thread: asks `hart` for a fence; returns nothing, the caller waits via fenceWait. */
  requestFence(hart: number): void {
    Atomics.add(this.i32, this.word(hart, W_FENCE_REQUESTED), 1);
  }
  fenceRequested(hart: number): number {
    return Atomics.load(this.i32, this.word(hart, W_FENCE_REQUESTED));
  }
  /** The target's thread, after fencing: everything requested up to `requested` is done. */
  fenceDone(hart: number, requested: number): void {
    const index = this.word(hart, W_FENCE_DONE);
    Atomics.store(this.i32, index, requested);
    Atomics.notify(this.i32, index);
  }
  /** Waits up to `ms` for `target`'s done count to reach `requested`; true when it has. */
  awaitFence(target: number, requested: number, ms: number): boolean {
    const index = this.word(target, W_FENCE_DONE);
    const done = Atomics.load(this.i32, index);
    if (((done - requested) | 0) >= 0) return true;
    Atomics.wait(this.i32, index, done, ms);
    return ((Atomics.load(this.i32, index) - requested) | 0) >= 0;
  }
  /** Whether `target` has done every fence requested up to `requested` (does not wait). */
  fenceAcknowledged(target: number, requested: number): boolean {
    return ((Atomics.load(this.i32, this.word(target, W_FENCE_DONE)) - requested) | 0) >= 0;
  }
  /**
   * Whether the hart may be executing guest code: set by its thread before it takes its attention
   * bits and decides to run, cleared before it sleeps. A remote fence needs the target's
   * acknowledgement only while this is set; a hart that is not running takes its attention bits
   * (and performs the fence) before it runs again. Both sides use sequentially consistent atomics
   * (the requester sets the attention bit, then reads this), so one of them sees the other.
   */
  setRunning(hart: number, running: boolean): void {
    Atomics.store(this.i32, this.word(hart, W_RUNNING), running ? 1 : 0);
  }
  mayBeRunning(hart: number): boolean {
    return Atomics.load(this.i32, this.word(hart, W_RUNNING)) !== 0;
  }
  /** The harts a hypercall's caller must see fenced before it returns (a bit per hart). */
  setFenceWait(hart: number, targets: number): void {
    this.i32[this.word(hart, W_FENCE_WAIT)] = targets;
  }
  fenceWait(hart: number): number {
    return this.i32[this.word(hart, W_FENCE_WAIT)];
  }

  // ---- statistics --------------------------------------------------------------------------------------
  publishStats(hart: number, stats: HartThreadStats): void {
    const base = this.slot(hart, F_STATS);
    HART_THREAD_STATS.forEach((name, i) => (this.f64[base + i] = stats[name]));
  }
  stats(hart: number): HartThreadStats {
    const base = this.slot(hart, F_STATS);
    return Object.fromEntries(HART_THREAD_STATS.map((name, i) => [name, this.f64[base + i]])) as HartThreadStats;
  }
}

/** Atomics.waitAsync (ES2024): not in the ES2022 library the project compiles against. */
interface AtomicsWithWaitAsync {
  waitAsync(array: Int32Array, index: number, value: number, ms?: number): { async: false; value: string } | { async: true; value: Promise<string> };
}
