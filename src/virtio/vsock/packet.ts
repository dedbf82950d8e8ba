// virtio-vsock packets in descriptor chains (virtio spec 1.3, 5.10.6): a struct virtio_vsock_hdr
// and, for RW, its payload, possibly split over several buffers. Reading and writing go through
// the queue layer's one chain reader and writer.
import type { DescriptorChain, GuestMemory } from "../types.ts";
import { readExactly, writeToChain } from "../queue/chain.ts";
import type { OutPacket } from "./credit.ts";
import { parseVsockHeader, writeVsockHeader, type VsockHeader } from "./header.ts";
import { VIRTIO_VSOCK_HDR_SIZE } from "./spec.ts";

/**
 * The header of a packet on the tx queue, or why the chain is malformed: device-writable
 * buffers, no room for a header, buffers outside RAM, or a `len` beyond the payload buffers.
 */
export function readTxHeader(memory: Pick<GuestMemory, "view">, chain: DescriptorChain): VsockHeader | string {
  if (chain.writable.length > 0) return "tx chain has device-writable buffers";
  if (chain.readableLength < VIRTIO_VSOCK_HDR_SIZE) return `tx chain of ${chain.readableLength} bytes has no room for a header`;
  const raw = readExactly(memory, chain.readable, 0, VIRTIO_VSOCK_HDR_SIZE);
  const header = raw && parseVsockHeader(raw);
  if (!header) return "tx buffer outside RAM";
  const room = chain.readableLength - VIRTIO_VSOCK_HDR_SIZE;
  if (header.len > room) return `tx packet len ${header.len} exceeds its ${room}-byte payload buffers`;
  return header;
}

/** The payload of a tx packet whose header readTxHeader() accepted; undefined if outside RAM. */
export function readTxPayload(memory: Pick<GuestMemory, "view">, chain: DescriptorChain, header: VsockHeader): Uint8Array | undefined {
  return readExactly(memory, chain.readable, VIRTIO_VSOCK_HDR_SIZE, header.len);
}

/** Whether an rx chain can take a packet: device-writable only, with room for a header. */
export function rxChainProblem(chain: DescriptorChain): string | undefined {
  if (chain.readable.length > 0 || chain.writableLength < VIRTIO_VSOCK_HDR_SIZE) {
    return `rx buffer of ${chain.writableLength} writable bytes cannot hold a packet`;
  }
  return undefined;
}

/** Header (its len set to the payload's) and payload as one byte array. */
export function encodePacket(packet: OutPacket): Uint8Array {
  const payload = packet.payload ?? new Uint8Array(0);
  const bytes = new Uint8Array(VIRTIO_VSOCK_HDR_SIZE + payload.length);
  writeVsockHeader(bytes, { ...packet.header, len: payload.length });
  bytes.set(payload, VIRTIO_VSOCK_HDR_SIZE);
  return bytes;
}

/** Writes the packet into an rx chain; the bytes written, or undefined when a buffer is outside RAM. */
export function writeRxPacket(memory: Pick<GuestMemory, "write">, chain: DescriptorChain, packet: OutPacket): number | undefined {
  const bytes = encodePacket(packet);
  const written = writeToChain(memory, chain, 0, bytes);
  return written === bytes.length ? written : undefined;
}
