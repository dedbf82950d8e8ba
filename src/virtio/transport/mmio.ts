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
import { portableClock, type HostClock } from "../../platform/clock.ts";
import type { GuestMemory, Virtqueue, VirtioDevice, VirtioDeviceContext } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import {
  DEVICE_NEEDS_RESET,
  DRIVER_OK,
  FAILED,
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
} from "../constants.ts";
import { InactiveVirtqueue } from "../queue/inactive.ts";
import { SnapshotError, hex64 } from "../../platform/persist.ts";

/** A register pair (low, high) as one 64-bit value, and back. */
function u64(low: number, high: number): bigint {
  return (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
}
function halves(value: bigint): [number, number] {
  return [Number(value & 0xffff_ffffn), Number((value >> 32n) & 0xffff_ffffn)];
}
import { InterruptCoalescer, type VirtioCoalesce } from "./coalesce.ts";
import {
  DriverFeatureWords,
  buildVirtqueue,
  freshQueue,
  newMmioCounters,
  toUint,
  writeQueueRegister,
  type QueueRegisters,
  type VirtioMmioCounters,
} from "./registers.ts";
import { checkTransportState, type RestoredTransport, type VirtioMmioState } from "./persist.ts";
import { DEVICE_FEATURE_MASK, STATUS_FEATURES_OK, STATUS_DRIVER, STATUS_RESET, featuresAcceptable, statusTransition } from "./status.ts";

// The transport's parts by job: status.ts (the status state machine), coalesce.ts (interrupt
// coalescing), registers.ts (register state, counters, building queues).
export * from "./status.ts";
export { checkCoalesce, type VirtioCoalesce } from "./coalesce.ts";
export type { VirtioMmioCounters } from "./registers.ts";
export type { VirtioMmioState } from "./persist.ts";

/**
 * running: normal. pausing: pause() waits for the device to quiesce; queue notifications are held,
 * completions the device finishes meanwhile are still signalled. paused: nothing reaches the
 * guest (interrupts are held) and nothing reaches the device (notifications are held) until resume().
 */
type PauseState = "running" | "pausing" | "paused";

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
   * Times the coalescing delay. Default portableClock(), whose timers fire no sooner than about
   * 1 ms in Node and 4 ms in browsers; Node's nodeClock (src/host/node/clock.ts) keeps
   * sub-millisecond delays.
   */
  clock?: HostClock;
}

export class VirtioMmioTransport implements MmioDevice {
  readonly name: string;
  readonly device: VirtioDevice;
  readonly counters: VirtioMmioCounters;
  /** What DeviceFeatures presents. */
  readonly offeredFeatures: bigint;
  private readonly memory: GuestMemory;
  private readonly irq: (asserted: boolean) => void;
  private readonly queueRegs: QueueRegisters[];
  private readonly coalescer: InterruptCoalescer;

  private driverStatus = STATUS_RESET;
  private needsResetReason: string | undefined;
  private deviceFeaturesSel = 0;
  private readonly driverFeatures = new DriverFeatureWords();
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
  private pauseState: PauseState = "running";
  private pauseDone: Promise<void> | undefined;
  /**
   * While paused: queues whose used buffers to signal, queues kicked. (Interrupts raised while
   * paused go into InterruptStatus, which is saved; only the line waits for resume().)
   */
  private readonly heldUsed = new Set<number>();
  private readonly heldNotifications = new Set<number>();
  /** A restored state whose queues and activation wait for resume() (guest RAM may not be back yet). */
  private restored: RestoredTransport | undefined;

  constructor(options: VirtioMmioOptions) {
    this.device = options.device;
    this.memory = options.memory;
    this.irq = options.irq;
    this.name = options.name ?? options.device.name;
    let offered = (options.device.deviceFeatures & DEVICE_FEATURE_MASK) | featureBit(VIRTIO_F_VERSION_1);
    offered |= featureBit(VIRTIO_F_EVENT_IDX) | featureBit(VIRTIO_F_INDIRECT_DESC);
    if (options.offerPacked ?? true) offered |= featureBit(VIRTIO_F_RING_PACKED);
    this.offeredFeatures = offered;
    this.queueRegs = options.device.queueSizes.map((max, i) => {
      if (!Number.isInteger(max) || max < 1 || max > 32768) throw new RangeError(`${this.name}: queue ${i} size ${max} is outside 1..32768`);
      return freshQueue(max);
    });
    this.counters = newMmioCounters(this.queueRegs.length);
    this.coalescer = new InterruptCoalescer(options.clock ?? portableClock(), this.counters, (queues) => this.signalBatch(queues));
    this.setCoalesce(options.coalesce);
  }

  // ---- interrupt coalescing ------------------------------------------------------------------
  /**
   * Changes the coalescing setting at any time (like `ethtool -C`); undefined or { 1, 0 } turns
   * it off. Completions already waiting are signalled at once, so none waits under a bound that
   * no longer applies.
   */
  setCoalesce(coalesce: VirtioCoalesce | undefined): void {
    this.coalescer.configure(coalesce);
  }

