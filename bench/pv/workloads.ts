// The sizes and settings of the pv comparisons' workloads, shared by the measurements and by the
// tables and prose that describe them.
import type { VirtioCoalesce } from "../../src/virtio/transport/mmio.ts";

export interface WorkloadSizes {
  consoleBytes: number;
  /** Boots per boot-time measurement, passes per measurement elsewhere (unless --reps says). */
  reps: number;
  timerSeconds: number;
  timerlatCount: number;
  readlatCount: number;
  streamMiB: number;
  udprrCount: number;
  udptxCount: number;
}

const FULL: WorkloadSizes = {
  consoleBytes: 1 << 20,
  reps: 3,
  timerSeconds: 5,
  timerlatCount: 2000,
  readlatCount: 2000,
  streamMiB: 256,
  udprrCount: 2000,
  udptxCount: 40000,
};

/** --quick (CI): one repetition, smaller transfers, shorter phases. */
const QUICK: WorkloadSizes = {
  consoleBytes: 128 << 10,
  reps: 1,
  timerSeconds: 2,
  timerlatCount: 300,
  readlatCount: 200,
  streamMiB: 32,
  udprrCount: 200,
  udptxCount: 5000,
};

export const workloadSizes = (quick: boolean): WorkloadSizes => (quick ? QUICK : FULL);

/** The coalescing settings swept, from no coalescing to the most throughput-oriented. */
export const COALESCE_SETTINGS: VirtioCoalesce[] = [
  { maxCompletions: 1, maxDelayUs: 0 },
  { maxCompletions: 4, maxDelayUs: 50 },
  { maxCompletions: 16, maxDelayUs: 200 },
  { maxCompletions: 64, maxDelayUs: 1000 },
];
export const coalesceLabel = (c: VirtioCoalesce) => (c.maxCompletions === 1 && c.maxDelayUs === 0 ? "1/0 (off)" : `${c.maxCompletions}/${c.maxDelayUs}us`);

export const GUEST_IP = "10.0.2.15";
export const HOST_IP = [10, 0, 2, 2];
/** Payload of each datagram of the UDP send stream. */
export const NET_DATAGRAM = 1400;

/** A count of 0 written as wide as `n`, for baseline commands of the same length. */
export const zeros = (n: number) => "0".repeat(String(n).length);

/**
 * The streaming read: parallel direct-I/O dd readers, each over its own part of the disk, so that
 * up to STREAM_READERS requests are in flight (one dd keeps only one).
 */
export const STREAM_READERS = 16;
export const STREAM_BLOCK_KIB = 64;

export function streamCommand(mib: number, baseline = false): string {
  const blocks = (mib * 1024) / STREAM_READERS / STREAM_BLOCK_KIB;
  const count = baseline ? zeros(blocks) : String(blocks);
  return (
    `pvbench elapsed sh -c 'for i in $(seq 0 ${STREAM_READERS - 1}); do ` +
    `dd if=/dev/vda of=/dev/null bs=${STREAM_BLOCK_KIB}k count=${count} skip=$((i * ${blocks})) iflag=direct 2>/dev/null & done; wait'`
  );
}
