// virtio-net: the virtio network device model, virtio spec v1.3 section 5.1 (Network Device).
//
// One receiveq (0) and one transmitq (1) (5.1.2 with N = 1), no control virtqueue. Offered
// features (5.1.3): VIRTIO_NET_F_MAC, VIRTIO_NET_F_MTU, VIRTIO_NET_F_STATUS and (by default)
// VIRTIO_NET_F_MRG_RXBUF. No checksum or segmentation offloads, so every frame in either direction
// is a complete, fully checksummed Ethernet frame and the header's flags / gso_type are zero.
//
// The guest is untrusted. Every length the guest controls is checked before anything is allocated
// (frames are capped at mtu + 14 + 4 bytes, 5.1.4.1); guest memory is reached only through the
// injected GuestMemory; a chain that breaks the spec's rules (a transmit chain shorter than
// struct virtio_net_hdr, device-writable transmit buffers, device-readable or too-small receive
// buffers, buffers outside RAM, a malformed ring) puts the device in DEVICE_NEEDS_RESET through
// context.needsReset. Frames that are well-formed chains but unacceptable packets (too short, over
// the MTU, asking for an offload that was not offered) are dropped and counted.
//
// This file never imports Node or the DOM: the host link is the injected NetBackend.

import {
  VirtqueueError,
  type DescriptorChain,
  type GuestMemory,
  type VirtioDevice,
  type VirtioDeviceContext,
  type Virtqueue,
} from "../types.ts";
import type { NetBackend } from "./backend.ts";
import {
  RECEIVEQ1,
  TRANSMITQ1,
  VIRTIO_ID_NET,
  VIRTIO_NET_CONFIG_MAC,
  VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS,
  VIRTIO_NET_CONFIG_MTU,
  VIRTIO_NET_CONFIG_SIZE,
  VIRTIO_NET_CONFIG_STATUS,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_MAX_MTU,
  VIRTIO_NET_MIN_MTU,
  VIRTIO_NET_S_LINK_UP,
  buildReceiveHeader,
  checkFrameLength,
  checkTransmitHeader,
  featureBit,
  maxFrameLength,
  netHeaderSize,
  parseNetHeader,
} from "./header.ts";
import { macProblem } from "./mac.ts";
import { RateLimiter, type RateLimiterConfig, type RateLimiterState } from "../rate-limiter.ts";
import { portableClock, type HostClock } from "../../platform/clock.ts";
import { bytesToHex, SnapshotError, stateBool, stateInt, stateObject, stateRecord, stateString } from "../../platform/persist.ts";
import { readExactly, writeToChain } from "../queue/chain.ts";

export interface VirtioNetOptions {
  backend: NetBackend;
  /** The NIC's address, config-space `mac` (5.1.4). Must be unicast. */
  mac: Uint8Array;
  /** Config-space `mtu` (5.1.4), 68..65535; default 1500. */
  mtu?: number;
  /** Name for counters and logs; default "virtio-net0". */
  name?: string;
  /** Maximum size of each virtqueue (a power of two up to 32768); default 256. */
  queueSize?: number;
  /** Frames held on the host side while the guest has no receive buffers (at least 1); default 256. */
  hostQueueFrames?: number;
  /** Offer VIRTIO_NET_F_MRG_RXBUF (5.1.6.3); default true. */
  mergeableRxBuffers?: boolean;
  /** Firecracker's `rx_rate_limiter` / `tx_rate_limiter`: bandwidth in frame bytes, ops in frames. */
  rxRateLimiter?: RateLimiterConfig;
  txRateLimiter?: RateLimiterConfig;
  /** Time for the rate limiters' refill and retry timers. Default portableClock(). */
  clock?: HostClock;
}

