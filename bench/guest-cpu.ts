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
// Options: --reps N (default 3; medians are reported), --memory SIZE (default 512M), --sysbench-seconds N (default 10),
// --only parley-off,parley-on,qemu (a subset), --skip-boot.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { buildGuestImage, type GuestImage } from "../src/image/index.ts";
import { CACHE_DIR, REPO_ROOT } from "../src/host/node/paths.ts";
import { runTimed } from "./harness.ts";

const INIT_MARKER = /Run \/init as init process/;
const TIMEOUT_MS = 1_800_000;

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

interface System {
  name: string;
  key: string;
  command: (image: GuestImage, append: string) => { command: string; args: string[] };
}

function systems(memory: string): System[] {
  const parley = (jit: "on" | "off") => (image: GuestImage, append: string) => ({
    command: process.execPath,
    args: [join(REPO_ROOT, "dist/parley.mjs"), "run", "--kernel", image.kernel, "--initrd", image.initrd, "--memory", memory, "--append", append, "--jit", jit],
  });
  return [
    { name: "Parley, translator off (interpreter)", key: "parley-off", command: parley("off") },
    { name: "Parley, translator on", key: "parley-on", command: parley("on") },
    {
      name: "qemu-system-riscv64 -M virt (TCG)",
      key: "qemu",
      command: (image, append) => ({
        command: "qemu-system-riscv64",
        args: ["-M", "virt", "-m", memory, "-smp", "1", "-nographic", "-no-reboot", "-bios", image.opensbi.fwDynamic!,
          "-kernel", image.kernel, "-initrd", image.initrd, "-append", append],
      }),
    },
  ];
}

interface RunResult {
  output: string;
  toInitS: number | undefined;
  totalS: number;
}

/** Runs a guest to its end (or until `stopAt` appears), timing the init marker. */
async function runGuest(command: string, args: string[], stopAt?: RegExp): Promise<RunResult> {
  const run = await runTimed(command, args, { markers: { init: INIT_MARKER }, stopAt, timeoutMs: TIMEOUT_MS });
  return { output: run.output, toInitS: run.markers.init, totalS: run.seconds };
}

interface SevenZip {
  compressKiBs: number;
  decompressKiBs: number;
  rating: number;
}

/** The "Avr:" and "Tot:" lines of `7z b`: compression speed, decompression speed, total rating (MIPS). */
function parse7z(output: string): SevenZip | undefined {
  const lines = output.split(/\r?\n/);
  const dict = lines.filter((l) => /^\s*\d+:\s+\d+\s+\d+\s+\d+\s+\d+\s+\|/.test(l));
  const tot = lines.find((l) => /^Tot:/.test(l));
  if (!dict.length || !tot) return undefined;
  // "18:   737   100   658   657  |   6530   100   529   528"
  const speeds = dict.map((l) => l.split("|").map((half) => half.trim().split(/\s+/).map(Number)));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rating = Number(tot.trim().split(/\s+/).pop());
  return {
    compressKiBs: mean(speeds.map((s) => s[0][1])),
    decompressKiBs: mean(speeds.map((s) => s[1][0])),
    rating,
  };
}

function parseSysbench(output: string): number | undefined {
  const m = /events per second:\s+([\d.]+)/.exec(output);
  return m ? Number(m[1]) : undefined;
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : NaN;
};
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  console.log("guest-cpu: building the guest images (default, and with --add 7zip sysbench) ...");
  const image = await buildGuestImage({ progress: false });
  const benchImage = await buildGuestImage({ add: ["7zip", "sysbench"], progress: false });
  const sevenZip = "7z b 1 -mmt1 -md18";
  const sysbench = `sysbench cpu --cpu-max-prime=20000 --threads=1 --time=${opts.sysbenchSeconds} run`;
  // The init runs parley_cmd with sh; each workload's output ends up on the console.
  const workload = `echo BENCH-7Z; ${sevenZip}; echo BENCH-SYSBENCH; ${sysbench}; echo BENCH-DONE`;
  const appendBench = `console=ttyS0 parley_cmd="${workload}"`;
  const appendBoot = "console=ttyS0";
  const chosen = systems(opts.memory).filter((s) => !opts.only || opts.only.includes(s.key));
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
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`guest-cpu: results written to ${outFile}`);
}

await main();
