// `parley bench pv`: each paravirtual path of Parley measured against its emulated counterpart,
// Linux doing the same work two ways, with every counter the machine keeps.
//
//   console   1 MiB written to ttyS0 (16550, trap-and-emulate) and to hvc0 (virtio-console) by
//             one guest; and the kernel's boot log through the 16550 early console against
//             earlycon=sbi (SBI debug console hypercalls)
//   timer     SBI set_timer hypercalls against Sstc (the guest writes stimecmp, no exit), idle
//             and busy, with cyclictest-style timer lateness measured in the guest
//   boot      the hypervisor as SBI implementation against OpenSBI in emulated M-mode
//   plic      PLIC claim/complete exits per virtio interrupt (virtio-blk reads)
//   coalesce  interrupt coalescing on virtio-blk and virtio-net, from the lowest-latency setting
//             to the highest-throughput one
//
// Guests are VirtMachines driven from this process (src/host/node/pv-guest.ts), so counters can
// be read between commands and attributed to one phase. Guest-side times come from
// guest/pv/pvbench.c (clock_gettime through the vDSO, nanoseconds). Results: a table per
// comparison on stdout, charts (SVG and PNG) and JSON in cache/bench/pv/ (pv-quick/ for --quick),
// and with --out DIR the charts and a Markdown section (pv-results.md) in DIR.
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { buildGuest } from "../../src/image/toolchain.ts";
import { GUEST_ARCH_FLAGS } from "../../src/image/guest-programs.ts";
import { CACHE_DIR, REPO_ROOT } from "../../src/host/node/paths.ts";
import { openBlockFile } from "../../src/host/node/block-file.ts";
import { ResponderBackend } from "./responder.ts";
import {
  CAUSE_ECALL_FROM_S,
  CAUSE_M_TIMER,
  CAUSE_S_EXTERNAL,
  CAUSE_S_TIMER,
  MODULES,
  PvGuest,
  TRAP_INTERRUPT,
  benchInitrd,
  exitsOf,
  readCounters,
  delta,
  type Counters,
  type GuestOptions,
} from "./guest.ts";
import { COLORS, barChartSvg, curveChartSvg, writeChart } from "../charts.ts";
import { VirtioBlk } from "../../src/virtio/blk/device.ts";
import { VirtioNet } from "../../src/virtio/net/device.ts";
import type { VirtioCoalesce } from "../../src/virtio/transport/mmio.ts";
import { preciseTimer } from "../../src/host/node/precise-timer.ts";
import type { VirtioDevice } from "../../src/virtio/types.ts";

export const COMPARISONS = ["console", "timer", "boot", "plic", "coalesce"] as const;
export type Comparison = (typeof COMPARISONS)[number];

