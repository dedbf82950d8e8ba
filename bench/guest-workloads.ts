// What the in-guest benchmarks (bench/guest-cpu.ts, bench/smp.ts) share: the command lines that
// boot the same kernel and initramfs on Parley and on qemu-system-riscv64, a guest run timed to
// init, the parsers of the workloads' output.
// Kept free of side effects so that the parsers can be tested on recorded output.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { GuestImage } from "../src/image/index.ts";
import { REPO_ROOT } from "../src/host/node/paths.ts";
import { runTimed } from "./harness.ts";

/** The Debian packages added to the image the in-guest benchmarks run in (one cached image for all). */
export const BENCH_PACKAGES = ["7zip", "sysbench"];

export const INIT_MARKER = /Run \/init as init process/;
const TIMEOUT_MS = 1_800_000;

export interface GuestSystem {
  name: string;
  key: string;
  /**
   * The command booting `image` with kernel command line `append`. With `cpus`, the machine has
   * that many harts: Parley `--cpus N`, QEMU `-smp N` with one host thread per vCPU (MTTCG).
   */
  command: (image: GuestImage, append: string, cpus?: number) => { command: string; args: string[] };
}

/** Parley with the translator off and on, and qemu-system-riscv64 -M virt (TCG) on the same inputs. */
export function guestSystems(memory: string): GuestSystem[] {
  const parley = (jit: "on" | "off") => (image: GuestImage, append: string, cpus?: number) => ({
    command: process.execPath,
    args: [
      join(REPO_ROOT, "dist/parley.mjs"), "run", "--kernel", image.kernel, "--initrd", image.initrd, "--memory", memory, "--append", append, "--jit", jit,
      ...(cpus === undefined ? [] : ["--cpus", String(cpus)]),
    ],
  });
  return [
    { name: "Parley, translator off (interpreter)", key: "parley-off", command: parley("off") },
    { name: "Parley, translator on", key: "parley-on", command: parley("on") },
    {
      // The same single-threaded workloads on a 4-hart machine: what the multi-hart machinery
      // (shared memory, a thread per hart, the I/O thread) costs one busy hart while three idle.
      name: "Parley, translator on, --cpus 4",
      key: "parley-on-4",
      command: (image, append) => parley("on")(image, append, 4),
    },
    {
      name: "qemu-system-riscv64 -M virt (TCG)",
      key: "qemu",
      command: (image, append, cpus) => ({
        command: "qemu-system-riscv64",
        args: ["-M", "virt", "-m", memory, ...(cpus === undefined ? ["-smp", "1"] : ["-smp", String(cpus), "-accel", "tcg,thread=multi"]),
          "-nographic", "-no-reboot", "-bios", image.opensbi.fwDynamic!, "-kernel", image.kernel, "-initrd", image.initrd, "-append", append],
      }),
    },
  ];
}

export interface GuestRun {
  output: string;
  toInitS: number | undefined;
  totalS: number;
}

/** Runs a guest to its end (or until `stopAt` appears), timing the init marker. */
export async function runGuest(command: string, args: string[], stopAt?: RegExp): Promise<GuestRun> {
  const run = await runTimed(command, args, { markers: { init: INIT_MARKER }, stopAt, timeoutMs: TIMEOUT_MS });
  return { output: run.output, toInitS: run.markers.init, totalS: run.seconds };
}

/** `7z b 1 -mmtN -md18`: one pass of 7-Zip's LZMA benchmark on N threads, dictionary 2^18. */
export const sevenZipCommand = (threads: number | "N") => `7z b 1 -mmt${threads} -md18`;

export interface SevenZip {
  compressKiBs: number;
  decompressKiBs: number;
  rating: number;
}

/**
 * The dictionary lines and the "Tot:" line of `7z b` (any -mmt): mean compression speed, mean
 * decompression speed, total rating (MIPS). Only the first benchmark in `output` is read.
 */
export function parse7z(output: string): SevenZip | undefined {
  const lines = output.split(/\r?\n/);
  const totAt = lines.findIndex((l) => /^Tot:/.test(l));
  if (totAt < 0) return undefined;
  // "18:   737   100   658   657  |   6530   100   529   528" (speed, usage %, R/U, rating per side)
  const dict = lines.slice(0, totAt).filter((l) => /^\s*\d+:\s+\d+\s+\d+\s+\d+\s+\d+\s+\|/.test(l));
  if (!dict.length) return undefined;
  const speeds = dict.map((l) => l.split("|").map((half) => half.trim().split(/\s+/).map(Number)));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rating = Number(lines[totAt].trim().split(/\s+/).pop());
  if (!Number.isFinite(rating)) return undefined;
  return {
    compressKiBs: mean(speeds.map((s) => s[0][1])),
    decompressKiBs: mean(speeds.map((s) => s[1][0])),
    rating,
  };
}

