import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, symlinkSync, lstatSync, existsSync, readlinkSync, rmSync, statSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openShareDir } from "../../host/node/share-dir.ts";
import { NinepGuest, errnoOfReply, readQid, tmsg, type Reply } from "../testing/ninep.ts";
import { LINUX_ERRNO as E, P9, P9_DOTL_CREATE, P9_DOTL_RDONLY, P9_DOTL_RDWR, P9_DOTL_WRONLY, P9_DOTL_DIRECTORY, P9_QTDIR, P9_QTSYMLINK, P9_ATTR_MODE, P9_ATTR_SIZE, P9_ATTR_UID, P9_ATTR_MTIME, P9_ATTR_MTIME_SET, P9_AT_REMOVEDIR, P9_LOCK_TYPE_UNLCK, S_IFCHR, S_IFIFO, VIRTIO_9P_MOUNT_TAG, P9_TWRITE_HEADER_SIZE } from "./spec.ts";
import { VirtioMmioRegister as R, featureBit } from "../constants.ts";
import { mmioRead, mmioWrite } from "../testing/fake-driver.ts";
import { VirtioNinep } from "./device.ts";

const bases: string[] = [];
after(() => bases.forEach((base) => rmSync(base, { recursive: true, force: true })));

/** A temp folder laid out as host/ (the share) and outside/ (what the guest must never reach). */
function tempShare(): { base: string; share: string; outside: string } {
  const base = mkdtempSync(join(tmpdir(), "parley-9p-"));
  bases.push(base);
  const share = join(base, "share");
  const outside = join(base, "outside");
  mkdirSync(share);
  mkdirSync(outside);
  writeFileSync(join(outside, "secret"), "host secret\n");
  return { base, share, outside };
}

async function guestOn(share: string, readOnly = false, maxMsize?: number): Promise<NinepGuest> {
  const backend = await openShareDir(share, { readOnly });
  const g = new NinepGuest({ backend, tag: "hostshare", maxMsize });
  return g;
}

function ok(reply: Reply, type: number): Reply {
  assert.equal(errnoOfReply(reply), undefined, `expected a reply of type ${type}, got Rlerror ${errnoOfReply(reply)}`);
  assert.equal(reply.type, type);
  return reply;
}

function errno(reply: Reply): number | undefined {
  return errnoOfReply(reply);
}

async function lopen(g: NinepGuest, fid: number, flags: number): Promise<Reply> {
  return g.rpc(P9.TLOPEN, (w) => w.u32(fid).u32(flags));
}

async function lcreate(g: NinepGuest, dirFid: number, name: string, flags = P9_DOTL_RDWR, mode = 0o644): Promise<Reply> {
  return g.rpc(P9.TLCREATE, (w) => w.u32(dirFid).str(name).u32(flags | P9_DOTL_CREATE).u32(mode).u32(0));
}

async function write(g: NinepGuest, fid: number, offset: number, data: Uint8Array): Promise<Reply> {
  return g.rpc(P9.TWRITE, (w) => w.u32(fid).u64(offset).u32(data.length).data(data));
}

async function read(g: NinepGuest, fid: number, offset: number, count: number, room = 8192, pieces = 1): Promise<Reply> {
  return g.rpc(P9.TREAD, (w) => w.u32(fid).u64(offset).u32(count), room, pieces);
}

function readData(reply: Reply): Uint8Array {
  ok(reply, P9.RREAD);
  return reply.body.data(reply.body.u32());
}

async function readdirNames(g: NinepGuest, dirFid: number): Promise<string[]> {
  const names: string[] = [];
  let offset = 0n;
  for (;;) {
    const reply = ok(await g.rpc(P9.TREADDIR, (w) => w.u32(dirFid).u64(offset).u32(200)), P9.RREADDIR);
    const count = reply.body.u32();
    if (count === 0) return names;
    let used = 0;
    while (used < count) {
      readQid(reply.body);
      offset = reply.body.u64();
      reply.body.u8();
      const name = reply.body.str();
      names.push(name);
      used += 13 + 8 + 1 + 2 + new TextEncoder().encode(name).length;
    }
  }
}

