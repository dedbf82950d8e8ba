import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioMmioTransport, STATUS_TRANSITIONS, statusTransition, featuresAcceptable, STATUS_DRIVER, STATUS_LIVE } from "./mmio.ts";
import { VirtqueueError, type VirtioDevice, type VirtioDeviceContext } from "../types.ts";
import {
  ACKNOWLEDGE,
  DEVICE_NEEDS_RESET,
  DRIVER,
  DRIVER_OK,
  FAILED,
  FEATURES_OK,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
  VIRTIO_MMIO_INT_CONFIG,
  VIRTIO_MMIO_INT_VRING,
  VirtioMmioRegister as R,
  featureBit,
} from "../constants.ts";
import { FakeRam, PackedDriver, SplitDriver, linuxProbe, mmioRead, mmioWrite, takeInterrupt } from "../testing/fake-driver.ts";
import { irqLine } from "../../testing/fakes.ts";
import { PackedVirtqueue } from "../queue/packed.ts";
import { SplitVirtqueue } from "../queue/split.ts";

/** An echo device: returns every chain on a kick, writing its readable bytes back. */
class EchoDevice implements VirtioDevice {
  readonly deviceId = 42;
  readonly name = "echo";
  readonly queueSizes = [8, 4];
  readonly deviceFeatures = featureBit(0) | featureBit(30); // bit 30 is not a device bit: masked
  context: VirtioDeviceContext | undefined;
  activations = 0;
  resets = 0;
  notified: number[] = [];
  throwOnNotify = false;
  config = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  readConfig(offset: number, size: number) {
    if (offset + size > this.config.length) return undefined;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.config[offset + i];
    return v;
  }
  writeConfig(offset: number, size: number, value: number) {
    if (offset + size > this.config.length) return false;
    for (let i = 0; i < size; i++) this.config[offset + i] = (value >>> (8 * i)) & 0xff;
    return true;
  }
  activate(context: VirtioDeviceContext) {
    this.context = context;
    this.activations++;
  }
  queueNotify(i: number) {
    this.notified.push(i);
    if (this.throwOnNotify) throw new VirtqueueError("device found garbage");
    const ctx = this.context!;
    const q = ctx.queues[i];
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const data = new Uint8Array(chain.readableLength);
      let at = 0;
      for (const b of chain.readable) {
        data.set(ctx.memory.view(b.addr, b.len)!, at);
        at += b.len;
      }
      let done = 0;
      for (const b of chain.writable) {
        const n = Math.min(b.len, data.length - done);
        ctx.memory.write(b.addr, data.subarray(done, done + n));
        done += n;
      }
      q.pushUsed(chain, done);
    }
    ctx.notifyUsed(i);
  }
  reset() {
    this.resets++;
    this.context = undefined;
  }
}

function setup(offerPacked = true) {
  const ram = new FakeRam();
  const device = new EchoDevice();
  const irq = irqLine();
  const t = new VirtioMmioTransport({
    device,
    memory: ram.memory,
    irq: irq.set,
    offerPacked,
  });
  return { ram, device, irq, t };
}

const all = (offered: bigint) => offered;
const split = (offered: bigint) => offered & ~featureBit(VIRTIO_F_RING_PACKED);

test("identification registers (spec 4.2.2)", () => {
  const { t } = setup();
  assert.equal(mmioRead(t, R.MagicValue), 0x74726976);
  assert.equal(mmioRead(t, R.Version), 2);
  assert.equal(mmioRead(t, R.DeviceID), 42);
  assert.equal(typeof mmioRead(t, R.VendorID), "number");
  mmioWrite(t, R.SHMSel, 0);
  assert.equal(mmioRead(t, R.SHMLenLow), 0xffff_ffff);
  assert.equal(mmioRead(t, R.SHMLenHigh), 0xffff_ffff);
  assert.equal(t.name, "echo");
});

test("offered features: the device's own bits plus VERSION_1, EVENT_IDX, INDIRECT_DESC, RING_PACKED", () => {
  const { t, ram } = setup();
  const probe = linuxProbe(t, ram, all);
  const expected =
    featureBit(0) | featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_F_EVENT_IDX) | featureBit(VIRTIO_F_INDIRECT_DESC) | featureBit(VIRTIO_F_RING_PACKED);
  assert.equal(probe.deviceFeatures, expected);
  assert.equal(setup(false).t.offeredFeatures & featureBit(VIRTIO_F_RING_PACKED), 0n);
});

