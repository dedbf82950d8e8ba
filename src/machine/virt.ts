// The `virt` machine that boots Linux: one RV64GC hart, RAM at 0x80000000, PLIC, 16550 UART,
// goldfish RTC and the SiFive test finisher at QEMU virt's addresses, and two boot paths:
//
// - paravirtual (default): the hypervisor is the SBI implementation, as KVM is. The kernel
//   starts directly in S-mode with a0 = hart id and a1 = the device tree; ECALLs from S-mode
//   leave the core and are served by src/sbi. No firmware runs in the guest.
// - firmware: Debian's OpenSBI (fw_dynamic) runs in emulated M-mode with an emulated CLINT and
//   then enters the same kernel, as on real hardware.
import { portableClock, type HostClock } from "../platform/clock.ts";
import { timebaseTicks } from "./timebase.ts";
import { Cpu, ExitReason, PRIV_S, TIMEBASE_FREQUENCY, type CpuOptions } from "../cpu/cpu.ts";
import * as L from "../cpu/layout.ts";
import { MIP_SEIP, MIP_SSIP, MIP_STIP } from "../cpu/interrupts.ts";
import { CSR_MCOUNTEREN, CSR_MEDELEG, CSR_MENVCFG, CSR_MIDELEG, CSR_MSTATUS, CSR_SCOUNTEREN, MSTATUS_FS_INITIAL } from "../cpu/csr-numbers.ts";
import { Bus } from "./bus.ts";
import { Plic } from "../devices/plic.ts";
import { Uart16550 } from "../devices/uart16550.ts";
import { GoldfishRtc } from "../devices/goldfish-rtc.ts";
import { SysconTest, type FinisherEvent } from "../devices/syscon-test.ts";
import { Clint } from "../devices/clint.ts";
import * as MAP from "../platform/memory-map.ts";
import { buildVirtDeviceTree } from "../platform/device-tree.ts";
import { parseKernelImage, planBootLayout, BootImageError, FDT_REGION_SIZE, type BootLayout } from "../platform/boot-image.ts";
import { SbiDispatcher, standardExtensions, type SbiHost, type HsmState, SBI_SUCCESS, SBI_ERR_FAILED } from "../sbi/index.ts";
import { PanicDetector } from "./panic-detector.ts";
import type { VirtioDevice } from "../virtio/types.ts";
import { VirtioMmioTransport, type VirtioMmioOptions } from "../virtio/transport/mmio.ts";
import { ramGuestMemory } from "../virtio/memory.ts";
import { VirtioConsoleDevice } from "../virtio/console/device.ts";
import { virtioMmioRegisterName } from "../virtio/transport/mmio-registers.ts";
import { collectLedger, type Ledger } from "./ledger.ts";

/** Exceptions the hypervisor hands to the guest kernel: all but ECALL from S (served here) and from M. */
const MEDELEG_PARAVIRT = 0xb1ff;
const MIDELEG_S_INTERRUPTS = MIP_SSIP | MIP_STIP | MIP_SEIP;
const MENVCFG_STCE = 1n << 63n;
/** cycle, time and instret readable from U-mode, as OpenSBI leaves scounteren: Linux only rewrites
 * it in its SBI PMU driver, so without SBI PMU the vDSO's rdtime depends on this. */
const SCOUNTEREN_CY_TM_IR = 0x7n;
const NEVER = 0xffff_ffff_ffff_ffffn;
/** fw_dynamic_info (OpenSBI docs/firmware/fw_dynamic.md): magic "OSBI", version 2, next mode S. */
const FW_DYNAMIC_INFO_MAGIC = 0x4942534fn;
const FW_DYNAMIC_INFO_VERSION = 2n;
const FW_DYNAMIC_NEXT_MODE_S = 1n;
/** Instructions per slice: long enough to amortise the call into wasm, short enough for timer latency. */
const SLICE_INSTRUCTIONS = 400_000;
/** A conservative guess of guest speed, used only to end a slice near the next timer deadline. */
const INSTRUCTIONS_PER_TICK = 30;

export type BootPath = "paravirtual" | "firmware";

export interface VirtMachineOptions {
  module: WebAssembly.Module;
  ramSize: number;
  kernel: Uint8Array;
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
  /** The RISC-V -> wasm translator: see CpuOptions.jit. */
  jit?: CpuOptions["jit"];
  /**
   * The host's clock and timers: guest time (the 10 MHz timebase), sleeping in WFI, and yielding to
   * the host between execution slices. Default: portableClock() (millisecond timers).
   */
  clock?: HostClock;
}

