// virtio-vsock: the socket device (virtio spec 1.3, section 5.10), stream sockets between the
// guest (at its configured CID) and the host (CID 2), served by an injected VsockBackend.
//
// Queues: rx (0) carries packets to the guest, tx (1) packets from it, event (2) carries the only
// event, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (5.10.6.6), which a restored device sends (see
// restoreState). Every packet is a struct virtio_vsock_hdr (header.ts) and, for RW, payload.
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
//
// This file moves packets between the queues and the connections. The rest is by job:
// options.ts (limits, counters), connections.ts (the connection table), connection.ts (the state
// table), credit.ts (what goes to the guest next), host-bridge.ts (the backend's handles) and
// packet.ts (packets in descriptor chains).
import { stateInt, stateObject, stateRecord, type VersionedState } from "../../platform/persist.ts";
import { VirtqueueError, type DescriptorChain, type GuestMemory, type Virtqueue, type VirtioDevice, type VirtioDeviceContext } from "../types.ts";
import { portableClock, type HostClock } from "../../platform/clock.ts";
import type { VsockBackend, VsockCloseReason, VsockConnection, VsockHostStream } from "./backend.ts";
import { fitsOurBuffer, vsockTransition } from "./connection.ts";
import { ConnectionTable, disarm, newConn, type Conn } from "./connections.ts";
import { hasWork, takePacket, type OutPacket } from "./credit.ts";
import { replyTo, vsockHeader, type VsockHeader } from "./header.ts";
import { connectRequest, connectionHandle, guestKnows, type BridgeDevice } from "./host-bridge.ts";
import { newVsockCounters, vsockLimits, VSOCK_RST_QUEUE_LIMIT, type VirtioVsockOptions, type VsockCounters, type VsockLimits } from "./options.ts";
import { readTxHeader, readTxPayload, rxChainProblem, writeRxPacket } from "./packet.ts";
import { writeToChain } from "../queue/chain.ts";
import {
  featureBit,
  VIRTIO_ID_VSOCK,
  VIRTIO_VSOCK_CONFIG_SIZE,
  VIRTIO_VSOCK_EVENT_SIZE,
  VIRTIO_VSOCK_EVENT_TRANSPORT_RESET,
  VSOCK_QUEUE_EVENT,
  VIRTIO_VSOCK_F_NO_IMPLIED_STREAM,
  VIRTIO_VSOCK_F_STREAM,
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_SHUTDOWN_MASK,
  VIRTIO_VSOCK_SHUTDOWN_RCV,
  VIRTIO_VSOCK_SHUTDOWN_SEND,
  VIRTIO_VSOCK_TYPE_STREAM,
  VMADDR_CID_HOST,
  VSOCK_QUEUE_RX,
  VSOCK_QUEUE_TX,
} from "./spec.ts";

export { VSOCK_HOST_PORT_BASE, VSOCK_MAX_PKT_PAYLOAD, VSOCK_RST_QUEUE_LIMIT } from "./options.ts";
export type { VirtioVsockOptions, VsockCounters } from "./options.ts";

/**
 * A vsock device's snapshot: its counters only. Host connections cannot survive a snapshot (their
 * host sockets are gone), so, as Firecracker does, the restored device sends
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue when it is activated (spec 5.10.6.6,
 * 5.10.6.7): Linux's virtio_transport then resets every connection of the guest (the sockets see
 * ECONNRESET) and re-reads guest_cid; new connections work as before.
 */
export interface VirtioVsockState extends VersionedState {
  version: 1;
  counters: VsockCounters;
}

