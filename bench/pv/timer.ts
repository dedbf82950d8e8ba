// Timer comparison, one side per guest: Linux programming its timer with SBI set_timer
// hypercalls (no Sstc) or by writing stimecmp (Sstc, no exit); exits while idle and while busy,
// and cyclictest-style timer lateness measured in the guest.
import { CAUSE_S_TIMER, MODULES, TRAP_INTERRUPT, exitsOf, type Counters, type PvGuest } from "./guest.ts";
import { bootShell, type BenchImage, type Log } from "./session.ts";
import type { TimerLatency, TimerSide } from "./results.ts";
import type { WorkloadSizes } from "./workloads.ts";

export async function timerSide(img: BenchImage, sstc: boolean, size: WorkloadSizes, log: Log): Promise<TimerSide> {
  const name = sstc ? "Sstc" : "SBI set_timer";
  log(`timer: booting a guest with ${sstc ? "Sstc" : "SBI timer calls (no Sstc)"}`);
  // Without SBI idle states, Linux idles in WFI, which never leaves the core as a hypercall: the
  // counts are the timer's own (with them, every idle entry would add a hart_suspend call).
  const guest = await bootShell(img, { sstc, modules: MODULES.console, idleStates: false });
  try {
    // What a phase costs without any work: printing its end marker on hvc0 (a notification, the
    // interrupt, InterruptStatus/ACK and the PLIC). Subtracted from the counts (not the time).
    const empty = (await guest.run(":", { phase: true })).counters;
    // Phases bounded by markers the guest prints (PvGuest.run), so typing the command is not counted.
    const idle = rates((await guest.measure(`sleep ${size.timerSeconds}`)).counters, empty);
    const spin = await guest.measure(`pvbench spin ${size.timerSeconds}`);
    const busy = { ...rates(spin.counters, empty), iterationsPerSecond: spin.values.iterations / size.timerSeconds };
    const latencyIdle = await timerLatency(guest, size.timerlatCount, "", empty);
    const latencyBusy = await timerLatency(guest, size.timerlatCount, "busy", empty);
    log(
      `timer: ${name}: idle ${idle.exitsPerSecond.toFixed(1)} exits/s (${idle.hypercallsPerSecond.toFixed(1)} hypercalls/s), ` +
        `busy ${busy.exitsPerSecond.toFixed(1)} exits/s; lateness (median) idle ${latencyIdle.p50Us.toFixed(0)} us, busy ${latencyBusy.p50Us.toFixed(0)} us`,
    );
    return { idle, busy, latencyIdle, latencyBusy };
  } finally {
    await guest.stop();
  }
}

/** Per-second rates of a phase, less the exits and hypercalls of the empty phase. */
function rates(c: Counters, empty: Counters) {
  const s = c.ms / 1000;
  return {
    seconds: s,
    hypercallsPerSecond: (c.sbi - empty.sbi) / s,
    exitsPerSecond: (exitsOf(c) - exitsOf(empty)) / s,
    timerInterruptsPerSecond: c.traps[TRAP_INTERRUPT(CAUSE_S_TIMER)] / s,
  };
}

/** Lateness of a 1 ms periodic timer; `busyArg` "busy" adds a CPU hog competing for the hart. */
async function timerLatency(guest: PvGuest, count: number, busyArg: string, empty: Counters): Promise<TimerLatency> {
  const r = await guest.measure(`pvbench timerlat 1000 ${count} ${busyArg}`);
  const v = r.values;
  return {
    periodUs: 1000,
    count: v.lat_n,
    avgUs: v.lat_avg_us,
    p50Us: v.lat_p50_us,
    p99Us: v.lat_p99_us,
    maxUs: v.lat_max_us,
    exitsPerTimer: (exitsOf(r.counters) - exitsOf(empty)) / v.lat_n,
    hypercallsPerTimer: (r.counters.sbi - empty.sbi) / v.lat_n,
  };
}
