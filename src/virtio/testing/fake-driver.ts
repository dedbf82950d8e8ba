// Test support: guest RAM for rings (on the common FakeGuestMemory) and minimal drivers that build
// split and packed rings the way Linux's drivers/virtio/virtio_ring.c does, plus the
// virtio_mmio.c register sequence. Used by the unit, adversarial and fuzz tests; not part of
// Parley's runtime.
import type { GuestMemory } from "../types.ts";
import { FAKE_RAM_BASE, FakeGuestMemory } from "../../testing/fakes.ts";
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
  ACKNOWLEDGE,
  DRIVER,
  DRIVER_OK,
  FEATURES_OK,
  VirtioMmioRegister as R,
} from "../constants.ts";
import type { VirtioMmioTransport } from "../transport/mmio.ts";
import { vringNeedEvent } from "../queue/split.ts";

export const RAM_BASE = FAKE_RAM_BASE;

/**
 * Guest RAM for ring-level tests: the lower half is for rings (placed by the drivers below), the
 * upper half for buffers, allocated 16-byte aligned.
 */
export class FakeRam extends FakeGuestMemory {
  constructor(size = 1 << 20, base = RAM_BASE) {
    super(size, base, size >> 1);
  }
  /** The RAM as the transport and the queues take it. */
  get memory(): GuestMemory {
    return this;
  }
  override alloc(length: number, align = 16): number {
    return super.alloc(length, align);
  }
  /** A copy of guest RAM. */
  get(paddr: number, length: number): Uint8Array {
    return this.read(paddr, length);
  }
}

export interface Added {
  id: number;
  /** Addresses of the device-writable buffers, in order. */
  inAddrs: number[];
}

export interface UsedEntry {
  id: number;
  len: number;
}

/** A split-ring driver (spec 2.7.13 / 2.7.14), direct or indirect descriptors. */
export class SplitDriver {
  readonly descAddr: number;
  readonly availAddr: number;
  readonly usedAddr: number;
  availIdx = 0;
  lastUsed = 0;
  private readonly free: number[] = [];
  private readonly chains = new Map<number, number[]>();

  constructor(
    readonly ram: FakeRam,
    readonly size: number,
    at = ram.base + 0x1000,
  ) {
    this.descAddr = at;
    this.availAddr = at + 16 * size;
    this.usedAddr = Math.ceil((this.availAddr + 6 + 2 * size) / 4) * 4;
    for (let i = 0; i < size; i++) this.free.push(i);
    ram.bytes.fill(0, ram.off(this.descAddr), ram.off(this.usedAddr + 6 + 8 * size));
  }

  get freeCount(): number {
    return this.free.length;
  }

  writeDesc(table: number, index: number, addr: number | bigint, len: number, flags: number, next: number): void {
    const at = table + 16 * index;
    this.ram.setU64(at, addr);
    this.ram.setU32(at + 8, len);
    this.ram.setU16(at + 12, flags);
    this.ram.setU16(at + 14, next);
  }

