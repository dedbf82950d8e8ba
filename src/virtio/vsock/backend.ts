// The host side of virtio-vsock, as the device model sees it. The device (device.ts) speaks the
// virtio protocol with the guest; a backend (Node: src/host/node/vsock-uds.ts) connects each
// stream to something on the host. Pure interfaces: no Node, no DOM.
//
// Every stream is addressed by (guest port, host port) with the guest at its configured CID and
// the host at CID 2 (VMADDR_CID_HOST).

/** Why a connection ended, as told to the backend's stream. */
export type VsockCloseReason =
  /** Orderly: the guest shut down both directions. Flush what was written, then close. */
  | "closed"
  /** Abortive: RST from the guest, a protocol error, a timeout, device reset. Close now. */
  | "reset";

/** The host end of one connection: implemented by the backend, called by the device. */
export interface VsockHostStream {
  /**
   * Bytes from the guest, in order (the array is the backend's to keep). The backend reports
   * them with VsockConnection.consumed() once written out: until then they count against the
   * receive buffer the device advertised to the guest, which bounds what a backend holds.
   */
  write(data: Uint8Array): void;
  /** The guest will send nothing more (SHUTDOWN with VIRTIO_VSOCK_SHUTDOWN_F_SEND): half-close. */
  end(): void;
  /** The connection is over. No further calls follow, and the connection handle is dead. */
  close(reason: VsockCloseReason): void;
  /**
   * Flow control for host-to-guest data: false once the connection's backlog in the device
   * passed its high-water mark (VsockConnection.send returned false), true when it drained.
   */
  setFlowing(flowing: boolean): void;
  /** Host-initiated connections only: the guest accepted (RESPONSE); `hostPort` is our port. */
  connected(hostPort: number): void;
}

/** The device's end of one connection: given to the backend, called by it. */
export interface VsockConnection {
  readonly guestPort: number;
  readonly hostPort: number;
  /** False once the connection is gone; then every method is a no-op. */
  readonly open: boolean;
  /**
   * Bytes for the guest (the device keeps the array until sent). Returns false when the backlog
   * is above the high-water mark: stop reading until setFlowing(true). A backend that ignores
   * this and goes far past the mark gets the connection reset.
   */
  send(data: Uint8Array): boolean;
  /** The backend wrote out `bytes` of what write() gave it (returns receive credit to the guest). */
  consumed(bytes: number): void;
  /** The host will send nothing more; the guest sees SHUTDOWN(SEND) after the queued data. */
  end(): void;
  /**
   * The host side is finished: after the queued data the guest gets SHUTDOWN(RECEIVE|SEND) and
   * the connection ends when the guest answers RST (or after a timeout). No stream calls follow.
   */
  close(): void;
  /** Abort: RST to the guest now, queued data dropped. No stream calls follow. */
  reset(): void;
}

/** A guest's connection request to host port `hostPort` (REQUEST to CID 2). */
export interface VsockConnectRequest {
  readonly hostPort: number;
  readonly guestPort: number;
  /**
   * The host end is ready: the guest gets RESPONSE. Returns the connection, or undefined when the
   * request is no longer pending (the guest gave up, timeout, device reset): then close `stream`.
   */
  accept(stream: VsockHostStream): VsockConnection | undefined;
  /** Nobody listens there: the guest gets RST. */
  refuse(): void;
}

/** What the device offers the backend for host-initiated connections. */
export interface VsockDeviceApi {
  /**
   * Asks the guest to accept a connection on its port `guestPort` (REQUEST from CID 2). The
   * stream hears connected(hostPort) on RESPONSE or close("reset") on RST/timeout. Undefined
   * when refused at once (driver not ready, too many connections).
   */
  connectToGuest(guestPort: number, stream: VsockHostStream): VsockConnection | undefined;
}

export interface VsockBackend {
  /** Called once by the device's constructor. */
  attach(device: VsockDeviceApi): void;
  /** The guest connects to host port request.hostPort: answer with accept() or refuse(), now or later. */
  connect(request: VsockConnectRequest): void;
}
