import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeRegisters, RAM_BASE, setup } from "./testing/fake-host.ts";
import {
  SBI_EXT_0_1_CLEAR_IPI,
  SBI_EXT_0_1_CONSOLE_GETCHAR,
  SBI_EXT_0_1_CONSOLE_PUTCHAR,
  SBI_EXT_0_1_REMOTE_FENCE_I,
  SBI_EXT_0_1_REMOTE_SFENCE_VMA,
  SBI_EXT_0_1_REMOTE_SFENCE_VMA_ASID,
  SBI_EXT_0_1_SEND_IPI,
  SBI_EXT_0_1_SET_TIMER,
  SBI_EXT_0_1_SHUTDOWN,
} from "./legacy.ts";
import { SBI_SRST_RESET_REASON_NONE, SBI_SRST_RESET_TYPE_SHUTDOWN } from "./srst.ts";
import { SBI_ERR_INVALID_ADDRESS, SBI_ERR_INVALID_PARAM, SBI_ERR_NOT_SUPPORTED } from "./types.ts";
import { ULONG_MAX } from "./params.ts";

const A0 = 10, A1 = 11, A6 = 16, A7 = 17;
const MASK_ADDR = RAM_BASE + 0x800n;

/** Runs a legacy ECALL with a6 and a1 holding garbage, which must be ignored / preserved. */
function ecall(sbi: ReturnType<typeof setup>["sbi"], eid: number, args: bigint[] = [], hartId = 0) {
  const cpu = new FakeRegisters();
  args.forEach((a, i) => cpu.setX(A0 + i, a));
  if (args.length < 2) cpu.setX(A1, 0x1111n);
  cpu.setX(A6, 0xdead_beefn);
  cpu.setX(A7, BigInt(eid));
  sbi.handleCpuEcall(cpu, hartId);
  return cpu;
}

test("console_putchar writes one byte, returns 0 in a0 and leaves a1 alone (§5.2)", () => {
  const { host, sbi } = setup();
  const cpu = ecall(sbi, SBI_EXT_0_1_CONSOLE_PUTCHAR, [0x1_4an]);
  assert.deepEqual(host.output, [0x4a]);
  assert.equal(cpu.x(A0), 0n);
  assert.equal(cpu.x(A1), 0x1111n);
});

test("console_getchar returns the byte, or -1 when nothing is waiting (§5.3)", () => {
  const { host, sbi } = setup();
  host.input = [0x71];
  assert.equal(ecall(sbi, SBI_EXT_0_1_CONSOLE_GETCHAR).x(A0), 0x71n);
  const cpu = ecall(sbi, SBI_EXT_0_1_CONSOLE_GETCHAR);
  assert.equal(cpu.x(A0), ULONG_MAX);
  assert.equal(cpu.x(A1), 0x1111n);
});

test("set_timer is TIME.set_timer under the legacy convention (§5.1)", () => {
  const { host, sbi } = setup();
  assert.equal(ecall(sbi, SBI_EXT_0_1_SET_TIMER, [ULONG_MAX], 1).x(A0), 0n);
  assert.deepEqual(host.timers, [{ hartId: 1, value: ULONG_MAX }]);
});

test("clear_ipi clears SSIP of the caller and says whether one was pending (§5.4)", () => {
  const { host, sbi } = setup();
  host.ssip[2] = true;
  assert.equal(ecall(sbi, SBI_EXT_0_1_CLEAR_IPI, [], 2).x(A0), 1n);
  assert.equal(host.ssip[2], false);
  assert.equal(ecall(sbi, SBI_EXT_0_1_CLEAR_IPI, [], 2).x(A0), 0n);
});

