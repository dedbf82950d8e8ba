// Software IEEE-754 binary32/binary64 arithmetic for the RISC-V F and D extensions: the
// operations the executor (exec.ts) and the FP glue (fpu.ts) use. The code is split by job:
// softfloat-common.ts (flags, rounding, packing; the representation is described there),
// softfloat-f64.ts and softfloat-f32.ts (arithmetic), softfloat-compare.ts, softfloat-convert.ts.
export { sfTakeFlags, SF_FLAG_NX, SF_FLAG_UF, SF_FLAG_OF, SF_FLAG_DZ, SF_FLAG_NV } from "./softfloat-common";
export * from "./softfloat-f64";
export * from "./softfloat-f32";
export * from "./softfloat-compare";
export * from "./softfloat-convert";
