// Multiprocessor benchmark (`npm run bench -- smp`): Parley with `--cpus N` against
// qemu-system-riscv64 -M virt with `-smp N -accel tcg,thread=multi` (one host thread per vCPU), on
// the same kernel, initramfs and OpenSBI, in one run. It only uses the --cpus option, so it
// measures whichever multi-hart engine Parley has.
//
//   - 7-Zip scaling: `7z b 1 -mmtN -md18` (as bench/guest-cpu.ts runs it with -mmt1) in a guest of
//     N harts, for N = 1, 2 (and 4 on a host with at least 4 cores); the total rating per N, and
//     each system's scaling from 1 hart (rating at N / rating at 1).
//   - IPI latency: guest/smp/ipiping.c in the 2-hart guests (after 7-Zip): two threads pinned to
//     CPU 0 and CPU 1 hand a token back and forth through a futex, so that every hand-off wakes an
//     idle hart by IPI; median and 99th percentile of the round trip, from the guest clock.
//   - Idle host CPU: a 4-hart guest (the default image) booted to its shell, left idle; the host
//     CPU time its process (every thread) used over the measured seconds, from /proc/PID/stat,
//     as a percentage of one core.
//
// Options: --reps N (default 1; medians are reported), --memory SIZE (default 512M),
// --cpus LIST (7-Zip harts, default 1,2 and 4 with >= 4 host cores), --round-trips N (default 2000),
// --idle-seconds N (default 10), --only 7z,idle (parts; the IPI latency rides on the 7z runs).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { cpus as hostCpus, loadavg } from "node:os";
import { join } from "node:path";
import { buildGuestImage, type GuestImage } from "../src/image/index.ts";
import { GUEST_ARCH_FLAGS, appendToInitrd } from "../src/image/guest-programs.ts";
import { buildGuest } from "../src/image/toolchain.ts";
import { CACHE_DIR } from "../src/host/node/paths.ts";
import {
  BENCH_PACKAGES, fmt, guestSystems, measureIdleCpu, median, parse7z, parseIpiping, runGuest, sevenZipCommand, type IdleCpuSample,
  type GuestSystem, type IpiPing, type SevenZip,
} from "./guest-workloads.ts";

const SYSTEMS = ["parley-on", "qemu"];
const PROMPT = /root@parley[^\n]*# /;
/** Seconds between the shell prompt and the idle measurement, for the console to fall quiet. */
const IDLE_SETTLE_S = 2;
const IDLE_HARTS = 4;
const IPI_HARTS = 2;
const IPI_WARMUP = 200;
const IPI_MAX_SECONDS = 60;
const BOOT_TIMEOUT_MS = 300_000;

interface Options {
  reps: number;
  memory: string;
  cpus: number[];
  roundTrips: number;
  idleSeconds: number;
  only: string[] | undefined;
}

function parseArgs(argv: string[]): Options {
  const defaultCpus = hostCpus().length >= 4 ? [1, 2, 4] : [1, 2];
  const opts: Options = { reps: 1, memory: "512M", cpus: defaultCpus, roundTrips: 2000, idleSeconds: 10, only: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const positive = (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs positive integers, not ${v}`);
      return n;
    };
    if (a === "--reps") opts.reps = positive(value());
    else if (a === "--memory") opts.memory = value();
    else if (a === "--cpus") opts.cpus = [...new Set(value().split(",").map(positive))].sort((x, y) => x - y);
    else if (a === "--round-trips") opts.roundTrips = positive(value());
    else if (a === "--idle-seconds") opts.idleSeconds = positive(value());
    else if (a === "--only") opts.only = value().split(",");
    else throw new Error(`unknown option ${a}`);
  }
  for (const part of opts.only ?? []) if (part !== "7z" && part !== "idle") throw new Error(`--only: unknown part ${part} (7z, idle)`);
  return opts;
}

/** The 7-Zip image (`--add 7zip sysbench`, shared with guest-cpu) with /usr/bin/ipiping appended. */
async function smpImage(): Promise<GuestImage> {
  const benchImage = await buildGuestImage({ add: BENCH_PACKAGES, progress: false });
  const ipiping = await buildGuest({
    name: "ipiping",
    target: "linux-static",
    sources: ["guest/smp/ipiping.c"],
    args: [...GUEST_ARCH_FLAGS, "-O2", "-static", "-pthread", "-Wall", "-Wextra"],
  });
  // Named after its inputs (both cached files carry a content hash in their paths), so runs from
  // several checkouts sharing one cache never rewrite a file another run is booting.
  const key = createHash("sha256").update(`${benchImage.initrd}\0${ipiping}`).digest("hex").slice(0, 16);
  const dir = join(CACHE_DIR, "bench/smp");
  const file = join(dir, `initrd-${key}.img`);
  if (!existsSync(file)) {
    const initrd = appendToInitrd(new Uint8Array(readFileSync(benchImage.initrd)), [
      { path: "usr/bin/ipiping", type: "file", mode: 0o755, data: new Uint8Array(readFileSync(ipiping)) },
    ]);
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${file}.${process.pid}.tmp`, initrd);
    renameSync(`${file}.${process.pid}.tmp`, file);
  }
  return { ...benchImage, initrd: file };
}