for (const [name, accept] of [
  ["split", split],
  ["packed", all],
] as const) {
  test(`Linux's probe sequence, then requests and interrupts (${name} rings)`, () => {
    const { t, ram, device, irq } = setup();
    const probe = linuxProbe(t, ram, accept);
    assert.ok(probe.featuresOk);
    assert.equal(mmioRead(t, R.Status), STATUS_LIVE);
    assert.equal(device.activations, 1);
    assert.ok(name === "packed" ? t.queue(0) instanceof PackedVirtqueue : t.queue(0) instanceof SplitVirtqueue);
    const d = probe.drivers[0];
    const { id, inAddrs } = d.add([Uint8Array.of(5, 6, 7)], [3]);
    mmioWrite(t, R.QueueNotify, 0);
    assert.deepEqual(device.notified, [0]);
    const used = d.used();
    assert.equal(used.length, 1);
    assert.equal(used[0].id, id);
    assert.equal(used[0].len, 3);
    assert.deepEqual([...ram.get(inAddrs[0], 3)], [5, 6, 7]);
    assert.equal(irq.level, true);
    assert.equal(takeInterrupt(t), VIRTIO_MMIO_INT_VRING);
    assert.equal(irq.level, false);
    assert.equal(t.counters.usedInterrupts, 1);
    assert.equal(t.counters.notifications[0], 1);
    assert.equal(t.queue(0)!.counters.notificationsReceived, 1);
  });
}

test("the status transition table", () => {
  assert.equal(statusTransition(0, ACKNOWLEDGE), "acknowledge");
  assert.equal(statusTransition(ACKNOWLEDGE, ACKNOWLEDGE | DRIVER), "driver");
  assert.equal(statusTransition(STATUS_DRIVER, STATUS_DRIVER | FEATURES_OK), "featuresOk");
  assert.equal(statusTransition(STATUS_DRIVER | FEATURES_OK, STATUS_LIVE), "driverOk");
  assert.equal(statusTransition(STATUS_LIVE | FAILED, 0), "reset");
  assert.equal(statusTransition(STATUS_DRIVER, STATUS_DRIVER | FAILED), "failed");
  assert.equal(statusTransition(0, DRIVER_OK), undefined);
  assert.equal(statusTransition(ACKNOWLEDGE, STATUS_LIVE), undefined);
  assert.equal(statusTransition(STATUS_LIVE, STATUS_DRIVER), undefined, "bits cannot be cleared");
  assert.equal(statusTransition(FAILED, FAILED | ACKNOWLEDGE), undefined);
  assert.equal(statusTransition(0, 0x100), undefined);
  assert.ok(STATUS_TRANSITIONS.length >= 10);
});

test("invalid status writes are ignored and counted; FAILED and reset are always possible", () => {
  const { t, device } = setup();
  mmioWrite(t, R.Status, DRIVER_OK);
  mmioWrite(t, R.Status, ACKNOWLEDGE | DRIVER);
  assert.equal(mmioRead(t, R.Status), 0);
  assert.equal(t.counters.invalidStatusWrites, 2);
  mmioWrite(t, R.Status, ACKNOWLEDGE);
  mmioWrite(t, R.Status, ACKNOWLEDGE); // same value: not a transition
  mmioWrite(t, R.Status, ACKNOWLEDGE | FEATURES_OK);
  assert.equal(mmioRead(t, R.Status), ACKNOWLEDGE);
  assert.equal(t.counters.invalidStatusWrites, 3);
  mmioWrite(t, R.Status, ACKNOWLEDGE | FAILED);
  assert.equal(mmioRead(t, R.Status), ACKNOWLEDGE | FAILED);
  mmioWrite(t, R.Status, ACKNOWLEDGE | DRIVER | FAILED);
  assert.equal(t.counters.invalidStatusWrites, 4, "after FAILED only a reset helps");
  mmioWrite(t, R.Status, 0);
  assert.equal(mmioRead(t, R.Status), 0);
  assert.equal(device.resets, 1);
  assert.equal(device.activations, 0);
});

