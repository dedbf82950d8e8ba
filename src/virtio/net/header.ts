// struct virtio_net_hdr, virtio spec v1.3 section 5.1.6 (Network Device / Device Operation), and the
// network device's constants (5.1.1 device ID, 5.1.3 feature bits, 5.1.4 configuration layout).
// Everything here is a pure function over bytes so that it can be fuzzed; nothing imports Node or
// the DOM.

/** 5.1.1 Device ID. */
export const VIRTIO_ID_NET = 1;

/** 5.1.2 Virtqueues (N = 1: no VIRTIO_NET_F_MQ, no VIRTIO_NET_F_CTRL_VQ). */
export const RECEIVEQ1 = 0;
export const TRANSMITQ1 = 1;

/** 5.1.3 Feature bits (bit numbers). */
export const VIRTIO_NET_F_CSUM = 0;
export const VIRTIO_NET_F_GUEST_CSUM = 1;
export const VIRTIO_NET_F_CTRL_GUEST_OFFLOADS = 2;
export const VIRTIO_NET_F_MTU = 3;
export const VIRTIO_NET_F_MAC = 5;
export const VIRTIO_NET_F_GUEST_TSO4 = 7;
export const VIRTIO_NET_F_GUEST_TSO6 = 8;
export const VIRTIO_NET_F_GUEST_ECN = 9;
export const VIRTIO_NET_F_GUEST_UFO = 10;
export const VIRTIO_NET_F_HOST_TSO4 = 11;
export const VIRTIO_NET_F_HOST_TSO6 = 12;
export const VIRTIO_NET_F_HOST_ECN = 13;
export const VIRTIO_NET_F_HOST_UFO = 14;
export const VIRTIO_NET_F_MRG_RXBUF = 15;
export const VIRTIO_NET_F_STATUS = 16;
export const VIRTIO_NET_F_CTRL_VQ = 17;
export const VIRTIO_NET_F_MQ = 22;
export const VIRTIO_NET_F_HASH_REPORT = 57;
export const VIRTIO_NET_F_SPEED_DUPLEX = 63;
/** Chapter 6 reserved feature bit: the device complies with virtio 1.x (not legacy). */
export const VIRTIO_F_VERSION_1 = 32;

/** A feature bit number as a mask. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** 5.1.4 Device configuration layout: struct virtio_net_config field offsets. */
export const VIRTIO_NET_CONFIG_MAC = 0; // u8 mac[6]
export const VIRTIO_NET_CONFIG_STATUS = 6; // le16 status
export const VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS = 8; // le16 max_virtqueue_pairs
export const VIRTIO_NET_CONFIG_MTU = 10; // le16 mtu
/** The part of struct virtio_net_config this device implements (mac .. mtu). */
export const VIRTIO_NET_CONFIG_SIZE = 12;

/** 5.1.4 status bits. */
export const VIRTIO_NET_S_LINK_UP = 1;
export const VIRTIO_NET_S_ANNOUNCE = 2;

/** 5.1.4.1: mtu must lie between 68 and 65535 inclusive. */
export const VIRTIO_NET_MIN_MTU = 68;
export const VIRTIO_NET_MAX_MTU = 65535;

/** 5.1.6 struct virtio_net_hdr flags. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_F_RSC_INFO = 4;

/** 5.1.6 struct virtio_net_hdr gso_type values. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** Size of struct virtio_net_hdr up to and including num_buffers (VERSION_1 or MRG_RXBUF). */
export const VIRTIO_NET_HDR_SIZE = 12;
/** 5.1.6.1 Legacy: without VIRTIO_NET_F_MRG_RXBUF the legacy header has no num_buffers. */
export const VIRTIO_NET_HDR_LEGACY_SIZE = 10;

/** Ethernet framing (IEEE 802.3): destination, source, EtherType; an 802.1Q tag adds 4 bytes. */
export const ETH_HLEN = 14;
export const VLAN_HLEN = 4;
export const ETH_ALEN = 6;

/** struct virtio_net_hdr (5.1.6) without the hash-report tail (VIRTIO_NET_F_HASH_REPORT is not offered). */
export interface VirtioNetHeader {
  flags: number; // u8
  gsoType: number; // u8 gso_type
  hdrLen: number; // le16 hdr_len
  gsoSize: number; // le16 gso_size
  csumStart: number; // le16 csum_start
  csumOffset: number; // le16 csum_offset
  numBuffers: number; // le16 num_buffers (only present in the 12-byte form)
}

/**
 * The header's size for the negotiated features. With VIRTIO_F_VERSION_1 it is always 12 bytes
 * (5.1.6.3: "12 bytes if [HASH_REPORT is] not [negotiated]"); a legacy driver without
 * VIRTIO_NET_F_MRG_RXBUF uses the 10-byte form (5.1.6.1).
 */
