import { test } from "node:test";
import assert from "node:assert/strict";
import { Htif } from "./htif.ts";

function makeMemory(base: number, size: number) {
  const ram = new Uint8Array(size);
  return {
    ram,
    isRam: (p: number, n: number) => p >= base && p + n <= base + size,
    readRam: (p: number, n: number) => ram.slice(p - base, p - base + n),
    writeRam: (p: number, bytes: Uint8Array) => ram.set(bytes, p - base),
  };
}

test("console writes are echoed and answered through fromhost", () => {
  const mem = makeMemory(0x8000_0000, 4096);
  const out: number[] = [];
  const htif = new Htif(mem, 0x8000_0000, 0x8000_0040, (b) => out.push(...b), () => {});
  htif.store(0x8000_0000, 8, (1n << 56n) | (1n << 48n) | 0x41n);
  assert.deepEqual(out, [0x41]);
  assert.notEqual(new DataView(mem.ram.buffer).getBigUint64(0x40, true), 0n);
});

test("exit code is tohost >> 1, also when written as two halves", () => {
  const mem = makeMemory(0x8000_0000, 4096);
  let code = -1;
  const htif = new Htif(mem, 0x8000_0000, undefined, () => {}, (c) => (code = c));
  htif.store(0x8000_0000, 4, (7 << 1) | 1);
  assert.equal(code, -1);
  htif.store(0x8000_0004, 4, 0);
  assert.equal(code, 7);
  assert.equal(htif.exitCode, 7);
});

test("syscall proxy: write within RAM, bad pointers give -EFAULT, not a crash", () => {
  const mem = makeMemory(0x8000_0000, 4096);
  const out: number[] = [];
  const htif = new Htif(mem, 0x8000_0000, 0x8000_0040, (b) => out.push(...b), () => {});
  const view = new DataView(mem.ram.buffer);
  mem.ram.set(new TextEncoder().encode("hi"), 0x200);
  view.setBigUint64(0x100, 64n, true); // SYS_write
  view.setBigUint64(0x108, 1n, true);
  view.setBigUint64(0x110, 0x8000_0200n, true);
  view.setBigUint64(0x118, 2n, true);
  htif.store(0x8000_0000, 8, 0x8000_0100n);
  assert.equal(new TextDecoder().decode(new Uint8Array(out)), "hi");
  assert.equal(view.getBigInt64(0x100, true), 2n);
  view.setBigUint64(0x100, 64n, true);
  view.setBigUint64(0x110, 0xdead_0000n, true);
  htif.store(0x8000_0000, 8, 0x8000_0100n);
  assert.equal(view.getBigInt64(0x100, true), -14n);
  htif.store(0x8000_0000, 8, 0x1234_5678_0000n); // magic_mem outside RAM: ignored
});

test("snapshot: a tohost written half-way finishes after restore; an exit code survives", () => {
  const mem = makeMemory(0x8000_0000, 4096);
  const htif = new Htif(mem, 0x8000_0000, undefined, () => {}, () => {});
  htif.store(0x8000_0000, 4, (9 << 1) | 1); // low half only
  const saved = JSON.parse(JSON.stringify(htif.saveState()));
  assert.deepEqual(saved, { version: 1, pendingLow: 19, exitCode: null });
  let code = -1;
  const restored = new Htif(mem, 0x8000_0000, undefined, () => {}, (c) => (code = c));
  restored.restoreState(saved);
  restored.store(0x8000_0004, 4, 0);
  assert.equal(code, 9);
  const again = new Htif(mem, 0x8000_0000, undefined, () => {}, () => assert.fail("no exit is taken at restore"));
  again.restoreState(JSON.parse(JSON.stringify(restored.saveState())));
  assert.equal(again.exitCode, 9);
  assert.deepEqual(again.saveState(), restored.saveState());
});

test("snapshot: bad states are refused and change nothing", () => {
  const mem = makeMemory(0x8000_0000, 4096);
  const htif = new Htif(mem, 0x8000_0000, undefined, () => {}, () => {});
  htif.store(0x8000_0000, 4, 6);
  const good = htif.saveState();
  for (const [state, message] of [
    ["x", /htif: expected an object/],
    [{ version: 0, pendingLow: null, exitCode: null }, /htif\.version/],
    [{ version: 1, pendingLow: -1, exitCode: null }, /htif\.pendingLow/],
    [{ version: 1, pendingLow: 2 ** 32, exitCode: null }, /htif\.pendingLow/],
    [{ version: 1, exitCode: null }, /htif\.pendingLow: expected a whole number .* got missing/],
    [{ version: 1, pendingLow: null, exitCode: 1.5 }, /htif\.exitCode/],
  ] as [unknown, RegExp][]) {
    assert.throws(() => htif.restoreState(state), message);
  }
  assert.deepEqual(htif.saveState(), good);
});
