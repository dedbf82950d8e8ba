// Host-to-guest flow of one virtio-vsock connection (virtio spec 1.3, 5.10.6.3 "Buffer Space
// Management"): which packet the device sends the guest next, how much data the guest's credit
// allows, and when the guest must hear about credit the backend returned. The arithmetic itself
// is connection.ts (peerFree).
import { peerFree } from "./connection.ts";
import type { Conn } from "./connections.ts";
import type { VsockHeader } from "./header.ts";
import { VSOCK_MAX_PKT_PAYLOAD } from "./options.ts";
import {
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_SHUTDOWN_MASK,
  VIRTIO_VSOCK_SHUTDOWN_RCV,
  VIRTIO_VSOCK_SHUTDOWN_SEND,
} from "./spec.ts";

export interface OutPacket {
  header: VsockHeader;
  payload?: Uint8Array;
}

/** The header of a packet from the host end of `conn`, with the device's current credit. */
export type HeaderFor = (conn: Conn, op: number, fields?: Partial<VsockHeader>) => VsockHeader;

/** Payload bytes `conn` may send the guest now: what waits, within the guest's credit. */
export function dataAllowed(conn: Conn): number {
  if (conn.state !== "established" || conn.backlogBytes === 0 || conn.guestShutdown & VIRTIO_VSOCK_SHUTDOWN_RCV) return 0;
  return Math.min(conn.backlogBytes, peerFree(conn.peerBufAlloc, conn.txCnt, conn.peerFwdCnt));
}

/** The SHUTDOWN flags due to the guest now (once the backlog is out), or 0. */
export function shutdownDue(conn: Conn): number {
  if (conn.state !== "established") return 0;
  if (conn.backlogBytes > 0 && !(conn.guestShutdown & VIRTIO_VSOCK_SHUTDOWN_RCV)) return 0;
  const want = conn.hostClosed ? VIRTIO_VSOCK_SHUTDOWN_MASK : conn.hostEnded ? VIRTIO_VSOCK_SHUTDOWN_SEND : 0;
  return want & ~conn.shutdownSent ? want : 0;
}

export function hasWork(conn: Conn): boolean {
  return conn.sendRequest || conn.sendResponse || conn.sendCredit || dataAllowed(conn) > 0 || shutdownDue(conn) !== 0;
}

/**
 * The next packet of `conn`, with at most `room` payload bytes, or undefined when nothing fits.
 * Data taken below half the high-water mark lets a paused backend read again.
 */
export function takePacket(conn: Conn, room: number, highWater: number, headerFor: HeaderFor): OutPacket | undefined {
  if (conn.sendRequest) {
    conn.sendRequest = false;
    conn.requestSent = true;
    return { header: headerFor(conn, VIRTIO_VSOCK_OP_REQUEST) };
  }
  if (conn.sendResponse) {
    conn.sendResponse = false;
    return { header: headerFor(conn, VIRTIO_VSOCK_OP_RESPONSE) };
  }
  const n = Math.min(dataAllowed(conn), room, VSOCK_MAX_PKT_PAYLOAD);
  if (n > 0) {
    const payload = takeBacklog(conn, n);
    conn.txCnt = (conn.txCnt + n) >>> 0;
    if (conn.paused && conn.backlogBytes < highWater / 2) {
      conn.paused = false;
      conn.stream?.setFlowing(true);
    }
    return { header: headerFor(conn, VIRTIO_VSOCK_OP_RW, { len: n }), payload };
  }
  const shutdown = shutdownDue(conn);
  if (shutdown) {
    conn.shutdownSent |= shutdown;
    if (shutdown === VIRTIO_VSOCK_SHUTDOWN_MASK) {
      conn.state = "closing"; // the close timer is already running
      conn.backlog = [];
      conn.backlogBytes = 0;
    }
    return { header: headerFor(conn, VIRTIO_VSOCK_OP_SHUTDOWN, { flags: shutdown }) };
  }
  if (conn.sendCredit) return { header: headerFor(conn, VIRTIO_VSOCK_OP_CREDIT_UPDATE) };
  return undefined;
}

/** Removes the first `n` bytes (no more than backlogBytes) of the connection's backlog. */
export function takeBacklog(conn: Conn, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const head = conn.backlog[0];
    const take = Math.min(head.length - conn.backlogOffset, n - at);
    out.set(head.subarray(conn.backlogOffset, conn.backlogOffset + take), at);
    at += take;
    conn.backlogOffset += take;
    if (conn.backlogOffset === head.length) {
      conn.backlog.shift();
      conn.backlogOffset = 0;
    }
  }
  conn.backlogBytes -= n;
  return out;
}

/**
 * The backend wrote out `bytes` more of what the guest sent: they leave our receive buffer.
 * Returns whether the guest should hear a CREDIT_UPDATE now: it may be waiting for credit (it
 * knows less than a full packet of free space), or a good part of the buffer came free.
 */
export function consume(conn: Conn, bytes: number, bufAlloc: number): boolean {
  const outstanding = (conn.rxCnt - conn.fwdCnt) >>> 0;
  conn.fwdCnt = (conn.fwdCnt + Math.min(Math.floor(bytes), outstanding)) >>> 0;
  const unadvertised = (conn.fwdCnt - conn.advertisedFwdCnt) >>> 0;
  const guestViewFree = bufAlloc - ((conn.rxCnt - conn.advertisedFwdCnt) >>> 0);
  return conn.state === "established" && unadvertised > 0 && (guestViewFree < VSOCK_MAX_PKT_PAYLOAD || unadvertised >= bufAlloc / 4);
}
