// PLACEHOLDER with the shared contract's signature, so that the page compiles before the real
// module (a block backend over HTTP range requests with an overlay) is merged; the merge replaces
// this file whole.
import type { BlockBackend } from "../../virtio/blk/backend.ts";
import type { OverlayStore } from "./overlay-store.ts";

export async function openHttpOverlayDisk(_options: { url: string; overlay: OverlayStore; fetch?: typeof fetch; blockSize?: number }): Promise<BlockBackend & { discardOverlay(): Promise<void> }> {
  throw new Error("the HTTP disk backend is not part of this build yet");
}
