// The wasm binary writer the translator uses: LEB128 encodings and modules V8 accepts and runs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ByteWriter, Code, ModuleBuilder, Op, ValType } from "../../src/cpu/jit/wasm-emitter.ts";

function bytesOf(write: (w: ByteWriter) => void): number[] {
  const w = new ByteWriter();
  write(w);
  return [...w.finish()];
}

test("LEB128 encodings", () => {
  assert.deepEqual(bytesOf((w) => w.u32(0)), [0]);
  assert.deepEqual(bytesOf((w) => w.u32(127)), [0x7f]);
  assert.deepEqual(bytesOf((w) => w.u32(128)), [0x80, 0x01]);
  assert.deepEqual(bytesOf((w) => w.u32(0xffffffff)), [0xff, 0xff, 0xff, 0xff, 0x0f]);
  assert.deepEqual(bytesOf((w) => w.s32(-1)), [0x7f]);
  assert.deepEqual(bytesOf((w) => w.s32(63)), [0x3f]);
  assert.deepEqual(bytesOf((w) => w.s32(64)), [0xc0, 0x00]);
  assert.deepEqual(bytesOf((w) => w.s32(-64)), [0x40]);
  assert.deepEqual(bytesOf((w) => w.s32(-65)), [0xbf, 0x7f]);
  assert.deepEqual(bytesOf((w) => w.s32(-0x8000_0000)), [0x80, 0x80, 0x80, 0x80, 0x78]);
  assert.deepEqual(bytesOf((w) => w.s64(-(1n << 63n))), [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f]);
  assert.deepEqual(bytesOf((w) => w.s64((1n << 63n) - 1n)), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
});

test("a module with blocks, a loop, br_table, tail calls and memory runs", () => {
  const b = new ModuleBuilder();
  const memory = new WebAssembly.Memory({ initial: 1 });
  b.importMemory("env", "memory", 1);
  const type = { params: [ValType.i64, ValType.i32], results: [ValType.i64] };
  // f(n, k): sum of 1..n, then switch on k: 0 -> sum, 1 -> sum * 2, else -> mem[8] (stored sum)
  const c = new Code();
  c.i64Const(0);
  c.set(2);
  const loop = c.loop();
  c.get(2);
  c.get(0);
  c.op(Op.i64_add);
  c.set(2);
  c.get(0);
  c.i64Const(1);
  c.op(Op.i64_sub);
  c.tee(0);
  c.op(Op.i64_eqz);
  c.op(Op.i32_eqz);
  c.brIf(loop);
  c.end();
  c.i32Const(0);
  c.get(2);
  c.mem(Op.i64_store, 8);
  const outer = c.block();
  const one = c.block();
  const zero = c.block();
  c.get(1);
  c.brTable([zero, one], outer);
  c.end();
  c.get(2);
  c.op(Op.return);
  c.end();
  c.get(2);
  c.i64Const(2);
  c.op(Op.i64_mul);
  c.op(Op.return);
  c.end();
  c.i32Const(0);
  c.mem(Op.i64_load, 8);
  const f = b.addFunction(type, [{ count: 1, type: ValType.i64 }], c.finish(), "f");
  // g(n, k) = f(n, k) as a tail call
  const g = new Code();
  g.get(0);
  g.get(1);
  g.returnCall(f);
  b.addFunction(type, [], g.finish(), "g");
  const instance = new WebAssembly.Instance(new WebAssembly.Module(b.toBytes()), { env: { memory } });
  const exports = instance.exports as { f: (n: bigint, k: number) => bigint; g: (n: bigint, k: number) => bigint };
  assert.equal(exports.f(10n, 0), 55n);
  assert.equal(exports.f(10n, 1), 110n);
  assert.equal(exports.g(100n, 7), 5050n);
  assert.equal(new DataView(memory.buffer).getBigInt64(8, true), 5050n);
});

test("branching to a label that is not open is an emitter error, not a bad module", () => {
  const c = new Code();
  const label = c.block();
  c.end();
  assert.throws(() => c.br(label), /not open/);
});
