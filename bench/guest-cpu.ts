// In-guest CPU benchmark: Debian's own riscv64 binaries, run inside the booted guest, on Parley
// with the translator off and on and on qemu-system-riscv64 (TCG), in one run:
//
//   - `7z b` (7-Zip's self-checking LZMA benchmark, package 7zip): its compression and
//     decompression speeds and total rating, single-threaded;
//   - `sysbench cpu` (primes by trial division): events per second;
//   - boot to init ("Run /init as init process") of the default guest image, as bench/boot.ts
//     measures it, and of the benchmark image (bigger initramfs) on the way to the workloads.
//
// The workloads come from the guest image built with `--add 7zip sysbench`; the init runs them
// from parley_cmd= on the kernel command line and powers off. Both report speeds from the guest
// clock, which follows the host's wall clock on Parley and on QEMU alike, so the figures compare
// directly (and suffer alike from a busy host).
//
// Parley with the translator on also runs the same single-threaded workloads on a machine of 4
// harts (`--cpus 4`, three of them idle at the shell), to show what the multi-hart machinery costs
// one busy hart against `--cpus 1`.
//
// Options: --reps N (default 3; medians are reported), --memory SIZE (default 512M), --sysbench-seconds N (default 10),
// --only parley-off,parley-on,parley-on-4,qemu (a subset), --skip-boot.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { buildGuestImage } from "../src/image/index.ts";
import { CACHE_DIR } from "../src/host/node/paths.ts";
import { BENCH_PACKAGES, INIT_MARKER, fmt, guestSystems, median, parse7z, parseSysbench, runGuest, sevenZipCommand, type SevenZip } from "./guest-workloads.ts";

interface Options {
  reps: number;
  memory: string;
  sysbenchSeconds: number;
  only: string[] | undefined;
  skipBoot: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { reps: 3, memory: "512M", sysbenchSeconds: 10, only: undefined, skipBoot: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--reps") opts.reps = Number(value());
    else if (a === "--memory") opts.memory = value();
    else if (a === "--sysbench-seconds") opts.sysbenchSeconds = Number(value());
    else if (a === "--only") opts.only = value().split(",");
    else if (a === "--skip-boot") opts.skipBoot = true;
    else throw new Error(`unknown option ${a}`);
  }
  if (!Number.isInteger(opts.reps) || opts.reps < 1) throw new Error("--reps needs a positive integer");
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  console.log("guest-cpu: building the guest images (default, and with --add 7zip sysbench) ...");
  const image = await buildGuestImage({ progress: false });
  const benchImage = await buildGuestImage({ add: BENCH_PACKAGES, progress: false });
  const sevenZip = sevenZipCommand(1);
  const sysbench = `sysbench cpu --cpu-max-prime=20000 --threads=1 --time=${opts.sysbenchSeconds} run`;
  // The init runs parley_cmd with sh; each workload's output ends up on the console.
  const workload = `echo BENCH-7Z; ${sevenZip}; echo BENCH-SYSBENCH; ${sysbench}; echo BENCH-DONE`;
  const appendBench = `console=ttyS0 parley_cmd="${workload}"`;
  const appendBoot = "console=ttyS0";
  const chosen = guestSystems(opts.memory).filter((s) => !opts.only || opts.only.includes(s.key));
  console.log(
    `guest-cpu: Debian ${benchImage.kernelVersion}, ${opts.memory} RAM, ${opts.reps} run(s) each; ` +
      `7-Zip ${benchImage.packages["7zip"] ?? "?"}: \`${sevenZip}\`; sysbench ${benchImage.packages.sysbench ?? "?"}: \`${sysbench}\``,
  );

  type Sample = { bootInitS?: number; benchInitS?: number; sevenZip?: SevenZip; sysbenchEps?: number };
  const samples: Record<string, Sample[]> = Object.fromEntries(chosen.map((s) => [s.key, []]));
  // Interleave the systems so that drifting host load hits them alike.
  for (let r = 0; r < opts.reps; r++) {
    for (const system of chosen) {
      const sample: Sample = {};
      if (!opts.skipBoot) {
        const boot = system.command(image, appendBoot);
        const run = await runGuest(boot.command, boot.args, INIT_MARKER);
        sample.bootInitS = run.toInitS;
        console.log(`  ${system.name}: boot to init ${fmt(run.toInitS ?? NaN, 2)} s`);
      }
      const bench = system.command(benchImage, appendBench);
      const run = await runGuest(bench.command, bench.args);
      sample.benchInitS = run.toInitS;
      sample.sevenZip = parse7z(run.output);
      sample.sysbenchEps = parseSysbench(run.output);
      if (!sample.sevenZip || sample.sysbenchEps === undefined || !/BENCH-DONE/.test(run.output)) {
        console.error(`  ${system.name}: a workload failed; output tail:\n${run.output.slice(-3000)}`);
        process.exitCode = 1;
      }
      console.log(
        `  ${system.name}: 7z rating ${fmt(sample.sevenZip?.rating ?? NaN, 0)} (compress ${fmt(sample.sevenZip?.compressKiBs ?? NaN, 0)} KiB/s, ` +
          `decompress ${fmt(sample.sevenZip?.decompressKiBs ?? NaN, 0)} KiB/s), sysbench ${fmt(sample.sysbenchEps ?? NaN)} events/s, ` +
          `init of the benchmark image ${fmt(run.toInitS ?? NaN, 2)} s, whole run ${fmt(run.totalS, 1)} s`,
      );
      samples[system.key].push(sample);
    }
  }

