import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioRngDevice, VIRTIO_RNG_MAX_REQUEST_BYTES } from "./device.ts";
import { TokenBucket } from "./backend.ts";
import { VirtioMmioTransport } from "../transport/mmio.ts";
import { VirtioMmioRegister as R, DEVICE_NEEDS_RESET, featureBit, VIRTIO_F_RING_PACKED } from "../constants.ts";
import { FakeRam, SplitDriver, linuxProbe, mmioRead, mmioWrite, takeInterrupt } from "../testing/fake-driver.ts";
import { FakeClock, irqLine } from "../../testing/fakes.ts";

function setup(options: { rate?: number; burst?: number; packed?: boolean; maxPerRequest?: number } = {}) {
  const clock = new FakeClock(1000);
  let counter = 0;
  const device = new VirtioRngDevice({
    entropy: (b) => {
      for (let i = 0; i < b.length; i++) b[i] = (counter++ % 251) + 1; // never 0: visible in RAM
    },
    bytesPerSecond: options.rate ?? Infinity,
    burstBytes: options.burst ?? 1 << 16,
    clock,
    maxBytesPerRequest: options.maxPerRequest,
  });
  const ram = new FakeRam(4 << 20);
  const irq = irqLine();
  const t = new VirtioMmioTransport({ device, memory: ram.memory, irq: irq.set });
  const probe = linuxProbe(t, ram, (o) => (options.packed ? o : o & ~featureBit(VIRTIO_F_RING_PACKED)));
  const d = probe.drivers[0];
  return { device, ram, t, d, irq, advance: (ms: number) => clock.advance(ms), clock };
}

test("fills a 64-byte request the way Linux's virtio-rng makes it (split and packed)", () => {
  for (const packed of [false, true]) {
    const { t, d, ram, irq, device } = setup({ packed });
    const { id, inAddrs } = d.add([], [64]);
    mmioWrite(t, R.QueueNotify, 0);
    const used = d.used();
    assert.equal(used.length, 1);
    assert.equal(used[0].id, id);
    assert.equal(used[0].len, 64);
    assert.ok(ram.get(inAddrs[0], 64).every((b) => b !== 0));
    assert.equal(irq.level, true);
    takeInterrupt(t);
    assert.equal(device.counters.bytes, 64);
    assert.equal(device.counters.requests, 1);
  }
});

test("a request made available before DRIVER_OK is served at activation", () => {
  const device = new VirtioRngDevice({ entropy: (b) => b.fill(7), bytesPerSecond: Infinity });
  const ram = new FakeRam();
  const t = new VirtioMmioTransport({ device, memory: ram.memory, irq: () => {} });
  // Set up by hand so that a buffer is added between QueueReady and DRIVER_OK.
  mmioWrite(t, R.Status, 1);
  mmioWrite(t, R.Status, 3);
  mmioWrite(t, R.DriverFeaturesSel, 1);
  mmioWrite(t, R.DriverFeatures, 1);
  mmioWrite(t, R.Status, 11);
  const d = new SplitDriver(ram, 8);
  mmioWrite(t, R.QueueSel, 0);
  mmioWrite(t, R.QueueNum, 8);
  mmioWrite(t, R.QueueDescLow, d.descAddr);
  mmioWrite(t, R.QueueDriverLow, d.availAddr);
  mmioWrite(t, R.QueueDeviceLow, d.usedAddr);
  mmioWrite(t, R.QueueReady, 1);
  const { id } = d.add([], [16]);
  mmioWrite(t, R.QueueNotify, 0); // too early: ignored
  assert.equal(d.used().length, 0);
  mmioWrite(t, R.Status, 15);
  assert.deepEqual(d.used(), [{ id, len: 16 }]);
});

test("token bucket: a burst, then waiting on the timer; never more than one timer", () => {
  const { t, d, clock, advance, device } = setup({ rate: 100, burst: 64 });
  d.add([], [64]);
  d.add([], [64]);
  d.add([], [64]);
  mmioWrite(t, R.QueueNotify, 0);
  assert.equal(d.used().length, 1, "the burst covers the first request");
  assert.equal(clock.pending, 1);
  assert.equal(clock.pendingTimers()[0].at - 1000, 640, "64 bytes at 100 B/s");
  mmioWrite(t, R.QueueNotify, 0); // a kick while waiting changes nothing
  assert.equal(clock.pending, 1);
  assert.equal(device.counters.rateLimited, 2);
  advance(320);
  assert.equal(d.used().length, 0, "timer not due yet");
  advance(320);
  assert.deepEqual(
    d.used().map((u) => u.len),
    [64],
  );
  assert.equal(clock.pending, 1, "the third request waits again");
  advance(640);
  assert.equal(d.used().length, 1);
  assert.equal(clock.pending, 0);
  assert.equal(device.counters.timers, 2);
});

