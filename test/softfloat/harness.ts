// @ts-nocheck -- AssemblyScript source (u32, u64, ...), compiled by asc, not by tsc; the
// repository tsconfig includes test/**, so this keeps `npm run typecheck` from reading it.
// AssemblyScript entry for the softfloat differential test (test/softfloat/softfloat.test.ts).
// It re-exports the module's public API unchanged, so the test calls exactly the functions the
// core imports, and adds thin wrappers for the fused variants the core derives from mulAdd by
// flipping sign bits (fmsub = a*b - c, fnmsub = -(a*b) + c, fnmadd = -(a*b) - c).
// Compiled by the test with `--runtime stub`; i64/u64 values cross into JS as BigInt.
import { f32_mulAdd, f64_mulAdd } from "../../src/cpu/wasm/softfloat";

export * from "../../src/cpu/wasm/softfloat";

const F32_SIGN: u32 = 0x80000000;
const F64_SIGN: u64 = 0x8000000000000000;

export function f32_mulSub(a: u32, b: u32, c: u32, rm: u32): u32 {
  return f32_mulAdd(a, b, c ^ F32_SIGN, rm);
}
export function f32_negMulSub(a: u32, b: u32, c: u32, rm: u32): u32 {
  return f32_mulAdd(a ^ F32_SIGN, b, c, rm);
}
export function f32_negMulAdd(a: u32, b: u32, c: u32, rm: u32): u32 {
  return f32_mulAdd(a ^ F32_SIGN, b, c ^ F32_SIGN, rm);
}
export function f64_mulSub(a: u64, b: u64, c: u64, rm: u32): u64 {
  return f64_mulAdd(a, b, c ^ F64_SIGN, rm);
}
export function f64_negMulSub(a: u64, b: u64, c: u64, rm: u32): u64 {
  return f64_mulAdd(a ^ F64_SIGN, b, c, rm);
}
export function f64_negMulAdd(a: u64, b: u64, c: u64, rm: u32): u64 {
  return f64_mulAdd(a ^ F64_SIGN, b, c ^ F64_SIGN, rm);
}