  /** The current coalescing setting ({ 1, 0 } when off). */
  get coalescing(): VirtioCoalesce {
    return this.coalescer.coalescing;
  }

  // ---- pause and resume -----------------------------------------------------------------------
  /** Whether pause() has completed and resume() has not been called (or a restore awaits resume()). */
  get paused(): boolean {
    return this.pauseState === "paused";
  }

  /**
   * Stops the device for a snapshot or a stopped machine. When the promise resolves: the device
   * is quiesced (VirtioDevice.quiesce: in-flight host I/O finished and published, held chains given
   * back, timers stopped, host input held), a coalesced batch still waiting has been signalled
   * (rather than keeping its delay timer across the pause: a snapshot then has no timer to record,
   * and the guest, stopped anyway, only sees that interrupt a little early), and from then on no
   * interrupt is raised and no notification reaches the device until resume(). The harts are
   * expected to be stopped; register accesses meanwhile are still answered. Idempotent.
   */
  pause(): Promise<void> {
    if (this.pauseState === "paused") return Promise.resolve();
    if (this.pauseDone) return this.pauseDone;
    this.pauseState = "pausing";
    this.pauseDone = (async () => {
      try {
        await this.device.quiesce?.();
        this.coalescer.end("pause");
      } finally {
        this.pauseState = "paused";
        this.pauseDone = undefined;
      }
    })();
    return this.pauseDone;
  }

  /**
   * Ends a pause: after a restoreState(), builds the queues and activates the device with the
   * restored features (guest RAM must be restored by now); then the device resumes
   * (VirtioDevice.unquiesce), held interrupts are raised and held notifications delivered.
   */
  resume(): void {
    if (this.pauseState === "running") return;
    if (this.pauseState === "pausing") throw new Error(`${this.name}: resume() before pause() completed`);
    this.pauseState = "running";
    const restored = this.restored;
    this.restored = undefined;
    if (restored) this.reactivate(restored);
    this.device.unquiesce?.();
    this.updateIrq();
    const used = [...this.heldUsed];
    this.heldUsed.clear();
    for (const i of used) this.context?.notifyUsed(i);
    const kicked = [...this.heldNotifications];
    this.heldNotifications.clear();
    for (const i of kicked) this.deliverNotify(i);
  }

  // ---- snapshot (src/platform/persist.ts) -----------------------------------------------------
  /**
   * The transport's state with its queues' and its device's (one nested object). Taken while
   * paused, so that nothing is in flight; the rings themselves are in guest RAM, saved with it.
   */
  saveState(): VirtioMmioState {
    if (this.pauseState !== "paused") throw new Error(`${this.name}: pause() before saveState()`);
    if (this.restored) return structuredClone(this.restored.state);
    return {
      version: 1,
      deviceId: this.device.deviceId,
      status: this.driverStatus,
      needsReset: this.needsResetReason ?? null,
      deviceFeaturesSel: this.deviceFeaturesSel,
      driverFeatures: this.driverFeatures.save(),
      negotiated: hex64(this.negotiated),
      queueSel: this.queueSel,
      shmSel: this.shmSel,
      interruptStatus: this.interruptStatus,
      generation: this.generation,
      live: this.live,
      coalesce: this.coalescer.coalescing,
      counters: structuredClone(this.counters),
      queues: this.queueRegs.map((q) => ({
        num: q.num,
        ready: q.ready,
        desc: hex64(u64(q.descLow, q.descHigh)),
        driver: hex64(u64(q.driverLow, q.driverHigh)),
        device: hex64(u64(q.deviceLow, q.deviceHigh)),
        ring: q.vq ? q.vq.saveState() : null,
      })),
      device: this.device.saveState?.() ?? null,
    };
  }

  /**
   * Restores onto a freshly constructed transport and device (same configuration). Everything is
   * checked first (SnapshotError naming the field; nothing changes), the device's state last. The
   * transport is then paused: resume() rebuilds the queues and re-activates the device with the
   * restored features, without the driver redoing the handshake.
   */
  restoreState(value: unknown): void {
    if (this.driverStatus !== STATUS_RESET || this.live || this.restored || this.counters.statusTransitions !== 0) {
      throw new SnapshotError(`${this.name}: restore onto a freshly constructed transport`);
    }
    const checked = checkTransportState(value, this.name, {
      deviceId: this.device.deviceId,
      offered: this.offeredFeatures,
      queueMax: this.queueRegs.map((q) => q.max),
      memory: this.memory,
      deviceHasState: this.device.restoreState !== undefined,
    });
    if (checked.state.device !== null) this.device.restoreState!(checked.state.device);
    const st = checked.state;
    this.driverStatus = st.status;
    this.needsResetReason = st.needsReset ?? undefined;
    this.deviceFeaturesSel = st.deviceFeaturesSel;
    this.driverFeatures.load(checked.driverFeatureWords, st.driverFeatures.selector, st.driverFeatures.beyond);
    this.negotiated = checked.negotiated;
    this.queueSel = st.queueSel;
    this.shmSel = st.shmSel;
    this.interruptStatus = st.interruptStatus; // the line follows at resume()
    this.generation = st.generation;
    Object.assign(this.counters, structuredClone(st.counters));
    this.setCoalesce(st.coalesce);
    st.queues.forEach((saved, i) => {
      const q = this.queueRegs[i];
      q.num = saved.num;
      [q.descLow, q.descHigh] = halves(checked.queueAddrs[i].desc);
      [q.driverLow, q.driverHigh] = halves(checked.queueAddrs[i].driver);
      [q.deviceLow, q.deviceHigh] = halves(checked.queueAddrs[i].device);
    });
    this.restored = checked;
    this.pauseState = "paused";
  }

