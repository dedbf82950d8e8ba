// virtio-balloon: the traditional memory balloon device (virtio spec 1.3, section 5.5).
//
// The host sets a target (num_pages); the guest driver inflates the balloon by handing over
// 4 KiB page frames through inflateq, which the device gives back to the host OS through the
// injected `release` function (Node: madvise(MADV_DONTNEED) on the wasm memory, see
// src/host/node/memory-release.ts). Deflating needs nothing from the host: the next guest touch
// of a released page faults in a zero-filled page. With VIRTIO_BALLOON_F_PAGE_REPORTING the
// driver also reports free page ranges, which are released the same way, and with
// VIRTIO_BALLOON_F_STATS_VQ the device keeps the driver's statistics buffer and returns it
// periodically to ask for fresh numbers.
//
// Imports neither Node nor the DOM. The guest is untrusted: every PFN and range is checked
// against guest RAM before release() sees it, the amount of work per request is bounded, and a
// malformed chain puts the device into DEVICE_NEEDS_RESET.
import { VirtqueueError, type DescriptorChain, type GuestBuffer, type GuestMemory, type Virtqueue, type VirtioDevice, type VirtioDeviceContext } from "../types.ts";
import { alignRangeInward, decodeBalloonStats, decodePfns, namedBalloonStats, type BalloonStats } from "./parse.ts";
import { readFromBuffers, readFromChain } from "../queue/chain.ts";
import { portableClock, type HostClock } from "../../platform/clock.ts";
import { SnapshotError, hex64, stateInt, stateObject, stateRecord, stateU64 } from "../../platform/persist.ts";

/**
 * A balloon's snapshot: the host's target (num_pages) and what the driver wrote (actual,
 * poison_val), the latest statistics (u64 values as hex) and the counters, free page reporting's
 * included. The statistics buffer the device keeps between refreshes is not saved: quiesce()
 * gives it back to the ring untouched (unpop), and the restored device takes it again at
 * activation, reading the same statistics, and restarts the refresh timer.
 */
export interface VirtioBalloonState {
  version: 1;
  targetPages: number;
  actualPages: number;
  poisonVal: number;
  stats: Record<string, string> | null;
  counters: BalloonCounters;
}
import {
  BALLOON_STAT_NAMES,
  balloonQueueLayout,
  featureBit,
  VIRTIO_BALLOON_CONFIG_ACTUAL,
  VIRTIO_BALLOON_CONFIG_NUM_PAGES,
  VIRTIO_BALLOON_CONFIG_POISON_VAL,
  VIRTIO_BALLOON_CONFIG_SIZE,
  VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
  VIRTIO_BALLOON_F_PAGE_REPORTING,
  VIRTIO_BALLOON_F_STATS_VQ,
  VIRTIO_BALLOON_PAGE_SIZE,
  VIRTIO_BALLOON_PFN_SIZE,
  VIRTIO_BALLOON_STAT_SIZE,
  VIRTIO_ID_BALLOON,
  type BalloonQueueLayout,
} from "./spec.ts";

export interface VirtioBalloonOptions {
  /**
   * Gives [guestPhysAddr, guestPhysAddr + length) back to the host OS; afterwards the range reads
   * as zeros. Called only with page-aligned ranges entirely inside guest RAM. Must not throw.
   */
  release: (guestPhysAddr: number, length: number) => void;
  name?: string;
  /**
   * How long the device keeps the driver's statistics buffer before returning it to ask for new
   * statistics (5.5.6.3). 0 disables the timer: statistics are then only refreshed by
   * requestStats(). Default 5000.
   */
  statsIntervalMs?: number;
  /** Time for the statistics timer, a background timer. Default portableClock(). */
  clock?: HostClock;
  /** Size of every virtqueue. Default 128 (Linux needs >= 32 on reporting_vq). */
  queueSize?: number;
}

export interface BalloonCounters {
  /** Inflate requests (chains) and the valid 4 KiB pages they carried. */
  inflateRequests: number;
  inflatedPages: number;
  deflateRequests: number;
  deflatedPages: number;
  /** PFNs outside guest RAM (ignored). */
  invalidPfns: number;
  /** PFNs beyond BALLOON_MAX_PFNS_PER_REQUEST in one chain (ignored). */
  ignoredPfns: number;
  /** Free page reports (chains) and the bytes of whole pages they gave back. */
  reports: number;
  reportedBytes: number;
  /** Reported ranges not entirely inside guest RAM (ignored). */
  invalidReports: number;
  /** Bytes passed to release(), in total. */
  releasedBytes: number;
  /** Statistics buffers received from the driver. */
  statsUpdates: number;
}

