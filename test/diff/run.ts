// Drives a differential campaign: generates cases, runs them in QEMU (batched, up to two
// processes in flight) and on Parley (in this thread, overlapping with QEMU), compares, and
// shrinks the first few mismatches into reproducers.
import { compareRuns, formatReproducer, shrinkItems } from "./compare.ts";
import { assemble, generateCase, type Group, type Item, type TestCase } from "./generate.ts";
import { buildOracle, runOracle, type OracleCase, type RunResult } from "./oracle.ts";
import type { MachineState } from "./layout.ts";
import { ParleyRunner } from "./parley.ts";
import type { CpuOptions } from "../../src/cpu/cpu.ts";

export interface CampaignOptions {
  seed: number;
  group: Group;
  /** Case indices [first, first + count). */
  first?: number;
  count: number;
  batchSize?: number;
  /** How many mismatches get shrunk and formatted (the rest are only counted). */
  maxReports?: number;
  log?: (line: string) => void;
  /** The Parley engine: CpuOptions.jit ("off": the interpreter, "eager": every sequence translated). */
  jit?: CpuOptions["jit"];
}

export interface Mismatch {
  tc: TestCase;
  diffs: string[];
  /** Present for the first maxReports mismatches. */
  report?: string;
}

export interface CampaignResult {
  cases: number;
  mismatches: Mismatch[];
  /** Instructions Parley retired, and of those in translated code. */
  retired: bigint;
  translated: bigint;
}

/**
 * A Parley core that survives core crashes: a throw (abort, wasm trap) becomes a failed result
 * and the instance is replaced, since its state may be inconsistent and would fail every later
 * case. Creating a core allocates its whole wasm memory, so instances are reused.
 */
export class SafeParley {
  private runner: ParleyRunner | undefined;
  /** What the cores replaced after a throw had counted. */
  private replaced = { retired: 0n, translated: 0n };
  /** `jit` as CpuOptions.jit. */
  constructor(private readonly jit?: CpuOptions["jit"]) {}
  /** Instructions retired over every run, and of those by translated code. */
  get retired(): bigint {
    return this.replaced.retired + (this.runner?.retired ?? 0n);
  }
  get translated(): bigint {
    return this.replaced.translated + (this.runner?.translated ?? 0n);
  }
  run(code: Uint8Array, init: MachineState): RunResult {
    try {
      this.runner ??= new ParleyRunner(this.jit);
      return this.runner.run(code, init);
    } catch (err) {
      this.replaced.retired += this.runner?.retired ?? 0n;
      this.replaced.translated += this.runner?.translated ?? 0n;
      this.runner = undefined;
      return { kind: "trap", detail: `core threw: ${(err as Error).message}` };
    }
  }
}

/** Runs candidates (same initial state, different items) on both sides; true where they differ. */
async function mismatching(oracle: string, parley: SafeParley, tc: TestCase, candidates: Item[][]): Promise<boolean[]> {
  const batch: OracleCase[] = candidates.map((items) => ({ code: assemble(items), init: tc.init }));
  const qemu = await runOracle(oracle, batch);
  return batch.map((c, i) => compareRuns(qemu[i], parley.run(c.code, tc.init)).length > 0);
}

/**
 * Shrinks a mismatching case on a fresh core and formats its reproducer. A case that only fails
 * after others ran on the same core (stale cached state in Parley) cannot be shrunk alone; its
 * report says so and names the range of cases that reproduces it.
 */