test("configuration space: the mount tag after its length, and the MOUNT_TAG feature", async () => {
  const { share } = tempShare();
  const g = await guestOn(share);
  assert.equal(mmioRead(g.transport, R.DeviceID), 9);
  assert.equal(mmioRead(g.transport, 0x100) & 0xffff, "hostshare".length);
  const tag = [...Array(9).keys()].map((i) => String.fromCharCode(g.device.readConfig(2 + i, 1)!)).join("");
  assert.equal(tag, "hostshare");
  assert.equal(g.device.readConfig(11, 1), undefined, "nothing after the tag");
  assert.equal(g.device.deviceFeatures & featureBit(VIRTIO_9P_MOUNT_TAG), featureBit(VIRTIO_9P_MOUNT_TAG));
  const backend = await openShareDir(share);
  assert.throws(() => new VirtioNinep({ backend, tag: "a/b" }), /mount tag/);
});

test("Tversion negotiates msize and answers only 9P2000.L", async () => {
  const { share } = tempShare();
  const g = await guestOn(share, false, 65536);
  let r = ok(await g.rpc(P9.TVERSION, (w) => w.u32(1 << 20).str("9P2000.L")), P9.RVERSION);
  assert.equal(r.body.u32(), 65536);
  assert.equal(r.body.str(), "9P2000.L");
  r = ok(await g.rpc(P9.TVERSION, (w) => w.u32(8192).str("9P2000.u")), P9.RVERSION);
  assert.equal(r.body.u32(), 8192);
  assert.equal(r.body.str(), "unknown");
  assert.equal(errno(await g.rpc(P9.TVERSION, (w) => w.u32(100).str("9P2000.L"))), E.EINVAL);
});

test("files: create, write, read, getattr, setattr, fsync, statfs, clunk (host sees the same bytes)", async () => {
  const { share } = tempShare();
  const g = await guestOn(share);
  const root = readQid(ok(await g.mount(), P9.RATTACH).body);
  assert.equal(root.type, P9_QTDIR);
  const { fid } = await g.walk([]);
  const created = ok(await lcreate(g, fid, "hello.txt"), P9.RLCREATE);
  assert.equal(readQid(created.body).type, 0);
  const text = new TextEncoder().encode("hello from the guest\n");
  assert.equal(ok(await write(g, fid, 0, text), P9.RWRITE).body.u32(), text.length);
  assert.equal(readFileSync(join(share, "hello.txt"), "utf8"), "hello from the guest\n");
  assert.deepEqual(readData(await read(g, fid, 6, 100)), text.subarray(6));
  ok(await g.rpc(P9.TFSYNC, (w) => w.u32(fid).u32(0)), P9.RFSYNC);

  const attr = ok(await g.rpc(P9.TGETATTR, (w) => w.u32(fid).u64(0x7ff)), P9.RGETATTR).body;
  attr.u64();
  readQid(attr);
  const mode = attr.u32();
  const uid = attr.u32();
  assert.equal(mode & 0o777, statSync(join(share, "hello.txt")).mode & 0o777);
  assert.equal(uid, statSync(join(share, "hello.txt")).uid, "uid as stored on the host");
  attr.u32();
  attr.u64();
  attr.u64();
  assert.equal(attr.u64(), BigInt(text.length));

  const setattr = (valid: number, fill: { mode?: number; uid?: number; size?: number; mtime?: number }) =>
    g.rpc(P9.TSETATTR, (w) => w.u32(fid).u32(valid).u32(fill.mode ?? 0).u32(fill.uid ?? 0).u32(0).u64(fill.size ?? 0).u64(0).u64(0).u64(fill.mtime ?? 0).u64(0));
  ok(await setattr(P9_ATTR_MODE, { mode: 0o600 }), P9.RSETATTR);
  assert.equal(statSync(join(share, "hello.txt")).mode & 0o777, 0o600);
  ok(await setattr(P9_ATTR_SIZE, { size: 5 }), P9.RSETATTR);
  assert.equal(readFileSync(join(share, "hello.txt"), "utf8"), "hello");
  ok(await setattr(P9_ATTR_MTIME | P9_ATTR_MTIME_SET, { mtime: 1_000_000 }), P9.RSETATTR);
  assert.equal(statSync(join(share, "hello.txt")).mtimeMs, 1_000_000_000);
  assert.equal(errno(await setattr(P9_ATTR_UID, { uid: uid + 1 })), E.EPERM, "no chown to another owner");
  ok(await setattr(P9_ATTR_UID, { uid }), P9.RSETATTR);

  const fs = ok(await g.rpc(P9.TSTATFS, (w) => w.u32(0)), P9.RSTATFS).body;
  assert.equal(fs.u32(), 0x01021997);
  assert.ok(fs.u32() > 0);
  ok(await g.rpc(P9.TCLUNK, (w) => w.u32(fid)), P9.RCLUNK);
  assert.equal(errno(await g.rpc(P9.TCLUNK, (w) => w.u32(fid))), E.EBADF);
  assert.equal(g.device.counters.bytesWritten, text.length);
  assert.ok(g.device.counters.requests.write === 1 && g.device.counters.requests.lcreate === 1);
});

