// CPU benchmark: Parley (bare-metal build, run by run-elf) against qemu-riscv64 (static Linux build
// of the same program). Run with `npm run bench`; options:
//   --each            also measure every kernel on its own, not just the mix
//   --reps N          timed repetitions per measurement (median reported; default 3)
//   --iterations N    iterations of the mix (default: the program's compile-time default)
//   --no-parley       QEMU only (instruction counts then come from qemu-system -icount)
//   --jit on|off      Parley's engine: the translator (default) or the interpreter alone
//
// QEMU cannot count instructions cheaply, but the benchmark kernel is compiled to identical code on
// both targets, so Parley's instruction count for a workload is also QEMU's. Each workload is also run
// at one iteration; subtracting that run removes start-up (process creation, libc init, data set-up,
// QEMU's first translation of the code) from the instruction count and from QEMU's wall time, and
// dividing by the iteration difference gives the exact per-iteration count (every iteration repeats
// the same work). QEMU then runs more iterations than Parley, to be timed with useful precision.
// qemu-system-riscv64 -icount provides an independent instruction count to cross-check Parley's.
// After the mix (and --each), the "codepage" workload (bench/codepage.ts): code and data on one page.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { buildCpuBench, type CpuBenchKernel } from "../src/image/guest-programs.ts";
import { CACHE_DIR } from "../src/image/toolchain.ts";
import { runTimed } from "./harness.ts";
import { runElfFile as runParleyElf } from "../src/cli/run-elf.ts";
import { measureCodePage, type CodePageResult } from "./codepage.ts";

interface Workload {
  name: string;
  kernel: CpuBenchKernel;
  /** undefined: the compile-time default of guest/bench/cpubench.c */
  iterations?: number;
}

// Single-kernel iteration counts give roughly 2e8 instructions each (about 2 s at 100 MIPS), from the
// per-iteration counts measured when the kernels were written.
const SINGLE_KERNEL_ITERATIONS: Record<Exclude<CpuBenchKernel, "all">, number> = {
  alu: 71, // 2.81M instructions per iteration
  matmul: 93, // 2.14M
  sort: 39, // 5.10M
  chase: 64, // 3.11M
  interp: 43, // 4.70M
  text: 61, // 3.30M
};
const SMALL_ITERATIONS = 1;
/** Instructions per timed QEMU run: about 1.5-2 s at the 1.2-1.8 GIPS qemu-riscv64 reaches on this code. */
const QEMU_TARGET_INSTRUCTIONS = 2.5e9;

function parseArgs(argv: string[]) {
  const opts = { each: false, reps: 3, iterations: undefined as number | undefined, parley: true, jit: "on" as "on" | "off" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === "--each") opts.each = true;
    else if (a === "--reps") opts.reps = num();
    else if (a === "--iterations") opts.iterations = num();
    else if (a === "--no-parley") opts.parley = false;
    else if (a === "--jit") {
      const v = argv[++i];
      if (v !== "on" && v !== "off") throw new Error("--jit needs on or off");
      opts.jit = v;
    }
    else throw new Error(`unknown option ${a}`);
  }
  if (opts.iterations !== undefined && opts.iterations <= SMALL_ITERATIONS)
    throw new Error(`--iterations must exceed the calibration run's ${SMALL_ITERATIONS}`);
  return opts;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length & 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

interface BenchOutput {
  iterations: number;
  checksum: string;
  instret?: number;
}

/** Checks a cpubench run succeeded and extracts what it reported. */
function parseBenchOutput(what: string, run: { exitCode: number; output: string }): BenchOutput {
  const iterations = /cpubench: target=\S+ iterations=(\d+)/.exec(run.output);
  const checksum = /cpubench: checksum=(0x[0-9a-f]+)/.exec(run.output);
  if (run.exitCode !== 0 || !/^cpubench: OK$/m.test(run.output) || !iterations || !checksum) {
    // run-elf reports -1 when its instruction limit stopped the program before it exited.
    const why = run.exitCode === -1 ? "did not finish within the instruction limit" : `exit code ${run.exitCode}`;
    throw new Error(`${what} failed (${why}); output:\n${run.output}`);
  }
  const instret = /cpubench: instret=(\d+)/.exec(run.output);
  return { iterations: Number(iterations[1]), checksum: checksum[1], instret: instret ? Number(instret[1]) : undefined };
}

