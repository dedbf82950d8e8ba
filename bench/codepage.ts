// The "Code and data on one page" workload of `npm run bench -- cpu`: guest/bench/codepage.c, a
// loop that keeps writing data on the 4 KiB page of its own code, on Parley (bare metal, run-elf)
// and qemu-riscv64 (the same code built for Linux). Every iteration executes the same 18
// instructions, so the instructions per iteration come from Parley's exact count (a full run
// minus a one-iteration run), and QEMU's rate from its time for QEMU_ITERATIONS minus its time
// for one iteration (process start-up). QEMU runs far fewer iterations: on this layout it
// retranslates the page's code after the stores and runs below 1 MIPS (measured for the
// "Code and data on one page" section of docs/PERFORMANCE.md).
import { buildCodePage } from "../src/image/guest-programs.ts";
import { runTimed } from "./harness.ts";
import type { runElfFile as RunElfFile } from "../src/cli/run-elf.ts";

const PARLEY_ITERATIONS = 2_000_000;
const QEMU_ITERATIONS = 20_000;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length & 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** "codepage <iterations> <checksum>", or an error saying what ran instead. */
function checksumOf(what: string, run: { exitCode: number; output: string }, iterations: number): string {
  const m = /^codepage (\d+) ([0-9a-f]{16})$/m.exec(run.output);
  if (run.exitCode !== 0 || !m || Number(m[1]) !== iterations) throw new Error(`${what} failed (exit code ${run.exitCode}); output:\n${run.output}`);
  return m[2];
}

export interface CodePageResult {
  instructionsPerIteration: number;
  parley?: { iterations: number; instructions: number; seconds: number[]; mips: number; codePagesDropped: number; translationsDropped: number; codePageDataWrites: number };
  parleyError?: string;
  qemu: { iterations: number; seconds: number[]; smallSeconds: number[]; mips: number };
  ratio?: number;
}

export async function measureCodePage(reps: number, jit: "on" | "off", runElfFile: typeof RunElfFile | undefined): Promise<CodePageResult> {
  const [bm, bmSmall, bmQemuSize, linux, linuxSmall] = await Promise.all([
    buildCodePage("baremetal", PARLEY_ITERATIONS),
    buildCodePage("baremetal", 1),
    buildCodePage("baremetal", QEMU_ITERATIONS),
    buildCodePage("linux-static", QEMU_ITERATIONS),
    buildCodePage("linux-static", 1),
  ]);
  // Instructions per iteration: exact on Parley; without it, the count of the loop's 18 instructions.
  let perIteration = 18;
  let parley: CodePageResult["parley"];
  let parleyError: string | undefined;
  let parleyQemuSizeChecksum: string | undefined;
  if (runElfFile) {
    try {
      const small = await runElfFile(bmSmall, { jit });
      checksumOf("codepage: Parley (1 iteration)", small, 1);
      const same = await runElfFile(bmQemuSize, { jit });
      parleyQemuSizeChecksum = checksumOf(`codepage: Parley (${QEMU_ITERATIONS} iterations)`, same, QEMU_ITERATIONS);
      const seconds: number[] = [];
      let last: Awaited<ReturnType<typeof RunElfFile>> | undefined;
      for (let r = 0; r < reps; r++) {
        last = await runElfFile(bm, { jit });
        checksumOf("codepage: Parley", last, PARLEY_ITERATIONS);
        seconds.push(last.seconds);
        console.log(`  parley  run ${r + 1}/${reps}: ${last.seconds.toFixed(3)} s, ${last.instret} instructions`);
      }
      const instructions = Number(last!.instret);
      perIteration = (instructions - Number(small.instret)) / (PARLEY_ITERATIONS - 1);
      const t = last!.ledger.translator;
      parley = {
        iterations: PARLEY_ITERATIONS,
        instructions,
        seconds,
        mips: instructions / median(seconds) / 1e6,
        codePagesDropped: t?.codePagesDropped ?? 0,
        translationsDropped: t?.drops ?? 0,
        codePageDataWrites: t?.codePageDataWrites ?? 0,
      };
    } catch (err) {
      parleyError = err instanceof Error ? err.message : String(err);
      console.error(`  PARLEY FAILED: ${parleyError}`);
    }
  }
  const seconds: number[] = [];
  const smallSeconds: number[] = [];
  for (let r = 0; r < reps; r++) {
    const full = await runTimed("qemu-riscv64", [linux]);
    const checksum = checksumOf("codepage: qemu-riscv64", full, QEMU_ITERATIONS);
    if (parleyQemuSizeChecksum !== undefined && checksum !== parleyQemuSizeChecksum)
      throw new Error(`codepage: checksum differs between qemu-riscv64 (${checksum}) and Parley (${parleyQemuSizeChecksum})`);
    const small = await runTimed("qemu-riscv64", [linuxSmall]);
    checksumOf("codepage: qemu-riscv64 (1 iteration)", small, 1);
    seconds.push(full.seconds);
    smallSeconds.push(small.seconds);
    console.log(`  qemu    run ${r + 1}/${reps}: ${full.seconds.toFixed(3)} s for ${QEMU_ITERATIONS} iterations (calibration ${small.seconds.toFixed(3)} s)`);
  }
  const qemuMips = (perIteration * (QEMU_ITERATIONS - 1)) / (median(seconds) - median(smallSeconds)) / 1e6;
  const result: CodePageResult = {
    instructionsPerIteration: perIteration,
    parley,
    parleyError,
    qemu: { iterations: QEMU_ITERATIONS, seconds, smallSeconds, mips: qemuMips },
    ratio: parley ? parley.mips / qemuMips : undefined,
  };
  console.log("");
  console.log(`codepage (code and data on one page): ${perIteration.toFixed(1)} instructions per iteration`);
  if (parley)
    console.log(
      `  Parley ${parley.mips.toFixed(1)} MIPS (${PARLEY_ITERATIONS} iterations, median of ${reps}); ` +
        `decoded pages dropped ${parley.codePagesDropped}, translations dropped ${parley.translationsDropped}, data writes into code pages ${parley.codePageDataWrites}`,
    );
  console.log(`  qemu-riscv64 ${qemuMips.toFixed(2)} MIPS (${QEMU_ITERATIONS} iterations, start-up removed)`);
  if (result.ratio !== undefined) console.log(`  Parley/QEMU ${result.ratio.toFixed(1)}`);
  return result;
}
