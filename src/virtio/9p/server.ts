// The 9P2000.L file server behind virtio-9p: a fid table over paths inside one shared folder, and a
// handler per request kind. It talks to the host only through a ShareBackend.
//
// Containment (the guest is untrusted and must never reach outside the share):
// - A fid is a list of names below the share's root. Every name the guest sends is checked
//   (validName: no "", "." or "..", no "/", NUL refused by the codec, at most NAME_MAX bytes);
//   in Twalk ".." removes the last name and stays at the root when there is none, as a real root
//   does, and "." stays where it is. Since no path ever goes through a symbolic link (below), this
//   lexical ".." is the directory's real parent.
// - The server never follows a symbolic link: walking through one fails (the backend refuses any
//   path whose directories are not real directories), lopen of one is ELOOP, getattr describes
//   the link itself. The guest's kernel follows symbolic links itself (readlink, then walks from
//   its own root), so a link's target, absolute or with "..", is only data to Parley.
// - Every request that resolves a path or changes the fid table runs one at a time (the path
//   lock), so the guest cannot race its own checks (swapping a directory for a link between a
//   check and a use). Reads and writes on open files do not resolve paths and run in parallel
//   (but reopening a file after a restore does, and takes its turn).
// - A read-only share refuses every change (EROFS) before the backend is asked.
//
// Ownership: files are created with the host user's uid and gid (the guest's gid in Tlcreate and
// friends is not applied); getattr reports uid/gid as stored on the host; a chown to anything other
// than the current owner is EPERM. Locks (Tlock, Tgetlock) always succeed: the guest's kernel
// arbitrates POSIX locks among its own processes before it sends them (fs/9p/vfs_file.c takes the
// local lock first), and Parley does not lock against host processes (the share is not meant to be
// written by both at once). Extended attributes are not supported (EOPNOTSUPP). Tmknod is refused:
// devices with EPERM (they would reach host devices), FIFOs and sockets with EOPNOTSUPP (Node has
// no mkfifo/mknod).
import {
  LINUX_ERRNO,
  NAME_MAX,
  P9,
  P9_AT_REMOVEDIR,
  P9_ATTR_ATIME,
  P9_ATTR_ATIME_SET,
  P9_ATTR_GID,
  P9_ATTR_MODE,
  P9_ATTR_MTIME,
  P9_ATTR_MTIME_SET,
  P9_ATTR_SIZE,
  P9_ATTR_UID,
  P9_DOTL_ACCMODE,
  P9_DOTL_APPEND,
  P9_DOTL_EXCL,
  P9_DOTL_RDONLY,
  P9_DOTL_RDWR,
  P9_DOTL_TRUNC,
  P9_DOTL_WRONLY,
  P9_GETATTR_BASIC,
  P9_LOCK_SUCCESS,
  P9_LOCK_TYPE_UNLCK,
  P9_PROTO_2000L,
  P9_QTDIR,
  P9_QTFILE,
  P9_QTSYMLINK,
  P9_RREAD_HEADER_SIZE,
  P9_VERSION_UNKNOWN,
  S_IFBLK,
  S_IFCHR,
  S_IFMT,
  DT_BLK,
  DT_CHR,
  DT_DIR,
  DT_FIFO,
  DT_LNK,
  DT_REG,
  DT_SOCK,
  DT_UNKNOWN,
  V9FS_MAGIC,
  ShareError,
  errnoOf,
} from "./spec.ts";
import { P9Writer, ProtocolError, direntSize, encodeLerror, parseMessage, type P9Request, type P9RequestKind, type P9SetAttr, type Qid } from "./codec.ts";
import type { ShareBackend, ShareDirEntry, ShareFileType, ShareHandle, ShareOpenMode, ShareStat } from "./backend.ts";
import { SnapshotError, stateArray, stateInt, stateObject, stateRecord, stateString, type VersionedState } from "../../platform/persist.ts";

/** The smallest msize Parley accepts (the Linux client refuses less than 4096 too). */
export const P9_MIN_MSIZE = 4096;
/** Parley's msize at most: bounds the bytes one request may hold on the host. */
export const P9_DEFAULT_MAX_MSIZE = 1 << 20;
/**
 * Bounds on what one guest may make the host hold: fids (a few hundred bytes each; Linux keeps
 * one per cached dentry and open file, and clunks them when it evicts the dentry) and files open
 * on the host (each a host descriptor). Beyond them the guest gets ENFILE / EMFILE.
 */
