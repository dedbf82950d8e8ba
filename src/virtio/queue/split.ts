// The split virtqueue (virtio spec 2.7), device side.
//
//   Descriptor Table (Descriptor Area)  16 * size bytes, align 16   struct virtq_desc[size]
//   Available Ring   (Driver Area)      6 + 2 * size,   align 2     flags, idx, ring[size], used_event
//   Used Ring        (Device Area)      6 + 8 * size,   align 4     flags, idx, {id,len}[size], avail_event
//
// The guest owns the descriptor table and the available ring and can change them at any time,
// so every field is read once into a local and validated before it is used. The parsing is
// done by pure functions (readSplitChain, availPending, vringNeedEvent, splitLayoutError) that
// the class below only sequences; they are what the fuzz tests drive with random rings.
import type { DescriptorChain, GuestMemory, Virtqueue, VirtqueueCounters } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import {
  VIRTQ_AVAIL_ALIGN,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_ALIGN,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_SPLIT_MAX_SIZE,
  VIRTQ_USED_ALIGN,
  VIRTQ_USED_F_NO_NOTIFY,
} from "../constants.ts";
import { u64FromHalves } from "../memory.ts";
import { ChainBuilder, chainError, dataView, isChainError, type ChainError } from "./chain.ts";
import { SnapshotError, stateBool, stateInt, stateObject, stateRecord, stateString } from "../../platform/persist.ts";

/** Counters as saved in a queue's state, checked. */
export function checkQueueCounters(value: unknown, where: string): VirtqueueCounters {
  const r = stateRecord(value, where);
  const c = newVirtqueueCounters();
  for (const key of Object.keys(c) as (keyof VirtqueueCounters)[]) c[key] = stateInt(r[key], `${where}.${key}`);
  return c;
}

/** Why a queue stopped, saved as a string or null. */
export function checkBroken(value: unknown, where: string): string | undefined {
  return value === null ? undefined : stateString(value, where);
}

/**
 * A split queue's device-side state (spec 2.7): the rings live in guest RAM, saved with it; this is
 * what the device keeps about them. avail_event and the used flags are device-written fields of
 * the used ring, recorded so that a restore onto a freshly built queue writes them back whatever
 * order RAM and devices are restored in.
 */
export interface SplitQueueState {
  version: 1;
  kind: "split";
  size: number;
  lastAvail: number;
  usedIdx: number;
  signalledUsed: number;
  usedSinceSignal: number;
  inFlight: number;
  notificationsEnabled: boolean;
  availEvent: number;
  usedFlags: number;
  broken: string | null;
  counters: VirtqueueCounters;
}

/** What a transport tells a queue when the driver sets it up (spec 4.2.3.2 for MMIO). */
export interface VirtqueueConfig {
  memory: GuestMemory;
  index: number;
  size: number;
  /** Descriptor Area (QueueDesc). */
  descAddr: number;
  /** Driver Area (QueueDriver): the available ring (split) or driver event suppression (packed). */
  driverAddr: number;
  /** Device Area (QueueDevice): the used ring (split) or device event suppression (packed). */
  deviceAddr: number;
  /** VIRTIO_F_EVENT_IDX was negotiated. */
  eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  indirect: boolean;
  /** Told about every chain the queue consumes and rejects (for the transport's counters). */
  onReject?: (reason: string) => void;
}

