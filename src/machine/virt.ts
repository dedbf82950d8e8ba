// The `virt` machine that boots Linux: 1..32 RV64GC harts, RAM at 0x80000000, PLIC, 16550 UART,
// goldfish RTC and the SiFive test finisher at QEMU virt's addresses, and two boot paths:
//
// - paravirtual (default): the hypervisor is the SBI implementation, as KVM is. The kernel
//   starts directly in S-mode with a0 = hart id and a1 = the device tree; ECALLs from S-mode
//   leave the core and are served by src/sbi. No firmware runs in the guest.
// - firmware: Debian's OpenSBI (fw_dynamic) runs in emulated M-mode with an emulated CLINT and
//   then enters the same kernel, as on real hardware.
import { portableClock, type HostClock } from "../platform/clock.ts";
import {
  Cpu,
  timebaseTicks,
  translatorCountersOf,
  resolveJitOptions,
  ExitReason,
  MENVCFG_STCE,
  PRIV_S,
  TIMEBASE_FREQUENCY,
  type CpuOptions,
  type CpuState,
  type PhysicalBus,
  type TranslatorCounters,
} from "../cpu/cpu.ts";
import * as L from "../cpu/layout.ts";
import { coreLayout, MAX_HARTS } from "../cpu/core-layout.ts";
import { MIP_SEIP, MIP_SSIP, MIP_STIP } from "../cpu/interrupts.ts";
import {
  CSR_MCOUNTEREN,
  CSR_MEDELEG,
  CSR_MENVCFG,
  CSR_MIDELEG,
  CSR_MIE,
  CSR_MIP,
  CSR_MSTATUS,
  CSR_SATP,
  CSR_SCOUNTEREN,
  MSTATUS_FS_INITIAL,
} from "../cpu/csr-numbers.ts";
import { Bus } from "./bus.ts";
import {
  bytesToHex,
  hex64,
  SnapshotError,
  stateArray,
  stateBool,
  stateBytes,
  stateInt,
  stateNumber,
  stateObject,
  stateRecord,
  stateU64,
  type VersionedState,
} from "../platform/persist.ts";
import { Plic } from "../devices/plic.ts";
import { Uart16550 } from "../devices/uart16550.ts";
import { GoldfishRtc } from "../devices/goldfish-rtc.ts";
import { VmGenId } from "../devices/vmgenid.ts";
import { defaultEntropySource, type EntropySource } from "../virtio/rng/backend.ts";
import { SysconTest, type FinisherEvent } from "../devices/syscon-test.ts";
import { Clint } from "../devices/clint.ts";
import * as MAP from "../platform/memory-map.ts";
import { buildVirtDeviceTree } from "../platform/device-tree.ts";
import { parseKernelImage, planBootLayout, BootImageError, FDT_REGION_SIZE, type BootLayout } from "../platform/boot-image.ts";
import {
  SbiDispatcher,
  standardExtensions,
  hsmTransition,
  type HsmEvent,
  type HsmState,
  type RemoteFence,
  type SbiHost,
  SBI_SUCCESS,
  SBI_HSM_STATE_STARTED,
  SBI_HSM_STATE_STOPPED,
  SBI_HSM_STATE_START_PENDING,
  SBI_HSM_STATE_STOP_PENDING,
  SBI_HSM_STATE_SUSPENDED,
  SBI_HSM_STATE_SUSPEND_PENDING,
  SBI_HSM_SUSPEND_NON_RET_DEFAULT,
  STA_SHMEM_SIZE,
  StealTimeRecorder,
  ramRecordMemory,
  type StealRecordMemory,
} from "../sbi/index.ts";
import { PanicDetector } from "./panic-detector.ts";
import type { VirtioDevice } from "../virtio/types.ts";
import { VirtioMmioTransport, type VirtioMmioOptions } from "../virtio/transport/mmio.ts";
import { ramGuestMemory } from "../virtio/memory.ts";
import { VirtioConsoleDevice } from "../virtio/console/device.ts";
import { virtioMmioRegisterName } from "../virtio/transport/mmio-registers.ts";
import { collectLedger, type Ledger } from "./ledger.ts";
import { enterSupervisor } from "./hart-entry.ts";
import { NEVER, nextTimerEvent, sliceUntil } from "./hart-timing.ts";
import {
  ATTENTION_EXIT,
  ATTENTION_FENCE,
  ATTENTION_HSM,
  ATTENTION_INTERRUPT,
  ATTENTION_YIELD,
  MAX_HOST_THREADS,
  EDGE_RESUME,
  EDGE_START_DONE,
  EDGE_STOP_DONE,
  EDGE_SUSPEND_DONE,
  HartControl,
  MAILBOX_POSTED,
  REQUEST_HSM_EDGE,
  REQUEST_HYPERCALL,
  REQUEST_MMIO_READ,
  REQUEST_MMIO_WRITE,
  SOFT_CLEAR,
  SOFT_SET,
  type HartThreadStats,
} from "./hart-control.ts";
import type { HartThreadInit } from "./hart-thread.ts";

/** Exceptions the hypervisor hands to the guest kernel: all but ECALL from S (served here) and from M. */
const MEDELEG_PARAVIRT = 0xb1ff;
const MIDELEG_S_INTERRUPTS = MIP_SSIP | MIP_STIP | MIP_SEIP;
/** cycle, time and instret readable from U-mode, as OpenSBI leaves scounteren: Linux only rewrites
 * it in its SBI PMU driver, so without SBI PMU the vDSO's rdtime depends on this. */
const SCOUNTEREN_CY_TM_IR = 0x7n;
/** fw_dynamic_info (OpenSBI docs/firmware/fw_dynamic.md): magic "OSBI", version 2, next mode S. */
const FW_DYNAMIC_INFO_MAGIC = 0x4942534fn;
const FW_DYNAMIC_INFO_VERSION = 2n;
const FW_DYNAMIC_NEXT_MODE_S = 1n;
/** Instructions per slice: long enough to amortise the call into wasm, short enough for timer latency. */
const SLICE_INSTRUCTIONS = 400_000;
/**
 * With several harts on one thread, a hart spinning on a lock or waiting for an IPI's answer holds
 * up the others for its whole slice, so slices are shorter (SBI calls end a slice anyway, which
 * hands the thread to the next hart right after an IPI is sent).
 */
const SMP_SLICE_INSTRUCTIONS = 50_000;

export type BootPath = "paravirtual" | "firmware";

/** Pause-loop exiting's default window, in instructions (Intel's default ple_window is 4096 cycles). */
export const DEFAULT_PAUSE_LOOP_WINDOW = 4096;

/**
 * The host's threads for harts (src/host/node/hart-threads.ts for Node): each started thread runs
 * runHartThread (src/machine/hart-thread.ts) with the init it was given.
 */
export interface HartThreadHost {
  /** Timebase ticks since the host's origin: one clock, the same on every thread the host starts. */
  readTime(): number;
  start(init: HartThreadInit): HartThreadHandle;
}

export interface HartThreadHandle {
  /** Settles when the thread's runHartThread returned (resolves) or threw (rejects). */
  readonly finished: Promise<void>;
  terminate(): void;
}

export interface VirtMachineOptions {
  module: WebAssembly.Module;
  /**
   * Harts (1..32, default 1). Paravirtual boot starts hart 0 at the kernel and leaves the others
   * STOPPED until SBI HSM hart_start; firmware boot starts every hart at the firmware's entry.
   */
  harts?: number;
  /**
   * Run each hart on a thread of its own (the host's), all on one shared memory, with the device
   * models on the calling (I/O) thread; `module` must then be the shared-memory engine
   * (build/cpu-shared.wasm). Without it, the calling thread runs every hart in round robin.
   */
  hartThreads?: HartThreadHost;
  /**
   * With hartThreads: how many host threads run the harts (1..harts, default: one per hart). With
   * fewer threads than harts, each thread schedules several harts in turn (hart h on thread h mod M).
   */
  hostThreads?: number;
  /** Offer Zawrs (WRS.NTO/STO) in the device tree, so that Linux waits on locks with it; default true. */
  zawrs?: boolean;
  /**
   * Pause-loop exiting: a hart whose PAUSEs keep coming within PLE_GAP instructions of each
   * other for this many instructions gives up its slice to another hart of its thread. 0 = off;
   * default DEFAULT_PAUSE_LOOP_WINDOW with several harts, off with one.
   */
  pauseLoopWindow?: number;
  ramSize: number;
  /** The kernel Image to boot; not needed with `fromSnapshot`. */
  kernel?: Uint8Array;
  /**
   * Build the machine without boot images or entry state: restoreState() follows and supplies
   * them (a snapshot's RAM is loaded by the caller). Guest RAM starts all zero.
   */
  fromSnapshot?: boolean;
  /** The boot path, for a machine built fromSnapshot (default: "firmware" when `firmware` is given). */
  bootPath?: BootPath;
  initrd?: Uint8Array;
  bootargs: string;
  /** The OpenSBI fw_dynamic binary for the firmware boot path. */
  firmware?: Uint8Array;
  /** Supervisor timer compare (Sstc): the guest programs stimecmp directly instead of calling SBI. */
  sstc?: boolean;
  /** Guest console output (UART and SBI debug console). */
  output: (bytes: Uint8Array) => void;
  /** Wall-clock time in nanoseconds since the epoch, for the RTC. */
  wallClockNs?: () => bigint;
  /** Randomness for the VM generation ID; default Web Crypto's getRandomValues. */
  entropy?: EntropySource;
  /** Virtio devices, each on its own virtio-mmio slot in this order (slot 0 at 0x10001000). */
  virtio?: readonly VirtioDevice[];
  /** Offer packed virtqueues (VIRTIO_F_RING_PACKED) as well as split ones; default true. */
  packedVirtqueues?: boolean;
  /** Per-device transport settings (interrupt coalescing), keyed by the device objects of `virtio`. */
  virtioTransport?: ReadonlyMap<VirtioDevice, Pick<VirtioMmioOptions, "coalesce">>;
  /**
   * Where host console input goes: the 16550 (`ttyS0`, default) or a virtio-console (`hvc0`) that
   * the machine adds in the first virtio slot. Output of both always reaches `output`.
   */
  console?: "uart" | "hvc";
  /**
   * With console "hvc": the terminal's size, which makes the virtio-console offer
   * VIRTIO_CONSOLE_F_SIZE (change it later with `hvc.setSize()`; the guest's hvc0 follows).
   */
  consoleSize?: { cols: number; rows: number };
  /** The RISC-V -> wasm translator: see CpuOptions.jit. */
  jit?: CpuOptions["jit"];
  /**
   * The host's clock and timers: guest time (the 10 MHz timebase), sleeping in WFI, and yielding to
   * the host between execution slices. Default: portableClock() (millisecond timers).
   */
  clock?: HostClock;
  /**
   * Describe SBI hart_suspend's two default types (retentive, non-retentive) as CPU idle states in
   * the device tree, for Linux's cpuidle-riscv-sbi driver. Default: true in paravirtual boot,
   * where Parley serves hart_suspend; false in firmware boot, where OpenSBI is the SBI
   * implementation and, on a generic platform like this one, adds no idle states (nor does QEMU
   * virt). OpenSBI would pass ours on, but its generic non-retentive suspend resumes through its
   * warm boot, which disables the hart's S-mode PLIC context: Debian's guest then loses device
   * interrupts (its console stalls), so do not turn this on with firmware.
   */
  idleStates?: boolean;
}

