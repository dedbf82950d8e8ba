// A host thread running one or more harts of a VirtMachine: what each hart thread runs (the host
// adapter's worker entry calls runHartThread; src/host/node/hart-worker.ts for Node). Every hart
// has an engine instance of its own over the machine's one shared memory; everything a hart cannot
// do alone (device MMIO, hypercalls, HSM edges) goes to the I/O thread through the mailbox of
// hart-control.ts.
//
// With more harts than threads (--cpus N --host-threads M, N > M) a thread is a small vCPU
// scheduler: it runs its runnable harts in turn, a slice each, the way a host kernel schedules
// vCPU threads, but it knows what each hart is doing. A hart that waits on a lock (WRS.NTO from
// Zawrs, or a loop of PAUSEs) gives the rest of its slice to another hart of the thread at once
// (a directed yield), so the lock holder runs instead of the waiter. Each hart's time is
// accounted as running, steal (runnable while another hart of its thread runs), halted (WFI,
// STOPPED), suspended (HSM) or parked (WRS).
//
// What a hart does in each HSM state (SBI spec §9), the table HartRunner.prepare follows:
//   STARTED          runnable; after WFI, halted until an interrupt is pending and enabled;
//                    after WRS, parked until its reservation set is written, an interrupt is
//                    pending or the wait times out
//   START_PENDING    enter the kernel at hart_start's address, complete start-done: runnable
//   STOP_PENDING     complete stop-done          SUSPEND_PENDING   complete suspend-done
//   SUSPENDED        until an interrupt is pending and enabled, then complete the resume
//   STOPPED          until the I/O thread changes the state
// Before that, a hart takes the attention bits other threads set: interrupt lines to merge into
// mip, a remote fence to perform, an HSM change, the machine's end. A thread with nothing to run
// sleeps (Atomics.wait on its wake word) until its next deadline, so idle harts cost nothing.
import { Cpu, ExitReason, TIMEBASE_FREQUENCY, type CpuOptions, type AccessSize, type PhysicalBus } from "../cpu/cpu.ts";
import { coreLayout } from "../cpu/core-layout.ts";
import * as L from "../cpu/layout.ts";
import { CSR_MIE, CSR_MIP } from "../cpu/csr-numbers.ts";
import { MIP_MEIP, MIP_MSIP, MIP_MTIP, MIP_SEIP, MIP_SSIP, MIP_STIP } from "../cpu/interrupts.ts";
import {
  StealTimeRecorder,
  ramRecordMemory,
  STA_SHMEM_SIZE,
  type StealRecordMemory,
  SBI_HSM_STATE_STARTED,
  SBI_HSM_STATE_START_PENDING,
  SBI_HSM_STATE_STOP_PENDING,
  SBI_HSM_STATE_SUSPENDED,
  SBI_HSM_STATE_SUSPEND_PENDING,
} from "../sbi/index.ts";
import {
  ATTENTION_EXIT,
  ATTENTION_FENCE,
  EDGE_RESUME,
  EDGE_START_DONE,
  EDGE_STOP_DONE,
  EDGE_SUSPEND_DONE,
  HartControl,
  REQUEST_HSM_EDGE,
  REQUEST_HYPERCALL,
  REQUEST_MMIO_READ,
  REQUEST_MMIO_WRITE,
  SOFT_CLEAR,
  SOFT_SET,
  type HartThreadStats,
} from "./hart-control.ts";
import { enterSupervisor } from "./hart-entry.ts";
import { NEVER, nextTimerEvent, sliceUntil } from "./hart-timing.ts";

/** Everything a hart thread needs, as plain data a host can post to a new thread. */
export interface HartThreadInit {
  /** The shared-memory engine (build/cpu-shared.wasm) and the machine's shared memory. */
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  harts: number;
  /** This thread's index, and the harts it runs (each with an engine instance of its own). */
  threadIndex: number;
  hartIndices: number[];
  ramSize: number;
  ramBase: number;
  /** Paravirtual boot (the host serves SBI); else OpenSBI runs in the guest's M-mode. */
  paravirtual: boolean;
  jit: CpuOptions["jit"];
  /** Pause-loop exiting window in instructions (S_PLE_WINDOW); 0 = off. */
  pauseLoopWindow: number;
}

