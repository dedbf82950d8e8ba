// Snapshots of a VirtioBlk: its state (state.ts: negotiated features, the sticky flush-failure
// flag and counters) in a JSON-safe form. The configuration space is derived from the backend and
// the constructor options, so a snapshot only records it to check that it is restored onto the
// same kind of disk.
//
// In-flight requests cannot be snapshotted: their host I/O promises and the guest buffers they
// point at have no serializable form, and the chains were already taken from the available ring.
// Take a snapshot only when the device is quiescent: stop the vCPUs (no new kicks), then
// `await device.drain()`; saveVirtioBlk throws if requests are still in flight. The disk image
// itself is not part of the snapshot (flush it and copy/reflink the file alongside).

import type { VirtioBlk } from "./device.ts";
import { newCounters, type VirtioBlkCounters } from "./state.ts";

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
