// qcow2 on-disk constants, named as in QEMU's docs/interop/qcow2.txt (the image format
// specification); each group names the section it comes from. All numbers on disk are big-endian.

// ---- "Header" ---------------------------------------------------------------------------------
/** magic: "QFI\xfb". */
export const QCOW_MAGIC = 0x514649fb;
export const QCOW_HEADER_MAGIC = 0;
export const QCOW_HEADER_VERSION = 4;
export const QCOW_HEADER_BACKING_FILE_OFFSET = 8;
export const QCOW_HEADER_BACKING_FILE_SIZE = 16;
export const QCOW_HEADER_CLUSTER_BITS = 20;
export const QCOW_HEADER_SIZE = 24;
export const QCOW_HEADER_CRYPT_METHOD = 32;
export const QCOW_HEADER_L1_SIZE = 36;
export const QCOW_HEADER_L1_TABLE_OFFSET = 40;
export const QCOW_HEADER_REFCOUNT_TABLE_OFFSET = 48;
export const QCOW_HEADER_REFCOUNT_TABLE_CLUSTERS = 56;
export const QCOW_HEADER_NB_SNAPSHOTS = 60;
export const QCOW_HEADER_SNAPSHOTS_OFFSET = 64;
/** Version 3 fields. */
export const QCOW_HEADER_INCOMPATIBLE_FEATURES = 72;
export const QCOW_HEADER_COMPATIBLE_FEATURES = 80;
export const QCOW_HEADER_AUTOCLEAR_FEATURES = 88;
export const QCOW_HEADER_REFCOUNT_ORDER = 96;
export const QCOW_HEADER_HEADER_LENGTH = 100;
/** "Additional fields": compression_type, one byte, present when header_length > 104. */
export const QCOW_HEADER_COMPRESSION_TYPE = 104;
export const QCOW_COMPRESSION_TYPE_ZLIB = 0;
export const QCOW_COMPRESSION_TYPE_ZSTD = 1;
/** "For version 2, the header is exactly 72 bytes"; version 3: "at least 104 bytes". */
export const QCOW_V2_HEADER_LENGTH = 72;
export const QCOW_V3_HEADER_LENGTH = 104;
/** backing_file_size: "Must not be longer than 1023 bytes". */
export const QCOW_MAX_BACKING_FILE_NAME = 1023;
/** cluster_bits: "Must not be less than 9"; QEMU's implementation limit is 2 MB clusters. */
export const QCOW_MIN_CLUSTER_BITS = 9;
export const QCOW_MAX_CLUSTER_BITS = 21;
/** refcount_order: "may not exceed 6"; version 2 is always 4 (16-bit refcounts). */
export const QCOW_MAX_REFCOUNT_ORDER = 6;
export const QCOW_V2_REFCOUNT_ORDER = 4;
/** QEMU's implementation limits (spec notes under size and "Host cluster management"). */
export const QCOW_MAX_L1_BYTES = 32 * 1024 * 1024;
export const QCOW_MAX_REFTABLE_BYTES = 8 * 1024 * 1024;

/** crypt_method values. */
export const QCOW_CRYPT_NONE = 0;
export const QCOW_CRYPT_AES = 1;
export const QCOW_CRYPT_LUKS = 2;

/** incompatible_features bits. */
export const QCOW2_INCOMPAT_DIRTY = 1n << 0n;
export const QCOW2_INCOMPAT_CORRUPT = 1n << 1n;
export const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;
export const QCOW2_INCOMPAT_COMPRESSION = 1n << 3n;
export const QCOW2_INCOMPAT_EXTL2 = 1n << 4n;
/** compatible_features bits. */
export const QCOW2_COMPAT_LAZY_REFCOUNTS = 1n << 0n;
/** autoclear_features bits. */
export const QCOW2_AUTOCLEAR_BITMAPS = 1n << 0n;
export const QCOW2_AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;

// ---- "Header extensions" ----------------------------------------------------------------------
export const QCOW2_EXT_MAGIC_END = 0x00000000;
export const QCOW2_EXT_MAGIC_BACKING_FORMAT = 0xe2792aca;
export const QCOW2_EXT_MAGIC_FEATURE_TABLE = 0x6803f857;
export const QCOW2_EXT_MAGIC_BITMAPS = 0x23852875;
export const QCOW2_EXT_MAGIC_CRYPTO_HEADER = 0x0537be77;
export const QCOW2_EXT_MAGIC_DATA_FILE = 0x44415441;
/** "Feature name table": entries of 48 bytes (type, bit number, 46-byte name). */
export const QCOW2_FEATURE_ENTRY_SIZE = 48;
export const QCOW2_FEATURE_TYPE_INCOMPATIBLE = 0;

// ---- "Cluster mapping" and "Host cluster management" -------------------------------------------
/** L1 and refcount table entries: bits 9-55 are the offset; bit 63 of L1 entries is "copied". */
export const L1E_OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
/** L2 entries: bit 63 "copied" (refcount exactly one), bit 62 compressed, bit 0 reads as zeroes. */
export const QCOW_OFLAG_COPIED = 1n << 63n;
export const QCOW_OFLAG_COMPRESSED = 1n << 62n;
export const QCOW_OFLAG_ZERO = 1n << 0n;
export const L2E_OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
/** Reserved bits of a standard L2 entry (1-8 and 56-61) and of an L1 entry (0-8 and 56-62). */
export const L2E_STD_RESERVED_MASK = 0x3f00_0000_0000_01fen;
export const L1E_RESERVED_MASK = 0x7f00_0000_0000_01ffn;
export const REFT_RESERVED_MASK = 0x1ffn;
/** Size of an L1, L2 or refcount table entry. */
export const QCOW_TABLE_ENTRY_SIZE = 8;
