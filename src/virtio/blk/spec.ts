// Constants of the virtio block device, named as in the Virtual I/O Device (VIRTIO) specification
// version 1.3, section 5.2 "Block Device". Pure data: no Node, no DOM.

/** 5.2.1 Device ID. */
export const VIRTIO_ID_BLOCK = 2;

/** The protocol's unit: sector numbers and counts are always 512-byte units (5.2.5, 5.2.6). */
export const SECTOR_SIZE = 512;
export const SECTOR_SHIFT = 9;

// 5.2.3 Feature bits (bit numbers).
export const VIRTIO_BLK_F_SIZE_MAX = 1;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_GEOMETRY = 4;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;
export const VIRTIO_BLK_F_TOPOLOGY = 10;
export const VIRTIO_BLK_F_CONFIG_WCE = 11;
export const VIRTIO_BLK_F_MQ = 12;
export const VIRTIO_BLK_F_DISCARD = 13;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;
export const VIRTIO_BLK_F_LIFETIME = 15;
export const VIRTIO_BLK_F_SECURE_ERASE = 16;
export const VIRTIO_BLK_F_ZONED = 17;

/** A feature bit as the bigint mask used by VirtioDevice.deviceFeatures / context.features. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

// 5.2.6 Device Operation: request types.
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_GET_LIFETIME = 10;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_SECURE_ERASE = 14;

// 5.2.6 Device Operation: status byte values.
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

/** sizeof(struct virtio_blk_req) up to (not including) data[]: le32 type, le32 reserved, le64 sector. */
export const VIRTIO_BLK_REQ_HEADER_SIZE = 16;
/** sizeof(struct virtio_blk_discard_write_zeroes): le64 sector, le32 num_sectors, le32 flags. */
export const VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE = 16;
/** flags.unmap, bit 0 of the segment's flags word (5.2.6). */
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;
/** GET_ID data length: a NUL-padded ASCII string of up to 20 bytes (5.2.6, 5.2.6.1). */
export const VIRTIO_BLK_ID_BYTES = 20;

// 5.2.4 Device configuration layout: byte offsets in struct virtio_blk_config.
export const VIRTIO_BLK_CONFIG_CAPACITY = 0; // le64
export const VIRTIO_BLK_CONFIG_SIZE_MAX = 8; // le32
export const VIRTIO_BLK_CONFIG_SEG_MAX = 12; // le32
export const VIRTIO_BLK_CONFIG_GEOMETRY = 16; // le16 cylinders, u8 heads, u8 sectors
export const VIRTIO_BLK_CONFIG_BLK_SIZE = 20; // le32
export const VIRTIO_BLK_CONFIG_TOPOLOGY = 24; // u8 physical_block_exp, u8 alignment_offset, le16 min_io_size, le32 opt_io_size
export const VIRTIO_BLK_CONFIG_WRITEBACK = 32; // u8
export const VIRTIO_BLK_CONFIG_NUM_QUEUES = 34; // le16 (after u8 unused0)
export const VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS = 36; // le32
export const VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG = 40; // le32
export const VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT = 44; // le32
export const VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS = 48; // le32
export const VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG = 52; // le32
export const VIRTIO_BLK_CONFIG_WRITE_ZEROES_MAY_UNMAP = 56; // u8 (then u8 unused1[3])
export const VIRTIO_BLK_CONFIG_MAX_SECURE_ERASE_SECTORS = 60; // le32
export const VIRTIO_BLK_CONFIG_MAX_SECURE_ERASE_SEG = 64; // le32
export const VIRTIO_BLK_CONFIG_SECURE_ERASE_SECTOR_ALIGNMENT = 68; // le32
export const VIRTIO_BLK_CONFIG_ZONED = 72; // struct virtio_blk_zoned_characteristics, 24 bytes
/** sizeof(struct virtio_blk_config) in spec 1.3. */
export const VIRTIO_BLK_CONFIG_SIZE = 96;

/** Readable names of the request types, for counters and logs. */
export function requestTypeName(type: number): string {
  switch (type) {
    case VIRTIO_BLK_T_IN:
      return "in";
    case VIRTIO_BLK_T_OUT:
      return "out";
    case VIRTIO_BLK_T_FLUSH:
      return "flush";
    case VIRTIO_BLK_T_GET_ID:
      return "getId";
    case VIRTIO_BLK_T_GET_LIFETIME:
      return "getLifetime";
    case VIRTIO_BLK_T_DISCARD:
      return "discard";
    case VIRTIO_BLK_T_WRITE_ZEROES:
      return "writeZeroes";
    case VIRTIO_BLK_T_SECURE_ERASE:
      return "secureErase";
    default:
      return "other";
  }
}