test("directories and names: mkdir, readdir, symlink, readlink, link, rename, renameat, unlinkat, remove", async () => {
  const { share } = tempShare();
  writeFileSync(join(share, "a.txt"), "A");
  const g = await guestOn(share);
  await g.mount();
  const rootDir = (await g.walk([])).fid;
  const sub = readQid(ok(await g.rpc(P9.TMKDIR, (w) => w.u32(0).str("sub").u32(0o755).u32(0)), P9.RMKDIR).body);
  assert.equal(sub.type, P9_QTDIR);
  assert.ok(statSync(join(share, "sub")).isDirectory());
  const link = readQid(ok(await g.rpc(P9.TSYMLINK, (w) => w.u32(0).str("ln").str("a.txt").u32(0)), P9.RSYMLINK).body);
  assert.equal(link.type, P9_QTSYMLINK);
  assert.equal(readlinkSync(join(share, "ln")), "a.txt");
  const lnFid = (await g.walk(["ln"])).fid;
  assert.equal(ok(await g.rpc(P9.TREADLINK, (w) => w.u32(lnFid)), P9.RREADLINK).body.str(), "a.txt");
  const aFid = (await g.walk(["a.txt"])).fid;
  assert.equal(errno(await g.rpc(P9.TREADLINK, (w) => w.u32(aFid))), E.EINVAL);
  ok(await g.rpc(P9.TLINK, (w) => w.u32(0).u32(aFid).str("hard")), P9.RLINK);
  assert.equal(statSync(join(share, "hard")).ino, statSync(join(share, "a.txt")).ino);

  ok(await lopen(g, rootDir, P9_DOTL_RDONLY | P9_DOTL_DIRECTORY), P9.RLOPEN);
  assert.deepEqual((await readdirNames(g, rootDir)).sort(), [".", "..", "a.txt", "hard", "ln", "sub"]);

  // Trenameat moves a.txt into sub; a fid of it follows along.
  const subFid = (await g.walk(["sub"])).fid;
  ok(await g.rpc(P9.TRENAMEAT, (w) => w.u32(0).str("a.txt").u32(subFid).str("b.txt")), P9.RRENAMEAT);
  assert.equal(readFileSync(join(share, "sub", "b.txt"), "utf8"), "A");
  ok(await lopen(g, aFid, P9_DOTL_RDONLY), P9.RLOPEN);
  assert.equal(new TextDecoder().decode(readData(await read(g, aFid, 0, 10))), "A");
  // Trename (fid, new dir, new name).
  ok(await g.rpc(P9.TRENAME, (w) => w.u32(subFid).u32(0).str("sub2")), P9.RRENAME);
  assert.ok(existsSync(join(share, "sub2", "b.txt")));
  assert.equal(errno(await g.rpc(P9.TUNLINKAT, (w) => w.u32(0).str("sub2").u32(0))), E.EISDIR);
  assert.equal(errno(await g.rpc(P9.TUNLINKAT, (w) => w.u32(0).str("sub2").u32(P9_AT_REMOVEDIR))), E.ENOTEMPTY);
  ok(await g.rpc(P9.TUNLINKAT, (w) => w.u32(subFid).str("b.txt").u32(0)), P9.RUNLINKAT);
  const hardFid = (await g.walk(["hard"])).fid;
  ok(await g.rpc(P9.TREMOVE, (w) => w.u32(hardFid)), P9.RREMOVE);
  assert.equal(existsSync(join(share, "hard")), false);
  assert.equal(errno(await g.rpc(P9.TCLUNK, (w) => w.u32(hardFid))), E.EBADF, "Tremove clunked the fid");
  ok(await g.rpc(P9.TUNLINKAT, (w) => w.u32(0).str("sub2").u32(P9_AT_REMOVEDIR)), P9.RUNLINKAT);
  assert.equal(errno(await g.rpc(P9.TREMOVE, (w) => w.u32(0))), E.EBUSY, "the root stays");
});

