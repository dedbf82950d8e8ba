// The serializable state of a VirtioBlk, kept apart from the device model: negotiated features, the
// sticky flush-failure flag and counters. The configuration space is derived from the backend and
// the constructor options, so a snapshot only records it to check that it is restored onto the
// same kind of disk.
//
// In-flight requests cannot be snapshotted: their host I/O promises and the guest buffers they
// point at have no serializable form, and the chains were already taken from the available ring.
// Take a snapshot only when the device is quiescent: stop the vCPUs (no new kicks), then
// `await device.drain()`; saveVirtioBlk throws if requests are still in flight. The disk image
// itself is not part of the snapshot (flush it and copy/reflink the file alongside).

import type { VirtioBlk } from "./device.ts";

export interface VirtioBlkCounters {
  /** Requests taken from the queue, by type name (spec.ts requestTypeName). */
  requests: Record<string, number>;
  bytesRead: number;
  bytesWritten: number;
  /** Requests completed with VIRTIO_BLK_S_IOERR (guest errors and backend errors). */
  ioErrors: number;
  /** Requests completed with VIRTIO_BLK_S_UNSUPP. */
  unsupported: number;
  /** Backend operations that rejected. */
  backendErrors: number;
  /** backend.flush() calls, and those that rejected. */
  flushes: number;
  flushFailures: number;
  /** Requests whose host I/O is running now, and the most at any time. */
  inFlight: number;
  inFlightMax: number;
  /** Completions dropped because the device was reset while they ran. */
  droppedAfterReset: number;
  /** Chains that made the device ask for a reset (DEVICE_NEEDS_RESET). */
  malformed: number;
}

export function newCounters(): VirtioBlkCounters {
  return {
    requests: {},
    bytesRead: 0,
    bytesWritten: 0,
    ioErrors: 0,
    unsupported: 0,
    backendErrors: 0,
    flushes: 0,
    flushFailures: 0,
    inFlight: 0,
    inFlightMax: 0,
    droppedAfterReset: 0,
    malformed: 0,
  };
}

/** The device's mutable state that survives a snapshot. */
export interface VirtioBlkState {
  /** Features the driver accepted (0 before activation / after reset). */
  features: bigint;
  /** A flush failed once: every later flush (and write-through write) reports IOERR. */
  flushFailed: boolean;
  counters: VirtioBlkCounters;
}

export function newState(): VirtioBlkState {
  return { features: 0n, flushFailed: false, counters: newCounters() };
}

/** JSON-safe form. */
export interface VirtioBlkSnapshot {
  version: 1;
  name: string;
  /** The configuration space (struct virtio_blk_config, 5.2.4) as hex, for a compatibility check. */
  config: string;
  features: string;
  flushFailed: boolean;
  counters: VirtioBlkCounters;
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

export function saveVirtioBlk(device: VirtioBlk): VirtioBlkSnapshot {
  if (device.inFlight !== 0) {
    throw new Error(`${device.name}: ${device.inFlight} requests in flight; await drain() before a snapshot`);
  }
  const s = device.state;
  return {
    version: 1,
    name: device.name,
    config: hex(device.configBytes()),
    features: "0x" + s.features.toString(16),
    flushFailed: s.flushFailed,
    counters: structuredClone(s.counters),
  };
}

/**
 * Restores the state onto a freshly constructed device over the same disk (same config space).
 * The transport re-activates it with the restored features.
 */
export function restoreVirtioBlk(device: VirtioBlk, snapshot: VirtioBlkSnapshot): void {
  if (snapshot?.version !== 1) throw new Error(`${device.name}: unsupported snapshot version ${String(snapshot?.version)}`);
  if (snapshot.config !== hex(device.configBytes())) {
    throw new Error(`${device.name}: snapshot was taken with a different disk configuration (size or limits)`);
  }
  if (!/^0x[0-9a-f]+$/.test(snapshot.features)) throw new Error(`${device.name}: bad features in snapshot`);
  if (device.inFlight !== 0) throw new Error(`${device.name}: cannot restore while requests are in flight`);
  const counters = { ...newCounters(), ...structuredClone(snapshot.counters) };
  counters.inFlight = 0;
  device.state.features = BigInt(snapshot.features);
  device.state.flushFailed = snapshot.flushFailed === true;
  device.state.counters = counters;
}
