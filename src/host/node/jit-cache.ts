// The persistent translation cache in a directory (src/cpu/jit/translation-cache.ts is the core
// side): one file per entry, named by the SHA-256 of its key, holding the key itself, the value
// and a SHA-256 of both. An entry is returned only when its file is whole and its key is exactly
// the key asked for; anything else (truncated, corrupt, another version's entry under this name)
// is deleted and reads as absent. Writes go to a temporary file renamed into place, so readers —
// other harts' threads, other Parley processes — see a whole entry or none. The directory is
// kept under a size bound by deleting the least recently used entries.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { rename, unlink, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { TranslationCache } from "../../cpu/jit/translation-cache.ts";
import { CACHE_DIR, REPO_ROOT } from "./paths.ts";

/** Where `parley run` keeps translations unless told otherwise (--jit-cache). */
export const DEFAULT_JIT_CACHE_DIR = join(CACHE_DIR, "jit");
/** A boot of the Debian kernel stores about 6 MiB; the bound leaves room for many kernels and images. */
export const DEFAULT_JIT_CACHE_BYTES = 256 * 2 ** 20;

/** A few boots' worth: what is compiled ahead costs validation even when no page needs it. */
export const DEFAULT_PRELOAD_BYTES = 32 * 2 ** 20;

const FILE_MAGIC = Buffer.from("parley-jit-entry\n");
const SUFFIX = ".pjc";
const DIGEST_BYTES = 32;
/** Evicting goes below the bound by this much, so that stores do not evict one at a time. */
const EVICT_TO = 0.9;
const STALE_TEMPORARY_MS = 3_600_000;

export interface JitCacheOptions {
  /** The translator's identity; default: translatorVersion(). */
  version?: string;
  /** Size bound of the directory's entries in bytes; default DEFAULT_JIT_CACHE_BYTES. */
  maxBytes?: number;
  /** How many bytes of the most recently used entries a translator compiles ahead (entries()). */
  preloadBytes?: number;
}

/** What a hart thread needs to open the same cache (a cache object cannot cross threads). */
export interface JitCacheSpec {
  directory: string;
  version: string;
  maxBytes: number;
  preloadBytes: number;
}

export class DirectoryTranslationCache implements TranslationCache {
  readonly version: string;
  readonly maxBytes: number;
  /** Entries deleted because they were not whole or not for their key. */
  rejected = 0;
  evictions = 0;
  /** How much of the directory entries() reads at most. */
  readonly preloadBytes: number;
  /** Entries in the directory (name -> size, last use), as of opening plus this process's stores. */
  private readonly files = new Map<string, { size: number; used: number }>();
  private total = 0;

  constructor(readonly directory: string, options: JitCacheOptions = {}) {
    this.version = options.version ?? translatorVersion();
    this.maxBytes = options.maxBytes ?? DEFAULT_JIT_CACHE_BYTES;
    this.preloadBytes = options.preloadBytes ?? DEFAULT_PRELOAD_BYTES;
    mkdirSync(directory, { recursive: true });
    for (const name of readdirSync(directory)) {
      try {
        const stat = statSync(join(directory, name));
        // A temporary file a crashed writer left behind (a live one is renamed within milliseconds).
        if (name.endsWith(".tmp") && Date.now() - stat.mtimeMs > STALE_TEMPORARY_MS) unlinkSync(join(directory, name));
        if (!name.endsWith(SUFFIX)) continue;
        this.files.set(name, { size: stat.size, used: stat.mtimeMs });
        this.total += stat.size;
      } catch {
        // removed meanwhile by another process
      }
    }
  }

