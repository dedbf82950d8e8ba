// The Markdown tables of the pv comparisons, printed on stdout and put into pv-results.md.
import type { BootToInit, ContentionRun, PvResults } from "./results.ts";
import { STREAM_READERS } from "./workloads.ts";

type Results<K extends keyof PvResults> = NonNullable<PvResults[K]>;

const f = (v: number, digits = 1) => (Number.isFinite(v) ? v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "n/a");
const n0 = (v: number) => f(v, 0);
const ratio = (emulated: number, pv: number) => (pv > 0 ? `${f(emulated / pv, 1)}x` : "n/a");
const medianAndP99 = (x: { p50Us: number; p99Us: number }) => `${n0(x.p50Us)} / ${n0(x.p99Us)}`;

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

/** Every table the results have data for, by name, in the order they are printed. */
export function formatTables(r: PvResults): Record<string, string> {
  return {
    ...(r.console && { console: consoleTable(r.console), earlycon: earlyConsoleTable(r.console) }),
    ...(r.timer && { timer: timerTable(r.timer) }),
    ...(r.boot && { boot: bootTable(r.boot) }),
    ...(r.plic && { plic: plicTable(r.plic) }),
    ...(r.coalesce && { coalesceBlk: coalesceBlkTable(r.coalesce), coalesceNet: coalesceNetTable(r.coalesce) }),
    ...(r.contention && {
      contention: contentionTable(r.contention),
      contentionRatios: contentionRatioTable(r.contention),
      contentionHarts: contentionHartTable(r.contention),
      contentionIdleWake: contentionIdleWakeTable(r.contention),
    }),
  };
}

function consoleTable({ ttyS0: t, hvc0: h }: Results<"console">): string {
  return table(
    [`console output, ${t.bytes >> 10} KiB`, "ttyS0 (16550, emulated)", "hvc0 (virtio-console)", "emulated / paravirtual"],
    [
      ["exits per KiB", f(t.exitsPerKiB), f(h.exitsPerKiB, 2), ratio(t.exitsPerKiB, h.exitsPerKiB)],
      ["device interrupts (line assertions)", n0(t.deviceInterrupts), n0(h.deviceInterrupts), ratio(t.deviceInterrupts, h.deviceInterrupts)],
      ["external interrupts taken by the guest", n0(t.externalInterrupts), n0(h.externalInterrupts), ratio(t.externalInterrupts, h.externalInterrupts)],
      ["guest instructions per byte", f(t.instructionsPerByte), f(h.instructionsPerByte), ratio(t.instructionsPerByte, h.instructionsPerByte)],
      ["throughput (MiB/s)", f(t.mibPerSecond, 2), f(h.mibPerSecond, 2), ratio(h.mibPerSecond, t.mibPerSecond) + " faster"],
    ],
  );
}

function earlyConsoleTable({ earlyUart: eu, earlySbi: es, earlyRuns }: Results<"console">): string {
  return table(
    ["kernel log until \"Run /init\"", "earlycon=uart8250 (16550 MMIO)", "earlycon=sbi (DBCN hypercalls)", "emulated / paravirtual"],
    [
      ["log bytes", n0(eu.logBytes), n0(es.logBytes), ""],
      ["exits (MMIO + hypercalls)", n0(eu.exits), n0(es.exits), ratio(eu.exits, es.exits)],
      ["of which hypercalls", n0(eu.hypercalls), n0(es.hypercalls), ""],
      ["guest instructions (M)", f(eu.instructions / 1e6), f(es.instructions / 1e6), ratio(eu.instructions, es.instructions)],
      ["time to \"Run /init\" (s)", f(eu.seconds, 2), f(es.seconds, 2), ratio(eu.seconds, es.seconds)],
      [`range over the runs (${earlyRuns.uart.length} each): instructions (M)`, range(earlyRuns.uart, (x) => x.instructions / 1e6, 0), range(earlyRuns.sbi, (x) => x.instructions / 1e6, 0), ""],
      ["range over the runs: time (s)", range(earlyRuns.uart, (x) => x.seconds, 2), range(earlyRuns.sbi, (x) => x.seconds, 2), ""],
    ],
  );
}

