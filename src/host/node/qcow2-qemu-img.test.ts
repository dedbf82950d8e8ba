// The qcow2 backend against QEMU's own tools: images made by `qemu-img create` (cluster sizes,
// version 2 and 3, refcount widths, raw and qcow2 backing files) are written through Parley's
// backend with random writes, write-zeroes and discards, then `qemu-img check` must find no
// corruption and no leak, and `qemu-img convert -O raw` must give exactly the bytes a model of the
// disk holds (and Parley's own reads).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlockBackend } from "../../virtio/blk/backend.ts";
import { Qcow2Image } from "../../virtio/blk/qcow2/image.ts";
import { openDiskImage } from "./disk-image.ts";
import { prng } from "../../testing/fakes.ts";
import { needsHostTools } from "../../../test/support/host-tools.ts";
import { withTempDir } from "../../../test/support/temp-dir.ts";

const tools = needsHostTools("qemu-img");
const MiB = 1024 * 1024;

function qemuImg(...args: string[]): string {
  return execFileSync("qemu-img", args, { encoding: "utf8" });
}

interface CheckResult {
  status: number;
  corruptions: number;
  leaks: number;
  output: string;
}

/** `qemu-img check`: exit 0 clean, 2 corrupt, 3 leaks only (qemu-img(1)). */
export function qemuImgCheck(path: string): CheckResult {
  const run = spawnSync("qemu-img", ["check", "--output=json", path], { encoding: "utf8" });
  const report = JSON.parse(run.stdout || "{}") as { corruptions?: number; leaks?: number };
  return { status: run.status ?? -1, corruptions: report.corruptions ?? 0, leaks: report.leaks ?? 0, output: run.stdout + run.stderr };
}

function assertClean(path: string): void {
  const check = qemuImgCheck(path);
  assert.equal(check.status, 0, check.output);
  assert.equal(check.corruptions, 0, check.output);
  assert.equal(check.leaks, 0, check.output);
}

async function convertToRaw(path: string, dir: string): Promise<Uint8Array> {
  const out = join(dir, `converted-${Math.random().toString(36).slice(2)}.raw`);
  qemuImg("convert", "-O", "raw", path, out);
  const bytes = new Uint8Array(await readFile(out));
  await rm(out);
  return bytes;
}

/** A disk model: the expected bytes, and which bytes are defined (discard leaves them undefined). */
class Model {
  readonly known: Uint8Array;
  constructor(readonly bytes: Uint8Array) {
    this.known = new Uint8Array(bytes.length).fill(1);
  }
}

/** Random writes (partial clusters, across cluster boundaries), write-zeroes, discards and flushes. */
async function exercise(disk: BlockBackend, model: Model, seed: number, ops: number, maxLength: number): Promise<void> {
  const random = prng(seed);
  const sectors = disk.size / 512;
  for (let op = 0; op < ops; op++) {
    const length = Math.min(sectors, 1 + Math.floor(random() * (maxLength / 512))) * 512;
    const offset = Math.floor(random() * (sectors - length / 512 + 1)) * 512;
    const kind = random();
    if (kind < 0.7) {
      const data = new Uint8Array(length);
      for (let i = 0; i < length; i += 64) data.fill(Math.floor(random() * 256), i, i + 64);
      await disk.write(offset, data);
      model.bytes.set(data, offset);
      model.known.fill(1, offset, offset + length);
    } else if (kind < 0.85) {
      await disk.writeZeroes(offset, length, false);
      model.bytes.fill(0, offset, offset + length);
      model.known.fill(1, offset, offset + length);
    } else if (kind < 0.95) {
      await disk.discard(offset, length);
      model.known.fill(0, offset, offset + length);
    } else {
      await disk.flush();
    }
  }
}

function assertMatches(actual: Uint8Array, model: Model, what: string): void {
  assert.equal(actual.length, model.bytes.length, `${what}: size`);
  for (let i = 0; i < actual.length; i++) {
    if (model.known[i] && actual[i] !== model.bytes[i]) {
      assert.fail(`${what}: byte ${i} is ${actual[i]}, expected ${model.bytes[i]}`);
    }
  }
}

async function readAll(disk: BlockBackend): Promise<Uint8Array> {
  const bytes = new Uint8Array(disk.size);
  for (let offset = 0; offset < disk.size; offset += MiB) await disk.read(offset, bytes.subarray(offset, Math.min(disk.size, offset + MiB)));
  return bytes;
}

function patterned(size: number, seed: number): Uint8Array {
  const random = prng(seed);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 512) bytes.fill(Math.floor(random() * 256), i, i + 512);
  return bytes;
}

interface Variant {
  name: string;
  options: string[];
  size: number;
  ops: number;
  maxLength: number;
  backing?: "raw" | "qcow2" | "compressed";
}

