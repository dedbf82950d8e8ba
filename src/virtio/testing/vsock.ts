// Test support for virtio-vsock: a guest driver that talks to the device through the common
// FakeContext (fake-queue.ts), a recording backend, and a model of the guest's socket stack. Used
// by the vsock tests and src/host/node/vsock-uds.test.ts.
import { FakeGuestMemory } from "../../testing/fakes.ts";
import { FakeContext } from "./fake-queue.ts";
import type { VsockBackend, VsockCloseReason, VsockConnection, VsockConnectRequest, VsockDeviceApi, VsockHostStream } from "../vsock/backend.ts";
import { VirtioVsock, type VirtioVsockOptions } from "../vsock/device.ts";
import { buildVsockHeader, parseVsockHeader, vsockHeader, type VsockHeader } from "../vsock/header.ts";
import {
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_SHUTDOWN_MASK,
  VMADDR_CID_HOST,
  VSOCK_QUEUE_RX,
  VSOCK_QUEUE_TX,
} from "../vsock/spec.ts";

export interface Packet {
  header: VsockHeader;
  payload: Uint8Array;
}

/** The guest side: puts packets on tx, supplies rx buffers, decodes what the device wrote. */
export class GuestDriver {
  readonly memory: FakeGuestMemory;
  readonly context: FakeContext;
  /** Packets received and not yet taken by the test. */
  readonly inbox: Packet[] = [];
  /** Every packet ever received. */
  readonly log: Packet[] = [];
  rxBufferSize = 4096;
  /** Refill each used rx buffer immediately (like Linux). */
  autoRefill = true;

  constructor(
    readonly device: VirtioVsock,
    options: { features?: bigint; rxBuffers?: number; memorySize?: number } = {},
  ) {
    // Room below 1 MiB for data a test places by hand; buffers above.
    this.memory = new FakeGuestMemory(options.memorySize ?? 32 << 20, undefined, 1 << 20);
    this.context = new FakeContext(this.memory, options.features ?? device.deviceFeatures, [1 << 15, 1 << 15, 1 << 15]);
    const n = options.rxBuffers ?? 64;
    for (let i = 0; i < n; i++) this.context.queues[VSOCK_QUEUE_RX].add([], [this.memory.in(this.rxBufferSize)]);
    device.activate(this.context);
  }

  get cid(): number {
    return this.device.guestCid;
  }

  /** Adds n rx buffers and notifies. */
  addRx(n: number, size = this.rxBufferSize): void {
    for (let i = 0; i < n; i++) this.context.queues[VSOCK_QUEUE_RX].add([], [this.memory.in(size)]);
    this.device.queueNotify(VSOCK_QUEUE_RX);
    this.collect();
  }

  /** Queues one packet on tx (header and payload in separate descriptors, as Linux) and kicks. */
  send(fields: Partial<VsockHeader>, payload: Uint8Array = new Uint8Array(0), kick = true): void {
    const h = vsockHeader({ src_cid: this.cid, dst_cid: VMADDR_CID_HOST, buf_alloc: 256 * 1024, len: payload.length, ...fields });
    const bufs = [this.memory.out(buildVsockHeader(h))];
    if (payload.length > 0) bufs.push(this.memory.out(payload));
    this.context.queues[VSOCK_QUEUE_TX].add(bufs);
    if (kick) this.kick();
  }

  kick(): void {
    this.device.queueNotify(VSOCK_QUEUE_TX);
    this.collect();
  }

  /** Decodes used rx buffers into the inbox (and refills). */
  collect(): Packet[] {
    const rx = this.context.queues[VSOCK_QUEUE_RX];
    const got: Packet[] = [];
    let refill = 0;
    for (const { chain, written } of rx.takeUsed()) {
      refill++;
      if (written < VIRTIO_VSOCK_HDR_SIZE) continue;
      const bytes = this.memory.read(chain.writable[0].addr, written);
      const header = parseVsockHeader(bytes)!;
      got.push({ header, payload: bytes.slice(VIRTIO_VSOCK_HDR_SIZE, VIRTIO_VSOCK_HDR_SIZE + header.len) });
    }
    this.inbox.push(...got);
    this.log.push(...got);
    if (this.autoRefill && refill > 0) {
      for (let i = 0; i < refill; i++) rx.add([], [this.memory.in(this.rxBufferSize)]);
      this.device.queueNotify(VSOCK_QUEUE_RX);
      if (rx.used.length > 0) this.collect();
    }
    return got;
  }