export class VirtioVsock implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_VSOCK;
  readonly name: string;
  readonly queueSizes: readonly number[];
  /** 5.10.3: stream sockets, and "the device SHOULD offer VIRTIO_VSOCK_F_NO_IMPLIED_STREAM". */
  readonly deviceFeatures = featureBit(VIRTIO_VSOCK_F_STREAM) | featureBit(VIRTIO_VSOCK_F_NO_IMPLIED_STREAM);
  readonly guestCid: number;
  readonly counters: VsockCounters = newVsockCounters();

  private readonly backend: VsockBackend;
  private readonly limits: VsockLimits;
  private readonly clock: HostClock;
  private readonly config = new Uint8Array(VIRTIO_VSOCK_CONFIG_SIZE);
  /** The device's operations as the host socket bridge (host-bridge.ts) uses them. */
  private readonly bridge: BridgeDevice;

  private context: VirtioDeviceContext | undefined;
  private broken = false;
  private readonly table = new ConnectionTable();
  private readonly rstQueue: VsockHeader[] = [];
  private pumping = false;
  private pumpAgain = false;
  /** quiesce()d: no queue is touched and no host connection accepted until unquiesce(). */
  private quiesced = false;
  /** Restored from a snapshot: TRANSPORT_RESET is owed to the driver (sent once an event buffer is there). */
  private transportResetPending = false;
  /** TRANSPORT_RESET events delivered. */
  transportResets = 0;

  constructor(options: VirtioVsockOptions) {
    const cid = options.guestCid;
    if (!Number.isInteger(cid) || cid < 3 || cid >= 0xffff_ffff) throw new RangeError(`guest CID must be in [3, 0xfffffffe], got ${cid}`);
    this.guestCid = cid;
    this.backend = options.backend;
    this.name = options.name ?? "virtio-vsock";
    this.limits = vsockLimits(options);
    this.clock = options.clock ?? portableClock();
    const size = this.limits.queueSize;
    this.queueSizes = [size, size, 16];
    new DataView(this.config.buffer).setUint32(0, cid, true); // le64 guest_cid, upper half zero
    this.bridge = {
      limits: this.limits,
      isLive: (conn) => this.table.has(conn) && !this.broken,
      markReady: (conn) => this.table.markReady(conn),
      pump: () => this.pump(),
      abort: (conn, reason, rst) => this.abort(conn, reason, rst),
      arm: (conn, ms) => this.arm(conn, ms),
    };
    this.backend.attach({ connectToGuest: (port, stream) => this.connectToGuest(port, stream) });
  }

  /** Live connections (any state). */
  get connectionCount(): number {
    return this.table.size;
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
    this.sendTransportReset();
    this.pump();
  }

  queueNotify(queueIndex: number): void {
    if (this.quiesced) return;
    // rx: new buffers for pending packets; tx: packets from the guest; event: buffers for a
    // TRANSPORT_RESET still owed.
    if (queueIndex === VSOCK_QUEUE_RX || queueIndex === VSOCK_QUEUE_TX) this.pump();
    else if (queueIndex === VSOCK_QUEUE_EVENT) this.sendTransportReset();
  }

  // ---- pause and snapshot -------------------------------------------------------------------
  /**
   * Stops moving packets: no queue is touched, data from host streams stays in the connections'
   * backlogs (bounded by the high-water mark, which stops the host side reading) and new host
   * connections are refused (counted in refusedLimit) until unquiesce(). The device holds no chain.
   */
  async quiesce(): Promise<void> {
    this.quiesced = true;
  }

  unquiesce(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.sendTransportReset();
    this.pump();
  }

  saveState(): VirtioVsockState {
    return { version: 1, counters: { ...this.counters } };
  }

  /** Onto a freshly constructed device; once activated it sends TRANSPORT_RESET (see VirtioVsockState). */
  restoreState(value: unknown): void {
    const where = this.name;
    const r = stateObject(value, where, [1]);
    const c = stateRecord(r.counters, `${where}.counters`);
    const counters = { ...this.counters };
    for (const key of Object.keys(counters) as (keyof VsockCounters)[]) counters[key] = stateInt(c[key], `${where}.counters.${key}`);
    Object.assign(this.counters, counters);
    this.transportResetPending = true;
  }

  /** Spec 5.10.6.6: struct virtio_vsock_event { le32 id; } into one event buffer, if one is there. */
  private sendTransportReset(): void {
    const context = this.context;
    if (!this.transportResetPending || !context || this.broken || this.quiesced) return;
    const queue = context.queues[VSOCK_QUEUE_EVENT];
    if (!queue) return;
    const chain = this.pop(queue);
    if (!chain) return; // the driver fills the event queue at probe; otherwise at its next kick
    if (chain.writableLength < VIRTIO_VSOCK_EVENT_SIZE) {
      this.fail(`event buffer of ${chain.writableLength} bytes is smaller than struct virtio_vsock_event`);
      return;
    }
    const event = new Uint8Array(VIRTIO_VSOCK_EVENT_SIZE);
    new DataView(event.buffer).setUint32(0, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, true);
    if (writeToChain(context.memory, chain, 0, event) !== event.length) {
      this.fail("event buffer outside RAM");
      return;
    }
    this.transportResetPending = false;
    this.transportResets++;
    try {
      queue.pushUsed(chain, event.length);
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      this.fail(e.message);
      return;
    }
    context.notifyUsed(VSOCK_QUEUE_EVENT);
  }

  reset(): void {
    this.dropAll();
    this.context = undefined;
    this.broken = false;
    this.transportResetPending = false; // a new driver has no connections to reset
  }

  // ---- connections ----------------------------------------------------------------------------

  /** The backend asks the guest to accept a connection on `guestPort`. */
  private connectToGuest(guestPort: number, stream: VsockHostStream): VsockConnection | undefined {
    if (!this.context || this.broken) return undefined;
    if (this.quiesced) {
      this.counters.refusedLimit++;
      return undefined;
    }
    if (!Number.isInteger(guestPort) || guestPort < 0 || guestPort > 0xffff_ffff) return undefined;
    if (this.table.size >= this.limits.maxConnections) {
      this.counters.refusedLimit++;
      return undefined;
    }
    const conn = this.open(guestPort, this.table.allocateHostPort(guestPort), "host-connecting", stream);
    conn.sendRequest = true;
    // The guest's credit is unknown until RESPONSE.
    this.arm(conn, this.limits.connectTimeoutMs);
    this.table.markReady(conn);
    this.pump();
    return conn.handle;
  }

  /** The guest's REQUEST for a connection to the host: the backend decides. */
  private guestConnect(h: VsockHeader): void {
    if (this.table.size >= this.limits.maxConnections) {
      this.counters.refusedLimit++;
      this.queueRst(replyTo(h, { op: VIRTIO_VSOCK_OP_RST }), false);
      return;
    }
    const conn = this.open(h.src_port, h.dst_port, "guest-connecting", undefined);
    conn.peerBufAlloc = h.buf_alloc;
    conn.peerFwdCnt = h.fwd_cnt;
    this.arm(conn, this.limits.connectTimeoutMs);
    this.backend.connect(connectRequest(this.bridge, conn));
  }

  private open(guestPort: number, hostPort: number, state: Conn["state"], stream: VsockHostStream | undefined): Conn {
    const conn = newConn(guestPort, hostPort, state, stream);
    conn.handle = connectionHandle(this.bridge, conn);
    this.table.add(conn);
    this.counters.connectionsOpened++;
    return conn;
  }

  /** (Re)starts the connection's timer: when it fires, the connection is reset. */
  private arm(conn: Conn, ms: number): void {
    conn.cancelTimer?.();
    // Background: a connection waiting for its peer must not keep the host process alive.
    conn.cancelTimer = this.clock.setTimer(
      ms,
      () => {
        conn.cancelTimer = undefined;
        if (!this.table.has(conn)) return;
        this.counters.timeouts++;
        this.abort(conn, "reset", guestKnows(conn));
        this.pump();
      },
      { background: true },
    );
  }

  /** Ends a connection: optionally RST to the guest, close the backend's stream, forget it. */
  private abort(conn: Conn, reason: VsockCloseReason, rst: boolean): void {
    if (rst) this.queueRst(this.headerFor(conn, VIRTIO_VSOCK_OP_RST), true);
    this.table.forget(conn, reason);
  }

  private dropAll(): void {
    this.table.forgetAll();
    this.rstQueue.length = 0;
  }

  // ---- queue processing ---------------------------------------------------------------------

  private pump(): void {
    if (!this.context || this.broken || this.quiesced) return;
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
    const h = readTxHeader(memory, chain);
    if (typeof h === "string") return this.failed(h);
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
    const conn = this.table.find(h.src_port, h.dst_port);
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
          disarm(conn);
          conn.state = "established";
          conn.stream?.connected(conn.hostPort);
          this.table.markReady(conn);
        }
        return true;
      case "data":
        if (conn) this.dataFromGuest(memory, chain, conn, h);
        return true;
      case "credit":
        if (conn) this.table.markReady(conn);
        return true;
      case "credit-request":
        if (conn) {
          conn.sendCredit = true;
          this.table.markReady(conn);
        }
        return true;
      case "shutdown":
        if (conn) this.shutdownFromGuest(conn, h.flags);
        return true;
      case "closed":
        if (conn) this.table.forget(conn, "reset");
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

  private dataFromGuest(memory: GuestMemory, chain: DescriptorChain, conn: Conn, h: VsockHeader): void {
    if (conn.guestShutdown & VIRTIO_VSOCK_SHUTDOWN_SEND) {
      this.abort(conn, "reset", true); // data after "will not send any more data"
      return;
    }
    if (!fitsOurBuffer(this.limits.bufAlloc, conn.rxCnt, conn.fwdCnt, h.len)) {
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
    const payload = readTxPayload(memory, chain, h);
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
      this.table.markReady(conn); // a pending SHUTDOWN may now be due
    }
  }

  /**
   * Queues an RST. Guest-caused ones (`hostCaused` false) are limited by pausing tx at
   * VSOCK_RST_QUEUE_LIMIT; host-caused ones are few per connection, but a hard cap still holds.
   */
  private queueRst(h: VsockHeader, hostCaused: boolean): void {
    if (this.rstQueue.length >= VSOCK_RST_QUEUE_LIMIT + (hostCaused ? 2 * this.limits.maxConnections : 0)) {
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
      buf_alloc: this.limits.bufAlloc,
      fwd_cnt: conn.fwdCnt,
      ...fields,
    });
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
      const conn = preferRst && this.rstQueue.length > 0 ? undefined : this.table.nextReady(hasWork);
      if (!conn && this.rstQueue.length === 0) break;
      const chain = this.pop(queue);
      if (!chain) break;
      const problem = rxChainProblem(chain);
      if (problem) {
        this.fail(problem);
        return rstSent;
      }
      let packet: OutPacket | undefined;
      if (conn) {
        packet = takePacket(conn, chain.writableLength - VIRTIO_VSOCK_HDR_SIZE, this.limits.highWater, (c, op, fields) => this.headerFor(c, op, fields));
        if (packet) {
          conn.sendCredit = false;
          conn.advertisedFwdCnt = conn.fwdCnt;
          this.table.sent(conn);
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
      const written = writeRxPacket(context.memory, chain, packet);
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
}
