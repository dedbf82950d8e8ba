// What the entropy device needs from its host: randomness, a clock and a timer. All injected so
// the device model runs the same in Node, in a browser and in tests.

/** Fills `bytes` with random bytes (at most 65536 per call, the Web Crypto limit). */
export type EntropySource = (bytes: Uint8Array) => void;
/** Milliseconds from an arbitrary origin, never going backwards. */
export type Clock = () => number;
/** Runs `fn` once after about `ms` milliseconds. */
export type Scheduler = (ms: number, fn: () => void) => void;

/** Web Crypto's getRandomValues, present in Node 20 and in browsers (globalThis.crypto). */
export const defaultEntropySource: EntropySource = (bytes) => {
  globalThis.crypto.getRandomValues(bytes);
};

export const defaultClock: Clock = () => globalThis.performance.now();

export const defaultScheduler: Scheduler = (ms, fn) => {
  globalThis.setTimeout(fn, ms);
};

/**
 * A token bucket: `rate` bytes per second refill a bucket holding at most `burst` bytes. It starts
 * full. rate = Infinity disables the limit.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: Clock,
  ) {
    if (!(rate > 0)) throw new RangeError(`entropy rate ${rate} must be positive`);
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError(`entropy burst ${burst} must be at least 1 byte`);
    this.tokens = burst;
    this.last = now();
  }

  /** Whole bytes available now. */
  available(): number {
    if (this.rate === Infinity) return Infinity;
    const t = this.now();
    if (t > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.rate) / 1000);
      this.last = t;
    }
    return Math.floor(this.tokens);
  }

  /** Spends `n` bytes (no more than available()). */
  take(n: number): void {
    if (this.rate === Infinity) return;
    this.tokens = Math.max(0, this.tokens - n);
  }

  /** Milliseconds until `n` bytes (capped at the burst) will be available; 0 when they are. */
  msUntil(n: number): number {
    if (this.rate === Infinity) return 0;
    const want = Math.min(n, this.burst);
    const have = this.available();
    if (have >= want) return 0;
    return Math.ceil(((want - this.tokens) * 1000) / this.rate);
  }
}
