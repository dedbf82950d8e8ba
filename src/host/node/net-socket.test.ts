import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DEFAULT_MAX_STREAM_FRAME,
  StreamFrameDecoder,
  connectSocketBackend,
  decodeStreamFrames,
  encodeStreamFrame,
  listenSocketBackend,
} from "./net-socket.ts";
import { VirtioNet } from "../../virtio/net/device.ts";
import { FakeNetDriver, makeFrame } from "../../virtio/testing/net.ts";

const quiet = () => {};

function tempDir(): { dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), "parley-net-"));
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

test("stream framing: 4-byte big-endian length, then the frame", () => {
  assert.deepEqual([...encodeStreamFrame(Uint8Array.of(9, 8, 7))], [0, 0, 0, 3, 9, 8, 7]);
  const big = encodeStreamFrame(new Uint8Array(0x10203));
  assert.deepEqual([...big.subarray(0, 4)], [0, 1, 2, 3]);
  const r = decodeStreamFrames(concat([encodeStreamFrame(Uint8Array.of(1)), encodeStreamFrame(new Uint8Array(0)), Uint8Array.of(0, 0, 0, 5, 1, 2)]));
  assert.deepEqual(r.frames, [Uint8Array.of(1), new Uint8Array(0)]);
  assert.equal(r.pendingBytes, 6);
  assert.equal(r.error, undefined);
});

test("stream framing: any chunking of a stream yields the same frames (fuzz)", () => {
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0), seed % n);
  for (let round = 0; round < 200; round++) {
    const frames = Array.from({ length: rand(12) }, (_, i) => {
      const len = rand(5) === 0 ? 0 : rand(3) === 0 ? 1000 + rand(3000) : rand(100);
      return Uint8Array.from({ length: len }, (_, j) => (j * 31 + i + round) & 0xff);
    });
    const stream = concat(frames.map(encodeStreamFrame));
    const decoder = new StreamFrameDecoder(4096);
    const got: Uint8Array[] = [];
    for (let pos = 0; pos < stream.length; ) {
      const size = rand(4) === 0 ? 1 + rand(3) : 1 + rand(2000);
      const r = decoder.push(stream.subarray(pos, pos + size));
      assert.equal(r.error, undefined);
      got.push(...r.frames);
      pos += size;
    }
    assert.deepEqual(got, frames);
    assert.equal(decoder.pendingBytes, 0);
    // A cut stream leaves the tail pending and yields only whole frames.
    if (stream.length > 0) {
      const cut = rand(stream.length);
      const partial = decodeStreamFrames(stream.subarray(0, cut), 4096);
      assert.ok(partial.frames.length <= frames.length);
      assert.deepEqual(partial.frames, frames.slice(0, partial.frames.length));
    }
  }
});

test("stream framing: random garbage never throws; oversize lengths fail without allocating", () => {
  let seed = 3;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0), seed % n);
  for (let round = 0; round < 500; round++) {
    const decoder = new StreamFrameDecoder(1518);
    for (let i = 0; i < 10; i++) {
      const chunk = Uint8Array.from({ length: rand(64) }, () => (rand(4) === 0 ? rand(256) : rand(8)));
      const r = decoder.push(chunk);
      for (const f of r.frames) assert.ok(f.length <= 1518);
      if (r.error) {
        assert.match(r.error, /limit is 1518/);
        assert.equal(decoder.push(Uint8Array.of(0, 0, 0, 1, 1)).frames.length, 0); // stays failed
        break;
      }
    }
  }
  const r = decodeStreamFrames(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 2, 3));
  assert.match(r.error!, /4294967295/);
  assert.equal(decodeStreamFrames(encodeStreamFrame(new Uint8Array(DEFAULT_MAX_STREAM_FRAME))).frames.length, 1);
  assert.ok(decodeStreamFrames(encodeStreamFrame(new Uint8Array(DEFAULT_MAX_STREAM_FRAME + 1))).error);
});

