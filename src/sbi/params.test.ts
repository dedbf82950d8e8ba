import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeHartMask, decodeSbiId, rangeInRam, SBI_HART_MASK_BASE_ALL, SBI_ID_INVALID, sharedMemoryInRam, u32Param, ULONG_MAX } from "./params.ts";
import { SBI_ERR_INVALID_PARAM } from "./types.ts";

test("EIDs/FIDs are sign-extended signed 32-bit values (§3)", () => {
  assert.equal(decodeSbiId(0x54494d45n), 0x54494d45);
  assert.equal(decodeSbiId(0n), 0);
  assert.equal(decodeSbiId(ULONG_MAX), -1); // -1 sign-extended
  assert.equal(decodeSbiId(0xffff_ffff_8000_0000n), -0x8000_0000);
  // Not a sign extension: no id at all.
  assert.equal(decodeSbiId(0x1_5449_4d45n), SBI_ID_INVALID);
  assert.equal(decodeSbiId(0x8000_0000n), SBI_ID_INVALID);
});

test("32-bit parameters use only the low 32 bits (§3)", () => {
  assert.equal(u32Param(0x8000_0000n), 0x8000_0000);
  assert.equal(u32Param(0xffff_ffff_8000_0000n), 0x8000_0000);
  assert.equal(u32Param(0x1234_0000_0000_0002n), 2);
});

test("hart mask: bits are offsets from hart_mask_base (§3.1)", () => {
  assert.deepEqual(decodeHartMask(0b1011n, 0n, 4), { harts: [0, 1, 3] });
  assert.deepEqual(decodeHartMask(0b1n, 3n, 4), { harts: [3] });
  assert.deepEqual(decodeHartMask(0b110n, 1n, 4), { harts: [2, 3] });
  assert.deepEqual(decodeHartMask(0n, 2n, 4), { harts: [] });
});

test("hart mask: base -1 means every hart, the mask is ignored (§3.1)", () => {
  assert.deepEqual(decodeHartMask(0n, SBI_HART_MASK_BASE_ALL, 3), { harts: [0, 1, 2] });
  assert.deepEqual(decodeHartMask(ULONG_MAX, SBI_HART_MASK_BASE_ALL, 2), { harts: [0, 1] });
});

test("hart mask: ids beyond the hart count are SBI_ERR_INVALID_PARAM", () => {
  const invalid = { error: SBI_ERR_INVALID_PARAM };
  assert.deepEqual(decodeHartMask(0b10000n, 0n, 4), invalid);
  assert.deepEqual(decodeHartMask(ULONG_MAX, 0n, 4), invalid);
  assert.deepEqual(decodeHartMask(1n << 63n, 0n, 64), { harts: [63] });
  assert.deepEqual(decodeHartMask(0b10n, 3n, 4), invalid);
  // An invalid base is invalid even with an empty mask.
  assert.deepEqual(decodeHartMask(0n, 4n, 4), invalid);
});

test("hart mask: base + bit never wraps around 2^64 onto small hart ids", () => {
  const invalid = { error: SBI_ERR_INVALID_PARAM };
  // base = 2^64 - 2: bits 2 and 3 would wrap to harts 0 and 1 in 64-bit arithmetic.
  assert.deepEqual(decodeHartMask(0b1100n, ULONG_MAX - 1n, 4), invalid);
  assert.deepEqual(decodeHartMask(1n, ULONG_MAX - 1n, 4), invalid);
  assert.deepEqual(decodeHartMask(ULONG_MAX, 1n << 63n, 4), invalid);
});

test("rangeInRam is exact at the edges and never overflows", () => {
  const ram = [{ base: 0x8000_0000n, size: 0x1000n }];
  assert.equal(rangeInRam(ram, 0x8000_0000n, 0x1000n), true);
  assert.equal(rangeInRam(ram, 0x8000_0000n, 0x1001n), false);
  assert.equal(rangeInRam(ram, 0x7fff_ffffn, 1n), false);
  assert.equal(rangeInRam(ram, 0x8000_0fffn, 1n), true);
  assert.equal(rangeInRam(ram, 0x8000_1000n, 0n), false);
  assert.equal(rangeInRam(ram, 0x8000_0800n, 0n), true);
  assert.equal(rangeInRam(ram, 0x8000_0000n, ULONG_MAX), false);
  assert.equal(rangeInRam(ram, ULONG_MAX, 2n), false);
  // A region ending exactly at 2^64 is usable up to its end and no further.
  const top = [{ base: ULONG_MAX - 0xfffn, size: 0x1000n }];
  assert.equal(rangeInRam(top, ULONG_MAX - 0xfffn, 0x1000n), true);
  assert.equal(rangeInRam(top, ULONG_MAX, 2n), false);
  assert.equal(rangeInRam([], 0n, 0n), false);
});

test("shared memory: base_addr_hi must be zero on RV64 (§3.2)", () => {
  const ram = [{ base: 0x8000_0000n, size: 0x1000n }];
  assert.equal(sharedMemoryInRam(ram, 16n, 0x8000_0000n, 0n), true);
  assert.equal(sharedMemoryInRam(ram, 16n, 0x8000_0000n, 1n), false);
});
