// virtio-net, virtio-balloon and virtio-vsock driven by the Debian guest's own Linux drivers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Socket } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { listenSocketBackend, connectSocketBackend } from "../../src/host/node/net-socket.ts";
import { VirtioNet } from "../../src/virtio/net/device.ts";
import { VirtioBalloon } from "../../src/virtio/balloon/index.ts";
import { memoryReleaser, residentBytes } from "../../src/host/node/memory-release.ts";
import { VirtioVsock } from "../../src/virtio/vsock/index.ts";
import { UdsVsockBackend } from "../../src/host/node/vsock-uds.ts";
import { GuestSession } from "../boot/guest-session.ts";

const BOOT_MS = 300_000;
let imagePromise: Promise<GuestImage> | undefined;
const image = () => (imagePromise ??= buildGuestImage({ add: ["socat"] }));
const tempDir = () => mkdtempSync(join(tmpdir(), "parley-virtio-"));

async function stop(...sessions: GuestSession[]): Promise<void> {
  for (const s of sessions) s.machine.stop();
  await Promise.all(sessions.map((s) => s.finished));
}

test("virtio-net: two Parley guests over the socket backend ping each other and move a file", { timeout: 2 * BOOT_MS }, async () => {
  const img = await image();
  const path = join(tempDir(), "net.sock");
  const listener = await listenSocketBackend(path);
  const connector = await connectSocketBackend(path);
  const macA = Uint8Array.of(0x52, 0x54, 0, 0, 0, 0x0a);
  const macB = Uint8Array.of(0x52, 0x54, 0, 0, 0, 0x0b);
  const a = new GuestSession(img, { virtio: [new VirtioNet({ backend: listener, mac: macA })] });
  const b = new GuestSession(img, { virtio: [new VirtioNet({ backend: connector, mac: macB })] });
  try {
    await Promise.all([a.shell(BOOT_MS), b.shell(BOOT_MS)]);
    assert.match((await a.run("cat /sys/class/net/eth0/address")).text, /52:54:00:00:00:0a/);
    for (const [s, ip] of [[a, "10.0.2.1"], [b, "10.0.2.2"]] as const) {
      const up = await s.run(`ip addr add ${ip}/24 dev eth0 && ip link set eth0 up`);
      assert.equal(up.status, 0, up.text);
    }
    const ping = await a.run("ping -c 3 -W 5 10.0.2.2", 90_000);
    assert.equal(ping.status, 0, ping.text);
    assert.match(ping.text, /3 packets transmitted, 3 (packets )?received/);
    const pingBack = await b.run("ping -c 2 -W 5 10.0.2.1", 90_000);
    assert.equal(pingBack.status, 0, pingBack.text);

    // A 256 KiB file from A to B over TCP (busybox nc), checked by its hash on both sides.
    const made = await a.run("dd if=/dev/urandom of=/tmp/blob bs=1024 count=256 2>/dev/null && md5sum /tmp/blob");
    const hash = made.text.trim().split(/\s+/)[0];
    b.machine.sendInput(new TextEncoder().encode("nc -l -p 7000 > /tmp/got; echo RECEIVED-DONE\n"));
    await new Promise((r) => setTimeout(r, 3000));
    const send = await a.run("nc -w 5 10.0.2.2 7000 < /tmp/blob", 120_000);
    assert.equal(send.status, 0, send.text);
    await b.waitFor(/RECEIVED-DONE/, 120_000);
    assert.equal((await b.run("md5sum /tmp/got")).text.trim().split(/\s+/)[0], hash);
  } finally {
    await stop(a, b);
    await listener.close();
    await connector.close();
  }
});

