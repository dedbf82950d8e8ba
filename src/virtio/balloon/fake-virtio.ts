// Test doubles for the virtio core (src/virtio/types.ts): guest RAM, a virtqueue that a test
// fills like a driver would, and the device context. Shared by the balloon and vsock tests.
import { VirtqueueError, type DescriptorChain, type GuestBuffer, type GuestMemory, type Virtqueue, type VirtqueueCounters, type VirtioDeviceContext } from "../types.ts";

export const FAKE_RAM_BASE = 0x8000_0000;

export class FakeMemory implements GuestMemory {
  readonly ram: Uint8Array;
  readonly writtenRanges: [number, number][] = [];
  private next = 0;
  constructor(
    readonly size = 16 << 20,
    readonly base = FAKE_RAM_BASE,
    /** Allocations start here (below it: room for tests that place data by hand). */
    private readonly allocStart = 1 << 20,
  ) {
    this.ram = new Uint8Array(size);
    this.next = allocStart;
  }
  contains(paddr: number, length: number): boolean {
    return Number.isSafeInteger(paddr) && Number.isSafeInteger(length) && length >= 0 && paddr >= this.base && paddr + length <= this.base + this.size;
  }
  view(paddr: number, length: number): Uint8Array | undefined {
    if (!this.contains(paddr, length)) return undefined;
    return this.ram.subarray(paddr - this.base, paddr - this.base + length);
  }
  write(paddr: number, bytes: Uint8Array): boolean {
    if (!this.contains(paddr, bytes.length)) return false;
    this.ram.set(bytes, paddr - this.base);
    this.written(paddr, bytes.length);
    return true;
  }
  written(paddr: number, length: number): void {
    if (this.writtenRanges.length < 100_000) this.writtenRanges.push([paddr, length]);
  }
  read(paddr: number, length: number): Uint8Array {
    const v = this.view(paddr, length);
    if (!v) throw new RangeError(`fake read outside RAM: 0x${paddr.toString(16)}+${length}`);
    return v.slice();
  }
  /** A fresh guest buffer (wraps around: old buffers are eventually reused). */
  alloc(length: number): number {
    const len = Math.max(8, (length + 7) & ~7);
    if (len > this.size - this.allocStart) throw new RangeError(`fake alloc of ${length} bytes is too large`);
    if (this.next + len > this.size) this.next = this.allocStart;
    const addr = this.base + this.next;
    this.next += len;
    return addr;
  }
  /** A device-readable buffer holding `bytes`. */
  out(bytes: Uint8Array): GuestBuffer {
    const addr = this.alloc(bytes.length);
    this.ram.set(bytes, addr - this.base);
    return { addr, len: bytes.length };
  }
  /** A device-writable buffer of `length` bytes (filled with 0xee to spot unwritten bytes). */
  in(length: number): GuestBuffer {
    const addr = this.alloc(length);
    this.ram.fill(0xee, addr - this.base, addr - this.base + length);
    return { addr, len: length };
  }
}

export interface UsedEntry {
  chain: DescriptorChain;
  written: number;
}

export class FakeQueue implements Virtqueue {
  readonly counters: VirtqueueCounters = { popped: 0, used: 0, notificationsReceived: 0, interruptsSent: 0, interruptsSuppressed: 0, rejected: 0 };
  readonly used: UsedEntry[] = [];
  notificationsEnabled = true;
  /** The next pop() throws this VirtqueueError (a malformed ring). */
  nextError: string | undefined;
  private readonly avail: DescriptorChain[] = [];
  private nextId = 0;
  constructor(
    readonly index: number,
    readonly size = 256,
  ) {}
  /** Makes a chain available, as a driver would. */
  add(readable: readonly GuestBuffer[], writable: readonly GuestBuffer[] = []): DescriptorChain {
    const chain: DescriptorChain = {
      id: this.nextId++ % this.size,
      readable,
      writable,
      readableLength: readable.reduce((a, b) => a + b.len, 0),
      writableLength: writable.reduce((a, b) => a + b.len, 0),
      descriptorCount: readable.length + writable.length,
    };
    this.avail.push(chain);
    return chain;
  }
  get available(): number {
    return this.avail.length;
  }
  pop(): DescriptorChain | undefined {
    if (this.nextError !== undefined) {
      const msg = this.nextError;
      this.nextError = undefined;
      this.counters.rejected++;
      throw new VirtqueueError(msg);
    }
    const chain = this.avail.shift();
    if (chain) this.counters.popped++;
    return chain;
  }
  pushUsed(chain: DescriptorChain, written: number): void {
    if (written < 0 || written > chain.writableLength) throw new Error(`used length ${written} exceeds writable ${chain.writableLength}`);
    this.counters.used++;
    this.used.push({ chain, written });
  }
  shouldInterrupt(): boolean {
    this.counters.interruptsSent++;
    return true;
  }
  setNotifications(enabled: boolean): void {
    this.notificationsEnabled = enabled;
  }
  /** Removes and returns the used entries so far. */
  takeUsed(): UsedEntry[] {
    return this.used.splice(0, this.used.length);
  }
}

export class FakeContext implements VirtioDeviceContext {
  readonly queues: FakeQueue[];
  readonly notified: number[] = [];
  configChanges = 0;
  readonly resetReasons: string[] = [];
  constructor(
    readonly memory: FakeMemory,
    queueCount: number,
    readonly features: bigint,
    queueSize = 256,
  ) {
    this.queues = Array.from({ length: queueCount }, (_, i) => new FakeQueue(i, queueSize));
  }
  notifyUsed(queueIndex: number): void {
    this.notified.push(queueIndex);
  }
  notifyConfigChange(): void {
    this.configChanges++;
  }
  needsReset(reason: string): void {
    this.resetReasons.push(reason);
  }
}

/** A manual clock for the injectable `schedule` option. */
export class FakeClock {
  now = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 0;
  readonly schedule = (ms: number, fn: () => void): (() => void) => {
    const id = this.nextId++;
    this.timers.push({ at: this.now + ms, fn, id });
    return () => {
      this.timers = this.timers.filter((t) => t.id !== id);
    };
  };
  get pending(): number {
    return this.timers.length;
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const t = this.timers[0];
      if (!t || t.at > end) break;
      this.timers.shift();
      this.now = t.at;
      t.fn();
    }
    this.now = end;
  }
}
