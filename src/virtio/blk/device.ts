// virtio-blk device model (virtio spec 1.3, 5.2 "Block Device"): one request queue, a raw disk
// behind an injected BlockBackend. No Node, no DOM.
//
// Off the vCPU path: queueNotify() only takes the available chains, parses their headers (pure,
// bounded work) and hands each request's first host I/O to the backend (it starts at once and
// runs while the guest goes on), then returns. Completions, always later from the event loop,
// write the status byte into guest memory, return the chain through the used ring and signal the
// driver (one notifyUsed per batch of completions that settle together).
//
// Bounds (the guest is untrusted):
//  - at most `maxInFlight` (= queue size) requests have host I/O running, counted across device
//    resets, so a guest that resets and kicks in a loop cannot pile up host work;
//  - a backend with readInto / writeFrom (a raw file, the RAM disk) moves data straight between
//    the disk and views of the chain's guest buffers (guestViews: each view is exactly one buffer,
//    checked to be guest RAM, or the request fails with IOERR before any I/O), in host calls of
//    at most BLK_DIRECT_IO_CHUNK bytes; any other backend (qcow2) goes through one host bounce
//    buffer of at most BLK_IO_CHUNK bytes per request, whatever length the chain claims (the
//    length is also bounded by the capacity check);
//  - a reset bumps a generation counter: I/O still running for an older generation stops at its
//    next chunk and its completion is dropped. A direct read already handed to the host still
//    lands in the buffers the driver gave (as a DMA in flight does on hardware; never outside
//    them); through the bounce buffer nothing touches guest memory after the reset.
//
// Durability (5.2.6.2): VIRTIO_BLK_F_FLUSH is offered. If the driver accepts it, the guest's FLUSH
// completes only after backend.flush() (fdatasync) resolved. If the driver declines it, every
// write completes only after its own backend.flush() ("write-through", case 1 of 5.2.6.2). A
// failed flush is sticky: once one failed, every later FLUSH - and every write-through write -
// reports IOERR for the lifetime of this device object (resets included), because the data the
// failed flush covered may be gone and a later fdatasync succeeding proves nothing about it
// (PostgreSQL "fsyncgate", Linux errseq_t semantics).

import type { DescriptorChain, VirtioDevice, VirtioDeviceContext } from "../types.ts";
import type { BlockBackend } from "./backend.ts";
import { encodeBlockId } from "./backend.ts";
import { guestViews, readFromBuffers, reportWritten, sliceBuffers, writeToBuffers } from "../queue/chain.ts";
import { parseRequest } from "./request.ts";
import type { BlkRequest, BlkRequestLimits } from "./request.ts";
import { newCounters, newState, type VirtioBlkCounters, type VirtioBlkState } from "./state.ts";
import { RateLimiter, type RateLimiterConfig, type RateLimiterState } from "../rate-limiter.ts";
import { portableClock, type HostClock } from "../../platform/clock.ts";
import { bytesToHex, hex64, SnapshotError, stateBool, stateInt, stateObject, stateRecord, stateString, stateU64 } from "../../platform/persist.ts";
import {
  SECTOR_SIZE,
  VIRTIO_BLK_CONFIG_BLK_SIZE,
  VIRTIO_BLK_CONFIG_CAPACITY,
  VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT,
  VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS,
  VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG,
  VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS,
  VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG,
  VIRTIO_BLK_CONFIG_NUM_QUEUES,
  VIRTIO_BLK_CONFIG_SEG_MAX,
  VIRTIO_BLK_CONFIG_SIZE,
  VIRTIO_BLK_CONFIG_WRITE_ZEROES_MAY_UNMAP,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_ID_BLOCK,
  featureBit,
  requestTypeName,
} from "./spec.ts";

/**
 * Largest host buffer one request uses for a read or write through a backend without
 * readInto / writeFrom (the I/O is done in chunks of this).
 */