test("xattrs, locks, mknod and flush answer as documented", async () => {
  const { share } = tempShare();
  const g = await guestOn(share);
  await g.mount();
  assert.equal(errno(await g.rpc(P9.TXATTRWALK, (w) => w.u32(0).u32(50).str("user.x"))), E.EOPNOTSUPP);
  assert.equal(errno(await g.rpc(P9.TXATTRCREATE, (w) => w.u32(0).str("user.x").u64(3).u32(0))), E.EOPNOTSUPP);
  assert.equal(ok(await g.rpc(P9.TLOCK, (w) => w.u32(0).u8(1).u32(0).u64(0).u64(0).u32(7).str("guest")), P9.RLOCK).body.u8(), 0);
  const gl = ok(await g.rpc(P9.TGETLOCK, (w) => w.u32(0).u8(1).u64(5).u64(6).u32(7).str("guest")), P9.RGETLOCK).body;
  assert.equal(gl.u8(), P9_LOCK_TYPE_UNLCK);
  assert.equal(errno(await g.rpc(P9.TMKNOD, (w) => w.u32(0).str("dev").u32(S_IFCHR | 0o600).u32(1).u32(3).u32(0))), E.EPERM);
  assert.equal(errno(await g.rpc(P9.TMKNOD, (w) => w.u32(0).str("fifo").u32(S_IFIFO | 0o600).u32(0).u32(0).u32(0))), E.EOPNOTSUPP);
  assert.deepEqual(readdirSync(share), []);
  ok(await g.rpc(P9.TFLUSH, (w) => w.u16(1234)), P9.RFLUSH);
  assert.equal(errno(await g.rpc(P9.TAUTH, (w) => w.u32(9).str("u").str("").u32(0))), E.EOPNOTSUPP);
});