export const P9_DEFAULT_MAX_FIDS = 1 << 20;
export const P9_DEFAULT_MAX_OPEN_FILES = 1024;

/** An open fid: the Tlopen/Tlcreate flags, and the backend's handle for a file (none for a directory). */
interface OpenState {
  flags: number;
  directory: boolean;
  /** Undefined for a directory, and after a restore until the file is used again (reopened then). */
  handle: ShareHandle | undefined;
}

interface Fid {
  path: string[];
  open: OpenState | undefined;
  /** The directory listing Treaddir serves from (taken at offset 0). */
  listing: ShareDirEntry[] | undefined;
}

export interface NinepCounters {
  /** Requests by kind (codec P9Request kinds; "malformed" for unparsable ones). */
  requests: Record<string, number>;
  /** Requests answered with Rlerror. */
  errors: number;
  /** File bytes read into the guest / written from it. */
  bytesRead: number;
  bytesWritten: number;
}

export interface NinepServerState extends VersionedState {
  version: 1;
  msize: number;
  fids: { fid: number; path: string[]; open: { flags: number; directory: boolean } | null }[];
}

const utf8 = new TextEncoder();

/** A guest name for a new or existing directory entry: EINVAL or ENAMETOOLONG when not acceptable. Pure. */
export function checkName(name: string): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) throw new ShareError("EINVAL", `"${name}" is not a file name`);
  if (utf8.encode(name).length > NAME_MAX) throw new ShareError("ENAMETOOLONG", `a name of more than ${NAME_MAX} bytes`);
}

function qidType(type: ShareFileType | "unknown"): number {
  return type === "directory" ? P9_QTDIR : type === "symlink" ? P9_QTSYMLINK : P9_QTFILE;
}

function qidOf(st: ShareStat): Qid {
  // The version changes when the file does (mtime), which a client with a cache may use.
  return { type: qidType(st.type), version: Number(BigInt.asUintN(32, st.mtimeNs / 1000n)), path: st.ino };
}

const DIRENT_TYPE: Record<ShareFileType | "unknown", number> = {
  file: DT_REG,
  directory: DT_DIR,
  symlink: DT_LNK,
  fifo: DT_FIFO,
  socket: DT_SOCK,
  char: DT_CHR,
  block: DT_BLK,
  unknown: DT_UNKNOWN,
};

/** Which handler needs the path lock: everything that resolves a path on the host. */
const UNLOCKED: ReadonlySet<P9RequestKind> = new Set(["version", "flush", "read", "write", "fsync", "lock", "getlock", "auth"]);

/** Requests that change the share: refused with EROFS on a read-only one. */
const MODIFYING: ReadonlySet<P9RequestKind> = new Set(["lcreate", "write", "setattr", "symlink", "mknod", "rename", "renameat", "unlinkat", "remove", "link", "mkdir", "xattrcreate"]);

function offsetOf(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ShareError("EINVAL", "offset beyond 2^53");
  return Number(value);
}

function nsOf(sec: bigint, nsec: bigint): bigint {
  return sec * 1_000_000_000n + (nsec % 1_000_000_000n);
}

export interface NinepServerOptions {
  /** The largest msize offered (default 1 MiB). */
  maxMsize?: number;
  /** Current time in ns since the epoch for "set to now" (default Date.now()). */
  now?: () => bigint;
  /** Fids at most (default P9_DEFAULT_MAX_FIDS). */
  maxFids?: number;
  /** Files open on the host at most (default P9_DEFAULT_MAX_OPEN_FILES). */
  maxOpenFiles?: number;
}

export class NinepServer {
  readonly counters: NinepCounters = { requests: {}, errors: 0, bytesRead: 0, bytesWritten: 0 };
  private readonly maxMsize: number;
  private readonly now: () => bigint;
  private readonly maxFids: number;
  private readonly maxOpenFiles: number;
  /** Files open on the host (and opens under way). */
  private openFiles = 0;
  private msizeValue: number;
  private fids = new Map<number, Fid>();
  /** Tail of the chain of path-resolving requests. */
  private pathLock: Promise<unknown> = Promise.resolve();
  /** Requests being served, by tag, for Tflush. */
  private readonly inflight = new Map<number, Promise<unknown>>();

