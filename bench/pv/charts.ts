// The charts of the pv comparisons (SVG), by file name: the emulated side of each comparison in
// one colour, the paravirtual side in another.
import { COLORS, barChartSvg, curveChartSvg, type Bar } from "../charts.ts";
import type { BootToInit, CoalescePoint, ContentionRun, PvResults } from "./results.ts";
import { STREAM_READERS } from "./workloads.ts";

type Results<K extends keyof PvResults> = NonNullable<PvResults[K]>;

const E = COLORS.emulated;
const P = COLORS.paravirtual;

/** An emulated and a paravirtual bar. */
const pair = (emulated: number, paravirtual: number, emulatedLabel: string, paravirtualLabel: string): Bar[] => [
  { label: emulatedLabel, value: emulated, color: E },
  { label: paravirtualLabel, value: paravirtual, color: P },
];

/** Every chart the results have data for, by file name (without extension). */
export function buildCharts(r: PvResults): Record<string, string> {
  return {
    ...(r.console && { "pv-console": consoleChart(r.console), "pv-earlycon": earlyConsoleChart(r.console) }),
    ...(r.timer && { "pv-timer": timerChart(r.timer) }),
    ...(r.boot && { "pv-boot": bootChart(r.boot) }),
    // The PLIC chart also shows PLIC exits per completion at each coalescing setting.
    ...(r.plic && r.coalesce && { "pv-plic": plicChart(r.plic, r.coalesce) }),
    ...(r.coalesce && { "pv-coalesce": coalesceChart(r.coalesce) }),
    ...(r.contention && { "pv-contention": contentionChart(r.contention) }),
  };
}

function consoleChart({ ttyS0: t, hvc0: h }: Results<"console">): string {
  const two = (a: number, b: number) => pair(a, b, "ttyS0 (16550)", "hvc0 (virtio)");
  return barChartSvg({
    title: `Console: ${t.bytes >> 10} KiB written to ttyS0 and to hvc0`,
    subtitle: "Same guest, same payload from tmpfs, both ttys in raw output mode; exits and instructions attributed by the host to each write.",
    panels: [
      { title: "exits per KiB", unit: "lower is better", bars: two(t.exitsPerKiB, h.exitsPerKiB) },
      { title: "interrupts", unit: "device interrupts raised", bars: two(t.deviceInterrupts, h.deviceInterrupts) },
      { title: "instructions per byte", unit: "guest, lower is better", bars: two(t.instructionsPerByte, h.instructionsPerByte) },
      { title: "throughput", unit: "MiB/s, higher is better", bars: two(t.mibPerSecond, h.mibPerSecond) },
    ],
  });
}

function earlyConsoleChart({ earlyUart: eu, earlySbi: es }: Results<"console">): string {
  const early = (a: number, b: number) => pair(a, b, "16550 earlycon", "SBI earlycon");
  return barChartSvg({
    title: "Early console: the kernel log until \"Run /init\"",
    subtitle: "earlycon=uart8250,mmio (MMIO exits for every byte: status poll and data write) against earlycon=sbi (one SBI debug-console hypercall per message).",
    panels: [
      { title: "exits", unit: "MMIO + hypercalls", bars: early(eu.exits, es.exits) },
      { title: "guest instructions", unit: "millions", bars: early(eu.instructions / 1e6, es.instructions / 1e6) },
      { title: "time to init", unit: "seconds", bars: early(eu.seconds, es.seconds) },
    ],
  });
}

function timerChart({ sbi: s, sstc: c }: Results<"timer">): string {
  const two = (a: number, b: number) => pair(a, b, "SBI set_timer", "Sstc");
  return barChartSvg({
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

function bootChart({ sstc: a, noSstc: b }: Results<"boot">): string {
  const four = (get: (x: BootToInit) => number) => [
    ...pair(get(a.firmware), get(a.paravirtual), "OpenSBI, Sstc", "hypervisor SBI, Sstc"),
    ...pair(get(b.firmware), get(b.paravirtual), "OpenSBI, no Sstc", "hypervisor SBI, no Sstc"),
  ];
  return barChartSvg({
    title: "Boot: OpenSBI in emulated M-mode against the hypervisor as SBI",
    subtitle: "Same kernel, initramfs and command line (console=ttyS0), until Linux prints \"Run /init\"; with and without Sstc (without it, every timer programming is an SBI call).",
    panels: [
      { title: "guest instructions", unit: "millions", bars: four((x) => x.instructions / 1e6) },
      { title: "exits", unit: "MMIO + hypercalls", bars: four((x) => x.exits) },
      { title: "time to init", unit: "seconds", bars: four((x) => x.seconds) },
    ],
  });
}

function plicChart(plic: Results<"plic">, coalesce: Results<"coalesce">): string {
  return barChartSvg({
    title: "PLIC: claim/complete exits per virtio interrupt",
    subtitle: "virtio-blk reads without coalescing; each interrupt costs PLIC claim and complete accesses (plus an empty claim that ends Linux's claim loop), all trapped and emulated.",
    panels: [
      { title: "PLIC exits per interrupt", bars: plic.map((p) => ({ label: p.workload.split(",")[0], value: p.plicExitsPerInterrupt, color: E })) },
      {
        title: "PLIC exits per completion",
        unit: "streaming read, by coalescing setting",
        bars: coalesce.map((p) => ({
          label: p.label.replace(" (off)", ""),
          value: p.blkStream.plicExits / Math.max(1, p.blkStream.completions),
          color: p.setting.maxCompletions === 1 ? E : P,
        })),
      },
    ],
  });
}

function coalesceChart(coalesce: Results<"coalesce">): string {
  const pts = (sel: (p: CoalescePoint) => { x: number; y: number }) => coalesce.map((p) => ({ ...sel(p), label: p.label.replace(" (off)", "") }));
  return curveChartSvg({
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

/** Short bar labels: harts/threads and mode. */
const contentionLabel = (r: ContentionRun) => (r.system === "qemu" ? `QEMU ${r.harts}` : `${r.harts}/${r.hostThreads} ${r.cooperative ? "Z+PLE" : "spin"}`);
const contentionColor = (r: ContentionRun) => (r.system === "qemu" ? COLORS.neutral : r.cooperative ? P : E);

function contentionChart(c: Results<"contention">): string {
  const bars = (get: (r: ContentionRun) => number | undefined) => c.runs.map((r) => ({ label: contentionLabel(r), value: get(r) ?? 0, color: contentionColor(r) }));
  return barChartSvg({
    title: "Lock contention with more harts than host threads: Zawrs + pause-loop exiting against spinning",
    subtitle:
      `One thread per CPU for ${c.seconds} s: contend pipe (pipe mutex), contend file (inode lock), sysbench threads (one mutex). ` +
      "N/M: N harts on M host threads; Z+PLE: --zawrs on --ple on; spin: both off; QEMU: -smp 4, MTTCG, same 2 host cores.",
    panels: [
      { title: "pipe", unit: "ops/s, higher is better", bars: bars((r) => r.pipe?.opsPerS) },
      { title: "file", unit: "ops/s, higher is better", bars: bars((r) => r.file?.opsPerS) },
      { title: "sysbench threads", unit: "events/s, higher is better", bars: bars((r) => r.sysbench?.eventsPerS) },
      { title: "pipe p99", unit: "ms, lower is better", bars: bars((r) => (r.pipe ? r.pipe.p99Us / 1000 : undefined)) },
      { title: "file p99", unit: "ms, lower is better", bars: bars((r) => (r.file ? r.file.p99Us / 1000 : undefined)) },
    ],
  });
}
