// PLACEHOLDER with the shared contract's signatures, so that the page compiles before the real
// module (an OPFS-backed overlay store) is merged; the merge replaces this file whole.
export interface OverlayStore {
  readonly placeholder: true;
}

export function memoryOverlayStore(): OverlayStore {
  return { placeholder: true };
}

export async function opfsOverlayStore(_name: string): Promise<OverlayStore> {
  throw new Error("the OPFS overlay store is not part of this build yet");
}
