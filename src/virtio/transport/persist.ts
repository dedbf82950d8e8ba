// The virtio-mmio transport's snapshot: its registers, its queues' device-side state and its
// device's state as one nested, JSON-safe object (src/platform/persist.ts), and the checks a
// restore makes before anything changes. Pure: the transport (mmio.ts) applies what this accepts.
import { SnapshotError, stateArray, stateBool, stateInt, stateObject, stateRecord, stateString, stateU64, type VersionedState } from "../../platform/persist.ts";
import { VIRTIO_F_RING_PACKED, hasFeature } from "../constants.ts";
import { checkPackedQueueState, packedLayoutError, type PackedQueueState } from "../queue/packed.ts";
import { checkSplitQueueState, isPowerOfTwo, splitLayoutError, type SplitQueueState } from "../queue/split.ts";
import type { GuestMemory } from "../types.ts";
import { INVALID_ADDRESS } from "../memory.ts";
import { checkCoalesce, type VirtioCoalesce } from "./coalesce.ts";
import { FEATURE_WORDS, newMmioCounters, type VirtioMmioCounters } from "./registers.ts";
import { STATUS_TRANSITIONS, featuresAcceptable } from "./status.ts";
import { DRIVER_OK, FEATURES_OK } from "../constants.ts";

export interface VirtioMmioQueueState {
  /** QueueNum as the driver wrote it. */
  num: number;
  ready: boolean;
  /** QueueDesc / QueueDriver / QueueDevice as 64-bit hex. */
  desc: string;
  driver: string;
  device: string;
  /** The ring's device-side state while the queue is ready, else null. */
  ring: SplitQueueState | PackedQueueState | null;
}

export interface VirtioMmioState extends VersionedState {
  version: 1;
  /** The device ID, to refuse a restore onto another kind of device. */
  deviceId: number;
  /** Status as the driver wrote it (DEVICE_NEEDS_RESET is `needsReset`). */
  status: number;
  /** Why the device asked for a reset (DEVICE_NEEDS_RESET), or null. */
  needsReset: string | null;
  deviceFeaturesSel: number;
  driverFeatures: { selector: number; words: number[]; beyond: boolean };
  /** Features accepted at FEATURES_OK, 64-bit hex. */
  negotiated: string;
  queueSel: number;
  shmSel: number;
  interruptStatus: number;
  generation: number;
  /** The device was activated (DRIVER_OK) and not reset since. */
  live: boolean;
  coalesce: VirtioCoalesce;
  counters: VirtioMmioCounters;
  queues: VirtioMmioQueueState[];
  /** The device's own state (VirtioDevice.saveState), or null for a device without one. */
  device: VersionedState | null;
}

/** What the transport being restored is: the state must fit it. */
export interface TransportShape {
  deviceId: number;
  offered: bigint;
  queueMax: readonly number[];
  memory: GuestMemory;
  deviceHasState: boolean;
}

/** A checked state and the values parsed out of it. */
export interface RestoredTransport {
  state: VirtioMmioState;
  negotiated: bigint;
  driverFeatureWords: number[];
  queueAddrs: { desc: bigint; driver: bigint; device: bigint }[];
}

/** Every status value the transition table can reach. */
const REACHABLE_STATUS = new Set<number>([0, ...STATUS_TRANSITIONS.map((t) => t.to)]);

function checkCounters(value: unknown, where: string, queues: number): VirtioMmioCounters {
  const r = stateRecord(value, where);
  const out = newMmioCounters(queues);
  for (const key of Object.keys(out) as (keyof VirtioMmioCounters)[]) {
    if (key === "notifications") {
      out.notifications = stateArray(r.notifications, `${where}.notifications`, queues).map((v, i) => stateInt(v, `${where}.notifications[${i}]`));
    } else {
      out[key] = stateInt(r[key], `${where}.${key}`);
    }
  }
  return out;
}

/** A 64-bit register pair as saved; beyond 2^53 it is INVALID_ADDRESS for the layout checks. */
function address(value: unknown, where: string): bigint {
  return stateU64(value, where);
}

function asGuestAddress(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? INVALID_ADDRESS : Number(v);
}

