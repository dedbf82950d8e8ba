// virtio-vsock: the socket device (virtio spec 1.3, section 5.10), stream sockets between the
// guest (at its configured CID) and the host (CID 2), served by an injected VsockBackend.
//
// Queues: rx (0) carries packets to the guest, tx (1) packets from it, event (2) is never used
// (the only event, TRANSPORT_RESET, follows migration). Every packet is a struct
// virtio_vsock_hdr (header.ts) and, for RW, payload.
//
// The guest is untrusted. Bounds, all chosen by the host:
// - connections: at most maxConnections; a REQUEST beyond that gets RST (5.10.6.4 "insufficient
//   resources");
// - guest-to-host data: the device advertises buf_alloc = bufAlloc per connection and counts
//   what the backend has not yet written out; a guest that sends past that credit is reset, so a
//   payload copy is never larger than bufAlloc;
// - host-to-guest data: a per-connection backlog with a high-water mark (send() returns false,
//   the backend stops reading) and a hard cap (reset);
// - replies: RSTs for packets without a connection wait in a bounded queue; when it is full the
//   device stops taking tx buffers until the guest supplies rx buffers (5.10.6.1 "Virtqueue Flow
//   Control": "additional resources ... eventually exhausted"). Per-connection replies (RESPONSE,
//   CREDIT_UPDATE, SHUTDOWN) are flags, not queue entries.
// - time: connects and closes that the peer never finishes time out.
// A structurally malformed chain (writable tx buffers, no room for a header, len beyond the
// buffers, rx buffer smaller than a header) sets DEVICE_NEEDS_RESET. Imports neither Node nor
// the DOM.
import { VirtqueueError, type DescriptorChain, type GuestBuffer, type GuestMemory, type Virtqueue, type VirtioDevice, type VirtioDeviceContext } from "../types.ts";
import type { VsockBackend, VsockCloseReason, VsockConnection, VsockConnectRequest, VsockHostStream } from "./backend.ts";
import { fitsOurBuffer, peerFree, vsockTransition, type VsockState } from "./connection.ts";
import { parseVsockHeader, replyTo, vsockHeader, writeVsockHeader, type VsockHeader } from "./header.ts";
import {
  featureBit,
  VIRTIO_ID_VSOCK,
  VIRTIO_VSOCK_CONFIG_SIZE,
  VIRTIO_VSOCK_F_NO_IMPLIED_STREAM,
  VIRTIO_VSOCK_F_STREAM,
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_SHUTDOWN_MASK,
  VIRTIO_VSOCK_SHUTDOWN_RCV,
  VIRTIO_VSOCK_SHUTDOWN_SEND,
  VIRTIO_VSOCK_TYPE_STREAM,
  VMADDR_CID_HOST,
  VSOCK_QUEUE_RX,
  VSOCK_QUEUE_TX,
} from "./spec.ts";

export type Schedule = (ms: number, fn: () => void) => () => void;

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
  /** Timer source (tests inject a fake clock). Default: globalThis.setTimeout, unref'd where possible. */
  schedule?: Schedule;
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

const defaultSchedule: Schedule = (ms, fn) => {
  const handle = globalThis.setTimeout(fn, ms) as unknown as { unref?: () => void };
  handle.unref?.();
  return () => globalThis.clearTimeout(handle as unknown as number);
};

