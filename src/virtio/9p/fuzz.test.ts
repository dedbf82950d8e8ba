// A hostile guest's 9P messages: random bytes and mutations of valid messages never make the parser
// throw, and never make the server (on a real temporary folder) reject, hang or touch anything
// outside the share.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, readdirSync, readFileSync, symlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseMessage, P9Reader } from "./codec.ts";
import { NinepServer } from "./server.ts";
import { P9, P9_NOFID } from "./spec.ts";
import { NinepGuest, tmsg } from "../testing/ninep.ts";
import { openShareDir } from "../../host/node/share-dir.ts";
import { prngInt } from "../../testing/fakes.ts";


/** Valid messages of every kind, over fids 0..3 and a few names. */
function seeds(): Uint8Array[] {
  const names = ["a", "b", "..", "d", "l"];
  return [
    tmsg(P9.TVERSION, 0xffff, (w) => w.u32(8192).str("9P2000.L")),
    tmsg(P9.TATTACH, 1, (w) => w.u32(0).u32(P9_NOFID).str("u").str("").u32(0)),
    tmsg(P9.TWALK, 2, (w) => w.u32(0).u32(1).u16(2).str("d").str("a")),
    tmsg(P9.TWALK, 2, (w) => w.u32(0).u32(2).u16(1).str("l")),
    tmsg(P9.TLOPEN, 3, (w) => w.u32(1).u32(2)),
    tmsg(P9.TLCREATE, 4, (w) => w.u32(2).str("new").u32(0o102).u32(0o644).u32(0)),
    tmsg(P9.TREAD, 5, (w) => w.u32(1).u64(0).u32(4096)),
    tmsg(P9.TWRITE, 6, (w) => w.u32(1).u64(3).u32(5).data(new Uint8Array([1, 2, 3, 4, 5]))),
    tmsg(P9.TREADDIR, 7, (w) => w.u32(0).u64(0).u32(512)),
    tmsg(P9.TGETATTR, 8, (w) => w.u32(1).u64(0x7ff)),
    tmsg(P9.TSETATTR, 9, (w) => w.u32(1).u32(0x1ff).u32(0o600).u32(0).u32(0).u64(2).u64(1).u64(0).u64(1).u64(0)),
    tmsg(P9.TMKDIR, 10, (w) => w.u32(0).str(names[3]).u32(0o755).u32(0)),
    tmsg(P9.TSYMLINK, 11, (w) => w.u32(0).str("l").str("/etc").u32(0)),
    tmsg(P9.TRENAMEAT, 12, (w) => w.u32(0).str("a").u32(1).str("b")),
    tmsg(P9.TUNLINKAT, 13, (w) => w.u32(0).str("b").u32(0)),
    tmsg(P9.TLINK, 14, (w) => w.u32(0).u32(1).str("h")),
    tmsg(P9.TRENAME, 15, (w) => w.u32(1).u32(0).str("c")),
    tmsg(P9.TREADLINK, 16, (w) => w.u32(2)),
    tmsg(P9.TSTATFS, 17, (w) => w.u32(0)),
    tmsg(P9.TFSYNC, 18, (w) => w.u32(1).u32(1)),
    tmsg(P9.TCLUNK, 19, (w) => w.u32(1)),
    tmsg(P9.TREMOVE, 20, (w) => w.u32(3)),
    tmsg(P9.TFLUSH, 21, (w) => w.u16(5)),
    tmsg(P9.TXATTRWALK, 22, (w) => w.u32(0).u32(3).str("")),
    tmsg(P9.TLOCK, 23, (w) => w.u32(1).u8(1).u32(0).u64(0).u64(0).u32(1).str("c")),
    tmsg(P9.TGETLOCK, 24, (w) => w.u32(1).u8(1).u64(0).u64(0).u32(1).str("c")),
    tmsg(P9.TMKNOD, 25, (w) => w.u32(0).str("n").u32(0o10644).u32(0).u32(0).u32(0)),
  ];
}

function mutate(r: (n: number) => number, message: Uint8Array): Uint8Array {
  const out = new Uint8Array(message.length + (r(4) === 0 ? r(8) : 0) - (r(4) === 0 ? Math.min(message.length, r(8)) : 0));
  out.set(message.subarray(0, out.length));
  for (let i = r(4); i > 0; i--) if (out.length > 0) out[r(out.length)] = r(256);
  // Usually keep the size field honest so that the body parsers are reached.
  if (out.length >= 4 && r(3) !== 0) new DataView(out.buffer).setUint32(0, out.length, true);
  return out;
}

