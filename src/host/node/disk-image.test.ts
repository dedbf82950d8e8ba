// Opening disk images: format probing and its guard, backing chains (relative names, missing
// files, loops, depth), images refused at open with a clear reason, and snapshot=on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDiskImage, MAX_BACKING_CHAIN, resolveBackingPath } from "./disk-image.ts";
import { newQcow2Image, Qcow2FormatError } from "../../virtio/blk/qcow2/header.ts";
import { PROBED_RAW_REFUSAL } from "../../virtio/blk/qcow2/probe.ts";
import * as spec from "../../virtio/blk/qcow2/spec.ts";
import { needsHostTools } from "../../../test/support/host-tools.ts";
import { withTempDir } from "../../../test/support/temp-dir.ts";

const tools = needsHostTools("qemu-img");
const MiB = 1024 * 1024;

function qemuImg(...args: string[]): void {
  execFileSync("qemu-img", args, { stdio: "pipe" });
}

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

async function refuses(path: string, options: Parameters<typeof openDiskImage>[1], pattern: RegExp): Promise<void> {
  await assert.rejects(openDiskImage(path, options), (e: unknown) => {
    assert.match((e as Error).message, pattern);
    return true;
  });
}

/** A qcow2 image made by Parley's own formatter, with its header patched. */
async function patchedImage(path: string, patch: (view: DataView, bytes: Uint8Array) => void): Promise<void> {
  // One more cluster after the metadata, for a snapshot table.
  const bytes = new Uint8Array(5 * 65536);
  bytes.set(newQcow2Image(MiB));
  patch(new DataView(bytes.buffer), bytes);
  await writeFile(path, bytes);
}

test("backing file names resolve as QEMU resolves them: relative to the image's directory", () => {
  assert.equal(resolveBackingPath("/vms/a/vm1.qcow2", "debian.img"), "/vms/a/debian.img");
  assert.equal(resolveBackingPath("/vms/a/vm1.qcow2", "../base/debian.img"), "/vms/base/debian.img");
  assert.equal(resolveBackingPath("vm1.qcow2", "debian.img"), "debian.img");
  assert.equal(resolveBackingPath("/vms/a/vm1.qcow2", "/images/debian.img"), "/images/debian.img");
  assert.equal(resolveBackingPath("/vms/a/vm1.qcow2", "file:debian.img"), "/vms/a/debian.img");
  assert.throws(() => resolveBackingPath("/vms/vm1.qcow2", 'json:{"file":{"driver":"nbd"}}'), /json: backing specifications are not supported/);
});

test("a raw image is probed as raw, and a guest cannot make it look like qcow2 unless format=raw is given", async () => {
  await withTempDir("parley-disk-", async (dir) => {
    const path = join(dir, "disk.img");
    await writeFile(path, new Uint8Array(MiB));
    const header = newQcow2Image(MiB).subarray(0, 512);
    const probed = await openDiskImage(path);
    await assert.rejects(probed.write(0, header), new RegExp(PROBED_RAW_REFUSAL.slice(0, 40)));
    // The gather write the device uses, with the magic split over buffers, is refused the same way.
    const pieces = [header.subarray(0, 1), header.subarray(1, 3), header.subarray(3)];
    await assert.rejects(probed.writeFrom!(0, pieces), new RegExp(PROBED_RAW_REFUSAL.slice(0, 40)));
    assert.deepEqual(new Uint8Array((await readFile(path)).subarray(0, 512)), new Uint8Array(512), "nothing written");
    await probed.writeFrom!(0, [new Uint8Array(256), new Uint8Array(256).fill(9)]); // other data at 0 is fine
    await probed.writeFrom!(512, pieces); // elsewhere the same bytes are just data
    await probed.write(512, header);
    await probed.close();
    const explicit = await openDiskImage(path, { format: "raw" });
    await explicit.write(0, header);
    await explicit.close();
    // Now it looks like qcow2: probing says so, format=raw still reads it as the raw disk it is.
    const asRaw = await openDiskImage(path, { format: "raw", readOnly: true });
    assert.equal(asRaw.size, MiB);
    await asRaw.close();
  });
});

