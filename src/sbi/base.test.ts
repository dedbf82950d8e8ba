import { test } from "node:test";
import assert from "node:assert/strict";
import { call, setup } from "./testing/fake-host.ts";
import {
  PARLEY_SBI_IMPL_ID,
  PARLEY_SBI_IMPL_VERSION,
  SBI_EXT_BASE,
  SBI_EXT_BASE_GET_IMP_ID,
  SBI_EXT_BASE_GET_IMP_VERSION,
  SBI_EXT_BASE_GET_MARCHID,
  SBI_EXT_BASE_GET_MIMPID,
  SBI_EXT_BASE_GET_MVENDORID,
  SBI_EXT_BASE_GET_SPEC_VERSION,
  SBI_EXT_BASE_PROBE_EXT,
} from "./base.ts";
import { SBI_EXT_TIME } from "./time.ts";
import { SBI_EXT_IPI } from "./ipi.ts";
import { SBI_EXT_RFENCE } from "./rfence.ts";
import { SBI_EXT_HSM } from "./hsm.ts";
import { SBI_EXT_SRST } from "./srst.ts";
import { SBI_EXT_DBCN } from "./dbcn.ts";
import { SBI_EXT_STA } from "./sta.ts";
import { SBI_ERR_NOT_SUPPORTED, SBI_SUCCESS } from "./types.ts";

const probe = (sbi: ReturnType<typeof setup>["sbi"], eid: number | bigint) => sbi.handle(call(SBI_EXT_BASE, SBI_EXT_BASE_PROBE_EXT, [eid]));

test("get_spec_version reports SBI v2.0 (§4.1)", () => {
  const { sbi } = setup();
  const r = sbi.handle(call(SBI_EXT_BASE, SBI_EXT_BASE_GET_SPEC_VERSION));
  assert.deepEqual(r, { error: SBI_SUCCESS, value: 0x0200_0000n });
  assert.equal(r.value >> 31n, 0n); // bit 31 and above are zero
});

test("implementation id and version", () => {
  const { sbi } = setup();
  assert.deepEqual(sbi.handle(call(SBI_EXT_BASE, SBI_EXT_BASE_GET_IMP_ID)), { error: 0n, value: PARLEY_SBI_IMPL_ID });
  assert.equal(PARLEY_SBI_IMPL_ID, 0x5041524cn);
  assert.ok(PARLEY_SBI_IMPL_ID > 11n, "must not collide with a registered implementation id");
  assert.deepEqual(sbi.handle(call(SBI_EXT_BASE, SBI_EXT_BASE_GET_IMP_VERSION)), { error: 0n, value: PARLEY_SBI_IMPL_VERSION });
});

test("probe_extension: 1 for every implemented extension (§4.4)", () => {
  const { sbi } = setup();
  for (const eid of [SBI_EXT_BASE, SBI_EXT_TIME, SBI_EXT_IPI, SBI_EXT_RFENCE, SBI_EXT_HSM, SBI_EXT_SRST, SBI_EXT_DBCN, SBI_EXT_STA, 0x00, 0x01, 0x02, 0x08]) {
    assert.deepEqual(probe(sbi, eid), { error: SBI_SUCCESS, value: 1n }, `EID 0x${eid.toString(16)}`);
  }
});

test("probe_extension: 0 for absent extensions, never an error", () => {
  const { sbi } = setup();
  const absent: (number | bigint)[] = [
    0x504d55, // PMU
    0x53555350, // SUSP
    0x43505043, // CPPC
    0x4e41434c, // NACL
    0x09, // reserved legacy
    0x0f,
    0x0900_0000, // vendor space
    -1n, // "long extension_id" = -1
    0x1_0000_0010n, // not a sign-extended 32-bit id, must not alias BASE
  ];
  for (const eid of absent) assert.deepEqual(probe(sbi, eid), { error: SBI_SUCCESS, value: 0n }, `EID ${eid}`);
});

test("machine id CSRs come from the host", () => {
  const { host, sbi } = setup();
  assert.equal(sbi.handle(call(SBI_EXT_BASE, SBI_EXT_BASE_GET_MVENDORID)).value, 0n);
  host.mvendorid = 0x489n;
  host.marchid = 7n;
  host.mimpid = 9n;
  assert.equal(sbi.handle(call(SBI_EXT_BASE, SBI_EXT_BASE_GET_MVENDORID)).value, 0x489n);
  assert.equal(sbi.handle(call(SBI_EXT_BASE, SBI_EXT_BASE_GET_MARCHID)).value, 7n);
  assert.equal(sbi.handle(call(SBI_EXT_BASE, SBI_EXT_BASE_GET_MIMPID)).value, 9n);
});

test("unknown BASE function ids are SBI_ERR_NOT_SUPPORTED", () => {
  const { sbi } = setup();
  for (const fid of [7, 8, 0x7fff_ffff, -1]) {
    assert.deepEqual(sbi.handle(call(SBI_EXT_BASE, fid)), { error: SBI_ERR_NOT_SUPPORTED, value: 0n });
  }
});
