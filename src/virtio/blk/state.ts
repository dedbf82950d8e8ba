// The mutable state of a VirtioBlk that outlives a device reset and goes into a snapshot:
// negotiated features, the sticky flush-failure flag and the counters (saved by VirtioBlk.saveState).
// Its own module so that tests and reports can use the types without the device.

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