/** Boots `harts` harts to the shell prompt, waits IDLE_SETTLE_S, then samples the process's CPU time for `seconds`. */
function measureIdle(system: GuestSystem, image: GuestImage, harts: number, seconds: number): Promise<IdleCpuSample> {
  const { command, args } = system.command(image, "console=ttyS0", harts);
  return measureIdleCpu(command, args, { prompt: PROMPT, settleS: IDLE_SETTLE_S, seconds, timeoutMs: BOOT_TIMEOUT_MS + seconds * 1000, name: system.name });
}

interface SevenZipSample {
  harts: number;
  sevenZip?: SevenZip;
  ipi?: IpiPing;
  totalS: number;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const want = (part: string) => !opts.only || opts.only.includes(part);
  console.log(`smp: building the guest images (default, and with --add ${BENCH_PACKAGES.join(" ")} plus ipiping) ...`);
  const image = await buildGuestImage({ progress: false });
  const benchImage = await smpImage();
  const chosen = guestSystems(opts.memory).filter((s) => SYSTEMS.includes(s.key));
  const ipiCommand = `ipiping ${opts.roundTrips} ${IPI_WARMUP} ${IPI_MAX_SECONDS}`;
  console.log(
    `smp: Debian ${benchImage.kernelVersion}, ${opts.memory} RAM, ${opts.reps} run(s) each, host ${hostCpus().length} cores; ` +
      `7-Zip ${benchImage.packages["7zip"] ?? "?"} \`${sevenZipCommand("N")}\` for N = ${opts.cpus.join(", ")}; ` +
      `\`${ipiCommand}\` at ${IPI_HARTS} harts; idle: ${IDLE_HARTS} harts, ${opts.idleSeconds} s`,
  );

  const loadAtStart = loadavg();
  const runs: Record<string, SevenZipSample[]> = Object.fromEntries(chosen.map((s) => [s.key, []]));
  if (want("7z")) {
    // Interleave the systems so that drifting host load hits them alike.
    for (let r = 0; r < opts.reps; r++) {
      for (const harts of opts.cpus) {
        for (const system of chosen) {
          const ipi = harts === IPI_HARTS;
          // `quiet`: no kernel message may break up a line of the benchmarks' output.
          const workload =
            `echo BENCH-NPROC $(nproc); echo BENCH-7Z; ${sevenZipCommand(harts)}; ` + (ipi ? `echo BENCH-IPI; ${ipiCommand}; ` : "") + "echo BENCH-DONE";
          const { command, args } = system.command(benchImage, `console=ttyS0 quiet parley_cmd="${workload}"`, harts);
          const run = await runGuest(command, args);
          const sample: SevenZipSample = { harts, sevenZip: parse7z(run.output), ipi: ipi ? parseIpiping(run.output) : undefined, totalS: run.totalS };
          const nproc = /BENCH-NPROC (\d+)/.exec(run.output);
          if (!sample.sevenZip || (ipi && !sample.ipi) || !/BENCH-DONE/.test(run.output) || Number(nproc?.[1]) !== harts) {
            console.error(`  ${system.name}, ${harts} hart(s): a workload failed or the guest saw ${nproc?.[1] ?? "?"} CPUs; output tail:\n${run.output.slice(-3000)}`);
            process.exitCode = 1;
          }
          console.log(
            `  ${system.name}, ${harts} hart(s): 7z rating ${fmt(sample.sevenZip?.rating ?? NaN, 0)} (compress ${fmt(sample.sevenZip?.compressKiBs ?? NaN, 0)} KiB/s, ` +
              `decompress ${fmt(sample.sevenZip?.decompressKiBs ?? NaN, 0)} KiB/s)` +
              (sample.ipi ? `, IPI round trip median ${fmt(sample.ipi.p50Us)} us, p99 ${fmt(sample.ipi.p99Us)} us (n=${sample.ipi.n})` : "") +
              `, whole run ${fmt(run.totalS, 1)} s`,
          );
          runs[system.key].push(sample);
        }
      }
    }
  }

  const idle: Record<string, IdleCpuSample[]> = Object.fromEntries(chosen.map((s) => [s.key, []]));
  if (want("idle")) {
    for (let r = 0; r < opts.reps; r++) {
      for (const system of chosen) {
        const s = await measureIdle(system, image, IDLE_HARTS, opts.idleSeconds);
        idle[system.key].push(s);
        console.log(
          `  ${system.name}, ${IDLE_HARTS} harts idle at the shell: ${fmt(s.cpuSeconds, 2)} s of host CPU in ${fmt(s.wallSeconds, 2)} s = ${fmt(s.percentOfCore)} % of one core`,
        );
      }
    }
  }