/** A hart alone on its thread runs long slices (other threads' requests end them anyway)... */
const SLICE_ALONE = 1_000_000;
/** ... harts sharing a thread get shorter ones, so that none waits long for its turn. */
const SLICE_SHARED = 200_000;
const TICKS_PER_MS = TIMEBASE_FREQUENCY / 1000;
const NS_PER_TICK = 1e9 / TIMEBASE_FREQUENCY;
/** Longest sleep without a deadline: the thread looks at the exit flag at least this often. */
const MAX_SLEEP_MS = 1000;
/**
 * A WRS.NTO park ends at the latest after this many ticks (1 ms; the spec lets a stall end at any
 * time), a WRS.STO park after a short while (20 µs); a thread with only parked harts looks at
 * their reservation sets every POLL_MS.
 */
const WRS_NTO_TICKS = 10_000;
const WRS_STO_TICKS = 200;
const POLL_MS = 0.02;
/**
 * How long a thread with only parked harts watches their reservation sets before it sleeps
 * (50 µs): with nothing else to run, watching is what the hart would have done by spinning, and
 * the store that ends a wait usually comes that soon (sleeping and waking would add tens of µs).
 */
const PARK_SPIN_TICKS = 500;


/** Thrown out of the engine's imports when the machine ends while a hart waits for an answer. */
class MachineEnded extends Error {}

/** Runs the thread's harts until the machine ends. `readTime` is the machine's one timebase. */
export function runHartThread(init: HartThreadInit, readTime: () => number): void {
  // Guest time is the host's timebase minus what the machine spent paused (or the offset a
  // restored snapshot's clock needs): the offset only changes while every hart thread is stopped.
  const control = new HartControl(init.control, init.harts);
  const guestTime = () => readTime() - control.guestTimeOffset;
  try {
    new HartScheduler(init, guestTime).loop();
  } catch (error) {
    if (!(error instanceof MachineEnded)) throw error;
  }
}

/** What a hart can do at the moment the scheduler looks at it. */
const enum Readiness {
  Runnable,
  Halted,
  Suspended,
  Parked,
}

/** Where a hart's time went, in ticks (published in ns). */
interface TimeAccount {
  running: number;
  steal: number;
  halted: number;
  suspended: number;
  parked: number;
}

class HartScheduler {
  private readonly control: HartControl;
  private readonly runners: HartRunner[];
  private next = 0;

  constructor(
    private readonly init: HartThreadInit,
    private readonly readTime: () => number,
  ) {
    this.control = new HartControl(init.control, init.harts);
    this.runners = init.hartIndices.map((hart) => new HartRunner(init, hart, this.control, readTime));
  }

  loop(): void {
    const control = this.control, runners = this.runners, thread = this.init.threadIndex;
    for (;;) {
      const wakeSeen = control.threadWake(thread);
      if (control.exiting) return;
      const now = this.readTime();
      // Every hart first takes its attention bits and says what it can do now.
      const readiness = runners.map((runner) => runner.prepare(now));
      if (control.exiting) return;
      if (control.pauseRequested) {
        // A VM pause: every hart has taken its attention bits above (so a remote fence asked of
        // it is done, and its caller is not left waiting); none runs until the pause ends, and
        // the time stopped is nobody's (not steal, not idle): it is not accounted at all.
        runners.forEach((runner) => runner.standBy());
        runners.forEach((runner) => runner.publishStats());
        control.stopForPause();
        continue;
      }
      let chosen = -1;
      for (let i = 0; i < runners.length; i++) {
        const index = (this.next + i) % runners.length;
        if (readiness[index] === Readiness.Runnable) {
          chosen = index;
          break;
        }
      }
      // Harts not chosen are not running: a remote fence need not wait for them (see setRunning).
      runners.forEach((runner, index) => index !== chosen && runner.standBy());
      if (chosen < 0) {
        this.sleep(wakeSeen, readiness);
        this.account(readiness, -1, now, this.readTime());
        continue;
      }
      this.next = (chosen + 1) % runners.length;
      const runnable = readiness.filter((r) => r === Readiness.Runnable).length;
      const runner = runners[chosen];
      control.setCurrent(thread, runner.hart);
      const yielded = runner.runSlice(runnable > 1 ? SLICE_SHARED : SLICE_ALONE);
      control.setCurrent(thread, -1);
      // A waiter that gave up its slice while another hart of this thread could run: that one runs next.
      if (yielded && runnable > 1) runner.counts.directedYields++;
      this.account(readiness, chosen, now, this.readTime());
      runner.standBy();
      runner.publishStats();
    }
  }

