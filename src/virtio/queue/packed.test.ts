import { test } from "node:test";
import assert from "node:assert/strict";
import { PackedVirtqueue, packedLayoutError, packedNeedInterrupt, readPackedChain, isAvailable } from "./packed.ts";
import { isChainError, readFromChain, writeToChain } from "./chain.ts";
import { VirtqueueError } from "../types.ts";
import {
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from "../constants.ts";
import { FakeRam, PackedDriver } from "../testing/fake-driver.ts";

function setup(size = 8, options: { eventIdx?: boolean; indirect?: boolean } = {}) {
  const ram = new FakeRam();
  const driver = new PackedDriver(ram, size);
  const vq = new PackedVirtqueue({
    memory: ram.memory,
    index: 0,
    size,
    descAddr: driver.ringAddr,
    driverAddr: driver.driverAddr,
    deviceAddr: driver.deviceAddr,
    eventIdx: options.eventIdx ?? false,
    indirect: options.indirect ?? true,
  });
  return { ram, driver, vq };
}

const bytes = (...v: number[]) => Uint8Array.from(v);

test("availability follows the wrap counters (spec 2.8.1)", () => {
  assert.equal(isAvailable(VIRTQ_DESC_F_AVAIL, true), true);
  assert.equal(isAvailable(VIRTQ_DESC_F_USED, false), true);
  assert.equal(isAvailable(0, true), false);
  assert.equal(isAvailable(0, false), false);
  assert.equal(isAvailable(VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED, true), false);
});

test("a list of descriptors goes through; the used descriptor is what Linux's driver expects", () => {
  const { ram, driver, vq } = setup();
  const { id, inAddrs } = driver.add([bytes(1, 2), bytes(3)], [4]);
  const chain = vq.pop()!;
  assert.equal(chain.id, id);
  assert.equal(chain.descriptorCount, 3);
  assert.equal(chain.readableLength, 3);
  const head = new Uint8Array(3);
  readFromChain(ram.memory, chain, 0, head);
  assert.deepEqual([...head], [1, 2, 3]);
  writeToChain(ram.memory, chain, 0, bytes(7, 7, 7, 7));
  assert.equal(vq.pop(), undefined);
  vq.pushUsed(chain, 4);
  const used = driver.used();
  assert.equal(used.length, 1);
  assert.equal(used[0].id, id);
  assert.equal(used[0].len, 4);
  assert.ok(used[0].flags & VIRTQ_DESC_F_WRITE, "WRITE marks a used descriptor with data (spec 2.8.3)");
  assert.deepEqual([...ram.get(inAddrs[0], 4)], [7, 7, 7, 7]);
  assert.equal(driver.lastUsed, 3, "both sides skip the list's three slots");
});

test("indirect descriptors (spec 2.8.7)", () => {
  const { driver, vq } = setup();
  const { id } = driver.add([bytes(1)], [2, 3], { indirect: true });
  const chain = vq.pop()!;
  assert.equal(chain.id, id);
  assert.equal(chain.descriptorCount, 1);
  assert.equal(chain.readable.length, 1);
  assert.equal(chain.writableLength, 5);
  vq.pushUsed(chain, 0);
  const used = driver.used();
  assert.equal(used[0].flags & VIRTQ_DESC_F_WRITE, 0);
});

test("out-of-order completion: used descriptors are written in completion order", () => {
  const { driver, vq } = setup(8);
  const a = driver.add([bytes(1)], [1, 1]); // 3 slots... (1 out + 2 in)
  const b = driver.add([bytes(2)], []); // 1 slot
  const ca = vq.pop()!;
  const cb = vq.pop()!;
  vq.pushUsed(cb, 0);
  vq.pushUsed(ca, 2);
  assert.deepEqual(
    driver.used().map((u) => u.id),
    [b.id, a.id],
  );
});

test("wrap counters over many laps, with lists crossing the end of the ring (size 5, not a power of 2)", () => {
  const { driver, vq } = setup(5, { eventIdx: true });
  for (let i = 0; i < 20_000; i++) {
    const n = 1 + (i % 3);
    const { id } = driver.add([bytes(i & 0xff)], new Array(n - 1).fill(1), { indirect: i % 7 === 0 });
    const chain = vq.pop()!;
    assert.equal(chain.id, id);
    vq.pushUsed(chain, chain.writableLength);
    const used = driver.used();
    assert.equal(used.length, 1);
    assert.equal(used[0].id, id);
  }
});

test("driver event suppression: ENABLE, DISABLE, DESC with EVENT_IDX", () => {
  const { driver, vq } = setup(4, { eventIdx: true });
  const one = () => {
    driver.add([bytes(0)], []);
    vq.pushUsed(vq.pop()!, 0);
    driver.used();
  };
  one();
  assert.equal(vq.shouldInterrupt(), true, "ENABLE (zeroed memory)");
  driver.setDriverEvent(RING_EVENT_FLAGS_DISABLE);
  one();
  assert.equal(vq.shouldInterrupt(), false);
  // virtqueue_enable_cb_prepare_packed(): DESC at the driver's next used slot.
  driver.setDriverEvent(RING_EVENT_FLAGS_DESC, driver.nextUsedOffWrap);
  one();
  assert.equal(vq.shouldInterrupt(), true);
  // An event three slots ahead (crossing the wrap: slots 3, 0, 1) fires on the third.
  const ahead = driver.lastUsed + 2;
  driver.setDriverEvent(RING_EVENT_FLAGS_DESC, (ahead % 4) | ((ahead >= 4) !== driver.usedWrap ? 0x8000 : 0));
  const decisions: boolean[] = [];
  for (let i = 0; i < 3; i++) {
    one();
    decisions.push(vq.shouldInterrupt());
  }
  assert.deepEqual(decisions, [false, false, true]);
  assert.equal(vq.counters.interruptsSent, 3);
  assert.equal(vq.counters.interruptsSuppressed, 3);
});

test("DESC without EVENT_IDX negotiated means notify", () => {
  const { driver, vq } = setup(4, { eventIdx: false });
  driver.setDriverEvent(RING_EVENT_FLAGS_DESC, 3);
  driver.add([bytes(0)], []);
  vq.pushUsed(vq.pop()!, 0);
  assert.equal(vq.shouldInterrupt(), true);
});

test("packedNeedInterrupt: event offsets in the current and the previous lap", () => {
  const D = RING_EVENT_FLAGS_DESC;
  // size 8, device now at slot 1 of the lap with wrap 0, after writing slots 6, 7 (wrap 1) and 0.
  assert.equal(packedNeedInterrupt(0x8000 | 7, D, true, 8, 1, false, 3), true);
  assert.equal(packedNeedInterrupt(0, D, true, 8, 1, false, 3), true);
  assert.equal(packedNeedInterrupt(1, D, true, 8, 1, false, 3), false);
  assert.equal(packedNeedInterrupt(0x8000 | 5, D, true, 8, 1, false, 3), false);
  assert.equal(packedNeedInterrupt(5, D, true, 8, 1, false, 8), true, "a whole lap written");
  assert.equal(packedNeedInterrupt(5, D, true, 8, 1, false, 0), false, "nothing written");
  assert.equal(packedNeedInterrupt(0, 3, true, 8, 1, false, 1), true, "reserved value 3");
});

test("setNotifications writes the device event suppression flags", () => {
  const { driver, vq } = setup();
  assert.equal(driver.deviceEventFlags, RING_EVENT_FLAGS_ENABLE);
  vq.setNotifications(false);
  assert.equal(driver.deviceEventFlags, RING_EVENT_FLAGS_DISABLE);
  vq.setNotifications(true);
  assert.equal(driver.deviceEventFlags, RING_EVENT_FLAGS_ENABLE);
});

test("with EVENT_IDX the device asks for one notification per batch, at its next read position", () => {
  const { driver, vq } = setup(4, { eventIdx: true });
  assert.equal(driver.deviceEventFlags, RING_EVENT_FLAGS_DESC);
  const kicks: boolean[] = [];
  for (let round = 0; round < 6; round++) {
    // A batch of two, then the device drains the ring (the lists wrap around the end of the ring).
    driver.add([bytes(1)], []);
    kicks.push(driver.kickPrepare());
    driver.add([bytes(2)], []);
    kicks.push(driver.kickPrepare());
    for (let c = vq.pop(); c; c = vq.pop()) vq.pushUsed(c, 0);
    driver.used();
  }
  assert.deepEqual(kicks, [true, false, true, false, true, false, true, false, true, false, true, false]);
  // Not drained: the driver keeps adding without notifying; once the device reads, it asks again.
  driver.add([bytes(1)], []);
  assert.equal(driver.kickPrepare(), true);
  driver.add([bytes(1)], []);
  assert.equal(driver.kickPrepare(), false);
  vq.pop();
  vq.pop();
  driver.add([bytes(1)], []);
  assert.equal(driver.kickPrepare(), true);
  vq.setNotifications(false);
  driver.add([bytes(1)], []);
  assert.equal(driver.kickPrepare(), false);
});

test("layout checks", () => {
  const ram = new FakeRam();
  const b = ram.base;
  assert.equal(packedLayoutError(ram.memory, 6, b, b + 0x100, b + 0x104), undefined);
  assert.match(packedLayoutError(ram.memory, 0, b, b + 0x100, b + 0x104)!, /size/);
  assert.match(packedLayoutError(ram.memory, 40000, b, b + 0x100, b + 0x104)!, /size/);
  assert.match(packedLayoutError(ram.memory, 6, b + 4, b + 0x100, b + 0x104)!, /aligned/);
  assert.match(packedLayoutError(ram.memory, 6, b, b + 0x102, b + 0x104)!, /aligned/);
  assert.match(packedLayoutError(ram.memory, 6, b, b + 0x100, b + ram.size)!, /outside/);
});

// ---- adversarial -------------------------------------------------------------------------------

function expectRejected(s: ReturnType<typeof setup>, pattern: RegExp) {
  assert.throws(() => s.vq.pop(), (e: unknown) => e instanceof VirtqueueError && pattern.test(e.message));
  assert.equal(s.vq.counters.rejected, 1);
  assert.equal(s.vq.pop(), undefined);
  assert.ok(s.vq.broken);
}

test("a list that never ends (NEXT on every slot) is rejected", () => {
  const s = setup(4);
  const a = s.ram.alloc(4);
  for (let i = 3; i >= 0; i--) s.driver.writeSlot(i, a, 4, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_NEXT);
  expectRejected(s, /longer than the queue size/);
  // Consumed and returned: the used descriptor sits in slot 0.
  assert.equal(s.ram.u16(s.driver.ringAddr + 14) & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED), VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);
});

