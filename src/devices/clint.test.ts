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
