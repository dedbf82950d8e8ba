// The memory-writing workload of `npm run bench -- lifecycle` (guest/bench/memwrite.c): its
// command line and the parsing of its heartbeats, kept free of side effects for the tests.

export interface MemwriteSettings {
  /** MiB the program maps and rewrites. */
  mib: number;
  /** Pages dirtied per millisecond of guest time. */
  pagesPerMs: number;
  /** Milliseconds between heartbeats. */
  heartbeatMs: number;
}

export const DEFAULT_MEMWRITE: MemwriteSettings = { mib: 64, pagesPerMs: 40, heartbeatMs: 250 };

/** The dirtying rate the settings ask for, MiB/s (pages are 4 KiB). */
export const memwriteTargetMiBs = (s: MemwriteSettings) => (s.pagesPerMs * 1000 * 4096) / (1024 * 1024);

/** Where the workload's heartbeats go in the guest (tmpfs): the console stays quiet during a move. */
export const MEMWRITE_LOG = "/tmp/memwrite.log";

/** The shell command starting the workload in the background, its heartbeats to MEMWRITE_LOG. */
export const memwriteCommand = (s: MemwriteSettings) => `memwrite ${s.mib} ${s.pagesPerMs} ${s.heartbeatMs} > ${MEMWRITE_LOG} &`;

export interface MemwriteBeat {
  beat: number;
  /** Milliseconds of writing so far (guest clock). */
  tMs: number;
  pages: number;
  /** The rate achieved since the previous heartbeat. */
  mibS: number;
  /** Pages found holding the wrong pass number so far (lost or stale after a migration). */
  errors: number;
}

const BEAT_FIELDS = { beat: "beat", tMs: "t_ms", pages: "pages", mibS: "mib_s", errors: "errors" } as const;

/**
 * Every complete heartbeat line in `output` (`memwrite beat=N t_ms=.. pages=.. mib_s=.. errors=..`),
 * in order. Lines cut short or missing a field (output cut by a kill, interleaved with the shell's
 * echo) are left out rather than guessed at.
 */
export function parseMemwriteBeats(output: string): MemwriteBeat[] {
  const beats: MemwriteBeat[] = [];
  for (const m of output.matchAll(/memwrite (beat=[^\r\n]*)\r?\n/g)) {
    const values: Record<string, number> = {};
    for (const kv of m[1].matchAll(/([a-z_]+)=(-?\d+(?:\.\d+)?)(?=\s|$)/g)) values[kv[1]] = Number(kv[2]);
    const beat = {} as MemwriteBeat;
    let complete = true;
    for (const [field, key] of Object.entries(BEAT_FIELDS) as [keyof MemwriteBeat, string][]) {
      if (!Number.isFinite(values[key])) complete = false;
      beat[field] = values[key];
    }
    if (complete) beats.push(beat);
  }
  return beats;
}

/** The median achieved rate over heartbeats (the first, which includes start-up, left out when there are others). */
export function steadyRateMiBs(beats: readonly MemwriteBeat[]): number {
  const rates = (beats.length > 1 ? beats.slice(1) : beats).map((b) => b.mibS).sort((a, b) => a - b);
  return rates.length ? rates[rates.length >> 1] : NaN;
}

export interface Continuation {
  /** Whether the destination printed heartbeats beyond the last one the source printed. */
  continued: boolean;
  lastBeforeBeat: number | undefined;
  firstAfterBeat: number | undefined;
  /** The error count of the last heartbeat after the move. */
  errorsAfter: number | undefined;
}

/**
 * Whether the workload went on after a migration: `before` is what the source's console showed,
 * `after` what the destination's showed; the program must print heartbeats numbered on from the
 * source's last, with no page found holding the wrong data.
 */
export function memwriteContinuation(before: string, after: string): Continuation {
  const b = parseMemwriteBeats(before);
  const a = parseMemwriteBeats(after);
  const lastBeforeBeat = b.length ? b[b.length - 1].beat : undefined;
  const later = a.filter((x) => lastBeforeBeat === undefined || x.beat > lastBeforeBeat);
  return {
    continued: lastBeforeBeat !== undefined && later.length > 0,
    lastBeforeBeat,
    firstAfterBeat: later[0]?.beat,
    errorsAfter: a.length ? a[a.length - 1].errors : undefined,
  };
}
