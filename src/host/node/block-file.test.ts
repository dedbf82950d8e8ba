import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openBlockFile, WRITE_ZEROES_CHUNK } from "./block-file.ts";
import { VirtioBlk } from "../../virtio/blk/device.ts";
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from "../../virtio/blk/spec.ts";
import { FakeDriver } from "../../virtio/testing/blk.ts";
import { FakeContext } from "../../virtio/testing/fake-queue.ts";
import { FakeGuestMemory, tick } from "../../testing/fakes.ts";
import { withTempDir } from "../../../test/support/temp-dir.ts";

async function image(dir: string, size: number, name = "disk.img"): Promise<string> {
  const path = join(dir, name);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i & 0xff;
  await writeFile(path, bytes);
  return path;
}

/** Counts FileHandle.datasync() calls made while fn runs. */
async function countDatasync(dir: string, fn: () => Promise<void>): Promise<number> {
  const probe = await open(join(dir, "probe"), "w");
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
  await probe.close();
  const original = proto.datasync;
  let calls = 0;
  proto.datasync = function (this: unknown) {
    calls++;
    return original.call(this);
  };
  try {
    await fn();
  } finally {
    proto.datasync = original;
  }
  return calls;
}

test("raw image: size, positional read/write round-trip, flush is datasync", async () => {
  await withTempDir("parley-blk-", async (dir) => {
    const path = await image(dir, 64 * 1024);
    const disk = await openBlockFile(path, { id: "disk0" });
    assert.equal(disk.size, 64 * 1024);
    assert.equal(disk.readOnly, false);
    assert.equal(disk.id, "disk0");
    const first = new Uint8Array(1024);
    await disk.read(512, first);
    assert.equal(first[0], 0);
    assert.equal(first[1], 1);
    const data = new Uint8Array(4096).fill(0xc3);
    await disk.write(8192, data);
    const back = new Uint8Array(4096);
    await disk.read(8192, back);
    assert.deepEqual(back, data);
    const syncs = await countDatasync(dir, () => disk.flush());
    assert.equal(syncs, 1);
    await disk.close();
    const onDisk = await readFile(path);
    assert.deepEqual(new Uint8Array(onDisk.subarray(8192, 8192 + 4096)), data);
    assert.equal(onDisk[8191], 8191 & 0xff);
    assert.equal(onDisk.length, 64 * 1024, "the image does not grow");
    await assert.rejects(disk.read(0, new Uint8Array(512)), /closed/);
  });
});

test("range checks, write-zeroes in bounded chunks, discard is advisory", async () => {
  await withTempDir("parley-blk-", async (dir) => {
    const size = 4 * 1024 * 1024;
    const path = await image(dir, size);
    const disk = await openBlockFile(path);
    await assert.rejects(disk.read(size - 512, new Uint8Array(1024)), RangeError);
    await assert.rejects(disk.write(-512, new Uint8Array(512)), RangeError);
    await assert.rejects(disk.writeZeroes(size, 512, false), RangeError);
    const start = 512 * 3;
    const length = 2 * WRITE_ZEROES_CHUNK + 512 * 5;
    await disk.writeZeroes(start, length, true);
    await disk.discard(0, 4096);
    await disk.close();
    const onDisk = await readFile(path);
    assert.ok(onDisk.subarray(start, start + length).every((b) => b === 0));
    assert.equal(onDisk[start - 1], (start - 1) & 0xff);
    assert.equal(onDisk[start + length], (start + length) & 0xff);
    assert.equal(onDisk[1], 1, "discard left the data alone");
  });
});

test("read-only image: writes reject, flush does not sync, the file is unchanged", async () => {
  await withTempDir("parley-blk-", async (dir) => {
    const path = await image(dir, 8192);
    await chmod(path, 0o444);
    const disk = await openBlockFile(path, { readOnly: true });
    assert.equal(disk.readOnly, true);
    await assert.rejects(disk.write(0, new Uint8Array(512)), /read-only/);
    await assert.rejects(disk.writeZeroes(0, 512, false), /read-only/);
    const syncs = await countDatasync(dir, () => disk.flush());
    assert.equal(syncs, 0);
    const b = new Uint8Array(512);
    await disk.read(512, b);
    assert.equal(b[3], 3);
    await disk.close();
    if (process.getuid?.() !== 0) {
      await assert.rejects(openBlockFile(path), /permission denied.*readonly=on/);
    }
  });
});

