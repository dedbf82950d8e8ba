// The qcow2 header (QEMU docs/interop/qcow2.txt, "Header" and "Header extensions") as small pure
// functions: parse the first cluster of an image into a checked description, and build the
// metadata of a new empty image. The image file is untrusted: every field is checked against the
// specification, QEMU's implementation limits and the file's size before anything is allocated
// from it, and every problem is a Qcow2FormatError saying what is wrong.

import {
  QCOW_CRYPT_AES,
  QCOW_CRYPT_LUKS,
  QCOW_CRYPT_NONE,
  QCOW_HEADER_AUTOCLEAR_FEATURES,
  QCOW_HEADER_BACKING_FILE_OFFSET,
  QCOW_HEADER_BACKING_FILE_SIZE,
  QCOW_HEADER_CLUSTER_BITS,
  QCOW_HEADER_COMPATIBLE_FEATURES,
  QCOW_HEADER_COMPRESSION_TYPE,
  QCOW_HEADER_CRYPT_METHOD,
  QCOW_HEADER_HEADER_LENGTH,
  QCOW_HEADER_INCOMPATIBLE_FEATURES,
  QCOW_HEADER_L1_SIZE,
  QCOW_HEADER_L1_TABLE_OFFSET,
  QCOW_HEADER_MAGIC,
  QCOW_HEADER_NB_SNAPSHOTS,
  QCOW_HEADER_REFCOUNT_ORDER,
  QCOW_HEADER_REFCOUNT_TABLE_CLUSTERS,
  QCOW_HEADER_REFCOUNT_TABLE_OFFSET,
  QCOW_HEADER_SIZE,
  QCOW_HEADER_SNAPSHOTS_OFFSET,
  QCOW_HEADER_VERSION,
  QCOW_MAGIC,
  QCOW_MAX_BACKING_FILE_NAME,
  QCOW_MAX_CLUSTER_BITS,
  QCOW_MAX_L1_BYTES,
  QCOW_MAX_REFCOUNT_ORDER,
  QCOW_MAX_REFTABLE_BYTES,
  QCOW_MIN_CLUSTER_BITS,
  QCOW_TABLE_ENTRY_SIZE,
  QCOW_V2_HEADER_LENGTH,
  QCOW_V2_REFCOUNT_ORDER,
  QCOW_V3_HEADER_LENGTH,
  QCOW2_AUTOCLEAR_DATA_FILE_RAW,
  QCOW2_EXT_MAGIC_BACKING_FORMAT,
  QCOW2_EXT_MAGIC_CRYPTO_HEADER,
  QCOW2_EXT_MAGIC_DATA_FILE,
  QCOW2_EXT_MAGIC_END,
  QCOW2_EXT_MAGIC_FEATURE_TABLE,
  QCOW2_FEATURE_ENTRY_SIZE,
  QCOW2_FEATURE_TYPE_INCOMPATIBLE,
  QCOW2_INCOMPAT_COMPRESSION,
  QCOW2_INCOMPAT_CORRUPT,
  QCOW2_INCOMPAT_DATA_FILE,
  QCOW2_INCOMPAT_DIRTY,
  QCOW2_INCOMPAT_EXTL2,
} from "./spec.ts";

/** A qcow2 image that is malformed, truncated or uses a feature Parley does not implement. */
export class Qcow2FormatError extends Error {
  override name = "Qcow2FormatError";
}

/** The checked header of a qcow2 image. Offsets and sizes are byte counts (safe integers). */
export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  clusterSize: number;
  /** Virtual disk size in bytes. */
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  /** The backing file's name as stored (resolved by the host), if any. */
  backingFile: string | undefined;
  /** The backing format header extension ("raw", "qcow2", ...), if present. */
  backingFormat: string | undefined;
  /** compression_type (byte 104, version 3): 0 zlib (deflate), 1 zstd. */
  compressionType: number;
}

/** Bytes the header and its extensions can occupy: the whole first cluster. */
export function headerReadLength(clusterBits: number): number {
  return 2 ** clusterBits;
}

/** The number of bytes needed to learn the cluster size (magic to cluster_bits). */
export const QCOW_PROBE_LENGTH = QCOW_HEADER_CLUSTER_BITS + 4;

/** Whether bytes start with the qcow2 magic (a probe; nothing else is checked). */
export function hasQcow2Magic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0) === QCOW_MAGIC;
}

