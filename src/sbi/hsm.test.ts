import { test } from "node:test";
import assert from "node:assert/strict";
import { call, RAM_BASE, RAM_SIZE, setup } from "./testing/fake-host.ts";
import {
  HSM_TRANSITIONS,
  hsmTransition,
  SBI_EXT_HSM,
  SBI_EXT_HSM_HART_GET_STATUS,
  SBI_EXT_HSM_HART_START,
  SBI_EXT_HSM_HART_STOP,
  SBI_EXT_HSM_HART_SUSPEND,
  SBI_HSM_SUSPEND_NON_RET_DEFAULT,
  SBI_HSM_SUSPEND_RET_DEFAULT,
  type HsmEvent,
} from "./hsm.ts";
import {
  SBI_ERR_ALREADY_AVAILABLE,
  SBI_ERR_FAILED,
  SBI_ERR_INVALID_ADDRESS,
  SBI_ERR_INVALID_PARAM,
  SBI_ERR_NOT_SUPPORTED,
  SBI_HSM_STATE_RESUME_PENDING,
  SBI_HSM_STATE_STARTED,
  SBI_HSM_STATE_START_PENDING,
  SBI_HSM_STATE_STOPPED,
  SBI_HSM_STATE_STOP_PENDING,
  SBI_HSM_STATE_SUSPENDED,
  SBI_HSM_STATE_SUSPEND_PENDING,
  type HsmState,
} from "./types.ts";
import { ULONG_MAX } from "./params.ts";

const ENTRY = RAM_BASE + 0x200n;
const start = (hart: bigint | number, addr: bigint = ENTRY, opaque: bigint = 0xabcn) =>
  call(SBI_EXT_HSM, SBI_EXT_HSM_HART_START, [hart, addr, opaque]);
const status = (hart: bigint | number) => call(SBI_EXT_HSM, SBI_EXT_HSM_HART_GET_STATUS, [hart]);
const suspend = (type: bigint | number, addr: bigint = ENTRY, hartId = 0) =>
  call(SBI_EXT_HSM, SBI_EXT_HSM_HART_SUSPEND, [type, addr, 0x55n], hartId);

test("the transition table is exactly the state machine of §9", () => {
  const edges: [HsmState, HsmEvent, HsmState][] = [
    [SBI_HSM_STATE_STOPPED, "start", SBI_HSM_STATE_START_PENDING],
    [SBI_HSM_STATE_START_PENDING, "start-done", SBI_HSM_STATE_STARTED],
    [SBI_HSM_STATE_STARTED, "stop", SBI_HSM_STATE_STOP_PENDING],
    [SBI_HSM_STATE_STOP_PENDING, "stop-done", SBI_HSM_STATE_STOPPED],
    [SBI_HSM_STATE_STARTED, "suspend", SBI_HSM_STATE_SUSPEND_PENDING],
    [SBI_HSM_STATE_SUSPEND_PENDING, "suspend-done", SBI_HSM_STATE_SUSPENDED],
    [SBI_HSM_STATE_SUSPENDED, "wake", SBI_HSM_STATE_RESUME_PENDING],
    [SBI_HSM_STATE_RESUME_PENDING, "resume-done", SBI_HSM_STATE_STARTED],
  ];
  const events: HsmEvent[] = ["start", "start-done", "stop", "stop-done", "suspend", "suspend-done", "wake", "resume-done"];
  for (let state = 0; state <= 6; state++) {
    for (const event of events) {
      const edge = edges.find(([from, e]) => from === state && e === event);
      assert.equal(hsmTransition(state as HsmState, event), edge?.[2], `state ${state} event ${event}`);
    }
  }
  assert.equal(Object.keys(HSM_TRANSITIONS).length, 7);
});

test("hart_start starts a stopped hart (§9.1)", () => {
  const { host, sbi } = setup(4);
  assert.deepEqual(sbi.handle(start(1)), { error: 0n, value: 0n });
  assert.deepEqual(host.starts, [{ hartId: 1, startAddr: ENTRY, opaque: 0xabcn }]);
  assert.equal(host.states[1], SBI_HSM_STATE_START_PENDING);
  assert.deepEqual(sbi.handle(status(1)), { error: 0n, value: BigInt(SBI_HSM_STATE_START_PENDING) });
  host.apply(1, "start-done");
  assert.deepEqual(sbi.handle(status(1)), { error: 0n, value: BigInt(SBI_HSM_STATE_STARTED) });
});

test("hart_start on a hart that is not stopped", () => {
  const { host, sbi } = setup(4);
  assert.equal(sbi.handle(start(0)).error, SBI_ERR_ALREADY_AVAILABLE); // the caller itself
  sbi.handle(start(1));
  assert.equal(sbi.handle(start(1)).error, SBI_ERR_ALREADY_AVAILABLE); // START_PENDING
  for (const s of [SBI_HSM_STATE_SUSPENDED, SBI_HSM_STATE_SUSPEND_PENDING, SBI_HSM_STATE_RESUME_PENDING] as const) {
    host.states[2] = s;
    assert.equal(sbi.handle(start(2)).error, SBI_ERR_ALREADY_AVAILABLE);
  }
  host.states[3] = SBI_HSM_STATE_STOP_PENDING;
  assert.equal(sbi.handle(start(3)).error, SBI_ERR_FAILED);
  assert.equal(host.starts.length, 1);
});

