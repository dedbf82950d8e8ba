// Virtio over MMIO (virtio spec 4.2), version 2 only (no legacy interface, 4.2.4).
//
// The register block is the one Linux's drivers/virtio/virtio_mmio.c drives (compatible
// "virtio,mmio", 0x200 bytes per device on QEMU's virt machine). Everything the driver writes is
// validated here: the device status follows an explicit transition table, feature negotiation
// refuses features that were not offered, queue registers are only writable while the spec
// allows (4.2.3.2), and each queue's layout is checked before the queue object is built. A
// VirtqueueError from the queues or the device model ends in DEVICE_NEEDS_RESET (spec 2.1.2),
// never in an exception out of load()/store().
import type { AccessSize } from "../../cpu/cpu.ts";
import type { MmioDevice } from "../../devices/mmio-device.ts";
import type { GuestMemory, Virtqueue, VirtioDevice, VirtioDeviceContext } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import {
  ACKNOWLEDGE,
  DEVICE_NEEDS_RESET,
  DRIVER,
  DRIVER_OK,
  FAILED,
  FEATURES_OK,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
  VIRTIO_MMIO_INT_CONFIG,
  VIRTIO_MMIO_INT_VRING,
  VIRTIO_MMIO_MAGIC_VALUE,
  VIRTIO_MMIO_VENDOR_PARLEY,
  VIRTIO_MMIO_VERSION,
  VirtioMmioRegister as R,
  featureBit,
  hasFeature,
} from "../constants.ts";
import { u64FromHalves } from "../memory.ts";
import { SplitVirtqueue, isPowerOfTwo, type VirtqueueConfig } from "../queue/split.ts";
import { PackedVirtqueue } from "../queue/packed.ts";
import { InactiveVirtqueue } from "../queue/inactive.ts";

// ---- Device status state machine (spec 2.1, 3.1.1 "Driver Requirements: Device Initialization")

export type StatusAction = "acknowledge" | "driver" | "featuresOk" | "driverOk" | "failed" | "reset";

/** The states the driver walks through (values of the status field without DEVICE_NEEDS_RESET). */
export const STATUS_RESET = 0;
export const STATUS_ACKNOWLEDGED = ACKNOWLEDGE;
export const STATUS_DRIVER = ACKNOWLEDGE | DRIVER;
export const STATUS_FEATURES_OK = ACKNOWLEDGE | DRIVER | FEATURES_OK;
export const STATUS_LIVE = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;
/** Matches any current state in STATUS_TRANSITIONS. */
export const ANY_STATUS = -1;

/**
 * Every status write the device accepts. Anything else is ignored and counted; writing the
 * current value again is not a transition. DEVICE_NEEDS_RESET is the device's bit: it is masked
 * out of what the driver writes (Linux writes back get_status() | bit).
 */
export const STATUS_TRANSITIONS: readonly { readonly from: number; readonly to: number; readonly action: StatusAction }[] = [
  // Spec 3.1.1 steps 1-2, 3, 5 and 8.
  { from: STATUS_RESET, to: STATUS_ACKNOWLEDGED, action: "acknowledge" },
  { from: STATUS_ACKNOWLEDGED, to: STATUS_DRIVER, action: "driver" },
  // Guarded: refused (the bit stays clear, spec 2.2.2) when the features are not acceptable.
  { from: STATUS_DRIVER, to: STATUS_FEATURES_OK, action: "featuresOk" },
  { from: STATUS_FEATURES_OK, to: STATUS_LIVE, action: "driverOk" },
  // Spec 2.1: FAILED, "the guest has given up on the device", may be added at any stage.
  { from: STATUS_RESET, to: FAILED, action: "failed" },
  { from: STATUS_ACKNOWLEDGED, to: STATUS_ACKNOWLEDGED | FAILED, action: "failed" },
  { from: STATUS_DRIVER, to: STATUS_DRIVER | FAILED, action: "failed" },
  { from: STATUS_FEATURES_OK, to: STATUS_FEATURES_OK | FAILED, action: "failed" },
  { from: STATUS_LIVE, to: STATUS_LIVE | FAILED, action: "failed" },
  // Spec 2.4 / 4.2.2 Status: writing zero resets the device, from any state.
  { from: ANY_STATUS, to: STATUS_RESET, action: "reset" },
];