  /** Spins up to PARK_SPIN_TICKS until a parked hart's reservation is written or attention arrives; true if so. */
  private watchParked(): boolean {
    const until = this.readTime() + PARK_SPIN_TICKS;
    const wakeSeen = this.control.threadWake(this.init.threadIndex);
    do {
      if (this.control.threadWake(this.init.threadIndex) !== wakeSeen) return true;
      for (const runner of this.runners) if (runner.parkedReservationWritten()) return true;
    } while (this.readTime() < until);
    return false;
  }

  /** Adds the period [from, to) to each hart's account, by what it was doing then. */
  private account(readiness: readonly Readiness[], chosen: number, from: number, to: number): void {
    const elapsed = Math.max(0, to - from);
    this.runners.forEach((runner, index) => {
      const t = runner.time;
      switch (readiness[index]) {
        case Readiness.Runnable:
          if (index === chosen) t.running += elapsed;
          else t.steal += elapsed;
          break;
        case Readiness.Halted:
          t.halted += elapsed;
          break;
        case Readiness.Suspended:
          t.suspended += elapsed;
          break;
        case Readiness.Parked:
          t.parked += elapsed;
          break;
      }
    });
  }

  /** Nothing to run: sleep until woken (attention for any hart of the thread) or the next deadline. */
  private sleep(wakeSeen: number, readiness: readonly Readiness[]): void {
    // Only deadlines still ahead can wake a hart (see nextTimerEvent; a park's timeout too).
    const now = BigInt(this.readTime());
    let deadline = NEVER;
    for (const runner of this.runners) {
      const d = runner.wakeDeadline(now);
      if (d > now && d < deadline) deadline = d;
    }
    let ms = MAX_SLEEP_MS;
    if (deadline !== NEVER) ms = Math.min(ms, Number(deadline - now) / TICKS_PER_MS);
    // A parked hart's reservation set can be written by a hart of another thread or by DMA at any
    // moment, unannounced: watch it closely for a few microseconds (a lock is often released
    // that soon), then look again every POLL_MS.
    if (readiness.includes(Readiness.Parked)) {
      if (this.watchParked()) return;
      ms = Math.min(ms, POLL_MS);
    }
    if (ms <= 0) return;
    for (const runner of this.runners) runner.counts.sleeps++;
    this.control.waitThread(this.init.threadIndex, wakeSeen, ms);
  }
}

/** A WRS park: the reservation LR made and what it read, and when the wait ends at the latest. */
interface Park {
  ramOffset: number;
  size: number;
  value: bigint;
  since: number;
  deadline: number;
}

class HartRunner {
  readonly cpu: Cpu;
  private readonly words: Int32Array;
  private readonly attention: number;
  private readonly mipWord: number;
  /** mip bits this thread takes from the I/O thread's lines (PLIC, CLINT) and the SBI timer. */
  private readonly hostOwned: number;
  private readonly paravirtual: boolean;
  private waitingForInterrupt = false;
  private park: Park | undefined;
  readonly counts = { sleeps: 0, attentionExits: 0, wrsParks: 0, wrsTimeouts: 0, pauseExits: 0, directedYields: 0 };
  readonly time: TimeAccount = { running: 0, steal: 0, halted: 0, suspended: 0, parked: 0 };
  private wrsWaitTicks = 0;
  private readonly stealRecorder = new StealTimeRecorder();
  private readonly stealMemory: StealRecordMemory;

