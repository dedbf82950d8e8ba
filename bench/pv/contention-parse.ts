// Parsers of what the contention comparison reads (bench/pv/contention.ts): guest/smp/contend.c's
// and guest/smp/wrsping.c's result lines, `sysbench threads` output, and the per-hart scheduler
// figures of Parley's --stats-json ledger. Free of side effects, so they can be tested on recorded output.

/** The result line of guest/smp/contend.c. */
export interface Contend {
  mode: string;
  threads: number;
  seconds: number;
  ops: number;
  opsPerS: number;
  avgUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

/** key=value pairs of a result line that starts with `prefix` (the first such line). */
function keyValues(output: string, prefix: string): Record<string, string> | undefined {
  const line = new RegExp(`^${prefix} (.*)$`, "m").exec(output);
  if (!line) return undefined;
  const values: Record<string, string> = {};
  for (const m of line[1].matchAll(/([a-z][a-z0-9_]*)=(\S+)/g)) values[m[1]] = m[2];
  return values;
}

function numbers<T extends object>(values: Record<string, string>, keys: Record<keyof T, string>): T | undefined {
  const out = {} as Record<string, number>;
  for (const [field, key] of Object.entries(keys) as [string, string][]) {
    const v = Number(values[key]);
    if (values[key] === undefined || !Number.isFinite(v)) return undefined;
    out[field] = v;
  }
  return out as T;
}

/** `contend mode=pipe threads=4 seconds=5.00 ops=.. ops_per_s=.. avg_us=.. p50_us=.. p99_us=.. max_us=..`; `mode` picks the line. */
export function parseContend(output: string, mode: string): Contend | undefined {
  const line = new RegExp(`^contend (mode=${mode} .*)$`, "m").exec(output);
  if (!line) return undefined;
  const values = keyValues(line[0], "contend")!;
  const n = numbers<Omit<Contend, "mode">>(values, {
    threads: "threads", seconds: "seconds", ops: "ops", opsPerS: "ops_per_s", avgUs: "avg_us", p50Us: "p50_us", p99Us: "p99_us", maxUs: "max_us",
  });
  return n && n.ops > 0 ? { mode, ...n } : undefined;
}

/** The result line of guest/smp/wrsping.c. */
export interface WrsPing {
  n: number;
  warmup: number;
  /** Rounds in which the waiter executed WRS.NTO at least once (only these are wakes). */
  parked: number;
  timebaseHz: number;
  minUs: number;
  avgUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

export function parseWrsPing(output: string): WrsPing | undefined {
  const values = keyValues(output, "wrsping");
  if (!values) return undefined;
  const n = numbers<WrsPing>(values, {
    n: "n", warmup: "warmup", parked: "parked", timebaseHz: "timebase_hz", minUs: "min_us", avgUs: "avg_us", p50Us: "p50_us", p99Us: "p99_us", maxUs: "max_us",
  });
  return n && n.parked > 0 ? n : undefined;
}

/** `sysbench threads` (or any sysbench test's general statistics and latency section). */
export interface SysbenchRun {
  seconds: number;
  events: number;
  eventsPerS: number;
  avgMs: number;
  /** The percentile asked for with --percentile (99 here), in ms. */
  percentile: number;
  percentileMs: number;
  maxMs: number;
}

export function parseSysbenchRun(output: string): SysbenchRun | undefined {
  const seconds = /total time:\s+([\d.]+)s/.exec(output);
  const events = /total number of events:\s+(\d+)/.exec(output);
  const avg = /^\s*avg:\s+([\d.]+)/m.exec(output);
  const max = /^\s*max:\s+([\d.]+)/m.exec(output);
  const pct = /^\s*(\d+)th percentile:\s+([\d.]+)/m.exec(output);
  if (!seconds || !events || !avg || !max || !pct) return undefined;
  const s = Number(seconds[1]);
  const e = Number(events[1]);
  if (!(s > 0) || !(e > 0)) return undefined;
  return { seconds: s, events: e, eventsPerS: e / s, avgMs: Number(avg[1]), percentile: Number(pct[1]), percentileMs: Number(pct[2]), maxMs: Number(max[1]) };
}

/** What the ledger says about one hart's time on its host thread, and its waits (Zawrs, pause loops). */
export interface HartSchedule {
  runningS: number;
  stealS: number;
  haltedS: number;
  suspendedS: number;
  parkedS: number;
  wrsParks: number;
  wrsTimeouts: number;
  pauseExits: number;
  directedYields: number;
  suspends: number;
}

/** The per-hart scheduler figures of a --stats-json ledger (its `perHart` array); undefined without one. */
export function parseLedgerHarts(json: string): HartSchedule[] | undefined {
  const ledger = JSON.parse(json) as { perHart?: Record<string, number>[]; ledger?: { perHart?: Record<string, number>[] } };
  const harts = ledger.perHart ?? ledger.ledger?.perHart;
  if (!Array.isArray(harts) || harts.length === 0) return undefined;
  const num = (h: Record<string, number>, k: string) => (Number.isFinite(h[k]) ? h[k] : 0);
  return harts.map((h) => ({
    runningS: num(h, "runningNs") / 1e9,
    stealS: num(h, "stealNs") / 1e9,
    haltedS: num(h, "haltedNs") / 1e9,
    suspendedS: num(h, "suspendedNs") / 1e9,
    parkedS: num(h, "parkedNs") / 1e9,
    wrsParks: num(h, "wrsParks"),
    wrsTimeouts: num(h, "wrsTimeouts"),
    pauseExits: num(h, "pauseExits"),
    directedYields: num(h, "directedYields"),
    suspends: num(h, "suspends"),
  }));
}