export function newVirtqueueCounters(): VirtqueueCounters {
  return { popped: 0, used: 0, notificationsReceived: 0, interruptsSent: 0, interruptsSuppressed: 0, rejected: 0 };
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Bytes of the available ring (spec 2.7: 6 + 2 * size, used_event included). */
export function splitAvailSize(size: number): number {
  return 6 + 2 * size;
}
/** Bytes of the used ring (spec 2.7: 6 + 8 * size, avail_event included). */
export function splitUsedSize(size: number): number {
  return 6 + 8 * size;
}

/**
 * Why a split queue with this layout cannot be used, or undefined when it can: the size is a
 * power of 2 up to 32768 (spec 2.7), each part is aligned (spec 2.7.1) and lies in guest RAM.
 */
export function splitLayoutError(memory: GuestMemory, size: number, descAddr: number, availAddr: number, usedAddr: number): string | undefined {
  if (!isPowerOfTwo(size) || size > VIRTQ_SPLIT_MAX_SIZE) return `queue size ${size} is not a power of 2 up to ${VIRTQ_SPLIT_MAX_SIZE}`;
  const parts: [string, number, number, number][] = [
    ["descriptor table", descAddr, VIRTQ_DESC_SIZE * size, VIRTQ_DESC_ALIGN],
    ["available ring", availAddr, splitAvailSize(size), VIRTQ_AVAIL_ALIGN],
    ["used ring", usedAddr, splitUsedSize(size), VIRTQ_USED_ALIGN],
  ];
  for (const [name, addr, length, align] of parts) {
    if (!Number.isSafeInteger(addr) || addr < 0) return `${name} address is outside guest RAM`;
    if (addr % align !== 0) return `${name} at 0x${addr.toString(16)} is not ${align}-byte aligned`;
    if (!memory.contains(addr, length)) return `${name} at 0x${addr.toString(16)} (${length} bytes) is outside guest RAM`;
  }
  return undefined;
}

/**
 * Reads the descriptor chain starting at `head` of the descriptor table at `tableAddr` (spec
 * 2.7.5), following NEXT and, when `allowIndirect`, one indirect table at its end (2.7.5.3).
 * Pure: reads guest memory only. Rejects: head or next outside the table, loops and chains
 * longer than the queue size, INDIRECT without the feature, INDIRECT together with NEXT, an
 * indirect table inside an indirect table, an indirect table whose length is zero or not a
 * multiple of 16, buffers outside RAM, readable after writable, more than 2^32 bytes.
 */
export function readSplitChain(
  memory: GuestMemory,
  tableAddr: number,
  size: number,
  head: number,
  allowIndirect: boolean,
): DescriptorChain | ChainError {
  if (!Number.isInteger(size) || size < 1 || size > VIRTQ_SPLIT_MAX_SIZE) return chainError(`bad queue size ${size}`, 0);
  const tableBytes = memory.view(tableAddr, VIRTQ_DESC_SIZE * size);
  if (!tableBytes) return chainError("descriptor table is outside guest RAM", 0);
  return readSplitChainFrom(memory, dataView(tableBytes), size, head, allowIndirect);
}

/** readSplitChain() on a descriptor table already checked to hold `size` descriptors in RAM. */
export function readSplitChainFrom(
  memory: GuestMemory,
  table: DataView,
  size: number,
  head: number,
  allowIndirect: boolean,
): DescriptorChain | ChainError {
  if (!Number.isInteger(head) || head < 0 || head >= size) return chainError(`head index ${head} is outside the descriptor table`, 0);
  const chain = new ChainBuilder(memory);
  let index = head;
  let count = 0; // descriptors of the table this chain uses
  let buffers = 0; // descriptors describing buffers (direct and indirect)
  for (;;) {
    if (count >= size) return chainError(`chain longer than the queue size ${size} (a loop?)`, count, head);
    const at = index * VIRTQ_DESC_SIZE;
    const addr = u64FromHalves(table.getUint32(at, true), table.getUint32(at + 4, true));
    const len = table.getUint32(at + 8, true);
    const flags = table.getUint16(at + 12, true);
    const next = table.getUint16(at + 14, true);
    count++;
    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (!allowIndirect) return chainError("VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC", count, head);
      if (flags & VIRTQ_DESC_F_NEXT) return chainError("VIRTQ_DESC_F_INDIRECT together with VIRTQ_DESC_F_NEXT", count, head);
      // Spec 2.7.5.3.2: the device ignores VIRTQ_DESC_F_WRITE on the descriptor of the table.
      const error = readIndirectTable(memory, addr, len, size - buffers, chain);
      if (error) return chainError(error, count, head);
      break;
    }
    const error = chain.add(addr, len, (flags & VIRTQ_DESC_F_WRITE) !== 0);
    if (error) return chainError(error, count, head);
    buffers++;
    if (!(flags & VIRTQ_DESC_F_NEXT)) break;
    if (next >= size) return chainError(`next index ${next} is outside the descriptor table`, count, head);
    index = next;
  }
  return chain.build(head, count);
}

