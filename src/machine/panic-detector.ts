// Notices a Linux kernel panic in console output ("Kernel panic - not syncing", printed by
// panic() in kernel/panic.c), even when the text arrives split across writes.
const MARKER = new TextEncoder().encode("Kernel panic - not syncing");

export class PanicDetector {
  private matched = 0;

  /** True once the marker has been seen (in this chunk or an earlier one). */
  feed(bytes: Uint8Array): boolean {
    if (this.matched === MARKER.length) return true;
    for (const byte of bytes) {
      if (byte === MARKER[this.matched]) {
        this.matched++;
        if (this.matched === MARKER.length) return true;
      } else {
        // The marker has no repeated prefix, so a mismatch can only restart at its first byte.
        this.matched = byte === MARKER[0] ? 1 : 0;
      }
    }
    return false;
  }
}
