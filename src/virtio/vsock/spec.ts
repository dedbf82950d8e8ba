// Constants of the virtio socket device, named as in the Virtual I/O Device (VIRTIO) specification
// version 1.3, section 5.10 "Socket Device". Pure data: no Node, no DOM.

/** 5.10.1 Device ID. */
export const VIRTIO_ID_VSOCK = 19;

// 5.10.2 Virtqueues.
export const VSOCK_QUEUE_RX = 0;
export const VSOCK_QUEUE_TX = 1;
export const VSOCK_QUEUE_EVENT = 2;

// 5.10.3 Feature bits (bit numbers).
export const VIRTIO_VSOCK_F_STREAM = 0;
export const VIRTIO_VSOCK_F_SEQPACKET = 1;
export const VIRTIO_VSOCK_F_NO_IMPLIED_STREAM = 2;

/** A feature bit as the bigint mask used by VirtioDevice.deviceFeatures / context.features. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

// 5.10.4 Device configuration layout: struct virtio_vsock_config { le64 guest_cid; }.
export const VIRTIO_VSOCK_CONFIG_GUEST_CID = 0;
export const VIRTIO_VSOCK_CONFIG_SIZE = 8;

// 5.10.4 Reserved CIDs.
export const VMADDR_CID_HYPERVISOR = 0;
export const VMADDR_CID_LOCAL = 1;
/** "Well-known CID for the host". */
export const VMADDR_CID_HOST = 2;
export const VIRTIO_VSOCK_CID_RESERVED_U32 = 0xffff_ffff;

// 5.10.6 struct virtio_vsock_hdr: byte offsets and size (packed, little-endian).
export const VIRTIO_VSOCK_HDR_SRC_CID = 0; // le64
export const VIRTIO_VSOCK_HDR_DST_CID = 8; // le64
export const VIRTIO_VSOCK_HDR_SRC_PORT = 16; // le32
export const VIRTIO_VSOCK_HDR_DST_PORT = 20; // le32
export const VIRTIO_VSOCK_HDR_LEN = 24; // le32
export const VIRTIO_VSOCK_HDR_TYPE = 28; // le16
export const VIRTIO_VSOCK_HDR_OP = 30; // le16
export const VIRTIO_VSOCK_HDR_FLAGS = 32; // le32
export const VIRTIO_VSOCK_HDR_BUF_ALLOC = 36; // le32
export const VIRTIO_VSOCK_HDR_FWD_CNT = 40; // le32
export const VIRTIO_VSOCK_HDR_SIZE = 44;

// 5.10.6 op.
export const VIRTIO_VSOCK_OP_INVALID = 0;
export const VIRTIO_VSOCK_OP_REQUEST = 1;
export const VIRTIO_VSOCK_OP_RESPONSE = 2;
export const VIRTIO_VSOCK_OP_RST = 3;
export const VIRTIO_VSOCK_OP_SHUTDOWN = 4;
export const VIRTIO_VSOCK_OP_RW = 5;
export const VIRTIO_VSOCK_OP_CREDIT_UPDATE = 6;
export const VIRTIO_VSOCK_OP_CREDIT_REQUEST = 7;

// 5.10.6.2 Addressing: type.
export const VIRTIO_VSOCK_TYPE_STREAM = 1;
export const VIRTIO_VSOCK_TYPE_SEQPACKET = 2;

// 5.10.6.4 Stream Sockets: SHUTDOWN flags. The spec lists them as bit numbers
// (VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE 0, VIRTIO_VSOCK_SHUTDOWN_F_SEND 1); these are the masks.
export const VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE = 0;
export const VIRTIO_VSOCK_SHUTDOWN_F_SEND = 1;
export const VIRTIO_VSOCK_SHUTDOWN_RCV = 1 << VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE;
export const VIRTIO_VSOCK_SHUTDOWN_SEND = 1 << VIRTIO_VSOCK_SHUTDOWN_F_SEND;
export const VIRTIO_VSOCK_SHUTDOWN_MASK = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;

// 5.10.6.6 Device Events.
export const VIRTIO_VSOCK_EVENT_TRANSPORT_RESET = 0;
/** struct virtio_vsock_event { le32 id; }. */
export const VIRTIO_VSOCK_EVENT_SIZE = 4;

export function opName(op: number): string {
  return (
    ["INVALID", "REQUEST", "RESPONSE", "RST", "SHUTDOWN", "RW", "CREDIT_UPDATE", "CREDIT_REQUEST"][op] ?? `op${op}`
  );
}