/** Spec 2.7.5.3: walks an indirect table into `chain`; returns an error message or undefined. */
function readIndirectTable(memory: GuestMemory, addr: number, len: number, maxDescriptors: number, chain: ChainBuilder): string | undefined {
  if (len === 0 || len % VIRTQ_DESC_SIZE !== 0) return `indirect table length ${len} is not a non-zero multiple of 16`;
  const bytes = memory.view(addr, len);
  if (!bytes) return `indirect table 0x${addr.toString(16)}+${len} is outside guest RAM`;
  const table = dataView(bytes);
  const entries = len / VIRTQ_DESC_SIZE;
  let index = 0;
  for (let visited = 0; ; visited++) {
    // Spec 2.7.5.3.1: a chain is no longer than the queue size, so at most `entries` and at most
    // what is left of the queue size are visited; anything more is a loop.
    if (visited >= entries) return "indirect chain loops";
    if (visited >= maxDescriptors) return "chain longer than the queue size";
    const at = index * VIRTQ_DESC_SIZE;
    const bufAddr = u64FromHalves(table.getUint32(at, true), table.getUint32(at + 4, true));
    const bufLen = table.getUint32(at + 8, true);
    const flags = table.getUint16(at + 12, true);
    const next = table.getUint16(at + 14, true);
    if (flags & VIRTQ_DESC_F_INDIRECT) return "indirect descriptor inside an indirect table";
    const error = chain.add(bufAddr, bufLen, (flags & VIRTQ_DESC_F_WRITE) !== 0);
    if (error) return error;
    if (!(flags & VIRTQ_DESC_F_NEXT)) return undefined;
    if (next >= entries) return `indirect next index ${next} is outside the table of ${entries}`;
    index = next;
  }
}

/**
 * How many entries the driver has made available past `lastAvail` (both free-running 16-bit
 * indices), or -1 when the driver claims more than the queue size (spec 2.7.13: the ring cannot
 * hold more, so the index jumped).
 */
export function availPending(availIdx: number, lastAvail: number, size: number): number {
  const pending = (availIdx - lastAvail) & 0xffff;
  return pending > size ? -1 : pending;
}

/**
 * vring_need_event() (spec 2.7.7.2 / 2.7.10, include/uapi/linux/virtio_ring.h): whether moving a
 * free-running index from `oldIdx` to `newIdx` passed `eventIdx`, i.e. wrote the entry at eventIdx.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

/** A saved split queue state, checked for a queue of `size` entries; throws SnapshotError. */
export function checkSplitQueueState(value: unknown, where: string, size: number): SplitQueueState {
  const r = stateObject(value, where, [1]);
  if (r.kind !== "split") throw new SnapshotError(`${where}.kind: expected "split", got ${JSON.stringify(r.kind)}`);
  if (r.size !== size) throw new SnapshotError(`${where}.size: ${String(r.size)} is not the queue's size ${size}`);
  const u16 = (k: string) => stateInt(r[k], `${where}.${k}`, 0, 0xffff);
  const broken = checkBroken(r.broken, `${where}.broken`);
  return {
    version: 1,
    kind: "split",
    size,
    lastAvail: u16("lastAvail"),
    usedIdx: u16("usedIdx"),
    signalledUsed: u16("signalledUsed"),
    usedSinceSignal: stateInt(r.usedSinceSignal, `${where}.usedSinceSignal`),
    inFlight: stateInt(r.inFlight, `${where}.inFlight`, 0, size),
    notificationsEnabled: stateBool(r.notificationsEnabled, `${where}.notificationsEnabled`),
    availEvent: u16("availEvent"),
    usedFlags: u16("usedFlags"),
    broken: broken ?? null,
    counters: checkQueueCounters(r.counters, `${where}.counters`),
  };
}

