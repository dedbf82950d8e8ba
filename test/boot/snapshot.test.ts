// Snapshot and restore of a running Debian guest at the machine level (VirtMachine.saveState and
// restoreState with the state and memory files): the restored guest carries on where it was —
// its shell, its files in RAM, its processes — with its clock continuing from the snapshot's
// guest time, and every restore is a new VM generation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { GuestSession } from "./guest-session.ts";
import { openSnapshotFiles, restoreIntoMachine, writeSnapshotFiles } from "../../src/vmm/snapshot-io.ts";

const BOOT_TIMEOUT_MS = 240_000;

let imagePromise: Promise<GuestImage> | undefined;
const image = () => (imagePromise ??= buildGuestImage({ log: (line) => console.log(`image: ${line}`) }));

async function snapshotAndRestore(harts: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "parley-snapshot-"));
  const paths = { snapshotPath: join(dir, "vm.state"), memFilePath: join(dir, "vm.mem") };
  const memory = 256 << 20;
  const source = new GuestSession(await image(), { harts, memory });
  let restored: GuestSession | undefined;
  try {
    await source.shell(BOOT_TIMEOUT_MS);
    // State in guest RAM (tmpfs), a background process counting, and the uptime at the snapshot.
    await source.run("head -c 3000000 /dev/urandom > /tmp/data; sha256sum /tmp/data > /tmp/data.sum");
    await source.run("(n=0; while :; do n=$((n+1)); echo $n > /tmp/counter; sleep 0.1; done) & echo started");
    const uptimeBefore = Number((await source.run("cut -d' ' -f1 /proc/uptime")).text.trim());
    await source.machine.pause();
    const report = writeSnapshotFiles(source.machine, { harts, memory }, paths);
    console.log(`snapshot: ${report.pagesWritten} pages written, ${report.pagesSkipped} zero pages skipped, state ${report.stateBytes} bytes; ${report.stateMs.toFixed(1)} + ${report.memoryMs.toFixed(1)} ms`);
    assert.ok(report.pagesSkipped > 0 && report.pagesWritten > 0);
    const oldGeneration = source.machine.vmgenid.generationId;
    source.machine.stop();
    await source.finished;

    const loaded = openSnapshotFiles(paths);
    const started = performance.now();
    restored = new GuestSession(await image(), { harts, memory, restore: (machine) => restoreIntoMachine(machine, loaded) });
    loaded.memory.close();
    console.log(`restore: ${(performance.now() - started).toFixed(1)} ms to a running machine`);
    assert.notDeepEqual(restored.machine.vmgenid.generationId, oldGeneration, "a restore is a new VM generation");
    // The shell answers: press Enter and wait for a fresh prompt.
    const mark = restored.output.length;
    restored.machine.sendInput(new TextEncoder().encode("\n"));
    await restored.waitFor(/root@parley:[^\n]*# /, 30_000, mark);
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
    source.machine.stop();
    await source.finished;
    restored?.machine.stop();
    await restored?.finished;
    rmSync(dir, { recursive: true, force: true });
  }
}

test("snapshot and restore: one hart", { timeout: BOOT_TIMEOUT_MS + 180_000 }, () => snapshotAndRestore(1));
test("snapshot and restore: 4 harts on threads", { timeout: BOOT_TIMEOUT_MS + 180_000 }, () => snapshotAndRestore(4));
