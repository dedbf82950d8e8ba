// A Linux guest driven from the host for `npm run bench -- pv`: builds the VirtMachine, types commands
// on its console and reads every counter the machine keeps, so that exits, hypercalls, interrupts
// and instructions can be attributed to one command (one benchmark phase) at a time.
//
// Counters are read directly from the components (bus, SBI dispatcher, PLIC, UART, virtio
// transports, CPU trap counts), which is what the machine's own --stats reads too.
import { VirtMachine, type MachineExit, type VirtMachineOptions } from "../../src/machine/virt.ts";
import { nodeClock } from "../../src/host/node/clock.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import type { CpioEntry } from "../../src/image/cpio.ts";
import { appendToInitrd } from "../../src/image/guest-programs.ts";

/** Trap-count index of an interrupt cause (CPU trapCounts: exceptions 0..31, interrupts 32..63). */
export const TRAP_INTERRUPT = (cause: number) => 32 + cause;
export const CAUSE_S_TIMER = 5;
export const CAUSE_M_TIMER = 7;
export const CAUSE_S_EXTERNAL = 9;
export const CAUSE_ECALL_FROM_S = 9;

export interface VirtioCounts {
  /** Used buffers returned through the device's queues (completions). */
  used: number;
  /** Used-buffer interrupts raised, and decisions the driver's suppression turned down. */
  usedInterrupts: number;
  suppressed: number;
  /** Rising edges of the device's interrupt line. */
  irqAssertions: number;
  /** QueueNotify writes (kicks). */
  notifications: number;
  coalesceFlushesByCount: number;
  coalesceFlushesByTimer: number;
}

/** Everything the machine counts, at one moment. */
export interface Counters {
  /** Host time (performance.now(), ms). */
  ms: number;
  /** Guest instructions retired. */
  instret: number;
  /** MMIO accesses that left the CPU core, in total and by device. */
  mmio: number;
  mmioByDevice: Record<string, number>;
  /** SBI calls served by the hypervisor (hypercalls), in total and by function. */
  sbi: number;
  sbiByFunction: Record<string, number>;
  /** Traps taken, by index (exceptions 0..31, interrupts 32..63). */
  traps: number[];
  plicClaims: number;
  plicEmptyClaims: number;
  plicCompletes: number;
  uartInterrupts: number;
  uartBytesOut: number;
  virtio: Record<string, VirtioCounts>;
}

export function readCounters(m: VirtMachine): Counters {
  const mmioByDevice: Record<string, number> = {};
  let mmio = 0;
  for (const [name, d] of m.bus.exits.byDevice) {
    mmioByDevice[name] = d.loads + d.stores;
    mmio += d.loads + d.stores;
  }
  const sbiByFunction: Record<string, number> = {};
  for (const [fn, n] of m.sbi?.counters.byFunction ?? []) sbiByFunction[fn] = n;
  const virtio: Record<string, VirtioCounts> = {};
  for (const t of m.virtio) {
    let used = 0;
    t.device.queueSizes.forEach((_, i) => (used += t.queue(i)?.counters.used ?? 0));
    virtio[t.name] = {
      used,
      usedInterrupts: t.counters.usedInterrupts,
      suppressed: t.counters.usedInterruptsSuppressed,
      irqAssertions: t.counters.irqAssertions,
      notifications: t.counters.notifications.reduce((a, b) => a + b, 0),
      coalesceFlushesByCount: t.counters.coalesceFlushesByCount ?? 0,
      coalesceFlushesByTimer: t.counters.coalesceFlushesByTimer ?? 0,
    };
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    ms: globalThis.performance.now(),
    instret: Number(m.cpu.instret),
    mmio,
    mmioByDevice,
    sbi: m.sbi?.counters.total ?? 0,
    sbiByFunction,
    traps: m.cpu.trapCounts().map(Number),
    plicClaims: sum(m.plic.counters.claims),
    plicEmptyClaims: sum(m.plic.counters.emptyClaims),
    plicCompletes: sum(m.plic.counters.completes),
    uartInterrupts: m.uart.counters.interrupts,
    uartBytesOut: m.uart.counters.bytesOut,
    virtio,
  };
}

