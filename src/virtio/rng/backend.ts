// What the entropy device needs from its host besides time (an injected HostClock,
// src/platform/clock.ts): randomness. Injected so the device model runs the same in Node, in a
// browser and in tests.

/** Fills `bytes` with random bytes (at most 65536 per call, the Web Crypto limit). */
export type EntropySource = (bytes: Uint8Array) => void;

/** Web Crypto as every JavaScript host offers it (Node 20, browsers, workers). */
interface WebCrypto {
  crypto: { getRandomValues(bytes: Uint8Array): Uint8Array };
}

/** Web Crypto's getRandomValues (globalThis.crypto). */
export const defaultEntropySource: EntropySource = (bytes) => {
  (globalThis as unknown as WebCrypto).crypto.getRandomValues(bytes);
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
    /** Milliseconds from an arbitrary origin, never going backwards (HostClock.now). */
    private readonly now: () => number,
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