export type MachineExit =
  | { reason: "poweroff"; code: number }
  | { reason: "reboot" }
  | { reason: "panic" }
  | { reason: "halted"; message: string }
  /** A hart's thread failed (a bug in Parley, not the guest's doing). */
  | { reason: "failed"; message: string }
  | { reason: "stopped" }
  /** The guest was migrated and runs on at the destination. */
  | { reason: "migrated" };

/** VirtMachine.saveState(): 64-bit values as "0x…" hex, byte strings as hex. */
export interface VirtMachineState {
  version: 1;
  harts: number;
  ramSize: number;
  bootPath: BootPath;
  /** Virtio device IDs by slot, to refuse a restore onto other devices. */
  virtioDevices: number[];
  /** Guest time (timebase ticks) when the machine was paused: the restored clock continues from it. */
  guestTime: number;
  deviceTree: string;
  cpus: CpuState[];
  hsm: number[];
  /** hart_start's entry for a hart whose thread had not started it yet (harts on threads). */
  start: ({ addr: string; opaque: string } | null)[];
  sbiTimers: string[];
  waitingForInterrupt: boolean[];
  pendingResume: ({ addr?: string; opaque?: string } | null)[];
  stealShmem: (string | null)[];
  stealRecorders: VersionedState[];
  hartCounters: HartCounters[];
  sbiConsoleBytes: { in: number; out: number };
  consoleInput: string;
  plic: VersionedState;
  uart: VersionedState;
  rtc: VersionedState;
  clint: VersionedState | null;
  vmgenid: VersionedState;
  virtio: VersionedState[];
}

/** What a hart does once its current slice has ended: an HSM edge the host completes there. */
interface PendingResume {
  /** Non-retentive suspend: wake at resumeAddr as hart_start would; retentive: after the ECALL. */
  entry?: { addr: bigint; opaque: bigint };
}

/** Per-hart counters for the ledger; cheap (a few increments per SBI call). */
export interface HartCounters {
  /** SBI calls this hart made. */
  sbiCalls: number;
  /** IPIs other harts (or itself) sent to this hart through SBI. */
  ipisReceived: number;
  /** Remote fences other harts asked this hart to perform through SBI RFENCE. */
  remoteFences: number;
  /** MMIO accesses this hart made (each one an exit to the device models). */
  mmioExits: number;
  /** Steal time: ns the hart was runnable but kept from running (what SBI STA reports to the guest). */
  stealNs: number;
  /** Times the hart entered SBI hart_suspend (retentive or not) and the call was accepted. */
  suspends: number;
}

export class VirtMachine implements SbiHost {
  /** Hart 0: the boot hart, whose Cpu also serves host-side RAM access (DMA, boot images). */
  readonly cpu: Cpu;
  /** Every hart, index = hart id. */
  readonly cpus: readonly Cpu[];
  readonly hartCounters: readonly HartCounters[];
  readonly bus = new Bus();
  readonly plic: Plic;
  readonly uart: Uart16550;
  readonly rtc: GoldfishRtc;
  readonly finisher: SysconTest;
  /** The VM generation ID: regenerate() when this machine becomes a copy (clone, snapshot restore). */
  readonly vmgenid: VmGenId;
  readonly clint: Clint | undefined;
  readonly sbi: SbiDispatcher | undefined;
  /** The virtio-mmio transports, slot i at virtioMmioBase(i) with PLIC source virtioIrq(i). */
  readonly virtio: VirtioMmioTransport[] = [];
  /** The virtio-console carrying hvc0 when the machine's console is "hvc". */
  readonly hvc: VirtioConsoleDevice | undefined;
  readonly bootPath: BootPath;
  /** The flattened device tree the guest booted with (in a restored machine: the snapshot's). */
  get deviceTree(): Uint8Array {
    return this.bootDeviceTree;
  }
  private bootDeviceTree: Uint8Array = new Uint8Array(0);
  readonly clock: HostClock;
  readonly startedAt: number;
  /** When run() returned: the end of the ledger's wall time. */
  stoppedAt: number | undefined;
  /** PLIC source -> the device wired to it, for the ledger's interrupts by source. */
  readonly interruptSources = new Map<number, string>();
  /** Bytes through the SBI debug console (legacy and DBCN), for the ledger. */
  readonly sbiConsoleBytes = { in: 0, out: 0 };

  private exit: MachineExit | undefined;
  private readonly sbiTimerDeadlines: bigint[];
  /** Each hart's HSM state (SBI spec §9); changed only through hsmTransition (the spec's table). */
  private readonly hsm: HsmState[];
  /** A hart whose last slice ended in WFI: it is not run until an interrupt is pending for it. */
  private readonly waitingForInterrupt: boolean[];
  private readonly pendingResume: (PendingResume | undefined)[];
  /** Where the next round robin starts, so no hart is always first. */
  private nextHart = 0;
  private wake: (() => void) | undefined;
  private readonly panic = new PanicDetector();
  private panicSince: number | undefined;
  private readonly consoleInput: number[] = [];
  /** With hartThreads: the shared control block, the attention words, and the hart being served. */
  private readonly control: HartControl | undefined;
  private readonly attentionWords: Int32Array | undefined;
  private servingHart = 0;
  /** Host threads running the harts (1 without hartThreads: the calling thread). */
  readonly hostThreads: number;
  /** SBI STA: each hart's steal-time record (guest physical), without hartThreads (else in `control`). */
  private readonly stealShmem: (number | undefined)[];
  private readonly stealRecorders: StealTimeRecorder[];
  private stealMemory: StealRecordMemory | undefined;
  /** Round robin: since when (clock ms) a hart has been runnable but waiting for the thread. */
  private readonly waitingSince: (number | undefined)[];
  /** The host's timebase (ticks), and how far guest time is behind it (see pause()). */
  private readonly hostTime: () => number;
  private timeOffsetTicks = 0;
  /** While paused: the guest time at which the clock stopped. */
  private frozenGuestTime: number | undefined;
  /** The pause protocol: requested, and who waits for the harts to have stopped. */
  private pauseRequested = false;
  private hartsStopped: (() => void) | undefined;
  private resumeRun: (() => void) | undefined;
  private running = false;
  /** Pauses so far, and the host time they took (ms), for the ledger. */
  readonly pauseCounters = { pauses: 0, pausedMs: 0 };
  private pausedSince = 0;

