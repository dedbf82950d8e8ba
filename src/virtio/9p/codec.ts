// The 9P2000.L wire format: pure, bounds-checked parsing of the guest's T-messages and encoding of
// Parley's R-messages. Everything here is little-endian (intro(5)); a string is len[2] followed by
// len bytes of UTF-8. A message that ends early, carries bytes after its last field, or a string
// that is not UTF-8 or holds a NUL is refused with a ProtocolError naming the errno the guest gets
// in Rlerror; nothing here throws anything else for any input, which fuzz.test.ts checks.
import { LINUX_ERRNO, P9, P9_HEADER_SIZE, P9_MAXWELEM, P9_QID_SIZE, P9_RREAD_HEADER_SIZE, type LinuxErrnoName } from "./spec.ts";

/** A T-message that cannot be parsed: answered with Rlerror(errno) when its tag is known. */
export class ProtocolError extends Error {
  readonly errno: number;
  constructor(code: LinuxErrnoName, message: string) {
    super(message);
    this.name = "ProtocolError";
    this.errno = LINUX_ERRNO[code];
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** Reads fields of one message in order; every read is checked against the message's end. */
export class P9Reader {
  private offset: number;
  constructor(
    private readonly bytes: Uint8Array,
    offset = 0,
  ) {
    this.offset = offset;
  }

  private take(n: number): number {
    const at = this.offset;
    if (at + n > this.bytes.length) throw new ProtocolError("EPROTO", `message ends ${at + n - this.bytes.length} bytes early`);
    this.offset = at + n;
    return at;
  }
  u8(): number {
    return this.bytes[this.take(1)];
  }
  u16(): number {
    const at = this.take(2);
    return this.bytes[at] | (this.bytes[at + 1] << 8);
  }
  u32(): number {
    const at = this.take(4);
    return (this.bytes[at] | (this.bytes[at + 1] << 8) | (this.bytes[at + 2] << 16)) + this.bytes[at + 3] * 0x100_0000;
  }
  u64(): bigint {
    const low = this.u32();
    const high = this.u32();
    return (BigInt(high) << 32n) | BigInt(low);
  }
  /** A string: UTF-8 without NUL (Linux file names and paths cannot hold one). */
  str(): string {
    const length = this.u16();
    const at = this.take(length);
    const raw = this.bytes.subarray(at, at + length);
    if (raw.includes(0)) throw new ProtocolError("EINVAL", "a string holds a NUL byte");
    try {
      return utf8.decode(raw);
    } catch {
      throw new ProtocolError("EINVAL", "a string is not UTF-8");
    }
  }
  /** The next `n` bytes (a view, not a copy). */
  data(n: number): Uint8Array {
    const at = this.take(n);
    return this.bytes.subarray(at, at + n);
  }
  /** Refuses bytes after the last field. */
  end(): void {
    if (this.offset !== this.bytes.length) throw new ProtocolError("EPROTO", `${this.bytes.length - this.offset} bytes after the message's last field`);
  }
}

/** size[4] type[1] tag[2]. */
export interface P9Header {
  size: number;
  type: number;
  tag: number;
}

/** The header of a message from its first 7 bytes (the caller checks `size` against msize and the chain). Pure. */
export function parseHeader(bytes: Uint8Array): P9Header | undefined {
  if (bytes.length < P9_HEADER_SIZE) return undefined;
  const r = new P9Reader(bytes);
  return { size: r.u32(), type: r.u8(), tag: r.u16() };
}

/** Every T-message Parley serves, parsed (9p.h / the Linux client's p9_client_* formats). */
export type P9Request =
  | { kind: "version"; msize: number; version: string }
  | { kind: "auth"; afid: number }
  | { kind: "attach"; fid: number; afid: number; uname: string; aname: string; nUname: number }
  | { kind: "flush"; oldtag: number }
  | { kind: "walk"; fid: number; newfid: number; names: string[] }
  | { kind: "lopen"; fid: number; flags: number }
  | { kind: "lcreate"; fid: number; name: string; flags: number; mode: number; gid: number }
  | { kind: "read"; fid: number; offset: bigint; count: number }
  | { kind: "write"; fid: number; offset: bigint; data: Uint8Array }
  | { kind: "readdir"; fid: number; offset: bigint; count: number }
  | { kind: "clunk"; fid: number }
  | { kind: "remove"; fid: number }
  | { kind: "getattr"; fid: number; mask: bigint }
  | { kind: "setattr"; fid: number; attr: P9SetAttr }
  | { kind: "statfs"; fid: number }
  | { kind: "fsync"; fid: number; datasync: number }
  | { kind: "symlink"; fid: number; name: string; target: string; gid: number }
  | { kind: "mknod"; dfid: number; name: string; mode: number; major: number; minor: number; gid: number }
  | { kind: "rename"; fid: number; dfid: number; name: string }
  | { kind: "readlink"; fid: number }
  | { kind: "xattrwalk"; fid: number; newfid: number; name: string }
  | { kind: "xattrcreate"; fid: number; name: string; size: bigint; flags: number }
  | { kind: "lock"; fid: number; lockType: number; flags: number; start: bigint; length: bigint; procId: number; clientId: string }
  | { kind: "getlock"; fid: number; lockType: number; start: bigint; length: bigint; procId: number; clientId: string }
  | { kind: "link"; dfid: number; fid: number; name: string }
  | { kind: "mkdir"; dfid: number; name: string; mode: number; gid: number }
  | { kind: "renameat"; olddirfid: number; oldname: string; newdirfid: number; newname: string }
  | { kind: "unlinkat"; dirfid: number; name: string; flags: number };

export type P9RequestKind = P9Request["kind"];

/** Tsetattr's fields (valid says which apply). */
export interface P9SetAttr {
  valid: number;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  atimeSec: bigint;
  atimeNsec: bigint;
  mtimeSec: bigint;
  mtimeNsec: bigint;
}

/** The body parsers, by message type: each reads exactly its fields. */
const BODY_PARSERS: ReadonlyMap<number, (r: P9Reader) => P9Request> = new Map<number, (r: P9Reader) => P9Request>([
  [P9.TVERSION, (r) => ({ kind: "version", msize: r.u32(), version: r.str() })],
  [P9.TAUTH, parseAuth],
  [P9.TATTACH, (r) => ({ kind: "attach", fid: r.u32(), afid: r.u32(), uname: r.str(), aname: r.str(), nUname: r.u32() })],
  [P9.TFLUSH, (r) => ({ kind: "flush", oldtag: r.u16() })],
  [P9.TWALK, parseWalk],
  [P9.TLOPEN, (r) => ({ kind: "lopen", fid: r.u32(), flags: r.u32() })],
  [P9.TLCREATE, (r) => ({ kind: "lcreate", fid: r.u32(), name: r.str(), flags: r.u32(), mode: r.u32(), gid: r.u32() })],
  [P9.TREAD, (r) => ({ kind: "read", fid: r.u32(), offset: r.u64(), count: r.u32() })],
  [P9.TWRITE, (r) => ({ kind: "write", fid: r.u32(), offset: r.u64(), data: r.data(r.u32()) })],
  [P9.TREADDIR, (r) => ({ kind: "readdir", fid: r.u32(), offset: r.u64(), count: r.u32() })],
  [P9.TCLUNK, (r) => ({ kind: "clunk", fid: r.u32() })],
  [P9.TREMOVE, (r) => ({ kind: "remove", fid: r.u32() })],
  [P9.TGETATTR, (r) => ({ kind: "getattr", fid: r.u32(), mask: r.u64() })],
  [
    P9.TSETATTR,
    (r) => ({
      kind: "setattr",
      fid: r.u32(),
      attr: { valid: r.u32(), mode: r.u32(), uid: r.u32(), gid: r.u32(), size: r.u64(), atimeSec: r.u64(), atimeNsec: r.u64(), mtimeSec: r.u64(), mtimeNsec: r.u64() },
    }),
  ],
  [P9.TSTATFS, (r) => ({ kind: "statfs", fid: r.u32() })],
  [P9.TFSYNC, (r) => ({ kind: "fsync", fid: r.u32(), datasync: r.u32() })],
  [P9.TSYMLINK, (r) => ({ kind: "symlink", fid: r.u32(), name: r.str(), target: r.str(), gid: r.u32() })],
  [P9.TMKNOD, (r) => ({ kind: "mknod", dfid: r.u32(), name: r.str(), mode: r.u32(), major: r.u32(), minor: r.u32(), gid: r.u32() })],
  [P9.TRENAME, (r) => ({ kind: "rename", fid: r.u32(), dfid: r.u32(), name: r.str() })],
  [P9.TREADLINK, (r) => ({ kind: "readlink", fid: r.u32() })],
  [P9.TXATTRWALK, (r) => ({ kind: "xattrwalk", fid: r.u32(), newfid: r.u32(), name: r.str() })],
  [P9.TXATTRCREATE, (r) => ({ kind: "xattrcreate", fid: r.u32(), name: r.str(), size: r.u64(), flags: r.u32() })],
  [
    P9.TLOCK,
    (r) => ({ kind: "lock", fid: r.u32(), lockType: r.u8(), flags: r.u32(), start: r.u64(), length: r.u64(), procId: r.u32(), clientId: r.str() }),
  ],
  [P9.TGETLOCK, (r) => ({ kind: "getlock", fid: r.u32(), lockType: r.u8(), start: r.u64(), length: r.u64(), procId: r.u32(), clientId: r.str() })],
  [P9.TLINK, (r) => ({ kind: "link", dfid: r.u32(), fid: r.u32(), name: r.str() })],
  [P9.TMKDIR, (r) => ({ kind: "mkdir", dfid: r.u32(), name: r.str(), mode: r.u32(), gid: r.u32() })],
  [P9.TRENAMEAT, (r) => ({ kind: "renameat", olddirfid: r.u32(), oldname: r.str(), newdirfid: r.u32(), newname: r.str() })],
  [P9.TUNLINKAT, (r) => ({ kind: "unlinkat", dirfid: r.u32(), name: r.str(), flags: r.u32() })],
]);

/** Tauth afid[4] uname[s] aname[s] n_uname[4]: only afid is kept, the rest is read to check it. */
function parseAuth(r: P9Reader): P9Request {
  const afid = r.u32();
  r.str();
  r.str();
  r.u32();
  return { kind: "auth", afid };
}

function parseWalk(r: P9Reader): P9Request {
  const fid = r.u32();
  const newfid = r.u32();
  const count = r.u16();
  if (count > P9_MAXWELEM) throw new ProtocolError("EINVAL", `Twalk of ${count} names (at most ${P9_MAXWELEM})`);
  const names: string[] = [];
  for (let i = 0; i < count; i++) names.push(r.str());
  return { kind: "walk", fid, newfid, names };
}

export type ParsedMessage = { tag: number; request: P9Request } | { tag: number; error: ProtocolError };

/**
 * One whole T-message (exactly `size` bytes, the header's size field). An unknown type or one of
 * legacy 9P2000's (Topen, Tcreate, Tstat, Twstat) is EOPNOTSUPP; a malformed body is EPROTO or
 * EINVAL. Pure; never throws.
 */
export function parseMessage(bytes: Uint8Array): ParsedMessage | undefined {
  const header = parseHeader(bytes);
  if (!header || header.size !== bytes.length) return undefined;
  const parse = BODY_PARSERS.get(header.type);
  if (!parse) return { tag: header.tag, error: new ProtocolError("EOPNOTSUPP", `message type ${header.type} is not served (9P2000.L only)`) };
  try {
    const r = new P9Reader(bytes, P9_HEADER_SIZE);
    const request = parse(r);
    r.end();
    return { tag: header.tag, request };
  } catch (err) {
    if (err instanceof ProtocolError) return { tag: header.tag, error: err };
    throw err;
  }
}

// ---- encoding --------------------------------------------------------------------------------

/** A qid: the server's identity of a file (type, version, path; intro(5)). */
export interface Qid {
  type: number;
  version: number;
  path: bigint;
}

/** Builds one R-message; size and header are filled in by finish(). */
export class P9Writer {
  private bytes: Uint8Array;
  private length = P9_HEADER_SIZE;

  constructor(
    private readonly type: number,
    private readonly tag: number,
    capacity = 64,
  ) {
    this.bytes = new Uint8Array(Math.max(capacity, P9_HEADER_SIZE));
  }

  get size(): number {
    return this.length;
  }

  private room(n: number): number {
    if (this.length + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  u8(v: number): this {
    const at = this.room(1);
    this.bytes[at] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    const at = this.room(2);
    this.bytes[at] = v & 0xff;
    this.bytes[at + 1] = (v >>> 8) & 0xff;
    return this;
  }
  u32(v: number): this {
    const at = this.room(4);
    for (let i = 0; i < 4; i++) this.bytes[at + i] = (v >>> (8 * i)) & 0xff;
    return this;
  }
  u64(v: bigint | number): this {
    const big = BigInt.asUintN(64, BigInt(v));
    this.u32(Number(big & 0xffff_ffffn));
    return this.u32(Number(big >> 32n));
  }
  str(s: string): this {
    const encoded = utf8Encoder.encode(s);
    this.u16(encoded.length);
    return this.data(encoded);
  }
  data(d: Uint8Array): this {
    const at = this.room(d.length); // before this.bytes is read: room() may replace it
    this.bytes.set(d, at);
    return this;
  }
  qid(q: Qid): this {
    return this.u8(q.type).u32(q.version).u64(q.path);
  }
  /** The finished message, size and header written. */
  finish(): Uint8Array {
    const out = this.bytes.subarray(0, this.length);
    const n = this.length;
    out[0] = n & 0xff;
    out[1] = (n >>> 8) & 0xff;
    out[2] = (n >>> 16) & 0xff;
    out[3] = (n >>> 24) & 0xff;
    out[4] = this.type;
    out[5] = this.tag & 0xff;
    out[6] = (this.tag >>> 8) & 0xff;
    return out;
  }
}

/** Rlerror(ecode). */
export function encodeLerror(tag: number, errno: number): Uint8Array {
  return new P9Writer(P9.RLERROR, tag, 11).u32(errno).finish();
}

/** Bytes one Rreaddir entry takes: qid[13] offset[8] type[1] name[s]. */
export function direntSize(name: string): number {
  return P9_QID_SIZE + 8 + 1 + 2 + utf8Encoder.encode(name).length;
}

/** Room for Rread's data in a reply of at most `limit` bytes. */
export function readPayloadLimit(limit: number): number {
  return Math.max(0, limit - P9_RREAD_HEADER_SIZE);
}