test("virtio-balloon: statistics arrive, a new target inflates, and freed guest memory leaves the host process", { timeout: BOOT_MS + 180_000 }, async () => {
  const img = await image();
  let release = (_p: number, _l: number) => {};
  const balloon = new VirtioBalloon({ release: (p, l) => release(p, l), statsIntervalMs: 1000 });
  const session = new GuestSession(img, { virtio: [balloon], memory: 512 << 20 });
  const releaser = memoryReleaser(session.machine.hostRam);
  release = releaser;
  try {
    assert.ok(releaser.supported, `madvise is available: ${releaser.reason}`);
    await session.shell(BOOT_MS);
    // Statistics: the driver answers the host's requests on the stats queue.
    const deadline = Date.now() + 60_000;
    while (Object.keys(balloon.stats() ?? {}).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    assert.ok(Object.keys(balloon.stats() ?? {}).length > 0, "balloon statistics arrived");

    // The guest dirties 200 MiB, then frees it; free page reporting hands it back.
    const fill = await session.run("mkdir -p /scratch && mount -t tmpfs -o size=300m tmpfs /scratch && dd if=/dev/zero of=/scratch/f bs=1M count=200 2>/dev/null && sync", 120_000);
    assert.equal(fill.status, 0, fill.text);
    const filled = residentBytes();
    assert.equal((await session.run("rm /scratch/f && umount /scratch && echo 3 > /proc/sys/vm/drop_caches")).status, 0);
    const until = Date.now() + 60_000;
    while (residentBytes() > filled - (100 << 20) && Date.now() < until) await new Promise((r) => setTimeout(r, 1000));
    assert.ok(residentBytes() < filled - (100 << 20), `host RSS fell from ${filled >> 20} MiB to ${residentBytes() >> 20} MiB`);

    // A new target: the guest inflates the balloon to it.
    const target = (64 << 20) / 4096;
    balloon.setTarget(target);
    const inflateBy = Date.now() + 120_000;
    while (balloon.actualPages < target && Date.now() < inflateBy) await new Promise((r) => setTimeout(r, 500));
    assert.equal(balloon.actualPages, target);
    assert.ok(releaser.stats.calls > 0);
  } finally {
    await stop(session);
  }
});

/** Reads from a socket until `pattern` appears. */
function readUntil(socket: Socket, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${pattern}, got ${JSON.stringify(got)}`)), timeoutMs);
    socket.on("data", (d) => {
      got += d.toString();
      if (pattern.test(got)) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

test("virtio-vsock: a host program and a guest program exchange data in both directions", { timeout: BOOT_MS + 180_000 }, async () => {
  const img = await image();
  const uds = join(tempDir(), "vsock.sock");
  const backend = new UdsVsockBackend({ uds });
  await backend.listen();
  const vsock = new VirtioVsock({ guestCid: 3, backend });
  const session = new GuestSession(img, { virtio: [vsock] });
  // Guest-initiated connections to the host's port 6000 arrive at <uds>_6000.
  const hostServer = createServer((sock) => {
    sock.once("data", (d) => sock.end(`host got ${d.toString().trim()}\n`));
  });
  await new Promise<void>((r) => hostServer.listen(`${uds}_6000`, r));
  try {
    await session.shell(BOOT_MS);
    // Host -> guest: the guest echoes upper-cased lines back.
    session.machine.sendInput(new TextEncoder().encode("socat VSOCK-LISTEN:5000,fork EXEC:'tr a-z A-Z' &\n"));
    await new Promise((r) => setTimeout(r, 3000));
    const client = connect(uds);
    await new Promise<void>((r) => client.once("connect", () => r()));
    client.write("CONNECT 5000\n");
    await readUntil(client, /^OK \d+\n/, 30_000);
    const reply = readUntil(client, /HELLO FROM THE HOST/, 30_000);
    client.write("hello from the host\n");
    assert.match(await reply, /HELLO FROM THE HOST/);
    client.destroy();

    // Guest -> host.
    const out = await session.run("echo from-guest | socat - VSOCK-CONNECT:2:6000", 60_000);
    assert.equal(out.status, 0, out.text);
    assert.match(out.text, /host got from-guest/);
  } finally {
    await stop(session);
    hostServer.close();
    await backend.close();
  }
});
