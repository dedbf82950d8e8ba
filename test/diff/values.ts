// Interesting register values for the differential tests: the boundaries where integer and
// floating-point implementations usually go wrong (overflow edges, sign bits, NaN encodings,
// subnormals, conversion limits, NaN-boxing).

const U64 = (1n << 64n) - 1n;

/** Raw bits of a double. */
export function f64Bits(v: number): bigint {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, v, true);
  return dv.getBigUint64(0, true);
}

/** Raw bits of a single (v is rounded to single first). */
export function f32Bits(v: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, v, true);
  return dv.getUint32(0, true);
}

/** A single as the FP register holds it: NaN-boxed (upper 32 bits all ones). */
export function boxed(bits32: number): bigint {
  return (0xffff_ffffn << 32n) | BigInt(bits32 >>> 0);
}

export const INTERESTING_X: readonly bigint[] = [
  0n,
  1n,
  2n,
  3n,
  7n,
  31n,
  32n,
  63n,
  64n,
  0x7fn,
  0x80n,
  0xffn,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x7fff_ffffn, // INT32_MAX
  0x8000_0000n, // 2^31, zero-extended
  0xffff_ffffn, // UINT32_MAX
  0x1_0000_0000n,
  0xffff_ffff_8000_0000n, // INT32_MIN sign-extended
  0xffff_ffff_7fff_ffffn,
  0x7fff_ffff_ffff_ffffn, // INT64_MAX
  0x8000_0000_0000_0000n, // INT64_MIN
  0x8000_0000_0000_0001n,
  U64, // -1
  U64 - 1n, // -2
  U64 - 31n,
  0x5555_5555_5555_5555n,
  0xaaaa_aaaa_aaaa_aaaan,
  0x0000_0000_8000_0001n,
  0xffff_ffff_0000_0000n,
];

/** Single-precision bit patterns. */
export const INTERESTING_F32: readonly number[] = [
  0x0000_0000, // +0
  0x8000_0000, // -0
  0x7f80_0000, // +inf
  0xff80_0000, // -inf
  0x7fc0_0000, // canonical qNaN
  0xffc0_0000, // negative qNaN
  0x7fc0_0001, // qNaN with payload
  0x7f80_0001, // sNaN
  0x7fbf_ffff, // sNaN, all payload bits
  0xff80_0001, // negative sNaN
  0x0000_0001, // smallest subnormal
  0x8000_0001,
  0x007f_ffff, // largest subnormal
  0x807f_ffff,
  0x0080_0000, // smallest normal
  0x0080_0001,
  0x3f80_0000, // 1.0
  0xbf80_0000, // -1.0
  0x3f00_0000, // 0.5
  0x3fc0_0000, // 1.5
  0x4020_0000, // 2.5
  0xbfc0_0000, // -1.5
  0x3eaa_aaab, // 1/3
  0x7f7f_ffff, // FLT_MAX
  0xff7f_ffff,
  0x7f00_0000, // 2^127 (products overflow)
  0x0040_0000, // half the smallest normal
  0x3380_0000, // 2^-24
  0x4eff_ffff, // largest below 2^31
  0x4f00_0000, // 2^31
  0xcf00_0000, // -2^31
  0xcf00_0001, // just below -2^31
  0x4f80_0000, // 2^32
  0x4f7f_ffff, // largest below 2^32
  0x5eff_ffff, // largest below 2^63
  0x5f00_0000, // 2^63
  0xdf00_0000, // -2^63
  0x5f80_0000, // 2^64
  0x5f7f_ffff, // largest below 2^64
];

/** Double-precision bit patterns. */
export const INTERESTING_F64: readonly bigint[] = [
  0x0000_0000_0000_0000n, // +0
  0x8000_0000_0000_0000n, // -0
  0x7ff0_0000_0000_0000n, // +inf
  0xfff0_0000_0000_0000n, // -inf
  0x7ff8_0000_0000_0000n, // canonical qNaN
  0xfff8_0000_0000_0000n,
  0x7ff8_0000_0000_0001n, // qNaN with payload
  0x7ff0_0000_0000_0001n, // sNaN
  0x7ff7_ffff_ffff_ffffn, // sNaN, all payload bits
  0xfff4_0000_0000_0000n, // negative sNaN
  0x0000_0000_0000_0001n, // smallest subnormal
  0x8000_0000_0000_0001n,
  0x000f_ffff_ffff_ffffn, // largest subnormal
  0x0010_0000_0000_0000n, // smallest normal
  0x0008_0000_0000_0000n, // half the smallest normal
  0x7fef_ffff_ffff_ffffn, // DBL_MAX
  0xffef_ffff_ffff_ffffn,
  0x7fe0_0000_0000_0000n, // 2^1023 (products overflow)
  f64Bits(1),
  f64Bits(-1),
  f64Bits(0.5),
  f64Bits(-0.5),
  f64Bits(1.5),
  f64Bits(2.5),
  f64Bits(-2.5),
  f64Bits(1 / 3),
  f64Bits(2 ** 31 - 1),
  f64Bits(2 ** 31 - 0.5),
  f64Bits(2 ** 31),
  f64Bits(-(2 ** 31)),
  f64Bits(-(2 ** 31) - 0.5),
  f64Bits(-(2 ** 31) - 1),
  f64Bits(2 ** 32 - 1),
  f64Bits(2 ** 32 - 0.5),
  f64Bits(2 ** 32),
  0x43df_ffff_ffff_ffffn, // largest below 2^63
  f64Bits(2 ** 63),
  f64Bits(-(2 ** 63)),
  0xc3e0_0000_0000_0001n, // just below -2^63
  0x43ef_ffff_ffff_ffffn, // largest below 2^64
  f64Bits(2 ** 64),
  0x47ef_ffff_e000_0000n, // FLT_MAX: fcvt.s.d edge
  0x47ef_ffff_f000_0000n, // FLT_MAX + half an ulp: rounds to inf or FLT_MAX depending on rm
  0x47ef_ffff_e000_0001n,
  f64Bits(2 ** -126), // FLT_MIN normal
  f64Bits(2 ** -149), // smallest single subnormal
  f64Bits(2 ** -150), // half of it: rounds to 0 or to the subnormal
  f64Bits(3 * 2 ** -151),
  0x3810_0000_1000_0000n, // just above FLT_MIN, inexact in single
];

/** Wraps a value to unsigned 64 bits. */
export function u64(v: bigint): bigint {
  return BigInt.asUintN(64, v);
}
