// The lock-contention comparison of `npm run bench -- pv` (`npm run bench -- pv contention` alone):
// cooperative scheduling of overcommitted harts, Zawrs + pause-loop exiting against plain spinning.
//
// Unlike the other pv comparisons, the guests here are whole `parley run` processes (and
// qemu-system-riscv64 for reference), as bench/smp.ts runs them, since what is measured is the
// hart threads' scheduling (--cpus N --host-threads M) and the ledger comes from --stats-json.
// All on the same kernel and initramfs (the 7-Zip/sysbench image of bench/guest-cpu.ts with
// guest/smp/contend.c and guest/smp/wrsping.c added):
//
//   - throughput and p99 latency under lock contention, one thread per CPU: `contend pipe` (pipe
//     mutex), `contend file` (inode lock, tmpfs) and `sysbench threads` (one pthread mutex), in
//     Parley 4 harts on 2 host threads and 8 harts on 2, each with Zawrs + PLE on and with
//     `--zawrs off --ple off`, and QEMU -smp 4 (MTTCG); with each Parley run's per-hart steal
//     time, WRS parks, pause exits and directed yields from its --stats-json ledger (whole run,
//     boot included);
//   - the host CPU an idle 8-hart guest (2 host threads) uses over the idle seconds (/proc/PID/stat);
//   - WRS wake latency (wrsping): 2 harts on 2 host threads and on 1.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { cpus as hostCpus, loadavg } from "node:os";
import { join } from "node:path";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { GUEST_ARCH_FLAGS, appendToInitrd } from "../../src/image/guest-programs.ts";
import { buildGuest } from "../../src/image/toolchain.ts";
import { CACHE_DIR, REPO_ROOT } from "../../src/host/node/paths.ts";
import { runTimed } from "../harness.ts";
import { BENCH_PACKAGES, guestSystems, measureIdleCpu, type IdleCpuSample } from "../guest-workloads.ts";
import { parseContend, parseLedgerHarts, parseSysbenchRun, parseWrsPing, type Contend, type HartSchedule, type SysbenchRun, type WrsPing } from "./contention-parse.ts";
import type { ContentionResult, ContentionRun } from "./results.ts";
import type { Log } from "./session.ts";

const MEMORY = "512M";
const RUN_TIMEOUT_MS = 900_000;
const PROMPT = /root@parley[^\n]*# /;
export const IDLE_SETTLE_S = 2;

export interface ContentionConfig {
  key: string;
  label: string;
  system: "parley" | "qemu";
  harts: number;
  /** Host threads the harts run on (QEMU: one per vCPU, on the same host cores). */
  hostThreads: number;
  /** Zawrs and pause-loop exiting on (Parley's default) or both off (plain spinning). */
  cooperative: boolean;
}

export const CONTENTION_CONFIGS: ContentionConfig[] = [
  { key: "p4-coop", label: "Parley 4 harts / 2 threads, Zawrs+PLE", system: "parley", harts: 4, hostThreads: 2, cooperative: true },
  { key: "p4-spin", label: "Parley 4 harts / 2 threads, spinning", system: "parley", harts: 4, hostThreads: 2, cooperative: false },
  { key: "p8-coop", label: "Parley 8 harts / 2 threads, Zawrs+PLE", system: "parley", harts: 8, hostThreads: 2, cooperative: true },
  { key: "p8-spin", label: "Parley 8 harts / 2 threads, spinning", system: "parley", harts: 8, hostThreads: 2, cooperative: false },
  { key: "qemu4", label: "QEMU -smp 4 (MTTCG)", system: "qemu", harts: 4, hostThreads: 4, cooperative: false },
];

export interface ContentionSizes {
  /** Seconds per workload (contend pipe, contend file, sysbench threads). */
  seconds: number;
  idleSeconds: number;
  wakeRounds: number;
}

export const contentionSizes = (quick: boolean): ContentionSizes => (quick ? { seconds: 2, idleSeconds: 5, wakeRounds: 300 } : { seconds: 5, idleSeconds: 10, wakeRounds: 2000 });

/** `sysbench threads` with one mutex for all threads: lock, sched_yield, unlock, 50 times per event. */
export const sysbenchCommand = (seconds: number) => `sysbench threads --threads=$(nproc) --thread-locks=1 --thread-yields=50 --time=${seconds} --percentile=99 run`;

export const contentionWorkload = (seconds: number) =>
  `echo BENCH-NPROC $(nproc); echo BENCH-PIPE; contend pipe $(nproc) ${seconds}; echo BENCH-FILE; contend file $(nproc) ${seconds}; ` +
  `echo BENCH-SYSBENCH; ${sysbenchCommand(seconds)}; echo BENCH-DONE`;

