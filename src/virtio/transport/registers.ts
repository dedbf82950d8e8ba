// The virtio-mmio register file's state (virtio spec 4.2.2): each queue's registers, the driver's
// feature words, the transport's counters, and building a virtqueue from a queue's registers
// when the driver sets QueueReady. The transport (mmio.ts) decides when each may be written.
import type { GuestMemory } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_PACKED, VirtioMmioRegister as R, hasFeature } from "../constants.ts";
import { u64FromHalves } from "../memory.ts";
import { PackedVirtqueue } from "../queue/packed.ts";
import { SplitVirtqueue, isPowerOfTwo, type VirtqueueConfig } from "../queue/split.ts";
import type { CoalesceCounters } from "./coalesce.ts";

export interface VirtioMmioCounters extends CoalesceCounters {
  /** QueueNotify writes per queue (accepted or not). */
  notifications: number[];
  /** Notifications not passed to the device: before DRIVER_OK, after NEEDS_RESET/FAILED, bad or unready queue. */
  notificationsIgnored: number;
  /** Used-buffer interrupts requested (InterruptStatus bit 0 set). */
  usedInterrupts: number;
  /** notifyUsed() calls the queue's event suppression said need no interrupt. */
  usedInterruptsSuppressed: number;
  /** Configuration-change interrupts requested (InterruptStatus bit 1 set). */
  configInterrupts: number;
  /** Times the interrupt line went from low to high. */
  irqAssertions: number;
  /** Accepted status transitions, including resets. */
  statusTransitions: number;
  /** Status writes the transition table does not allow (ignored). */
  invalidStatusWrites: number;
  /** FEATURES_OK writes refused because of the driver's feature set. */
  featuresRefused: number;
  /** QueueReady = 1 writes refused (bad size or layout): the device then needs a reset. */
  queueConfigErrors: number;
  /** Register writes outside the window the spec allows them in, or to read-only registers. */
  ignoredWrites: number;
  /** Reads of write-only or reserved registers (answered with 0). */
  ignoredReads: number;
  /** Accesses that faulted: wrong width or alignment, config space the device refused. */
  faultedAccesses: number;
  resets: number;
  /** Times the device entered DEVICE_NEEDS_RESET. */
  needsReset: number;
  /** Chains the queues consumed and rejected as malformed. */
  rejectedChains: number;
}

export function newMmioCounters(queueCount: number): VirtioMmioCounters {
  return {
    notifications: new Array<number>(queueCount).fill(0),
    notificationsIgnored: 0,
    usedInterrupts: 0,
    usedInterruptsSuppressed: 0,
    configInterrupts: 0,
    irqAssertions: 0,
    statusTransitions: 0,
    invalidStatusWrites: 0,
    featuresRefused: 0,
    queueConfigErrors: 0,
    ignoredWrites: 0,
    ignoredReads: 0,
    faultedAccesses: 0,
    resets: 0,
    needsReset: 0,
    rejectedChains: 0,
    coalescedCompletions: 0,
    coalesceFlushesByCount: 0,
    coalesceFlushesByTimer: 0,
  };
}

/** A queue the transport builds: split or packed, as negotiated. */
export type RingQueue = SplitVirtqueue | PackedVirtqueue;

/** The registers QueueSel selects (spec 4.2.2), and the virtqueue built from them. */
export interface QueueRegisters {
  readonly max: number;
  num: number;
  ready: boolean;
  descLow: number;
  descHigh: number;
  driverLow: number;
  driverHigh: number;
  deviceLow: number;
  deviceHigh: number;
  vq: RingQueue | undefined;
}

export function freshQueue(max: number): QueueRegisters {
  // QueueNum starts at the maximum, as QEMU does, for drivers that never write it.
  return { max, num: max, ready: false, descLow: 0, descHigh: 0, driverLow: 0, driverHigh: 0, deviceLow: 0, deviceHigh: 0, vq: undefined };
}

