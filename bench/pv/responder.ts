// A host at the other end of a virtio-net link, inside the Parley process, for `npm run bench -- pv`:
// no TAP device, no root, no second guest. It answers ARP for its address and two UDP services:
//   port 7 (echo): every datagram comes straight back (request/response latency);
//   port 19 (a chargen of sorts): a datagram "COUNT SIZE" starts a stream of COUNT datagrams of
//     SIZE bytes towards the sender (receive throughput).
// The stream honours the device's flow control (pauseReceive while the guest has no receive
// buffers), so no frame is dropped on the host side and what is measured is the guest's path.
// Everything else the guest sends is counted and dropped.
import { newNetBackendCounters, type NetBackend } from "../../src/virtio/net/backend.ts";

const ETH_HEADER = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
const IP_PROTO_UDP = 17;
const ECHO_PORT = 7;
const CHARGEN_PORT = 19;

export interface ResponderOptions {
  /** The responder's IPv4 address, e.g. [10, 0, 2, 2]. */
  ip: readonly number[];
  /** Its MAC address (unicast). */
  mac: Uint8Array;
}

/** RFC 1071 checksum of an IPv4 header. */
function ipChecksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += (header[i] << 8) | header[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export class ResponderBackend implements NetBackend {
  readonly counters = newNetBackendCounters();
  readonly linkUp = true;
  readonly description: string;
  /** Datagrams answered on the echo port and sent by streams. */
  echoed = 0;
  streamed = 0;
  private handler: ((frame: Uint8Array) => void) | undefined;
  private paused = false;
  private closed = false;
  private pumpScheduled = false;
  /** The stream in progress: a template frame and how many copies remain. */
  private stream: { frame: Uint8Array; remaining: number } | undefined;

  constructor(private readonly options: ResponderOptions) {
    this.description = `in-process responder ${options.ip.join(".")}`;
  }

  onReceive(handler: (frame: Uint8Array) => void): void {
    this.handler = handler;
  }
  pauseReceive(): void {
    this.paused = true;
  }
  resumeReceive(): void {
    this.paused = false;
    this.schedulePump();
  }
  async close(): Promise<void> {
    this.closed = true;
    this.stream = undefined;
  }

  send(frame: Uint8Array): void {
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
    if (this.closed || frame.length < ETH_HEADER) return;
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const type = view.getUint16(12);
    if (type === ETHERTYPE_ARP) this.arp(frame, view);
    else if (type === ETHERTYPE_IPV4) this.ipv4(frame, view);
  }

  private isMine(ip: Uint8Array): boolean {
    return this.options.ip.every((b, i) => ip[i] === b);
  }

  /** An ARP request for our address gets a reply (RFC 826). */
  private arp(frame: Uint8Array, view: DataView): void {
    const a = ETH_HEADER;
    if (frame.length < a + 28 || view.getUint16(a + 6) !== 1) return; // not a request
    if (!this.isMine(frame.subarray(a + 24, a + 28))) return;
    const reply = new Uint8Array(a + 28);
    reply.set(frame.subarray(6, 12), 0); // to the asker
    reply.set(this.options.mac, 6);
    reply.set(frame.subarray(12, a + 6), 12); // ethertype, htype, ptype, hlen, plen
    reply[a + 7] = 2; // opcode: reply
    reply.set(this.options.mac, a + 8); // sender: us
    reply.set(this.options.ip, a + 14);
    reply.set(frame.subarray(a + 8, a + 18), a + 18); // target: the asker's MAC and IP
    this.deliverSoon(reply);
  }

  private ipv4(frame: Uint8Array, view: DataView): void {
    const ip = ETH_HEADER;
    if (frame.length < ip + 20 || frame[ip] >> 4 !== 4 || frame[ip + 9] !== IP_PROTO_UDP) return;
    if (!this.isMine(frame.subarray(ip + 16, ip + 20))) return;
    if ((view.getUint16(ip + 6) & 0x3fff) !== 0) return; // fragments: not needed here
    const udp = ip + (frame[ip] & 0xf) * 4;
    if (frame.length < udp + 8) return;
    const dstPort = view.getUint16(udp + 2);
    if (dstPort === ECHO_PORT) {
      // Swapping addresses and ports leaves both checksums valid (one's-complement sums commute).
      const reply = frame.slice(0, ip + view.getUint16(ip + 2));
      reply.set(frame.subarray(6, 12), 0);
      reply.set(this.options.mac, 6);
      reply.set(frame.subarray(ip + 16, ip + 20), ip + 12);
      reply.set(frame.subarray(ip + 12, ip + 16), ip + 16);
      reply.set(frame.subarray(udp + 2, udp + 4), udp);
      reply.set(frame.subarray(udp, udp + 2), udp + 2);
      this.echoed++;
      this.deliverSoon(reply);
    } else if (dstPort === CHARGEN_PORT) {
      const request = new TextDecoder().decode(frame.subarray(udp + 8, ip + view.getUint16(ip + 2)));
      const m = /^(\d+) (\d+)$/.exec(request.trim());
      if (!m) return;
      const count = Math.min(Number(m[1]), 10_000_000);
      const size = Math.min(Math.max(Number(m[2]), 1), 1472); // one Ethernet frame each
      this.stream = { frame: this.datagram(frame, view, udp, size), remaining: count };
      this.schedulePump();
    }
  }

  /** A UDP datagram of `size` bytes from our chargen port to the sender of `request`. */
  private datagram(request: Uint8Array, view: DataView, udp: number, size: number): Uint8Array {
    const ip = ETH_HEADER;
    const out = new Uint8Array(ip + 20 + 8 + size);
    const o = new DataView(out.buffer);
    out.set(request.subarray(6, 12), 0);
    out.set(this.options.mac, 6);
    o.setUint16(12, ETHERTYPE_IPV4);
    out[ip] = 0x45;
    o.setUint16(ip + 2, 20 + 8 + size);
    o.setUint16(ip + 6, 0x4000); // don't fragment
    out[ip + 8] = 64;
    out[ip + 9] = IP_PROTO_UDP;
    out.set(this.options.ip, ip + 12);
    out.set(request.subarray(ip + 12, ip + 16), ip + 16);
    o.setUint16(ip + 10, ipChecksum(out.subarray(ip, ip + 20)));
    o.setUint16(ip + 20, CHARGEN_PORT);
    o.setUint16(ip + 22, view.getUint16(udp)); // to the requester's port
    o.setUint16(ip + 24, 8 + size);
    o.setUint16(ip + 26, 0); // no UDP checksum (allowed over IPv4)
    for (let i = 0; i < size; i++) out[ip + 28 + i] = 0x20 + (i % 95);
    return out;
  }

  /** Replies leave after the guest's current slice, as a reply from another host would. */
  private deliverSoon(frame: Uint8Array): void {
    setImmediate(() => {
      if (this.closed || !this.handler) return;
      this.counters.framesReceived++;
      this.counters.bytesReceived += frame.length;
      this.handler(frame);
    });
  }

  private schedulePump(): void {
    if (this.pumpScheduled || !this.stream) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Sends stream datagrams until the stream ends or the device asks for a pause. */
  private pump(): void {
    const s = this.stream;
    // Bounded per turn, so that a device that drops rather than pauses cannot hold the event loop.
    let budget = 1024;
    while (s && s.remaining > 0 && !this.paused && !this.closed && this.handler && budget-- > 0) {
      s.remaining--;
      this.streamed++;
      this.counters.framesReceived++;
      this.counters.bytesReceived += s.frame.length;
      this.handler(s.frame.slice()); // the receiver owns each frame
    }
    if (s && s.remaining === 0) this.stream = undefined;
    else if (budget < 0 && !this.paused) this.schedulePump();
  }
}
