import { test } from "node:test";
import assert from "node:assert/strict";
import { copyPagesIntoRam, crc32, decodeWebSnapshot, encodeWebSnapshot, nonZeroPageRuns, PAGE_SIZE, WebSnapshotError } from "./snapshot-container.ts";

const MIB = 2 ** 20;
const shape = { harts: 2, memoryMiB: 1, disk: true };

function sampleRam(): Uint8Array {
  const ram = new Uint8Array(MIB);
  ram[0] = 1; // page 0
  ram.fill(0xab, 5 * PAGE_SIZE, 8 * PAGE_SIZE); // pages 5..7
  ram[MIB - 1] = 9; // the last page
  return ram;
}

test("crc32: the IEEE check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array()), 0);
});

test("nonZeroPageRuns: runs of pages with any non-zero byte", () => {
  assert.deepEqual(nonZeroPageRuns(sampleRam()), [[0, 1], [5, 3], [255, 1]]);
  assert.deepEqual(nonZeroPageRuns(new Uint8Array(4 * PAGE_SIZE)), []);
  assert.throws(() => nonZeroPageRuns(new Uint8Array(100)), RangeError);
});

test("encode -> decode -> copy gives back the state and RAM; zero pages take no space", () => {
  const ram = sampleRam();
  const state = { version: 1, cpus: [{ pc: "0x80200000" }] };
  const file = encodeWebSnapshot({ shape, state, ram, createdAt: "2026-01-01T00:00:00.000Z" });
  assert.ok(file.length < 6 * PAGE_SIZE, `${file.length} bytes`);
  const decoded = decodeWebSnapshot(file);
  assert.deepEqual(decoded.header.shape, shape);
  assert.deepEqual(decoded.header.state, state);
  assert.equal(decoded.header.createdAt, "2026-01-01T00:00:00.000Z");
  const restored = new Uint8Array(MIB);
  copyPagesIntoRam(restored, decoded);
  assert.deepEqual(restored, ram);
  assert.throws(() => copyPagesIntoRam(new Uint8Array(2 * MIB), decoded), /the machine has/);
});

/** Re-encodes a file with a changed header (a fresh checksum), to test the header's checks. */
function withHeader(file: Uint8Array, change: (header: Record<string, unknown>) => void, pageBytes?: Uint8Array): Uint8Array {
  const view = new DataView(file.buffer, file.byteOffset);
  const length = view.getUint32(12, true);
  const header = JSON.parse(new TextDecoder().decode(file.subarray(16, 16 + length)));
  change(header);
  const bytes = new TextEncoder().encode(JSON.stringify(header));
  const pages = pageBytes ?? file.subarray(16 + length, file.length - 4);
  const out = new Uint8Array(16 + bytes.length + pages.length + 4);
  out.set(file.subarray(0, 16));
  new DataView(out.buffer).setUint32(12, bytes.length, true);
  out.set(bytes, 16);
  out.set(pages, 16 + bytes.length);
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

test("decode refuses bad files, naming what is wrong", () => {
  const file = encodeWebSnapshot({ shape, state: { version: 1 }, ram: sampleRam() });
  const refuse = (bytes: Uint8Array, pattern: RegExp) => assert.throws(() => decodeWebSnapshot(bytes), (e: unknown) => e instanceof WebSnapshotError && pattern.test(e.message));
  refuse(new Uint8Array(3), /too short/);
  refuse(Uint8Array.from(file, (b, i) => (i === 0 ? 0x51 : b)), /PARLEYWS/);
  const v2 = file.slice();
  new DataView(v2.buffer).setUint32(8, 2, true);
  refuse(v2, /version 2/);
  refuse(file.subarray(0, file.length - 100), /checksum|does not fit/);
  const flipped = file.slice();
  flipped[file.length - 10] ^= 1;
  refuse(flipped, /checksum/);
  const huge = file.slice();
  new DataView(huge.buffer).setUint32(12, 0xffffffff, true);
  refuse(huge, /does not fit/);
  refuse(withHeader(file, (h) => (h.shape = { harts: 0, memoryMiB: 1, disk: false })), /header\.shape\.harts/);
  refuse(withHeader(file, (h) => (h.shape = { harts: 1, memoryMiB: 1.5, disk: false })), /header\.shape\.memoryMiB/);
  refuse(withHeader(file, (h) => (h.shape = { harts: 1, memoryMiB: 1, disk: "yes" })), /header\.shape\.disk/);
  refuse(withHeader(file, (h) => (h.ramSize = 4096)), /header\.ramSize/);
  refuse(withHeader(file, (h) => (h.state = null)), /header\.state/);
  refuse(withHeader(file, (h) => (h.createdAt = 5)), /header\.createdAt/);
  refuse(withHeader(file, (h) => (h.runs = [[5, 3], [0, 1], [255, 1]])), /header\.runs\[1\]: starts at page 0/);
  refuse(withHeader(file, (h) => (h.runs = [[0, 1], [5, 3], [255, 2]])), /header\.runs\[2\]: ends at page 257/);
  refuse(withHeader(file, (h) => (h.runs = [[0, 1], [5, 3], [255, 0]])), /header\.runs\[2\]/);
  refuse(withHeader(file, (h) => (h.runs = "all")), /header\.runs: expected an array/);
  refuse(withHeader(file, (h) => (h.runs = [[0, 1]])), /bytes of page data/);
  const notJson = withHeader(file, () => {});
  notJson[16] = 0x7b + 1;
  new DataView(notJson.buffer).setUint32(notJson.length - 4, crc32(notJson.subarray(0, notJson.length - 4)), true);
  refuse(notJson, /not JSON/);
});

test("decode fuzz: random corruption and truncation only ever throw WebSnapshotError", () => {
  const file = encodeWebSnapshot({ shape: { harts: 1, memoryMiB: 1, disk: false }, state: { a: [1, 2, 3] }, ram: sampleRam() });
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let round = 0; round < 300; round++) {
    const bytes = file.slice(0, round % 3 === 0 ? Math.floor(random() * file.length) : file.length);
    for (let flips = 1 + Math.floor(random() * 4); flips > 0 && bytes.length; flips--) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    // A corrupted header re-checksummed reaches the structural checks too.
    const resealed = bytes.length > 20 ? bytes.slice() : bytes;
    if (resealed.length > 20) new DataView(resealed.buffer).setUint32(resealed.length - 4, crc32(resealed.subarray(0, resealed.length - 4)), true);
    for (const candidate of [bytes, resealed]) {
      try {
        decodeWebSnapshot(candidate);
      } catch (error) {
        assert.ok(error instanceof WebSnapshotError, `round ${round}: ${String(error)}`);
      }
    }
  }
});
