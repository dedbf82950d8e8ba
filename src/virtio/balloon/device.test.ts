import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioBalloon, BALLOON_MAX_PFNS_PER_REQUEST } from "./device.ts";
import { alignRangeInward, decodeBalloonStats, decodePfns, namedBalloonStats } from "./parse.ts";
import {
  balloonQueueLayout,
  featureBit,
  VIRTIO_BALLOON_CONFIG_ACTUAL,
  VIRTIO_BALLOON_CONFIG_NUM_PAGES,
  VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
  VIRTIO_BALLOON_F_FREE_PAGE_HINT,
  VIRTIO_BALLOON_F_MUST_TELL_HOST,
  VIRTIO_BALLOON_F_PAGE_REPORTING,
  VIRTIO_BALLOON_F_STATS_VQ,
  VIRTIO_BALLOON_S_AVAIL,
  VIRTIO_BALLOON_S_MEMFREE,
  VIRTIO_BALLOON_S_MEMTOT,
  VIRTIO_ID_BALLOON,
} from "./spec.ts";
import { FAKE_RAM_BASE, FakeClock, FakeGuestMemory } from "../../testing/fakes.ts";
import { FakeContext } from "../testing/fake-queue.ts";

const STATS = featureBit(VIRTIO_BALLOON_F_STATS_VQ);
const REPORTING = featureBit(VIRTIO_BALLOON_F_PAGE_REPORTING);
const ALL = STATS | REPORTING | featureBit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
const RAM_SIZE = 16 << 20;
const PFN_BASE = FAKE_RAM_BASE / 4096;

function pfnBytes(pfns: number[]): Uint8Array {
  const b = new Uint8Array(pfns.length * 4);
  const v = new DataView(b.buffer);
  pfns.forEach((p, i) => v.setUint32(i * 4, p >>> 0, true));
  return b;
}
function statBytes(entries: [number, bigint][]): Uint8Array {
  const b = new Uint8Array(entries.length * 10);
  const v = new DataView(b.buffer);
  entries.forEach(([tag, val], i) => {
    v.setUint16(i * 10, tag, true);
    v.setBigUint64(i * 10 + 2, val, true);
  });
  return b;
}

function setup(features = ALL, statsIntervalMs = 1000) {
  const memory = new FakeGuestMemory(RAM_SIZE, FAKE_RAM_BASE, 1 << 20);
  const released: [number, number][] = [];
  const clock = new FakeClock();
  const dev = new VirtioBalloon({ release: (a, l) => void released.push([a, l]), statsIntervalMs, clock });
  const ctx = new FakeContext(memory, features & dev.deviceFeatures, dev.queueSizes.map(() => 256));
  return { memory, released, clock, dev, ctx };
}

test("device identity, features and queues (5.5.1-5.5.3)", () => {
  const dev = new VirtioBalloon({ release: () => {} });
  assert.equal(dev.deviceId, VIRTIO_ID_BALLOON);
  assert.equal(dev.deviceId, 5);
  assert.equal(dev.deviceFeatures, ALL);
  assert.equal(dev.deviceFeatures & featureBit(VIRTIO_BALLOON_F_MUST_TELL_HOST), 0n);
  assert.equal(dev.deviceFeatures & featureBit(VIRTIO_BALLOON_F_FREE_PAGE_HINT), 0n);
  assert.equal(dev.queueSizes.length, 4);
  assert.ok(dev.queueSizes.every((s) => s >= 32));
});

test("queue numbering: absent queues take no index (5.5.2 as drivers implement it)", () => {
  const hint = featureBit(VIRTIO_BALLOON_F_FREE_PAGE_HINT);
  assert.deepEqual(balloonQueueLayout(0n), { inflateq: 0, deflateq: 1, statsq: undefined, free_page_vq: undefined, reporting_vq: undefined, count: 2 });
  assert.deepEqual(balloonQueueLayout(STATS), { inflateq: 0, deflateq: 1, statsq: 2, free_page_vq: undefined, reporting_vq: undefined, count: 3 });
  assert.deepEqual(balloonQueueLayout(REPORTING), { inflateq: 0, deflateq: 1, statsq: undefined, free_page_vq: undefined, reporting_vq: 2, count: 3 });
  assert.deepEqual(balloonQueueLayout(STATS | REPORTING), { inflateq: 0, deflateq: 1, statsq: 2, free_page_vq: undefined, reporting_vq: 3, count: 4 });
  assert.deepEqual(balloonQueueLayout(STATS | hint | REPORTING), { inflateq: 0, deflateq: 1, statsq: 2, free_page_vq: 3, reporting_vq: 4, count: 5 });
  assert.deepEqual(balloonQueueLayout(hint | REPORTING), { inflateq: 0, deflateq: 1, statsq: undefined, free_page_vq: 2, reporting_vq: 3, count: 4 });
  // Unrelated bits (DEFLATE_ON_OOM, VIRTIO_F_VERSION_1) move nothing.
  assert.deepEqual(balloonQueueLayout(STATS | featureBit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | (1n << 32n)).statsq, 2);
});