  constructor(
    private readonly backend: ShareBackend,
    options: NinepServerOptions = {},
  ) {
    this.maxMsize = options.maxMsize ?? P9_DEFAULT_MAX_MSIZE;
    if (!Number.isInteger(this.maxMsize) || this.maxMsize < P9_MIN_MSIZE) throw new RangeError(`maxMsize ${this.maxMsize} is below ${P9_MIN_MSIZE}`);
    this.now = options.now ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.maxFids = options.maxFids ?? P9_DEFAULT_MAX_FIDS;
    this.maxOpenFiles = options.maxOpenFiles ?? P9_DEFAULT_MAX_OPEN_FILES;
    this.msizeValue = this.maxMsize;
  }

  /** The negotiated message size (the maximum before Tversion). */
  get msize(): number {
    return this.msizeValue;
  }

  get fidCount(): number {
    return this.fids.size;
  }

  /**
   * Serves one whole T-message; resolves to the R-message, at most `replyLimit` bytes (else an
   * Rlerror, or undefined when even that does not fit or the message has no readable header).
   */
  async handle(message: Uint8Array, replyLimit: number): Promise<Uint8Array | undefined> {
    const parsed = parseMessage(message);
    if (!parsed) {
      this.count("malformed");
      return undefined;
    }
    const { tag } = parsed;
    let reply: Uint8Array;
    if ("error" in parsed) {
      this.count("malformed");
      this.counters.errors++;
      reply = encodeLerror(tag, parsed.error.errno);
    } else {
      const request = parsed.request;
      this.count(request.kind);
      const work = this.serve(request, tag, Math.min(replyLimit, this.msizeValue));
      // A Tflush waits only for other kinds of request, so flushes naming themselves or each other
      // cannot wait for one another forever.
      if (request.kind !== "flush") this.inflight.set(tag, work);
      try {
        reply = await work;
      } finally {
        if (this.inflight.get(tag) === work) this.inflight.delete(tag);
      }
    }
    if (reply.length <= replyLimit) return reply;
    this.counters.errors++;
    const error = encodeLerror(tag, LINUX_ERRNO.ERANGE);
    return error.length <= replyLimit ? error : undefined;
  }

  private count(kind: string): void {
    this.counters.requests[kind] = (this.counters.requests[kind] ?? 0) + 1;
  }

  private async serve(request: P9Request, tag: number, limit: number): Promise<Uint8Array> {
    try {
      if (this.backend.readOnly && MODIFYING.has(request.kind)) throw new ShareError("EROFS", "the share is read-only");
      if (UNLOCKED.has(request.kind)) return await this.dispatch(request, tag, limit);
      return await this.locked(() => this.dispatch(request, tag, limit));
    } catch (err) {
      this.counters.errors++;
      return encodeLerror(tag, err instanceof ProtocolError ? err.errno : errnoOf(err));
    }
  }

  /** Runs `work` after every path operation started before it, and before any started after. */
  private locked<T>(work: () => Promise<T>): Promise<T> {
    const run = this.pathLock.then(work);
    this.pathLock = run.catch(() => undefined);
    return run;
  }

  private fid(n: number): Fid {
    const f = this.fids.get(n);
    if (!f) throw new ShareError("EBADF", `fid ${n} is not in use`);
    return f;
  }

  private freeFid(n: number): void {
    if (this.fids.has(n)) throw new ShareError("EBADF", `fid ${n} is already in use`);
    if (this.fids.size >= this.maxFids) throw new ShareError("ENFILE", `the guest holds ${this.fids.size} fids already`);
  }

  /** Opens a file on the host within the bound on open files. */
  private async openFile(path: readonly string[], mode: ShareOpenMode): Promise<ShareHandle> {
    if (this.openFiles >= this.maxOpenFiles) throw new ShareError("EMFILE", `${this.openFiles} files of the share are open already`);
    this.openFiles++;
    try {
      return await this.backend.open(path, mode);
    } catch (err) {
      this.openFiles--;
      throw err;
    }
  }