export type MachineExit =
  | { reason: "poweroff"; code: number }
  | { reason: "reboot" }
  | { reason: "panic" }
  | { reason: "halted"; message: string }
  | { reason: "stopped" };

export class VirtMachine implements SbiHost {
  readonly cpu: Cpu;
  readonly bus = new Bus();
  readonly plic: Plic;
  readonly uart: Uart16550;
  readonly rtc: GoldfishRtc;
  readonly finisher: SysconTest;
  readonly clint: Clint | undefined;
  readonly sbi: SbiDispatcher | undefined;
  /** The virtio-mmio transports, slot i at virtioMmioBase(i) with PLIC source virtioIrq(i). */
  readonly virtio: VirtioMmioTransport[] = [];
  /** The virtio-console carrying hvc0 when the machine's console is "hvc". */
  readonly hvc: VirtioConsoleDevice | undefined;
  readonly bootPath: BootPath;
  readonly deviceTree: Uint8Array;
  readonly clock: HostClock;
  readonly startedAt: number;
  /** When run() returned: the end of the ledger's wall time. */
  stoppedAt: number | undefined;
  /** PLIC source -> the device wired to it, for the ledger's interrupts by source. */
  readonly interruptSources = new Map<number, string>();
  /** Bytes through the SBI debug console (legacy and DBCN), for the ledger. */
  readonly sbiConsoleBytes = { in: 0, out: 0 };

  private exit: MachineExit | undefined;
  private sbiTimerDeadline = NEVER;
  private wake: (() => void) | undefined;
  private readonly panic = new PanicDetector();
  private panicSince: number | undefined;
  private readonly consoleInput: number[] = [];

  constructor(private readonly options: VirtMachineOptions) {
    this.clock = options.clock ?? portableClock();
    this.startedAt = this.clock.now();
    this.bootPath = options.firmware ? "firmware" : "paravirtual";
    const sstc = options.sstc ?? true;
    this.cpu = new Cpu({
      module: options.module,
      ramSize: options.ramSize,
      ramBase: MAP.RAM_BASE,
      bus: this.bus,
      readTime: timebaseTicks(this.clock),
      sstc,
      hypercall: this.bootPath === "paravirtual" ? (cpu) => this.sbi!.handleCpuEcall(cpu, 0) : undefined,
      jit: options.jit,
    });
    const output = (bytes: Uint8Array) => this.consoleOutput(bytes);
    this.plic = new Plic([this.wakingInterruptTarget()], { sources: MAP.PLIC_NUM_SOURCES });
    this.uart = new Uart16550({ output, irq: (on) => this.plic.setLevel(MAP.UART0_IRQ, on) });
    const wallClockNs = options.wallClockNs ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.rtc = new GoldfishRtc({ now: wallClockNs, irq: (on) => this.plic.setLevel(MAP.RTC_IRQ, on) });
    this.finisher = new SysconTest((event) => this.onFinisher(event));
    this.mapPlatformDevices();
    if (options.console === "hvc") this.hvc = new VirtioConsoleDevice({ output, name: "virtio-console0" });
    const virtioDevices = [...(this.hvc ? [this.hvc] : []), ...(options.virtio ?? [])];
    this.attachVirtio(virtioDevices);
    if (this.bootPath === "firmware") {
      this.clint = new Clint([this.cpu], () => this.cpu.readTime());
      this.bus.map(MAP.CLINT_BASE, MAP.CLINT_SIZE, this.clint);
    } else {
      this.sbi = new SbiDispatcher(standardExtensions(), this);
    }
    const { layout, deviceTree } = this.placeBootImages(sstc, virtioDevices.length);
    this.deviceTree = deviceTree;
    if (this.bootPath === "firmware") this.enterFirmware(layout);
    else this.enterKernel(layout, sstc);
  }

  /**
   * The PLIC's view of the hart. Device interrupts can be raised from host events (I/O
   * completions, incoming frames, input) while the hart sleeps in WFI: an asserted line must end
   * that sleep at once.
   */
  private wakingInterruptTarget() {
    return {
      setPendingInterrupt: (mask: number, asserted: boolean) => {
        this.cpu.setPendingInterrupt(mask, asserted);
        if (asserted) this.wake?.();
      },
    };
  }

  private mapPlatformDevices(): void {
    this.bus.map(MAP.PLIC_BASE, MAP.PLIC_SIZE, this.plic);
    this.bus.map(MAP.UART0_BASE, MAP.UART0_SIZE, this.uart);
    this.bus.map(MAP.RTC_BASE, MAP.RTC_SIZE, this.rtc);
    this.bus.map(MAP.TEST_BASE, MAP.TEST_SIZE, this.finisher);
    this.interruptSources.set(MAP.UART0_IRQ, this.uart.name);
    this.interruptSources.set(MAP.RTC_IRQ, this.rtc.name);
  }