  constructor(private readonly options: VirtMachineOptions) {
    const harts = options.harts ?? 1;
    if (!Number.isInteger(harts) || harts < 1 || harts > MAX_HARTS) throw new RangeError(`harts must be 1..${MAX_HARTS}, got ${harts}`);
    this.clock = options.clock ?? portableClock();
    this.startedAt = this.clock.now();
    this.bootPath = options.bootPath ?? (options.firmware ? "firmware" : "paravirtual");
    const sstc = options.sstc ?? true;
    const threads = options.hartThreads;
    const hostTime = threads ? () => threads.readTime() : timebaseTicks(this.clock);
    this.hostTime = hostTime;
    // Guest time: the host's timebase less the time the machine spent paused (or the offset that
    // continues a snapshot's clock); frozen while paused. See pause().
    const readTime = () => this.frozenGuestTime ?? hostTime() - this.guestTimeOffset;
    // One hart keeps the Cpu's own default layout and memory: the path every single-hart run
    // took before there were several. Several harts share one memory, shared between threads
    // when each hart has its own.
    const layout = harts === 1 && !threads ? undefined : coreLayout({ harts, ramSize: options.ramSize });
    const memory = layout ? new WebAssembly.Memory({ initial: layout.memoryPages, maximum: layout.memoryPages, shared: !!threads }) : undefined;
    this.cpus = Array.from({ length: harts }, (_, hartIndex) => {
      try {
        return new Cpu({
          module: options.module,
          ramSize: options.ramSize,
          ramBase: MAP.RAM_BASE,
          bus: this.countingBus(hartIndex),
          readTime,
          sstc,
          hypercall: this.bootPath === "paravirtual" ? (cpu) => this.onHypercall(cpu) : undefined,
          // With threads these Cpus only prepare the harts and serve as register views during
          // hypercalls; each hart's thread runs it with an engine (and translator) of its own.
          jit: threads ? false : options.jit,
          layout,
          hartIndex,
          memory,
        });
      } catch (error) {
        if (threads && error instanceof WebAssembly.LinkError) {
          throw new Error(`harts on threads of their own need the shared-memory engine (build/cpu-shared.wasm): ${error.message}`);
        }
        throw error;
      }
    });
    if (threads) {
      this.attentionWords = new Int32Array(memory!.buffer);
    } else {
      // Round robin on this thread: a pause loop ends the hart's slice too (the next hart runs).
      for (const cpu of this.cpus) cpu.setState(L.S_PLE_WINDOW, BigInt(this.pauseLoopWindow));
    }
    this.cpu = this.cpus[0];
    this.hartCounters = this.cpus.map(() => ({ sbiCalls: 0, ipisReceived: 0, remoteFences: 0, mmioExits: 0, stealNs: 0, suspends: 0 }));
    this.stealShmem = this.cpus.map(() => undefined);
    this.stealRecorders = this.cpus.map(() => new StealTimeRecorder());
    this.waitingSince = this.cpus.map(() => undefined);
    this.sbiTimerDeadlines = this.cpus.map(() => NEVER);
    this.waitingForInterrupt = this.cpus.map(() => false);
    this.pendingResume = this.cpus.map(() => undefined);
    // Paravirtual: hart 0 enters the kernel, the others wait for hart_start. Firmware: all run it.
    this.hsm = this.cpus.map((_, hart) => (hart === 0 || this.bootPath === "firmware" ? SBI_HSM_STATE_STARTED : SBI_HSM_STATE_STOPPED));
    const hostThreads = options.hostThreads ?? harts;
    if (!Number.isInteger(hostThreads) || hostThreads < 1 || hostThreads > Math.min(harts, MAX_HOST_THREADS)) {
      throw new RangeError(`hostThreads must be 1..${Math.min(harts, MAX_HOST_THREADS)} (at most one per hart), got ${hostThreads}`);
    }
    this.hostThreads = threads ? hostThreads : 1;
    if (threads) this.control = HartControl.create(harts, (hart) => this.hsm[hart], (hart) => hart % hostThreads);
    const output = (bytes: Uint8Array) => this.consoleOutput(bytes);
    this.plic = new Plic(this.cpus.map((cpu) => this.wakingInterruptTarget(cpu)), { sources: MAP.PLIC_NUM_SOURCES });
    this.uart = new Uart16550({ output, irq: (on) => this.plic.setLevel(MAP.UART0_IRQ, on) });
    const wallClockNs = options.wallClockNs ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.rtc = new GoldfishRtc({ now: wallClockNs, irq: (on) => this.plic.setLevel(MAP.RTC_IRQ, on) });
    this.finisher = new SysconTest((event) => this.onFinisher(event));
    this.vmgenid = new VmGenId({ entropy: options.entropy ?? defaultEntropySource, irq: (on) => this.plic.setLevel(MAP.VMGENID_IRQ, on) });
    this.mapPlatformDevices();
    if (options.console === "hvc") this.hvc = new VirtioConsoleDevice({ output, name: "virtio-console0", size: options.consoleSize });
    const virtioDevices = [...(this.hvc ? [this.hvc] : []), ...(options.virtio ?? [])];
    this.attachVirtio(virtioDevices);
    if (this.bootPath === "firmware") {
      this.clint = new Clint(
        this.cpus.map((cpu) => this.wakingInterruptTarget(cpu)),
        () => this.cpu.readTime(),
      );
      this.bus.map(MAP.CLINT_BASE, MAP.CLINT_SIZE, this.clint);
    } else {
      this.sbi = new SbiDispatcher(standardExtensions(), this);
    }
    if (options.fromSnapshot) {
      // Guest time stays frozen until the restored machine is resumed (see restoreState).
      this.pauseRequested = true;
      this.control?.requestPause();
      this.frozenGuestTime = 0;
      this.pausing = Promise.resolve();
      return;
    }
    const { layout: bootLayout, deviceTree } = this.placeBootImages(sstc, virtioDevices.length);
    this.bootDeviceTree = deviceTree;
    if (this.bootPath === "firmware") this.enterFirmware(bootLayout);
    else this.enterKernel(bootLayout, sstc);
  }

  /** The bus as one hart sees it, counting that hart's MMIO exits (with threads the I/O thread counts them). */
  private countingBus(hart: number): PhysicalBus {
    return {
      load: (paddr, size) => {
        this.hartCounters[hart].mmioExits++;
        return this.bus.load(paddr, size);
      },
      store: (paddr, size, value) => {
        this.hartCounters[hart].mmioExits++;
        return this.bus.store(paddr, size, value);
      },
    };
  }

  /**
   * Guest RAM for host-side code that writes or releases it directly (the balloon's page release):
   * `ramWritten` drops decoded code of the range the right way for this machine's harts.
   */
  get hostRam(): { memory: WebAssembly.Memory; ramBase: number; ramSize: number; ramWasmBase: number; ramWritten(paddr: number, length: number): void } {
    const cpu = this.cpu;
    return { memory: cpu.memory, ramBase: cpu.ramBase, ramSize: cpu.ramSize, ramWasmBase: cpu.ramWasmBase, ramWritten: (paddr, length) => this.hostWroteRam(paddr, length) };
  }

  get hartCount(): number {
    return this.cpus.length;
  }

  /**
   * The PLIC's (and CLINT's) view of a hart. Device interrupts can be raised from host events
   * (I/O completions, incoming frames, input) while every hart sleeps in WFI: an asserted line
   * must end that sleep at once.
   */
  private wakingInterruptTarget(cpu: Cpu) {
    const control = this.control;
    if (control) {
      // The hart's own thread merges the line into its mip (it is mip's only writer).
      return {
        setPendingInterrupt: (mask: number, asserted: boolean) => {
          control.setLine(cpu.hartIndex, mask, asserted);
          this.notifyHart(cpu.hartIndex, ATTENTION_INTERRUPT);
        },
      };
    }
    return {
      setPendingInterrupt: (mask: number, asserted: boolean) => {
        cpu.setPendingInterrupt(mask, asserted);
        if (asserted) this.wake?.();
      },
    };
  }

  private mapPlatformDevices(): void {
    this.bus.map(MAP.PLIC_BASE, MAP.PLIC_SIZE, this.plic);
    this.bus.map(MAP.UART0_BASE, MAP.UART0_SIZE, this.uart);
    this.bus.map(MAP.RTC_BASE, MAP.RTC_SIZE, this.rtc);
    this.bus.map(MAP.TEST_BASE, MAP.TEST_SIZE, this.finisher);
    this.bus.map(MAP.VMGENID_BASE, MAP.VMGENID_SIZE, this.vmgenid);
    this.interruptSources.set(MAP.UART0_IRQ, this.uart.name);
    this.interruptSources.set(MAP.RTC_IRQ, this.rtc.name);
    this.interruptSources.set(MAP.VMGENID_IRQ, this.vmgenid.name);
  }

  /** Each virtio device on its own virtio-mmio slot, in order, with its PLIC source. */
  private attachVirtio(devices: readonly VirtioDevice[]): void {
    if (devices.length > MAP.VIRTIO_MMIO_SLOTS) {
      throw new RangeError(`at most ${MAP.VIRTIO_MMIO_SLOTS} virtio devices fit the machine's virtio-mmio slots, got ${devices.length}`);
    }
    const guestMemory = ramGuestMemory(this.cpu.ram, MAP.RAM_BASE, (paddr, length) => this.hostWroteRam(paddr, length));
    devices.forEach((device, slot) => {
      const transport = new VirtioMmioTransport({
        device,
        memory: guestMemory,
        irq: (on) => this.plic.setLevel(MAP.virtioIrq(slot), on),
        offerPacked: this.options.packedVirtqueues ?? true,
        coalesce: this.options.virtioTransport?.get(device)?.coalesce,
        clock: this.clock,
      });
      this.virtio.push(transport);
      this.bus.map(MAP.virtioMmioBase(slot), MAP.VIRTIO_MMIO_SIZE, transport, { registerName: virtioMmioRegisterName });
      this.interruptSources.set(MAP.virtioIrq(slot), transport.name);
    });
  }

  /** Lays out kernel, initrd and device tree in RAM (planBootLayout) and writes them there. */
  private placeBootImages(sstc: boolean, virtioSlots: number): { layout: BootLayout; deviceTree: Uint8Array } {
    const options = this.options;
    if (!options.kernel) throw new BootImageError("no kernel to boot (a machine built fromSnapshot is restored, not booted)");
    const kernel = options.kernel;
    const header = parseKernelImage(kernel);
    const isa = ["i", "m", "a", "f", "d", "c", "zicntr", "zicsr", "zifencei", "zihintpause"];
    if (options.zawrs ?? true) isa.push("zawrs");
    if (sstc) isa.push("sstc");
    const dtConfig = (initrd?: { start: number; end: number }) => ({
      harts: this.hartCount,
      ramBase: MAP.RAM_BASE,
      ramSize: options.ramSize,
      isaExtensions: isa,
      timebaseFrequency: TIMEBASE_FREQUENCY,
      bootargs: options.bootargs,
      initrd,
      stdoutPath: "uart" as const,
      virtio: Array.from({ length: virtioSlots }, (_, slot) => ({ slot })),
      withClint: this.bootPath === "firmware",
      mmuType: "riscv,sv57" as const,
      idleStates: options.idleStates ?? this.bootPath === "paravirtual",
    });
    // The tree's size does not depend on the initrd addresses, so a first build sizes the layout.
    const layout = planBootLayout({
      ramBase: MAP.RAM_BASE,
      ramSize: options.ramSize,
      kernel: header,
      initrdSize: options.initrd?.length,
      fdtSize: buildVirtDeviceTree(dtConfig(options.initrd ? { start: MAP.RAM_BASE, end: MAP.RAM_BASE + 1 } : undefined)).length,
    });
    const deviceTree = buildVirtDeviceTree(dtConfig(layout.initrd));
    this.cpu.writeRam(layout.kernel, kernel);
    if (options.initrd && layout.initrd) this.cpu.writeRam(layout.initrd.start, options.initrd);
    this.cpu.writeRam(layout.fdt, deviceTree);
    return { layout, deviceTree };
  }