/** b - a, field by field (what happened between two readings). */
export function delta(a: Counters, b: Counters): Counters {
  const sub = (x: Record<string, number>, y: Record<string, number>) =>
    Object.fromEntries(Object.keys({ ...x, ...y }).map((k) => [k, (y[k] ?? 0) - (x[k] ?? 0)]));
  const virtio: Record<string, VirtioCounts> = {};
  for (const name of Object.keys(b.virtio)) {
    virtio[name] = sub(a.virtio[name] as unknown as Record<string, number>, b.virtio[name] as unknown as Record<string, number>) as unknown as VirtioCounts;
  }
  return {
    ms: b.ms - a.ms,
    instret: b.instret - a.instret,
    mmio: b.mmio - a.mmio,
    mmioByDevice: sub(a.mmioByDevice, b.mmioByDevice),
    sbi: b.sbi - a.sbi,
    sbiByFunction: sub(a.sbiByFunction, b.sbiByFunction),
    traps: b.traps.map((v, i) => v - (a.traps[i] ?? 0)),
    plicClaims: b.plicClaims - a.plicClaims,
    plicEmptyClaims: b.plicEmptyClaims - a.plicEmptyClaims,
    plicCompletes: b.plicCompletes - a.plicCompletes,
    uartInterrupts: b.uartInterrupts - a.uartInterrupts,
    uartBytesOut: b.uartBytesOut - a.uartBytesOut,
    virtio,
  };
}

/** Exits: every MMIO access and every hypercall leaves the core for the hypervisor. */
export const exitsOf = (c: Counters) => c.mmio + c.sbi;

/**
 * The guest image's initramfs with a second archive appended (the kernel unpacks concatenated
 * archives in order, later files replacing earlier ones): /usr/bin/pvbench, and a module list
 * reduced to what the comparison needs, which shortens each boot by the modules it skips.
 */
export function benchInitrd(base: Uint8Array, pvbench: Uint8Array, modules: readonly string[]): Uint8Array {
  const entries: CpioEntry[] = [
    { path: "usr/bin/pvbench", type: "file", mode: 0o755, data: pvbench },
    {
      path: "etc/modules-load.list",
      type: "file",
      mode: 0o644,
      data: new TextEncoder().encode(`# parley bench pv: only what the comparison needs\n${modules.map((m) => `${m}\n`).join("")}`),
    },
  ];
  return appendToInitrd(base, entries);
}

/** Paths (under /lib/modules/VERSION) of the modules each kind of guest loads. */
export const MODULES = {
  console: ["kernel/drivers/virtio/virtio_mmio.ko"],
  io: [
    "kernel/drivers/virtio/virtio_mmio.ko",
    "kernel/drivers/block/virtio_blk.ko",
    "kernel/net/core/failover.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/drivers/net/virtio_net.ko",
  ],
} as const;

export type GuestOptions = Omit<VirtMachineOptions, "module" | "output">;

/** Characters of output kept for matches that straddle chunks (markers are far shorter). */
const TAIL = 512;

interface Waiter {
  pattern: RegExp;
  /** The last character of every match (e.g. "\n" for a line): only output containing it is searched. */
  trigger: string;
  from: number;
  resolve: (m: RegExpExecArray) => void;
  /** Runs synchronously when the pattern appears (e.g. to read counters at that instant). */
  onMatch?: (m: RegExpExecArray) => void;
}

/** A booted guest and its console. */
export class PvGuest {
  readonly machine: VirtMachine;
  readonly finished: Promise<MachineExit>;
  /** Length of everything the guest printed so far (console and early console). */
  outputLength = 0;
  /**
   * What the guest printed, as Latin-1 chunks joined on demand. The UART hands over one byte per
   * call, and the ttyS0 measurement is timed in the guest: the host's share per byte must stay
   * small, so output is neither appended to one growing string nor searched on every byte.
   */
  private chunks: string[] = [];
  private joined = "";
  /** The last TAIL characters searched, and what arrived since (searched when a trigger arrives). */
  private tail = "";
  private unsearched: string[] = [];
  private unsearchedLength = 0;
  /** Set once the machine has stopped. */
  exit: MachineExit | undefined;
  private readonly waiters = new Set<Waiter>();