test("format=qcow2 on a raw image, and a missing image, are refused clearly", async () => {
  await withTempDir("parley-disk-", async (dir) => {
    const path = join(dir, "disk.img");
    await writeFile(path, new Uint8Array(MiB));
    await refuses(path, { format: "qcow2" }, /not a qcow2 image \(the magic "QFI\\xfb" is missing\)/);
    await refuses(join(dir, "nope.qcow2"), {}, /disk image .*nope\.qcow2 does not exist/);
  });
});

test("images marked dirty or corrupt, or with internal snapshots, open read-only but not for writing", async () => {
  await withTempDir("parley-disk-", async (dir) => {
    const cases: [string, (v: DataView) => void, RegExp][] = [
      ["dirty", (v) => v.setBigUint64(spec.QCOW_HEADER_INCOMPATIBLE_FEATURES, spec.QCOW2_INCOMPAT_DIRTY), /marked dirty .*qemu-img check -r all/],
      ["corrupt", (v) => v.setBigUint64(spec.QCOW_HEADER_INCOMPATIBLE_FEATURES, spec.QCOW2_INCOMPAT_CORRUPT), /marked corrupt/],
      [
        "snapshots",
        (v) => {
          v.setUint32(spec.QCOW_HEADER_NB_SNAPSHOTS, 1);
          v.setBigUint64(spec.QCOW_HEADER_SNAPSHOTS_OFFSET, BigInt(4 * 65536));
        },
        /internal snapshots/,
      ],
    ];
    for (const [name, patch, pattern] of cases) {
      const path = join(dir, `${name}.qcow2`);
      await patchedImage(path, patch);
      await refuses(path, {}, pattern);
      const readOnly = await openDiskImage(path, { readOnly: true });
      await readOnly.read(0, new Uint8Array(512));
      await readOnly.close();
    }
  });
});

test("corrupt and truncated qcow2 images are refused at open, saying what is wrong", { skip: tools.skip }, async () => {
  tools.check();
  await withTempDir("parley-disk-", async (dir) => {
    const good = join(dir, "good.qcow2");
    qemuImg("create", "-f", "qcow2", good, "64M");
    const original = new Uint8Array(await readFile(good));
    const variant = async (name: string, mutate: (v: DataView, b: Uint8Array) => Uint8Array | void): Promise<string> => {
      const bytes = original.slice();
      const out = mutate(new DataView(bytes.buffer), bytes) ?? bytes;
      const path = join(dir, name);
      await writeFile(path, out);
      return path;
    };
    await refuses(await variant("magic.qcow2", (_v, b) => b.set([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 9])), { format: "qcow2" }, /version 9 is not supported/);
    await refuses(await variant("short.qcow2", (_v, b) => b.subarray(0, 60)), {}, /truncated/);
    await refuses(await variant("truncated.qcow2", (_v, b) => b.subarray(0, 3 * 65536)), {}, /L1 table .* lies outside the 196608-byte file \(truncated image\?\)/);
    await refuses(await variant("bits.qcow2", (v) => v.setUint32(spec.QCOW_HEADER_CLUSTER_BITS, 30)), {}, /cluster_bits 30 is outside 9\.\.21/);
    await refuses(await variant("l1.qcow2", (v) => v.setBigUint64(spec.QCOW_HEADER_L1_TABLE_OFFSET, 1n << 40n)), {}, /L1 table .* lies outside/);
    await refuses(await variant("unaligned.qcow2", (v) => v.setBigUint64(spec.QCOW_HEADER_REFCOUNT_TABLE_OFFSET, 65536n + 512n)), {}, /refcount_table_offset 66048 is not aligned/);
    await refuses(await variant("overlap.qcow2", (v) => v.setBigUint64(spec.QCOW_HEADER_L1_TABLE_OFFSET, 65536n)), {}, /the L1 table and the refcount table overlap/);
    await refuses(await variant("size.qcow2", (v) => v.setBigUint64(spec.QCOW_HEADER_SIZE, 0xffff_ffff_ffff_fe00n)), {}, /virtual size .* too large/);
    await refuses(await variant("odd.qcow2", (v) => v.setBigUint64(spec.QCOW_HEADER_SIZE, 64n * 1024n * 1024n - 100n)), {}, /not a multiple of 512/);
    await refuses(await variant("luks.qcow2", (v) => v.setUint32(spec.QCOW_HEADER_CRYPT_METHOD, 2)), {}, /encrypted images \(LUKS\)/);
    await refuses(await variant("extl2.qcow2", (v) => v.setBigUint64(spec.QCOW_HEADER_INCOMPATIBLE_FEATURES, spec.QCOW2_INCOMPAT_EXTL2)), {}, /extended L2 entries/);
    // An L2 entry past the end of the file: refused when the guest reaches it (I/O error), not a crash.
    const l2Past = await variant("l2.qcow2", (v, b) => {
      // L1 entry 0 -> an L2 table in a new cluster 4 whose first entry points far away.
      v.setBigUint64(3 * 65536, (4n * 65536n) | spec.QCOW_OFLAG_COPIED);
      const table = new Uint8Array(65536);
      new DataView(table.buffer).setBigUint64(0, (1n << 40n) | spec.QCOW_OFLAG_COPIED);
      const out = new Uint8Array(5 * 65536);
      out.set(b);
      out.set(table, 4 * 65536);
      return out;
    });
    const disk = await openDiskImage(l2Past, { readOnly: true });
    await assert.rejects(disk.read(0, new Uint8Array(512)), /data cluster of guest offset 0 at 1099511627776 lies past the end of the file/);
    await disk.close();
  });
});

