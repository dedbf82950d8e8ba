// Token-bucket rate limiting for virtio devices, with Firecracker's configuration shape
// (firecracker.yaml definitions RateLimiter / TokenBucket, docs/api_requests/patch-block.md):
//
//   RateLimiter  { bandwidth?: TokenBucket /* tokens are bytes */, ops?: TokenBucket /* tokens are requests */ }
//   TokenBucket  { size: tokens the bucket holds, one_time_burst?: extra tokens spent first and
//                  never replenished, refill_time: milliseconds to refill `size` tokens from empty }
//
// Semantics as Firecracker's: a bucket starts full; it refills continuously at size / refill_time
// tokens per ms up to `size`; the one-time burst is spent before the bucket. A request larger than
// the bucket (a 1 MiB write against a 64 KiB bucket) is allowed once the bucket is full and leaves
// it in debt, so the long-run rate holds (Firecracker's "OverConsumption"). A bucket whose size or
// refill_time is 0 does not limit. On an update, a bucket that is not given stays as it is.
//
// Pure logic on an injected clock: no Node, no DOM. The device asks tryConsume(); when refused it
// asks retryWhenReady() for one timer of the injected HostClock and tries again when it fires.
import type { CancelTimer, HostClock } from "../platform/clock.ts";
import { SnapshotError, stateNumber, stateObject, stateRecord, type VersionedState } from "../platform/persist.ts";

/** Firecracker's TokenBucket (API field names). */
export interface TokenBucketConfig {
  size: number;
  one_time_burst?: number;
  /** Milliseconds to refill `size` tokens. */
  refill_time: number;
}

/** Firecracker's RateLimiter (API field names). */
export interface RateLimiterConfig {
  /** Bytes. */
  bandwidth?: TokenBucketConfig;
  /** Requests (a block request, a frame, an entropy request). */
  ops?: TokenBucketConfig;
}

const MAX_TOKENS = Number.MAX_SAFE_INTEGER;

/** Throws a RangeError naming the field (`where`) when the bucket configuration is unusable. */
export function checkTokenBucketConfig(config: TokenBucketConfig, where: string): void {
  if (typeof config !== "object" || config === null) throw new RangeError(`${where}: expected an object with size and refill_time`);
  const whole = (v: unknown, field: string, optional = false) => {
    if (optional && v === undefined) return;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > MAX_TOKENS) {
      throw new RangeError(`${where}.${field}: expected a whole number >= 0, got ${String(v)}`);
    }
  };
  whole(config.size, "size");
  whole(config.one_time_burst, "one_time_burst", true);
  // Whole milliseconds in the API; a fraction is accepted from code (a rate that does not divide evenly).
  const refill = config.refill_time;
  if (typeof refill !== "number" || !Number.isFinite(refill) || refill < 0) throw new RangeError(`${where}.refill_time: expected milliseconds >= 0, got ${String(refill)}`);
}

export function checkRateLimiterConfig(config: RateLimiterConfig, where = "rate_limiter"): void {
  if (typeof config !== "object" || config === null) throw new RangeError(`${where}: expected an object`);
  if (config.bandwidth !== undefined) checkTokenBucketConfig(config.bandwidth, `${where}.bandwidth`);
  if (config.ops !== undefined) checkTokenBucketConfig(config.ops, `${where}.ops`);
}

/** A bucket that limits; undefined for one that does not (size or refill_time 0). */
function limiting(config: TokenBucketConfig | undefined): TokenBucketConfig | undefined {
  return config && config.size > 0 && config.refill_time > 0 ? { ...config } : undefined;
}

export interface TokenBucketState {
  /** Tokens in the bucket (negative: debt after an over-size request). */
  budget: number;
  oneTimeBurst: number;
}

/** One token bucket (Firecracker semantics, see the file header). */
export class TokenBucket {
  readonly size: number;
  readonly refillTimeMs: number;
  /** The one-time burst as configured (what is left of it is `oneTimeBurst`). */
  readonly initialBurst: number;
  private budget: number;
  private oneTimeBurst: number;
  private last: number;

  constructor(
    config: TokenBucketConfig,
    /** Milliseconds, never going backwards (HostClock.now). */
    private readonly now: () => number,
  ) {
    checkTokenBucketConfig(config, "token bucket");
    if (config.size < 1 || !(config.refill_time > 0)) throw new RangeError("token bucket: size and refill_time must be at least 1 to limit");
    this.size = config.size;
    this.refillTimeMs = config.refill_time;
    this.budget = config.size;
    this.oneTimeBurst = config.one_time_burst ?? 0;
    this.initialBurst = this.oneTimeBurst;
    this.last = now();
  }

