// Constants of the traditional memory balloon device, named as in the Virtual I/O Device (VIRTIO)
// specification version 1.3, section 5.5 "Traditional Memory Balloon Device". Pure data and pure
// functions: no Node, no DOM.

/** 5.5.1 Device ID. */
export const VIRTIO_ID_BALLOON = 5;

// 5.5.3 Feature bits (bit numbers).
export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
export const VIRTIO_BALLOON_F_STATS_VQ = 1;
export const VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
export const VIRTIO_BALLOON_F_FREE_PAGE_HINT = 3;
export const VIRTIO_BALLOON_F_PAGE_POISON = 4;
export const VIRTIO_BALLOON_F_PAGE_REPORTING = 5;

/** A feature bit as the bigint mask used by VirtioDevice.deviceFeatures / context.features. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

/**
 * 5.5.6: page frame numbers in inflateq/deflateq are addresses divided by 4096, "historical, and
 * independent of the guest page size" (Linux: VIRTIO_BALLOON_PFN_SHIFT).
 */
export const VIRTIO_BALLOON_PFN_SHIFT = 12;
export const VIRTIO_BALLOON_PAGE_SIZE = 1 << VIRTIO_BALLOON_PFN_SHIFT;
/** Each PFN is a le32. */
export const VIRTIO_BALLOON_PFN_SIZE = 4;

// 5.5.4 Device configuration layout: byte offsets in struct virtio_balloon_config.
export const VIRTIO_BALLOON_CONFIG_NUM_PAGES = 0; // le32, set by the device
export const VIRTIO_BALLOON_CONFIG_ACTUAL = 4; // le32, written by the driver
export const VIRTIO_BALLOON_CONFIG_FREE_PAGE_HINT_CMD_ID = 8; // le32, VIRTIO_BALLOON_F_FREE_PAGE_HINT only
export const VIRTIO_BALLOON_CONFIG_POISON_VAL = 12; // le32, VIRTIO_BALLOON_F_PAGE_POISON only
/** sizeof(struct virtio_balloon_config). */
export const VIRTIO_BALLOON_CONFIG_SIZE = 16;

// 5.5.6.3 Memory Statistics: struct virtio_balloon_stat { le16 tag; le64 val; } (packed).
export const VIRTIO_BALLOON_STAT_SIZE = 10;
// 5.5.6.4 Memory Statistics Tags.
export const VIRTIO_BALLOON_S_SWAP_IN = 0;
export const VIRTIO_BALLOON_S_SWAP_OUT = 1;
export const VIRTIO_BALLOON_S_MAJFLT = 2;
export const VIRTIO_BALLOON_S_MINFLT = 3;
export const VIRTIO_BALLOON_S_MEMFREE = 4;
export const VIRTIO_BALLOON_S_MEMTOT = 5;
export const VIRTIO_BALLOON_S_AVAIL = 6;
export const VIRTIO_BALLOON_S_CACHES = 7;
export const VIRTIO_BALLOON_S_HTLB_PGALLOC = 8;
export const VIRTIO_BALLOON_S_HTLB_PGFAIL = 9;

/** The tags of 5.5.6.4 by value, as the names used in BalloonStats (the spec name without prefix). */
export const BALLOON_STAT_NAMES = [
  "SWAP_IN",
  "SWAP_OUT",
  "MAJFLT",
  "MINFLT",
  "MEMFREE",
  "MEMTOT",
  "AVAIL",
  "CACHES",
  "HTLB_PGALLOC",
  "HTLB_PGFAIL",
] as const;
export type BalloonStatName = (typeof BALLOON_STAT_NAMES)[number];

/**
 * Where each balloon virtqueue lives for a set of negotiated features (5.5.2).
 *
 * Spec 5.5.2 lists inflateq 0, deflateq 1, statsq 2, free_page_vq 3, reporting_vq 4, and says that
 * statsq, free_page_vq and reporting_vq "only exist" when their feature is negotiated. Drivers
 * number only the queues that exist, consecutively: Linux (6.12 included) hands virtio_find_vqs
 * a NULL name for an absent queue and the transports skip it without using an index; QEMU and
 * crosvm match. The virtio maintainer's answer when this was raised (April 2025, "no one at all
 * implemented this properly as per spec") was to fix the spec text, not the drivers. So an absent
 * queue takes no index and the ones after it move down: with STATS_VQ and PAGE_REPORTING (no
 * FREE_PAGE_HINT) reporting_vq is queue 3; with PAGE_REPORTING alone it is queue 2.
 */
export interface BalloonQueueLayout {
  inflateq: number;
  deflateq: number;
  statsq: number | undefined;
  free_page_vq: number | undefined;
  reporting_vq: number | undefined;
  /** Number of virtqueues the driver uses. */
  count: number;
}

export function balloonQueueLayout(features: bigint): BalloonQueueLayout {
  let next = 2;
  const has = (bit: number) => (features & featureBit(bit)) !== 0n;
  const statsq = has(VIRTIO_BALLOON_F_STATS_VQ) ? next++ : undefined;
  const free_page_vq = has(VIRTIO_BALLOON_F_FREE_PAGE_HINT) ? next++ : undefined;
  const reporting_vq = has(VIRTIO_BALLOON_F_PAGE_REPORTING) ? next++ : undefined;
  return { inflateq: 0, deflateq: 1, statsq, free_page_vq, reporting_vq, count: next };
}
