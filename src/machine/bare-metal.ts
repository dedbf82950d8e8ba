// A bare-metal machine for RV64 ELF programs: RAM at 0x80000000, a CLINT, HTIF for console
// and exit, and a 16550 UART at QEMU virt's address (polled: there is no interrupt controller).
// The program starts in M-mode at its entry point, as on Spike or QEMU's spike machine.
import { portableClock, type HostClock } from "../platform/clock.ts";
import { Cpu, timebaseTicks, ExitReason, MENVCFG_STCE, type CpuOptions } from "../cpu/cpu.ts";
import * as L from "../cpu/layout.ts";
import { CSR_MENVCFG } from "../cpu/csr-numbers.ts";
import { Bus } from "./bus.ts";
import { Clint, CLINT_BASE, CLINT_SIZE } from "../devices/clint.ts";
import { Htif } from "../devices/htif.ts";
import { Uart16550 } from "../devices/uart16550.ts";
import { UART0_BASE, UART0_SIZE } from "../platform/memory-map.ts";
import { collectLedger, type Ledger } from "./ledger.ts";
import { ElfError, type ElfImage } from "../platform/elf.ts";

export const BARE_METAL_RAM_DEFAULT = 128 << 20;
/** Instructions per call into the engine: long enough to amortise the call, short enough for timer latency. */
const SLICE_INSTRUCTIONS = 500_000;

export interface BareMetalOptions {
  module: WebAssembly.Module;
  elf: ElfImage;
  ramSize?: number;
  /** Stop after about this many instructions (the result then has exitCode undefined). */
  maxInstructions?: number;
  onOutput?: (bytes: Uint8Array) => void;
  /**
   * The host's clock and timers: guest time, sleeping while the hart waits in WFI, and giving
   * control back to the host now and then. Default: portableClock().
   */
  clock?: HostClock;
  /** The RISC-V -> wasm translator: see CpuOptions.jit. */
  jit?: CpuOptions["jit"];
}

export interface BareMetalResult {
  /** Program exit code from HTIF; undefined when stopped by the instruction limit. */
  exitCode: number | undefined;
  stopReason: "exit" | "instruction-limit";
  instructions: bigint;
  seconds: number;
  trapCounts: bigint[];
}

export class BareMetalMachine {
  readonly cpu: Cpu;
  readonly bus = new Bus();
  readonly clint: Clint;
  readonly htif: Htif | undefined;
  /** 16550 at 0x10000000 as on QEMU virt: output goes to onOutput, there is no input. */
  readonly uart: Uart16550;
  readonly clock: HostClock;
  readonly startedAt: number;
  /** When run() returned: the end of the ledger's wall time. */
  stoppedAt: number | undefined;
  private exited = false;

  constructor(private readonly options: BareMetalOptions) {
    const ramSize = options.ramSize ?? BARE_METAL_RAM_DEFAULT;
    this.clock = options.clock ?? portableClock();
    this.startedAt = this.clock.now();
    this.cpu = new Cpu({ module: options.module, ramSize, bus: this.bus, readTime: timebaseTicks(this.clock), sstc: true, jit: options.jit });
    this.clint = new Clint([this.cpu], () => this.cpu.readTime());
    this.bus.map(CLINT_BASE, CLINT_SIZE, this.clint);
    // No interrupt controller: programs poll LSR, and the interrupt output goes nowhere.
    this.uart = new Uart16550({ output: (bytes) => options.onOutput?.(bytes), irq: () => {} });
    this.bus.map(UART0_BASE, UART0_SIZE, this.uart);

    const { elf } = options;
    for (const segment of elf.segments) {
      if (!this.cpu.isRam(segment.paddr, segment.memsz)) {
        throw new ElfError(
          `segment at 0x${segment.paddr.toString(16)} (${segment.memsz} bytes) lies outside RAM ` +
            `0x${this.cpu.ramBase.toString(16)}-0x${(this.cpu.ramBase + ramSize - 1).toString(16)}`,
        );
      }
      this.cpu.writeRam(segment.paddr, segment.data);
      if (segment.memsz > segment.data.length) {
        this.cpu.writeRam(segment.paddr + segment.data.length, new Uint8Array(segment.memsz - segment.data.length));
      }
    }
    const tohost = elf.symbols.get("tohost");
    if (tohost !== undefined) {
      if (!this.cpu.isRam(tohost, 8)) throw new ElfError(`tohost symbol at 0x${tohost.toString(16)} is outside RAM`);
      this.htif = new Htif(this.cpu, tohost, elf.symbols.get("fromhost"), (bytes) => options.onOutput?.(bytes), () => {
        this.exited = true;
        this.cpu.requestStop();
      });
      this.bus.watch(tohost, tohost + 8, (paddr, size, value) => this.htif!.store(paddr, size, value), {
        name: "htif",
        registerName: () => "tohost",
      });
      this.cpu.watchStores(tohost, tohost + 8);
    }
    this.cpu.pc = BigInt(elf.entry);
  }

  /** The next time (mtime ticks) at which a timer interrupt could wake a sleeping hart. */
  private nextTimerDeadline(): number | undefined {
    let deadline = this.clint.nextDeadline();
    if ((this.cpu.readCsr(CSR_MENVCFG) & MENVCFG_STCE) !== 0n) {
      const stimecmp = this.cpu.getState(L.S_STIMECMP);
      if (stimecmp !== 0xffff_ffff_ffff_ffffn) deadline = Math.min(deadline ?? Infinity, Number(stimecmp));
    }
    return deadline;
  }

  /** The paravirtualization ledger so far (see src/machine/ledger.ts). */
  ledger(): Ledger {
    return collectLedger(this);
  }

  async run(): Promise<BareMetalResult> {
    this.stoppedAt = undefined;
    const clock = this.clock;
    const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimer(ms, resolve));
    const limit = this.options.maxInstructions === undefined ? undefined : BigInt(this.options.maxInstructions);
    const start = clock.now();
    const startInstret = this.cpu.instret;
    let lastYield = start;
    while (!this.exited) {
      const done = this.cpu.instret - startInstret;
      if (limit !== undefined && done >= limit) break;
      const budget = limit === undefined ? SLICE_INSTRUCTIONS : Number(BigInt(SLICE_INSTRUCTIONS) < limit - done ? BigInt(SLICE_INSTRUCTIONS) : limit - done);
      this.clint.update();
      const reason = this.cpu.run(budget);
      if (reason === ExitReason.Wfi && !this.exited) {
        const deadline = this.nextTimerDeadline();
        if (deadline === undefined) {
          throw new Error(`hart 0 is waiting (WFI at pc 0x${this.cpu.pc.toString(16)}) with no timer armed: it can never wake`);
        }
        const ticks = deadline - this.cpu.readTime();
        if (ticks > 0) await sleep(Math.max(0, ticks / 10_000));
      }
      const now = clock.now();
      if (now - lastYield > 50) {
        lastYield = now;
        await clock.yieldToHost();
      }
    }
    this.stoppedAt = clock.now();
    return {
      exitCode: this.htif?.exitCode,
      stopReason: this.exited ? "exit" : "instruction-limit",
      instructions: this.cpu.instret - startInstret,
      seconds: (clock.now() - start) / 1000,
      trapCounts: this.cpu.trapCounts(),
    };
  }
}
