// The qcow2 header parser: a fresh image parses; each kind of broken or unsupported header is
// refused with a Qcow2FormatError that says what is wrong.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hasQcow2Magic, newQcow2Image, parseQcow2Header, Qcow2FormatError } from "./header.ts";
import { getRefcount, setRefcount, decodeL2Entry, encodeL2Entry, maxRefcount } from "./tables.ts";
import * as spec from "./spec.ts";

const CLUSTER = 65536;

function image(): { bytes: Uint8Array; view: DataView } {
  const bytes = newQcow2Image(64 * 1024 * 1024);
  return { bytes, view: new DataView(bytes.buffer) };
}

function refused(bytes: Uint8Array, pattern: RegExp, fileSize = bytes.length): void {
  assert.throws(
    () => parseQcow2Header(bytes, fileSize),
    (e: unknown) => e instanceof Qcow2FormatError && pattern.test(e.message),
    `expected a Qcow2FormatError matching ${pattern}`,
  );
}

test("a new image's header parses", () => {
  const { bytes } = image();
  assert.ok(hasQcow2Magic(bytes));
  const h = parseQcow2Header(bytes, bytes.length);
  assert.equal(h.version, 3);
  assert.equal(h.clusterSize, CLUSTER);
  assert.equal(h.size, 64 * 1024 * 1024);
  assert.equal(h.l1Size, 1);
  assert.equal(h.l1TableOffset, 3 * CLUSTER);
  assert.equal(h.refcountTableOffset, CLUSTER);
  assert.equal(h.refcountOrder, 4);
  assert.equal(h.backingFile, undefined);
});

test("broken headers are refused, each with its reason", () => {
  const cases: [string, (v: DataView, b: Uint8Array) => void, RegExp][] = [
    ["bad magic", (v) => v.setUint32(spec.QCOW_HEADER_MAGIC, 0x514649fa), /not a qcow2 image/],
    ["version 1", (v) => v.setUint32(spec.QCOW_HEADER_VERSION, 1), /version 1 is not supported/],
    ["version 4", (v) => v.setUint32(spec.QCOW_HEADER_VERSION, 4), /version 4 is not supported/],
    ["cluster_bits 8", (v) => v.setUint32(spec.QCOW_HEADER_CLUSTER_BITS, 8), /cluster_bits 8 is outside 9\.\.21/],
    ["cluster_bits 22", (v) => v.setUint32(spec.QCOW_HEADER_CLUSTER_BITS, 22), /cluster_bits 22/],
    ["short header_length", (v) => v.setUint32(spec.QCOW_HEADER_HEADER_LENGTH, 100), /header_length 100/],
    ["unaligned header_length", (v) => v.setUint32(spec.QCOW_HEADER_HEADER_LENGTH, 108), /header_length 108/],
    ["refcount_order 7", (v) => v.setUint32(spec.QCOW_HEADER_REFCOUNT_ORDER, 7), /refcount_order 7 exceeds 6/],
    ["AES", (v) => v.setUint32(spec.QCOW_HEADER_CRYPT_METHOD, 1), /encrypted images \(AES\)/],
    ["LUKS", (v) => v.setUint32(spec.QCOW_HEADER_CRYPT_METHOD, 2), /encrypted images \(LUKS\)/],
    ["size overflow", (v) => v.setBigUint64(spec.QCOW_HEADER_SIZE, 1n << 62n), /virtual size \d+ is too large/],
    ["L1 too small for the size", (v) => v.setBigUint64(spec.QCOW_HEADER_SIZE, 1n << 40n), /l1_size 1 is too small/],
    ["L1 too large", (v) => v.setUint32(spec.QCOW_HEADER_L1_SIZE, 0x1000000), /l1_size 16777216 exceeds/],
    ["L1 unaligned", (v) => v.setBigUint64(spec.QCOW_HEADER_L1_TABLE_OFFSET, BigInt(3 * CLUSTER + 8)), /l1_table_offset \d+ is not aligned/],
    ["L1 past the end", (v) => v.setBigUint64(spec.QCOW_HEADER_L1_TABLE_OFFSET, BigInt(100 * CLUSTER)), /L1 table .* lies outside/],
    ["refcount table past the end", (v) => v.setBigUint64(spec.QCOW_HEADER_REFCOUNT_TABLE_OFFSET, BigInt(100 * CLUSTER)), /refcount table .* lies outside/],
    ["refcount table unaligned", (v) => v.setBigUint64(spec.QCOW_HEADER_REFCOUNT_TABLE_OFFSET, 4096n), /refcount_table_offset 4096 is not aligned/],
    ["no refcount table clusters", (v) => v.setUint32(spec.QCOW_HEADER_REFCOUNT_TABLE_CLUSTERS, 0), /refcount_table_clusters 0/],
    ["huge refcount table", (v) => v.setUint32(spec.QCOW_HEADER_REFCOUNT_TABLE_CLUSTERS, 0xffffffff), /refcount_table_clusters 4294967295/],
    ["L1 over the refcount table", (v) => v.setBigUint64(spec.QCOW_HEADER_L1_TABLE_OFFSET, BigInt(CLUSTER)), /the L1 table and the refcount table overlap/],
    ["L1 over the header", (v) => v.setBigUint64(spec.QCOW_HEADER_L1_TABLE_OFFSET, 0n), /L1 table .* lies outside/],
    ["refcount table over the header", (v) => v.setBigUint64(spec.QCOW_HEADER_REFCOUNT_TABLE_OFFSET, 0n), /refcount table .* lies outside/],
    ["backing name too long", (v) => { v.setBigUint64(spec.QCOW_HEADER_BACKING_FILE_OFFSET, 512n); v.setUint32(spec.QCOW_HEADER_BACKING_FILE_SIZE, 1024); }, /backing file name .* 1\.\.1023 bytes/],
    ["backing name outside the first cluster", (v) => { v.setBigUint64(spec.QCOW_HEADER_BACKING_FILE_OFFSET, BigInt(CLUSTER - 4)); v.setUint32(spec.QCOW_HEADER_BACKING_FILE_SIZE, 10); }, /backing file name/],
    ["extended L2", (v) => v.setBigUint64(spec.QCOW_HEADER_INCOMPATIBLE_FEATURES, spec.QCOW2_INCOMPAT_EXTL2), /extended L2 entries/],
    ["external data file", (v) => v.setBigUint64(spec.QCOW_HEADER_INCOMPATIBLE_FEATURES, spec.QCOW2_INCOMPAT_DATA_FILE), /external data files/],
    ["unknown incompatible bit", (v) => v.setBigUint64(spec.QCOW_HEADER_INCOMPATIBLE_FEATURES, 1n << 40n), /unknown incompatible features: bit 40/],
    ["extension past the header area", (v) => { v.setUint32(104, spec.QCOW2_EXT_MAGIC_BACKING_FORMAT); v.setUint32(108, 0x10000); }, /header extension 0xe2792aca .* runs past/],
    ["encryption header extension", (v) => { v.setUint32(104, spec.QCOW2_EXT_MAGIC_CRYPTO_HEADER); v.setUint32(108, 16); }, /full disk encryption/],
  ];
  for (const [name, mutate, pattern] of cases) {
    const { bytes, view } = image();
    mutate(view, bytes);
    assert.doesNotThrow(() => refused(bytes, pattern), name);
  }
});