const transitionIndex = new Map<number, StatusAction>();
for (const t of STATUS_TRANSITIONS) transitionIndex.set(t.from * 256 + t.to, t.action);

/** The action of writing `to` in state `from`, or undefined when the write is not allowed. Pure. */
export function statusTransition(from: number, to: number): StatusAction | undefined {
  if (!Number.isInteger(to) || to < 0 || to > 0xff) return undefined;
  return transitionIndex.get(from * 256 + to) ?? transitionIndex.get(ANY_STATUS * 256 + to);
}

/** Spec 2.2: device-type bits are 0-23 and 50-127; 24-49 belong to the transport and queues. */
export const DEVICE_FEATURE_MASK = (1n << 24n) - 1n | (((1n << 64n) - 1n) ^ ((1n << 50n) - 1n));

/**
 * Spec 2.2.1 / 2.2.2: whether the device accepts the driver's feature set: nothing that was not
 * offered, and VIRTIO_F_VERSION_1 (a version 2 MMIO device has no legacy interface). Pure.
 */
export function featuresAcceptable(offered: bigint, accepted: bigint): string | undefined {
  if ((accepted & ~offered) !== 0n) return `driver accepted features 0x${(accepted & ~offered).toString(16)} that were not offered`;
  if (!hasFeature(accepted, VIRTIO_F_VERSION_1)) return "driver did not accept VIRTIO_F_VERSION_1";
  return undefined;
}

// ---- The transport ---------------------------------------------------------------------------

export interface VirtioMmioOptions {
  device: VirtioDevice;
  memory: GuestMemory;
  /** The interrupt line (level): true while InterruptStatus is not zero. */
  irq: (asserted: boolean) => void;
  /** For the bus's exit counters; defaults to device.name. */
  name?: string;
  /** Offer VIRTIO_F_RING_PACKED (default true). Linux then uses packed rings. */
  offerPacked?: boolean;
  /** Used-buffer interrupt coalescing (default: none, one interrupt decision per notifyUsed). */
  coalesce?: VirtioCoalesce;
  /**
   * Starts the coalescing delay: calls `fire` after `delayUs` microseconds unless the returned
   * function cancels it first. Default: setTimeout, which fires no sooner than about 1 ms in Node
   * and 4 ms in browsers; a host can supply a finer one (src/host/node/precise-timer.ts).
   */
  coalesceTimer?: CoalesceTimer;
}

export type CoalesceTimer = (delayUs: number, fire: () => void) => () => void;

const defaultCoalesceTimer: CoalesceTimer = (delayUs, fire) => {
  const handle = setTimeout(fire, delayUs / 1000);
  return () => clearTimeout(handle);
};

/**
 * Interrupt coalescing, as a NIC's rx-frames / rx-usecs: completions (used buffers) are gathered
 * and the used-buffer interrupt is raised once `maxCompletions` are pending, or `maxDelayUs`
 * microseconds after the first pending one, whichever comes first. Fewer interrupts mean fewer
 * exits (PLIC claim/complete, InterruptStatus, InterruptACK) and less guest interrupt handling
 * per completion, at the price of up to `maxDelayUs` added latency. { 1, 0 } is no coalescing.
 * The delay is a host timer (VirtioMmioOptions.coalesceTimer): while the guest executes, host
 * timers run only between execution slices, so a delay can end later than asked, never sooner.
 */
export interface VirtioCoalesce {
  /** Completions that raise the interrupt at once (1 or more). */
  maxCompletions: number;
  /** Longest wait, in microseconds, after the first pending completion (0: no wait). */
  maxDelayUs: number;
}