test("the device follows the negotiated layout: reporting_vq is queue 2 without STATS_VQ, 3 with it", () => {
  for (const [features, reportingq] of [
    [REPORTING, 2],
    [STATS | REPORTING, 3],
  ] as const) {
    const { memory, released, dev, ctx } = setup(features);
    dev.activate(ctx);
    assert.equal(dev.queueLayout?.reporting_vq, reportingq);
    const addr = FAKE_RAM_BASE + 0x20_0000;
    ctx.queues[reportingq].add([], [{ addr, len: 0x10_0000 }]);
    dev.queueNotify(reportingq);
    assert.deepEqual(released, [[addr, 0x10_0000]]);
    assert.equal(ctx.queues[reportingq].used.length, 1);
    assert.ok(memory.writes.some((w) => w.addr === addr && w.len === 0x10_0000));
    assert.deepEqual(ctx.resetReasons, []);
  }
});

test("with STATS_VQ queue 2 is statsq: a stats buffer there is kept, not released", () => {
  const { memory, released, dev, ctx } = setup(STATS | REPORTING);
  dev.activate(ctx);
  ctx.queues[2].add([memory.out(statBytes([[VIRTIO_BALLOON_S_MEMFREE, 1234n]]))]);
  dev.queueNotify(2);
  assert.deepEqual(released, []);
  assert.equal(ctx.queues[2].used.length, 0);
  assert.deepEqual(dev.stats(), { MEMFREE: 1234n });
});

test("inflate releases valid 4 KiB pages, merging consecutive frames; out-of-RAM PFNs are ignored", () => {
  const { memory, released, dev, ctx } = setup();
  dev.activate(ctx);
  const lastPfn = PFN_BASE + RAM_SIZE / 4096 - 1;
  const pfns = [PFN_BASE + 10, PFN_BASE + 11, PFN_BASE + 12, PFN_BASE + 40, 0, 1, PFN_BASE - 1, lastPfn + 1, 0xffff_ffff, lastPfn, PFN_BASE + 41];
  ctx.queues[0].add([memory.out(pfnBytes(pfns))]);
  dev.queueNotify(0);
  assert.deepEqual(released, [
    [FAKE_RAM_BASE + 10 * 4096, 3 * 4096],
    [FAKE_RAM_BASE + 40 * 4096, 4096],
    [lastPfn * 4096, 4096],
    [FAKE_RAM_BASE + 41 * 4096, 4096],
  ]);
  assert.equal(dev.counters.inflatedPages, 6);
  assert.equal(dev.counters.invalidPfns, 5);
  assert.deepEqual(ctx.queues[0].used.map((u) => u.written), [0]);
  assert.deepEqual(ctx.notified, [0]);
  for (const [a, l] of released) assert.ok(memory.contains(a, l));
  assert.ok(memory.writes.some((w) => w.addr === FAKE_RAM_BASE + 10 * 4096), "decoded code for released pages is dropped");
});

test("a PFN split across two buffers is decoded; several chains per notification", () => {
  const { memory, released, dev, ctx } = setup();
  dev.activate(ctx);
  const bytes = pfnBytes([PFN_BASE + 5, PFN_BASE + 7]);
  ctx.queues[0].add([memory.out(bytes.subarray(0, 3)), memory.out(bytes.subarray(3, 6)), memory.out(bytes.subarray(6))]);
  ctx.queues[0].add([memory.out(pfnBytes([PFN_BASE + 9]))]);
  dev.queueNotify(0);
  assert.deepEqual(released, [
    [FAKE_RAM_BASE + 5 * 4096, 4096],
    [FAKE_RAM_BASE + 7 * 4096, 4096],
    [FAKE_RAM_BASE + 9 * 4096, 4096],
  ]);
  assert.equal(ctx.queues[0].used.length, 2);
  assert.deepEqual(ctx.notified, [0]);
});

