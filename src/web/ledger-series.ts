// The dashboard's numbers, without the DOM: successive ledgers (cumulative counters, collected
// about once a second) become rates per second over the last HISTORY_POINTS intervals, grouped
// into the charts the page draws. Everything here is pure data in, data out, so that it can be
// tested in Node; src/web/dashboard.ts only draws what this produces.
import type { Ledger } from "../machine/ledger.ts";
import { checkCoalesce, type VirtioCoalesce } from "../virtio/transport/coalesce.ts";

/** Rates kept per chart: about a minute at one ledger a second. */
export const HISTORY_POINTS = 60;

/** What a chart's values are: events per second, or a percentage of wall time. */
export type ChartUnit = "per second" | "% of wall time";

/** One chart, as uPlot takes it: x values and one y array per series, of equal length. */
export interface ChartSeries {
  /** Stable key ("exits", "virtio:virtio-blk0", ...): the same chart across updates. */
  id: string;
  title: string;
  unit: ChartUnit;
  /** Seconds relative to the newest point (the newest is 0, older ones negative). */
  times: number[];
  /** Series in order of first appearance (so their colours stay put); null is a gap (a counter went back). */
  series: { label: string; values: (number | null)[] }[];
}

/** A chart's definition: how to read its cumulative counters from one ledger. */
interface ChartSource {
  id: string;
  title: string;
  unit: ChartUnit;
  /** Series label -> cumulative count (nanoseconds for "% of wall time"). */
  counters: Record<string, number>;
  /**
   * Series shown from the start; the others join with their first non-zero rate (most mapped
   * devices and SBI extensions are never used, and would only crowd the legend).
   */
  fixed: readonly string[];
}

/** The charted counters of one ledger, chart by chart. Pure. */
export function chartSources(ledger: Ledger): ChartSource[] {
  const exits: Record<string, number> = { total: ledger.exits.total };
  for (const [device, d] of Object.entries(ledger.exits.byDevice)) exits[device] = d.loads + d.stores;
  if (ledger.exits.unmapped > 0) exits.unmapped = ledger.exits.unmapped;

  const harts = ledger.perHart;
  const instructions: Record<string, number> = {};
  const time: Record<string, number> = {};
  if (harts) {
    harts.forEach((h, i) => {
      instructions[`hart ${i}`] = h.instructions;
      time[`hart ${i} running`] = h.runningNs;
      time[`hart ${i} steal`] = h.stealNs;
    });
  } else {
    instructions["hart 0"] = ledger.instructions;
  }

  const sources: ChartSource[] = [
    { id: "exits", title: "Exits (MMIO accesses leaving the core), by device", unit: "per second", counters: exits, fixed: ["total"] },
    { id: "sbi", title: "Hypercalls (SBI calls), by extension", unit: "per second", counters: { ...ledger.sbi.byExtension }, fixed: [] },
    { id: "interrupts", title: "Device interrupts, by PLIC source", unit: "per second", counters: { ...ledger.interrupts.bySource }, fixed: [] },
    { id: "instructions", title: "Guest instructions, by hart", unit: "per second", counters: instructions, fixed: Object.keys(instructions) },
  ];
  if (harts) sources.push({ id: "hart-time", title: "Hart time on its host thread: running and steal", unit: "% of wall time", counters: time, fixed: Object.keys(time) });
  for (const [device, v] of Object.entries(ledger.virtio)) {
    const counters = {
      "notifications sent": v.notificationsReceived,
      "notifications suppressed": v.notificationsSuppressed,
      "interrupts sent": v.usedInterruptsSent,
      "interrupts suppressed": v.usedInterruptsSuppressed,
    };
    sources.push({
      id: `virtio:${device}`,
      title: `${device}: notifications and used-buffer interrupts, sent vs suppressed`,
      unit: "per second",
      counters,
      fixed: Object.keys(counters),
    });
  }
  return sources;
}

/**
 * Per-second rates between two readings of the same counters `seconds` apart. A counter absent
 * before counted 0 (ledgers omit some zero counts); one that went back (its object was reset)
 * gives null. Percentages of wall time for nanosecond counters. Pure.
 */
export function counterRates(before: Record<string, number>, after: Record<string, number>, seconds: number, unit: ChartUnit): Record<string, number | null> {
  const rates: Record<string, number | null> = {};
  for (const [label, now] of Object.entries(after)) {
    const delta = now - (before[label] ?? 0);
    if (delta < 0) rates[label] = null;
    else rates[label] = unit === "% of wall time" ? (delta / (seconds * 1e9)) * 100 : delta / seconds;
  }
  return rates;
}

interface Point {
  /** Ledger time, milliseconds. */
  at: number;
  /** Chart id -> label -> rate. */
  rates: Map<string, Record<string, number | null>>;
}

/** A chart absent at a point has no value there; a label absent from a chart that was there had no count. */
function pointValue(rates: Record<string, number | null> | undefined, label: string): number | null {
  if (!rates) return null;
  return label in rates ? rates[label] : 0;
}

