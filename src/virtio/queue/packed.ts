// The packed virtqueue (virtio spec 2.8), device side.
//
//   Descriptor Ring          (Descriptor Area)  16 * size bytes, align 16   struct pvirtq_desc[size]
//   Driver Event Suppression (Driver Area)      4 bytes, align 4            read by the device
//   Device Event Suppression (Device Area)      4 bytes, align 4            written by the device
//
// struct pvirtq_desc { le64 addr; le32 len; le16 id; le16 flags; } (spec 2.8.13)
// struct pvirtq_event_suppress { le16 desc /* off:15, wrap:1 */; le16 flags /* 2 bits */; } (2.8.14)
//
// Both sides keep a wrap counter starting at 1 (spec 2.8.1). A descriptor is available when its
// AVAIL bit equals the device's avail wrap counter and its USED bit differs; the device marks a
// buffer used by writing one descriptor (id, len, AVAIL = USED = used wrap counter) at its used
// position, then skips as many ring slots as the buffer's list had descriptors (2.8.6). Linux's
// driver (drivers/virtio/virtio_ring.c, virtqueue_get_buf_ctx_packed) advances its last_used by
// desc_state[id].num, the number of ring descriptors it used for that buffer, so the two agree as
// long as the device advances by DescriptorChain.descriptorCount, which is what pushUsed does.
import type { DescriptorChain, GuestMemory, Virtqueue, VirtqueueCounters } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import {
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  VIRTQ_DESC_ALIGN,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_EVENT_SUPPRESS_ALIGN,
  VIRTQ_EVENT_SUPPRESS_SIZE,
  VIRTQ_PACKED_MAX_SIZE,
} from "../constants.ts";
import { u64FromHalves } from "../memory.ts";
import { ChainBuilder, chainError, dataView, isChainError, type ChainError } from "./chain.ts";
import { checkBroken, checkQueueCounters, newVirtqueueCounters, vringNeedEvent, type VirtqueueConfig } from "./split.ts";
import { SnapshotError, stateBool, stateInt, stateObject } from "../../platform/persist.ts";

/**
 * A packed queue's device-side state (spec 2.8): positions and wrap counters for reading and for
 * writing used descriptors, event suppression as the device last wrote it, and counters. The ring
 * itself lives in guest RAM, saved with it.
 */
export interface PackedQueueState {
  version: 1;
  kind: "packed";
  size: number;
  availIdx: number;
  availWrap: boolean;
  usedIdx: number;
  usedWrap: boolean;
  usedSince: number;
  outstanding: number;
  inFlight: number;
  /** RING_EVENT_FLAGS_* last written to the device event suppression structure, -1 for none. */
  deviceEventFlags: number;
  broken: string | null;
  counters: VirtqueueCounters;
}

/**
 * Why a packed queue with this layout cannot be used, or undefined: 1..32768 entries (spec 2.8;
 * no power of 2 needed), each part aligned (2.8.10.1) and inside guest RAM.
 */
export function packedLayoutError(memory: GuestMemory, size: number, ringAddr: number, driverAddr: number, deviceAddr: number): string | undefined {
  if (!Number.isInteger(size) || size < 1 || size > VIRTQ_PACKED_MAX_SIZE) return `queue size ${size} is outside 1..${VIRTQ_PACKED_MAX_SIZE}`;
  const parts: [string, number, number, number][] = [
    ["descriptor ring", ringAddr, VIRTQ_DESC_SIZE * size, VIRTQ_DESC_ALIGN],
    ["driver event suppression", driverAddr, VIRTQ_EVENT_SUPPRESS_SIZE, VIRTQ_EVENT_SUPPRESS_ALIGN],
    ["device event suppression", deviceAddr, VIRTQ_EVENT_SUPPRESS_SIZE, VIRTQ_EVENT_SUPPRESS_ALIGN],
  ];
  for (const [name, addr, length, align] of parts) {
    if (!Number.isSafeInteger(addr) || addr < 0) return `${name} address is outside guest RAM`;
    if (addr % align !== 0) return `${name} at 0x${addr.toString(16)} is not ${align}-byte aligned`;
    if (!memory.contains(addr, length)) return `${name} at 0x${addr.toString(16)} (${length} bytes) is outside guest RAM`;
  }
  return undefined;
}

