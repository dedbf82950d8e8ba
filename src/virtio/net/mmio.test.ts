// VirtioNet behind the real virtio-mmio transport and split / packed virtqueues, driven the way
// Linux's virtio_mmio.c and virtio_net.c drive it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioNet } from "./device.ts";
import { VirtioMmioTransport } from "../transport/mmio.ts";
import { DEVICE_NEEDS_RESET, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_PACKED, VirtioMmioRegister as R } from "../constants.ts";
import { FakeRam, PackedDriver, SplitDriver, linuxProbe, mmioRead, mmioWrite, takeInterrupt, type Added } from "../testing/fake-driver.ts";
import { irqLine } from "../../testing/fakes.ts";
import { VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_MTU, VIRTIO_NET_F_STATUS, buildNetHeader, featureBit, parseNetHeader } from "./header.ts";
import { FakeBackend, makeFrame } from "../testing/net.ts";

const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0xab, 0xcd, 0xef);
/** What Linux 6.12's virtio_net accepts of what this device and transport offer. */
const LINUX_FEATURES =
  featureBit(VIRTIO_NET_F_MAC) |
  featureBit(VIRTIO_NET_F_MTU) |
  featureBit(VIRTIO_NET_F_STATUS) |
  featureBit(VIRTIO_NET_F_MRG_RXBUF) |
  featureBit(VIRTIO_F_VERSION_1) |
  featureBit(VIRTIO_F_EVENT_IDX) |
  featureBit(VIRTIO_F_INDIRECT_DESC) |
  featureBit(VIRTIO_F_RING_PACKED);

function setup(options: { packed?: boolean; mergeable?: boolean; mtu?: number } = {}) {
  const backend = new FakeBackend();
  const device = new VirtioNet({ backend, mac: MAC, mtu: options.mtu, queueSize: 64 });
  const ram = new FakeRam(4 << 20);
  const irq = irqLine();
  const t = new VirtioMmioTransport({ device, memory: ram.memory, irq: irq.set });
  let accept = LINUX_FEATURES;
  if (!options.packed) accept &= ~featureBit(VIRTIO_F_RING_PACKED);
  if (options.mergeable === false) accept &= ~featureBit(VIRTIO_NET_F_MRG_RXBUF);
  const probe = linuxProbe(t, ram, (offered) => offered & accept);
  assert.equal(probe.featuresOk, true);
  const [rx, tx] = probe.drivers as (SplitDriver | PackedDriver)[];
  const rxBuffers = new Map<number, Added>();
  return {
    backend,
    device,
    ram,
    irq,
    t,
    rx,
    tx,
    probe,
    /** Posts receive buffers (one descriptor each, like Linux's mergeable / small buffers) and kicks. */
    post(count: number, size: number, kick = true) {
      for (let i = 0; i < count; i++) {
        const a = rx.add([], [size]);
        rxBuffers.set(a.id, a);
      }
      if (kick) mmioWrite(t, R.QueueNotify, 0);
    },
    /** Packets from the used ring, merged by num_buffers. */
    receive(): { frame: Uint8Array; numBuffers: number; lens: number[] }[] {
      const used = rx.used();
      const out: { frame: Uint8Array; numBuffers: number; lens: number[] }[] = [];
      for (let i = 0; i < used.length; ) {
        const first = used[i];
        const bytes = ram.get(rxBuffers.get(first.id)!.inAddrs[0], first.len);
        const header = parseNetHeader(bytes)!;
        const parts = [bytes.subarray(12)];
        const lens = [first.len];
        for (let k = 1; k < header.numBuffers; k++) {
          const e = used[i + k];
          parts.push(ram.get(rxBuffers.get(e.id)!.inAddrs[0], e.len));
          lens.push(e.len);
        }
        for (let k = 0; k < header.numBuffers; k++) rxBuffers.delete(used[i + k].id);
        i += header.numBuffers;
        const frame = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          frame.set(p, o);
          o += p.length;
        }
        out.push({ frame, numBuffers: header.numBuffers, lens });
      }
      return out;
    },
    /** start_xmit(): header and frame as one device-readable buffer (Linux uses an sg list). */
    send(frame: Uint8Array, kick = true) {
      tx.add([buildNetHeader({}), frame], []);
      if (kick) mmioWrite(t, R.QueueNotify, 1);
    },
  };
}