/** Checks a saved transport state against the transport it is restored onto. Throws SnapshotError. */
export function checkTransportState(value: unknown, where: string, shape: TransportShape): RestoredTransport {
  const r = stateObject(value, where, [1]);
  if (r.deviceId !== shape.deviceId) throw new SnapshotError(`${where}.deviceId: ${String(r.deviceId)} is not this device's ID ${shape.deviceId}`);
  const status = stateInt(r.status, `${where}.status`, 0, 0xff);
  if (!REACHABLE_STATUS.has(status)) throw new SnapshotError(`${where}.status: 0x${status.toString(16)} is not a state the driver can reach`);
  const needsReset = r.needsReset === null ? null : stateString(r.needsReset, `${where}.needsReset`);
  const deviceFeaturesSel = stateInt(r.deviceFeaturesSel, `${where}.deviceFeaturesSel`, 0, 0xffff_ffff);
  const df = stateRecord(r.driverFeatures, `${where}.driverFeatures`);
  const words = stateArray(df.words, `${where}.driverFeatures.words`, FEATURE_WORDS).map((w, i) => stateInt(w, `${where}.driverFeatures.words[${i}]`, 0, 0xffff_ffff));
  const driverFeatures = {
    selector: stateInt(df.selector, `${where}.driverFeatures.selector`, 0, 0xffff_ffff),
    words,
    beyond: stateBool(df.beyond, `${where}.driverFeatures.beyond`),
  };
  const negotiated = stateU64(r.negotiated, `${where}.negotiated`);
  if (status & FEATURES_OK) {
    const refusal = featuresAcceptable(shape.offered, negotiated);
    if (refusal) throw new SnapshotError(`${where}.negotiated: ${refusal} (this device offers 0x${shape.offered.toString(16)})`);
  } else if (negotiated !== 0n) {
    throw new SnapshotError(`${where}.negotiated: features before FEATURES_OK`);
  }
  const live = stateBool(r.live, `${where}.live`);
  if (live && !(status & DRIVER_OK)) throw new SnapshotError(`${where}.live: true without DRIVER_OK in status`);
  const c = stateRecord(r.coalesce, `${where}.coalesce`);
  const coalesce = { maxCompletions: stateInt(c.maxCompletions, `${where}.coalesce.maxCompletions`, 1), maxDelayUs: stateInt(c.maxDelayUs, `${where}.coalesce.maxDelayUs`) };
  try {
    checkCoalesce(coalesce);
  } catch (e) {
    throw new SnapshotError(`${where}.coalesce: ${e instanceof Error ? e.message : String(e)}`);
  }
  const packed = hasFeature(negotiated, VIRTIO_F_RING_PACKED);
  const queueCount = shape.queueMax.length;
  const queueAddrs: RestoredTransport["queueAddrs"] = [];
  const queues = stateArray(r.queues, `${where}.queues`, queueCount).map((qv, i): VirtioMmioQueueState => {
    const at = `${where}.queues[${i}]`;
    const q = stateRecord(qv, at);
    const num = stateInt(q.num, `${at}.num`, 0, 0xffff_ffff);
    const ready = stateBool(q.ready, `${at}.ready`);
    const addrs = { desc: address(q.desc, `${at}.desc`), driver: address(q.driver, `${at}.driver`), device: address(q.device, `${at}.device`) };
    queueAddrs.push(addrs);
    let ring: SplitQueueState | PackedQueueState | null = null;
    if (ready) {
      if (!(status & FEATURES_OK)) throw new SnapshotError(`${at}.ready: a ready queue before FEATURES_OK`);
      // The layout rules QueueReady = 1 enforced (registers.ts buildVirtqueue), checked without building.
      const max = shape.queueMax[i];
      const layout =
        num < 1 || num > max
          ? `QueueNum ${num} is outside 1..${max}`
          : packed
            ? packedLayoutError(shape.memory, num, asGuestAddress(addrs.desc), asGuestAddress(addrs.driver), asGuestAddress(addrs.device))
            : !isPowerOfTwo(num)
              ? `QueueNum ${num} is not a power of 2`
              : splitLayoutError(shape.memory, num, asGuestAddress(addrs.desc), asGuestAddress(addrs.driver), asGuestAddress(addrs.device));
      if (layout) throw new SnapshotError(`${at}: ${layout}`);
      ring = packed ? checkPackedQueueState(q.ring, `${at}.ring`, num) : checkSplitQueueState(q.ring, `${at}.ring`, num);
    } else if (q.ring !== null) {
      throw new SnapshotError(`${at}.ring: expected null for a queue that is not ready`);
    }
    return { num, ready, desc: q.desc as string, driver: q.driver as string, device: q.device as string, ring };
  });
  let device: VersionedState | null = null;
  if (shape.deviceHasState) {
    // The device checks its own state (VirtioDevice.restoreState), after everything here passed.
    device = stateRecord(r.device, `${where}.device`) as unknown as VersionedState;
  } else if (r.device !== null) {
    throw new SnapshotError(`${where}.device: this device keeps no state, expected null`);
  }
  const state: VirtioMmioState = {
    version: 1,
    deviceId: shape.deviceId,
    status,
    needsReset,
    deviceFeaturesSel,
    driverFeatures,
    negotiated: r.negotiated as string,
    queueSel: stateInt(r.queueSel, `${where}.queueSel`, 0, 0xffff_ffff),
    shmSel: stateInt(r.shmSel, `${where}.shmSel`, 0, 0xffff_ffff),
    interruptStatus: stateInt(r.interruptStatus, `${where}.interruptStatus`, 0, 3),
    generation: stateInt(r.generation, `${where}.generation`, 0, 0xffff_ffff),
    live,
    coalesce,
    counters: checkCounters(r.counters, `${where}.counters`, queueCount),
    queues,
    device,
  };
  return { state: structuredClone(state), negotiated, driverFeatureWords: words, queueAddrs };
}