  /** Removes and returns inbox packets (optionally only those matching). */
  take(filter: (p: Packet) => boolean = () => true): Packet[] {
    this.collect();
    const out: Packet[] = [];
    for (let i = 0; i < this.inbox.length; ) {
      if (filter(this.inbox[i])) out.push(...this.inbox.splice(i, 1));
      else i++;
    }
    return out;
  }

  /** Sends a CREDIT_UPDATE for a connection: the guest consumed everything (fwd_cnt). */
  creditUpdate(guestPort: number, hostPort: number, fwdCnt: number, bufAlloc = 256 * 1024): void {
    this.send({ op: VIRTIO_VSOCK_OP_CREDIT_UPDATE, src_port: guestPort, dst_port: hostPort, fwd_cnt: fwdCnt, buf_alloc: bufAlloc });
  }
}

export class FakeStream implements VsockHostStream {
  readonly chunks: Uint8Array[] = [];
  ended = false;
  closed: VsockCloseReason | undefined;
  flowing = true;
  connectedPort: number | undefined;
  connection: VsockConnection | undefined;
  /** Report written bytes as consumed at once. */
  autoConsume = true;
  constructor(readonly onWrite?: (data: Uint8Array, stream: FakeStream) => void) {}
  write(data: Uint8Array): void {
    if (this.closed) throw new Error("write after close");
    this.chunks.push(data);
    if (this.autoConsume) this.connection?.consumed(data.length);
    this.onWrite?.(data, this);
  }
  end(): void {
    this.ended = true;
  }
  close(reason: VsockCloseReason): void {
    if (this.closed) throw new Error("closed twice");
    this.closed = reason;
  }
  setFlowing(flowing: boolean): void {
    this.flowing = flowing;
  }
  connected(hostPort: number): void {
    this.connectedPort = hostPort;
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }
  get bytes(): number {
    return this.chunks.reduce((a, c) => a + c.length, 0);
  }
}

/** A backend that records requests; by default it leaves them pending. */
export class FakeBackend implements VsockBackend {
  device!: VsockDeviceApi;
  readonly requests: VsockConnectRequest[] = [];
  /** When set, called for each request (e.g. to accept at once). */
  onConnect: ((r: VsockConnectRequest) => void) | undefined;
  attach(device: VsockDeviceApi): void {
    this.device = device;
  }
  connect(request: VsockConnectRequest): void {
    this.requests.push(request);
    this.onConnect?.(request);
  }
}

export function makeVsock(options: Partial<VirtioVsockOptions> = {}, driver: { rxBuffers?: number } = {}) {
  const backend = new FakeBackend();
  const device = new VirtioVsock({ guestCid: 3, backend, ...options });
  const guest = new GuestDriver(device, driver);
  return { backend, device, guest };
}

/**
 * A small model of the guest's AF_VSOCK stack on top of GuestDriver, behaving like Linux's
 * virtio transport: listens, connects, respects the device's credit when sending, returns credit
 * with CREDIT_UPDATE as it reads, and does the SHUTDOWN/RST dance. Call poll() to let it run.
 */
export class GuestStack {
  readonly sockets = new Map<string, GuestSocket>();
  readonly accepted: GuestSocket[] = [];
  private readonly listening = new Set<number>();
  /** buf_alloc the guest advertises per socket. */
  bufAlloc = 256 * 1024;

  constructor(readonly driver: GuestDriver) {}

  listen(port: number): void {
    this.listening.add(port);
  }

  connect(guestPort: number, hostPort: number): GuestSocket {
    const s = new GuestSocket(this, guestPort, hostPort, "connecting");
    this.sockets.set(s.key, s);
    s.sendControl(VIRTIO_VSOCK_OP_REQUEST);
    return s;
  }

  /** Handles everything the device delivered, then flushes pending writes. */
  poll(): void {
    for (;;) {
      const packets = this.driver.take();
      if (packets.length === 0) break;
      for (const p of packets) this.handle(p);
    }
    for (const s of this.sockets.values()) s.flush();
  }

