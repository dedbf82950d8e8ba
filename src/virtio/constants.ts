// Numbers from the Virtual I/O Device (VIRTIO) specification, version 1.3 ("virtio spec").
// Names follow the spec (its C definitions where it has them, its register table otherwise).

// ---- Device status field (spec 2.1) --------------------------------------------------------
/** The guest OS has found the device and recognized it as a valid virtio device. */
export const ACKNOWLEDGE = 1;
/** The guest OS knows how to drive the device. */
export const DRIVER = 2;
/** The driver is set up and ready to drive the device. */
export const DRIVER_OK = 4;
/** The driver has acknowledged all the features it understands; feature negotiation is complete. */
export const FEATURES_OK = 8;
/** The device has experienced an error from which it can't recover (set by the device). */
export const DEVICE_NEEDS_RESET = 64;
/** Something went wrong in the guest, and it has given up on the device. */
export const FAILED = 128;

// ---- Reserved feature bits (spec 6), as bit numbers --------------------------------------
/** Spec 2.7.5.3 / 2.8.7: the driver can use descriptors with VIRTQ_DESC_F_INDIRECT set. */
export const VIRTIO_F_INDIRECT_DESC = 28;
/** Spec 2.7.7, 2.7.10, 2.8.10: used_event / avail_event fields and packed RING_EVENT_FLAGS_DESC. */
export const VIRTIO_F_EVENT_IDX = 29;
/** Compliance with version 1 of the specification (no legacy interface). */
export const VIRTIO_F_VERSION_1 = 32;
/** The device can be used on a platform where device access to memory is limited or translated. */
export const VIRTIO_F_ACCESS_PLATFORM = 33;
/** Spec 2.8: support for the packed virtqueue layout. */
export const VIRTIO_F_RING_PACKED = 34;
/** Spec 2.7.9 / 2.8.8: all buffers are used by the device in the order they were made available. */
export const VIRTIO_F_IN_ORDER = 35;
/** Memory accesses by the driver and the device are ordered as by the platform. */
export const VIRTIO_F_ORDER_PLATFORM = 36;
/** The device supports single root I/O virtualization (PCI only). */
export const VIRTIO_F_SR_IOV = 37;
/** The driver passes extra data (besides the queue index) in its device notifications. */
export const VIRTIO_F_NOTIFICATION_DATA = 38;
/** The driver uses the data provided by the device as a virtqueue identifier in notifications. */
export const VIRTIO_F_NOTIF_CONFIG_DATA = 39;
/** The driver can reset a queue individually (spec 2.6.1). */
export const VIRTIO_F_RING_RESET = 40;
/** Legacy names of bits 28 and 29 (include/uapi/linux/virtio_ring.h). */
export const VIRTIO_RING_F_INDIRECT_DESC = VIRTIO_F_INDIRECT_DESC;
export const VIRTIO_RING_F_EVENT_IDX = VIRTIO_F_EVENT_IDX;

/** The feature mask of one bit number. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** True when `features` has bit number `bit` set. */
export function hasFeature(features: bigint, bit: number): boolean {
  return (features & featureBit(bit)) !== 0n;
}

// ---- Device IDs (spec 5, "Device Types") ------------------------------------------------------
export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;
export const VIRTIO_ID_ENTROPY = 4;
export const VIRTIO_ID_BALLOON_TRADITIONAL = 5;
export const VIRTIO_ID_SCSI_HOST = 8;
export const VIRTIO_ID_9P = 9;
export const VIRTIO_ID_GPU = 16;
export const VIRTIO_ID_INPUT = 18;
export const VIRTIO_ID_VSOCK = 19;
export const VIRTIO_ID_CRYPTO = 20;
export const VIRTIO_ID_IOMMU = 23;
export const VIRTIO_ID_MEM = 24;
export const VIRTIO_ID_SOUND = 25;
export const VIRTIO_ID_FS = 26;
export const VIRTIO_ID_PMEM = 27;

