import { test } from "node:test";
import assert from "node:assert/strict";
import { VmGenId, VMGENID_SIZE } from "./vmgenid.ts";
import { Plic, MIP_SEIP } from "./plic.ts";
import { SnapshotError } from "../platform/persist.ts";

/** Entropy that counts up: every ID is predictable and different from the last. */
function countingEntropy() {
  let next = 1;
  return (bytes: Uint8Array) => {
    for (let i = 0; i < bytes.length; i++) bytes[i] = (next + i) & 0xff;
    next += 0x11;
  };
}

function setup() {
  const hart = { mip: 0, setPendingInterrupt(mask: number, on: boolean) { hart.mip = on ? hart.mip | mask : hart.mip & ~mask; } };
  const plic = new Plic([hart]);
  const levels: boolean[] = [];
  const device = new VmGenId({
    entropy: countingEntropy(),
    irq: (on) => {
      levels.push(on);
      plic.setLevel(12, on);
    },
  });
  plic.store(4 * 12, 4, 1); // priority
  plic.store(0x2000 + 0x80, 4, 1 << 12); // enabled for hart 0's S-mode context
  return { device, plic, hart, levels };
}

test("the ID reads back little-endian at every naturally aligned width", () => {
  const { device } = setup();
  const id = device.generationId;
  assert.equal(id.length, VMGENID_SIZE);
  assert.deepEqual([...id], Array.from({ length: 16 }, (_, i) => 1 + i));
  assert.equal(device.load(0, 1), 0x01);
  assert.equal(device.load(2, 2), 0x0403);
  assert.equal(device.load(4, 4), 0x08070605);
  assert.equal(device.load(8, 8), 0x100f0e0d0c0b0a09n);
  assert.equal(device.counters.reads, 4);
});

test("misaligned, out-of-range and odd-width loads and every store fault", () => {
  const { device } = setup();
  assert.equal(device.load(1, 2), undefined);
  assert.equal(device.load(12, 8), undefined);
  assert.equal(device.load(16, 1), undefined);
  assert.equal(device.load(0, 3 as never), undefined);
  assert.equal(device.store(), false);
  assert.equal(device.counters.refused, 5);
  assert.equal(device.counters.reads, 0);
});

test("regenerate takes a new ID and pulses the interrupt, which the PLIC latches once", () => {
  const { device, plic, hart, levels } = setup();
  const before = device.generationId;
  device.regenerate();
  assert.notDeepEqual(device.generationId, before);
  assert.deepEqual(levels, [true, false], "the line is raised and dropped again");
  assert.equal(hart.mip & MIP_SEIP, MIP_SEIP, "the pending request outlives the pulse");
  const claim = 0x20_0000 + 0x1000 + 4;
  assert.equal(plic.load(claim, 4), 12);
  plic.store(claim, 4, 12);
  assert.equal(hart.mip & MIP_SEIP, 0, "completed without a second request: the level is low");
  assert.equal(plic.load(claim, 4), 0);
  assert.equal(device.counters.regenerations, 1);
});

test("an entropy source that repeats the ID is refused rather than telling the guest nothing changed", () => {
  const device = new VmGenId({ entropy: (bytes) => bytes.fill(7), irq: () => {} });
  assert.throws(() => device.regenerate(), /same generation ID/);
});

test("save and restore keep the ID until regenerate is called", () => {
  const { device } = setup();
  device.regenerate();
  const saved = JSON.parse(JSON.stringify(device.saveState()));
  const restored = setup().device;
  restored.restoreState(saved);
  assert.deepEqual(restored.generationId, device.generationId);
  assert.deepEqual(restored.saveState(), device.saveState());
  assert.equal(restored.load(0, 8), device.load(0, 8));
  restored.regenerate();
  assert.notDeepEqual(restored.generationId, device.generationId);
});

test("bad states are refused without changing the ID", () => {
  const { device } = setup();
  const before = device.generationId;
  const bad: unknown[] = [
    undefined,
    { version: 2, generationId: "00".repeat(16) },
    { version: 1 },
    { version: 1, generationId: "00".repeat(15) },
    { version: 1, generationId: "zz".repeat(16) },
    { version: 1, generationId: 5 },
  ];
  for (const state of bad) assert.throws(() => device.restoreState(state), SnapshotError);
  assert.throws(() => device.restoreState({ version: 1, generationId: "00" }), /vmgenid\.generationId/);
  assert.deepEqual(device.generationId, before);
});