  // Medians per system and hart count; scaling relative to the same system at 1 hart.
  const results = chosen.map((s) => {
    const byHarts = opts.cpus.map((harts) => {
      const xs = runs[s.key].filter((x) => x.harts === harts);
      return {
        harts,
        sevenZipRating: median(xs.map((x) => x.sevenZip?.rating ?? NaN)),
        sevenZipCompressKiBs: median(xs.map((x) => x.sevenZip?.compressKiBs ?? NaN)),
        sevenZipDecompressKiBs: median(xs.map((x) => x.sevenZip?.decompressKiBs ?? NaN)),
        scalingFrom1: NaN,
      };
    });
    const one = byHarts.find((b) => b.harts === 1)?.sevenZipRating ?? NaN;
    for (const b of byHarts) b.scalingFrom1 = b.sevenZipRating / one;
    const ipis = runs[s.key].map((x) => x.ipi).filter((x): x is IpiPing => x !== undefined);
    const idles = idle[s.key];
    return {
      system: s.name,
      key: s.key,
      sevenZip: byHarts,
      ipi: { harts: IPI_HARTS, p50Us: median(ipis.map((x) => x.p50Us)), p99Us: median(ipis.map((x) => x.p99Us)), avgUs: median(ipis.map((x) => x.avgUs)) },
      idle: { harts: IDLE_HARTS, seconds: opts.idleSeconds, percentOfCore: median(idles.map((x) => x.percentOfCore)) },
      samples: { sevenZip: runs[s.key], idle: idles },
    };
  });

  const parley = results.find((r) => r.key === "parley-on")!;
  const qemu = results.find((r) => r.key === "qemu")!;
  const ratio = (p: number, q: number) => (Number.isFinite(p) && Number.isFinite(q) && q !== 0 ? `${(p / q).toFixed(2)}x` : "-");
  if (want("7z")) {
    console.log(`\n| 7z b -mmtN, N harts | Parley rating | QEMU rating | Parley / QEMU | Parley scaling from 1 hart | QEMU scaling from 1 hart |`);
    console.log("|---|---:|---:|---:|---:|---:|");
    for (const harts of opts.cpus) {
      const p = parley.sevenZip.find((b) => b.harts === harts)!;
      const q = qemu.sevenZip.find((b) => b.harts === harts)!;
      console.log(
        `| ${harts} | ${fmt(p.sevenZipRating, 0)} | ${fmt(q.sevenZipRating, 0)} | ${ratio(p.sevenZipRating, q.sevenZipRating)} | ` +
          `${fmt(p.scalingFrom1, 2)}x | ${fmt(q.scalingFrom1, 2)}x |`,
      );
    }
    console.log("(7-Zip total rating in MIPS, higher is better; scaling: rating at N harts / rating at 1 hart)");
    if (opts.cpus.includes(IPI_HARTS)) {
      console.log(`\n| IPI round trip, ${IPI_HARTS} harts (futex ping-pong, CPU 0 <-> CPU 1) | Parley | QEMU | Parley / QEMU |`);
      console.log("|---|---:|---:|---:|");
      console.log(`| median (us) | ${fmt(parley.ipi.p50Us)} | ${fmt(qemu.ipi.p50Us)} | ${ratio(parley.ipi.p50Us, qemu.ipi.p50Us)} |`);
      console.log(`| p99 (us) | ${fmt(parley.ipi.p99Us)} | ${fmt(qemu.ipi.p99Us)} | ${ratio(parley.ipi.p99Us, qemu.ipi.p99Us)} |`);
      console.log("(lower is better)");
    }
  }
  if (want("idle")) {
    console.log(`\n| idle at the shell, ${IDLE_HARTS} harts, ${opts.idleSeconds} s | Parley | QEMU | Parley / QEMU |`);
    console.log("|---|---:|---:|---:|");
    console.log(`| host CPU (% of one core) | ${fmt(parley.idle.percentOfCore)} | ${fmt(qemu.idle.percentOfCore)} | ${ratio(parley.idle.percentOfCore, qemu.idle.percentOfCore)} |`);
    console.log("(lower is better)");
  }

  const loadAtEnd = loadavg();
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  console.log(`host load average (1, 5, 15 min): ${load(loadAtStart)} at the start, ${load(loadAtEnd)} at the end`);
  mkdirSync(join(CACHE_DIR, "bench"), { recursive: true });
  const outFile = join(CACHE_DIR, "bench/smp.json");
  writeFileSync(
    outFile,
    JSON.stringify(
      {
        generatedAt: new Date().toISOString(),
        host: { cpu: hostCpus()[0]?.model ?? "unknown", cores: hostCpus().length, node: process.version, loadAverage: { start: loadAtStart, end: loadAtEnd } },
        kernel: benchImage.kernelVersion,
        packages: { "7zip": benchImage.packages["7zip"] },
        memory: opts.memory,
        reps: opts.reps,
        workloads: { sevenZip: sevenZipCommand("N"), harts: opts.cpus, ipi: ipiCommand, idle: { harts: IDLE_HARTS, seconds: opts.idleSeconds, settleSeconds: IDLE_SETTLE_S } },
        results,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`smp: results written to ${outFile}`);
}

await main();