  get spec(): JitCacheSpec {
    return { directory: this.directory, version: this.version, maxBytes: this.maxBytes, preloadBytes: this.preloadBytes };
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const name = fileName(key);
    const queued = this.queued.get(name);
    if (queued) return entryValue(queued, key);
    // Entries stored after this cache was opened by other processes are not seen: a miss costs no system call.
    if (!this.files.has(name)) return undefined;
    const path = join(this.directory, name);
    let file: Buffer;
    try {
      file = readFileSync(path);
    } catch {
      this.forget(name);
      return undefined;
    }
    const value = entryValue(file, key);
    if (!value) {
      this.rejected++;
      this.remove(name);
      return undefined;
    }
    const now = Date.now();
    this.files.get(name)!.used = now;
    try {
      utimesSync(path, now / 1000, now / 1000); // least recently used goes first
    } catch {
      // evicted meanwhile by another process: the value read is whole all the same
    }
    return value;
  }

  /**
   * Files are written off the caller's path: a synchronous write and rename cost about 0.8 ms a
   * page on the development VM, on the vCPU's thread, which a first boot pays some 300 times.
   * They go to libuv's threads from the event loop's next turn; what is still queued when the
   * process (or hart thread) exits is written synchronously then.
   */
  put(key: Uint8Array, value: Uint8Array): number {
    const name = fileName(key);
    const file = entryFile(key, value);
    this.forget(name);
    this.queued.set(name, file);
    if (this.queued.size === 1) {
      setImmediate(() => void this.writeQueued());
      process.once("exit", this.flush);
    }
    this.files.set(name, { size: file.length, used: Date.now() });
    this.total += file.length;
    return this.total > this.maxBytes ? this.evict() : 0;
  }

  private readonly queued = new Map<string, Buffer>();
  /** Writes what is queued now, synchronously (at exit; and for whoever opens the directory next in this process). */
  readonly flush = (): void => {
    for (const [name, file] of this.takeQueued()) this.writeEntrySync(name, file);
  };

  private takeQueued(): [string, Buffer][] {
    const entries = [...this.queued];
    this.queued.clear();
    process.removeListener("exit", this.flush);
    return entries;
  }

  private async writeQueued(): Promise<void> {
    for (const [name, file] of this.takeQueued()) {
      await this.writeEntry(name, file);
    }
  }

  /**
   * Writes an entry whole or not at all: a temporary file renamed into place. A full or
   * read-only disk costs the next boot its head start, nothing more.
   */
  private async writeEntry(name: string, file: Buffer): Promise<void> {
    const { path, temporary } = this.paths(name);
    try {
      await writeFile(temporary, file);
      await rename(temporary, path);
    } catch {
      this.forget(name);
      await unlink(temporary).catch(() => {});
    }
  }

  private writeEntrySync(name: string, file: Buffer): void {
    const { path, temporary } = this.paths(name);
    try {
      writeFileSync(temporary, file);
      renameSync(temporary, path);
    } catch {
      this.forget(name);
      try {
        unlinkSync(temporary);
      } catch {
        // never created
      }
    }
  }

  private paths(name: string): { path: string; temporary: string } {
    const path = join(this.directory, name);
    return { path, temporary: `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp` };
  }

  *entries(): Iterable<{ key: Uint8Array; value: Uint8Array }> {
    const newestFirst = [...this.files].sort((a, b) => b[1].used - a[1].used);
    let bytes = 0;
    for (const [name, { size }] of newestFirst) {
      if (bytes + size > this.preloadBytes) break;
      let file: Buffer;
      try {
        file = readFileSync(join(this.directory, name));
      } catch {
        this.forget(name);
        continue;
      }
      const parts = entryParts(file);
      // An entry is filed under its key's hash: one that is not was damaged or moved.
      if (!parts || fileName(parts.key) !== name) {
        this.rejected++;
        this.remove(name);
        continue;
      }
      bytes += size;
      yield parts;
    }
  }

  private evict(): number {
    const oldestFirst = [...this.files].sort((a, b) => a[1].used - b[1].used);
    let evicted = 0;
    for (const [name] of oldestFirst) {
      if (this.total <= this.maxBytes * EVICT_TO) break;
      this.remove(name);
      evicted++;
    }
    this.evictions += evicted;
    return evicted;
  }

  private remove(name: string): void {
    this.forget(name);
    this.queued.delete(name);
    try {
      unlinkSync(join(this.directory, name));
    } catch {
      // already gone
    }
  }