test("a request larger than the burst gets what the bucket holds once it is full", () => {
  const { t, d, clock, advance } = setup({ rate: 1000, burst: 100 });
  d.add([], [4096]);
  mmioWrite(t, R.QueueNotify, 0);
  assert.deepEqual(
    d.used().map((u) => u.len),
    [100],
  );
  d.add([], [4096]);
  mmioWrite(t, R.QueueNotify, 0);
  assert.equal(clock.pending, 1);
  advance(100);
  assert.deepEqual(
    d.used().map((u) => u.len),
    [100],
  );
});

test("at most 64 KiB per request, whatever the buffer size; no writable buffer gives 0", () => {
  const { t, d } = setup();
  d.add([], [VIRTIO_RNG_MAX_REQUEST_BYTES, 100_000]);
  d.add([Uint8Array.of(1)], []);
  mmioWrite(t, R.QueueNotify, 0);
  assert.deepEqual(
    d.used().map((u) => u.len),
    [VIRTIO_RNG_MAX_REQUEST_BYTES, 0],
  );
});

test("reset drops the waiting request; a stale timer does no harm", () => {
  const { t, d, ram, clock, advance } = setup({ rate: 10, burst: 8 });
  d.add([], [8]);
  d.add([], [8]);
  mmioWrite(t, R.QueueNotify, 0);
  assert.equal(clock.pending, 1);
  mmioWrite(t, R.Status, 0);
  const before = ram.get(ram.base, 0x20000);
  advance(10_000);
  assert.deepEqual(ram.get(ram.base, 0x20000), before, "nothing written after the reset");
});

test("a malformed ring while serving ends in NEEDS_RESET, not an exception", () => {
  const { t, d } = setup();
  const s = d as SplitDriver;
  s.writeDesc(s.descAddr, 0, 0x10, 64, 2, 0);
  s.pushAvail(0);
  mmioWrite(t, R.QueueNotify, 0);
  assert.ok(mmioRead(t, R.Status) & DEVICE_NEEDS_RESET);
});

test("TokenBucket refills at the rate up to the burst", () => {
  const clock = { ms: 0 };
  const b = new TokenBucket({ size: 50, refill_time: 50 }, () => clock.ms);
  assert.equal(b.available(), 50);
  b.take(50);
  assert.equal(b.available(), 0);
  assert.equal(b.msUntil(10), 10);
  clock.ms = 10;
  assert.equal(b.available(), 10);
  clock.ms = 1000;
  assert.equal(b.available(), 50);
  assert.equal(b.msUntil(500), 0, "capped at the burst");
  assert.throws(() => new TokenBucket({ size: 0, refill_time: 1 }, () => 0));
  assert.throws(() => new TokenBucket({ size: 1, refill_time: 0 }, () => 0));
});

test("pause: the retry timer stops and the waiting request goes back to the ring; resume serves it", async () => {
  const { t, d, clock, advance, device } = setup({ rate: 100, burst: 64 });
  d.add([], [64]);
  d.add([], [64]);
  mmioWrite(t, R.QueueNotify, 0);
  assert.equal(d.used().length, 1);
  assert.equal(clock.pending, 1, "waiting for tokens");
  await t.pause();
  assert.equal(clock.pending, 0, "no timer while paused");
  const saved = t.saveState();
  assert.equal(saved.queues[0].ring!.counters.popped, 1, "the waiting request was given back");
  advance(10_000);
  assert.equal(d.used().length, 0);
  t.resume();
  assert.equal(d.used().length, 1, "served at resume (the bucket refilled meanwhile)");
  assert.equal(device.counters.requests, 2);
});

test("rate limiter in Firecracker's shape, changed at run time; snapshot refuses bad input", () => {
  const clock = new FakeClock();
  const device = new VirtioRngDevice({ clock, rateLimiter: { bandwidth: { size: 100, refill_time: 1000 }, ops: { size: 1, refill_time: 1000 } } });
  assert.deepEqual(device.rateLimiter, { bandwidth: { size: 100, refill_time: 1000 }, ops: { size: 1, refill_time: 1000 } });
  device.updateRateLimiter({ ops: { size: 0, refill_time: 0 } });
  assert.deepEqual(device.rateLimiter, { bandwidth: { size: 100, refill_time: 1000 } });
  const good = JSON.parse(JSON.stringify(device.saveState()));
  const fresh = new VirtioRngDevice({ clock, rateLimiter: { bandwidth: { size: 100, refill_time: 1000 } } });
  const before = fresh.saveState();
  for (const spoil of [(s: any) => (s.version = 2), (s: any) => (s.counters.bytes = -1), (s: any) => (s.limiter = {})]) {
    const s = structuredClone(good);
    spoil(s);
    assert.throws(() => fresh.restoreState(s), /virtio-rng0/);
    assert.deepEqual(fresh.saveState(), before);
  }
  fresh.restoreState(good);
  assert.deepEqual(fresh.saveState(), good);
});
