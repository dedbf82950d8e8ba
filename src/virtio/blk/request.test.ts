import { test } from "node:test";
import assert from "node:assert/strict";
import { checkSectorRange, parseRequest } from "./request.ts";
import type { BlkParseResult, BlkRequestLimits } from "./request.ts";
import {
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_GET_LIFETIME,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_SECURE_ERASE,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from "./spec.ts";
import { FakeDriver, segments, type RequestSpec } from "../testing/blk.ts";
import { makeChain } from "../testing/fake-queue.ts";
import { FAKE_RAM_BASE as RAM_BASE, FakeGuestMemory } from "../../testing/fakes.ts";

const CAPACITY = 2048; // sectors: a 1 MiB disk

const LIMITS: BlkRequestLimits = {
  capacitySectors: CAPACITY,
  readOnly: false,
  discard: true,
  writeZeroes: true,
  maxDiscardSectors: 1024,
  maxDiscardSeg: 4,
  maxWriteZeroesSectors: 1024,
  maxWriteZeroesSeg: 4,
};

function parse(spec: RequestSpec, limits: Partial<BlkRequestLimits> = {}): BlkParseResult {
  const memory = new FakeGuestMemory(1 << 20);
  const driver = new FakeDriver(memory);
  const { chain } = driver.request(spec);
  return parseRequest(chain, memory, { ...LIMITS, ...limits });
}

function expectReject(result: BlkParseResult, status: number, reason?: RegExp): void {
  assert.equal(result.kind, "reject", JSON.stringify(result));
  if (result.kind !== "reject") return;
  assert.equal(result.status, status, result.reason);
  if (reason) assert.match(result.reason, reason);
}

const out = (n: number) => new Uint8Array(n).fill(0xab);

test("checkSectorRange is exact and overflow-safe", () => {
  assert.equal(checkSectorRange(0, 0, 0, 0), 0);
  assert.equal(checkSectorRange(0, 0, 512, 0), undefined);
  assert.equal(checkSectorRange(2047, 0, 512, 2048), 2047);
  assert.equal(checkSectorRange(2047, 0, 1024, 2048), undefined);
  assert.equal(checkSectorRange(2048, 0, 0, 2048), 2048, "an empty range at the very end is inside");
  assert.equal(checkSectorRange(2049, 0, 0, 2048), undefined);
  assert.equal(checkSectorRange(0xffffffff, 0xffffffff, 512, 2048), undefined);
  // sector * 512 would overflow 2^64 / 2^53: must not wrap into range.
  assert.equal(checkSectorRange(0, 0x0080_0000, 512, 2048), undefined);
  assert.equal(checkSectorRange(0, 0x1f_ffff, 0, 2 ** 44), undefined);
  const big = 2 ** 44; // 8 PiB disk, the largest with a safe byte size
  assert.equal(checkSectorRange(0, 0xfff, 512, big), 0xfff * 2 ** 32);
  assert.equal(checkSectorRange(0, 0x1000, 0, big), big);
  assert.equal(checkSectorRange(0, 0x1000, 512, big), undefined);
  assert.equal(checkSectorRange(0xffff_ffff, 0xfff, 512, big), big - 1);
  assert.equal(checkSectorRange(0, 0x1000, 1024, big), undefined);
});

test("IN: data is the writable part minus the status byte", () => {
  const r = parse({ type: VIRTIO_BLK_T_IN, sector: 3, inLen: 1024 });
  assert.equal(r.kind, "request");
  if (r.kind !== "request" || r.request.type !== VIRTIO_BLK_T_IN) return;
  assert.equal(r.request.sector, 3);
  assert.equal(r.request.offset, 3 * 512);
  assert.equal(r.request.length, 1024);
  assert.equal(r.request.data.reduce((s, b) => s + b.len, 0), 1024);
});

test("IN with the status byte sharing the data buffer, and everything split in 7-byte buffers", () => {
  for (const spec of [
    { type: VIRTIO_BLK_T_IN, sector: 1, inLen: 512, statusWithData: true },
    { type: VIRTIO_BLK_T_IN, sector: 1, inLen: 512, split: 7 },
    { type: VIRTIO_BLK_T_IN, sector: 1, inLen: 512, split: 7, statusWithData: true },
  ]) {
    const r = parse(spec);
    assert.equal(r.kind, "request", JSON.stringify(spec));
    if (r.kind !== "request" || r.request.type !== VIRTIO_BLK_T_IN) continue;
    assert.equal(r.request.length, 512);
    assert.equal(r.request.data.reduce((s, b) => s + b.len, 0), 512);
  }
});

test("header spanning several buffers is read correctly", () => {
  const r = parse({ type: VIRTIO_BLK_T_OUT, sector: 0x7ff, out: out(512), split: 3 });
  assert.equal(r.kind, "request");
  if (r.kind === "request" && r.request.type === VIRTIO_BLK_T_OUT) {
    assert.equal(r.request.sector, 0x7ff);
    assert.equal(r.request.length, 512);
  }
});

test("IN/OUT validation table", () => {
  const cases: [string, RequestSpec, Partial<BlkRequestLimits>, number, RegExp][] = [
    ["read length not a multiple of 512", { type: VIRTIO_BLK_T_IN, inLen: 100 }, {}, VIRTIO_BLK_S_IOERR, /multiple of 512/],
    ["read past capacity", { type: VIRTIO_BLK_T_IN, sector: CAPACITY - 1, inLen: 1024 }, {}, VIRTIO_BLK_S_IOERR, /capacity/],
    ["read at huge sector", { type: VIRTIO_BLK_T_IN, sector: 0xffff_ffff_ffff_ffffn, inLen: 512 }, {}, VIRTIO_BLK_S_IOERR, /capacity/],
    ["read with readable data", { type: VIRTIO_BLK_T_IN, out: out(512), inLen: 512 }, {}, VIRTIO_BLK_S_IOERR, /readable/],
    ["write length not a multiple of 512", { type: VIRTIO_BLK_T_OUT, out: out(513) }, {}, VIRTIO_BLK_S_IOERR, /multiple of 512/],
    ["write past capacity", { type: VIRTIO_BLK_T_OUT, sector: CAPACITY, out: out(512) }, {}, VIRTIO_BLK_S_IOERR, /capacity/],
    ["write with writable data", { type: VIRTIO_BLK_T_OUT, out: out(512), inLen: 512 }, {}, VIRTIO_BLK_S_IOERR, /writable/],
    ["write to read-only", { type: VIRTIO_BLK_T_OUT, out: out(512) }, { readOnly: true }, VIRTIO_BLK_S_IOERR, /read-only/],
    // "Short status buffer": a 512-byte read whose status byte eats into the data.
    ["status byte taken from the data", { type: VIRTIO_BLK_T_IN, inLen: 511 }, {}, VIRTIO_BLK_S_IOERR, /multiple of 512/],
  ];
  for (const [name, spec, limits, status, reason] of cases) {
    const r = parse(spec, limits);
    assert.equal(r.kind, "reject", name);
    expectReject(r, status, reason);
  }
  // Reads of a read-only disk are fine; the last sector is readable; empty reads are fine.
  assert.equal(parse({ type: VIRTIO_BLK_T_IN, sector: CAPACITY - 1, inLen: 512 }, { readOnly: true }).kind, "request");
  assert.equal(parse({ type: VIRTIO_BLK_T_IN, sector: CAPACITY, inLen: 0 }).kind, "request");
});

test("malformed chains: no status byte, header too short", () => {
  const missing = parse({ type: VIRTIO_BLK_T_IN, status: false });
  assert.equal(missing.kind, "malformed");
  const memory = new FakeGuestMemory(1 << 16);
  const short = makeChain(0, [{ addr: RAM_BASE, len: 15 }], [{ addr: RAM_BASE + 100, len: 1 }]);
  const r = parseRequest(short, memory, LIMITS);
  assert.equal(r.kind, "malformed");
  assert.match((r as { reason: string }).reason, /header too short/);
  const none = makeChain(0, [], []);
  assert.equal(parseRequest(none, memory, LIMITS).kind, "malformed");
});

test("malformed chains: lengths that do not add up, buffers outside RAM", () => {
  const memory = new FakeGuestMemory(1 << 16);
  const chain = { ...makeChain(0, [{ addr: RAM_BASE, len: 16 }], [{ addr: RAM_BASE + 64, len: 1 }]), writableLength: 4096 };
  assert.equal(parseRequest(chain, memory, LIMITS).kind, "malformed");
  const outside = makeChain(0, [{ addr: 0x1000, len: 16 }], [{ addr: RAM_BASE, len: 1 }]);
  assert.equal(parseRequest(outside, memory, LIMITS).kind, "malformed");
  const statusOutside = makeChain(0, [{ addr: RAM_BASE, len: 16 }], [{ addr: RAM_BASE + (1 << 16), len: 1 }]);
  assert.equal(parseRequest(statusOutside, memory, LIMITS).kind, "malformed");
  const negative = makeChain(0, [{ addr: RAM_BASE, len: -16 }], [{ addr: RAM_BASE, len: 1 }]);
  assert.equal(parseRequest(negative, memory, LIMITS).kind, "malformed");
});

test("FLUSH ignores sector and data; GET_ID needs exactly 20 bytes", () => {
  assert.deepEqual(parse({ type: VIRTIO_BLK_T_FLUSH }), {
    kind: "request",
    statusAddr: (parse({ type: VIRTIO_BLK_T_FLUSH }) as { statusAddr: number }).statusAddr,
    request: { type: VIRTIO_BLK_T_FLUSH },
  });
  assert.equal(parse({ type: VIRTIO_BLK_T_FLUSH, sector: 99, out: out(16) }).kind, "request");
  const id = parse({ type: VIRTIO_BLK_T_GET_ID, inLen: 20 });
  assert.equal(id.kind, "request");
  expectReject(parse({ type: VIRTIO_BLK_T_GET_ID, inLen: 19 }), VIRTIO_BLK_S_IOERR, /20/);
  expectReject(parse({ type: VIRTIO_BLK_T_GET_ID, inLen: 512 }), VIRTIO_BLK_S_IOERR, /20/);
  expectReject(parse({ type: VIRTIO_BLK_T_GET_ID, inLen: 20, out: out(4) }), VIRTIO_BLK_S_IOERR);
});

test("unsupported types complete with UNSUPP", () => {
  for (const type of [VIRTIO_BLK_T_GET_LIFETIME, VIRTIO_BLK_T_SECURE_ERASE, 2, 3, 5, 15, 16, 26, 0x8000_0000, 0xffff_ffff]) {
    expectReject(parse({ type, inLen: 8 }), VIRTIO_BLK_S_UNSUPP, /unsupported request type/);
  }
});

test("DISCARD / WRITE_ZEROES segments", () => {
  const ok = parse({
    type: VIRTIO_BLK_T_WRITE_ZEROES,
    out: segments({ sector: 8, numSectors: 8, flags: VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP }, { sector: 100, numSectors: 1 }),
  });
  assert.equal(ok.kind, "request");
  if (ok.kind === "request" && ok.request.type === VIRTIO_BLK_T_WRITE_ZEROES) {
    assert.deepEqual(ok.request.ranges, [
      { offset: 8 * 512, length: 8 * 512, unmap: true },
      { offset: 100 * 512, length: 512, unmap: false },
    ]);
  }
  const d = parse({ type: VIRTIO_BLK_T_DISCARD, out: segments({ sector: CAPACITY - 8, numSectors: 8 }) });
  assert.equal(d.kind, "request");
  if (d.kind === "request" && d.request.type === VIRTIO_BLK_T_DISCARD) {
    assert.deepEqual(d.request.ranges, [{ offset: (CAPACITY - 8) * 512, length: 8 * 512 }]);
  }

  const D = VIRTIO_BLK_T_DISCARD;
  const W = VIRTIO_BLK_T_WRITE_ZEROES;
  const cases: [string, RequestSpec, Partial<BlkRequestLimits>, number][] = [
    ["discard not negotiated", { type: D, out: segments({ sector: 0, numSectors: 1 }) }, { discard: false }, VIRTIO_BLK_S_UNSUPP],
    ["write zeroes not negotiated", { type: W, out: segments({ sector: 0, numSectors: 1 }) }, { writeZeroes: false }, VIRTIO_BLK_S_UNSUPP],
    ["discard with unmap", { type: D, out: segments({ sector: 0, numSectors: 1, flags: 1 }) }, {}, VIRTIO_BLK_S_UNSUPP],
    ["unknown flag", { type: W, out: segments({ sector: 0, numSectors: 1, flags: 2 }) }, {}, VIRTIO_BLK_S_UNSUPP],
    ["reserved flag bit 31", { type: D, out: segments({ sector: 0, numSectors: 1, flags: 0x8000_0000 }) }, {}, VIRTIO_BLK_S_UNSUPP],
    ["UNSUPP flag wins over a bad range elsewhere", {
      type: W,
      out: segments({ sector: 1e9, numSectors: 1 }, { sector: 0, numSectors: 1, flags: 4 }),
    }, {}, VIRTIO_BLK_S_UNSUPP],
    ["no segment", { type: D }, {}, VIRTIO_BLK_S_IOERR],
    ["partial segment", { type: D, out: out(24) }, {}, VIRTIO_BLK_S_IOERR],
    ["too many segments", {
      type: D,
      out: segments(...Array.from({ length: 5 }, () => ({ sector: 0, numSectors: 1 }))),
    }, {}, VIRTIO_BLK_S_IOERR],
    ["too many sectors", { type: W, out: segments({ sector: 0, numSectors: 1025 }) }, {}, VIRTIO_BLK_S_IOERR],
    ["past capacity", { type: W, out: segments({ sector: CAPACITY - 1, numSectors: 2 }) }, {}, VIRTIO_BLK_S_IOERR],
    ["huge sector", { type: D, out: segments({ sector: 0xffff_ffff_ffff_fff0n, numSectors: 32 }) }, {}, VIRTIO_BLK_S_IOERR],
    ["read-only", { type: W, out: segments({ sector: 0, numSectors: 1 }) }, { readOnly: true }, VIRTIO_BLK_S_IOERR],
    ["writable data", { type: D, out: segments({ sector: 0, numSectors: 1 }), inLen: 16 }, {}, VIRTIO_BLK_S_IOERR],
  ];
  for (const [name, spec, limits, status] of cases) {
    const r = parse(spec, limits);
    assert.equal(r.kind, "reject", name);
    if (r.kind === "reject") assert.equal(r.status, status, `${name}: ${r.reason}`);
  }
  // Exactly the maximum segment count is fine; zero-sector segments are a no-op.
  assert.equal(parse({ type: D, out: segments(...Array.from({ length: 4 }, (_, i) => ({ sector: i, numSectors: 0 }))) }).kind, "request");
});
