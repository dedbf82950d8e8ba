// The ledger's virtio counters are exact against the fake Linux driver: kicks received, kicks the
// driver left out because of EVENT_IDX, used-buffer interrupts sent and suppressed, bytes, and
// the QueueNotify exits behind them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Bus } from "../../src/machine/bus.ts";
import { collectLedger, type LedgerMachine } from "../../src/machine/ledger.ts";
import { VirtioMmioTransport } from "../../src/virtio/transport/mmio.ts";
import { virtioMmioRegisterName } from "../../src/virtio/transport/mmio-registers.ts";
import { VirtioRngDevice } from "../../src/virtio/rng/device.ts";
import { FakeRam, PackedDriver, SplitDriver, linuxProbe, mmioWrite, takeInterrupt } from "../../src/virtio/testing/fake-driver.ts";
import { RING_EVENT_FLAGS_DESC, VIRTIO_F_EVENT_IDX, VIRTIO_F_RING_PACKED, VirtioMmioRegister as R, featureBit } from "../../src/virtio/constants.ts";
import type { VirtioDevice, VirtioDeviceContext } from "../../src/virtio/types.ts";

const BASE = 0x1000_1000;

/**
 * A transport mapped on a bus, and a stand-in the fake driver can use that goes through the
 * bus, so that the driver's register accesses are counted as the CPU's would be.
 */
function setUp(device: VirtioDevice) {
  const ram = new FakeRam(4 << 20);
  const transport = new VirtioMmioTransport({ device, memory: ram.memory, irq: () => {} });
  const bus = new Bus();
  bus.map(BASE, 0x200, transport, { registerName: virtioMmioRegisterName });
  const viaBus = {
    device,
    load: (offset: number, size: 4) => bus.load(BASE + offset, size),
    store: (offset: number, size: 4, value: number) => bus.store(BASE + offset, size, value),
  } as unknown as VirtioMmioTransport;
  const machine: LedgerMachine = { cpu: { instret: 0n, trapCounts: () => [] }, bus, startedAt: 0, virtio: [transport] };
  return { ram, transport, viaBus, ledger: () => collectLedger(machine) };
}

test("N kicks, each with one request: N notifications received, none avoided, N interrupts, bytes in", () => {
  const N = 9;
  const LEN = 16;
  const rng = new VirtioRngDevice({ entropy: (b) => b.fill(0xab), bytesPerSecond: Infinity });
  const { ram, viaBus, ledger } = setUp(rng);
  // Without EVENT_IDX and packed rings: the driver kicks after every buffer, the device interrupts after every one.
  const probe = linuxProbe(viaBus, ram, (o) => o & ~featureBit(VIRTIO_F_EVENT_IDX) & ~featureBit(VIRTIO_F_RING_PACKED));
  const driver = probe.drivers[0] as SplitDriver;
  const before = ledger().exits.byDevice["virtio-rng0"];
  for (let i = 0; i < N; i++) {
    driver.add([], [LEN]);
    assert.equal(driver.kickPrepare(false), true);
    mmioWrite(viaBus, R.QueueNotify, 0);
    assert.equal(takeInterrupt(viaBus), 1);
    assert.equal(driver.used().length, 1);
  }
  const l = ledger();
  assert.deepEqual(l.virtio["virtio-rng0"], {
    notificationsReceived: N,
    notificationsIgnored: 0,
    notificationsSuppressed: 0,
    usedInterruptsSent: N,
    usedInterruptsSuppressed: 0,
    configInterrupts: 0,
    irqAssertions: N,
    coalesce: null,
    coalescedCompletions: 0,
    coalesceBatchesByCount: 0,
    coalesceBatchesByTimer: 0,
    perQueue: [{ queue: 0, notificationsReceived: N, notificationsSuppressed: 0, chainsPopped: N, chainsUsed: N, usedInterruptsSent: N, usedInterruptsSuppressed: 0 }],
  });
  assert.deepEqual(l.bytes["virtio-rng0"], { in: N * LEN, out: 0 });
  // The exits behind it: one QueueNotify store, one InterruptStatus load and one InterruptACK store per request.
  const regs = l.exits.byDevice["virtio-rng0"].byRegister;
  assert.equal(regs.QueueNotify, N);
  assert.equal(regs.InterruptStatus - (before.byRegister.InterruptStatus ?? 0), N);
  assert.equal(regs.InterruptACK - (before.byRegister.InterruptACK ?? 0), N);
});

/** Takes no buffers when kicked: they pile up until drain(), as under a busy device. */
class HoldingDevice implements VirtioDevice {
  readonly deviceId = 0x7f;
  readonly name = "virtio-hold0";
  readonly queueSizes = [16];
  readonly deviceFeatures = 0n;
  kicks = 0;
  private context: VirtioDeviceContext | undefined;
  readConfig(): number | undefined {
    return undefined;
  }
  writeConfig(): boolean {
    return false;
  }
  activate(context: VirtioDeviceContext): void {
    this.context = context;
    // "Notify me about the next buffer" (avail_event / packed device event in DESC mode).
    context.queues[0].setNotifications(true);
  }
  queueNotify(): void {
    this.kicks++;
  }
  reset(): void {
    this.context = undefined;
  }
  /** Completes every available buffer, signalling after each one as a device that streams would. */
  drain(): number {
    const q = this.context!.queues[0];
    let n = 0;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      q.pushUsed(chain, 0);
      this.context!.notifyUsed(0);
      n++;
    }
    return n;
  }
}