  constructor(options: GuestOptions) {
    this.machine = new VirtMachine({ clock: nodeClock, ...options, module: loadCoreModule(), output: (bytes) => this.onOutput(bytes) });
    this.finished = this.machine.run().then((exit) => {
      this.exit = exit;
      return exit;
    });
  }

  /** Everything the guest printed, decoded as Latin-1. */
  get output(): string {
    if (this.chunks.length) {
      this.joined += this.chunks.join("");
      this.chunks = [];
    }
    return this.joined;
  }

  private onOutput(bytes: Uint8Array): void {
    const text = bytes.length === 1 ? String.fromCharCode(bytes[0]) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
    this.chunks.push(text);
    if (this.chunks.length >= 4096) this.chunks = [this.chunks.join("")];
    this.outputLength += text.length;
    this.unsearched.push(text);
    this.unsearchedLength += text.length;
    // A pattern can only start matching when the character its match ends with arrives.
    let triggered = false;
    for (const w of this.waiters) if (text.includes(w.trigger)) triggered = true;
    if (!triggered && this.unsearchedLength < 65536) return;
    const window = this.tail + this.unsearched.join("");
    this.unsearched = [];
    this.unsearchedLength = 0;
    this.tail = window.slice(-TAIL);
    if (!triggered) return;
    const windowStart = this.outputLength - window.length;
    for (const w of this.waiters) {
      const from = Math.max(w.from, windowStart);
      const m = w.pattern.exec(window.slice(from - windowStart));
      if (!m) continue;
      m.index += from;
      this.waiters.delete(w);
      w.onMatch?.(m);
      w.resolve(m);
    }
  }