  /** Puts `head` in the available ring and (when `publish`) bumps avail.idx. */
  pushAvail(head: number, publish = true): void {
    this.ram.setU16(this.availAddr + 4 + 2 * (this.availIdx % this.size), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    if (publish) this.publish();
  }
  publish(): void {
    this.ram.setU16(this.availAddr + 2, this.availIdx);
  }

  add(out: Uint8Array[], inLens: number[], options: { indirect?: boolean; publish?: boolean } = {}): Added {
    const inAddrs: number[] = [];
    const bufs: { addr: number; len: number; write: boolean }[] = [];
    for (const o of out) {
      const a = this.ram.alloc(o.length);
      this.ram.put(a, o);
      bufs.push({ addr: a, len: o.length, write: false });
    }
    for (const n of inLens) {
      const a = this.ram.alloc(n);
      inAddrs.push(a);
      bufs.push({ addr: a, len: n, write: true });
    }
    let head: number;
    if (options.indirect) {
      const table = this.ram.alloc(16 * bufs.length);
      bufs.forEach((b, i) => {
        const last = i === bufs.length - 1;
        this.writeDesc(table, i, b.addr, b.len, (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : i + 1);
      });
      head = this.take(1)[0];
      this.writeDesc(this.descAddr, head, table, 16 * bufs.length, VIRTQ_DESC_F_INDIRECT, 0);
      this.chains.set(head, [head]);
    } else {
      const ids = this.take(bufs.length);
      bufs.forEach((b, i) => {
        const last = i === bufs.length - 1;
        this.writeDesc(this.descAddr, ids[i], b.addr, b.len, (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : ids[i + 1]);
      });
      head = ids[0];
      this.chains.set(head, ids);
    }
    this.pushAvail(head, options.publish ?? true);
    return { id: head, inAddrs };
  }

  private take(n: number): number[] {
    if (this.free.length < n) throw new Error("split driver: ring full");
    // Take from the middle of the free list so that chains are not contiguous.
    return this.free.splice(0, n).reverse();
  }

  /** virtqueue_get_buf(): the used entries the device wrote since the last call. */
  used(): UsedEntry[] {
    const out: UsedEntry[] = [];
    const idx = this.ram.u16(this.usedAddr + 2);
    while (this.lastUsed !== idx) {
      const at = this.usedAddr + 4 + 8 * (this.lastUsed % this.size);
      const e = { id: this.ram.u32(at), len: this.ram.u32(at + 4) };
      out.push(e);
      const ids = this.chains.get(e.id);
      if (ids) {
        this.free.push(...ids);
        this.chains.delete(e.id);
      }
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    // virtqueue_get_buf_ctx_split(): "If we expect an interrupt for the next entry, tell host by
    // writing event index" (harmless without EVENT_IDX: the device ignores used_event then).
    if (this.autoUsedEvent) this.setUsedEvent(this.lastUsed);
    return out;
  }
  /** Whether used() moves used_event along as Linux does (tests of suppression turn it off). */
  autoUsedEvent = true;

  /** Entries made available since the last kickPrepare(). */
  private kickedAt = 0;

  /** virtqueue_kick_prepare_split(): whether the device wants a notification now. */
  kickPrepare(eventIdx: boolean): boolean {
    const oldIdx = this.kickedAt;
    this.kickedAt = this.availIdx;
    if (eventIdx) return vringNeedEvent(this.availEvent, this.availIdx, oldIdx);
    return (this.usedFlags & 1) === 0;
  }

  setNoInterrupt(on: boolean): void {
    this.ram.setU16(this.availAddr, on ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0);
  }
  setUsedEvent(v: number): void {
    this.ram.setU16(this.availAddr + 4 + 2 * this.size, v);
  }
  get usedFlags(): number {
    return this.ram.u16(this.usedAddr);
  }
  get availEvent(): number {
    return this.ram.u16(this.usedAddr + 4 + 8 * this.size);
  }
  get usedIdx(): number {
    return this.ram.u16(this.usedAddr + 2);
  }
}

/** A packed-ring driver following virtqueue_add_packed() / virtqueue_get_buf_ctx_packed(). */
export class PackedDriver {
  readonly ringAddr: number;
  readonly driverAddr: number;
  readonly deviceAddr: number;
  nextAvail = 0;
  availWrap = true;
  lastUsed = 0;
  usedWrap = true;
  private readonly freeIds: number[] = [];
  private readonly num = new Map<number, number>();
  private freeSlots: number;

  constructor(
    readonly ram: FakeRam,
    readonly size: number,
    at = ram.base + 0x1000,
  ) {
    this.ringAddr = at;
    this.driverAddr = at + 16 * size;
    this.deviceAddr = this.driverAddr + 4;
    for (let i = 0; i < size; i++) this.freeIds.push(i);
    this.freeSlots = size;
    ram.bytes.fill(0, ram.off(this.ringAddr), ram.off(this.deviceAddr + 4));
  }

  get availUsedFlags(): number {
    return this.availWrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
  }

  writeSlot(slot: number, addr: number | bigint, len: number, id: number, flags: number): void {
    const at = this.ringAddr + 16 * slot;
    this.ram.setU64(at, addr);
    this.ram.setU32(at + 8, len);
    this.ram.setU16(at + 12, id);
    this.ram.setU16(at + 14, flags);
  }

  add(out: Uint8Array[], inLens: number[], options: { indirect?: boolean } = {}): Added {
    const inAddrs: number[] = [];
    const bufs: { addr: number; len: number; write: boolean }[] = [];
    for (const o of out) {
      const a = this.ram.alloc(o.length);
      this.ram.put(a, o);
      bufs.push({ addr: a, len: o.length, write: false });
    }
    for (const n of inLens) {
      const a = this.ram.alloc(n);
      inAddrs.push(a);
      bufs.push({ addr: a, len: n, write: true });
    }
    const id = this.freeIds.shift();
    if (id === undefined) throw new Error("packed driver: no free id");
    const head = this.nextAvail;
    const headWrapFlags = this.availUsedFlags;
    if (options.indirect) {
      if (this.freeSlots < 1) throw new Error("packed driver: ring full");
      const table = this.ram.alloc(16 * bufs.length);
      bufs.forEach((b, i) => {
        const at = table + 16 * i;
        this.ram.setU64(at, b.addr);
        this.ram.setU32(at + 8, b.len);
        this.ram.setU16(at + 12, 0);
        this.ram.setU16(at + 14, b.write ? VIRTQ_DESC_F_WRITE : 0);
      });
      this.writeSlot(head, table, 16 * bufs.length, id, 0); // flags last
      this.advance(1);
      this.num.set(id, 1);
      this.ram.setU16(this.ringAddr + 16 * head + 14, VIRTQ_DESC_F_INDIRECT | headWrapFlags);
      return { id, inAddrs };
    }
    if (this.freeSlots < bufs.length) throw new Error("packed driver: ring full");
    let headFlags = 0;
    bufs.forEach((b, i) => {
      const last = i === bufs.length - 1;
      const flags = this.availUsedFlags | (last ? 0 : VIRTQ_DESC_F_NEXT) | (b.write ? VIRTQ_DESC_F_WRITE : 0);
      const slot = this.nextAvail;
      this.writeSlot(slot, b.addr, b.len, id, slot === head ? 0 : flags);
      if (slot === head) headFlags = flags;
      this.advance(1);
    });
    this.num.set(id, bufs.length);
    // "A driver MUST NOT make the first descriptor in the list available before all subsequent
    // descriptors comprising the list are made available."
    this.ram.setU16(this.ringAddr + 16 * head + 14, headFlags);
    return { id, inAddrs };
  }

  /** Descriptors made available since the last kickPrepare(). */
  private numAdded = 0;

  /** virtqueue_kick_prepare_packed(): whether the device wants a notification now. */
  kickPrepare(): boolean {
    const newIdx = this.nextAvail;
    const oldIdx = (newIdx - this.numAdded) & 0xffff;
    this.numAdded = 0;
    const offWrap = this.ram.u16(this.deviceAddr);
    const flags = this.ram.u16(this.deviceAddr + 2);
    if (flags !== RING_EVENT_FLAGS_DESC) return flags !== RING_EVENT_FLAGS_DISABLE;
    let event = offWrap & 0x7fff;
    if (offWrap >> 15 !== (this.availWrap ? 1 : 0)) event -= this.size;
    return vringNeedEvent(event & 0xffff, newIdx, oldIdx);
  }

  private advance(n: number): void {
    this.numAdded += n;
    this.freeSlots -= n;
    this.nextAvail += n;
    if (this.nextAvail >= this.size) {
      this.nextAvail -= this.size;
      this.availWrap = !this.availWrap;
    }
  }

  /** virtqueue_get_buf_ctx_packed(): used buffers since the last call. */
  used(): (UsedEntry & { flags: number })[] {
    const out: (UsedEntry & { flags: number })[] = [];
    for (;;) {
      const at = this.ringAddr + 16 * this.lastUsed;
      const flags = this.ram.u16(at + 14);
      const avail = (flags & VIRTQ_DESC_F_AVAIL) !== 0;
      const used = (flags & VIRTQ_DESC_F_USED) !== 0;
      if (!(avail === used && used === this.usedWrap)) break;
      const id = this.ram.u16(at + 12);
      const len = this.ram.u32(at + 8);
      const n = this.num.get(id);
      if (n === undefined) throw new Error(`packed driver: id ${id} is not a head`);
      out.push({ id, len, flags });
      this.num.delete(id);
      this.freeIds.push(id);
      this.freeSlots += n;
      this.lastUsed += n;
      if (this.lastUsed >= this.size) {
        this.lastUsed -= this.size;
        this.usedWrap = !this.usedWrap;
      }
    }
    return out;
  }

  /** The driver event suppression structure (read by the device). */
  setDriverEvent(flags: number, offWrap = 0): void {
    this.ram.setU16(this.driverAddr, offWrap);
    this.ram.setU16(this.driverAddr + 2, flags);
  }
  /** off_wrap of the next used slot, as virtqueue_enable_cb_prepare_packed() writes it. */
  get nextUsedOffWrap(): number {
    return this.lastUsed | (this.usedWrap ? 0x8000 : 0);
  }
  get deviceEventFlags(): number {
    return this.ram.u16(this.deviceAddr + 2);
  }
}

// ---- virtio_mmio.c, as a sequence of register accesses ----------------------------------------

export function mmioRead(t: VirtioMmioTransport, offset: number): number {
  const v = t.load(offset, 4);
  if (typeof v !== "number") throw new Error(`read of 0x${offset.toString(16)} faulted`);
  return v;
}
export function mmioWrite(t: VirtioMmioTransport, offset: number, value: number): void {
  if (!t.store(offset, 4, value)) throw new Error(`write of 0x${offset.toString(16)} faulted`);
}

export interface LinuxProbe {
  /** What the driver read from DeviceFeatures. */
  deviceFeatures: bigint;
  /** Whether the device kept FEATURES_OK. */
  featuresOk: boolean;
  drivers: (SplitDriver | PackedDriver)[];
}

/**
 * register_virtio_device() + virtio_dev_probe() + vm_find_vqs() + virtio_device_ready(), with
 * `accept` choosing the driver features from the offered ones.
 */
export function linuxProbe(
  t: VirtioMmioTransport,
  ram: FakeRam,
  accept: (offered: bigint) => bigint,
  queueSizes?: number[],
): LinuxProbe {
  mmioWrite(t, R.Status, 0); // vm_reset
  mmioWrite(t, R.Status, ACKNOWLEDGE);
  mmioWrite(t, R.Status, ACKNOWLEDGE | DRIVER);
  mmioWrite(t, R.DeviceFeaturesSel, 1);
  let deviceFeatures = BigInt(mmioRead(t, R.DeviceFeatures)) << 32n;
  mmioWrite(t, R.DeviceFeaturesSel, 0);
  deviceFeatures |= BigInt(mmioRead(t, R.DeviceFeatures));
  const features = accept(deviceFeatures);
  mmioWrite(t, R.DriverFeaturesSel, 1);
  mmioWrite(t, R.DriverFeatures, Number(features >> 32n));
  mmioWrite(t, R.DriverFeaturesSel, 0);
  mmioWrite(t, R.DriverFeatures, Number(features & 0xffff_ffffn));
  mmioWrite(t, R.Status, ACKNOWLEDGE | DRIVER | FEATURES_OK);
  const featuresOk = (mmioRead(t, R.Status) & FEATURES_OK) !== 0;
  const drivers: (SplitDriver | PackedDriver)[] = [];
  if (!featuresOk) return { deviceFeatures, featuresOk, drivers };
  const packed = (features & (1n << 34n)) !== 0n;
  const count = queueSizes?.length ?? t.device.queueSizes.length;
  let at = ram.base + 0x1000;
  for (let i = 0; i < count; i++) {
    mmioWrite(t, R.QueueSel, i);
    if (mmioRead(t, R.QueueReady) !== 0) throw new Error("queue already set up");
    const max = mmioRead(t, R.QueueNumMax);
    const num = Math.min(max, queueSizes?.[i] ?? max);
    const d = packed ? new PackedDriver(ram, num, at) : new SplitDriver(ram, num, at);
    at += 0x10000;
    mmioWrite(t, R.QueueNum, num);
    const [desc, drv, dev] = d instanceof SplitDriver ? [d.descAddr, d.availAddr, d.usedAddr] : [d.ringAddr, d.driverAddr, d.deviceAddr];
    mmioWrite(t, R.QueueDescLow, desc);
    mmioWrite(t, R.QueueDescHigh, 0);
    mmioWrite(t, R.QueueDriverLow, drv);
    mmioWrite(t, R.QueueDriverHigh, 0);
    mmioWrite(t, R.QueueDeviceLow, dev);
    mmioWrite(t, R.QueueDeviceHigh, 0);
    mmioWrite(t, R.QueueReady, 1);
    drivers.push(d);
  }
  mmioWrite(t, R.Status, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
  return { deviceFeatures, featuresOk, drivers };
}

/** vm_interrupt(): reads InterruptStatus and acknowledges it; returns what was pending. */
export function takeInterrupt(t: VirtioMmioTransport): number {
  const status = mmioRead(t, R.InterruptStatus);
  if (status) mmioWrite(t, R.InterruptACK, status);
  return status;
}
