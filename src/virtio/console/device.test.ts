import { test } from "node:test";
import assert from "node:assert/strict";
import {
  VirtioConsoleDevice,
  VIRTIO_CONSOLE_F_SIZE,
  VIRTIO_CONSOLE_F_EMERG_WRITE,
  VIRTIO_CONSOLE_F_MULTIPORT,
  VIRTIO_CONSOLE_RECEIVEQ,
  VIRTIO_CONSOLE_TRANSMITQ,
  checkConsoleSize,
  type VirtioConsoleOptions,
} from "./device.ts";
import { VirtioMmioTransport } from "../transport/mmio.ts";
import { VirtioMmioRegister as R, DEVICE_NEEDS_RESET, VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING, featureBit, VIRTIO_F_RING_PACKED, hasFeature } from "../constants.ts";
import { FakeRam, SplitDriver, linuxProbe, mmioRead, mmioWrite, takeInterrupt } from "../testing/fake-driver.ts";
import { irqLine, FakeGuestMemory } from "../../testing/fakes.ts";
import { FakeContext } from "../testing/fake-queue.ts";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

function setup(options: Partial<VirtioConsoleOptions> = {}, packed = false) {
  const out: Uint8Array[] = [];
  const device = new VirtioConsoleDevice({ output: (b) => out.push(b), ...options });
  const ram = new FakeRam(2 << 20);
  const irq = irqLine();
  const t = new VirtioMmioTransport({ device, memory: ram.memory, irq: irq.set });
  const probe = () => {
    const p = linuxProbe(t, ram, (o) => (packed ? o : o & ~featureBit(VIRTIO_F_RING_PACKED)));
    return { rx: p.drivers[VIRTIO_CONSOLE_RECEIVEQ], tx: p.drivers[VIRTIO_CONSOLE_TRANSMITQ], features: p.deviceFeatures };
  };
  const output = () => str(Uint8Array.from(out.flatMap((b) => [...b])));
  return { device, ram, t, irq, probe, output, out };
}

test("port 0 only: no MULTIPORT; SIZE only when a size is given; EMERG_WRITE by default", () => {
  let s = setup();
  let { features } = s.probe();
  assert.equal(hasFeature(features, VIRTIO_CONSOLE_F_MULTIPORT), false);
  assert.equal(hasFeature(features, VIRTIO_CONSOLE_F_SIZE), false);
  assert.equal(hasFeature(features, VIRTIO_CONSOLE_F_EMERG_WRITE), true);
  assert.deepEqual(s.device.queueSizes.length, 2);
  s = setup({ size: { cols: 80, rows: 25 }, emergencyWrite: false });
  ({ features } = s.probe());
  assert.equal(hasFeature(features, VIRTIO_CONSOLE_F_SIZE), true);
  assert.equal(hasFeature(features, VIRTIO_CONSOLE_F_EMERG_WRITE), false);
});

for (const packed of [false, true]) {
  test(`output through transmitq, completed inside the notification (hvc put_chars spins) (${packed ? "packed" : "split"})`, () => {
    const s = setup({}, packed);
    const { tx } = s.probe();
    tx.add([text("hello, "), text("world\n")], []);
    mmioWrite(s.t, R.QueueNotify, VIRTIO_CONSOLE_TRANSMITQ);
    assert.equal(s.output(), "hello, world\n");
    assert.deepEqual(
      tx.used().map((u) => u.len),
      [0],
    );
    assert.equal(s.device.counters.bytesOut, 13);
    assert.equal(s.device.counters.chainsOut, 1);
  });
}

