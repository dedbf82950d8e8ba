import { test } from "node:test";
import { FakeClock } from "../../testing/fakes.ts";
import { SnapshotError } from "../../platform/persist.ts";
import assert from "node:assert/strict";
import { VirtioNet, planReceive, type VirtioNetOptions } from "./device.ts";
import { VirtqueueError } from "../types.ts";
import {
  RECEIVEQ1,
  TRANSMITQ1,
  VIRTIO_F_VERSION_1,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  featureBit,
} from "./header.ts";
import { FakeBackend, FakeNetDriver, makeFrame } from "../testing/net.ts";
import { FakeGuestMemory } from "../../testing/fakes.ts";

const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);

function setup(options: Partial<VirtioNetOptions> = {}, driverOptions: { features?: bigint; memory?: FakeGuestMemory } = {}) {
  const backend = new FakeBackend();
  const device = new VirtioNet({ backend, mac: MAC, ...options });
  const driver = new FakeNetDriver(device, driverOptions).activate();
  return { backend, device, driver };
}

test("identity, features and configuration space (5.1.1, 5.1.3, 5.1.4)", () => {
  const backend = new FakeBackend();
  const dev = new VirtioNet({ backend, mac: MAC, mtu: 9000, name: "virtio-net1" });
  assert.equal(dev.deviceId, 1);
  assert.equal(dev.name, "virtio-net1");
  assert.deepEqual(dev.queueSizes, [256, 256]);
  const want = featureBit(VIRTIO_NET_F_MAC) | featureBit(VIRTIO_NET_F_MTU) | featureBit(VIRTIO_NET_F_STATUS) | featureBit(VIRTIO_NET_F_MRG_RXBUF);
  assert.equal(dev.deviceFeatures, want);
  assert.equal(dev.deviceFeatures & featureBit(VIRTIO_NET_F_CSUM), 0n);
  for (let i = 0; i < 6; i++) assert.equal(dev.readConfig(i, 1), MAC[i]);
  assert.equal(dev.readConfig(0, 4), 0x12005452);
  assert.equal(dev.readConfig(4, 2), 0x5634);
  assert.equal(dev.readConfig(6, 2), 1); // status: VIRTIO_NET_S_LINK_UP
  assert.equal(dev.readConfig(8, 2), 1); // max_virtqueue_pairs
  assert.equal(dev.readConfig(10, 2), 9000); // mtu
  assert.equal(dev.readConfig(8, 4), (9000 << 16) | 1);
  assert.equal(dev.readConfig(11, 2), undefined);
  assert.equal(dev.readConfig(12, 1), undefined);
  assert.equal(dev.readConfig(0, 8), undefined);
  assert.equal(dev.readConfig(0, 3), undefined);
  assert.equal(dev.readConfig(-1, 1), undefined);
  // 5.1.4.2: the driver must not write; writes are ignored (not faulted) inside the structure.
  assert.equal(dev.writeConfig(0, 1, 0xff), true);
  assert.equal(dev.readConfig(0, 1), 0x52);
  assert.equal(dev.writeConfig(12, 1, 0), false);
  assert.equal(dev.counters.configWritesIgnored, 1);
  assert.equal(new VirtioNet({ backend, mac: MAC, mergeableRxBuffers: false }).deviceFeatures & featureBit(VIRTIO_NET_F_MRG_RXBUF), 0n);
  assert.equal(new VirtioNet({ backend, mac: MAC }).readConfig(10, 2), 1500);
});

test("constructor validates mtu, mac and queue size", () => {
  const backend = new FakeBackend();
  assert.throws(() => new VirtioNet({ backend, mac: MAC, mtu: 67 }), /mtu/);
  assert.throws(() => new VirtioNet({ backend, mac: MAC, mtu: 65536 }), /mtu/);
  assert.throws(() => new VirtioNet({ backend, mac: Uint8Array.of(1, 2, 3, 4, 5, 6) }), /multicast/);
  assert.throws(() => new VirtioNet({ backend, mac: new Uint8Array(5) }), /6 bytes/);
  assert.throws(() => new VirtioNet({ backend, mac: MAC, queueSize: 100 }), /power of two/);
  assert.throws(() => new VirtioNet({ backend, mac: MAC, hostQueueFrames: 0 }), /hostQueueFrames/);
});

