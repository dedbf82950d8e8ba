import { test } from "node:test";
import assert from "node:assert/strict";
import { call, FakeHost, FakeRegisters, setup } from "./testing/fake-host.ts";
import { SbiDispatcher } from "./dispatcher.ts";
import { standardExtensions } from "./index.ts";
import { SBI_EXT_BASE, SBI_EXT_BASE_GET_SPEC_VERSION } from "./base.ts";
import { SBI_EXT_IPI } from "./ipi.ts";
import { SBI_EXT_TIME } from "./time.ts";
import { SBI_EXT_HSM, SBI_EXT_HSM_HART_GET_STATUS } from "./hsm.ts";
import { SBI_ERR_INVALID_PARAM, SBI_ERR_NOT_SUPPORTED, sbiOk, type SbiExtension } from "./types.ts";

const A0 = 10, A1 = 11, A6 = 16, A7 = 17;

function registersFor(eid: bigint, fid: bigint, args: bigint[] = []): FakeRegisters {
  const cpu = new FakeRegisters();
  for (let i = 1; i < 32; i++) cpu.setX(i, 0x1000n + BigInt(i)); // recognisable values everywhere
  args.forEach((a, i) => cpu.setX(A0 + i, a));
  cpu.setX(A6, fid);
  cpu.setX(A7, eid);
  return cpu;
}

test("handleCpuEcall reads a7/a6/a0..a5 and writes a0/a1 only", () => {
  const { sbi } = setup();
  const cpu = registersFor(BigInt(SBI_EXT_BASE), BigInt(SBI_EXT_BASE_GET_SPEC_VERSION));
  const before = [...cpu.regs];
  sbi.handleCpuEcall(cpu, 0);
  assert.equal(cpu.x(A0), 0n);
  assert.equal(cpu.x(A1), 0x0200_0000n);
  for (let i = 1; i < 32; i++) if (i !== A0 && i !== A1) assert.equal(cpu.x(i), before[i], `x${i} preserved`);
});

test("negative errors are written as 64-bit two's complement", () => {
  const { sbi } = setup(4);
  const cpu = registersFor(BigInt(SBI_EXT_IPI), 0n, [1n << 10n, 0n]);
  const result = sbi.handleCpuEcall(cpu, 0);
  assert.equal(result.error, SBI_ERR_INVALID_PARAM);
  assert.equal(cpu.x(A0), 0xffff_ffff_ffff_fffdn);
  assert.equal(cpu.x(A1), 0n);
});

test("unknown EID and unknown FID are SBI_ERR_NOT_SUPPORTED (§3)", () => {
  const { sbi } = setup();
  assert.deepEqual(sbi.handle(call(0x1234_5678, 0)), { error: SBI_ERR_NOT_SUPPORTED, value: 0n });
  assert.deepEqual(sbi.handle(call(SBI_EXT_TIME, 99)), { error: SBI_ERR_NOT_SUPPORTED, value: 0n });
  // EID with garbage in the upper half of a7 does not alias TIME.
  const cpu = registersFor((1n << 40n) | BigInt(SBI_EXT_TIME), 0n, [5n]);
  sbi.handleCpuEcall(cpu, 0);
  assert.equal(cpu.x(A0), 0xffff_ffff_ffff_fffen);
  // Nor does an FID with garbage in the upper half of a6.
  const cpu2 = registersFor(BigInt(SBI_EXT_TIME), 1n << 32n, [5n]);
  sbi.handleCpuEcall(cpu2, 0);
  assert.equal(cpu2.x(A0), 0xffff_ffff_ffff_fffen);
  assert.equal((sbi.host as FakeHost).timers.length, 0);
});

test("counters by extension, function and error; unknown ids share bounded buckets", () => {
  const { sbi } = setup(2);
  sbi.handle(call(SBI_EXT_TIME, 0, [1]));
  sbi.handle(call(SBI_EXT_TIME, 0, [2]));
  sbi.handle(call(SBI_EXT_HSM, SBI_EXT_HSM_HART_GET_STATUS, [9]));
  for (let eid = 0x100; eid < 0x200; eid++) sbi.handle(call(eid, 0));
  for (let fid = 1; fid < 100; fid++) sbi.handle(call(SBI_EXT_TIME, fid));
  const c = sbi.counters;
  assert.equal(c.total, 2 + 1 + 256 + 99);
  assert.equal(c.byFunction.get("TIME.set_timer"), 2);
  assert.equal(c.byFunction.get("HSM.hart_get_status"), 1);
  assert.equal(c.byFunction.get("TIME.unknown"), 99);
  assert.equal(c.byFunction.get("unknown"), 256);
  assert.equal(c.byExtension.get("TIME"), 101);
  assert.equal(c.byExtension.get("unknown"), 256);
  assert.equal(c.byError.get("SBI_ERR_INVALID_PARAM"), 1);
  assert.equal(c.byError.get("SBI_ERR_NOT_SUPPORTED"), 256 + 99);
  assert.equal(c.byError.has("SBI_SUCCESS"), false);
  assert.ok(c.byFunction.size <= 4);
});

test("missing arguments read as zero", () => {
  const { sbi } = setup();
  assert.deepEqual(sbi.handle({ eid: SBI_EXT_HSM, fid: SBI_EXT_HSM_HART_GET_STATUS, args: [], hartId: 0 }), sbiOk(0n));
});

test("overlapping extension tables are rejected at construction", () => {
  const clash: SbiExtension = { eid: [0x05, 0x20], name: "CLASH", functions: new Map() };
  assert.throws(() => new SbiDispatcher([...standardExtensions(), clash], new FakeHost()), /overlap/);
  assert.doesNotThrow(() => new SbiDispatcher(standardExtensions(), new FakeHost()));
});

test("every standard extension has a distinct name and only named functions", () => {
  const names = new Set<string>();
  for (const ext of standardExtensions()) {
    assert.ok(!names.has(ext.name), ext.name);
    names.add(ext.name);
    for (const [fid, fn] of ext.functions) assert.match(fn.name, /^[a-z0-9_]+$/, `${ext.name} fid ${fid}`);
  }
});

test("arguments are normalised to unsigned 64-bit, so a negative bigint cannot reach a handler", () => {
  const { sbi } = setup(4);
  const r = sbi.handle({ eid: SBI_EXT_HSM, fid: SBI_EXT_HSM_HART_GET_STATUS, args: [-1n], hartId: 0 });
  assert.equal(r.error, SBI_ERR_INVALID_PARAM);
});
