// Test doubles for the virtio-blk tests: guest RAM, a virtqueue fed with prepared chains, a device
// context, and a small "driver" that lays requests out in guest memory. Only the interfaces of
// src/virtio/types.ts are used, so the tests do not depend on the real queue implementations.

import type {
  DescriptorChain,
  GuestBuffer,
  GuestMemory,
  Virtqueue,
  VirtqueueCounters,
  VirtioDeviceContext,
} from "../types.ts";
import { VirtqueueError } from "../types.ts";
import { VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE, VIRTIO_BLK_REQ_HEADER_SIZE } from "./spec.ts";

export const RAM_BASE = 0x8000_0000;

export class FakeMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  /** Every range reported through written() or write(). */
  readonly writes: GuestBuffer[] = [];

  constructor(
    size: number,
    readonly base = RAM_BASE,
  ) {
    this.bytes = new Uint8Array(size);
  }

  contains(paddr: number, length: number): boolean {
    return (
      Number.isSafeInteger(paddr) &&
      Number.isSafeInteger(length) &&
      length >= 0 &&
      paddr >= this.base &&
      paddr + length <= this.base + this.bytes.length
    );
  }

  view(paddr: number, length: number): Uint8Array | undefined {
    if (!this.contains(paddr, length)) return undefined;
    return this.bytes.subarray(paddr - this.base, paddr - this.base + length);
  }

  write(paddr: number, bytes: Uint8Array): boolean {
    const v = this.view(paddr, bytes.length);
    if (!v) return false;
    v.set(bytes);
    this.writes.push({ addr: paddr, len: bytes.length });
    return true;
  }

  written(paddr: number, length: number): void {
    this.writes.push({ addr: paddr, len: length });
  }

  read(paddr: number, length: number): Uint8Array {
    const v = this.view(paddr, length);
    if (!v) throw new RangeError(`read outside fake RAM: 0x${paddr.toString(16)}+${length}`);
    return v.slice();
  }
}

export function makeChain(id: number, readable: readonly GuestBuffer[], writable: readonly GuestBuffer[]): DescriptorChain {
  return {
    id,
    readable,
    writable,
    readableLength: readable.reduce((s, b) => s + b.len, 0),
    writableLength: writable.reduce((s, b) => s + b.len, 0),
    descriptorCount: readable.length + writable.length,
  };
}

/** A queue that hands out prepared chains (or throws prepared errors) and records used entries. */
export class FakeQueue implements Virtqueue {
  readonly index = 0;
  readonly counters: VirtqueueCounters = {
    popped: 0,
    used: 0,
    notificationsReceived: 0,
    interruptsSent: 0,
    interruptsSuppressed: 0,
    rejected: 0,
  };
  readonly pending: (DescriptorChain | VirtqueueError)[] = [];
  readonly used: { chain: DescriptorChain; written: number }[] = [];

  constructor(readonly size = 256) {}

  add(...items: (DescriptorChain | VirtqueueError)[]): void {
    this.pending.push(...items);
  }

  pop(): DescriptorChain | undefined {
    const next = this.pending.shift();
    if (next === undefined) return undefined;
    if (next instanceof VirtqueueError) {
      this.counters.rejected++;
      throw next;
    }
    this.counters.popped++;
    return next;
  }

  pushUsed(chain: DescriptorChain, written: number): void {
    this.counters.used++;
    this.used.push({ chain, written });
  }

  shouldInterrupt(): boolean {
    this.counters.interruptsSent++;
    return true;
  }

  setNotifications(_enabled: boolean): void {}
}

export class FakeContext implements VirtioDeviceContext {
  readonly queues: FakeQueue[];
  notified = 0;
  configChanges = 0;
  readonly resetReasons: string[] = [];

  constructor(
    readonly memory: FakeMemory,
    readonly features: bigint,
    queue = new FakeQueue(),
  ) {
    this.queues = [queue];
  }

  get queue(): FakeQueue {
    return this.queues[0];
  }

  notifyUsed(_queueIndex: number): void {
    this.notified++;
  }

  notifyConfigChange(): void {
    this.configChanges++;
  }

  needsReset(reason: string): void {
    this.resetReasons.push(reason);
  }
}

