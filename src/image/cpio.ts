// A writer (and reader, for tests and checks) of the "newc" cpio format, the only archive format
// the Linux kernel unpacks as an initramfs. Pure: entries in, bytes out. Writing it ourselves keeps
// the build independent of host tools and of root privileges (device nodes such as /dev/console
// are just header fields here), and makes the output reproducible (fixed inode numbers and times).

export type CpioEntryType = "file" | "dir" | "symlink" | "char" | "block" | "fifo";

export interface CpioEntry {
  /** Path inside the archive, without a leading "/" (e.g. "usr/bin/busybox"). */
  path: string;
  type: CpioEntryType;
  /** Permission bits (and setuid/setgid/sticky), without the file-type bits. */
  mode: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch; 0 by default so that identical inputs give identical archives. */
  mtime?: number;
  /** File contents (type "file"). */
  data?: Uint8Array;
  /** Link target (type "symlink"). */
  target?: string;
  /** Device numbers (types "char" and "block"). */
  rdevMajor?: number;
  rdevMinor?: number;
}

const TYPE_BITS: Record<CpioEntryType, number> = {
  fifo: 0o010000,
  char: 0o020000,
  dir: 0o040000,
  block: 0o060000,
  file: 0o100000,
  symlink: 0o120000,
};

const NEWC_MAGIC = "070701";
const HEADER_SIZE = 110;
const TRAILER = "TRAILER!!!";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio: field value ${n} does not fit in 32 bits`);
  return n.toString(16).padStart(8, "0");
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** Normalises a path for the archive: no leading "./" or "/", no trailing "/", no empty components. */
export function normalizeCpioPath(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) throw new Error(`cpio: path escapes the archive root: ${path}`);
  return parts.join("/");
}

/**
 * Serialises entries as a newc archive ending with the TRAILER!!! record. Entries are written in
 * the given order; the kernel's unpacker does not create missing parent directories, so callers
 * should pass them through withParentDirs() first.
 */
export function writeCpio(entries: CpioEntry[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const push = (b: Uint8Array) => {
    chunks.push(b);
    total += b.length;
  };
  const record = (name: string, fields: { ino: number; mode: number; uid: number; gid: number; nlink: number; mtime: number; rdevMajor: number; rdevMinor: number }, body: Uint8Array) => {
    const nameBytes = encoder.encode(name + "\0");
    const header =
      NEWC_MAGIC +
      hex8(fields.ino) +
      hex8(fields.mode) +
      hex8(fields.uid) +
      hex8(fields.gid) +
      hex8(fields.nlink) +
      hex8(fields.mtime) +
      hex8(body.length) +
      hex8(0) + // devmajor: the unpacker only uses it with ino to detect hard links
      hex8(0) + // devminor
      hex8(fields.rdevMajor) +
      hex8(fields.rdevMinor) +
      hex8(nameBytes.length) +
      hex8(0); // check: only meaningful for the "070702" CRC variant
    push(encoder.encode(header));
    push(nameBytes);
    push(new Uint8Array(pad4(HEADER_SIZE + nameBytes.length)));
    push(body);
    push(new Uint8Array(pad4(body.length)));
  };
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    const name = normalizeCpioPath(e.path);
    if (name === "") throw new Error("cpio: empty path (the root directory needs no entry)");
    if (seen.has(name)) throw new Error(`cpio: duplicate entry ${name}`);
    seen.add(name);
    let body: Uint8Array = new Uint8Array(0);
    if (e.type === "file") body = e.data ?? new Uint8Array(0);
    else if (e.type === "symlink") {
      if (!e.target) throw new Error(`cpio: symlink ${name} has no target`);
      body = encoder.encode(e.target);
    }
    record(
      name,
      {
        ino: i + 1, // unique per entry, so the unpacker never treats two files as hard links
        mode: TYPE_BITS[e.type] | (e.mode & 0o7777),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        nlink: e.type === "dir" ? 2 : 1,
        mtime: e.mtime ?? 0,
        rdevMajor: e.rdevMajor ?? 0,
        rdevMinor: e.rdevMinor ?? 0,
      },
      body,
    );
  });
  record(TRAILER, { ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, rdevMajor: 0, rdevMinor: 0 }, new Uint8Array(0));
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Parses a newc archive (as written above or by GNU cpio / the kernel's gen_init_cpio). */
export function readCpio(bytes: Uint8Array): CpioEntry[] {
  const out: CpioEntry[] = [];
  let off = 0;
  const field = (i: number) => parseInt(decoder.decode(bytes.subarray(off + 6 + i * 8, off + 14 + i * 8)), 16);
  for (;;) {
    if (off + HEADER_SIZE > bytes.length) throw new Error(`cpio: truncated header at offset ${off}`);
    const magic = decoder.decode(bytes.subarray(off, off + 6));
    if (magic !== NEWC_MAGIC && magic !== "070702") throw new Error(`cpio: bad magic ${JSON.stringify(magic)} at offset ${off}`);
    const mode = field(1);
    const fileSize = field(6);
    const nameSize = field(11);
    const nameStart = off + HEADER_SIZE;
    const name = decoder.decode(bytes.subarray(nameStart, nameStart + nameSize - 1));
    const dataStart = nameStart + nameSize + pad4(HEADER_SIZE + nameSize);
    const data = bytes.subarray(dataStart, dataStart + fileSize);
    if (dataStart + fileSize > bytes.length) throw new Error(`cpio: truncated data for ${name}`);
    if (name === TRAILER) break;
    const typeBits = mode & 0o170000;
    const type = (Object.keys(TYPE_BITS) as CpioEntryType[]).find((t) => TYPE_BITS[t] === typeBits);
    if (!type) throw new Error(`cpio: ${name}: unsupported file type ${typeBits.toString(8)}`);
    const entry: CpioEntry = { path: name, type, mode: mode & 0o7777, uid: field(2), gid: field(3), mtime: field(5) };
    if (type === "file") entry.data = data;
    if (type === "symlink") entry.target = decoder.decode(data);
    if (type === "char" || type === "block") {
      entry.rdevMajor = field(9);
      entry.rdevMinor = field(10);
    }
    out.push(entry);
    off = dataStart + fileSize + pad4(fileSize);
  }
  return out;
}

/**
 * Adds a directory entry (mode 0755) for every missing ancestor and orders the result so that each
 * directory precedes its contents; otherwise entries keep their order. Paths are normalised.
 */
export function withParentDirs(entries: CpioEntry[]): CpioEntry[] {
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) byPath.set(normalizeCpioPath(e.path), { ...e, path: normalizeCpioPath(e.path) });
  for (const path of [...byPath.keys()]) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      const existing = byPath.get(dir);
      if (!existing) byPath.set(dir, { path: dir, type: "dir", mode: 0o755 });
      else if (existing.type !== "dir") throw new Error(`cpio: ${path} lies under ${dir}, which is a ${existing.type}, not a directory`);
    }
  }
  // Sorting by depth first keeps every parent ahead of its children; the sort is stable, so
  // entries at the same depth keep the caller's order.
  const depth = (p: string) => p.split("/").length;
  return [...byPath.values()].sort((a, b) => depth(a.path) - depth(b.path));
}