function timerTable({ sbi: s, sstc: c }: Results<"timer">): string {
  return table(
    ["timer", "SBI set_timer (hypercall)", "Sstc (stimecmp, no exit)", "SBI / Sstc"],
    [
      ["idle: hypercalls per second", f(s.idle.hypercallsPerSecond), f(c.idle.hypercallsPerSecond), ratio(s.idle.hypercallsPerSecond, c.idle.hypercallsPerSecond)],
      ["idle: exits per second", f(s.idle.exitsPerSecond), f(c.idle.exitsPerSecond), ratio(s.idle.exitsPerSecond, c.idle.exitsPerSecond)],
      ["idle: timer interrupts per second", f(s.idle.timerInterruptsPerSecond), f(c.idle.timerInterruptsPerSecond), ""],
      ["busy: hypercalls per second", f(s.busy.hypercallsPerSecond), f(c.busy.hypercallsPerSecond), ratio(s.busy.hypercallsPerSecond, c.busy.hypercallsPerSecond)],
      ["busy: exits per second", f(s.busy.exitsPerSecond), f(c.busy.exitsPerSecond), ratio(s.busy.exitsPerSecond, c.busy.exitsPerSecond)],
      ["busy: timer interrupts per second", f(s.busy.timerInterruptsPerSecond), f(c.busy.timerInterruptsPerSecond), ""],
      ["timer lateness, idle: median / p99 (µs)", medianAndP99(s.latencyIdle), medianAndP99(c.latencyIdle), ""],
      ["timer lateness, busy: median / p99 (µs)", medianAndP99(s.latencyBusy), medianAndP99(c.latencyBusy), ""],
      ["exits per 1 ms timer (idle)", f(s.latencyIdle.exitsPerTimer, 2), f(c.latencyIdle.exitsPerTimer, 2), ""],
    ],
  );
}

function bootTable({ sstc: a, noSstc: b }: Results<"boot">): string {
  const row = (label: string, get: (x: BootToInit) => string) => [label, get(a.firmware), get(a.paravirtual), get(b.firmware), get(b.paravirtual)];
  const allRuns = [a, b].flatMap((p) => [p.runs.firmware, p.runs.paravirtual]);
  const rangeRow = (label: string, get: (x: BootToInit) => number, digits: number) => [label, ...allRuns.map((runs) => range(runs, get, digits))];
  return table(
    ["boot to \"Run /init\"", "OpenSBI, Sstc", "hypervisor SBI, Sstc", "OpenSBI, no Sstc", "hypervisor SBI, no Sstc"],
    [
      row("guest instructions (M)", (x) => f(x.instructions / 1e6)),
      row("exits (MMIO + hypercalls)", (x) => n0(x.exits)),
      row("of which hypercalls", (x) => n0(x.hypercalls)),
      row("S-mode ECALLs trapped into guest M-mode", (x) => n0(x.ecallTraps)),
      row("M-mode timer interrupts", (x) => n0(x.machineTimerInterrupts)),
      row("time (s)", (x) => f(x.seconds, 2)),
      rangeRow(`range over the runs (${a.runs.firmware.length} each): instructions (M)`, (x) => x.instructions / 1e6, 0),
      rangeRow("range over the runs: exits", (x) => x.exits, 0),
      rangeRow("range over the runs: time (s)", (x) => x.seconds, 2),
    ],
  );
}

function plicTable(plic: Results<"plic">): string {
  return table(
    ["virtio-blk workload (no coalescing)", "completions", "virtio-blk interrupts", "PLIC claims / empty claims / completes", "PLIC exits per external interrupt", "virtio-blk register exits per interrupt"],
    plic.map((p) => [
      p.workload,
      n0(p.completions),
      n0(p.virtioInterrupts),
      `${n0(p.claims)} / ${n0(p.emptyClaims)} / ${n0(p.completes)}`,
      f(p.plicExitsPerInterrupt, 2),
      f(p.deviceExitsPerInterrupt, 2),
    ]),
  );
}

/** The columns both coalescing tables share after their latency and throughput figures. */
const PER_COMPLETION_HEADER = ["interrupts per completion", "exits per completion", "guest instructions per completion"];
const perCompletion = (x: { interruptsPerCompletion: number; exitsPerCompletion: number; instructionsPerCompletion: number }) => [
  f(x.interruptsPerCompletion, 2),
  f(x.exitsPerCompletion, 2),
  n0(x.instructionsPerCompletion),
];

function coalesceBlkTable(points: Results<"coalesce">): string {
  return table(
    ["virtio-blk, coalescing N/T", "4 KiB read latency: median / p99 (µs)", "interrupts per read", `streaming read, ${STREAM_READERS} readers (MB/s)`, ...PER_COMPLETION_HEADER],
    points.map((p) => [
      p.label,
      medianAndP99(p.blkLatency),
      f(p.blkLatency.interrupts / Math.max(1, p.blkLatency.count), 2),
      f(p.blkStream.mbPerSecond),
      ...perCompletion(p.blkStream),
    ]),
  );
}

