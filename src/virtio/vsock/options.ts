// The virtio-vsock device's options, their defaults and the bounds they set, and its counters.
import type { HostClock } from "../../platform/clock.ts";
import type { VsockBackend } from "./backend.ts";

export interface VirtioVsockOptions {
  /** The guest's context ID: 3 .. 0xfffffffe (5.10.4: 0, 1, 2 and 0xffffffff are reserved). */
  guestCid: number;
  backend: VsockBackend;
  name?: string;
  /** Concurrent connections, in any state. Default 256. */
  maxConnections?: number;
  /** buf_alloc advertised to the guest per connection (bytes the backend may hold). Default 256 KiB. */
  bufAlloc?: number;
  /** Host-to-guest backlog per connection above which send() says stop. Default 256 KiB. */
  hostBacklogBytes?: number;
  /** Guest must answer a host REQUEST, and the backend a guest REQUEST, within this. Default 10 s. */
  connectTimeoutMs?: number;
  /** After the host closed, the guest must answer with RST within this. Default 5 s. */
  closeTimeoutMs?: number;
  /** Time for the connect and close timeouts (background timers). Default portableClock(). */
  clock?: HostClock;
  /** Size of the rx and tx queues. Default 256. */
  queueSize?: number;
}

export interface VsockCounters {
  packetsFromGuest: number;
  packetsToGuest: number;
  bytesFromGuest: number;
  bytesToGuest: number;
  connectionsOpened: number;
  /** RST packets sent to the guest. */
  resetsSent: number;
  /** REQUESTs refused for the connection limit. */
  refusedLimit: number;
  /** Guests that sent past the advertised credit. */
  creditViolations: number;
  /** Packets dropped without reply (wrong source CID). */
  dropped: number;
  /** RSTs dropped because the reply queue was at its hard cap. */
  resetsDropped: number;
  /** Connections timed out (connect or close). */
  timeouts: number;
}

export function newVsockCounters(): VsockCounters {
  return {
    packetsFromGuest: 0,
    packetsToGuest: 0,
    bytesFromGuest: 0,
    bytesToGuest: 0,
    connectionsOpened: 0,
    resetsSent: 0,
    refusedLimit: 0,
    creditViolations: 0,
    dropped: 0,
    resetsDropped: 0,
    timeouts: 0,
  };
}

/** Largest payload per RW packet (Linux: VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
export const VSOCK_MAX_PKT_PAYLOAD = 64 * 1024;
/** Pending RSTs (for packets without a connection) at which tx processing pauses. */
export const VSOCK_RST_QUEUE_LIMIT = 64;
/** First port the device picks for host-initiated connections (as Firecracker). */
export const VSOCK_HOST_PORT_BASE = 1 << 30;

const DEFAULTS = {
  maxConnections: 256,
  bufAlloc: 256 * 1024,
  hostBacklogBytes: 256 * 1024,
  connectTimeoutMs: 10_000,
  closeTimeoutMs: 5_000,
  queueSize: 256,
};

/** The bounds the device enforces, all chosen by the host (device.ts explains each). */
export interface VsockLimits {
  readonly maxConnections: number;
  readonly bufAlloc: number;
  /** Host-to-guest backlog at which the backend is told to stop. */
  readonly highWater: number;
  /** Host-to-guest backlog at which the connection is reset. */
  readonly hardCap: number;
  readonly connectTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly queueSize: number;
}

/** The options' limits with their defaults; throws a RangeError for a value out of range. */
export function vsockLimits(options: VirtioVsockOptions): VsockLimits {
  const maxConnections = positiveInt("maxConnections", options.maxConnections ?? DEFAULTS.maxConnections);
  const bufAlloc = positiveInt("bufAlloc", options.bufAlloc ?? DEFAULTS.bufAlloc);
  if (bufAlloc > 64 << 20) throw new RangeError(`bufAlloc must be at most 64 MiB, got ${bufAlloc}`);
  const highWater = positiveInt("hostBacklogBytes", options.hostBacklogBytes ?? DEFAULTS.hostBacklogBytes);
  const connectTimeoutMs = positiveInt("connectTimeoutMs", options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
  const closeTimeoutMs = positiveInt("closeTimeoutMs", options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs);
  const queueSize = options.queueSize ?? DEFAULTS.queueSize;
  if (!Number.isInteger(queueSize) || queueSize < 8 || queueSize > 32768 || (queueSize & (queueSize - 1)) !== 0) {
    throw new RangeError(`vsock queue size must be a power of two in [8, 32768], got ${queueSize}`);
  }
  return {
    maxConnections,
    bufAlloc,
    highWater,
    // Room for what a backend reads after being told to stop (one more read, at most 64 KiB in Node).
    hardCap: 2 * highWater + 64 * 1024,
    connectTimeoutMs,
    closeTimeoutMs,
    queueSize,
  };
}

function positiveInt(what: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${what} must be a positive integer, got ${v}`);
  return v;
}