const KNOWN_INCOMPATIBLE =
  QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DATA_FILE | QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2;

function u64(view: DataView, offset: number): bigint {
  return view.getBigUint64(offset);
}

/** A 64-bit field that must be a safe integer byte offset or size. */
function safe(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Qcow2FormatError(`${what} ${value} is too large`);
  return Number(value);
}

function rangesOverlap(a: [number, number], b: [number, number]): boolean {
  return a[1] > a[0] && b[1] > b[0] && a[0] < b[1] && b[0] < a[1];
}

/**
 * Parses and checks a qcow2 header. `bytes` is the start of the file: at least its first cluster,
 * or the whole file if it is shorter; `fileSize` the file's length. Throws Qcow2FormatError.
 */
export function parseQcow2Header(bytes: Uint8Array, fileSize: number): Qcow2Header {
  if (bytes.length < QCOW_V2_HEADER_LENGTH) {
    throw new Qcow2FormatError(`truncated: the file has ${bytes.length} bytes, a qcow2 header needs at least ${QCOW_V2_HEADER_LENGTH}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(QCOW_HEADER_MAGIC) !== QCOW_MAGIC) throw new Qcow2FormatError('not a qcow2 image (the magic "QFI\\xfb" is missing)');
  const version = view.getUint32(QCOW_HEADER_VERSION);
  if (version !== 2 && version !== 3) throw new Qcow2FormatError(`qcow2 version ${version} is not supported (only 2 and 3)`);
  const clusterBits = view.getUint32(QCOW_HEADER_CLUSTER_BITS);
  if (clusterBits < QCOW_MIN_CLUSTER_BITS || clusterBits > QCOW_MAX_CLUSTER_BITS) {
    throw new Qcow2FormatError(`cluster_bits ${clusterBits} is outside ${QCOW_MIN_CLUSTER_BITS}..${QCOW_MAX_CLUSTER_BITS} (512 bytes to 2 MiB clusters)`);
  }
  const clusterSize = 2 ** clusterBits;
  const available = Math.min(bytes.length, clusterSize);

  let headerLength = QCOW_V2_HEADER_LENGTH;
  let incompatibleFeatures = 0n;
  let compatibleFeatures = 0n;
  let autoclearFeatures = 0n;
  let refcountOrder = QCOW_V2_REFCOUNT_ORDER;
  if (version === 3) {
    if (bytes.length < QCOW_V3_HEADER_LENGTH) {
      throw new Qcow2FormatError(`truncated: a version 3 header needs ${QCOW_V3_HEADER_LENGTH} bytes, the file has ${bytes.length}`);
    }
    incompatibleFeatures = u64(view, QCOW_HEADER_INCOMPATIBLE_FEATURES);
    compatibleFeatures = u64(view, QCOW_HEADER_COMPATIBLE_FEATURES);
    autoclearFeatures = u64(view, QCOW_HEADER_AUTOCLEAR_FEATURES);
    refcountOrder = view.getUint32(QCOW_HEADER_REFCOUNT_ORDER);
    headerLength = view.getUint32(QCOW_HEADER_HEADER_LENGTH);
    if (headerLength < QCOW_V3_HEADER_LENGTH || headerLength % 8 !== 0 || headerLength > available) {
      throw new Qcow2FormatError(`header_length ${headerLength} must be a multiple of 8 from ${QCOW_V3_HEADER_LENGTH} to the cluster size (${Math.min(available, clusterSize)} bytes here)`);
    }
    if (refcountOrder > QCOW_MAX_REFCOUNT_ORDER) throw new Qcow2FormatError(`refcount_order ${refcountOrder} exceeds ${QCOW_MAX_REFCOUNT_ORDER}`);
  }

  // "If the incompatible bit 'Compression type' is set: the field must be present and non-zero."
  const compressionType = headerLength > QCOW_HEADER_COMPRESSION_TYPE ? bytes[QCOW_HEADER_COMPRESSION_TYPE] : 0;
  if ((incompatibleFeatures & QCOW2_INCOMPAT_COMPRESSION) !== 0n && compressionType === 0) {
    throw new Qcow2FormatError("the compression type feature bit is set but compression_type is zlib (0)");
  }
  if ((incompatibleFeatures & QCOW2_INCOMPAT_COMPRESSION) === 0n && compressionType !== 0) {
    throw new Qcow2FormatError(`compression_type ${compressionType} needs the compression type feature bit`);
  }

  const cryptMethod = view.getUint32(QCOW_HEADER_CRYPT_METHOD);
  if (cryptMethod !== QCOW_CRYPT_NONE) {
    const name = cryptMethod === QCOW_CRYPT_AES ? "AES" : cryptMethod === QCOW_CRYPT_LUKS ? "LUKS" : `method ${cryptMethod}`;
    throw new Qcow2FormatError(`encrypted images (${name}) are not supported; decrypt it with qemu-img convert`);
  }

  // Header extensions: after the header, up to the backing file name or the end of the cluster.
  const backingFileOffsetRaw = u64(view, QCOW_HEADER_BACKING_FILE_OFFSET);
  let backingFile: string | undefined;
  let extensionsEnd = available;
  if (backingFileOffsetRaw !== 0n) {
    const nameLength = view.getUint32(QCOW_HEADER_BACKING_FILE_SIZE);
    if (backingFileOffsetRaw > BigInt(clusterSize) || nameLength === 0 || nameLength > QCOW_MAX_BACKING_FILE_NAME) {
      throw new Qcow2FormatError(`the backing file name (offset ${backingFileOffsetRaw}, ${nameLength} bytes) must be 1..${QCOW_MAX_BACKING_FILE_NAME} bytes inside the first cluster`);
    }
    const nameOffset = Number(backingFileOffsetRaw);
    if (nameOffset < headerLength || nameOffset + nameLength > available) {
      throw new Qcow2FormatError(`the backing file name (offset ${nameOffset}, ${nameLength} bytes) lies outside the header cluster or over the header`);
    }
    backingFile = decodeText(bytes.subarray(nameOffset, nameOffset + nameLength), "backing file name");
    extensionsEnd = nameOffset;
  }
  const extensions = parseHeaderExtensions(bytes.subarray(0, extensionsEnd), headerLength);
  if (extensions.encrypted) throw new Qcow2FormatError("encrypted images (full disk encryption header) are not supported");

  const unknown = incompatibleFeatures & ~KNOWN_INCOMPATIBLE;
  if (unknown !== 0n) {
    const names: string[] = [];
    for (let bit = 0; bit < 64; bit++) {
      if ((unknown >> BigInt(bit)) & 1n) names.push(extensions.featureNames.get(bit) ?? `bit ${bit}`);
    }
    throw new Qcow2FormatError(`unknown incompatible features: ${names.join(", ")}`);
  }
  if (incompatibleFeatures & QCOW2_INCOMPAT_DATA_FILE || extensions.dataFile) {
    throw new Qcow2FormatError("external data files (data_file) are not supported");
  }
  if (incompatibleFeatures & QCOW2_INCOMPAT_EXTL2) throw new Qcow2FormatError("extended L2 entries (extended_l2, subclusters) are not supported");
  if (autoclearFeatures & QCOW2_AUTOCLEAR_DATA_FILE_RAW) throw new Qcow2FormatError("external data files (data_file_raw) are not supported");

  const size = safe(u64(view, QCOW_HEADER_SIZE), "the virtual size");
  const l2Entries = clusterSize / QCOW_TABLE_ENTRY_SIZE;
  const l1Size = view.getUint32(QCOW_HEADER_L1_SIZE);
  if (l1Size * QCOW_TABLE_ENTRY_SIZE > QCOW_MAX_L1_BYTES) {
    throw new Qcow2FormatError(`l1_size ${l1Size} exceeds the ${QCOW_MAX_L1_BYTES / QCOW_TABLE_ENTRY_SIZE}-entry limit`);
  }
  // Without overflow: size <= 2^53 and each L1 entry covers 2^(2*cluster_bits - 3) bytes.
  const l1Needed = Math.ceil(size / (clusterSize * l2Entries));
  if (l1Size < l1Needed) throw new Qcow2FormatError(`l1_size ${l1Size} is too small for the ${size}-byte virtual size (needs ${l1Needed})`);

  const cluster = (value: bigint, what: string): number => {
    const n = safe(value, what);
    if (n % clusterSize !== 0) throw new Qcow2FormatError(`${what} ${n} is not aligned to the ${clusterSize}-byte cluster size`);
    return n;
  };
  const l1TableOffset = cluster(u64(view, QCOW_HEADER_L1_TABLE_OFFSET), "l1_table_offset");
  const l1Bytes = l1Size * QCOW_TABLE_ENTRY_SIZE;
  if (l1Size > 0 && (l1TableOffset === 0 || l1TableOffset + l1Bytes > fileSize)) {
    throw new Qcow2FormatError(`the L1 table (offset ${l1TableOffset}, ${l1Bytes} bytes) lies outside the ${fileSize}-byte file (truncated image?)`);
  }
  const refcountTableOffset = cluster(u64(view, QCOW_HEADER_REFCOUNT_TABLE_OFFSET), "refcount_table_offset");
  const refcountTableClusters = view.getUint32(QCOW_HEADER_REFCOUNT_TABLE_CLUSTERS);
  if (refcountTableClusters === 0 || refcountTableClusters * clusterSize > QCOW_MAX_REFTABLE_BYTES) {
    throw new Qcow2FormatError(`refcount_table_clusters ${refcountTableClusters} must be 1..${QCOW_MAX_REFTABLE_BYTES / clusterSize} (an ${QCOW_MAX_REFTABLE_BYTES}-byte table)`);
  }
  const reftableBytes = refcountTableClusters * clusterSize;
  if (refcountTableOffset === 0 || refcountTableOffset + reftableBytes > fileSize) {
    throw new Qcow2FormatError(`the refcount table (offset ${refcountTableOffset}, ${reftableBytes} bytes) lies outside the ${fileSize}-byte file (truncated image?)`);
  }
  const nbSnapshots = view.getUint32(QCOW_HEADER_NB_SNAPSHOTS);
  const snapshotsOffset = nbSnapshots === 0 ? 0 : cluster(u64(view, QCOW_HEADER_SNAPSHOTS_OFFSET), "snapshots_offset");
  if (nbSnapshots > 0 && (snapshotsOffset === 0 || snapshotsOffset >= fileSize)) {
    throw new Qcow2FormatError(`the snapshot table (offset ${snapshotsOffset}) lies outside the ${fileSize}-byte file`);
  }

  const areas: [string, [number, number]][] = [
    ["the header", [0, clusterSize]],
    ["the L1 table", [l1TableOffset, l1TableOffset + l1Bytes]],
    ["the refcount table", [refcountTableOffset, refcountTableOffset + reftableBytes]],
  ];
  if (nbSnapshots > 0) areas.push(["the snapshot table", [snapshotsOffset, snapshotsOffset + clusterSize]]);
  for (let i = 0; i < areas.length; i++) {
    for (let j = i + 1; j < areas.length; j++) {
      if (rangesOverlap(areas[i][1], areas[j][1])) throw new Qcow2FormatError(`${areas[i][0]} and ${areas[j][0]} overlap`);
    }
  }
  return {
    version,
    clusterBits,
    clusterSize,
    size,
    l1Size,
    l1TableOffset,
    refcountTableOffset,
    refcountTableClusters,
    nbSnapshots,
    snapshotsOffset,
    incompatibleFeatures,
    compatibleFeatures,
    autoclearFeatures,
    refcountOrder,
    headerLength,
    backingFile,
    backingFormat: extensions.backingFormat,
    compressionType,
  };
}

function decodeText(bytes: Uint8Array, what: string): string {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Qcow2FormatError(`the ${what} is not valid UTF-8`);
  }
  if (text.includes("\0")) throw new Qcow2FormatError(`the ${what} contains a NUL byte`);
  return text;
}

interface HeaderExtensions {
  backingFormat: string | undefined;
  /** Names of incompatible feature bits from the feature name table, for error messages. */
  featureNames: Map<number, string>;
  encrypted: boolean;
  dataFile: boolean;
}

/** Walks the header extensions in bytes[start, bytes.length). Unknown extensions are skipped. */
export function parseHeaderExtensions(bytes: Uint8Array, start: number): HeaderExtensions {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const result: HeaderExtensions = { backingFormat: undefined, featureNames: new Map(), encrypted: false, dataFile: false };
  let offset = start;
  // Each extension takes at least 8 bytes, so this ends within bytes.length / 8 steps.
  while (offset + 8 <= bytes.length) {
    const type = view.getUint32(offset);
    const length = view.getUint32(offset + 4);
    if (type === QCOW2_EXT_MAGIC_END) break;
    const dataStart = offset + 8;
    if (length > bytes.length - dataStart) {
      throw new Qcow2FormatError(`header extension 0x${type.toString(16)} at byte ${offset} (${length} bytes) runs past the header area`);
    }
    const data = bytes.subarray(dataStart, dataStart + length);
    switch (type) {
      case QCOW2_EXT_MAGIC_BACKING_FORMAT:
        result.backingFormat = decodeText(data, "backing format name");
        break;
      case QCOW2_EXT_MAGIC_FEATURE_TABLE:
        for (let e = 0; e + QCOW2_FEATURE_ENTRY_SIZE <= data.length; e += QCOW2_FEATURE_ENTRY_SIZE) {
          if (data[e] !== QCOW2_FEATURE_TYPE_INCOMPATIBLE) continue;
          const nameBytes = data.subarray(e + 2, e + QCOW2_FEATURE_ENTRY_SIZE);
          const end = nameBytes.indexOf(0);
          const name = new TextDecoder().decode(end < 0 ? nameBytes : nameBytes.subarray(0, end)).replace(/[^\x20-\x7e]/g, "?");
          result.featureNames.set(data[e + 1], name);
        }
        break;
      case QCOW2_EXT_MAGIC_CRYPTO_HEADER:
        result.encrypted = true;
        break;
      case QCOW2_EXT_MAGIC_DATA_FILE:
        result.dataFile = true;
        break;
    }
    offset = dataStart + Math.ceil(length / 8) * 8;
  }
  return result;
}

/**
 * The metadata of a new, empty version 3 image of `size` bytes with 16-bit refcounts and no
 * backing file: header cluster, refcount table, one refcount block, L1 table. Write it at offset
 * 0 of an empty file. (Used for the throw-away overlays of snapshot=on.)
 */
export function newQcow2Image(size: number, clusterBits = 16): Uint8Array {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`qcow2 size ${size} is not a byte count`);
  if (clusterBits < QCOW_MIN_CLUSTER_BITS || clusterBits > QCOW_MAX_CLUSTER_BITS) throw new RangeError(`cluster_bits ${clusterBits} out of range`);
  const clusterSize = 2 ** clusterBits;
  const l1Size = Math.ceil(size / (clusterSize * (clusterSize / QCOW_TABLE_ENTRY_SIZE)));
  const l1Clusters = Math.max(1, Math.ceil((l1Size * QCOW_TABLE_ENTRY_SIZE) / clusterSize));
  const clusters = 3 + l1Clusters; // header, refcount table, refcount block, L1
  const refcountsPerBlock = (clusterSize * 8) / 16;
  if (clusters > refcountsPerBlock || l1Size * QCOW_TABLE_ENTRY_SIZE > QCOW_MAX_L1_BYTES) {
    throw new RangeError(`a ${size}-byte qcow2 image needs larger clusters than ${clusterSize} bytes`);
  }
  const image = new Uint8Array(clusters * clusterSize);
  const view = new DataView(image.buffer);
  view.setUint32(QCOW_HEADER_MAGIC, QCOW_MAGIC);
  view.setUint32(QCOW_HEADER_VERSION, 3);
  view.setUint32(QCOW_HEADER_CLUSTER_BITS, clusterBits);
  view.setBigUint64(QCOW_HEADER_SIZE, BigInt(size));
  view.setUint32(QCOW_HEADER_L1_SIZE, l1Size);
  view.setBigUint64(QCOW_HEADER_L1_TABLE_OFFSET, BigInt(3 * clusterSize));
  view.setBigUint64(QCOW_HEADER_REFCOUNT_TABLE_OFFSET, BigInt(clusterSize));
  view.setUint32(QCOW_HEADER_REFCOUNT_TABLE_CLUSTERS, 1);
  view.setUint32(QCOW_HEADER_REFCOUNT_ORDER, 4);
  view.setUint32(QCOW_HEADER_HEADER_LENGTH, QCOW_V3_HEADER_LENGTH);
  // Refcount table entry 0 -> the refcount block in cluster 2, which counts every cluster once.
  view.setBigUint64(clusterSize, BigInt(2 * clusterSize));
  for (let c = 0; c < clusters; c++) view.setUint16(2 * clusterSize + 2 * c, 1);
  return image;
}
