// Test doubles for the contract between the virtio core and its device models (src/virtio/types.ts):
// a virtqueue the test fills the way a driver would, and the device context around it. Device
// tests use them to drive a device model without rings or a transport.
import { VirtqueueError, type DescriptorChain, type GuestBuffer, type Virtqueue, type VirtqueueCounters, type VirtioDeviceContext } from "../types.ts";
import { newVirtqueueCounters } from "../queue/split.ts";
import type { FakeGuestMemory } from "../../testing/fakes.ts";

/** A chain over the given buffers (which may lie anywhere, even outside RAM). */
export function makeChain(id: number, readable: readonly GuestBuffer[], writable: readonly GuestBuffer[]): DescriptorChain {
  return {
    id,
    readable,
    writable,
    readableLength: readable.reduce((n, b) => n + b.len, 0),
    writableLength: writable.reduce((n, b) => n + b.len, 0),
    descriptorCount: readable.length + writable.length,
  };
}

export interface UsedEntry {
  chain: DescriptorChain;
  written: number;
}

/** A virtqueue fed by the test: add() makes chains available, `used` records what came back. */
export class FakeQueue implements Virtqueue {
  readonly counters: VirtqueueCounters = newVirtqueueCounters();
  /** What pop() hands out next, in order; a VirtqueueError entry is thrown (a malformed ring). */
  readonly available: (DescriptorChain | VirtqueueError)[] = [];
  readonly used: UsedEntry[] = [];
  notificationsEnabled = true;
  /** Every setNotifications() argument, in order. */
  readonly notificationChanges: boolean[] = [];
  /** When set, the next pop() throws a VirtqueueError with this message. */
  nextError: string | undefined;
  private nextId = 0;

  constructor(
    readonly index = 0,
    readonly size = 256,
  ) {}

  /** Makes a chain over these buffers available, as a driver would. */
  add(readable: readonly GuestBuffer[], writable: readonly GuestBuffer[] = []): DescriptorChain {
    const chain = makeChain(this.nextId++ % this.size, readable, writable);
    this.available.push(chain);
    return chain;
  }

  /** Makes prepared chains (or ring errors) available. */
  push(...items: (DescriptorChain | VirtqueueError)[]): void {
    this.available.push(...items);
  }

  pop(): DescriptorChain | undefined {
    if (this.nextError !== undefined) {
      const message = this.nextError;
      this.nextError = undefined;
      this.counters.rejected++;
      throw new VirtqueueError(message);
    }
    const next = this.available.shift();
    if (next === undefined) return undefined;
    if (next instanceof VirtqueueError) {
      this.counters.rejected++;
      throw next;
    }
    this.counters.popped++;
    return next;
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
    this.notificationChanges.push(enabled);
  }

  unpop(chain: DescriptorChain): void {
    this.counters.popped--;
    this.available.unshift(chain);
  }

  /** Removes and returns the used entries so far. */
  takeUsed(): UsedEntry[] {
    return this.used.splice(0, this.used.length);
  }
}

/** The context a transport would give an activated device, recording what the device asks of it. */
export class FakeContext implements VirtioDeviceContext {
  readonly queues: FakeQueue[];
  /** Queue indices of every notifyUsed(), in order. */
  readonly notified: number[] = [];
  configChanges = 0;
  readonly resetReasons: string[] = [];

  constructor(
    readonly memory: FakeGuestMemory,
    readonly features: bigint,
    queueSizes: readonly number[] = [256],
  ) {
    this.queues = queueSizes.map((size, i) => new FakeQueue(i, size));
  }

  /** Queue 0. */
  get queue(): FakeQueue {
    return this.queues[0];
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
