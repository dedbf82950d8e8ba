// One hart of test/cpu/atomics.test.ts in a thread of its own: a Cpu on the machine's shared
// memory, started together with the other harts, run until its program reaches WFI.
import { parentPort, workerData } from "node:worker_threads";
import { Cpu, ExitReason, type CpuOptions } from "../../src/cpu/cpu.ts";
import type { CoreLayout } from "../../src/cpu/core-layout.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";

export interface HartJob {
  memory: WebAssembly.Memory;
  layout: CoreLayout;
  ramSize: number;
  hartIndex: number;
  jit: CpuOptions["jit"];
  pc: number;
  /** Registers to set before the start, [register, value]. */
  registers: [number, number][];
  /** Registers to report at the end. */
  report: number[];
  /** Int32Array over a SharedArrayBuffer: [0] becomes 1 when every hart may start. */
  start: SharedArrayBuffer;
}

export interface HartResult {
  hartIndex: number;
  registers: Record<number, string>;
  instret: string;
  translated: number;
}

const job = workerData as HartJob;
const cpu = new Cpu({
  module: loadCoreModule({ shared: true }),
  ramSize: job.ramSize,
  layout: job.layout,
  hartIndex: job.hartIndex,
  memory: job.memory,
  jit: job.jit,
});
cpu.pc = BigInt(job.pc);
for (const [r, v] of job.registers) cpu.setX(r, BigInt(v));

const start = new Int32Array(job.start);
parentPort!.postMessage("ready");
Atomics.wait(start, 0, 0);

for (;;) {
  const reason = cpu.run(50_000);
  if (reason === ExitReason.Wfi) break;
  if (reason !== ExitReason.Budget) throw new Error(`hart ${job.hartIndex} stopped: exit reason ${reason} at pc ${cpu.pc.toString(16)}`);
}
const result: HartResult = {
  hartIndex: job.hartIndex,
  registers: Object.fromEntries(job.report.map((r) => [r, cpu.x(r).toString()])),
  instret: cpu.instret.toString(),
  translated: cpu.translatorCounters()?.instructionsTranslatedRetired ?? 0,
};
parentPort!.postMessage(result);