test("a list continuing into a slot that is not available is rejected", () => {
  const s = setup(4);
  const a = s.ram.alloc(4);
  s.driver.writeSlot(0, a, 4, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_NEXT);
  expectRejected(s, /not available/);
});

test("indirect misuse is rejected: with NEXT, inside a list, too long, nested tables are ignored", () => {
  let s = setup(4);
  s.driver.writeSlot(0, s.ram.alloc(16), 16, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT);
  expectRejected(s, /together with/);
  s = setup(4);
  s.driver.writeSlot(1, s.ram.alloc(16), 16, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_INDIRECT);
  s.driver.writeSlot(0, s.ram.alloc(4), 4, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_NEXT);
  expectRejected(s, /inside a descriptor list/);
  s = setup(4);
  s.driver.writeSlot(0, s.ram.alloc(80), 80, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_INDIRECT);
  expectRejected(s, /longer than the queue size/);
  s = setup(4, { indirect: false });
  s.driver.writeSlot(0, s.ram.alloc(16), 16, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_INDIRECT);
  expectRejected(s, /without VIRTIO_F_INDIRECT_DESC/);
  for (const len of [0, 24]) {
    s = setup(4);
    s.driver.writeSlot(0, s.ram.alloc(32), len, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_INDIRECT);
    expectRejected(s, /multiple of 16/);
  }
  // Spec 2.8.7: in an indirect table only WRITE counts; INDIRECT there is reserved and ignored.
  s = setup(4);
  const table = s.ram.alloc(16);
  const buf = s.ram.alloc(4);
  s.ram.setU64(table, buf);
  s.ram.setU32(table + 8, 4);
  s.ram.setU16(table + 14, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT);
  s.driver.writeSlot(0, table, 16, 3, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_INDIRECT);
  const chain = s.vq.pop()!;
  assert.deepEqual(chain.readable, [{ addr: buf, len: 4 }]);
});