interface Conn {
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

type OutPacket = { header: VsockHeader; payload?: Uint8Array };

export class VirtioVsock implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_VSOCK;
  readonly name: string;
  readonly queueSizes: readonly number[];
  /** 5.10.3: stream sockets, and "the device SHOULD offer VIRTIO_VSOCK_F_NO_IMPLIED_STREAM". */
  readonly deviceFeatures = featureBit(VIRTIO_VSOCK_F_STREAM) | featureBit(VIRTIO_VSOCK_F_NO_IMPLIED_STREAM);
  readonly guestCid: number;
  readonly counters: VsockCounters = {
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

  private readonly backend: VsockBackend;
  private readonly maxConnections: number;
  private readonly bufAlloc: number;
  private readonly highWater: number;
  private readonly hardCap: number;
  private readonly connectTimeoutMs: number;
  private readonly closeTimeoutMs: number;
  private readonly schedule: Schedule;
  private readonly config = new Uint8Array(VIRTIO_VSOCK_CONFIG_SIZE);

  private context: VirtioDeviceContext | undefined;
  private broken = false;
  private readonly conns = new Map<string, Conn>();
  /** Connections that may have something for the guest, in round-robin order. */
  private readonly ready = new Set<Conn>();
  private readonly rstQueue: VsockHeader[] = [];
  private nextHostPort = VSOCK_HOST_PORT_BASE;
  private pumping = false;
  private pumpAgain = false;

  constructor(options: VirtioVsockOptions) {
    const cid = options.guestCid;
    if (!Number.isInteger(cid) || cid < 3 || cid >= 0xffff_ffff) throw new RangeError(`guest CID must be in [3, 0xfffffffe], got ${cid}`);
    this.guestCid = cid;
    this.backend = options.backend;
    this.name = options.name ?? "virtio-vsock";
    this.maxConnections = positiveInt("maxConnections", options.maxConnections ?? DEFAULTS.maxConnections);
    this.bufAlloc = positiveInt("bufAlloc", options.bufAlloc ?? DEFAULTS.bufAlloc);
    if (this.bufAlloc > 64 << 20) throw new RangeError(`bufAlloc must be at most 64 MiB, got ${this.bufAlloc}`);
    this.highWater = positiveInt("hostBacklogBytes", options.hostBacklogBytes ?? DEFAULTS.hostBacklogBytes);
    // Room for what a backend reads after being told to stop (one more read, at most 64 KiB in Node).
    this.hardCap = 2 * this.highWater + 64 * 1024;
    this.connectTimeoutMs = positiveInt("connectTimeoutMs", options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
    this.closeTimeoutMs = positiveInt("closeTimeoutMs", options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs);
    this.schedule = options.schedule ?? defaultSchedule;
    const size = options.queueSize ?? DEFAULTS.queueSize;
    if (!Number.isInteger(size) || size < 8 || size > 32768 || (size & (size - 1)) !== 0) {
      throw new RangeError(`vsock queue size must be a power of two in [8, 32768], got ${size}`);
    }
    this.queueSizes = [size, size, 16];
    new DataView(this.config.buffer).setUint32(0, cid, true); // le64 guest_cid, upper half zero
    this.backend.attach({ connectToGuest: (port, stream) => this.connectToGuest(port, stream) });
  }

  /** Live connections (any state). */
  get connectionCount(): number {
    return this.conns.size;
  }

  // ---- VirtioDevice -----------------------------------------------------------------------

  readConfig(offset: number, size: number): number | undefined {
    if ((size !== 1 && size !== 2 && size !== 4) || !Number.isInteger(offset) || offset < 0 || offset + size > VIRTIO_VSOCK_CONFIG_SIZE) return undefined;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.config[offset + i];
    return v;
  }

  writeConfig(_offset: number, _size: number, _value: number): boolean {
    return false; // guest_cid is read-only (5.10.4)
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
    this.broken = false;
    this.pump();
  }

  queueNotify(queueIndex: number): void {
    // rx: new buffers for pending packets; tx: packets from the guest; event: kept, never used.
    if (queueIndex === VSOCK_QUEUE_RX || queueIndex === VSOCK_QUEUE_TX) this.pump();
  }

  reset(): void {
    this.dropAll();
    this.context = undefined;
    this.broken = false;
  }

  // ---- the host side ------------------------------------------------------------------------

  private connectToGuest(guestPort: number, stream: VsockHostStream): VsockConnection | undefined {
    if (!this.context || this.broken) return undefined;
    if (!Number.isInteger(guestPort) || guestPort < 0 || guestPort > 0xffff_ffff) return undefined;
    if (this.conns.size >= this.maxConnections) {
      this.counters.refusedLimit++;
      return undefined;
    }
    let hostPort = this.nextHostPort;
    while (this.conns.has(connKey(guestPort, hostPort))) hostPort = hostPort >= 0xffff_fffe ? VSOCK_HOST_PORT_BASE : hostPort + 1;
    this.nextHostPort = hostPort >= 0xffff_fffe ? VSOCK_HOST_PORT_BASE : hostPort + 1;
    const conn = this.newConn(guestPort, hostPort, "host-connecting", stream);
    conn.sendRequest = true;
    // The guest's credit is unknown until RESPONSE.
    this.arm(conn, this.connectTimeoutMs);
    this.markReady(conn);
    this.pump();
    return conn.handle;
  }

  private newConn(guestPort: number, hostPort: number, state: Conn["state"], stream: VsockHostStream | undefined): Conn {
    const conn: Conn = {
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
    conn.handle = this.makeHandle(conn);
    this.conns.set(conn.key, conn);
    this.counters.connectionsOpened++;
    return conn;
  }

  private makeHandle(conn: Conn): VsockConnection {
    const live = () => this.conns.get(conn.key) === conn && !this.broken;
    return {
      guestPort: conn.guestPort,
      hostPort: conn.hostPort,
      get open() {
        return live();
      },
      send: (data) => {
        if (!live() || conn.hostEnded) return false;
        if (conn.guestShutdown & VIRTIO_VSOCK_SHUTDOWN_RCV) return true; // the guest reads no more: discard
        if (data.length === 0) return conn.backlogBytes < this.highWater;
        conn.backlog.push(data);
        conn.backlogBytes += data.length;
        if (conn.backlogBytes > this.hardCap) {
          this.abort(conn, "reset", true);
          this.pump();
          return false;
        }
        this.markReady(conn);
        this.pump();
        if (!live()) return false;
        if (conn.backlogBytes >= this.highWater) {
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
        const outstanding = (conn.rxCnt - conn.fwdCnt) >>> 0;
        conn.fwdCnt = (conn.fwdCnt + Math.min(Math.floor(bytes), outstanding)) >>> 0;
        // Tell the guest when it may be waiting for credit (it knows less than a full packet
        // of free space) or when a good part of the buffer came free.
        const unadvertised = (conn.fwdCnt - conn.advertisedFwdCnt) >>> 0;
        const guestViewFree = this.bufAlloc - ((conn.rxCnt - conn.advertisedFwdCnt) >>> 0);
        if (conn.state === "established" && unadvertised > 0 && (guestViewFree < VSOCK_MAX_PKT_PAYLOAD || unadvertised >= this.bufAlloc / 4)) {
          conn.sendCredit = true;
          this.markReady(conn);
          this.pump();
        }
      },
      end: () => {
        if (!live() || conn.hostEnded) return;
        conn.hostEnded = true;
        this.markReady(conn);
        this.pump();
      },
      close: () => {
        if (!live()) return;
        conn.stream = undefined; // the backend is done with it: no calls back
        if (conn.state === "host-connecting") {
          this.abort(conn, "reset", conn.requestSent);
          this.pump();
          return;
        }
        conn.hostEnded = true;
        conn.hostClosed = true;
        if (conn.paused) conn.paused = false;
        // However the guest behaves, the connection ends within the close timeout.
        this.arm(conn, this.closeTimeoutMs);
        this.markReady(conn);
        this.pump();
      },
      reset: () => {
        if (!live()) return;
        conn.stream = undefined;
        this.abort(conn, "reset", conn.state !== "host-connecting" || conn.requestSent);
        this.pump();
      },
    };
  }

  /** (Re)starts the connection's timer: when it fires, the connection is reset. */
  private arm(conn: Conn, ms: number): void {
    conn.cancelTimer?.();
    conn.cancelTimer = this.schedule(ms, () => {
      conn.cancelTimer = undefined;
      if (this.conns.get(conn.key) !== conn) return;
      this.counters.timeouts++;
      this.abort(conn, "reset", conn.state !== "host-connecting" || conn.requestSent);
      this.pump();
    });
  }

  private disarm(conn: Conn): void {
    conn.cancelTimer?.();
    conn.cancelTimer = undefined;
  }

  /** Ends a connection: optionally RST to the guest, close the backend's stream, forget it. */
  private abort(conn: Conn, reason: VsockCloseReason, rst: boolean): void {
    if (rst) this.queueRst(this.headerFor(conn, VIRTIO_VSOCK_OP_RST), true);
    this.forget(conn, reason);
  }

  private forget(conn: Conn, reason: VsockCloseReason): void {
    if (this.conns.get(conn.key) !== conn) return;
    this.disarm(conn);
    this.conns.delete(conn.key);
    this.ready.delete(conn);
    conn.backlog = [];
    conn.backlogBytes = 0;
    const stream = conn.stream;
    conn.stream = undefined;
    stream?.close(reason);
  }

  private dropAll(): void {
    for (const conn of [...this.conns.values()]) this.forget(conn, "reset");
    this.rstQueue.length = 0;
    this.ready.clear();
  }

  private markReady(conn: Conn): void {
    if (this.conns.get(conn.key) === conn) this.ready.add(conn);
  }

  // ---- queue processing ---------------------------------------------------------------------

  private pump(): void {
    if (!this.context || this.broken) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      for (;;) {
        this.pumpAgain = false;
        const txBlocked = this.processTx();
        const sent = this.flushRx();
        if (this.broken) break;
        if (!this.pumpAgain && !(txBlocked && sent)) break;
      }
    } finally {
      this.pumping = false;
    }
  }

  private fail(reason: string): void {
    if (this.broken) return;
    this.broken = true;
    const context = this.context;
    this.dropAll();
    context?.needsReset(`${this.name}: ${reason}`);
  }

  private pop(queue: Virtqueue): DescriptorChain | undefined {
    try {
      return queue.pop();
    } catch (e) {
      if (e instanceof VirtqueueError) {
        this.fail(`queue ${queue.index}: ${e.message}`);
        return undefined;
      }
      throw e;
    }
  }

  /** Takes packets from tx. Returns true when it stopped because the RST queue is full. */
  private processTx(): boolean {
    const context = this.context;
    const queue = context?.queues[VSOCK_QUEUE_TX];
    if (!context || !queue) return false;
    let used = 0;
    let blocked = false;
    while (!this.broken) {
      if (this.rstQueue.length >= VSOCK_RST_QUEUE_LIMIT) {
        blocked = true;
        break;
      }
      const chain = this.pop(queue);
      if (!chain) break;
      if (!this.handleTx(context.memory, chain)) return blocked; // failed: the chain is not returned
      queue.pushUsed(chain, 0);
      used++;
    }
    if (used > 0 && !this.broken) context.notifyUsed(VSOCK_QUEUE_TX);
    return blocked;
  }

  /** One packet from the guest. False when the chain is malformed (the device failed). */
  private handleTx(memory: GuestMemory, chain: DescriptorChain): boolean {
    if (chain.writable.length > 0) return this.failed("tx chain has device-writable buffers");
    if (chain.readableLength < VIRTIO_VSOCK_HDR_SIZE) return this.failed(`tx chain of ${chain.readableLength} bytes has no room for a header`);
    const raw = gather(memory, chain.readable, 0, VIRTIO_VSOCK_HDR_SIZE);
    const h = raw && parseVsockHeader(raw);
    if (!h) return this.failed("tx buffer outside RAM");
    if (h.len > chain.readableLength - VIRTIO_VSOCK_HDR_SIZE) return this.failed(`tx packet len ${h.len} exceeds its ${chain.readableLength - VIRTIO_VSOCK_HDR_SIZE}-byte payload buffers`);
    this.counters.packetsFromGuest++;

    // 5.10.6.5: "The guest_cid configuration field MUST be used as the source CID".
    if (h.src_cid !== this.guestCid) {
      this.counters.dropped++;
      return true;
    }
    // Only the host is reachable through this device, and only stream sockets (5.10.6.5: RST
    // for an unknown type).
    if (h.dst_cid !== VMADDR_CID_HOST || h.type !== VIRTIO_VSOCK_TYPE_STREAM) {
      if (h.op !== VIRTIO_VSOCK_OP_RST) this.queueRst(replyTo(h, { op: VIRTIO_VSOCK_OP_RST }), false);
      return true;
    }
    const conn = this.conns.get(connKey(h.src_port, h.dst_port));
    if (conn) {
      conn.peerBufAlloc = h.buf_alloc;
      conn.peerFwdCnt = h.fwd_cnt;
    }
    const action = vsockTransition(conn?.state ?? "none", h.op);
    switch (action) {
      case "connect":
        this.guestConnect(h);
        return true;
      case "accepted":
        if (conn) {
          this.disarm(conn);
          conn.state = "established";
          conn.stream?.connected(conn.hostPort);
          this.markReady(conn);
        }
        return true;
      case "data":
        if (conn) this.dataFromGuest(memory, chain, conn, h);
        return true;
      case "credit":
        if (conn) this.markReady(conn);
        return true;
      case "credit-request":
        if (conn) {
          conn.sendCredit = true;
          this.markReady(conn);
        }
        return true;
      case "shutdown":
        if (conn) this.shutdownFromGuest(conn, h.flags);
        return true;
      case "closed":
        if (conn) this.forget(conn, "reset");
        return true;
      case "finish":
        if (conn) this.abort(conn, "reset", true);
        return true;
      case "reset":
        if (conn) this.abort(conn, "reset", true);
        else this.queueRst(replyTo(h, { op: VIRTIO_VSOCK_OP_RST }), false);
        return true;
      case "ignore":
        return true;
    }
  }

  private failed(reason: string): false {
    this.fail(reason);
    return false;
  }

  private guestConnect(h: VsockHeader): void {
    if (this.conns.size >= this.maxConnections) {
      this.counters.refusedLimit++;
      this.queueRst(replyTo(h, { op: VIRTIO_VSOCK_OP_RST }), false);
      return;
    }
    const conn = this.newConn(h.src_port, h.dst_port, "guest-connecting", undefined);
    conn.peerBufAlloc = h.buf_alloc;
    conn.peerFwdCnt = h.fwd_cnt;
    this.arm(conn, this.connectTimeoutMs);
    const pending = () => this.conns.get(conn.key) === conn && conn.state === "guest-connecting" && !this.broken;
    let answered = false;
    const request: VsockConnectRequest = {
      hostPort: conn.hostPort,
      guestPort: conn.guestPort,
      accept: (stream) => {
        if (answered || !pending()) return undefined;
        answered = true;
        this.disarm(conn);
        conn.stream = stream;
        conn.state = "established";
        conn.sendResponse = true;
        this.markReady(conn);
        this.pump();
        return conn.handle;
      },
      refuse: () => {
        if (answered || !pending()) return;
        answered = true;
        this.abort(conn, "reset", true);
        this.pump();
      },
    };
    this.backend.connect(request);
  }

  private dataFromGuest(memory: GuestMemory, chain: DescriptorChain, conn: Conn, h: VsockHeader): void {
    if (conn.guestShutdown & VIRTIO_VSOCK_SHUTDOWN_SEND) {
      this.abort(conn, "reset", true); // data after "will not send any more data"
      return;
    }
    if (!fitsOurBuffer(this.bufAlloc, conn.rxCnt, conn.fwdCnt, h.len)) {
      // 5.10.6.3: "RW data packets MUST only be transmitted when the peer has sufficient free
      // buffer space". Without this check the guest could make the host hold any amount.
      this.counters.creditViolations++;
      this.abort(conn, "reset", true);
      return;
    }
    if (h.len === 0) return;
    conn.rxCnt = (conn.rxCnt + h.len) >>> 0;
    this.counters.bytesFromGuest += h.len;
    if (!conn.stream) {
      // The host already closed its end: the bytes go nowhere, and count as consumed.
      conn.fwdCnt = (conn.fwdCnt + h.len) >>> 0;
      return;
    }
    const payload = gather(memory, chain.readable, VIRTIO_VSOCK_HDR_SIZE, h.len);
    if (!payload) return void this.fail("tx payload outside RAM");
    conn.stream.write(payload);
  }

  private shutdownFromGuest(conn: Conn, flags: number): void {
    const added = flags & VIRTIO_VSOCK_SHUTDOWN_MASK & ~conn.guestShutdown;
    conn.guestShutdown |= added;
    if (conn.guestShutdown === VIRTIO_VSOCK_SHUTDOWN_MASK) {
      // "Clean disconnect is achieved by one or more VIRTIO_VSOCK_OP_SHUTDOWN packets that
      // indicate no more data will be sent and received, followed by a VIRTIO_VSOCK_OP_RST
      // response from the peer" (5.10.6.4).
      this.abort(conn, "closed", true);
      return;
    }
    if (added & VIRTIO_VSOCK_SHUTDOWN_SEND) conn.stream?.end();
    if (added & VIRTIO_VSOCK_SHUTDOWN_RCV) {
      // The guest reads no more: drop what waits for it and let the host keep going.
      conn.backlog = [];
      conn.backlogOffset = 0;
      conn.backlogBytes = 0;
      if (conn.paused) {
        conn.paused = false;
        conn.stream?.setFlowing(true);
      }
      this.markReady(conn); // a pending SHUTDOWN may now be due
    }
  }

  /**
   * Queues an RST. Guest-caused ones (`hostCaused` false) are limited by pausing tx at
   * VSOCK_RST_QUEUE_LIMIT; host-caused ones are few per connection, but a hard cap still holds.
   */
  private queueRst(h: VsockHeader, hostCaused: boolean): void {
    if (this.rstQueue.length >= VSOCK_RST_QUEUE_LIMIT + (hostCaused ? 2 * this.maxConnections : 0)) {
      this.counters.resetsDropped++;
      return;
    }
    this.rstQueue.push(h);
  }

  private headerFor(conn: Conn, op: number, fields: Partial<VsockHeader> = {}): VsockHeader {
    return vsockHeader({
      src_cid: VMADDR_CID_HOST,
      dst_cid: this.guestCid,
      src_port: conn.hostPort,
      dst_port: conn.guestPort,
      op,
      buf_alloc: this.bufAlloc,
      fwd_cnt: conn.fwdCnt,
      ...fields,
    });
  }

  private dataAllowed(conn: Conn): number {
    if (conn.state !== "established" || conn.backlogBytes === 0 || conn.guestShutdown & VIRTIO_VSOCK_SHUTDOWN_RCV) return 0;
    return Math.min(conn.backlogBytes, peerFree(conn.peerBufAlloc, conn.txCnt, conn.peerFwdCnt));
  }

  private shutdownDue(conn: Conn): number {
    if (conn.state !== "established") return 0;
    if (conn.backlogBytes > 0 && !(conn.guestShutdown & VIRTIO_VSOCK_SHUTDOWN_RCV)) return 0;
    const want = conn.hostClosed ? VIRTIO_VSOCK_SHUTDOWN_MASK : conn.hostEnded ? VIRTIO_VSOCK_SHUTDOWN_SEND : 0;
    return want & ~conn.shutdownSent ? want : 0;
  }

  private hasWork(conn: Conn): boolean {
    return conn.sendRequest || conn.sendResponse || conn.sendCredit || this.dataAllowed(conn) > 0 || this.shutdownDue(conn) !== 0;
  }

  /** The next connection with something to send, dropping idle ones from the ready set. */
  private nextReady(): Conn | undefined {
    for (const conn of this.ready) {
      if (this.hasWork(conn)) return conn;
      this.ready.delete(conn);
    }
    return undefined;
  }

  /** The next packet of `conn`, with at most `room` payload bytes. */
  private takePacket(conn: Conn, room: number): OutPacket | undefined {
    if (conn.sendRequest) {
      conn.sendRequest = false;
      conn.requestSent = true;
      return { header: this.headerFor(conn, VIRTIO_VSOCK_OP_REQUEST) };
    }
    if (conn.sendResponse) {
      conn.sendResponse = false;
      return { header: this.headerFor(conn, VIRTIO_VSOCK_OP_RESPONSE) };
    }
    const n = Math.min(this.dataAllowed(conn), room, VSOCK_MAX_PKT_PAYLOAD);
    if (n > 0) {
      const payload = this.takeBacklog(conn, n);
      conn.txCnt = (conn.txCnt + n) >>> 0;
      if (conn.paused && conn.backlogBytes < this.highWater / 2) {
        conn.paused = false;
        conn.stream?.setFlowing(true);
      }
      return { header: this.headerFor(conn, VIRTIO_VSOCK_OP_RW, { len: n }), payload };
    }
    const shutdown = this.shutdownDue(conn);
    if (shutdown) {
      conn.shutdownSent |= shutdown;
      if (shutdown === VIRTIO_VSOCK_SHUTDOWN_MASK) {
        conn.state = "closing"; // the close timer is already running
        conn.backlog = [];
        conn.backlogBytes = 0;
      }
      return { header: this.headerFor(conn, VIRTIO_VSOCK_OP_SHUTDOWN, { flags: shutdown }) };
    }
    if (conn.sendCredit) return { header: this.headerFor(conn, VIRTIO_VSOCK_OP_CREDIT_UPDATE) };
    return undefined;
  }

  private takeBacklog(conn: Conn, n: number): Uint8Array {
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

  /** Puts pending packets into rx buffers. Returns whether any RST left the queue. */
  private flushRx(): boolean {
    const context = this.context;
    const queue = context?.queues[VSOCK_QUEUE_RX];
    if (!context || !queue) return false;
    let used = 0;
    let rstSent = false;
    let preferRst = true;
    while (!this.broken) {
      // Alternate between connection-less RSTs and connections so neither starves the other.
      const conn = preferRst && this.rstQueue.length > 0 ? undefined : this.nextReady();
      if (!conn && this.rstQueue.length === 0) break;
      const chain = this.pop(queue);
      if (!chain) break;
      if (chain.readable.length > 0 || chain.writableLength < VIRTIO_VSOCK_HDR_SIZE) {
        this.fail(`rx buffer of ${chain.writableLength} writable bytes cannot hold a packet`);
        return rstSent;
      }
      let packet: OutPacket | undefined;
      if (conn) {
        packet = this.takePacket(conn, chain.writableLength - VIRTIO_VSOCK_HDR_SIZE);
        if (packet) {
          conn.sendCredit = false;
          conn.advertisedFwdCnt = conn.fwdCnt;
          // Round robin: to the back of the line.
          this.ready.delete(conn);
          this.ready.add(conn);
        }
      } else {
        packet = { header: this.rstQueue.shift()! };
        rstSent = true;
        this.counters.resetsSent++;
      }
      preferRst = !preferRst;
      if (!packet) {
        // Only data was pending and this buffer holds no payload: give it back empty.
        queue.pushUsed(chain, 0);
        used++;
        continue;
      }
      const written = this.writePacket(context.memory, chain.writable, packet);
      if (written === undefined) {
        this.fail("rx buffer outside RAM");
        return rstSent;
      }
      queue.pushUsed(chain, written);
      used++;
      this.counters.packetsToGuest++;
      this.counters.bytesToGuest += packet.payload?.length ?? 0;
    }
    if (used > 0 && !this.broken) context.notifyUsed(VSOCK_QUEUE_RX);
    return rstSent;
  }

  private writePacket(memory: GuestMemory, buffers: readonly GuestBuffer[], packet: OutPacket): number | undefined {
    const payload = packet.payload ?? new Uint8Array(0);
    const bytes = new Uint8Array(VIRTIO_VSOCK_HDR_SIZE + payload.length);
    writeVsockHeader(bytes, { ...packet.header, len: payload.length });
    bytes.set(payload, VIRTIO_VSOCK_HDR_SIZE);
    let at = 0;
    for (const b of buffers) {
      if (at === bytes.length) break;
      const take = Math.min(b.len, bytes.length - at);
      if (!memory.write(b.addr, bytes.subarray(at, at + take))) return undefined;
      at += take;
    }
    return at;
  }
}

function connKey(guestPort: number, hostPort: number): string {
  return `${guestPort}:${hostPort}`;
}

function positiveInt(what: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${what} must be a positive integer, got ${v}`);
  return v;
}

/** Copies `length` bytes starting `offset` bytes into `buffers`; undefined if outside RAM or short. */
function gather(memory: GuestMemory, buffers: readonly GuestBuffer[], offset: number, length: number): Uint8Array | undefined {
  const out = new Uint8Array(length);
  let skip = offset;
  let at = 0;
  for (const b of buffers) {
    if (at === length) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const take = Math.min(b.len - skip, length - at);
    const view = memory.view(b.addr + skip, take);
    if (!view) return undefined;
    out.set(view, at);
    at += take;
    skip = 0;
  }
  return at === length ? out : undefined;
}