  /** Each virtio device on its own virtio-mmio slot, in order, with its PLIC source. */
  private attachVirtio(devices: readonly VirtioDevice[]): void {
    if (devices.length > MAP.VIRTIO_MMIO_SLOTS) {
      throw new RangeError(`at most ${MAP.VIRTIO_MMIO_SLOTS} virtio devices fit the machine's virtio-mmio slots, got ${devices.length}`);
    }
    const guestMemory = ramGuestMemory(this.cpu.ram, MAP.RAM_BASE, (paddr, length) => this.cpu.ramWritten(paddr, length));
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
    const header = parseKernelImage(options.kernel);
    const isa = ["i", "m", "a", "f", "d", "c", "zicntr", "zicsr", "zifencei", "zihintpause"];
    if (sstc) isa.push("sstc");
    const dtConfig = (initrd?: { start: number; end: number }) => ({
      harts: 1,
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
    this.cpu.writeRam(layout.kernel, options.kernel);
    if (options.initrd && layout.initrd) this.cpu.writeRam(layout.initrd.start, options.initrd);
    this.cpu.writeRam(layout.fdt, deviceTree);
    return { layout, deviceTree };
  }

  /** Firmware boot: OpenSBI's fw_dynamic at the start of RAM, entered in M-mode with its info block. */
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
    this.cpu.pc = BigInt(MAP.RAM_BASE);
    this.cpu.setX(10, 0n); // a0: hart id
    this.cpu.setX(11, BigInt(layout.fdt)); // a1: device tree
    this.cpu.setX(12, BigInt(infoAddr)); // a2: fw_dynamic_info
  }

  /**
   * Paravirtual boot: what the SBI implementation would have done before entering the kernel
   * (SBI spec and Linux boot protocol): S-mode, MMU off, interrupts off, traps delegated,
   * counters readable.
   */
  private enterKernel(layout: BootLayout, sstc: boolean): void {
    this.cpu.writeCsr(CSR_MEDELEG, BigInt(MEDELEG_PARAVIRT));
    this.cpu.writeCsr(CSR_MIDELEG, BigInt(MIDELEG_S_INTERRUPTS));
    this.cpu.writeCsr(CSR_MCOUNTEREN, 0xffff_ffffn);
    this.cpu.writeCsr(CSR_SCOUNTEREN, SCOUNTEREN_CY_TM_IR);
    if (sstc) this.cpu.writeCsr(CSR_MENVCFG, MENVCFG_STCE);
    this.cpu.writeCsr(CSR_MSTATUS, BigInt(MSTATUS_FS_INITIAL));
    this.cpu.priv = PRIV_S;
    this.cpu.pc = BigInt(layout.kernel);
    this.cpu.setX(10, 0n);
    this.cpu.setX(11, BigInt(layout.fdt));
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

  /** Ends run() at the next slice boundary (Ctrl-A x). */
  stop(): void {
    this.exit ??= { reason: "stopped" };
    this.cpu.requestStop();
    this.wake?.();
  }

  private onFinisher(event: FinisherEvent): void {
    this.exit ??= event.kind === "reboot" ? { reason: "reboot" } : { reason: "poweroff", code: event.code };
    this.cpu.requestStop();
  }

  // ---- the run loop -----------------------------------------------------------------------------
  private updateInterrupts(now: number): void {
    if (this.bootPath === "paravirtual") this.cpu.setPendingInterrupt(MIP_STIP, BigInt(now) >= this.sbiTimerDeadline);
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
    let next = Infinity;
    if (this.sbiTimerDeadline !== NEVER) next = Math.min(next, Number(this.sbiTimerDeadline));
    if ((this.cpu.readCsr(CSR_MENVCFG) & MENVCFG_STCE) !== 0n) {
      const stimecmp = this.cpu.getState(L.S_STIMECMP);
      if (stimecmp !== NEVER) next = Math.min(next, Number(stimecmp));
    }
    const clintDeadline = this.clint?.nextDeadline();
    if (clintDeadline !== undefined) next = Math.min(next, clintDeadline);
    const rtcDeadlineNs = this.rtc.nextDeadline();
    if (rtcDeadlineNs !== undefined) {
      const ticksFromNow = Number((rtcDeadlineNs - this.rtc.time()) / 100n);
      next = Math.min(next, this.cpu.readTime() + Math.max(0, ticksFromNow));
    }
    return next === Infinity ? undefined : next;
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

  /** The paravirtualization ledger so far (see src/machine/ledger.ts). */
  ledger(): Ledger {
    return collectLedger(this);
  }

  async run(): Promise<MachineExit> {
    this.stoppedAt = undefined;
    while (!this.exit) {
      const now = this.cpu.readTime();
      this.updateInterrupts(now);
      const deadline = this.nextDeadline();
      let budget = SLICE_INSTRUCTIONS;
      if (deadline !== undefined && deadline > now) budget = Math.max(1000, Math.min(budget, (deadline - now) * INSTRUCTIONS_PER_TICK));
      const reason = this.cpu.run(budget);
      if (this.exit) break;
      if (this.panicSince !== undefined && this.clock.now() - this.panicSince > 300) {
        this.exit = { reason: "panic" };
        break;
      }
      if (reason === ExitReason.Wfi) {
        const wakeAt = this.nextDeadline();
        if (wakeAt === undefined && this.panicSince === undefined) {
          // Still wait: console input can wake the hart through the UART interrupt.
          await this.waitForEvent(100);
        } else {
          const ms = wakeAt === undefined ? 50 : (wakeAt - this.cpu.readTime()) / (TIMEBASE_FREQUENCY / 1000);
          if (ms > 0.05) await this.waitForEvent(Math.min(ms, 100));
        }
      } else {
        // Let the event loop deliver console input and timers between slices.
        await this.clock.yieldToHost();
      }
    }
    this.stoppedAt = this.clock.now();
    return this.exit!;
  }

  // ---- SbiHost: the hypervisor side of the hypercalls -------------------------------------------
  readonly hartCount = 1;
  get ramRegions() {
    return [{ base: BigInt(MAP.RAM_BASE), size: BigInt(this.options.ramSize) }];
  }
  readonly mvendorid = 0n;
  readonly marchid = 0n;
  readonly mimpid = 0n;
  private hartStopped = false;

  hartState(_hartId: number): HsmState {
    return this.hartStopped ? 1 : 0;
  }
  setTimer(_hartId: number, stimeValue: bigint): void {
    this.sbiTimerDeadline = stimeValue;
    this.cpu.setPendingInterrupt(MIP_STIP, BigInt(this.cpu.readTime()) >= stimeValue);
  }
  sendIpi(targets: readonly number[]): void {
    if (targets.includes(0)) this.cpu.setPendingInterrupt(MIP_SSIP, true);
  }
  clearIpi(_hartId: number): boolean {
    const was = (this.cpu.getState(L.S_MIP) & BigInt(MIP_SSIP)) !== 0n;
    this.cpu.setPendingInterrupt(MIP_SSIP, false);
    return was;
  }
  remoteFence(): void {
    // Decoded code is kept coherent with every store, so FENCE.I needs nothing; address
    // translations are dropped wholesale (correct for every range and ASID).
    this.cpu.flushTlb();
  }
  hartStart(): bigint {
    return SBI_ERR_FAILED; // there is no other hart; the SBI layer reports hart 0 as started
  }
  hartStop(_hartId: number): bigint {
    this.hartStopped = true;
    this.exit ??= { reason: "halted", message: "the only hart stopped itself (SBI HSM hart_stop)" };
    this.cpu.requestStop();
    return SBI_SUCCESS;
  }
  hartSuspend(): bigint {
    // Resuming at once is a legal (spurious) wake-up; Linux only suspends through cpuidle states
    // the device tree would have to describe, and it describes none.
    return SBI_SUCCESS;
  }
  systemReset(resetType: number, resetReason: number): void {
    // SBI spec §10.1: type 0 shutdown, 1 cold reboot, 2 warm reboot; reason 1 = system failure.
    this.exit ??= resetType === 0 ? { reason: "poweroff", code: resetReason === 1 ? 1 : 0 } : { reason: "reboot" };
    this.cpu.requestStop();
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
  readGuest(paddr: bigint, length: number): Uint8Array | undefined {
    const addr = Number(paddr);
    return paddr <= BigInt(Number.MAX_SAFE_INTEGER) && this.cpu.isRam(addr, length) ? this.cpu.readRam(addr, length) : undefined;
  }
  writeGuest(paddr: bigint, bytes: Uint8Array): boolean {
    const addr = Number(paddr);
    if (paddr > BigInt(Number.MAX_SAFE_INTEGER) || !this.cpu.isRam(addr, bytes.length)) return false;
    this.cpu.writeRam(addr, bytes);
    return true;
  }
}
