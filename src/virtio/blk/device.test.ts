import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtqueueError } from "../types.ts";
import { MemoryBlockBackend } from "./backend.ts";
import { BLK_DIRECT_IO_CHUNK, BLK_IO_CHUNK, BLK_MAX_DISCARD_SEG, VirtioBlk } from "./device.ts";
import {
  featureBit,
  VIRTIO_BLK_CONFIG_BLK_SIZE,
  VIRTIO_BLK_CONFIG_CAPACITY,
  VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG,
  VIRTIO_BLK_CONFIG_NUM_QUEUES,
  VIRTIO_BLK_CONFIG_SEG_MAX,
  VIRTIO_BLK_CONFIG_SIZE,
  VIRTIO_BLK_CONFIG_WRITE_ZEROES_MAY_UNMAP,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_GET_LIFETIME,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from "./spec.ts";
import { bounceOnly, FakeDriver, segments } from "../testing/blk.ts";
import { FakeContext, makeChain } from "../testing/fake-queue.ts";
import { FAKE_RAM_BASE as RAM_BASE, FakeClock, FakeGuestMemory, tick } from "../../testing/fakes.ts";
import { SnapshotError } from "../../platform/persist.ts";

const DISK = 1024 * 1024;
const NOT_WRITTEN = 0xee;

class Deferred {
  resolve!: () => void;
  reject!: (e: Error) => void;
  readonly promise = new Promise<void>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });
}

/** A RAM disk whose chosen operations wait until the test releases them. */
class GatedBackend extends MemoryBlockBackend {
  readonly waiting: { op: string; deferred: Deferred }[] = [];
  readonly log: string[] = [];
  maxReadLength = 0;
  constructor(
    private readonly gated: Set<string>,
    options: ConstructorParameters<typeof MemoryBlockBackend>[0] = { size: DISK },
  ) {
    super(options);
  }
  private async gate(op: string): Promise<void> {
    if (!this.gated.has(op)) return;
    const deferred = new Deferred();
    this.waiting.push({ op, deferred });
    await deferred.promise;
  }
  override async read(offset: number, into: Uint8Array): Promise<void> {
    this.log.push("read");
    this.maxReadLength = Math.max(this.maxReadLength, into.length);
    await this.gate("read");
    return super.read(offset, into);
  }
  override async write(offset: number, data: Uint8Array): Promise<void> {
    this.log.push("write");
    await this.gate("write");
    return super.write(offset, data);
  }
  override async readInto(offset: number, targets: readonly Uint8Array[]): Promise<void> {
    this.log.push("read");
    this.maxReadLength = Math.max(this.maxReadLength, targets.reduce((sum, t) => sum + t.length, 0));
    await this.gate("read");
    return super.readInto(offset, targets);
  }
  override async writeFrom(offset: number, sources: readonly Uint8Array[]): Promise<void> {
    this.log.push("write");
    await this.gate("write");
    return super.writeFrom(offset, sources);
  }
  override async flush(): Promise<void> {
    this.log.push("flush");
    await this.gate("flush");
    return super.flush();
  }
  release(op?: string, error?: Error): void {
    const i = this.waiting.findIndex((w) => op === undefined || w.op === op);
    assert.ok(i >= 0, `nothing waiting for ${op}`);
    const [w] = this.waiting.splice(i, 1);
    if (error) w.deferred.reject(error);
    else w.deferred.resolve();
  }
}

function setup(
  options: { backend?: MemoryBlockBackend; features?: bigint; queueSize?: number; ram?: number; drop?: bigint; bounce?: boolean } = {},
) {
  const backend = options.backend ?? new MemoryBlockBackend({ size: DISK, id: "parley-disk" });
  // bounce: the device sees a backend without readInto / writeFrom (as qcow2 is).
  const device = new VirtioBlk({ backend: options.bounce ? bounceOnly(backend) : backend, name: "virtio-blk0", queueSize: options.queueSize });
  const memory = new FakeGuestMemory(options.ram ?? 4 * 1024 * 1024);
  const features = (options.features ?? device.deviceFeatures) & ~(options.drop ?? 0n);
  const context = new FakeContext(memory, features, [device.queueSizes[0]]);
  device.activate(context);
  const driver = new FakeDriver(memory);
  const settle = async () => {
    await device.drain();
    await tick();
  };
  return { backend, device, memory, context, driver, queue: context.queue, settle };
}

function pattern(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return bytes;
}