test("link status changes raise a configuration interrupt", () => {
  const { device, driver } = setup();
  device.setLinkUp(false);
  assert.equal(device.readConfig(6, 2), 0);
  assert.equal(driver.context.configChanges, 1);
  device.setLinkUp(false);
  assert.equal(driver.context.configChanges, 1);
  device.setLinkUp(true);
  assert.equal(device.readConfig(6, 2), 1);
  assert.equal(driver.context.configChanges, 2);
});

test("TX: frames reach the backend without the header, in any descriptor layout", () => {
  const { backend, device, driver } = setup();
  const frames = [makeFrame(14), makeFrame(60, { seed: 1 }), makeFrame(1518, { seed: 2 }), makeFrame(500, { seed: 3 })];
  driver.transmit(frames[0]);
  driver.transmit(frames[1], { split: 5 }); // header itself split across descriptors
  driver.transmit(frames[2], { split: 12 }); // header alone, then the frame in pieces
  driver.transmit(frames[3], { split: 1 });
  assert.deepEqual(backend.sent, frames);
  const used = driver.takeTransmitted();
  assert.equal(used.length, 4);
  assert.ok(used.every((u) => u.written === 0));
  assert.deepEqual(driver.context.notified, [TRANSMITQ1, TRANSMITQ1, TRANSMITQ1, TRANSMITQ1]);
  assert.equal(device.counters.txFrames, 4);
  assert.equal(device.counters.txBytes, 14 + 60 + 1518 + 500);
  assert.deepEqual(driver.context.resetReasons, []);
});

test("TX: several chains per kick are processed together", () => {
  const { backend, driver } = setup();
  for (let i = 0; i < 10; i++) driver.transmit(makeFrame(64, { seed: i }), { kick: false });
  driver.device.queueNotify(TRANSMITQ1);
  assert.equal(backend.sent.length, 10);
  assert.deepEqual(driver.context.notified, [TRANSMITQ1]);
});

test("TX: MTU violations, runts and offload requests are dropped and counted", () => {
  const { backend, device, driver } = setup({ mtu: 1500 });
  driver.transmit(makeFrame(1519));
  driver.transmit(makeFrame(13));
  driver.transmit(new Uint8Array(0));
  driver.transmit(makeFrame(100), { header: { flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 34, csumOffset: 16 } });
  driver.transmit(makeFrame(100), { header: { gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448 } });
  driver.transmit(makeFrame(100), { header: { flags: 0x80, numBuffers: 3, hdrLen: 54 } }); // ignored bits
  assert.equal(backend.sent.length, 1);
  assert.equal(device.counters.txDrops.oversize, 1);
  assert.equal(device.counters.txDrops.runt, 2);
  assert.equal(device.counters.txDrops.offload, 2);
  assert.equal(driver.takeTransmitted().length, 6); // every chain goes back to the driver
  assert.deepEqual(driver.context.resetReasons, []);
});

test("TX: malformed chains ask for a reset and stop the device", () => {
  // Shorter than struct virtio_net_hdr.
  {
    const { backend, device, driver } = setup();
    const addr = driver.memory.alloc(8);
    driver.txq.add([{ addr, len: 8 }], []);
    device.queueNotify(TRANSMITQ1);
    assert.equal(driver.context.resetReasons.length, 1);
    assert.match(driver.context.resetReasons[0], /shorter than struct virtio_net_hdr/);
    driver.transmit(makeFrame(64));
    assert.equal(backend.sent.length, 0);
    assert.equal(device.counters.needsReset, 1);
  }
  // Device-writable buffers in a transmit chain.
  {
    const { driver } = setup();
    const addr = driver.memory.alloc(100);
    driver.txq.add([{ addr, len: 80 }], [{ addr, len: 20 }]);
    driver.device.queueNotify(TRANSMITQ1);
    assert.match(driver.context.resetReasons[0], /device-writable/);
  }
  // Buffers outside guest RAM (a chain the core did not vet, as a fuzz would produce).
  {
    const { driver } = setup();
    driver.txq.add([{ addr: 0x1000, len: 100 }], []);
    driver.device.queueNotify(TRANSMITQ1);
    assert.match(driver.context.resetReasons[0], /outside guest RAM/);
  }
  // A malformed ring reported by the queue.
  {
    const { backend, driver } = setup();
    driver.transmit(makeFrame(64), { kick: false });
    driver.txq.nextError = "descriptor loop";
    driver.device.queueNotify(TRANSMITQ1);
    assert.match(driver.context.resetReasons[0], /descriptor loop/);
    assert.equal(backend.sent.length, 0);
  }
});