test("buffers outside RAM, huge lengths and readable-after-writable are rejected", () => {
  for (const [addr, len, flags, pattern] of [
    [0x10n, 4, 0, /outside guest RAM/],
    [0xffff_ffff_ffff_0000n, 4, 0, /outside guest RAM/],
    [0x8000_0000n, 0xffff_ffff, 0, /outside guest RAM/],
  ] as const) {
    const s = setup(4);
    s.driver.writeSlot(0, addr, len, 1, VIRTQ_DESC_F_AVAIL | flags);
    expectRejected(s, pattern);
  }
  const s = setup(4);
  s.driver.writeSlot(1, s.ram.alloc(4), 4, 0, VIRTQ_DESC_F_AVAIL);
  s.driver.writeSlot(0, s.ram.alloc(4), 4, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT);
  expectRejected(s, /readable descriptor after/);
});

test("a driver making slots of in-flight buffers available again is refused", () => {
  const s = setup(2);
  const a = s.ram.alloc(4);
  s.driver.writeSlot(0, a, 4, 0, VIRTQ_DESC_F_AVAIL);
  s.driver.writeSlot(1, a, 4, 1, VIRTQ_DESC_F_AVAIL);
  s.vq.pop();
  s.vq.pop();
  // Lap 2 (wrap counter 0): AVAIL clear, USED set, over slots still in flight.
  s.driver.writeSlot(0, a, 4, 0, VIRTQ_DESC_F_USED);
  assert.throws(() => s.vq.pop(), /in flight/);
});