  private async closeFile(handle: ShareHandle): Promise<void> {
    this.openFiles--;
    await this.backend.close(handle).catch(() => undefined);
  }

  private async dispatch(req: P9Request, tag: number, limit: number): Promise<Uint8Array> {
    switch (req.kind) {
      case "version":
        return this.version(req.msize, req.version, tag);
      case "auth":
        // No authentication: Tattach takes afid NOFID (as Linux sends it).
        throw new ShareError("EOPNOTSUPP", "no authentication is needed");
      case "attach": {
        this.freeFid(req.fid);
        const st = await this.backend.lstat([]);
        this.fids.set(req.fid, { path: [], open: undefined, listing: undefined });
        return new P9Writer(P9.RATTACH, tag).qid(qidOf(st)).finish();
      }
      case "flush": {
        await this.inflight.get(req.oldtag)?.catch(() => undefined);
        return new P9Writer(P9.RFLUSH, tag).finish();
      }
      case "walk":
        return this.walk(req.fid, req.newfid, req.names, tag);
      case "lopen":
        return this.lopen(req.fid, req.flags, tag);
      case "lcreate":
        return this.lcreate(req.fid, req.name, req.flags, req.mode, tag);
      case "read":
        return this.read(req.fid, req.offset, req.count, tag, limit);
      case "write":
        return this.write(req.fid, req.offset, req.data, tag);
      case "readdir":
        return this.readdir(req.fid, req.offset, req.count, tag, limit);
      case "clunk": {
        const f = this.fid(req.fid);
        this.fids.delete(req.fid);
        await this.closeQuietly(f);
        return new P9Writer(P9.RCLUNK, tag).finish();
      }
      case "remove": {
        // The fid is clunked whether or not the remove succeeds (intro(5), remove).
        const f = this.fid(req.fid);
        this.fids.delete(req.fid);
        await this.closeQuietly(f);
        if (f.path.length === 0) throw new ShareError("EBUSY", "the share's root cannot be removed");
        const st = await this.backend.lstat(f.path);
        await this.backend.unlink(f.path, st.type === "directory");
        return new P9Writer(P9.RREMOVE, tag).finish();
      }
      case "getattr":
        return this.getattr(req.fid, tag);
      case "setattr":
        await this.setattr(this.fid(req.fid), req.attr);
        return new P9Writer(P9.RSETATTR, tag).finish();
      case "statfs": {
        this.fid(req.fid);
        const s = await this.backend.statfs();
        return new P9Writer(P9.RSTATFS, tag)
          .u32(V9FS_MAGIC)
          .u32(s.bsize)
          .u64(s.blocks)
          .u64(s.bfree)
          .u64(s.bavail)
          .u64(s.files)
          .u64(s.ffree)
          .u64(0)
          .u32(NAME_MAX)
          .finish();
      }
      case "fsync": {
        const f = this.fid(req.fid);
        if (f.open && !f.open.directory) await this.backend.fsync(await this.handleOf(f), req.datasync !== 0);
        return new P9Writer(P9.RFSYNC, tag).finish();
      }
      case "symlink": {
        const dir = this.fid(req.fid);
        checkName(req.name);
        if (req.target === "") throw new ShareError("ENOENT", "an empty symbolic link target");
        if (utf8.encode(req.target).length > 4095) throw new ShareError("ENAMETOOLONG", "a symbolic link target of more than 4095 bytes");
        const path = [...dir.path, req.name];
        await this.backend.symlink(path, req.target);
        return new P9Writer(P9.RSYMLINK, tag).qid(qidOf(await this.backend.lstat(path))).finish();
      }
      case "mknod": {
        this.fid(req.dfid);
        checkName(req.name);
        const type = req.mode & S_IFMT;
        if (type === S_IFCHR || type === S_IFBLK) throw new ShareError("EPERM", "device nodes cannot be made in a share");
        throw new ShareError("EOPNOTSUPP", "FIFOs and sockets cannot be made in a share");
      }
      case "rename": {
        const f = this.fid(req.fid);
        const dir = this.fid(req.dfid);
        checkName(req.name);
        await this.rename(f.path, [...dir.path, req.name]);
        return new P9Writer(P9.RRENAME, tag).finish();
      }
      case "renameat": {
        const from = this.fid(req.olddirfid);
        const to = this.fid(req.newdirfid);
        checkName(req.oldname);
        checkName(req.newname);
        await this.rename([...from.path, req.oldname], [...to.path, req.newname]);
        return new P9Writer(P9.RRENAMEAT, tag).finish();
      }
      case "readlink": {
        const f = this.fid(req.fid);
        const st = await this.backend.lstat(f.path);
        if (st.type !== "symlink") throw new ShareError("EINVAL", "not a symbolic link");
        return new P9Writer(P9.RREADLINK, tag).str(await this.backend.readlink(f.path)).finish();
      }
      case "xattrwalk":
        this.fid(req.fid);
        throw new ShareError("EOPNOTSUPP", "extended attributes are not supported");
      case "xattrcreate":
        this.fid(req.fid);
        throw new ShareError("EOPNOTSUPP", "extended attributes are not supported");
      case "lock":
        this.fid(req.fid);
        return new P9Writer(P9.RLOCK, tag).u8(P9_LOCK_SUCCESS).finish();
      case "getlock":
        this.fid(req.fid);
        return new P9Writer(P9.RGETLOCK, tag).u8(P9_LOCK_TYPE_UNLCK).u64(req.start).u64(req.length).u32(req.procId).str(req.clientId).finish();
      case "link": {
        const dir = this.fid(req.dfid);
        const f = this.fid(req.fid);
        checkName(req.name);
        await this.backend.link(f.path, [...dir.path, req.name]);
        return new P9Writer(P9.RLINK, tag).finish();
      }
      case "mkdir": {
        const dir = this.fid(req.dfid);
        checkName(req.name);
        const path = [...dir.path, req.name];
        await this.backend.mkdir(path, req.mode & 0o1777);
        return new P9Writer(P9.RMKDIR, tag).qid(qidOf(await this.backend.lstat(path))).finish();
      }
      case "unlinkat": {
        const dir = this.fid(req.dirfid);
        checkName(req.name);
        await this.backend.unlink([...dir.path, req.name], (req.flags & P9_AT_REMOVEDIR) !== 0);
        return new P9Writer(P9.RUNLINKAT, tag).finish();
      }
    }
  }

