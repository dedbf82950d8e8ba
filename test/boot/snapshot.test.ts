// Snapshot and restore of a running Debian guest (VirtMachine.pause/saveState/restoreState with
// the state and memory files): the restored guest carries on where it was — its shell, its files in
// RAM, its processes, its disk — with its clock continuing from the snapshot's guest time; a
// snapshot taken in the middle of disk writes loses no synced byte and leaves a file system that
// checks clean; and every restore is a new VM generation, so two clones of one snapshot draw
// different random numbers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { openBlockFile } from "../../src/host/node/block-file.ts";
import type { BlockBackend } from "../../src/virtio/blk/backend.ts";
import { VirtioBlk } from "../../src/virtio/blk/device.ts";
import { VirtioRngDevice } from "../../src/virtio/rng/device.ts";
import { GuestSession } from "./guest-session.ts";
import { openSnapshotFiles, restoreIntoMachine, writeSnapshotFiles, type SnapshotPaths } from "../../src/vmm/snapshot-io.ts";

const BOOT_TIMEOUT_MS = 240_000;
const MEMORY = 256 << 20;

let imagePromise: Promise<GuestImage> | undefined;
const image = () => (imagePromise ??= buildGuestImage({ add: ["e2fsprogs"], log: (line) => console.log(`image: ${line}`) }));

function snapshotDir(): { dir: string; paths: SnapshotPaths } {
  const dir = mkdtempSync(join(tmpdir(), "parley-snapshot-"));
  return { dir, paths: { snapshotPath: join(dir, "vm.state"), memFilePath: join(dir, "vm.mem") } };
}

async function stopAll(...sessions: (GuestSession | undefined)[]): Promise<void> {
  for (const session of sessions) session?.machine.stop();
  await Promise.all(sessions.map((session) => session?.finished));
}

