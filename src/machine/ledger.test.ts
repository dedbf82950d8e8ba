// collectLedger on hand-made parts: naming of exits, merging, interrupt sources, SBI order,
// wall time, and which counters of each device model count as bytes moved.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Bus, type MmioDevice } from "./bus.ts";
import { collectLedger, deviceBytes, type LedgerMachine } from "./ledger.ts";
import { SbiCounters } from "../sbi/dispatcher.ts";
import { Uart16550 } from "../devices/uart16550.ts";
import { Plic } from "../devices/plic.ts";
import { Clint } from "../devices/clint.ts";
import { GoldfishRtc } from "../devices/goldfish-rtc.ts";
import { SysconTest } from "../devices/syscon-test.ts";
import { virtioMmioRegisterName } from "../virtio/transport/mmio-registers.ts";
import { VirtioBlk } from "../virtio/blk/device.ts";
import { VirtioNet } from "../virtio/net/device.ts";
import { VirtioVsock } from "../virtio/vsock/device.ts";
import { VirtioConsoleDevice } from "../virtio/console/device.ts";
import { VirtioRngDevice } from "../virtio/rng/device.ts";
import { VirtioBalloon } from "../virtio/balloon/index.ts";

/** A device with two named registers, one of them 8 bytes wide (two offsets, one name). */
const fakeDevice: MmioDevice = {
  name: "fake0",
  load: () => 0,
  store: () => true,
  registerName: (offset, access) => (offset < 8 ? (access === "store" ? "CMD" : "STATUS") : offset < 16 ? "WIDE" : undefined),
};

function machine(parts: Partial<LedgerMachine> = {}): LedgerMachine {
  const bus = new Bus();
  return { cpu: { instret: 1234n, trapCounts: () => new Array<bigint>(64).fill(0n) }, bus, startedAt: 1000, ...parts };
}

test("exits are counted by number and named at collection, in register-map order", () => {
  const bus = new Bus();
  bus.map(0x1000, 0x100, fakeDevice);
  bus.map(0x2000, 0x100, { name: "quiet", load: () => 0, store: () => true });
  bus.store(0x1000 + 12, 4, 0);
  bus.store(0x1000 + 8, 4, 0);
  bus.store(0x1000, 4, 1);
  bus.load(0x1000, 4);
  bus.load(0x1000, 4);
  bus.load(0x1000 + 0x40, 4); // reserved: no name
  bus.store(0x2000 + 0x10, 1, 0); // a device without names
  bus.load(0x9000, 4); // nobody there
  const ledger = collectLedger(machine({ bus }));
  assert.deepEqual(ledger.exits, {
    total: 8,
    unmapped: 1,
    byDevice: {
      fake0: { loads: 3, stores: 3, byRegister: { STATUS: 2, CMD: 1, WIDE: 2, "+0x40": 1 } },
      quiet: { loads: 0, stores: 1, byRegister: { "+0x10": 1 } },
    },
  });
  assert.deepEqual(Object.keys(ledger.exits.byDevice.fake0.byRegister), ["STATUS", "CMD", "WIDE", "+0x40"]);
});

test("a register namer given at map time wins over the device's; watched RAM counts as a device", () => {
  const bus = new Bus();
  bus.map(0x1000, 0x100, fakeDevice, { registerName: () => "X" });
  let watched = 0;
  bus.watch(0x8000_0000, 0x8000_0008, () => (watched++, true), { name: "htif", registerName: () => "tohost" });
  bus.load(0x1000, 4);
  bus.store(0x8000_0000, 8, 1n);
  bus.store(0x8000_0004, 4, 1);
  assert.equal(watched, 2);
  const { byDevice } = collectLedger(machine({ bus })).exits;
  assert.deepEqual(byDevice.fake0.byRegister, { X: 1 });
  assert.deepEqual(byDevice.htif, { loads: 0, stores: 2, byRegister: { tohost: 2 } });
});

test("two devices of one name cannot be mapped (their exits would merge)", () => {
  const bus = new Bus();
  bus.map(0x1000, 0x100, fakeDevice);
  assert.throws(() => bus.map(0x2000, 0x100, fakeDevice), /already mapped/);
});

test("traps, interrupt sources, SBI calls and wall time", () => {
  const traps = new Array<bigint>(64).fill(0n);
  traps[32 + 5] = 7n;
  traps[32 + 9] = 3n;
  traps[2] = 1n;
  traps[13] = 4n;
  const sbi = new SbiCounters();
  sbi.record("TIME", "TIME.set_timer", 0n);
  sbi.record("TIME", "TIME.set_timer", 0n);
  sbi.record("BASE", "BASE.probe_extension", 0n);
  sbi.record("unknown", "unknown", -2n);
  const raised = new Array<number>(96).fill(0);
  raised[10] = 2;
  raised[7] = 1; // wired to nothing the machine named
  const ledger = collectLedger(
    machine({
      cpu: { instret: 99n, trapCounts: () => traps },
      sbi: { counters: sbi },
      plic: { counters: { raised } },
      interruptSources: new Map([
        [10, "uart0"],
        [1, "virtio-blk0"],
      ]),
      startedAt: 1000,
      stoppedAt: 3500,
    }),
    99_999,
  );
  assert.equal(ledger.instructions, 99);
  assert.equal(ledger.wallSeconds, 2.5); // stoppedAt, not now
  assert.deepEqual(ledger.interrupts, {
    total: 10,
    byCause: { "supervisor timer": 7, "supervisor external": 3 },
    bySource: { "virtio-blk0": 0, uart0: 2, "source 7": 1 },
  });
  assert.deepEqual(ledger.exceptions, { total: 5, byCause: { "illegal instruction": 1, "load page fault": 4 } });
  assert.deepEqual(ledger.sbi, {
    total: 4,
    byExtension: { TIME: 2, BASE: 1, unknown: 1 },
    byFunction: { "TIME.set_timer": 2, "BASE.probe_extension": 1, unknown: 1 },
    errors: { SBI_ERR_NOT_SUPPORTED: 1 },
  });
  assert.deepEqual(Object.keys(ledger.sbi.byFunction), ["TIME.set_timer", "BASE.probe_extension", "unknown"]);
  // While running, wall time runs to `now`.
  assert.equal(collectLedger(machine({ startedAt: 1000 }), 1250).wallSeconds, 0.25);
});