  private async version(msize: number, version: string, tag: number): Promise<Uint8Array> {
    // A new session: every fid of the old one is clunked (intro(5), version).
    await this.closeAll();
    if (msize < P9_MIN_MSIZE) throw new ShareError("EINVAL", `msize ${msize} is below ${P9_MIN_MSIZE}`);
    this.msizeValue = Math.min(msize, this.maxMsize);
    const answer = version === P9_PROTO_2000L ? P9_PROTO_2000L : P9_VERSION_UNKNOWN;
    return new P9Writer(P9.RVERSION, tag).u32(this.msizeValue).str(answer).finish();
  }

  private async walk(fidNumber: number, newfid: number, names: string[], tag: number): Promise<Uint8Array> {
    const from = this.fid(fidNumber);
    if (newfid !== fidNumber) this.freeFid(newfid);
    else if (names.length === 0) return new P9Writer(P9.RWALK, tag).u16(0).finish(); // a clone onto itself changes nothing
    let path = [...from.path];
    const qids: Qid[] = [];
    for (const [i, name] of names.entries()) {
      try {
        if (name === "..") path = path.slice(0, -1);
        else if (name !== ".") {
          checkName(name);
          path = [...path, name];
        }
        const st = await this.backend.lstat(path);
        if (i < names.length - 1 && st.type !== "directory") {
          qids.push(qidOf(st));
          break; // the next name would have to be looked up in a non-directory (or through a link)
        }
        qids.push(qidOf(st));
      } catch (err) {
        if (i === 0) throw err;
        break;
      }
    }
    if (qids.length === names.length) {
      if (newfid === fidNumber) {
        await this.closeQuietly(from);
        from.path = path;
        from.open = undefined;
        from.listing = undefined;
      } else this.fids.set(newfid, { path, open: undefined, listing: undefined });
    } else if (qids.length === 0) throw new ShareError("ENOENT", "walk failed");
    const w = new P9Writer(P9.RWALK, tag).u16(qids.length);
    for (const q of qids) w.qid(q);
    return w.finish();
  }

