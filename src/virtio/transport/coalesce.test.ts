// Interrupt coalescing in the virtio-mmio transport (VirtioMmioOptions.coalesce), on a fake
// HostClock: the delay bound is a host timer, so the tests move time by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioMmioTransport, checkCoalesce, type VirtioCoalesce } from "./mmio.ts";
import type { HostClock } from "../../platform/clock.ts";
import type { DescriptorChain, VirtioDevice, VirtioDeviceContext } from "../types.ts";
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_RING_PACKED, VIRTIO_MMIO_INT_VRING, VirtioMmioRegister as R, featureBit } from "../constants.ts";
import { FakeRam, SplitDriver, linuxProbe, mmioWrite, takeInterrupt } from "../testing/fake-driver.ts";
import { FakeClock, irqLine } from "../../testing/fakes.ts";

/** Takes every request on a kick and completes them only when the test says so (like slow I/O). */
class HeldDevice implements VirtioDevice {
  readonly deviceId = 42;
  readonly name = "held";
  readonly queueSizes = [16];
  readonly deviceFeatures = 0n;
  context: VirtioDeviceContext | undefined;
  held: DescriptorChain[] = [];
  readConfig() {
    return 0;
  }
  writeConfig() {
    return true;
  }
  activate(context: VirtioDeviceContext) {
    this.context = context;
  }
  queueNotify(i: number) {
    const q = this.context!.queues[i];
    for (let c = q.pop(); c; c = q.pop()) this.held.push(c);
  }
  reset() {
    this.context = undefined;
    this.held = [];
  }
  /** Completes `n` held requests; `perCall` used buffers per notifyUsed (a device batching what settled together). */
  complete(n: number, perCall = 1) {
    const q = this.context!.queues[0];
    for (let done = 0; done < n; ) {
      const batch = Math.min(perCall, n - done);
      for (let k = 0; k < batch; k++) q.pushUsed(this.held.shift()!, 0);
      done += batch;
      this.context!.notifyUsed(0);
    }
  }
}

/** A transport with a split-ring driver that submitted `requests` requests; no EVENT_IDX unless asked. */
function setup(coalesce: VirtioCoalesce | undefined, requests = 8, eventIdx = false, clock: HostClock = new FakeClock()) {
  const ram = new FakeRam();
  const device = new HeldDevice();
  const irq = irqLine();
  const t = new VirtioMmioTransport({
    device,
    memory: ram.memory,
    irq: irq.set,
    coalesce,
    clock,
  });
  const probe = linuxProbe(t, ram, (offered) => offered & ~featureBit(VIRTIO_F_RING_PACKED) & (eventIdx ? ~0n : ~featureBit(VIRTIO_F_EVENT_IDX)));
  const driver = probe.drivers[0] as SplitDriver;
  for (let i = 0; i < requests; i++) driver.add([], [16]);
  mmioWrite(t, R.QueueNotify, 0);
  assert.equal(device.held.length, requests);
  return { t, device, driver, irq, clock: clock as FakeClock };
}

test("without coalescing (and with { 1, 0 }) every completion interrupts at once, as before", () => {
  for (const coalesce of [undefined, { maxCompletions: 1, maxDelayUs: 0 }]) {
    const { t, device, irq } = setup(coalesce, 3);
    for (let i = 1; i <= 3; i++) {
      device.complete(1);
      assert.equal(irq.level, true);
      assert.equal(takeInterrupt(t), VIRTIO_MMIO_INT_VRING);
      assert.equal(irq.level, false);
      assert.equal(irq.edges, i);
    }
    assert.equal(t.counters.usedInterrupts, 3);
    assert.equal(t.counters.coalescedCompletions, 0);
    assert.deepEqual(t.coalescing, { maxCompletions: 1, maxDelayUs: 0 });
  }
});

test("N completions raise one interrupt at once", () => {
  const { t, device, irq, clock } = setup({ maxCompletions: 4, maxDelayUs: 5000 });
  device.complete(3);
  assert.equal(irq.level, false, "three of four: still gathering");
  device.complete(1);
  assert.equal(irq.level, true, "the fourth raises it without waiting for the timer");
  assert.equal(t.counters.usedInterrupts, 1);
  assert.equal(t.counters.coalesceFlushesByCount, 1);
  takeInterrupt(t);
  clock.advance(10);
  assert.equal(irq.edges, 1, "the timer was cancelled with the batch");
  assert.equal(t.counters.coalesceFlushesByTimer, 0);
});

test("several used buffers signalled by one notifyUsed count as several completions", () => {
  const { t, device, irq } = setup({ maxCompletions: 4, maxDelayUs: 5000 });
  device.complete(4, 4);
  assert.equal(irq.level, true);
  assert.equal(t.counters.coalescedCompletions, 4);
});

test("fewer than N completions interrupt T microseconds after the first one", () => {
  const { t, device, irq, clock } = setup({ maxCompletions: 16, maxDelayUs: 2000 });
  device.complete(1);
  clock.advance(1);
  device.complete(1); // a later completion does not restart the clock
  assert.equal(irq.level, false);
  clock.advance(0.999);
  assert.equal(irq.level, false, "1.999 ms after the first completion");
  clock.advance(0.001);
  assert.equal(irq.level, true, "2 ms after the first completion");
  assert.equal(t.counters.coalesceFlushesByTimer, 1);
  assert.equal(t.counters.usedInterrupts, 1);
  takeInterrupt(t);
  // A new batch starts its own clock.
  device.complete(1);
  clock.advance(1.5);
  assert.equal(irq.level, false);
  clock.advance(0.5);
  assert.equal(irq.level, true);
  assert.equal(irq.edges, 2);
});

