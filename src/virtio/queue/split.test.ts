import { test } from "node:test";
import assert from "node:assert/strict";
import { SplitVirtqueue, readSplitChain, vringNeedEvent, availPending, splitLayoutError, type VirtqueueConfig } from "./split.ts";
import { ChainBuilder, isChainError, readFromChain, writeToChain } from "./chain.ts";
import { VirtqueueError, type GuestMemory } from "../types.ts";
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_USED_F_NO_NOTIFY } from "../constants.ts";
import { FakeRam, SplitDriver } from "../testing/fake-driver.ts";

function setup(size = 8, options: { eventIdx?: boolean; indirect?: boolean } = {}) {
  const ram = new FakeRam();
  const driver = new SplitDriver(ram, size);
  const config: VirtqueueConfig = {
    memory: ram.memory,
    index: 0,
    size,
    descAddr: driver.descAddr,
    driverAddr: driver.availAddr,
    deviceAddr: driver.usedAddr,
    eventIdx: options.eventIdx ?? false,
    indirect: options.indirect ?? true,
  };
  const vq = new SplitVirtqueue(config);
  return { ram, driver, vq, config };
}

const bytes = (...v: number[]) => Uint8Array.from(v);

test("a request with a readable and a writable buffer goes through and comes back", () => {
  const { ram, driver, vq } = setup();
  const { id, inAddrs } = driver.add([bytes(1, 2, 3)], [4]);
  const chain = vq.pop()!;
  assert.equal(chain.id, id);
  assert.equal(chain.readableLength, 3);
  assert.equal(chain.writableLength, 4);
  assert.equal(chain.descriptorCount, 2);
  const header = new Uint8Array(3);
  assert.equal(readFromChain(ram.memory, chain, 0, header), 3);
  assert.deepEqual([...header], [1, 2, 3]);
  assert.equal(writeToChain(ram.memory, chain, 0, bytes(9, 8, 7, 6, 5)), 4, "stops at the end of the writable buffers");
  assert.equal(vq.pop(), undefined);
  vq.pushUsed(chain, 4);
  assert.deepEqual(driver.used(), [{ id, len: 4 }]);
  assert.deepEqual([...ram.get(inAddrs[0], 4)], [9, 8, 7, 6]);
  assert.equal(vq.counters.popped, 1);
  assert.equal(vq.counters.used, 1);
  assert.ok(ram.writes.length > 0, "writes are reported through written()");
});

test("chains follow NEXT through scattered descriptors; used len is clamped to the writable length", () => {
  const { driver, vq } = setup();
  driver.add([bytes(1), bytes(2, 2)], [10, 20, 30]);
  const chain = vq.pop()!;
  assert.equal(chain.readable.length, 2);
  assert.equal(chain.writable.length, 3);
  assert.equal(chain.writableLength, 60);
  vq.pushUsed(chain, 1000);
  assert.equal(driver.used()[0].len, 60);
});

