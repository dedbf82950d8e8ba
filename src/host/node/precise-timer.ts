// A timer with microsecond intent for Node, for the virtio interrupt-coalescing delay
// (VirtioMmioOptions.coalesceTimer). setTimeout rounds every delay up to whole milliseconds (at
// least 1 ms), which would turn a 50 µs coalescing bound into 1 ms or more. This one sleeps with
// setTimeout only for the part of the delay beyond a millisecond and a half, then checks the
// clock from setImmediate callbacks: the host spins on the event loop for at most that last
// stretch, and only while completions are waiting for their interrupt. While the guest executes,
// callbacks run between its slices, so the delay can still end later than asked, never sooner.
import type { CoalesceTimer } from "../../virtio/transport/mmio.ts";

/** How much of a delay is left to setTimeout's millisecond granularity. */
const COARSE_MARGIN_MS = 1.5;

export const preciseTimer: CoalesceTimer = (delayUs, fire) => {
  const deadline = globalThis.performance.now() + delayUs / 1000;
  let cancelled = false;
  let timeout: ReturnType<typeof setTimeout> | undefined;
  let immediate: ReturnType<typeof setImmediate> | undefined;
  const poll = () => {
    timeout = undefined;
    immediate = undefined;
    if (cancelled) return;
    if (globalThis.performance.now() >= deadline) fire();
    else immediate = setImmediate(poll);
  };
  const coarseMs = delayUs / 1000 - COARSE_MARGIN_MS;
  if (coarseMs >= 1) timeout = setTimeout(poll, coarseMs);
  else immediate = setImmediate(poll);
  return () => {
    cancelled = true;
    if (timeout !== undefined) clearTimeout(timeout);
    if (immediate !== undefined) clearImmediate(immediate);
  };
};
