// One hart on a thread of its own: what each hart thread of a VirtMachine runs (the host adapter's
// worker entry calls runHartThread; src/host/node/hart-worker.ts for Node). The hart's engine
// instance shares the machine's memory with every other hart; everything the hart cannot do alone
// (device MMIO, hypercalls, HSM edges) goes to the I/O thread through the mailbox of hart-control.ts.
//
// The loop, as a table of what the hart does in each HSM state (SBI spec §9):
//   STARTED          run a slice; after WFI, sleep until an interrupt is pending and enabled
//   START_PENDING    enter the kernel at hart_start's address, then complete start-done
//   STOP_PENDING     complete stop-done          SUSPEND_PENDING   complete suspend-done
//   SUSPENDED        sleep until an interrupt is pending and enabled, then complete the resume
//   STOPPED          sleep until the I/O thread changes the state
// Every pass first takes the attention bits other threads set: interrupt lines to merge into mip,
// a remote fence to perform, an HSM change, the machine's end. Sleeping is Atomics.wait on the
// attention word, so an idle hart costs its host thread nothing.
import { Cpu, ExitReason, type CpuOptions, type AccessSize, type PhysicalBus } from "../cpu/cpu.ts";
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

/** Everything a hart thread needs, as plain data a host can post to a new thread. */
export interface HartThreadInit {
  /** The shared-memory engine (build/cpu-shared.wasm) and the machine's shared memory. */
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  harts: number;
  hartIndex: number;
  ramSize: number;
  ramBase: number;
  /** Paravirtual boot (the host serves SBI); else OpenSBI runs in the guest's M-mode. */
  paravirtual: boolean;
  jit: CpuOptions["jit"];
}

/** Instructions per slice: a slice ends early anyway whenever another thread asks for attention. */
const SLICE_INSTRUCTIONS = 1_000_000;
/** A conservative guess of guest speed, to end a slice near this hart's next timer deadline. */
const INSTRUCTIONS_PER_TICK = 30;
const TICKS_PER_MS = 10_000;
/** Longest sleep without a deadline: the hart looks at the exit flag at least this often. */
const MAX_SLEEP_MS = 1000;
const NEVER = 0xffff_ffff_ffff_ffffn;
const MENVCFG_STCE = 1n << 63n;

/** Thrown out of the engine's imports when the machine ends while the hart waits for an answer. */
class MachineEnded extends Error {}

/** Runs hart `init.hartIndex` until the machine ends. `readTime` is the machine's one timebase. */
export function runHartThread(init: HartThreadInit, readTime: () => number): void {
  try {
    new HartThread(init, readTime).loop();
  } catch (error) {
    if (!(error instanceof MachineEnded)) throw error;
  }
}

class HartThread {
  private readonly cpu: Cpu;
  private readonly control: HartControl;
  private readonly hart: number;
  private readonly words: Int32Array;
  private readonly attention: number;
  private readonly mipWord: number;
  /** mip bits this thread takes from the I/O thread's lines (PLIC, CLINT) and the SBI timer. */
  private readonly hostOwned: number;
  private readonly paravirtual: boolean;
  private waitingForInterrupt = false;
  private readonly counts = { sleeps: 0, attentionExits: 0 };
  /**
   * This hart's steal time so far, in ns: time it was runnable but kept from running. Nothing
   * measures it yet (0): the hart scheduler feeds it here, and the hart reports it to the guest
   * through updateStealTime before each slice.
   */
  stealSoFarNs = 0n;
  private readonly stealRecorder = new StealTimeRecorder();
  private readonly stealMemory: StealRecordMemory;

  constructor(init: HartThreadInit, private readonly readTime: () => number) {
    this.hart = init.hartIndex;
    this.paravirtual = init.paravirtual;
    this.control = new HartControl(init.control, init.harts);
    const bus: PhysicalBus = {
      load: (paddr, size) => this.mmioRead(paddr, size),
      store: (paddr, size, value) => this.mmioWrite(paddr, size, value),
    };
    this.cpu = new Cpu({
      module: init.module,
      memory: init.memory,
      layout: coreLayout({ harts: init.harts, ramSize: init.ramSize }),
      hartIndex: init.hartIndex,
      ramSize: init.ramSize,
      ramBase: init.ramBase,
      bus,
      hypercall: init.paravirtual ? () => this.hypercall() : undefined,
      readTime,
      jit: init.jit,
      adopt: true,
    });
    this.words = new Int32Array(init.memory.buffer);
    this.attention = this.cpu.attentionAddress >> 2;
    this.mipWord = (this.cpu.hartBase + L.HART_STATE + L.S_MIP) >> 2;
    this.hostOwned = MIP_MEIP | MIP_SEIP | MIP_MTIP | MIP_MSIP | (init.paravirtual ? MIP_STIP : 0);
    this.stealMemory = ramRecordMemory(this.cpu.ram, init.ramBase);
  }