  /**
   * Firmware boot: OpenSBI's fw_dynamic at the start of RAM, entered in M-mode with its info
   * block by every hart at once, a0 = its hart id (OpenSBI picks the boot hart by lottery and
   * parks the others until its own HSM starts them through CLINT IPIs).
   */
  private enterFirmware(layout: BootLayout): void {
    const firmware = this.options.firmware!;
    if (MAP.RAM_BASE + firmware.length > layout.kernel) {
      throw new BootImageError(`firmware of ${firmware.length} bytes overlaps the kernel at 0x${layout.kernel.toString(16)}`);
    }
    this.cpu.writeRam(MAP.RAM_BASE, firmware);
    const info = new DataView(new ArrayBuffer(48));
    [FW_DYNAMIC_INFO_MAGIC, FW_DYNAMIC_INFO_VERSION, BigInt(layout.kernel), FW_DYNAMIC_NEXT_MODE_S, 0n, 0n].forEach((v, i) =>
      info.setBigUint64(i * 8, v, true),
    );
    // In the device tree's own 2 MiB at the top of RAM, past any growth of the tree by OpenSBI.
    const infoAddr = layout.fdt + FDT_REGION_SIZE / 2;
    this.cpu.writeRam(infoAddr, new Uint8Array(info.buffer));
    this.cpus.forEach((cpu, hart) => {
      cpu.pc = BigInt(MAP.RAM_BASE);
      cpu.setX(10, BigInt(hart)); // a0: hart id
      cpu.setX(11, BigInt(layout.fdt)); // a1: device tree
      cpu.setX(12, BigInt(infoAddr)); // a2: fw_dynamic_info
    });
  }

  /**
   * Paravirtual boot: what the SBI implementation would have done before entering the kernel
   * (SBI spec and Linux boot protocol): S-mode, MMU off, interrupts off, traps delegated,
   * counters readable. Every hart gets the machine-mode setup; only hart 0 enters the kernel.
   */
  private enterKernel(layout: BootLayout, sstc: boolean): void {
    for (const cpu of this.cpus) {
      cpu.writeCsr(CSR_MEDELEG, BigInt(MEDELEG_PARAVIRT));
      cpu.writeCsr(CSR_MIDELEG, BigInt(MIDELEG_S_INTERRUPTS));
      cpu.writeCsr(CSR_MCOUNTEREN, 0xffff_ffffn);
      cpu.writeCsr(CSR_SCOUNTEREN, SCOUNTEREN_CY_TM_IR);
      if (sstc) cpu.writeCsr(CSR_MENVCFG, MENVCFG_STCE);
      cpu.writeCsr(CSR_MSTATUS, BigInt(MSTATUS_FS_INITIAL));
      cpu.priv = PRIV_S;
    }
    this.enterSupervisor(0, BigInt(layout.kernel), BigInt(layout.fdt));
  }

  private enterSupervisor(hart: number, pc: bigint, a1: bigint): void {
    enterSupervisor(this.cpus[hart], hart, pc, a1);
  }

  /**
   * The host wrote guest RAM (DMA, the debug console): decoded code of those pages must go. With
   * threads, the harts holding it drop it themselves (their next run or FENCE.I).
   */
  private hostWroteRam(paddr: number, length: number): void {
    if (this.control) this.cpu.hostWroteRam(paddr, length);
    else this.cpu.ramWritten(paddr, length);
  }

  /**
   * Sets attention bits of a hart running on a host thread and wakes the thread if it sleeps. If
   * the thread is running another of its harts, that one's slice ends early, so the hart that now
   * has something to do gets its turn promptly (as a host scheduler preempts on wakeup).
   */
  private notifyHart(hart: number, bits: number): void {
    const words = this.attentionWords!;
    const control = this.control!;
    Atomics.or(words, this.cpus[hart].attentionAddress >> 2, bits);
    const current = control.current(control.threadOf(hart));
    if (current >= 0 && current !== hart) Atomics.or(words, this.cpus[current].attentionAddress >> 2, ATTENTION_YIELD);
    control.wakeThreadOf(hart);
  }

  /** PAUSE loops longer than this (in instructions) end the hart's slice; see VirtMachineOptions.pauseLoopWindow. */
  private get pauseLoopWindow(): number {
    return this.options.pauseLoopWindow ?? (this.hartCount > 1 ? DEFAULT_PAUSE_LOOP_WINDOW : 0);
  }

  // ---- console ------------------------------------------------------------------------------
  private consoleOutput(bytes: Uint8Array): void {
    this.options.output(bytes);
    if (this.panicSince === undefined && this.panic.feed(bytes)) this.panicSince = this.clock.now();
  }

  /** Host keyboard or pipe input for the guest console. */
  sendInput(bytes: Uint8Array): void {
    const accepted = this.hvc ? this.hvc.receive(bytes) : this.uart.receive(bytes);
    for (let i = accepted; i < bytes.length; i++) this.consoleInput.push(bytes[i]);
    this.wake?.();
  }

  /** Ends run() at the next slice boundary (Ctrl-A x; "migrated" once the guest runs elsewhere). */
  stop(reason: "stopped" | "migrated" = "stopped"): void {
    this.exit ??= { reason };
    this.requestStopAll();
    this.wake?.();
    // A paused machine ends too (its hart threads see the exit flag).
    const resumeRun = this.resumeRun;
    this.resumeRun = undefined;
    resumeRun?.();
  }

  /** Ends the running hart's slice; a hart that is not running clears the request when it starts. */
  private requestStopAll(): void {
    if (this.control) {
      // Threads: the I/O loop sees `exit` once the doorbell wakes it, and ends the harts' threads.
      this.control.ringDoorbell();
      return;
    }
    for (const cpu of this.cpus) cpu.requestStop();
  }

  private onFinisher(event: FinisherEvent): void {
    this.exit ??= event.kind === "reboot" ? { reason: "reboot" } : { reason: "poweroff", code: event.code };
    this.requestStopAll();
  }

  // ---- harts and their HSM states ---------------------------------------------------------------
  /** Moves a hart along the SBI spec's HSM table; an edge the table lacks is a bug here. */
  private hsmStep(hart: number, event: HsmEvent): void {
    const next = hsmTransition(this.hsm[hart], event);
    if (next === undefined) throw new Error(`hart ${hart}: no HSM edge "${event}" from state ${this.hsm[hart]}`);
    this.hsm[hart] = next;
    if (this.control) {
      this.control.setHsm(hart, next);
      this.notifyHart(hart, ATTENTION_HSM);
    }
  }

  /**
   * Interrupts pending and enabled in mie: what ends WFI and a suspension (privileged ISA 3.3.3).
   * mip as the engine reads it, which includes Sstc's STIP (time >= stimecmp).
   */
  private interruptPendingFor(hart: number): boolean {
    const cpu = this.cpus[hart];
    return (cpu.readCsr(CSR_MIP) & cpu.readCsr(CSR_MIE)) !== 0n;
  }

  /**
   * Whether the hart gets a slice now, completing the HSM edges that happen when a hart
   * (re)starts: START_PENDING -> STARTED, SUSPENDED -> RESUME_PENDING -> STARTED on an interrupt.
   */
  private readyToRun(hart: number): boolean {
    switch (this.hsm[hart]) {
      case SBI_HSM_STATE_STARTED:
        if (!this.waitingForInterrupt[hart]) return true;
        if (!this.interruptPendingFor(hart)) return false;
        this.waitingForInterrupt[hart] = false;
        return true;
      case SBI_HSM_STATE_START_PENDING:
        this.hsmStep(hart, "start-done");
        this.waitingForInterrupt[hart] = false;
        return true;
      case SBI_HSM_STATE_SUSPENDED: {
        if (!this.interruptPendingFor(hart)) return false;
        this.hsmStep(hart, "wake");
        const entry = this.pendingResume[hart]?.entry;
        this.pendingResume[hart] = undefined;
        if (entry) this.enterSupervisor(hart, entry.addr, entry.opaque);
        this.hsmStep(hart, "resume-done");
        this.waitingForInterrupt[hart] = false;
        return true;
      }
      default:
        return false;
    }
  }

  /** After a hart's slice: the edges into STOPPED and SUSPENDED it asked for during it. */
  private afterSlice(hart: number, reason: ExitReason): void {
    if (reason === ExitReason.Wfi) this.waitingForInterrupt[hart] = true;
    if (this.hsm[hart] === SBI_HSM_STATE_STOP_PENDING) this.hsmStep(hart, "stop-done");
    else if (this.hsm[hart] === SBI_HSM_STATE_SUSPEND_PENDING) this.hsmStep(hart, "suspend-done");
    this.checkAllStopped();
  }

  private checkAllStopped(): void {
    if (this.hsm.every((state) => state === SBI_HSM_STATE_STOPPED)) {
      const message = this.hartCount === 1 ? "the only hart stopped itself (SBI HSM hart_stop)" : "every hart stopped itself (SBI HSM hart_stop)";
      this.exit ??= { reason: "halted", message };
    }
  }

  private onHypercall(cpu: Cpu): void {
    this.hartCounters[cpu.hartIndex].sbiCalls++;
    this.sbi!.handleCpuEcall(cpu, cpu.hartIndex);
  }

  // ---- the run loop -----------------------------------------------------------------------------
  private updateInterrupts(now: number): void {
    if (this.bootPath === "paravirtual" && !this.control) {
      for (let hart = 0; hart < this.cpus.length; hart++) {
        this.cpus[hart].setPendingInterrupt(MIP_STIP, BigInt(now) >= this.sbiTimerDeadlines[hart]);
      }
    }
    this.clint?.update();
    this.rtc.poll();
    if (this.consoleInput.length) {
      const pending = Uint8Array.from(this.consoleInput.splice(0));
      const accepted = this.hvc ? this.hvc.receive(pending) : this.uart.receive(pending);
      for (let i = accepted; i < pending.length; i++) this.consoleInput.push(pending[i]);
    }
  }

