// Gives guest RAM pages back to the host OS (Node, Linux): the host half of the virtio balloon
// (src/virtio/balloon) and of free page reporting.
//
// Guest RAM lives inside the CPU's WebAssembly.Memory (at wasm offset cpu.ramWasmBase, see
// src/cpu/core-layout.ts). V8 backs a wasm memory with a private anonymous mapping, so
// madvise(MADV_DONTNEED) on part of it drops those pages from the process's resident set at once
// and the next access maps a fresh zero-filled page: exactly the balloon's contract (the guest
// must not rely on the contents of pages it put in the balloon or reported as free).
//
// The host virtual address of the memory comes from koffi (libc.ts). It is looked up again on every
// call (cheap), so even a grow(0), which swaps the ArrayBuffer object, would be harmless.
//
// Without koffi, on a non-Linux host, or when libc cannot be loaded, the releaser does nothing
// (still correct for the balloon: the pages simply stay resident).
import type { Cpu } from "../../cpu/cpu.ts";
import { libcUnavailable, loadLibc, MADV_DONTNEED } from "./libc.ts";

export interface MemoryReleaseStats {
  /** madvise calls that succeeded, and the bytes they covered. */
  calls: number;
  bytes: number;
  /** madvise calls that failed (errno kept in lastErrno). */
  failures: number;
  lastErrno: number;
  /** Requests ignored: outside RAM, not a number, or no whole host page inside. */
  ignored: number;
}

export interface MemoryReleaser {
  /**
   * Releases the whole host pages inside guest physical [paddr, paddr + length). Invalid input
   * (outside RAM, negative, non-integer) is a no-op. Never throws.
   */
  (paddr: number, length: number): void;
  /** False when pages cannot really be released here (no koffi, not Linux): calls are no-ops. */
  readonly supported: boolean;
  /** Why not, when !supported. */
  readonly reason: string | undefined;
  readonly hostPageSize: number;
  readonly stats: MemoryReleaseStats;
}

/** What the releaser needs from the CPU. ramWritten, when present, drops decoded code for the range. */
export type ReleasableRam = Pick<Cpu, "memory" | "ramBase" | "ramSize" | "ramWasmBase"> & Partial<Pick<Cpu, "ramWritten">>;

/** A release function for the balloon (VirtioBalloonOptions.release) over `cpu`'s guest RAM. */
export function memoryReleaser(cpu: ReleasableRam): MemoryReleaser {
  const n = loadLibc();
  const pageSize = n?.pageSize ?? 4096;
  const stats: MemoryReleaseStats = { calls: 0, bytes: 0, failures: 0, lastErrno: 0, ignored: 0 };
  const ramBase = cpu.ramBase;
  const ramSize = cpu.ramSize;
  const ramWasmBase = cpu.ramWasmBase;
  const release = (paddr: number, length: number): void => {
    if (!Number.isSafeInteger(paddr) || !Number.isSafeInteger(length) || length <= 0 || paddr < ramBase || paddr + length > ramBase + ramSize) {
      stats.ignored++;
      return;
    }
    if (!n) return;
    const buffer = cpu.memory.buffer;
    const offset = ramWasmBase + (paddr - ramBase);
    // The wasm memory starts page-aligned (it is an mmap), so host alignment = offset alignment.
    const start = Math.ceil(offset / pageSize) * pageSize;
    const end = Math.floor((offset + length) / pageSize) * pageSize;
    if (end <= start || end > buffer.byteLength || start < ramWasmBase) {
      stats.ignored++;
      return;
    }
    let ok = false;
    try {
      // Through a view: koffi takes the address of a plain ArrayBuffer but not of a
      // SharedArrayBuffer (harts on threads share the memory), and of a typed array over either.
      const base = n.address(new Uint8Array(buffer, 0, 1));
      if (base % BigInt(pageSize) !== 0n) throw new Error("wasm memory is not page-aligned");
      ok = n.madvise(base + BigInt(start), end - start, MADV_DONTNEED) === 0;
      if (!ok) stats.lastErrno = n.errno();
    } catch {
      ok = false;
    }
    if (ok) {
      stats.calls++;
      stats.bytes += end - start;
      cpu.ramWritten?.(ramBase + (start - ramWasmBase), end - start);
    } else {
      stats.failures++;
    }
  };
  return Object.assign(release, { supported: n !== null, reason: n ? undefined : `madvise release: ${libcUnavailable()}`, hostPageSize: pageSize, stats });
}

/** The process's resident set size in bytes (for tests and the balloon's --stats output). */
export function residentBytes(): number {
  return process.memoryUsage.rss();
}