test("device identity, features and configuration space (5.2.1, 5.2.3, 5.2.4)", () => {
  const { device } = setup();
  assert.equal(device.deviceId, 2);
  assert.deepEqual(device.queueSizes, [256]);
  const f = device.deviceFeatures;
  for (const bit of [VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES]) {
    assert.notEqual(f & featureBit(bit), 0n, `bit ${bit}`);
  }
  assert.equal(f & featureBit(VIRTIO_BLK_F_RO), 0n);
  assert.equal(f >> 24n, 0n, "only device-specific bits");
  // capacity as Linux reads a le64 over MMIO: two 32-bit reads.
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_CAPACITY, 4), DISK / 512);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_CAPACITY + 4, 4), 0);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_SEG_MAX, 4), 254);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_BLK_SIZE, 4), 512);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_BLK_SIZE, 2), 512);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_BLK_SIZE + 1, 1), 2);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_NUM_QUEUES, 2), 1);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG, 4), BLK_MAX_DISCARD_SEG);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_WRITE_ZEROES_MAY_UNMAP, 1), 1);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_SIZE - 4, 4), 0);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_SIZE - 2, 4), undefined);
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_SIZE, 1), undefined);
  assert.equal(device.readConfig(-1, 1), undefined);
  assert.equal(device.readConfig(0, 8), undefined);
  assert.equal(device.readConfig(0, 3), undefined);
  assert.equal(device.writeConfig(VIRTIO_BLK_CONFIG_CAPACITY, 4, 123), true, "ignored");
  assert.equal(device.readConfig(VIRTIO_BLK_CONFIG_CAPACITY, 4), DISK / 512);
  assert.equal(device.writeConfig(VIRTIO_BLK_CONFIG_SIZE, 4, 0), false);

  const ro = new VirtioBlk({ backend: new MemoryBlockBackend({ size: 4096, readOnly: true }) });
  assert.notEqual(ro.deviceFeatures & featureBit(VIRTIO_BLK_F_RO), 0n);
  assert.equal(ro.deviceFeatures & featureBit(VIRTIO_BLK_F_DISCARD), 0n);
  assert.equal(ro.deviceFeatures & featureBit(VIRTIO_BLK_F_WRITE_ZEROES), 0n);
  assert.equal(ro.readConfig(VIRTIO_BLK_CONFIG_CAPACITY, 4), 8);
  assert.equal(ro.name, "virtio-blk");

  assert.throws(() => new VirtioBlk({ backend: new MemoryBlockBackend({ size: 4096 }), queueSize: 1 }), /queue size/);
  assert.throws(() => new VirtioBlk({ backend: new MemoryBlockBackend({ size: 4096 }), numQueues: 2 as 1 }), /single/);
  class OddSize extends MemoryBlockBackend {
    override readonly size = 1000;
  }
  assert.throws(() => new VirtioBlk({ backend: new OddSize({ size: 4096 }) }), /multiple of 512/);
});

test("read: data lands in the guest buffers, status OK, chain used, driver notified", async () => {
  const { backend, context, driver, queue, device, settle } = setup();
  const contents = pattern(DISK);
  backend.data.set(contents);
  const req = driver.request({ type: VIRTIO_BLK_T_IN, sector: 5, inLen: 4096, split: 1000 });
  queue.push(req.chain);
  device.queueNotify(0);
  assert.equal(queue.used.length, 0, "completes asynchronously");
  assert.equal(context.notified.length, 0);
  assert.equal(backend.calls.reads, 1, "the read is handed to the backend inside queueNotify");
  await settle();
  assert.equal(req.status(), VIRTIO_BLK_S_OK);
  assert.deepEqual(req.data(), contents.subarray(5 * 512, 5 * 512 + 4096));
  assert.equal(queue.used.length, 1);
  assert.equal(queue.used[0].written, 4096 + 1);
  assert.equal(context.notified.length, 1);
  assert.equal(device.counters.requests.in, 1);
  assert.equal(device.counters.bytesRead, 4096);
});

