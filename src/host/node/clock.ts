// The Node host's clock (src/platform/clock.ts): performance.now, timers that keep sub-millisecond
// intent, background timers that do not hold the process open, and setImmediate to let the event
// loop deliver console input, socket data and timers between the guest's execution slices.
//
// setTimeout rounds every delay up to whole milliseconds (at least 1 ms), which would turn a 50 µs
// interrupt-coalescing bound into 1 ms or more. So a timer sleeps with setTimeout only for the
// part of the delay beyond a millisecond and a half, then checks the clock from setImmediate
// callbacks: the host spins on the event loop for at most that last stretch, and only while a
// short timer is pending. While the guest executes, callbacks run between its slices, so a timer
// can still end later than asked, never sooner.
import type { HostClock } from "../../platform/clock.ts";
import { TIMEBASE_FREQUENCY } from "../../cpu/cpu.ts";

/** How much of a delay is left to setTimeout's millisecond granularity. */
const COARSE_MARGIN_MS = 1.5;

export const nodeClock: HostClock = {
  now: () => performance.now(),
  setTimer(ms, fire, options) {
    const deadline = performance.now() + ms;
    let cancelled = false;
    let timeout: ReturnType<typeof setTimeout> | undefined;
    let immediate: ReturnType<typeof setImmediate> | undefined;
    const poll = () => {
      timeout = undefined;
      immediate = undefined;
      if (cancelled) return;
      if (performance.now() >= deadline) fire();
      else immediate = setImmediate(poll);
    };
    const coarseMs = ms - COARSE_MARGIN_MS;
    if (coarseMs >= 1) {
      timeout = setTimeout(poll, coarseMs);
      if (options?.background) timeout.unref();
    } else {
      immediate = setImmediate(poll);
      if (options?.background) immediate.unref();
    }
    return () => {
      cancelled = true;
      if (timeout !== undefined) clearTimeout(timeout);
      if (immediate !== undefined) clearImmediate(immediate);
    };
  },
  yieldToHost: () => new Promise<void>((resolve) => setImmediate(resolve)),
};

/**
 * The machine's timebase (10 MHz ticks) from a monotonic origin in nanoseconds (process.hrtime),
 * the same in every thread: performance.now() has a different origin in each worker, so each
 * thread measures once how its performance.now() relates to the shared monotonic clock (both are
 * the system's monotonic clock; the best of a few back-to-back readings) and then reads the
 * cheaper performance.now(). Threads agree to well under one tick.
 */
export function nodeTimebase(originNs: bigint): () => number {
  let offsetMs = 0;
  let bestSpan = Infinity;
  for (let i = 0; i < 16; i++) {
    const before = performance.now();
    const monotonicMs = Number(process.hrtime.bigint() - originNs) / 1e6;
    const after = performance.now();
    if (after - before < bestSpan) {
      bestSpan = after - before;
      offsetMs = monotonicMs - (before + after) / 2;
    }
  }
  const ticksPerMs = TIMEBASE_FREQUENCY / 1000;
  return () => Math.floor((performance.now() + offsetMs) * ticksPerMs);
}
