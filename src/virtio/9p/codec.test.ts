import { test } from "node:test";
import assert from "node:assert/strict";
import { P9Reader, P9Writer, encodeLerror, parseHeader, parseMessage, direntSize } from "./codec.ts";
import { checkName } from "./server.ts";
import { LINUX_ERRNO, P9, errnoOf, ShareError } from "./spec.ts";
import { tmsg } from "../testing/ninep.ts";

test("a message is size[4] type[1] tag[2] then its fields, little-endian", () => {
  const bytes = tmsg(P9.TWALK, 0x1234, (w) => w.u32(1).u32(2).u16(2).str("a").str("bé"));
  assert.deepEqual([...bytes.subarray(0, 7)], [bytes.length, 0, 0, 0, P9.TWALK, 0x34, 0x12]);
  assert.deepEqual(parseHeader(bytes), { size: bytes.length, type: P9.TWALK, tag: 0x1234 });
  assert.deepEqual(parseMessage(bytes), { tag: 0x1234, request: { kind: "walk", fid: 1, newfid: 2, names: ["a", "bé"] } });
});

test("64-bit fields and data survive a round trip", () => {
  const data = new Uint8Array([9, 8, 7]);
  const parsed = parseMessage(tmsg(P9.TWRITE, 1, (w) => w.u32(5).u64(0x1_0000_0002n).u32(3).data(data)));
  assert.ok(parsed && "request" in parsed && parsed.request.kind === "write");
  assert.equal(parsed.request.offset, 0x1_0000_0002n);
  assert.deepEqual([...parsed.request.data], [9, 8, 7]);
  const w = new P9Writer(P9.RGETATTR, 1).u64(0xffff_ffff_ffff_ffffn);
  const r = new P9Reader(w.finish(), 7);
  assert.equal(r.u64(), 0xffff_ffff_ffff_ffffn);
});

test("a size field that disagrees with the bytes is no message; a short body is EPROTO with the tag", () => {
  const bytes = tmsg(P9.TCLUNK, 3, (w) => w.u32(1));
  assert.equal(parseMessage(bytes.subarray(0, 9)), undefined);
  assert.equal(parseMessage(new Uint8Array(3)), undefined);
  const short = tmsg(P9.TCLUNK, 3, (w) => w.u16(1));
  const parsed = parseMessage(short);
  assert.ok(parsed && "error" in parsed);
  assert.equal(parsed.tag, 3);
  assert.equal(parsed.error.errno, LINUX_ERRNO.EPROTO);
});

test("Rlerror, dirent sizes and errno mapping", () => {
  assert.deepEqual([...encodeLerror(7, 2)], [11, 0, 0, 0, P9.RLERROR, 7, 0, 2, 0, 0, 0]);
  assert.equal(direntSize("é"), 13 + 8 + 1 + 2 + 2);
  assert.equal(errnoOf(Object.assign(new Error("x"), { code: "ENOENT" })), 2);
  assert.equal(errnoOf(Object.assign(new Error("x"), { code: "ENOTSUP" })), 95);
  assert.equal(errnoOf(new Error("no code")), LINUX_ERRNO.EIO);
  assert.equal(errnoOf(new ShareError("EROFS", "x")), 30);
});

test("names: no empty, '.', '..', '/', NUL, or more than 255 bytes", () => {
  for (const bad of ["", ".", "..", "a/b", "/", "a\0b"]) assert.throws(() => checkName(bad), (e: ShareError) => e.errno9p === LINUX_ERRNO.EINVAL, bad);
  assert.throws(() => checkName("é".repeat(128)), (e: ShareError) => e.errno9p === LINUX_ERRNO.ENAMETOOLONG);
  checkName("x".repeat(255));
  checkName("...");
  checkName(".hidden");
});
