// A host that answers ARP and ICMP echo over Parley's socket network backend (the 4-byte length
// framing of net-socket.ts, QEMU's -netdev stream): the far end of a ping that must go on while
// a guest migrates from one Parley process to another. It accepts any number of connections over
// time (a migrated guest's destination connects anew) and counts the echo requests it answered.
import { createServer, type Server, type Socket } from "node:net";
import { encodeStreamFrame, StreamFrameDecoder } from "../../src/host/node/net-socket.ts";

const ETHERTYPE_ARP = 0x0806;
const ETHERTYPE_IPV4 = 0x0800;
const IP_PROTOCOL_ICMP = 1;
const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;

export interface PingResponder {
  readonly echoes: number;
  readonly connections: number;
  close(): Promise<void>;
}

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length % 2) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The reply to one Ethernet frame from the guest, if it asks for `ip` (a dotted quad). */
export function answer(frame: Uint8Array, ip: number[], mac: Uint8Array): Uint8Array | undefined {
  if (frame.length < 14) return undefined;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const type = view.getUint16(12);
  if (type === ETHERTYPE_ARP && frame.length >= 42 && view.getUint16(20) === 1 && ip.every((b, i) => frame[38 + i] === b)) {
    const reply = new Uint8Array(42);
    reply.set(frame.subarray(6, 12), 0); // to the asker
    reply.set(mac, 6);
    reply.set(frame.subarray(12, 20), 12); // ethertype, htype, ptype, hlen, plen
    new DataView(reply.buffer).setUint16(20, 2); // ARP reply
    reply.set(mac, 22);
    reply.set(ip, 28);
    reply.set(frame.subarray(22, 32), 32); // the asker's MAC and IP
    return reply;
  }
  if (type === ETHERTYPE_IPV4 && frame.length >= 34 && frame[23] === IP_PROTOCOL_ICMP && ip.every((b, i) => frame[30 + i] === b)) {
    const headerLength = (frame[14] & 0x0f) * 4;
    const icmp = 14 + headerLength;
    const total = view.getUint16(16);
    if (frame[icmp] !== ICMP_ECHO_REQUEST || 14 + total > frame.length) return undefined;
    const reply = frame.slice(0, 14 + total);
    reply.set(frame.subarray(6, 12), 0);
    reply.set(mac, 6);
    reply.set(frame.subarray(30, 34), 26); // source = the address asked for
    reply.set(frame.subarray(26, 30), 30); // destination = the guest
    const rv = new DataView(reply.buffer);
    rv.setUint16(24, 0);
    rv.setUint16(24, checksum(reply.subarray(14, 14 + headerLength)));
    reply[icmp] = ICMP_ECHO_REPLY;
    rv.setUint16(icmp + 2, 0);
    rv.setUint16(icmp + 2, checksum(reply.subarray(icmp, 14 + total)));
    return reply;
  }
  return undefined;
}

export async function startPingResponder(path: string, ip = [10, 0, 2, 2], mac = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56)): Promise<PingResponder> {
  let echoes = 0;
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    const decoder = new StreamFrameDecoder();
    socket.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)).frames) {
        const reply = answer(frame, ip, mac);
        if (!reply) continue;
        if (new DataView(reply.buffer).getUint16(12) === ETHERTYPE_IPV4) echoes++;
        socket.write(encodeStreamFrame(reply));
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    get echoes() {
      return echoes;
    },
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
