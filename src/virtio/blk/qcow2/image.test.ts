// Qcow2Image over an in-memory file: overlapping requests are served one at a time in order,
// zeroing and discarding, the counters, read-only and failed states.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RawImageReader } from "./file.ts";
import { MemoryImageFile } from "../../testing/memory-image-file.ts";
import { newQcow2Image, Qcow2FormatError } from "./header.ts";
import { Qcow2Image, readQcow2Header } from "./image.ts";
import { FakeGuestMemory, prng, tick } from "../../../testing/fakes.ts";
import { VirtioBlk } from "../device.ts";
import { FakeDriver } from "../../testing/blk.ts";
import { FakeContext } from "../../testing/fake-queue.ts";
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from "../spec.ts";

const MiB = 1024 * 1024;

async function fresh(size = 4 * MiB, clusterBits = 12, backing?: Uint8Array): Promise<{ image: Qcow2Image; file: MemoryImageFile }> {
  const file = new MemoryImageFile(newQcow2Image(size, clusterBits));
  const image = await Qcow2Image.open(file, await readQcow2Header(file), { backing: backing && new RawImageReader(new MemoryImageFile(backing)) });
  return { image, file };
}

test("overlapping requests, started together, act in the order they were issued", async () => {
  const { image } = await fresh();
  const model = new Uint8Array(image.size);
  const random = prng(3);
  const started: Promise<void>[] = [];
  for (let i = 0; i < 300; i++) {
    // Small region: requests overlap and race for the same clusters and L2 tables.
    const length = (1 + Math.floor(random() * 24)) * 512;
    const offset = Math.floor(random() * 64) * 512;
    if (random() < 0.8) {
      const data = new Uint8Array(length).fill(1 + (i % 250));
      started.push(image.write(offset, data));
      model.set(data, offset);
    } else {
      started.push(image.writeZeroes(offset, length, false));
      model.fill(0, offset, offset + length);
    }
    if (i % 50 === 0) started.push(image.flush());
  }
  await Promise.all(started);
  const seen = new Uint8Array(image.size);
  await image.read(0, seen);
  assert.deepEqual(seen, model);
  await image.close();
});

test("through the device: requests in flight together to the same unallocated clusters all land", async () => {
  const { image } = await fresh(MiB, 12);
  const device = new VirtioBlk({ backend: image });
  const memory = new FakeGuestMemory(1 << 20);
  const context = new FakeContext(memory, device.deviceFeatures);
  device.activate(context);
  const driver = new FakeDriver(memory);
  // Every 512-byte sector of the first four clusters, each its own request, all posted at once:
  // without one allocation at a time, requests to the same cluster would each allocate one.
  const writes = Array.from({ length: 32 }, (_, sector) => driver.request({ type: VIRTIO_BLK_T_OUT, sector, out: new Uint8Array(512).fill(sector + 1) }));
  for (const w of writes) context.queue.push(w.chain);
  device.queueNotify(0);
  await device.drain();
  await tick();
  assert.ok(writes.every((w) => w.status() === VIRTIO_BLK_S_OK));
  assert.equal(image.counters.clustersAllocated, 4);
  const flush = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  const read = driver.request({ type: VIRTIO_BLK_T_IN, sector: 0, inLen: 32 * 512 });
  context.queue.push(flush.chain);
  context.queue.push(read.chain);
  device.queueNotify(0);
  await device.drain();
  await tick();
  assert.equal(flush.status(), VIRTIO_BLK_S_OK);
  assert.equal(read.status(), VIRTIO_BLK_S_OK);
  assert.deepEqual(read.data(), Uint8Array.from({ length: 32 * 512 }, (_, i) => (i >> 9) + 1));
  await image.close();
});