/** The benchmark image (`--add 7zip sysbench`) with /usr/bin/contend and /usr/bin/wrsping appended. */
async function contentionImage(): Promise<GuestImage> {
  const benchImage = await buildGuestImage({ add: BENCH_PACKAGES, progress: false });
  const programs: Record<string, string> = {};
  for (const name of ["contend", "wrsping"]) {
    programs[name] = await buildGuest({
      name,
      target: "linux-static",
      sources: [`guest/smp/${name}.c`],
      args: [...GUEST_ARCH_FLAGS, "-O2", "-static", "-pthread", "-Wall", "-Wextra"],
    });
  }
  // Named after its inputs (cached files with content hashes in their paths), as bench/smp.ts does.
  const key = createHash("sha256").update(`${benchImage.initrd}\0${programs.contend}\0${programs.wrsping}`).digest("hex").slice(0, 16);
  const dir = join(CACHE_DIR, "bench/contention");
  const file = join(dir, `initrd-${key}.img`);
  if (!existsSync(file)) {
    const initrd = appendToInitrd(
      new Uint8Array(readFileSync(benchImage.initrd)),
      Object.entries(programs).map(([name, path]) => ({ path: `usr/bin/${name}`, type: "file" as const, mode: 0o755, data: new Uint8Array(readFileSync(path)) })),
    );
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${file}.${process.pid}.tmp`, initrd);
    renameSync(`${file}.${process.pid}.tmp`, file);
  }
  return { ...benchImage, initrd: file };
}

/** Pins the guest to the first two host cores when the host has more (`taskset`), so every system gets the same 2 cores. */
function onTwoCores(command: string, args: string[]): { command: string; args: string[] } {
  return hostCpus().length > 2 ? { command: "taskset", args: ["-c", "0,1", command, ...args] } : { command, args };
}

function parleyCommand(image: GuestImage, append: string, harts: number, hostThreads: number, cooperative: boolean, statsJson: string) {
  const onOff = cooperative ? "on" : "off";
  return onTwoCores(process.execPath, [
    join(REPO_ROOT, "dist/parley.mjs"), "run", "--kernel", image.kernel, "--initrd", image.initrd, "--memory", MEMORY, "--append", append, "--jit", "on",
    "--cpus", String(harts), "--host-threads", String(hostThreads), "--zawrs", onOff, "--ple", onOff, "--stats-json", statsJson,
  ]);
}

function qemuCommand(image: GuestImage, append: string, harts: number) {
  const qemu = guestSystems(MEMORY).find((s) => s.key === "qemu")!;
  const { command, args } = qemu.command(image, append, harts);
  return onTwoCores(command, args);
}

async function runConfig(config: ContentionConfig, image: GuestImage, sizes: ContentionSizes, log: Log): Promise<ContentionRun> {
  // `quiet`: no kernel message may break up a result line.
  const append = `console=ttyS0 quiet parley_cmd="${contentionWorkload(sizes.seconds)}"`;
  // The ledger and the console output of each run stay in cache/bench/contention/ for inspection.
  const statsJson = join(CACHE_DIR, "bench/contention", `ledger-${config.key}.json`);
  rmSync(statsJson, { force: true });
  const { command, args } =
    config.system === "parley" ? parleyCommand(image, append, config.harts, config.hostThreads, config.cooperative, statsJson) : qemuCommand(image, append, config.harts);
  const run = await runTimed(command, args, { timeoutMs: RUN_TIMEOUT_MS });
  const nproc = Number(/BENCH-NPROC (\d+)/.exec(run.output)?.[1]);
  const result: ContentionRun = {
    ...config,
    pipe: parseContend(run.output, "pipe"),
    file: parseContend(run.output, "file"),
    sysbench: parseSysbenchRun(run.output.slice(run.output.indexOf("BENCH-SYSBENCH"))),
    perHart: existsSync(statsJson) ? parseLedgerHarts(readFileSync(statsJson, "utf8")) : undefined,
    totalS: run.seconds,
  };
  writeFileSync(join(CACHE_DIR, "bench/contention", `output-${config.key}.log`), run.output);
  if (!result.pipe || !result.file || !result.sysbench || nproc !== config.harts || !/BENCH-DONE/.test(run.output) || (config.system === "parley" && !result.perHart)) {
    log(`${config.label}: a workload failed or the guest saw ${nproc} CPUs; output tail:\n${run.output.slice(-3000)}`);
    process.exitCode = 1;
  }
  const w = (c: Contend | undefined) => (c ? `${c.opsPerS.toFixed(0)} ops/s, p99 ${c.p99Us.toFixed(0)} us` : "failed");
  const s = (x: SysbenchRun | undefined) => (x ? `${x.eventsPerS.toFixed(1)} events/s, p99 ${x.percentileMs.toFixed(2)} ms` : "failed");
  log(`${config.label}: pipe ${w(result.pipe)}; file ${w(result.file)}; sysbench threads ${s(result.sysbench)}; whole run ${run.seconds.toFixed(1)} s`);
  if (result.perHart) log(`  ${summarizeHarts(result.perHart)}`);
  return result;
}

export function summarizeHarts(harts: HartSchedule[]): string {
  const sum = (get: (h: HartSchedule) => number) => harts.reduce((a, h) => a + get(h), 0);
  return (
    `steal per hart ${harts.map((h) => h.stealS.toFixed(1)).join("/")} s; WRS parks ${sum((h) => h.wrsParks)} (timeouts ${sum((h) => h.wrsTimeouts)}), ` +
    `pause exits ${sum((h) => h.pauseExits)}, directed yields ${sum((h) => h.directedYields)}`
  );
}

/** An 8-hart guest on 2 host threads (Zawrs + PLE on) at its shell prompt: the host CPU its process uses over `seconds`. */
async function measureIdle(image: GuestImage, seconds: number, log: Log): Promise<ContentionResult["idle"]> {
  const harts = 8;
  const hostThreads = 2;
  const statsJson = join(CACHE_DIR, "bench/contention", `ledger-idle-${process.pid}.json`);
  const { command, args } = parleyCommand(image, "console=ttyS0", harts, hostThreads, true, statsJson);
  let sample: IdleCpuSample;
  try {
    sample = await measureIdleCpu(command, args, { prompt: PROMPT, settleS: IDLE_SETTLE_S, seconds, timeoutMs: RUN_TIMEOUT_MS, name: "the idle guest" });
  } finally {
    rmSync(statsJson, { force: true });
  }
  const idle = { harts, hostThreads, seconds, cpuSeconds: sample.cpuSeconds, wallSeconds: sample.wallSeconds, percentOfCore: sample.percentOfCore };
  log(`idle, ${harts} harts on ${hostThreads} threads: ${idle.cpuSeconds.toFixed(2)} s of host CPU in ${idle.wallSeconds.toFixed(1)} s = ${idle.percentOfCore.toFixed(2)} % of one core`);
  return idle;
}

/** wrsping in a 2-hart guest on `hostThreads` host threads. */
async function measureWake(image: GuestImage, hostThreads: number, rounds: number, log: Log): Promise<{ hostThreads: number; wake?: WrsPing; perHart?: HartSchedule[] }> {
  const statsJson = join(CACHE_DIR, "bench/contention", `ledger-wake-${hostThreads}.json`);
  const append = `console=ttyS0 quiet parley_cmd="wrsping ${rounds} 100; echo BENCH-DONE"`;
  const { command, args } = parleyCommand(image, append, 2, hostThreads, true, statsJson);
  rmSync(statsJson, { force: true });
  const run = await runTimed(command, args, { timeoutMs: RUN_TIMEOUT_MS });
  writeFileSync(join(CACHE_DIR, "bench/contention", `output-wake-${hostThreads}.log`), run.output);
  const wake = parseWrsPing(run.output);
  const perHart = existsSync(statsJson) ? parseLedgerHarts(readFileSync(statsJson, "utf8")) : undefined;
  if (!wake) {
    log(`wrsping, 2 harts on ${hostThreads} thread(s) failed; output tail:\n${run.output.slice(-2000)}`);
    process.exitCode = 1;
  } else {
    log(`WRS wake, 2 harts on ${hostThreads} thread(s): median ${wake.p50Us.toFixed(1)} us, p99 ${wake.p99Us.toFixed(1)} us (${wake.parked} of ${wake.n} rounds parked)`);
  }
  return { hostThreads, wake, perHart };
}

export async function contentionComparison(quick: boolean, log: Log): Promise<ContentionResult> {
  const sizes = contentionSizes(quick);
  const loadStart = loadavg();
  log(`contention: building the images (--add ${BENCH_PACKAGES.join(" ")} plus contend and wrsping; the default image for the idle guest) ...`);
  const image = await contentionImage();
  const idleImage = await buildGuestImage({ progress: false });
  mkdirSync(join(CACHE_DIR, "bench/contention"), { recursive: true });
  const runs: ContentionRun[] = [];
  for (const config of CONTENTION_CONFIGS) runs.push(await runConfig(config, image, sizes, log));
  const idle = await measureIdle(idleImage, sizes.idleSeconds, log);
  const wake = [];
  for (const threads of [2, 1]) wake.push(await measureWake(image, threads, sizes.wakeRounds, log));
  return {
    seconds: sizes.seconds,
    workloads: { pipe: `contend pipe $(nproc) ${sizes.seconds}`, file: `contend file $(nproc) ${sizes.seconds}`, sysbench: sysbenchCommand(sizes.seconds), wake: `wrsping ${sizes.wakeRounds} 100` },
    sysbenchVersion: image.packages.sysbench,
    hostCores: hostCpus().length,
    runs,
    idle,
    wake,
    loadAverage: { start: loadStart, end: loadavg() },
  };
}