  /** The next mtime at which a timer could raise an interrupt, or undefined. */
  private nextDeadline(): number | undefined {
    let next = this.deviceDeadline();
    const now = BigInt(this.cpu.readTime());
    for (let hart = 0; hart < this.cpus.length; hart++) {
      const event = nextTimerEvent(this.cpus[hart], this.sbiTimerDeadlines[hart], now);
      if (event !== NEVER) next = Math.min(next, Number(event));
    }
    return next === Infinity ? undefined : next;
  }

  /** The next mtime at which a device timer (the CLINT's mtimecmp, the RTC's alarm) fires, or Infinity. */
  private deviceDeadline(): number {
    let next = Infinity;
    const clintDeadline = this.clint?.nextDeadline();
    if (clintDeadline !== undefined) next = Math.min(next, clintDeadline);
    const rtcDeadlineNs = this.rtc.nextDeadline();
    if (rtcDeadlineNs !== undefined) {
      const ticksFromNow = Number((rtcDeadlineNs - this.rtc.time()) / 100n);
      next = Math.min(next, this.cpu.readTime() + Math.max(0, ticksFromNow));
    }
    return next;
  }

  private waitForEvent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.clock.setTimer(ms, done);
      function done() {
        cancel();
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  /** The translator's counters summed over the harts, or undefined when it is off. */
  translatorCounters(): TranslatorCounters | undefined {
    const control = this.control;
    const byHart = this.cpus.map((cpu, hart) => {
      if (!control) return cpu.translatorCounters();
      if (resolveJitOptions(this.options.jit) === undefined) return undefined;
      const stats = control.stats(hart);
      return translatorCountersOf((offset) => cpu.getState(offset), { ...stats, translations: stats.pagesTranslated, instructions: stats.instructionsTranslated });
    });
    if (byHart.some((counters) => counters === undefined)) return undefined;
    const all = byHart as TranslatorCounters[];
    const sum = { ...all[0] };
    for (const key of Object.keys(sum) as (keyof TranslatorCounters)[]) sum[key] = all.reduce((total, counters) => total + counters[key], 0);
    return sum;
  }

  /** Per hart, what its host thread's scheduler counted (harts on threads only). */
  hartSchedulerStats(): HartThreadStats[] | undefined {
    const control = this.control;
    return control ? this.cpus.map((_, hart) => control.stats(hart)) : undefined;
  }

  // ---- pause and resume ------------------------------------------------------------------------------
  /** True from pause() until resume(). */
  get paused(): boolean {
    return this.pauseRequested;
  }

  private pausing: Promise<void> | undefined;

  /**
   * Stops every hart at its next slice boundary (a hart waiting for an MMIO or hypercall answer gets
   * it first), then quiesces the virtio devices: in-flight disk requests complete and are published,
   * host input (network, vsock, console) is held, no interrupt is raised and no guest memory is
   * written until resume(). What the guest sees: nothing but a gap in wall-clock time. Guest time
   * (the timebase behind `time`, stimecmp and the SBI timer) stops with the harts and continues from
   * the same value on resume, so no timer fires early and no interval the guest measures includes
   * the pause; the pause is not steal time either (no hart was runnable and kept from running). The
   * guest's wall clock (CLOCK_REALTIME) falls behind by the pause, as after a suspend to RAM, until
   * something (NTP, the RTC at next boot) sets it. Safe to call before run() (the harts then never
   * start until resume()); idempotent.
   */
  pause(): Promise<void> {
    if (this.exit) return Promise.reject(new Error(`the machine has ended (${this.exit.reason}): nothing to pause`));
    this.pausing ??= this.pauseNow();
    return this.pausing;
  }

  private async pauseNow(): Promise<void> {
    this.pauseRequested = true;
    const stopped = new Promise<void>((resolve) => (this.hartsStopped = resolve));
    const control = this.control;
    if (control) {
      control.requestPause();
      this.cpus.forEach((_, hart) => this.notifyHart(hart, ATTENTION_YIELD));
      control.ringDoorbell();
    } else {
      // The round-robin loop is between slices (this runs on its thread): wake it if it sleeps.
      this.wake?.();
    }
    if (this.running) await stopped;
    else this.hartsStopped = undefined;
    if (this.exit && !this.running) throw new Error(`the machine ended (${this.exit.reason}) while pausing`);
    if (control) this.foldSoftwareInterrupts(control);
    this.frozenGuestTime = this.hostTime() - this.guestTimeOffset;
    await Promise.all(this.virtio.map((transport) => transport.pause()));
    this.pausedSince = this.clock.now();
    this.pauseCounters.pauses++;
  }

  /**
   * An IPI (SBI send_ipi, legacy clear_ipi) another hart sent after this one's thread had stopped
   * waits in the control block until the hart's thread merges it into mip at its next pass. A
   * snapshot taken now would lose it — and the sender, waiting for its answer, would wait for ever
   * in the restored guest. The threads are stopped, so their mip words can be written here, as
   * mergeInterrupts would (clear, then set).
   */
  private foldSoftwareInterrupts(control: HartControl): void {
    this.cpus.forEach((cpu, hart) => {
      const soft = control.takeSoftware(hart);
      if (soft & SOFT_CLEAR) cpu.setPendingInterrupt(MIP_SSIP, false);
      if (soft & SOFT_SET) cpu.setPendingInterrupt(MIP_SSIP, true);
    });
  }

  /** Lets the harts and devices go on after pause(); guest time continues where it stopped. */
  async resume(): Promise<void> {
    if (!this.pauseRequested) return;
    await this.pausing;
    const frozen = this.frozenGuestTime!;
    this.setGuestTimeOffset(this.hostTime() - frozen);
    this.frozenGuestTime = undefined;
    this.pauseCounters.pausedMs += this.clock.now() - this.pausedSince;
    // The round robin's steal clocks must not count the pause either.
    const now = this.clock.now();
    this.waitingSince.forEach((since, hart) => since !== undefined && (this.waitingSince[hart] = now));
    for (const transport of this.virtio) transport.resume();
    this.pauseRequested = false;
    this.pausing = undefined;
    this.control?.releasePause();
    const resumeRun = this.resumeRun;
    this.resumeRun = undefined;
    resumeRun?.();
  }

  // ---- snapshot ------------------------------------------------------------------------------------
  /**
   * The whole machine's state (src/platform/persist.ts) except guest RAM, which the caller saves
   * (src/host/node/memory-file.ts): every hart's registers and CSRs, HSM states and the SBI's
   * per-hart state (timers, pending resumes, steal-time records), the platform devices and every
   * virtio transport with its queues and device. Only while paused: the harts are stopped and the
   * devices quiescent, so nothing changes while it is read and no request is in flight.
   */
  saveState(): VirtMachineState {
    if (!this.pauseRequested || this.frozenGuestTime === undefined) throw new Error("saveState: pause the machine first");
    const control = this.control;
    return {
      version: 1,
      harts: this.hartCount,
      ramSize: this.options.ramSize,
      bootPath: this.bootPath,
      virtioDevices: this.virtio.map((transport) => transport.device.deviceId),
      guestTime: this.frozenGuestTime,
      deviceTree: bytesToHex(this.bootDeviceTree),
      cpus: this.cpus.map((cpu) => cpu.saveState()),
      hsm: [...this.hsm],
      start: this.cpus.map((_, hart) => {
        if (!control) return null;
        const { addr, opaque } = control.start(hart);
        return { addr: hex64(addr), opaque: hex64(opaque) };
      }),
      sbiTimers: this.cpus.map((_, hart) => hex64(control ? control.timer(hart) : this.sbiTimerDeadlines[hart])),
      waitingForInterrupt: [...this.waitingForInterrupt],
      pendingResume: this.pendingResume.map((pending) =>
        pending === undefined ? null : pending.entry ? { addr: hex64(pending.entry.addr), opaque: hex64(pending.entry.opaque) } : {},
      ),
      stealShmem: this.cpus.map((_, hart) => {
        const addr = control ? control.stealShmem(hart) : this.stealShmem[hart];
        return addr === undefined ? null : hex64(BigInt(addr));
      }),
      stealRecorders: this.stealRecorders.map((recorder) => recorder.saveState()),
      hartCounters: this.hartCounters.map((counters) => ({ ...counters })),
      sbiConsoleBytes: { ...this.sbiConsoleBytes },
      consoleInput: bytesToHex(Uint8Array.from(this.consoleInput)),
      plic: this.plic.saveState(),
      uart: this.uart.saveState(),
      rtc: this.rtc.saveState(),
      clint: this.clint?.saveState() ?? null,
      vmgenid: this.vmgenid.saveState(),
      virtio: this.virtio.map((transport) => transport.saveState()),
    };
  }

  /**
   * Restores a saved state onto this machine, which must have been built with `fromSnapshot` and
   * the same configuration (harts, RAM size, boot path, virtio devices in the same slots); its RAM
   * must already hold the snapshot's. Checks the machine's own fields first and throws a
   * SnapshotError naming the field; the components then check and apply their parts. A machine
   * whose restore threw must be thrown away (nothing else was touched). The machine stays paused,
   * its guest time at the snapshot's, until resume().
   */
  restoreState(state: unknown): void {
    if (!this.options.fromSnapshot) throw new Error("restoreState: build the machine with fromSnapshot");
    if (this.restored) throw new Error("restoreState: this machine was restored already");
    const s = stateObject(state, "machine", [1]);
    const harts = this.hartCount;
    if (s.harts !== harts) throw new SnapshotError(`machine.harts: the snapshot has ${String(s.harts)} harts, this machine ${harts}`);
    if (s.ramSize !== this.options.ramSize) throw new SnapshotError(`machine.ramSize: the snapshot has ${String(s.ramSize)} bytes of RAM, this machine ${this.options.ramSize}`);
    if (s.bootPath !== this.bootPath) throw new SnapshotError(`machine.bootPath: the snapshot booted ${String(s.bootPath)}, this machine is ${this.bootPath}`);
    const devices = stateArray(s.virtioDevices, "machine.virtioDevices");
    const mine = this.virtio.map((transport) => transport.device.deviceId);
    if (devices.length !== mine.length || devices.some((id, i) => id !== mine[i])) {
      throw new SnapshotError(`machine.virtioDevices: the snapshot has virtio devices ${JSON.stringify(devices)}, this machine ${JSON.stringify(mine)} (same devices in the same order needed)`);
    }
    const guestTime = stateNumber(s.guestTime, "machine.guestTime");
    if (guestTime < 0) throw new SnapshotError(`machine.guestTime: ${guestTime} is negative`);
    const deviceTree = stateBytes(s.deviceTree, "machine.deviceTree");
    const cpus = stateArray(s.cpus, "machine.cpus", harts);
    const hsm = stateArray(s.hsm, "machine.hsm", harts).map((v, i) => stateInt(v, `machine.hsm[${i}]`, 0, 6) as HsmState);
    const start = stateArray(s.start, "machine.start", harts).map((v, i) => {
      if (v === null) return undefined;
      const r = stateRecord(v, `machine.start[${i}]`);
      return { addr: stateU64(r.addr, `machine.start[${i}].addr`), opaque: stateU64(r.opaque, `machine.start[${i}].opaque`) };
    });
    const sbiTimers = stateArray(s.sbiTimers, "machine.sbiTimers", harts).map((v, i) => stateU64(v, `machine.sbiTimers[${i}]`));
    const waiting = stateArray(s.waitingForInterrupt, "machine.waitingForInterrupt", harts).map((v, i) => stateBool(v, `machine.waitingForInterrupt[${i}]`));
    const pendingResume = stateArray(s.pendingResume, "machine.pendingResume", harts).map((v, i): PendingResume | undefined => {
      if (v === null) return undefined;
      const r = stateRecord(v, `machine.pendingResume[${i}]`);
      if (r.addr === undefined) return {};
      return { entry: { addr: stateU64(r.addr, `machine.pendingResume[${i}].addr`), opaque: stateU64(r.opaque, `machine.pendingResume[${i}].opaque`) } };
    });
    const stealShmem = stateArray(s.stealShmem, "machine.stealShmem", harts).map((v, i) => (v === null ? undefined : stateU64(v, `machine.stealShmem[${i}]`)));
    const stealRecorders = stateArray(s.stealRecorders, "machine.stealRecorders", harts);
    const counters = stateArray(s.hartCounters, "machine.hartCounters", harts).map((v, i) => {
      const r = stateRecord(v, `machine.hartCounters[${i}]`);
      const out = { sbiCalls: 0, ipisReceived: 0, remoteFences: 0, mmioExits: 0, stealNs: 0, suspends: 0 };
      for (const key of Object.keys(out) as (keyof HartCounters)[]) out[key] = stateNumber(r[key], `machine.hartCounters[${i}].${key}`);
      return out;
    });
    const consoleBytes = stateRecord(s.sbiConsoleBytes, "machine.sbiConsoleBytes");
    const consoleIn = stateNumber(consoleBytes.in, "machine.sbiConsoleBytes.in");
    const consoleOut = stateNumber(consoleBytes.out, "machine.sbiConsoleBytes.out");
    const consoleInput = stateBytes(s.consoleInput, "machine.consoleInput");
    if (consoleInput.length > 1 << 20) throw new SnapshotError("machine.consoleInput: more than 1 MiB of pending console input");
    const virtio = stateArray(s.virtio, "machine.virtio", this.virtio.length);
    if ((s.clint === null) !== (this.clint === undefined)) throw new SnapshotError(`machine.clint: the snapshot ${s.clint === null ? "has no" : "has a"} CLINT, this machine ${this.clint ? "has one" : "none"}`);

    // The machine's own fields are good: the components check and apply theirs.
    this.restored = true;
    this.frozenGuestTime = guestTime;
    cpus.forEach((cpuState, hart) => this.cpus[hart].restoreState(cpuState, `machine.cpus[${hart}]`));
    this.stealRecorders.forEach((recorder, hart) => recorder.restoreState(stealRecorders[hart], `machine.stealRecorders[${hart}]`));
    this.plic.restoreState(s.plic);
    this.uart.restoreState(s.uart);
    this.rtc.restoreState(s.rtc);
    this.clint?.restoreState(s.clint);
    this.vmgenid.restoreState(s.vmgenid);
    this.virtio.forEach((transport, slot) => transport.restoreState(virtio[slot]));
    this.bootDeviceTree = deviceTree;
    const control = this.control;
    for (let hart = 0; hart < harts; hart++) {
      this.hsm[hart] = hsm[hart];
      this.waitingForInterrupt[hart] = waiting[hart];
      this.pendingResume[hart] = pendingResume[hart];
      this.sbiTimerDeadlines[hart] = sbiTimers[hart];
      Object.assign(this.hartCounters[hart], counters[hart]);
      if (control) {
        control.setHsm(hart, hsm[hart]);
        control.setTimer(hart, sbiTimers[hart]);
        control.setStealShmem(hart, stealShmem[hart]);
        const entry = start[hart];
        if (entry) control.setStart(hart, entry.addr, entry.opaque);
      } else {
        this.stealShmem[hart] = stealShmem[hart] === undefined ? undefined : Number(stealShmem[hart]);
        // Round robin enters a starting hart at once (hartStart); a snapshot from threads may hold one.
        const entry = start[hart];
        if (hsm[hart] === SBI_HSM_STATE_START_PENDING && entry) this.enterSupervisor(hart, entry.addr, entry.opaque);
      }
    }
    this.sbiConsoleBytes.in = consoleIn;
    this.sbiConsoleBytes.out = consoleOut;
    this.consoleInput.splice(0, this.consoleInput.length, ...consoleInput);
    // Hart threads may already be running (stopped for the pause, as a migration's destination
    // starts them early): each refreshes its engine's view of the restored registers (TLB
    // contexts from satp and the privilege, no stale decoded code) before it runs.
    if (control) this.cpus.forEach((_, hart) => {
      control.requestFence(hart);
      this.notifyHart(hart, ATTENTION_FENCE);
    });
  }

  private restored = false;

  /**
   * Resolves once no hart thread can touch hart state: every host thread has stopped for the
   * pause. A machine built fromSnapshot starts paused, but a thread that has just started still
   * takes its harts' attention bits and merges their interrupt lines into mip once before it
   * stops; restoring hart state meanwhile would race with that write (a restored pending IPI could
   * be lost). A migration's destination, which starts its threads early, waits for this before
   * restoreState. Immediate when the harts are not on threads or the machine does not run.
   */
  async hartThreadsStopped(): Promise<void> {
    const control = this.control;
    if (!control || !this.running || !this.pauseRequested || control.pausedThreads === this.hostThreads) return;
    await new Promise<void>((resolve) => {
      const earlier = this.hartsStopped;
      this.hartsStopped = () => {
        earlier?.();
        resolve();
      };
      control.ringDoorbell();
    });
  }

  private get guestTimeOffset(): number {
    return this.control ? this.control.guestTimeOffset : this.timeOffsetTicks;
  }
  private setGuestTimeOffset(ticks: number): void {
    if (this.control) this.control.setGuestTimeOffset(ticks);
    else this.timeOffsetTicks = ticks;
  }

  /** The paravirtualization ledger so far (see src/machine/ledger.ts). */
  ledger(): Ledger {
    return collectLedger(this);
  }

  /**
   * Runs the harts on this thread, round robin, a slice each, as QEMU's single-threaded TCG does.
   * Stopped harts and harts waiting in WFI (or suspended) with no interrupt pending are skipped;
   * the thread sleeps only when no hart can run, until the next timer deadline or device event.
   */
  async run(): Promise<MachineExit> {
    if (this.control) return this.runThreads(this.options.hartThreads!, this.control);
    this.stoppedAt = undefined;
    const harts = this.cpus.length;
    const slice = harts === 1 ? SLICE_INSTRUCTIONS : SMP_SLICE_INSTRUCTIONS;
    this.running = true;
    try {
      while (!this.exit) {
        if (this.pauseRequested) {
          await this.stayPaused();
          continue;
        }
        await this.roundRobinPass(slice);
      }
    } finally {
      this.running = false;
      this.stoppedAt = this.clock.now();
      this.hartsStopped?.();
    }
    return this.exit!;
  }

  /** Round robin: one slice for every hart that can run, then a sleep or a turn for the host. */
  private async roundRobinPass(slice: number): Promise<void> {
    const harts = this.cpus.length;
    let ran = false;
    const first = this.nextHart;
    this.nextHart = (first + 1) % harts;
    for (let i = 0; i < harts && !this.exit; i++) {
      const hart = (first + i) % harts;
      const now = this.cpu.readTime();
      this.updateInterrupts(now);
      if (!this.readyToRun(hart)) continue;
      const budget = sliceUntil(slice, now, this.nextDeadline());
      this.updateStealTime(hart, this.stealTimeUntilNow(hart), false);
      const reason = this.cpus[hart].run(budget);
      ran = true;
      this.afterSlice(hart, reason);
      if (reason !== ExitReason.Wfi && this.hsm[hart] === SBI_HSM_STATE_STARTED) this.waitingSince[hart] = this.clock.now();
    }
    if (this.exit) return;
    if (this.panicSince !== undefined && this.clock.now() - this.panicSince > 300) {
      this.exit = { reason: "panic" };
      return;
    }
    if (!ran || this.cpus.every((_, hart) => this.idle(hart))) {
      const wakeAt = this.nextDeadline();
      if (wakeAt === undefined && this.panicSince === undefined) {
        // Still wait: console input can wake a hart through the UART interrupt.
        await this.waitForEvent(100);
      } else {
        const ms = wakeAt === undefined ? 50 : (wakeAt - this.cpu.readTime()) / (TIMEBASE_FREQUENCY / 1000);
        if (ms > 0.05) await this.waitForEvent(Math.min(ms, 100));
      }
    } else {
      // Let the event loop deliver console input and timers between rounds.
      await this.clock.yieldToHost();
    }
  }

  /** The round-robin loop while paused: tells pause() the harts stopped, and waits for resume(). */
  private async stayPaused(): Promise<void> {
    const resumed = new Promise<void>((resolve) => (this.resumeRun = resolve));
    const stopped = this.hartsStopped;
    this.hartsStopped = undefined;
    stopped?.();
    await resumed;
  }

  // ---- harts on threads of their own: this thread serves their requests ---------------------------
  /**
   * Starts a thread per hart and serves what they ask (MMIO, hypercalls, HSM edges) until the
   * machine ends; between requests it keeps the device timers (CLINT, RTC) and console input
   * going. Harts never wait for this thread except in their own requests.
   */
  private async runThreads(host: HartThreadHost, control: HartControl): Promise<MachineExit> {
    this.stoppedAt = undefined;
    this.running = true;
    const memory = this.cpu.memory;
    const handles = Array.from({ length: this.hostThreads }, (_, threadIndex) => {
      const hartIndices = this.cpus.map((_, hart) => hart).filter((hart) => control.threadOf(hart) === threadIndex);
      const handle = host.start({
        module: this.options.module,
        memory,
        control: control.buffer,
        harts: this.hartCount,
        threadIndex,
        hartIndices,
        ramSize: this.options.ramSize,
        ramBase: MAP.RAM_BASE,
        paravirtual: this.bootPath === "paravirtual",
        jit: this.options.jit,
        pauseLoopWindow: this.pauseLoopWindow,
      });
      handle.finished.catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        const which = hartIndices.length === 1 ? `hart ${hartIndices[0]}'s thread` : `the thread of harts ${hartIndices.join(", ")}`;
        this.exit ??= { reason: "failed", message: `${which} failed: ${message}` };
        control.ringDoorbell();
      });
      return handle;
    });
    this.wake = () => control.ringDoorbell();
    try {
      while (!this.exit) {
        const seen = control.doorbell();
        this.serveRequests(control);
        if (this.hartsStopped && control.pausedThreads === this.hostThreads) {
          const stopped = this.hartsStopped;
          this.hartsStopped = undefined;
          stopped();
        }
        this.updateInterrupts(this.cpu.readTime());
        if (this.exit) break;
        if (this.panicSince !== undefined && this.clock.now() - this.panicSince > 300) {
          this.exit = { reason: "panic" };
          break;
        }
        await control.waitForDoorbell(seen, this.ioTimeoutMs());
        // Let timers and sockets run even while the harts keep the doorbell busy.
        if (control.doorbell() !== seen) await this.maybeYield();
      }
    } finally {
      this.wake = undefined;
      control.setExiting();
      this.cpus.forEach((_, hart) => this.notifyHart(hart, ATTENTION_EXIT));
      await this.endThreads(handles);
      this.stoppedAt = this.clock.now();
      this.running = false;
      this.hartsStopped?.();
    }
    return this.exit!;
  }

  private yieldedAt = 0;
  /** Gives the event loop a turn at least every few milliseconds while requests keep coming. */
  private async maybeYield(): Promise<void> {
    const now = this.clock.now();
    if (now - this.yieldedAt < 4) return;
    this.yieldedAt = now;
    await this.clock.yieldToHost();
  }

  /** How long the I/O thread may sleep: until the next device timer (CLINT, RTC), at most 50 ms. */
  private ioTimeoutMs(): number {
    const next = this.deviceDeadline();
    if (next === Infinity) return this.consoleInput.length ? 5 : 50;
    return Math.max(0, Math.min(50, (next - this.cpu.readTime()) / (TIMEBASE_FREQUENCY / 1000)));
  }

  /**
   * Waits for every hart thread to return (they were told to), then ends any that did not within
   * two seconds, and waits for those a second more: a thread never keeps the machine from ending.
   */
  private async endThreads(handles: readonly HartThreadHandle[]): Promise<void> {
    const settled = Promise.allSettled(handles.map((handle) => handle.finished)).then(() => "settled" as const);
    const after = (ms: number) => {
      let cancel: (() => void) | undefined;
      const done = new Promise<"late">((resolve) => (cancel = this.clock.setTimer(ms, () => resolve("late"))));
      return { done, cancel: () => cancel?.() };
    };
    const grace = after(2000);
    const first = await Promise.race([settled, grace.done]);
    grace.cancel();
    if (first === "settled") return;
    for (const handle of handles) handle.terminate();
    const last = after(1000);
    await Promise.race([settled, last.done]);
    last.cancel();
  }

  private serveRequests(control: HartControl): void {
    for (let hart = 0; hart < this.hartCount; hart++) {
      if (control.mailbox(hart) !== MAILBOX_POSTED) continue;
      this.servingHart = hart;
      switch (control.kind(hart)) {
        case REQUEST_MMIO_READ: {
          this.hartCounters[hart].mmioExits++;
          const value = this.bus.load(control.address(hart), control.size(hart) as 1 | 2 | 4 | 8);
          control.setResult(hart, value === undefined ? 1 : 0);
          if (value !== undefined) control.setValue(hart, BigInt(value));
          break;
        }
        case REQUEST_MMIO_WRITE: {
          this.hartCounters[hart].mmioExits++;
          const size = control.size(hart) as 1 | 2 | 4 | 8;
          const value = control.value(hart);
          const ok = this.bus.store(control.address(hart), size, size === 8 ? value : Number(value));
          control.setResult(hart, ok ? 0 : 1);
          break;
        }
        case REQUEST_HYPERCALL:
          control.setFenceWait(hart, 0);
          this.onHypercall(this.cpus[hart]);
          break;
        case REQUEST_HSM_EDGE:
          this.completeEdge(hart, control.argument(hart), control);
          break;
      }
      control.answer(hart);
    }
  }

  /** The HSM edges a hart's thread reports (hart-thread.ts), along the same table as the round-robin harts. */
  private completeEdge(hart: number, edge: number, control: HartControl): void {
    switch (edge) {
      case EDGE_START_DONE:
        this.hsmStep(hart, "start-done");
        break;
      case EDGE_STOP_DONE:
        this.hsmStep(hart, "stop-done");
        this.checkAllStopped();
        break;
      case EDGE_SUSPEND_DONE:
        this.hsmStep(hart, "suspend-done");
        break;
      case EDGE_RESUME: {
        this.hsmStep(hart, "wake");
        const entry = this.pendingResume[hart]?.entry;
        this.pendingResume[hart] = undefined;
        control.setResult(hart, entry ? 1 : 0);
        if (entry) {
          control.setValue(hart, entry.addr);
          control.setValue2(hart, entry.opaque);
        }
        this.hsmStep(hart, "resume-done");
        break;
      }
    }
  }

  /** A hart that would not run now: stopped, suspended or in WFI, with no interrupt pending. */
  private idle(hart: number): boolean {
    switch (this.hsm[hart]) {
      case SBI_HSM_STATE_STARTED:
        return this.waitingForInterrupt[hart] && !this.interruptPendingFor(hart);
      case SBI_HSM_STATE_SUSPENDED:
        return !this.interruptPendingFor(hart);
      case SBI_HSM_STATE_STOPPED:
        return true;
      default:
        return false;
    }
  }

  // ---- SbiHost: the hypervisor side of the hypercalls -------------------------------------------
  get ramRegions() {
    return [{ base: BigInt(MAP.RAM_BASE), size: BigInt(this.options.ramSize) }];
  }
  readonly mvendorid = 0n;
  readonly marchid = 0n;
  readonly mimpid = 0n;

  hartState(hartId: number): HsmState {
    return this.hsm[hartId];
  }
  /**
   * SBI spec §6.1. With Sstc enabled for the hart (menvcfg.STCE), the engine derives STIP from
   * stimecmp and masks mip's own bit, so the call programs stimecmp (which also clears a pending
   * STIP) and the SBI deadline stays "never". Only the calling hart's state memory is touched,
   * never its engine: with threads that hart is blocked in this hypercall, so this is safe.
   */
  setTimer(hartId: number, stimeValue: bigint): void {
    const cpu = this.cpus[hartId];
    const sstc = (cpu.getState(L.S_MENVCFG) & MENVCFG_STCE) !== 0n;
    if (sstc) cpu.setState(L.S_STIMECMP, stimeValue);
    const deadline = sstc ? NEVER : stimeValue;
    if (this.control) {
      this.control.setTimer(hartId, deadline);
      this.notifyHart(hartId, ATTENTION_INTERRUPT);
      return;
    }
    this.sbiTimerDeadlines[hartId] = deadline;
    cpu.setPendingInterrupt(MIP_STIP, BigInt(cpu.readTime()) >= deadline);
  }
  sendIpi(targets: readonly number[]): void {
    for (const hart of targets) {
      this.hartCounters[hart].ipisReceived++;
      if (this.control) {
        this.control.requestSoftware(hart, SOFT_SET);
        this.notifyHart(hart, ATTENTION_INTERRUPT);
      } else {
        this.cpus[hart].setPendingInterrupt(MIP_SSIP, true);
      }
    }
  }
  clearIpi(hartId: number): boolean {
    const cpu = this.cpus[hartId];
    const was = (cpu.getState(L.S_MIP) & BigInt(MIP_SSIP)) !== 0n;
    if (this.control) {
      // Only the hart's thread writes its mip (the read above is its last published value).
      this.control.requestSoftware(hartId, SOFT_CLEAR);
      this.notifyHart(hartId, ATTENTION_INTERRUPT);
      return was;
    }
    cpu.setPendingInterrupt(MIP_SSIP, false);
    return was;
  }
  /**
   * Every other hart is between slices while one runs, so each target is fenced before the caller
   * resumes. FENCE.I: a hart drops code other harts rewrote at the start of each slice (and its
   * own stores drop its own at once), so nothing is left to do. SFENCE.VMA: translations are
   * dropped wholesale, correct for every range and ASID.
   */
  remoteFence(targets: readonly number[], fence: RemoteFence): void {
    if (this.control) return this.remoteFenceOnThreads(targets, this.control);
    for (const hart of targets) {
      this.hartCounters[hart].remoteFences++;
      if (fence.kind !== "fence.i") this.cpus[hart].flushTlb();
    }
  }
  /**
   * With threads, each target performs the fence itself (its translations and TLB are its own);
   * the calling hart's thread waits for their acknowledgements before the hypercall returns
   * (hart-thread.ts), from those that may be running: the others take the request before they run.
   */
  private remoteFenceOnThreads(targets: readonly number[], control: HartControl): void {
    const caller = this.servingHart;
    let waitFor = 0;
    for (const hart of targets) {
      this.hartCounters[hart].remoteFences++;
      if (hart === caller) {
        this.notifyHart(hart, ATTENTION_FENCE);
        continue;
      }
      control.requestFence(hart);
      this.notifyHart(hart, ATTENTION_FENCE);
      // A hart that is not running (asleep, stopped) fences before it runs again: no need to wait.
      if (control.mayBeRunning(hart)) waitFor |= 1 << hart;
    }
    control.setFenceWait(caller, waitFor);
  }
  hartStart(hartId: number, startAddr: bigint, opaque: bigint): bigint {
    // A hart starts afresh: no steal-time record until its new life registers one (as KVM resets it).
    this.setStealTimeShmem(hartId, undefined);
    if (this.control) {
      // The hart's own thread enters the kernel (its engine's state is its own), then start-done.
      this.control.setStart(hartId, startAddr, opaque);
      this.hsmStep(hartId, "start");
      return SBI_SUCCESS;
    }
    this.hsmStep(hartId, "start");
    this.enterSupervisor(hartId, startAddr, opaque);
    return SBI_SUCCESS;
  }
  hartStop(hartId: number): bigint {
    this.hsmStep(hartId, "stop");
    if (!this.control) this.cpus[hartId].requestStop();
    return SBI_SUCCESS;
  }
  hartSuspend(hartId: number, suspendType: number, resumeAddr: bigint, opaque: bigint): bigint {
    // The hart sleeps once this slice ends and wakes when an interrupt is pending and enabled;
    // a retentive suspend then returns from the ECALL with SBI_SUCCESS, a non-retentive one
    // enters resumeAddr as hart_start would.
    this.hsmStep(hartId, "suspend");
    this.hartCounters[hartId].suspends++;
    this.pendingResume[hartId] = suspendType === SBI_HSM_SUSPEND_NON_RET_DEFAULT ? { entry: { addr: resumeAddr, opaque } } : {};
    if (!this.control) this.cpus[hartId].requestStop();
    return SBI_SUCCESS;
  }
  systemReset(resetType: number, resetReason: number): void {
    // SBI spec §10.1: type 0 shutdown, 1 cold reboot, 2 warm reboot; reason 1 = system failure.
    this.exit ??= resetType === 0 ? { reason: "poweroff", code: resetReason === 1 ? 1 : 0 } : { reason: "reboot" };
    this.requestStopAll();
  }
  consoleWrite(bytes: Uint8Array): number {
    this.sbiConsoleBytes.out += bytes.length;
    this.consoleOutput(bytes);
    return bytes.length;
  }
  consoleRead(max: number): Uint8Array {
    const bytes = Uint8Array.from(this.consoleInput.splice(0, max));
    this.sbiConsoleBytes.in += bytes.length;
    return bytes;
  }
  setStealTimeShmem(hartId: number, addr: bigint | undefined): void {
    if (this.control) this.control.setStealShmem(hartId, addr);
    else this.stealShmem[hartId] = addr === undefined ? undefined : Number(addr);
  }

  /**
   * SBI STA, for whatever runs the harts: call right before `hart` runs a slice (`preempted`
   * false) with its steal time so far in ns; writes the hart's steal-time record if it registered
   * one. Without hartThreads only; a hart on a thread of its own has the same hook
   * (HartRunner.updateStealTime in hart-thread.ts), since its thread owns its view of memory.
   */
  private updateStealTime(hart: number, stealNs: bigint, preempted: boolean): void {
    const paddr = this.stealShmem[hart];
    this.stealMemory ??= ramRecordMemory(this.cpu.ram, MAP.RAM_BASE);
    if (this.stealRecorders[hart].update(this.stealMemory, paddr, stealNs, preempted)) this.hostWroteRam(paddr!, STA_SHMEM_SIZE);
  }

  /**
   * Round robin: a hart that was left runnable at the end of its last slice has been waiting
   * for the thread (other harts' slices, the host's turns) since: that wall time is stolen. Time
   * in WFI, suspended or stopped is idle, not stolen. Returns the hart's steal total in ns.
   */
  private stealTimeUntilNow(hart: number): bigint {
    const since = this.waitingSince[hart];
    const counters = this.hartCounters[hart];
    if (since !== undefined) {
      counters.stealNs += Math.max(0, Math.round((this.clock.now() - since) * 1e6));
      this.waitingSince[hart] = undefined;
    }
    return BigInt(counters.stealNs);
  }

  readGuest(paddr: bigint, length: number): Uint8Array | undefined {
    const addr = Number(paddr);
    return paddr <= BigInt(Number.MAX_SAFE_INTEGER) && this.cpu.isRam(addr, length) ? this.cpu.readRam(addr, length) : undefined;
  }
  writeGuest(paddr: bigint, bytes: Uint8Array): boolean {
    const addr = Number(paddr);
    if (paddr > BigInt(Number.MAX_SAFE_INTEGER) || !this.cpu.isRam(addr, bytes.length)) return false;
    this.cpu.ram.set(bytes, addr - MAP.RAM_BASE);
    this.hostWroteRam(addr, bytes.length);
    return true;
  }

  // ---- dirty-page log (live migration) ------------------------------------------------------------
  // Which RAM pages were written while logging is on, as KVM's dirty log: the harts and the host
  // mark pages in a bitmap shared by the machine (src/cpu/wasm/mmu.ts, "Dirty-page log", has the
  // whole correctness argument). A migration starts the log, copies all of RAM, then repeatedly
  // takes the dirty pages and copies those; once the guest is stopped, a last take and copy make
  // the copy equal guest RAM. Call these from the event loop (not from inside a device or
  // hypercall handler, where a round-robin hart is in the middle of an instruction).

  /** Harvests made and pages they reported (for the ledger); dirty-page faults: see dirtyLogStats. */
  private readonly dirtyLogCounts = { harvests: 0, pagesHarvested: 0 };

  /** Whether dirty logging is on. */
  get dirtyLogging(): boolean {
    return this.cpu.dirtyLogging;
  }

  /** Harvests, pages harvested, and stores that took the slow path to mark a page (all harts). */
  get dirtyLogStats(): { harvests: number; pagesHarvested: number; dirtyPageFaults: number } {
    const dirtyPageFaults = this.cpus.reduce((sum, cpu) => sum + cpu.dirtyFaults, 0);
    return { ...this.dirtyLogCounts, dirtyPageFaults };
  }

  /**
   * Turns logging on; resolves once no hart holds a write tag granted before (each running hart
   * acknowledged dropping them): stores from then on mark their pages. Copy all of RAM after this.
   */
  async startDirtyLog(): Promise<void> {
    this.cpu.setDirtyLogging(true);
    await this.dropWriteTagsEverywhere();
  }

  /**
   * The pages written since logging started or since the last take (bit i of word i >>> 5 =
   * RAM page i), cleared in the log. Resolves only after every hart that may be running dropped
   * its write tags, so a copy of those pages made afterwards holds every store made through them.
   */
  async takeDirtyPages(): Promise<Uint32Array> {
    if (!this.dirtyLogging) throw new Error("takeDirtyPages: dirty logging is off (startDirtyLog first)");
    const bitmap = this.cpu.exchangeDirtyBitmap();
    await this.dropWriteTagsEverywhere();
    this.dirtyLogCounts.harvests++;
    for (const word of bitmap) this.dirtyLogCounts.pagesHarvested += popcount32(word);
    return bitmap;
  }

  /** Turns logging off: write tags are granted freely again. */
  stopDirtyLog(): void {
    this.cpu.setDirtyLogging(false);
  }

  /**
   * Every hart drops its write tags. Round robin: no hart runs while this thread does, so their
   * TLBs are changed here. Threads: each hart does it itself through the remote-fence request
   * (which drops its whole TLB), and this waits for those that may be running; a hart that is not
   * running takes the request before it runs again. When the machine is ending, waits for its
   * threads to end instead (a thread told to exit may not acknowledge).
   */
  private async dropWriteTagsEverywhere(): Promise<void> {
    const control = this.control;
    if (!control) {
      for (const cpu of this.cpus) cpu.dropWriteTags();
      return;
    }
    let pending: { hart: number; requested: number }[] = [];
    for (let hart = 0; hart < this.hartCount; hart++) {
      control.requestFence(hart);
      const requested = control.fenceRequested(hart);
      this.notifyHart(hart, ATTENTION_FENCE);
      // After the attention bit (see HartControl.setRunning): either this sees the hart running, or it sees the bit.
      if (control.mayBeRunning(hart)) pending.push({ hart, requested });
    }
    while (pending.length > 0) {
      pending = pending.filter(({ hart, requested }) => control.mayBeRunning(hart) && !control.fenceAcknowledged(hart, requested));
      if (pending.length === 0) break;
      if (control.exiting && this.stoppedAt !== undefined) break; // the threads have ended
      await new Promise<void>((resolve) => this.clock.setTimer(0.2, resolve));
    }
  }
}

function popcount32(word: number): number {
  let n = word >>> 0;
  n = n - ((n >>> 1) & 0x55555555);
  n = (n & 0x33333333) + ((n >>> 2) & 0x33333333);
  return Math.imul((n + (n >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}