test("write-zeroes marks whole clusters zero without allocating; discard frees clusters once the unmapping is durable", async () => {
  const { image, file } = await fresh();
  await image.writeZeroes(0, MiB, false);
  assert.equal(image.counters.clustersAllocated, 0, "an empty image already reads as zeroes");
  await image.write(0, new Uint8Array(64 * 1024).fill(9));
  const allocated = image.counters.clustersAllocated;
  assert.equal(allocated, 16);
  await image.writeZeroes(4096, 8192, false);
  const back = new Uint8Array(16384);
  await image.read(0, back);
  assert.deepEqual(back, Uint8Array.from({ length: 16384 }, (_, i) => (i >= 4096 && i < 12288 ? 0 : 9)));
  // Zeroed clusters keep their host clusters: rewriting them allocates nothing.
  await image.write(4096, new Uint8Array(512).fill(5));
  assert.equal(image.counters.clustersAllocated, allocated);

  await image.discard(16384, 16384);
  assert.equal(image.counters.clustersFreed, 0, "not before the unmapping is written");
  const syncs = file.syncs;
  await image.flush();
  assert.ok(file.syncs > syncs);
  assert.equal(image.counters.clustersFreed, 4);
  // Freed clusters are used again: the file does not grow.
  const fileLength = file.size;
  await image.write(512 * 1024, new Uint8Array(4 * 4096).fill(1));
  assert.equal(image.counters.clustersAllocated, allocated + 4);
  assert.equal(file.size, fileLength, "the freed clusters were reused");
  await image.close();
});

test("partial writes over a backing file copy the rest of the cluster from it", async () => {
  const backing = new Uint8Array(MiB).fill(0xbb);
  const { image } = await fresh(2 * MiB, 12, backing);
  await image.write(512, new Uint8Array(512).fill(1));
  assert.equal(image.counters.cowCopies, 1);
  const seen = new Uint8Array(4096 * 2);
  await image.read(0, seen);
  const expected = new Uint8Array(8192).fill(0xbb);
  expected.fill(1, 512, 1024);
  assert.deepEqual(seen, expected);
  // Past the backing file's end the disk reads as zeroes.
  const tail = new Uint8Array(4096);
  await image.read(MiB, tail);
  assert.deepEqual(tail, new Uint8Array(4096));
  // Discarding over a backing file must not make the backing data show again (zero flag).
  await image.discard(0, 4096);
  await image.read(0, tail);
  assert.deepEqual(tail, new Uint8Array(4096));
  await image.close();
});

test("read-only and closed images refuse writes; a failed write stops later writes", async () => {
  const file = new MemoryImageFile(newQcow2Image(MiB, 12));
  const readOnly = await Qcow2Image.open(file, await readQcow2Header(file), { readOnly: true });
  await assert.rejects(readOnly.write(0, new Uint8Array(512)), /read-only/);
  await readOnly.close();
  await assert.rejects(readOnly.read(0, new Uint8Array(512)), /closed/);

  const failing = new MemoryImageFile(newQcow2Image(MiB, 12), newQcow2Image(MiB, 12).length + 2 * 4096);
  const image = await Qcow2Image.open(failing, await readQcow2Header(failing));
  await image.write(0, new Uint8Array(512)); // its L2 table and data cluster fit
  await assert.rejects(image.write(MiB / 2, new Uint8Array(512)), /limit/);
  await assert.rejects(image.write(0, new Uint8Array(512)), /an earlier write failed/);
  const still = new Uint8Array(512);
  await image.read(0, still);
  await assert.rejects(image.read(MiB, still), RangeError);
});

test("a compressed cluster fails only the requests that reach it", async () => {
  const { image, file } = await fresh(MiB, 12);
  await image.write(0, new Uint8Array(8192).fill(1));
  await image.close();
  // The image's first L2 table is the first cluster allocated after the metadata (cluster 4):
  // make guest cluster 0's entry a compressed one.
  const bytes = file.contents().slice();
  new DataView(bytes.buffer).setBigUint64(4 * 4096, (1n << 62n) | 0x5000n);
  const patched = new MemoryImageFile(bytes);
  const reopened = await Qcow2Image.open(patched, await readQcow2Header(patched));
  const buffer = new Uint8Array(512);
  await assert.rejects(reopened.read(0, buffer), /guest offset 0 is compressed, and compressed clusters are not supported/);
  await assert.rejects(reopened.write(0, buffer), Qcow2FormatError);
  await reopened.write(4096, buffer.fill(2));
  await reopened.read(4096, buffer);
  assert.deepEqual(buffer, new Uint8Array(512).fill(2));
  await reopened.close();
});

test("an image without the backing it names is refused", async () => {
  const file = new MemoryImageFile(newQcow2Image(MiB, 12));
  const header = await readQcow2Header(file);
  header.backingFile = "base.img";
  await assert.rejects(Qcow2Image.open(file, header), (e: unknown) => e instanceof Qcow2FormatError && /backing file \(base\.img\) that was not opened/.test(e.message));
});