test("escapes: .. at the root, bad names, links out of the share, renames out of it", async () => {
  const { share, outside, base } = tempShare();
  symlinkSync("/etc/hostname", join(share, "abs-link"));
  symlinkSync(outside, join(share, "dir-link"));
  symlinkSync("../outside/secret", join(share, "rel-link"));
  const g = await guestOn(share);
  const root = readQid(ok(await g.mount(), P9.RATTACH).body);

  // ".." at the root is the root.
  const up = ok((await g.walk(["..", "..", ".."])).reply, P9.RWALK).body;
  assert.equal(up.u16(), 3);
  for (let i = 0; i < 3; i++) assert.deepEqual(readQid(up), root);
  // Names with "/" or NUL, or "." / ".." where a new name is wanted.
  assert.equal(errno((await g.walk(["../outside"])).reply), E.EINVAL);
  assert.equal(errno((await g.walk(["a\0b"])).reply), E.EINVAL);
  for (const name of ["..", ".", "", "x/y", "../outside/new"]) {
    assert.equal(errno(await lcreate(g, (await g.walk([])).fid, name)), E.EINVAL, name);
    assert.equal(errno(await g.rpc(P9.TMKDIR, (w) => w.u32(0).str(name).u32(0o755).u32(0))), E.EINVAL, name);
  }
  // An absolute link: walked to, it is a link; opened, it is never followed.
  const abs = await g.walk(["abs-link"]);
  const absWalk = ok(abs.reply, P9.RWALK).body;
  assert.equal(absWalk.u16(), 1);
  assert.equal(readQid(absWalk).type, P9_QTSYMLINK);
  assert.equal(errno(await lopen(g, abs.fid, P9_DOTL_RDONLY)), E.ELOOP);
  const rel = await g.walk(["rel-link"]);
  assert.equal(errno(await lopen(g, rel.fid, P9_DOTL_RDONLY)), E.ELOOP);
  // Through a link to a directory outside: the walk stops at the link.
  const through = ok((await g.walk(["dir-link", "secret"])).reply, P9.RWALK);
  assert.equal(through.body.u16(), 1, "only the link itself was walked");
  // A fid of the link used as a directory: nothing is made outside, nothing listed from there.
  const dirLink = (await g.walk(["dir-link"])).fid;
  assert.equal(errno(await lcreate(g, dirLink, "planted")), E.ENOTDIR);
  assert.equal(errno(await g.rpc(P9.TMKDIR, (w) => w.u32(dirLink).str("planted-dir").u32(0o755).u32(0))), E.ENOTDIR);
  assert.equal(errno(await g.rpc(P9.TSYMLINK, (w) => w.u32(dirLink).str("planted-ln").str("x").u32(0))), E.ENOTDIR);
  assert.equal(errno(await g.rpc(P9.TLINK, (w) => w.u32(dirLink).u32(0).str("planted-hard"))), E.ENOTDIR);
  assert.equal(errno(await lopen(g, dirLink, P9_DOTL_RDONLY | P9_DOTL_DIRECTORY)), E.ELOOP);
  assert.equal(errno((await g.walk(["secret"], dirLink)).reply), E.ENOTDIR);
  assert.deepEqual(readdirSync(outside), ["secret"]);
  // A link the guest makes to "/" and then walks through.
  ok(await g.rpc(P9.TSYMLINK, (w) => w.u32(0).str("x").str("/").u32(0)), P9.RSYMLINK);
  assert.equal(ok((await g.walk(["x", "etc", "hostname"])).reply, P9.RWALK).body.u16(), 1);
  assert.equal(errno(await lopen(g, (await g.walk(["x"])).fid, P9_DOTL_RDONLY | P9_DOTL_DIRECTORY)), E.ELOOP);
  assert.equal(errno(await g.rpc(P9.TREADDIR, (w) => w.u32((g.nextFid - 1)).u64(0).u32(100))), E.EBADF, "a link is never listed");
  // A hard link of a link to outside is a link (link(2) does not follow), never the outside file.
  const relFid = (await g.walk(["rel-link"])).fid;
  ok(await g.rpc(P9.TLINK, (w) => w.u32(0).u32(relFid).str("hard-of-link")), P9.RLINK);
  assert.ok(lstatSync(join(share, "hard-of-link")).isSymbolicLink());
  assert.equal(lstatSync(join(outside, "secret")).nlink, 1);
  // Renames can only name places inside: a name with "/" is refused, a fid of a link is not a directory.
  writeFileSync(join(share, "f"), "f");
  assert.equal(errno(await g.rpc(P9.TRENAMEAT, (w) => w.u32(0).str("f").u32(0).str("../outside/f"))), E.EINVAL);
  assert.equal(errno(await g.rpc(P9.TRENAMEAT, (w) => w.u32(0).str("f").u32(dirLink).str("f"))), E.ENOTDIR);
  const fFid = (await g.walk(["f"])).fid;
  assert.equal(errno(await g.rpc(P9.TRENAME, (w) => w.u32(fFid).u32(dirLink).str("f"))), E.ENOTDIR);
  assert.deepEqual(readdirSync(outside), ["secret"]);
  assert.ok(existsSync(join(share, "f")));
  // Truncate and chmod through a link fid do not reach the target.
  const secretSize = statSync(join(outside, "secret")).size;
  const setSize = (fid: number) => g.rpc(P9.TSETATTR, (w) => w.u32(fid).u32(P9_ATTR_SIZE).u32(0).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0));
  assert.equal(errno(await setSize(relFid)), E.EINVAL);
  assert.equal(statSync(join(outside, "secret")).size, secretSize);
  rmSync(base, { recursive: true });
});