export interface BenchPvOptions {
  /** Every comparison at reduced size (CI): one repetition, smaller transfers, shorter phases. */
  quick?: boolean;
  /** Also write the charts and pv-results.md here (e.g. docs/). */
  out?: string;
  /** Also write the results as JSON here. */
  json?: string;
  /** A subset of the comparisons (default: all). plic and coalesce share one guest. */
  only?: Comparison[];
  /** Boots per boot-time measurement and passes per measurement elsewhere (default 3, quick 1); medians are reported. */
  reps?: number;
  /** Re-draw tables, charts and the Markdown section from a results file instead of measuring. */
  render?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** Sizes of every workload, full and quick. */
function sizes(quick: boolean) {
  return quick
    ? {
        consoleBytes: 128 << 10,
        reps: 1,
        timerSeconds: 2,
        timerlatCount: 300,
        readlatCount: 200,
        streamMiB: 32,
        udprrCount: 200,
        udptxCount: 5000,
      }
    : {
        consoleBytes: 1 << 20,
        reps: 3,
        timerSeconds: 5,
        timerlatCount: 2000,
        readlatCount: 2000,
        streamMiB: 256,
        udprrCount: 2000,
        udptxCount: 40000,
      };
}

/** The coalescing settings swept, from no coalescing to the most throughput-oriented. */
export const COALESCE_SETTINGS: VirtioCoalesce[] = [
  { maxCompletions: 1, maxDelayUs: 0 },
  { maxCompletions: 4, maxDelayUs: 50 },
  { maxCompletions: 16, maxDelayUs: 200 },
  { maxCompletions: 64, maxDelayUs: 1000 },
];
export const coalesceLabel = (c: VirtioCoalesce) => (c.maxCompletions === 1 && c.maxDelayUs === 0 ? "1/0 (off)" : `${c.maxCompletions}/${c.maxDelayUs}us`);

const SHELL_MS = 300_000;
const INIT_MARKER = /Run \/init as init process/;
const MEMORY = 512 << 20;
const GUEST_IP = "10.0.2.15";
const HOST_IP = [10, 0, 2, 2];
const NET_DATAGRAM = 1400;

// ---- results --------------------------------------------------------------------------------

export interface ConsoleSide {
  bytes: number;
  seconds: number;
  mibPerSecond: number;
  exits: number;
  exitsPerKiB: number;
  hypercalls: number;
  deviceInterrupts: number;
  externalInterrupts: number;
  instructionsPerByte: number;
  mmioByDevice: Record<string, number>;
}

export interface BootToInit {
  seconds: number;
  instructions: number;
  exits: number;
  mmio: number;
  hypercalls: number;
  /** ECALLs from S-mode that trapped into the guest's own M-mode (firmware boot path). */
  ecallTraps: number;
  machineTimerInterrupts: number;
  logBytes: number;
  sbiByFunction: Record<string, number>;
}

export interface BootPair {
  firmware: BootToInit;
  paravirtual: BootToInit;
  runs: { firmware: BootToInit[]; paravirtual: BootToInit[] };
}

export interface TimerSide {
  idle: { seconds: number; hypercallsPerSecond: number; exitsPerSecond: number; timerInterruptsPerSecond: number };
  busy: { seconds: number; hypercallsPerSecond: number; exitsPerSecond: number; timerInterruptsPerSecond: number; iterationsPerSecond: number };
  latencyIdle: TimerLatency;
  latencyBusy: TimerLatency;
}

export interface TimerLatency {
  periodUs: number;
  count: number;
  avgUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  exitsPerTimer: number;
  hypercallsPerTimer: number;
}

export interface IoPhase {
  completions: number;
  interrupts: number;
  interruptsPerCompletion: number;
  plicExits: number;
  exits: number;
  exitsPerCompletion: number;
  instructionsPerCompletion: number;
  flushesByCount: number;
  flushesByTimer: number;
}

export interface CoalescePoint {
  setting: VirtioCoalesce;
  label: string;
  /** count: reads (blk) or round trips (net) measured. */
  blkLatency: IoPhase & { count: number; avgUs: number; p50Us: number; p99Us: number };
  blkStream: IoPhase & { mbPerSecond: number };
  netLatency: IoPhase & { count: number; avgUs: number; p50Us: number; p99Us: number; lost: number };
  netStream: IoPhase & { mbPerSecond: number; datagrams: number };
}

export interface PlicResult {
  workload: string;
  /** Used-buffer interrupts virtio-blk raised during the workload. */
  virtioInterrupts: number;
  /** External interrupts the guest took (all sources). */
  externalInterrupts: number;
  claims: number;
  emptyClaims: number;
  completes: number;
  /** PLIC claim and complete accesses (successful and empty claims, completes) per virtio interrupt. */
  plicExitsPerInterrupt: number;
  /** The device's own register exits (InterruptStatus, InterruptACK, QueueNotify) per interrupt. */
  deviceExitsPerInterrupt: number;
  completions: number;
}

export interface PvResults {
  quick: boolean;
  date: string;
  /** The command line that measured these results. */
  command?: string;
  kernel: string;
  /** The host, and its load average (1 min) when the run started and ended: other work on the host slows the timed parts. */
  host: { node: string; cpus: number; loadStart: number; loadEnd?: number };
  console?: { ttyS0: ConsoleSide; hvc0: ConsoleSide; runs: number; earlyUart: BootToInit; earlySbi: BootToInit; earlyRuns: { uart: BootToInit[]; sbi: BootToInit[] } };
  timer?: { sbi: TimerSide; sstc: TimerSide };
  /** With Sstc (the default machine) and without it (every timer programming is an SBI call). */
  boot?: { sstc: BootPair; noSstc: BootPair };
  plic?: PlicResult[];
  coalesce?: CoalescePoint[];
}

// ---- the guest image ------------------------------------------------------------------------

interface BenchImage {
  image: GuestImage;
  kernel: Uint8Array;
  firmware: Uint8Array;
  initrd: (modules: readonly string[]) => Uint8Array;
}

async function prepareImage(log: (line: string) => void): Promise<BenchImage> {
  const image = await buildGuestImage({ progress: false });
  log(`guest image: Debian ${image.kernelVersion}`);
  const pvbench = await buildGuest({
    name: "pvbench",
    target: "linux-static",
    sources: ["guest/pv/pvbench.c"],
    args: [...GUEST_ARCH_FLAGS, "-O2", "-static", "-Wall", "-Wextra"],
  });
  const base = new Uint8Array(readFileSync(image.initrd));
  const program = new Uint8Array(readFileSync(pvbench));
  if (!image.opensbi.fwDynamic) throw new Error("the guest image has no OpenSBI fw_dynamic; rebuild it with `parley image build --force`");
  return {
    image,
    kernel: new Uint8Array(readFileSync(image.kernel)),
    firmware: new Uint8Array(readFileSync(image.opensbi.fwDynamic)),
    initrd: (modules) => benchInitrd(base, program, modules),
  };
}

function guestOptions(img: BenchImage, o: Partial<GuestOptions> & { modules: readonly string[] }): GuestOptions {
  const { modules, ...rest } = o;
  return { ramSize: MEMORY, kernel: img.kernel, initrd: img.initrd(modules), bootargs: "console=hvc0 earlycon=sbi", console: "hvc", ...rest };
}

async function bootShell(img: BenchImage, o: Partial<GuestOptions> & { modules: readonly string[] }): Promise<PvGuest> {
  const guest = new PvGuest(guestOptions(img, o));
  try {
    await guest.shell(SHELL_MS);
  } catch (err) {
    await guest.stop();
    throw err;
  }
  return guest;
}

/** Boots until Linux starts init; counters are read in the output callback that prints the marker. */
async function bootToInit(img: BenchImage, o: Partial<GuestOptions>): Promise<BootToInit> {
  const started = globalThis.performance.now();
  const guest = new PvGuest(guestOptions(img, { modules: [], ...o }));
  const zero = { ...readCounters(guest.machine), instret: 0, ms: started };
  let at: Counters | undefined;
  try {
    await guest.waitFor(INIT_MARKER, SHELL_MS, 0, () => (at = guest.readAtMarker()), "s");
    guest.completeMarkerReading(at!);
  } finally {
    await guest.stop();
  }
  const d = delta(zero, at!);
  return {
    seconds: d.ms / 1000,
    instructions: d.instret,
    exits: exitsOf(d),
    mmio: d.mmio,
    hypercalls: d.sbi,
    ecallTraps: d.traps[CAUSE_ECALL_FROM_S],
    machineTimerInterrupts: d.traps[TRAP_INTERRUPT(CAUSE_M_TIMER)],
    logBytes: guest.output.length,
    sbiByFunction: d.sbiByFunction,
  };
}

/** A count of 0 written as wide as `n`, for baseline commands of the same length. */
const zeros = (n: number) => "0".repeat(String(n).length);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The run with the median wall time (its counters belong together; they barely vary). */
function medianRun(runs: BootToInit[]): BootToInit {
  const m = median(runs.map((r) => r.seconds));
  return runs.reduce((best, r) => (Math.abs(r.seconds - m) < Math.abs(best.seconds - m) ? r : best));
}

// ---- 1. console -------------------------------------------------------------------------------

async function consoleComparison(img: BenchImage, size: ReturnType<typeof sizes>, reps: number, log: (l: string) => void): Promise<NonNullable<PvResults["console"]>> {
  log("console: booting a guest with hvc0 as its console");
  const guest = await bootShell(img, { modules: MODULES.console });
  let ttyS0: ConsoleSide;
  let hvc0: ConsoleSide;
  try {
    // The payload sits in tmpfs, and both ttys are in raw output mode, so that what is timed is
    // the path from the tty driver to the host, not the line discipline rewriting newlines.
    const prep = await guest.run(
      `yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c ${size.consoleBytes} > /tmp/payload; ` +
        ": > /tmp/empty; stty -opost < /dev/ttyS0; stty -opost < /dev/hvc0",
    );
    if (prep.status !== 0) throw new Error(`console: preparing the payload failed: ${prep.text}`);
    const write = async (tty: string): Promise<ConsoleSide> => {
      // The same command with an empty file first: its counters (starting pvbench, opening the
      // tty, the markers) are subtracted so that what remains is the payload's.
      const full = await guest.measure(`pvbench write /tmp/payload /dev/${tty}`, `pvbench write /tmp/empty   /dev/${tty}`);
      const c = full.counters;
      const bytes = full.values.bytes;
      if (bytes !== size.consoleBytes) throw new Error(`console: wrote ${bytes} of ${size.consoleBytes} bytes to ${tty}`);
      const exits = exitsOf(c);
      const seconds = full.values.elapsed_ns / 1e9;
      return {
        bytes,
        seconds,
        mibPerSecond: bytes / (1 << 20) / seconds,
        exits,
        exitsPerKiB: exits / (bytes / 1024),
        hypercalls: c.sbi,
        // Rising edges of each device's interrupt line: what the PLIC is asked to deliver.
        deviceInterrupts: tty === "ttyS0" ? c.uartInterrupts : c.virtio[guest.machine.hvc!.name].irqAssertions,
        externalInterrupts: c.traps[TRAP_INTERRUPT(CAUSE_S_EXTERNAL)],
        instructionsPerByte: c.instret / bytes,
        mmioByDevice: Object.fromEntries(Object.entries(c.mmioByDevice).filter(([, v]) => v !== 0)),
      };
    };
    // Alternating, repeated; the run with the median time is reported (counts barely vary).
    const runs: { ttyS0: ConsoleSide[]; hvc0: ConsoleSide[] } = { ttyS0: [], hvc0: [] };
    for (let r = 0; r < reps; r++) {
      for (const tty of ["ttyS0", "hvc0"] as const) {
        const side = await write(tty);
        runs[tty].push(side);
        log(`console: ${tty}: ${side.mibPerSecond.toFixed(2)} MiB/s, ${side.exitsPerKiB.toFixed(1)} exits/KiB, ${side.deviceInterrupts} interrupts, ${side.instructionsPerByte.toFixed(1)} instructions/byte`);
      }
    }
    const pick = (xs: ConsoleSide[]) => {
      const m = median(xs.map((x) => x.seconds));
      return xs.reduce((best, x) => (Math.abs(x.seconds - m) < Math.abs(best.seconds - m) ? x : best));
    };
    ttyS0 = pick(runs.ttyS0);
    hvc0 = pick(runs.hvc0);
  } finally {
    await guest.stop();
  }

  // The kernel's own log, from the first line to "Run /init", through each early console. hvc0 is
  // the console so that the early console carries the whole log (hvc0 appears only after /init
  // loads virtio_mmio, and Linux keeps a boot console until the real one registers).
  const earlyRuns = { uart: [] as BootToInit[], sbi: [] as BootToInit[] };
  for (let r = 0; r < reps; r++) {
    for (const [key, earlycon] of [["uart", "uart8250,mmio,0x10000000"], ["sbi", "sbi"]] as const) {
      const run = await bootToInit(img, { bootargs: `console=hvc0 earlycon=${earlycon}` });
      earlyRuns[key].push(run);
      log(`console: earlycon=${earlycon}: ${run.seconds.toFixed(2)} s to init, ${run.exits} exits, ${run.hypercalls} hypercalls, ${run.logBytes} bytes of log`);
    }
  }
  return { ttyS0, hvc0, runs: reps, earlyUart: medianRun(earlyRuns.uart), earlySbi: medianRun(earlyRuns.sbi), earlyRuns };
}

// ---- 2. timer ---------------------------------------------------------------------------------

async function timerSide(img: BenchImage, sstc: boolean, size: ReturnType<typeof sizes>, log: (l: string) => void): Promise<TimerSide> {
  const name = sstc ? "Sstc" : "SBI set_timer";
  log(`timer: booting a guest with ${sstc ? "Sstc" : "SBI timer calls (no Sstc)"}`);
  const guest = await bootShell(img, { sstc, modules: MODULES.console });
  try {
    // What a phase costs without any work: printing its end marker on hvc0 (a notification, the
    // interrupt, InterruptStatus/ACK and the PLIC). Subtracted from the counts (not the time).
    const empty = (await guest.run(":", { phase: true })).counters;
    const rates = (c: Counters) => {
      const s = c.ms / 1000;
      return {
        seconds: s,
        hypercallsPerSecond: (c.sbi - empty.sbi) / s,
        exitsPerSecond: (exitsOf(c) - exitsOf(empty)) / s,
        timerInterruptsPerSecond: c.traps[TRAP_INTERRUPT(CAUSE_S_TIMER)] / s,
      };
    };
    // Phases bounded by markers the guest prints (PvGuest.run), so typing the command is not counted.
    const idle = rates((await guest.measure(`sleep ${size.timerSeconds}`)).counters);
    const spin = await guest.measure(`pvbench spin ${size.timerSeconds}`);
    const busy = { ...rates(spin.counters), iterationsPerSecond: spin.values.iterations / size.timerSeconds };
    const latency = async (busyArg: string): Promise<TimerLatency> => {
      const r = await guest.measure(`pvbench timerlat 1000 ${size.timerlatCount} ${busyArg}`);
      const v = r.values;
      return {
        periodUs: 1000,
        count: v.lat_n,
        avgUs: v.lat_avg_us,
        p50Us: v.lat_p50_us,
        p99Us: v.lat_p99_us,
        maxUs: v.lat_max_us,
        exitsPerTimer: (exitsOf(r.counters) - exitsOf(empty)) / v.lat_n,
        hypercallsPerTimer: (r.counters.sbi - empty.sbi) / v.lat_n,
      };
    };
    const latencyIdle = await latency("");
    const latencyBusy = await latency("busy");
    log(
      `timer: ${name}: idle ${idle.exitsPerSecond.toFixed(1)} exits/s (${idle.hypercallsPerSecond.toFixed(1)} hypercalls/s), ` +
        `busy ${busy.exitsPerSecond.toFixed(1)} exits/s; lateness (median) idle ${latencyIdle.p50Us.toFixed(0)} us, busy ${latencyBusy.p50Us.toFixed(0)} us`,
    );
    return { idle, busy, latencyIdle, latencyBusy };
  } finally {
    await guest.stop();
  }
}

// ---- 3. boot ----------------------------------------------------------------------------------

async function bootComparison(img: BenchImage, reps: number, log: (l: string) => void): Promise<NonNullable<PvResults["boot"]>> {
  const pair = (): BootPair => ({ firmware: undefined!, paravirtual: undefined!, runs: { firmware: [], paravirtual: [] } });
  const result = { sstc: pair(), noSstc: pair() };
  // The same kernel command line as bench/boot.ts; the console is the 16550 on both paths.
  const common = { bootargs: "console=ttyS0", console: "uart" as const };
  // Interleaved, so that drifting host load hits every configuration alike.
  for (let r = 0; r < reps; r++) {
    for (const sstc of [true, false]) {
      for (const path of ["firmware", "paravirtual"] as const) {
        const run = await bootToInit(img, { ...common, sstc, firmware: path === "firmware" ? img.firmware : undefined });
        result[sstc ? "sstc" : "noSstc"].runs[path].push(run);
        log(`boot: ${path}, ${sstc ? "Sstc" : "no Sstc"}: ${run.seconds.toFixed(2)} s to init, ${(run.instructions / 1e6).toFixed(0)} M instructions, ${run.exits} exits`);
      }
    }
  }
  for (const p of [result.sstc, result.noSstc]) {
    p.firmware = medianRun(p.runs.firmware);
    p.paravirtual = medianRun(p.runs.paravirtual);
  }
  return result;
}

// ---- 4 and 5. PLIC and interrupt coalescing ------------------------------------------------------

function ioPhase(c: Counters, device: string): IoPhase {
  const v = c.virtio[device];
  const plicExits = c.plicClaims + c.plicEmptyClaims + c.plicCompletes;
  return {
    completions: v.used,
    // Rising edges of the device's interrupt line: one coalesced batch that completes on two queues
    // (a UDP round trip: transmit and receive) is one interrupt, though each queue decided to want it.
    interrupts: v.irqAssertions,
    interruptsPerCompletion: v.irqAssertions / Math.max(1, v.used),
    plicExits,
    exits: exitsOf(c),
    exitsPerCompletion: exitsOf(c) / Math.max(1, v.used),
    instructionsPerCompletion: c.instret / Math.max(1, v.used),
    flushesByCount: v.coalesceFlushesByCount,
    flushesByTimer: v.coalesceFlushesByTimer,
  };
}

/**
 * The streaming read: parallel direct-I/O dd readers, each over its own part of the disk, so that
 * up to STREAM_READERS requests are in flight (one dd keeps only one).
 */
export const STREAM_READERS = 16;
const STREAM_BLOCK_KIB = 64;
function streamCommand(mib: number, baseline = false): string {
  const blocks = (mib * 1024) / STREAM_READERS / STREAM_BLOCK_KIB;
  const count = baseline ? zeros(blocks) : String(blocks);
  return (
    `pvbench elapsed sh -c 'for i in $(seq 0 ${STREAM_READERS - 1}); do ` +
    `dd if=/dev/vda of=/dev/null bs=${STREAM_BLOCK_KIB}k count=${count} skip=$((i * ${blocks})) iflag=direct 2>/dev/null & done; wait'`
  );
}

async function ioComparison(
  img: BenchImage,
  size: ReturnType<typeof sizes>,
  settings: VirtioCoalesce[],
  passes: number,
  log: (l: string) => void,
): Promise<{ plic: PlicResult[]; coalesce: CoalescePoint[] }> {
  const dir = mkdtempSync(join(tmpdir(), "parley-bench-pv-"));
  const diskPath = join(dir, "disk.img");
  // A disk with real contents (not a sparse file), a little larger than the streaming read.
  const fd = openSync(diskPath, "w");
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 131 + 7) & 0xff;
  for (let i = 0; i < size.streamMiB + 8; i++) writeSync(fd, chunk);
  closeSync(fd);
  const backend = await openBlockFile(diskPath, { id: "bench" });
  const responder = new ResponderBackend({ ip: HOST_IP, mac: Uint8Array.of(0x52, 0x54, 0, 0, 0, 2) });
  const blk = new VirtioBlk({ backend, name: "virtio-blk0" });
  const net = new VirtioNet({ backend: responder, mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56), name: "virtio-net0" });
  log("plic/coalesce: booting a guest with virtio-blk and virtio-net (in-process UDP responder)");
  let guest: PvGuest | undefined;
  try {
    // Coalescing starts off; the sweep sets it between phases (setCoalesce), with a timer that
    // honours delays below a millisecond.
    const transport = { coalesceTimer: preciseTimer };
    const virtioTransport = new Map<VirtioDevice, typeof transport>([
      [blk, transport],
      [net, transport],
    ]);
    guest = await bootShell(img, { virtio: [blk, net], virtioTransport, modules: MODULES.io });
    const host = HOST_IP.join(".");
    // The first datagram also resolves the responder's address (ARP).
    const up = await guest.run(`ip link set eth0 up && ip addr add ${GUEST_IP}/24 dev eth0 && pvbench udprr ${host} 7 3 16`);
    if (up.status !== 0 || !/rtt_n=3/.test(up.text)) throw new Error(`network setup failed: ${up.text}`);
    const blkT = guest.machine.virtio.find((t) => t.name === "virtio-blk0")!;
    const netT = guest.machine.virtio.find((t) => t.name === "virtio-net0")!;
    // Warm-up, unmeasured: the first run of each workload also pays for the host's JIT compiling
    // the device paths and the guest faulting in its programs, which would favour later settings.
    for (const warm of [
      `pvbench readlat /dev/vda 200 4096`,
      streamCommand(STREAM_READERS),
      `pvbench udprr ${host} 7 200 64`,
      `pvbench udptx ${host} 9 2000 ${NET_DATAGRAM}`,
    ]) {
      await guest.measure(warm);
    }
    // Several passes over the settings, each starting one setting further on, so that drifting
    // host load does not always hit the same setting; per setting and workload, the pass with the
    // median result is kept (with its counters).
    type Measured = { phase: IoPhase; value: number; counters: Counters; extra: Record<string, number> };
    const runs = settings.map(() => ({ blkLatency: [] as Measured[], blkStream: [] as Measured[], netLatency: [] as Measured[], netStream: [] as Measured[] }));
    for (let pass = 0; pass < passes; pass++) {
      for (let k = 0; k < settings.length; k++) {
        const i = (k + pass) % settings.length;
        const setting = settings[i];
        blkT.setCoalesce(setting);
        netT.setCoalesce(setting);
        const rl = await guest.measure(`pvbench readlat /dev/vda ${size.readlatCount} 4096`, `pvbench readlat /dev/vda ${zeros(size.readlatCount)} 4096`);
        runs[i].blkLatency.push({ phase: ioPhase(rl.counters, "virtio-blk0"), value: rl.values.op_p50_us, counters: rl.counters, extra: rl.values });
        const st = await guest.measure(streamCommand(size.streamMiB), streamCommand(size.streamMiB, true));
        if (st.values.status !== 0) throw new Error(`streaming read failed: ${st.text}`);
        const mbs = (size.streamMiB * (1 << 20)) / 1e6 / (st.values.elapsed_ns / 1e9);
        runs[i].blkStream.push({ phase: ioPhase(st.counters, "virtio-blk0"), value: mbs, counters: st.counters, extra: st.values });
        const rr = await guest.measure(`pvbench udprr ${host} 7 ${size.udprrCount} 64`, `pvbench udprr ${host} 7 ${zeros(size.udprrCount)} 64`);
        runs[i].netLatency.push({ phase: ioPhase(rr.counters, "virtio-net0"), value: rr.values.rtt_p50_us, counters: rr.counters, extra: rr.values });
        const tx = await guest.measure(`pvbench udptx ${host} 9 ${size.udptxCount} ${NET_DATAGRAM}`, `pvbench udptx ${host} 9 ${zeros(size.udptxCount)} ${NET_DATAGRAM}`);
        const txMbs = tx.values.bytes / 1e6 / (tx.values.elapsed_ns / 1e9);
        runs[i].netStream.push({ phase: ioPhase(tx.counters, "virtio-net0"), value: txMbs, counters: tx.counters, extra: tx.values });
        log(
          `coalesce ${coalesceLabel(setting)} (pass ${pass + 1}/${passes}): blk 4K read median ${rl.values.op_p50_us.toFixed(0)} us, ` +
            `stream ${mbs.toFixed(1)} MB/s; net RTT median ${rr.values.rtt_p50_us.toFixed(0)} us, send ${txMbs.toFixed(1)} MB/s`,
        );
      }
    }
    const pickMedian = (xs: Measured[]) => {
      const m = median(xs.map((x) => x.value));
      return xs.reduce((best, x) => (Math.abs(x.value - m) < Math.abs(best.value - m) ? x : best));
    };
    const points: CoalescePoint[] = settings.map((setting, i) => {
      const rl = pickMedian(runs[i].blkLatency);
      const st = pickMedian(runs[i].blkStream);
      const rr = pickMedian(runs[i].netLatency);
      const tx = pickMedian(runs[i].netStream);
      return {
        setting,
        label: coalesceLabel(setting),
        blkLatency: { ...rl.phase, count: rl.extra.op_n, avgUs: rl.extra.op_avg_us, p50Us: rl.extra.op_p50_us, p99Us: rl.extra.op_p99_us },
        blkStream: { ...st.phase, mbPerSecond: st.value },
        netLatency: { ...rr.phase, count: rr.extra.rtt_n, avgUs: rr.extra.rtt_avg_us, p50Us: rr.extra.rtt_p50_us, p99Us: rr.extra.rtt_p99_us, lost: rr.extra.lost },
        netStream: { ...tx.phase, mbPerSecond: tx.value, datagrams: tx.extra.datagrams },
      };
    });
    const off = settings.findIndex((c) => c.maxCompletions === 1);
    const plic: PlicResult[] = [];
    if (off >= 0) {
      const workloads = [
        ["4 KiB reads, one at a time", pickMedian(runs[off].blkLatency).counters],
        [`${STREAM_READERS} parallel ${STREAM_BLOCK_KIB} KiB direct readers`, pickMedian(runs[off].blkStream).counters],
      ] as const;
      for (const [workload, c] of workloads) {
        const v = c.virtio["virtio-blk0"];
        const external = c.traps[TRAP_INTERRUPT(CAUSE_S_EXTERNAL)];
        plic.push({
          workload,
          virtioInterrupts: v.irqAssertions,
          externalInterrupts: external,
          claims: c.plicClaims,
          emptyClaims: c.plicEmptyClaims,
          completes: c.plicCompletes,
          plicExitsPerInterrupt: (c.plicClaims + c.plicEmptyClaims + c.plicCompletes) / Math.max(1, external),
          deviceExitsPerInterrupt: (c.mmioByDevice["virtio-blk0"] ?? 0) / Math.max(1, v.irqAssertions),
          completions: v.used,
        });
      }
    }
    blkT.setCoalesce(undefined);
    netT.setCoalesce(undefined);
    return { plic, coalesce: points };
  } finally {
    await guest?.stop();
    await blk.drain?.();
    await backend.close();
    await responder.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- tables ---------------------------------------------------------------------------------------

const f = (v: number, digits = 1) => (Number.isFinite(v) ? v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "n/a");
const n0 = (v: number) => f(v, 0);
const ratio = (emulated: number, pv: number) => (pv > 0 ? `${f(emulated / pv, 1)}x` : "n/a");

/** "min–max" of a quantity over repeated runs. */
function range<T>(runs: T[], get: (x: T) => number, digits: number): string {
  const v = runs.map(get);
  const lo = f(Math.min(...v), digits);
  const hi = f(Math.max(...v), digits);
  return lo === hi ? `${lo} (every run)` : `${lo}–${hi}`;
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

export function formatTables(r: PvResults): Record<string, string> {
  const out: Record<string, string> = {};
  if (r.console) {
    const { ttyS0: t, hvc0: h, earlyUart: eu, earlySbi: es } = r.console;
    out.console = table(
      [`console output, ${t.bytes >> 10} KiB`, "ttyS0 (16550, emulated)", "hvc0 (virtio-console)", "emulated / paravirtual"],
      [
        ["exits per KiB", f(t.exitsPerKiB), f(h.exitsPerKiB, 2), ratio(t.exitsPerKiB, h.exitsPerKiB)],
        ["device interrupts (line assertions)", n0(t.deviceInterrupts), n0(h.deviceInterrupts), ratio(t.deviceInterrupts, h.deviceInterrupts)],
        ["external interrupts taken by the guest", n0(t.externalInterrupts), n0(h.externalInterrupts), ratio(t.externalInterrupts, h.externalInterrupts)],
        ["guest instructions per byte", f(t.instructionsPerByte), f(h.instructionsPerByte), ratio(t.instructionsPerByte, h.instructionsPerByte)],
        ["throughput (MiB/s)", f(t.mibPerSecond, 2), f(h.mibPerSecond, 2), ratio(h.mibPerSecond, t.mibPerSecond) + " faster"],
      ],
    );
    out.earlycon = table(
      ["kernel log until \"Run /init\"", "earlycon=uart8250 (16550 MMIO)", "earlycon=sbi (DBCN hypercalls)", "emulated / paravirtual"],
      [
        ["log bytes", n0(eu.logBytes), n0(es.logBytes), ""],
        ["exits (MMIO + hypercalls)", n0(eu.exits), n0(es.exits), ratio(eu.exits, es.exits)],
        ["of which hypercalls", n0(eu.hypercalls), n0(es.hypercalls), ""],
        ["guest instructions (M)", f(eu.instructions / 1e6), f(es.instructions / 1e6), ratio(eu.instructions, es.instructions)],
        ["time to \"Run /init\" (s)", f(eu.seconds, 2), f(es.seconds, 2), ratio(eu.seconds, es.seconds)],
        [`range over the runs (${r.console.earlyRuns.uart.length} each): instructions (M)`, range(r.console.earlyRuns.uart, (x) => x.instructions / 1e6, 0), range(r.console.earlyRuns.sbi, (x) => x.instructions / 1e6, 0), ""],
        ["range over the runs: time (s)", range(r.console.earlyRuns.uart, (x) => x.seconds, 2), range(r.console.earlyRuns.sbi, (x) => x.seconds, 2), ""],
      ],
    );
  }
  if (r.timer) {
    const { sbi: s, sstc: c } = r.timer;
    out.timer = table(
      ["timer", "SBI set_timer (hypercall)", "Sstc (stimecmp, no exit)", "SBI / Sstc"],
      [
        ["idle: hypercalls per second", f(s.idle.hypercallsPerSecond), f(c.idle.hypercallsPerSecond), ratio(s.idle.hypercallsPerSecond, c.idle.hypercallsPerSecond)],
        ["idle: exits per second", f(s.idle.exitsPerSecond), f(c.idle.exitsPerSecond), ratio(s.idle.exitsPerSecond, c.idle.exitsPerSecond)],
        ["idle: timer interrupts per second", f(s.idle.timerInterruptsPerSecond), f(c.idle.timerInterruptsPerSecond), ""],
        ["busy: hypercalls per second", f(s.busy.hypercallsPerSecond), f(c.busy.hypercallsPerSecond), ratio(s.busy.hypercallsPerSecond, c.busy.hypercallsPerSecond)],
        ["busy: exits per second", f(s.busy.exitsPerSecond), f(c.busy.exitsPerSecond), ratio(s.busy.exitsPerSecond, c.busy.exitsPerSecond)],
        ["busy: timer interrupts per second", f(s.busy.timerInterruptsPerSecond), f(c.busy.timerInterruptsPerSecond), ""],
        [`timer lateness, idle: median / p99 (µs)`, `${n0(s.latencyIdle.p50Us)} / ${n0(s.latencyIdle.p99Us)}`, `${n0(c.latencyIdle.p50Us)} / ${n0(c.latencyIdle.p99Us)}`, ""],
        [`timer lateness, busy: median / p99 (µs)`, `${n0(s.latencyBusy.p50Us)} / ${n0(s.latencyBusy.p99Us)}`, `${n0(c.latencyBusy.p50Us)} / ${n0(c.latencyBusy.p99Us)}`, ""],
        ["exits per 1 ms timer (idle)", f(s.latencyIdle.exitsPerTimer, 2), f(c.latencyIdle.exitsPerTimer, 2), ""],
      ],
    );
  }
  if (r.boot) {
    const { sstc: a, noSstc: b } = r.boot;
    const row = (label: string, get: (x: BootToInit) => string) => [label, get(a.firmware), get(a.paravirtual), get(b.firmware), get(b.paravirtual)];
    out.boot = table(
      ["boot to \"Run /init\"", "OpenSBI, Sstc", "hypervisor SBI, Sstc", "OpenSBI, no Sstc", "hypervisor SBI, no Sstc"],
      [
        row("guest instructions (M)", (x) => f(x.instructions / 1e6)),
        row("exits (MMIO + hypercalls)", (x) => n0(x.exits)),
        row("of which hypercalls", (x) => n0(x.hypercalls)),
        row("S-mode ECALLs trapped into guest M-mode", (x) => n0(x.ecallTraps)),
        row("M-mode timer interrupts", (x) => n0(x.machineTimerInterrupts)),
        row("time (s)", (x) => f(x.seconds, 2)),
        [`range over the runs (${a.runs.firmware.length} each): instructions (M)`, ...[a, b].flatMap((p) => [p.runs.firmware, p.runs.paravirtual]).map((runs) => range(runs, (x) => x.instructions / 1e6, 0))],
        ["range over the runs: exits", ...[a, b].flatMap((p) => [p.runs.firmware, p.runs.paravirtual]).map((runs) => range(runs, (x) => x.exits, 0))],
        ["range over the runs: time (s)", ...[a, b].flatMap((p) => [p.runs.firmware, p.runs.paravirtual]).map((runs) => range(runs, (x) => x.seconds, 2))],
      ],
    );
  }
  if (r.plic) {
    out.plic = table(
      ["virtio-blk workload (no coalescing)", "completions", "virtio-blk interrupts", "PLIC claims / empty claims / completes", "PLIC exits per external interrupt", "virtio-blk register exits per interrupt"],
      r.plic.map((p) => [
        p.workload,
        n0(p.completions),
        n0(p.virtioInterrupts),
        `${n0(p.claims)} / ${n0(p.emptyClaims)} / ${n0(p.completes)}`,
        f(p.plicExitsPerInterrupt, 2),
        f(p.deviceExitsPerInterrupt, 2),
      ]),
    );
  }
  if (r.coalesce) {
    out.coalesceBlk = table(
      [
        "virtio-blk, coalescing N/T",
        "4 KiB read latency: median / p99 (µs)",
        "interrupts per read",
        `streaming read, ${STREAM_READERS} readers (MB/s)`,
        "interrupts per completion",
        "exits per completion",
        "guest instructions per completion",
      ],
      r.coalesce.map((p) => [
        p.label,
        `${n0(p.blkLatency.p50Us)} / ${n0(p.blkLatency.p99Us)}`,
        f(p.blkLatency.interrupts / Math.max(1, p.blkLatency.count), 2),
        f(p.blkStream.mbPerSecond),
        f(p.blkStream.interruptsPerCompletion, 2),
        f(p.blkStream.exitsPerCompletion, 2),
        n0(p.blkStream.instructionsPerCompletion),
      ]),
    );
    out.coalesceNet = table(
      [
        "virtio-net, coalescing N/T",
        "UDP round trip: median / p99 (µs)",
        "interrupts per round trip",
        "UDP send stream (MB/s)",
        "interrupts per completion",
        "exits per completion",
        "guest instructions per completion",
      ],
      r.coalesce.map((p) => [
        p.label,
        `${n0(p.netLatency.p50Us)} / ${n0(p.netLatency.p99Us)}`,
        f(p.netLatency.interrupts / Math.max(1, p.netLatency.count), 2),
        f(p.netStream.mbPerSecond),
        f(p.netStream.interruptsPerCompletion, 2),
        f(p.netStream.exitsPerCompletion, 2),
        n0(p.netStream.instructionsPerCompletion),
      ]),
    );
  }
  return out;
}

// ---- charts ---------------------------------------------------------------------------------------

const E = COLORS.emulated;
const P = COLORS.paravirtual;

export function buildCharts(r: PvResults): Record<string, string> {
  const charts: Record<string, string> = {};
  if (r.console) {
    const { ttyS0: t, hvc0: h, earlyUart: eu, earlySbi: es } = r.console;
    const two = (a: number, b: number, la = "ttyS0 (16550)", lb = "hvc0 (virtio)") => [
      { label: la, value: a, color: E },
      { label: lb, value: b, color: P },
    ];
    charts["pv-console"] = barChartSvg({
      title: `Console: ${t.bytes >> 10} KiB written to ttyS0 and to hvc0`,
      subtitle: "Same guest, same payload from tmpfs, both ttys in raw output mode; exits and instructions attributed by the host to each write.",
      panels: [
        { title: "exits per KiB", unit: "lower is better", bars: two(t.exitsPerKiB, h.exitsPerKiB) },
        { title: "interrupts", unit: "device interrupts raised", bars: two(t.deviceInterrupts, h.deviceInterrupts) },
        { title: "instructions per byte", unit: "guest, lower is better", bars: two(t.instructionsPerByte, h.instructionsPerByte) },
        { title: "throughput", unit: "MiB/s, higher is better", bars: two(t.mibPerSecond, h.mibPerSecond) },
      ],
    });
    const early = (a: number, b: number) => two(a, b, "16550 earlycon", "SBI earlycon");
    charts["pv-earlycon"] = barChartSvg({
      title: "Early console: the kernel log until \"Run /init\"",
      subtitle: "earlycon=uart8250,mmio (MMIO exits for every byte: status poll and data write) against earlycon=sbi (one SBI debug-console hypercall per message).",
      panels: [
        { title: "exits", unit: "MMIO + hypercalls", bars: early(eu.exits, es.exits) },
        { title: "guest instructions", unit: "millions", bars: early(eu.instructions / 1e6, es.instructions / 1e6) },
        { title: "time to init", unit: "seconds", bars: early(eu.seconds, es.seconds) },
      ],
    });
  }
  if (r.timer) {
    const { sbi: s, sstc: c } = r.timer;
    const two = (a: number, b: number) => [
      { label: "SBI set_timer", value: a, color: E },
      { label: "Sstc", value: b, color: P },
    ];
    charts["pv-timer"] = barChartSvg({
      title: "Timer: SBI set_timer hypercalls against Sstc (stimecmp)",
      subtitle: "Same idle (sleep) and busy (spin loop) workloads; lateness of a 1 ms periodic timer measured in the guest (cyclictest-style, clock_nanosleep).",
      panels: [
        { title: "exits/s, idle", bars: two(s.idle.exitsPerSecond, c.idle.exitsPerSecond) },
        { title: "exits/s, busy", bars: two(s.busy.exitsPerSecond, c.busy.exitsPerSecond) },
        { title: "lateness, idle", unit: "median µs", bars: two(s.latencyIdle.p50Us, c.latencyIdle.p50Us) },
        { title: "lateness, busy", unit: "median µs", bars: two(s.latencyBusy.p50Us, c.latencyBusy.p50Us) },
      ],
    });
  }
  if (r.boot) {
    const { sstc: a, noSstc: b } = r.boot;
    const four = (get: (x: BootToInit) => number) => [
      { label: "OpenSBI, Sstc", value: get(a.firmware), color: E },
      { label: "hypervisor SBI, Sstc", value: get(a.paravirtual), color: P },
      { label: "OpenSBI, no Sstc", value: get(b.firmware), color: E },
      { label: "hypervisor SBI, no Sstc", value: get(b.paravirtual), color: P },
    ];
    charts["pv-boot"] = barChartSvg({
      title: "Boot: OpenSBI in emulated M-mode against the hypervisor as SBI",
      subtitle: "Same kernel, initramfs and command line (console=ttyS0), until Linux prints \"Run /init\"; with and without Sstc (without it, every timer programming is an SBI call).",
      panels: [
        { title: "guest instructions", unit: "millions", bars: four((x) => x.instructions / 1e6) },
        { title: "exits", unit: "MMIO + hypercalls", bars: four((x) => x.exits) },
        { title: "time to init", unit: "seconds", bars: four((x) => x.seconds) },
      ],
    });
  }
  if (r.plic && r.coalesce) {
    const off = r.plic.map((p) => ({ label: p.workload.split(",")[0], value: p.plicExitsPerInterrupt, color: E }));
    charts["pv-plic"] = barChartSvg({
      title: "PLIC: claim/complete exits per virtio interrupt",
      subtitle: "virtio-blk reads without coalescing; each interrupt costs PLIC claim and complete accesses (plus an empty claim that ends Linux's claim loop), all trapped and emulated.",
      panels: [
        { title: "PLIC exits per interrupt", bars: off },
        {
          title: "PLIC exits per completion",
          unit: "streaming read, by coalescing setting",
          bars: r.coalesce.map((p) => ({
            label: p.label.replace(" (off)", ""),
            value: p.blkStream.plicExits / Math.max(1, p.blkStream.completions),
            color: p.setting.maxCompletions === 1 ? E : P,
          })),
        },
      ],
    });
  }
  if (r.coalesce) {
    const pts = (sel: (p: CoalescePoint) => { x: number; y: number }) => r.coalesce!.map((p) => ({ ...sel(p), label: p.label.replace(" (off)", "") }));
    charts["pv-coalesce"] = curveChartSvg({
      title: "Interrupt coalescing: latency against throughput, per setting N/T",
      subtitle: `At most N completions or T microseconds per interrupt. Latency: one request at a time; throughput: ${STREAM_READERS} parallel direct-I/O dd readers (blk), a UDP send stream (net).`,
      panels: [
        {
          title: "virtio-blk",
          xLabel: "4 KiB direct read latency, median (µs)",
          yLabel: "streaming read (MB/s)",
          series: [{ name: "virtio-blk", points: pts((p) => ({ x: p.blkLatency.p50Us, y: p.blkStream.mbPerSecond })) }],
        },
        {
          title: "virtio-net",
          xLabel: "UDP round trip, median (µs)",
          yLabel: "UDP send (MB/s)",
          series: [{ name: "virtio-net", points: pts((p) => ({ x: p.netLatency.p50Us, y: p.netStream.mbPerSecond })) }],
        },
      ],
    });
  }
  return charts;
}

// ---- the Markdown section ------------------------------------------------------------------------

export function formatMarkdown(r: PvResults, tables: Record<string, string>, chartDir: string, command: string): string {
  const img = (name: string) => `![${name}](${chartDir}${name}.png)`;
  const parts: string[] = [
    "## Paravirtual paths against their emulated counterparts",
    "",
    `Measured with \`${command}\` (${r.date.slice(0, 10)}, Debian ${r.kernel}, Node ${r.host.node}, ${r.host.cpus} host CPUs, ` +
      `host load average ${r.host.loadStart.toFixed(1)} at the start and ${(r.host.loadEnd ?? NaN).toFixed(1)} at the end` +
      `${r.quick ? ", quick mode: reduced sizes" : ""}). Each comparison runs Linux doing the same work both ways, in one run; ` +
      "the guests are driven from the host, which reads the machine's counters (MMIO exits, hypercalls, traps, device " +
      "interrupts, instructions retired) in the output callbacks of two markers the guest prints right before and right " +
      "after each measured command, so every number below belongs to one workload. Guest-side times come from a small static program " +
      "(`guest/pv/pvbench.c`) using `clock_gettime`, which Linux serves from the vDSO by reading the `time` CSR. " +
      "An exit is a guest access that leaves the CPU core for the hypervisor: an MMIO access to a device model or an SBI call (hypercall).",
    "",
  ];
  if (tables.console) {
    parts.push(
      "### Console: 16550 against virtio-console",
      "",
      "One guest booted with `--console hvc` writes the same payload (staged in tmpfs, both ttys in raw output mode with " +
        "`stty -opost`) to `/dev/ttyS0` and to `/dev/hvc0`, alternating, " +
        (r.console!.runs > 1 ? `${r.console!.runs} times each (the run with the median time is shown). ` : "once each. ") +
        "`pvbench write` times 4 KiB `write`s and a final `tcdrain` (until the driver has handed every byte to the device). " +
        "The counters of the same command with an empty file are subtracted, so starting the program and the markers are " +
        "charged to neither side. Instructions include the guest's timer ticks during the transfer, so the slower path pays more of them.",
      "",
      tables.console,
      "",
      img("pv-console"),
      "",
      "The kernel's boot log from the first line to \"Run /init\", through each early console (`console=hvc0`, so that the early " +
        "console carries the whole log), median of the runs:",
      "",
      tables.earlycon,
      "",
      img("pv-earlycon"),
      "",
    );
  }
  if (tables.timer) {
    parts.push(
      "### Timer: SBI set_timer against Sstc",
      "",
      "Two guests, `sstc: false` (Linux programs its timer with the SBI `set_timer` hypercall) and `sstc: true` (Linux writes " +
        "`stimecmp`; the core raises the interrupt itself, no exit). Idle is `sleep`, busy is a spin loop in the guest; the " +
        "exits of an empty phase (printing its end marker on hvc0) are subtracted. Timer lateness " +
        "is cyclictest's method: a thread sleeps with `clock_nanosleep(TIMER_ABSTIME)` to the next point of a 1 ms grid and " +
        "records how late it woke; busy runs the same with a CPU hog competing for the only hart. Lateness depends little on " +
        "the timer path: in both modes the core takes the timer interrupt at the start of an execution slice (the run loop " +
        "shortens the slice that spans the next deadline, from `stimecmp` or the SBI deadline alike), and a hart asleep in " +
        "WFI is woken by a Node `setTimeout`, whose granularity is a millisecond.",
      "",
      tables.timer,
      "",
      img("pv-timer"),
      "",
    );
  }
  if (tables.boot) {
    parts.push(
      "### Boot: hypervisor SBI against OpenSBI firmware",
      "",
      "The same kernel, initramfs and command line (`console=ttyS0`) booted on the paravirtual path (the kernel starts in S-mode; " +
        "its SBI calls are hypercalls) and with Debian's OpenSBI `fw_dynamic` in emulated M-mode (SBI calls trap into the " +
        "guest's own firmware; the firmware's timer and console are emulated devices), until Linux prints \"Run /init\"; median of the runs. " +
        "With Sstc (Parley's default) Linux programs its timer without SBI, so the firmware is rarely entered; without Sstc every " +
        "timer programming is an SBI call, which OpenSBI serves by writing the emulated CLINT's mtimecmp. Instruction counts " +
        "and times vary between identical boots (the kernel does time-dependent work while booting, and without Sstc the number " +
        "of timer calls follows the time taken), as the ranges show; differences within those ranges are noise.",
      "",
      tables.boot,
      "",
      img("pv-boot"),
      "",
    );
  }
  if (tables.plic) {
    parts.push(
      "### Interrupt controller: PLIC exits per virtio interrupt",
      "",
      "Every external interrupt costs Linux's PLIC driver a claim (a load), a second claim that finds nothing and ends its loop, " +
        "and a complete (a store): each an exit to the emulated PLIC, on top of the virtio device's own InterruptStatus read " +
        "and InterruptACK write. Parley has no paravirtual interrupt controller; coalescing (below) is the lever that divides " +
        "these exits among several completions.",
      "",
      tables.plic,
      "",
      img("pv-plic"),
      "",
    );
  }
  if (tables.coalesceBlk) {
    parts.push(
      "### Interrupt coalescing on virtio-blk and virtio-net",
      "",
      "`--disk path=FILE,coalesce=N/Tus` and `--net ...,coalesce=N/Tus` (or `N/Tms`): the transport raises the used-buffer " +
        "interrupt once N completions are pending or T after the first one, whichever comes first, and asks the driver's " +
        "suppression (flags, `used_event`) at that moment. The settings are swept in one guest (the benchmark changes them " +
        "between phases, after an unmeasured warm-up of every workload). Interrupts are rising edges of the device's interrupt " +
        "line; a UDP round trip completes on two queues (the sent datagram, then the reply), which one coalesced interrupt can " +
        "cover. Latency: `pvbench readlat` (4 KiB `O_DIRECT` reads, one at a time) and `pvbench udprr` (64-byte UDP " +
        `echo from the host); throughput: ${STREAM_READERS} parallel \`dd iflag=direct bs=${STREAM_BLOCK_KIB}k\` readers, each over its own ` +
        `part of the disk, and the guest sending ${NET_DATAGRAM}-byte UDP datagrams as fast as its socket allows (the other end of ` +
        "the link is an in-process responder: ARP, UDP echo, discard). The delay is a host timer that checks the clock between " +
        "the guest's execution slices (`src/host/node/precise-timer.ts`), so T is honoured below Node's 1 ms timer granularity.",
      "",
      tables.coalesceBlk,
      "",
      tables.coalesceNet,
      "",
      img("pv-coalesce"),
      "",
    );
  }
  parts.push(`Raw results: \`cache/bench/${r.quick ? "pv-quick" : "pv"}/pv-results.json\`.`, "");
  return parts.join("\n");
}

// ---- the command ----------------------------------------------------------------------------------

export async function benchPv(options: BenchPvOptions = {}): Promise<PvResults> {
  const log = options.log ?? ((line: string) => process.stderr.write(`bench pv: ${line}\n`));
  let results: PvResults;
  if (options.render) {
    results = JSON.parse(readFileSync(options.render, "utf8")) as PvResults;
  } else {
    results = await measure(options, log);
  }
  const quick = results.quick;
  const tables = formatTables(results);
  for (const [name, t] of Object.entries(tables)) process.stdout.write(`\n${name}\n${t}\n`);
  const charts = buildCharts(results);
  const cacheDir = join(CACHE_DIR, "bench", quick ? "pv-quick" : "pv");
  const dirs = [...(options.render ? [] : [cacheDir]), ...(options.out ? [options.out] : [])];
  // The command that measured these results (re-rendering keeps it).
  const command = results.command ?? `parley bench pv${quick ? " --quick" : ""}${options.out ? ` --out ${options.out}` : ""}`;
  for (const dir of dirs) {
    mkdirSync(dir, { recursive: true });
    for (const [name, svg] of Object.entries(charts)) await writeChart(svg, join(dir, name));
    // Image links relative to the repository root when the section lands in the repository (it is
    // meant for the README), else next to the Markdown file.
    const rel = relative(REPO_ROOT, dir);
    const chartDir = dir !== cacheDir && rel && !rel.startsWith("..") ? `${rel.split(sep).join("/")}/` : "";
    writeFileSync(join(dir, "pv-results.md"), formatMarkdown(results, tables, chartDir, command));
  }
  if (!options.render) writeFileSync(join(cacheDir, "pv-results.json"), JSON.stringify(results, null, 2) + "\n");
  if (options.json) writeFileSync(options.json, JSON.stringify(results, null, 2) + "\n");
  if (dirs.length) log(`charts and pv-results.md in ${dirs.map((d) => relative(REPO_ROOT, d) || ".").join(" and ")}`);
  return results;
}

async function measure(options: BenchPvOptions, log: (line: string) => void): Promise<PvResults> {
  const quick = options.quick ?? false;
  const size = sizes(quick);
  const reps = options.reps ?? size.reps;
  const only = new Set<Comparison>(options.only ?? COMPARISONS);
  const img = await prepareImage(log);
  const results: PvResults = {
    quick,
    date: new Date().toISOString(),
    command:
      `parley bench pv${quick ? " --quick" : ""}${options.only ? ` --only ${[...only].join(",")}` : ""}` +
      `${options.reps ? ` --reps ${options.reps}` : ""}${options.out ? ` --out ${options.out}` : ""}`,
    kernel: img.image.kernelVersion,
    host: { node: process.versions.node, cpus: cpus().length, loadStart: loadavg()[0] },
  };
  if (only.has("console")) results.console = await consoleComparison(img, size, reps, log);
  if (only.has("timer")) {
    const sbi = await timerSide(img, false, size, log);
    const sstc = await timerSide(img, true, size, log);
    results.timer = { sbi, sstc };
  }
  if (only.has("boot")) results.boot = await bootComparison(img, reps, log);
  if (only.has("plic") || only.has("coalesce")) {
    const io = await ioComparison(img, size, only.has("coalesce") ? COALESCE_SETTINGS : [COALESCE_SETTINGS[0]], reps, log);
    if (only.has("plic")) results.plic = io.plic;
    if (only.has("coalesce")) results.coalesce = io.coalesce;
  }
  results.host.loadEnd = loadavg()[0];
  return results;
}

/** Parses the comma-separated --only list. */
export function parseComparisons(text: string): Comparison[] {
  const names = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(COMPARISONS as readonly string[]).includes(n)) throw new Error(`--only ${text}: unknown comparison "${n}" (use ${COMPARISONS.join(", ")})`);
  return names as Comparison[];
}