  const results = chosen.map((s) => {
    const xs = samples[s.key];
    return {
      system: s.name,
      key: s.key,
      bootToInitS: median(xs.map((x) => x.bootInitS ?? NaN)),
      benchImageToInitS: median(xs.map((x) => x.benchInitS ?? NaN)),
      sevenZipRating: median(xs.map((x) => x.sevenZip?.rating ?? NaN)),
      sevenZipCompressKiBs: median(xs.map((x) => x.sevenZip?.compressKiBs ?? NaN)),
      sevenZipDecompressKiBs: median(xs.map((x) => x.sevenZip?.decompressKiBs ?? NaN)),
      sysbenchEventsPerS: median(xs.map((x) => x.sysbenchEps ?? NaN)),
      samples: xs,
    };
  });
  const qemu = results.find((r) => r.key === "qemu");
  const vsQemu = (v: number, q: number | undefined, lowerIsBetter = false) =>
    q === undefined || !Number.isFinite(v) || !Number.isFinite(q) ? "-" : `${(lowerIsBetter ? v / q : v / q).toFixed(2)}x`;
  console.log("\n| system | boot to init (s) | 7z rating | 7z compress KiB/s | 7z decompress KiB/s | sysbench events/s | 7z vs QEMU | sysbench vs QEMU | boot vs QEMU |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results) {
    console.log(
      `| ${r.system} | ${fmt(r.bootToInitS, 2)} | ${fmt(r.sevenZipRating, 0)} | ${fmt(r.sevenZipCompressKiBs, 0)} | ${fmt(r.sevenZipDecompressKiBs, 0)} | ` +
        `${fmt(r.sysbenchEventsPerS)} | ${vsQemu(r.sevenZipRating, qemu?.sevenZipRating)} | ${vsQemu(r.sysbenchEventsPerS, qemu?.sysbenchEventsPerS)} | ` +
        `${vsQemu(r.bootToInitS, qemu?.bootToInitS, true)} |`,
    );
  }
  console.log("(ratings and speeds: higher is better; boot: lower is better, the ratio is time / QEMU's time)");
  const oneHart = results.find((r) => r.key === "parley-on");
  const fourHarts = results.find((r) => r.key === "parley-on-4");
  const change = (four: number, one: number, lowerIsBetter = false) =>
    !Number.isFinite(four) || !Number.isFinite(one) ? "-" : `${(((lowerIsBetter ? one / four : four / one) - 1) * 100).toFixed(1)}%`;
  let multiHartCost: Record<string, string> | undefined;
  if (oneHart && fourHarts) {
    multiHartCost = {
      sevenZipRating: change(fourHarts.sevenZipRating, oneHart.sevenZipRating),
      sysbenchEventsPerS: change(fourHarts.sysbenchEventsPerS, oneHart.sysbenchEventsPerS),
      bootToInit: change(fourHarts.bootToInitS, oneHart.bootToInitS, true),
    };
    console.log(
      `single-threaded speed with --cpus 4 against --cpus 1 (negative: slower): 7z rating ${multiHartCost.sevenZipRating}, ` +
        `sysbench ${multiHartCost.sysbenchEventsPerS}, boot to init ${multiHartCost.bootToInit}`,
    );
  }
  mkdirSync(join(CACHE_DIR, "bench"), { recursive: true });
  const outFile = join(CACHE_DIR, "bench/guest-cpu.json");
  writeFileSync(
    outFile,
    JSON.stringify(
      {
        generatedAt: new Date().toISOString(),
        host: { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version },
        kernel: benchImage.kernelVersion,
        packages: benchImage.packages,
        memory: opts.memory,
        reps: opts.reps,
        workloads: { sevenZip, sysbench },
        results,
        multiHartCost,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`guest-cpu: results written to ${outFile}`);
}

await main();