test("two VirtioNet devices exchange frames over listen/connect on a Unix socket", async () => {
  using tmp = tempDir();
  const path = join(tmp.dir, "net.sock");
  const a = await listenSocketBackend(path, { log: quiet });
  // The client may start first: it retries until the listener exists (here it already does).
  const b = await connectSocketBackend(path, { log: quiet });
  try {
    const devA = new VirtioNet({ backend: a, mac: Uint8Array.of(0x52, 0x54, 0, 0, 0, 0xa) });
    const devB = new VirtioNet({ backend: b, mac: Uint8Array.of(0x52, 0x54, 0, 0, 0, 0xb) });
    const guestA = new FakeNetDriver(devA).activate();
    const guestB = new FakeNetDriver(devB).activate();
    await until(() => a.linkUp && b.linkUp, "both ends connected");
    guestA.postReceiveBuffers(64, 1530);
    guestB.postReceiveBuffers(64, 1530);
    const aToB = Array.from({ length: 40 }, (_, i) => makeFrame(14 + ((i * 97) % 1505), { seed: i }));
    const bToA = Array.from({ length: 30 }, (_, i) => makeFrame(60 + i, { seed: 100 + i }));
    for (const f of aToB) guestA.transmit(f, { split: 300 });
    for (const f of bToA) guestB.transmit(f);
    const gotB: Uint8Array[] = [];
    const gotA: Uint8Array[] = [];
    await until(() => {
      gotB.push(...guestB.takeReceived().map((p) => p.frame));
      gotA.push(...guestA.takeReceived().map((p) => p.frame));
      return gotB.length >= aToB.length && gotA.length >= bToA.length;
    }, "frames to cross");
    assert.deepEqual(gotB, aToB);
    assert.deepEqual(gotA, bToA);
    assert.equal(devA.counters.txFrames, 40);
    assert.equal(devB.counters.rxFrames, 40);
    assert.equal(a.counters.framesSent, 40);
    assert.equal(b.counters.framesReceived, 40);
    assert.match(a.description, /listen:.*connected/);
  } finally {
    await a.close();
    await b.close();
  }
  assert.equal(existsSync(path), false, "the socket file is removed on close");
});

test("RX backpressure over the socket: frames wait while the guest has no buffers, none lost", async () => {
  using tmp = tempDir();
  const path = join(tmp.dir, "bp.sock");
  const a = await listenSocketBackend(path, { log: quiet });
  const b = await connectSocketBackend(path, { log: quiet });
  try {
    const devA = new VirtioNet({ backend: a, mac: Uint8Array.of(0x52, 0x54, 0, 0, 0, 0xa) });
    const devB = new VirtioNet({ backend: b, mac: Uint8Array.of(0x52, 0x54, 0, 0, 0, 0xb), hostQueueFrames: 8 });
    const guestA = new FakeNetDriver(devA).activate();
    const guestB = new FakeNetDriver(devB).activate();
    await until(() => a.linkUp, "connection");
    const frames = Array.from({ length: 100 }, (_, i) => makeFrame(200, { seed: i }));
    for (const f of frames) guestA.transmit(f);
    await until(() => devB.counters.rxQueued > 0, "frames to queue");
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(devB.counters.rxPauses >= 1);
    // Hand out buffers a few at a time, as a slow guest would.
    const got: Uint8Array[] = [];
    await until(() => {
      if (guestB.rxq.available.length < 4) guestB.postReceiveBuffers(4);
      got.push(...guestB.takeReceived().map((p) => p.frame));
      return got.length >= frames.length;
    }, "all frames");
    assert.deepEqual(got, frames);
    assert.equal(devB.counters.rxDrops.queueFull, 0);
  } finally {
    await a.close();
    await b.close();
  }
});

test("connect retries until the listener appears", async () => {
  using tmp = tempDir();
  const path = join(tmp.dir, "late.sock");
  const connecting = connectSocketBackend(path, { log: quiet, retryIntervalMs: 20, connectTimeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 150));
  const a = await listenSocketBackend(path, { log: quiet });
  const b = await connecting;
  await until(() => a.linkUp, "connection");
  await b.close();
  await until(() => !a.linkUp, "disconnect seen by the listener");
  await a.close();
});

test("connect gives up with a clear error when nothing listens", async () => {
  using tmp = tempDir();
  const path = join(tmp.dir, "none.sock");
  const t0 = Date.now();
  await assert.rejects(connectSocketBackend(path, { connectTimeoutMs: 300, retryIntervalMs: 50 }), /nothing is listening on .*none\.sock.*socket=listen:/);
  assert.ok(Date.now() - t0 < 3000);
  // A regular file at the path: also "refused" at connect (ECONNREFUSED), and an error for listen.
  writeFileSync(path, "x");
  await assert.rejects(listenSocketBackend(path, { log: quiet }), /exists and is not a socket/);
  await assert.rejects(listenSocketBackend(join(tmp.dir, "no/such/dir/x.sock"), { log: quiet }), /cannot listen.*directory does not exist/);
  await assert.rejects(listenSocketBackend("/tmp/" + "x".repeat(120)), /longer than the 107 bytes/);
});