test("a read-only share refuses every change with EROFS", async () => {
  const { share } = tempShare();
  writeFileSync(join(share, "f"), "data");
  const g = await guestOn(share, true);
  await g.mount();
  const f = (await g.walk(["f"])).fid;
  assert.equal(errno(await lopen(g, f, P9_DOTL_WRONLY)), E.EROFS);
  assert.equal(errno(await lopen(g, f, P9_DOTL_RDWR)), E.EROFS);
  assert.equal(errno(await lcreate(g, (await g.walk([])).fid, "new")), E.EROFS);
  assert.equal(errno(await g.rpc(P9.TMKDIR, (w) => w.u32(0).str("d").u32(0o755).u32(0))), E.EROFS);
  assert.equal(errno(await g.rpc(P9.TSYMLINK, (w) => w.u32(0).str("l").str("f").u32(0))), E.EROFS);
  assert.equal(errno(await g.rpc(P9.TUNLINKAT, (w) => w.u32(0).str("f").u32(0))), E.EROFS);
  assert.equal(errno(await g.rpc(P9.TRENAMEAT, (w) => w.u32(0).str("f").u32(0).str("g"))), E.EROFS);
  assert.equal(errno(await g.rpc(P9.TLINK, (w) => w.u32(0).u32(f).str("h"))), E.EROFS);
  assert.equal(errno(await g.rpc(P9.TSETATTR, (w) => w.u32(f).u32(P9_ATTR_SIZE).u32(0).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0))), E.EROFS);
  assert.equal(errno(await g.rpc(P9.TREMOVE, (w) => w.u32(f))), E.EROFS);
  const f2 = (await g.walk(["f"])).fid;
  ok(await lopen(g, f2, P9_DOTL_RDONLY), P9.RLOPEN);
  assert.equal(errno(await write(g, f2, 0, new Uint8Array([1]))), E.EROFS);
  assert.equal(new TextDecoder().decode(readData(await read(g, f2, 0, 100))), "data");
  assert.equal(readFileSync(join(share, "f"), "utf8"), "data");
  assert.deepEqual(readdirSync(share), ["f"]);
});

test("reads and writes larger than msize are split by the client; the server never exceeds msize or the buffers", async () => {
  const { share } = tempShare();
  const big = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
  writeFileSync(join(share, "big"), big);
  const g = await guestOn(share);
  await g.mount(8192);
  const f = (await g.walk(["big"])).fid;
  ok(await lopen(g, f, P9_DOTL_RDWR), P9.RLOPEN);
  // A Tread asking for more than msize allows gets msize - 11 bytes.
  const first = readData(await read(g, f, 0, 100_000, 200_000));
  assert.equal(first.length, 8192 - 11);
  assert.deepEqual(first, big.subarray(0, 8181));
  // Smaller writable room than msize: limited by it; split over several buffers, the bytes land in order.
  const piece = readData(await read(g, f, 1000, 5000, 3011, 7));
  assert.deepEqual(piece, big.subarray(1000, 4000));
  // Reading the whole file in msize pieces gives back every byte.
  const back = new Uint8Array(big.length);
  for (let at = 0; at < big.length; ) {
    const d = readData(await read(g, f, at, 8181));
    back.set(d, at);
    at += d.length;
  }
  assert.deepEqual(back, big);
  // A Twrite larger than msize is not even read: the chain comes back empty.
  const tooBig = tmsg(P9.TWRITE, 9, (w) => w.u32(f).u64(0).u32(9000).data(new Uint8Array(9000)));
  assert.equal((await g.raw([tooBig], [64])).length, 0);
  assert.equal(g.device.counters.malformedChains, 1);
  // The largest Twrite that fits, over several readable buffers.
  const data = new Uint8Array(8192 - P9_TWRITE_HEADER_SIZE).fill(0x5a);
  const msg = tmsg(P9.TWRITE, 10, (w) => w.u32(f).u64(50_000).u32(data.length).data(data));
  const reply = (await g.raw([msg.subarray(0, 11), msg.subarray(11, 4000), msg.subarray(4000)], [64]));
  assert.equal(new DataView(reply.buffer, reply.byteOffset).getUint32(7, true), data.length);
  assert.deepEqual(new Uint8Array(readFileSync(join(share, "big")).subarray(50_000, 50_000 + data.length)), data);
});

