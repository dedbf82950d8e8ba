// The few libc calls Parley makes on Linux hosts, through koffi (a native FFI, loaded lazily):
// madvise (the balloon gives pages back) and mmap (a restored snapshot's memory file mapped into
// guest RAM). koffi.address(view) of a view at offset 0 of a wasm memory's buffer is its data
// pointer; it is stable (Parley never grows a memory, and V8 reserves the whole wasm32 range up
// front and never moves a wasm memory's backing store).
//
// Without koffi, on a non-Linux host, or when libc cannot be loaded, loadLibc() returns null and
// libcUnavailable() says why; callers fall back to doing without.
import { createRequire } from "node:module";

/** <sys/mman.h> on Linux (all architectures Node runs on). */
export const MADV_DONTNEED = 4;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
/** <unistd.h> on Linux/glibc and musl. */
const _SC_PAGESIZE = 30;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

export interface Libc {
  madvise(addr: bigint, length: number, advice: number): number;
  /** mmap; returns the address or undefined (errno()) on failure. */
  mmap(addr: bigint, length: number, prot: number, flags: number, fd: number, offset: number): bigint | undefined;
  /** The data pointer of a view (works for SharedArrayBuffer views too). */
  address(view: Uint8Array): bigint;
  errno(): number;
  pageSize: number;
}

let libc: Libc | null | undefined;
let unavailable: string | undefined;

export function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== "linux") {
    unavailable = `implemented for Linux only (host is ${process.platform})`;
    return libc;
  }
  try {
    const require = createRequire(import.meta.url);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const koffi = require("koffi") as typeof import("koffi");
    let lib: ReturnType<typeof koffi.load> | undefined;
    let lastError: unknown;
    for (const name of ["libc.so.6", "libc.so"]) {
      try {
        lib = koffi.load(name);
        break;
      } catch (e) {
        lastError = e;
      }
    }
    if (!lib) throw lastError;
    const madvise = lib.func("int madvise(uintptr_t addr, size_t length, int advice)") as (addr: bigint, length: number, advice: number) => number;
    const mmap = lib.func("uintptr_t mmap(uintptr_t addr, size_t length, int prot, int flags, int fd, int64_t offset)") as (
      addr: bigint,
      length: number,
      prot: number,
      flags: number,
      fd: number,
      offset: number,
    ) => bigint | number;
    const sysconf = lib.func("long sysconf(int name)") as (name: number) => number | bigint;
    const pageSize = Number(sysconf(_SC_PAGESIZE));
    if (!Number.isInteger(pageSize) || pageSize < 4096 || (pageSize & (pageSize - 1)) !== 0) throw new Error(`unexpected host page size ${pageSize}`);
    libc = {
      madvise,
      mmap: (addr, length, prot, flags, fd, offset) => {
        const result = BigInt(mmap(addr, length, prot, flags, fd, offset));
        return result === MAP_FAILED ? undefined : result;
      },
      address: (view) => koffi.address(view) as bigint,
      errno: () => koffi.errno(),
      pageSize,
    };
  } catch (e) {
    unavailable = `koffi/libc unavailable: ${e instanceof Error ? e.message : String(e)}`;
  }
  return libc;
}

/** Why loadLibc() returned null. */
export function libcUnavailable(): string | undefined {
  loadLibc();
  return unavailable;
}