/** Spec 2.8.1: whether descriptor flags mark it available for a device whose wrap counter is `wrap`. */
export function isAvailable(flags: number, wrap: boolean): boolean {
  return ((flags & VIRTQ_DESC_F_AVAIL) !== 0) === wrap && ((flags & VIRTQ_DESC_F_USED) !== 0) !== wrap;
}

/**
 * Reads the descriptor list whose first descriptor is at ring slot `head`, for a device whose
 * avail wrap counter is `wrap`. Returns undefined when that descriptor is not available (nothing
 * to do), the chain, or an error. Pure: reads guest memory only.
 *
 * Rules (spec 2.8.5-2.8.7, 2.8.17, 2.8.19): the list continues through VIRTQ_DESC_F_NEXT over
 * consecutive slots (wrapping at the end of the ring, where the expected wrap counter flips) and
 * every descriptor in it must be marked available; at most `size` descriptors; the Buffer ID is
 * the one in the last descriptor; an indirect descriptor stands alone (no NEXT, not inside a
 * list); its table has a non-zero multiple of 16 bytes, at most `size` entries, and only the
 * WRITE flag of its entries counts (the others are reserved and ignored, 2.8.7).
 */
export function readPackedChain(
  memory: GuestMemory,
  ringAddr: number,
  size: number,
  head: number,
  wrap: boolean,
  allowIndirect: boolean,
): DescriptorChain | ChainError | undefined {
  if (!Number.isInteger(size) || size < 1 || size > VIRTQ_PACKED_MAX_SIZE) return chainError(`bad queue size ${size}`, 0);
  const ringBytes = memory.view(ringAddr, VIRTQ_DESC_SIZE * size);
  if (!ringBytes) return chainError("descriptor ring is outside guest RAM", 0);
  return readPackedChainFrom(memory, dataView(ringBytes), size, head, wrap, allowIndirect);
}

/** readPackedChain() on a descriptor ring already checked to hold `size` descriptors in RAM. */
export function readPackedChainFrom(
  memory: GuestMemory,
  ring: DataView,
  size: number,
  head: number,
  wrap: boolean,
  allowIndirect: boolean,
): DescriptorChain | ChainError | undefined {
  if (!Number.isInteger(head) || head < 0 || head >= size) return chainError(`ring position ${head} is outside the ring`, 0);
  const chain = new ChainBuilder(memory);
  let slot = head;
  let expectedWrap = wrap;
  let count = 0;
  let id = 0;
  for (;;) {
    const at = slot * VIRTQ_DESC_SIZE;
    const flags = ring.getUint16(at + 14, true);
    if (!isAvailable(flags, expectedWrap)) {
      if (count === 0) return undefined;
      return chainError("descriptor list continues into a descriptor that is not available", count, id);
    }
    const addr = u64FromHalves(ring.getUint32(at, true), ring.getUint32(at + 4, true));
    const len = ring.getUint32(at + 8, true);
    id = ring.getUint16(at + 12, true);
    count++;
    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (!allowIndirect) return chainError("VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC", count, id);
      if (count > 1) return chainError("indirect descriptor inside a descriptor list", count, id);
      if (flags & VIRTQ_DESC_F_NEXT) return chainError("VIRTQ_DESC_F_INDIRECT together with VIRTQ_DESC_F_NEXT", count, id);
      const error = readPackedIndirect(memory, addr, len, size, chain);
      if (error) return chainError(error, count, id);
      return chain.build(id, count);
    }
    const error = chain.add(addr, len, (flags & VIRTQ_DESC_F_WRITE) !== 0);
    if (error) return chainError(error, count, id);
    if (!(flags & VIRTQ_DESC_F_NEXT)) return chain.build(id, count);
    if (count >= size) return chainError(`descriptor list longer than the queue size ${size}`, count, id);
    slot++;
    if (slot >= size) {
      slot = 0;
      expectedWrap = !expectedWrap;
    }
  }
}