  /** resume() after restoreState(): the queues are built over restored RAM and the device activated. */
  private reactivate(restored: RestoredTransport): void {
    restored.state.queues.forEach((saved, i) => {
      const q = this.queueRegs[i];
      if (!saved.ready || !saved.ring) return;
      const vq = buildVirtqueue(q, i, this.negotiated, this.memory, () => this.counters.rejectedChains++);
      if (typeof vq === "string") {
        // Checked at restore; RAM can only have shrunk if the machine was built differently.
        this.setNeedsReset(vq);
        return;
      }
      if (vq.kind === "split" && saved.ring.kind === "split") vq.applyState(saved.ring);
      else if (vq.kind === "packed" && saved.ring.kind === "packed") vq.applyState(saved.ring);
      this.coalescer.seen(i, vq.counters.used);
      q.vq = vq;
      q.ready = true;
    });
    if (!restored.state.live || this.needsResetReason !== undefined) return;
    this.activate();
    // As if every ready queue had been kicked: a kick that arrived while the original was pausing
    // is not in the snapshot, and a device only polls its rings when told to.
    restored.state.queues.forEach((saved, i) => {
      if (saved.ready) this.deliverNotify(i);
    });
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
        this.driverFeatures.selector = v;
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
        else writeQueueRegister(q, offset, v);
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
    this.driverFeatures.write(v);
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
        const refusal = this.driverFeatures.beyond ? "driver accepted features beyond bit 127" : featuresAcceptable(this.offeredFeatures, this.driverFeatures.value);
        if (refusal !== undefined) {
          this.counters.featuresRefused++;
          return; // FEATURES_OK stays clear when read back (spec 3.1.1 step 6)
        }
        this.negotiated = this.driverFeatures.value;
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
    for (let i = 0; i < this.queueRegs.length; i++) this.queueRegs[i] = freshQueue(this.queueRegs[i].max);
    this.driverStatus = STATUS_RESET;
    this.needsResetReason = undefined;
    this.deviceFeaturesSel = 0;
    this.driverFeatures.clear();
    this.negotiated = 0n;
    this.queueSel = 0;
    this.shmSel = 0;
    this.live = false;
    this.context = undefined;
    this.coalescer.drop(); // the completions belonged to the old activation's rings
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
    const vq = buildVirtqueue(q, this.queueSel, this.negotiated, this.memory, () => this.counters.rejectedChains++);
    if (typeof vq !== "string") {
      q.vq = vq;
      q.ready = true;
      return;
    }
    // The queue stays not ready; the driver cannot use the device as configured.
    this.counters.queueConfigErrors++;
    this.setNeedsReset(vq);
  }

  private queueNotify(index: number): void {
    const q = this.queueRegs[index];
    if (!q) {
      this.counters.notificationsIgnored++;
      return;
    }
    this.counters.notifications[index]++;
    if (q.vq) q.vq.counters.notificationsReceived++;
    if (this.pauseState !== "running") {
      // The harts should be stopped; a kick that still comes is handled at resume().
      this.heldNotifications.add(index);
      return;
    }
    this.deliverNotify(index);
  }

  private deliverNotify(index: number): void {
    const q = this.queueRegs[index];
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
        if (this.pauseState === "paused") {
          this.heldUsed.add(i);
          return;
        }
        if (!this.coalescer.add(i, q.counters.used)) this.signalUsed(q);
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
  private signalBatch(queues: number[]): void {
    const context = this.context;
    if (!context || !this.live || this.needsResetReason !== undefined) return;
    for (const i of queues) {
      const q = context.queues[i];
      if (q) this.signalUsed(q);
    }
  }

  private raise(bit: number): void {
    if (bit === VIRTIO_MMIO_INT_CONFIG) this.counters.configInterrupts++;
    this.interruptStatus |= bit;
    this.updateIrq();
  }

  private updateIrq(): void {
    const level = this.interruptStatus !== 0;
    // Paused: the line may drop (an acknowledgement) but rises only at resume().
    if (level && this.pauseState === "paused") return;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    if (level) this.counters.irqAssertions++;
    this.irq(level);
  }
}