async function qemuVersion(): Promise<string> {
  try {
    const r = await runTimed("qemu-riscv64", ["--version"]);
    return r.output.split("\n")[0].trim();
  } catch {
    return "unknown";
  }
}

const fmtInt = (n: number | undefined) => (n === undefined ? "-" : Math.round(n).toLocaleString("en-US"));
const fmtNum = (n: number | undefined, digits: number) => (n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits));

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const workloads: Workload[] = [{ name: "mix", kernel: "all", iterations: opts.iterations }];
  if (opts.each)
    for (const [kernel, iterations] of Object.entries(SINGLE_KERNEL_ITERATIONS))
      workloads.push({ name: kernel, kernel: kernel as CpuBenchKernel, iterations });

  const runElfFile = opts.parley ? runParleyElf : undefined;

  if (runElfFile) console.log(`bench: Parley with the ${opts.jit === "on" ? "translator (--jit on)" : "interpreter alone (--jit off)"}`);
  console.log("bench: building the benchmark for bare metal and Linux ...");
  const builds = await Promise.all(
    workloads.map(async (w) => ({
      bm: await buildCpuBench("baremetal", w.iterations, { kernel: w.kernel }),
      bmSmall: await buildCpuBench("baremetal", SMALL_ITERATIONS, { kernel: w.kernel }),
      linux: await buildCpuBench("linux-static", w.iterations, { kernel: w.kernel }), // checksum cross-check
      linuxSmall: await buildCpuBench("linux-static", SMALL_ITERATIONS, { kernel: w.kernel }),
      // Instruction counts independent of Parley: the kernel loop's minstret under QEMU's exact icount.
      bmInstret: await buildCpuBench("baremetal", w.iterations, { kernel: w.kernel, reportInstret: true }),
      bmInstretSmall: await buildCpuBench("baremetal", SMALL_ITERATIONS, { kernel: w.kernel, reportInstret: true }),
    })),
  );

  const results = [];
  for (let i = 0; i < workloads.length; i++) {
    console.log(`bench: ${workloads[i].name}`);
    results.push(await measureWorkload(workloads[i], builds[i], opts, runElfFile));
  }
  printResults(results, opts.reps);
  console.log("bench: codepage (code and data on one page)");
  const codePage = await measureCodePage(opts.reps, opts.jit, runElfFile);
  await writeReport(results, codePage, opts, runElfFile !== undefined);
}

type Builds = { bm: string; bmSmall: string; linux: string; linuxSmall: string; bmInstret: string; bmInstretSmall: string };
type Options = ReturnType<typeof parseArgs>;
type WorkloadResult = Awaited<ReturnType<typeof measureWorkload>>;

