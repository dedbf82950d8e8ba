// The virtio-vsock connection table: every live connection by its (guest port, host port) pair,
// the round-robin order of connections with something for the guest, and the host ports the
// device picks for host-initiated connections. A connection's state machine is connection.ts;
// what it sends next is credit.ts.
import type { VsockCloseReason, VsockConnection, VsockHostStream } from "./backend.ts";
import type { VsockState } from "./connection.ts";
import { VSOCK_HOST_PORT_BASE } from "./options.ts";

/** One stream connection between the guest and the host. */
export interface Conn {
  readonly key: string;
  readonly guestPort: number;
  readonly hostPort: number;
  state: Exclude<VsockState, "none">;
  stream: VsockHostStream | undefined;
  handle: VsockConnection | undefined;
  // The guest's receive buffer (5.10.6.3), from every packet it sends for this connection.
  peerBufAlloc: number;
  peerFwdCnt: number;
  /** Payload bytes sent to the guest (free-running u32). */
  txCnt: number;
  // Our receive buffer.
  /** Payload bytes received from the guest (free-running u32). */
  rxCnt: number;
  /** Of those, bytes the backend consumed. */
  fwdCnt: number;
  /** The fwd_cnt the guest last heard from us. */
  advertisedFwdCnt: number;
  // Host-to-guest data.
  backlog: Uint8Array[];
  backlogOffset: number;
  backlogBytes: number;
  /** The backend was told to stop (setFlowing(false)). */
  paused: boolean;
  // Things to tell the guest.
  sendRequest: boolean;
  requestSent: boolean;
  sendResponse: boolean;
  sendCredit: boolean;
  /** The host will send nothing more: SHUTDOWN(SEND) once the backlog is out. */
  hostEnded: boolean;
  /** The host side is finished: SHUTDOWN(RECEIVE|SEND) once the backlog is out, then closing. */
  hostClosed: boolean;
  /** SHUTDOWN flags already sent to the guest. */
  shutdownSent: number;
  /** SHUTDOWN flags received from the guest (permanent, 5.10.6.4). */
  guestShutdown: number;
  cancelTimer: (() => void) | undefined;
}

export function connKey(guestPort: number, hostPort: number): string {
  return `${guestPort}:${hostPort}`;
}

/** A connection in `state` with nothing sent or received yet. */
export function newConn(guestPort: number, hostPort: number, state: Conn["state"], stream: VsockHostStream | undefined): Conn {
  return {
    key: connKey(guestPort, hostPort),
    guestPort,
    hostPort,
    state,
    stream,
    handle: undefined,
    peerBufAlloc: 0,
    peerFwdCnt: 0,
    txCnt: 0,
    rxCnt: 0,
    fwdCnt: 0,
    advertisedFwdCnt: 0,
    backlog: [],
    backlogOffset: 0,
    backlogBytes: 0,
    paused: false,
    sendRequest: false,
    requestSent: false,
    sendResponse: false,
    sendCredit: false,
    hostEnded: false,
    hostClosed: false,
    shutdownSent: 0,
    guestShutdown: 0,
    cancelTimer: undefined,
  };
}

/** Stops the connection's timer, if one runs. */
export function disarm(conn: Conn): void {
  conn.cancelTimer?.();
  conn.cancelTimer = undefined;
}

export class ConnectionTable {
  private readonly conns = new Map<string, Conn>();
  /** Connections that may have something for the guest, in round-robin order. */
  private readonly ready = new Set<Conn>();
  private nextHostPort = VSOCK_HOST_PORT_BASE;

  get size(): number {
    return this.conns.size;
  }

  find(guestPort: number, hostPort: number): Conn | undefined {
    return this.conns.get(connKey(guestPort, hostPort));
  }

  /** Whether `conn` is still the table's connection for its ports (not ended, not replaced). */
  has(conn: Conn): boolean {
    return this.conns.get(conn.key) === conn;
  }

  add(conn: Conn): void {
    this.conns.set(conn.key, conn);
  }

  /** A host port for a new connection to `guestPort`, not in use with it; wraps below 2^32 - 1. */
  allocateHostPort(guestPort: number): number {
    let hostPort = this.nextHostPort;
    while (this.conns.has(connKey(guestPort, hostPort))) hostPort = hostPort >= 0xffff_fffe ? VSOCK_HOST_PORT_BASE : hostPort + 1;
    this.nextHostPort = hostPort >= 0xffff_fffe ? VSOCK_HOST_PORT_BASE : hostPort + 1;
    return hostPort;
  }

  markReady(conn: Conn): void {
    if (this.has(conn)) this.ready.add(conn);
  }

  /** The next ready connection `hasWork` says has something to send; idle ones leave the ready set. */
  nextReady(hasWork: (conn: Conn) => boolean): Conn | undefined {
    for (const conn of this.ready) {
      if (hasWork(conn)) return conn;
      this.ready.delete(conn);
    }
    return undefined;
  }

  /** Round robin: `conn` sent a packet and goes to the back of the line. */
  sent(conn: Conn): void {
    this.ready.delete(conn);
    this.ready.add(conn);
  }

  /** Removes the connection: its timer stops, its backlog goes, its stream hears close(reason). */
  forget(conn: Conn, reason: VsockCloseReason): void {
    if (!this.has(conn)) return;
    disarm(conn);
    this.conns.delete(conn.key);
    this.ready.delete(conn);
    conn.backlog = [];
    conn.backlogBytes = 0;
    const stream = conn.stream;
    conn.stream = undefined;
    stream?.close(reason);
  }

  /** Removes every connection as reset. */
  forgetAll(): void {
    for (const conn of [...this.conns.values()]) this.forget(conn, "reset");
    this.ready.clear();
  }
}
