// virtio-9p and the 9P2000.L protocol that runs over it. The virtio spec (1.3, chapter 5 "Device
// Types") assigns device ID 9 to the "9P transport" but gives it no section of its own; the device's
// layout is Linux's include/uapi/linux/virtio_9p.h, and the protocol's is include/net/9p/9p.h, the
// reference that Linux's client (net/9p, fs/9p) and QEMU's server (hw/9pfs) both follow. Names
// below are theirs.

/** virtio_9p.h: the configuration space holds a mount tag (tag_len, then tag_len bytes). */
export const VIRTIO_9P_MOUNT_TAG = 0;
/** virtio_9p.h: struct virtio_9p_config { __virtio16 tag_len; __u8 tag[]; }. */
export const VIRTIO_9P_CONFIG_TAG_OFFSET = 2;
/**
 * Mount tags Parley accepts: what `mount -t 9p TAG` names. Linux takes any tag up to its config
 * space's length; Parley keeps to letters, digits, '_', '.' and '-' so a tag is also a safe word
 * on a command line.
 */
export const MOUNT_TAG_PATTERN = /^[A-Za-z0-9_.-]{1,31}$/;
/** The one virtqueue ("requests"): each chain is a T-message followed by room for its R-message. */
export const VIRTIO_9P_REQUESTQ = 0;

/** The protocol version Parley speaks (Linux: "9P2000.L", the default of its 9p mount option version=). */
export const P9_PROTO_2000L = "9P2000.L";
/** Rversion's answer to a version the server does not speak (intro(5)). */
export const P9_VERSION_UNKNOWN = "unknown";
/** The tag of Tversion (intro(5)), and the "no fid" value of Tattach's afid. */
export const P9_NOTAG = 0xffff;
export const P9_NOFID = 0xffff_ffff;
/** Walk elements per Twalk at most (9p.h P9_MAXWELEM). */
export const P9_MAXWELEM = 16;
/** size[4] type[1] tag[2]: the header of every message. */
export const P9_HEADER_SIZE = 7;
/** size[4] type[1] tag[2] count[4]: Rread's and Rreaddir's header before the data. */
export const P9_RREAD_HEADER_SIZE = 11;
/** Twrite's header before the data: size[4] type[1] tag[2] fid[4] offset[8] count[4] (Linux's P9_IOHDRSZ is 24). */
export const P9_TWRITE_HEADER_SIZE = 23;
/** A qid on the wire: type[1] version[4] path[8]. */
export const P9_QID_SIZE = 13;

/** 9p.h enum p9_msg_t: the 9P2000.L message types Parley serves (T even, R = T + 1). */
export const P9 = {
  TLERROR: 6,
  RLERROR: 7,
  TSTATFS: 8,
  RSTATFS: 9,
  TLOPEN: 12,
  RLOPEN: 13,
  TLCREATE: 14,
  RLCREATE: 15,
  TSYMLINK: 16,
  RSYMLINK: 17,
  TMKNOD: 18,
  RMKNOD: 19,
  TRENAME: 20,
  RRENAME: 21,
  TREADLINK: 22,
  RREADLINK: 23,
  TGETATTR: 24,
  RGETATTR: 25,
  TSETATTR: 26,
  RSETATTR: 27,
  TXATTRWALK: 30,
  RXATTRWALK: 31,
  TXATTRCREATE: 32,
  RXATTRCREATE: 33,
  TREADDIR: 40,
  RREADDIR: 41,
  TFSYNC: 50,
  RFSYNC: 51,
  TLOCK: 52,
  RLOCK: 53,
  TGETLOCK: 54,
  RGETLOCK: 55,
  TLINK: 70,
  RLINK: 71,
  TMKDIR: 72,
  RMKDIR: 73,
  TRENAMEAT: 74,
  RRENAMEAT: 75,
  TUNLINKAT: 76,
  RUNLINKAT: 77,
  TVERSION: 100,
  RVERSION: 101,
  TAUTH: 102,
  RAUTH: 103,
  TATTACH: 104,
  RATTACH: 105,
  TFLUSH: 108,
  RFLUSH: 109,
  TWALK: 110,
  RWALK: 111,
  TREAD: 116,
  RREAD: 117,
  TWRITE: 118,
  RWRITE: 119,
  TCLUNK: 120,
  RCLUNK: 121,
  TREMOVE: 122,
  RREMOVE: 123,
} as const;

/** 9p.h enum p9_qid_t: the qid type bits. */
export const P9_QTDIR = 0x80;
export const P9_QTSYMLINK = 0x02;
export const P9_QTFILE = 0x00;

