// The machine core's one clock and timer interface. Device models, transports and the run loop
// reach host time only through a HostClock, injected by the host adapter (src/host/node/clock.ts
// for Node; a browser host supplies its own), so the core runs the same in Node, in a web page and
// under tests' fake clocks (src/testing/fakes.ts).

/** Cancels a timer; calling it after the timer fired, or twice, does nothing. */
export type CancelTimer = () => void;

export interface TimerOptions {
  /**
   * A background timer does not keep the host process alive by itself (Node's unref): device
   * housekeeping such as connection timeouts must not hold a stopped machine's process open.
   */
  background?: boolean;
}

export interface HostClock {
  /** Monotonic milliseconds (fractional) from an arbitrary origin; never goes backwards. */
  now(): number;
  /**
   * Calls `fire` once, no sooner than `ms` milliseconds from now (fractions are honoured as far
   * as the host can: Node's adapter keeps sub-millisecond intent, plain timers round up).
   */
  setTimer(ms: number, fire: () => void, options?: TimerOptions): CancelTimer;
  /** Resolves after the host has had a chance to run its pending events (input, sockets, timers). */
  yieldToHost(): Promise<void>;
}

/** The timer functions every JavaScript host has (browsers, Node, workers), as the core sees them. */
interface PortableTimers {
  setTimeout(fire: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  performance: { now(): number };
}

/**
 * A HostClock from the portable timer functions: millisecond granularity; a background timer is
 * unref'd where the host's timer handle can be (Node, Deno, Bun) and is a plain timer elsewhere.
 * The default when a caller injects nothing (library use, tests that do not care about time).
 */
export function portableClock(): HostClock {
  const host = globalThis as unknown as PortableTimers;
  return {
    now: () => host.performance.now(),
    setTimer(ms, fire, options) {
      const handle = host.setTimeout(fire, ms);
      if (options?.background) (handle as { unref?: () => void } | undefined)?.unref?.();
      return () => host.clearTimeout(handle);
    },
    yieldToHost: () => new Promise<void>((resolve) => host.setTimeout(resolve, 0)),
  };
}