/** Throws a RangeError for settings that are not whole, non-negative or that could strand completions. */
export function checkCoalesce(c: VirtioCoalesce): void {
  if (!Number.isSafeInteger(c.maxCompletions) || c.maxCompletions < 1) {
    throw new RangeError(`interrupt coalescing: maxCompletions must be a whole number of at least 1, not ${c.maxCompletions}`);
  }
  if (!Number.isFinite(c.maxDelayUs) || c.maxDelayUs < 0 || c.maxDelayUs > 10_000_000) {
    throw new RangeError(`interrupt coalescing: maxDelayUs must be between 0 and 10000000 microseconds, not ${c.maxDelayUs}`);
  }
  // Without a delay bound, a batch that never reaches maxCompletions (the last requests of a
  // workload) would wait for ever: the driver would hang.
  if (c.maxCompletions > 1 && c.maxDelayUs === 0) {
    throw new RangeError(`interrupt coalescing: ${c.maxCompletions} completions need a delay bound (maxDelayUs > 0)`);
  }
}

export interface VirtioMmioCounters {
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
  /** Interrupt coalescing: completions gathered, and batches ended by the count or by the timer. */
  coalescedCompletions: number;
  coalesceFlushesByCount: number;
  coalesceFlushesByTimer: number;
}

interface QueueRegisters {
  readonly max: number;
  num: number;
  ready: boolean;
  descLow: number;
  descHigh: number;
  driverLow: number;
  driverHigh: number;
  deviceLow: number;
  deviceHigh: number;
  vq: (Virtqueue & { detach(): void }) | undefined;
}

/** The low `bits` (at most 32) bits of a bus value as a non-negative number. */
function toUint(value: number | bigint, bits: number): number {
  const v = typeof value === "bigint" ? Number(BigInt.asUintN(32, value)) : value >>> 0;
  return bits >= 32 ? v : v & ((1 << bits) - 1);
}

/** Number of 32-bit driver feature words kept (spec 2.2: bits 0-127). */
const FEATURE_WORDS = 4;

export class VirtioMmioTransport implements MmioDevice {
  readonly name: string;
  readonly device: VirtioDevice;
  readonly counters: VirtioMmioCounters;
  /** What DeviceFeatures presents. */
  readonly offeredFeatures: bigint;
  private readonly memory: GuestMemory;
  private readonly irq: (asserted: boolean) => void;
  private readonly queueRegs: QueueRegisters[];

  private driverStatus = STATUS_RESET;
  private needsResetReason: string | undefined;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private readonly driverFeatureWords = new Uint32Array(FEATURE_WORDS);
  /** A non-zero word was written beyond bit 127: never acceptable. */
  private driverFeaturesBeyond = false;
  private negotiated = 0n;
  private queueSel = 0;
  private shmSel = 0;
  private interruptStatus = 0;
  private irqLevel = false;
  private generation = 0;
  /** Incremented by every reset: contexts and queues of earlier activations go inert. */
  private epoch = 0;
  private live = false;
  private context: VirtioDeviceContext | undefined;
  private coalesce: VirtioCoalesce | undefined;
  /** Completions waiting for the coalesced interrupt, the queues they are on, and its timer. */
  private pendingCompletions = 0;
  private pendingQueues = new Set<number>();
  private readonly startTimer: CoalesceTimer;
  /** Cancels the running coalescing delay, if any. */
  private cancelTimer: (() => void) | undefined;
  /** Each live queue's counters.used at the last accounting: completions are the difference. */
  private usedSeen: number[] = [];