/** 9p.h: Tgetattr request_mask / Rgetattr valid bits. */
export const P9_GETATTR_MODE = 0x0000_0001n;
export const P9_GETATTR_NLINK = 0x0000_0002n;
export const P9_GETATTR_UID = 0x0000_0004n;
export const P9_GETATTR_GID = 0x0000_0008n;
export const P9_GETATTR_RDEV = 0x0000_0010n;
export const P9_GETATTR_ATIME = 0x0000_0020n;
export const P9_GETATTR_MTIME = 0x0000_0040n;
export const P9_GETATTR_CTIME = 0x0000_0080n;
export const P9_GETATTR_INO = 0x0000_0100n;
export const P9_GETATTR_SIZE = 0x0000_0200n;
export const P9_GETATTR_BLOCKS = 0x0000_0400n;
/** Everything of struct stat (what Parley answers; btime, gen and data_version it does not keep). */
export const P9_GETATTR_BASIC = 0x0000_07ffn;

/** 9p.h: Tsetattr valid bits. */
export const P9_ATTR_MODE = 1 << 0;
export const P9_ATTR_UID = 1 << 1;
export const P9_ATTR_GID = 1 << 2;
export const P9_ATTR_SIZE = 1 << 3;
export const P9_ATTR_ATIME = 1 << 4;
export const P9_ATTR_MTIME = 1 << 5;
export const P9_ATTR_CTIME = 1 << 6;
export const P9_ATTR_ATIME_SET = 1 << 7;
export const P9_ATTR_MTIME_SET = 1 << 8;

/** 9p.h: Tlopen / Tlcreate flags (the Linux O_ values of the generic ABI, which riscv64 uses). */
export const P9_DOTL_ACCMODE = 0o3;
export const P9_DOTL_RDONLY = 0o0;
export const P9_DOTL_WRONLY = 0o1;
export const P9_DOTL_RDWR = 0o2;
export const P9_DOTL_CREATE = 0o100;
export const P9_DOTL_EXCL = 0o200;
export const P9_DOTL_TRUNC = 0o1000;
export const P9_DOTL_APPEND = 0o2000;
export const P9_DOTL_DIRECTORY = 0o200000;

/** Tunlinkat flags: fcntl.h AT_REMOVEDIR. */
export const P9_AT_REMOVEDIR = 0x200;

/** 9p.h: lock types and Rlock status. */
export const P9_LOCK_TYPE_RDLCK = 0;
export const P9_LOCK_TYPE_WRLCK = 1;
export const P9_LOCK_TYPE_UNLCK = 2;
export const P9_LOCK_SUCCESS = 0;

/** S_IFMT and its file types (Linux stat.h), in Rgetattr's mode and Tmknod's. */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** dirent.h d_type values, in Rreaddir entries. */
export const DT_UNKNOWN = 0;
export const DT_FIFO = 1;
export const DT_CHR = 2;
export const DT_DIR = 4;
export const DT_BLK = 6;
export const DT_REG = 8;
export const DT_LNK = 10;
export const DT_SOCK = 12;

/** statfs f_type of a 9P mount (Linux magic.h V9FS_MAGIC). */
export const V9FS_MAGIC = 0x01021997;
/** Longest name Parley accepts in a message (Linux NAME_MAX). */
export const NAME_MAX = 255;

/**
 * Linux errno values (include/uapi/asm-generic/errno-base.h and errno.h, which riscv64 uses),
 * carried by Rlerror. Keyed by the symbolic names Node's errors carry in `code`, so a host error
 * maps to the guest's number by name.
 */
export const LINUX_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EPROTO: 71,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  EDQUOT: 122,
} as const;
export type LinuxErrnoName = keyof typeof LINUX_ERRNO;

/** The errno an error carries: a ShareError's number, a host error's code by name, else EIO. */
export function errnoOf(err: unknown): number {
  if (typeof err === "object" && err !== null) {
    const e = err as { errno9p?: unknown; code?: unknown };
    if (typeof e.errno9p === "number") return e.errno9p;
    if (typeof e.code === "string" && Object.hasOwn(LINUX_ERRNO, e.code)) return LINUX_ERRNO[e.code as LinuxErrnoName];
    // Node names ENOTSUP (the same number as EOPNOTSUPP on Linux) by its own name.
    if (e.code === "ENOTSUP") return LINUX_ERRNO.EOPNOTSUPP;
  }
  return LINUX_ERRNO.EIO;
}

/** An error a share backend or the server raises on purpose, with the errno the guest gets. */
export class ShareError extends Error {
  readonly errno9p: number;
  constructor(code: LinuxErrnoName, message: string) {
    super(`${code}: ${message}`);
    this.name = "ShareError";
    this.errno9p = LINUX_ERRNO[code];
  }
}