// ---- Split virtqueue (spec 2.7) ---------------------------------------------------------------
/** Spec 2.7.5: this marks a buffer as continuing via the next field. */
export const VIRTQ_DESC_F_NEXT = 1;
/** Spec 2.7.5: this marks a buffer as device write-only (otherwise device read-only). */
export const VIRTQ_DESC_F_WRITE = 2;
/** Spec 2.7.5: this means the buffer contains a list of buffer descriptors. */
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Spec 2.7.6: the driver does not want used buffer notifications (without EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** Spec 2.7.8: the device does not want available buffer notifications (without EVENT_IDX). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;
/** Spec 2.7: the largest split queue size (a power of 2 that fits 16-bit indices). */
export const VIRTQ_SPLIT_MAX_SIZE = 32768;
/** Size of struct virtq_desc (spec 2.7.5) and struct pvirtq_desc (spec 2.8.13). */
export const VIRTQ_DESC_SIZE = 16;
/** Alignment of the split queue parts (spec 2.7, table "Virtqueue Part / Alignment / Size"). */
export const VIRTQ_DESC_ALIGN = 16;
export const VIRTQ_AVAIL_ALIGN = 2;
export const VIRTQ_USED_ALIGN = 4;

// ---- Packed virtqueue (spec 2.8) --------------------------------------------------------------
/** Spec 2.8.1: descriptor made available (matches the Driver Ring Wrap Counter). */
export const VIRTQ_DESC_F_AVAIL = 1 << 7;
/** Spec 2.8.1: descriptor used (matches the Device Ring Wrap Counter). */
export const VIRTQ_DESC_F_USED = 1 << 15;
/** Spec 2.8.10: event suppression flags. */
export const RING_EVENT_FLAGS_ENABLE = 0x0;
export const RING_EVENT_FLAGS_DISABLE = 0x1;
/** Only valid if VIRTIO_F_EVENT_IDX has been negotiated. */
export const RING_EVENT_FLAGS_DESC = 0x2;
/** Spec 2.8: packed virtqueues support up to 2^15 entries. */
export const VIRTQ_PACKED_MAX_SIZE = 32768;
/** Alignment of the packed queue parts (spec 2.8.10.1). */
export const VIRTQ_EVENT_SUPPRESS_ALIGN = 4;
/** Size of struct pvirtq_event_suppress (spec 2.8.14). */
export const VIRTQ_EVENT_SUPPRESS_SIZE = 4;

/** Spec 2.7.5.2: drivers MUST NOT add a descriptor chain longer than 2^32 bytes in total. */
export const VIRTQ_MAX_CHAIN_BYTES = 2 ** 32;

// ---- Virtio over MMIO (spec 4.2) -------------------------------------------------------------
/** Spec 4.2.2: register offsets, named as in the spec's register table. */
export const VirtioMmioRegister = {
  MagicValue: 0x000,
  Version: 0x004,
  DeviceID: 0x008,
  VendorID: 0x00c,
  DeviceFeatures: 0x010,
  DeviceFeaturesSel: 0x014,
  DriverFeatures: 0x020,
  DriverFeaturesSel: 0x024,
  QueueSel: 0x030,
  QueueNumMax: 0x034,
  QueueNum: 0x038,
  QueueReady: 0x044,
  QueueNotify: 0x050,
  InterruptStatus: 0x060,
  InterruptACK: 0x064,
  Status: 0x070,
  QueueDescLow: 0x080,
  QueueDescHigh: 0x084,
  QueueDriverLow: 0x090,
  QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0,
  QueueDeviceHigh: 0x0a4,
  SHMSel: 0x0ac,
  SHMLenLow: 0x0b0,
  SHMLenHigh: 0x0b4,
  SHMBaseLow: 0x0b8,
  SHMBaseHigh: 0x0bc,
  QueueReset: 0x0c0,
  ConfigGeneration: 0x0fc,
  Config: 0x100,
} as const;

/** Spec 4.2.2 MagicValue: 0x74726976, a little-endian equivalent of the "virt" string. */
export const VIRTIO_MMIO_MAGIC_VALUE = 0x74726976;
/** Spec 4.2.2 Version: 0x2 (0x1 is the legacy interface, which Parley does not offer). */
export const VIRTIO_MMIO_VERSION = 2;
/** VendorID reported by Parley's devices: "PRLY" read as a little-endian word. */
export const VIRTIO_MMIO_VENDOR_PARLEY = 0x594c5250;
/** Spec 4.2.2 InterruptStatus bit 0: Used Buffer Notification (Linux: VIRTIO_MMIO_INT_VRING). */
export const VIRTIO_MMIO_INT_VRING = 1 << 0;
/** Spec 4.2.2 InterruptStatus bit 1: Configuration Change Notification (Linux: VIRTIO_MMIO_INT_CONFIG). */
export const VIRTIO_MMIO_INT_CONFIG = 1 << 1;
/** Size of the register block QEMU's virt machine and Linux's virtio-mmio binding use per device. */
export const VIRTIO_MMIO_REGION_SIZE = 0x200;