for (const packed of [false, true]) {
  const ring = packed ? "packed" : "split";

  test(`${ring} ring: Linux-style probe, config space through MMIO`, () => {
    const s = setup({ packed, mtu: 1400 });
    assert.equal(mmioRead(s.t, R.DeviceID), 1);
    assert.equal(s.probe.deviceFeatures & LINUX_FEATURES & ~featureBit(VIRTIO_F_RING_PACKED), LINUX_FEATURES & ~featureBit(VIRTIO_F_RING_PACKED));
    for (let i = 0; i < 6; i++) assert.equal(s.t.load(R.Config + i, 1), MAC[i]);
    assert.equal(s.t.load(R.Config + 6, 2), 1); // VIRTIO_NET_S_LINK_UP
    assert.equal(s.t.load(R.Config + 10, 2), 1400);
  });

  test(`${ring} ring: TX and RX round trip with interrupts`, () => {
    const s = setup({ packed });
    s.post(16, 1536);
    const frames = [makeFrame(60), makeFrame(1514, { seed: 1 }), makeFrame(300, { seed: 2 })];
    for (const f of frames) s.send(f);
    assert.deepEqual(s.backend.sent, frames);
    assert.deepEqual(
      s.tx.used().map((u) => u.len),
      [0, 0, 0],
    );
    takeInterrupt(s.t);
    for (const f of frames) s.backend.inject(f);
    assert.equal(s.irq.level, true);
    const got = s.receive();
    assert.deepEqual(
      got.map((p) => p.frame),
      frames,
    );
    assert.ok(got.every((p) => p.numBuffers === 1));
    assert.deepEqual(
      got.map((p) => p.lens[0]),
      [72, 1526, 312],
    );
  });

  test(`${ring} ring: MRG_RXBUF merges small buffers and sets num_buffers`, () => {
    const s = setup({ packed });
    s.post(20, 256);
    const frame = makeFrame(1000, { seed: 4 });
    s.backend.inject(frame);
    const [p] = s.receive();
    assert.equal(p.numBuffers, 4);
    assert.deepEqual(p.lens, [256, 256, 256, 244]);
    assert.deepEqual(p.frame, frame);
  });

  test(`${ring} ring: frames wait for buffers, then arrive in order after the kick`, () => {
    const s = setup({ packed });
    const frames = [0, 1, 2].map((i) => makeFrame(100, { seed: i }));
    for (const f of frames) s.backend.inject(f);
    assert.equal(s.device.counters.rxQueued, 3);
    assert.equal(s.backend.paused, true);
    s.post(8, 1536);
    assert.deepEqual(
      s.receive().map((p) => p.frame),
      frames,
    );
    assert.equal(s.backend.paused, false);
  });

  test(`${ring} ring: a transmit buffer outside RAM sets DEVICE_NEEDS_RESET; reset recovers`, () => {
    const s = setup({ packed });
    if (s.tx instanceof SplitDriver) {
      const d = s.tx;
      d.writeDesc(d.descAddr, 0, 0x1000, 100, 0, 0); // below RAM
      d.pushAvail(0);
    } else {
      const d = s.tx as PackedDriver;
      d.writeSlot(0, 0x1000, 100, 0, d.availUsedFlags);
    }
    mmioWrite(s.t, R.QueueNotify, 1);
    assert.ok(mmioRead(s.t, R.Status) & DEVICE_NEEDS_RESET);
    assert.equal(s.backend.sent.length, 0);
    // The driver resets and probes again; the device works.
    const probe = linuxProbe(s.t, s.ram, (o) => o & (packed ? LINUX_FEATURES : LINUX_FEATURES & ~featureBit(VIRTIO_F_RING_PACKED)));
    assert.equal(mmioRead(s.t, R.Status) & DEVICE_NEEDS_RESET, 0);
    const tx = probe.drivers[1];
    tx.add([buildNetHeader({}), makeFrame(64)], []);
    mmioWrite(s.t, R.QueueNotify, 1);
    assert.deepEqual(s.backend.sent, [makeFrame(64)]);
  });
}

test("split ring without MRG_RXBUF: one buffer per packet, num_buffers 1", () => {
  const s = setup({ mergeable: false });
  s.post(4, 1530);
  s.backend.inject(makeFrame(1518));
  const [p] = s.receive();
  assert.equal(p.numBuffers, 1);
  assert.equal(p.lens[0], 1530);
});

test("split ring with EVENT_IDX: the device asks for receive kicks only while frames wait", () => {
  const s = setup();
  const rx = s.rx as SplitDriver;
  s.post(1, 1536);
  const before = rx.availEvent;
  s.backend.inject(makeFrame(64)); // uses the one buffer
  s.backend.inject(makeFrame(65)); // waits: the device wants to hear about the next buffer
  assert.equal(rx.availEvent, rx.availIdx, "avail_event asks for a kick at the next buffer");
  assert.notEqual(before, rx.availEvent);
  s.post(1, 1536);
  assert.equal(s.receive().length, 2);
});
