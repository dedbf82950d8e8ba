// The virtio-vsock stream connection state machine (virtio spec 1.3, 5.10.6.4 "Stream Sockets")
// as an explicit table, and the credit arithmetic of 5.10.6.3 "Buffer Space Management". Pure.
import {
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
} from "./spec.ts";

/**
 * Device-side connection states. "none" is the absence of a connection for the packet's
 * (guest port, host port) pair.
 *
 * - guest-connecting: the guest sent REQUEST; the backend is connecting to the host service.
 *   Only RESPONSE or RST may reach the guest now (Linux resets a connecting socket on anything
 *   else).
 * - host-connecting: the host asked; the device sent (or will send) REQUEST and waits for
 *   RESPONSE.
 * - established: data flows both ways; SHUTDOWN flags accumulate.
 * - closing: the host side is done and the device sent SHUTDOWN(RECEIVE|SEND); it waits for the
 *   guest's RST (or a timeout), ignoring in-flight data.
 */
export type VsockState = "none" | "guest-connecting" | "host-connecting" | "established" | "closing";

/** What the device does with a packet from the guest. */
export type VsockAction =
  /** Open a connection to the host service (REQUEST with no connection). */
  | "connect"
  /** The guest accepted a host-initiated connection (RESPONSE): established. */
  | "accepted"
  /** Payload for the host (RW). */
  | "data"
  /** The packet's buf_alloc/fwd_cnt are news: maybe more data can go to the guest. */
  | "credit"
  /** Answer with CREDIT_UPDATE. */
  | "credit-request"
  /** Apply SHUTDOWN flags (both set: answer RST and end the connection). */
  | "shutdown"
  /** The guest reset the connection: drop it without a reply. */
  | "closed"
  /** The guest finished closing a connection the host closed (SHUTDOWN in closing): RST, drop. */
  | "finish"
  /** Not valid here: answer RST and drop any connection. */
  | "reset"
  /** Nothing to do. */
  | "ignore";

type Row = Readonly<Partial<Record<number, VsockAction>>>;

/** The table. Ops not listed for a state (including unknown op values) are "reset". */
export const VSOCK_TRANSITIONS: Readonly<Record<VsockState, Row>> = {
  none: {
    [VIRTIO_VSOCK_OP_REQUEST]: "connect",
    // Never answer RST with RST.
    [VIRTIO_VSOCK_OP_RST]: "ignore",
  },
  "guest-connecting": {
    [VIRTIO_VSOCK_OP_RST]: "closed",
    [VIRTIO_VSOCK_OP_CREDIT_UPDATE]: "credit",
    // Answered by the RESPONSE, which carries our credit.
    [VIRTIO_VSOCK_OP_CREDIT_REQUEST]: "ignore",
  },
  "host-connecting": {
    [VIRTIO_VSOCK_OP_RESPONSE]: "accepted",
    [VIRTIO_VSOCK_OP_RST]: "closed",
  },
  established: {
    [VIRTIO_VSOCK_OP_RW]: "data",
    [VIRTIO_VSOCK_OP_CREDIT_UPDATE]: "credit",
    [VIRTIO_VSOCK_OP_CREDIT_REQUEST]: "credit-request",
    [VIRTIO_VSOCK_OP_SHUTDOWN]: "shutdown",
    [VIRTIO_VSOCK_OP_RST]: "closed",
  },
  closing: {
    [VIRTIO_VSOCK_OP_RST]: "closed",
    [VIRTIO_VSOCK_OP_SHUTDOWN]: "finish",
    // Sent before the guest saw our SHUTDOWN: dropped.
    [VIRTIO_VSOCK_OP_RW]: "ignore",
    [VIRTIO_VSOCK_OP_CREDIT_UPDATE]: "ignore",
    [VIRTIO_VSOCK_OP_CREDIT_REQUEST]: "ignore",
  },
};

export function vsockTransition(state: VsockState, op: number): VsockAction {
  return VSOCK_TRANSITIONS[state][op] ?? "reset";
}

/**
 * 5.10.6.3: how many payload bytes the peer can still take,
 * peer_free = peer_buf_alloc - (tx_cnt - peer_fwd_cnt), in u32 arithmetic. A peer whose counters
 * claim more in flight than its buffer (nonsense) gets 0.
 */
export function peerFree(peerBufAlloc: number, txCnt: number, peerFwdCnt: number): number {
  const inFlight = (txCnt - peerFwdCnt) >>> 0;
  return inFlight > peerBufAlloc >>> 0 ? 0 : (peerBufAlloc >>> 0) - inFlight;
}

/**
 * Whether `len` more bytes from the peer fit in our receive buffer of `bufAlloc` bytes, given
 * rxCnt bytes received and fwdCnt of them consumed (both free-running u32).
 */
export function fitsOurBuffer(bufAlloc: number, rxCnt: number, fwdCnt: number, len: number): boolean {
  return ((rxCnt - fwdCnt) >>> 0) + len <= bufAlloc;
}
