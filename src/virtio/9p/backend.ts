// What the virtio-9p server needs of the host: file operations on paths inside one shared folder.
// A path is a list of names relative to the share's root (the root itself is []); the server has
// checked every name (no "", ".", "..", "/" or NUL), so a backend only has to make sure that it
// never follows a symbolic link while resolving one (see src/host/node/share-dir.ts). Errors are
// thrown as host errors with a `code` ("ENOENT", ...) or as ShareError; the server turns them into
// Linux errno values for Rlerror.

export type ShareFileType = "file" | "directory" | "symlink" | "fifo" | "socket" | "char" | "block";

/** lstat() of a file inside the share (never of a symbolic link's target). */
export interface ShareStat {
  type: ShareFileType;
  /** st_mode: type and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  /** st_ino: the qid's path. */
  ino: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface ShareDirEntry {
  name: string;
  type: ShareFileType | "unknown";
  ino: bigint;
}

export interface ShareStatfs {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}

/** How to open a file: the access wanted, and O_TRUNC / O_APPEND / O_CREAT|O_EXCL. */
export interface ShareOpenMode {
  read: boolean;
  write: boolean;
  truncate: boolean;
  append: boolean;
  /** O_CREAT with these permission bits (always O_EXCL when exclusive). */
  create?: { mode: number; exclusive: boolean };
}

/** A file opened by open(); numbers are the backend's own. */
export type ShareHandle = number;

export interface ShareBackend {
  /** A read-only share: the server refuses every change with EROFS before it asks the backend. */
  readonly readOnly: boolean;
  lstat(path: readonly string[]): Promise<ShareStat>;
  /** Opens a regular file (or, read-only, a directory) without following a symbolic link. */
  open(path: readonly string[], mode: ShareOpenMode): Promise<ShareHandle>;
  /** Up to `length` bytes at `offset`; fewer at the end of the file. */
  read(handle: ShareHandle, offset: number, length: number): Promise<Uint8Array>;
  /** Returns the bytes written. */
  write(handle: ShareHandle, offset: number, data: Uint8Array): Promise<number>;
  fsync(handle: ShareHandle, dataOnly: boolean): Promise<void>;
  /** fstat() of an open file: works after its name was removed or renamed by the host. */
  fstat(handle: ShareHandle): Promise<ShareStat>;
  ftruncate(handle: ShareHandle, size: number): Promise<void>;
  close(handle: ShareHandle): Promise<void>;
  /** The directory's entries, without "." and "..". */
  readdir(path: readonly string[]): Promise<ShareDirEntry[]>;
  mkdir(path: readonly string[], mode: number): Promise<void>;
  /** Creates a symbolic link holding `target` (never interpreted by the host). */
  symlink(path: readonly string[], target: string): Promise<void>;
  readlink(path: readonly string[]): Promise<string>;
  /** A hard link at `path` to the file at `existing` (both inside the share). */
  link(existing: readonly string[], path: readonly string[]): Promise<void>;
  unlink(path: readonly string[], directory: boolean): Promise<void>;
  rename(from: readonly string[], to: readonly string[]): Promise<void>;
  chmod(path: readonly string[], mode: number): Promise<void>;
  truncate(path: readonly string[], size: number): Promise<void>;
  /** Sets times (ns since the epoch) without following a symbolic link; undefined leaves one as it is. */
  utimes(path: readonly string[], atimeNs: bigint | undefined, mtimeNs: bigint | undefined): Promise<void>;
  statfs(): Promise<ShareStatfs>;
}
