// Guest sessions for the pv comparisons: the guest image with the pvbench program in its
// initramfs, a guest booted to its shell for commands, and a boot timed to Linux starting init.
import { readFileSync } from "node:fs";
import { DEFAULT_APPEND_HVC } from "../../src/machine/kernel-command-line.ts";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { buildGuest } from "../../src/image/toolchain.ts";
import { GUEST_ARCH_FLAGS } from "../../src/image/guest-programs.ts";
import { CAUSE_ECALL_FROM_S, CAUSE_M_TIMER, PvGuest, TRAP_INTERRUPT, benchInitrd, delta, exitsOf, readCounters, type Counters, type GuestOptions } from "./guest.ts";
import type { BootToInit } from "./results.ts";

const SHELL_MS = 300_000;
const INIT_MARKER = /Run \/init as init process/;
const MEMORY = 512 << 20;

export interface BenchImage {
  image: GuestImage;
  kernel: Uint8Array;
  firmware: Uint8Array;
  initrd: (modules: readonly string[]) => Uint8Array;
}

/** Guest options beyond the defaults, and the kernel modules its initramfs loads. */
export type SessionOptions = Partial<GuestOptions> & { modules: readonly string[] };

export type Log = (line: string) => void;

export async function prepareImage(log: Log): Promise<BenchImage> {
  const image = await buildGuestImage({ progress: false });
  log(`guest image: Debian ${image.kernelVersion}`);
  const pvbench = await buildGuest({
    name: "pvbench",
    target: "linux-static",
    sources: ["guest/pv/pvbench.c"],
    args: [...GUEST_ARCH_FLAGS, "-O2", "-static", "-Wall", "-Wextra"],
  });
  const base = new Uint8Array(readFileSync(image.initrd));
  const program = new Uint8Array(readFileSync(pvbench));
  if (!image.opensbi.fwDynamic) throw new Error("the guest image has no OpenSBI fw_dynamic; rebuild it with `parley image build --force`");
  return {
    image,
    kernel: new Uint8Array(readFileSync(image.kernel)),
    firmware: new Uint8Array(readFileSync(image.opensbi.fwDynamic)),
    initrd: (modules) => benchInitrd(base, program, modules),
  };
}

function guestOptions(img: BenchImage, o: SessionOptions): GuestOptions {
  const { modules, ...rest } = o;
  return { ramSize: MEMORY, kernel: img.kernel, initrd: img.initrd(modules), bootargs: DEFAULT_APPEND_HVC, console: "hvc", ...rest };
}

export async function bootShell(img: BenchImage, o: SessionOptions): Promise<PvGuest> {
  const guest = new PvGuest(guestOptions(img, o));
  try {
    await guest.shell(SHELL_MS);
  } catch (err) {
    await guest.stop();
    throw err;
  }
  return guest;
}

/** Boots until Linux starts init; counters are read in the output callback that prints the marker. */
export async function bootToInit(img: BenchImage, o: Partial<GuestOptions>): Promise<BootToInit> {
  const started = globalThis.performance.now();
  const guest = new PvGuest(guestOptions(img, { modules: [], ...o }));
  const zero = { ...readCounters(guest.machine), instret: 0, ms: started };
  let at: Counters | undefined;
  try {
    await guest.waitFor(INIT_MARKER, SHELL_MS, 0, () => (at = guest.readAtMarker()), "s");
    guest.completeMarkerReading(at!);
  } finally {
    await guest.stop();
  }
  const d = delta(zero, at!);
  return {
    seconds: d.ms / 1000,
    instructions: d.instret,
    exits: exitsOf(d),
    mmio: d.mmio,
    hypercalls: d.sbi,
    ecallTraps: d.traps[CAUSE_ECALL_FROM_S],
    machineTimerInterrupts: d.traps[TRAP_INTERRUPT(CAUSE_M_TIMER)],
    logBytes: guest.output.length,
    sbiByFunction: d.sbiByFunction,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * The repetition whose value is nearest the median (the first such). Reporting one whole run
 * rather than medians of each figure keeps its counters together; they barely vary.
 */
export function medianRun<T>(runs: T[], value: (run: T) => number): T {
  const m = median(runs.map(value));
  return runs.reduce((best, r) => (Math.abs(value(r) - m) < Math.abs(value(best) - m) ? r : best));
}
