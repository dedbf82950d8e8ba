// Pause, snapshot and restore of virtio devices behind the real virtio-mmio transport and rings
// (split and packed), driven the way Linux's drivers drive them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioMmioTransport, type VirtioMmioState } from "./mmio.ts";
import { SnapshotError } from "../../platform/persist.ts";
import { VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING, VirtioMmioRegister as R } from "../constants.ts";
import { FakeRam, PackedDriver, SplitDriver, linuxProbe, mmioRead, mmioWrite, takeInterrupt, type Added } from "../testing/fake-driver.ts";
import { FakeClock, irqLine, tick } from "../../testing/fakes.ts";
import type { VirtioDevice } from "../types.ts";
import { MemoryBlockBackend } from "../blk/backend.ts";
import { VirtioBlk } from "../blk/device.ts";
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from "../blk/spec.ts";
import { VirtioNet } from "../net/device.ts";
import { FakeBackend as FakeNetBackend, makeFrame } from "../testing/net.ts";
import { parseNetHeader, VIRTIO_NET_CONFIG_STATUS, VIRTIO_NET_S_LINK_UP } from "../net/header.ts";
import { VirtioVsock } from "../vsock/device.ts";
import { FakeBackend as FakeVsockBackend } from "../testing/vsock.ts";
import { VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, VSOCK_QUEUE_EVENT } from "../vsock/spec.ts";

const PACKED = 1n << 34n;
const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
type Ring = "split" | "packed";
type Driver = SplitDriver | PackedDriver;