test("indirect descriptors, alone and after direct ones (spec 2.7.5.3.2)", () => {
  const { ram, driver, vq } = setup();
  driver.add([bytes(1, 2)], [8, 8], { indirect: true });
  let chain = vq.pop()!;
  assert.equal(chain.descriptorCount, 1);
  assert.equal(chain.readableLength, 2);
  assert.equal(chain.writableLength, 16);
  vq.pushUsed(chain, 16);
  driver.used();
  // Two direct descriptors, then one pointing to a table of two.
  const table = ram.alloc(32);
  const a = ram.alloc(4), b = ram.alloc(4), c = ram.alloc(4), d = ram.alloc(4);
  driver.writeDesc(table, 0, c, 4, VIRTQ_DESC_F_NEXT, 1);
  driver.writeDesc(table, 1, d, 4, VIRTQ_DESC_F_WRITE, 0);
  driver.writeDesc(driver.descAddr, 5, a, 4, VIRTQ_DESC_F_NEXT, 6);
  driver.writeDesc(driver.descAddr, 6, b, 4, VIRTQ_DESC_F_NEXT, 7);
  driver.writeDesc(driver.descAddr, 7, table, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
  driver.pushAvail(5);
  chain = vq.pop()!;
  assert.deepEqual(chain.readable.map((x) => x.addr), [a, b, c]);
  assert.deepEqual(chain.writable.map((x) => x.addr), [d]);
  assert.equal(chain.descriptorCount, 3);
});

test("without EVENT_IDX: VIRTQ_AVAIL_F_NO_INTERRUPT suppresses, VIRTQ_USED_F_NO_NOTIFY is set on request", () => {
  const { driver, vq } = setup();
  assert.equal(vq.shouldInterrupt(), false, "nothing used yet");
  driver.add([bytes(1)], []);
  vq.pushUsed(vq.pop()!, 0);
  assert.equal(vq.shouldInterrupt(), true);
  assert.equal(vq.shouldInterrupt(), false, "nothing new since the last decision");
  driver.setNoInterrupt(true);
  driver.add([bytes(1)], []);
  vq.pushUsed(vq.pop()!, 0);
  assert.equal(vq.shouldInterrupt(), false);
  assert.equal(vq.counters.interruptsSent, 1);
  assert.equal(vq.counters.interruptsSuppressed, 1);
  vq.setNotifications(false);
  assert.equal(driver.usedFlags, VIRTQ_USED_F_NO_NOTIFY);
  vq.setNotifications(true);
  assert.equal(driver.usedFlags, 0);
});

test("with EVENT_IDX: used_event decides (flags ignored), avail_event follows the device", () => {
  const { driver, vq } = setup(8, { eventIdx: true });
  driver.setNoInterrupt(true); // must be ignored (spec 2.7.7.2)
  driver.setUsedEvent(2); // "interrupt me when you write used entry 2"
  const results: boolean[] = [];
  for (let i = 0; i < 4; i++) {
    driver.add([bytes(i)], []);
    const chain = vq.pop()!;
    assert.equal(driver.availEvent, i + 1, "avail_event = next entry the device will read");
    vq.pushUsed(chain, 0);
    results.push(vq.shouldInterrupt());
  }
  assert.deepEqual(results, [false, false, true, false]);
  // Batched: two entries written, used_event inside the batch.
  driver.setUsedEvent(5);
  for (let i = 0; i < 2; i++) driver.add([bytes(i)], []);
  vq.pushUsed(vq.pop()!, 0);
  vq.pushUsed(vq.pop()!, 0);
  assert.equal(vq.shouldInterrupt(), true);
  // Disabling notifications stops avail_event from moving.
  vq.setNotifications(false);
  driver.add([bytes(0)], []);
  vq.pushUsed(vq.pop()!, 0);
  assert.equal(driver.availEvent, 6);
  vq.setNotifications(true);
  assert.equal(driver.availEvent, 7);
});

test("with EVENT_IDX the driver notifies once per batch after the device caught up (avail_event)", () => {
  const { driver, vq } = setup(4, { eventIdx: true });
  const kicks: boolean[] = [];
  for (let round = 0; round < 3; round++) {
    driver.add([bytes(1)], []);
    kicks.push(driver.kickPrepare(true));
    driver.add([bytes(2)], []);
    kicks.push(driver.kickPrepare(true));
    for (let c = vq.pop(); c; c = vq.pop()) vq.pushUsed(c, 0);
    driver.used();
  }
  assert.deepEqual(kicks, [true, false, true, false, true, false]);
});

test("vring_need_event across the 16-bit wrap", () => {
  assert.equal(vringNeedEvent(0xffff, 0x0001, 0xfffe), true);
  assert.equal(vringNeedEvent(0x0000, 0x0001, 0xffff), true);
  assert.equal(vringNeedEvent(0x0001, 0x0001, 0xffff), false);
  assert.equal(vringNeedEvent(0xfffd, 0x0001, 0xfffe), false);
  assert.equal(availPending(0x0002, 0xfffe, 8), 4);
  assert.equal(availPending(0x0010, 0xfffe, 8), -1);
});

test("indices wrap at 2^16 (70000 requests through a queue of 4, EVENT_IDX on)", () => {
  const { driver, vq } = setup(4, { eventIdx: true });
  let interrupts = 0;
  for (let i = 0; i < 70_000; i++) {
    const { id } = driver.add([bytes(i & 0xff)], [1]);
    driver.setUsedEvent(driver.lastUsed); // virtqueue_enable_cb: interrupt for the next one
    const chain = vq.pop()!;
    assert.equal(chain.id, id);
    vq.pushUsed(chain, 1);
    if (vq.shouldInterrupt()) interrupts++;
    const used = driver.used();
    assert.equal(used.length, 1);
    assert.equal(used[0].id, id);
  }
  assert.equal(interrupts, 70_000);
  assert.equal(driver.usedIdx, 70_000 & 0xffff);
});

test("layout checks: power of 2, alignment, inside RAM", () => {
  const ram = new FakeRam();
  const b = ram.base;
  assert.equal(splitLayoutError(ram.memory, 8, b, b + 0x200, b + 0x400), undefined);
  assert.match(splitLayoutError(ram.memory, 6, b, b + 0x200, b + 0x400)!, /power of 2/);
  assert.match(splitLayoutError(ram.memory, 8, b + 8, b + 0x200, b + 0x400)!, /aligned/);
  assert.match(splitLayoutError(ram.memory, 8, b, b + 0x201, b + 0x400)!, /aligned/);
  assert.match(splitLayoutError(ram.memory, 8, b, b + 0x200, b + 0x402)!, /aligned/);
  assert.match(splitLayoutError(ram.memory, 8, b - 0x1000, b + 0x200, b + 0x400)!, /outside/);
  assert.match(splitLayoutError(ram.memory, 8, b, b + 0x200, b + ram.size - 8)!, /outside/);
  assert.throws(
    () => new SplitVirtqueue({ memory: ram.memory, index: 0, size: 8, descAddr: 0, driverAddr: 0, deviceAddr: 0, eventIdx: false, indirect: false }),
    VirtqueueError,
  );
});

// ---- adversarial ---------------------------------------------------------------------------

/** Expects the next pop to be rejected, the entry to come back used with length 0, and the queue to stop. */
function expectRejected(s: ReturnType<typeof setup>, pattern: RegExp, head?: number) {
  assert.throws(() => s.vq.pop(), (e: unknown) => e instanceof VirtqueueError && pattern.test(e.message));
  assert.equal(s.vq.counters.rejected, 1);
  if (head !== undefined) assert.deepEqual(s.driver.used(), [{ id: head, len: 0 }]);
  assert.equal(s.vq.pop(), undefined, "a broken queue yields nothing more");
  assert.ok(s.vq.broken);
}

test("a descriptor loop is rejected", () => {
  const s = setup();
  const a = s.ram.alloc(4);
  s.driver.writeDesc(s.driver.descAddr, 0, a, 4, VIRTQ_DESC_F_NEXT, 1);
  s.driver.writeDesc(s.driver.descAddr, 1, a, 4, VIRTQ_DESC_F_NEXT, 0);
  s.driver.pushAvail(0);
  expectRejected(s, /longer than the queue size/, 0);
});

test("a self-loop in an indirect table is rejected", () => {
  const s = setup();
  const a = s.ram.alloc(4);
  const table = s.ram.alloc(32);
  s.driver.writeDesc(table, 0, a, 4, VIRTQ_DESC_F_NEXT, 1);
  s.driver.writeDesc(table, 1, a, 4, VIRTQ_DESC_F_NEXT, 0);
  s.driver.writeDesc(s.driver.descAddr, 3, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
  s.driver.pushAvail(3);
  expectRejected(s, /loops/, 3);
});

for (const [name, addr, len, pattern] of [
  ["below RAM", 0x1000, 4, /outside guest RAM/],
  ["straddling the end of RAM", 0x8000_0000 + (1 << 20) - 2, 4, /outside guest RAM/],
  ["beyond 2^53", 0xffff_ffff_ffff_f000n, 4, /outside guest RAM/],
  ["of length 2^32-1", 0x8000_0000, 0xffff_ffff, /outside guest RAM/],
] as const) {
  test(`a buffer ${name} is rejected`, () => {
    const s = setup();
    s.driver.writeDesc(s.driver.descAddr, 2, addr, len, 0, 0);
    s.driver.pushAvail(2);
    expectRejected(s, pattern, 2);
  });
}

test("a zero-length buffer is accepted and dropped (its address is not used)", () => {
  const s = setup();
  const a = s.ram.alloc(4);
  s.driver.writeDesc(s.driver.descAddr, 0, 0xdead_0000_0000n, 0, VIRTQ_DESC_F_NEXT, 1);
  s.driver.writeDesc(s.driver.descAddr, 1, a, 4, VIRTQ_DESC_F_WRITE, 0);
  s.driver.pushAvail(0);
  const chain = s.vq.pop()!;
  assert.equal(chain.readable.length, 0);
  assert.equal(chain.writable.length, 1);
  assert.equal(chain.descriptorCount, 2);
});

test("an indirect table inside an indirect table is rejected", () => {
  const s = setup();
  const inner = s.ram.alloc(16);
  const table = s.ram.alloc(16);
  s.driver.writeDesc(inner, 0, s.ram.alloc(4), 4, 0, 0);
  s.driver.writeDesc(table, 0, inner, 16, VIRTQ_DESC_F_INDIRECT, 0);
  s.driver.writeDesc(s.driver.descAddr, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
  s.driver.pushAvail(0);
  expectRejected(s, /inside an indirect table/, 0);
});

for (const len of [0, 8, 17, 0xffff_fff0]) {
  test(`an indirect table of ${len} bytes is rejected`, () => {
    const s = setup();
    s.driver.writeDesc(s.driver.descAddr, 0, s.ram.alloc(64), len, VIRTQ_DESC_F_INDIRECT, 0);
    s.driver.pushAvail(0);
    expectRejected(s, len === 0xffff_fff0 ? /outside guest RAM/ : /multiple of 16/, 0);
  });
}

test("INDIRECT without the feature, and INDIRECT with NEXT, are rejected", () => {
  let s = setup(8, { indirect: false });
  s.driver.add([bytes(1)], [1], { indirect: true });
  expectRejected(s, /without VIRTIO_F_INDIRECT_DESC/);
  s = setup();
  s.driver.writeDesc(s.driver.descAddr, 0, s.ram.alloc(16), 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
  s.driver.pushAvail(0);
  expectRejected(s, /together with/, 0);
});

test("a readable descriptor after a writable one is rejected (spec 2.7.4.2)", () => {
  const s = setup();
  s.driver.writeDesc(s.driver.descAddr, 0, s.ram.alloc(4), 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
  s.driver.writeDesc(s.driver.descAddr, 1, s.ram.alloc(4), 4, 0, 0);
  s.driver.pushAvail(0);
  expectRejected(s, /readable descriptor after/, 0);
});

test("head and next indices outside the table are rejected", () => {
  let s = setup();
  s.driver.pushAvail(8);
  expectRejected(s, /head index 8/);
  assert.equal(s.driver.used().length, 0, "nothing to return for a head that is not a descriptor");
  s = setup();
  s.driver.writeDesc(s.driver.descAddr, 0, s.ram.alloc(4), 4, VIRTQ_DESC_F_NEXT, 8);
  s.driver.pushAvail(0);
  expectRejected(s, /next index 8/, 0);
});

test("the available index jumping more than the queue size ahead is refused", () => {
  const s = setup();
  s.ram.setU16(s.driver.availAddr + 2, 9);
  assert.throws(() => s.vq.pop(), /more than the queue size ahead/);
  assert.equal(s.vq.pop(), undefined);
});

test("more chains in flight than the queue size are refused (a driver re-adding heads)", () => {
  const s = setup(2);
  const a = s.ram.alloc(4);
  s.driver.writeDesc(s.driver.descAddr, 0, a, 4, 0, 0);
  s.driver.pushAvail(0);
  s.driver.pushAvail(0);
  s.vq.pop();
  s.vq.pop();
  s.driver.pushAvail(0);
  assert.throws(() => s.vq.pop(), /in flight/);
});

test("pushUsed of a chain that was never taken is refused", () => {
  const s = setup();
  assert.throws(() => s.vq.pushUsed({ id: 0, readable: [], writable: [], readableLength: 0, writableLength: 0, descriptorCount: 1 }, 0), VirtqueueError);
  assert.throws(() => s.vq.pushUsed({ id: 99, readable: [], writable: [], readableLength: 0, writableLength: 0, descriptorCount: 1 }, 0), VirtqueueError);
});

test("a detached queue does nothing", () => {
  const s = setup();
  s.driver.add([bytes(1)], []);
  const chain = s.vq.pop()!;
  s.vq.detach();
  s.vq.pushUsed(chain, 0);
  assert.equal(s.driver.usedIdx, 0);
  s.driver.add([bytes(1)], []);
  assert.equal(s.vq.pop(), undefined);
});

test("a chain of more than 2^32 bytes is rejected (ChainBuilder)", () => {
  const everything: GuestMemory = { contains: () => true, view: () => undefined, write: () => false, written: () => {} };
  const b = new ChainBuilder(everything);
  assert.equal(b.add(0, 0xffff_ffff, false), undefined);
  assert.equal(b.add(0, 1, false), undefined);
  assert.match(b.add(0, 1, true)!, /2\^32/);
});

test("readSplitChain is pure and bounds-checked for any head and table address", () => {
  const ram = new FakeRam(4096);
  assert.ok(isChainError(readSplitChain(ram.memory, ram.base + 4096 - 16, 2, 0, true)));
  assert.ok(isChainError(readSplitChain(ram.memory, ram.base, 4, 4, true)));
  assert.ok(isChainError(readSplitChain(ram.memory, ram.base, 3.5, 0, true)));
  assert.ok(isChainError(readSplitChain(ram.memory, -16, 4, 0, true)));
  // A zeroed table: descriptor 0 is a zero-length readable buffer, a valid (empty) chain.
  const chain = readSplitChain(ram.memory, ram.base, 4, 0, true);
  assert.ok(!isChainError(chain));
  assert.equal(chain.descriptorCount, 1);
});

test("unpop gives the last chain back: popped again unchanged; only the newest outstanding chain", () => {
  const { driver, vq } = setup(8, { eventIdx: true });
  const a = driver.add([], [16]);
  const b = driver.add([], [16, 16]);
  const first = vq.pop()!;
  const second = vq.pop()!;
  assert.throws(() => vq.unpop(first), VirtqueueError, "not the newest");
  vq.unpop(second);
  assert.equal(driver.availEvent, 1, "avail_event follows the read position back");
  vq.unpop(first);
  assert.equal(vq.pop()!.id, a.id);
  const again = vq.pop()!;
  assert.equal(again.id, b.id);
  assert.equal(again.writableLength, 32);
  assert.equal(vq.counters.popped, 2);
  vq.pushUsed(again, 0);
  assert.throws(() => vq.unpop(again), VirtqueueError);
});

test("state: saved and applied onto a freshly built queue over the same ring, the queue continues; bad input refused", async () => {
  const { checkSplitQueueState } = await import("./split.ts");
  const { ram, driver, vq, config } = setup(8, { eventIdx: true });
  const added = [0, 1, 2].map(() => driver.add([], [8]));
  const c1 = vq.pop()!;
  vq.pushUsed(c1, 8);
  vq.shouldInterrupt();
  vq.pop();
  const saved = JSON.parse(JSON.stringify(vq.saveState()));
  const fresh = new SplitVirtqueue(config); // writes avail_event = 0, as a constructor does
  fresh.applyState(checkSplitQueueState(saved, "q", 8));
  assert.deepEqual(fresh.saveState(), saved);
  assert.equal(driver.availEvent, 2, "device-written fields written back");
  const next = fresh.pop()!;
  assert.equal(next.id, added[2].id, "the restored queue reads on where the saved one stopped");
  fresh.pushUsed(next, 0);
  assert.equal(ram.u16(driver.usedAddr + 2), 2);
  for (const spoil of [
    (s: any) => (s.kind = "packed"),
    (s: any) => (s.size = 16),
    (s: any) => (s.lastAvail = 70000),
    (s: any) => (s.inFlight = 9),
    (s: any) => (s.notificationsEnabled = "yes"),
    (s: any) => (s.broken = 3),
    (s: any) => (s.counters = {}),
  ]) {
    const s = structuredClone(saved);
    spoil(s);
    assert.throws(() => checkSplitQueueState(s, "q", 8), /^SnapshotError|q\./);
  }
});
