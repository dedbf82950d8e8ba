import { test } from "node:test";
import assert from "node:assert/strict";
import { ramGuestMemory, ramOffset, u64FromHalves, toGuestAddress, INVALID_ADDRESS } from "../memory.ts";

const BASE = 0x8000_0000;

test("contains/view/write at the edges of RAM", () => {
  const ram = new Uint8Array(4096);
  const written: [number, number][] = [];
  const m = ramGuestMemory(ram, BASE, (p, n) => written.push([p, n]));
  assert.equal(m.contains(BASE, 4096), true);
  assert.equal(m.contains(BASE, 4097), false);
  assert.equal(m.contains(BASE + 4095, 1), true);
  assert.equal(m.contains(BASE + 4096, 0), true, "an empty range at the end");
  assert.equal(m.contains(BASE + 4096, 1), false);
  assert.equal(m.contains(BASE - 1, 1), false);
  assert.equal(m.view(BASE + 4090, 6)!.length, 6);
  assert.equal(m.view(BASE + 4090, 7), undefined);
  assert.equal(m.write(BASE + 4094, Uint8Array.of(1, 2)), true);
  assert.deepEqual(written, [[BASE + 4094, 2]]);
  assert.equal(m.write(BASE + 4095, Uint8Array.of(1, 2)), false);
  assert.equal(ram[4095], 2, "a refused write changes nothing");
  m.written(BASE - 10, 20); // outside: not reported
  m.written(BASE, 0); // empty: not reported
  assert.equal(written.length, 1);
});

test("hostile numbers are outside RAM: negative, fractional, NaN, Infinity, beyond 2^53, bigints", () => {
  const m = ramGuestMemory(new Uint8Array(4096), BASE, () => {});
  for (const [p, n] of [
    [-1, 1],
    [BASE, -1],
    [BASE + 0.5, 1],
    [BASE, 1.5],
    [NaN, 1],
    [BASE, NaN],
    [Infinity, 1],
    [BASE, Infinity],
    [2 ** 53, 1],
    [2 ** 64, 1],
    [BASE, 2 ** 53],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ]) {
    assert.equal(m.contains(p, n), false, `${p}+${n}`);
    assert.equal(m.view(p, n), undefined);
  }
  // Bigints at run time (guest values are 64-bit).
  const any = m as unknown as { contains(p: bigint, n: bigint): boolean };
  assert.equal(any.contains(BigInt(BASE), 16n), true);
  assert.equal(any.contains(0xffff_ffff_ffff_ffffn, 16n), false);
  assert.equal(any.contains(BigInt(BASE), 0x1_0000_0000n), false);
  assert.equal(ramOffset(BASE, 4096, BASE + 4096 - 1, 1), 4095);
});

test("64-bit guest values from two halves", () => {
  assert.equal(u64FromHalves(0x1234, 0), 0x1234);
  assert.equal(u64FromHalves(0xffff_ffff, 0x1f_ffff), Number.MAX_SAFE_INTEGER);
  assert.equal(u64FromHalves(0, 0x20_0000), INVALID_ADDRESS);
  assert.equal(u64FromHalves(-1, -1), INVALID_ADDRESS);
  assert.equal(toGuestAddress(2n ** 60n), INVALID_ADDRESS);
  assert.equal(toGuestAddress(-5), INVALID_ADDRESS);
});