test("parseMessage never throws, and every valid seed parses to its own kind", () => {
  for (const seed of seeds()) {
    const parsed = parseMessage(seed);
    assert.ok(parsed && "request" in parsed, `seed type ${seed[4]}`);
  }
  const r = prngInt(11);
  for (let i = 0; i < 50_000; i++) {
    const base = seeds()[r(27)];
    const bytes = r(5) === 0 ? Uint8Array.from({ length: r(80) }, () => r(256)) : mutate(r, base);
    const parsed = parseMessage(bytes);
    if (parsed && "error" in parsed) assert.ok(parsed.error.errno > 0);
  }
});

test("P9Reader refuses reads past the end with EPROTO", () => {
  const r = new P9Reader(new Uint8Array([1, 2, 3]));
  assert.equal(r.u16(), 0x201);
  assert.throws(() => r.u16(), (e: Error & { errno?: number }) => e.errno === 71);
});

test("fuzz: random and mutated messages against a real folder never reject and never reach outside", async () => {
  const base = mkdtempSync(join(tmpdir(), "parley-9p-fuzz-"));
  const share = join(base, "share");
  const outside = join(base, "outside");
  mkdirSync(join(share, "d"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(share, "a"), "aaaa");
  writeFileSync(join(outside, "secret"), "secret");
  symlinkSync(outside, join(share, "out"));
  symlinkSync(join(outside, "secret"), join(share, "sec"));
  for (const readOnly of [false, true]) {
    const server = new NinepServer(await openShareDir(share, { readOnly }), { maxMsize: 16384 });
    const r = prngInt(readOnly ? 5 : 3);
    const all = seeds();
    // A walk through the links, so that fids of them exist for the mutations to use.
    await server.handle(all[0], 16384);
    await server.handle(all[1], 16384);
    await server.handle(tmsg(P9.TWALK, 3, (w) => w.u32(0).u32(3).u16(1).str("out")), 16384);
    await server.handle(tmsg(P9.TWALK, 3, (w) => w.u32(0).u32(2).u16(1).str("sec")), 16384);
    for (let i = 0; i < 3000; i++) {
      const message = r(6) === 0 ? Uint8Array.from({ length: r(60) }, () => r(256)) : mutate(r, all[r(all.length)]);
      const limit = r(3) === 0 ? r(200) : 16384;
      const reply = await server.handle(message, limit);
      if (reply) assert.ok(reply.length <= limit && reply.length >= 7);
    }
  }
  assert.deepEqual(readdirSync(outside), ["secret"]);
  assert.equal(readFileSync(join(outside, "secret"), "utf8"), "secret");
  rmSync(base, { recursive: true, force: true });
});

test("fuzz: random chains through the device (split anywhere, any reply room) always come back, within their buffers", async () => {
  const base = mkdtempSync(join(tmpdir(), "parley-9p-fuzz-dev-"));
  writeFileSync(join(base, "a"), "aaaa");
  const g = new NinepGuest({ backend: await openShareDir(base), tag: "fuzz", maxMsize: 8192 });
  await g.mount(8192);
  const r = prngInt(21);
  const all = seeds();
  for (let i = 0; i < 400; i++) {
    const message = r(5) === 0 ? Uint8Array.from({ length: r(40) }, () => r(256)) : mutate(r, all[r(all.length)]);
    // The message split over up to 4 readable buffers, the reply room over up to 3 writable ones.
    const cuts = [0, ...Array.from({ length: r(4) }, () => r(message.length + 1)).sort((a, b) => a - b), message.length];
    const out = cuts.slice(1).map((end, k) => message.subarray(cuts[k], end)).filter((b) => b.length > 0);
    const inLens = Array.from({ length: 1 + r(3) }, () => r(300));
    if (out.length === 0 || inLens.every((n) => n === 0)) continue;
    const reply = await g.raw(out, inLens);
    assert.ok(reply.length <= inLens.reduce((a, b) => a + b, 0));
    if (reply.length > 0) assert.equal(new DataView(reply.buffer, reply.byteOffset).getUint32(0, true), reply.length);
  }
  assert.equal(g.device.counters.inFlight, 0);
  rmSync(base, { recursive: true, force: true });
});
