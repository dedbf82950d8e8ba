// Software IEEE-754 for the RISC-V F and D extensions (see softfloat-common.ts for the
// representation and conventions): comparisons, minimum/maximum and classification.
import {
  F32_DEFAULT_NAN, F32_FRAC_MASK, F32_QUIET, F64_DEFAULT_NAN, F64_FRAC_MASK, F64_QUIET,
  SF_FLAG_NV, f32IsNaN, f32IsSignalingNaN, f64IsNaN, f64IsSignalingNaN, raiseFlags,
} from "./softfloat-common";

// ---------------------------------------------------------------------------------------------
// Comparisons, min/max, classify (shared logic on sign-magnitude bit patterns)

/** a < b for non-NaN binary64 patterns; with `zerosOrdered`, -0 < +0 (for min/max). */
@inline function f64Less(a: u64, b: u64, zerosOrdered: bool): bool {
  const signA = a >> 63;
  if (signA != b >> 63) return signA != 0 && (zerosOrdered || ((a | b) << 1) != 0);
  // Same sign: magnitudes order like the bit patterns, reversed for negatives.
  return a != b && ((signA != 0) != (a < b));
}
@inline function f32Less(a: u32, b: u32, zerosOrdered: bool): bool {
  const signA = a >> 31;
  if (signA != b >> 31) return signA != 0 && (zerosOrdered || ((a | b) << 1) != 0);
  return a != b && ((signA != 0) != (a < b));
}

export function f64_eq(a: u64, b: u64): u32 {
  if (f64IsNaN(a) || f64IsNaN(b)) {
    // Quiet comparison: only signalling NaNs are invalid.
    if (f64IsSignalingNaN(a) || f64IsSignalingNaN(b)) raiseFlags(SF_FLAG_NV);
    return 0;
  }
  return <u32>(a == b || ((a | b) << 1) == 0);
}

export function f64_lt(a: u64, b: u64): u32 {
  if (f64IsNaN(a) || f64IsNaN(b)) {
    raiseFlags(SF_FLAG_NV); // signalling comparison: any NaN is invalid
    return 0;
  }
  return <u32>f64Less(a, b, false);
}

export function f64_le(a: u64, b: u64): u32 {
  if (f64IsNaN(a) || f64IsNaN(b)) {
    raiseFlags(SF_FLAG_NV);
    return 0;
  }
  return <u32>(a == b || ((a | b) << 1) == 0 || f64Less(a, b, false));
}

export function f32_eq(a: u32, b: u32): u32 {
  if (f32IsNaN(a) || f32IsNaN(b)) {
    if (f32IsSignalingNaN(a) || f32IsSignalingNaN(b)) raiseFlags(SF_FLAG_NV);
    return 0;
  }
  return <u32>(a == b || ((a | b) << 1) == 0);
}

export function f32_lt(a: u32, b: u32): u32 {
  if (f32IsNaN(a) || f32IsNaN(b)) {
    raiseFlags(SF_FLAG_NV);
    return 0;
  }
  return <u32>f32Less(a, b, false);
}

export function f32_le(a: u32, b: u32): u32 {
  if (f32IsNaN(a) || f32IsNaN(b)) {
    raiseFlags(SF_FLAG_NV);
    return 0;
  }
  return <u32>(a == b || ((a | b) << 1) == 0 || f32Less(a, b, false));
}

// min/max follow IEEE 754-2019 minimumNumber/maximumNumber (RISC-V F 2.2): a NaN operand is
// ignored in favour of the other one, two NaNs give the canonical NaN, any signalling NaN
// raises NV, and -0 orders below +0.

function f64MinMax(a: u64, b: u64, wantMax: bool): u64 {
  const aNaN = f64IsNaN(a), bNaN = f64IsNaN(b);
  if (aNaN || bNaN) {
    if (f64IsSignalingNaN(a) || f64IsSignalingNaN(b)) raiseFlags(SF_FLAG_NV);
    if (aNaN && bNaN) return F64_DEFAULT_NAN;
    return aNaN ? b : a;
  }
  return f64Less(a, b, true) != wantMax ? a : b;
}

export function f64_min(a: u64, b: u64): u64 {
  return f64MinMax(a, b, false);
}

export function f64_max(a: u64, b: u64): u64 {
  return f64MinMax(a, b, true);
}

function f32MinMax(a: u32, b: u32, wantMax: bool): u32 {
  const aNaN = f32IsNaN(a), bNaN = f32IsNaN(b);
  if (aNaN || bNaN) {
    if (f32IsSignalingNaN(a) || f32IsSignalingNaN(b)) raiseFlags(SF_FLAG_NV);
    if (aNaN && bNaN) return F32_DEFAULT_NAN;
    return aNaN ? b : a;
  }
  return f32Less(a, b, true) != wantMax ? a : b;
}

export function f32_min(a: u32, b: u32): u32 {
  return f32MinMax(a, b, false);
}

export function f32_max(a: u32, b: u32): u32 {
  return f32MinMax(a, b, true);
}

// fclass bits: 0 -inf, 1 -normal, 2 -subnormal, 3 -0, 4 +0, 5 +subnormal, 6 +normal, 7 +inf,
// 8 signalling NaN, 9 quiet NaN.
@inline function classifyParts(negative: bool, expAllOnes: bool, expZero: bool, fracZero: bool, quiet: bool): u32 {
  if (expAllOnes) {
    if (fracZero) return negative ? 1 << 0 : 1 << 7;
    return quiet ? 1 << 9 : 1 << 8;
  }
  if (expZero) {
    if (fracZero) return negative ? 1 << 3 : 1 << 4;
    return negative ? 1 << 2 : 1 << 5;
  }
  return negative ? 1 << 1 : 1 << 6;
}

export function f64_classify(a: u64): u32 {
  const exp = (a >> 52) & 0x7ff;
  return classifyParts((a >> 63) != 0, exp == 0x7ff, exp == 0, (a & F64_FRAC_MASK) == 0, (a & F64_QUIET) != 0);
}

export function f32_classify(a: u32): u32 {
  const exp = (a >> 23) & 0xff;
  return classifyParts((a >> 31) != 0, exp == 0xff, exp == 0, (a & F32_FRAC_MASK) == 0, (a & F32_QUIET) != 0);
}

