// Software IEEE-754 binary32/binary64 arithmetic for the RISC-V F and D extensions: the shared
// part (exception flags, rounding modes, format constants, NaN handling, wide arithmetic, rounding
// and packing). The operations are in softfloat-f64.ts, -f32.ts, -compare.ts and -convert.ts;
// softfloat.ts exports them all.
//
// WebAssembly's native f32/f64 instructions always round to nearest-even and report no
// exception flags, while RISC-V needs five rounding modes, the accrued fflags bits and a few
// RISC-V specific conventions (canonical NaN results, tininess detected after rounding,
// saturating float->integer conversions). Everything here works on raw bit patterns.
//
// Constraints: this file is compiled into the core with `--runtime stub`, so it must not
// allocate: only primitives, module globals and functions. Globals double as extra return
// values where a helper produces more than one number.
//
// Internal number representation used by the rounding routines (both formats):
//   value = sig * 2^(exp - BIAS - 62)
// where `sig` is a u64 whose leading one normally sits at bit 62 and `exp` is the biased
// exponent the result would have. Bits below the format's precision (10 bits for binary64,
// 39 bits for binary32) are round bits; the lowest bit is "sticky" (jammed: it is set when any
// nonzero bit was shifted out below it), which is all correct rounding needs to know about
// the discarded tail.
//
// Where a native wasm operation is used (promotion, the binary32 product, the quotient and
// square-root estimates, the fast paths), the comment next to it explains why its result is
// exact or how it is verified with integer arithmetic; no result depends on native rounding
// except where native round-to-nearest-even is exactly what was asked for.

// ---------------------------------------------------------------------------------------------
// Exception flags (RISC-V fflags bit layout) and rounding modes (RISC-V frm encoding)

export const SF_FLAG_NX: u32 = 1; // inexact
export const SF_FLAG_UF: u32 = 2; // underflow
export const SF_FLAG_OF: u32 = 4; // overflow
export const SF_FLAG_DZ: u32 = 8; // divide by zero
export const SF_FLAG_NV: u32 = 16; // invalid operation

export const RM_RNE: u32 = 0; // round to nearest, ties to even
export const RM_RTZ: u32 = 1; // round towards zero
export const RM_RDN: u32 = 2; // round down (towards -inf)
export const RM_RUP: u32 = 3; // round up (towards +inf)
export const RM_RMM: u32 = 4; // round to nearest, ties to max magnitude

/** Flags raised since the last sfTakeFlags() call. */
let accruedFlags: u32 = 0;

/** Returns the flags accumulated by the operations since the previous call and clears them. */
export function sfTakeFlags(): u32 {
  const flags = accruedFlags;
  accruedFlags = 0;
  return flags;
}

/** Accrues exception flags: how the operations in the other softfloat files raise them. */
@inline export function raiseFlags(flags: u32): void {
  accruedFlags |= flags;
}

// ---------------------------------------------------------------------------------------------
// Format constants

export const F32_SIGN: u32 = 0x80000000;
export const F32_INF: u32 = 0x7f800000;
export const F32_FRAC_MASK: u32 = 0x007fffff;
export const F32_IMPLICIT: u32 = 0x00800000;
export const F32_QUIET: u32 = 0x00400000;
export const F32_DEFAULT_NAN: u32 = 0x7fc00000;
export const F32_MAX_FINITE: u32 = 0x7f7fffff;

export const F64_SIGN: u64 = 0x8000000000000000;
export const F64_INF: u64 = 0x7ff0000000000000;
export const F64_FRAC_MASK: u64 = 0x000fffffffffffff;
export const F64_IMPLICIT: u64 = 0x0010000000000000;
export const F64_QUIET: u64 = 0x0008000000000000;
export const F64_DEFAULT_NAN: u64 = 0x7ff8000000000000;
export const F64_MAX_FINITE: u64 = 0x7fefffffffffffff;

// binary32 keeps 24 significant bits of the 63-bit working significand: 39 round bits.
export const F32_ROUND_MASK: u64 = 0x7fffffffff; // 2^39 - 1
export const F32_ROUND_HALF: u64 = 0x4000000000; // 2^38
// binary64 keeps 53 significant bits: 10 round bits.
export const F64_ROUND_MASK: u64 = 0x3ff;
export const F64_ROUND_HALF: u64 = 0x200;

export const BIT63: u64 = 0x8000000000000000;

// ---------------------------------------------------------------------------------------------
// Classification helpers