/** Spec 2.8.7: the entries of an indirect table follow each other; no NEXT, no nesting. */
function readPackedIndirect(memory: GuestMemory, addr: number, len: number, size: number, chain: ChainBuilder): string | undefined {
  if (len === 0 || len % VIRTQ_DESC_SIZE !== 0) return `indirect table length ${len} is not a non-zero multiple of 16`;
  const entries = len / VIRTQ_DESC_SIZE;
  if (entries > size) return `indirect table of ${entries} entries is longer than the queue size ${size}`;
  const bytes = memory.view(addr, len);
  if (!bytes) return `indirect table 0x${addr.toString(16)}+${len} is outside guest RAM`;
  const table = dataView(bytes);
  for (let i = 0; i < entries; i++) {
    const at = i * VIRTQ_DESC_SIZE;
    const bufAddr = u64FromHalves(table.getUint32(at, true), table.getUint32(at + 4, true));
    const bufLen = table.getUint32(at + 8, true);
    const flags = table.getUint16(at + 14, true);
    const error = chain.add(bufAddr, bufLen, (flags & VIRTQ_DESC_F_WRITE) !== 0);
    if (error) return error;
  }
  return undefined;
}

/**
 * Spec 2.8.10 / 2.8.14: whether the driver asked for a used buffer notification, given the
 * driver event suppression structure (off_wrap, flags), the device's used position `usedIdx`
 * with wrap counter `usedWrap` after writing `usedSince` descriptor slots since the last
 * decision, and whether EVENT_IDX was negotiated. Mirrors virtqueue_kick_prepare_packed() on
 * the driver side: the event offset is taken in the current lap when its wrap bit matches,
 * otherwise in the previous one.
 */
export function packedNeedInterrupt(
  offWrap: number,
  eventFlags: number,
  eventIdx: boolean,
  size: number,
  usedIdx: number,
  usedWrap: boolean,
  usedSince: number,
): boolean {
  if (usedSince <= 0) return false;
  const mode = eventFlags & 0x3;
  if (mode === RING_EVENT_FLAGS_DISABLE) return false;
  // ENABLE, reserved value 3, and DESC without EVENT_IDX (only valid with it) all mean "notify".
  if (mode !== RING_EVENT_FLAGS_DESC || !eventIdx) return true;
  if (usedSince >= size) return true; // a whole lap was written: the event slot was among them
  let event = offWrap & 0x7fff;
  if (((offWrap & 0x8000) !== 0) !== usedWrap) event -= size;
  return vringNeedEvent(event & 0xffff, usedIdx, (usedIdx - usedSince) & 0xffff);
}

/** A saved packed queue state, checked for a queue of `size` entries; throws SnapshotError. */
export function checkPackedQueueState(value: unknown, where: string, size: number): PackedQueueState {
  const r = stateObject(value, where, [1]);
  if (r.kind !== "packed") throw new SnapshotError(`${where}.kind: expected "packed", got ${JSON.stringify(r.kind)}`);
  if (r.size !== size) throw new SnapshotError(`${where}.size: ${String(r.size)} is not the queue's size ${size}`);
  const outstanding = stateInt(r.outstanding, `${where}.outstanding`, 0, size);
  const broken = checkBroken(r.broken, `${where}.broken`);
  return {
    version: 1,
    kind: "packed",
    size,
    availIdx: stateInt(r.availIdx, `${where}.availIdx`, 0, size - 1),
    availWrap: stateBool(r.availWrap, `${where}.availWrap`),
    usedIdx: stateInt(r.usedIdx, `${where}.usedIdx`, 0, size - 1),
    usedWrap: stateBool(r.usedWrap, `${where}.usedWrap`),
    usedSince: stateInt(r.usedSince, `${where}.usedSince`),
    outstanding,
    inFlight: stateInt(r.inFlight, `${where}.inFlight`, 0, outstanding),
    deviceEventFlags: stateInt(r.deviceEventFlags, `${where}.deviceEventFlags`, -1, 2),
    broken: broken ?? null,
    counters: checkQueueCounters(r.counters, `${where}.counters`),
  };
}

export class PackedVirtqueue implements Virtqueue {
  readonly kind = "packed";
  readonly index: number;
  readonly size: number;
  readonly counters: VirtqueueCounters = newVirtqueueCounters();
  private readonly memory: GuestMemory;
  private readonly ringAddr: number;
  private readonly deviceAddr: number;
  private readonly ring: DataView;
  private readonly driverEvent: DataView;
  private readonly deviceEvent: DataView;
  private readonly eventIdx: boolean;
  private readonly indirect: boolean;
  private readonly onReject?: (reason: string) => void;
  /** Next ring slot to read, and the Device Ring Wrap Counter for reading (spec 2.8.1). */
  private availIdx = 0;
  private availWrap = true;
  /** Next ring slot to write a used descriptor at, and its wrap counter. */
  private usedIdx = 0;
  private usedWrap = true;
  /** Ring slots written since the last interrupt decision. */
  private usedSince = 0;
  /** Ring slots taken and not yet returned: pushUsed may never overtake the read position. */
  private outstanding = 0;
  private inFlight = 0;
  /** What the device event suppression structure says (-1 before the first write). */
  private deviceEventFlags = -1;
  private brokenReason: string | undefined;
  private detached = false;

