// The balloon behind the real virtio-mmio transport and queues, driven like Linux's
// virtio_balloon.c (split and packed rings).
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioMmioTransport } from "../transport/mmio.ts";
import { FakeRam, linuxProbe, mmioRead, mmioWrite, takeInterrupt, type PackedDriver, type SplitDriver } from "../testing/fake-driver.ts";
import { VirtioMmioRegister as R, VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING } from "../constants.ts";
import { VirtioBalloon } from "./device.ts";
import { alignRangeInward } from "./parse.ts";
import { featureBit, VIRTIO_BALLOON_F_PAGE_REPORTING, VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_S_MEMFREE } from "./spec.ts";

const PACKED = 1n << 34n;

function pfns(list: number[]): Uint8Array {
  const b = new Uint8Array(4 * list.length);
  list.forEach((p, i) => new DataView(b.buffer).setUint32(4 * i, p, true));
  return b;
}

function boot(accept: (offered: bigint) => bigint, queueCount: number) {
  const ram = new FakeRam(8 << 20);
  const released: [number, number][] = [];
  const dev = new VirtioBalloon({ release: (a, l) => void released.push([a, l]), statsIntervalMs: 0 });
  const t = new VirtioMmioTransport({ device: dev, memory: ram.memory, irq: () => {} });
  const probe = linuxProbe(t, ram, accept, Array(queueCount).fill(128));
  assert.ok(probe.featuresOk);
  const notify = (q: number, d: SplitDriver | PackedDriver) => {
    mmioWrite(t, R.QueueNotify, q);
    assert.equal(takeInterrupt(t) & VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_INT_VRING);
    return d.used();
  };
  return { ram, released, dev, t, drivers: probe.drivers, notify };
}

for (const ring of ["split", "packed"] as const) {
  test(`${ring} ring: inflate, stats and reporting at queue 3 with STATS_VQ`, () => {
    const { ram, released, dev, t, drivers, notify } = boot((o) => (ring === "packed" ? o : o & ~PACKED), 4);
    assert.equal(dev.queueLayout?.reporting_vq, 3);
    const base = ram.base / 4096;
    drivers[0].add([pfns([base + 1000, base + 1001, 5])], []);
    assert.equal(notify(0, drivers[0]).length, 1);
    assert.deepEqual(released, [[ram.base + 1000 * 4096, 2 * 4096]]);
    // Target and actual through the config space.
    dev.setTarget(321);
    assert.equal(takeInterrupt(t) & VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_CONFIG);
    assert.equal(mmioRead(t, R.Config), 321);
    mmioWrite(t, R.Config + 4, 2);
    assert.equal(dev.actualPages, 2);
    // Stats.
    const s = new Uint8Array(10);
    new DataView(s.buffer).setUint16(0, VIRTIO_BALLOON_S_MEMFREE, true);
    new DataView(s.buffer).setBigUint64(2, 77n, true);
    drivers[2].add([s], []);
    mmioWrite(t, R.QueueNotify, 2);
    assert.deepEqual(dev.stats(), { MEMFREE: 77n });
    assert.equal(dev.requestStats(), true);
    assert.equal(drivers[2].used().length, 1);
    // Reporting: device-writable buffers describing free memory.
    const added = drivers[3].add([], [8192, 4096]);
    assert.equal(notify(3, drivers[3]).length, 1);
    const expected = [
      alignRangeInward(added.inAddrs[0], 8192),
      alignRangeInward(added.inAddrs[1], 4096),
    ].flatMap((r) => (r ? [[r.addr, r.length]] : []));
    assert.ok(expected.length > 0);
    assert.deepEqual(released.slice(1), expected);
  });
}

test("without STATS_VQ the driver sets up three queues and reporting_vq is queue 2", () => {
  const { released, dev, drivers, notify } = boot((o) => o & ~PACKED & ~featureBit(VIRTIO_BALLOON_F_STATS_VQ), 3);
  assert.equal(dev.queueLayout?.statsq, undefined);
  assert.equal(dev.queueLayout?.reporting_vq, 2);
  const added = drivers[2].add([], [3 * 4096]);
  assert.equal(notify(2, drivers[2]).length, 1);
  const start = Math.ceil(added.inAddrs[0] / 4096) * 4096;
  const end = Math.floor((added.inAddrs[0] + 3 * 4096) / 4096) * 4096;
  assert.deepEqual(released, [[start, end - start]]);
  assert.ok((dev.deviceFeatures & featureBit(VIRTIO_BALLOON_F_PAGE_REPORTING)) !== 0n);
});

for (const ring of ["split", "packed"] as const) {
  test(`${ring} ring: pause gives the statistics buffer back; a restored balloon keeps target, actual and stats and takes the buffer again`, async () => {
    const { ram, dev, t, drivers } = boot((o) => (ring === "packed" ? o : o & ~PACKED), 4);
    dev.setTarget(500);
    takeInterrupt(t);
    mmioWrite(t, R.Config + 4, 120); // actual, as the driver reports it
    const s = new Uint8Array(10);
    new DataView(s.buffer).setUint16(0, VIRTIO_BALLOON_S_MEMFREE, true);
    new DataView(s.buffer).setBigUint64(2, 1n << 40n, true);
    drivers[2].add([s], []);
    mmioWrite(t, R.QueueNotify, 2);
    assert.deepEqual(dev.stats(), { MEMFREE: 1n << 40n });
    await t.pause();
    assert.equal(dev.requestStats(), false, "nothing held while paused");
    // A target change while paused: its interrupt waits for resume().
    dev.setTarget(600);
    const saved = JSON.parse(JSON.stringify(t.saveState()));
    assert.deepEqual(saved.device.stats, { MEMFREE: "0x10000000000" });
    assert.equal(saved.device.actualPages, 120);

    const fresh = new VirtioBalloon({ release: () => {}, statsIntervalMs: 0 });
    const t2 = new VirtioMmioTransport({ device: fresh, memory: ram.memory, irq: () => {} });
    t2.restoreState(saved);
    t2.resume();
    assert.equal(fresh.targetPages, 600);
    assert.equal(fresh.actualPages, 120);
    assert.equal(mmioRead(t2, R.Config), 600);
    assert.equal(takeInterrupt(t2) & VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_CONFIG, "the held target change is announced");
    assert.deepEqual(fresh.stats(), { MEMFREE: 1n << 40n });
    assert.equal(fresh.requestStats(), true, "the statistics buffer was taken again at activation");
    assert.equal(drivers[2].used().length, 1);
    // Runtime target change on the restored device.
    fresh.setTarget(10);
    assert.equal(takeInterrupt(t2) & VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_CONFIG);
    assert.equal(mmioRead(t2, R.Config), 10);

    const other = new VirtioBalloon({ release: () => {} });
    for (const spoil of [(x: any) => (x.targetPages = -1), (x: any) => (x.stats = { NOPE: "0x1" }), (x: any) => (x.stats.MEMFREE = 5), (x: any) => delete x.counters.reports, (x: any) => (x.version = 0)]) {
      const bad = structuredClone(saved.device);
      spoil(bad);
      assert.throws(() => other.restoreState(bad), /virtio-balloon/);
      assert.equal(other.targetPages, 0);
      assert.equal(other.stats(), undefined);
    }
  });
}