test("send_ipi reads the hart mask through the supervisor's address space (§5.5)", () => {
  const { host, sbi } = setup(4);
  host.poke(MASK_ADDR, [0b1010, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(ecall(sbi, SBI_EXT_0_1_SEND_IPI, [MASK_ADDR]).x(A0), 0n);
  assert.deepEqual(host.ipis, [[1, 3]]);
  // NULL means every hart.
  assert.equal(ecall(sbi, SBI_EXT_0_1_SEND_IPI, [0n]).x(A0), 0n);
  assert.deepEqual(host.ipis[1], [0, 1, 2, 3]);
});

test("send_ipi: unreadable masks and absent harts are negative errors in a0", () => {
  const { host, sbi } = setup(4);
  assert.equal(ecall(sbi, SBI_EXT_0_1_SEND_IPI, [0x1000n]).x(A0), BigInt.asUintN(64, SBI_ERR_INVALID_ADDRESS));
  assert.equal(ecall(sbi, SBI_EXT_0_1_SEND_IPI, [ULONG_MAX - 3n]).x(A0), BigInt.asUintN(64, SBI_ERR_INVALID_ADDRESS));
  host.poke(MASK_ADDR, [0b1_0000, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(ecall(sbi, SBI_EXT_0_1_SEND_IPI, [MASK_ADDR]).x(A0), BigInt.asUintN(64, SBI_ERR_INVALID_PARAM));
  host.poke(MASK_ADDR, [1, 0, 0, 0, 0, 0, 0, 0]);
  host.supportsVirtualLoads = false;
  assert.equal(ecall(sbi, SBI_EXT_0_1_SEND_IPI, [MASK_ADDR]).x(A0), BigInt.asUintN(64, SBI_ERR_INVALID_ADDRESS));
  assert.deepEqual(host.ipis, []);
});

test("remote fences (§5.6-5.8)", () => {
  const { host, sbi } = setup(2);
  host.poke(MASK_ADDR, [0b11, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(ecall(sbi, SBI_EXT_0_1_REMOTE_FENCE_I, [MASK_ADDR]).x(A0), 0n);
  assert.equal(ecall(sbi, SBI_EXT_0_1_REMOTE_SFENCE_VMA, [MASK_ADDR, 0x4000n, 0x1000n]).x(A0), 0n);
  assert.equal(ecall(sbi, SBI_EXT_0_1_REMOTE_SFENCE_VMA_ASID, [MASK_ADDR, 0n, ULONG_MAX, 7n]).x(A0), 0n);
  assert.deepEqual(host.fences, [
    { targets: [0, 1], fence: { kind: "fence.i" } },
    { targets: [0, 1], fence: { kind: "sfence.vma", range: { start: 0x4000n, size: 0x1000n } } },
    { targets: [0, 1], fence: { kind: "sfence.vma.asid", range: "all", asid: 7n } },
  ]);
  assert.equal(ecall(sbi, SBI_EXT_0_1_REMOTE_SFENCE_VMA, [MASK_ADDR, ULONG_MAX, 2n]).x(A0), BigInt.asUintN(64, SBI_ERR_INVALID_ADDRESS));
  assert.equal(host.fences.length, 3);
});

test("shutdown is an SRST shutdown with no reason (§5.9)", () => {
  const { host, sbi } = setup();
  ecall(sbi, SBI_EXT_0_1_SHUTDOWN);
  assert.deepEqual(host.resets, [{ type: SBI_SRST_RESET_TYPE_SHUTDOWN, reason: SBI_SRST_RESET_REASON_NONE }]);
});

test("reserved legacy EIDs 0x09-0x0F are unknown extensions (two-register return)", () => {
  const { sbi } = setup();
  for (const eid of [0x09, 0x0f]) {
    const cpu = ecall(sbi, eid);
    assert.equal(cpu.x(A0), BigInt.asUintN(64, SBI_ERR_NOT_SUPPORTED));
    assert.equal(cpu.x(A1), 0n);
  }
});

test("legacy calls are counted by name but their a0 values are not counted as errors", () => {
  const { sbi } = setup();
  ecall(sbi, SBI_EXT_0_1_CONSOLE_GETCHAR); // returns -1: no input
  assert.equal(sbi.counters.byFunction.get("LEGACY.console_getchar"), 1);
  assert.equal(sbi.counters.byExtension.get("LEGACY"), 1);
  assert.equal(sbi.counters.byError.size, 0);
});
