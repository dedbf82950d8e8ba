import { test } from "node:test";
import assert from "node:assert/strict";
import { call, setup } from "./testing/fake-host.ts";
import { SBI_EXT_TIME, SBI_EXT_TIME_SET_TIMER } from "./time.ts";
import { SBI_ERR_NOT_SUPPORTED } from "./types.ts";
import { ULONG_MAX } from "./params.ts";

test("set_timer programs the calling hart's timer with the absolute value (§6.1)", () => {
  const { host, sbi } = setup();
  assert.deepEqual(sbi.handle(call(SBI_EXT_TIME, SBI_EXT_TIME_SET_TIMER, [123456789n], 2)), { error: 0n, value: 0n });
  assert.deepEqual(host.timers, [{ hartId: 2, value: 123456789n }]);
});

test("set_timer(-1) is passed on as 2^64-1, Linux's 'no timer event'", () => {
  const { host, sbi } = setup();
  assert.equal(sbi.handle(call(SBI_EXT_TIME, SBI_EXT_TIME_SET_TIMER, [-1])).error, 0n);
  assert.equal(host.timers[0].value, ULONG_MAX);
});

test("unknown TIME function ids are SBI_ERR_NOT_SUPPORTED and program nothing", () => {
  const { host, sbi } = setup();
  assert.equal(sbi.handle(call(SBI_EXT_TIME, 1, [5])).error, SBI_ERR_NOT_SUPPORTED);
  assert.equal(host.timers.length, 0);
});