test("truncated images are refused", () => {
  const { bytes } = image();
  refused(bytes.subarray(0, 50), /truncated: the file has 50 bytes/);
  refused(bytes.subarray(0, 80), /truncated: a version 3 header needs 104 bytes/);
  // The whole header is there but the file ends before the L1 table.
  refused(bytes, /L1 table .* lies outside the 196608-byte file/, 3 * CLUSTER);
});

test("an unknown incompatible feature is named from the feature name table", () => {
  const { bytes, view } = image();
  view.setBigUint64(spec.QCOW_HEADER_INCOMPATIBLE_FEATURES, 1n << 9n);
  view.setUint32(104, spec.QCOW2_EXT_MAGIC_FEATURE_TABLE);
  view.setUint32(108, spec.QCOW2_FEATURE_ENTRY_SIZE);
  bytes[112] = spec.QCOW2_FEATURE_TYPE_INCOMPATIBLE;
  bytes[113] = 9;
  bytes.set(new TextEncoder().encode("time travel"), 114);
  refused(bytes, /unknown incompatible features: time travel/);
});

test("the backing file name and format are read", () => {
  const { bytes, view } = image();
  const name = new TextEncoder().encode("../base.img");
  view.setUint32(104, spec.QCOW2_EXT_MAGIC_BACKING_FORMAT);
  view.setUint32(108, 3);
  bytes.set(new TextEncoder().encode("raw"), 112);
  view.setBigUint64(spec.QCOW_HEADER_BACKING_FILE_OFFSET, 512n);
  view.setUint32(spec.QCOW_HEADER_BACKING_FILE_SIZE, name.length);
  bytes.set(name, 512);
  const h = parseQcow2Header(bytes, bytes.length);
  assert.equal(h.backingFile, "../base.img");
  assert.equal(h.backingFormat, "raw");
});

test("refcounts of every width round-trip without touching their neighbours", () => {
  for (let order = 0; order <= 6; order++) {
    const block = new Uint8Array(512);
    const entries = (512 * 8) / 2 ** order;
    const max = Math.min(maxRefcount(order), 1000);
    for (let i = 0; i < entries; i++) setRefcount(block, i, order, i % (max + 1));
    for (let i = 0; i < entries; i++) assert.equal(getRefcount(block, i, order), i % (max + 1), `order ${order} entry ${i}`);
    assert.throws(() => setRefcount(block, 0, order, maxRefcount(order) + 1), Qcow2FormatError);
  }
});

test("L2 entries decode", () => {
  assert.deepEqual(decodeL2Entry(0n, 16), { kind: "unallocated" });
  assert.deepEqual(decodeL2Entry(encodeL2Entry(0x30000), 16), { kind: "normal", host: 0x30000, copied: true });
  assert.deepEqual(decodeL2Entry(encodeL2Entry(0x30000, true), 16), { kind: "zero", host: 0x30000, copied: true });
  assert.deepEqual(decodeL2Entry(spec.QCOW_OFLAG_ZERO, 16), { kind: "zero", host: 0, copied: false });
  // 64 KiB clusters: x = 62 - 8 = 54 offset bits, then 8 bits of additional sectors.
  assert.deepEqual(decodeL2Entry(spec.QCOW_OFLAG_COMPRESSED | (3n << 54n) | 0x30123n, 16), { kind: "compressed", host: 0x30123, sectors: 4 });
  assert.throws(() => decodeL2Entry(0x30002n, 16), /reserved bits/);
  assert.throws(() => decodeL2Entry(spec.QCOW_OFLAG_COPIED, 16), /offset 0/);
});