interface Reading {
  at: number;
  wallSeconds: number;
  sources: ChartSource[];
}

/**
 * The dashboard's history: push() each ledger with its time (ms); charts() gives the last
 * HISTORY_POINTS rates of every chart. A ledger older than the previous one (a new machine, a
 * restore) starts the history over, since its counters are not a continuation.
 */
export class LedgerHistory {
  private last: Reading | undefined;
  private points: Point[] = [];
  /** Chart id -> its title, unit and labels in order of first non-zero rate. */
  private readonly chartsSeen = new Map<string, { title: string; unit: ChartUnit; labels: string[] }>();

  constructor(private readonly capacity = HISTORY_POINTS) {}

  push(ledger: Ledger, at: number): void {
    const reading: Reading = { at, wallSeconds: ledger.wallSeconds, sources: chartSources(ledger) };
    const previous = this.last;
    this.last = reading;
    if (!previous) return;
    if (at <= previous.at || ledger.wallSeconds < previous.wallSeconds) {
      this.clear();
      this.last = reading;
      return;
    }
    const seconds = (at - previous.at) / 1000;
    const before = new Map(previous.sources.map((s) => [s.id, s.counters]));
    const rates = new Map<string, Record<string, number | null>>();
    for (const source of reading.sources) {
      const r = counterRates(before.get(source.id) ?? {}, source.counters, seconds, source.unit);
      rates.set(source.id, r);
      this.noteLabels(source, r);
    }
    this.points.push({ at, rates });
    if (this.points.length > this.capacity) this.points.splice(0, this.points.length - this.capacity);
  }

  /** Every chart seen so far, in order of first appearance (none before the second ledger). */
  charts(): ChartSeries[] {
    const newest = this.points.at(-1)?.at ?? 0;
    const times = this.points.map((p) => (p.at - newest) / 1000);
    return [...this.chartsSeen].map(([id, chart]) => ({
      id,
      title: chart.title,
      unit: chart.unit,
      times,
      series: chart.labels.map((label) => ({ label, values: this.points.map((p) => pointValue(p.rates.get(id), label)) })),
    }));
  }

  clear(): void {
    this.last = undefined;
    this.points = [];
    this.chartsSeen.clear();
  }

  /** A chart appears with its first rates, its series as ChartSource.fixed says. */
  private noteLabels(source: ChartSource, rates: Record<string, number | null>): void {
    let chart = this.chartsSeen.get(source.id);
    if (!chart) {
      chart = { title: source.title, unit: source.unit, labels: [] };
      this.chartsSeen.set(source.id, chart);
    }
    for (const [label, rate] of Object.entries(rates)) {
      if (chart.labels.includes(label)) continue;
      if (source.fixed.includes(label) || (rate !== null && rate > 0)) chart.labels.push(label);
    }
  }
}

/** Each virtio device's coalescing setting in force (null: off), from one ledger. Pure. */
export function coalescingByDevice(ledger: Ledger): { device: string; coalesce: VirtioCoalesce | null }[] {
  return Object.entries(ledger.virtio).map(([device, v]) => ({ device, coalesce: v.coalesce ?? null }));
}

/** "off", or "8 completions or 500 µs" (whichever first). */
export function describeCoalescing(c: VirtioCoalesce | null): string {
  if (!c) return "off (an interrupt per completion)";
  return `${c.maxCompletions} completions or ${c.maxDelayUs} µs, whichever first`;
}

/**
 * The coalescing control's two text fields as a setting: both empty (or 1 and 0) turn it off
 * (undefined). Otherwise both must be whole numbers the transport accepts; the error names the
 * field. Pure.
 */
export function parseCoalescingInput(maxCompletions: string, maxDelayUs: string): { coalesce: VirtioCoalesce | undefined } | { error: string } {
  const completions = maxCompletions.trim();
  const delay = maxDelayUs.trim();
  if (completions === "" && delay === "") return { coalesce: undefined };
  const fields = [
    ["maxCompletions", completions],
    ["maxDelayUs", delay],
  ] as const;
  const values: number[] = [];
  for (const [field, text] of fields) {
    if (!/^\d+$/.test(text)) return { error: `${field}: expected a whole number, got "${text}"` };
    values.push(Number(text));
  }
  const coalesce = { maxCompletions: values[0], maxDelayUs: values[1] };
  try {
    checkCoalesce(coalesce);
  } catch (e) {
    return { error: (e as Error).message };
  }
  return { coalesce: coalesce.maxCompletions === 1 || coalesce.maxDelayUs === 0 ? undefined : coalesce };
}

/** An axis value: 1.5k, 2.3M, 12, 0.25. Pure. */
export function formatRate(value: number): string {
  const abs = Math.abs(value);
  for (const [scale, suffix] of [
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ] as const) {
    if (abs >= scale) return `${trimNumber(value / scale)}${suffix}`;
  }
  return trimNumber(value);
}

function trimNumber(value: number): string {
  return String(Number(value.toPrecision(3)));
}
