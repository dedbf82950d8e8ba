// The shared folder of a virtio-9p device on the host: a ShareBackend over one directory.
//
// Never following a symbolic link while resolving a guest path is what keeps the guest inside the
// directory. Node has no openat(), so each operation checks the directories on its way instead:
// realpath() of the parent directory must equal the path spelled out below the share's real root
// (any symbolic link among the parents would make the two differ), and the last name is used only
// in ways that do not follow a link either: lstat, readlink, lutimes, unlink, rmdir, rename, link
// (link(2) does not follow), mkdir, symlink, and open() with O_NOFOLLOW (and O_CREAT|O_NOFOLLOW does
// not create through a dangling link). After every open the descriptor's own path
// (/proc/self/fd/N) must still lie inside the share, which catches a directory swapped for a link
// between the check and the open; the file is closed and EXDEV returned otherwise.
//
// What remains (documented in the README): the server serialises the guest's path operations, so
// the guest cannot race these checks, but another host process that swaps a directory inside the
// share for a symbolic link between a check and the operation could redirect one mkdir, symlink,
// unlink, rmdir, rename, link or lutimes (or a chmod by path, of a special file or one the host
// user cannot read) to the link's target, or let one lstat, readlink or readdir report on it.
// Opens, truncates and other chmods go through a descriptor whose path is checked afterwards. Only
// a host process with write access to the share can do that. A hard link that the host itself made inside the
// share to a file elsewhere is the host's choice: it is an ordinary file to the guest.
import { promises as fsp, constants as fsc, type BigIntStats } from "node:fs";
import { join, sep } from "node:path";
import { ShareError } from "../../virtio/9p/spec.ts";
import type { ShareBackend, ShareDirEntry, ShareFileType, ShareHandle, ShareOpenMode, ShareStat, ShareStatfs } from "../../virtio/9p/backend.ts";

function fileType(s: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): ShareFileType | "unknown" {
  if (s.isFile()) return "file";
  if (s.isDirectory()) return "directory";
  if (s.isSymbolicLink()) return "symlink";
  if (s.isFIFO()) return "fifo";
  if (s.isSocket()) return "socket";
  if (s.isCharacterDevice()) return "char";
  if (s.isBlockDevice()) return "block";
  return "unknown";
}

function toShareStat(b: BigIntStats): ShareStat {
  const type = fileType(b);
  return {
    type: type === "unknown" ? "file" : type,
    mode: Number(b.mode),
    uid: Number(b.uid),
    gid: Number(b.gid),
    nlink: Number(b.nlink),
    rdev: Number(b.rdev),
    size: Number(b.size),
    blksize: Number(b.blksize),
    blocks: Number(b.blocks),
    ino: b.ino,
    atimeNs: b.atimeNs,
    mtimeNs: b.mtimeNs,
    ctimeNs: b.ctimeNs,
  };
}

export interface ShareDirOptions {
  readOnly?: boolean;
}

/** Opens a shared folder: the directory must exist; its real path is the root from then on. */
export async function openShareDir(path: string, options: ShareDirOptions = {}): Promise<ShareDir> {
  const root = await fsp.realpath(path);
  const st = await fsp.stat(root);
  if (!st.isDirectory()) throw new Error("not a directory");
  return new ShareDir(root, options.readOnly ?? false);
}

export class ShareDir implements ShareBackend {
  private readonly files = new Map<ShareHandle, fsp.FileHandle>();
  private nextHandle = 1;

  constructor(
    /** The share's real path (no symbolic links in it). */
    readonly root: string,
    readonly readOnly: boolean,
  ) {}

  private full(path: readonly string[]): string {
    return path.length === 0 ? this.root : join(this.root, ...path);
  }

  /** Refuses a path whose parent directories include a symbolic link (or lead outside). */
  private async checkParents(path: readonly string[]): Promise<string> {
    if (path.length > 1) {
      const parent = this.full(path.slice(0, -1));
      if ((await fsp.realpath(parent)) !== parent) throw new ShareError("ENOTDIR", "a directory of the path is a symbolic link");
      const st = await fsp.lstat(parent);
      if (!st.isDirectory()) throw new ShareError("ENOTDIR", "not a directory");
    }
    return this.full(path);
  }