const VARIANTS: Variant[] = [
  { name: "version 3, 64 KiB clusters", options: [], size: 32 * MiB, ops: 300, maxLength: 256 * 1024 },
  { name: "512-byte clusters (the refcount table grows)", options: ["-o", "cluster_size=512"], size: 32 * MiB, ops: 500, maxLength: 96 * 1024 },
  { name: "4 KiB clusters, 1-bit refcounts", options: ["-o", "cluster_size=4096,refcount_bits=1"], size: 16 * MiB, ops: 200, maxLength: 64 * 1024 },
  { name: "2 MiB clusters, 64-bit refcounts", options: ["-o", "cluster_size=2M,refcount_bits=64"], size: 16 * MiB, ops: 60, maxLength: 3 * MiB },
  { name: "version 2 (compat=0.10)", options: ["-o", "compat=0.10"], size: 16 * MiB, ops: 200, maxLength: 128 * 1024 },
  { name: "over a raw backing file", options: [], size: 16 * MiB, ops: 200, maxLength: 128 * 1024, backing: "raw" },
  { name: "version 2 over a raw backing file", options: ["-o", "compat=0.10,cluster_size=4096"], size: 8 * MiB, ops: 200, maxLength: 64 * 1024, backing: "raw" },
  { name: "over a qcow2 backing file", options: ["-o", "cluster_size=16384"], size: 8 * MiB, ops: 200, maxLength: 64 * 1024, backing: "qcow2" },
  // As a cloud image is: compressed.
  { name: "over a compressed qcow2 backing file", options: [], size: 8 * MiB, ops: 150, maxLength: 128 * 1024, backing: "compressed" },
  // Lazy refcounts allow a writer to postpone refcount updates; Parley keeps them exact anyway.
  { name: "lazy_refcounts=on", options: ["-o", "lazy_refcounts=on"], size: 8 * MiB, ops: 150, maxLength: 128 * 1024 },
];

for (const [v, variant] of VARIANTS.entries()) {
  test(`qcow2 ${variant.name}: qemu-img check is clean and convert gives the model's bytes`, { skip: tools.skip }, async () => {
    tools.check();
    await withTempDir("parley-qcow2-", async (dir) => {
      const path = join(dir, "disk.qcow2");
      const model = new Model(new Uint8Array(variant.size));
      const backingOptions: string[] = [];
      if (variant.backing) {
        // A backing file shorter than the overlay: the rest reads as zeroes.
        const base = patterned(variant.size - 512 * 1024, 100 + v);
        await writeFile(join(dir, "base.raw"), base);
        model.bytes.set(base);
        if (variant.backing === "raw") {
          backingOptions.push("-b", "base.raw", "-F", "raw");
        } else {
          const compress = variant.backing === "compressed" ? ["-c"] : [];
          qemuImg("convert", ...compress, "-f", "raw", "-O", "qcow2", join(dir, "base.raw"), join(dir, "base.qcow2"));
          backingOptions.push("-b", "base.qcow2", "-F", "qcow2");
        }
      }
      qemuImg("create", "-q", "-f", "qcow2", ...variant.options, ...backingOptions, path, String(variant.size));
      const disk = await openDiskImage(path);
      assert.ok(disk instanceof Qcow2Image);
      await exercise(disk, model, 1 + v, variant.ops, variant.maxLength);
      assertMatches(await readAll(disk), model, "Parley's reads");
      const counters = { ...disk.counters };
      await disk.close();
      assert.ok(counters.clustersAllocated > 0);
      if (variant.backing) assert.ok(counters.cowCopies > 0, "partial writes copied backing data");
      if (variant.options.includes("cluster_size=512")) assert.ok(counters.refcountTableGrowths > 0, "the refcount table grew");
      assertClean(path);
      const converted = await convertToRaw(path, dir);
      assertMatches(converted, model, "qemu-img convert");
      // Reopened, Parley reads what QEMU reads, discarded parts included.
      const again = await openDiskImage(path, { readOnly: true });
      assert.deepEqual(await readAll(again), converted);
      await again.close();
    });
  });
}

test("qcow2 round trip: an image qemu-img convert wrote reads correctly and takes writes, an overlay Parley wrote converts", { skip: tools.skip }, async () => {
  tools.check();
  await withTempDir("parley-qcow2-", async (dir) => {
    const size = 8 * MiB;
    const raw = patterned(size, 7);
    await writeFile(join(dir, "source.raw"), raw);
    qemuImg("convert", "-f", "raw", "-O", "qcow2", join(dir, "source.raw"), join(dir, "converted.qcow2"));
    const converted = await openDiskImage(join(dir, "converted.qcow2"), { readOnly: true });
    assert.deepEqual(await readAll(converted), raw);
    await converted.close();

    qemuImg("create", "-q", "-f", "qcow2", "-b", "converted.qcow2", "-F", "qcow2", join(dir, "overlay.qcow2"));
    const overlay = await openDiskImage(join(dir, "overlay.qcow2"));
    const model = new Model(raw.slice());
    await exercise(overlay, model, 99, 150, 64 * 1024);
    await overlay.close();
    assertClean(join(dir, "overlay.qcow2"));
    assertMatches(await convertToRaw(join(dir, "overlay.qcow2"), dir), model, "converted overlay");
    // The backing file was not touched.
    assert.deepEqual(await convertToRaw(join(dir, "converted.qcow2"), dir), raw);

    // Writing into the image QEMU wrote: its clusters are overwritten in place, new ones follow.
    const direct = await openDiskImage(join(dir, "converted.qcow2"));
    const directModel = new Model(raw.slice());
    await exercise(direct, directModel, 98, 150, 64 * 1024);
    await direct.close();
    assertClean(join(dir, "converted.qcow2"));
    assertMatches(await convertToRaw(join(dir, "converted.qcow2"), dir), directModel, "qemu-written image after Parley's writes");
  });
});
