import { test } from "node:test";
import assert from "node:assert/strict";
import { call, setup } from "./testing/fake-host.ts";
import { SBI_EXT_IPI, SBI_EXT_IPI_SEND_IPI } from "./ipi.ts";
import { SBI_ERR_INVALID_PARAM, SBI_ERR_NOT_SUPPORTED } from "./types.ts";
import { ULONG_MAX } from "./params.ts";

const sendIpi = (mask: bigint | number, base: bigint | number) => call(SBI_EXT_IPI, SBI_EXT_IPI_SEND_IPI, [mask, base]);

test("send_ipi sets SSIP on the harts of the mask (§7.1)", () => {
  const { host, sbi } = setup(4);
  assert.deepEqual(sbi.handle(sendIpi(0b0110, 0)), { error: 0n, value: 0n });
  assert.deepEqual(host.ipis, [[1, 2]]);
  assert.deepEqual(sbi.handle(sendIpi(0b1, 3)), { error: 0n, value: 0n });
  assert.deepEqual(host.ipis[1], [3]);
});

test("send_ipi with hart_mask_base = -1 targets every hart", () => {
  const { host, sbi } = setup(3);
  assert.equal(sbi.handle(sendIpi(0, -1)).error, 0n);
  assert.deepEqual(host.ipis, [[0, 1, 2]]);
});

test("send_ipi: harts beyond the hart count are SBI_ERR_INVALID_PARAM and nothing is sent", () => {
  const { host, sbi } = setup(4);
  assert.equal(sbi.handle(sendIpi(0b10001, 0)).error, SBI_ERR_INVALID_PARAM);
  assert.equal(sbi.handle(sendIpi(ULONG_MAX, 0)).error, SBI_ERR_INVALID_PARAM);
  assert.equal(sbi.handle(sendIpi(1, 4)).error, SBI_ERR_INVALID_PARAM);
  assert.equal(sbi.handle(sendIpi(0, 1000)).error, SBI_ERR_INVALID_PARAM);
  assert.deepEqual(host.ipis, []);
});

test("send_ipi: hart_mask_base overflow does not wrap to hart 0", () => {
  const { host, sbi } = setup(4);
  assert.equal(sbi.handle(sendIpi(0b100, ULONG_MAX - 1n)).error, SBI_ERR_INVALID_PARAM);
  assert.equal(sbi.handle(sendIpi(ULONG_MAX, ULONG_MAX - 63n)).error, SBI_ERR_INVALID_PARAM);
  assert.deepEqual(host.ipis, []);
});

test("send_ipi with an empty mask succeeds without sending", () => {
  const { host, sbi } = setup(4);
  assert.equal(sbi.handle(sendIpi(0, 0)).error, 0n);
  assert.deepEqual(host.ipis, []);
});

test("unknown IPI function ids are SBI_ERR_NOT_SUPPORTED", () => {
  const { sbi } = setup();
  assert.equal(sbi.handle(call(SBI_EXT_IPI, 1, [1, 0])).error, SBI_ERR_NOT_SUPPORTED);
});
