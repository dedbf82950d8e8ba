import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeBitmapFile,
  encodeBitmapFile,
  memoryOverlayStore,
  OPFS_BITMAP_FILE,
  OPFS_DATA_FILE,
  opfsOverlayStoreIn,
  validateBitmap,
} from "./overlay-store.ts";
import type { OverlayLayout, OverlayStore } from "./overlay-store.ts";
import { FakeDirectory } from "./testing/fake-opfs.ts";
import type { FakeFile } from "./testing/fake-opfs.ts";

const layout: OverlayLayout = { blockSize: 4096, blockCount: 100, source: "409600 \"v1\"" };

function block(fill: number, size = 4096): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

async function readWhole(store: OverlayStore, index: number): Promise<Uint8Array> {
  const into = new Uint8Array(layout.blockSize);
  await store.readBlock(index, into);
  return into;
}

async function open(root: FakeDirectory): Promise<OverlayStore> {
  return opfsOverlayStoreIn(root, "disk");
}

test("bitmap files round-trip and refuse corruption", () => {
  const bits = new Uint8Array(13);
  bits[0] = 0b101;
  bits[12] = 0x08;
  const encoded = encodeBitmapFile({ layout, dataSize: 100 * 4096, bits });
  assert.deepEqual(decodeBitmapFile(encoded), { layout, dataSize: 100 * 4096, bits });
  const flipped = encoded.slice();
  flipped[encoded.length - 1] ^= 1;
  assert.match((decodeBitmapFile(flipped) as { invalid: string }).invalid, /checksum/);
  assert.match((decodeBitmapFile(encoded.subarray(0, 20)) as { invalid: string }).invalid, /shorter than/);
  assert.match((decodeBitmapFile(encoded.subarray(0, encoded.length - 1)) as { invalid: string }).invalid, /expected/);
  const badVersion = encoded.slice();
  badVersion[8] = 9;
  assert.match((decodeBitmapFile(badVersion) as { invalid: string }).invalid, /version 9/);
  const badMagic = encoded.slice();
  badMagic[0] = 0;
  assert.match((decodeBitmapFile(badMagic) as { invalid: string }).invalid, /magic/);
  // Present blocks beyond the data file's end: not trusted.
  assert.match(
    (validateBitmap(decodeBitmapFile(encoded), layout, 4096) as { warning: string }).warning,
    /data file is 4096 bytes/,
  );
  assert.match(
    (validateBitmap(decodeBitmapFile(encoded), { ...layout, source: "x" }, 100 * 4096) as { warning: string }).warning,
    /another disk image/,
  );
  assert.deepEqual(validateBitmap(decodeBitmapFile(encoded), layout, 100 * 4096), { bits });
});

test("opfs store: blocks read back; partial reads; flush persists data then bitmap across a reopen", async () => {
  const root = new FakeDirectory();
  const store = await open(root);
  assert.deepEqual(await store.attach(layout), {});
  assert.equal(store.has(3), false);
  await store.writeBlock(3, block(3));
  await store.writeBlock(97, block(97));
  assert.equal(store.has(3), true);
  assert.deepEqual(await readWhole(store, 97), block(97));
  const part = new Uint8Array(100);
  await store.readBlock(3, part, 4096 - 100);
  assert.deepEqual(part, block(3, 100));
  await assert.rejects(store.readBlock(4, part), /not present/);
  await assert.rejects(store.writeBlock(100, block(1)), RangeError);
  await assert.rejects(store.writeBlock(1, block(1, 512)), /not one 4096-byte block/);
  await store.flush();
  const files = root.dirs.get("disk")!.files;
  assert.equal(files.get(OPFS_DATA_FILE)!.bytes.length, 98 * 4096, "data is sparse: block i at i * blockSize");
  await assert.rejects(open(root), /locked/, "a second store cannot open while the first is open");
  await store.close();

  const again = await open(root);
  assert.deepEqual(await again.attach(layout), {});
  assert.equal(again.has(3), true);
  assert.equal(again.has(97), true);
  assert.equal(again.has(4), false);
  assert.deepEqual(await readWhole(again, 3), block(3));
  await again.close();
  await assert.rejects(again.readBlock(3, part), /closed/);
});

test("opfs store: only flushed blocks survive a crash", async () => {
  const root = new FakeDirectory();
  const store = await open(root);
  await store.attach(layout);
  await store.writeBlock(1, block(1));
  await store.flush();
  await store.writeBlock(2, block(2)); // not flushed
  root.crash();
  const after = await open(root);
  await after.attach(layout);
  assert.equal(after.has(1), true);
  assert.equal(after.has(2), false);
  assert.deepEqual(await readWhole(after, 1), block(1));
  await after.close();
});

