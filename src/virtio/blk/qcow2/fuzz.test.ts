// Seeded fuzzing of the qcow2 code: random and mutated headers must only ever be refused with a
// Qcow2FormatError, and images with mutated metadata (header, L1, L2, refcount table and blocks)
// must open, read, write and flush or be refused with one, never throw anything else, never
// write far past the file's end. Deterministic by default; QCOW2_FUZZ_SEED and QCOW2_FUZZ_CASES
// explore more.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryImageFile } from "../../testing/memory-image-file.ts";
import { newQcow2Image, parseQcow2Header, Qcow2FormatError } from "./header.ts";
import { Qcow2Image, readQcow2Header } from "./image.ts";
import { prng } from "../../../testing/fakes.ts";
import { nodeInflate } from "../../../host/node/disk-image.ts";

const SEED = Number(process.env.QCOW2_FUZZ_SEED ?? 0x0c0f_f1e2) >>> 0;
const CASES = Number(process.env.QCOW2_FUZZ_CASES ?? 3000);
const CLUSTER_BITS = 12;
const CLUSTER = 1 << CLUSTER_BITS;
const DISK = 2 * 1024 * 1024;

function expectFormatError(e: unknown, what: string): void {
  if (e instanceof Qcow2FormatError) return;
  assert.fail(`${what}: threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
}

test("random and mutated headers are parsed or refused with a Qcow2FormatError", () => {
  const random = prng(SEED);
  const valid = newQcow2Image(DISK, CLUSTER_BITS);
  for (let n = 0; n < CASES * 4; n++) {
    let bytes: Uint8Array;
    if (n % 4 === 0) {
      bytes = new Uint8Array(Math.floor(random() * 300));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
      if (bytes.length >= 4 && random() < 0.8) bytes.set([0x51, 0x46, 0x49, 0xfb]);
    } else {
      bytes = valid.slice(0, CLUSTER);
      const flips = 1 + Math.floor(random() * 6);
      for (let f = 0; f < flips; f++) {
        // Mostly the header fields and the first extensions, where the checks are.
        const at = random() < 0.9 ? Math.floor(random() * 160) : Math.floor(random() * CLUSTER);
        bytes[at] = random() < 0.5 ? Math.floor(random() * 256) : bytes[at] ^ (1 << Math.floor(random() * 8));
      }
    }
    const fileSize = random() < 0.8 ? valid.length : Math.floor(random() * valid.length * 2);
    try {
      const header = parseQcow2Header(bytes, fileSize);
      assert.ok(header.l1Size * 8 <= fileSize, "an accepted L1 table lies inside the file");
      assert.ok(header.refcountTableClusters * header.clusterSize <= fileSize, "an accepted refcount table lies inside the file");
    } catch (e) {
      expectFormatError(e, `header case ${n}`);
    }
  }
});

/** An image with data in it, written by Parley itself: metadata to mutate. */
async function populatedImage(): Promise<Uint8Array> {
  const file = new MemoryImageFile(newQcow2Image(DISK, CLUSTER_BITS));
  const image = await Qcow2Image.open(file, await readQcow2Header(file));
  const random = prng(SEED ^ 0x5a5a);
  for (let i = 0; i < 40; i++) {
    const data = new Uint8Array(512 * (1 + Math.floor(random() * 16))).fill(i + 1);
    await image.write(Math.floor(random() * (DISK / 512 - 16)) * 512, data);
  }
  await image.discard(0, 64 * 1024);
  await image.close();
  return file.contents().slice();
}

test("images with mutated metadata work or are refused with a Qcow2FormatError", async () => {
  const random = prng(SEED + 1);
  const valid = await populatedImage();
  const metadataEnd = Math.min(valid.length, 8 * CLUSTER);
  for (let n = 0; n < CASES; n++) {
    const bytes = valid.slice();
    const flips = 1 + Math.floor(random() * 8);
    for (let f = 0; f < flips; f++) {
      // Metadata lives in the first clusters (header, refcount table and block, L1) and in the
      // L2 tables between the data clusters: mutate both.
      const at = random() < 0.7 ? Math.floor(random() * metadataEnd) : Math.floor(random() * bytes.length);
      bytes[at] = random() < 0.5 ? Math.floor(random() * 256) : bytes[at] ^ (1 << Math.floor(random() * 8));
    }
    const truncate = random() < 0.1 ? Math.floor(random() * bytes.length) : bytes.length;
    const file = new MemoryImageFile(bytes.subarray(0, truncate), bytes.length + 64 * CLUSTER);
    let image: Qcow2Image | undefined;
    try {
      // With the decompressor: a mutated entry with the compressed bit feeds it random bytes.
      image = await Qcow2Image.open(file, await readQcow2Header(file), { readOnly: random() < 0.2, inflate: nodeInflate });
      const buffer = new Uint8Array(16 * 1024);
      const span = Math.max(1, Math.min(image.size, DISK) / 512 - 32);
      for (let op = 0; op < 8; op++) {
        const offset = Math.floor(random() * span) * 512;
        if (offset + buffer.length > image.size) continue;
        if (image.readOnly || random() < 0.5) await image.read(offset, buffer);
        else if (random() < 0.8) await image.write(offset, buffer.fill(op));
        else await image.writeZeroes(offset, 8192, false);
      }
      await image.flush();
      await image.close();
    } catch (e) {
      expectFormatError(e, `image case ${n}`);
      await image?.close().catch(() => {});
    }
  }
});