/** A restored session's shell: a fresh prompt after Enter. */
async function prompt(session: GuestSession): Promise<void> {
  const mark = session.output.length;
  session.machine.sendInput(new TextEncoder().encode("\n"));
  await session.waitFor(/root@parley:[^\n]*# /, 30_000, mark);
}

async function snapshotOf(session: GuestSession, paths: SnapshotPaths): Promise<void> {
  await session.machine.pause();
  const report = writeSnapshotFiles(session.machine, { harts: session.machine.hartCount }, paths);
  console.log(
    `snapshot: ${report.pagesWritten} pages written, ${report.pagesSkipped} zero pages skipped, state ${report.stateBytes} bytes; ` +
      `${report.stateMs.toFixed(1)} ms state + ${report.memoryMs.toFixed(1)} ms memory`,
  );
  assert.ok(report.pagesSkipped > 0 && report.pagesWritten > 0);
}

function restoreSession(img: GuestImage, paths: SnapshotPaths, opts: { harts: number; hostThreads?: number; virtio?: GuestSession["machine"]["virtio"][number]["device"][] }): GuestSession {
  const loaded = openSnapshotFiles(paths);
  const started = performance.now();
  try {
    return new GuestSession(img, {
      harts: opts.harts,
      hostThreads: opts.hostThreads,
      memory: MEMORY,
      virtio: opts.virtio,
      restore: (machine) => {
        const report = restoreIntoMachine(machine, loaded);
        console.log(`restore: RAM by ${report.memory}${report.mapUnavailable ? ` (${report.mapUnavailable})` : ""}, ${(performance.now() - started).toFixed(1)} ms to a machine ready to run`);
      },
    });
  } finally {
    loaded.memory.close();
  }
}

test("snapshot and restore on one hart: shell, RAM files, processes and the clock carry on", { timeout: BOOT_TIMEOUT_MS + 180_000 }, async () => {
  const img = await image();
  const { dir, paths } = snapshotDir();
  const source = new GuestSession(img, { harts: 1, memory: MEMORY });
  let restored: GuestSession | undefined;
  try {
    await source.shell(BOOT_TIMEOUT_MS);
    await source.run("head -c 3000000 /dev/urandom > /tmp/data; sha256sum /tmp/data > /tmp/data.sum");
    await source.run("(n=0; while :; do n=$((n+1)); echo $n > /tmp/counter; sleep 0.1; done) & echo started");
    const uptimeBefore = Number((await source.run("cut -d' ' -f1 /proc/uptime")).text.trim());
    await snapshotOf(source, paths);
    const oldGeneration = source.machine.vmgenid.generationId;
    await stopAll(source);

    restored = restoreSession(img, paths, { harts: 1 });
    assert.notDeepEqual(restored.machine.vmgenid.generationId, oldGeneration, "a restore is a new VM generation");
    await prompt(restored);
    assert.equal((await restored.run("sha256sum -c /tmp/data.sum")).status, 0, "the file in guest RAM survived");
    const c1 = Number((await restored.run("cat /tmp/counter")).text.trim());
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const c2 = Number((await restored.run("cat /tmp/counter")).text.trim());
    assert.ok(c2 > c1, `the background process goes on counting (${c1} -> ${c2})`);
    const uptimeAfter = Number((await restored.run("cut -d' ' -f1 /proc/uptime")).text.trim());
    assert.ok(uptimeAfter >= uptimeBefore && uptimeAfter - uptimeBefore < 30, `the guest clock continues from the snapshot (${uptimeBefore} -> ${uptimeAfter} s)`);
    const dmesg = await restored.run("dmesg");
    for (const bad of [/Oops/, /WARNING:/, /BUG:/, /Call Trace/, /rcu_.*stall/]) assert.doesNotMatch(dmesg.text, bad);
    restored.machine.sendInput(new TextEncoder().encode("poweroff\n"));
    assert.deepEqual(await restored.finished, { reason: "poweroff", code: 0 });
  } finally {
    await stopAll(source, restored);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("snapshot in the middle of disk writes with 4 harts: every synced byte is there and the file system checks clean", { timeout: BOOT_TIMEOUT_MS + 300_000 }, async () => {
  const img = await image();
  const { dir, paths } = snapshotDir();
  const disk = join(dir, "disk.img");
  writeFileSync(disk, new Uint8Array(0));
  execFileSync("truncate", ["-s", "64M", disk]);
  const backends: BlockBackend[] = [];
  const blk = async () => {
    const backend = await openBlockFile(disk);
    backends.push(backend);
    return new VirtioBlk({ backend, name: "virtio-blk0" });
  };
  const source = new GuestSession(img, { harts: 4, memory: MEMORY, virtio: [await blk(), new VirtioRngDevice({ entropy: (b) => crypto.getRandomValues(b) })] });
  let restored: GuestSession | undefined;
  try {
    await source.shell(BOOT_TIMEOUT_MS);
    assert.equal((await source.run("mkfs.ext4 -q -F /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt", 180_000)).status, 0);
    // Writers on several harts: each file's hash goes to the list only after the file was synced.
    await source.run(
      "for w in 1 2 3; do (i=0; while :; do i=$((i+1)); head -c 65536 /dev/urandom > /mnt/w$w-$i; sync /mnt/w$w-$i; sha256sum /mnt/w$w-$i >> /mnt/sums$w; sync /mnt/sums$w; done) & done; echo started",
    );
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await snapshotOf(source, paths);
    await stopAll(source);
    for (const backend of backends.splice(0)) await backend.close();

    // Restored on two host threads where the snapshot's machine had four: the state is the harts', not the threads'.
    restored = restoreSession(img, paths, { harts: 4, hostThreads: 2, virtio: [await blk(), new VirtioRngDevice({ entropy: (b) => crypto.getRandomValues(b) })] });
    await prompt(restored);
    // The writers go on after the restore, then stop; everything listed must check.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal((await restored.run("kill $(jobs -p); wait; sync; echo ok")).text.trim().split("\n").pop(), "ok");
    const listed = await restored.run("cat /mnt/sums1 /mnt/sums2 /mnt/sums3 | wc -l");
    assert.ok(Number(listed.text.trim()) > 3, `files were written (${listed.text.trim()})`);
    // A line being appended when the writers were killed may be cut short: check whole lines only.
    const check = await restored.run("cat /mnt/sums1 /mnt/sums2 /mnt/sums3 | grep -E '^[0-9a-f]{64}  /mnt/w[0-9]+-[0-9]+$' | sha256sum -c - | grep -vc ': OK$'");
    assert.equal(check.text.trim(), "0", `every listed file checks: ${check.text}`);
    assert.equal((await restored.run("umount /mnt && e2fsck -fn /dev/vda", 180_000)).status, 0, "the file system checks clean");
    restored.machine.sendInput(new TextEncoder().encode("poweroff\n"));
    assert.deepEqual(await restored.finished, { reason: "poweroff", code: 0 });
  } finally {
    await stopAll(source, restored);
    for (const backend of backends) await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("two clones of one snapshot get new VM generation IDs and draw different random numbers", { timeout: BOOT_TIMEOUT_MS + 240_000 }, async () => {
  const img = await image();
  const { dir, paths } = snapshotDir();
  const source = new GuestSession(img, { harts: 1, memory: MEMORY });
  const clones: GuestSession[] = [];
  try {
    await source.shell(BOOT_TIMEOUT_MS);
    // Wait until the kernel's RNG is initialised, so that what the clones draw is from one state.
    await source.run("head -c 1 /dev/random > /dev/null");
    await snapshotOf(source, paths);
    const generation = Buffer.from(source.machine.vmgenid.generationId).toString("hex");
    await stopAll(source);
    const draws: string[] = [];
    const generations: string[] = [];
    for (let i = 0; i < 2; i++) {
      const clone = restoreSession(img, paths, { harts: 1 });
      clones.push(clone);
      generations.push(Buffer.from(clone.machine.vmgenid.generationId).toString("hex"));
      await prompt(clone);
      draws.push((await clone.run("head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'")).text.trim());
      const reseeded = await clone.run("dmesg | grep -c 'crng reseeded due to virtual machine fork'");
      assert.equal(reseeded.text.trim(), "1", "the guest's RNG reseeded on the new generation");
      await stopAll(clone);
    }
    console.log(`generations: ${generation} -> ${generations.join(", ")}; draws: ${draws.join(", ")}`);
    assert.equal(new Set([generation, ...generations]).size, 3, "each restore has a generation ID of its own");
    assert.match(draws[0], /^[0-9a-f]{64}$/);
    assert.notEqual(draws[0], draws[1], "the clones' random streams differ");
  } finally {
    await stopAll(source, ...clones);
    rmSync(dir, { recursive: true, force: true });
  }
});