test("opfs store: clear is durable and leaves empty files", async () => {
  const root = new FakeDirectory();
  const store = await open(root);
  await store.attach(layout);
  await store.writeBlock(5, block(5));
  await store.flush();
  await store.clear();
  assert.equal(store.has(5), false);
  assert.equal(root.dirs.get("disk")!.files.get(OPFS_DATA_FILE)!.bytes.length, 0);
  root.crash();
  const after = await open(root);
  assert.deepEqual(await after.attach(layout), {}, "no warning: the cleared overlay is consistent");
  assert.equal(after.has(5), false);
  await after.close();
});

test("opfs store: a corrupted, foreign or oversized bitmap starts empty with a warning, never a crash", async () => {
  const corruptions: [string, (files: Map<string, FakeFile>) => void, RegExp][] = [
    ["garbage bitmap", (files) => (files.get(OPFS_BITMAP_FILE)!.bytes = new Uint8Array(77).fill(0xee)), /magic/],
    [
      "flipped bit",
      (files) => {
        const bytes = files.get(OPFS_BITMAP_FILE)!.bytes;
        bytes[bytes.length - 1] ^= 0x10;
      },
      /checksum/,
    ],
    ["truncated data file", (files) => (files.get(OPFS_DATA_FILE)!.bytes = new Uint8Array(4096)), /data file is 4096 bytes/],
    ["truncated bitmap", (files) => (files.get(OPFS_BITMAP_FILE)!.bytes = files.get(OPFS_BITMAP_FILE)!.bytes.slice(0, 30)), /shorter/],
  ];
  for (const [what, corrupt, message] of corruptions) {
    const root = new FakeDirectory();
    const store = await open(root);
    await store.attach(layout);
    await store.writeBlock(0, block(1));
    await store.writeBlock(9, block(9));
    await store.flush();
    await store.close();
    corrupt(root.dirs.get("disk")!.files);
    const after = await open(root);
    const { warning } = await after.attach(layout);
    assert.match(warning ?? "", message, what);
    assert.equal(after.has(0), false, what);
    assert.equal(after.has(9), false, what);
    // Still usable, and the reset is itself persistent.
    await after.writeBlock(2, block(2));
    await after.flush();
    await after.close();
    const third = await open(root);
    assert.deepEqual(await third.attach(layout), {}, what);
    assert.equal(third.has(2), true, what);
    assert.equal(third.has(9), false, what);
    await third.close();
  }

  const root = new FakeDirectory();
  const store = await open(root);
  await store.attach(layout);
  await store.writeBlock(0, block(1));
  await store.flush();
  await store.close();
  const other = await open(root);
  assert.match((await other.attach({ ...layout, blockSize: 8192, blockCount: 50 })).warning ?? "", /another disk image or block size/);
  assert.equal(other.has(0), false);
  await other.close();
});

test("opfs store: names are checked; the real entry point needs OPFS", async () => {
  await assert.rejects(opfsOverlayStoreIn(new FakeDirectory(), "../x"), /overlay store name/);
  await assert.rejects(opfsOverlayStoreIn(new FakeDirectory(), ""), /overlay store name/);
  const { opfsOverlayStore } = await import("./overlay-store.ts");
  await assert.rejects(opfsOverlayStore("disk"), /Origin Private File System/);
});

test("memory store: only flushed blocks survive a reattach; clear and foreign layouts empty it", async () => {
  const store = memoryOverlayStore();
  await store.attach(layout);
  await store.writeBlock(1, block(1));
  await store.flush();
  await store.writeBlock(2, block(2));
  const copy = block(3);
  await store.writeBlock(3, copy);
  copy.fill(0);
  assert.deepEqual(await readWhole(store, 3), block(3), "the store keeps its own copy");
  await store.close();
  assert.deepEqual(await store.attach(layout), {});
  assert.equal(store.has(1), true);
  assert.equal(store.has(2), false);
  assert.deepEqual(await readWhole(store, 1), block(1));
  await store.clear();
  assert.equal(store.has(1), false);
  await store.writeBlock(4, block(4));
  await store.flush();
  await store.close();
  assert.match((await store.attach({ ...layout, source: "other" })).warning ?? "", /another disk image/);
  assert.equal(store.has(4), false);
});