test("hart_start: invalid hartid is SBI_ERR_INVALID_PARAM", () => {
  const { host, sbi } = setup(4);
  for (const hart of [4n, 1000n, ULONG_MAX, 1n << 63n]) assert.equal(sbi.handle(start(hart)).error, SBI_ERR_INVALID_PARAM);
  for (const hart of [4n, ULONG_MAX]) assert.equal(sbi.handle(status(hart)).error, SBI_ERR_INVALID_PARAM);
  assert.equal(host.starts.length, 0);
});

test("hart_start: a start address outside RAM or odd is SBI_ERR_INVALID_ADDRESS", () => {
  const { host, sbi } = setup(4);
  for (const addr of [0n, RAM_BASE - 2n, RAM_BASE + BigInt(RAM_SIZE), RAM_BASE + BigInt(RAM_SIZE) - 1n, RAM_BASE + 1n, ULONG_MAX, 0x1000_0000n]) {
    assert.equal(sbi.handle(start(1, addr)).error, SBI_ERR_INVALID_ADDRESS, `0x${addr.toString(16)}`);
  }
  assert.equal(host.states[1], SBI_HSM_STATE_STOPPED);
  assert.equal(sbi.handle(start(1, RAM_BASE + BigInt(RAM_SIZE) - 2n)).error, 0n); // last halfword is fine
});

test("a host failure is passed on", () => {
  const { host, sbi } = setup(4);
  host.nextHsmError = SBI_ERR_FAILED;
  assert.equal(sbi.handle(start(1)).error, SBI_ERR_FAILED);
  assert.equal(sbi.handle(call(SBI_EXT_HSM, SBI_EXT_HSM_HART_STOP, [])).error, SBI_ERR_FAILED);
});

test("hart_stop stops the calling hart (§9.2); from a non-started state it fails", () => {
  const { host, sbi } = setup(4);
  host.states[1] = SBI_HSM_STATE_STARTED;
  assert.equal(sbi.handle(call(SBI_EXT_HSM, SBI_EXT_HSM_HART_STOP, [], 1)).error, 0n);
  assert.deepEqual(host.stops, [1]);
  assert.equal(host.states[1], SBI_HSM_STATE_STOP_PENDING);
  assert.equal(sbi.handle(call(SBI_EXT_HSM, SBI_EXT_HSM_HART_STOP, [], 1)).error, SBI_ERR_FAILED);
  host.apply(1, "stop-done");
  assert.equal(sbi.handle(status(1)).value, BigInt(SBI_HSM_STATE_STOPPED));
  assert.equal(sbi.handle(start(1)).error, 0n); // and it can be started again
});

test("hart_suspend: default retentive and non-retentive (§9.4)", () => {
  const { host, sbi } = setup(2);
  assert.equal(sbi.handle(suspend(SBI_HSM_SUSPEND_RET_DEFAULT, 0n)).error, 0n); // resume_addr unused
  assert.equal(host.states[0], SBI_HSM_STATE_SUSPEND_PENDING);
  host.apply(0, "suspend-done");
  host.apply(0, "wake");
  host.apply(0, "resume-done");
  assert.equal(sbi.handle(suspend(SBI_HSM_SUSPEND_NON_RET_DEFAULT)).error, 0n);
  assert.deepEqual(host.suspends, [
    { hartId: 0, type: 0, resumeAddr: 0n, opaque: 0x55n },
    { hartId: 0, type: 0x8000_0000, resumeAddr: ENTRY, opaque: 0x55n },
  ]);
});

test("hart_suspend: a 32-bit suspend_type may arrive sign-extended", () => {
  const { host, sbi } = setup(2);
  assert.equal(sbi.handle(suspend(0xffff_ffff_8000_0000n)).error, 0n);
  assert.equal(host.suspends[0].type, SBI_HSM_SUSPEND_NON_RET_DEFAULT);
});

test("hart_suspend: reserved and platform-specific types are SBI_ERR_INVALID_PARAM", () => {
  const { host, sbi } = setup(2);
  for (const type of [1, 0x0fff_ffff, 0x1000_0000, 0x7fff_ffff, 0x8000_0001, 0x8fff_ffff, 0x9000_0000, 0xffff_ffff]) {
    assert.equal(sbi.handle(suspend(type)).error, SBI_ERR_INVALID_PARAM, `type 0x${type.toString(16)}`);
  }
  assert.equal(host.suspends.length, 0);
  assert.equal(host.states[0], SBI_HSM_STATE_STARTED);
});

test("hart_suspend: non-retentive with a bad resume address is SBI_ERR_INVALID_ADDRESS", () => {
  const { host, sbi } = setup(2);
  for (const addr of [0n, RAM_BASE + 3n, ULONG_MAX]) {
    assert.equal(sbi.handle(suspend(SBI_HSM_SUSPEND_NON_RET_DEFAULT, addr)).error, SBI_ERR_INVALID_ADDRESS);
  }
  assert.equal(host.suspends.length, 0);
});

test("hart_suspend from a state other than STARTED fails", () => {
  const { host, sbi } = setup(2);
  host.states[0] = SBI_HSM_STATE_SUSPEND_PENDING;
  assert.equal(sbi.handle(suspend(SBI_HSM_SUSPEND_RET_DEFAULT)).error, SBI_ERR_FAILED);
});

test("unknown HSM function ids are SBI_ERR_NOT_SUPPORTED", () => {
  const { sbi } = setup();
  assert.equal(sbi.handle(call(SBI_EXT_HSM, 4, [1, ENTRY, 0])).error, SBI_ERR_NOT_SUPPORTED);
});