test("FEATURES_OK is refused for unoffered features and without VERSION_1", () => {
  assert.match(featuresAcceptable(featureBit(32), featureBit(32) | 1n)!, /not offered/);
  assert.match(featuresAcceptable(featureBit(32) | 1n, 1n)!, /VERSION_1/);
  assert.equal(featuresAcceptable(featureBit(32) | 1n, featureBit(32)), undefined);
  let s = setup();
  assert.equal(linuxProbe(s.t, s.ram, (o) => o | featureBit(1)).featuresOk, false);
  assert.equal(mmioRead(s.t, R.Status), STATUS_DRIVER);
  assert.equal(s.t.counters.featuresRefused, 1);
  s = setup();
  assert.equal(linuxProbe(s.t, s.ram, (o) => o & ~featureBit(VIRTIO_F_VERSION_1)).featuresOk, false);
  s = setup();
  assert.equal(linuxProbe(s.t, s.ram, (o) => o & ~featureBit(30)).featuresOk, true, "masked device bit 30 was never offered");
  // Bits beyond 127 cannot be accepted either.
  s = setup();
  mmioWrite(s.t, R.Status, ACKNOWLEDGE);
  mmioWrite(s.t, R.Status, ACKNOWLEDGE | DRIVER);
  mmioWrite(s.t, R.DriverFeaturesSel, 1);
  mmioWrite(s.t, R.DriverFeatures, 1);
  mmioWrite(s.t, R.DriverFeaturesSel, 0xffff_ffff);
  mmioWrite(s.t, R.DriverFeatures, 1);
  mmioWrite(s.t, R.Status, ACKNOWLEDGE | DRIVER | FEATURES_OK);
  assert.equal(mmioRead(s.t, R.Status) & FEATURES_OK, 0);
  // Feature writes outside the negotiation window are ignored.
  s = setup();
  mmioWrite(s.t, R.DriverFeatures, 1);
  assert.equal(s.t.counters.ignoredWrites, 1);
});

function toFeaturesOk(t: VirtioMmioTransport, features = featureBit(VIRTIO_F_VERSION_1)) {
  mmioWrite(t, R.Status, ACKNOWLEDGE);
  mmioWrite(t, R.Status, ACKNOWLEDGE | DRIVER);
  mmioWrite(t, R.DriverFeaturesSel, 1);
  mmioWrite(t, R.DriverFeatures, Number(features >> 32n));
  mmioWrite(t, R.DriverFeaturesSel, 0);
  mmioWrite(t, R.DriverFeatures, Number(features & 0xffff_ffffn));
  mmioWrite(t, R.Status, ACKNOWLEDGE | DRIVER | FEATURES_OK);
  assert.ok(mmioRead(t, R.Status) & FEATURES_OK);
}

function configureQueue(t: VirtioMmioTransport, index: number, num: number, desc: number, drv: number, dev: number) {
  mmioWrite(t, R.QueueSel, index);
  mmioWrite(t, R.QueueNum, num);
  mmioWrite(t, R.QueueDescLow, desc);
  mmioWrite(t, R.QueueDescHigh, 0);
  mmioWrite(t, R.QueueDriverLow, drv);
  mmioWrite(t, R.QueueDriverHigh, 0);
  mmioWrite(t, R.QueueDeviceLow, dev);
  mmioWrite(t, R.QueueDeviceHigh, 0);
  mmioWrite(t, R.QueueReady, 1);
}

test("queue registers: only between FEATURES_OK and DRIVER_OK, only while not ready", () => {
  const { t, ram } = setup();
  mmioWrite(t, R.QueueSel, 0);
  mmioWrite(t, R.QueueNum, 4);
  mmioWrite(t, R.QueueReady, 1);
  assert.equal(mmioRead(t, R.QueueReady), 0, "before FEATURES_OK");
  assert.equal(t.counters.ignoredWrites, 2);
  toFeaturesOk(t);
  assert.equal(mmioRead(t, R.QueueNumMax), 8);
  const d = new SplitDriver(ram, 8);
  configureQueue(t, 0, 8, d.descAddr, d.availAddr, d.usedAddr);
  assert.equal(mmioRead(t, R.QueueReady), 1);
  const before = t.counters.ignoredWrites;
  mmioWrite(t, R.QueueNum, 4); // ready: ignored
  mmioWrite(t, R.QueueDescLow, 0);
  assert.equal(t.counters.ignoredWrites, before + 2);
  mmioWrite(t, R.QueueSel, 7);
  assert.equal(mmioRead(t, R.QueueNumMax), 0, "no queue 7");
  assert.equal(mmioRead(t, R.QueueReady), 0);
  mmioWrite(t, R.QueueSel, 0);
  mmioWrite(t, R.Status, STATUS_LIVE);
  mmioWrite(t, R.QueueSel, 1);
  mmioWrite(t, R.QueueNum, 4);
  assert.equal(t.counters.ignoredWrites, before + 3, "after DRIVER_OK");
  assert.equal(mmioRead(t, R.Status), STATUS_LIVE, "queue 1 not set up: fine, it is just empty");
});

