// Interrupt coalescing: the latency and throughput workloads on virtio-blk and virtio-net, swept
// over the coalescing settings in one guest, with every counter of each phase.
import { exitsOf, type Counters, type PvGuest } from "./guest.ts";
import { medianRun, type Log } from "./session.ts";
import type { CoalescePoint, IoPhase } from "./results.ts";
import { NET_DATAGRAM, coalesceLabel, streamCommand, zeros, type WorkloadSizes } from "./workloads.ts";
import type { VirtioCoalesce } from "../../src/virtio/transport/mmio.ts";

type Transport = PvGuest["machine"]["virtio"][number];

/** One workload's phase at one setting in one pass: the figure the median is taken of, and its counters. */
export interface Measured {
  phase: IoPhase;
  value: number;
  counters: Counters;
  extra: Record<string, number>;
}

/** Per setting (same order as the settings), every pass of each workload. */
export type SweepRuns = { blkLatency: Measured[]; blkStream: Measured[]; netLatency: Measured[]; netStream: Measured[] }[];

export interface SweepTarget {
  guest: PvGuest;
  blk: Transport;
  net: Transport;
  /** The responder's address, as the guest's commands name it. */
  host: string;
}

export function ioPhase(c: Counters, device: string): IoPhase {
  const v = c.virtio[device];
  const plicExits = c.plicClaims + c.plicEmptyClaims + c.plicCompletes;
  return {
    completions: v.used,
    // Rising edges of the device's interrupt line: one coalesced batch that completes on two queues
    // (a UDP round trip: transmit and receive) is one interrupt, though each queue decided to want it.
    interrupts: v.irqAssertions,
    interruptsPerCompletion: v.irqAssertions / Math.max(1, v.used),
    plicExits,
    exits: exitsOf(c),
    exitsPerCompletion: exitsOf(c) / Math.max(1, v.used),
    instructionsPerCompletion: c.instret / Math.max(1, v.used),
    flushesByCount: v.coalesceFlushesByCount,
    flushesByTimer: v.coalesceFlushesByTimer,
  };
}

/**
 * Several passes over the settings, each starting one setting further on, so that drifting host
 * load does not always hit the same setting.
 */
export async function sweepCoalescing(t: SweepTarget, size: WorkloadSizes, settings: VirtioCoalesce[], passes: number, log: Log): Promise<SweepRuns> {
  const runs: SweepRuns = settings.map(() => ({ blkLatency: [], blkStream: [], netLatency: [], netStream: [] }));
  const { guest, host } = t;
  for (let pass = 0; pass < passes; pass++) {
    for (let k = 0; k < settings.length; k++) {
      const i = (k + pass) % settings.length;
      const setting = settings[i];
      t.blk.setCoalesce(setting);
      t.net.setCoalesce(setting);
      const rl = await guest.measure(`pvbench readlat /dev/vda ${size.readlatCount} 4096`, `pvbench readlat /dev/vda ${zeros(size.readlatCount)} 4096`);
      runs[i].blkLatency.push({ phase: ioPhase(rl.counters, "virtio-blk0"), value: rl.values.op_p50_us, counters: rl.counters, extra: rl.values });
      const st = await guest.measure(streamCommand(size.streamMiB), streamCommand(size.streamMiB, true));
      if (st.values.status !== 0) throw new Error(`streaming read failed: ${st.text}`);
      const mbs = (size.streamMiB * (1 << 20)) / 1e6 / (st.values.elapsed_ns / 1e9);
      runs[i].blkStream.push({ phase: ioPhase(st.counters, "virtio-blk0"), value: mbs, counters: st.counters, extra: st.values });
      const rr = await guest.measure(`pvbench udprr ${host} 7 ${size.udprrCount} 64`, `pvbench udprr ${host} 7 ${zeros(size.udprrCount)} 64`);
      runs[i].netLatency.push({ phase: ioPhase(rr.counters, "virtio-net0"), value: rr.values.rtt_p50_us, counters: rr.counters, extra: rr.values });
      const tx = await guest.measure(`pvbench udptx ${host} 9 ${size.udptxCount} ${NET_DATAGRAM}`, `pvbench udptx ${host} 9 ${zeros(size.udptxCount)} ${NET_DATAGRAM}`);
      const txMbs = tx.values.bytes / 1e6 / (tx.values.elapsed_ns / 1e9);
      runs[i].netStream.push({ phase: ioPhase(tx.counters, "virtio-net0"), value: txMbs, counters: tx.counters, extra: tx.values });
      log(
        `coalesce ${coalesceLabel(setting)} (pass ${pass + 1}/${passes}): blk 4K read median ${rl.values.op_p50_us.toFixed(0)} us, ` +
          `stream ${mbs.toFixed(1)} MB/s; net RTT median ${rr.values.rtt_p50_us.toFixed(0)} us, send ${txMbs.toFixed(1)} MB/s`,
      );
    }
  }
  return runs;
}

/** The pass with the median result, per setting and workload (with its counters). */
export const medianPass = (xs: Measured[]) => medianRun(xs, (x) => x.value);

export function coalescePoints(settings: VirtioCoalesce[], runs: SweepRuns): CoalescePoint[] {
  return settings.map((setting, i) => {
    const rl = medianPass(runs[i].blkLatency);
    const st = medianPass(runs[i].blkStream);
    const rr = medianPass(runs[i].netLatency);
    const tx = medianPass(runs[i].netStream);
    return {
      setting,
      label: coalesceLabel(setting),
      blkLatency: { ...rl.phase, count: rl.extra.op_n, avgUs: rl.extra.op_avg_us, p50Us: rl.extra.op_p50_us, p99Us: rl.extra.op_p99_us },
      blkStream: { ...st.phase, mbPerSecond: st.value },
      netLatency: { ...rr.phase, count: rr.extra.rtt_n, avgUs: rr.extra.rtt_avg_us, p50Us: rr.extra.rtt_p50_us, p99Us: rr.extra.rtt_p99_us, lost: rr.extra.lost },
      netStream: { ...tx.phase, mbPerSecond: tx.value, datagrams: tx.extra.datagrams },
    };
  });
}
