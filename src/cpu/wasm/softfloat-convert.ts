// Software IEEE-754 for the RISC-V F and D extensions (see softfloat-common.ts for the
// representation and conventions): conversions between floating point and integers.
import {
  BIT63, F32_DEFAULT_NAN, F32_FRAC_MASK, F32_IMPLICIT, F32_INF, F32_SIGN, F64_DEFAULT_NAN,
  F64_FRAC_MASK, F64_IMPLICIT, RM_RDN, RM_RMM, RM_RNE, RM_RTZ, SF_FLAG_NV, SF_FLAG_NX, f32IsNaN,
  f32IsSignalingNaN, f64IsSignalingNaN, f64IsZero, normalizeRoundPack32, normalizeRoundPack64,
  raiseFlags, shiftRightJam64,
} from "./softfloat-common";
import {
  f32FromExactF64,
} from "./softfloat-f32";

// ---------------------------------------------------------------------------------------------
// Float -> integer conversions

let cvtInexact: bool = false;
let cvtTooLarge: bool = false;

/**
 * Rounds sig * 2^-shift to an integer magnitude with rm. Sets cvtTooLarge when the value
 * cannot fit in 64 bits (sig << maxLeftShift is known to fit) and cvtInexact when the
 * fraction was nonzero.
 */
function roundToIntMagnitude(sign: u64, sig: u64, shift: i32, maxLeftShift: i32, rm: u32): u64 {
  cvtInexact = false;
  cvtTooLarge = false;
  if (shift <= 0) {
    if (-shift > maxLeftShift) {
      cvtTooLarge = true;
      return 0;
    }
    return sig << <u64>(-shift);
  }
  let whole: u64, frac: u64; // frac: the fractional part as a 64-bit fixed-point number
  if (shift < 64) {
    whole = sig >> <u64>shift;
    frac = sig << <u64>(64 - shift);
  } else {
    whole = 0;
    frac = shiftRightJam64(sig, shift - 64);
  }
  if (frac == 0) return whole;
  cvtInexact = true;
  let up: bool;
  if (rm == RM_RNE) up = frac > BIT63 || (frac == BIT63 && (whole & 1) != 0);
  else if (rm == RM_RMM) up = frac >= BIT63;
  else if (rm == RM_RTZ) up = false;
  else if (rm == RM_RDN) up = sign != 0;
  else up = sign == 0;
  return whole + <u64>up;
}

/**
 * Shared tail of all float->integer conversions. Out-of-range values and NaN saturate and raise
 * NV only (no NX): NaN and too-large positives give posLimit, too-large negatives give
 * -negLimit. For unsigned targets negLimit is 0, so a negative value is in range exactly when
 * it rounds to zero. Returns the two's complement result.
 */
function toIntSaturating(isNaN: bool, sign: u64, sig: u64, shift: i32, maxLeftShift: i32, rm: u32, posLimit: u64, negLimit: u64): u64 {
  if (!isNaN) {
    const magnitude = roundToIntMagnitude(sign, sig, shift, maxLeftShift, rm);
    if (!cvtTooLarge && magnitude <= (sign != 0 ? negLimit : posLimit)) {
      if (cvtInexact) raiseFlags(SF_FLAG_NX);
      return sign != 0 ? 0 - magnitude : magnitude;
    }
    raiseFlags(SF_FLAG_NV);
    return sign != 0 ? 0 - negLimit : posLimit;
  }
  raiseFlags(SF_FLAG_NV);
  return posLimit;
}

// Unpacked conversion operand (an infinity keeps its implicit bit and huge exponent, so it
// simply comes out as too large).
let cvtSign: u64 = 0;
let cvtSig: u64 = 0;
let cvtShift: i32 = 0;

/** Unpacks binary64 as value = cvtSig * 2^-cvtShift; returns true for NaN. */
@inline function f64UnpackForInt(a: u64): bool {
  const exp = <i32>(a >> 52) & 0x7ff;
  cvtSign = a >> 63;
  cvtSig = a & F64_FRAC_MASK;
  if (exp != 0) cvtSig |= F64_IMPLICIT;
  cvtShift = 1075 - (exp != 0 ? exp : 1);
  return exp == 0x7ff && (a & F64_FRAC_MASK) != 0;
}

@inline function f32UnpackForInt(a: u32): bool {
  const exp = <i32>(a >> 23) & 0xff;
  cvtSign = <u64>(a >> 31);
  cvtSig = <u64>(a & F32_FRAC_MASK);
  if (exp != 0) cvtSig |= F32_IMPLICIT;
  cvtShift = 150 - (exp != 0 ? exp : 1);
  return exp == 0xff && (a & F32_FRAC_MASK) != 0;
}