  /** The bucket as configured (for saveState of the owner and for reports). */
  get config(): TokenBucketConfig {
    return { size: this.size, refill_time: this.refillTimeMs, ...(this.initialBurst > 0 ? { one_time_burst: this.initialBurst } : {}) };
  }

  private refill(): void {
    const t = this.now();
    if (t > this.last) {
      this.budget = Math.min(this.size, this.budget + ((t - this.last) * this.size) / this.refillTimeMs);
      this.last = t;
    }
  }

  /** Whole tokens that can be spent now (burst included; 0 while in debt). */
  available(): number {
    this.refill();
    return Math.max(0, Math.floor(this.oneTimeBurst + this.budget));
  }

  /** Whether `n` tokens may be taken now: all of them, or a full bucket for a request larger than it. */
  canTake(n: number): boolean {
    this.refill();
    if (n <= this.oneTimeBurst + this.budget) return true;
    return n > this.size && this.budget >= this.size;
  }

  /** Spends `n` tokens, the one-time burst first; the bucket may go into debt. */
  take(n: number): void {
    this.refill();
    const fromBurst = Math.min(this.oneTimeBurst, n);
    this.oneTimeBurst -= fromBurst;
    this.budget -= n - fromBurst;
  }

  /** Milliseconds until canTake(n); 0 when it is now. */
  msUntil(n: number): number {
    if (this.canTake(n)) return 0;
    const target = Math.min(n - this.oneTimeBurst, this.size);
    return Math.max(1, Math.ceil(((target - this.budget) * this.refillTimeMs) / this.size));
  }

  saveState(): TokenBucketState {
    this.refill();
    return { budget: this.budget, oneTimeBurst: this.oneTimeBurst };
  }

  /** Applies a state checked by checkTokenBucketState (refill time restarts now). */
  applyState(state: TokenBucketState): void {
    this.budget = Math.min(this.size, state.budget);
    this.oneTimeBurst = state.oneTimeBurst;
    this.last = this.now();
  }
}

export function checkTokenBucketState(value: unknown, where: string): TokenBucketState {
  const r = stateRecord(value, where);
  const budget = stateNumber(r.budget, `${where}.budget`);
  const oneTimeBurst = stateNumber(r.oneTimeBurst, `${where}.oneTimeBurst`);
  if (oneTimeBurst < 0) throw new SnapshotError(`${where}.oneTimeBurst: expected a number >= 0, got ${oneTimeBurst}`);
  return { budget, oneTimeBurst };
}

export interface RateLimiterCounters {
  /** Requests refused for lack of tokens (each refusal counts, retries included). */
  throttled: number;
  /** Retry timers started. */
  timers: number;
}

export interface RateLimiterState extends VersionedState {
  version: 1;
  config: RateLimiterConfig;
  bandwidth: TokenBucketState | null;
  ops: TokenBucketState | null;
  counters: RateLimiterCounters;
}

/** A bandwidth bucket and an ops bucket, either or both optional, and the retry timer. */
export class RateLimiter {
  readonly counters: RateLimiterCounters = { throttled: 0, timers: 0 };
  private bandwidth: TokenBucket | undefined;
  private ops: TokenBucket | undefined;
  private cancelTimer: CancelTimer | undefined;
  private retry: (() => void) | undefined;

  constructor(
    private readonly clock: HostClock,
    config: RateLimiterConfig = {},
  ) {
    checkRateLimiterConfig(config);
    this.bandwidth = this.bucket(config.bandwidth);
    this.ops = this.bucket(config.ops);
  }

  private bucket(config: TokenBucketConfig | undefined): TokenBucket | undefined {
    const c = limiting(config);
    return c ? new TokenBucket(c, () => this.clock.now()) : undefined;
  }

  /** Whether anything is limited. */
  get active(): boolean {
    return this.bandwidth !== undefined || this.ops !== undefined;
  }

  /** The configuration in force (buckets that do not limit are left out). */
  get config(): RateLimiterConfig {
    return { ...(this.bandwidth ? { bandwidth: this.bandwidth.config } : {}), ...(this.ops ? { ops: this.ops.config } : {}) };
  }

  /** Takes `bytes` bandwidth tokens and `ops` op tokens if both buckets allow; otherwise counts a throttle and takes nothing. */
  tryConsume(bytes: number, ops = 1): boolean {
    if ((this.bandwidth && !this.bandwidth.canTake(bytes)) || (this.ops && !this.ops.canTake(ops))) {
      this.counters.throttled++;
      return false;
    }
    this.bandwidth?.take(bytes);
    this.ops?.take(ops);
    return true;
  }