test("malformed messages get Rlerror EPROTO / EINVAL / EOPNOTSUPP with their tag, and the device goes on", async () => {
  const { share } = tempShare();
  const g = await guestOn(share);
  await g.mount();
  const cases: [Uint8Array, number][] = [
    [tmsg(P9.TWALK, 77, (w) => w.u32(0).u32(5).u16(2).str("a")), E.EPROTO], // ends early
    [tmsg(P9.TCLUNK, 77, (w) => w.u32(0).u8(1)), E.EPROTO], // a byte too many
    [tmsg(P9.TWALK, 77, (w) => w.u32(0).u32(5).u16(17)), E.EINVAL], // more than 16 names
    [tmsg(P9.TWALK, 77, (w) => w.u32(0).u32(5).u16(1).u16(2).data(new Uint8Array([0xff, 0xfe]))), E.EINVAL], // not UTF-8
    [tmsg(112, 77, (w) => w.u32(0).u8(0)), E.EOPNOTSUPP], // legacy Topen
  ];
  for (const [message, expected] of cases) {
    const reply = await g.raw([message], [64]);
    const view = new DataView(reply.buffer, reply.byteOffset);
    assert.equal(reply[4], P9.RLERROR);
    assert.equal(view.getUint16(5, true), 77);
    assert.equal(view.getUint32(7, true), expected);
  }
  // A size field larger than the chain, smaller than a header, or no room for any reply.
  const lying = tmsg(P9.TCLUNK, 1, (w) => w.u32(0));
  new DataView(lying.buffer).setUint32(0, 4000, true);
  assert.equal((await g.raw([lying], [64])).length, 0);
  assert.equal((await g.raw([new Uint8Array([3, 0, 0, 0, 120, 0, 0])], [64])).length, 0);
  assert.equal((await g.raw([tmsg(P9.TSTATFS, 3, (w) => w.u32(0))], [5])).length, 0);
  ok(await g.rpc(P9.TGETATTR, (w) => w.u32(0).u64(0x7ff)), P9.RGETATTR);
});

test("snapshot: fids survive as paths and open flags; an open file is reopened when next used", async () => {
  const { share } = tempShare();
  writeFileSync(join(share, "keep"), "kept across a snapshot");
  const g = await guestOn(share);
  await g.mount();
  const f = (await g.walk(["keep"])).fid;
  ok(await lopen(g, f, P9_DOTL_RDONLY), P9.RLOPEN);
  await g.device.quiesce();
  const state = JSON.parse(JSON.stringify(g.device.saveState()));
  assert.equal(state.server.fids.length, 2);

  const g2 = await guestOn(share);
  g2.device.restoreState(state);
  assert.equal(new TextDecoder().decode(readData(await read(g2, f, 5, 100))), "across a snapshot");
  assert.equal(g2.device.server.msize, 65536);
  // A bad state is refused, naming the field, and changes nothing.
  const bad = structuredClone(state);
  bad.server.fids[1].path = [".."];
  assert.throws(() => g2.device.restoreState(bad), /fids\[1\]\.path\[0\]/);
  assert.equal(new TextDecoder().decode(readData(await read(g2, f, 0, 4))), "kept");
});

test("an open file stays usable after its name is removed: getattr, read and truncate go through the descriptor", async () => {
  const { share } = tempShare();
  writeFileSync(join(share, "tmp"), "0123456789");
  const g = await guestOn(share);
  await g.mount();
  const f = (await g.walk(["tmp"])).fid;
  ok(await lopen(g, f, P9_DOTL_RDWR), P9.RLOPEN);
  ok(await g.rpc(P9.TUNLINKAT, (w) => w.u32(0).str("tmp").u32(0)), P9.RUNLINKAT);
  const attr = ok(await g.rpc(P9.TGETATTR, (w) => w.u32(f).u64(0x7ff)), P9.RGETATTR).body;
  attr.u64();
  readQid(attr);
  attr.u32();
  attr.u32();
  attr.u32();
  assert.equal(attr.u64(), 0n, "nlink 0: unlinked");
  ok(await g.rpc(P9.TSETATTR, (w) => w.u32(f).u32(P9_ATTR_SIZE).u32(0).u32(0).u32(0).u64(4).u64(0).u64(0).u64(0).u64(0)), P9.RSETATTR);
  assert.equal(new TextDecoder().decode(readData(await read(g, f, 0, 100))), "0123");
  // A walk onto the same fid with no names changes nothing, an open fid included.
  ok((await g.rpc(P9.TWALK, (w) => w.u32(f).u32(f).u16(0))), P9.RWALK);
  assert.equal(new TextDecoder().decode(readData(await read(g, f, 1, 2))), "12");
});