  private openMode(flags: number): ShareOpenMode {
    const access = flags & P9_DOTL_ACCMODE;
    if (access !== P9_DOTL_RDONLY && access !== P9_DOTL_WRONLY && access !== P9_DOTL_RDWR) throw new ShareError("EINVAL", "bad access mode");
    const write = access !== P9_DOTL_RDONLY;
    const truncate = (flags & P9_DOTL_TRUNC) !== 0;
    if (this.backend.readOnly && (write || truncate)) throw new ShareError("EROFS", "the share is read-only");
    return { read: access !== P9_DOTL_WRONLY, write, truncate, append: (flags & P9_DOTL_APPEND) !== 0 };
  }

  private async lopen(fidNumber: number, flags: number, tag: number): Promise<Uint8Array> {
    const f = this.fid(fidNumber);
    if (f.open) throw new ShareError("EBADF", "fid is already open");
    const mode = this.openMode(flags);
    const st = await this.backend.lstat(f.path);
    if (st.type === "symlink") throw new ShareError("ELOOP", "a symbolic link is never followed by the server");
    if (st.type === "directory") {
      if (mode.write || mode.truncate) throw new ShareError("EISDIR", "a directory cannot be opened for writing");
      f.open = { flags, directory: true, handle: undefined };
    } else {
      if (st.type !== "file") throw new ShareError("EOPNOTSUPP", "only regular files and directories can be opened in a share");
      f.open = { flags, directory: false, handle: await this.openFile(f.path, mode) };
    }
    f.listing = undefined;
    return new P9Writer(P9.RLOPEN, tag).qid(qidOf(st)).u32(0).finish();
  }

  private async lcreate(fidNumber: number, name: string, flags: number, mode: number, tag: number): Promise<Uint8Array> {
    const dir = this.fid(fidNumber);
    if (dir.open) throw new ShareError("EBADF", "fid is open");
    checkName(name);
    const openMode = this.openMode(flags);
    const path = [...dir.path, name];
    const handle = await this.openFile(path, { ...openMode, create: { mode: mode & 0o777, exclusive: (flags & P9_DOTL_EXCL) !== 0 } });
    let st: ShareStat;
    try {
      st = await this.backend.lstat(path);
    } catch (err) {
      await this.closeFile(handle);
      throw err;
    }
    // The fid now stands for the new file, open (9p.h Tlcreate).
    dir.path = path;
    dir.open = { flags, directory: false, handle };
    dir.listing = undefined;
    return new P9Writer(P9.RLCREATE, tag).qid(qidOf(st)).u32(0).finish();
  }

  /** The open file's handle; reopened (without truncating or creating) after a restore. */
  private async handleOf(f: Fid): Promise<ShareHandle> {
    const open = f.open;
    if (!open || open.directory) throw new ShareError("EBADF", "fid is not an open file");
    if (open.handle === undefined) {
      // Resolving the path again is a path operation like any other: it waits for its turn.
      await this.locked(async () => {
        if (f.open !== open || open.handle !== undefined) return; // clunked, or reopened meanwhile
        open.handle = await this.openFile(f.path, { ...this.openMode(open.flags), truncate: false });
      });
      if (f.open !== open || open.handle === undefined) throw new ShareError("EBADF", "fid was clunked");
    }
    return open.handle;
  }

  private async read(fidNumber: number, offset: bigint, count: number, tag: number, limit: number): Promise<Uint8Array> {
    const f = this.fid(fidNumber);
    if (f.open?.directory) throw new ShareError("EISDIR", "Tread of a directory (Treaddir lists it)");
    if (!f.open || (f.open.flags & P9_DOTL_ACCMODE) === P9_DOTL_WRONLY) throw new ShareError("EBADF", "fid is not open for reading");
    const n = Math.max(0, Math.min(count, limit - P9_RREAD_HEADER_SIZE));
    const data = await this.backend.read(await this.handleOf(f), offsetOf(offset), n);
    const bytes = data.length > n ? data.subarray(0, n) : data;
    this.counters.bytesRead += bytes.length;
    return new P9Writer(P9.RREAD, tag, P9_RREAD_HEADER_SIZE + bytes.length).u32(bytes.length).data(bytes).finish();
  }