test("TX: an oversize length is refused before anything is allocated or read", () => {
  const { backend, device, driver } = setup();
  // A chain claiming ~4 GiB: never read (it is not even in RAM) and not a reason to reset.
  driver.txq.add(
    [
      { addr: driver.memory.alloc(12), len: 12 },
      { addr: 0x10_0000_0000, len: 0xffff_fff0 },
    ],
    [],
  );
  device.queueNotify(TRANSMITQ1);
  assert.equal(device.counters.txDrops.oversize, 1);
  assert.equal(backend.sent.length, 0);
  assert.deepEqual(driver.context.resetReasons, []);
});

test("RX: frames go into receive buffers with a header (num_buffers 1)", () => {
  const { backend, device, driver } = setup();
  driver.postReceiveBuffers(4, 1530); // Linux: 12 + 1518 (GOOD_PACKET_LEN)
  const frames = [makeFrame(60), makeFrame(1518, { seed: 5 }), makeFrame(14)];
  for (const f of frames) backend.inject(f);
  const got = driver.takeReceived();
  assert.deepEqual(
    got.map((p) => p.frame),
    frames,
  );
  for (const p of got) {
    assert.equal(p.header.numBuffers, 1);
    assert.equal(p.header.flags, 0);
    assert.equal(p.header.gsoType, 0);
  }
  assert.deepEqual(driver.rxq.used.map((u) => u.written), [72, 1530, 26]);
  assert.equal(device.counters.rxFrames, 3);
  assert.equal(device.counters.rxBytes, 60 + 1518 + 14);
  assert.ok(driver.context.notified.includes(RECEIVEQ1));
  assert.equal(backend.paused, false);
});

test("RX: MRG_RXBUF spreads a packet over buffers, num_buffers counts them (5.1.6.4.1)", () => {
  const { device, backend, driver } = setup();
  driver.postReceiveBuffers(40, 100, { split: 30 });
  const frame = makeFrame(1000, { seed: 9 });
  backend.inject(frame);
  const [p] = driver.takeReceived();
  assert.equal(p.buffers, 11); // (12 + 1000) / 100, rounded up
  assert.equal(p.header.numBuffers, 11);
  assert.deepEqual(p.frame, frame);
  const written = driver.rxq.used.map((u) => u.written);
  assert.deepEqual(written, [100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 12]);
  assert.equal(device.counters.rxMergedPackets, 1);
  // The next packet starts in a fresh buffer.
  backend.inject(makeFrame(50));
  const [q] = driver.takeReceived();
  assert.equal(q.buffers, 1);
  assert.deepEqual(q.frame, makeFrame(50));
});

test("RX: without MRG_RXBUF a packet uses one buffer; too-small buffers come back empty", () => {
  const features = featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_NET_F_MAC) | featureBit(VIRTIO_NET_F_MTU);
  const { device, backend, driver } = setup({}, { features });
  driver.postReceiveBuffers(1, 100);
  driver.postReceiveBuffers(1, 1526, { split: 500 });
  backend.inject(makeFrame(200));
  assert.equal(device.counters.rxDrops.bufferTooSmall, 1);
  assert.equal(driver.rxq.used[0].written, 0);
  backend.inject(makeFrame(1514));
  const got = driver.takeReceived();
  assert.equal(got.length, 1);
  assert.deepEqual(got[0].frame, makeFrame(1514));
  assert.equal(got[0].header.numBuffers, 1);
});

test("RX: legacy driver (no VERSION_1, no MRG_RXBUF) gets the 10-byte header", () => {
  const { backend, driver } = setup({}, { features: featureBit(VIRTIO_NET_F_MAC) });
  assert.equal(driver.headerSize, 10);
  driver.postReceiveBuffers(1);
  backend.inject(makeFrame(64));
  assert.equal(driver.rxq.used[0].written, 74);
  assert.deepEqual(driver.takeReceived()[0].frame, makeFrame(64));
  driver.transmit(makeFrame(64));
  assert.deepEqual(backend.sent, [makeFrame(64)]);
});