test("backing chains: relative names, formats, a missing file, loops and depth", { skip: tools.skip }, async () => {
  tools.check();
  await withTempDir("parley-disk-", async (dir) => {
    await mkdir(join(dir, "images"));
    const base = new Uint8Array(MiB).fill(7);
    await writeFile(join(dir, "base.raw"), base);
    // Relative to the overlay's directory, not to the current directory.
    qemuImg("create", "-f", "qcow2", "-b", "../base.raw", "-F", "raw", join(dir, "images", "overlay.qcow2"));
    const overlay = await openDiskImage(join(dir, "images", "overlay.qcow2"));
    const got = new Uint8Array(4096);
    await overlay.read(0, got);
    assert.deepEqual(got, new Uint8Array(4096).fill(7));
    await overlay.close();
    assert.deepEqual(new Uint8Array(await readFile(join(dir, "base.raw"))), base, "the backing file is not written");

    qemuImg("create", "-f", "qcow2", "-u", "-b", "gone.raw", "-F", "raw", join(dir, "orphan.qcow2"), "1M");
    await refuses(join(dir, "orphan.qcow2"), {}, /^backing file \S*gone\.raw \(named by \S*orphan\.qcow2\) does not exist$/);

    qemuImg("create", "-f", "qcow2", "-u", "-b", "base.raw", "-F", "vmdk", join(dir, "vmdk.qcow2"), "1M");
    await refuses(join(dir, "vmdk.qcow2"), {}, /backing format "vmdk" is not supported/);

    // A loop: a.qcow2 -> b.qcow2 -> a.qcow2 (made by rebasing without checks).
    qemuImg("create", "-f", "qcow2", join(dir, "a.qcow2"), "1M");
    qemuImg("create", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", join(dir, "b.qcow2"));
    qemuImg("rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", join(dir, "a.qcow2"));
    await refuses(join(dir, "b.qcow2"), {}, /the backing chain loops back to .*b\.qcow2/);

    // A chain deeper than the limit.
    qemuImg("create", "-f", "qcow2", join(dir, "c0.qcow2"), "1M");
    for (let i = 1; i <= MAX_BACKING_CHAIN + 1; i++) {
      qemuImg("create", "-f", "qcow2", "-b", `c${i - 1}.qcow2`, "-F", "qcow2", join(dir, `c${i}.qcow2`));
    }
    await refuses(join(dir, `c${MAX_BACKING_CHAIN + 1}.qcow2`), {}, new RegExp(`^backing file \\S*c0\\.qcow2 \\(named by \\S*c1\\.qcow2\\): the chain has more than ${MAX_BACKING_CHAIN} backing files$`));
    const deepest = await openDiskImage(join(dir, `c${MAX_BACKING_CHAIN}.qcow2`));
    await deepest.close();
  });
});

test("compressed clusters (qemu-img convert -c) read correctly, writes copy them out; zstd is refused", { skip: tools.skip }, async () => {
  tools.check();
  await withTempDir("parley-disk-", async (dir) => {
    const raw = new Uint8Array(2 * MiB);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 7 + (i >> 12)) & 0xff;
    raw.fill(0x42, 100_000, 300_000);
    await writeFile(join(dir, "data.raw"), raw);
    for (const clusterSize of ["512", "65536"]) {
      const path = join(dir, `compressed-${clusterSize}.qcow2`);
      qemuImg("convert", "-c", "-o", `cluster_size=${clusterSize}`, "-f", "raw", "-O", "qcow2", join(dir, "data.raw"), path);
      const disk = await openDiskImage(path);
      const seen = new Uint8Array(raw.length);
      await disk.read(0, seen);
      assert.deepEqual(seen, raw);
      const expected = raw.slice();
      await disk.write(70_144, new Uint8Array(1024).fill(9)); // partial: the rest comes from the compressed cluster
      expected.fill(9, 70_144, 71_168);
      await disk.writeZeroes(MiB, 131072, false);
      expected.fill(0, MiB, MiB + 131072);
      await disk.discard(1536 * 1024, 131072); // content undefined afterwards: not compared
      await disk.close();
      const check = execFileSync("qemu-img", ["check", path], { encoding: "utf8" });
      assert.match(check, /No errors were found on the image/);
      const converted = join(dir, "converted.raw");
      qemuImg("convert", "-O", "raw", path, converted);
      const after = new Uint8Array(await readFile(converted));
      assert.deepEqual(after.subarray(0, 1536 * 1024), expected.subarray(0, 1536 * 1024));
      assert.deepEqual(after.subarray(1664 * 1024), expected.subarray(1664 * 1024));
    }
    qemuImg("convert", "-c", "-o", "compression_type=zstd", "-f", "raw", "-O", "qcow2", join(dir, "data.raw"), join(dir, "zstd.qcow2"));
    const zstd = await openDiskImage(join(dir, "zstd.qcow2"));
    await assert.rejects(zstd.read(0, new Uint8Array(512)), (e: unknown) => e instanceof Qcow2FormatError && /zstd-compressed clusters are not supported/.test(e.message));
    await zstd.close();
  });
});