  constructor(
    init: HartThreadInit,
    readonly hart: number,
    private readonly control: HartControl,
    private readonly readTime: () => number,
  ) {
    this.paravirtual = init.paravirtual;
    const bus: PhysicalBus = {
      load: (paddr, size) => this.mmioRead(paddr, size),
      store: (paddr, size, value) => this.mmioWrite(paddr, size, value),
    };
    this.cpu = new Cpu({
      module: init.module,
      memory: init.memory,
      layout: coreLayout({ harts: init.harts, ramSize: init.ramSize }),
      hartIndex: hart,
      ramSize: init.ramSize,
      ramBase: init.ramBase,
      bus,
      hypercall: init.paravirtual ? () => this.hypercall() : undefined,
      readTime,
      jit: init.jit,
      adopt: true,
    });
    this.cpu.setState(L.S_PLE_WINDOW, BigInt(init.pauseLoopWindow));
    this.words = new Int32Array(init.memory.buffer);
    this.attention = this.cpu.attentionAddress >> 2;
    this.mipWord = (this.cpu.hartBase + L.HART_STATE + L.S_MIP) >> 2;
    this.hostOwned = MIP_MEIP | MIP_SEIP | MIP_MTIP | MIP_MSIP | (init.paravirtual ? MIP_STIP : 0);
    this.stealMemory = ramRecordMemory(this.cpu.ram, init.ramBase);
  }

  /**
   * SBI STA: before each slice, the hart's steal time so far (runnable while another hart of its
   * thread ran) goes into the guest's record, if the hart registered one; written from this
   * thread, which owns the hart's view of memory, with writeStealRecord's ordered stores, since
   * other harts may read the record at the same time. preempted is clear: the hart runs now.
   */
  private updateStealTime(): void {
    const addr = this.control.stealShmem(this.hart);
    const paddr = addr === undefined ? undefined : Number(addr);
    if (this.stealRecorder.update(this.stealMemory, paddr, BigInt(Math.round(this.time.steal * NS_PER_TICK)), false)) {
      this.cpu.ramWritten(paddr!, STA_SHMEM_SIZE);
    }
  }

  /**
   * Takes the attention bits, performs what they ask, completes pending HSM edges, and says
   * whether the hart can run now. Marks the hart as possibly running first (see setRunning).
   */
  prepare(now: number): Readiness {
    const control = this.control, hart = this.hart;
    control.setRunning(hart, true);
    const bits = Atomics.exchange(this.words, this.attention, 0);
    if (bits & ATTENTION_EXIT || control.exiting) return Readiness.Halted;
    if (bits & ATTENTION_FENCE) this.fence();
    this.mergeInterrupts();
    switch (control.hsm(hart)) {
      case SBI_HSM_STATE_STARTED:
        if (this.waitingForInterrupt) {
          if (!this.interruptPending()) return Readiness.Halted;
          this.waitingForInterrupt = false;
        }
        if (this.park) {
          if (!this.parkEnds(now)) return Readiness.Parked;
          this.park = undefined;
        }
        return Readiness.Runnable;
      case SBI_HSM_STATE_START_PENDING: {
        const { addr, opaque } = control.start(hart);
        enterSupervisor(this.cpu, hart, addr, opaque);
        this.waitingForInterrupt = false;
        this.park = undefined;
        this.edge(EDGE_START_DONE);
        return Readiness.Runnable;
      }
      case SBI_HSM_STATE_STOP_PENDING:
        this.edge(EDGE_STOP_DONE);
        return Readiness.Halted;
      case SBI_HSM_STATE_SUSPEND_PENDING:
        this.edge(EDGE_SUSPEND_DONE);
        return Readiness.Suspended;
      case SBI_HSM_STATE_SUSPENDED:
        if (!this.interruptPending()) return Readiness.Suspended;
        this.edge(EDGE_RESUME);
        // A non-retentive suspend resumes at its address, as hart_start would.
        if (control.result(hart) === 1) enterSupervisor(this.cpu, hart, control.value(hart), control.value2(hart));
        this.waitingForInterrupt = false;
        this.park = undefined;
        return Readiness.Runnable;
      default: // STOPPED, and states only the I/O thread moves out of
        return Readiness.Halted;
    }
  }