/**
 * A VirtioNet's snapshot: the MAC (checked against the device it is restored onto), the link
 * state, counters and the rate limiters. Frames waiting in the host-side queue are not saved:
 * like frames on the wire when a host is suspended, they are lost and protocols retransmit.
 * Receive buffers the driver posted are in the ring (in guest RAM): MRG_RXBUF buffers the device
 * had taken for a frame were given back at quiesce (unpop), so they are simply taken again.
 */
export interface VirtioNetState {
  version: 1;
  mac: string;
  linkUp: boolean;
  counters: VirtioNetCounters;
  rxLimiter: RateLimiterState;
  txLimiter: RateLimiterState;
}

/** Why a frame was dropped (guest to host: tx; host to guest: rx). */
export interface VirtioNetDrops {
  /** tx: fewer than 14 bytes after the header. rx: fewer than 14 bytes from the backend. */
  runt: number;
  /** Longer than mtu + 14 + 4 (5.1.4.1). */
  oversize: number;
  /** tx: the header asks for checksum or segmentation offload, which was not offered (5.1.6.2.1). */
  offload: number;
  /** rx: the host-side queue was full while the guest had no receive buffers. */
  queueFull: number;
  /** rx: the device was not live (before DRIVER_OK, after reset, or needing reset). */
  notReady: number;
  /** rx: a receive buffer (without MRG_RXBUF) or all buffers the ring can hold were too small. */
  bufferTooSmall: number;
  /** rx: queued frames discarded by a device reset. */
  reset: number;
  /** The link was down (setLinkUp(false)): tx frames not sent, rx frames not delivered. */
  linkDown: number;
}

export interface VirtioNetCounters {
  /** Frames / bytes (Ethernet frame, without struct virtio_net_hdr) the guest sent to the backend. */
  txFrames: number;
  txBytes: number;
  /** Frames / bytes delivered into the guest's receive buffers. */
  rxFrames: number;
  rxBytes: number;
  txDrops: VirtioNetDrops;
  rxDrops: VirtioNetDrops;
  /** Receive buffers (descriptor chains) used, and packets that needed more than one (MRG_RXBUF). */
  rxBuffersUsed: number;
  rxMergedPackets: number;
  /** Frames waiting on the host side now, and the most there have been. */
  rxQueued: number;
  rxQueuedPeak: number;
  /** Times the backend was asked to pause. */
  rxPauses: number;
  /** Times the device asked for a reset because of a malformed ring or chain. */
  needsReset: number;
  /** Driver writes to the read-only configuration space (5.1.4.2), ignored. */
  configWritesIgnored: number;
}

function newDrops(): VirtioNetDrops {
  return { runt: 0, oversize: 0, offload: 0, queueFull: 0, notReady: 0, bufferTooSmall: 0, reset: 0, linkDown: 0 };
}

/**
 * How a packet of `total` bytes (header included) spreads over receive buffers of the given
 * writable lengths (5.1.6.4.1: every buffer but the last is used completely). Returns the bytes
 * written to each buffer used, or undefined when the buffers together are too small. Pure.
 */
export function planReceive(bufferLengths: readonly number[], total: number): number[] | undefined {
  const out: number[] = [];
  let left = total;
  for (const len of bufferLengths) {
    if (left === 0) break;
    const take = Math.min(len, left);
    out.push(take);
    left -= take;
  }
  return left === 0 ? out : undefined;
}

type PlaceResult = "done" | "wait" | "failed";

