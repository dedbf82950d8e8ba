import { test } from "node:test";
import assert from "node:assert/strict";
import { call, setup } from "./testing/fake-host.ts";
import {
  decodeFenceRange,
  SBI_EXT_RFENCE,
  SBI_EXT_RFENCE_REMOTE_FENCE_I,
  SBI_EXT_RFENCE_REMOTE_HFENCE_GVMA,
  SBI_EXT_RFENCE_REMOTE_HFENCE_GVMA_VMID,
  SBI_EXT_RFENCE_REMOTE_HFENCE_VVMA,
  SBI_EXT_RFENCE_REMOTE_HFENCE_VVMA_ASID,
  SBI_EXT_RFENCE_REMOTE_SFENCE_VMA,
  SBI_EXT_RFENCE_REMOTE_SFENCE_VMA_ASID,
} from "./rfence.ts";
import { SBI_ERR_INVALID_ADDRESS, SBI_ERR_INVALID_PARAM, SBI_ERR_NOT_SUPPORTED } from "./types.ts";
import { ULONG_MAX } from "./params.ts";

test("whole-address-space rule of chapter 8", () => {
  assert.equal(decodeFenceRange(0n, 0n), "all");
  assert.equal(decodeFenceRange(0n, ULONG_MAX), "all");
  assert.equal(decodeFenceRange(0x1000n, ULONG_MAX), "all");
  assert.deepEqual(decodeFenceRange(0x1000n, 0x2000n), { start: 0x1000n, size: 0x2000n });
  assert.deepEqual(decodeFenceRange(ULONG_MAX - 0xfffn, 0x1000n), { start: ULONG_MAX - 0xfffn, size: 0x1000n });
  assert.equal(decodeFenceRange(ULONG_MAX - 0xfffn, 0x1001n), undefined);
});

test("remote_fence_i fences the harts of the mask", () => {
  const { host, sbi } = setup(4);
  assert.deepEqual(sbi.handle(call(SBI_EXT_RFENCE, SBI_EXT_RFENCE_REMOTE_FENCE_I, [0b1010, 0])), { error: 0n, value: 0n });
  assert.deepEqual(host.fences, [{ targets: [1, 3], fence: { kind: "fence.i" } }]);
});

test("remote_sfence_vma passes the range, or 'all'", () => {
  const { host, sbi } = setup(4);
  sbi.handle(call(SBI_EXT_RFENCE, SBI_EXT_RFENCE_REMOTE_SFENCE_VMA, [1, 0, 0xffff_ffc0_0000_0000n, 0x2000]));
  sbi.handle(call(SBI_EXT_RFENCE, SBI_EXT_RFENCE_REMOTE_SFENCE_VMA, [0, -1, 0, -1]));
  assert.deepEqual(host.fences, [
    { targets: [0], fence: { kind: "sfence.vma", range: { start: 0xffff_ffc0_0000_0000n, size: 0x2000n } } },
    { targets: [0, 1, 2, 3], fence: { kind: "sfence.vma", range: "all" } },
  ]);
});

test("remote_sfence_vma_asid passes the ASID", () => {
  const { host, sbi } = setup(2);
  assert.equal(sbi.handle(call(SBI_EXT_RFENCE, SBI_EXT_RFENCE_REMOTE_SFENCE_VMA_ASID, [0b10, 0, 0, 0, 42])).error, 0n);
  assert.deepEqual(host.fences, [{ targets: [1], fence: { kind: "sfence.vma.asid", range: "all", asid: 42n } }]);
});

test("a range wrapping past 2^64 is SBI_ERR_INVALID_ADDRESS", () => {
  const { host, sbi } = setup(2);
  for (const fid of [SBI_EXT_RFENCE_REMOTE_SFENCE_VMA, SBI_EXT_RFENCE_REMOTE_SFENCE_VMA_ASID]) {
    assert.equal(sbi.handle(call(SBI_EXT_RFENCE, fid, [1, 0, ULONG_MAX - 10n, 0x1000, 1])).error, SBI_ERR_INVALID_ADDRESS);
  }
  assert.deepEqual(host.fences, []);
});

test("bad hart masks are SBI_ERR_INVALID_PARAM for every fence", () => {
  const { host, sbi } = setup(2);
  for (const fid of [SBI_EXT_RFENCE_REMOTE_FENCE_I, SBI_EXT_RFENCE_REMOTE_SFENCE_VMA, SBI_EXT_RFENCE_REMOTE_SFENCE_VMA_ASID]) {
    assert.equal(sbi.handle(call(SBI_EXT_RFENCE, fid, [0b100, 0, 0, 0])).error, SBI_ERR_INVALID_PARAM);
    assert.equal(sbi.handle(call(SBI_EXT_RFENCE, fid, [0b1, ULONG_MAX - 1n, 0, 0])).error, SBI_ERR_INVALID_PARAM);
  }
  assert.deepEqual(host.fences, []);
});

test("HFENCE functions are SBI_ERR_NOT_SUPPORTED (no H extension); unknown FIDs too", () => {
  const { host, sbi } = setup(2);
  for (const fid of [
    SBI_EXT_RFENCE_REMOTE_HFENCE_GVMA_VMID,
    SBI_EXT_RFENCE_REMOTE_HFENCE_GVMA,
    SBI_EXT_RFENCE_REMOTE_HFENCE_VVMA_ASID,
    SBI_EXT_RFENCE_REMOTE_HFENCE_VVMA,
    7,
  ]) {
    assert.equal(sbi.handle(call(SBI_EXT_RFENCE, fid, [1, 0, 0, 0])).error, SBI_ERR_NOT_SUPPORTED);
  }
  assert.deepEqual(host.fences, []);
  assert.equal(sbi.counters.byFunction.get("RFENCE.remote_hfence_gvma"), 1);
});
