// struct virtio_vsock_hdr (virtio spec 1.3, 5.10.6): pure parse and build functions.
import {
  VIRTIO_VSOCK_HDR_BUF_ALLOC,
  VIRTIO_VSOCK_HDR_DST_CID,
  VIRTIO_VSOCK_HDR_DST_PORT,
  VIRTIO_VSOCK_HDR_FLAGS,
  VIRTIO_VSOCK_HDR_FWD_CNT,
  VIRTIO_VSOCK_HDR_LEN,
  VIRTIO_VSOCK_HDR_OP,
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_HDR_SRC_CID,
  VIRTIO_VSOCK_HDR_SRC_PORT,
  VIRTIO_VSOCK_HDR_TYPE,
  VIRTIO_VSOCK_TYPE_STREAM,
} from "./spec.ts";

/**
 * A decoded header, fields named as in the spec. CIDs are le64 on the wire with the upper 32 bits
 * "reserved and zeroed"; they decode to lo + hi * 2^32, which is exact for every valid CID and
 * above 2^32 (never equal to a valid CID) when a reserved bit is set.
 */
export interface VsockHeader {
  src_cid: number;
  dst_cid: number;
  src_port: number;
  dst_port: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  buf_alloc: number;
  fwd_cnt: number;
}

/** Decodes the first 44 bytes of `bytes`, or undefined when there are fewer. */
export function parseVsockHeader(bytes: Uint8Array): VsockHeader | undefined {
  if (bytes.length < VIRTIO_VSOCK_HDR_SIZE) return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, VIRTIO_VSOCK_HDR_SIZE);
  const cid = (at: number) => v.getUint32(at, true) + v.getUint32(at + 4, true) * 0x1_0000_0000;
  return {
    src_cid: cid(VIRTIO_VSOCK_HDR_SRC_CID),
    dst_cid: cid(VIRTIO_VSOCK_HDR_DST_CID),
    src_port: v.getUint32(VIRTIO_VSOCK_HDR_SRC_PORT, true),
    dst_port: v.getUint32(VIRTIO_VSOCK_HDR_DST_PORT, true),
    len: v.getUint32(VIRTIO_VSOCK_HDR_LEN, true),
    type: v.getUint16(VIRTIO_VSOCK_HDR_TYPE, true),
    op: v.getUint16(VIRTIO_VSOCK_HDR_OP, true),
    flags: v.getUint32(VIRTIO_VSOCK_HDR_FLAGS, true),
    buf_alloc: v.getUint32(VIRTIO_VSOCK_HDR_BUF_ALLOC, true),
    fwd_cnt: v.getUint32(VIRTIO_VSOCK_HDR_FWD_CNT, true),
  };
}

/**
 * Encodes `h` into target[offset, offset + 44). CIDs must be u32 values (the device never sends
 * anything else); every other field is truncated to its width.
 */
export function writeVsockHeader(target: Uint8Array, h: VsockHeader, offset = 0): void {
  if (target.length - offset < VIRTIO_VSOCK_HDR_SIZE) throw new RangeError("no room for a virtio_vsock_hdr");
  const v = new DataView(target.buffer, target.byteOffset + offset, VIRTIO_VSOCK_HDR_SIZE);
  v.setUint32(VIRTIO_VSOCK_HDR_SRC_CID, h.src_cid >>> 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_SRC_CID + 4, 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_DST_CID, h.dst_cid >>> 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_DST_CID + 4, 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_SRC_PORT, h.src_port >>> 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_DST_PORT, h.dst_port >>> 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_LEN, h.len >>> 0, true);
  v.setUint16(VIRTIO_VSOCK_HDR_TYPE, h.type & 0xffff, true);
  v.setUint16(VIRTIO_VSOCK_HDR_OP, h.op & 0xffff, true);
  v.setUint32(VIRTIO_VSOCK_HDR_FLAGS, h.flags >>> 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_BUF_ALLOC, h.buf_alloc >>> 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_FWD_CNT, h.fwd_cnt >>> 0, true);
}

/** A new 44-byte header. */
export function buildVsockHeader(h: VsockHeader): Uint8Array {
  const out = new Uint8Array(VIRTIO_VSOCK_HDR_SIZE);
  writeVsockHeader(out, h);
  return out;
}

/** A header with every field zero except those given (type defaults to STREAM). */
export function vsockHeader(fields: Partial<VsockHeader>): VsockHeader {
  return {
    src_cid: 0,
    dst_cid: 0,
    src_port: 0,
    dst_port: 0,
    len: 0,
    type: VIRTIO_VSOCK_TYPE_STREAM,
    op: 0,
    flags: 0,
    buf_alloc: 0,
    fwd_cnt: 0,
    ...fields,
  };
}

/**
 * The reply addressing of `h`: source and destination swapped (used for RST replies to packets
 * that match no connection, 5.10.6.4).
 */
export function replyTo(h: VsockHeader, fields: Partial<VsockHeader>): VsockHeader {
  return vsockHeader({ src_cid: h.dst_cid, dst_cid: h.src_cid, src_port: h.dst_port, dst_port: h.src_port, type: h.type, ...fields });
}