export class VirtioNet implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_NET;
  readonly name: string;
  readonly queueSizes: readonly number[];
  readonly deviceFeatures: bigint;
  readonly mtu: number;
  readonly mac: Uint8Array;
  readonly backend: NetBackend;
  readonly counters: VirtioNetCounters;
  /** The reason given with the last needsReset, for logs. */
  lastError: string | undefined;

  private readonly maxFrame: number;
  private readonly hostQueueLimit: number;
  private readonly config = new Uint8Array(VIRTIO_NET_CONFIG_SIZE);
  private context: VirtioDeviceContext | undefined;
  private broken = false;
  private headerSize = 12;
  private mergeable = false;
  /** Frames from the backend waiting for receive buffers (each already length-checked). */
  private rxQueue: Uint8Array[] = [];
  /** MRG_RXBUF: buffers taken for the frame at the head of rxQueue while waiting for more. */
  private rxHeld: DescriptorChain[] = [];
  private rxHeldBytes = 0;
  private rxNotifications = true;
  private paused = false;
  /** quiesce()d: nothing is taken from the queues until unquiesce(); host frames are held. */
  private quiesced = false;
  private readonly rxLimiter: RateLimiter;
  private readonly txLimiter: RateLimiter;

  constructor(options: VirtioNetOptions) {
    const mtu = options.mtu ?? 1500;
    if (!Number.isInteger(mtu) || mtu < VIRTIO_NET_MIN_MTU || mtu > VIRTIO_NET_MAX_MTU) {
      throw new RangeError(`virtio-net: mtu must be an integer from ${VIRTIO_NET_MIN_MTU} to ${VIRTIO_NET_MAX_MTU}, not ${mtu}`);
    }
    const problem = macProblem(options.mac);
    if (problem) throw new RangeError(`virtio-net: ${problem}`);
    const queueSize = options.queueSize ?? 256;
    if (!Number.isInteger(queueSize) || queueSize < 1 || queueSize > 32768 || (queueSize & (queueSize - 1)) !== 0) {
      throw new RangeError(`virtio-net: queue size must be a power of two from 1 to 32768, not ${queueSize}`);
    }
    const hostQueue = options.hostQueueFrames ?? 256;
    if (!Number.isInteger(hostQueue) || hostQueue < 1) throw new RangeError(`virtio-net: bad hostQueueFrames ${hostQueue}`);

    this.backend = options.backend;
    const clock = options.clock ?? portableClock();
    this.rxLimiter = new RateLimiter(clock, options.rxRateLimiter ?? {});
    this.txLimiter = new RateLimiter(clock, options.txRateLimiter ?? {});
    this.mac = Uint8Array.from(options.mac);
    this.mtu = mtu;
    this.name = options.name ?? "virtio-net0";
    this.queueSizes = [queueSize, queueSize];
    this.maxFrame = maxFrameLength(mtu);
    this.hostQueueLimit = hostQueue;
    let features = featureBit(VIRTIO_NET_F_MAC) | featureBit(VIRTIO_NET_F_MTU) | featureBit(VIRTIO_NET_F_STATUS);
    if (options.mergeableRxBuffers ?? true) features |= featureBit(VIRTIO_NET_F_MRG_RXBUF);
    this.deviceFeatures = features;
    this.counters = {
      txFrames: 0,
      txBytes: 0,
      rxFrames: 0,
      rxBytes: 0,
      txDrops: newDrops(),
      rxDrops: newDrops(),
      rxBuffersUsed: 0,
      rxMergedPackets: 0,
      rxQueued: 0,
      rxQueuedPeak: 0,
      rxPauses: 0,
      needsReset: 0,
      configWritesIgnored: 0,
    };

    // 5.1.4 struct virtio_net_config (little-endian).
    this.config.set(this.mac, VIRTIO_NET_CONFIG_MAC);
    this.setLe16(VIRTIO_NET_CONFIG_STATUS, VIRTIO_NET_S_LINK_UP);
    this.setLe16(VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS, 1);
    this.setLe16(VIRTIO_NET_CONFIG_MTU, mtu);

    this.backend.onReceive((frame) => this.receive(frame));
    // A backend may be handed over from an earlier device (a machine rebuilt after a guest reboot)
    // that left it paused.
    this.backend.resumeReceive?.();
  }

  /** Whether config-space status has VIRTIO_NET_S_LINK_UP. */
  get linkUp(): boolean {
    return (this.config[VIRTIO_NET_CONFIG_STATUS] & VIRTIO_NET_S_LINK_UP) !== 0;
  }

  /**
   * Sets or clears VIRTIO_NET_S_LINK_UP in config-space status (VIRTIO_NET_F_STATUS, 5.1.4) and,
   * when it changed on a live device, raises a configuration-change notification (4.2.2). Linux's
   * virtnet_config_changed_work() then turns the carrier off and stops its transmit queues, so a
   * down link normally sees no transmit buffers; any that still come are consumed and dropped
   * (counted in txDrops.linkDown), as a NIC without link drops them. Frames from the backend are
   * dropped too (rxDrops.linkDown): there is no wire. Up again: frames flow at once.
   */
  setLinkUp(up: boolean): void {
    if (up === this.linkUp) return;
    const status = this.config[VIRTIO_NET_CONFIG_STATUS] & ~VIRTIO_NET_S_LINK_UP;
    this.setLe16(VIRTIO_NET_CONFIG_STATUS, status | (up ? VIRTIO_NET_S_LINK_UP : 0));
    if (!up) {
      this.counters.rxDrops.linkDown += this.rxQueue.length;
      this.rxQueue = [];
      this.noteQueue();
    }
    if (this.context && !this.broken) this.context.notifyConfigChange();
  }

  // ---- rate limiting (Firecracker PATCH /network-interfaces/{id}) -------------------------------
  get rxRateLimiter(): RateLimiterConfig {
    return this.rxLimiter.config;
  }
  get txRateLimiter(): RateLimiterConfig {
    return this.txLimiter.config;
  }
  /** Frames refused for lack of tokens and retry timers, per direction. */
  get rateLimiterCounters(): { rx: { throttled: number; timers: number }; tx: { throttled: number; timers: number } } {
    return { rx: { ...this.rxLimiter.counters }, tx: { ...this.txLimiter.counters } };
  }
  /** Changes the limits at run time; a direction or bucket not given stays (rate-limiter.ts). */
  updateRateLimiter(update: { rx?: RateLimiterConfig; tx?: RateLimiterConfig }): void {
    if (update.rx) this.rxLimiter.update(update.rx);
    if (update.tx) this.txLimiter.update(update.tx);
  }

  // ---- pause and snapshot -----------------------------------------------------------------------
  /**
   * Stops using the queues: MRG_RXBUF buffers taken for a frame are given back to the ring
   * (nothing was written into them), the rate limiters' timers stop, and frames from the backend
   * are held in the host-side queue (bounded; overflow counted in rxDrops.queueFull) with the
   * backend asked to pause, until unquiesce() delivers them.
   */
  async quiesce(): Promise<void> {
    if (this.quiesced) return;
    this.quiesced = true;
    this.rxLimiter.cancel();
    this.txLimiter.cancel();
    this.guarded(() => this.giveBackHeld());
  }

  unquiesce(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    if (!this.context || this.broken) return;
    this.guarded(() => this.transmit());
    this.guarded(() => this.deliver());
  }

  /** Receive buffers held for the frame at the head of rxQueue go back to the ring, newest first. */
  private giveBackHeld(): void {
    const queue = this.context?.queues[RECEIVEQ1];
    const held = this.rxHeld;
    this.rxHeld = [];
    this.rxHeldBytes = 0;
    if (!queue || this.broken) return;
    for (let i = held.length - 1; i >= 0; i--) queue.unpop(held[i]);
  }

  saveState(): VirtioNetState {
    if (this.rxHeld.length > 0) throw new Error(`${this.name}: receive buffers are held; quiesce() before saveState()`);
    return {
      version: 1,
      mac: bytesToHex(this.mac),
      linkUp: this.linkUp,
      counters: structuredClone(this.counters),
      rxLimiter: this.rxLimiter.saveState(),
      txLimiter: this.txLimiter.saveState(),
    };
  }

  /** Onto a freshly constructed device with the same MAC; the transport then re-activates it. */
  restoreState(value: unknown): void {
    const where = this.name;
    const r = stateObject(value, where, [1]);
    const mac = stateString(r.mac, `${where}.mac`, /^[0-9a-f]{12}$/);
    if (mac !== bytesToHex(this.mac)) throw new SnapshotError(`${where}.mac: ${mac} is not this device's MAC ${bytesToHex(this.mac)}`);
    const linkUp = stateBool(r.linkUp, `${where}.linkUp`);
    const c = stateRecord(r.counters, `${where}.counters`);
    const counters = structuredClone(this.counters);
    for (const key of Object.keys(counters) as (keyof VirtioNetCounters)[]) {
      if (key === "txDrops" || key === "rxDrops") {
        const d = stateRecord(c[key], `${where}.counters.${key}`);
        const drops = newDrops();
        for (const k of Object.keys(drops) as (keyof VirtioNetDrops)[]) drops[k] = stateInt(d[k], `${where}.counters.${key}.${k}`);
        counters[key] = drops;
      } else {
        counters[key] = stateInt(c[key], `${where}.counters.${key}`);
      }
    }
    const applyRx = this.rxLimiter.prepareRestore(r.rxLimiter, `${where}.rxLimiter`);
    const applyTx = this.txLimiter.prepareRestore(r.txLimiter, `${where}.txLimiter`);
    applyRx();
    applyTx();
    counters.rxQueued = 0;
    Object.assign(this.counters, counters);
    const status = this.config[VIRTIO_NET_CONFIG_STATUS] & ~VIRTIO_NET_S_LINK_UP;
    this.setLe16(VIRTIO_NET_CONFIG_STATUS, status | (linkUp ? VIRTIO_NET_S_LINK_UP : 0));
  }

  readConfig(offset: number, size: number): number | undefined {
    if ((size !== 1 && size !== 2 && size !== 4) || !Number.isInteger(offset) || offset < 0 || offset + size > VIRTIO_NET_CONFIG_SIZE) {
      return undefined;
    }
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + this.config[offset + i];
    return value;
  }

  writeConfig(offset: number, size: number, _value: number): boolean {
    if ((size !== 1 && size !== 2 && size !== 4) || !Number.isInteger(offset) || offset < 0 || offset + size > VIRTIO_NET_CONFIG_SIZE) {
      return false;
    }
    // 5.1.4.2: the driver MUST NOT write to any of the device configuration fields (only legacy
    // drivers wrote mac). Ignored rather than faulted.
    this.counters.configWritesIgnored++;
    return true;
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
    this.broken = false;
    this.headerSize = netHeaderSize(context.features);
    this.mergeable = (context.features & featureBit(VIRTIO_NET_F_MRG_RXBUF)) !== 0n;
    this.rxQueue = [];
    this.rxHeld = [];
    this.rxHeldBytes = 0;
    if (context.queues.length < 2) {
      this.fail(`the transport set up ${context.queues.length} virtqueues; virtio-net needs receiveq1 and transmitq1`);
      return;
    }
    // Receive-queue kicks are only needed while frames wait for buffers (see popReceiveBuffer).
    this.rxNotifications = true;
    this.setRxNotifications(false);
  }

  queueNotify(queueIndex: number): void {
    if (!this.context || this.broken || this.quiesced) return;
    if (queueIndex === TRANSMITQ1) this.guarded(() => this.transmit());
    else if (queueIndex === RECEIVEQ1) this.guarded(() => this.deliver());
  }

  reset(): void {
    this.rxLimiter.cancel();
    this.txLimiter.cancel();
    this.counters.rxDrops.reset += this.rxQueue.length;
    this.context = undefined;
    this.broken = false;
    this.rxQueue = [];
    this.rxHeld = [];
    this.rxHeldBytes = 0;
    this.rxNotifications = true;
    this.counters.rxQueued = 0;
    this.updatePause();
  }

  // ---- transmit (5.1.6.2) ----

  private transmit(): void {
    const context = this.context;
    if (!context || this.broken || this.quiesced) return;
    const queue = context.queues[TRANSMITQ1];
    let used = 0;
    // The ring holds at most `size` outstanding chains and the driver cannot add any while this
    // runs, so `size` pops drain it; the bound also keeps a broken queue from spinning.
    for (let i = 0; i < queue.size; i++) {
      const chain = this.pop(queue);
      if (chain === null) break; // failed
      if (chain === undefined) break;
      if (this.txLimiter.active && this.linkUp) {
        const bytes = Math.max(0, chain.readableLength - this.headerSize);
        if (!this.txLimiter.tryConsume(bytes, 1)) {
          // Nothing was read or written: give the chain back and take it again once tokens refill.
          queue.unpop(chain);
          this.txLimiter.retryWhenReady(bytes, 1, () => this.guarded(() => this.transmit()));
          break;
        }
      }
      if (!this.transmitChain(context.memory, chain)) break; // failed
      // Nothing is written into transmit buffers: used length 0.
      queue.pushUsed(chain, 0);
      used++;
    }
    if (used > 0) context.notifyUsed(TRANSMITQ1);
  }

  /** Sends one chain's frame; false when the chain is malformed (the device then needs reset). */
  private transmitChain(memory: GuestMemory, chain: DescriptorChain): boolean {
    const drops = this.counters.txDrops;
    if (chain.writable.length > 0) {
      return this.fail("transmitq chain has device-writable buffers (5.1.6.2: header and packet are device-readable)");
    }
    const hdrSize = this.headerSize;
    if (chain.readableLength < hdrSize) {
      return this.fail(`transmitq chain of ${chain.readableLength} bytes is shorter than struct virtio_net_hdr (${hdrSize})`);
    }
    const headerBytes = readExactly(memory, chain.readable, 0, hdrSize);
    const header = headerBytes && parseNetHeader(headerBytes, 0, hdrSize);
    if (!header) return this.fail("transmitq buffer outside guest RAM");
    const frameLength = chain.readableLength - hdrSize;
    const lengthProblem = checkFrameLength(frameLength, this.mtu);
    if (lengthProblem) {
      drops[lengthProblem]++;
      return true;
    }
    if (checkTransmitHeader(header)) {
      drops.offload++;
      return true;
    }
    if (!this.linkUp) {
      drops.linkDown++;
      return true;
    }
    const frame = readExactly(memory, chain.readable, hdrSize, frameLength);
    if (!frame) return this.fail("transmitq buffer outside guest RAM");
    this.counters.txFrames++;
    this.counters.txBytes += frameLength;
    this.backend.send(frame);
    return true;
  }

  // ---- receive (5.1.6.3, 5.1.6.4) ----

  /** A frame from the backend. */
  private receive(frame: Uint8Array): void {
    const drops = this.counters.rxDrops;
    if (!this.context || this.broken) {
      drops.notReady++;
      return;
    }
    if (!this.linkUp) {
      drops.linkDown++;
      return;
    }
    const lengthProblem = checkFrameLength(frame.length, this.mtu);
    if (lengthProblem) {
      // 5.1.4.1: the device MUST NOT pass received packets that exceed mtu (plus the Ethernet header).
      drops[lengthProblem]++;
      return;
    }
    this.rxQueue.push(frame);
    this.guarded(() => this.deliver());
    if (this.rxQueue.length > this.hostQueueLimit) {
      // Still no buffer and the host-side queue is full: drop the newest frame (the one just
      // added; it is never the head, whose buffers MRG_RXBUF may be collecting, as the limit is >= 1).
      this.rxQueue.pop();
      drops.queueFull++;
    }
    this.noteQueue();
  }

  /** Moves queued frames into receive buffers while there are buffers. */
  private deliver(): void {
    const context = this.context;
    if (!context || this.broken || this.quiesced) return;
    const queue = context.queues[RECEIVEQ1];
    let used = 0;
    while (this.rxQueue.length > 0) {
      const frame = this.rxQueue[0];
      if (this.rxLimiter.active && !this.rxLimiter.allows(frame.length, 1)) {
        // The frame waits in the host-side queue (the backend is paused meanwhile).
        this.rxLimiter.retryWhenReady(frame.length, 1, () => this.guarded(() => this.deliver()));
        break;
      }
      const result = this.place(queue, context.memory, frame);
      if (result === "failed") return;
      if (result === "wait") break;
      this.rxLimiter.take(frame.length, 1);
      this.rxQueue.shift();
      used++;
    }
    if (used > 0) context.notifyUsed(RECEIVEQ1);
    if (this.rxQueue.length === 0) this.setRxNotifications(false);
    this.noteQueue();
  }

  /** Puts one frame into receive buffers: done (delivered or dropped), wait (no buffers), failed. */
  private place(queue: Virtqueue, memory: GuestMemory, frame: Uint8Array): PlaceResult {
    const hdrSize = this.headerSize;
    const total = hdrSize + frame.length;
    if (!this.mergeable) {
      // 5.1.6.3.2: without MRG_RXBUF the packet goes into a single buffer, num_buffers = 1.
      const chain = this.popReceiveBuffer(queue);
      if (chain === null) return "failed";
      if (chain === undefined) return "wait";
      if (chain.writableLength < total) {
        // 5.1.6.3.1 only says the driver SHOULD supply buffers of 1526 bytes; a smaller buffer is
        // returned empty (Linux counts a 0-length packet as a length error) and the frame dropped.
        this.counters.rxDrops.bufferTooSmall++;
        queue.pushUsed(chain, 0);
        this.counters.rxBuffersUsed++;
        return "done";
      }
      const data = new Uint8Array(total);
      data.set(buildReceiveHeader(1, hdrSize), 0);
      data.set(frame, hdrSize);
      if (writeToChain(memory, chain, 0, data) !== total) return this.failPlace("receiveq buffer outside guest RAM");
      queue.pushUsed(chain, total);
      this.counters.rxBuffersUsed++;
      this.countDelivered(frame.length);
      return "done";
    }

    // MRG_RXBUF (5.1.6.4.1): take buffers until the packet fits; all but the last are filled.
    while (this.rxHeldBytes < total) {
      if (this.rxHeld.length > 0 && this.rxHeld.length >= queue.size) {
        // The driver cannot offer more buffers than the ring holds: give them back empty.
        for (const c of this.rxHeld) queue.pushUsed(c, 0);
        this.counters.rxBuffersUsed += this.rxHeld.length;
        this.rxHeld = [];
        this.rxHeldBytes = 0;
        this.counters.rxDrops.bufferTooSmall++;
        return "done";
      }
      const chain = this.popReceiveBuffer(queue);
      if (chain === null) return "failed";
      if (chain === undefined) return "wait";
      this.rxHeld.push(chain);
      this.rxHeldBytes += chain.writableLength;
    }
    const held = this.rxHeld;
    const plan = planReceive(
      held.map((c) => c.writableLength),
      total,
    )!;
    // planReceive uses only as many buffers as needed; rxHeld never holds more than that, since
    // buffers are taken one at a time until the packet fits.
    const data = new Uint8Array(total);
    data.set(buildReceiveHeader(plan.length, hdrSize), 0);
    data.set(frame, hdrSize);
    let offset = 0;
    for (let i = 0; i < plan.length; i++) {
      if (writeToChain(memory, held[i], 0, data.subarray(offset, offset + plan[i])) !== plan[i]) {
        return this.failPlace("receiveq buffer outside guest RAM");
      }
      offset += plan[i];
    }
    // 5.1.6.4.1: all buffers of one packet are used together.
    for (let i = 0; i < plan.length; i++) queue.pushUsed(held[i], plan[i]);
    this.counters.rxBuffersUsed += plan.length;
    if (plan.length > 1) this.counters.rxMergedPackets++;
    this.rxHeld = [];
    this.rxHeldBytes = 0;
    this.countDelivered(frame.length);
    return "done";
  }

  /**
   * The next receive buffer, checked (5.1.6.3.1: device-writable, at least struct virtio_net_hdr
   * long); undefined when the driver has none available (notifications are then enabled so the
   * driver kicks when it adds some), null when the device failed.
   */
  private popReceiveBuffer(queue: Virtqueue): DescriptorChain | undefined | null {
    let chain = this.pop(queue);
    if (chain === undefined && !this.rxNotifications) {
      // Ask for a kick, then look again: the driver may have added buffers before it saw the
      // request (the usual enable-then-recheck pattern, 2.7.10 / 2.7.7).
      this.setRxNotifications(true);
      chain = this.pop(queue);
    }
    if (chain === null || chain === undefined) return chain;
    if (chain.readable.length > 0) {
      this.failPlace("receiveq chain has device-readable buffers (receive buffers are device-writable)");
      return null;
    }
    if (chain.writableLength < this.headerSize) {
      this.failPlace(`receiveq buffer of ${chain.writableLength} bytes is smaller than struct virtio_net_hdr (${this.headerSize}), 5.1.6.3.1`);
      return null;
    }
    return chain;
  }

  private countDelivered(length: number): void {
    this.counters.rxFrames++;
    this.counters.rxBytes += length;
  }

  private failPlace(reason: string): PlaceResult {
    this.fail(reason);
    return "failed";
  }

  // ---- common ----

  /**
   * Runs queue work, turning a VirtqueueError (e.g. from pushUsed) into DEVICE_NEEDS_RESET: the
   * receive path runs from backend callbacks, where an exception would take the process down.
   */
  private guarded(work: () => void): void {
    try {
      work();
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      this.fail(e.message);
    }
  }

  /** queue.pop(), with a malformed ring turned into needsReset (null). */
  private pop(queue: Virtqueue): DescriptorChain | undefined | null {
    try {
      return queue.pop();
    } catch (e) {
      if (e instanceof VirtqueueError) {
        this.fail(`virtqueue ${queue.index}: ${e.message}`);
        return null;
      }
      throw e;
    }
  }

  /** Enters DEVICE_NEEDS_RESET (spec 2.1.2): nothing is processed until the driver resets. */
  private fail(reason: string): false {
    if (!this.broken) {
      this.broken = true;
      this.lastError = reason;
      this.counters.needsReset++;
      this.counters.rxDrops.reset += this.rxQueue.length;
      this.rxQueue = [];
      this.rxHeld = [];
      this.rxHeldBytes = 0;
      this.noteQueue();
      this.context?.needsReset(`${this.name}: ${reason}`);
    }
    return false;
  }

  private setRxNotifications(enabled: boolean): void {
    if (enabled === this.rxNotifications || !this.context || this.broken) return;
    this.rxNotifications = enabled;
    this.context.queues[RECEIVEQ1]?.setNotifications(enabled);
  }

  private noteQueue(): void {
    this.counters.rxQueued = this.rxQueue.length;
    if (this.rxQueue.length > this.counters.rxQueuedPeak) this.counters.rxQueuedPeak = this.rxQueue.length;
    this.updatePause();
  }

  /** Asks the backend to pause while frames wait for buffers, and to resume once they are gone. */
  private updatePause(): void {
    const waiting = this.rxQueue.length > 0;
    if (waiting && !this.paused) {
      this.paused = true;
      this.counters.rxPauses++;
      this.backend.pauseReceive?.();
    } else if (!waiting && this.paused) {
      this.paused = false;
      this.backend.resumeReceive?.();
    }
  }

  private setLe16(offset: number, value: number): void {
    this.config[offset] = value & 0xff;
    this.config[offset + 1] = (value >>> 8) & 0xff;
  }
}
