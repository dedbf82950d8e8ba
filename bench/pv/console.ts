// Console comparison: the same payload written to ttyS0 (16550, trap-and-emulate) and to hvc0
// (virtio-console) by one guest; and the kernel's boot log through each early console, the 16550
// (earlycon=uart8250) against SBI debug-console hypercalls (earlycon=sbi).
import { CAUSE_S_EXTERNAL, MODULES, TRAP_INTERRUPT, exitsOf, type PvGuest } from "./guest.ts";
import { bootShell, bootToInit, medianRun, type BenchImage, type Log } from "./session.ts";
import type { BootToInit, ConsoleSide, PvResults } from "./results.ts";
import type { WorkloadSizes } from "./workloads.ts";

type Tty = "ttyS0" | "hvc0";

export async function consoleComparison(img: BenchImage, size: WorkloadSizes, reps: number, log: Log): Promise<NonNullable<PvResults["console"]>> {
  log("console: booting a guest with hvc0 as its console");
  const guest = await bootShell(img, { modules: MODULES.console });
  let ttys: { ttyS0: ConsoleSide; hvc0: ConsoleSide };
  try {
    ttys = await ttyWrites(guest, size, reps, log);
  } finally {
    await guest.stop();
  }
  const early = await earlyConsoleBoots(img, reps, log);
  return { ...ttys, runs: reps, earlyUart: medianRun(early.uart, (x) => x.seconds), earlySbi: medianRun(early.sbi, (x) => x.seconds), earlyRuns: early };
}

/** Both ttys, alternating, repeated; the run with the median time is reported (counts barely vary). */
async function ttyWrites(guest: PvGuest, size: WorkloadSizes, reps: number, log: Log): Promise<{ ttyS0: ConsoleSide; hvc0: ConsoleSide }> {
  // The payload sits in tmpfs, and both ttys are in raw output mode, so that what is timed is
  // the path from the tty driver to the host, not the line discipline rewriting newlines.
  const prep = await guest.run(
    `yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c ${size.consoleBytes} > /tmp/payload; ` +
      ": > /tmp/empty; stty -opost < /dev/ttyS0; stty -opost < /dev/hvc0",
  );
  if (prep.status !== 0) throw new Error(`console: preparing the payload failed: ${prep.text}`);
  const runs: Record<Tty, ConsoleSide[]> = { ttyS0: [], hvc0: [] };
  for (let r = 0; r < reps; r++) {
    for (const tty of ["ttyS0", "hvc0"] as const) {
      const side = await writePayload(guest, tty, size.consoleBytes);
      runs[tty].push(side);
      log(`console: ${tty}: ${side.mibPerSecond.toFixed(2)} MiB/s, ${side.exitsPerKiB.toFixed(1)} exits/KiB, ${side.deviceInterrupts} interrupts, ${side.instructionsPerByte.toFixed(1)} instructions/byte`);
    }
  }
  return { ttyS0: medianRun(runs.ttyS0, (x) => x.seconds), hvc0: medianRun(runs.hvc0, (x) => x.seconds) };
}

async function writePayload(guest: PvGuest, tty: Tty, expectedBytes: number): Promise<ConsoleSide> {
  // The same command with an empty file first: its counters (starting pvbench, opening the
  // tty, the markers) are subtracted so that what remains is the payload's.
  const full = await guest.measure(`pvbench write /tmp/payload /dev/${tty}`, `pvbench write /tmp/empty   /dev/${tty}`);
  const c = full.counters;
  const bytes = full.values.bytes;
  if (bytes !== expectedBytes) throw new Error(`console: wrote ${bytes} of ${expectedBytes} bytes to ${tty}`);
  const exits = exitsOf(c);
  const seconds = full.values.elapsed_ns / 1e9;
  return {
    bytes,
    seconds,
    mibPerSecond: bytes / (1 << 20) / seconds,
    exits,
    exitsPerKiB: exits / (bytes / 1024),
    hypercalls: c.sbi,
    // Rising edges of each device's interrupt line: what the PLIC is asked to deliver.
    deviceInterrupts: tty === "ttyS0" ? c.uartInterrupts : c.virtio[guest.machine.hvc!.name].irqAssertions,
    externalInterrupts: c.traps[TRAP_INTERRUPT(CAUSE_S_EXTERNAL)],
    instructionsPerByte: c.instret / bytes,
    mmioByDevice: Object.fromEntries(Object.entries(c.mmioByDevice).filter(([, v]) => v !== 0)),
  };
}

/**
 * The kernel's own log, from the first line to "Run /init", through each early console. hvc0 is
 * the console so that the early console carries the whole log (hvc0 appears only after /init
 * loads virtio_mmio, and Linux keeps a boot console until the real one registers).
 */
async function earlyConsoleBoots(img: BenchImage, reps: number, log: Log): Promise<{ uart: BootToInit[]; sbi: BootToInit[] }> {
  const earlyRuns = { uart: [] as BootToInit[], sbi: [] as BootToInit[] };
  for (let r = 0; r < reps; r++) {
    for (const [key, earlycon] of [["uart", "uart8250,mmio,0x10000000"], ["sbi", "sbi"]] as const) {
      const run = await bootToInit(img, { bootargs: `console=hvc0 earlycon=${earlycon}` });
      earlyRuns[key].push(run);
      log(`console: earlycon=${earlycon}: ${run.seconds.toFixed(2)} s to init, ${run.exits} exits, ${run.hypercalls} hypercalls, ${run.logBytes} bytes of log`);
    }
  }
  return earlyRuns;
}