  /** The descriptor must still name a file inside the share (Linux's /proc/self/fd). */
  private async checkOpened(file: fsp.FileHandle): Promise<void> {
    let where: string;
    try {
      where = await fsp.readlink(`/proc/self/fd/${file.fd}`);
    } catch {
      return; // no /proc: the parent check stands alone
    }
    if (where !== this.root && !where.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep)) {
      await file.close().catch(() => undefined);
      throw new ShareError("EXDEV", "the file opened lies outside the share");
    }
  }

  async lstat(path: readonly string[]): Promise<ShareStat> {
    return toShareStat(await fsp.lstat(await this.checkParents(path), { bigint: true }));
  }

  async open(path: readonly string[], mode: ShareOpenMode): Promise<ShareHandle> {
    if (this.readOnly && (mode.write || mode.truncate || mode.create)) throw new ShareError("EROFS", "the share is read-only");
    const full = await this.checkParents(path);
    let flags = (mode.read && mode.write ? fsc.O_RDWR : mode.write ? fsc.O_WRONLY : fsc.O_RDONLY) | fsc.O_NOFOLLOW | fsc.O_NOCTTY | fsc.O_NONBLOCK;
    if (mode.truncate) flags |= fsc.O_TRUNC;
    if (mode.append) flags |= fsc.O_APPEND;
    if (mode.create) flags |= fsc.O_CREAT | (mode.create.exclusive ? fsc.O_EXCL : 0);
    const file = await fsp.open(full, flags, mode.create?.mode ?? 0o644);
    await this.checkOpened(file);
    const st = await file.stat();
    if (!st.isFile()) {
      await file.close();
      throw new ShareError(st.isDirectory() ? "EISDIR" : "EOPNOTSUPP", "only regular files are opened");
    }
    const handle = this.nextHandle++;
    this.files.set(handle, file);
    return handle;
  }

  private file(handle: ShareHandle): fsp.FileHandle {
    const f = this.files.get(handle);
    if (!f) throw new ShareError("EBADF", `no open file ${handle}`);
    return f;
  }

  async read(handle: ShareHandle, offset: number, length: number): Promise<Uint8Array> {
    const buffer = new Uint8Array(length);
    const { bytesRead } = await this.file(handle).read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  }

  async write(handle: ShareHandle, offset: number, data: Uint8Array): Promise<number> {
    const { bytesWritten } = await this.file(handle).write(data, 0, data.length, offset);
    return bytesWritten;
  }

  async fsync(handle: ShareHandle, dataOnly: boolean): Promise<void> {
    const f = this.file(handle);
    await (dataOnly ? f.datasync() : f.sync());
  }

  async fstat(handle: ShareHandle): Promise<ShareStat> {
    return toShareStat(await this.file(handle).stat({ bigint: true }));
  }

  async ftruncate(handle: ShareHandle, size: number): Promise<void> {
    await this.file(handle).truncate(size);
  }

  async close(handle: ShareHandle): Promise<void> {
    const f = this.files.get(handle);
    this.files.delete(handle);
    await f?.close();
  }

  async readdir(path: readonly string[]): Promise<ShareDirEntry[]> {
    const full = await this.checkParents(path);
    const st = await fsp.lstat(full);
    if (!st.isDirectory()) throw new ShareError("ENOTDIR", "not a directory");
    const entries = await fsp.readdir(full, { withFileTypes: true });
    const out: ShareDirEntry[] = [];
    for (const e of entries) {
      // The inode number for the qid; an entry that vanished meanwhile is left out.
      const s = await fsp.lstat(join(full, e.name), { bigint: true }).catch(() => undefined);
      if (s) out.push({ name: e.name, type: fileType(e), ino: s.ino });
    }
    return out;
  }

  async mkdir(path: readonly string[], mode: number): Promise<void> {
    await fsp.mkdir(await this.checkParents(path), mode);
  }

  async symlink(path: readonly string[], target: string): Promise<void> {
    await fsp.symlink(target, await this.checkParents(path));
  }

  async readlink(path: readonly string[]): Promise<string> {
    return fsp.readlink(await this.checkParents(path));
  }

  async link(existing: readonly string[], path: readonly string[]): Promise<void> {
    const from = await this.checkParents(existing);
    await fsp.link(from, await this.checkParents(path));
  }

  async unlink(path: readonly string[], directory: boolean): Promise<void> {
    const full = await this.checkParents(path);
    await (directory ? fsp.rmdir(full) : fsp.unlink(full));
  }

  async rename(from: readonly string[], to: readonly string[]): Promise<void> {
    const a = await this.checkParents(from);
    await fsp.rename(a, await this.checkParents(to));
  }

  async chmod(path: readonly string[], mode: number): Promise<void> {
    const full = await this.checkParents(path);
    const st = await fsp.lstat(full);
    if (st.isSymbolicLink()) throw new ShareError("EOPNOTSUPP", "a symbolic link has no mode");
    // A regular file or directory through a descriptor opened without following a link (fchmod),
    // checked to lie inside. Others (opening a FIFO or a device the host put there could have
    // effects) and a file the host user may not read (mode 0200 and the like) by path.
    let file: fsp.FileHandle | undefined;
    if (st.isFile() || st.isDirectory()) {
      try {
        file = await fsp.open(full, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY);
      } catch (err) {
        if ((err as { code?: string }).code !== "EACCES") throw err;
      }
    }
    if (!file) return fsp.chmod(full, mode);
    try {
      await this.checkOpened(file);
      await file.chmod(mode);
    } finally {
      await file.close().catch(() => undefined);
    }
  }

  async truncate(path: readonly string[], size: number): Promise<void> {
    const file = await fsp.open(await this.checkParents(path), fsc.O_WRONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY);
    try {
      await this.checkOpened(file);
      await file.truncate(size);
    } finally {
      await file.close().catch(() => undefined);
    }
  }

  async utimes(path: readonly string[], atimeNs: bigint | undefined, mtimeNs: bigint | undefined): Promise<void> {
    const full = await this.checkParents(path);
    const st = await fsp.lstat(full, { bigint: true });
    // lutimes takes seconds as a number: microsecond precision is what survives.
    const seconds = (ns: bigint) => Number(ns / 1000n) / 1e6;
    await fsp.lutimes(full, seconds(atimeNs ?? st.atimeNs), seconds(mtimeNs ?? st.mtimeNs));
  }

  async statfs(): Promise<ShareStatfs> {
    const s = await fsp.statfs(this.root);
    return { bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree };
  }

  /** Closes every open file (the machine's end). */
  async closeAll(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.all(all.map((f) => f.close().catch(() => undefined)));
  }
}