export class SplitVirtqueue implements Virtqueue {
  readonly kind = "split";
  readonly index: number;
  readonly size: number;
  readonly counters: VirtqueueCounters = newVirtqueueCounters();
  private readonly memory: GuestMemory;
  private readonly usedAddr: number;
  private readonly desc: DataView;
  private readonly avail: DataView;
  private readonly used: DataView;
  private readonly eventIdx: boolean;
  private readonly indirect: boolean;
  private readonly onReject?: (reason: string) => void;
  /** Next available ring entry to consume (free-running 16-bit). */
  private lastAvail = 0;
  /** avail.idx as last read; re-read only when everything up to it has been consumed. */
  private shadowAvail = 0;
  /** Next used ring entry to write (free-running 16-bit). */
  private usedIdx = 0;
  /** usedIdx at the last interrupt decision, and how many entries were written since. */
  private signalledUsed = 0;
  private usedSinceSignal = 0;
  private inFlight = 0;
  /** Heads taken and not yet returned by this queue object (what unpop() may give back). */
  private readonly outstandingHeads = new Set<number>();
  private notificationsEnabled = true;
  private brokenReason: string | undefined;
  private detached = false;

  /** Throws VirtqueueError when the layout is unusable (splitLayoutError). */
  constructor(config: VirtqueueConfig) {
    const { memory, size, descAddr, driverAddr, deviceAddr } = config;
    const error = splitLayoutError(memory, size, descAddr, driverAddr, deviceAddr);
    if (error) throw new VirtqueueError(`queue ${config.index}: ${error}`);
    this.memory = memory;
    this.index = config.index;
    this.size = size;
    this.usedAddr = deviceAddr;
    this.desc = dataView(memory.view(descAddr, VIRTQ_DESC_SIZE * size)!);
    this.avail = dataView(memory.view(driverAddr, splitAvailSize(size))!);
    this.used = dataView(memory.view(deviceAddr, splitUsedSize(size))!);
    this.eventIdx = config.eventIdx;
    this.indirect = config.indirect;
    this.onReject = config.onReject;
    // avail_event is device-owned; start at 0 ("notify me about the first buffer").
    if (this.eventIdx) this.writeAvailEvent(0);
  }

  /** Why the queue stopped (after a VirtqueueError), or undefined. */
  get broken(): string | undefined {
    return this.brokenReason;
  }

  /** Makes the queue inert (device reset): pop() finds nothing and pushUsed() writes nothing. */
  detach(): void {
    this.detached = true;
  }

  pop(): DescriptorChain | undefined {
    if (this.detached || this.brokenReason !== undefined) return undefined;
    if (this.lastAvail === this.shadowAvail) {
      const availIdx = this.avail.getUint16(2, true);
      const pending = availPending(availIdx, this.lastAvail, this.size);
      if (pending < 0) {
        this.fail(`available index ${availIdx} is more than the queue size ahead of ${this.lastAvail}`);
      }
      this.shadowAvail = availIdx;
      if (pending === 0) return undefined;
    }
    if (this.inFlight >= this.size) this.fail(`more than ${this.size} chains in flight`);
    const head = this.avail.getUint16(4 + 2 * (this.lastAvail % this.size), true);
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (this.eventIdx && this.notificationsEnabled) this.writeAvailEvent(this.lastAvail);
    this.counters.popped++;
    const chain = readSplitChainFrom(this.memory, this.desc, this.size, head, this.indirect);
    if (isChainError(chain)) {
      // Consume the entry and give it back empty so that nothing spins on it, then stop.
      this.counters.rejected++;
      this.onReject?.(chain.error);
      if (chain.id !== undefined) this.writeUsed(chain.id, 0);
      this.fail(`queue ${this.index}: chain at head ${head}: ${chain.error}`);
    }
    this.inFlight++;
    this.outstandingHeads.add(chain.id);
    return chain;
  }

  pushUsed(chain: DescriptorChain, written: number): void {
    if (this.detached) return;
    if (!Number.isInteger(chain.id) || chain.id < 0 || chain.id >= this.size) {
      throw new VirtqueueError(`queue ${this.index}: used id ${chain.id} is not a descriptor index`);
    }
    if (this.inFlight === 0) throw new VirtqueueError(`queue ${this.index}: a chain was returned that was never taken`);
    this.inFlight--;
    this.outstandingHeads.delete(chain.id);
    const len = Math.max(0, Math.min(Math.floor(written) || 0, chain.writableLength, 0xffff_ffff));
    this.writeUsed(chain.id, len);
  }