  loop(): void {
    const control = this.control, hart = this.hart;
    for (;;) {
      // Running (as far as remote fences are concerned) from before the attention bits are taken.
      control.setRunning(hart, true);
      const bits = Atomics.exchange(this.words, this.attention, 0);
      if (bits & ATTENTION_EXIT || control.exiting) return;
      if (bits & ATTENTION_FENCE) this.fence();
      this.mergeInterrupts();
      switch (control.hsm(hart)) {
        case SBI_HSM_STATE_STARTED:
          if (this.waitingForInterrupt) {
            if (!this.interruptPending()) {
              this.sleep(this.nextDeadline());
              continue;
            }
            this.waitingForInterrupt = false;
          }
          this.runSlice();
          break;
        case SBI_HSM_STATE_START_PENDING: {
          const { addr, opaque } = control.start(hart);
          enterSupervisor(this.cpu, hart, addr, opaque);
          this.waitingForInterrupt = false;
          this.edge(EDGE_START_DONE);
          break;
        }
        case SBI_HSM_STATE_STOP_PENDING:
          this.edge(EDGE_STOP_DONE);
          break;
        case SBI_HSM_STATE_SUSPEND_PENDING:
          this.edge(EDGE_SUSPEND_DONE);
          break;
        case SBI_HSM_STATE_SUSPENDED:
          if (!this.interruptPending()) {
            this.sleep(this.nextDeadline());
            continue;
          }
          this.edge(EDGE_RESUME);
          // A non-retentive suspend resumes at its address, as hart_start would.
          if (control.result(hart) === 1) enterSupervisor(this.cpu, hart, control.value(hart), control.value2(hart));
          this.waitingForInterrupt = false;
          break;
        default: // STOPPED, and states only the I/O thread moves out of
          this.sleep(NEVER);
          continue;
      }
      this.publishStats();
    }
  }

  /**
   * The steal-time hook, called before each slice with the hart's steal time so far (ns) and
   * whether it is being descheduled (false before a slice: SBI spec §16.1 wants preempted clear
   * before the hart runs again). Writes the guest's SBI STA record, if the hart registered one,
   * from this thread, which owns the hart's view of memory; other harts may read the record
   * concurrently, which writeStealRecord's ordered stores allow for.
   */
  updateStealTime(stealNs: bigint, preempted: boolean): void {
    const addr = this.control.stealShmem(this.hart);
    const paddr = addr === undefined ? undefined : Number(addr);
    if (this.stealRecorder.update(this.stealMemory, paddr, stealNs, preempted)) this.cpu.ramWritten(paddr!, STA_SHMEM_SIZE);
  }

  private runSlice(): void {
    this.updateStealTime(this.stealSoFarNs, false);
    const now = this.readTime();
    const deadline = this.nextDeadline();
    let budget = SLICE_INSTRUCTIONS;
    if (deadline !== NEVER && deadline > BigInt(now)) {
      budget = Math.max(1000, Math.min(budget, Number(deadline - BigInt(now)) * INSTRUCTIONS_PER_TICK));
    }
    const reason = this.cpu.runUntilAttention(budget);
    if (reason === ExitReason.Wfi) this.waitingForInterrupt = true;
    else if (reason === ExitReason.Stop) this.counts.attentionExits++;
  }

  /** The earliest of this hart's SBI timer and (with Sstc enabled) stimecmp, in ticks; NEVER if none. */
  private nextDeadline(): bigint {
    let next = this.paravirtual ? this.control.timer(this.hart) : NEVER;
    if ((this.cpu.getState(L.S_MENVCFG) & MENVCFG_STCE) !== 0n) {
      const stimecmp = this.cpu.getState(L.S_STIMECMP);
      if (stimecmp < next) next = stimecmp;
    }
    return next;
  }

  /** Sleeps until another thread sets an attention bit, or until the deadline (in ticks). */
  private sleep(deadline: bigint): void {
    let ms = MAX_SLEEP_MS;
    if (deadline !== NEVER) ms = Math.min(ms, Math.max(0, Number(deadline - BigInt(this.readTime())) / TICKS_PER_MS));
    if (ms <= 0) return;
    this.counts.sleeps++;
    this.control.setRunning(this.hart, false);
    Atomics.wait(this.words, this.attention, 0, ms);
  }

  /** Interrupts pending and enabled in mie: what ends WFI and a suspension (privileged ISA 3.3.3). */
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

  private fenceIfAsked(): void {
    if (Atomics.and(this.words, this.attention, ~ATTENTION_FENCE) & ATTENTION_FENCE) this.fence();
  }

  private edge(edge: number): void {
    this.control.setArgument(this.hart, edge);
    this.request(REQUEST_HSM_EDGE);
  }

  private publishStats(): void {
    const jit = this.cpu.jit?.stats;
    const stats: HartThreadStats = {
      pagesTranslated: jit?.translations ?? 0,
      instructionsTranslated: jit?.instructions ?? 0,
      modules: jit?.modules ?? 0,
      wasmBytes: jit?.wasmBytes ?? 0,
      failures: jit?.failures ?? 0,
      translateMs: jit?.translateMs ?? 0,
      compileMs: jit?.compileMs ?? 0,
      sleeps: this.counts.sleeps,
      attentionExits: this.counts.attentionExits,
      stealNs: Number(this.stealRecorder.lastStealNs),
    };
    this.control.publishStats(this.hart, stats);
  }
}