test("through the bounce buffer (a backend without readInto), a read larger than the I/O chunk is done in bounded chunks", async () => {
  const backend = new GatedBackend(new Set(), { size: 4 * 1024 * 1024 });
  const contents = pattern(backend.size, 3);
  backend.data.set(contents);
  const { driver, queue, device, settle } = setup({ backend, ram: 8 * 1024 * 1024, bounce: true });
  const length = 3 * BLK_IO_CHUNK + 4096;
  const req = driver.request({ type: VIRTIO_BLK_T_IN, sector: 8, inLen: length, split: 4096 });
  queue.push(req.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(req.status(), VIRTIO_BLK_S_OK);
  assert.deepEqual(req.data(), contents.subarray(8 * 512, 8 * 512 + length));
  assert.equal(backend.maxReadLength, BLK_IO_CHUNK);
  assert.equal(backend.calls.reads, 4);
});

/** Guest RAM bytes that changed since `before`, outside the given buffers. */
function changedOutside(memory: FakeGuestMemory, before: Uint8Array, buffers: readonly { addr: number; len: number }[]): number[] {
  const inside = (i: number) => buffers.some((b) => i >= b.addr - memory.base && i < b.addr - memory.base + b.len);
  const changed: number[] = [];
  for (let i = 0; i < before.length; i++) if (memory.bytes[i] !== before[i] && !inside(i)) changed.push(memory.base + i);
  return changed;
}

test("a read straight into guest RAM: one readInto for the whole request, every buffer filled, nothing around them", async () => {
  const backend = new GatedBackend(new Set(), { size: 4 * 1024 * 1024 });
  const contents = pattern(backend.size, 5);
  backend.data.set(contents);
  const { driver, queue, device, settle, memory } = setup({ backend, ram: 8 * 1024 * 1024 });
  memory.bytes.fill(0xa5);
  const length = 3 * BLK_IO_CHUNK + 4096;
  // Odd buffer sizes, with the status byte sharing the last data buffer.
  const req = driver.request({ type: VIRTIO_BLK_T_IN, sector: 8, inLen: length, split: 1000, statusWithData: true });
  const before = memory.bytes.slice();
  memory.writes.length = 0;
  queue.push(req.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(req.status(), VIRTIO_BLK_S_OK);
  assert.deepEqual(req.data(), contents.subarray(8 * 512, 8 * 512 + length));
  assert.equal(backend.calls.reads, 1, "one host call");
  assert.equal(backend.maxReadLength, length);
  assert.deepEqual(changedOutside(memory, before, req.chain.writable), []);
  // Every written piece was reported (decoded code dropped, pages dirty), none beyond the data and status.
  const reported = memory.writes.reduce((sum, w) => sum + w.len, 0);
  assert.equal(reported, length + 1);
  assert.equal(device.counters.bytesRead, length);
});

test("a direct read longer than BLK_DIRECT_IO_CHUNK takes one readInto per chunk", async () => {
  const disk = 2 * BLK_DIRECT_IO_CHUNK + 8192;
  const backend = new GatedBackend(new Set(), { size: disk });
  const contents = pattern(disk, 11);
  backend.data.set(contents);
  const { driver, queue, device, settle } = setup({ backend, ram: disk + 1024 * 1024 });
  const req = driver.request({ type: VIRTIO_BLK_T_IN, sector: 0, inLen: disk, split: 3 * 65536 + 512 });
  queue.push(req.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(req.status(), VIRTIO_BLK_S_OK);
  assert.deepEqual(req.data(), contents);
  assert.equal(backend.calls.reads, 3);
  assert.equal(backend.maxReadLength, BLK_DIRECT_IO_CHUNK);
});

test("hostile buffers on the direct path: a data buffer outside or straddling the end of RAM fails the request with IOERR before any I/O", async () => {
  const ram = 1024 * 1024;
  const { backend, driver, queue, device, settle, memory } = setup({ ram });
  backend.data.fill(0x33);
  const header = (type: number) => driver.request({ type, sector: 0 }).chain.readable;
  const cases = [
    [{ addr: RAM_BASE - 4096, len: 4096 }],
    [{ addr: RAM_BASE + ram - 2048, len: 4096 }],
    [{ addr: RAM_BASE + 0x8000, len: 2048 }, { addr: RAM_BASE + ram, len: 2048 }],
  ];
  const statuses: number[] = [];
  for (const [i, data] of cases.entries()) {
    const statusRead = driver.alloc(1);
    const statusWrite = driver.alloc(1);
    statuses.push(statusRead, statusWrite);
    queue.push(makeChain(100 + 2 * i, header(VIRTIO_BLK_T_IN), [...data, { addr: statusRead, len: 1 }]));
    queue.push(makeChain(101 + 2 * i, [...header(VIRTIO_BLK_T_OUT), ...data], [{ addr: statusWrite, len: 1 }]));
  }
  const readsBefore = backend.calls.reads;
  const before = memory.bytes.slice();
  device.queueNotify(0);
  await settle();
  for (const status of statuses) assert.equal(memory.view(status, 1)![0], VIRTIO_BLK_S_IOERR);
  assert.equal(backend.calls.reads, readsBefore);
  assert.equal(backend.calls.writes, 0);
  assert.ok(backend.data.every((b) => b === 0x33));
  assert.deepEqual(changedOutside(memory, before, statuses.map((addr) => ({ addr, len: 1 }))), []);
  assert.equal(queue.used.length, statuses.length);
});

test("reset while a direct read is in flight: the data lands only in the request's buffers, the completion is dropped", async () => {
  const backend = new GatedBackend(new Set(["read"]));
  backend.data.fill(0x42);
  const { driver, queue, device, context, memory } = setup({ backend });
  const r = driver.request({ type: VIRTIO_BLK_T_IN, sector: 0, inLen: 4096, split: 1500 });
  const dataBuffers = r.chain.writable.slice(0, -1);
  queue.push(r.chain);
  device.queueNotify(0);
  await tick();
  assert.equal(backend.waiting.length, 1);
  const before = memory.bytes.slice();
  memory.writes.length = 0;
  device.reset();
  backend.release("read");
  await device.drain();
  await tick();
  assert.equal(r.status(), NOT_WRITTEN);
  assert.ok(r.data().every((b) => b === 0x42), "a read handed to the host completes, as a DMA in flight does");
  assert.deepEqual(changedOutside(memory, before, dataBuffers), []);
  assert.deepEqual(memory.writes, dataBuffers, "the write into guest RAM is reported");
  assert.equal(queue.used.length, 0);
  assert.equal(context.notified.length, 0);
  assert.equal(device.counters.droppedAfterReset, 1);
});

for (const bounce of [false, true]) test(`write then read back through ${bounce ? "the bounce buffer" : "guest RAM views"}: data intact over odd buffers`, async () => {
  const { backend, driver, queue, device, settle } = setup({ bounce });
  const data = pattern(3 * 4096 + 512, 21);
  const w = driver.request({ type: VIRTIO_BLK_T_OUT, sector: 7, out: data, split: 777 });
  queue.push(w.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(w.status(), VIRTIO_BLK_S_OK);
  assert.deepEqual(backend.data.subarray(7 * 512, 7 * 512 + data.length), data);
  assert.equal(backend.calls.writes, 1);
  const r = driver.request({ type: VIRTIO_BLK_T_IN, sector: 7, inLen: data.length, split: 1234 });
  queue.push(r.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(r.status(), VIRTIO_BLK_S_OK);
  assert.deepEqual(r.data(), data);
});

test("write then read back, with the header and data split over odd buffers", async () => {
  const { backend, driver, queue, device, settle } = setup();
  const data = pattern(8192, 9);
  const w = driver.request({ type: VIRTIO_BLK_T_OUT, sector: 100, out: data, split: 333 });
  queue.push(w.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(w.status(), VIRTIO_BLK_S_OK);
  assert.deepEqual(backend.data.subarray(100 * 512, 100 * 512 + 8192), data);
  const r = driver.request({ type: VIRTIO_BLK_T_IN, sector: 100, inLen: 8192, statusWithData: true });
  queue.push(r.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(r.status(), VIRTIO_BLK_S_OK);
  assert.deepEqual(r.data(), data);
  assert.equal(device.counters.bytesWritten, 8192);
  assert.equal(backend.calls.flushes, 0, "FLUSH negotiated: writes are not flushed one by one");
});

test("flush, get-id, discard, write-zeroes", async () => {
  const { backend, driver, queue, device, settle, memory } = setup();
  backend.data.fill(0x55);
  const flush = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  const id = driver.request({ type: VIRTIO_BLK_T_GET_ID, inLen: 20 });
  const discard = driver.request({ type: VIRTIO_BLK_T_DISCARD, out: segments({ sector: 0, numSectors: 8 }) });
  const zero = driver.request({
    type: VIRTIO_BLK_T_WRITE_ZEROES,
    out: segments({ sector: 16, numSectors: 2, flags: VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP }, { sector: 40, numSectors: 1 }),
  });
  queue.push(flush.chain, id.chain, discard.chain, zero.chain);
  device.queueNotify(0);
  await settle();
  for (const r of [flush, id, discard, zero]) assert.equal(r.status(), VIRTIO_BLK_S_OK);
  assert.equal(backend.calls.flushes, 1);
  assert.deepEqual(id.data(), new TextEncoder().encode("parley-disk\0\0\0\0\0\0\0\0\0"));
  assert.equal(backend.calls.discards, 1);
  assert.ok(backend.data.subarray(16 * 512, 18 * 512).every((b) => b === 0));
  assert.ok(backend.data.subarray(40 * 512, 41 * 512).every((b) => b === 0));
  assert.equal(backend.data[18 * 512], 0x55);
  assert.equal(backend.data[15 * 512 + 511], 0x55);
  assert.deepEqual(
    { ...device.counters.requests },
    { flush: 1, getId: 1, discard: 1, writeZeroes: 1 },
  );
  // A 20-character id fills the buffer with no NUL terminator.
  const { driver: d2, queue: q2, device: dev2, settle: s2 } = setup({
    backend: new MemoryBlockBackend({ size: 4096, id: "ABCDEFGHIJKLMNOPQRST" }),
  });
  const id2 = d2.request({ type: VIRTIO_BLK_T_GET_ID, inLen: 20 });
  q2.push(id2.chain);
  dev2.queueNotify(0);
  await s2();
  assert.equal(new TextDecoder().decode(id2.data()), "ABCDEFGHIJKLMNOPQRST");
  assert.ok(memory.writes.length > 0);
});

test("bad requests complete with IOERR / UNSUPP without touching the backend", async () => {
  const { backend, driver, queue, device, settle, context } = setup();
  const cases = [
    [driver.request({ type: VIRTIO_BLK_T_IN, sector: DISK / 512, inLen: 512 }), VIRTIO_BLK_S_IOERR],
    [driver.request({ type: VIRTIO_BLK_T_OUT, sector: DISK / 512 - 1, out: new Uint8Array(1024) }), VIRTIO_BLK_S_IOERR],
    [driver.request({ type: VIRTIO_BLK_T_IN, sector: 2n ** 63n, inLen: 512 }), VIRTIO_BLK_S_IOERR],
    // Short status buffer: the status byte is taken from the 512-byte data, leaving 511.
    [driver.request({ type: VIRTIO_BLK_T_IN, inLen: 511 }), VIRTIO_BLK_S_IOERR],
    [driver.request({ type: VIRTIO_BLK_T_GET_LIFETIME, inLen: 8 }), VIRTIO_BLK_S_UNSUPP],
    [driver.request({ type: 0x1234, inLen: 8 }), VIRTIO_BLK_S_UNSUPP],
    [driver.request({ type: VIRTIO_BLK_T_DISCARD, out: segments({ sector: 0, numSectors: 1, flags: 1 }) }), VIRTIO_BLK_S_UNSUPP],
  ] as const;
  for (const [r] of cases) queue.push(r.chain);
  device.queueNotify(0);
  assert.equal(queue.used.length, cases.length, "rejected requests complete at once");
  assert.equal(context.notified.length, 1, "one notification for the batch");
  await settle();
  cases.forEach(([r, status], i) => assert.equal(r.status(), status, `case ${i}`));
  assert.equal(backend.calls.reads + backend.calls.writes + backend.calls.discards, 0);
  assert.equal(device.counters.ioErrors, 4);
  assert.equal(device.counters.unsupported, 3);
  assert.equal(context.resetReasons.length, 0);
});

test("huge claimed lengths: rejected by the capacity check, never allocated", async () => {
  const { driver, queue, device, settle, memory } = setup();
  // A 4 GiB "data buffer" (not RAM) followed by a real status byte.
  const status = driver.alloc(1);
  const header = driver.request({ type: VIRTIO_BLK_T_IN, sector: 0 }).chain.readable;
  const chain = makeChain(77, header, [
    { addr: 0x1_0000_0000, len: 2 ** 32 - 512 },
    { addr: status, len: 1 },
  ]);
  queue.push(chain);
  device.queueNotify(0);
  await settle();
  assert.equal(memory.view(status, 1)![0], VIRTIO_BLK_S_IOERR);
  // The same trick inside capacity but outside RAM fails at copy time, also with IOERR.
  const status2 = driver.alloc(1);
  const chain2 = makeChain(78, header, [
    { addr: 0x1000, len: 4096 },
    { addr: status2, len: 1 },
  ]);
  queue.push(chain2);
  device.queueNotify(0);
  await settle();
  assert.equal(memory.view(status2, 1)![0], VIRTIO_BLK_S_IOERR);
  assert.equal(queue.used.length, 2);
});

test("read-only device: writes fail with IOERR and write nothing; reads work", async () => {
  const backend = new MemoryBlockBackend({ size: DISK, readOnly: true });
  backend.data.fill(7);
  const { driver, queue, device, settle } = setup({ backend });
  const w = driver.request({ type: VIRTIO_BLK_T_OUT, sector: 0, out: new Uint8Array(512) });
  const wz = driver.request({ type: VIRTIO_BLK_T_WRITE_ZEROES, out: segments({ sector: 0, numSectors: 1 }) });
  const r = driver.request({ type: VIRTIO_BLK_T_IN, sector: 0, inLen: 512 });
  queue.push(w.chain, wz.chain, r.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(w.status(), VIRTIO_BLK_S_IOERR);
  assert.equal(wz.status(), VIRTIO_BLK_S_UNSUPP, "WRITE_ZEROES is not offered on a read-only disk");
  assert.equal(r.status(), VIRTIO_BLK_S_OK);
  assert.ok(r.data().every((b) => b === 7));
  assert.equal(backend.calls.writes, 0);
  assert.ok(backend.data.every((b) => b === 7));
});

test("malformed chains ask for a reset; nothing more is processed until reset", async () => {
  const { driver, queue, device, settle, context, memory } = setup();
  const missingStatus = driver.request({ type: VIRTIO_BLK_T_FLUSH, status: false }); // no device-writable byte at all
  const after = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  queue.push(missingStatus.chain, after.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(context.resetReasons.length, 1);
  assert.match(context.resetReasons[0], /status/);
  assert.equal(queue.used.length, 0);
  device.queueNotify(0);
  await settle();
  assert.equal(after.status(), NOT_WRITTEN, "ignored while NEEDS_RESET");
  assert.equal(context.resetReasons.length, 1);
  // Driver resets and re-initializes.
  device.reset();
  const context2 = new FakeContext(memory, device.deviceFeatures);
  device.activate(context2);
  const ok = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  context2.queue.push(ok.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(ok.status(), VIRTIO_BLK_S_OK);
  assert.equal(device.counters.malformed, 1);
});

test("a VirtqueueError from pop() asks for a reset and never escapes queueNotify", async () => {
  const { queue, device, context } = setup();
  queue.push(new VirtqueueError("descriptor loop"));
  assert.doesNotThrow(() => device.queueNotify(0));
  assert.deepEqual(context.resetReasons, ["virtio-blk0: descriptor loop"]);
  // Kicks for a queue the device does not have, or before activation, are ignored.
  assert.doesNotThrow(() => device.queueNotify(5));
  const idle = new VirtioBlk({ backend: new MemoryBlockBackend({ size: 4096 }) });
  assert.doesNotThrow(() => idle.queueNotify(0));
});

test("reset while I/O is in flight through the bounce buffer: the late completion is dropped and guest memory untouched", async () => {
  const backend = new GatedBackend(new Set(["read"]));
  backend.data.fill(0x42);
  const { driver, queue, device, context, memory } = setup({ backend, bounce: true });
  const r = driver.request({ type: VIRTIO_BLK_T_IN, sector: 0, inLen: 4096 });
  queue.push(r.chain);
  device.queueNotify(0);
  await tick();
  assert.equal(backend.waiting.length, 1);
  assert.equal(device.inFlight, 1);
  const writesBefore = memory.writes.length;
  device.reset();
  backend.release("read");
  await device.drain();
  await tick();
  assert.equal(r.status(), NOT_WRITTEN);
  assert.ok(r.data().every((b) => b === 0), "no data copied into the guest after reset");
  assert.equal(memory.writes.length, writesBefore);
  assert.equal(queue.used.length, 0);
  assert.equal(context.notified.length, 0);
  assert.equal(device.counters.droppedAfterReset, 1);
  assert.equal(device.inFlight, 0);
});

test("in-flight requests are bounded by the queue size, across resets too", async () => {
  const backend = new GatedBackend(new Set(["read"]));
  const { driver, queue, device, settle, memory } = setup({ backend, queueSize: 4 });
  const reqs = Array.from({ length: 10 }, (_, i) => driver.request({ type: VIRTIO_BLK_T_IN, sector: i, inLen: 512 }));
  for (const r of reqs) queue.push(r.chain);
  device.queueNotify(0);
  await tick();
  assert.equal(device.inFlight, 4);
  assert.equal(queue.available.length, 6, "the rest stays in the ring");
  // Reset and re-activate: old I/O still counts against the bound.
  device.reset();
  const context2 = new FakeContext(memory, device.deviceFeatures, [4]);
  device.activate(context2);
  const more = Array.from({ length: 3 }, (_, i) => driver.request({ type: VIRTIO_BLK_T_IN, sector: i, inLen: 512 }));
  for (const r of more) context2.queue.push(r.chain);
  device.queueNotify(0);
  await tick();
  assert.equal(device.inFlight, 4);
  assert.equal(context2.queue.available.length, 3);
  // As old I/O drains, new requests are taken.
  while (backend.waiting.length > 0) {
    backend.release("read");
    await tick();
  }
  await settle();
  for (const r of more) assert.equal(r.status(), VIRTIO_BLK_S_OK);
  assert.equal(context2.queue.used.length, 3);
  assert.equal(device.counters.inFlightMax, 4);
  assert.equal(device.counters.droppedAfterReset, 4);
});

test("write-through when FLUSH is not negotiated: each write is flushed before it completes", async () => {
  const backend = new GatedBackend(new Set(["flush"]));
  const { driver, queue, device, settle } = setup({ backend, drop: featureBit(VIRTIO_BLK_F_FLUSH) });
  const w = driver.request({ type: VIRTIO_BLK_T_OUT, sector: 3, out: pattern(1024) });
  queue.push(w.chain);
  device.queueNotify(0);
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(backend.log, ["write", "flush"]);
  assert.equal(queue.used.length, 0, "not complete before the flush resolved");
  assert.equal(w.status(), NOT_WRITTEN);
  backend.release("flush");
  await settle();
  assert.equal(w.status(), VIRTIO_BLK_S_OK);
  assert.equal(queue.used.length, 1);
  // Write-zeroes is a write too.
  const wz = driver.request({ type: VIRTIO_BLK_T_WRITE_ZEROES, out: segments({ sector: 3, numSectors: 1 }) });
  queue.push(wz.chain);
  device.queueNotify(0);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(queue.used.length, 1);
  backend.release("flush");
  await settle();
  assert.equal(wz.status(), VIRTIO_BLK_S_OK);
});

test("FLUSH completes only after backend.flush resolved", async () => {
  const backend = new GatedBackend(new Set(["flush"]));
  const { driver, queue, device, settle } = setup({ backend });
  const f = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  queue.push(f.chain);
  device.queueNotify(0);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(f.status(), NOT_WRITTEN);
  backend.release("flush");
  await settle();
  assert.equal(f.status(), VIRTIO_BLK_S_OK);
});

test("a failed flush is sticky: later flushes and write-through writes report IOERR", async () => {
  const backend = new GatedBackend(new Set(["flush"]));
  const { driver, queue, device, settle, memory } = setup({ backend });
  const f1 = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  const f2 = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  queue.push(f1.chain, f2.chain);
  device.queueNotify(0);
  for (let i = 0; i < 3; i++) await tick();
  assert.equal(backend.waiting.length, 2, "two flushes running concurrently");
  backend.release("flush", Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }));
  backend.release("flush"); // the second fdatasync "succeeds" after the error was consumed
  await settle();
  assert.equal(f1.status(), VIRTIO_BLK_S_IOERR);
  assert.equal(f2.status(), VIRTIO_BLK_S_IOERR, "a concurrent flush must not report success");
  // Every later flush fails too, even though the backend would now succeed.
  const f3 = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  queue.push(f3.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(f3.status(), VIRTIO_BLK_S_IOERR);
  assert.equal(device.counters.flushFailures, 1);
  assert.equal(device.state.flushFailed, true);
  assert.match(device.lastBackendError ?? "", /EIO/);
  // Reads still work.
  const r = driver.request({ type: VIRTIO_BLK_T_IN, inLen: 512 });
  queue.push(r.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(r.status(), VIRTIO_BLK_S_OK);
  // A reset does not clear it, and write-through writes now fail too.
  device.reset();
  const context2 = new FakeContext(memory, device.deviceFeatures & ~featureBit(VIRTIO_BLK_F_FLUSH));
  device.activate(context2);
  const w = driver.request({ type: VIRTIO_BLK_T_OUT, out: new Uint8Array(512) });
  context2.queue.push(w.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(w.status(), VIRTIO_BLK_S_IOERR);
});

test("a flush that fails once: that flush IOERR, the next one IOERR too", async () => {
  class FailOnce extends MemoryBlockBackend {
    failed = false;
    override async flush(): Promise<void> {
      if (!this.failed) {
        this.failed = true;
        throw new Error("EIO");
      }
      return super.flush();
    }
  }
  const { driver, queue, device, settle } = setup({ backend: new FailOnce({ size: DISK }) });
  const a = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  queue.push(a.chain);
  device.queueNotify(0);
  await settle();
  const b = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  queue.push(b.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(a.status(), VIRTIO_BLK_S_IOERR);
  assert.equal(b.status(), VIRTIO_BLK_S_IOERR);
});

for (const bounce of [false, true]) test(`backend errors map to IOERR (${bounce ? "bounce buffer" : "straight into guest RAM"})`, async () => {
  const eio = () => Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" });
  const enospc = () => Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  class Broken extends MemoryBlockBackend {
    override async read(): Promise<void> {
      throw eio();
    }
    override async write(): Promise<void> {
      throw enospc();
    }
    override async readInto(): Promise<void> {
      throw eio();
    }
    override async writeFrom(): Promise<void> {
      throw enospc();
    }
  }
  const { driver, queue, device, settle } = setup({ backend: new Broken({ size: DISK }), bounce });
  const r = driver.request({ type: VIRTIO_BLK_T_IN, inLen: 512 });
  const w = driver.request({ type: VIRTIO_BLK_T_OUT, out: new Uint8Array(512) });
  queue.push(r.chain, w.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(r.status(), VIRTIO_BLK_S_IOERR);
  assert.equal(w.status(), VIRTIO_BLK_S_IOERR);
  assert.equal(device.counters.backendErrors, 2);
  assert.equal(device.counters.ioErrors, 2);
  assert.equal(queue.used.length, 2);
});

test("snapshot: state round-trips when idle; refused while requests are in flight", async () => {
  const backend = new GatedBackend(new Set(["read"]));
  const { driver, queue, device, settle } = setup({ backend });
  const f = driver.request({ type: VIRTIO_BLK_T_FLUSH });
  queue.push(f.chain);
  device.queueNotify(0);
  await settle();
  const snap = device.saveState();
  assert.equal(snap.version, 1);
  assert.equal(snap.counters.requests.flush, 1);
  const json = JSON.parse(JSON.stringify(snap));
  const fresh = new VirtioBlk({ backend: new MemoryBlockBackend({ size: DISK }), name: "virtio-blk0" });
  fresh.restoreState(json);
  assert.equal(fresh.state.features, device.state.features);
  assert.deepEqual(fresh.counters, device.counters);
  assert.deepEqual(fresh.saveState(), snap);
  assert.throws(() => new VirtioBlk({ backend: new MemoryBlockBackend({ size: 4096 }) }).restoreState(json), /different disk/);

  const r = driver.request({ type: VIRTIO_BLK_T_IN, inLen: 512 });
  queue.push(r.chain);
  device.queueNotify(0);
  await tick();
  assert.throws(() => device.saveState(), /in flight/);
  const drained = device.drain();
  backend.release("read");
  await drained;
  assert.doesNotThrow(() => device.saveState());
});

test("used ring and notifications: completions that settle together share one notification", async () => {
  const { driver, queue, device, settle, context } = setup();
  const reqs = Array.from({ length: 8 }, (_, i) => driver.request({ type: VIRTIO_BLK_T_IN, sector: i, inLen: 512 }));
  for (const r of reqs) queue.push(r.chain);
  device.queueNotify(0);
  await settle();
  assert.equal(queue.used.length, 8);
  assert.ok(context.notified.length >= 1 && context.notified.length < 8, `notified ${context.notified.length}`);
  assert.deepEqual(
    reqs.map((r) => r.status()),
    reqs.map(() => VIRTIO_BLK_S_OK),
  );
  void RAM_BASE;
});

test("rate limiter: ops and bandwidth buckets throttle requests, the refused chain stays in the ring, a timer retries", async () => {
  const clock = new FakeClock();
  const backend = new MemoryBlockBackend({ size: DISK });
  const device = new VirtioBlk({ backend, clock, rateLimiter: { ops: { size: 2, refill_time: 100 } } });
  const memory = new FakeGuestMemory(4 * 1024 * 1024);
  const context = new FakeContext(memory, device.deviceFeatures, [device.queueSizes[0]]);
  device.activate(context);
  const driver = new FakeDriver(memory);
  const reqs = [0, 1, 2].map((i) => driver.request({ type: VIRTIO_BLK_T_IN, sector: i, inLen: 512 }));
  for (const r of reqs) context.queue.push(r.chain);
  device.queueNotify(0);
  await device.drain();
  await tick();
  assert.equal(context.queue.used.length, 2);
  assert.equal(context.queue.available.length, 1, "the third request is back in the ring");
  assert.equal(reqs[2].status(), NOT_WRITTEN);
  assert.equal(device.rateLimiterCounters.throttled, 1);
  assert.equal(clock.pending, 1);
  clock.advance(50);
  await device.drain();
  await tick();
  assert.equal(context.queue.used.length, 3, "served when a token refilled");
  assert.equal(reqs[2].status(), VIRTIO_BLK_S_OK);

  // Runtime change: a bandwidth limit of 1024 bytes per 100 ms; two 1 KiB reads take 100 ms.
  device.updateRateLimiter({ ops: { size: 0, refill_time: 0 }, bandwidth: { size: 1024, refill_time: 100 } });
  assert.deepEqual(device.rateLimiter, { bandwidth: { size: 1024, refill_time: 100 } });
  const more = [3, 4].map((i) => driver.request({ type: VIRTIO_BLK_T_IN, sector: i, inLen: 1024 }));
  for (const r of more) context.queue.push(r.chain);
  device.queueNotify(0);
  await device.drain();
  await tick();
  assert.equal(context.queue.used.length, 4);
  // Pausing stops the retry timer; the waiting request is served after unquiesce.
  await device.quiesce();
  assert.equal(clock.pending, 0);
  clock.advance(1000);
  assert.equal(context.queue.used.length, 4);
  device.unquiesce();
  await device.drain();
  await tick();
  assert.equal(context.queue.used.length, 5);
  assert.equal(more[1].status(), VIRTIO_BLK_S_OK);
  // Removing the limit while a request waits serves it at once.
  const last = driver.request({ type: VIRTIO_BLK_T_IN, sector: 5, inLen: 1024 });
  context.queue.push(last.chain);
  device.queueNotify(0);
  assert.equal(clock.pending, 1);
  device.updateRateLimiter({ bandwidth: { size: 0, refill_time: 0 } });
  clock.advance(0);
  await device.drain();
  await tick();
  assert.equal(last.status(), VIRTIO_BLK_S_OK);
});

test("snapshot: restoreState refuses bad input and changes nothing", () => {
  const { device } = setup();
  const good = JSON.parse(JSON.stringify(device.saveState()));
  const fresh = new VirtioBlk({ backend: new MemoryBlockBackend({ size: DISK }), name: "virtio-blk0" });
  const before = fresh.saveState();
  for (const spoil of [
    (s: any) => (s.version = 0),
    (s: any) => (s.features = 5),
    (s: any) => (s.flushFailed = "no"),
    (s: any) => (s.counters.bytesRead = -1),
    (s: any) => (s.counters.requests = { in: "x" }),
    (s: any) => delete s.counters.malformed,
    (s: any) => (s.limiter = null),
    (s: any) => (s.config = s.config.slice(2)),
  ]) {
    const s = structuredClone(good);
    spoil(s);
    assert.throws(() => fresh.restoreState(s), SnapshotError);
    assert.deepEqual(fresh.saveState(), before);
  }
  fresh.restoreState(good);
  assert.deepEqual(fresh.saveState(), good);
});