test("clear errors: missing file, directory, bad size, bad id", async () => {
  await withTempDir("parley-blk-", async (dir) => {
    await assert.rejects(openBlockFile(join(dir, "nope.img")), /does not exist/);
    await assert.rejects(openBlockFile(join(dir, "nope", "x.img")), /does not exist/);
    await mkdir(join(dir, "sub"));
    await assert.rejects(openBlockFile(join(dir, "sub")), /is a directory/);
    await assert.rejects(openBlockFile(join(dir, "sub"), { readOnly: true }), /is a directory/);
    const odd = join(dir, "odd.img");
    await writeFile(odd, new Uint8Array(1000));
    await assert.rejects(openBlockFile(odd), /1000 bytes, which is not a multiple of 512.*truncate -s 1024/);
    const ok = await image(dir, 1024, "ok.img");
    await assert.rejects(openBlockFile(ok, { id: "x".repeat(21) }), /longer than 20/);
    const empty = join(dir, "empty.img");
    await writeFile(empty, new Uint8Array(0));
    const disk = await openBlockFile(empty);
    assert.equal(disk.size, 0);
    await disk.close();
  });
});

test("through the device: guest write + FLUSH reach the file with datasync; read back", async () => {
  await withTempDir("parley-blk-", async (dir) => {
    const path = await image(dir, 1024 * 1024);
    const backend = await openBlockFile(path, { id: "file-disk" });
    const device = new VirtioBlk({ backend, name: "virtio-blk0" });
    const memory = new FakeGuestMemory(1 << 20);
    const context = new FakeContext(memory, device.deviceFeatures);
    device.activate(context);
    const driver = new FakeDriver(memory);
    const data = new Uint8Array(16 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    const syncs = await countDatasync(dir, async () => {
      const w = driver.request({ type: VIRTIO_BLK_T_OUT, sector: 64, out: data, split: 4096 });
      const f = driver.request({ type: VIRTIO_BLK_T_FLUSH });
      context.queue.push(w.chain);
      device.queueNotify(0);
      await device.drain();
      context.queue.push(f.chain);
      device.queueNotify(0);
      await device.drain();
      await tick();
      assert.equal(w.status(), VIRTIO_BLK_S_OK);
      assert.equal(f.status(), VIRTIO_BLK_S_OK);
    });
    assert.equal(syncs, 1);
    const r = driver.request({ type: VIRTIO_BLK_T_IN, sector: 64, inLen: data.length });
    context.queue.push(r.chain);
    device.queueNotify(0);
    await device.drain();
    await tick();
    assert.equal(r.status(), VIRTIO_BLK_S_OK);
    assert.deepEqual(r.data(), data);
    await backend.close();
    const onDisk = await readFile(path);
    assert.deepEqual(new Uint8Array(onDisk.subarray(64 * 512, 64 * 512 + data.length)), data);
  });
});


test("readInto / writeFrom: scatter-gather straight from and to views of a SharedArrayBuffer, past IOV_MAX buffers", async () => {
  await withTempDir("parley-blk-", async (dir) => {
    const size = 1024 * 1024;
    const path = await image(dir, size);
    const backend = await openBlockFile(path);
    // 1500 pieces of 512 bytes with a gap after each: more than Linux's IOV_MAX (1024), so one
    // preadv returns short and the rest is read by a second call.
    const ram = new Uint8Array(new SharedArrayBuffer(1600 * 520));
    ram.fill(0xa5);
    const pieces = Array.from({ length: 1500 }, (_, i) => ram.subarray(i * 520, i * 520 + 512));
    await backend.readInto!(4096, pieces);
    for (let i = 0; i < pieces.length; i++) {
      for (let j = 0; j < 512; j++) assert.equal(pieces[i][j], (4096 + i * 512 + j) & 0xff, `piece ${i} byte ${j}`);
      assert.ok(ram.subarray(i * 520 + 512, i * 520 + 520).every((b) => b === 0xa5), `gap after piece ${i} untouched`);
    }
    for (let i = 0; i < pieces.length; i++) pieces[i].fill(i & 0xff);
    await backend.writeFrom!(8192, pieces);
    const onDisk = await readFile(path);
    for (let i = 0; i < pieces.length; i++) assert.ok(onDisk.subarray(8192 + i * 512, 8192 + (i + 1) * 512).every((b) => b === (i & 0xff)), `written piece ${i}`);
    assert.equal(onDisk[8191], 8191 & 0xff);
    assert.equal(onDisk[8192 + 1500 * 512], (8192 + 1500 * 512) & 0xff);
    // Range checks as for read / write; nothing is transferred.
    await assert.rejects(backend.readInto!(size - 512, [ram.subarray(0, 1024)]), RangeError);
    await assert.rejects(backend.writeFrom!(size, [ram.subarray(0, 512)]), RangeError);
    // The file shrinking under the backend is an error, not invented data.
    const handle = await open(path, "r+");
    await handle.truncate(size / 2);
    await handle.close();
    await assert.rejects(backend.readInto!(size / 2 - 512, [ram.subarray(0, 1024)]), /unexpected end of file/);
    await backend.close();
  });
});
