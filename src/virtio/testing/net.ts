// Test support for virtio-net: a backend that records what the device sends, and a small "driver"
// that speaks virtio-net to a device through the common FakeContext (fake-queue.ts). Used by the
// tests next to the device and by the host backends' integration tests.
import type { DescriptorChain, GuestBuffer, VirtioDevice } from "../types.ts";
import type { NetBackend } from "../net/backend.ts";
import { newNetBackendCounters } from "../net/backend.ts";
import { RECEIVEQ1, TRANSMITQ1, VIRTIO_F_VERSION_1, buildNetHeader, featureBit, netHeaderSize, parseNetHeader, type VirtioNetHeader } from "../net/header.ts";
import { FakeGuestMemory } from "../../testing/fakes.ts";
import { FakeContext, type FakeQueue } from "./fake-queue.ts";

/** A backend that records what the device sends and lets the test inject frames. */
export class FakeBackend implements NetBackend {
  readonly sent: Uint8Array[] = [];
  readonly counters = newNetBackendCounters();
  paused = false;
  pauses = 0;
  resumes = 0;
  closed = false;
  readonly description = "fake";
  private handler: ((frame: Uint8Array) => void) | undefined;
  send(frame: Uint8Array): void {
    this.sent.push(frame);
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
  }
  onReceive(handler: (frame: Uint8Array) => void): void {
    this.handler = handler;
  }
  pauseReceive(): void {
    this.paused = true;
    this.pauses++;
  }
  resumeReceive(): void {
    if (this.paused) this.resumes++;
    this.paused = false;
  }
  /** A frame arriving from the host. */
  inject(frame: Uint8Array): void {
    this.counters.framesReceived++;
    this.handler?.(frame);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A received packet as the driver reassembles it from the used ring. */
export interface ReceivedPacket {
  header: VirtioNetHeader;
  frame: Uint8Array;
  buffers: number;
}

/**
 * Plays the driver side of virtio-net against a device through a FakeContext: builds transmit
 * chains, posts receive buffers and reassembles received packets (num_buffers, 5.1.6.4).
 */
export class FakeNetDriver {
  readonly memory: FakeGuestMemory;
  readonly context: FakeContext;
  readonly headerSize: number;
  private rxConsumed = 0;
  private txConsumed = 0;
  constructor(
    readonly device: VirtioDevice,
    options: { features?: bigint; memory?: FakeGuestMemory } = {},
  ) {
    this.memory = options.memory ?? new FakeGuestMemory();
    const features = options.features ?? device.deviceFeatures | featureBit(VIRTIO_F_VERSION_1);
    this.context = new FakeContext(this.memory, features, device.queueSizes);
    this.headerSize = netHeaderSize(features);
  }
  get rxq(): FakeQueue {
    return this.context.queues[RECEIVEQ1];
  }
  get txq(): FakeQueue {
    return this.context.queues[TRANSMITQ1];
  }
  activate(): this {
    this.device.activate(this.context);
    return this;
  }
  /**
   * Queues a frame for transmission: header then frame, split into descriptors of at most
   * `split` bytes (default: header and frame in one descriptor), then kicks unless told not to.
   */
  transmit(frame: Uint8Array, options: { header?: Partial<VirtioNetHeader>; split?: number; kick?: boolean } = {}): DescriptorChain {
    const bytes = new Uint8Array(this.headerSize + frame.length);
    bytes.set(buildNetHeader(options.header ?? {}, this.headerSize), 0);
    bytes.set(frame, this.headerSize);
    const split = Math.max(1, options.split ?? bytes.length);
    const readable: GuestBuffer[] = [];
    for (let off = 0; off < bytes.length; off += split) {
      const piece = bytes.subarray(off, Math.min(bytes.length, off + split));
      const addr = this.memory.alloc(piece.length);
      this.memory.write(addr, piece);
      readable.push({ addr, len: piece.length });
    }
    const chain = this.txq.add(readable, []);
    if (options.kick ?? true) this.device.queueNotify(TRANSMITQ1);
    return chain;
  }
  /** Posts `count` receive buffers of `size` bytes (each split into descriptors of `split` bytes). */
  postReceiveBuffers(count: number, size = 1526, options: { split?: number; kick?: boolean } = {}): void {
    for (let i = 0; i < count; i++) {
      const split = options.split ?? size;
      const writable: GuestBuffer[] = [];
      for (let off = 0; off < size; off += split) {
        const len = Math.min(split, size - off);
        writable.push({ addr: this.memory.alloc(len), len });
      }
      this.rxq.add([], writable);
    }
    if (options.kick ?? true) this.device.queueNotify(RECEIVEQ1);
  }
  /** Transmit chains the device returned since the last call. */
  takeTransmitted(): { chain: DescriptorChain; written: number }[] {
    const out = this.txq.used.slice(this.txConsumed);
    this.txConsumed = this.txq.used.length;
    return out;
  }
  /** Packets the device delivered since the last call (reassembled across merged buffers). */
  takeReceived(): ReceivedPacket[] {
    const out: ReceivedPacket[] = [];
    const used = this.rxq.used;
    while (this.rxConsumed < used.length) {
      const first = used[this.rxConsumed];
      const firstBytes = this.readChain(first.chain, first.written);
      const header = parseNetHeader(firstBytes, 0, this.headerSize);
      if (!header) {
        // A buffer returned empty (a dropped packet): skip it as Linux does.
        this.rxConsumed++;
        continue;
      }
      const count = this.headerSize === 12 ? Math.max(1, header.numBuffers) : 1;
      const parts = [firstBytes.subarray(this.headerSize)];
      for (let i = 1; i < count; i++) {
        const next = used[this.rxConsumed + i];
        if (!next) throw new Error("num_buffers exceeds the used buffers");
        parts.push(this.readChain(next.chain, next.written));
      }
      this.rxConsumed += count;
      const frame = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let off = 0;
      for (const p of parts) {
        frame.set(p, off);
        off += p.length;
      }
      out.push({ header, frame, buffers: count });
    }
    return out;
  }
  private readChain(chain: DescriptorChain, written: number): Uint8Array {
    const out = new Uint8Array(written);
    let off = 0;
    for (const b of chain.writable) {
      if (off >= written) break;
      const take = Math.min(b.len, written - off);
      out.set(this.memory.read(b.addr, take), off);
      off += take;
    }
    return out;
  }
}

/** An Ethernet frame: dst, src, EtherType, then payload bytes i & 0xff (or a fill function). */
export function makeFrame(length: number, options: { dst?: Uint8Array; src?: Uint8Array; etherType?: number; seed?: number } = {}): Uint8Array {
  const f = new Uint8Array(length);
  const dst = options.dst ?? Uint8Array.of(0x52, 0x54, 0, 0, 0, 2);
  const src = options.src ?? Uint8Array.of(0x52, 0x54, 0, 0, 0, 1);
  f.set(dst.subarray(0, Math.min(6, length)), 0);
  if (length > 6) f.set(src.subarray(0, Math.min(6, length - 6)), 6);
  const et = options.etherType ?? 0x88b5; // IEEE 802 local experimental EtherType
  if (length > 12) f[12] = et >> 8;
  if (length > 13) f[13] = et & 0xff;
  const seed = options.seed ?? 0;
  for (let i = 14; i < length; i++) f[i] = (i + seed * 7) & 0xff;
  return f;
}
