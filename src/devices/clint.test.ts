import { test } from "node:test";
import assert from "node:assert/strict";
import { Clint } from "./clint.ts";

function makeHart() {
  const hart = { mip: 0, setPendingInterrupt(mask: number, on: boolean) { hart.mip = on ? hart.mip | mask : hart.mip & ~mask; } };
  return hart;
}

test("mtime reads the clock; mtimecmp drives MTIP", () => {
  let now = 1000;
  const hart = makeHart();
  const clint = new Clint([hart], () => now);
  assert.equal(clint.load(0xbff8, 8), 1000n);
  assert.equal(clint.load(0xbff8, 4), 1000);
  clint.store(0x4000, 8, 1500n);
  assert.equal(hart.mip & 0x80, 0);
  assert.equal(clint.nextDeadline(), 1500);
  now = 1500;
  clint.update();
  assert.equal(hart.mip & 0x80, 0x80);
  clint.store(0x4004, 4, 1); // high half: deadline far in the future
  assert.equal(hart.mip & 0x80, 0);
  assert.equal(clint.load(0x4000, 8), (1n << 32n) | 1500n);
});

test("msip sets and clears MSIP; bad widths fault", () => {
  const hart = makeHart();
  const clint = new Clint([hart], () => 0);
  assert.equal(clint.store(0, 4, 1), true);
  assert.equal(hart.mip & 8, 8);
  assert.equal(clint.load(0, 4), 1);
  clint.store(0, 4, 0xfffffffe); // only bit 0 is writable
  assert.equal(hart.mip & 8, 0);
  assert.equal(clint.store(0, 8, 1n), false);
  assert.equal(clint.load(2, 4), undefined);
});

test("snapshot: msip and mtimecmp survive, and the timer fires at the same guest time", () => {
  let now = 1000;
  const harts = [makeHart(), makeHart()];
  const clint = new Clint(harts, () => now);
  clint.store(0x4008, 8, 5000n); // hart 1's timer
  clint.store(0x0000, 4, 1); // hart 0's software interrupt
  const saved = JSON.parse(JSON.stringify(clint.saveState()));
  assert.deepEqual(saved, { version: 1, msip: [1, 0], mtimecmp: ["0xffffffffffffffff", "0x1388"] });

  const fresh = [makeHart(), makeHart()];
  const restored = new Clint(fresh, () => now);
  restored.restoreState(saved);
  assert.deepEqual(restored.saveState(), clint.saveState());
  assert.equal(fresh[0].mip, 0x08, "MSIP driven at restore");
  assert.equal(fresh[1].mip, 0, "the timer has not fired yet");
  assert.equal(restored.nextDeadline(), 5000);
  now = 4999;
  restored.update();
  assert.equal(fresh[1].mip & 0x80, 0);
  now = 5000;
  restored.update();
  assert.equal(fresh[1].mip & 0x80, 0x80, "fires at guest time 5000");
});

test("snapshot: bad states are refused and change nothing", () => {
  const hart = makeHart();
  const clint = new Clint([hart], () => 0);
  clint.store(0x4000, 8, 77n);
  const before = clint.saveState();
  const bad: [unknown, RegExp][] = [
    [null, /clint: expected an object/],
    [{ version: 9, msip: [0], mtimecmp: ["0x0"] }, /clint\.version/],
    [{ version: 1, msip: [0, 0], mtimecmp: ["0x0"] }, /clint\.msip: expected an array of 1/],
    [{ version: 1, msip: [2], mtimecmp: ["0x0"] }, /clint\.msip\[0\]/],
    [{ version: 1, msip: [1], mtimecmp: [5] }, /clint\.mtimecmp\[0\]/],
    [{ version: 1, msip: [1], mtimecmp: ["0x10000000000000000"] }, /clint\.mtimecmp\[0\]/],
    [{ version: 1, msip: [1] }, /clint\.mtimecmp/],
  ];
  for (const [state, message] of bad) assert.throws(() => clint.restoreState(state), message);
  assert.deepEqual(clint.saveState(), before);
  assert.equal(hart.mip, 0);
});