@inline export function f32IsNaN(a: u32): bool {
  return (a & ~F32_SIGN) > F32_INF;
}
@inline export function f32IsSignalingNaN(a: u32): bool {
  // Exponent all ones, quiet bit clear, remaining fraction nonzero (else it is an infinity).
  return (a & 0x7fc00000) == 0x7f800000 && (a & 0x003fffff) != 0;
}
@inline export function f32IsZero(a: u32): bool {
  return (a << 1) == 0;
}
@inline export function f64IsNaN(a: u64): bool {
  return (a & ~F64_SIGN) > F64_INF;
}
@inline export function f64IsSignalingNaN(a: u64): bool {
  return (a & 0x7ff8000000000000) == 0x7ff0000000000000 && (a & 0x0007ffffffffffff) != 0;
}
@inline export function f64IsZero(a: u64): bool {
  return (a << 1) == 0;
}

/** Result of an invalid operation or any NaN input: RISC-V always returns the canonical NaN. */
@inline export function f32InvalidNaN(): u32 {
  accruedFlags |= SF_FLAG_NV;
  return F32_DEFAULT_NAN;
}
@inline export function f64InvalidNaN(): u64 {
  accruedFlags |= SF_FLAG_NV;
  return F64_DEFAULT_NAN;
}

/** NaN propagation for two operands: NV only if one of them is signalling. */
@inline export function f32PropagateNaN(a: u32, b: u32): u32 {
  if (f32IsSignalingNaN(a) || f32IsSignalingNaN(b)) accruedFlags |= SF_FLAG_NV;
  return F32_DEFAULT_NAN;
}
@inline export function f64PropagateNaN(a: u64, b: u64): u64 {
  if (f64IsSignalingNaN(a) || f64IsSignalingNaN(b)) accruedFlags |= SF_FLAG_NV;
  return F64_DEFAULT_NAN;
}

// ---------------------------------------------------------------------------------------------
// Integer helpers

/**
 * Shifts right by n, OR-ing every bit shifted out into bit 0 ("jamming"), so the result still
 * tells whether the discarded tail was nonzero. Handles n >= 64 explicitly because wasm masks
 * shift counts to 6 bits.
 */
@inline export function shiftRightJam64(x: u64, n: i32): u64 {
  if (n <= 0) return x;
  if (n < 64) return (x >> <u64>n) | <u64>((x << <u64>(64 - n)) != 0);
  return <u64>(x != 0);
}

// Second return value of the 128-bit helpers (low or high half, see each function).
export let wideLo: u64 = 0;

/** Full 64x64 -> 128-bit product from four 32x32 -> 64 partial products; returns the high half, low half in wideLo. */
export function mul64To128(a: u64, b: u64): u64 {
  const aLo = a & 0xffffffff, aHi = a >> 32;
  const bLo = b & 0xffffffff, bHi = b >> 32;
  const p0 = aLo * bLo;
  const p1 = aLo * bHi;
  const p2 = aHi * bLo;
  const p3 = aHi * bHi;
  // Column of weight 2^32: at most three 32-bit quantities, so it cannot overflow 64 bits.
  const mid = (p0 >> 32) + (p1 & 0xffffffff) + (p2 & 0xffffffff);
  wideLo = (mid << 32) | (p0 & 0xffffffff);
  return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}