test("RX without buffers: frames wait on the host side, the backend pauses, a kick delivers", () => {
  const { backend, device, driver } = setup();
  // No kicks needed while nothing waits.
  assert.equal(driver.rxq.notificationsEnabled, false);
  const frames = [0, 1, 2, 3, 4].map((i) => makeFrame(100 + i, { seed: i }));
  for (const f of frames) backend.inject(f);
  assert.equal(device.counters.rxQueued, 5);
  assert.equal(backend.paused, true);
  assert.equal(driver.rxq.notificationsEnabled, true); // the driver will kick when it adds buffers
  assert.equal(driver.takeReceived().length, 0);
  driver.postReceiveBuffers(3);
  assert.deepEqual(
    driver.takeReceived().map((p) => p.frame),
    frames.slice(0, 3),
  );
  assert.equal(backend.paused, true);
  driver.postReceiveBuffers(10);
  assert.deepEqual(
    driver.takeReceived().map((p) => p.frame),
    frames.slice(3),
  );
  assert.equal(backend.paused, false);
  assert.equal(backend.resumes, 1);
  assert.equal(device.counters.rxQueued, 0);
  assert.equal(device.counters.rxQueuedPeak, 5);
  assert.equal(driver.rxq.notificationsEnabled, false);
  // Buffers now wait; a new frame goes straight in.
  backend.inject(makeFrame(70));
  assert.equal(driver.takeReceived().length, 1);
});

test("RX: buffers added without a kick are found when notifications are re-enabled", () => {
  const { backend, driver } = setup();
  driver.postReceiveBuffers(2, 1526, { kick: false });
  backend.inject(makeFrame(64));
  backend.inject(makeFrame(65));
  assert.equal(driver.takeReceived().length, 2);
});

test("RX: the host-side queue is bounded; the excess is dropped and counted", () => {
  const { backend, device, driver } = setup({ hostQueueFrames: 4 });
  for (let i = 0; i < 10; i++) backend.inject(makeFrame(64, { seed: i }));
  assert.equal(device.counters.rxQueued, 4);
  assert.equal(device.counters.rxDrops.queueFull, 6);
  driver.postReceiveBuffers(10);
  assert.deepEqual(
    driver.takeReceived().map((p) => p.frame),
    [0, 1, 2, 3].map((i) => makeFrame(64, { seed: i })),
  );
});

test("RX: MRG_RXBUF waits for enough buffers, holding the ones it has", () => {
  const { backend, driver } = setup();
  driver.postReceiveBuffers(2, 100);
  const frame = makeFrame(400, { seed: 3 });
  backend.inject(frame);
  assert.equal(driver.rxq.used.length, 0); // nothing returned until the packet fits
  driver.postReceiveBuffers(1, 100);
  assert.equal(driver.rxq.used.length, 0);
  driver.postReceiveBuffers(2, 100);
  const [p] = driver.takeReceived();
  assert.equal(p.buffers, 5);
  assert.deepEqual(p.frame, frame);
  assert.equal(driver.rxq.available.length, 0);
});

test("RX: MRG_RXBUF buffers that can never hold the packet are returned empty", () => {
  const { backend, device, driver } = setup({ queueSize: 4 });
  driver.postReceiveBuffers(4, 12); // header-sized buffers only
  backend.inject(makeFrame(60));
  assert.equal(device.counters.rxDrops.bufferTooSmall, 1);
  assert.deepEqual(driver.rxq.used.map((u) => u.written), [0, 0, 0, 0]);
  assert.deepEqual(driver.context.resetReasons, []);
});

test("RX: oversize and runt frames from the host, and frames before DRIVER_OK, are dropped", () => {
  const backend = new FakeBackend();
  const device = new VirtioNet({ backend, mac: MAC, mtu: 1500 });
  backend.inject(makeFrame(100));
  assert.equal(device.counters.rxDrops.notReady, 1);
  const driver = new FakeNetDriver(device).activate();
  driver.postReceiveBuffers(4);
  backend.inject(makeFrame(1519));
  backend.inject(makeFrame(13));
  assert.equal(device.counters.rxDrops.oversize, 1);
  assert.equal(device.counters.rxDrops.runt, 1);
  assert.equal(driver.rxq.used.length, 0);
});