export function netHeaderSize(features: bigint): number {
  if (features & featureBit(VIRTIO_F_VERSION_1)) return VIRTIO_NET_HDR_SIZE;
  if (features & featureBit(VIRTIO_NET_F_MRG_RXBUF)) return VIRTIO_NET_HDR_SIZE;
  return VIRTIO_NET_HDR_LEGACY_SIZE;
}

/**
 * Parses a little-endian struct virtio_net_hdr of `size` bytes (12, or 10 for the legacy form, in
 * which case numBuffers is 0) from `bytes` at `offset`. Undefined when the bytes are too short.
 */
export function parseNetHeader(bytes: Uint8Array, offset = 0, size: number = VIRTIO_NET_HDR_SIZE): VirtioNetHeader | undefined {
  if (size !== VIRTIO_NET_HDR_SIZE && size !== VIRTIO_NET_HDR_LEGACY_SIZE) return undefined;
  if (!Number.isInteger(offset) || offset < 0 || offset + size > bytes.length) return undefined;
  const le16 = (at: number) => bytes[offset + at] | (bytes[offset + at + 1] << 8);
  return {
    flags: bytes[offset],
    gsoType: bytes[offset + 1],
    hdrLen: le16(2),
    gsoSize: le16(4),
    csumStart: le16(6),
    csumOffset: le16(8),
    numBuffers: size === VIRTIO_NET_HDR_SIZE ? le16(10) : 0,
  };
}

/**
 * Builds the `size`-byte little-endian encoding of a header. Fields are truncated to their widths
 * (u8 / le16), as a C struct assignment would.
 */
export function buildNetHeader(header: Partial<VirtioNetHeader>, size: number = VIRTIO_NET_HDR_SIZE): Uint8Array {
  if (size !== VIRTIO_NET_HDR_SIZE && size !== VIRTIO_NET_HDR_LEGACY_SIZE) {
    throw new RangeError(`virtio_net_hdr is 10 or 12 bytes, not ${size}`);
  }
  const out = new Uint8Array(size);
  const le16 = (at: number, v: number | undefined) => {
    const x = (v ?? 0) & 0xffff;
    out[at] = x & 0xff;
    out[at + 1] = x >>> 8;
  };
  out[0] = (header.flags ?? 0) & 0xff;
  out[1] = (header.gsoType ?? VIRTIO_NET_HDR_GSO_NONE) & 0xff;
  le16(2, header.hdrLen);
  le16(4, header.gsoSize);
  le16(6, header.csumStart);
  le16(8, header.csumOffset);
  if (size === VIRTIO_NET_HDR_SIZE) le16(10, header.numBuffers);
  return out;
}

/**
 * The header the device puts in front of a received packet (5.1.6.4.1): no offloads are offered,
 * so flags is 0 and gso_type VIRTIO_NET_HDR_GSO_NONE; num_buffers is 1 without
 * VIRTIO_NET_F_MRG_RXBUF (5.1.6.3.2) or the number of buffers the packet spans with it.
 */
export function buildReceiveHeader(numBuffers: number, size: number = VIRTIO_NET_HDR_SIZE): Uint8Array {
  return buildNetHeader({ numBuffers }, size);
}

/** Why a transmitted header is refused, or undefined when it asks for nothing the device lacks. */
export type TransmitHeaderProblem = "needs-csum" | "gso";

/**
 * Checks a transmit header against the features this device offers (none of VIRTIO_NET_F_CSUM,
 * HOST_TSO4/6, HOST_UFO, HOST_USO): 5.1.6.2.1 requires flags 0 and gso_type GSO_NONE then. Flag
 * bits the device does not recognize are ignored (5.1.6.2.2); num_buffers is unused on transmit.
 */
export function checkTransmitHeader(header: VirtioNetHeader): TransmitHeaderProblem | undefined {
  if (header.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) return "needs-csum";
  if (header.gsoType !== VIRTIO_NET_HDR_GSO_NONE) return "gso";
  return undefined;
}

/** The largest Ethernet frame (without FCS) for an MTU: header plus one 802.1Q tag plus payload. */
export function maxFrameLength(mtu: number): number {
  return mtu + ETH_HLEN + VLAN_HLEN;
}

export type FrameLengthProblem = "runt" | "oversize";

/** A frame must hold at least an Ethernet header and at most maxFrameLength(mtu) bytes. */
export function checkFrameLength(length: number, mtu: number): FrameLengthProblem | undefined {
  if (length < ETH_HLEN) return "runt";
  if (length > maxFrameLength(mtu)) return "oversize";
  return undefined;
}