test("deflate releases nothing and acknowledges; an empty inflate is fine", () => {
  const { memory, released, dev, ctx } = setup();
  dev.activate(ctx);
  ctx.queues[1].add([memory.out(pfnBytes([PFN_BASE + 1, PFN_BASE + 2, 7]))]);
  ctx.queues[0].add([]);
  dev.queueNotify(1);
  dev.queueNotify(0);
  assert.deepEqual(released, []);
  assert.equal(ctx.queues[1].used.length, 1);
  assert.equal(ctx.queues[0].used.length, 1);
  assert.equal(dev.counters.deflatedPages, 3);
});

test("a huge inflate request does bounded work", () => {
  const { memory, released, dev, ctx } = setup();
  dev.activate(ctx);
  const n = BALLOON_MAX_PFNS_PER_REQUEST + 1000;
  const pfns = Array.from({ length: n }, (_, i) => PFN_BASE + 256 + (i % 1024) * 2); // never consecutive
  ctx.queues[0].add([memory.out(pfnBytes(pfns))]);
  dev.queueNotify(0);
  assert.equal(released.length, BALLOON_MAX_PFNS_PER_REQUEST);
  assert.equal(dev.counters.ignoredPfns, 1000);
  assert.equal(ctx.queues[0].used.length, 1);
});

test("malformed inflate chains put the device into NEEDS_RESET; reset recovers", () => {
  const cases: [string, (s: ReturnType<typeof setup>) => void][] = [
    ["length not a multiple of 4", ({ memory, ctx }) => void ctx.queues[0].add([memory.out(new Uint8Array(6))])],
    ["device-writable buffer", ({ memory, ctx }) => void ctx.queues[0].add([memory.out(pfnBytes([PFN_BASE]))], [memory.in(4)])],
    ["ring error", ({ ctx }) => void (ctx.queues[0].nextError = "descriptor loop")],
  ];
  for (const [what, arrange] of cases) {
    const s = setup();
    s.dev.activate(s.ctx);
    arrange(s);
    s.ctx.queues[0].add([s.memory.out(pfnBytes([PFN_BASE + 3]))]);
    s.dev.queueNotify(0);
    assert.equal(s.ctx.resetReasons.length, 1, what);
    assert.deepEqual(s.released, [], `${what}: nothing after the bad chain is processed`);
    s.dev.queueNotify(0);
    assert.equal(s.ctx.resetReasons.length, 1, `${what}: reported once`);
    // The driver resets the device and starts over.
    s.dev.reset();
    const ctx2 = new FakeContext(s.memory, ALL, [256, 256, 256, 256]);
    s.dev.activate(ctx2);
    ctx2.queues[0].add([s.memory.out(pfnBytes([PFN_BASE + 3]))]);
    s.dev.queueNotify(0);
    assert.deepEqual(s.released, [[FAKE_RAM_BASE + 3 * 4096, 4096]], what);
  }
});

test("statistics: the buffer is kept, read, and returned on the timer to ask for more (5.5.6.3)", () => {
  const { memory, dev, ctx, clock } = setup(ALL, 1000);
  dev.activate(ctx);
  assert.equal(dev.stats(), undefined);
  ctx.queues[2].add([
    memory.out(
      statBytes([
        [VIRTIO_BALLOON_S_MEMTOT, 256n << 20n],
        [VIRTIO_BALLOON_S_MEMFREE, 200n << 20n],
        [77, 5n], // unknown tag: ignored
        [VIRTIO_BALLOON_S_AVAIL, 0xffff_ffff_ffff_ffffn],
      ]),
    ),
  ]);
  dev.queueNotify(2);
  assert.deepEqual(dev.stats(), { MEMTOT: 256n << 20n, MEMFREE: 200n << 20n, AVAIL: 0xffff_ffff_ffff_ffffn });
  assert.equal(ctx.queues[2].used.length, 0, "held until the timer");
  clock.advance(999);
  assert.equal(ctx.queues[2].used.length, 0);
  clock.advance(1);
  assert.equal(ctx.queues[2].used.length, 1, "returned: a request for new statistics");
  assert.equal(ctx.queues[2].used[0].written, 0);
  assert.deepEqual(ctx.notified, [2]);
  assert.equal(clock.pending, 0, "no timer without a buffer");
  // The driver refills; requestStats() returns it at once.
  ctx.queues[2].add([memory.out(statBytes([[VIRTIO_BALLOON_S_MEMFREE, 100n]]))]);
  dev.queueNotify(2);
  assert.deepEqual(dev.stats(), { MEMFREE: 100n });
  assert.equal(dev.requestStats(), true);
  assert.equal(ctx.queues[2].used.length, 2);
  assert.equal(clock.pending, 0);
  assert.equal(dev.requestStats(), false, "nothing held");
  assert.equal(dev.counters.statsUpdates, 2);
});

