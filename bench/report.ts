// What every benchmark part records about where and how it ran (date, host, Node, load, the command
// line) and where its JSON goes: cache/bench/NAME.json (PARLEY_CACHE moves the cache).
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, hostname, loadavg } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError } from "commander";
import { CACHE_DIR } from "../src/host/node/paths.ts";

export interface BenchRunInfo {
  generatedAt: string;
  command: string;
  host: { name: string; cpu: string; cores: number; node: string; platform: string; loadAverage: { start: number[]; end?: number[] } };
}

/** The run's description; `command` is how to repeat it (e.g. "npm run bench -- lifecycle --reps 3"). */
export function benchRunInfo(command: string): BenchRunInfo {
  return {
    generatedAt: new Date().toISOString(),
    command,
    host: {
      name: hostname(),
      cpu: cpus()[0]?.model ?? "unknown",
      cores: cpus().length,
      node: process.version,
      platform: process.platform,
      loadAverage: { start: loadavg() },
    },
  };
}

/** The one-line header printed before a part's measurements. */
export function formatRunHeader(part: string, info: BenchRunInfo): string {
  const h = info.host;
  return `${part}: ${info.generatedAt} on ${h.name} (${h.cpu}, ${h.cores} cores, Node ${h.node}), load average ${h.loadAverage.start.map((x) => x.toFixed(2)).join(" ")}; \`${info.command}\``;
}

/** Records the load at the end and writes `{...info, ...results}` to cache/bench/NAME.json; returns the path. */
export function writeBenchJson(name: string, info: BenchRunInfo, results: Record<string, unknown>): string {
  info.host.loadAverage.end = loadavg();
  const dir = join(CACHE_DIR, "bench");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ ...info, ...results }, null, 2) + "\n");
  return file;
}

/**
 * A commander option parser for a whole number of at least `min` (an optional unit suffix such as
 * "M" for --memory is accepted and dropped); the error names what was given.
 */
export function wholeNumber(min = 1, unitSuffix?: RegExp): (value: string) => number {
  return (value) => {
    const n = Number(unitSuffix ? value.replace(unitSuffix, "") : value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number of at least ${min}, not "${value}"`);
    return n;
  };
}