test("readPackedChain: undefined when nothing is available, errors for bad arguments", () => {
  const ram = new FakeRam(4096);
  assert.equal(readPackedChain(ram.memory, ram.base, 4, 0, true, true), undefined);
  const r = readPackedChain(ram.memory, ram.base + 4090, 4, 0, true, true);
  assert.ok(r && isChainError(r));
  const h = readPackedChain(ram.memory, ram.base, 4, 9, true, true);
  assert.ok(h && isChainError(h));
});

test("unpop gives the last buffer back, across the ring's wrap; the state round-trips onto a fresh queue", async () => {
  const { checkPackedQueueState } = await import("./packed.ts");
  const { ram, driver, vq } = setup(4, { eventIdx: true });
  // Move both sides near the end of the ring so that the next buffer wraps.
  for (let i = 0; i < 3; i++) {
    driver.add([bytes(i)], []);
    vq.pushUsed(vq.pop()!, 0);
  }
  driver.used();
  const wrapping = driver.add([], [8, 8]); // slots 3 and 0
  const chain = vq.pop()!;
  assert.equal(chain.descriptorCount, 2);
  vq.unpop(chain);
  const again = vq.pop()!;
  assert.equal(again.id, wrapping.id);
  assert.equal(again.writableLength, 16);
  vq.unpop(again);
  assert.throws(() => vq.unpop(again), VirtqueueError, "nothing outstanding");
  const saved = JSON.parse(JSON.stringify(vq.saveState()));
  assert.equal(saved.availIdx, 3);
  const fresh = new PackedVirtqueue({
    memory: ram.memory,
    index: 0,
    size: 4,
    descAddr: driver.ringAddr,
    driverAddr: driver.driverAddr,
    deviceAddr: driver.deviceAddr,
    eventIdx: true,
    indirect: true,
  });
  fresh.applyState(checkPackedQueueState(saved, "q", 4));
  assert.deepEqual(fresh.saveState(), saved);
  const c = fresh.pop()!;
  assert.equal(c.id, wrapping.id);
  fresh.pushUsed(c, 16);
  assert.deepEqual(driver.used().map((u) => u.id), [wrapping.id]);
  for (const spoil of [(s: any) => (s.kind = "split"), (s: any) => (s.availIdx = 4), (s: any) => (s.usedWrap = 0), (s: any) => (s.inFlight = 5), (s: any) => (s.deviceEventFlags = 7)]) {
    const s = structuredClone(saved);
    spoil(s);
    assert.throws(() => checkPackedQueueState(s, "q", 4), /q\./);
  }
});