for (const format of ["raw", "qcow2"] as const) {
  test(`snapshot=on over a ${format} image: the guest sees its writes, the image stays byte-identical`, { skip: format === "qcow2" && tools.skip }, async () => {
    if (format === "qcow2") tools.check();
    await withTempDir("parley-disk-", async (dir) => {
      const raw = join(dir, "base.raw");
      const content = new Uint8Array(4 * MiB);
      for (let i = 0; i < content.length; i += 512) content.fill((i / 512) & 0xff, i, i + 512);
      await writeFile(raw, content);
      let path = raw;
      if (format === "qcow2") {
        path = join(dir, "base.qcow2");
        qemuImg("convert", "-f", "raw", "-O", "qcow2", raw, path);
      }
      const before = await sha256(path);
      const tmpBefore = (await readdir(tmpdir())).filter((n) => n.startsWith("parley-snapshot-"));
      const disk = await openDiskImage(path, { snapshot: true });
      assert.equal(disk.readOnly, false);
      assert.equal(disk.size, content.length);
      const data = new Uint8Array(3000 * 1 + 72).fill(0xee).subarray(0, 2560);
      await disk.write(65536 - 1024, data);
      await disk.writeZeroes(MiB, 8192, false);
      await disk.flush();
      const expected = content.slice();
      expected.set(data, 65536 - 1024);
      expected.fill(0, MiB, MiB + 8192);
      const seen = new Uint8Array(content.length);
      await disk.read(0, seen);
      assert.deepEqual(seen, expected);
      // The overlay has no name in the temporary directory, even while it is open.
      const tmpDuring = (await readdir(tmpdir())).filter((n) => n.startsWith("parley-snapshot-"));
      assert.deepEqual(tmpDuring, tmpBefore);
      await disk.close();
      assert.equal(await sha256(path), before, "the image is unchanged");
      // Opened again, the writes are gone.
      const again = await openDiskImage(path, { readOnly: true });
      const fresh = new Uint8Array(content.length);
      await again.read(0, fresh);
      assert.deepEqual(fresh, content);
      await again.close();
    });
  });
}

test("snapshot=on with readonly=on is simply read-only", async () => {
  await withTempDir("parley-disk-", async (dir) => {
    const path = join(dir, "disk.img");
    await writeFile(path, new Uint8Array(MiB));
    const disk = await openDiskImage(path, { snapshot: true, readOnly: true });
    assert.equal(disk.readOnly, true);
    await assert.rejects(disk.write(0, new Uint8Array(512)), /read-only/);
    await disk.close();
    await truncate(path, MiB);
  });
});