function accept(ring: Ring) {
  return (offered: bigint) => (ring === "packed" ? offered : offered & ~PACKED);
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

/**
 * pause(), saveState() through JSON, restore onto `fresh` (a new transport over the same guest
 * RAM, as after the machine restored RAM), resume(). Checks that restoreState wrote no guest RAM.
 */
async function snapshotInto(t: VirtioMmioTransport, ram: FakeRam, fresh: VirtioMmioTransport): Promise<VirtioMmioState> {
  await t.pause();
  const saved = JSON.parse(JSON.stringify(t.saveState())) as VirtioMmioState;
  const before = ram.bytes.slice();
  fresh.restoreState(saved);
  assert.ok(fresh.paused, "a restored transport waits for resume()");
  assert.deepEqual(ram.bytes, before, "restoreState writes no guest RAM");
  assert.deepEqual(fresh.saveState(), saved, "saved again before resume: the same state");
  fresh.resume();
  return saved;
}

// ---- virtio-blk ---------------------------------------------------------------------------------

function blkHeader(type: number, sector: number): Uint8Array {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setUint32(0, type, true);
  v.setBigUint64(8, BigInt(sector), true);
  return h;
}

function blkMachine(ring: Ring, backend: MemoryBlockBackend, ram = new FakeRam(2 << 20), probe = true) {
  const irq = irqLine();
  const device = new VirtioBlk({ backend, queueSize: 16 });
  const t = new VirtioMmioTransport({ device, memory: ram.memory, irq: irq.set });
  const drivers = probe ? linuxProbe(t, ram, accept(ring)).drivers : [];
  return { ram, irq, device, t, q: drivers[0] as Driver };
}

for (const ring of ["split", "packed"] as const) {
  test(`${ring}: blk restored mid-workload serves a request posted before the snapshot and not kicked`, async () => {
    const backend = new MemoryBlockBackend({ size: 1 << 20 });
    const m = blkMachine(ring, backend);
    const first = m.q.add([blkHeader(VIRTIO_BLK_T_OUT, 1), new Uint8Array(512).fill(0x11)], [1]);
    mmioWrite(m.t, R.QueueNotify, 0);
    await settle();
    assert.deepEqual(m.q.used().map((u) => u.id), [first.id]);
    takeInterrupt(m.t);
    // Posted, not kicked: still in the ring when the snapshot is taken.
    const second = m.q.add([blkHeader(VIRTIO_BLK_T_OUT, 2), new Uint8Array(512).fill(0x22)], [1]);

    const fresh = blkMachine(ring, backend, m.ram, false);
    const saved = await snapshotInto(m.t, m.ram, fresh.t);
    assert.equal(saved.device !== null, true);
    assert.equal(fresh.t.status, m.t.status, "no handshake redone");
    assert.equal(fresh.t.negotiatedFeatures, m.t.negotiatedFeatures);

    await settle();
    assert.deepEqual(m.q.used().map((u) => u.id), [second.id], "the restored device serves the request (resume polls every ready queue)");
    assert.equal(m.ram.get(second.inAddrs[0], 1)[0], VIRTIO_BLK_S_OK);
    assert.equal(backend.data[2 * 512], 0x22);
    assert.equal(fresh.irq.level, true, "and interrupts");
    assert.equal(fresh.device.counters.requests.out, 2, "counters continue");

    // A read after restore sees the write before it.
    const read = m.q.add([blkHeader(VIRTIO_BLK_T_IN, 1)], [512, 1]);
    mmioWrite(fresh.t, R.QueueNotify, 0);
    await settle();
    m.q.used();
    assert.equal(m.ram.get(read.inAddrs[0], 1)[0], 0x11);

    // Paused again with nothing new: the state is the same one restored, plus that work.
    await fresh.t.pause();
    const again = fresh.t.saveState();
    assert.equal(again.queues[0].ring!.counters.used, 3);
  });

  test(`${ring}: pause() publishes in-flight blk completions before it resolves, then holds interrupts`, async () => {
    const backend = new MemoryBlockBackend({ size: 1 << 20 });
    const m = blkMachine(ring, backend);
    const r = m.q.add([blkHeader(VIRTIO_BLK_T_OUT, 3), new Uint8Array(4096).fill(7)], [1]);
    mmioWrite(m.t, R.QueueNotify, 0);
    assert.equal(m.device.inFlight, 1);
    await m.t.pause();
    assert.equal(m.device.inFlight, 0, "nothing in flight after pause()");
    assert.deepEqual(m.q.used().map((u) => u.id), [r.id], "the acknowledged write is published");
    assert.equal(m.irq.level, true, "its interrupt was raised before the pause");
    takeInterrupt(m.t);
    assert.equal(m.irq.level, false);

    // Paused: a kick (should the harts still run) is held, nothing is written.
    const held = m.q.add([blkHeader(VIRTIO_BLK_T_OUT, 4), new Uint8Array(512).fill(9)], [1]);
    mmioWrite(m.t, R.QueueNotify, 0);
    await settle();
    assert.deepEqual(m.q.used(), []);
    assert.equal(m.irq.level, false);
    m.t.resume();
    await settle();
    assert.deepEqual(m.q.used().map((u) => u.id), [held.id], "the held kick is served at resume");
    assert.equal(m.irq.level, true);
  });
}

// ---- virtio-net --------------------------------------------------------------------------------

function netMachine(ring: Ring, ram = new FakeRam(4 << 20), probe = true, backend = new FakeNetBackend()) {
  const irq = irqLine();
  const device = new VirtioNet({ backend, mac: MAC, queueSize: 64 });
  const t = new VirtioMmioTransport({ device, memory: ram.memory, irq: irq.set });
  const drivers = probe ? linuxProbe(t, ram, accept(ring)).drivers : [];
  return { ram, irq, device, backend, t, rx: drivers[0] as Driver, tx: drivers[1] as Driver };
}

/** Frames in the rx used ring (one buffer each unless merged), header stripped. */
function received(ram: FakeRam, rx: Driver, buffers: Map<number, Added>): Uint8Array[] {
  const used = rx.used();
  const out: Uint8Array[] = [];
  for (let i = 0; i < used.length; ) {
    const first = ram.get(buffers.get(used[i].id)!.inAddrs[0], used[i].len);
    const n = parseNetHeader(first)!.numBuffers;
    const parts = [first.subarray(12), ...used.slice(i + 1, i + n).map((u) => ram.get(buffers.get(u.id)!.inAddrs[0], u.len))];
    const frame = new Uint8Array(parts.reduce((k, p) => k + p.length, 0));
    let at = 0;
    for (const p of parts) {
      frame.set(p, at);
      at += p.length;
    }
    out.push(frame);
    i += n;
  }
  return out;
}

for (const ring of ["split", "packed"] as const) {
  test(`${ring}: net delivers RX into the buffers the guest posted before the snapshot`, async () => {
    const m = netMachine(ring);
    const buffers = new Map<number, Added>();
    for (let i = 0; i < 4; i++) {
      const a = m.rx.add([], [1526]);
      buffers.set(a.id, a);
    }
    mmioWrite(m.t, R.QueueNotify, 0);
    const before = makeFrame(100, { seed: 1 });
    m.backend.inject(before);
    assert.deepEqual(received(m.ram, m.rx, buffers), [before]);

    const fresh = netMachine(ring, m.ram, false);
    await snapshotInto(m.t, m.ram, fresh.t);
    const after = [makeFrame(200, { seed: 2 }), makeFrame(60, { seed: 3 })];
    for (const f of after) fresh.backend.inject(f);
    assert.deepEqual(received(m.ram, m.rx, buffers), after, "delivered into buffers posted before the snapshot");
    assert.equal(fresh.device.counters.rxFrames, 3, "counters continue");
    assert.equal(fresh.irq.level, true);
    // TX continues too.
    m.tx.add([new Uint8Array(12), makeFrame(64, { seed: 4 })], []);
    mmioWrite(fresh.t, R.QueueNotify, 1);
    assert.equal(fresh.backend.sent.length, 1);
  });

  test(`${ring}: pause holds RX and interrupts (MRG_RXBUF buffers taken are given back), resume delivers`, async () => {
    const m = netMachine(ring);
    const buffers = new Map<number, Added>();
    const post = (n: number) => {
      for (let i = 0; i < n; i++) {
        const a = m.rx.add([], [1000]);
        buffers.set(a.id, a);
      }
      mmioWrite(m.t, R.QueueNotify, 0);
    };
    post(1);
    // A 1500-byte frame needs two 1000-byte buffers: the device takes the one there and waits.
    const big = makeFrame(1500, { seed: 5 });
    m.backend.inject(big);
    assert.deepEqual(m.rx.used(), []);
    await m.t.pause();
    // The held buffer went back to the ring: the state is saveable.
    assert.doesNotThrow(() => m.t.saveState());
    const small = makeFrame(80, { seed: 6 });
    m.backend.inject(small);
    assert.equal(m.backend.paused, true, "the backend is asked to hold frames");
    post(3); // a kick while paused is held
    assert.deepEqual(m.rx.used(), []);
    assert.equal(m.irq.level, false, "no interrupt while paused");
    m.t.resume();
    assert.deepEqual(received(m.ram, m.rx, buffers), [big, small]);
    assert.equal(m.irq.level, true);
    assert.equal(m.device.counters.rxMergedPackets, 1);
    assert.equal(m.backend.paused, false);
  });

  test(`${ring}: link down and up raise configuration interrupts, change the status bit and stop traffic`, () => {
    const m = netMachine(ring);
    const buffers = new Map<number, Added>();
    for (let i = 0; i < 4; i++) {
      const a = m.rx.add([], [1526]);
      buffers.set(a.id, a);
    }
    mmioWrite(m.t, R.QueueNotify, 0);
    const status = () => m.t.load(R.Config + VIRTIO_NET_CONFIG_STATUS, 2)!;
    assert.equal(status() & VIRTIO_NET_S_LINK_UP, VIRTIO_NET_S_LINK_UP);
    const generation = mmioRead(m.t, R.ConfigGeneration);
    m.device.setLinkUp(false);
    assert.equal(status() & VIRTIO_NET_S_LINK_UP, 0);
    assert.equal(takeInterrupt(m.t), VIRTIO_MMIO_INT_CONFIG);
    assert.notEqual(mmioRead(m.t, R.ConfigGeneration), generation);
    m.backend.inject(makeFrame(60));
    m.tx.add([new Uint8Array(12), makeFrame(60)], []);
    mmioWrite(m.t, R.QueueNotify, 1);
    assert.equal(m.backend.sent.length, 0, "nothing transmitted while down");
    assert.deepEqual(m.rx.used(), [], "nothing received while down");
    assert.equal(m.device.counters.txDrops.linkDown, 1);
    assert.equal(m.device.counters.rxDrops.linkDown, 1);
    m.device.setLinkUp(true);
    assert.equal(takeInterrupt(m.t) & VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_CONFIG);
    assert.equal(status() & VIRTIO_NET_S_LINK_UP, VIRTIO_NET_S_LINK_UP);
    const f = makeFrame(70, { seed: 9 });
    m.backend.inject(f);
    assert.deepEqual(received(m.ram, m.rx, buffers), [f]);
  });
}

test("link state survives a snapshot; a change while paused interrupts at resume", async () => {
  const m = netMachine("split");
  takeInterrupt(m.t);
  await m.t.pause();
  m.device.setLinkUp(false);
  assert.equal(m.irq.level, false, "held while paused");
  m.t.resume();
  assert.equal(takeInterrupt(m.t), VIRTIO_MMIO_INT_CONFIG);
  const fresh = netMachine("split", m.ram, false);
  await snapshotInto(m.t, m.ram, fresh.t);
  assert.equal(fresh.device.linkUp, false);
  assert.equal(fresh.t.load(R.Config + VIRTIO_NET_CONFIG_STATUS, 2)! & VIRTIO_NET_S_LINK_UP, 0);
});

// ---- virtio-vsock ------------------------------------------------------------------------------

for (const ring of ["split", "packed"] as const) {
  test(`${ring}: a restored vsock sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue`, async () => {
    const ram = new FakeRam(4 << 20);
    const make = (probe: boolean) => {
      const device = new VirtioVsock({ guestCid: 9, backend: new FakeVsockBackend() });
      const t = new VirtioMmioTransport({ device, memory: ram.memory, irq: () => {} });
      const drivers = probe ? linuxProbe(t, ram, accept(ring), [64, 64, 8]).drivers : [];
      return { device, t, drivers };
    };
    const m = make(true);
    const ev = m.drivers[VSOCK_QUEUE_EVENT];
    const events = [0, 1, 2].map(() => ev.add([], [4]));
    mmioWrite(m.t, R.QueueNotify, VSOCK_QUEUE_EVENT);
    assert.deepEqual(ev.used(), [], "the running device sends no event");
    const fresh = make(false);
    await snapshotInto(m.t, ram, fresh.t);
    const used = ev.used();
    assert.equal(used.length, 1);
    assert.equal(used[0].id, events[0].id);
    assert.equal(used[0].len, 4);
    assert.equal(new DataView(ram.get(events[0].inAddrs[0], 4).buffer).getUint32(0, true), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
    assert.equal(takeInterrupt(fresh.t), VIRTIO_MMIO_INT_VRING);
    assert.equal(fresh.device.transportResets, 1);
    assert.equal(m.device.transportResets, 0);
  });
}

// ---- refusing bad snapshots ---------------------------------------------------------------------

test("restoreState refuses bad input, naming the field, and leaves the transport and device unchanged", async () => {
  const backend = new MemoryBlockBackend({ size: 1 << 20 });
  const m = blkMachine("packed", backend);
  m.q.add([blkHeader(VIRTIO_BLK_T_OUT, 1), new Uint8Array(512)], [1]);
  mmioWrite(m.t, R.QueueNotify, 0);
  await m.t.pause();
  const good = JSON.parse(JSON.stringify(m.t.saveState())) as VirtioMmioState;
  const bad: [string, (s: any) => void, RegExp][] = [
    ["version", (s) => (s.version = 2), /version/],
    ["device ID", (s) => (s.deviceId = 1), /deviceId/],
    ["status", (s) => (s.status = 0x5), /status/],
    ["negotiated", (s) => (s.negotiated = "0x1"), /negotiated/],
    ["live without DRIVER_OK", (s) => (s.status = 0xb), /live/],
    ["queue count", (s) => s.queues.pop(), /queues/],
    ["queue address outside RAM", (s) => (s.queues[0].desc = "0x10"), /queues\[0\]/],
    ["ring kind", (s) => (s.queues[0].ring.kind = "split"), /kind/],
    ["ring position", (s) => (s.queues[0].ring.availIdx = 99999), /availIdx/],
    ["ring counters", (s) => delete s.queues[0].ring.counters.used, /counters\.used/],
    ["notifications truncated", (s) => s.counters.notifications.pop(), /notifications/],
    ["coalescing", (s) => (s.coalesce = { maxCompletions: 4, maxDelayUs: 0 }), /coalesce/],
    ["interrupt status", (s) => (s.interruptStatus = 8), /interruptStatus/],
    ["device state", (s) => (s.device.features = 12), /features/],
    ["device config", (s) => (s.device.config = "00"), /config/],
    ["device limiter", (s) => (s.device.limiter.bandwidth = { budget: 1, oneTimeBurst: 0 }), /limiter/],
    ["not an object", (s) => (s.queues[0] = 7), /queues\[0\]/],
  ];
  const fresh = blkMachine("packed", new MemoryBlockBackend({ size: 1 << 20 }), m.ram, false);
  const deviceBefore = fresh.device.saveState();
  for (const [what, spoil, field] of bad) {
    const s = structuredClone(good);
    spoil(s);
    assert.throws(() => fresh.t.restoreState(s), (e: unknown) => e instanceof SnapshotError && field.test(e.message), what);
    assert.equal(fresh.t.paused, false, what);
    assert.equal(fresh.t.status, 0, what);
    assert.deepEqual(fresh.device.saveState(), deviceBefore, what);
  }
  assert.throws(() => fresh.t.restoreState(null), SnapshotError);
  // Unchanged: the good state still restores.
  fresh.t.restoreState(good);
  fresh.t.resume();
  assert.equal(fresh.t.status, m.t.status);
  // And a transport that is already in use refuses a restore.
  assert.throws(() => fresh.t.restoreState(good), /freshly constructed/);
  // A different device kind refuses the device part.
  const net = netMachine("packed", m.ram, false);
  assert.throws(() => net.t.restoreState(good), /deviceId/);
});

test("saveState before pause() is refused; pause() and resume() are idempotent and safe before activation", async () => {
  const m = blkMachine("split", new MemoryBlockBackend({ size: 4096 }), new FakeRam(1 << 20), false);
  assert.throws(() => m.t.saveState(), /pause/);
  await Promise.all([m.t.pause(), m.t.pause()]);
  await m.t.pause();
  assert.equal(mmioRead(m.t, R.MagicValue), 0x74726976, "registers still answer while paused");
  const s = m.t.saveState();
  assert.equal(s.live, false);
  m.t.resume();
  m.t.resume();
  assert.equal(m.t.paused, false);
  // A fresh device restored from a never-driven one probes normally afterwards.
  const fresh = blkMachine("split", new MemoryBlockBackend({ size: 4096 }), m.ram, false);
  fresh.t.restoreState(JSON.parse(JSON.stringify(s)));
  fresh.t.resume();
  assert.equal(linuxProbe(fresh.t, m.ram, accept("split")).featuresOk, true);
});

// ---- interrupt coalescing across pause and snapshot ---------------------------------------------

class KickEcho implements VirtioDevice {
  readonly deviceId = 42;
  readonly name = "echo";
  readonly queueSizes = [8];
  readonly deviceFeatures = 0n;
  context: Parameters<VirtioDevice["activate"]>[0] | undefined;
  readConfig() {
    return undefined;
  }
  writeConfig() {
    return false;
  }
  activate(c: Parameters<VirtioDevice["activate"]>[0]) {
    this.context = c;
  }
  queueNotify(i: number) {
    const q = this.context!.queues[i];
    for (let chain = q.pop(); chain; chain = q.pop()) q.pushUsed(chain, 0);
    this.context!.notifyUsed(i);
  }
  reset() {
    this.context = undefined;
  }
}

test("a coalesced batch is signalled by pause() (no timer kept) and the setting is part of the state", async () => {
  const clock = new FakeClock();
  const ram = new FakeRam(1 << 20);
  const irq = irqLine();
  const t = new VirtioMmioTransport({ device: new KickEcho(), memory: ram.memory, irq: irq.set, clock, coalesce: { maxCompletions: 8, maxDelayUs: 5000 } });
  const [q] = linuxProbe(t, ram, accept("split")).drivers;
  q.add([new Uint8Array(4)], []);
  mmioWrite(t, R.QueueNotify, 0);
  assert.equal(irq.level, false, "waiting for the batch");
  assert.equal(clock.pending, 1);
  await t.pause();
  assert.equal(irq.level, true, "signalled by pause()");
  assert.equal(clock.pending, 0, "no delay timer across the pause");
  const s = t.saveState();
  assert.deepEqual(s.coalesce, { maxCompletions: 8, maxDelayUs: 5000 });
  const fresh = new VirtioMmioTransport({ device: new KickEcho(), memory: ram.memory, irq: () => {}, clock });
  fresh.restoreState(JSON.parse(JSON.stringify(s)));
  fresh.resume();
  assert.deepEqual(fresh.coalescing, { maxCompletions: 8, maxDelayUs: 5000 });
  // Counting continues from the restored queue: one completion does not end the batch.
  q.used();
  q.add([new Uint8Array(4)], []);
  mmioWrite(fresh, R.QueueNotify, 0);
  assert.equal(fresh.counters.coalesceFlushesByCount, 0);
  assert.equal(clock.pending, 1);
  // A setting change mid-batch signals the waiting completions at once and stops the timer.
  fresh.setCoalesce(undefined);
  assert.equal(clock.pending, 0);
  assert.equal(fresh.interruptLevel, true);
});