  /**
   * Not running until the next prepare: a remote fence need not wait for this hart. A fence
   * requested after prepare took the attention bits is performed here, at once.
   */
  standBy(): void {
    this.control.setRunning(this.hart, false);
    this.fenceIfAsked();
  }

  /** Runs a slice; true when the hart gave it up early to wait for another (WRS, pause loop). */
  runSlice(slice: number): boolean {
    this.updateStealTime();
    const now = this.readTime();
    const event = this.nextTimerEvent(BigInt(now));
    const reason = this.cpu.runUntilAttention(sliceUntil(slice, now, event === NEVER ? undefined : Number(event)));
    switch (reason) {
      case ExitReason.Wfi:
        this.waitingForInterrupt = true;
        return false;
      case ExitReason.Stop:
        this.counts.attentionExits++;
        return false;
      case ExitReason.Wrs:
        this.parkOnReservation();
        return true;
      case ExitReason.Pause:
        this.counts.pauseExits++;
        return true;
      default:
        return false;
    }
  }

  /** WRS: wait until the reservation LR made is written (its value changes), an interrupt, or the timeout. */
  private parkOnReservation(): void {
    const cpu = this.cpu;
    const reservation = cpu.getState(L.S_RESERVATION);
    const ramOffset = Number(reservation) - cpu.ramBase;
    const size = Number(cpu.getState(L.S_RESERVATION_SIZE));
    if (ramOffset < 0 || ramOffset + size > cpu.ramSize) return;
    const now = this.readTime();
    const short = cpu.getState(L.S_WRS_KIND) === 1n;
    this.park = { ramOffset, size, value: cpu.getState(L.S_RESERVATION_VALUE), since: now, deadline: now + (short ? WRS_STO_TICKS : WRS_NTO_TICKS) };
    this.counts.wrsParks++;
  }

  private parkEnds(now: number): boolean {
    const park = this.park!;
    const ended = this.reservationWritten(park) || this.interruptPending() || now >= park.deadline;
    if (ended) {
      if (now >= park.deadline) this.counts.wrsTimeouts++;
      this.wrsWaitTicks += now - park.since;
    }
    return ended;
  }

  parkedReservationWritten(): boolean {
    return this.park !== undefined && this.reservationWritten(this.park);
  }

  private reservationWritten(park: Park): boolean {
    const address = this.cpu.ramWasmBase + park.ramOffset;
    if (park.size === 4) return BigInt(Atomics.load(this.words, address >> 2)) !== BigInt.asIntN(32, park.value);
    const pair = new BigInt64Array(this.words.buffer, address, 1);
    return Atomics.load(pair, 0) !== BigInt.asIntN(64, park.value);
  }

  /** When this hart wants to be looked at again without being woken: a timer, or a park's timeout. */
  wakeDeadline(now: bigint): bigint {
    let next = this.nextTimerEvent(now);
    if (this.park && BigInt(this.park.deadline) < next) next = BigInt(this.park.deadline);
    return next;
  }

  /** The next of this hart's supervisor timer events still ahead (nextTimerEvent), in ticks; NEVER if none. */
  private nextTimerEvent(now: bigint): bigint {
    return nextTimerEvent(this.cpu, this.paravirtual ? this.control.timer(this.hart) : NEVER, now);
  }


  /** Interrupts pending and enabled in mie: what ends WFI, a suspension and a WRS (privileged ISA 3.3.3). */
  private interruptPending(): boolean {
    return (this.cpu.readCsr(CSR_MIP) & this.cpu.readCsr(CSR_MIE)) !== 0n;
  }

  /** mip from the I/O thread's lines, IPIs and the SBI timer; this thread is mip's only writer. */
  private mergeInterrupts(): void {
    const control = this.control, hart = this.hart;
    let mip = this.words[this.mipWord];
    mip = (mip & ~this.hostOwned) | (control.lines(hart) & this.hostOwned);
    const soft = control.takeSoftware(hart);
    if (soft & SOFT_CLEAR) mip &= ~MIP_SSIP;
    if (soft & SOFT_SET) mip |= MIP_SSIP;
    if (this.paravirtual && BigInt(this.readTime()) >= control.timer(hart)) mip |= MIP_STIP;
    this.words[this.mipWord] = mip;
  }