  /**
   * Whether (bytes, ops) could be taken now, without taking them (counts a throttle when not): for
   * a device that only knows after more work whether it will spend them (take() then).
   */
  allows(bytes: number, ops = 1): boolean {
    if ((this.bandwidth && !this.bandwidth.canTake(bytes)) || (this.ops && !this.ops.canTake(ops))) {
      this.counters.throttled++;
      return false;
    }
    return true;
  }

  /** Takes tokens unconditionally (after allows()). */
  take(bytes: number, ops = 1): void {
    this.bandwidth?.take(bytes);
    this.ops?.take(ops);
  }

  /** Bandwidth tokens that can be spent now (Infinity without a bandwidth bucket); for partial fills. */
  availableBytes(): number {
    return this.bandwidth ? this.bandwidth.available() : Infinity;
  }

  /** Milliseconds until tryConsume(bytes, ops) would succeed. */
  msUntil(bytes: number, ops = 1): number {
    return Math.max(this.bandwidth?.msUntil(bytes) ?? 0, this.ops?.msUntil(ops) ?? 0);
  }

  /**
   * Calls `retry` once, when tokens for (bytes, ops) have refilled. One timer at a time: while one
   * is armed, further calls only replace the callback.
   */
  retryWhenReady(bytes: number, ops: number, retry: () => void): void {
    this.retry = retry;
    if (this.cancelTimer) return;
    this.counters.timers++;
    this.cancelTimer = this.clock.setTimer(Math.max(1, this.msUntil(bytes, ops)), () => this.fire());
  }

  /** Whether a retry timer is armed. */
  get waiting(): boolean {
    return this.cancelTimer !== undefined;
  }

  /** Stops the retry timer (pause, reset); the callback is forgotten. */
  cancel(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.retry = undefined;
  }

  private fire(): void {
    this.cancelTimer = undefined;
    const retry = this.retry;
    this.retry = undefined;
    retry?.();
  }

  /**
   * Changes the limits at run time (Firecracker PATCH): a bucket not given stays as it is; one
   * given replaces the old one and starts full; size or refill_time 0 removes the limit. A waiting
   * request is retried at once under the new limits (on a timer of 0, never re-entrantly).
   */
  update(config: RateLimiterConfig): void {
    checkRateLimiterConfig(config);
    if (config.bandwidth !== undefined) this.bandwidth = this.bucket(config.bandwidth);
    if (config.ops !== undefined) this.ops = this.bucket(config.ops);
    if (this.cancelTimer) {
      this.cancelTimer();
      this.cancelTimer = this.clock.setTimer(0, () => this.fire());
    }
  }

  saveState(): RateLimiterState {
    return {
      version: 1,
      config: this.config,
      bandwidth: this.bandwidth?.saveState() ?? null,
      ops: this.ops?.saveState() ?? null,
      counters: { ...this.counters },
    };
  }

  /** Checks a saved state; returns the function that applies it (restoreState's two halves). */
  prepareRestore(value: unknown, where: string): () => void {
    const r = stateObject(value, where, [1]);
    const config = stateRecord(r.config, `${where}.config`) as RateLimiterConfig;
    try {
      checkRateLimiterConfig(config, `${where}.config`);
    } catch (e) {
      throw new SnapshotError(e instanceof Error ? e.message : `${where}.config: not a rate limiter configuration`);
    }
    const bandwidth = r.bandwidth === null ? null : checkTokenBucketState(r.bandwidth, `${where}.bandwidth`);
    const ops = r.ops === null ? null : checkTokenBucketState(r.ops, `${where}.ops`);
    if ((bandwidth === null) !== (limiting(config.bandwidth) === undefined)) throw new SnapshotError(`${where}.bandwidth: does not match config.bandwidth`);
    if ((ops === null) !== (limiting(config.ops) === undefined)) throw new SnapshotError(`${where}.ops: does not match config.ops`);
    const counters = stateRecord(r.counters, `${where}.counters`);
    const throttled = stateNumber(counters.throttled, `${where}.counters.throttled`);
    const timers = stateNumber(counters.timers, `${where}.counters.timers`);
    return () => {
      this.cancel();
      this.bandwidth = this.bucket(config.bandwidth);
      this.ops = this.bucket(config.ops);
      if (bandwidth) this.bandwidth!.applyState(bandwidth);
      if (ops) this.ops!.applyState(ops);
      this.counters.throttled = throttled;
      this.counters.timers = timers;
    };
  }
}