test("the driver's suppression is judged when the interrupt is raised, not when a completion arrives", () => {
  // Interrupts turned off while the batch gathers: none is raised.
  const a = setup({ maxCompletions: 8, maxDelayUs: 1000 });
  a.device.complete(2);
  a.driver.setNoInterrupt(true);
  a.clock.advance(1);
  assert.equal(a.irq.edges, 0);
  assert.equal(a.t.counters.usedInterruptsSuppressed, 1);

  // Off when the completions arrived, on again before the batch ends: the interrupt is raised.
  const b = setup({ maxCompletions: 8, maxDelayUs: 1000 });
  b.driver.setNoInterrupt(true);
  b.device.complete(2);
  b.driver.setNoInterrupt(false);
  b.clock.advance(1);
  assert.equal(b.irq.edges, 1);
});

test("EVENT_IDX: a batch interrupts when used_event lies anywhere inside it", () => {
  const { t, device, driver, irq } = setup({ maxCompletions: 4, maxDelayUs: 1000 }, 8, true);
  driver.setUsedEvent(2); // "interrupt me once entry 2 is used"
  device.complete(4);
  assert.equal(irq.edges, 1, "entries 0..3 include 2");
  takeInterrupt(t);
  driver.setUsedEvent(100); // far ahead: the next batch is not wanted
  device.complete(4);
  assert.equal(irq.edges, 1);
  assert.equal(t.counters.usedInterruptsSuppressed, 1);
});

test("a device reset drops the gathered completions and their timer", () => {
  const { t, device, irq, clock } = setup({ maxCompletions: 8, maxDelayUs: 1000 });
  device.complete(2);
  mmioWrite(t, R.Status, 0);
  clock.advance(5);
  assert.equal(irq.edges, 0);
  assert.equal(t.counters.coalesceFlushesByTimer, 0);
});

test("changing the setting at run time signals what was waiting", () => {
  const { t, device, irq } = setup({ maxCompletions: 8, maxDelayUs: 100_000 });
  device.complete(2);
  assert.equal(irq.level, false);
  t.setCoalesce(undefined);
  assert.equal(irq.level, true, "turning coalescing off does not leave completions behind");
  takeInterrupt(t);
  device.complete(1);
  assert.equal(irq.edges, 2, "and it is off");
  takeInterrupt(t);
  t.setCoalesce({ maxCompletions: 2, maxDelayUs: 1000 });
  device.complete(1);
  assert.equal(irq.edges, 2, "counting starts afresh: earlier completions are not counted again");
  device.complete(1);
  assert.equal(irq.edges, 3);
});

test("settings that cannot work are refused", () => {
  assert.throws(() => checkCoalesce({ maxCompletions: 0, maxDelayUs: 10 }), /at least 1/);
  assert.throws(() => checkCoalesce({ maxCompletions: 2.5, maxDelayUs: 10 }), /whole number/);
  assert.throws(() => checkCoalesce({ maxCompletions: 4, maxDelayUs: -1 }), /between 0 and/);
  assert.throws(() => checkCoalesce({ maxCompletions: 4, maxDelayUs: 0 }), /need a delay bound/);
  assert.doesNotThrow(() => checkCoalesce({ maxCompletions: 1, maxDelayUs: 0 }));
  assert.throws(() => setup({ maxCompletions: 4, maxDelayUs: 0 }), RangeError);
});

test("the host clock gets the delay in milliseconds and the timer is cancelled when the count ends the batch", () => {
  const started: number[] = [];
  let cancels = 0;
  let fire: (() => void) | undefined;
  const clock: HostClock = {
    now: () => 0,
    setTimer(ms, f) {
      started.push(ms);
      fire = f;
      return () => cancels++;
    },
    yieldToHost: () => Promise.resolve(),
  };
  const { t, device, irq } = setup({ maxCompletions: 3, maxDelayUs: 50 }, 8, false, clock);
  device.complete(1);
  device.complete(1);
  assert.deepEqual(started, [0.05], "one timer per batch, started by its first completion");
  device.complete(1);
  assert.equal(irq.edges, 1);
  assert.equal(cancels, 1);
  takeInterrupt(t);
  device.complete(1);
  assert.deepEqual(started, [0.05, 0.05]);
  fire!();
  assert.equal(irq.edges, 2);
  assert.equal(t.counters.coalesceFlushesByTimer, 1);
});

test("the ledger reports completions coalesced and batches by what ended them", async () => {
  const { collectLedger } = await import("../../machine/ledger.ts");
  const { Bus } = await import("../../machine/bus.ts");
  const { t, device, clock } = setup({ maxCompletions: 4, maxDelayUs: 2000 }, 7);
  const ledger = () => collectLedger({ cpu: { instret: 0n, trapCounts: () => [] }, bus: new Bus(), startedAt: 0, virtio: [t] }).virtio.held;
  device.complete(4); // a batch ended by the count
  takeInterrupt(t);
  device.complete(2);
  clock.advance(2); // a batch ended by the timer
  takeInterrupt(t);
  const l = ledger();
  assert.equal(l.coalescedCompletions, 6);
  assert.equal(l.coalesceBatchesByCount, 1);
  assert.equal(l.coalesceBatchesByTimer, 1);
  assert.equal(l.usedInterruptsSent, 2);
  // Turning it off ends the waiting batch for the change, which is neither by count nor by timer.
  device.complete(1);
  t.setCoalesce(undefined);
  assert.deepEqual([ledger().coalescedCompletions, ledger().coalesceBatchesByCount, ledger().coalesceBatchesByTimer], [7, 1, 1]);
});