  /** Throws VirtqueueError when the layout is unusable (packedLayoutError). */
  constructor(config: VirtqueueConfig) {
    const { memory, size, descAddr, driverAddr, deviceAddr } = config;
    const error = packedLayoutError(memory, size, descAddr, driverAddr, deviceAddr);
    if (error) throw new VirtqueueError(`queue ${config.index}: ${error}`);
    this.memory = memory;
    this.index = config.index;
    this.size = size;
    this.ringAddr = descAddr;
    this.deviceAddr = deviceAddr;
    this.ring = dataView(memory.view(descAddr, VIRTQ_DESC_SIZE * size)!);
    this.driverEvent = dataView(memory.view(driverAddr, VIRTQ_EVENT_SUPPRESS_SIZE)!);
    this.deviceEvent = dataView(memory.view(deviceAddr, VIRTQ_EVENT_SUPPRESS_SIZE)!);
    this.eventIdx = config.eventIdx;
    this.indirect = config.indirect;
    this.onReject = config.onReject;
    this.setNotifications(true);
  }

  get broken(): string | undefined {
    return this.brokenReason;
  }

  detach(): void {
    this.detached = true;
  }

  pop(): DescriptorChain | undefined {
    if (this.detached || this.brokenReason !== undefined) return undefined;
    const chain = readPackedChainFrom(this.memory, this.ring, this.size, this.availIdx, this.availWrap, this.indirect);
    if (chain === undefined) return undefined;
    const count = Math.max(1, chain.descriptorCount);
    // A driver cannot have more slots outstanding than the ring has (spec 2.8.17): one that
    // makes slots of buffers still in flight available again is refused before they are read.
    if (this.outstanding + count > this.size) this.fail(`queue ${this.index}: more than ${this.size} descriptors in flight`);
    const slot = this.availIdx;
    this.counters.popped++;
    this.advanceAvail(count);
    if (this.eventIdx && this.deviceEventFlags === RING_EVENT_FLAGS_DESC) this.writeDeviceEvent(RING_EVENT_FLAGS_DESC);
    if (isChainError(chain)) {
      // Consume the slots read and give the buffer back empty, then stop using the queue.
      this.counters.rejected++;
      this.onReject?.(chain.error);
      this.writeUsed(chain.id ?? 0, 0, count);
      this.fail(`queue ${this.index}: buffer at slot ${slot}: ${chain.error}`);
    }
    this.outstanding += count;
    this.inFlight++;
    return chain;
  }

  private advanceAvail(count: number): void {
    this.availIdx += count;
    if (this.availIdx >= this.size) {
      this.availIdx -= this.size;
      this.availWrap = !this.availWrap;
    }
  }

  pushUsed(chain: DescriptorChain, written: number): void {
    if (this.detached) return;
    const count = chain.descriptorCount;
    if (!Number.isInteger(count) || count < 1 || count > this.outstanding || this.inFlight === 0) {
      throw new VirtqueueError(`queue ${this.index}: a buffer was returned that was never taken`);
    }
    this.outstanding -= count;
    this.inFlight--;
    const len = Math.max(0, Math.min(Math.floor(written) || 0, chain.writableLength, 0xffff_ffff));
    this.writeUsed(chain.id & 0xffff, len, count);
  }

  /** Spec 2.8.3-2.8.6: id and len first, flags last; then skip the list's slots. */
  private writeUsed(id: number, len: number, count: number): void {
    const at = this.usedIdx * VIRTQ_DESC_SIZE;
    this.ring.setUint32(at + 8, len, true);
    this.ring.setUint16(at + 12, id, true);
    const wrapBits = this.usedWrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
    this.ring.setUint16(at + 14, wrapBits | (len > 0 ? VIRTQ_DESC_F_WRITE : 0), true);
    this.memory.written(this.ringAddr + at + 8, 8);
    this.usedIdx += count;
    if (this.usedIdx >= this.size) {
      this.usedIdx -= this.size;
      this.usedWrap = !this.usedWrap;
    }
    this.usedSince += count;
    this.counters.used++;
  }