export function f64_to_i32(a: u64, rm: u32): i32 {
  const nan = f64UnpackForInt(a);
  return <i32>toIntSaturating(nan, cvtSign, cvtSig, cvtShift, 11, rm, 0x7fffffff, 0x80000000);
}
export function f64_to_u32(a: u64, rm: u32): u32 {
  const nan = f64UnpackForInt(a);
  return <u32>toIntSaturating(nan, cvtSign, cvtSig, cvtShift, 11, rm, 0xffffffff, 0);
}
export function f64_to_i64(a: u64, rm: u32): i64 {
  const nan = f64UnpackForInt(a);
  return <i64>toIntSaturating(nan, cvtSign, cvtSig, cvtShift, 11, rm, 0x7fffffffffffffff, BIT63);
}
export function f64_to_u64(a: u64, rm: u32): u64 {
  const nan = f64UnpackForInt(a);
  return toIntSaturating(nan, cvtSign, cvtSig, cvtShift, 11, rm, 0xffffffffffffffff, 0);
}
export function f32_to_i32(a: u32, rm: u32): i32 {
  const nan = f32UnpackForInt(a);
  return <i32>toIntSaturating(nan, cvtSign, cvtSig, cvtShift, 40, rm, 0x7fffffff, 0x80000000);
}
export function f32_to_u32(a: u32, rm: u32): u32 {
  const nan = f32UnpackForInt(a);
  return <u32>toIntSaturating(nan, cvtSign, cvtSig, cvtShift, 40, rm, 0xffffffff, 0);
}
export function f32_to_i64(a: u32, rm: u32): i64 {
  const nan = f32UnpackForInt(a);
  return <i64>toIntSaturating(nan, cvtSign, cvtSig, cvtShift, 40, rm, 0x7fffffffffffffff, BIT63);
}
export function f32_to_u64(a: u32, rm: u32): u64 {
  const nan = f32UnpackForInt(a);
  return toIntSaturating(nan, cvtSign, cvtSig, cvtShift, 40, rm, 0xffffffffffffffff, 0);
}

// ---------------------------------------------------------------------------------------------
// Integer -> float conversions. A magnitude m is m * 2^(exp - bias - 62) with exp = bias + 62.

export function i32_to_f32(v: i32, rm: u32): u32 {
  if (v == 0) return 0;
  const sign = <u64>(v < 0);
  const magnitude = <u64>(v < 0 ? -<i64>v : <i64>v);
  return normalizeRoundPack32(sign, 189, magnitude, rm);
}
export function u32_to_f32(v: u32, rm: u32): u32 {
  if (v == 0) return 0;
  return normalizeRoundPack32(0, 189, <u64>v, rm);
}
export function i64_to_f32(v: i64, rm: u32): u32 {
  if (v == 0) return 0;
  const sign = <u64>(v < 0);
  const magnitude = v < 0 ? 0 - <u64>v : <u64>v; // also right for -2^63
  return normalizeRoundPack32(sign, 189, magnitude, rm);
}
export function u64_to_f32(v: u64, rm: u32): u32 {
  if (v == 0) return 0;
  return normalizeRoundPack32(0, 189, v, rm);
}
// 32-bit integers are exact in binary64: the native conversion is the answer in every mode.
export function i32_to_f64(v: i32, rm: u32): u64 {
  return reinterpret<u64>(<f64>v);
}
export function u32_to_f64(v: u32, rm: u32): u64 {
  return reinterpret<u64>(<f64>v);
}
export function i64_to_f64(v: i64, rm: u32): u64 {
  if (v == 0) return 0;
  const sign = <u64>(v < 0);
  const magnitude = v < 0 ? 0 - <u64>v : <u64>v;
  return normalizeRoundPack64(sign, 1085, magnitude, rm);
}
export function u64_to_f64(v: u64, rm: u32): u64 {
  if (v == 0) return 0;
  return normalizeRoundPack64(0, 1085, v, rm);
}

// ---------------------------------------------------------------------------------------------
// Float <-> float conversions

/** binary32 -> binary64 is exact; only NaNs need care (NV for signalling, canonical result). */
export function f32_to_f64(a: u32): u64 {
  if (f32IsNaN(a)) {
    if (f32IsSignalingNaN(a)) raiseFlags(SF_FLAG_NV);
    return F64_DEFAULT_NAN;
  }
  // Native promotion of a non-NaN value is exact (subnormals included).
  return reinterpret<u64>(<f64>reinterpret<f32>(a));
}

export function f64_to_f32(a: u64, rm: u32): u32 {
  const exp = <i32>(a >> 52) & 0x7ff;
  const sign = <u32>(a >> 32) & F32_SIGN;
  if (exp == 0x7ff) {
    if ((a & F64_FRAC_MASK) == 0) return sign | F32_INF;
    if (f64IsSignalingNaN(a)) raiseFlags(SF_FLAG_NV);
    return F32_DEFAULT_NAN;
  }
  if (f64IsZero(a)) return sign;
  return f32FromExactF64(reinterpret<f64>(a), rm);
}