for (const [what, num, descOffset, packed, pattern] of [
  ["QueueNum above QueueNumMax", 16, 0, false, /outside 1\.\.8/],
  ["QueueNum zero", 0, 0, false, /outside 1\.\.8/],
  ["QueueNum not a power of 2 (split)", 6, 0, false, /power of 2/],
  ["a misaligned descriptor table", 8, 8, false, /aligned/],
  ["a descriptor table outside RAM", 8, -0x10_0000, false, /outside guest RAM/],
  ["a misaligned packed ring", 6, 4, true, /aligned/],
] as const) {
  test(`${what}: the queue is not activated and the device needs a reset`, () => {
    const { t, ram, irq } = setup();
    toFeaturesOk(t, featureBit(VIRTIO_F_VERSION_1) | (packed ? featureBit(VIRTIO_F_RING_PACKED) : 0n));
    const base = ram.base + 0x1000;
    configureQueue(t, 0, num, base + descOffset, base + 0x800, base + 0x1000);
    assert.equal(mmioRead(t, R.QueueReady), 0);
    assert.equal(t.counters.queueConfigErrors, 1);
    assert.match(t.needsResetCause!, pattern);
    assert.ok(mmioRead(t, R.Status) & DEVICE_NEEDS_RESET);
    assert.equal(irq.level, false, "no interrupt before DRIVER_OK");
    mmioWrite(t, R.Status, STATUS_LIVE | DEVICE_NEEDS_RESET); // the driver writes back what it read
    assert.equal(mmioRead(t, R.Status), STATUS_LIVE | DEVICE_NEEDS_RESET);
    assert.equal(irq.level, true, "configuration change notification once DRIVER_OK is set");
    assert.equal(takeInterrupt(t), VIRTIO_MMIO_INT_CONFIG);
  });
}

test("a packed queue of a size that is not a power of 2 is fine", () => {
  const { t, ram } = setup();
  toFeaturesOk(t, featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_F_RING_PACKED));
  const d = new PackedDriver(ram, 6);
  configureQueue(t, 0, 6, d.ringAddr, d.driverAddr, d.deviceAddr);
  assert.equal(mmioRead(t, R.QueueReady), 1);
});

test("notifications before DRIVER_OK, for unknown queues and for unready queues are counted and ignored", () => {
  const { t, ram, device } = setup();
  toFeaturesOk(t);
  const d = new SplitDriver(ram, 8);
  configureQueue(t, 0, 8, d.descAddr, d.availAddr, d.usedAddr);
  mmioWrite(t, R.QueueNotify, 0);
  assert.deepEqual(device.notified, []);
  mmioWrite(t, R.Status, STATUS_LIVE);
  mmioWrite(t, R.QueueNotify, 1); // never set up
  mmioWrite(t, R.QueueNotify, 0xffff_ffff);
  assert.deepEqual(device.notified, []);
  assert.equal(t.counters.notificationsIgnored, 3);
  assert.deepEqual(t.counters.notifications, [1, 1]);
  mmioWrite(t, R.QueueNotify, 0);
  assert.deepEqual(device.notified, [0]);
});

test("a VirtqueueError from the device means DEVICE_NEEDS_RESET, a config interrupt, and no more processing", () => {
  const { t, ram, device, irq } = setup();
  linuxProbe(t, ram, split);
  device.throwOnNotify = true;
  mmioWrite(t, R.QueueNotify, 0);
  assert.ok(mmioRead(t, R.Status) & DEVICE_NEEDS_RESET);
  assert.match(t.needsResetCause!, /garbage/);
  assert.equal(irq.level, true);
  assert.equal(takeInterrupt(t), VIRTIO_MMIO_INT_CONFIG);
  mmioWrite(t, R.QueueNotify, 0);
  assert.equal(device.notified.length, 1, "no processing after NEEDS_RESET");
  // The old context is inert after a reset; a new probe works.
  const stale = device.context!;
  mmioWrite(t, R.Status, 0);
  assert.equal(mmioRead(t, R.Status), 0);
  stale.notifyConfigChange();
  stale.needsReset("late");
  assert.equal(irq.level, false);
  assert.equal(mmioRead(t, R.Status), 0);
  device.throwOnNotify = false;
  const probe = linuxProbe(t, ram, split);
  probe.drivers[0].add([Uint8Array.of(1)], [1]);
  mmioWrite(t, R.QueueNotify, 0);
  assert.equal(probe.drivers[0].used().length, 1);
});