  shouldInterrupt(): boolean {
    if (this.detached || this.usedSince === 0) return false;
    // One read of the whole structure, as the driver writes off_wrap before flags.
    const snapshot = this.driverEvent.getUint32(0, true);
    const notify = packedNeedInterrupt(snapshot & 0xffff, snapshot >>> 16, this.eventIdx, this.size, this.usedIdx, this.usedWrap, this.usedSince);
    this.usedSince = 0;
    if (notify) this.counters.interruptsSent++;
    else this.counters.interruptsSuppressed++;
    return notify;
  }

  /**
   * Spec 2.8.10 / 2.8.14, the device event suppression structure. Disabled: DISABLE. Enabled:
   * with EVENT_IDX, DESC at the next slot the device will read (kept current by pop(), like the
   * split ring's avail_event), so the driver notifies once per batch after the device caught up
   * (Linux's virtqueue_kick_prepare_packed); without it, ENABLE.
   */
  setNotifications(enabled: boolean): void {
    if (this.detached) return;
    const flags = !enabled ? RING_EVENT_FLAGS_DISABLE : this.eventIdx ? RING_EVENT_FLAGS_DESC : RING_EVENT_FLAGS_ENABLE;
    if (flags !== this.deviceEventFlags || flags === RING_EVENT_FLAGS_DESC) this.writeDeviceEvent(flags);
  }

  unpop(chain: DescriptorChain): void {
    if (this.detached) return;
    const count = chain.descriptorCount;
    if (!Number.isInteger(count) || count < 1 || count > this.outstanding || this.inFlight === 0) {
      throw new VirtqueueError(`queue ${this.index}: a buffer was given back that was never taken`);
    }
    let idx = this.availIdx - count;
    let wrap = this.availWrap;
    if (idx < 0) {
      idx += this.size;
      wrap = !wrap;
    }
    const at = idx * VIRTQ_DESC_SIZE;
    if (!isAvailable(this.ring.getUint16(at + 14, true), wrap)) {
      throw new VirtqueueError(`queue ${this.index}: buffer ${chain.id} given back is not the last one taken`);
    }
    this.availIdx = idx;
    this.availWrap = wrap;
    this.outstanding -= count;
    this.inFlight--;
    this.counters.popped--;
    if (this.eventIdx && this.deviceEventFlags === RING_EVENT_FLAGS_DESC) this.writeDeviceEvent(RING_EVENT_FLAGS_DESC);
  }

  saveState(): PackedQueueState {
    return {
      version: 1,
      kind: "packed",
      size: this.size,
      availIdx: this.availIdx,
      availWrap: this.availWrap,
      usedIdx: this.usedIdx,
      usedWrap: this.usedWrap,
      usedSince: this.usedSince,
      outstanding: this.outstanding,
      inFlight: this.inFlight,
      deviceEventFlags: this.deviceEventFlags,
      broken: this.brokenReason ?? null,
      counters: { ...this.counters },
    };
  }

  /** Applies a state checked by checkPackedQueueState for this queue's size. */
  applyState(state: PackedQueueState): void {
    this.availIdx = state.availIdx;
    this.availWrap = state.availWrap;
    this.usedIdx = state.usedIdx;
    this.usedWrap = state.usedWrap;
    this.usedSince = state.usedSince;
    this.outstanding = state.outstanding;
    this.inFlight = state.inFlight;
    this.brokenReason = state.broken ?? undefined;
    Object.assign(this.counters, state.counters);
    if (state.deviceEventFlags >= 0) this.writeDeviceEvent(state.deviceEventFlags);
    else this.deviceEventFlags = -1;
  }

  restoreState(value: unknown): void {
    this.applyState(checkPackedQueueState(value, `queue${this.index}`, this.size));
  }

  /** off_wrap first, then flags (the driver reads both in one 32-bit snapshot). */
  private writeDeviceEvent(flags: number): void {
    this.deviceEventFlags = flags;
    const offWrap = flags === RING_EVENT_FLAGS_DESC ? this.availIdx | (this.availWrap ? 0x8000 : 0) : 0;
    this.deviceEvent.setUint16(0, offWrap, true);
    this.deviceEvent.setUint16(2, flags, true);
    this.memory.written(this.deviceAddr, VIRTQ_EVENT_SUPPRESS_SIZE);
  }

  private fail(reason: string): never {
    this.brokenReason = reason;
    throw new VirtqueueError(reason);
  }
}