  /** A remote SFENCE.VMA or FENCE.I: drop translations and code others wrote, then acknowledge. */
  private fence(): void {
    const requested = this.control.fenceRequested(this.hart);
    this.cpu.remoteFence();
    this.control.fenceDone(this.hart, requested);
  }

  private fenceIfAsked(): void {
    if (Atomics.and(this.words, this.attention, ~ATTENTION_FENCE) & ATTENTION_FENCE) this.fence();
  }

  // ---- requests to the I/O thread -------------------------------------------------------------------
  private request(kind: number): void {
    this.control.post(this.hart, kind);
    if (!this.control.awaitAnswer(this.hart)) throw new MachineEnded();
    // Lines the request itself changed (a PLIC claim, an IPI to itself) apply before the next instruction.
    this.mergeInterrupts();
  }

  private mmioRead(paddr: number, size: AccessSize): number | bigint | undefined {
    const control = this.control, hart = this.hart;
    control.setAddress(hart, paddr);
    control.setSize(hart, size);
    this.request(REQUEST_MMIO_READ);
    if (control.result(hart) !== 0) return undefined;
    const value = control.value(hart);
    return size === 8 ? value : Number(value);
  }

  private mmioWrite(paddr: number, size: AccessSize, value: number | bigint): boolean {
    const control = this.control, hart = this.hart;
    control.setAddress(hart, paddr);
    control.setSize(hart, size);
    control.setValue(hart, BigInt(value));
    this.request(REQUEST_MMIO_WRITE);
    return control.result(hart) === 0;
  }

  /**
   * An ECALL from S-mode: the I/O thread serves it on this hart's registers (in the shared
   * memory) while this thread waits. A remote fence returns only once every target has fenced.
   */
  private hypercall(): void {
    const control = this.control, hart = this.hart;
    this.request(REQUEST_HYPERCALL);
    let waitFor = control.fenceWait(hart);
    while (waitFor !== 0) {
      const target = 31 - Math.clz32(waitFor);
      const requested = control.fenceRequested(target);
      while (!control.awaitFence(target, requested, 1)) {
        if (control.exiting) throw new MachineEnded();
        // Two harts fencing each other at once: each performs the other's request while it waits.
        this.fenceIfAsked();
      }
      waitFor &= ~(1 << target);
    }
    this.fenceIfAsked();
  }

  private edge(edge: number): void {
    this.control.setArgument(this.hart, edge);
    this.request(REQUEST_HSM_EDGE);
  }

  publishStats(): void {
    const jit = this.cpu.jit?.stats;
    const ns = (ticks: number) => ticks * NS_PER_TICK;
    const stats: HartThreadStats = {
      pagesTranslated: jit?.translations ?? 0,
      instructionsTranslated: jit?.instructions ?? 0,
      modules: jit?.modules ?? 0,
      wasmBytes: jit?.wasmBytes ?? 0,
      failures: jit?.failures ?? 0,
      translateMs: jit?.translateMs ?? 0,
      compileMs: jit?.compileMs ?? 0,
      cacheHits: jit?.cacheHits ?? 0,
      cacheMisses: jit?.cacheMisses ?? 0,
      cacheStores: jit?.cacheStores ?? 0,
      cacheEvictions: jit?.cacheEvictions ?? 0,
      cacheRejected: jit?.cacheRejected ?? 0,
      sleeps: this.counts.sleeps,
      attentionExits: this.counts.attentionExits,
      runningNs: ns(this.time.running),
      stealNs: ns(this.time.steal),
      haltedNs: ns(this.time.halted),
      suspendedNs: ns(this.time.suspended),
      parkedNs: ns(this.time.parked),
      wrsParks: this.counts.wrsParks,
      wrsTimeouts: this.counts.wrsTimeouts,
      wrsWaitNs: ns(this.wrsWaitTicks),
      pauseExits: this.counts.pauseExits,
      directedYields: this.counts.directedYields,
    };
    this.control.publishStats(this.hart, stats);
  }
}