test("register names of the platform devices", () => {
  const uart = new Uart16550({ output: () => {}, irq: () => {} });
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7].map((o) => uart.registerName(o, "load")),
    ["RBR", "IER", "IIR", "LCR", "MCR", "LSR", "MSR", "SCR"],
  );
  assert.deepEqual([0, 2].map((o) => uart.registerName(o, "store")), ["THR", "FCR"]);
  // Names do not follow DLAB: the ledger counts by offset.
  uart.store(3, 1, 0x80);
  assert.equal(uart.registerName(0, "store"), "THR");
  assert.equal(uart.registerName(8, "load"), undefined);

  const plic = new Plic([{ setPendingInterrupt: () => {} }]);
  assert.equal(plic.registerName(0x28, "store"), "priority");
  assert.equal(plic.registerName(0x1000, "load"), "pending");
  assert.equal(plic.registerName(0x2080, "store"), "enable[hart0.S]");
  assert.equal(plic.registerName(0x20_1000, "store"), "threshold[hart0.S]");
  assert.equal(plic.registerName(0x20_0004, "load"), "claim[hart0.M]");
  assert.equal(plic.registerName(0x20_1004, "load"), "claim[hart0.S]");
  assert.equal(plic.registerName(0x20_1004, "store"), "complete[hart0.S]");
  assert.equal(plic.registerName(0x20_2004, "load"), undefined); // no such context

  const clint = new Clint([{ setPendingInterrupt: () => {} }], () => 0);
  assert.deepEqual([0, 0x4000, 0x4004, 0xbff8, 0xbffc, 0x100].map((o) => clint.registerName(o)), ["msip[0]", "mtimecmp[0]", "mtimecmp[0]", "mtime", "mtime", undefined]);

  const rtc = new GoldfishRtc({ now: () => 0n, irq: () => {} });
  assert.deepEqual([0, 4, 0x1c, 0x20].map((o) => rtc.registerName(o)), ["TIME_LOW", "TIME_HIGH", "CLEAR_INTERRUPT", undefined]);
  assert.equal(new SysconTest(() => {}).registerName(0), "FINISHER");

  assert.deepEqual(
    [0x000, 0x050, 0x060, 0x064, 0x070, 0x0fc, 0x100, 0x108, 0x0c8].map(virtioMmioRegisterName),
    ["MagicValue", "QueueNotify", "InterruptStatus", "InterruptACK", "Status", "ConfigGeneration", "config+0x0", "config+0x8", undefined],
  );
});

test("bytes moved: each device model's counters, into the guest as `in`", () => {
  const blk = new VirtioBlk({
    backend: {
      size: 4096,
      readOnly: false,
      id: "t",
      read: async () => {},
      write: async () => {},
      flush: async () => {},
      discard: async () => {},
      writeZeroes: async () => {},
      close: async () => {},
    },
  });
  blk.counters.bytesRead = 10;
  blk.counters.bytesWritten = 20;
  assert.deepEqual(deviceBytes(blk.counters), { in: 10, out: 20 });

  const net = new VirtioNet({ backend: { description: "test", send: () => {}, onReceive: () => {}, close: async () => {} }, mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56) });
  net.counters.rxBytes = 3;
  net.counters.txBytes = 4;
  assert.deepEqual(deviceBytes(net.counters), { in: 3, out: 4 });

  const vsock = new VirtioVsock({ guestCid: 3, backend: { attach: () => {}, connect: () => {} } });
  vsock.counters.bytesToGuest = 5;
  vsock.counters.bytesFromGuest = 6;
  assert.deepEqual(deviceBytes(vsock.counters), { in: 5, out: 6 });

  const hvc = new VirtioConsoleDevice({ output: () => {} });
  hvc.counters.bytesIn = 7;
  hvc.counters.bytesOut = 8;
  assert.deepEqual(deviceBytes(hvc.counters), { in: 7, out: 8 });

  const rng = new VirtioRngDevice();
  rng.counters.bytes = 9;
  assert.deepEqual(deviceBytes(rng.counters), { in: 9, out: 0 });

  const uart = new Uart16550({ output: () => {}, irq: () => {} });
  assert.deepEqual(deviceBytes(uart.counters), { in: 0, out: 0 });

  // The balloon moves pages, not bytes.
  assert.equal(deviceBytes(new VirtioBalloon({ release: () => {} }).counters), undefined);
  assert.equal(deviceBytes(undefined), undefined);
});