test("RX: malformed receive buffers ask for a reset", () => {
  {
    const { backend, driver } = setup();
    const addr = driver.memory.alloc(2000);
    driver.rxq.add([{ addr, len: 10 }], [{ addr: addr + 10, len: 1600 }]);
    backend.inject(makeFrame(64));
    assert.match(driver.context.resetReasons[0], /device-readable/);
  }
  {
    const { backend, driver } = setup();
    driver.postReceiveBuffers(1, 11);
    backend.inject(makeFrame(64));
    assert.match(driver.context.resetReasons[0], /smaller than struct virtio_net_hdr/);
  }
  {
    const { backend, device, driver } = setup();
    driver.rxq.add([], [{ addr: 0x10, len: 2000 }]);
    backend.inject(makeFrame(64));
    assert.match(driver.context.resetReasons[0], /outside guest RAM/);
    // Afterwards frames are dropped, not queued.
    backend.inject(makeFrame(64));
    assert.equal(device.counters.rxDrops.notReady, 1);
    assert.equal(backend.paused, false);
  }
  {
    const { backend, driver } = setup();
    driver.rxq.nextError = "bad avail index";
    backend.inject(makeFrame(64));
    assert.match(driver.context.resetReasons[0], /bad avail index/);
  }
});

test("reset drops queued frames and resumes the backend; the device works after re-activation", () => {
  const { backend, device, driver } = setup();
  backend.inject(makeFrame(64));
  backend.inject(makeFrame(64));
  assert.equal(backend.paused, true);
  device.reset();
  assert.equal(backend.paused, false);
  assert.equal(device.counters.rxDrops.reset, 2);
  backend.inject(makeFrame(64));
  assert.equal(device.counters.rxDrops.notReady, 1);
  const again = new FakeNetDriver(device).activate();
  again.postReceiveBuffers(1);
  backend.inject(makeFrame(80));
  assert.deepEqual(again.takeReceived()[0].frame, makeFrame(80));
  void driver;
});

test("planReceive: all buffers but the last are filled", () => {
  assert.deepEqual(planReceive([100, 100, 100], 250), [100, 100, 50]);
  assert.deepEqual(planReceive([100, 100, 100], 100), [100]);
  assert.deepEqual(planReceive([1526], 74), [74]);
  assert.equal(planReceive([10, 10], 21), undefined);
  assert.deepEqual(planReceive([], 0), []);
});

test("fuzz: random chains never throw, never write outside RAM, and either work or ask for reset", () => {
  let seed = 99;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0), seed % n);
  for (let round = 0; round < 300; round++) {
    const mergeable = rand(2) === 0;
    const features = featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_NET_F_MAC) | (mergeable ? featureBit(VIRTIO_NET_F_MRG_RXBUF) : 0n);
    const memory = new FakeGuestMemory(1 << 16, 0x8000_0000);
    const { backend, device, driver } = setup({ queueSize: 8, hostQueueFrames: 3 }, { features, memory });
    const randomBuffer = () => {
      const kind = rand(10);
      const len = kind === 0 ? 0x7fff_ffff : rand(3000);
      const addr = kind === 1 ? rand(0x1_0000_0000) : kind === 2 ? memory.base + memory.bytes.length - rand(50) : memory.alloc(Math.min(len, 4000));
      return { addr, len };
    };
    for (let step = 0; step < 20; step++) {
      const action = rand(4);
      if (action === 0) {
        const readable = Array.from({ length: rand(4) }, randomBuffer);
        const writable = rand(5) === 0 ? [randomBuffer()] : [];
        if (rand(2)) {
          // Sometimes a well-formed transmit chain.
          driver.transmit(makeFrame(rand(1600)), { split: 1 + rand(200), kick: false });
        } else driver.txq.add(readable, writable);
        device.queueNotify(TRANSMITQ1);
      } else if (action === 1) {
        const readable = rand(6) === 0 ? [randomBuffer()] : [];
        const writable = Array.from({ length: 1 + rand(3) }, randomBuffer);
        driver.rxq.add(readable, writable);
        device.queueNotify(RECEIVEQ1);
      } else if (action === 2) {
        backend.inject(makeFrame(rand(1700), { seed: step }));
      } else if (rand(10) === 0) {
        driver.rxq.nextError = "fuzz";
        device.queueNotify(RECEIVEQ1);
      }
    }
    // Every frame the backend got is a well-sized frame.
    for (const f of backend.sent) assert.ok(f.length >= 14 && f.length <= 1518);
    assert.ok(driver.context.resetReasons.length <= 1);
    assert.ok(device.counters.rxQueued <= 3);
  }
});