  /** Spec 2.7.8.2: the element first, then idx. */
  private writeUsed(id: number, len: number): void {
    const slot = this.usedIdx % this.size;
    const at = 4 + 8 * slot;
    this.used.setUint32(at, id, true);
    this.used.setUint32(at + 4, len, true);
    this.memory.written(this.usedAddr + at, 8);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this.used.setUint16(2, this.usedIdx, true);
    this.memory.written(this.usedAddr + 2, 2);
    this.usedSinceSignal++;
    this.counters.used++;
  }

  shouldInterrupt(): boolean {
    if (this.detached || this.usedSinceSignal === 0) return false;
    let notify: boolean;
    if (this.eventIdx) {
      // Spec 2.7.7.2: notify when the used idx passed used_event; ignore avail.flags.
      const usedEvent = this.avail.getUint16(4 + 2 * this.size, true);
      notify = this.usedSinceSignal > 0xffff || vringNeedEvent(usedEvent, this.usedIdx, this.signalledUsed);
    } else {
      notify = (this.avail.getUint16(0, true) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    }
    this.signalledUsed = this.usedIdx;
    this.usedSinceSignal = 0;
    if (notify) this.counters.interruptsSent++;
    else this.counters.interruptsSuppressed++;
    return notify;
  }

  setNotifications(enabled: boolean): void {
    if (this.detached) return;
    this.notificationsEnabled = enabled;
    if (this.eventIdx) {
      // Spec 2.7.10: "notify me when you make entry lastAvail available". Disabling leaves the
      // old value behind, which the driver has already passed: no further notifications.
      if (enabled) this.writeAvailEvent(this.lastAvail);
    } else {
      this.used.setUint16(0, enabled ? 0 : VIRTQ_USED_F_NO_NOTIFY, true);
      this.memory.written(this.usedAddr, 2);
    }
  }

  unpop(chain: DescriptorChain): void {
    if (this.detached) return;
    const previous = (this.lastAvail - 1) & 0xffff;
    if (!this.outstandingHeads.has(chain.id) || this.avail.getUint16(4 + 2 * (previous % this.size), true) !== chain.id) {
      throw new VirtqueueError(`queue ${this.index}: chain ${chain.id} given back is not the last one taken`);
    }
    this.lastAvail = previous;
    this.inFlight--;
    this.outstandingHeads.delete(chain.id);
    this.counters.popped--;
    if (this.eventIdx && this.notificationsEnabled) this.writeAvailEvent(this.lastAvail);
  }

  saveState(): SplitQueueState {
    return {
      version: 1,
      kind: "split",
      size: this.size,
      lastAvail: this.lastAvail,
      usedIdx: this.usedIdx,
      signalledUsed: this.signalledUsed,
      usedSinceSignal: this.usedSinceSignal,
      inFlight: this.inFlight,
      notificationsEnabled: this.notificationsEnabled,
      availEvent: this.used.getUint16(4 + 8 * this.size, true),
      usedFlags: this.used.getUint16(0, true),
      broken: this.brokenReason ?? null,
      counters: { ...this.counters },
    };
  }

  /** Applies a state checked by checkSplitQueueState for this queue's size. */
  applyState(state: SplitQueueState): void {
    this.lastAvail = state.lastAvail;
    this.shadowAvail = state.lastAvail; // avail.idx is read again
    this.usedIdx = state.usedIdx;
    this.signalledUsed = state.signalledUsed;
    this.usedSinceSignal = state.usedSinceSignal;
    this.inFlight = state.inFlight;
    this.notificationsEnabled = state.notificationsEnabled;
    this.brokenReason = state.broken ?? undefined;
    Object.assign(this.counters, state.counters);
    this.used.setUint16(0, state.usedFlags, true);
    this.used.setUint16(2, state.usedIdx, true);
    this.used.setUint16(4 + 8 * this.size, state.availEvent, true);
    this.memory.written(this.usedAddr, splitUsedSize(this.size));
  }

  restoreState(value: unknown): void {
    this.applyState(checkSplitQueueState(value, `queue${this.index}`, this.size));
  }

  private writeAvailEvent(value: number): void {
    const at = 4 + 8 * this.size;
    this.used.setUint16(at, value, true);
    this.memory.written(this.usedAddr + at, 2);
  }

  private fail(reason: string): never {
    this.brokenReason = reason;
    throw new VirtqueueError(reason);
  }
}
