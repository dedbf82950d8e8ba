// virtio-blk, virtio-rng and virtio-console driven by the Debian guest's own Linux drivers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { needsHostTools } from "../support/host-tools.ts";

const debugfs = needsHostTools("debugfs");
import { REPO_ROOT } from "../../src/host/node/paths.ts";
import { openBlockFile } from "../../src/host/node/block-file.ts";
import { VirtioBlk } from "../../src/virtio/blk/device.ts";
import { VirtioRngDevice } from "../../src/virtio/rng/device.ts";
import { GuestSession } from "../boot/guest-session.ts";

const BOOT_MS = 240_000;
const ADD = ["e2fsprogs"];
let imagePromise: Promise<GuestImage> | undefined;
const image = () => (imagePromise ??= buildGuestImage({ add: ADD }));

function scratchImage(megabytes: number): string {
  const path = join(mkdtempSync(join(tmpdir(), "parley-blk-")), "disk.img");
  writeFileSync(path, new Uint8Array(0));
  execFileSync("truncate", ["-s", `${megabytes}M`, path]);
  return path;
}

/** Reads a file out of an ext4 image on the host, with e2fsprogs' debugfs. */
function debugfsCat(imagePath: string, file: string): string {
  return execFileSync("debugfs", ["-R", `cat ${file}`, imagePath], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
}

test("virtio-blk: mkfs, mount, write, sync in the guest; the host reads the file back", { timeout: BOOT_MS + 120_000, skip: debugfs.skip }, async () => {
  debugfs.check();
  const img = await image();
  const path = scratchImage(64);
  const backend = await openBlockFile(path, { id: "data" });
  const blk = new VirtioBlk({ backend });
  const session = new GuestSession(img, { virtio: [blk] });
  try {
    await session.shell(BOOT_MS);
    assert.equal((await session.run("cat /sys/block/vda/serial")).text.trim(), "data");
    assert.equal((await session.run("cat /sys/block/vda/size")).text.trim(), String((64 << 20) / 512));
    const mk = await session.run("mkfs.ext4 -q -F /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt && echo parley-was-here > /mnt/hello.txt && sync && umount /mnt", 180_000);
    assert.equal(mk.status, 0, mk.text);
    assert.equal((await session.run("mount /dev/vda /mnt && cat /mnt/hello.txt && umount /mnt")).text.trim(), "parley-was-here");
    session.machine.sendInput(new TextEncoder().encode("poweroff\n"));
    assert.deepEqual(await session.finished, { reason: "poweroff", code: 0 });
    await blk.drain();
    await backend.close();
    assert.equal(debugfsCat(path, "/hello.txt").trim(), "parley-was-here");
    assert.ok(blk.counters && JSON.stringify(blk.counters).length > 2);
  } finally {
    session.machine.stop();
    await session.finished;
  }
});

test("virtio-blk: data the guest flushed survives killing Parley", { timeout: BOOT_MS + 120_000 }, async () => {
  await image();
  const path = scratchImage(64);
  const child = spawn(process.execPath, [join(REPO_ROOT, "dist/parley.mjs"), "run", "--disk", `path=${path}`], { stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  // The default image has no mkfs.ext4: write raw blocks and flush them with sync (FLUSH requests).
  const marker = "FLUSHED-" + Date.now();
  child.stdin.write(`printf '${marker}' | dd of=/dev/vda bs=512 seek=100 conv=sync 2>/dev/null && sync && echo DONE-$((1+1))\n`);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no DONE marker; output tail:\n${output.slice(-1500)}`)), BOOT_MS);
    const poll = setInterval(() => {
      if (output.includes("DONE-2")) {
        clearInterval(poll);
        clearTimeout(timer);
        child.kill("SIGKILL"); // no shutdown, no chance to write anything more
      }
    }, 20);
    child.on("close", (code) => resolve(code));
  });
  assert.equal(exitCode, null, "killed by the signal");
  const block = readFileSync(path).subarray(100 * 512, 100 * 512 + marker.length);
  assert.equal(new TextDecoder().decode(block), marker);
});

test("virtio-blk: a read-only disk refuses writes in the guest", { timeout: BOOT_MS + 120_000 }, async () => {
  const img = await image();
  const path = scratchImage(16);
  writeFileSync(path, Buffer.alloc(16 << 20, 0x5a));
  const backend = await openBlockFile(path, { readOnly: true });
  const session = new GuestSession(img, { virtio: [new VirtioBlk({ backend })] });
  try {
    await session.shell(BOOT_MS);
    assert.equal((await session.run("cat /sys/block/vda/ro")).text.trim(), "1");
    const write = await session.run("echo x | dd of=/dev/vda bs=512 count=1 conv=sync,fsync");
    assert.notEqual(write.status, 0, "dd to a read-only disk fails");
    assert.equal((await session.run("head -c 4 /dev/vda")).text, "ZZZZ");
  } finally {
    session.machine.stop();
    await session.finished;
    await backend.close();
  }
  assert.ok(readFileSync(path).every((b) => b === 0x5a), "the image is unchanged");
});

test("virtio-blk: direct reads and writes move the right bytes straight to and from guest RAM shared by two harts on threads", { timeout: BOOT_MS + 120_000 }, async () => {
  const img = await image();
  const path = scratchImage(16);
  // A pattern with no repeat within the first 8 MiB (an offset mix-up would show).
  const bytes = new Uint8Array(16 << 20);
  let x = 0x12345678;
  for (let i = 0; i < 8 << 20; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  writeFileSync(path, bytes);
  const expected = createHash("md5").update(bytes.subarray(0, 8 << 20)).digest("hex");
  const backend = await openBlockFile(path);
  const session = new GuestSession(img, { harts: 2, virtio: [new VirtioBlk({ backend })] });
  try {
    await session.shell(BOOT_MS);
    // 1 MiB direct I/O: the kernel splits it over the guest's pages, each a separate buffer.
    const read = await session.run("dd if=/dev/vda bs=1M count=8 iflag=direct 2>/dev/null | md5sum", 120_000);
    assert.equal(read.text.trim().split(/\s+/)[0], expected, read.text);
    const copy = await session.run("dd if=/dev/vda of=/dev/vda bs=1M count=8 seek=8 iflag=direct oflag=direct 2>/dev/null && sync && echo copied", 120_000);
    assert.match(copy.text, /copied/);
  } finally {
    session.machine.stop();
    await session.finished;
    await backend.close();
  }
  const after = readFileSync(path);
  assert.equal(createHash("md5").update(after.subarray(8 << 20)).digest("hex"), expected, "the guest's direct write landed intact");
});

test("virtio-rng: the guest's current hwrng is virtio and /dev/hwrng yields data at no more than the configured rate", { timeout: BOOT_MS + 120_000 }, async () => {
  const img = await image();
  const rate = 8192;
  const burst = 4096;
  const rng = new VirtioRngDevice({ bytesPerSecond: rate, burstBytes: burst });
  const session = new GuestSession(img, { virtio: [rng] });
  try {
    await session.shell(BOOT_MS);
    assert.equal((await session.run("cat /sys/class/misc/hw_random/rng_current")).text.trim(), "virtio_rng.0");
    const before = rng.counters.bytes;
    const started = performance.now();
    const read = await session.run("dd if=/dev/hwrng of=/tmp/random bs=1024 count=24 2>/dev/null && od -An -tx1 /tmp/random | head -n 2", 120_000);
    const seconds = (performance.now() - started) / 1000;
    assert.match(read.text, /[0-9a-f]{2}( [0-9a-f]{2}){10}/, "random bytes come out");
    const delivered = rng.counters.bytes - before;
    assert.ok(delivered >= 24 * 1024, `delivered ${delivered}`);
    // The token bucket: at most burst + rate * elapsed bytes (the guest's own reads started before our clock).
    assert.ok(delivered <= burst + rate * (seconds + 1), `${delivered} bytes in ${seconds.toFixed(1)} s exceeds ${rate} B/s`);
  } finally {
    session.machine.stop();
    await session.finished;
  }
});

test("virtio-console: hvc0 is the main console, in both directions", { timeout: BOOT_MS + 120_000 }, async () => {
  const img = await image();
  const session = new GuestSession(img, { console: "hvc" });
  try {
    await session.shell(BOOT_MS);
    assert.equal((await session.run("tty")).text.trim(), "/dev/hvc0");
    assert.match((await session.run("cat /proc/consoles")).text, /hvc0/);
    assert.equal(session.machine.uart.counters.bytesIn, 0, "input went through virtio-console, not the UART");
  } finally {
    session.machine.stop();
    await session.finished;
  }
});
