// qcow2 and snapshot=on under a real guest (the busybox guest image, `parley run` as a user runs
// it): the guest writes raw blocks to a qcow2 overlay on a raw base and flushes, Parley is killed
// with SIGKILL, and `qemu-img check` accepts the overlay, which holds the synced blocks while the
// base is unchanged; with snapshot=on the guest reads its writes back and the image is untouched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGuestImage } from "../../src/image/index.ts";
import { CLI, runParley } from "../support/parley-cli.ts";
import { ConsoleDriver } from "../support/console-driver.ts";
import { needsHostTools } from "../support/host-tools.ts";

const BOOT_MS = 240_000;
const SIZE = 32 * 1024 * 1024;
const BASE_BYTE = 0x11;
const tools = needsHostTools("qemu-img");

function baseImage(dir: string): string {
  const path = join(dir, "base.raw");
  writeFileSync(path, new Uint8Array(SIZE).fill(BASE_BYTE));
  return path;
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/**
 * Shell commands writing `marker`, padded to a sector, at each sector, each with fsync: that is
 * a FLUSH request. (`sync` alone writes a raw block device's dirty pages back but sends no FLUSH,
 * so a write cache - here the overlay's cached metadata - may still hold them.)
 */
function writeMarkers(marker: string, sectors: number[]): string {
  return sectors.map((s) => `printf '${marker}' | dd of=/dev/vda bs=512 seek=${s} conv=sync,fsync 2>/dev/null`).join(" && ");
}

test("a guest's flushed writes to a qcow2 overlay survive SIGKILL; qemu-img check accepts the overlay", { timeout: BOOT_MS + 120_000, skip: tools.skip }, async () => {
  tools.check();
  await buildGuestImage();
  const dir = mkdtempSync(join(tmpdir(), "parley-qcow2-guest-"));
  try {
    const base = baseImage(dir);
    const baseHash = sha256(base);
    const overlay = join(dir, "vm1.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", overlay]);
    const guest = new ConsoleDriver(process.execPath, [CLI, "run", "--disk", `path=${overlay}`]);
    const marker = "QCOW2-FLUSHED-" + Date.now();
    // Sectors in different clusters and L2 ranges: 100 (cluster 0), 40000 (20 MiB in). The typed
    // line says DONE-$((1+1)), so only the shell's answer matches DONE-2.
    guest.send(`${writeMarkers(marker, [100, 40000])} && echo DONE-$((1+1))`);
    try {
      await guest.waitFor(/DONE-2/, BOOT_MS, "the guest's flushed writes");
    } finally {
      guest.kill(); // no shutdown: the overlay's metadata is as the last flush left it
    }
    const exit = await guest.exited;
    assert.equal(exit, null, "killed by the signal");
    const check = spawnSync("qemu-img", ["check", "--output=json", overlay], { encoding: "utf8" });
    assert.ok(check.status === 0 || check.status === 3, `qemu-img check exit ${check.status}: ${check.stdout}${check.stderr}`);
    assert.equal((JSON.parse(check.stdout) as { corruptions?: number }).corruptions ?? 0, 0, check.stdout);
    const raw = join(dir, "vm1.raw");
    execFileSync("qemu-img", ["convert", "-O", "raw", overlay, raw]);
    const disk = readFileSync(raw);
    for (const sector of [100, 40000]) {
      const block = disk.subarray(sector * 512, sector * 512 + 512);
      assert.equal(block.subarray(0, marker.length).toString(), marker, `sector ${sector}`);
      assert.ok(block.subarray(marker.length).every((b) => b === 0), "dd conv=sync pads with zeroes");
    }
    assert.ok(disk.subarray(0, 100 * 512).every((b) => b === BASE_BYTE), "the rest of the cluster was copied from the base");
    assert.equal(sha256(base), baseHash, "the base image is unchanged");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("snapshot=on: the guest reads back what it wrote, the image stays byte-identical", { timeout: BOOT_MS + 120_000 }, async () => {
  await buildGuestImage();
  const dir = mkdtempSync(join(tmpdir(), "parley-snapshot-guest-"));
  try {
    const base = baseImage(dir);
    const baseHash = sha256(base);
    const marker = "SNAPSHOT-" + Date.now();
    const run = await runParley(["run", "--disk", `path=${base},format=raw,snapshot=on`], {
      input: `${writeMarkers(marker, [8])} && echo 3 > /proc/sys/vm/drop_caches && dd if=/dev/vda bs=512 skip=8 count=1 2>/dev/null | head -c ${marker.length} && echo && poweroff\n`,
      timeoutMs: BOOT_MS,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`\\n${marker}\\r?\\n`));
    assert.equal(sha256(base), baseHash);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