function coalesceNetTable(points: Results<"coalesce">): string {
  return table(
    ["virtio-net, coalescing N/T", "UDP round trip: median / p99 (µs)", "interrupts per round trip", "UDP send stream (MB/s)", ...PER_COMPLETION_HEADER],
    points.map((p) => [
      p.label,
      medianAndP99(p.netLatency),
      f(p.netLatency.interrupts / Math.max(1, p.netLatency.count), 2),
      f(p.netStream.mbPerSecond),
      ...perCompletion(p.netStream),
    ]),
  );
}

function contentionTable({ runs }: Results<"contention">): string {
  return table(
    ["configuration", "pipe ops/s", "pipe p99 (µs)", "file ops/s", "file p99 (µs)", "sysbench threads events/s", "sysbench p99 (ms)"],
    runs.map((r) => [
      r.label,
      n0(r.pipe?.opsPerS ?? NaN),
      n0(r.pipe?.p99Us ?? NaN),
      n0(r.file?.opsPerS ?? NaN),
      n0(r.file?.p99Us ?? NaN),
      f(r.sysbench?.eventsPerS ?? NaN),
      f(r.sysbench?.percentileMs ?? NaN, 2),
    ]),
  );
}

/** Throughput ratio a / b (higher is better for a) and p99 ratio b / a (how much shorter a's tail is). */
function contentionRatioTable({ runs }: Results<"contention">): string {
  const by = (key: string) => runs.find((r) => r.key === key);
  const x = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${f(a / b, 2)}x` : "n/a");
  const row = (name: string, a: ContentionRun | undefined, b: ContentionRun | undefined): string[] => [
    name,
    x(a?.pipe?.opsPerS, b?.pipe?.opsPerS),
    x(a?.file?.opsPerS, b?.file?.opsPerS),
    x(a?.sysbench?.eventsPerS, b?.sysbench?.eventsPerS),
    x(b?.pipe?.p99Us, a?.pipe?.p99Us),
    x(b?.file?.p99Us, a?.file?.p99Us),
    x(b?.sysbench?.percentileMs, a?.sysbench?.percentileMs),
  ];
  return table(
    ["ratio", "pipe ops/s", "file ops/s", "sysbench events/s", "pipe p99 (inverse)", "file p99 (inverse)", "sysbench p99 (inverse)"],
    [
      row("4 harts / 2 threads: Zawrs+PLE over spinning", by("p4-coop"), by("p4-spin")),
      row("8 harts / 2 threads: Zawrs+PLE over spinning", by("p8-coop"), by("p8-spin")),
      row("Parley 4/2 Zawrs+PLE over QEMU -smp 4", by("p4-coop"), by("qemu4")),
      row("Parley 4/2 spinning over QEMU -smp 4", by("p4-spin"), by("qemu4")),
    ],
  );
}

function contentionHartTable({ runs }: Results<"contention">): string {
  return table(
    ["Parley run (whole run, boot included)", "steal per hart (s)", "running, all harts (s)", "WRS parks", "WRS timeouts", "pause exits", "directed yields", "run (s)"],
    runs
      .filter((r) => r.perHart)
      .map((r) => {
        const h = r.perHart!;
        const sum = (get: (x: (typeof h)[number]) => number) => h.reduce((a, x) => a + get(x), 0);
        return [
          r.label,
          h.map((x) => f(x.stealS)).join(" / "),
          f(sum((x) => x.runningS)),
          n0(sum((x) => x.wrsParks)),
          n0(sum((x) => x.wrsTimeouts)),
          n0(sum((x) => x.pauseExits)),
          n0(sum((x) => x.directedYields)),
          f(r.totalS),
        ];
      }),
  );
}

function contentionIdleWakeTable({ idle, wake }: Results<"contention">): string {
  return table(
    ["measurement", "median", "p99", "notes"],
    [
      [
        `idle ${idle.harts}-hart guest on ${idle.hostThreads} host threads, host CPU over ${f(idle.wallSeconds)} s`,
        `${f(idle.percentOfCore, 2)} % of one core`,
        "",
        `${f(idle.cpuSeconds, 2)} CPU-seconds (goal < 5 %)`,
      ],
      ...wake.map((w) => [
        `WRS wake latency, 2 harts on ${w.hostThreads} host thread${w.hostThreads > 1 ? "s" : ""} (µs)`,
        f(w.wake?.p50Us ?? NaN),
        f(w.wake?.p99Us ?? NaN),
        w.wake ? `${n0(w.wake.parked)} of ${n0(w.wake.n)} rounds parked; max ${f(w.wake.maxUs)} µs` : "failed",
      ]),
    ],
  );
}