export function parseSysbench(output: string): number | undefined {
  const m = /events per second:\s+([\d.]+)/.exec(output);
  return m ? Number(m[1]) : undefined;
}

export interface IpiPing {
  /** Round trips measured (after the warm-up). */
  n: number;
  warmup: number;
  minUs: number;
  avgUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

/** The result line of guest/smp/ipiping.c: `ipiping n=2000 warmup=200 ... p50_us=12.3 p99_us=45.6 ...`. */
export function parseIpiping(output: string): IpiPing | undefined {
  const line = /^ipiping (.*)$/m.exec(output);
  if (!line) return undefined;
  const values: Record<string, number> = {};
  for (const m of line[1].matchAll(/([a-z][a-z0-9_]*)=(-?[\d.]+)/g)) values[m[1]] = Number(m[2]);
  const keys = { n: "n", warmup: "warmup", minUs: "min_us", avgUs: "avg_us", p50Us: "p50_us", p99Us: "p99_us", maxUs: "max_us" } as const;
  const out = {} as IpiPing;
  for (const [field, key] of Object.entries(keys) as [keyof IpiPing, string][]) {
    if (!Number.isFinite(values[key])) return undefined;
    out[field] = values[key];
  }
  return out.n > 0 ? out : undefined;
}

/**
 * Seconds of CPU (user + system, every thread) a process has used so far, from the utime and
 * stime fields of /proc/PID/stat (`stat` is its text); `ticksPerSecond` is the clock tick (CLK_TCK).
 */
export function parseProcStatCpuSeconds(stat: string, ticksPerSecond: number): number {
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).trim().split(/\s+/);
  // fields[0] is field 3 (state): utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unexpected /proc/PID/stat: ${stat.slice(0, 200)}`);
  return (utime + stime) / ticksPerSecond;
}

export function processCpuSeconds(pid: number, ticksPerSecond: number): number {
  return parseProcStatCpuSeconds(readFileSync(`/proc/${pid}/stat`, "latin1"), ticksPerSecond);
}

/** The kernel's clock tick (CLK_TCK) for /proc/PID/stat times; 100 if getconf cannot say. */
export function clockTicks(): number {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
}

export interface IdleCpuSample {
  cpuSeconds: number;
  wallSeconds: number;
  /** cpuSeconds / wallSeconds, in percent of one core. */
  percentOfCore: number;
  /** When the prompt appeared, seconds from the start. */
  toPromptS: number | undefined;
}

/**
 * Runs a guest to its shell prompt with a silent open stdin (an idle terminal), waits `settleS`
 * for the console to go quiet, then samples the host CPU time of its process (every thread) over
 * `seconds`. Throws with the output's tail when the prompt never appears.
 */
export async function measureIdleCpu(
  command: string,
  args: string[],
  options: { prompt: RegExp; settleS: number; seconds: number; timeoutMs: number; name: string },
): Promise<IdleCpuSample> {
  const ticks = clockTicks();
  const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));
  let sample: IdleCpuSample | undefined;
  const run = await runTimed(command, args, {
    markers: { prompt: options.prompt },
    timeoutMs: options.timeoutMs,
    stdin: "pipe",
    whileRunning: {
      at: options.prompt,
      task: async (pid) => {
        await sleep(options.settleS);
        const cpu0 = processCpuSeconds(pid, ticks);
        const t0 = performance.now();
        await sleep(options.seconds);
        const cpuSeconds = processCpuSeconds(pid, ticks) - cpu0;
        const wallSeconds = (performance.now() - t0) / 1000;
        sample = { cpuSeconds, wallSeconds, percentOfCore: (100 * cpuSeconds) / wallSeconds, toPromptS: undefined };
      },
    },
  });
  if (!sample) throw new Error(`${options.name} did not reach its shell; output tail:\n${run.output.slice(-1500)}`);
  sample.toPromptS = run.markers.prompt;
  return sample;
}

export const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : NaN;
};
export const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "-");
