// Boot comparison: the hypervisor as SBI implementation (the kernel starts in S-mode) against
// OpenSBI in emulated M-mode, each with and without Sstc, timed to Linux starting init.
import { bootToInit, medianRun, type BenchImage, type Log } from "./session.ts";
import type { BootPair, PvResults } from "./results.ts";

export async function bootComparison(img: BenchImage, reps: number, log: Log): Promise<NonNullable<PvResults["boot"]>> {
  const pair = (): BootPair => ({ firmware: undefined!, paravirtual: undefined!, runs: { firmware: [], paravirtual: [] } });
  const result = { sstc: pair(), noSstc: pair() };
  // The same kernel command line as bench/boot.ts; the console is the 16550 on both paths.
  const common = { bootargs: "console=ttyS0", console: "uart" as const };
  // Interleaved, so that drifting host load hits every configuration alike.
  for (let r = 0; r < reps; r++) {
    for (const sstc of [true, false]) {
      for (const path of ["firmware", "paravirtual"] as const) {
        const run = await bootToInit(img, { ...common, sstc, firmware: path === "firmware" ? img.firmware : undefined });
        result[sstc ? "sstc" : "noSstc"].runs[path].push(run);
        log(`boot: ${path}, ${sstc ? "Sstc" : "no Sstc"}: ${run.seconds.toFixed(2)} s to init, ${(run.instructions / 1e6).toFixed(0)} M instructions, ${run.exits} exits`);
      }
    }
  }
  for (const p of [result.sstc, result.noSstc]) {
    p.firmware = medianRun(p.runs.firmware, (x) => x.seconds);
    p.paravirtual = medianRun(p.runs.paravirtual, (x) => x.seconds);
  }
  return result;
}