  constructor(options: VirtioMmioOptions) {
    this.device = options.device;
    this.memory = options.memory;
    this.irq = options.irq;
    this.startTimer = options.coalesceTimer ?? defaultCoalesceTimer;
    this.name = options.name ?? options.device.name;
    let offered = (options.device.deviceFeatures & DEVICE_FEATURE_MASK) | featureBit(VIRTIO_F_VERSION_1);
    offered |= featureBit(VIRTIO_F_EVENT_IDX) | featureBit(VIRTIO_F_INDIRECT_DESC);
    if (options.offerPacked ?? true) offered |= featureBit(VIRTIO_F_RING_PACKED);
    this.offeredFeatures = offered;
    this.queueRegs = options.device.queueSizes.map((max, i) => {
      if (!Number.isInteger(max) || max < 1 || max > 32768) throw new RangeError(`${this.name}: queue ${i} size ${max} is outside 1..32768`);
      return this.freshQueue(max);
    });
    this.counters = {
      notifications: this.queueRegs.map(() => 0),
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
    this.setCoalesce(options.coalesce);
  }

  // ---- interrupt coalescing ------------------------------------------------------------------
  /**
   * Changes the coalescing setting at any time (like `ethtool -C`); undefined or { 1, 0 } turns
   * it off. Completions already waiting are signalled at once, so none waits under a bound that
   * no longer applies.
   */
  setCoalesce(coalesce: VirtioCoalesce | undefined): void {
    if (coalesce) checkCoalesce(coalesce);
    this.flushCoalesced("change");
    const off = !coalesce || coalesce.maxCompletions === 1 || coalesce.maxDelayUs === 0;
    this.coalesce = off ? undefined : { ...coalesce };
  }

  /** The current coalescing setting ({ 1, 0 } when off). */
  get coalescing(): VirtioCoalesce {
    return this.coalesce ? { ...this.coalesce } : { maxCompletions: 1, maxDelayUs: 0 };
  }

  private freshQueue(max: number): QueueRegisters {
    // QueueNum starts at the maximum, as QEMU does, for drivers that never write it.
    return { max, num: max, ready: false, descLow: 0, descHigh: 0, driverLow: 0, driverHigh: 0, deviceLow: 0, deviceHigh: 0, vq: undefined };
  }

  // ---- introspection -----------------------------------------------------------------------
  /** The Status register as the driver reads it. */
  get status(): number {
    return this.driverStatus | (this.needsResetReason !== undefined ? DEVICE_NEEDS_RESET : 0);
  }
  /** Features accepted at FEATURES_OK (0 before). */
  get negotiatedFeatures(): bigint {
    return this.negotiated;
  }
  /** Why the device asked for a reset, or undefined. */
  get needsResetCause(): string | undefined {
    return this.needsResetReason;
  }
  get configGeneration(): number {
    return this.generation;
  }
  get interruptLevel(): boolean {
    return this.irqLevel;
  }
  /** The live queue object of queue `index` (after QueueReady = 1), for tests and statistics. */
  queue(index: number): Virtqueue | undefined {
    return this.queueRegs[index]?.vq;
  }

  // ---- MmioDevice ----------------------------------------------------------------------------
  load(offset: number, size: AccessSize): number | undefined {
    if (offset >= R.Config) return this.loadConfig(offset - R.Config, size);
    // Spec 4.2.2.2: control registers take 32-bit wide, aligned accesses only.
    if (size !== 4 || (offset & 3) !== 0) return this.fault();
    const q = this.queueRegs[this.queueSel];
    switch (offset) {
      case R.MagicValue:
        return VIRTIO_MMIO_MAGIC_VALUE;
      case R.Version:
        return VIRTIO_MMIO_VERSION;
      case R.DeviceID:
        return this.device.deviceId >>> 0;
      case R.VendorID:
        return VIRTIO_MMIO_VENDOR_PARLEY;
      case R.DeviceFeatures:
        return this.deviceFeaturesSel < 2 ? Number((this.offeredFeatures >> BigInt(32 * this.deviceFeaturesSel)) & 0xffff_ffffn) : 0;
      case R.QueueNumMax:
        return q ? q.max : 0; // 0: the queue is not available
      case R.QueueReady:
        return q?.ready ? 1 : 0;
      case R.InterruptStatus:
        return this.interruptStatus;
      case R.Status:
        return this.status;
      case R.SHMLenLow:
      case R.SHMLenHigh:
      case R.SHMBaseLow:
      case R.SHMBaseHigh:
        return 0xffff_ffff; // spec 4.2.2: no shared memory region has this ID (length -1)
      case R.ConfigGeneration:
        return this.generation;
      default:
        this.counters.ignoredReads++;
        return 0;
    }
  }

  store(offset: number, size: AccessSize, value: number | bigint): boolean {
    if (offset >= R.Config) return this.storeConfig(offset - R.Config, size, value);
    if (size !== 4 || (offset & 3) !== 0) return this.fault() ?? false;
    const v = toUint(value, 32);
    const q = this.queueRegs[this.queueSel];
    switch (offset) {
      case R.DeviceFeaturesSel:
        this.deviceFeaturesSel = v;
        break;
      case R.DriverFeatures:
        this.writeDriverFeatures(v);
        break;
      case R.DriverFeaturesSel:
        this.driverFeaturesSel = v;
        break;
      case R.QueueSel:
        this.queueSel = v;
        break;
      case R.QueueNum:
      case R.QueueDescLow:
      case R.QueueDescHigh:
      case R.QueueDriverLow:
      case R.QueueDriverHigh:
      case R.QueueDeviceLow:
      case R.QueueDeviceHigh:
        if (!q || !this.queueConfigurable(q)) this.counters.ignoredWrites++;
        else this.writeQueueRegister(q, offset, v);
        break;
      case R.QueueReady:
        this.writeQueueReady(q, v);
        break;
      case R.QueueNotify:
        this.queueNotify(v);
        break;
      case R.InterruptACK:
        this.interruptStatus &= ~v;
        this.updateIrq();
        break;
      case R.Status:
        this.writeStatus(v);
        break;
      case R.SHMSel:
        this.shmSel = v;
        break;
      default:
        // Read-only and reserved registers, QueueReset (VIRTIO_F_RING_RESET is not offered).
        this.counters.ignoredWrites++;
    }
    return true;
  }

  private fault(): undefined {
    this.counters.faultedAccesses++;
    return undefined;
  }

  // ---- configuration space (spec 4.2.2 Config, 2.5) -------------------------------------------
  private loadConfig(offset: number, size: AccessSize): number | undefined {
    // Spec 4.2.2.2: 8-, 16- and 32-bit accesses, aligned to their width.
    if (size === 8 || offset % size !== 0) return this.fault();
    const value = this.device.readConfig(offset, size);
    if (value === undefined) return this.fault();
    return toUint(value, size * 8);
  }

  private storeConfig(offset: number, size: AccessSize, value: number | bigint): boolean {
    if (size === 8 || offset % size !== 0) return this.fault() ?? false;
    const v = toUint(value, size * 8);
    if (!this.device.writeConfig(offset, size, v)) return this.fault() ?? false;
    return true;
  }

  // ---- features (spec 2.2, 4.2.2 DriverFeatures) ----------------------------------------------
  private writeDriverFeatures(v: number): void {
    // Spec 3.1.1 step 4: features are written after DRIVER and before FEATURES_OK.
    if (this.driverStatus !== STATUS_DRIVER) {
      this.counters.ignoredWrites++;
      return;
    }
    if (this.driverFeaturesSel < FEATURE_WORDS) this.driverFeatureWords[this.driverFeaturesSel] = v;
    else if (v !== 0) this.driverFeaturesBeyond = true;
  }

  private driverFeatures(): bigint {
    let f = 0n;
    for (let i = FEATURE_WORDS - 1; i >= 0; i--) f = (f << 32n) | BigInt(this.driverFeatureWords[i]);
    return f;
  }

  // ---- status ------------------------------------------------------------------------------------
  private writeStatus(v: number): void {
    const to = v & ~DEVICE_NEEDS_RESET;
    // Writing the current value again is not a transition; writing 0 to a device in its initial
    // state (Linux's vm_reset() at probe) has nothing to reset.
    if (to === this.driverStatus && (to !== STATUS_RESET || this.needsResetReason === undefined)) return;
    const action = statusTransition(this.driverStatus, to);
    if (action === undefined) {
      this.counters.invalidStatusWrites++;
      return;
    }
    switch (action) {
      case "reset":
        this.reset();
        break;
      case "featuresOk": {
        const refusal = this.driverFeaturesBeyond ? "driver accepted features beyond bit 127" : featuresAcceptable(this.offeredFeatures, this.driverFeatures());
        if (refusal !== undefined) {
          this.counters.featuresRefused++;
          return; // FEATURES_OK stays clear when read back (spec 3.1.1 step 6)
        }
        this.negotiated = this.driverFeatures();
        this.driverStatus = to;
        break;
      }
      case "driverOk":
        this.driverStatus = to;
        this.activate();
        break;
      case "acknowledge":
      case "driver":
      case "failed":
        this.driverStatus = to;
        break;
    }
    this.counters.statusTransitions++;
  }

  /** Spec 2.4: back to the initial state; everything of the previous activation goes inert. */
  private reset(): void {
    this.epoch++;
    for (const q of this.queueRegs) q.vq?.detach();
    for (let i = 0; i < this.queueRegs.length; i++) this.queueRegs[i] = this.freshQueue(this.queueRegs[i].max);
    this.driverStatus = STATUS_RESET;
    this.needsResetReason = undefined;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.driverFeatureWords.fill(0);
    this.driverFeaturesBeyond = false;
    this.negotiated = 0n;
    this.queueSel = 0;
    this.shmSel = 0;
    this.live = false;
    this.context = undefined;
    this.dropCoalesced(); // the completions belonged to the old activation's rings
    this.interruptStatus = 0; // spec 4.2.2.1: upon reset, InterruptStatus and QueueReady are cleared
    this.updateIrq();
    this.counters.resets++;
    this.device.reset();
  }

  /** Spec 2.1.2: DEVICE_NEEDS_RESET, then (if DRIVER_OK) a configuration change notification. */
  private setNeedsReset(reason: string): void {
    if (this.needsResetReason !== undefined) return;
    this.needsResetReason = reason;
    this.counters.needsReset++;
    if (this.driverStatus & DRIVER_OK) this.raise(VIRTIO_MMIO_INT_CONFIG);
  }

  // ---- queues (spec 4.2.3.2) ------------------------------------------------------------------
  /** Queue registers may be written after FEATURES_OK, before DRIVER_OK, while QueueReady is 0. */
  private queueConfigurable(q: QueueRegisters): boolean {
    return this.driverStatus === STATUS_FEATURES_OK && !q.ready;
  }

  private writeQueueRegister(q: QueueRegisters, offset: number, v: number): void {
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

  private writeQueueReady(q: QueueRegisters | undefined, v: number): void {
    if (!q || (v !== 0 && v !== 1)) {
      this.counters.ignoredWrites++;
      return;
    }
    if (v === 0) {
      // Stop using the queue (4.2.2 QueueReady; Linux's vm_del_vq): allowed at any time.
      q.ready = false;
      q.vq?.detach();
      q.vq = undefined;
      return;
    }
    if (!this.queueConfigurable(q)) {
      this.counters.ignoredWrites++;
      return;
    }
    const index = this.queueSel;
    const packed = hasFeature(this.negotiated, VIRTIO_F_RING_PACKED);
    let error: string | undefined;
    // Spec 4.2.2.2: QueueNum <= QueueNumMax; spec 2.7: a split queue's size is a power of 2.
    if (q.num < 1 || q.num > q.max) error = `queue ${index}: QueueNum ${q.num} is outside 1..${q.max}`;
    else if (!packed && !isPowerOfTwo(q.num)) error = `queue ${index}: QueueNum ${q.num} is not a power of 2`;
    if (error === undefined) {
      const config: VirtqueueConfig = {
        memory: this.memory,
        index,
        size: q.num,
        descAddr: u64FromHalves(q.descLow, q.descHigh),
        driverAddr: u64FromHalves(q.driverLow, q.driverHigh),
        deviceAddr: u64FromHalves(q.deviceLow, q.deviceHigh),
        eventIdx: hasFeature(this.negotiated, VIRTIO_F_EVENT_IDX),
        indirect: hasFeature(this.negotiated, VIRTIO_F_INDIRECT_DESC),
        onReject: () => this.counters.rejectedChains++,
      };
      try {
        q.vq = packed ? new PackedVirtqueue(config) : new SplitVirtqueue(config);
        q.ready = true;
        return;
      } catch (e) {
        if (!(e instanceof VirtqueueError)) throw e;
        error = e.message;
      }
    }
    // The queue stays not ready; the driver cannot use the device as configured.
    this.counters.queueConfigErrors++;
    this.setNeedsReset(error);
  }

  private queueNotify(index: number): void {
    const q = this.queueRegs[index];
    if (!q) {
      this.counters.notificationsIgnored++;
      return;
    }
    this.counters.notifications[index]++;
    if (q.vq) q.vq.counters.notificationsReceived++;
    if (!this.live || this.needsResetReason !== undefined || (this.driverStatus & FAILED) !== 0 || !q.vq) {
      this.counters.notificationsIgnored++;
      return;
    }
    try {
      this.device.queueNotify(index);
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      this.setNeedsReset(e.message);
    }
  }

  // ---- activation (DRIVER_OK) -------------------------------------------------------------------
  private activate(): void {
    if (this.needsResetReason !== undefined) {
      // The driver went on after a refused queue: tell it now that DRIVER_OK is set.
      this.raise(VIRTIO_MMIO_INT_CONFIG);
      return;
    }
    const epoch = this.epoch;
    const queues: Virtqueue[] = this.queueRegs.map((q, i) => q.vq ?? new InactiveVirtqueue(i));
    const current = () => epoch === this.epoch && this.live;
    this.context = {
      memory: this.memory,
      queues,
      features: this.negotiated,
      notifyUsed: (i: number) => {
        if (!current() || this.needsResetReason !== undefined) return;
        const q = queues[i];
        if (!q) return;
        const coalesce = this.coalesce;
        if (!coalesce) {
          this.usedSeen[i] = q.counters.used; // so that coalescing turned on later counts from here
          this.signalUsed(q);
          return;
        }
        // One notifyUsed may stand for several used buffers (a device batches what settled
        // together): count the buffers, not the calls.
        const completions = Math.max(0, q.counters.used - (this.usedSeen[i] ?? 0));
        this.usedSeen[i] = q.counters.used;
        this.pendingQueues.add(i);
        this.pendingCompletions += completions;
        this.counters.coalescedCompletions += completions;
        if (this.pendingCompletions >= coalesce.maxCompletions) {
          this.flushCoalesced("count");
        } else if (this.cancelTimer === undefined) {
          this.cancelTimer = this.startTimer(coalesce.maxDelayUs, () => {
            this.cancelTimer = undefined;
            this.flushCoalesced("timer");
          });
        }
      },
      notifyConfigChange: () => {
        if (!current()) return;
        this.generation = (this.generation + 1) >>> 0;
        this.raise(VIRTIO_MMIO_INT_CONFIG);
      },
      needsReset: (reason: string) => {
        if (!current()) return;
        this.setNeedsReset(reason);
      },
    };
    this.live = true;
    try {
      this.device.activate(this.context);
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      this.setNeedsReset(e.message);
    }
  }

  // ---- interrupts (spec 4.2.2 InterruptStatus / InterruptACK, 4.2.3.4) -----------------------
  /** The driver's suppression (flags / used_event) decides whether used buffers interrupt. */
  private signalUsed(q: Virtqueue): void {
    if (q.shouldInterrupt()) {
      this.counters.usedInterrupts++;
      this.raise(VIRTIO_MMIO_INT_VRING);
    } else {
      this.counters.usedInterruptsSuppressed++;
    }
  }

  /**
   * Ends a coalesced batch: each queue with pending completions asks the driver's suppression
   * now, at the time the interrupt would be raised (the driver may have turned interrupts off,
   * or moved used_event, while the batch gathered). shouldInterrupt() covers every used buffer
   * since its last decision, so one call per queue judges the whole batch.
   */
  private flushCoalesced(why: "count" | "timer" | "change"): void {
    const queues = this.takePending();
    if (queues.length === 0) return;
    if (why === "count") this.counters.coalesceFlushesByCount++;
    else if (why === "timer") this.counters.coalesceFlushesByTimer++;
    const context = this.context;
    if (!context || !this.live || this.needsResetReason !== undefined) return;
    for (const i of queues) {
      const q = context.queues[i];
      if (q) this.signalUsed(q);
    }
  }

  private dropCoalesced(): void {
    this.takePending();
    this.usedSeen = [];
  }

  /** Stops the coalescing delay and empties the batch; returns the queues it had completions on. */
  private takePending(): number[] {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const queues = [...this.pendingQueues];
    this.pendingQueues.clear();
    this.pendingCompletions = 0;
    return queues;
  }

  private raise(bit: number): void {
    if (bit === VIRTIO_MMIO_INT_CONFIG) this.counters.configInterrupts++;
    this.interruptStatus |= bit;
    this.updateIrq();
  }

  private updateIrq(): void {
    const level = this.interruptStatus !== 0;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    if (level) this.counters.irqAssertions++;
    this.irq(level);
  }
}