  private async write(fidNumber: number, offset: bigint, data: Uint8Array, tag: number): Promise<Uint8Array> {
    const f = this.fid(fidNumber);
    if (!f.open || f.open.directory || (f.open.flags & P9_DOTL_ACCMODE) === P9_DOTL_RDONLY) throw new ShareError("EBADF", "fid is not open for writing");
    const n = await this.backend.write(await this.handleOf(f), offsetOf(offset), data);
    this.counters.bytesWritten += n;
    return new P9Writer(P9.RWRITE, tag).u32(n).finish();
  }

  private async readdir(fidNumber: number, offset: bigint, count: number, tag: number, limit: number): Promise<Uint8Array> {
    const f = this.fid(fidNumber);
    if (!f.open?.directory) throw new ShareError(f.open ? "ENOTDIR" : "EBADF", "fid is not an open directory");
    // Offsets are positions in the listing taken at offset 0 (plus "." and ".."), as cookies.
    if (offset === 0n || !f.listing) {
      const self = await this.backend.lstat(f.path);
      const parent = f.path.length === 0 ? self : await this.backend.lstat(f.path.slice(0, -1));
      f.listing = [{ name: ".", type: "directory", ino: self.ino }, { name: "..", type: "directory", ino: parent.ino }, ...(await this.backend.readdir(f.path))];
    }
    const room = Math.max(0, Math.min(count, limit - P9_RREAD_HEADER_SIZE));
    const w = new P9Writer(P9.RREADDIR, tag, P9_RREAD_HEADER_SIZE + room).u32(0);
    let used = 0;
    for (let i = Number(offset > BigInt(f.listing.length) ? BigInt(f.listing.length) : offset); i < f.listing.length; i++) {
      const e = f.listing[i];
      const size = direntSize(e.name);
      if (used + size > room) break;
      w.qid({ type: qidType(e.type), version: 0, path: e.ino })
        .u64(i + 1)
        .u8(DIRENT_TYPE[e.type])
        .str(e.name);
      used += size;
    }
    const out = w.finish();
    // count[4] is the bytes of entries that follow.
    out[7] = used & 0xff;
    out[8] = (used >>> 8) & 0xff;
    out[9] = (used >>> 16) & 0xff;
    out[10] = (used >>> 24) & 0xff;
    return out;
  }

  /** An open file's attributes come from its descriptor (so an unlinked open file still has them), others from lstat. */
  private async statOf(f: Fid): Promise<ShareStat> {
    if (f.open && !f.open.directory && f.open.handle !== undefined) return this.backend.fstat(f.open.handle);
    return this.backend.lstat(f.path);
  }

  private async getattr(fidNumber: number, tag: number): Promise<Uint8Array> {
    const st = await this.statOf(this.fid(fidNumber));
    const w = new P9Writer(P9.RGETATTR, tag, 160)
      .u64(P9_GETATTR_BASIC)
      .qid(qidOf(st))
      .u32(st.mode)
      .u32(st.uid)
      .u32(st.gid)
      .u64(st.nlink)
      .u64(st.rdev)
      .u64(st.size)
      .u64(st.blksize)
      .u64(st.blocks);
    for (const ns of [st.atimeNs, st.mtimeNs, st.ctimeNs]) w.u64(ns / 1_000_000_000n).u64(ns % 1_000_000_000n);
    return w.u64(0).u64(0).u64(0).u64(0).finish(); // btime, gen, data_version: not kept
  }