test("input waits on the host side until the guest makes receive buffers available", () => {
  const s = setup();
  assert.equal(s.device.receive(text("early ")), 6, "before the driver exists");
  const { rx } = s.probe();
  assert.equal(s.device.pendingInput, 6);
  s.device.receive(text("bytes"));
  const a = rx.add([], [4]);
  const b = rx.add([], [64]);
  mmioWrite(s.t, R.QueueNotify, VIRTIO_CONSOLE_RECEIVEQ);
  const used = rx.used();
  assert.deepEqual(
    used.map((u) => u.len),
    [4, 7],
  );
  assert.equal(str(s.ram.get(a.inAddrs[0], 4)) + str(s.ram.get(b.inAddrs[0], 7)), "early bytes");
  assert.equal(s.device.pendingInput, 0);
  assert.equal(takeInterrupt(s.t), VIRTIO_MMIO_INT_VRING);
  // Buffers first, input later: delivered at once.
  rx.add([], [16]);
  mmioWrite(s.t, R.QueueNotify, VIRTIO_CONSOLE_RECEIVEQ);
  assert.equal(rx.used().length, 0, "no input, the buffer stays with the device");
  s.device.receive(text("ls\n"));
  assert.deepEqual(
    rx.used().map((u) => u.len),
    [3],
  );
  assert.equal(s.irq.level, true);
  assert.equal(s.device.counters.bytesIn, 14);
});

test("the pending input FIFO is bounded; receive() reports what it took", () => {
  const s = setup({ maxPendingInput: 8 });
  assert.equal(s.device.receive(text("0123456789")), 8);
  assert.equal(s.device.counters.inputRefused, 2);
  assert.equal(s.device.receive(text("x")), 0);
  const { rx } = s.probe();
  const a = rx.add([], [5]);
  const b = rx.add([], [5]);
  mmioWrite(s.t, R.QueueNotify, VIRTIO_CONSOLE_RECEIVEQ);
  assert.equal(str(s.ram.get(a.inAddrs[0], 5)) + str(s.ram.get(b.inAddrs[0], 3)), "01234567");
  // The FIFO wraps around.
  assert.equal(s.device.receive(text("abcdef")), 6);
  assert.equal(s.device.receive(text("ghijk")), 2);
  const c = rx.add([], [16]);
  mmioWrite(s.t, R.QueueNotify, VIRTIO_CONSOLE_RECEIVEQ);
  assert.equal(str(s.ram.get(c.inAddrs[0], 8)), "abcdefgh");
});

test("oversized transmit buffers are cut at the per-buffer limit", () => {
  const s = setup({ maxOutputPerBuffer: 4 });
  const { tx } = s.probe();
  tx.add([text("abcdefgh")], []);
  mmioWrite(s.t, R.QueueNotify, VIRTIO_CONSOLE_TRANSMITQ);
  assert.equal(s.output(), "abcd");
  assert.equal(s.device.counters.outputDropped, 4);
});

test("config space: cols, rows, max_nr_ports, emerg_wr; setSize raises a configuration change", () => {
  const s = setup({ size: { cols: 132, rows: 43 } });
  s.probe();
  assert.equal(s.t.load(R.Config + 0, 2), 132);
  assert.equal(s.t.load(R.Config + 2, 2), 43);
  assert.equal(s.t.load(R.Config + 4, 4), 1);
  assert.equal(s.t.load(R.Config + 12, 4), undefined, "beyond the structure");
  assert.equal(s.t.store(R.Config + 8, 4, 0x41), true);
  assert.equal(s.output(), "A");
  const g = mmioRead(s.t, R.ConfigGeneration);
  s.device.setSize(100, 30);
  assert.equal(s.t.load(R.Config + 0, 2), 100);
  assert.equal(s.t.load(R.Config + 2, 2), 30);
  assert.equal(s.t.load(R.Config + 0, 4), (30 << 16) | 100, "cols at offset 0, rows at 2, as Linux reads them");
  assert.equal(mmioRead(s.t, R.ConfigGeneration), g + 1);
  assert.equal(takeInterrupt(s.t), VIRTIO_MMIO_INT_CONFIG);
  assert.equal(s.t.store(R.Config + 0, 2, 5), true, "read-only field: ignored");
  assert.equal(s.t.load(R.Config + 0, 2), 100);
});