  private forget(name: string): void {
    const entry = this.files.get(name);
    if (!entry) return;
    this.total -= entry.size;
    this.files.delete(name);
  }
}

export function openJitCache(spec: JitCacheSpec): DirectoryTranslationCache {
  return new DirectoryTranslationCache(spec.directory, spec);
}

function fileName(key: Uint8Array): string {
  return createHash("sha256").update(key).digest("hex") + SUFFIX;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** magic, key length, key, value length, value, SHA-256 of everything before it. */
function entryFile(key: Uint8Array, value: Uint8Array): Buffer {
  const body = Buffer.concat([FILE_MAGIC, u32(key.length), key, u32(value.length), value]);
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}

/** The key and value of an entry file, if it is whole. */
function entryParts(file: Buffer): { key: Uint8Array; value: Uint8Array } | undefined {
  const keyAt = FILE_MAGIC.length + 4;
  if (file.length < keyAt + 4 + DIGEST_BYTES || !file.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) return undefined;
  const keyLength = file.readUInt32LE(FILE_MAGIC.length);
  const valueAt = keyAt + keyLength + 4;
  if (valueAt + DIGEST_BYTES > file.length) return undefined;
  const valueLength = file.readUInt32LE(keyAt + keyLength);
  const bodyEnd = valueAt + valueLength;
  if (bodyEnd + DIGEST_BYTES !== file.length) return undefined;
  const digest = createHash("sha256").update(file.subarray(0, bodyEnd)).digest();
  if (!digest.equals(file.subarray(bodyEnd))) return undefined;
  return { key: new Uint8Array(file.subarray(keyAt, keyAt + keyLength)), value: new Uint8Array(file.subarray(valueAt, bodyEnd)) };
}

/** The value of an entry file if it is whole and for exactly `key`. */
function entryValue(file: Buffer, key: Uint8Array): Uint8Array | undefined {
  const parts = entryParts(file);
  return parts && Buffer.from(parts.key.buffer, parts.key.byteOffset, parts.key.length).equals(key) ? parts.value : undefined;
}

let version: string | undefined;

/**
 * The running translator's identity: the package's version and a hash of the code that shapes a
 * translation — run from sources, every file under src/cpu (translator, layout, and the engine
 * whose decoder it reads); bundled, the bundle itself — and of the built engines. Any change to
 * them makes new keys, so stale translations are never found (and age out of the directory).
 */
export function translatorVersion(): string {
  if (version !== undefined) return version;
  const hash = createHash("sha256");
  const here = fileURLToPath(import.meta.url);
  const sources = here.endsWith(".ts") ? listFiles(join(REPO_ROOT, "src/cpu")) : [here];
  for (const file of [...sources, join(REPO_ROOT, "build/cpu.wasm"), join(REPO_ROOT, "build/cpu-shared.wasm")]) {
    hash.update(relative(REPO_ROOT, file));
    try {
      hash.update(readFileSync(file));
    } catch {
      hash.update("absent");
    }
  }
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  version = `${manifest.version}+${hash.digest("hex").slice(0, 16)}`;
  return version;
}

function listFiles(directory: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...listFiles(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) files.push(path);
  }
  return files;
}

/**
 * `--jit-cache`: "off" (none), "on" or absent (DEFAULT_JIT_CACHE_DIR), or a directory (created
 * if missing). Throws with a message naming the value when the directory cannot be used.
 */
export function jitCacheFromFlag(value: string | undefined): DirectoryTranslationCache | undefined {
  if (value === "off") return undefined;
  const directory = value === undefined || value === "on" ? DEFAULT_JIT_CACHE_DIR : value;
  if (directory === "") throw new Error(`--jit-cache: give a directory, or off`);
  try {
    const stat = statSync(directory, { throwIfNoEntry: false });
    if (stat && !stat.isDirectory()) throw new Error("not a directory");
    return new DirectoryTranslationCache(directory);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new Error(`--jit-cache ${directory}: cannot keep translations there (${reason}); give a directory, or off`);
  }
}
