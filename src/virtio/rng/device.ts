// virtio-entropy (virtio spec 5.4): device ID 4, one virtqueue (requestq), no feature bits, no
// configuration space. The driver makes device-writable buffers available; the device fills them
// with random bytes and returns them with the number of bytes written (5.4.6, 5.4.6.2: the device
// MUST place one or more random bytes into the buffer, but it MAY use less than the entire buffer).
//
// The guest's use of it: Linux's driver (drivers/char/hw_random/virtio-rng.c) keeps one small
// request pending (SMP_CACHE_BYTES, 64 bytes on riscv64) and registers a hwrng. The hwrng core
// does not hand these bytes to anyone directly: its kthread passes them to
// add_hwgenerator_randomness(), which mixes them into the kernel's own input pool and credits
// entropy according to the hwrng's `quality` (entropy bits per 1024 bits of input). So the guest
// does not have to trust Parley's bytes; they only add to what it already has.
//
// Host side: bytes come from an injected EntropySource (default: Web Crypto getRandomValues, in
// Node 20 and browsers alike), spent from a token bucket (rate, burst) on an injected HostClock.
// When the bucket is empty the request stays where it is (at most one chain is held by the device)
// and a timer of that clock retries later; nothing spins, and nothing is allocated per request
// beyond a fixed scratch buffer.
import type { DescriptorChain, GuestMemory, VirtioDevice, VirtioDeviceContext } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import { VIRTIO_ID_ENTROPY } from "../constants.ts";
import { defaultEntropySource, type EntropySource } from "./backend.ts";
import { RateLimiter, type RateLimiterConfig, type RateLimiterState } from "../rate-limiter.ts";
import { stateInt, stateObject, type VersionedState } from "../../platform/persist.ts";
import { writeToChain } from "../queue/chain.ts";
import { portableClock, type HostClock } from "../../platform/clock.ts";

/** Spec 5.4.2: the only virtqueue. */
export const VIRTIO_RNG_REQUESTQ = 0;
/** Bytes given for one request at most, whatever the size of its buffers. */
export const VIRTIO_RNG_MAX_REQUEST_BYTES = 65536;
const SCRATCH_BYTES = 4096;

export interface VirtioRngOptions {
  /** Default "virtio-rng0". */
  name?: string;
  /** QueueNumMax of the requestq (default 64). */
  queueSize?: number;
  /** Default: globalThis.crypto.getRandomValues. */
  entropy?: EntropySource;
  /** Sustained rate in bytes per second (default 1 MiB/s; Infinity for no limit). */
  bytesPerSecond?: number;
  /** Bucket size in bytes: what can be given at once after a pause (default 64 KiB). */
  burstBytes?: number;
  /** Time for the token bucket and the timer that retries when it is empty. Default portableClock(). */
  clock?: HostClock;
  /** Cap on bytes per request (default and maximum 65536). */
  maxBytesPerRequest?: number;
  /**
   * Firecracker-style limits (rate-limiter.ts); when given, they replace bytesPerSecond/burstBytes
   * (Firecracker's entropy device has the same `rate_limiter`).
   */
  rateLimiter?: RateLimiterConfig;
}

/** The bandwidth bucket that bytesPerSecond / burstBytes describe (none for an infinite rate). */
function legacyLimits(bytesPerSecond: number, burstBytes: number): RateLimiterConfig {
  if (!(bytesPerSecond > 0)) throw new RangeError(`entropy rate ${bytesPerSecond} must be positive`);
  if (!(burstBytes >= 1) || !Number.isFinite(burstBytes)) throw new RangeError(`entropy burst ${burstBytes} must be at least 1 byte`);
  if (bytesPerSecond === Infinity) return {};
  return { bandwidth: { size: Math.floor(burstBytes), refill_time: (Math.floor(burstBytes) * 1000) / bytesPerSecond } };
}

export interface VirtioRngState extends VersionedState {
  version: 1;
  counters: VirtioRngCounters;
  limiter: RateLimiterState;
}

export interface VirtioRngCounters {
  /** Random bytes written into guest buffers. */
  bytes: number;
  /** Requests completed. */
  requests: number;
  /** Times a request had to wait for the bucket to refill. */
  rateLimited: number;
  /** Retry timers started. */
  timers: number;
}

