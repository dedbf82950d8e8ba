// Guest time: the timebase every hart reads through the time CSR and the CLINT's mtime, derived
// from the machine's one HostClock so that all of them agree (one origin: the machine's start).
import { TIMEBASE_FREQUENCY } from "../cpu/cpu.ts";
import type { HostClock } from "../platform/clock.ts";

/** A reader of timebase ticks (TIMEBASE_FREQUENCY per second) since the first call to this function. */
export function timebaseTicks(clock: HostClock): () => number {
  const originMs = clock.now();
  const ticksPerMs = TIMEBASE_FREQUENCY / 1000;
  return () => Math.floor((clock.now() - originMs) * ticksPerMs);
}