  /**
   * Resolves when `pattern` appears in the output at or after `from` (index into `output`);
   * `onMatch` runs inside the output callback, before the guest executes another instruction.
   */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0, onMatch?: (m: RegExpExecArray) => void, trigger = "\n"): Promise<RegExpExecArray> {
    const existing = pattern.exec(this.output.slice(from));
    if (existing) {
      existing.index += from;
      onMatch?.(existing);
      return Promise.resolve(existing);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { pattern, trigger, from, resolve, onMatch };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${pattern}; output tail:\n${this.output.slice(-1500)}`));
      }, timeoutMs);
      waiter.resolve = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.add(waiter);
      this.finished.then((exit) => {
        if (!this.waiters.has(waiter)) return;
        this.waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`guest stopped (${exit.reason}) before ${pattern} appeared; output tail:\n${this.output.slice(-1500)}`));
      });
    });
  }

  /** Waits for the shell prompt, then keeps kernel messages off the console (dmesg -n 1). */
  async shell(timeoutMs: number): Promise<void> {
    await this.waitFor(/root@parley:[^\n]*# /, timeoutMs, 0, undefined, " ");
    const quiet = await this.run("dmesg -n 1");
    if (quiet.status !== 0) throw new Error(`dmesg -n 1 failed: ${quiet.text}`);
  }

  /**
   * Runs a shell command and returns its output, exit status and the counters that changed while
   * it ran. The output is taken between markers the command line prints itself, so the shell's
   * echo of the line never mixes in.
   *
   * Without `phase`, the counters span from just before the line is typed to the output callback
   * that delivers the end marker. With `phase`, they span only the command itself: the line prints
   * a marker before and after it, and the counters are read in the output callbacks of those two
   * markers. Typing the line (each echoed character is a console write and an interrupt) then
   * falls outside the window; what remains inside besides the command is printing one marker.
   */
  async run(command: string, opts: { timeoutMs?: number; phase?: boolean } = {}): Promise<{ text: string; status: number; counters: Counters }> {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const tag = `PV${Math.random().toString(36).slice(2, 10)}`;
    const marker = (kind: string) => new RegExp(`\\n${tag}${kind}(\\d*)\\r?\\n`);
    const start = this.outputLength;
    let first: Counters | undefined;
    let last: Counters | undefined;
    const began = opts.phase ? this.waitFor(marker("B"), timeoutMs, start, () => (first = this.readAtMarker())) : undefined;
    const phaseEnded = opts.phase ? this.waitFor(marker("P"), timeoutMs, start, () => (last = this.readAtMarker())) : undefined;
    const ended = this.waitFor(marker("E"), timeoutMs, start, opts.phase ? undefined : () => (last = this.readAtMarker()));
    // Unhandled rejections of the waits not yet awaited would end the process; they surface below.
    began?.catch(() => {});
    phaseEnded?.catch(() => {});
    if (!opts.phase) first = readCounters(this.machine);
    const line = opts.phase
      ? `echo ${tag}S; printf '\\n${tag}B\\n'; ${command}; pv_status=$?; printf '\\n${tag}P\\n'; printf '\\n${tag}E%d\\n' $pv_status`
      : `echo ${tag}S; ${command}; printf '\\n${tag}E%d\\n' $?`;
    this.machine.sendInput(new TextEncoder().encode(line + "\n"));
    let textFrom: RegExpExecArray;
    let textTo: RegExpExecArray;
    if (began && phaseEnded) {
      // Each reading is completed as soon as its marker's slice has ended, before the next one runs.
      textFrom = await began;
      this.completeMarkerReading(first!);
      textTo = await phaseEnded;
      this.completeMarkerReading(last!);
      await ended;
    } else {
      textTo = await ended;
      this.completeMarkerReading(last!);
      const all = this.output.slice(start, textTo.index);
      const begin = new RegExp(`(?:^|\\n)${tag}S\\r?\\n`).exec(all);
      if (!begin) throw new Error(`start marker of ${JSON.stringify(command)} not found in:\n${all.slice(0, 2000)}`);
      textFrom = Object.assign([begin[0]], { index: start + begin.index, input: all, groups: undefined }) as RegExpExecArray;
    }
    const statusMatch = marker("E").exec(this.output.slice(start));
    const text = this.output.slice(textFrom.index + textFrom[0].length, textTo.index).replace(/\r/g, "");
    return { text, status: Number(statusMatch![1]), counters: delta(first!, last!) };
  }

  /**
   * Counters at the instant the guest printed a marker, read inside the output callback. The core
   * writes the instruction count back only when its slice ends, so the slice is ended here, right
   * after the instruction that printed; completeMarkerReading() then takes the exact count.
   */
  readAtMarker(): Counters {
    this.machine.cpu.requestStop();
    return readCounters(this.machine);
  }

  /** Call after the awaited marker (the slice has ended by then): fills in the exact instruction count. */
  completeMarkerReading(c: Counters): void {
    c.instret = Number(this.machine.cpu.instret);
  }

  /**
   * Runs a command that must succeed and print key=value pairs, as a phase (see run()); returns
   * the values with the phase's counters. With `baseline`, a command that does none of the work
   * (e.g. a count of 0) runs first and its counters are subtracted, so that starting the
   * program (fork, exec, page faults) and printing its result are not charged to the workload.
   */
  async measure(command: string, baseline?: string, timeoutMs = 300_000): Promise<{ values: Record<string, number>; counters: Counters; text: string }> {
    const base = baseline === undefined ? undefined : await this.run(baseline, { timeoutMs, phase: true });
    if (base && base.status !== 0) throw new Error(`guest command failed (status ${base.status}): ${baseline}\n${base.text.slice(-2000)}`);
    const r = await this.run(command, { timeoutMs, phase: true });
    if (r.status !== 0) throw new Error(`guest command failed (status ${r.status}): ${command}\n${r.text.slice(-2000)}`);
    const values: Record<string, number> = {};
    for (const m of r.text.matchAll(/(?:^|\s)([a-z][a-z0-9_]*)=(-?[\d.]+)/g)) values[m[1]] = Number(m[2]);
    return { values, counters: base ? delta(base.counters, r.counters) : r.counters, text: r.text };
  }

  /** Stops the machine (if still running) and waits for its run loop to end. */
  async stop(): Promise<void> {
    this.machine.stop();
    await this.finished;
  }
}