export const BLK_IO_CHUNK = 128 * 1024;
/**
 * Largest part of a request one readInto / writeFrom moves straight between the disk and guest RAM:
 * a Linux request (max_sectors_kb 1280 by default) is one host call, and a reset stops a huge one
 * at the next chunk.
 */
export const BLK_DIRECT_IO_CHUNK = 4 * 1024 * 1024;
/** Config max_discard_sectors / max_write_zeroes_sectors: 1 GiB per segment. */
export const BLK_MAX_DISCARD_SECTORS = 1 << 21;
export const BLK_MAX_WRITE_ZEROES_SECTORS = 1 << 21;
/** Config max_discard_seg / max_write_zeroes_seg: bounds the segment array the device reads. */
export const BLK_MAX_DISCARD_SEG = 32;
export const BLK_MAX_WRITE_ZEROES_SEG = 32;
/** Config discard_sector_alignment: 4 KiB, the host page / file system block. */
export const BLK_DISCARD_SECTOR_ALIGNMENT = 8;
export const BLK_DEFAULT_QUEUE_SIZE = 256;
const MAX_QUEUE_SIZE = 32768; // 2.7 / 2.8: queue sizes are at most 32768

export interface VirtioBlkOptions {
  backend: BlockBackend;
  /** Name for counters and logs; default "virtio-blk". */
  name?: string;
  /** Maximum size of the request queue; default 256. seg_max is queueSize - 2. */
  queueSize?: number;
  /** Only one request queue (no VIRTIO_BLK_F_MQ). */
  numQueues?: 1;
  /** Firecracker's `rate_limiter` of a drive: bandwidth in bytes of data, ops in requests. */
  rateLimiter?: RateLimiterConfig;
  /** Time for the rate limiter's refill and retry timer. Default portableClock(). */
  clock?: HostClock;
}

/**
 * A VirtioBlk's snapshot. The configuration space is derived from the backend and the options, so
 * it is only recorded to refuse a restore onto a different disk. In-flight requests are never part
 * of it: the device is quiesced first (every started request completed and published), and a
 * request refused by the rate limiter was given back to the ring (unpop), so requests the driver
 * posted and did not see completed are simply in the ring, in guest RAM, and served after restore.
 * The disk image itself is not part of the snapshot (flush it and copy it alongside).
 */
export interface VirtioBlkSnapshot {
  version: 1;
  /** struct virtio_blk_config (5.2.4) as hex. */
  config: string;
  features: string;
  flushFailed: boolean;
  counters: VirtioBlkCounters;
  limiter: RateLimiterState;
}

const DROPPED = -1;

/** The data bytes a request moves, for the bandwidth bucket (Firecracker counts reads and writes). */
function requestBytes(request: BlkRequest): number {
  return request.type === VIRTIO_BLK_T_IN || request.type === VIRTIO_BLK_T_OUT ? request.length : 0;
}

