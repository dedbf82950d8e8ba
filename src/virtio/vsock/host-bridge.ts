// The virtio-vsock device's side of the host socket bridge: the VsockConnection handle a backend
// drives for each stream and the VsockConnectRequest it answers for a guest's REQUEST
// (backend.ts defines both). Everything here acts through BridgeDevice, the device's few
// operations, so the rules for what a backend may do live in one place.
import type { VsockCloseReason, VsockConnection, VsockConnectRequest } from "./backend.ts";
import { consume } from "./credit.ts";
import { disarm, type Conn } from "./connections.ts";
import type { VsockLimits } from "./options.ts";
import { VIRTIO_VSOCK_SHUTDOWN_RCV } from "./spec.ts";

/** What the bridge needs from the device. */
export interface BridgeDevice {
  readonly limits: VsockLimits;
  /** The connection is still the device's and the device works (not DEVICE_NEEDS_RESET). */
  isLive(conn: Conn): boolean;
  /** The connection may have something for the guest. */
  markReady(conn: Conn): void;
  /** Moves packets between the queues and the connections. */
  pump(): void;
  /** Ends the connection, with an RST to the guest when `rst`. */
  abort(conn: Conn, reason: VsockCloseReason, rst: boolean): void;
  /** (Re)starts the connection's timeout. */
  arm(conn: Conn, ms: number): void;
}

/** Whether ending `conn` now owes the guest an RST: unless it never heard of the connection. */
export function guestKnows(conn: Conn): boolean {
  return conn.state !== "host-connecting" || conn.requestSent;
}

/** The handle the backend uses for `conn`; every method is a no-op once the connection is gone. */
export function connectionHandle(device: BridgeDevice, conn: Conn): VsockConnection {
  const live = () => device.isLive(conn);
  const { highWater, hardCap, bufAlloc } = device.limits;
  return {
    guestPort: conn.guestPort,
    hostPort: conn.hostPort,
    get open() {
      return live();
    },
    send: (data) => {
      if (!live() || conn.hostEnded) return false;
      if (conn.guestShutdown & VIRTIO_VSOCK_SHUTDOWN_RCV) return true; // the guest reads no more: discard
      if (data.length === 0) return conn.backlogBytes < highWater;
      conn.backlog.push(data);
      conn.backlogBytes += data.length;
      if (conn.backlogBytes > hardCap) {
        device.abort(conn, "reset", true);
        device.pump();
        return false;
      }
      device.markReady(conn);
      device.pump();
      if (!live()) return false;
      if (conn.backlogBytes >= highWater) {
        if (!conn.paused) {
          conn.paused = true;
          conn.stream?.setFlowing(false);
        }
        return false;
      }
      return true;
    },
    consumed: (bytes) => {
      if (!live() || !(bytes > 0)) return;
      if (consume(conn, bytes, bufAlloc)) {
        conn.sendCredit = true;
        device.markReady(conn);
        device.pump();
      }
    },
    end: () => {
      if (!live() || conn.hostEnded) return;
      conn.hostEnded = true;
      device.markReady(conn);
      device.pump();
    },
    close: () => {
      if (!live()) return;
      conn.stream = undefined; // the backend is done with it: no calls back
      if (conn.state === "host-connecting") {
        device.abort(conn, "reset", conn.requestSent);
        device.pump();
        return;
      }
      conn.hostEnded = true;
      conn.hostClosed = true;
      if (conn.paused) conn.paused = false;
      // However the guest behaves, the connection ends within the close timeout.
      device.arm(conn, device.limits.closeTimeoutMs);
      device.markReady(conn);
      device.pump();
    },
    reset: () => {
      if (!live()) return;
      conn.stream = undefined;
      device.abort(conn, "reset", guestKnows(conn));
      device.pump();
    },
  };
}

/** The request the backend answers for a guest's REQUEST that opened `conn` (guest-connecting). */
export function connectRequest(device: BridgeDevice, conn: Conn): VsockConnectRequest {
  const pending = () => device.isLive(conn) && conn.state === "guest-connecting";
  let answered = false;
  return {
    hostPort: conn.hostPort,
    guestPort: conn.guestPort,
    accept: (stream) => {
      if (answered || !pending()) return undefined;
      answered = true;
      disarm(conn);
      conn.stream = stream;
      conn.state = "established";
      conn.sendResponse = true;
      device.markReady(conn);
      device.pump();
      return conn.handle;
    },
    refuse: () => {
      if (answered || !pending()) return;
      answered = true;
      device.abort(conn, "reset", true);
      device.pump();
    },
  };
}