/** shiftRightJam64 for a 128-bit value hi:lo; returns the high half, low half in wideLo. */
export function shiftRightJam128(hi: u64, lo: u64, n: i32): u64 {
  if (n <= 0) {
    wideLo = lo;
    return hi;
  }
  if (n < 64) {
    const lost = lo << <u64>(64 - n);
    wideLo = (lo >> <u64>n) | (hi << <u64>(64 - n)) | <u64>(lost != 0);
    return hi >> <u64>n;
  }
  if (n == 64) {
    wideLo = hi | <u64>(lo != 0);
    return 0;
  }
  if (n < 128) {
    const lost = (hi << <u64>(128 - n)) | lo;
    wideLo = (hi >> <u64>(n - 64)) | <u64>(lost != 0);
    return 0;
  }
  wideLo = <u64>((hi | lo) != 0);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Rounding

/**
 * The amount added to the round bits before truncation: half an ulp for the two
 * round-to-nearest modes, an ulp minus one unit when rounding away from zero, zero when
 * rounding towards zero. Ties-to-even is finished by clearing the lsb after the add.
 */
@inline export function roundIncrement(sign: u64, rm: u32, half: u64, mask: u64): u64 {
  if (rm == RM_RNE || rm == RM_RMM) return half;
  if (rm == RM_RTZ) return 0;
  if (rm == RM_RDN) return sign != 0 ? mask : 0;
  return sign != 0 ? 0 : mask; // RM_RUP
}

/**
 * Rounds sig * 2^(exp - 1023 - 62) (leading one of sig at bit 62) to binary64 and packs it,
 * raising NX/UF/OF. Tininess is detected after rounding, as RISC-V requires: a result is tiny
 * when rounding it to 53 bits with an unbounded exponent would still leave it below 2^-1022.
 */
export function roundPack64(sign: u64, exp: i32, sig: u64, rm: u32): u64 {
  const signBit = sign << 63;
  const increment = roundIncrement(sign, rm, F64_ROUND_HALF, F64_ROUND_MASK);
  if (<u32>(exp - 1) >= 0x7fd) {
    // exp <= 0 (subnormal range) or exp >= 0x7fe (may overflow).
    if (exp <= 0) {
      // With exp == 0 the value lies in [2^-1023, 2^-1022); it escapes tininess only if
      // rounding at full precision carries into bit 63, i.e. reaches 2^-1022.
      const tiny = exp < 0 || sig + increment < BIT63;
      // Re-express with exp = 1 (the subnormal exponent): the significand loses 1 - exp bits.
      sig = shiftRightJam64(sig, 1 - exp);
      exp = 1;
      if (tiny && (sig & F64_ROUND_MASK) != 0) accruedFlags |= SF_FLAG_UF;
    } else if (exp > 0x7fe || sig + increment >= BIT63) {
      // Too large, or the largest binade rounding up past the maximum finite value.
      // Modes that round this sign away from zero give infinity, the others the max finite.
      accruedFlags |= SF_FLAG_OF | SF_FLAG_NX;
      return signBit | (increment != 0 ? F64_INF : F64_MAX_FINITE);
    }
  }
  const roundBits = sig & F64_ROUND_MASK;
  if (roundBits != 0) accruedFlags |= SF_FLAG_NX;
  let rounded = (sig + increment) >> 10;
  // Exact tie under RNE: the add rounded up, make the result even instead.
  if (roundBits == F64_ROUND_HALF && rm == RM_RNE) rounded &= ~(<u64>1);
  // The leading one (bit 52 of `rounded`, or bit 53 after a carry) lands in the exponent
  // field and adds the 1 that `exp - 1` leaves out; a subnormal that rounds up to 2^-1022
  // becomes the smallest normal number the same way.
  return signBit | ((<u64>(exp - 1) << 52) + rounded);
}

/** roundPack64 for a significand whose leading one may be anywhere (sig != 0). */
export function normalizeRoundPack64(sign: u64, exp: i32, sig: u64, rm: u32): u64 {
  const lz = <i32>clz(sig);
  if (lz == 0) {
    sig = (sig >> 1) | (sig & 1);
    exp += 1;
  } else {
    sig <<= <u64>(lz - 1);
    exp -= lz - 1;
  }
  return roundPack64(sign, exp, sig, rm);
}

/** binary32 counterpart of roundPack64: value = sig * 2^(exp - 127 - 62), leading one at bit 62. */
export function roundPack32(sign: u64, exp: i32, sig: u64, rm: u32): u32 {
  const signBit = <u32>sign << 31;
  const increment = roundIncrement(sign, rm, F32_ROUND_HALF, F32_ROUND_MASK);
  if (<u32>(exp - 1) >= 0xfd) {
    if (exp <= 0) {
      const tiny = exp < 0 || sig + increment < BIT63;
      sig = shiftRightJam64(sig, 1 - exp);
      exp = 1;
      if (tiny && (sig & F32_ROUND_MASK) != 0) accruedFlags |= SF_FLAG_UF;
    } else if (exp > 0xfe || sig + increment >= BIT63) {
      accruedFlags |= SF_FLAG_OF | SF_FLAG_NX;
      return signBit | (increment != 0 ? F32_INF : F32_MAX_FINITE);
    }
  }
  const roundBits = sig & F32_ROUND_MASK;
  if (roundBits != 0) accruedFlags |= SF_FLAG_NX;
  let rounded = <u32>((sig + increment) >> 39);
  if (roundBits == F32_ROUND_HALF && rm == RM_RNE) rounded &= ~(<u32>1);
  return signBit | ((<u32>(exp - 1) << 23) + rounded);
}

export function normalizeRoundPack32(sign: u64, exp: i32, sig: u64, rm: u32): u32 {
  const lz = <i32>clz(sig);
  if (lz == 0) {
    sig = (sig >> 1) | (sig & 1);
    exp += 1;
  } else {
    sig <<= <u64>(lz - 1);
    exp -= lz - 1;
  }
  return roundPack32(sign, exp, sig, rm);
}

// Exponent produced by the subnormal normalizers below.
export let normExp: i32 = 0;

/** Significand of a nonzero subnormal binary64 (fraction field) shifted so its leading one is at bit 52; exponent in normExp. */
@inline export function f64NormalizeSubnormal(frac: u64): u64 {
  const shift = <i32>clz(frac) - 11;
  normExp = 1 - shift;
  return frac << <u64>shift;
}

/** Same for binary32: leading one moved to bit 23 (as a u64). */
@inline export function f32NormalizeSubnormal(frac: u64): u64 {
  const shift = <i32>clz(frac) - 40;
  normExp = 1 - shift;
  return frac << <u64>shift;
}