test("a malformed transmit ring ends in NEEDS_RESET; host input survives a reset", () => {
  const s = setup();
  const { tx } = s.probe();
  const d = tx as SplitDriver;
  d.writeDesc(d.descAddr, 0, s.ram.base, 0xffff_ffff, 0, 0);
  d.pushAvail(0);
  mmioWrite(s.t, R.QueueNotify, VIRTIO_CONSOLE_TRANSMITQ);
  assert.ok(mmioRead(s.t, R.Status) & DEVICE_NEEDS_RESET);
  s.device.receive(text("kept"));
  const { rx } = s.probe();
  const a = rx.add([], [8]);
  mmioWrite(s.t, R.QueueNotify, VIRTIO_CONSOLE_RECEIVEQ);
  assert.equal(str(s.ram.get(a.inAddrs[0], 4)), "kept");
});

test("pause holds host input and queue work; resume delivers; pending input and size survive a snapshot", async () => {
  const s = setup({ size: { cols: 80, rows: 24 } });
  const { rx } = s.probe();
  const a = (rx as SplitDriver).add([], [64]);
  mmioWrite(s.t, R.QueueNotify, 0);
  takeInterrupt(s.t);
  await s.t.pause();
  assert.equal(s.device.receive(new TextEncoder().encode("typed while paused")), 18);
  assert.deepEqual((rx as SplitDriver).used(), [], "nothing delivered while paused");
  assert.equal(s.irq.level, false);
  s.device.setSize(100, 30);
  assert.equal(s.irq.level, false, "the config interrupt is held");
  s.t.resume();
  const [used] = (rx as SplitDriver).used();
  assert.equal(used.id, a.id);
  assert.equal(str(s.ram.get(a.inAddrs[0], used.len)), "typed while paused");
  assert.equal(takeInterrupt(s.t), VIRTIO_MMIO_INT_CONFIG | VIRTIO_MMIO_INT_VRING);

  // Input with no receive buffer is in the snapshot; the restored console delivers it.
  s.device.receive(new TextEncoder().encode("later"));
  await s.t.pause();
  const saved = JSON.parse(JSON.stringify(s.t.saveState()));
  assert.equal(saved.device.pendingInput, "6c61746572");
  const fresh = new VirtioConsoleDevice({ output: () => {}, size: { cols: 80, rows: 24 } });
  const t2 = new VirtioMmioTransport({ device: fresh, memory: s.ram.memory, irq: () => {} });
  t2.restoreState(saved);
  t2.resume();
  assert.equal(fresh.readConfig(0, 2), 100);
  const b = (rx as SplitDriver).add([], [64]);
  mmioWrite(t2, R.QueueNotify, 0);
  const [u2] = (rx as SplitDriver).used();
  assert.equal(str(s.ram.get(b.inAddrs[0], u2.len)), "later");

  const other = new VirtioConsoleDevice({ output: () => {}, maxPendingInput: 4, size: { cols: 80, rows: 24 } });
  for (const spoil of [(x: any) => (x.cols = 70000), (x: any) => (x.pendingInput = "abc"), (x: any) => delete x.counters.bytesIn, (x: any) => (x.version = 2)]) {
    const bad = structuredClone(saved.device);
    spoil(bad);
    assert.throws(() => other.restoreState(bad), /virtio-console0/);
  }
  assert.throws(() => other.restoreState(saved.device), /exceed/, "more input than this console buffers");
  assert.equal(other.pendingInput, 0);
});