for (const packed of [false, true]) {
  test(`EVENT_IDX (${packed ? "packed" : "split"} ring): kicks avoided and used interrupts suppressed are counted exactly`, () => {
    const K = 6;
    const device = new HoldingDevice();
    const { ram, transport, viaBus, ledger } = setUp(device);
    const probe = linuxProbe(viaBus, ram, (o) => (packed ? o : o & ~featureBit(VIRTIO_F_RING_PACKED)));
    const driver = probe.drivers[0];
    assert.equal(driver instanceof PackedDriver, packed);
    // The driver asks for an interrupt only when the first used buffer arrives and never moves
    // its event on, so every later completion is one the device need not signal.
    if (driver instanceof SplitDriver) driver.autoUsedEvent = false;
    else driver.setDriverEvent(RING_EVENT_FLAGS_DESC, driver.nextUsedOffWrap);
    const kick = () => (driver instanceof SplitDriver ? driver.kickPrepare(true) : driver.kickPrepare());

    let kicks = 0;
    for (let i = 0; i < K; i++) {
      driver.add([], [8]);
      // Only the first buffer passes avail_event: the device has not looked at the ring since.
      if (kick()) {
        kicks++;
        mmioWrite(viaBus, R.QueueNotify, 0);
      }
    }
    assert.equal(kicks, 1);
    assert.equal(device.drain(), K);
    // The device caught up and re-armed avail_event: the next buffer needs a kick again.
    driver.add([], [8]);
    assert.equal(kick(), true);
    mmioWrite(viaBus, R.QueueNotify, 0);
    assert.equal(device.drain(), 1);

    const v = ledger().virtio["virtio-hold0"];
    assert.deepEqual(v.perQueue, [
      { queue: 0, notificationsReceived: 2, notificationsSuppressed: K + 1 - 2, chainsPopped: K + 1, chainsUsed: K + 1, usedInterruptsSent: 1, usedInterruptsSuppressed: K },
    ]);
    assert.equal(v.notificationsReceived, 2);
    assert.equal(v.notificationsSuppressed, K - 1);
    assert.equal(v.usedInterruptsSent, 1);
    assert.equal(v.usedInterruptsSuppressed, K);
    assert.equal(v.irqAssertions, 1); // never acknowledged: the line stayed up
    assert.equal(device.kicks, 2);
    assert.equal(ledger().exits.byDevice["virtio-hold0"].byRegister.QueueNotify, 2);
    // The device keeps no byte counters: it is not in `bytes`.
    assert.equal(ledger().bytes["virtio-hold0"], undefined);
    assert.equal(transport.counters.notifications[0], 2);
  });
}

test("kicks before DRIVER_OK or for a queue that does not exist are ignored and counted as such", () => {
  const { viaBus, ledger } = setUp(new VirtioRngDevice({ bytesPerSecond: Infinity }));
  mmioWrite(viaBus, R.QueueNotify, 0); // nothing set up yet
  mmioWrite(viaBus, R.QueueNotify, 5); // no queue 5
  const v = ledger().virtio["virtio-rng0"];
  assert.equal(v.notificationsReceived, 1);
  assert.equal(v.notificationsIgnored, 2);
  assert.equal(v.perQueue[0].notificationsSuppressed, 0);
  assert.equal(ledger().exits.byDevice["virtio-rng0"].byRegister.QueueNotify, 2);
});

test("the ledger reports each device's coalescing setting in force, null when off, and follows live changes", () => {
  const { transport, ledger } = setUp(new VirtioRngDevice());
  assert.equal(ledger().virtio["virtio-rng0"].coalesce, null);
  transport.setCoalesce({ maxCompletions: 8, maxDelayUs: 500 });
  assert.deepEqual(ledger().virtio["virtio-rng0"].coalesce, { maxCompletions: 8, maxDelayUs: 500 });
  // Survives the trip a ledger makes to a page (postMessage, JSON).
  assert.deepEqual(JSON.parse(JSON.stringify(ledger())).virtio["virtio-rng0"].coalesce, { maxCompletions: 8, maxDelayUs: 500 });
  transport.setCoalesce({ maxCompletions: 1, maxDelayUs: 0 });
  assert.equal(ledger().virtio["virtio-rng0"].coalesce, null, "{ 1, 0 } is off");
  transport.setCoalesce({ maxCompletions: 4, maxDelayUs: 100 });
  transport.setCoalesce(undefined);
  assert.equal(ledger().virtio["virtio-rng0"].coalesce, null);
});
