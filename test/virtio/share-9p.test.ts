// Shared folders as the guest meets them: two virtio-9p devices (read-write and read-only), Linux's
// own 9p client mounts both, files move both ways with identical bytes, every way out of the
// folder that the guest can try from inside fails, and a file open across a snapshot and restore
// reads on. One boot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, symlinkSync, readdirSync, lstatSync, readlinkSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { buildGuestImage } from "../../src/image/index.ts";
import { openShareDir, type ShareDir } from "../../src/host/node/share-dir.ts";
import { openSnapshotFiles, restoreIntoMachine, writeSnapshotFiles, type SnapshotPaths } from "../../src/vmm/snapshot-io.ts";
import { VirtioNinep } from "../../src/virtio/9p/index.ts";
import { GuestSession } from "../boot/guest-session.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const MOUNT = "mount -t 9p -o trans=virtio,version=9p2000.L";
const BOOT_MS = 300_000;

test("virtio-9p: the guest mounts a read-write and a read-only folder, bytes match both ways, no escape", { timeout: BOOT_MS + 240_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), "parley-share-"));
  const rw = join(base, "rw");
  const ro = join(base, "ro");
  const outside = join(base, "outside");
  for (const dir of [rw, ro, outside]) mkdirSync(dir);
  writeFileSync(join(outside, "secret"), "host secret\n");
  const fromHost = randomBytes(700_000); // larger than any msize: several Tread/Twrite each way
  writeFileSync(join(rw, "from-host.bin"), fromHost);
  writeFileSync(join(ro, "keep"), "read-only content\n");
  symlinkSync("/etc/hostname", join(rw, "abs-link"));
  symlinkSync(join(outside, "secret"), join(rw, "abs-secret"));
  symlinkSync("../outside/secret", join(rw, "rel-secret"));
  symlinkSync(outside, join(rw, "dir-out"));

  // The devices `parley run --share path=RW,tag=hostshare --share path=RO,tag=hostro,readonly=on`
  // makes (src/vmm/machine.ts); the guest session then types each command at the shell.
  const shareDevices = (rwBackend: ShareDir, roBackend: ShareDir) => [
    new VirtioNinep({ backend: rwBackend, tag: "hostshare", name: "virtio-9p0" }),
    new VirtioNinep({ backend: roBackend, tag: "hostro", name: "virtio-9p1" }),
  ];
  const devices = shareDevices(await openShareDir(rw), await openShareDir(ro, { readOnly: true }));
  const img = await buildGuestImage();
  const session = new GuestSession(img, { virtio: devices });
  let restored: GuestSession | undefined;
  const paths: SnapshotPaths = { snapshotPath: join(base, "vm.state"), memFilePath: join(base, "vm.mem") };
  const sh = async (command: string, timeoutMs?: number) => session.run(command, timeoutMs);
  const status = async (command: string) => (await sh(command)).status;
  try {
    await session.shell(BOOT_MS);
    await sh("mkdir -p /mnt/rw /mnt/ro");
    assert.equal(await status(`${MOUNT} hostshare /mnt/rw`), 0);
    assert.equal(await status(`${MOUNT} hostro /mnt/ro`), 0);
    assert.equal((await sh("sha256sum /mnt/rw/from-host.bin", 120_000)).text.split(" ")[0], sha256(fromHost), "the guest reads the host's bytes");
    const made = await sh("dd if=/dev/urandom of=/mnt/rw/from-guest.bin bs=4096 count=200 2>/dev/null && sync && sha256sum /mnt/rw/from-guest.bin", 120_000);
    assert.equal(made.status, 0, made.text);
    const fromGuest = readFileSync(join(rw, "from-guest.bin"));
    assert.equal(fromGuest.length, 200 * 4096);
    assert.equal(made.text.split(" ")[0], sha256(fromGuest), "the host holds the guest's bytes");

    // ".." of the mount is the guest's own /mnt and /, never the host's folder around the share.
    assert.doesNotMatch((await sh("ls -a /mnt/rw/.. /mnt/rw/../..")).text, /outside|secret/);
    // Links to outside are never followed by Parley: the guest's kernel looks their targets up in its own tree.
    for (const path of ["/mnt/rw/abs-secret", "/mnt/rw/rel-secret", "/mnt/rw/dir-out/secret"]) {
      const cat = await sh(`cat ${path}`);
      assert.notEqual(cat.status, 0, path);
      assert.doesNotMatch(cat.text, /host secret/, path);
    }
    assert.doesNotMatch((await sh("ls /mnt/rw/dir-out/")).text, /secret/);
    // The guest's own /etc gets a marker: a link to /etc made in the share leads there, not to the host's.
    assert.equal((await sh("echo guest-etc > /etc/parley-9p-marker && ln -s /etc /mnt/rw/x && cat /mnt/rw/x/parley-9p-marker")).text.trim(), "guest-etc");
    assert.ok(lstatSync(join(rw, "x")).isSymbolicLink() && readlinkSync(join(rw, "x")) === "/etc", "the link is plain data on the host");
    const outLink = await sh(`ln -s ${outside} /mnt/rw/y && cat /mnt/rw/y/secret`);
    assert.notEqual(outLink.status, 0);
    assert.doesNotMatch(outLink.text, /host secret/);
    assert.notEqual(await status("echo planted > /mnt/rw/dir-out/planted"), 0);
    assert.notEqual(await status("ln /etc/passwd /mnt/rw/hard"), 0);
    assert.deepEqual(readdirSync(outside), ["secret"]);
    assert.equal(existsSync(join(rw, "hard")), false);

    // The read-only share: reads work, every change fails.
    assert.equal((await sh("cat /mnt/ro/keep")).text, "read-only content\n");
    for (const command of ["echo x > /mnt/ro/new", "echo x >> /mnt/ro/keep", "rm -f /mnt/ro/keep", "mkdir /mnt/ro/d", "touch -d 2000-01-01 /mnt/ro/keep", "chmod 600 /mnt/ro/keep"]) {
      assert.notEqual(await status(command), 0, command);
    }
    assert.deepEqual(readdirSync(ro), ["keep"]);
    assert.equal(readFileSync(join(ro, "keep"), "utf8"), "read-only content\n");
    assert.ok(devices[0].counters.bytesWritten >= fromGuest.length && devices[0].counters.bytesRead >= fromHost.length);

    // Snapshot with a file open on the share: the restored guest (new devices over the same folders)
    // reads on through the same descriptor, its fid reopened from the saved path, and writes anew.
    assert.equal(await status("exec 3< /mnt/rw/from-host.bin && head -c 1000 <&3 > /dev/null"), 0);
    await session.machine.pause();
    writeSnapshotFiles(session.machine, { harts: session.machine.hartCount }, paths);
    session.machine.stop();
    await session.finished;
    const loaded = openSnapshotFiles(paths);
    try {
      restored = new GuestSession(img, { virtio: shareDevices(await openShareDir(rw), await openShareDir(ro, { readOnly: true })), restore: (machine) => void restoreIntoMachine(machine, loaded) });
    } finally {
      loaded.memory.close();
    }
    const mark = restored.output.length;
    restored.machine.sendInput(new TextEncoder().encode("\n"));
    await restored.waitFor(/root@parley:[^\n]*# /, 30_000, mark);
    const rest = await restored.run("cat <&3 | sha256sum", 120_000);
    assert.equal(rest.text.split(" ")[0], sha256(fromHost.subarray(1000)), "the rest of the open file after the restore");
    assert.equal((await restored.run("exec 3<&- && echo after-restore > /mnt/rw/after && umount /mnt/rw /mnt/ro")).status, 0);
    assert.equal(readFileSync(join(rw, "after"), "utf8"), "after-restore\n");
  } finally {
    for (const s of [session, restored]) s?.machine.stop();
    await Promise.all([session.finished, restored?.finished]);
    rmSync(base, { recursive: true, force: true });
  }
});