export async function reproduce(
  oracle: string,
  tc: TestCase,
  historyFrom = tc.index,
  jit?: CpuOptions["jit"],
): Promise<{ text: string; diffs: string[] }> {
  const parley = new SafeParley(jit);
  const [standalone] = await mismatching(oracle, parley, tc, [tc.items]);
  if (!standalone) {
    const text = [
      `MISMATCH group=${tc.group} seed=${tc.seed} case=${tc.index}: only after earlier cases ran on the same core`,
      "  (it passes on a fresh core: Parley keeps state across cases that it should not)",
      `  replay: ${typeof jit === "string" ? `PARLEY_JIT=${jit} ` : ""}node --import tsx test/diff/explore.ts --seed ${tc.seed} --replay-range ${tc.group}:${historyFrom}-${tc.index}`,
    ].join("\n");
    return { text, diffs: ["history-dependent"] };
  }
  const items = await shrinkItems(tc.items, (cands) => mismatching(oracle, parley, tc, cands));
  const code = assemble(items);
  const [qemu] = await runOracle(oracle, [{ code, init: tc.init }]);
  const diffs = compareRuns(qemu, new SafeParley(jit).run(code, tc.init));
  return { text: formatReproducer(tc, tc.items.length, items, diffs), diffs };
}

/**
 * Runs cases first..last of a group in order on one core, like a campaign does, and returns the
 * differences of the last one: replays failures that depend on what ran before.
 */
export async function replayRange(seed: number, group: Group, first: number, last: number, jit?: CpuOptions["jit"]): Promise<string[]> {
  const oracle = await buildOracle();
  const parley = new SafeParley(jit);
  const tc = generateCase(seed, group, last);
  for (let i = first; i < last; i++) {
    const prev = generateCase(seed, group, i);
    parley.run(assemble(prev.items), prev.init);
  }
  const code = assemble(tc.items);
  const [qemu] = await runOracle(oracle, [{ code, init: tc.init }]);
  return compareRuns(qemu, parley.run(code, tc.init));
}

export async function runCampaign(opts: CampaignOptions): Promise<CampaignResult> {
  const oracle = await buildOracle();
  const first = opts.first ?? 0;
  const batchSize = opts.batchSize ?? 200;
  const maxReports = opts.maxReports ?? 3;
  const mismatches: Mismatch[] = [];
  const parley = new SafeParley(opts.jit);

  const makeBatch = (start: number) => {
    const cases: TestCase[] = [];
    for (let i = start; i < Math.min(first + opts.count, start + batchSize); i++) cases.push(generateCase(opts.seed, opts.group, i));
    const codes = cases.map((tc) => assemble(tc.items));
    return { cases, codes, qemu: runOracle(oracle, cases.map((tc, i) => ({ code: codes[i], init: tc.init }))) };
  };

  // Keep the next batch's QEMU process running while this one is compared on Parley.
  let next = first < first + opts.count ? makeBatch(first) : undefined;
  while (next) {
    const batch = next;
    const after = batch.cases[batch.cases.length - 1].index + 1;
    next = after < first + opts.count ? makeBatch(after) : undefined;
    const parleyResults = batch.cases.map((tc, i) => parley.run(batch.codes[i], tc.init));
    const qemuResults = await batch.qemu;
    batch.cases.forEach((tc, i) => {
      const diffs = compareRuns(qemuResults[i], parleyResults[i]);
      if (diffs.length) mismatches.push({ tc, diffs });
    });
  }

  for (const m of mismatches.slice(0, maxReports)) {
    const { text } = await reproduce(oracle, m.tc, first, opts.jit);
    m.report = text;
    opts.log?.(text);
  }
  return { cases: opts.count, mismatches, retired: parley.retired, translated: parley.translated };
}

/** What kind of state a difference line is about: "x", "f", "fcsr", "mem" or the failure text. */
function diffCategory(line: string): string {
  const m = /^(x|f)\d+\(|^(fcsr|mem)\b/.exec(line);
  if (m) return m[1] ?? m[2];
  return line.replace(/ at mepc.*$| with pc.*$| at pc.*$/, "");
}

/** Counts of mismatches by group and the kinds of state that differ: a quick triage of many. */
export function summarize(mismatches: readonly Mismatch[]): string[] {
  const counts = new Map<string, number>();
  for (const m of mismatches) {
    const key = `${m.tc.group}: ${[...new Set(m.diffs.map(diffCategory))].join(", ")}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${String(n).padStart(6)}  ${k}`);
}