/** At most this many PFNs of one inflate/deflate chain are acted on (Linux sends <= 256). */
export const BALLOON_MAX_PFNS_PER_REQUEST = 1 << 16;
/** At most this many statistics entries are read from a statsq buffer (spec 1.3 defines 10). */
export const BALLOON_MAX_STATS = 64;
/** At most this many buffers of one reporting chain are acted on (Linux sends <= 32). */
export const BALLOON_MAX_REPORT_BUFFERS = 1024;

const DEFAULT_QUEUE_SIZE = 128;
const DEFAULT_STATS_INTERVAL_MS = 5000;

export class VirtioBalloon implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_BALLOON;
  readonly name: string;
  /**
   * Four slots: inflateq, deflateq, then statsq and reporting_vq where the negotiated features put
   * them (balloonQueueLayout): without STATS_VQ the driver uses slot 2 for reporting_vq and
   * leaves slot 3 alone. All the same size, since slot 2 may be either queue.
   */
  readonly queueSizes: readonly number[];
  /**
   * 5.5.3. Not offered: VIRTIO_BALLOON_F_MUST_TELL_HOST (deflating needs nothing from this host,
   * so making the driver wait for the deflate acknowledgement would only slow it down),
   * VIRTIO_BALLOON_F_FREE_PAGE_HINT (a migration aid) and VIRTIO_BALLOON_F_PAGE_POISON (released
   * pages read as zeros, not as a poison value).
   */
  readonly deviceFeatures =
    featureBit(VIRTIO_BALLOON_F_STATS_VQ) | featureBit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | featureBit(VIRTIO_BALLOON_F_PAGE_REPORTING);
  readonly counters: BalloonCounters = {
    inflateRequests: 0,
    inflatedPages: 0,
    deflateRequests: 0,
    deflatedPages: 0,
    invalidPfns: 0,
    ignoredPfns: 0,
    reports: 0,
    reportedBytes: 0,
    invalidReports: 0,
    releasedBytes: 0,
    statsUpdates: 0,
  };

  private readonly release: (guestPhysAddr: number, length: number) => void;
  private statsIntervalMs: number;
  private readonly clock: HostClock;
  /** struct virtio_balloon_config, little-endian (5.5.4). */
  private readonly config = new Uint8Array(VIRTIO_BALLOON_CONFIG_SIZE);
  private readonly configView = new DataView(this.config.buffer);

  private context: VirtioDeviceContext | undefined;
  private layout: BalloonQueueLayout | undefined;
  private broken = false;
  private latestStats: BalloonStats | undefined;
  private statsChain: DescriptorChain | undefined;
  private cancelStatsTimer: (() => void) | undefined;
  /** quiesce()d: no queue is touched and the statistics timer is stopped until unquiesce(). */
  private quiesced = false;

  constructor(options: VirtioBalloonOptions) {
    this.release = options.release;
    this.name = options.name ?? "virtio-balloon";
    this.statsIntervalMs = options.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS;
    if (!(this.statsIntervalMs >= 0)) throw new RangeError(`statsIntervalMs must be >= 0, got ${options.statsIntervalMs}`);
    this.clock = options.clock ?? portableClock();
    const size = options.queueSize ?? DEFAULT_QUEUE_SIZE;
    if (!Number.isInteger(size) || size < 32 || size > 32768 || (size & (size - 1)) !== 0) {
      throw new RangeError(`balloon queue size must be a power of two in [32, 32768], got ${size}`);
    }
    this.queueSizes = [size, size, size, size];
  }

  // ---- host API ---------------------------------------------------------------------------

  /** Asks the guest to hold `pages` 4 KiB pages in the balloon (num_pages) and tells the driver. */
  setTarget(pages: number): void {
    if (!Number.isInteger(pages) || pages < 0 || pages > 0xffff_ffff) throw new RangeError(`balloon target must be a u32 page count, got ${pages}`);
    this.configView.setUint32(VIRTIO_BALLOON_CONFIG_NUM_PAGES, pages, true);
    if (this.context && !this.broken) this.context.notifyConfigChange();
  }
  /** The target (num_pages), in 4 KiB pages. */
  get targetPages(): number {
    return this.configView.getUint32(VIRTIO_BALLOON_CONFIG_NUM_PAGES, true);
  }
  /** What the driver says the balloon holds (actual), in 4 KiB pages. */
  get actualPages(): number {
    return this.configView.getUint32(VIRTIO_BALLOON_CONFIG_ACTUAL, true);
  }
  /** The latest statistics from the driver (VIRTIO_BALLOON_F_STATS_VQ), by tag name. */
  stats(): BalloonStats | undefined {
    return this.latestStats === undefined ? undefined : { ...this.latestStats };
  }
  /** The queue numbers in use after feature negotiation, once the driver is up. */
  get queueLayout(): BalloonQueueLayout | undefined {
    return this.layout;
  }
  /** Returns the held statistics buffer now, asking the driver for fresh statistics. */
  requestStats(): boolean {
    if (this.quiesced) return false;
    return this.returnStatsBuffer();
  }

  // ---- pause and snapshot -------------------------------------------------------------------
  /**
   * Stops the statistics timer and gives the held statistics buffer back to statsq (the device
   * only read it), so nothing is held; no queue is touched until unquiesce(). setTarget() still
   * works: the transport holds its configuration interrupt until it resumes.
   */
  async quiesce(): Promise<void> {
    if (this.quiesced) return;
    this.quiesced = true;
    this.cancelStatsTimer?.();
    this.cancelStatsTimer = undefined;
    const chain = this.statsChain;
    this.statsChain = undefined;
    const index = this.layout?.statsq;
    if (chain && this.context && index !== undefined && !this.broken) {
      try {
        this.context.queues[index].unpop(chain);
      } catch (e) {
        if (!(e instanceof VirtqueueError)) throw e;
        this.fail(`${this.name}: ${e.message}`);
      }
    }
  }

  /** Takes the statistics buffer again (restarting its timer) and any work posted meanwhile. */
  unquiesce(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    const layout = this.layout;
    if (layout) for (let i = 0; i < layout.count; i++) this.queueNotify(i);
  }

  saveState(): VirtioBalloonState {
    if (this.statsChain) throw new Error(`${this.name}: the statistics buffer is held; quiesce() before saveState()`);
    const stats = this.latestStats === undefined ? null : Object.fromEntries(Object.entries(this.latestStats).map(([k, v]) => [k, hex64(v as bigint)]));
    return {
      version: 1,
      targetPages: this.targetPages,
      actualPages: this.actualPages,
      poisonVal: this.configView.getUint32(VIRTIO_BALLOON_CONFIG_POISON_VAL, true),
      stats,
      counters: { ...this.counters },
    };
  }

  restoreState(value: unknown): void {
    const where = this.name;
    const r = stateObject(value, where, [1]);
    const u32 = (k: string) => stateInt(r[k], `${where}.${k}`, 0, 0xffff_ffff);
    const target = u32("targetPages");
    const actual = u32("actualPages");
    const poison = u32("poisonVal");
    let stats: BalloonStats | undefined;
    if (r.stats !== null) {
      const rec = stateRecord(r.stats, `${where}.stats`);
      stats = {};
      for (const [name, v] of Object.entries(rec)) {
        if (!(BALLOON_STAT_NAMES as readonly string[]).includes(name)) throw new SnapshotError(`${where}.stats.${name}: not a statistic this device knows`);
        (stats as Record<string, bigint>)[name] = stateU64(v, `${where}.stats.${name}`);
      }
    }
    const c = stateRecord(r.counters, `${where}.counters`);
    const counters = { ...this.counters };
    for (const key of Object.keys(counters) as (keyof BalloonCounters)[]) counters[key] = stateInt(c[key], `${where}.counters.${key}`);
    this.configView.setUint32(VIRTIO_BALLOON_CONFIG_NUM_PAGES, target, true);
    this.configView.setUint32(VIRTIO_BALLOON_CONFIG_ACTUAL, actual, true);
    this.configView.setUint32(VIRTIO_BALLOON_CONFIG_POISON_VAL, poison, true);
    this.latestStats = stats;
    Object.assign(this.counters, counters);
  }

  // ---- VirtioDevice -----------------------------------------------------------------------

  readConfig(offset: number, size: number): number | undefined {
    if (!configAccessOk(offset, size)) return undefined;
    if (size === 1) return this.configView.getUint8(offset);
    if (size === 2) return this.configView.getUint16(offset, true);
    return this.configView.getUint32(offset, true);
  }

  writeConfig(offset: number, size: number, value: number): boolean {
    if (!configAccessOk(offset, size)) return false;
    // The driver owns actual and poison_val; num_pages and free_page_hint_cmd_id are the
    // device's, and driver writes to them are ignored.
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const ownedByDriver =
        (at >= VIRTIO_BALLOON_CONFIG_ACTUAL && at < VIRTIO_BALLOON_CONFIG_ACTUAL + 4) ||
        (at >= VIRTIO_BALLOON_CONFIG_POISON_VAL && at < VIRTIO_BALLOON_CONFIG_POISON_VAL + 4);
      if (ownedByDriver) this.config[at] = (value >>> (8 * i)) & 0xff;
    }
    return true;
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
    this.broken = false;
    this.layout = balloonQueueLayout(context.features & this.deviceFeatures);
    // Buffers made available before DRIVER_OK (the stats buffer, 5.5.5) are picked up now.
    for (let i = 0; i < this.layout.count; i++) this.queueNotify(i);
  }

  queueNotify(queueIndex: number): void {
    const context = this.context;
    const layout = this.layout;
    if (!context || !layout || this.broken || this.quiesced) return;
    const queue = context.queues[queueIndex];
    if (!queue) return;
    if (queueIndex === layout.inflateq) this.drain(queueIndex, queue, (chain) => this.pages(context.memory, chain, true));
    else if (queueIndex === layout.deflateq) this.drain(queueIndex, queue, (chain) => this.pages(context.memory, chain, false));
    else if (queueIndex === layout.statsq) this.takeStats(context, queue);
    else if (queueIndex === layout.reporting_vq) this.drain(queueIndex, queue, (chain) => this.report(context.memory, chain));
    // free_page_vq is never negotiated (not offered); other indices do not exist.
  }

  reset(): void {
    this.cancelStatsTimer?.();
    this.cancelStatsTimer = undefined;
    this.statsChain = undefined;
    this.context = undefined;
    this.layout = undefined;
    this.broken = false;
    // A reset driver starts with an empty balloon; the host's target stays.
    this.configView.setUint32(VIRTIO_BALLOON_CONFIG_ACTUAL, 0, true);
    this.configView.setUint32(VIRTIO_BALLOON_CONFIG_POISON_VAL, 0, true);
  }

  // ---- queues -----------------------------------------------------------------------------

  /** Pops every available chain, handles it (false = malformed), returns it used, notifies. */
  private drain(queueIndex: number, queue: Virtqueue, handle: (chain: DescriptorChain) => boolean): void {
    let used = 0;
    for (;;) {
      const chain = this.pop(queue);
      if (!chain) break;
      // A malformed chain stops the device (needsReset); it is not returned.
      if (!handle(chain)) return;
      queue.pushUsed(chain, 0);
      used++;
    }
    if (used > 0) this.context?.notifyUsed(queueIndex);
  }

  private pop(queue: Virtqueue): DescriptorChain | undefined {
    if (this.broken) return undefined;
    try {
      return queue.pop();
    } catch (e) {
      if (e instanceof VirtqueueError) {
        this.fail(`${this.name}: queue ${queue.index}: ${e.message}`);
        return undefined;
      }
      throw e;
    }
  }

  private fail(reason: string): false {
    if (!this.broken) {
      this.broken = true;
      this.cancelStatsTimer?.();
      this.cancelStatsTimer = undefined;
      this.statsChain = undefined;
      this.context?.needsReset(reason);
    }
    return false;
  }

  /** 5.5.6 inflate (release the pages) or deflate (nothing to do on the host). */
  private pages(memory: GuestMemory, chain: DescriptorChain, inflate: boolean): boolean {
    const what = inflate ? "inflateq" : "deflateq";
    if (chain.writable.length > 0) return this.fail(`${this.name}: ${what} chain has device-writable buffers`);
    if (chain.readableLength % VIRTIO_BALLOON_PFN_SIZE !== 0) {
      return this.fail(`${this.name}: ${what} chain of ${chain.readableLength} bytes is not an array of le32 PFNs`);
    }
    const total = chain.readableLength / VIRTIO_BALLOON_PFN_SIZE;
    if (!inflate) {
      // The next guest access faults the page back in; nothing to read or do.
      this.counters.deflateRequests++;
      this.counters.deflatedPages += total;
      return true;
    }
    // Bounded by the device's limit, not by the guest: at most 256 KiB of PFNs are read.
    const bytes = new Uint8Array(Math.min(total, BALLOON_MAX_PFNS_PER_REQUEST) * VIRTIO_BALLOON_PFN_SIZE);
    if (readFromBuffers(memory, chain.readable, 0, bytes) !== bytes.length) return this.fail(`${this.name}: ${what} buffer outside RAM`);
    const result = decodePfns(bytes, (addr) => memory.contains(addr, VIRTIO_BALLOON_PAGE_SIZE));
    for (const run of result.runs) this.giveBack(memory, run.addr, run.pages * VIRTIO_BALLOON_PAGE_SIZE);
    this.counters.inflateRequests++;
    this.counters.inflatedPages += result.pfns - result.invalid;
    this.counters.invalidPfns += result.invalid;
    this.counters.ignoredPfns += total - result.pfns;
    return true;
  }

  /** 5.5.6.6 free page reporting: every buffer of the chain is a free range of guest memory. */
  private report(memory: GuestMemory, chain: DescriptorChain): boolean {
    // Linux adds the reported pages as device-writable buffers; the spec does not say, so both
    // directions are accepted. Nothing is written into them.
    const buffers: readonly GuestBuffer[] = chain.readable.length === 0 ? chain.writable : [...chain.readable, ...chain.writable];
    if (buffers.length > BALLOON_MAX_REPORT_BUFFERS) return this.fail(`${this.name}: reporting_vq chain of ${buffers.length} buffers`);
    this.counters.reports++;
    for (const buf of buffers) {
      const range = alignRangeInward(buf.addr, buf.len);
      if (!range) continue;
      if (!memory.contains(range.addr, range.length)) {
        this.counters.invalidReports++;
        continue;
      }
      this.giveBack(memory, range.addr, range.length);
      this.counters.reportedBytes += range.length;
    }
    return true;
  }

  private giveBack(memory: GuestMemory, addr: number, length: number): void {
    this.release(addr, length);
    this.counters.releasedBytes += length;
    // The pages now read as zeros: drop any decoded code cached for them.
    memory.written(addr, length);
  }

  /** 5.5.6.3: keep the driver's buffer, read the statistics, return it later to ask again. */
  private takeStats(context: VirtioDeviceContext, queue: Virtqueue): void {
    for (;;) {
      const chain = this.pop(queue);
      if (!chain) return;
      if (chain.writable.length > 0) {
        this.fail(`${this.name}: statsq chain has device-writable buffers`);
        return;
      }
      const bytes = new Uint8Array(Math.min(chain.readableLength, BALLOON_MAX_STATS * VIRTIO_BALLOON_STAT_SIZE));
      if (readFromChain(context.memory, chain, 0, bytes) !== bytes.length) {
        this.fail(`${this.name}: statsq buffer outside RAM`);
        return;
      }
      this.latestStats = namedBalloonStats(decodeBalloonStats(bytes, BALLOON_MAX_STATS));
      this.counters.statsUpdates++;
      // The driver keeps at most one buffer in statsq (5.5.6.3); if it sends another anyway,
      // the older one goes back so that nothing is held twice.
      if (this.statsChain) this.returnStatsBuffer();
      this.statsChain = chain;
      this.armStatsTimer();
    }
  }

  /** Returns the held statistics buffer (a request for new statistics) after the interval, if any. */
  private armStatsTimer(): void {
    this.cancelStatsTimer?.();
    this.cancelStatsTimer = undefined;
    if (this.statsIntervalMs <= 0 || !this.statsChain) return;
    // Background: a held statistics buffer must not keep a stopped machine's host process alive.
    this.cancelStatsTimer = this.clock.setTimer(
      this.statsIntervalMs,
      () => {
        this.cancelStatsTimer = undefined;
        this.returnStatsBuffer();
      },
      { background: true },
    );
  }

  /**
   * A new statistics interval while the guest runs (PATCH /balloon/statistics); 0 stops asking.
   * A buffer the device holds is asked again after the new interval, counted from now.
   */
  setStatsInterval(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`statistics interval must be >= 0 ms, got ${ms}`);
    this.statsIntervalMs = ms;
    this.armStatsTimer();
  }

  private returnStatsBuffer(): boolean {
    this.cancelStatsTimer?.();
    this.cancelStatsTimer = undefined;
    const chain = this.statsChain;
    const context = this.context;
    const index = this.layout?.statsq;
    if (!chain || !context || index === undefined || this.broken || this.quiesced) return false;
    const queue = context.queues[index];
    if (!queue) return false;
    this.statsChain = undefined;
    queue.pushUsed(chain, 0);
    context.notifyUsed(index);
    return true;
  }
}

function configAccessOk(offset: number, size: number): boolean {
  return (size === 1 || size === 2 || size === 4) && Number.isInteger(offset) && offset >= 0 && offset + size <= VIRTIO_BALLOON_CONFIG_SIZE;
}