  private async setattr(f: Fid, attr: P9SetAttr): Promise<void> {
    const st = await this.statOf(f);
    // Ownership stays the host user's: only a chown to what it already is succeeds.
    if ((attr.valid & P9_ATTR_UID) !== 0 && attr.uid !== st.uid) throw new ShareError("EPERM", "files in a share keep the host user's owner");
    if ((attr.valid & P9_ATTR_GID) !== 0 && attr.gid !== st.gid) throw new ShareError("EPERM", "files in a share keep the host user's group");
    if ((attr.valid & P9_ATTR_MODE) !== 0) {
      if (st.type === "symlink") throw new ShareError("EOPNOTSUPP", "a symbolic link has no mode of its own");
      await this.backend.chmod(f.path, attr.mode & 0o7777);
    }
    if ((attr.valid & P9_ATTR_SIZE) !== 0) {
      if (st.type !== "file") throw new ShareError(st.type === "directory" ? "EISDIR" : "EINVAL", "only a regular file has a size to set");
      const handle = f.open && (f.open.flags & P9_DOTL_ACCMODE) !== P9_DOTL_RDONLY ? f.open.handle : undefined;
      if (handle !== undefined) await this.backend.ftruncate(handle, offsetOf(attr.size));
      else await this.backend.truncate(f.path, offsetOf(attr.size));
    }
    const atime = (attr.valid & P9_ATTR_ATIME) === 0 ? undefined : (attr.valid & P9_ATTR_ATIME_SET) !== 0 ? nsOf(attr.atimeSec, attr.atimeNsec) : this.now();
    const mtime = (attr.valid & P9_ATTR_MTIME) === 0 ? undefined : (attr.valid & P9_ATTR_MTIME_SET) !== 0 ? nsOf(attr.mtimeSec, attr.mtimeNsec) : this.now();
    if (atime !== undefined || mtime !== undefined) await this.backend.utimes(f.path, atime, mtime);
  }

  private async rename(from: string[], to: string[]): Promise<void> {
    if (from.length === 0) throw new ShareError("EBUSY", "the share's root cannot be renamed");
    await this.backend.rename(from, to);
    // Fids at or below the old name now stand for the new one (as the guest's dentries do).
    for (const f of this.fids.values()) {
      if (f.path.length >= from.length && from.every((name, i) => f.path[i] === name)) f.path = [...to, ...f.path.slice(from.length)];
    }
  }

  private async closeQuietly(f: Fid): Promise<void> {
    const handle = f.open?.handle;
    f.open = undefined;
    f.listing = undefined;
    if (handle !== undefined) await this.closeFile(handle);
  }

  private async closeAll(): Promise<void> {
    const all = [...this.fids.values()];
    this.fids = new Map();
    await Promise.all(all.map((f) => this.closeQuietly(f)));
  }

  /** Device reset: every fid is clunked and the msize goes back to the maximum. */
  async reset(): Promise<void> {
    this.msizeValue = this.maxMsize;
    await this.closeAll();
  }

  /** Fids as relative paths and open flags; open files are reopened when next used. */
  saveState(): NinepServerState {
    return {
      version: 1,
      msize: this.msizeValue,
      fids: [...this.fids.entries()].map(([fid, f]) => ({ fid, path: [...f.path], open: f.open ? { flags: f.open.flags, directory: f.open.directory } : null })),
    };
  }

  /** Checks the whole state, then replaces the fid table (any open handle is closed). */
  restoreState(value: unknown, where: string): void {
    const s = stateObject(value, where, [1]);
    const msize = stateInt(s.msize, `${where}.msize`, P9_MIN_MSIZE, this.maxMsize);
    const fids = new Map<number, Fid>();
    stateArray(s.fids, `${where}.fids`).forEach((entry, i) => {
      const at = `${where}.fids[${i}]`;
      const e = stateRecord(entry, at);
      const fid = stateInt(e.fid, `${at}.fid`, 0, 0xffff_ffff);
      if (fids.has(fid)) throw new SnapshotError(`${at}.fid: ${fid} appears twice`);
      const path = stateArray(e.path, `${at}.path`).map((name, j) => {
        const n = stateString(name, `${at}.path[${j}]`);
        try {
          checkName(n);
        } catch {
          throw new SnapshotError(`${at}.path[${j}]: "${n}" is not a file name`);
        }
        return n;
      });
      let open: OpenState | undefined;
      if (e.open !== null) {
        const o = stateRecord(e.open, `${at}.open`);
        const flags = stateInt(o.flags, `${at}.open.flags`, 0, 0xffff_ffff);
        if (typeof o.directory !== "boolean") throw new SnapshotError(`${at}.open.directory: expected true or false`);
        open = { flags, directory: o.directory, handle: undefined };
      }
      fids.set(fid, { path, open, listing: undefined });
    });
    const old = [...this.fids.values()];
    for (const f of old) void this.closeQuietly(f);
    this.fids = fids;
    this.msizeValue = msize;
  }
}
