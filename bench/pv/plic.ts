// PLIC exits per virtio interrupt, from the coalescing sweep's phases without coalescing: every
// external interrupt costs Linux's PLIC driver claims and a complete, each an exit.
import { CAUSE_S_EXTERNAL, TRAP_INTERRUPT, type Counters } from "./guest.ts";
import { medianPass, type SweepRuns } from "./coalesce.ts";
import type { PlicResult } from "./results.ts";
import { STREAM_BLOCK_KIB, STREAM_READERS } from "./workloads.ts";
import type { VirtioCoalesce } from "../../src/virtio/transport/mmio.ts";

/** Both virtio-blk workloads at the setting without coalescing; none when the sweep lacks it. */
export function plicResults(settings: VirtioCoalesce[], runs: SweepRuns): PlicResult[] {
  const off = settings.findIndex((c) => c.maxCompletions === 1);
  if (off < 0) return [];
  const workloads = [
    ["4 KiB reads, one at a time", medianPass(runs[off].blkLatency).counters],
    [`${STREAM_READERS} parallel ${STREAM_BLOCK_KIB} KiB direct readers`, medianPass(runs[off].blkStream).counters],
  ] as const;
  return workloads.map(([workload, c]) => plicResult(workload, c));
}

function plicResult(workload: string, c: Counters): PlicResult {
  const v = c.virtio["virtio-blk0"];
  const external = c.traps[TRAP_INTERRUPT(CAUSE_S_EXTERNAL)];
  return {
    workload,
    virtioInterrupts: v.irqAssertions,
    externalInterrupts: external,
    claims: c.plicClaims,
    emptyClaims: c.plicEmptyClaims,
    completes: c.plicCompletes,
    plicExitsPerInterrupt: (c.plicClaims + c.plicEmptyClaims + c.plicCompletes) / Math.max(1, external),
    deviceExitsPerInterrupt: (c.mmioByDevice["virtio-blk0"] ?? 0) / Math.max(1, v.irqAssertions),
    completions: v.used,
  };
}