export interface RequestSpec {
  type: number;
  sector?: number | bigint;
  reserved?: number;
  /** Device-readable data after the header. */
  out?: Uint8Array;
  /** Device-writable data bytes before the status byte. */
  inLen?: number;
  /** Whether the status byte exists (default true). */
  status?: boolean;
  /** Split every part into buffers of at most this many bytes (default: one buffer per part). */
  split?: number;
  /** Put the status byte in the same buffer as the data (default false). */
  statusWithData?: boolean;
}

/** Lays requests out in fake guest RAM as a driver would. */
export class FakeDriver {
  private next: number;
  private nextId = 0;

  constructor(readonly memory: FakeMemory) {
    this.next = memory.base + 0x1000;
  }

  alloc(len: number): number {
    const addr = this.next;
    this.next += Math.max(len, 1) + 16; // a gap between buffers catches overruns
    if (this.next > this.memory.base + this.memory.bytes.length) throw new RangeError("fake RAM exhausted");
    return addr;
  }

  /** Buffers holding `len` bytes at consecutive (gapped) addresses, at most `split` bytes each. */
  private buffers(len: number, split: number | undefined): GuestBuffer[] {
    if (len === 0) return [];
    const out: GuestBuffer[] = [];
    const piece = split ?? len;
    for (let done = 0; done < len; ) {
      const n = Math.min(piece, len - done);
      out.push({ addr: this.alloc(n), len: n });
      done += n;
    }
    return out;
  }

  private fill(buffers: GuestBuffer[], bytes: Uint8Array): void {
    let done = 0;
    for (const b of buffers) {
      this.memory.view(b.addr, b.len)!.set(bytes.subarray(done, done + b.len));
      done += b.len;
    }
  }

  request(spec: RequestSpec): { chain: DescriptorChain; status: () => number; data: () => Uint8Array } {
    const out = spec.out ?? new Uint8Array(0);
    const header = new Uint8Array(VIRTIO_BLK_REQ_HEADER_SIZE);
    const hv = new DataView(header.buffer);
    hv.setUint32(0, spec.type >>> 0, true);
    hv.setUint32(4, spec.reserved ?? 0, true);
    hv.setBigUint64(8, BigInt.asUintN(64, BigInt(spec.sector ?? 0)), true);
    const readableBytes = new Uint8Array(header.length + out.length);
    readableBytes.set(header);
    readableBytes.set(out, header.length);
    const readable = this.buffers(readableBytes.length, spec.split);
    this.fill(readable, readableBytes);

    const inLen = spec.inLen ?? 0;
    const hasStatus = spec.status ?? true;
    let writable: GuestBuffer[];
    let statusAddr = -1;
    if (spec.statusWithData && hasStatus) {
      writable = this.buffers(inLen + 1, spec.split);
    } else {
      writable = this.buffers(inLen, spec.split);
      if (hasStatus) writable.push({ addr: this.alloc(1), len: 1 });
    }
    if (hasStatus) {
      const last = writable[writable.length - 1];
      statusAddr = last.addr + last.len - 1;
      this.memory.view(statusAddr, 1)![0] = 0xee; // "not written yet"
    }
    const data = writable.slice();
    const chain = makeChain(this.nextId++, readable, writable);
    return {
      chain,
      status: () => this.memory.view(statusAddr, 1)![0],
      data: () => {
        const bytes = new Uint8Array(inLen);
        let done = 0;
        for (const b of data) {
          const n = Math.min(b.len, inLen - done);
          if (n <= 0) break;
          bytes.set(this.memory.view(b.addr, n)!, done);
          done += n;
        }
        return bytes;
      },
    };
  }
}

/** struct virtio_blk_discard_write_zeroes[] as bytes. */
export function segments(...segs: { sector: number | bigint; numSectors: number; flags?: number }[]): Uint8Array {
  const bytes = new Uint8Array(segs.length * VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE);
  const v = new DataView(bytes.buffer);
  segs.forEach((s, i) => {
    const base = i * VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE;
    v.setBigUint64(base, BigInt.asUintN(64, BigInt(s.sector)), true);
    v.setUint32(base + 8, s.numSectors >>> 0, true);
    v.setUint32(base + 12, (s.flags ?? 0) >>> 0, true);
  });
  return bytes;
}

/** Deterministic PRNG (mulberry32) for the fuzz tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Waits until pending promise callbacks and I/O callbacks have run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
