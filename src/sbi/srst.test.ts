import { test } from "node:test";
import assert from "node:assert/strict";
import { call, setup } from "./testing/fake-host.ts";
import {
  SBI_EXT_SRST,
  SBI_EXT_SRST_RESET,
  SBI_SRST_RESET_REASON_NONE,
  SBI_SRST_RESET_REASON_SYSFAIL,
  SBI_SRST_RESET_TYPE_COLD_REBOOT,
  SBI_SRST_RESET_TYPE_SHUTDOWN,
  SBI_SRST_RESET_TYPE_WARM_REBOOT,
} from "./srst.ts";
import { SBI_ERR_INVALID_PARAM, SBI_ERR_NOT_SUPPORTED } from "./types.ts";

const reset = (type: bigint | number, reason: bigint | number) => call(SBI_EXT_SRST, SBI_EXT_SRST_RESET, [type, reason]);

test("system_reset: shutdown, cold and warm reboot with either reason (§10.1)", () => {
  const { host, sbi } = setup();
  const cases = [
    [SBI_SRST_RESET_TYPE_SHUTDOWN, SBI_SRST_RESET_REASON_NONE],
    [SBI_SRST_RESET_TYPE_COLD_REBOOT, SBI_SRST_RESET_REASON_SYSFAIL],
    [SBI_SRST_RESET_TYPE_WARM_REBOOT, SBI_SRST_RESET_REASON_NONE],
  ];
  for (const [type, reason] of cases) assert.equal(sbi.handle(reset(type, reason)).error, 0n);
  assert.deepEqual(host.resets, cases.map(([type, reason]) => ({ type, reason })));
});

test("system_reset: reserved and vendor types are SBI_ERR_INVALID_PARAM", () => {
  const { host, sbi } = setup();
  for (const type of [3, 0xefff_ffff, 0xf000_0000, 0xffff_ffff]) {
    assert.equal(sbi.handle(reset(type, 0)).error, SBI_ERR_INVALID_PARAM, `type 0x${type.toString(16)}`);
  }
  assert.deepEqual(host.resets, []);
});

test("system_reset: reserved, implementation and vendor reasons are SBI_ERR_INVALID_PARAM", () => {
  const { host, sbi } = setup();
  for (const reason of [2, 0xdfff_ffff, 0xe000_0000, 0xf000_0000, 0xffff_ffff]) {
    assert.equal(sbi.handle(reset(0, reason)).error, SBI_ERR_INVALID_PARAM, `reason 0x${reason.toString(16)}`);
  }
  assert.deepEqual(host.resets, []);
});

test("system_reset: only the low 32 bits of each parameter count (§3)", () => {
  const { host, sbi } = setup();
  assert.equal(sbi.handle(reset(0xffff_ffff_0000_0001n, 0x1_0000_0000n)).error, 0n);
  assert.deepEqual(host.resets, [{ type: 1, reason: 0 }]);
});

test("unknown SRST function ids are SBI_ERR_NOT_SUPPORTED", () => {
  const { host, sbi } = setup();
  assert.equal(sbi.handle(call(SBI_EXT_SRST, 1, [0, 0])).error, SBI_ERR_NOT_SUPPORTED);
  assert.deepEqual(host.resets, []);
});