/** Stores a write to QueueNum or one of the queue address registers. */
export function writeQueueRegister(q: QueueRegisters, offset: number, v: number): void {
  switch (offset) {
    case R.QueueNum:
      q.num = v;
      break;
    case R.QueueDescLow:
      q.descLow = v;
      break;
    case R.QueueDescHigh:
      q.descHigh = v;
      break;
    case R.QueueDriverLow:
      q.driverLow = v;
      break;
    case R.QueueDriverHigh:
      q.driverHigh = v;
      break;
    case R.QueueDeviceLow:
      q.deviceLow = v;
      break;
    case R.QueueDeviceHigh:
      q.deviceHigh = v;
      break;
  }
}

/**
 * The virtqueue queue `index`'s registers describe under the negotiated features, or why there
 * is none: QueueNum <= QueueNumMax (spec 4.2.2.2), a power of 2 for a split ring (spec 2.7), and
 * a layout the ring's constructor accepts.
 */
export function buildVirtqueue(
  q: QueueRegisters,
  index: number,
  negotiated: bigint,
  memory: GuestMemory,
  onReject: () => void,
): RingQueue | string {
  const packed = hasFeature(negotiated, VIRTIO_F_RING_PACKED);
  if (q.num < 1 || q.num > q.max) return `queue ${index}: QueueNum ${q.num} is outside 1..${q.max}`;
  if (!packed && !isPowerOfTwo(q.num)) return `queue ${index}: QueueNum ${q.num} is not a power of 2`;
  const config: VirtqueueConfig = {
    memory,
    index,
    size: q.num,
    descAddr: u64FromHalves(q.descLow, q.descHigh),
    driverAddr: u64FromHalves(q.driverLow, q.driverHigh),
    deviceAddr: u64FromHalves(q.deviceLow, q.deviceHigh),
    eventIdx: hasFeature(negotiated, VIRTIO_F_EVENT_IDX),
    indirect: hasFeature(negotiated, VIRTIO_F_INDIRECT_DESC),
    onReject,
  };
  try {
    return packed ? new PackedVirtqueue(config) : new SplitVirtqueue(config);
  } catch (e) {
    if (!(e instanceof VirtqueueError)) throw e;
    return e.message;
  }
}

/** Number of 32-bit driver feature words kept (spec 2.2: bits 0-127). */
export const FEATURE_WORDS = 4;

/** DriverFeatures as the driver writes it, a 32-bit word at a time (DriverFeaturesSel). */
export class DriverFeatureWords {
  selector = 0;
  private readonly words = new Uint32Array(FEATURE_WORDS);
  /** A non-zero word was written beyond bit 127: never acceptable. */
  beyond = false;

  write(v: number): void {
    if (this.selector < FEATURE_WORDS) this.words[this.selector] = v;
    else if (v !== 0) this.beyond = true;
  }

  get value(): bigint {
    let f = 0n;
    for (let i = FEATURE_WORDS - 1; i >= 0; i--) f = (f << 32n) | BigInt(this.words[i]);
    return f;
  }

  /** For a snapshot: the selector, the words and the beyond flag. */
  save(): { selector: number; words: number[]; beyond: boolean } {
    return { selector: this.selector, words: [...this.words], beyond: this.beyond };
  }

  load(words: readonly number[], selector: number, beyond: boolean): void {
    this.words.set(words.slice(0, FEATURE_WORDS));
    this.selector = selector;
    this.beyond = beyond;
  }

  clear(): void {
    this.selector = 0;
    this.words.fill(0);
    this.beyond = false;
  }
}

/** The low `bits` (at most 32) bits of a bus value as a non-negative number. */
export function toUint(value: number | bigint, bits: number): number {
  const v = typeof value === "bigint" ? Number(BigInt.asUintN(32, value)) : value >>> 0;
  return bits >= 32 ? v : v & ((1 << bits) - 1);
}