/** One workload: exact instruction counts (QEMU -icount), Parley's runs, qemu-riscv64's runs. */
async function measureWorkload(w: Workload, b: Builds, opts: Options, runElfFile: typeof runParleyElf | undefined) {
  // Exact kernel instruction counts from QEMU's system emulator in icount mode.
  const icountArgs = (elf: string) => ["-M", "spike", "-bios", "none", "-nographic", "-icount", "shift=0", "-kernel", elf];
  const icFull = parseBenchOutput(`${w.name}: qemu-system -icount`, await runTimed("qemu-system-riscv64", icountArgs(b.bmInstret)));
  const icSmall = parseBenchOutput(
    `${w.name}: qemu-system -icount (calibration)`,
    await runTimed("qemu-system-riscv64", icountArgs(b.bmInstretSmall)),
  );
  const iterations = icFull.iterations;
  const icountKernelInsns = icFull.instret! - icSmall.instret!;

  // The Linux build must compute exactly what the bare-metal one does.
  const linuxCheck = parseBenchOutput(`${w.name}: qemu-riscv64`, await runTimed("qemu-riscv64", [b.linux]));
  if (linuxCheck.iterations !== iterations) throw new Error(`${w.name}: builds disagree on the iteration count`);
  if (linuxCheck.checksum !== icFull.checksum)
    throw new Error(`${w.name}: checksum differs between Linux (${linuxCheck.checksum}) and bare metal (${icFull.checksum})`);

  const { parley, parleyError } = await measureParley(w, b, opts, runElfFile, icFull);

  // Parley's difference also contains a few dozen instructions of printf whose work depends on the
  // printed numbers; anything beyond that means Parley miscounts (or mis-executes) instructions.
  const kernelInsns = parley ? parley.instret - parley.instretSmall : icountKernelInsns;
  const instretMismatch = parley ? kernelInsns - icountKernelInsns : 0;
  if (Math.abs(instretMismatch) > 10_000)
    console.warn(`  WARNING: Parley counted ${kernelInsns} kernel instructions, QEMU -icount ${icountKernelInsns}`);
  // Every iteration executes the same instructions (the kernels redo identical work), so the count
  // scales exactly with the iteration count.
  const perIteration = kernelInsns / (iterations - SMALL_ITERATIONS);

  // QEMU is an order of magnitude faster than Parley: a run sized for Parley would be over in a
  // fraction of a second, comparable to QEMU's start-up noise, so QEMU runs more iterations.
  const qemuIterations = Math.max(iterations, Math.ceil(QEMU_TARGET_INSTRUCTIONS / perIteration));
  const qemuElf = await buildCpuBench("linux-static", qemuIterations, { kernel: w.kernel });
  const qemuKernelInsns = perIteration * (qemuIterations - SMALL_ITERATIONS);

  // Alternate full and calibration runs so drift in host load hits both alike.
  const qemuSeconds: number[] = [];
  const qemuSmallSeconds: number[] = [];
  for (let r = 0; r < opts.reps; r++) {
    const full = await runTimed("qemu-riscv64", [qemuElf]);
    parseBenchOutput(`${w.name}: qemu-riscv64 (${qemuIterations} iterations)`, full);
    qemuSeconds.push(full.seconds);
    const small = await runTimed("qemu-riscv64", [b.linuxSmall]);
    parseBenchOutput(`${w.name}: qemu-riscv64 (calibration)`, small);
    qemuSmallSeconds.push(small.seconds);
    console.log(
      `  qemu    run ${r + 1}/${opts.reps}: ${full.seconds.toFixed(3)} s for ${qemuIterations} iterations (calibration ${small.seconds.toFixed(3)} s)`,
    );
  }

  const parleyMedian = parley ? median(parley.seconds) : undefined;
  const parleyMips = parley && parleyMedian ? parley.instret / parleyMedian / 1e6 : undefined;
  const parleyKernelMips = parley && parleyMedian ? kernelInsns / (parleyMedian - parley.smallSeconds) / 1e6 : undefined;
  const qemuMedian = median(qemuSeconds);
  const qemuSmallMedian = median(qemuSmallSeconds);
  const qemuKernelSeconds = qemuMedian - qemuSmallMedian;
  const qemuMips = qemuKernelSeconds > 0 ? qemuKernelInsns / qemuKernelSeconds / 1e6 : undefined;

  return {
    name: w.name,
    kernel: w.kernel,
    iterations,
    smallIterations: SMALL_ITERATIONS,
    checksum: icFull.checksum,
    instructions: {
      source: parley ? "parley" : "qemu-icount",
      perIteration,
      kernel: kernelInsns,
      parleyRun: parley?.instret,
      parleySmallRun: parley?.instretSmall,
      icountKernel: icountKernelInsns,
      parleyMinusIcount: parley ? instretMismatch : undefined,
    },
    parleyError,
    parley: parley
      ? {
          seconds: parley.seconds,
          medianSeconds: parleyMedian,
          smallSeconds: parley.smallSeconds,
          mips: parleyMips,
          kernelMips: parleyKernelMips,
        }
      : null,
    qemu: {
      iterations: qemuIterations,
      kernelInstructions: qemuKernelInsns,
      seconds: qemuSeconds,
      smallSeconds: qemuSmallSeconds,
      medianSeconds: qemuMedian,
      medianSmallSeconds: qemuSmallMedian,
      kernelSeconds: qemuKernelSeconds,
      mips: qemuMips,
    },
    ratio: parleyMips !== undefined && qemuMips !== undefined ? parleyMips / qemuMips : undefined,
  };
}