test("statistics: a second buffer returns the first; reset drops the held buffer and timer", () => {
  const { memory, dev, ctx, clock } = setup(ALL, 1000);
  dev.activate(ctx);
  ctx.queues[2].add([memory.out(statBytes([[VIRTIO_BALLOON_S_MEMFREE, 1n]]))]);
  ctx.queues[2].add([memory.out(statBytes([[VIRTIO_BALLOON_S_MEMFREE, 2n]]))]);
  dev.queueNotify(2);
  assert.equal(ctx.queues[2].used.length, 1);
  assert.deepEqual(dev.stats(), { MEMFREE: 2n });
  assert.equal(clock.pending, 1);
  dev.reset();
  assert.equal(clock.pending, 0);
  clock.advance(5000);
  assert.equal(ctx.queues[2].used.length, 1);
});

test("statistics: a new interval while running re-arms the held buffer's timer; 0 stops asking", () => {
  const { memory, dev, ctx, clock } = setup(ALL, 1000);
  dev.activate(ctx);
  ctx.queues[2].add([memory.out(statBytes([[VIRTIO_BALLOON_S_MEMFREE, 1n]]))]);
  dev.queueNotify(2);
  clock.advance(500);
  dev.setStatsInterval(0);
  assert.equal(clock.pending, 0, "no more requests");
  clock.advance(5000);
  assert.equal(ctx.queues[2].used.length, 0, "the buffer stays held");
  dev.setStatsInterval(200);
  clock.advance(199);
  assert.equal(ctx.queues[2].used.length, 0);
  clock.advance(1);
  assert.equal(ctx.queues[2].used.length, 1, "asked again after the new interval");
  assert.throws(() => dev.setStatsInterval(-1), RangeError);
});

test("statistics with the timer disabled, and a stats buffer given before DRIVER_OK", () => {
  const { memory, dev, ctx, clock } = setup(ALL, 0);
  ctx.queues[2].add([memory.out(statBytes([[VIRTIO_BALLOON_S_MEMFREE, 9n]]))]);
  dev.activate(ctx);
  assert.deepEqual(dev.stats(), { MEMFREE: 9n });
  assert.equal(clock.pending, 0);
  assert.equal(dev.requestStats(), true);
});

test("configuration: num_pages is the host's target, actual is the driver's (5.5.4)", () => {
  const { dev, ctx } = setup();
  dev.setTarget(1000);
  assert.equal(ctx.configChanges, 0, "no driver yet");
  dev.activate(ctx);
  assert.equal(dev.readConfig(VIRTIO_BALLOON_CONFIG_NUM_PAGES, 4), 1000);
  dev.setTarget(0x1234_5678);
  assert.equal(ctx.configChanges, 1);
  assert.equal(dev.readConfig(VIRTIO_BALLOON_CONFIG_NUM_PAGES, 2), 0x5678);
  assert.equal(dev.readConfig(VIRTIO_BALLOON_CONFIG_NUM_PAGES + 3, 1), 0x12);
  assert.equal(dev.writeConfig(VIRTIO_BALLOON_CONFIG_ACTUAL, 4, 777), true);
  assert.equal(dev.actualPages, 777);
  assert.equal(dev.readConfig(VIRTIO_BALLOON_CONFIG_ACTUAL, 4), 777);
  // Byte writes, least significant first (legacy PCI habit).
  dev.writeConfig(VIRTIO_BALLOON_CONFIG_ACTUAL, 1, 0x01);
  dev.writeConfig(VIRTIO_BALLOON_CONFIG_ACTUAL + 1, 1, 0x02);
  assert.equal(dev.actualPages, (777 & ~0xffff) | 0x0201);
  // The driver cannot move the target.
  assert.equal(dev.writeConfig(VIRTIO_BALLOON_CONFIG_NUM_PAGES, 4, 5), true);
  assert.equal(dev.targetPages, 0x1234_5678);
  assert.equal(dev.readConfig(16, 4), undefined);
  assert.equal(dev.readConfig(14, 4), undefined);
  assert.equal(dev.readConfig(0, 8), undefined);
  assert.equal(dev.readConfig(-1, 1), undefined);
  assert.equal(dev.writeConfig(16, 1, 0), false);
  assert.throws(() => dev.setTarget(-1), RangeError);
  assert.throws(() => dev.setTarget(2 ** 32), RangeError);
  assert.throws(() => dev.setTarget(1.5), RangeError);
  dev.reset();
  assert.equal(dev.actualPages, 0);
  assert.equal(dev.targetPages, 0x1234_5678);
});