test("a malformed ring found by the queue ends in NEEDS_RESET through the transport", () => {
  const { t, ram, irq } = setup();
  const probe = linuxProbe(t, ram, split);
  const d = probe.drivers[0] as SplitDriver;
  d.writeDesc(d.descAddr, 0, 0, 4, 0, 0); // address 0: outside RAM
  d.pushAvail(0);
  mmioWrite(t, R.QueueNotify, 0);
  assert.ok(mmioRead(t, R.Status) & DEVICE_NEEDS_RESET);
  assert.equal(t.counters.rejectedChains, 1);
  assert.deepEqual(d.used(), [{ id: 0, len: 0 }], "the rejected chain was consumed");
  assert.equal(irq.level, true);
});

test("config space is forwarded with 8/16/32-bit accesses; 64-bit and misaligned accesses fault", () => {
  const { t, device } = setup();
  assert.equal(t.load(R.Config, 1), 1);
  assert.equal(t.load(R.Config + 2, 2), 0x0403);
  assert.equal(t.load(R.Config + 4, 4), 0x08070605);
  assert.equal(t.load(R.Config + 1, 2), undefined);
  assert.equal(t.load(R.Config, 8), undefined);
  assert.equal(t.load(R.Config + 8, 4), undefined, "the device refuses beyond its config");
  assert.equal(t.store(R.Config + 4, 4, 0xaabbccdd), true);
  assert.deepEqual([...device.config.subarray(4)], [0xdd, 0xcc, 0xbb, 0xaa]);
  assert.equal(t.store(R.Config, 8, 1n), false);
  assert.equal(t.load(R.Status, 8), undefined);
  assert.equal(t.store(R.Status, 8, 0n), false);
  assert.equal(t.load(R.Status, 2), undefined);
  assert.equal(t.load(R.Status + 1, 4), undefined);
  assert.equal(t.counters.faultedAccesses, 8);
  assert.equal(t.load(R.QueueNotify, 4), 0, "write-only register reads as 0");
  assert.equal(t.store(R.MagicValue, 4, 0), true, "read-only register: ignored");
  assert.equal(mmioRead(t, R.MagicValue), 0x74726976);
});

test("configuration change: generation, interrupt, acknowledgement", () => {
  const { t, ram, device, irq } = setup();
  linuxProbe(t, ram, split);
  const g = mmioRead(t, R.ConfigGeneration);
  device.context!.notifyConfigChange();
  assert.equal(mmioRead(t, R.ConfigGeneration), g + 1);
  assert.equal(irq.level, true);
  assert.equal(mmioRead(t, R.InterruptStatus), VIRTIO_MMIO_INT_CONFIG);
  mmioWrite(t, R.InterruptACK, VIRTIO_MMIO_INT_VRING); // the other bit: still pending
  assert.equal(irq.level, true);
  mmioWrite(t, R.InterruptACK, VIRTIO_MMIO_INT_CONFIG);
  assert.equal(irq.level, false);
  assert.equal(t.counters.configInterrupts, 1);
  assert.equal(t.counters.irqAssertions, 1);
});

test("QueueReady = 0 stops a queue (vm_del_vq) and reads back 0", () => {
  const { t, ram, device } = setup();
  const probe = linuxProbe(t, ram, split);
  mmioWrite(t, R.QueueSel, 0);
  mmioWrite(t, R.QueueReady, 0);
  assert.equal(mmioRead(t, R.QueueReady), 0);
  probe.drivers[0].add([Uint8Array.of(1)], [1]);
  mmioWrite(t, R.QueueNotify, 0);
  assert.deepEqual(device.notified, []);
  assert.equal(device.context!.queues[0].pop(), undefined, "the device's queue object is inert");
});
