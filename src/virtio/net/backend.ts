// The host side of a virtio network device: something that carries Ethernet frames (a TAP
// interface, a stream socket to another Parley, a test double). Device models never import Node
// or the DOM; a backend from src/host/* is injected into VirtioNet.

/** What a backend counts on the host side. */
export interface NetBackendCounters {
  /** Frames handed to the host (written to the socket / TAP). */
  framesSent: number;
  bytesSent: number;
  /** Frames received from the host and passed to the device. */
  framesReceived: number;
  bytesReceived: number;
  /** Frames send() dropped, by reason (e.g. "congested", "no-peer", "write-error"). */
  sendDrops: Record<string, number>;
  /** Frames dropped before reaching the device, by reason (e.g. "oversize"). */
  receiveDrops: Record<string, number>;
}

/** A host-side Ethernet link (one frame = destination MAC .. payload, no FCS, no virtio header). */
export interface NetBackend {
  /**
   * Sends one frame to the host. Never blocks and never throws for host-side trouble: a backend
   * may drop the frame when the host side is congested or disconnected, and counts it. The
   * backend may keep `frame` (the caller does not reuse it).
   */
  send(frame: Uint8Array): void;
  /**
   * Installs the receiver of frames from the host (one handler; a later call replaces it). The
   * frame belongs to the receiver: the backend must not reuse or modify it afterwards.
   */
  onReceive(handler: (frame: Uint8Array) => void): void;
  /** Asks the backend to stop delivering frames for now (the guest has no receive buffers). */
  pauseReceive?(): void;
  /** Delivery may resume. */
  resumeReceive?(): void;
  /** Reports host-side link changes (peer connected / gone); the device may mirror it in its status. */
  onLinkChange?(handler: (up: boolean) => void): void;
  /** Whether the host side currently has a link (e.g. a socket peer is connected). */
  readonly linkUp?: boolean;
  /** Host-side counters, when the backend keeps them. */
  readonly counters?: NetBackendCounters;
  /** Releases host resources; pending frames are dropped. Idempotent. */
  close(): Promise<void>;
  /** For logs and --stats, e.g. "tap0" or "socket listen:/tmp/parley.sock (connected)". */
  readonly description: string;
}

/** Fresh zeroed backend counters. */
export function newNetBackendCounters(): NetBackendCounters {
  return { framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0, sendDrops: {}, receiveDrops: {} };
}

/** Adds one to a by-reason counter. */
export function countDrop(drops: Record<string, number>, reason: string): void {
  drops[reason] = (drops[reason] ?? 0) + 1;
}
