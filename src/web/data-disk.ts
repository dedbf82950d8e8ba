// The page's data disk (image/disk.img beside the page): read by HTTP range requests, with the
// guest's writes kept in the browser's origin-private file system (OPFS), so they survive a
// reload and never reach the server. The one place the machine worker reaches the disk backend.
import type { BlockBackend } from "../virtio/blk/backend.ts";
import { openHttpOverlayDisk } from "../host/web/http-disk.ts";
import { opfsOverlayStore } from "../host/web/overlay-store.ts";

export type DataDisk = BlockBackend & { discardOverlay(): Promise<void> };

/** The OPFS name of the overlay of the page's disk. */
export const OVERLAY_NAME = "parley-disk";

/**
 * Opens image/disk.img under `baseUrl`, or answers undefined when there is none (a HEAD that is
 * not 2xx): the page then boots without a disk. Other failures (no OPFS) are the caller's to report.
 */
export async function openDataDisk(baseUrl: string): Promise<DataDisk | undefined> {
  const url = new URL("image/disk.img", baseUrl).href;
  const head = await fetch(url, { method: "HEAD" });
  if (!head.ok) return undefined;
  return openHttpOverlayDisk({ url, overlay: await opfsOverlayStore(OVERLAY_NAME) });
}