/** Parley: full run repeated, calibration run once (only its instruction count is needed). */
async function measureParley(w: Workload, b: Builds, opts: Options, runElfFile: typeof runParleyElf | undefined, icFull: BenchOutput) {
  let parley:
    | { instret: number; instretSmall: number; seconds: number[]; smallSeconds: number }
    | undefined;
  let parleyError: string | undefined;
  if (runElfFile) {
    // A Parley failure is reported (and fails the benchmark) but QEMU's half still gets measured.
    try {
      const maxInsns = Math.ceil(icFull.instret! * 1.5) + 200_000_000;
      const small = await runElfFile(b.bmSmall, { maxInsns, jit: opts.jit });
      parseBenchOutput(`${w.name}: Parley (calibration)`, small);
      const seconds: number[] = [];
      let instret: bigint | undefined;
      for (let r = 0; r < opts.reps; r++) {
        const run = await runElfFile(b.bm, { maxInsns, jit: opts.jit });
        const out = parseBenchOutput(`${w.name}: Parley`, run);
        if (out.checksum !== icFull.checksum)
          throw new Error(`${w.name}: Parley's checksum ${out.checksum} differs from QEMU's ${icFull.checksum}`);
        if (instret !== undefined && run.instret !== instret)
          throw new Error(`${w.name}: Parley's instret differs between identical runs (${instret} vs ${run.instret})`);
        instret = run.instret;
        seconds.push(run.seconds);
        console.log(`  parley  run ${r + 1}/${opts.reps}: ${run.seconds.toFixed(3)} s, ${run.instret} instructions`);
      }
      parley = { instret: Number(instret!), instretSmall: Number(small.instret), seconds, smallSeconds: small.seconds };
    } catch (err) {
      parleyError = err instanceof Error ? err.message : String(err);
      console.error(`  PARLEY FAILED: ${parleyError}`);
    }
  }

  return { parley, parleyError };
}

function printResults(results: WorkloadResult[], reps: number): void {
  const header = [
    "workload",
    "iters",
    "instructions",
    "insns/iter",
    "Parley s",
    "Parley MIPS",
    "QEMU iters",
    "QEMU s",
    "QEMU MIPS",
    "Parley/QEMU",
  ];
  const rows = results.map((r) => [
    r.name,
    String(r.iterations),
    fmtInt(r.instructions.parleyRun ?? r.instructions.kernel),
    fmtInt(r.instructions.perIteration),
    r.parleyError ? "FAILED" : fmtNum(r.parley?.medianSeconds, 3),
    r.parleyError ? "FAILED" : fmtNum(r.parley?.mips, 1),
    String(r.qemu.iterations),
    fmtNum(r.qemu.kernelSeconds, 3),
    fmtNum(r.qemu.mips, 1),
    r.ratio === undefined ? "-" : r.ratio.toFixed(3),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ");
  console.log("");
  console.log(line(header));
  console.log(widths.map((wd) => "-".repeat(wd)).join("  "));
  for (const row of rows) console.log(line(row));
  console.log("");
  console.log(
    `instructions: Parley's instret for its whole run (without Parley: QEMU -icount's count for the kernel iterations).\n` +
      `Parley MIPS = instret / Parley's run time, median of ${reps}.\n` +
      `QEMU s = median(QEMU iters run) - median(${SMALL_ITERATIONS}-iteration run), which removes process start-up;\n` +
      `QEMU MIPS = insns/iter * (QEMU iters - ${SMALL_ITERATIONS}) / QEMU s.`,
  );

}

async function writeReport(results: WorkloadResult[], codePage: CodePageResult, opts: Options, parleyAvailable: boolean): Promise<void> {
  const outDir = join(CACHE_DIR, "bench");
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, "cpu.json");
  const report = {
    generatedAt: new Date().toISOString(),
    host: { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version, platform: process.platform },
    qemu: await qemuVersion(),
    reps: opts.reps,
    parleyEngine: opts.jit === "on" ? "translator" : "interpreter",
    parleyAvailable,
    workloads: results,
    codePage,
  };
  writeFileSync(outFile, JSON.stringify(report, null, 2) + "\n");
  console.log(`bench: results written to ${outFile}`);
  const failed = results.filter((r) => r.parleyError).map((r) => r.name);
  if (codePage.parleyError) failed.push("codepage");
  if (failed.length) {
    console.error(`bench: Parley failed on: ${failed.join(", ")}`);
    process.exitCode = 1;
  }
}

// Awaited: `npm run bench` imports the parts one after another, and a part still running while
// the next starts would share the host's cores with it and skew both.
await main().catch((err) => {
  console.error(`bench: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
