import { test } from "node:test";
import assert from "node:assert/strict";
import { call, RAM_BASE, RAM_SIZE, setup } from "./testing/fake-host.ts";
import { DBCN_MAX_CHUNK, SBI_EXT_DBCN, SBI_EXT_DBCN_CONSOLE_READ, SBI_EXT_DBCN_CONSOLE_WRITE, SBI_EXT_DBCN_CONSOLE_WRITE_BYTE } from "./dbcn.ts";
import { SBI_ERR_FAILED, SBI_ERR_INVALID_PARAM, SBI_ERR_NOT_SUPPORTED } from "./types.ts";
import { ULONG_MAX } from "./params.ts";

const write = (n: bigint | number, lo: bigint, hi: bigint | number = 0) => call(SBI_EXT_DBCN, SBI_EXT_DBCN_CONSOLE_WRITE, [n, lo, hi]);
const read = (n: bigint | number, lo: bigint, hi: bigint | number = 0) => call(SBI_EXT_DBCN, SBI_EXT_DBCN_CONSOLE_READ, [n, lo, hi]);
const RAM_END = RAM_BASE + BigInt(RAM_SIZE);

test("console_write copies guest bytes to the console and returns the count (§12.1)", () => {
  const { host, sbi } = setup();
  host.poke(RAM_BASE + 0x100n, Buffer.from("hello\n"));
  assert.deepEqual(sbi.handle(write(6, RAM_BASE + 0x100n)), { error: 0n, value: 6n });
  assert.equal(Buffer.from(host.output).toString(), "hello\n");
});

test("console_write of a large buffer writes one chunk and reports the partial count", () => {
  const { host, sbi } = setup();
  const r = sbi.handle(write(RAM_SIZE, RAM_BASE));
  assert.deepEqual(r, { error: 0n, value: BigInt(DBCN_MAX_CHUNK) });
  assert.equal(host.output.length, DBCN_MAX_CHUNK);
  assert.equal(host.largestRequest, DBCN_MAX_CHUNK);
});

test("console_write reports what a full console accepted", () => {
  const { host, sbi } = setup();
  host.consoleCapacity = 2;
  assert.deepEqual(sbi.handle(write(10, RAM_BASE)), { error: 0n, value: 2n });
});

test("console_write/read with zero bytes touch nothing", () => {
  const { host, sbi } = setup();
  host.input = [1, 2];
  assert.deepEqual(sbi.handle(write(0, RAM_BASE)), { error: 0n, value: 0n });
  assert.deepEqual(sbi.handle(read(0, RAM_BASE)), { error: 0n, value: 0n });
  assert.equal(host.output.length, 0);
  assert.deepEqual(host.input, [1, 2]);
});

test("ranges outside RAM, huge lengths and 2^64 wraparound are SBI_ERR_INVALID_PARAM without allocating", () => {
  const { host, sbi } = setup();
  const bad: [bigint | number, bigint, bigint | number][] = [
    [16, 0x1000n, 0], // below RAM
    [16, RAM_END, 0], // just past RAM
    [16, RAM_END - 8n, 0], // straddles the end
    [ULONG_MAX, RAM_BASE, 0], // num_bytes = 2^64-1
    [1n << 40n, RAM_BASE, 0], // a terabyte
    [32, ULONG_MAX - 15n, 0], // wraps past 2^64 ...
    [ULONG_MAX, 1n, 0], // ... and back into a low address
    [16, RAM_BASE, 1], // base_addr_hi != 0: above 2^64
    [16, RAM_BASE, ULONG_MAX],
  ];
  for (const [n, lo, hi] of bad) {
    assert.deepEqual(sbi.handle(write(n, lo, hi)), { error: SBI_ERR_INVALID_PARAM, value: 0n }, `write ${n} @ ${lo}/${hi}`);
    assert.deepEqual(sbi.handle(read(n, lo, hi)), { error: SBI_ERR_INVALID_PARAM, value: 0n }, `read ${n} @ ${lo}/${hi}`);
  }
  assert.equal(host.largestRequest, 0);
  assert.equal(host.output.length, 0);
});

test("console_read stores available input in guest memory and returns the count (§12.2)", () => {
  const { host, sbi } = setup();
  host.input = [0x61, 0x62, 0x63];
  assert.deepEqual(sbi.handle(read(2, RAM_BASE + 0x10n)), { error: 0n, value: 2n });
  assert.deepEqual([...host.ram.subarray(0x10, 0x13)], [0x61, 0x62, 0]);
  assert.deepEqual(sbi.handle(read(100, RAM_BASE + 0x20n)), { error: 0n, value: 1n });
  assert.equal(host.ram[0x20], 0x63);
  // Nothing waiting: 0 and no write.
  host.ram[0x30] = 0xee;
  assert.deepEqual(sbi.handle(read(8, RAM_BASE + 0x30n)), { error: 0n, value: 0n });
  assert.equal(host.ram[0x30], 0xee);
});

test("console_read asks the console for at most one chunk", () => {
  const { host, sbi } = setup();
  host.input = new Array(DBCN_MAX_CHUNK + 10).fill(0x41);
  assert.deepEqual(sbi.handle(read(RAM_SIZE, RAM_BASE)), { error: 0n, value: BigInt(DBCN_MAX_CHUNK) });
  assert.equal(host.largestRequest, DBCN_MAX_CHUNK);
  assert.equal(host.input.length, 10);
});

test("console_write_byte writes the low 8 bits of a0 (§12.3)", () => {
  const { host, sbi } = setup();
  assert.deepEqual(sbi.handle(call(SBI_EXT_DBCN, SBI_EXT_DBCN_CONSOLE_WRITE_BYTE, [0x41])), { error: 0n, value: 0n });
  assert.deepEqual(sbi.handle(call(SBI_EXT_DBCN, SBI_EXT_DBCN_CONSOLE_WRITE_BYTE, [0xffff_ff42n])), { error: 0n, value: 0n });
  assert.deepEqual(host.output, [0x41, 0x42]);
  host.consoleCapacity = 0;
  assert.equal(sbi.handle(call(SBI_EXT_DBCN, SBI_EXT_DBCN_CONSOLE_WRITE_BYTE, [0x43])).error, SBI_ERR_FAILED);
});

test("unknown DBCN function ids are SBI_ERR_NOT_SUPPORTED", () => {
  const { sbi } = setup();
  assert.equal(sbi.handle(call(SBI_EXT_DBCN, 3, [1, RAM_BASE, 0])).error, SBI_ERR_NOT_SUPPORTED);
});