  private handle({ header: h, payload }: Packet): void {
    const key = `${h.dst_port}:${h.src_port}`;
    const s = this.sockets.get(key);
    if (s) {
      s.peerBufAlloc = h.buf_alloc;
      s.peerFwdCnt = h.fwd_cnt;
    }
    switch (h.op) {
      case VIRTIO_VSOCK_OP_REQUEST: {
        if (s || !this.listening.has(h.dst_port)) {
          this.driver.send({ op: VIRTIO_VSOCK_OP_RST, src_port: h.dst_port, dst_port: h.src_port });
          return;
        }
        const child = new GuestSocket(this, h.dst_port, h.src_port, "connected");
        child.peerBufAlloc = h.buf_alloc;
        child.peerFwdCnt = h.fwd_cnt;
        this.sockets.set(child.key, child);
        this.accepted.push(child);
        child.sendControl(VIRTIO_VSOCK_OP_RESPONSE);
        return;
      }
      case VIRTIO_VSOCK_OP_RESPONSE:
        if (s?.state === "connecting") s.state = "connected";
        else this.driver.send({ op: VIRTIO_VSOCK_OP_RST, src_port: h.dst_port, dst_port: h.src_port });
        return;
      case VIRTIO_VSOCK_OP_RW:
        if (s?.state === "connected") s.receive(payload);
        return;
      case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        s?.sendControl(VIRTIO_VSOCK_OP_CREDIT_UPDATE);
        return;
      case VIRTIO_VSOCK_OP_SHUTDOWN:
        if (!s) return;
        s.peerShutdown |= h.flags & VIRTIO_VSOCK_SHUTDOWN_MASK;
        if (s.peerShutdown === VIRTIO_VSOCK_SHUTDOWN_MASK) {
          s.sendControl(VIRTIO_VSOCK_OP_RST);
          s.state = "closed";
          this.sockets.delete(s.key);
        }
        return;
      case VIRTIO_VSOCK_OP_RST:
        if (s) {
          s.state = s.state === "connecting" ? "refused" : "closed";
          s.wasReset = true;
          this.sockets.delete(s.key);
        }
        return;
    }
  }

  forget(s: GuestSocket): void {
    this.sockets.delete(s.key);
  }
}

export class GuestSocket {
  readonly chunks: Uint8Array[] = [];
  peerBufAlloc = 0;
  peerFwdCnt = 0;
  peerShutdown = 0;
  wasReset = false;
  private txCnt = 0;
  private rxCnt = 0;
  private advertisedRx = 0;
  private out: Uint8Array[] = [];
  private wantShutdown = 0;

  constructor(
    readonly stack: GuestStack,
    readonly port: number,
    readonly peerPort: number,
    public state: "connecting" | "connected" | "refused" | "closed",
  ) {}

  get key(): string {
    return `${this.port}:${this.peerPort}`;
  }
  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }

  write(data: Uint8Array): void {
    this.out.push(data);
    this.flush();
  }
  /** Like shutdown(2); SHUT_RDWR also waits for the peer's RST, like Linux's close(). */
  shutdown(flags: number): void {
    this.wantShutdown |= flags;
    this.flush();
  }

  sendControl(op: number, fields: Partial<VsockHeader> = {}, payload?: Uint8Array): void {
    this.stack.driver.send({ op, src_port: this.port, dst_port: this.peerPort, buf_alloc: this.stack.bufAlloc, fwd_cnt: this.rxCnt, ...fields }, payload);
    this.advertisedRx = this.rxCnt;
  }

  receive(payload: Uint8Array): void {
    this.chunks.push(payload);
    this.rxCnt = (this.rxCnt + payload.length) >>> 0;
    // The "application" reads at once; tell the peer when its view of our space gets low (Linux:
    // free space below VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
    if (this.stack.bufAlloc - ((this.rxCnt - this.advertisedRx) >>> 0) < 64 * 1024) this.sendControl(VIRTIO_VSOCK_OP_CREDIT_UPDATE);
  }

  flush(): void {
    if (this.state !== "connected") return;
    while (this.out.length > 0) {
      const credit = this.peerBufAlloc - ((this.txCnt - this.peerFwdCnt) >>> 0);
      if (credit <= 0) return;
      const head = this.out[0];
      const n = Math.min(head.length, credit, 4096);
      this.sendControl(VIRTIO_VSOCK_OP_RW, {}, head.subarray(0, n));
      this.txCnt = (this.txCnt + n) >>> 0;
      if (n === head.length) this.out.shift();
      else this.out[0] = head.subarray(n);
    }
    if (this.wantShutdown) {
      const flags = this.wantShutdown;
      this.wantShutdown = 0;
      this.sendControl(VIRTIO_VSOCK_OP_SHUTDOWN, { flags });
    }
  }
}