export class VirtioBlk implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly name: string;
  readonly queueSizes: readonly number[];
  readonly deviceFeatures: bigint;
  readonly backend: BlockBackend;
  /** Serializable state (snapshot.ts). */
  state: VirtioBlkState = newState();
  /** Why the device last asked for a reset, and the last backend error, for logs. */
  lastFault: string | undefined;
  lastBackendError: string | undefined;

  private readonly config: Uint8Array;
  private readonly configView: DataView;
  private readonly idBytes: Uint8Array;
  private readonly capacitySectors: number;
  private readonly maxInFlight: number;
  private context: VirtioDeviceContext | undefined;
  private limits: BlkRequestLimits | undefined;
  private flushNegotiated = false;
  /** Bumped by activate() and reset(); I/O started under an older value is dropped. */
  private generation = 0;
  /** DEVICE_NEEDS_RESET was requested: take nothing more from the queue until reset. */
  private broken = false;
  /** Stopped taking chains because maxInFlight was reached; poll again when one settles. */
  private throttled = false;
  private notifyScheduled = false;
  private drainWaiters: (() => void)[] = [];
  private readonly limiter: RateLimiter;
  /** quiesce()d: no chain is taken until unquiesce(). */
  private quiesced = false;

  constructor(options: VirtioBlkOptions) {
    const { backend } = options;
    const queueSize = options.queueSize ?? BLK_DEFAULT_QUEUE_SIZE;
    if (!Number.isInteger(queueSize) || queueSize < 2 || queueSize > MAX_QUEUE_SIZE) {
      throw new RangeError(`virtio-blk queue size ${queueSize} is not an integer in 2..${MAX_QUEUE_SIZE}`);
    }
    if ((options.numQueues ?? 1) !== 1) throw new RangeError("virtio-blk supports a single request queue");
    if (!Number.isSafeInteger(backend.size) || backend.size < 0 || backend.size % SECTOR_SIZE !== 0) {
      throw new RangeError(`virtio-blk disk size ${backend.size} is not a multiple of ${SECTOR_SIZE} bytes`);
    }
    this.backend = backend;
    this.name = options.name ?? "virtio-blk";
    this.limiter = new RateLimiter(options.clock ?? portableClock(), options.rateLimiter ?? {});
    this.queueSizes = [queueSize];
    this.maxInFlight = queueSize;
    this.capacitySectors = backend.size / SECTOR_SIZE;
    this.idBytes = encodeBlockId(backend.id);

    let features =
      featureBit(VIRTIO_BLK_F_SEG_MAX) | featureBit(VIRTIO_BLK_F_BLK_SIZE) | featureBit(VIRTIO_BLK_F_FLUSH);
    if (backend.readOnly) features |= featureBit(VIRTIO_BLK_F_RO);
    else features |= featureBit(VIRTIO_BLK_F_DISCARD) | featureBit(VIRTIO_BLK_F_WRITE_ZEROES);
    this.deviceFeatures = features;

    // 5.2.4: struct virtio_blk_config, little-endian; unused fields and padding are 0.
    this.config = new Uint8Array(VIRTIO_BLK_CONFIG_SIZE);
    const c = (this.configView = new DataView(this.config.buffer));
    c.setBigUint64(VIRTIO_BLK_CONFIG_CAPACITY, BigInt(this.capacitySectors), true);
    // Every segment but the header and the status may carry data: seg_max + 2 <= queue size keeps
    // a request within the ring when the driver does not use indirect descriptors.
    c.setUint32(VIRTIO_BLK_CONFIG_SEG_MAX, Math.max(1, queueSize - 2), true);
    c.setUint32(VIRTIO_BLK_CONFIG_BLK_SIZE, SECTOR_SIZE, true);
    c.setUint16(VIRTIO_BLK_CONFIG_NUM_QUEUES, 1, true);
    if (!backend.readOnly) {
      c.setUint32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS, BLK_MAX_DISCARD_SECTORS, true);
      c.setUint32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG, BLK_MAX_DISCARD_SEG, true);
      c.setUint32(VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT, BLK_DISCARD_SECTOR_ALIGNMENT, true);
      c.setUint32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS, BLK_MAX_WRITE_ZEROES_SECTORS, true);
      c.setUint32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG, BLK_MAX_WRITE_ZEROES_SEG, true);
      c.setUint8(VIRTIO_BLK_CONFIG_WRITE_ZEROES_MAY_UNMAP, backend.writeZeroesMayUnmap ? 1 : 0);
    }
  }

  get counters(): VirtioBlkCounters {
    return this.state.counters;
  }

  /** Requests whose host I/O is still running (all generations). */
  get inFlight(): number {
    return this.state.counters.inFlight;
  }

  /** A copy of the configuration space. */
  configBytes(): Uint8Array {
    return this.config.slice();
  }

  readConfig(offset: number, size: number): number | undefined {
    if (!Number.isInteger(offset) || offset < 0 || offset + size > VIRTIO_BLK_CONFIG_SIZE) return undefined;
    switch (size) {
      case 1:
        return this.configView.getUint8(offset);
      case 2:
        return this.configView.getUint16(offset, true);
      case 4:
        return this.configView.getUint32(offset, true);
      default:
        return undefined;
    }
  }

  writeConfig(offset: number, size: number, _value: number): boolean {
    // Only `writeback` is driver-writable, and only with VIRTIO_BLK_F_CONFIG_WCE, which is not
    // offered: writes inside the structure are ignored (as QEMU does), outside it they fault.
    return Number.isInteger(offset) && offset >= 0 && (size === 1 || size === 2 || size === 4) && offset + size <= VIRTIO_BLK_CONFIG_SIZE;
  }

  activate(context: VirtioDeviceContext): void {
    this.generation++;
    this.context = context;
    this.broken = false;
    this.throttled = false;
    const features = context.features;
    this.state.features = features;
    this.flushNegotiated = (features & featureBit(VIRTIO_BLK_F_FLUSH)) !== 0n;
    this.limits = {
      capacitySectors: this.capacitySectors,
      readOnly: this.backend.readOnly,
      discard: !this.backend.readOnly && (features & featureBit(VIRTIO_BLK_F_DISCARD)) !== 0n,
      writeZeroes: !this.backend.readOnly && (features & featureBit(VIRTIO_BLK_F_WRITE_ZEROES)) !== 0n,
      maxDiscardSectors: BLK_MAX_DISCARD_SECTORS,
      maxDiscardSeg: BLK_MAX_DISCARD_SEG,
      maxWriteZeroesSectors: BLK_MAX_WRITE_ZEROES_SECTORS,
      maxWriteZeroesSeg: BLK_MAX_WRITE_ZEROES_SEG,
    };
  }

  reset(): void {
    this.limiter.cancel();
    this.generation++;
    this.context = undefined;
    this.limits = undefined;
    this.broken = false;
    this.throttled = false;
    this.flushNegotiated = false;
    this.state.features = 0n;
    // state.flushFailed deliberately survives: see the header comment.
  }

  queueNotify(queueIndex: number): void {
    if (queueIndex !== 0) return;
    this.poll();
  }

  // ---- rate limiting (Firecracker PATCH /drives/{id} rate_limiter) -----------------------------
  /** The limits in force. */
  get rateLimiter(): RateLimiterConfig {
    return this.limiter.config;
  }
  /** Requests refused for lack of tokens, and retry timers started. */
  get rateLimiterCounters(): { throttled: number; timers: number } {
    return { ...this.limiter.counters };
  }
  /** Changes the limits at run time; a bucket not given stays (rate-limiter.ts). */
  updateRateLimiter(config: RateLimiterConfig): void {
    this.limiter.update(config);
  }

  // ---- pause and snapshot -----------------------------------------------------------------------
  /**
   * Stops taking requests, waits for every started one to finish and publishes their completions
   * (used ring written and notifyUsed called) before resolving: no acknowledged write is lost and
   * nothing is in flight. The rate limiter's retry timer stops; a request it refused is in the ring.
   */
  async quiesce(): Promise<void> {
    this.quiesced = true;
    this.limiter.cancel();
    await this.drain();
    this.flushNotify();
  }

  /** Resumes taking requests: those posted meanwhile (and refused earlier) are served now. */
  unquiesce(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.poll();
  }

  saveState(): VirtioBlkSnapshot {
    if (this.inFlight !== 0) throw new Error(`${this.name}: ${this.inFlight} requests in flight; quiesce() before saveState()`);
    const s = this.state;
    return {
      version: 1,
      config: bytesToHex(this.config),
      features: hex64(s.features),
      flushFailed: s.flushFailed,
      counters: structuredClone(s.counters),
      limiter: this.limiter.saveState(),
    };
  }

  /** Onto a freshly constructed device over the same disk; the transport then re-activates it. */
  restoreState(value: unknown): void {
    const where = this.name;
    const r = stateObject(value, where, [1]);
    if (stateString(r.config, `${where}.config`) !== bytesToHex(this.config)) {
      throw new SnapshotError(`${where}.config: the snapshot was taken with a different disk configuration (size or limits)`);
    }
    if (this.inFlight !== 0) throw new SnapshotError(`${where}: cannot restore while requests are in flight`);
    const features = stateU64(r.features, `${where}.features`);
    const flushFailed = stateBool(r.flushFailed, `${where}.flushFailed`);
    const c = stateRecord(r.counters, `${where}.counters`);
    const counters = newCounters();
    for (const key of Object.keys(counters) as (keyof VirtioBlkCounters)[]) {
      if (key === "requests") {
        const req = stateRecord(c.requests, `${where}.counters.requests`);
        for (const [name, n] of Object.entries(req)) counters.requests[name] = stateInt(n, `${where}.counters.requests.${name}`);
      } else {
        counters[key] = stateInt(c[key], `${where}.counters.${key}`);
      }
    }
    counters.inFlight = 0;
    const applyLimiter = this.limiter.prepareRestore(r.limiter, `${where}.limiter`);
    applyLimiter();
    this.state.features = features;
    this.state.flushFailed = flushFailed;
    this.state.counters = counters;
  }

  /** Resolves once no request has host I/O running (for snapshots and shutdown). */
  drain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private fault(reason: string): void {
    if (this.broken) return;
    this.broken = true;
    this.lastFault = reason;
    this.state.counters.malformed++;
    this.context?.needsReset(`${this.name}: ${reason}`);
  }

  /** Takes available chains until none is left or the in-flight bound is reached. */
  private poll(): void {
    const context = this.context;
    const limits = this.limits;
    if (!context || !limits || this.broken || this.quiesced) return;
    const queue = context.queues[0];
    if (!queue) return;
    const counters = this.state.counters;
    // The driver may have set up a smaller ring than the maximum: it cannot have more chains
    // outstanding than descriptors, so neither do we.
    const bound = Math.max(1, Math.min(this.maxInFlight, queue.size));
    let completed = false;
    try {
      while (!this.broken) {
        if (counters.inFlight >= bound) {
          this.throttled = true;
          break;
        }
        const chain = queue.pop();
        if (!chain) break;
        const parsed = parseRequest(chain, context.memory, limits);
        if (parsed.kind === "malformed") {
          this.fault(parsed.reason);
          break;
        }
        const type = parsed.kind === "request" ? parsed.request.type : parsed.type;
        if (parsed.kind === "request" && this.limiter.active) {
          const bytes = requestBytes(parsed.request);
          if (!this.limiter.tryConsume(bytes, 1)) {
            // Nothing was written into the chain: give it back, and take it again once tokens refill.
            queue.unpop(chain);
            this.limiter.retryWhenReady(bytes, 1, () => this.poll());
            break;
          }
        }
        const typeName = requestTypeName(type);
        counters.requests[typeName] = (counters.requests[typeName] ?? 0) + 1;
        if (parsed.kind === "reject") {
          this.complete(context, chain, parsed.statusAddr, parsed.status);
          completed = true;
          continue;
        }
        counters.inFlight++;
        if (counters.inFlight > counters.inFlightMax) counters.inFlightMax = counters.inFlight;
        void this.run(context, chain, parsed.request, parsed.statusAddr, this.generation);
      }
    } catch (e) {
      // pop() throws VirtqueueError for a malformed ring; anything else is a bug, but the vCPU
      // must not see it either way.
      this.fault(e instanceof Error ? e.message : String(e));
    }
    if (completed && !this.broken) context.notifyUsed(0);
  }

  /** Writes the status byte and returns the chain through the used ring. */
  private complete(context: VirtioDeviceContext, chain: DescriptorChain, statusAddr: number, status: number): void {
    if (status === VIRTIO_BLK_S_IOERR) this.state.counters.ioErrors++;
    else if (status === VIRTIO_BLK_S_UNSUPP) this.state.counters.unsupported++;
    const memory = context.memory;
    const view = memory.view(statusAddr, 1);
    if (!view) {
      this.fault("status byte left guest RAM");
      return;
    }
    view[0] = status;
    memory.written(statusAddr, 1);
    // The used length covers the whole device-writable part: data (for IN / GET_ID) followed by
    // the status byte, which is its last byte (as QEMU reports it; 5.2.6.3 tells drivers to ignore it).
    context.queues[0].pushUsed(chain, chain.writableLength);
  }

  private async run(
    context: VirtioDeviceContext,
    chain: DescriptorChain,
    request: BlkRequest,
    statusAddr: number,
    generation: number,
  ): Promise<void> {
    let status: number;
    try {
      // The host I/O starts right here, inside queueNotify(), so that the host reads while the
      // guest goes on to sleep (about as long as a 1 MiB preadv from the page cache): the file's
      // preadv / pwritev is handed to the thread pool, the RAM disk copies at most
      // BLK_DIRECT_IO_CHUNK bytes. The completion always runs later, from the event loop.
      status = await this.perform(context, request, generation);
    } catch (e) {
      status = VIRTIO_BLK_S_IOERR;
      this.state.counters.backendErrors++;
      this.lastBackendError = e instanceof Error ? e.message : String(e);
    }
    const counters = this.state.counters;
    counters.inFlight--;
    try {
      if (generation !== this.generation || status === DROPPED) {
        counters.droppedAfterReset++;
      } else if (!this.broken) {
        this.complete(context, chain, statusAddr, status);
        this.scheduleNotify();
      }
      if (this.throttled && !this.broken && this.context) {
        this.throttled = false;
        this.poll();
      }
    } catch (e) {
      this.fault(e instanceof Error ? e.message : String(e));
    }
    if (counters.inFlight === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** One notifyUsed for all completions that settle in the same turn. */
  private scheduleNotify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    const generation = this.generation;
    queueMicrotask(() => {
      if (!this.notifyScheduled) return; // flushed by quiesce()
      this.notifyScheduled = false;
      if (generation !== this.generation || this.broken || !this.context) return;
      try {
        this.context.notifyUsed(0);
      } catch (e) {
        this.fault(e instanceof Error ? e.message : String(e));
      }
    });
  }

  /** Signals completions whose notifyUsed is still scheduled, now. */
  private flushNotify(): void {
    if (!this.notifyScheduled) return;
    this.notifyScheduled = false;
    if (this.broken || !this.context) return;
    try {
      this.context.notifyUsed(0);
    } catch (e) {
      this.fault(e instanceof Error ? e.message : String(e));
    }
  }

  /** Performs a parsed request; resolves to the status byte, or DROPPED after a reset. */
  private async perform(context: VirtioDeviceContext, request: BlkRequest, generation: number): Promise<number> {
    const backend = this.backend;
    const memory = context.memory;
    const counters = this.state.counters;
    const live = () => generation === this.generation;
    switch (request.type) {
      case VIRTIO_BLK_T_IN: {
        if (request.length === 0) return VIRTIO_BLK_S_OK;
        if (backend.readInto) {
          for (let done = 0; done < request.length; ) {
            const n = Math.min(BLK_DIRECT_IO_CHUNK, request.length - done);
            const pieces = sliceBuffers(request.data, done, n);
            const targets = guestViews(memory, pieces);
            if (!targets) return VIRTIO_BLK_S_IOERR;
            try {
              await backend.readInto(request.offset + done, targets);
            } finally {
              // The host wrote guest RAM, also when the read failed part-way or a reset came meanwhile.
              reportWritten(memory, pieces);
            }
            if (!live()) return DROPPED;
            done += n;
            counters.bytesRead += n;
          }
          return VIRTIO_BLK_S_OK;
        }
        const buffer = new Uint8Array(Math.min(request.length, BLK_IO_CHUNK));
        for (let done = 0; done < request.length; ) {
          const n = Math.min(buffer.length, request.length - done);
          const part = n === buffer.length ? buffer : buffer.subarray(0, n);
          await backend.read(request.offset + done, part);
          if (!live()) return DROPPED;
          if (writeToBuffers(memory, request.data, done, part) !== n) return VIRTIO_BLK_S_IOERR;
          done += n;
          counters.bytesRead += n;
        }
        return VIRTIO_BLK_S_OK;
      }

      case VIRTIO_BLK_T_OUT: {
        if (this.backend.readOnly) return VIRTIO_BLK_S_IOERR; // also refused by the parser
        if (backend.writeFrom) {
          for (let done = 0; done < request.length; ) {
            if (!live()) return DROPPED;
            const n = Math.min(BLK_DIRECT_IO_CHUNK, request.length - done);
            const sources = guestViews(memory, sliceBuffers(request.data, done, n));
            if (!sources) return VIRTIO_BLK_S_IOERR;
            await backend.writeFrom(request.offset + done, sources);
            done += n;
            counters.bytesWritten += n;
          }
          return this.writeThrough(live);
        }
        const buffer = new Uint8Array(Math.min(request.length, BLK_IO_CHUNK));
        for (let done = 0; done < request.length; ) {
          if (!live()) return DROPPED;
          const n = Math.min(buffer.length, request.length - done);
          const part = n === buffer.length ? buffer : buffer.subarray(0, n);
          if (readFromBuffers(memory, request.data, done, part) !== n) return VIRTIO_BLK_S_IOERR;
          await backend.write(request.offset + done, part);
          done += n;
          counters.bytesWritten += n;
        }
        return this.writeThrough(live);
      }

      case VIRTIO_BLK_T_FLUSH:
        return this.flush();

      case VIRTIO_BLK_T_GET_ID:
        if (!live()) return DROPPED;
        return writeToBuffers(memory, request.data, 0, this.idBytes) === this.idBytes.length ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;

      case VIRTIO_BLK_T_DISCARD:
        for (const r of request.ranges) {
          if (!live()) return DROPPED;
          if (r.length > 0) await backend.discard(r.offset, r.length);
        }
        return VIRTIO_BLK_S_OK;

      case VIRTIO_BLK_T_WRITE_ZEROES:
        for (const r of request.ranges) {
          if (!live()) return DROPPED;
          if (r.length > 0) await backend.writeZeroes(r.offset, r.length, r.unmap && backend.writeZeroesMayUnmap === true);
          counters.bytesWritten += r.length;
        }
        return this.writeThrough(live);
    }
  }

  /** After a write: with VIRTIO_BLK_F_FLUSH declined, the write is stable only once flushed. */
  private async writeThrough(live: () => boolean): Promise<number> {
    if (this.flushNegotiated) return VIRTIO_BLK_S_OK;
    if (!live()) return DROPPED;
    return this.flush();
  }

  /** backend.flush() with the sticky failure rule. */
  private async flush(): Promise<number> {
    const state = this.state;
    if (state.flushFailed) return VIRTIO_BLK_S_IOERR;
    state.counters.flushes++;
    try {
      await this.backend.flush();
    } catch (e) {
      state.flushFailed = true;
      state.counters.flushFailures++;
      state.counters.backendErrors++;
      this.lastBackendError = e instanceof Error ? e.message : String(e);
      return VIRTIO_BLK_S_IOERR;
    }
    // A flush that failed while this one ran may have consumed the error this one should report.
    return state.flushFailed ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
  }
}
