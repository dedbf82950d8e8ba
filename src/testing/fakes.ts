// Test doubles shared by the tests of every layer: guest RAM, an interrupt line recorder, a
// manual HostClock, a seeded PRNG and a wait for the event loop. Device-specific drivers build
// on these (src/virtio/testing/, src/sbi/testing/). Not part of Parley's runtime.
import type { CancelTimer, HostClock, TimerOptions } from "../platform/clock.ts";
import type { GuestBuffer, GuestMemory } from "../virtio/types.ts";
import { ramGuestMemory } from "../virtio/memory.ts";

export const FAKE_RAM_BASE = 0x8000_0000;

/**
 * Flat guest RAM at `base`, as devices see it: the machine's own bounds checks (ramGuestMemory),
 * every device write recorded, and a bump allocator for test buffers from `allocStart` (below
 * it: room for rings and for data a test places by hand).
 */
export class FakeGuestMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  /** Ranges written through write() or reported through written() (the first 100 000). */
  readonly writes: GuestBuffer[] = [];
  private readonly checked: GuestMemory;
  private readonly dataView: DataView;
  private next: number;

  constructor(
    readonly size = 1 << 20,
    readonly base = FAKE_RAM_BASE,
    /** Offset of the first allocation; allocations wrap around to it. */
    readonly allocStart = 0,
  ) {
    this.bytes = new Uint8Array(size);
    this.dataView = new DataView(this.bytes.buffer);
    this.checked = ramGuestMemory(this.bytes, base, (addr, len) => {
      if (this.writes.length < 100_000) this.writes.push({ addr, len });
    });
    this.next = base + allocStart;
  }

  // ---- GuestMemory ----
  contains(paddr: number, length: number): boolean {
    return this.checked.contains(paddr, length);
  }
  view(paddr: number, length: number): Uint8Array | undefined {
    return this.checked.view(paddr, length);
  }
  write(paddr: number, bytes: Uint8Array): boolean {
    return this.checked.write(paddr, bytes);
  }
  written(paddr: number, length: number): void {
    this.checked.written(paddr, length);
  }

  // ---- the test's side (not recorded as device writes) ----
  /** A fresh buffer of `length` bytes (bump allocation; wraps around, reusing old buffers). */
  alloc(length: number, align = 8): number {
    const end = this.base + this.size;
    const alignUp = (a: number) => Math.ceil(a / align) * align;
    let at = alignUp(this.next);
    if (at + length > end) at = alignUp(this.base + this.allocStart);
    if (at + length > end) throw new RangeError(`fake alloc of ${length} bytes does not fit`);
    this.next = at + Math.max(length, 1);
    return at;
  }
  /** A device-readable buffer holding `bytes`. */
  out(bytes: Uint8Array): GuestBuffer {
    const addr = this.alloc(bytes.length);
    this.put(addr, bytes);
    return { addr, len: bytes.length };
  }
  /** A device-writable buffer of `length` bytes (filled with 0xee to spot unwritten bytes). */
  in(length: number): GuestBuffer {
    const addr = this.alloc(length);
    this.bytes.fill(0xee, this.off(addr), this.off(addr) + length);
    return { addr, len: length };
  }
  /** Offset of guest physical `paddr` in `bytes`. */
  off(paddr: number): number {
    return paddr - this.base;
  }
  put(paddr: number, data: Uint8Array): void {
    this.bytes.set(data, this.off(paddr));
  }
  /** A copy of guest RAM; throws outside it. */
  read(paddr: number, length: number): Uint8Array {
    const v = this.view(paddr, length);
    if (!v) throw new RangeError(`fake read outside RAM: 0x${paddr.toString(16)}+${length}`);
    return v.slice();
  }
  u16(paddr: number): number {
    return this.dataView.getUint16(this.off(paddr), true);
  }
  u32(paddr: number): number {
    return this.dataView.getUint32(this.off(paddr), true);
  }
  setU16(paddr: number, v: number): void {
    this.dataView.setUint16(this.off(paddr), v, true);
  }
  setU32(paddr: number, v: number): void {
    this.dataView.setUint32(this.off(paddr), v >>> 0, true);
  }
  setU64(paddr: number, v: number | bigint): void {
    this.dataView.setBigUint64(this.off(paddr), BigInt.asUintN(64, BigInt(v)), true);
  }
}

/** An interrupt line as the PLIC sees it: its level, and how many times it rose. Pass `set` as the irq callback. */
export function irqLine(): { level: boolean; edges: number; set: (on: boolean) => void } {
  const line = {
    level: false,
    edges: 0,
    set: (on: boolean) => {
      if (on && !line.level) line.edges++;
      line.level = on;
    },
  };
  return line;
}

/** A pending timer of a FakeClock. */
export interface FakeTimer {
  /** When it is due, in the clock's milliseconds. */
  readonly at: number;
  readonly background: boolean;
}

/** A HostClock that moves only when the test says: advance(ms) runs the timers that fall due, in order. */
export class FakeClock implements HostClock {
  private time: number;
  private timers: (FakeTimer & { fire: () => void; id: number })[] = [];
  private nextId = 0;

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(ms: number, fire: () => void, options?: TimerOptions): CancelTimer {
    const id = this.nextId++;
    this.timers.push({ at: this.time + ms, fire, id, background: options?.background === true });
    return () => {
      this.timers = this.timers.filter((t) => t.id !== id);
    };
  }

  yieldToHost(): Promise<void> {
    return Promise.resolve();
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.timers.length;
  }

  /** The pending timers, the next due first. */
  pendingTimers(): FakeTimer[] {
    return this.sorted().map(({ at, background }) => ({ at, background }));
  }

  /** Moves time on by `ms`, firing every timer due by then (also those the fired ones start). */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const t = this.sorted()[0];
      if (!t || t.at > end) break;
      this.timers = this.timers.filter((x) => x !== t);
      this.time = Math.max(this.time, t.at);
      t.fire();
    }
    this.time = end;
  }

  private sorted() {
    return [...this.timers].sort((a, b) => a.at - b.at || a.id - b.id);
  }
}

/** A deterministic PRNG (mulberry32) for fuzzing: numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The same PRNG as whole numbers: each call `(n)` gives one in [0, n). */
export function prngInt(seed: number): (n: number) => number {
  const next = prng(seed);
  return (n) => Math.floor(next() * n);
}

/** Waits until pending promise callbacks and I/O callbacks have run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