test("listen: a live listener is an error, a stale socket file is replaced", async () => {
  using tmp = tempDir();
  const path = join(tmp.dir, "busy.sock");
  const a = await listenSocketBackend(path, { log: quiet });
  await assert.rejects(listenSocketBackend(path, { log: quiet }), /already in use/);
  await a.close();
  // Leave a stale socket file behind: a listener killed before it could clean up.
  spawnSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`]);
  assert.ok(existsSync(path));
  const b = await listenSocketBackend(path, { log: quiet });
  const c = await connectSocketBackend(path, { log: quiet });
  await until(() => b.linkUp, "connection after replacing a stale file");
  await c.close();
  await b.close();
});

test("listen: frames before a peer are dropped; one peer at a time; a bad peer is cut off", async () => {
  using tmp = tempDir();
  const path = join(tmp.dir, "one.sock");
  const logs: string[] = [];
  const a = await listenSocketBackend(path, { log: (m) => logs.push(m), maxFrameLength: 2000 });
  const received: Uint8Array[] = [];
  a.onReceive((f) => received.push(f));
  try {
    a.send(makeFrame(64));
    assert.equal(a.counters.sendDrops["no-peer"], 1);
    assert.match(a.description, /waiting for a peer/);

    // A raw peer speaking the framing directly (as QEMU would).
    const peer = net.connect(path);
    await new Promise((r) => peer.once("connect", r));
    await until(() => a.linkUp, "first peer");
    const second = net.connect(path);
    const secondClosed = new Promise((r) => second.once("close", r));
    second.on("error", () => {});
    await secondClosed;
    assert.ok(logs.some((l) => /refusing a second peer/.test(l)));

    peer.write(concat([encodeStreamFrame(makeFrame(20)), encodeStreamFrame(makeFrame(30)).subarray(0, 10)]));
    await until(() => received.length === 1, "first frame");
    peer.write(encodeStreamFrame(makeFrame(30)).subarray(10));
    await until(() => received.length === 2, "second frame");
    assert.deepEqual(received, [makeFrame(20), makeFrame(30)]);

    // And frames flow back to the raw peer, framed.
    const back: Buffer[] = [];
    peer.on("data", (d: Buffer) => back.push(d));
    a.send(makeFrame(50));
    await until(() => back.reduce((n, b) => n + b.length, 0) >= 54, "frame to the peer");
    assert.deepEqual(decodeStreamFrames(concat(back)).frames, [makeFrame(50)]);

    // An announced length over the limit: the connection is dropped, the listener survives.
    const peerClosed = new Promise((r) => peer.once("close", r));
    peer.on("error", () => {});
    peer.write(Uint8Array.of(0x7f, 0xff, 0xff, 0xff, 0, 0));
    await peerClosed;
    await until(() => !a.linkUp, "listener to notice");
    assert.ok(logs.some((l) => /frame length of 2147483647 bytes.*dropping the connection/.test(l)));
    assert.equal(a.counters.receiveDrops["protocol-error"], 1);

    const b = await connectSocketBackend(path, { log: quiet });
    await until(() => a.linkUp, "next peer");
    b.send(makeFrame(40));
    await until(() => received.length === 3, "frame from the next peer");
    await b.close();
  } finally {
    await a.close();
  }
});

test("link changes are reported; send after the peer leaves is dropped", async () => {
  using tmp = tempDir();
  const path = join(tmp.dir, "link.sock");
  const a = await listenSocketBackend(path, { log: quiet });
  const links: boolean[] = [];
  a.onLinkChange((up) => links.push(up));
  const b = await connectSocketBackend(path, { log: quiet });
  await until(() => links.length === 1, "link up");
  await b.close();
  await until(() => links.length === 2, "link down");
  assert.deepEqual(links, [true, false]);
  b.send(makeFrame(64));
  assert.equal(b.counters.sendDrops["no-peer"], 1);
  await a.close();
  await a.close(); // idempotent
});

test("send drops when the peer does not read (congestion), and counts it", async () => {
  using tmp = tempDir();
  const path = join(tmp.dir, "slow.sock");
  const a = await listenSocketBackend(path, { log: quiet });
  // A raw peer that never reads.
  const peer = net.connect(path);
  peer.pause();
  await until(() => a.linkUp, "connection");
  try {
    for (let i = 0; i < 5000; i++) a.send(makeFrame(1500));
    assert.ok((a.counters.sendDrops["congested"] ?? 0) > 0);
    assert.ok(a.counters.framesSent > 0);
  } finally {
    peer.destroy();
    await a.close();
  }
});
