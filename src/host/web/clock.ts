// The browser host's clock (src/platform/clock.ts) and the machine's one timebase across workers.
//
// Browsers clamp nested setTimeout delays to 4 ms and round every delay up to whole
// milliseconds, which would turn a 50 µs interrupt-coalescing bound into 4 ms. So, as Node's
// adapter does with setImmediate, a timer sleeps with setTimeout only for the part of its delay
// beyond a few milliseconds and then checks the clock from MessageChannel messages, which run as
// soon as the event loop is free (no clamping): the worker spins on its event loop for at most
// that last stretch, and only while a short timer is pending. yieldToHost is one such message, so
// input, fetch completions and timers get their turn between the guest's execution slices.
import type { HostClock } from "../../platform/clock.ts";
import { TIMEBASE_FREQUENCY } from "../../cpu/cpu.ts";

/** How much of a delay is left to setTimeout's clamped granularity. */
const COARSE_MARGIN_MS = 5;

/** The parts of a browser (or worker) global the clock uses; injected so Node tests can drive it. */
export interface BrowserTimers {
  setTimeout(fire: () => void, ms: number): number | object;
  clearTimeout(handle: number | object | undefined): void;
  now(): number;
  /** Runs `fire` once the event loop has had a turn (a MessageChannel message); no delay clamping. */
  postTask(fire: () => void): void;
}

/** A task queue over one MessageChannel: each posted message runs the oldest waiting callback. */
export function messageChannelTasks(): (fire: () => void) => void {
  const channel = new MessageChannel();
  const waiting: (() => void)[] = [];
  channel.port1.onmessage = () => waiting.shift()?.();
  // Node (where the tests run) keeps a process alive while a MessagePort is open; browsers have no
  // unref and end a worker with its page anyway.
  for (const port of [channel.port1, channel.port2]) (port as { unref?: () => void }).unref?.();
  return (fire) => {
    waiting.push(fire);
    channel.port2.postMessage(0);
  };
}

export function browserTimers(): BrowserTimers {
  const postTask = messageChannelTasks();
  return {
    setTimeout: (fire, ms) => globalThis.setTimeout(fire, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle as number | undefined),
    now: () => performance.now(),
    postTask,
  };
}

/** A HostClock over the given timers (default: this worker's). Background timers are plain timers here. */
export function webClock(timers: BrowserTimers = browserTimers()): HostClock {
  return {
    now: () => timers.now(),
    setTimer(ms, fire) {
      const deadline = timers.now() + ms;
      let cancelled = false;
      let timeout: number | object | undefined;
      const poll = () => {
        timeout = undefined;
        if (cancelled) return;
        if (timers.now() >= deadline) fire();
        else timers.postTask(poll);
      };
      const coarseMs = ms - COARSE_MARGIN_MS;
      if (coarseMs >= 1) timeout = timers.setTimeout(poll, coarseMs);
      else timers.postTask(poll);
      return () => {
        cancelled = true;
        if (timeout !== undefined) timers.clearTimeout(timeout);
      };
    },
    yieldToHost: () => new Promise<void>((resolve) => timers.postTask(resolve)),
  };
}

/**
 * Absolute milliseconds on this thread: performance.timeOrigin differs between a page and each of
 * its workers, but timeOrigin + now() is the same clock everywhere, so every thread that reads
 * it from one origin agrees (to the precision browsers give: 5-100 µs, coarser without
 * cross-origin isolation).
 */
export function absoluteMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * The machine's timebase (10 MHz ticks) since `originMs` (an absoluteMs() reading taken once by
 * the thread that builds the machine and passed to every hart worker in its init).
 */
export function webTimebase(originMs: number, readMs: () => number = absoluteMs): () => number {
  const ticksPerMs = TIMEBASE_FREQUENCY / 1000;
  return () => Math.floor((readMs() - originMs) * ticksPerMs);
}