test("setSize: one configuration change per actual change, and only once the driver is there", () => {
  const device = new VirtioConsoleDevice({ output: () => {}, size: { cols: 80, rows: 24 } });
  device.setSize(120, 40);
  assert.deepEqual(device.size, { cols: 120, rows: 40 });
  assert.equal(device.readConfig(0, 2), 120, "before activation the driver will read the new size when it sets up");
  const context = new FakeContext(new FakeGuestMemory(1 << 16), device.deviceFeatures, device.queueSizes);
  device.activate(context);
  device.setSize(120, 40);
  assert.equal(context.configChanges, 0, "the same size again: nothing to announce");
  device.setSize(121, 40);
  device.setSize(121, 41);
  assert.equal(context.configChanges, 2);
  assert.deepEqual([device.readConfig(0, 2), device.readConfig(2, 2), device.readConfig(0, 1), device.readConfig(1, 1)], [121, 41, 121, 0]);
  device.reset();
  device.setSize(90, 30);
  assert.equal(context.configChanges, 2, "after a reset the old context is not told");
});

test("setSize and the size option refuse sizes outside 1..0xffff, naming the field, and change nothing", () => {
  const device = new VirtioConsoleDevice({ output: () => {}, size: { cols: 80, rows: 24 } });
  const context = new FakeContext(new FakeGuestMemory(1 << 16), device.deviceFeatures, device.queueSizes);
  device.activate(context);
  for (const [cols, rows, field] of [
    [0, 24, "cols"],
    [80, 0, "rows"],
    [0x10000, 24, "cols"],
    [80, -1, "rows"],
    [80.5, 24, "cols"],
    [80, Number.NaN, "rows"],
  ] as const) {
    assert.throws(() => device.setSize(cols, rows), new RegExp(`${field} must be a whole number from 1 to 65535`));
    assert.throws(() => new VirtioConsoleDevice({ output: () => {}, size: { cols, rows } }), RangeError);
  }
  assert.deepEqual(device.size, { cols: 80, rows: 24 });
  assert.equal(context.configChanges, 0);
  assert.doesNotThrow(() => checkConsoleSize(0xffff, 1));
  device.setSize(0xffff, 1);
  assert.equal(device.readConfig(0, 2), 0xffff);

  const unsized = new VirtioConsoleDevice({ output: () => {} });
  assert.throws(() => unsized.setSize(80, 24), /VIRTIO_CONSOLE_F_SIZE not offered/);
  assert.deepEqual(unsized.size, { cols: 0, rows: 0 });
});

test("the size is in the snapshot; a restore checks it against this console's configuration", () => {
  const device = new VirtioConsoleDevice({ output: () => {}, size: { cols: 80, rows: 24 } });
  device.setSize(132, 50);
  const saved = JSON.parse(JSON.stringify(device.saveState()));
  assert.equal(saved.cols, 132);
  assert.equal(saved.rows, 50);
  const fresh = new VirtioConsoleDevice({ output: () => {}, size: { cols: 80, rows: 24 } });
  fresh.restoreState(saved);
  assert.deepEqual(fresh.saveState(), device.saveState());
  assert.deepEqual(fresh.size, { cols: 132, rows: 50 });
  // The restored console goes on announcing changes to a new driver context.
  const context = new FakeContext(new FakeGuestMemory(1 << 16), fresh.deviceFeatures, fresh.queueSizes);
  fresh.activate(context);
  fresh.setSize(100, 50);
  assert.equal(context.configChanges, 1);

  for (const bad of [{ ...saved, cols: 0 }, { ...saved, rows: 0x10000 }, { ...saved, rows: "50" }]) {
    assert.throws(() => fresh.restoreState(bad), /virtio-console0\.(cols|rows)/);
  }
  assert.deepEqual(fresh.size, { cols: 100, rows: 50 }, "refused restores change nothing");
  // A console made without a size cannot take one from a snapshot, and vice versa.
  const unsized = new VirtioConsoleDevice({ output: () => {} });
  assert.throws(() => unsized.restoreState(saved), /virtio-console0\.cols: expected a whole number in 0\.\.0/);
  assert.throws(() => fresh.restoreState(unsized.saveState()), /virtio-console0\.cols/);
});