test("a new device on a backend an old one left paused resumes it (machine rebuilt on reboot)", () => {
  const { backend } = setup();
  backend.inject(makeFrame(64));
  assert.equal(backend.paused, true);
  const next = new VirtioNet({ backend, mac: MAC });
  assert.equal(backend.paused, false);
  const driver = new FakeNetDriver(next).activate();
  driver.postReceiveBuffers(1);
  backend.inject(makeFrame(70));
  assert.deepEqual(driver.takeReceived()[0].frame, makeFrame(70));
});

test("a queue error from pushUsed on the receive path becomes a reset request, not an exception", () => {
  const { backend, driver } = setup();
  driver.postReceiveBuffers(1);
  driver.rxq.pushUsed = () => {
    throw new VirtqueueError("used ring not writable");
  };
  backend.inject(makeFrame(64)); // must not throw into the backend's event handler
  assert.match(driver.context.resetReasons[0], /used ring not writable/);
});

test("rate limiters: tx frames wait in the ring for tokens, rx frames wait on the host side; both change at run time", () => {
  const clock = new FakeClock();
  const { backend, device, driver } = setup({ clock, txRateLimiter: { ops: { size: 2, refill_time: 100 } }, rxRateLimiter: { bandwidth: { size: 1000, refill_time: 100 } } });
  for (let i = 0; i < 3; i++) driver.transmit(makeFrame(100, { seed: i }), { kick: false });
  device.queueNotify(1);
  assert.equal(backend.sent.length, 2);
  assert.equal(driver.txq.available.length, 1, "the third frame is still in the ring");
  assert.equal(device.rateLimiterCounters.tx.throttled, 1);
  clock.advance(50);
  assert.equal(backend.sent.length, 3, "sent when a token refilled");

  driver.postReceiveBuffers(4);
  backend.inject(makeFrame(600, { seed: 7 }));
  backend.inject(makeFrame(600, { seed: 8 }));
  assert.equal(driver.takeReceived().length, 1, "the second frame waits for bandwidth");
  assert.equal(backend.paused, true, "the backend holds further frames meanwhile");
  clock.advance(20);
  assert.equal(driver.takeReceived().length, 1);
  assert.equal(backend.paused, false);

  device.updateRateLimiter({ tx: { ops: { size: 0, refill_time: 0 } } });
  assert.deepEqual(device.txRateLimiter, {});
  assert.deepEqual(device.rxRateLimiter, { bandwidth: { size: 1000, refill_time: 100 } });
  for (let i = 0; i < 5; i++) driver.transmit(makeFrame(100, { seed: i }));
  assert.equal(backend.sent.length, 8);
});

test("snapshot: state round trip (MAC, link, counters, limiters); bad input refused without change", async () => {
  const { device, backend } = setup({ txRateLimiter: { bandwidth: { size: 5000, refill_time: 10 } } });
  backend.inject(makeFrame(80));
  device.setLinkUp(false);
  await device.quiesce();
  const good = JSON.parse(JSON.stringify(device.saveState()));
  assert.equal(good.linkUp, false);
  const fresh = new VirtioNet({ backend: new FakeBackend(), mac: MAC, txRateLimiter: { bandwidth: { size: 5000, refill_time: 10 } } });
  const before = fresh.saveState();
  for (const spoil of [
    (s: any) => (s.version = 3),
    (s: any) => (s.mac = "525400123457"),
    (s: any) => (s.mac = "zz"),
    (s: any) => (s.linkUp = 1),
    (s: any) => (s.counters.rxDrops.linkDown = 0.5),
    (s: any) => delete s.counters.txFrames,
    (s: any) => (s.txLimiter.bandwidth = null),
  ]) {
    const s = structuredClone(good);
    spoil(s);
    assert.throws(() => fresh.restoreState(s), SnapshotError);
    assert.deepEqual(fresh.saveState(), before);
    assert.equal(fresh.linkUp, true);
  }
  fresh.restoreState(good);
  assert.equal(fresh.linkUp, false);
  assert.deepEqual(fresh.saveState(), good);
});