test("free page reporting releases whole pages inside each range and ignores ranges outside RAM", () => {
  const { released, dev, ctx } = setup(ALL);
  dev.activate(ctx);
  const q = dev.queueLayout!.reporting_vq!;
  ctx.queues[q].add(
    [],
    [
      { addr: FAKE_RAM_BASE + 0x1000, len: 0x4000 }, // aligned
      { addr: FAKE_RAM_BASE + 0x10_0800, len: 0x2000 }, // misaligned: one whole page inside
      { addr: FAKE_RAM_BASE + 0x20_0100, len: 0x100 }, // no whole page
      { addr: FAKE_RAM_BASE + RAM_SIZE - 0x1000, len: 0x2000 }, // runs past RAM
    ],
  );
  dev.queueNotify(q);
  assert.deepEqual(released, [
    [FAKE_RAM_BASE + 0x1000, 0x4000],
    [FAKE_RAM_BASE + 0x10_1000, 0x1000],
  ]);
  assert.equal(dev.counters.invalidReports, 1);
  assert.equal(ctx.queues[q].used.length, 1);
  assert.equal(ctx.queues[q].used[0].written, 0);
});

test("pure decoders", () => {
  const r = decodePfns(pfnBytes([1, 2, 3, 9, 10, 4]).subarray(0, 23), (a) => a !== 9 * 4096);
  assert.deepEqual(r, { runs: [{ addr: 4096, pages: 3 }, { addr: 10 * 4096, pages: 1 }], pfns: 5, invalid: 1 });
  assert.deepEqual(decodeBalloonStats(statBytes([[1, 2n], [3, 4n]]).subarray(0, 19)), [{ tag: 1, val: 2n }]);
  assert.equal(decodeBalloonStats(statBytes(Array.from({ length: 100 }, (_, i) => [i, 0n] as [number, bigint])), 64).length, 64);
  assert.deepEqual(namedBalloonStats([{ tag: 0, val: 1n }, { tag: 9, val: 2n }, { tag: 10, val: 3n }, { tag: 0, val: 4n }]), { SWAP_IN: 4n, HTLB_PGFAIL: 2n });
  assert.deepEqual(alignRangeInward(0x1001, 0x2fff), { addr: 0x2000, length: 0x2000 });
  assert.deepEqual(alignRangeInward(0x1001, 0x2ffe), { addr: 0x2000, length: 0x1000 });
  assert.equal(alignRangeInward(0x1001, 0x1000), undefined);
  assert.equal(alignRangeInward(-4096, 8192), undefined);
  assert.equal(alignRangeInward(0, Number.NaN), undefined);
});

test("fuzz: random chains on every queue never throw and release only whole pages inside RAM", () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let round = 0; round < 200; round++) {
    const features = BigInt(rnd(64));
    const { memory, released, dev, ctx, clock } = setup(features, rnd(2) * 100);
    dev.activate(ctx);
    for (let i = 0; i < 30; i++) {
      const q = rnd(5);
      if (q >= ctx.queues.length) {
        dev.queueNotify(q);
        continue;
      }
      const readable = Array.from({ length: rnd(4) }, () => {
        const bytes = new Uint8Array(rnd(64));
        for (let k = 0; k < bytes.length; k++) bytes[k] = rnd(4) === 0 ? rnd(256) : [0x00, 0x80, 0x81, 0xff][rnd(4)];
        return memory.out(bytes);
      });
      const writable = rnd(3) === 0 ? [{ addr: FAKE_RAM_BASE + rnd(RAM_SIZE), len: rnd(0x40000) }].filter((b) => memory.contains(b.addr, b.len)) : [];
      if (rnd(50) === 0) ctx.queues[q].nextError = "fuzzed ring error";
      ctx.queues[q].add(readable, writable);
      dev.queueNotify(q);
      if (rnd(10) === 0) clock.advance(100);
      if (rnd(20) === 0) dev.setTarget(rnd(1 << 20));
      dev.readConfig(rnd(20), [1, 2, 4, 8][rnd(4)]);
      dev.writeConfig(rnd(20), [1, 2, 4][rnd(3)], rnd(1 << 30));
    }
    for (const [a, l] of released) {
      assert.ok(memory.contains(a, l), `released 0x${a.toString(16)}+${l} outside RAM`);
      assert.equal(a % 4096, 0);
      assert.equal(l % 4096, 0);
    }
    dev.reset();
  }
});