test("path operations run one at a time (the guest cannot race its own checks); Tflush answers after the request it names", async () => {
  const { share } = tempShare();
  writeFileSync(join(share, "f"), "data");
  const real = await openShareDir(share);
  let active = 0;
  let most = 0;
  // Every backend call takes a few event-loop turns, and the path ones are watched for overlap.
  const slow = new Proxy(real, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        const pathCall = !["read", "write", "fsync", "close", "fstat", "ftruncate"].includes(String(key));
        if (pathCall) most = Math.max(most, ++active);
        try {
          for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
          return await value.apply(target, args);
        } finally {
          if (pathCall) active--;
        }
      };
    },
  });
  const g = new NinepGuest({ backend: slow, tag: "t" });
  await g.mount();
  const requests = [
    tmsg(P9.TMKDIR, 11, (w) => w.u32(0).str("d1").u32(0o755).u32(0)),
    tmsg(P9.TGETATTR, 12, (w) => w.u32(0).u64(0x7ff)),
    tmsg(P9.TMKDIR, 13, (w) => w.u32(0).str("d2").u32(0o755).u32(0)),
    tmsg(P9.TWALK, 14, (w) => w.u32(0).u32(40).u16(1).str("f")),
    tmsg(P9.TFLUSH, 15, (w) => w.u16(13)),
  ];
  const ids = requests.map((m) => g.driver.add([m], [256]).id);
  mmioWrite(g.transport, R.QueueNotify, 0);
  const done: number[] = [];
  while (done.length < requests.length) {
    for (const u of g.driver.used()) done.push(u.id);
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(most, 1, "never two path operations at once");
  assert.ok(done.indexOf(ids[4]) > done.indexOf(ids[2]), "Rflush after the flushed request's reply");
  assert.ok(statSync(join(share, "d1")).isDirectory() && statSync(join(share, "d2")).isDirectory());
});

test("a guest cannot make the host hold unbounded fids or open files (ENFILE, EMFILE)", async () => {
  const { share } = tempShare();
  writeFileSync(join(share, "f"), "x");
  const g = new NinepGuest({ backend: await openShareDir(share), tag: "t", maxFids: 4, maxOpenFiles: 2 });
  await g.mount();
  const fids: number[] = [];
  for (let i = 0; i < 3; i++) fids.push((await g.walk(["f"])).fid);
  assert.equal(errno((await g.walk(["f"])).reply), E.ENFILE);
  ok(await lopen(g, fids[0], P9_DOTL_RDONLY), P9.RLOPEN);
  ok(await lopen(g, fids[1], P9_DOTL_RDONLY), P9.RLOPEN);
  assert.equal(errno(await lopen(g, fids[2], P9_DOTL_RDONLY)), E.EMFILE);
  ok(await g.rpc(P9.TCLUNK, (w) => w.u32(fids[0])), P9.RCLUNK);
  ok(await lopen(g, fids[2], P9_DOTL_RDONLY), P9.RLOPEN); // a clunk gave the open file back
  ok((await g.walk(["f"])).reply, P9.RWALK);
});

test("Tflush naming itself, or flushes naming each other, are answered at once", async () => {
  const { share } = tempShare();
  const g = await guestOn(share);
  await g.mount();
  const own = tmsg(P9.TFLUSH, 21, (w) => w.u16(21));
  assert.equal((await g.raw([own], [64]))[4], P9.RFLUSH);
  const a = g.driver.add([tmsg(P9.TFLUSH, 31, (w) => w.u16(32))], [64]).id;
  const b = g.driver.add([tmsg(P9.TFLUSH, 32, (w) => w.u16(31))], [64]).id;
  mmioWrite(g.transport, R.QueueNotify, 0);
  const done = new Set<number>();
  while (done.size < 2) {
    for (const u of g.driver.used()) done.add(u.id);
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual([...done].sort(), [a, b].sort());
  await g.device.quiesce();
});