export class VirtioRngDevice implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_ENTROPY;
  readonly name: string;
  readonly queueSizes: readonly number[];
  readonly deviceFeatures = 0n;
  readonly counters: VirtioRngCounters = { bytes: 0, requests: 0, rateLimited: 0, timers: 0 };
  private readonly entropy: EntropySource;
  private readonly limiter: RateLimiter;
  private readonly clock: HostClock;
  private readonly maxPerRequest: number;
  private readonly scratch = new Uint8Array(SCRATCH_BYTES);
  private context: VirtioDeviceContext | undefined;
  /** The request that is waiting for tokens (taken from the queue, not yet returned). */
  private pending: DescriptorChain | undefined;
  /** quiesce()d: no request is served and no timer runs until unquiesce(). */
  private quiesced = false;

  constructor(options: VirtioRngOptions = {}) {
    this.name = options.name ?? "virtio-rng0";
    this.queueSizes = [options.queueSize ?? 64];
    this.entropy = options.entropy ?? defaultEntropySource;
    this.clock = options.clock ?? portableClock();
    this.limiter = new RateLimiter(this.clock, options.rateLimiter ?? legacyLimits(options.bytesPerSecond ?? 1 << 20, options.burstBytes ?? 64 << 10));
    const cap = options.maxBytesPerRequest ?? VIRTIO_RNG_MAX_REQUEST_BYTES;
    if (!Number.isInteger(cap) || cap < 1 || cap > VIRTIO_RNG_MAX_REQUEST_BYTES) {
      throw new RangeError(`maxBytesPerRequest ${cap} is outside 1..${VIRTIO_RNG_MAX_REQUEST_BYTES}`);
    }
    this.maxPerRequest = cap;
  }

  /** Spec 5.4.4: no device configuration layout. */
  readConfig(_offset: number, _size: number): number | undefined {
    return undefined;
  }
  writeConfig(_offset: number, _size: number, _value: number): boolean {
    return false;
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
    this.pending = undefined;
    // Buffers made available before DRIVER_OK were not announced to the device: look now.
    this.service();
  }

  queueNotify(queueIndex: number): void {
    if (queueIndex === VIRTIO_RNG_REQUESTQ) this.service();
  }

  reset(): void {
    this.context = undefined;
    this.pending = undefined;
    this.limiter.cancel();
  }

  /** The limits in force (Firecracker's RateLimiter shape). */
  get rateLimiter(): RateLimiterConfig {
    return this.limiter.config;
  }

  /** Changes the limits at run time; a bucket not given stays as it is (rate-limiter.ts). */
  updateRateLimiter(config: RateLimiterConfig): void {
    this.limiter.update(config);
  }

  /**
   * Stops serving: the retry timer is cancelled and a request waiting for tokens is given back to
   * the queue (unpop: the device wrote nothing into it), so nothing is held while paused.
   */
  async quiesce(): Promise<void> {
    this.quiesced = true;
    this.limiter.cancel();
    this.givePendingBack();
  }

  unquiesce(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.service();
  }

  private givePendingBack(): void {
    const chain = this.pending;
    this.pending = undefined;
    if (chain && this.context) this.context.queues[VIRTIO_RNG_REQUESTQ].unpop(chain);
  }

  /** Taken while quiesced (or never activated): no chain is held then. */
  saveState(): VirtioRngState {
    if (this.pending) throw new Error(`${this.name}: a request is held; quiesce() before saveState()`);
    return { version: 1, counters: { ...this.counters }, limiter: this.limiter.saveState() };
  }

  restoreState(value: unknown): void {
    const r = stateObject(value, this.name, [1]);
    const c = r.counters as Record<string, unknown> | undefined;
    const counters: VirtioRngCounters = {
      bytes: stateInt(c?.bytes, `${this.name}.counters.bytes`),
      requests: stateInt(c?.requests, `${this.name}.counters.requests`),
      rateLimited: stateInt(c?.rateLimited, `${this.name}.counters.rateLimited`),
      timers: stateInt(c?.timers, `${this.name}.counters.timers`),
    };
    const applyLimiter = this.limiter.prepareRestore(r.limiter, `${this.name}.limiter`);
    applyLimiter();
    Object.assign(this.counters, counters);
  }

  /** Fills as many available requests as the bucket allows. */
  private service(): void {
    const context = this.context;
    if (!context || this.quiesced) return;
    const queue = context.queues[VIRTIO_RNG_REQUESTQ];
    let completed = 0;
    let error: string | undefined;
    try {
      for (;;) {
        const chain = this.pending ?? queue.pop();
        this.pending = undefined;
        if (!chain) break;
        const want = Math.min(chain.writableLength, this.maxPerRequest);
        if (want > 0) {
          if (this.limiter.msUntil(want) > 0) {
            this.pending = chain;
            this.counters.rateLimited++;
            this.retryLater(want);
            break;
          }
        }
        // A request larger than the bucket gets what the full bucket holds (5.4.6.2: "MAY use less").
        const n = Math.min(want, this.limiter.availableBytes());
        this.limiter.tryConsume(n);
        this.fill(context.memory, chain, n);
        queue.pushUsed(chain, n);
        this.counters.bytes += n;
        this.counters.requests++;
        completed++;
      }
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      error = e.message;
    }
    if (completed > 0) context.notifyUsed(VIRTIO_RNG_REQUESTQ);
    if (error !== undefined) context.needsReset(error);
  }

  private retryLater(bytes: number): void {
    if (!this.limiter.waiting) this.counters.timers++;
    this.limiter.retryWhenReady(bytes, 1, () => this.service());
  }

  /** Writes `n` random bytes into the chain's writable buffers, a scratch buffer at a time. */
  private fill(memory: GuestMemory, chain: DescriptorChain, n: number): void {
    for (let done = 0; done < n; ) {
      const piece = this.scratch.subarray(0, Math.min(n - done, SCRATCH_BYTES));
      this.entropy(piece);
      writeToChain(memory, chain, done, piece);
      done += piece.length;
    }
    this.scratch.fill(0);
  }
}
