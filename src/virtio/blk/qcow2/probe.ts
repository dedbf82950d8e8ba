// Format probing without QEMU's classic hole: a guest that owns a raw disk can write anything to
// its first sector, including a qcow2 header naming a host file as its backing file. Were the
// image's format guessed again at the next start, Parley would open that host file for the guest.
// So a raw image whose format was guessed (no format=raw given) refuses guest writes that would
// put the qcow2 magic at its start, as QEMU does for probed raw images; format=raw lifts this.

import type { BlockBackend } from "../backend.ts";
import { byteLengthOf } from "../backend.ts";
import { hasQcow2Magic } from "./header.ts";

/** The error message of a refused write, for logs. */
export const PROBED_RAW_REFUSAL =
  "refused a write that would make the start of a raw image look like a qcow2 header (the format was guessed; give format=raw to allow it)";

/** Wraps a backend of a raw image whose format was probed: see the header comment. */
export function guardProbedRaw(backend: BlockBackend): BlockBackend {
  return {
    get size() {
      return backend.size;
    },
    get readOnly() {
      return backend.readOnly;
    },
    get id() {
      return backend.id;
    },
    get writeZeroesMayUnmap() {
      return backend.writeZeroesMayUnmap;
    },
    read: (offset, into) => backend.read(offset, into),
    write: async (offset, data) => {
      if (offset === 0 && hasQcow2Magic(data)) throw new Error(PROBED_RAW_REFUSAL);
      return backend.write(offset, data);
    },
    readInto: backend.readInto && ((offset, targets) => backend.readInto!(offset, targets)),
    writeFrom:
      backend.writeFrom &&
      (async (offset, sources) => {
        if (offset !== 0) return backend.writeFrom!(offset, sources);
        // The sources are views of guest RAM, which the guest may change between a check and the
        // write (another hart, or the same one once the vCPU runs again): check a copy and write
        // that. The magic may also be split over several buffers.
        const data = new Uint8Array(byteLengthOf(sources));
        let at = 0;
        for (const source of sources) {
          data.set(source, at);
          at += source.length;
        }
        if (hasQcow2Magic(data)) throw new Error(PROBED_RAW_REFUSAL);
        return backend.write(0, data);
      }),
    flush: () => backend.flush(),
    discard: (offset, length) => backend.discard(offset, length),
    writeZeroes: (offset, length, unmap) => backend.writeZeroes(offset, length, unmap),
    close: () => backend.close(),
  };
}
