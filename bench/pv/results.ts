// What `npm run bench -- pv` measures and writes to pv-results.json: one record per comparison,
// each side of it with the counters and times that the tables and charts are drawn from.
import type { VirtioCoalesce } from "../../src/virtio/transport/mmio.ts";
import type { Contend, HartSchedule, SysbenchRun, WrsPing } from "./contention-parse.ts";

export const COMPARISONS = ["console", "timer", "boot", "plic", "coalesce", "contention"] as const;
export type Comparison = (typeof COMPARISONS)[number];

/** Parses the comma-separated --only list. */
export function parseComparisons(text: string): Comparison[] {
  const names = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(COMPARISONS as readonly string[]).includes(n)) throw new Error(`--only ${text}: unknown comparison "${n}" (use ${COMPARISONS.join(", ")})`);
  return names as Comparison[];
}

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
  contention?: ContentionResult;
}

/** One guest of the contention comparison: its configuration, each workload's result, its ledger per hart (Parley). */
export interface ContentionRun {
  key: string;
  label: string;
  system: "parley" | "qemu";
  harts: number;
  hostThreads: number;
  /** Zawrs and pause-loop exiting on (Parley), or both off (plain spinning; QEMU). */
  cooperative: boolean;
  pipe?: Contend;
  file?: Contend;
  sysbench?: SysbenchRun;
  /** From --stats-json: the whole run, boot included. */
  perHart?: HartSchedule[];
  totalS: number;
}

export interface ContentionResult {
  /** Seconds per workload. */
  seconds: number;
  workloads: { pipe: string; file: string; sysbench: string; wake: string };
  sysbenchVersion?: string;
  hostCores: number;
  runs: ContentionRun[];
  /** Host CPU of an idle 8-hart guest at its shell, over `seconds`. */
  idle: { harts: number; hostThreads: number; seconds: number; cpuSeconds: number; wallSeconds: number; percentOfCore: number };
  /** WRS wake latency, 2 harts on 2 host threads and on 1. */
  wake: { hostThreads: number; wake?: WrsPing; perHart?: HartSchedule[] }[];
  /** Host load average (1, 5, 15 min) before and after this comparison. */
  loadAverage: { start: number[]; end: number[] };
}
