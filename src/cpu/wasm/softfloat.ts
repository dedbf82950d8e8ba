// Software IEEE-754 binary32/binary64 arithmetic for the RISC-V F and D extensions.
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

const RM_RNE: u32 = 0; // round to nearest, ties to even
const RM_RTZ: u32 = 1; // round towards zero
const RM_RDN: u32 = 2; // round down (towards -inf)
const RM_RUP: u32 = 3; // round up (towards +inf)
const RM_RMM: u32 = 4; // round to nearest, ties to max magnitude

/** Flags raised since the last sfTakeFlags() call. */
let accruedFlags: u32 = 0;

/** Returns the flags accumulated by the operations since the previous call and clears them. */
export function sfTakeFlags(): u32 {
  const flags = accruedFlags;
  accruedFlags = 0;
  return flags;
}

// ---------------------------------------------------------------------------------------------
// Format constants

const F32_SIGN: u32 = 0x80000000;
const F32_INF: u32 = 0x7f800000;
const F32_FRAC_MASK: u32 = 0x007fffff;
const F32_IMPLICIT: u32 = 0x00800000;
const F32_QUIET: u32 = 0x00400000;
const F32_DEFAULT_NAN: u32 = 0x7fc00000;
const F32_MAX_FINITE: u32 = 0x7f7fffff;

const F64_SIGN: u64 = 0x8000000000000000;
const F64_INF: u64 = 0x7ff0000000000000;
const F64_FRAC_MASK: u64 = 0x000fffffffffffff;
const F64_IMPLICIT: u64 = 0x0010000000000000;
const F64_QUIET: u64 = 0x0008000000000000;
const F64_DEFAULT_NAN: u64 = 0x7ff8000000000000;
const F64_MAX_FINITE: u64 = 0x7fefffffffffffff;

// binary32 keeps 24 significant bits of the 63-bit working significand: 39 round bits.
const F32_ROUND_MASK: u64 = 0x7fffffffff; // 2^39 - 1
const F32_ROUND_HALF: u64 = 0x4000000000; // 2^38
// binary64 keeps 53 significant bits: 10 round bits.
const F64_ROUND_MASK: u64 = 0x3ff;
const F64_ROUND_HALF: u64 = 0x200;

const BIT63: u64 = 0x8000000000000000;

// ---------------------------------------------------------------------------------------------
// Classification helpers

@inline function f32IsNaN(a: u32): bool {
  return (a & ~F32_SIGN) > F32_INF;
}
@inline function f32IsSignalingNaN(a: u32): bool {
  // Exponent all ones, quiet bit clear, remaining fraction nonzero (else it is an infinity).
  return (a & 0x7fc00000) == 0x7f800000 && (a & 0x003fffff) != 0;
}
@inline function f32IsZero(a: u32): bool {
  return (a << 1) == 0;
}
@inline function f64IsNaN(a: u64): bool {
  return (a & ~F64_SIGN) > F64_INF;
}
@inline function f64IsSignalingNaN(a: u64): bool {
  return (a & 0x7ff8000000000000) == 0x7ff0000000000000 && (a & 0x0007ffffffffffff) != 0;
}
@inline function f64IsZero(a: u64): bool {
  return (a << 1) == 0;
}

/** Result of an invalid operation or any NaN input: RISC-V always returns the canonical NaN. */
@inline function f32InvalidNaN(): u32 {
  accruedFlags |= SF_FLAG_NV;
  return F32_DEFAULT_NAN;
}
@inline function f64InvalidNaN(): u64 {
  accruedFlags |= SF_FLAG_NV;
  return F64_DEFAULT_NAN;
}

/** NaN propagation for two operands: NV only if one of them is signalling. */
@inline function f32PropagateNaN(a: u32, b: u32): u32 {
  if (f32IsSignalingNaN(a) || f32IsSignalingNaN(b)) accruedFlags |= SF_FLAG_NV;
  return F32_DEFAULT_NAN;
}
@inline function f64PropagateNaN(a: u64, b: u64): u64 {
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
@inline function shiftRightJam64(x: u64, n: i32): u64 {
  if (n <= 0) return x;
  if (n < 64) return (x >> <u64>n) | <u64>((x << <u64>(64 - n)) != 0);
  return <u64>(x != 0);
}

// Second return value of the 128-bit helpers (low or high half, see each function).
let wideLo: u64 = 0;

/** Full 64x64 -> 128-bit product from four 32x32 -> 64 partial products; returns the high half, low half in wideLo. */
function mul64To128(a: u64, b: u64): u64 {
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
function shiftRightJam128(hi: u64, lo: u64, n: i32): u64 {
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
@inline function roundIncrement(sign: u64, rm: u32, half: u64, mask: u64): u64 {
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
function roundPack64(sign: u64, exp: i32, sig: u64, rm: u32): u64 {
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
function normalizeRoundPack64(sign: u64, exp: i32, sig: u64, rm: u32): u64 {
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
function roundPack32(sign: u64, exp: i32, sig: u64, rm: u32): u32 {
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

function normalizeRoundPack32(sign: u64, exp: i32, sig: u64, rm: u32): u32 {
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
let normExp: i32 = 0;

/** Significand of a nonzero subnormal binary64 (fraction field) shifted so its leading one is at bit 52; exponent in normExp. */
@inline function f64NormalizeSubnormal(frac: u64): u64 {
  const shift = <i32>clz(frac) - 11;
  normExp = 1 - shift;
  return frac << <u64>shift;
}

/** Same for binary32: leading one moved to bit 23 (as a u64). */
@inline function f32NormalizeSubnormal(frac: u64): u64 {
  const shift = <i32>clz(frac) - 40;
  normExp = 1 - shift;
  return frac << <u64>shift;
}

// ---------------------------------------------------------------------------------------------
// binary64 arithmetic

function f64AddSpecial(a: u64, b: u64): u64 {
  if (f64IsNaN(a) || f64IsNaN(b)) return f64PropagateNaN(a, b);
  const aInf = (a & ~F64_SIGN) == F64_INF;
  const bInf = (b & ~F64_SIGN) == F64_INF;
  if (aInf && bInf && ((a ^ b) >> 63) != 0) return f64InvalidNaN(); // inf - inf
  return aInf ? a : b;
}

export function f64_add(a: u64, b: u64, rm: u32): u64 {
  const expA = <i32>(a >> 52) & 0x7ff;
  const expB = <i32>(b >> 52) & 0x7ff;

  // Fast path: both operands finite with magnitude below 2^1022 (zeros and subnormals
  // included), so neither the sum nor any intermediate below can overflow. The native sum is
  // the correctly rounded RNE result, and Knuth's TwoSum recovers its exact rounding error
  // (error-free under round-to-nearest without overflow; additions never lose bits to
  // underflow). An exact sum is the answer in every rounding mode, except that an exact zero
  // from opposite signs must be -0 under RDN, which the slow path handles.
  if (expA <= 0x7fc && expB <= 0x7fc) {
    const x = reinterpret<f64>(a);
    const y = reinterpret<f64>(b);
    const sum = x + y;
    const yPart = sum - x;
    const xPart = sum - yPart;
    const error = (x - xPart) + (y - yPart);
    if (error == 0) {
      if (sum != 0 || rm != RM_RDN) return reinterpret<u64>(sum);
    } else if (rm == RM_RNE) {
      accruedFlags |= SF_FLAG_NX;
      return reinterpret<u64>(sum);
    }
  }

  if (expA == 0x7ff || expB == 0x7ff) return f64AddSpecial(a, b);

  let signA = a >> 63;
  const signB = b >> 63;
  // Significands with the leading one at bit 61 (bit 62 stays free for a carry); the 9 zero
  // bits below the fraction are guard bits. Subnormals use exponent 1 without implicit bit.
  let sigA = a & F64_FRAC_MASK;
  let sigB = b & F64_FRAC_MASK;
  let eA = expA, eB = expB;
  if (eA != 0) sigA |= F64_IMPLICIT;
  else eA = 1;
  if (eB != 0) sigB |= F64_IMPLICIT;
  else eB = 1;
  sigA <<= 9;
  sigB <<= 9;

  // Make A the operand of larger magnitude so the result takes its exponent (and, for a
  // subtraction, its sign).
  if (eA < eB || (eA == eB && sigA < sigB)) {
    const ts = sigA; sigA = sigB; sigB = ts;
    const te = eA; eA = eB; eB = te;
    signA = signB;
  }
  // Aligning B loses bits only when the exponents differ by more than the 9 guard bits; then
  // at most one bit cancels, so the jammed sticky bit stays far below the rounding position.
  sigB = shiftRightJam64(sigB, eA - eB);
  if (((a ^ b) >> 63) == 0) {
    const sum = sigA + sigB;
    if (sum == 0) return signA << 63; // (+0) + (+0) or (-0) + (-0)
    return normalizeRoundPack64(signA, eA + 1, sum, rm);
  }
  const diff = sigA - sigB;
  // Exact cancellation: +0, except -0 when rounding down (IEEE 754 6.3).
  if (diff == 0) return rm == RM_RDN ? F64_SIGN : 0;
  return normalizeRoundPack64(signA, eA + 1, diff, rm);
}

export function f64_sub(a: u64, b: u64, rm: u32): u64 {
  // Flipping the sign of a NaN is harmless: every NaN result is canonical anyway.
  return f64_add(a, b ^ F64_SIGN, rm);
}

export function f64_mul(a: u64, b: u64, rm: u32): u64 {
  const expA = <i32>(a >> 52) & 0x7ff;
  const expB = <i32>(b >> 52) & 0x7ff;

  // Fast path: both operands normal with magnitudes in [2^-510, 2^511), so the product lies
  // in [2^-1020, 2^1022): always normal, never overflows. The native product is the RNE
  // result; it is exact iff the product of the two significands, stripped of trailing zeros
  // (odd * odd = odd), fits in 53 bits. Bit lengths la, lb give a product of la+lb-1 or la+lb
  // bits; only la+lb == 54 needs the actual (at most 54-bit) multiplication.
  if (<u32>(expA - 513) <= 1020 && <u32>(expB - 513) <= 1020) {
    const sigA = (a & F64_FRAC_MASK) | F64_IMPLICIT;
    const sigB = (b & F64_FRAC_MASK) | F64_IMPLICIT;
    const oddA = sigA >> ctz(sigA);
    const oddB = sigB >> ctz(sigB);
    const bits = <i32>(128 - clz(oddA) - clz(oddB));
    const product = reinterpret<u64>(reinterpret<f64>(a) * reinterpret<f64>(b));
    if (bits <= 53 || (bits == 54 && oddA * oddB < F64_IMPLICIT << 1)) return product;
    if (rm == RM_RNE) {
      accruedFlags |= SF_FLAG_NX;
      return product;
    }
  }

  const sign = (a ^ b) >> 63;
  if (expA == 0x7ff || expB == 0x7ff) {
    if (f64IsNaN(a) || f64IsNaN(b)) return f64PropagateNaN(a, b);
    if (f64IsZero(a) || f64IsZero(b)) return f64InvalidNaN(); // inf * 0
    return (sign << 63) | F64_INF;
  }
  if (f64IsZero(a) || f64IsZero(b)) return sign << 63;
  return f64MulFinite(sign, a, b, rm);
}

/** Product of two finite nonzero binary64 values, rounded. */
function f64MulFinite(sign: u64, a: u64, b: u64, rm: u32): u64 {
  let eA = <i32>(a >> 52) & 0x7ff;
  let eB = <i32>(b >> 52) & 0x7ff;
  let sigA = a & F64_FRAC_MASK;
  let sigB = b & F64_FRAC_MASK;
  if (eA == 0) {
    sigA = f64NormalizeSubnormal(sigA);
    eA = normExp;
  } else sigA |= F64_IMPLICIT;
  if (eB == 0) {
    sigB = f64NormalizeSubnormal(sigB);
    eB = normExp;
  } else sigB |= F64_IMPLICIT;
  // (sigA << 10) * (sigB << 11) lies in [2^125, 2^127): the high half has its leading one at
  // bit 61 or 62 and the low half only matters as sticky information.
  const hi = mul64To128(sigA << 10, sigB << 11);
  const sig = hi | <u64>(wideLo != 0);
  return normalizeRoundPack64(sign, eA + eB - 1022, sig, rm);
}

export function f64_div(a: u64, b: u64, rm: u32): u64 {
  let eA = <i32>(a >> 52) & 0x7ff;
  let eB = <i32>(b >> 52) & 0x7ff;
  const sign = (a ^ b) >> 63;
  if (eA == 0x7ff || eB == 0x7ff) {
    if (f64IsNaN(a) || f64IsNaN(b)) return f64PropagateNaN(a, b);
    if (eA == 0x7ff) {
      if (eB == 0x7ff) return f64InvalidNaN(); // inf / inf
      return (sign << 63) | F64_INF; // inf / finite (even / 0: no DZ for an infinite dividend)
    }
    return sign << 63; // finite / inf
  }
  if (f64IsZero(b)) {
    if (f64IsZero(a)) return f64InvalidNaN(); // 0 / 0
    accruedFlags |= SF_FLAG_DZ;
    return (sign << 63) | F64_INF;
  }
  if (f64IsZero(a)) return sign << 63;

  let sigA = a & F64_FRAC_MASK;
  let sigB = b & F64_FRAC_MASK;
  if (eA == 0) {
    sigA = f64NormalizeSubnormal(sigA);
    eA = normExp;
  } else sigA |= F64_IMPLICIT;
  if (eB == 0) {
    sigB = f64NormalizeSubnormal(sigB);
    eB = normExp;
  } else sigB |= F64_IMPLICIT;
  // Scale so the quotient x = sigA / sigB lies in [1, 2).
  if (sigA < sigB) {
    sigA <<= 1;
    eA -= 1;
  }
  // The native division of these exactly representable integers is x correctly rounded to
  // 53 bits (IEEE division is correctly rounded). Q = that result * 2^52 is an integer in
  // [2^52, 2^53] with |x * 2^52 - Q| <= 1/2. The remainder R = sigA * 2^52 - Q * sigB is then
  // smaller than sigB < 2^53 in magnitude, so computing it modulo 2^64 is exact, and its sign
  // says on which side of Q the true quotient lies. The quotient of two 53-bit integers is
  // never exactly halfway between two 53-bit values (that would need an odd multiple of
  // sigB's odd part to equal an even number), so Q plus that direction determines the
  // rounding at this or any coarser (subnormal) position.
  const quotient = <f64>sigA / <f64>sigB;
  const q = <u64>(quotient * 4503599627370496.0); // * 2^52, exact
  const remainder = <i64>((sigA << 52) - q * sigB);
  let sig = q << 9; // leading one at bit 61 (bit 62 if the quotient rounded up to 2)
  if (remainder > 0) sig |= 1; // true quotient slightly above q: sticky
  else if (remainder < 0) sig -= 1; // slightly below: all ones under q's last bit
  return normalizeRoundPack64(sign, eA - eB + 1024, sig, rm);
}

export function f64_sqrt(a: u64, rm: u32): u64 {
  let eA = <i32>(a >> 52) & 0x7ff;
  if (f64IsNaN(a)) {
    if (f64IsSignalingNaN(a)) accruedFlags |= SF_FLAG_NV;
    return F64_DEFAULT_NAN;
  }
  if (f64IsZero(a)) return a; // sqrt(+-0) = +-0
  if ((a >> 63) != 0) return f64InvalidNaN(); // negative, including -inf
  if (eA == 0x7ff) return a; // +inf

  let sigA = a & F64_FRAC_MASK;
  if (eA == 0) {
    sigA = f64NormalizeSubnormal(sigA);
    eA = normExp;
  } else sigA |= F64_IMPLICIT;
  // value = sigA * 2^(E - 52). Write it as X * 2^(2 * half) with X = sigA * 2^(52 or 53) in
  // [2^104, 2^106), choosing the shift that makes the exponent even; sqrt(X) is in [2^52, 2^53).
  const unbiased = eA - 1023;
  const odd = unbiased & 1;
  const half = (unbiased - odd - 104) >> 1;
  // Native sqrt of the exactly representable X is sqrt(X) correctly rounded to 53 bits, an
  // integer q in [2^52, 2^53]; |sqrt(X) - q| <= 1/2, so |X - q^2| < 2^54: the remainder is
  // exact modulo 2^64 and its sign gives the direction. Square roots are never exactly
  // halfway cases, so as for division q plus the direction determines every rounding.
  const root = sqrt<f64>(<f64>sigA * (odd != 0 ? 9007199254740992.0 : 4503599627370496.0));
  const q = <u64>root;
  const remainder = <i64>((sigA << <u64>(52 + odd)) - q * q);
  let sig = q << 9;
  if (remainder > 0) sig |= 1;
  else if (remainder < 0) sig -= 1;
  return normalizeRoundPack64(0, half + 1076, sig, rm);
}

/** a * b + c with a single rounding. */
export function f64_mulAdd(a: u64, b: u64, c: u64, rm: u32): u64 {
  let eA = <i32>(a >> 52) & 0x7ff;
  let eB = <i32>(b >> 52) & 0x7ff;
  let eC = <i32>(c >> 52) & 0x7ff;
  const signP = (a ^ b) >> 63;
  const signC = c >> 63;

  if (eA == 0x7ff || eB == 0x7ff || eC == 0x7ff) {
    const aNaN = f64IsNaN(a), bNaN = f64IsNaN(b);
    // inf * 0 is invalid even when the addend is a quiet NaN (RISC-V, IEEE 754 7.2).
    const infTimesZero =
      (!aNaN && !bNaN) &&
      ((eA == 0x7ff && f64IsZero(b)) || (eB == 0x7ff && f64IsZero(a)));
    if (aNaN || bNaN || f64IsNaN(c)) {
      if (infTimesZero || f64IsSignalingNaN(a) || f64IsSignalingNaN(b) || f64IsSignalingNaN(c)) {
        accruedFlags |= SF_FLAG_NV;
      }
      return F64_DEFAULT_NAN;
    }
    if (infTimesZero) return f64InvalidNaN();
    if (eA == 0x7ff || eB == 0x7ff) {
      if (eC == 0x7ff && signC != signP) return f64InvalidNaN(); // inf - inf
      return (signP << 63) | F64_INF;
    }
    return c; // finite product + inf
  }

  if (f64IsZero(a) || f64IsZero(b)) {
    // The product is an exact zero: the result is c, except that zero plus zero follows the
    // signed-zero rules of addition.
    if (f64IsZero(c)) {
      if (signP == signC) return c;
      return rm == RM_RDN ? F64_SIGN : 0;
    }
    return c;
  }
  // Adding a zero changes nothing: the correctly rounded product keeps its own sign.
  if (f64IsZero(c)) return f64MulFinite(signP, a, b, rm);

  let sigA = a & F64_FRAC_MASK;
  let sigB = b & F64_FRAC_MASK;
  let sigC = c & F64_FRAC_MASK;
  if (eA == 0) {
    sigA = f64NormalizeSubnormal(sigA);
    eA = normExp;
  } else sigA |= F64_IMPLICIT;
  if (eB == 0) {
    sigB = f64NormalizeSubnormal(sigB);
    eB = normExp;
  } else sigB |= F64_IMPLICIT;
  if (eC == 0) {
    sigC = f64NormalizeSubnormal(sigC);
    eC = normExp;
  } else sigC |= F64_IMPLICIT;

  // 128-bit values, value = X * 2^(e - 1023 - 124):
  //  product P = (sigA << 10) * (sigB << 10) in [2^124, 2^126), exact, e = eA + eB - 1023;
  //  addend  C = sigC << 72, leading one at bit 124, e = eC.
  // The sum stays below 2^127. The operand with the smaller exponent is shifted right with
  // jamming; it only loses bits when shifted beyond its trailing zeros (20 for P, 72 for C),
  // and then the two are far enough apart that at most one bit cancels.
  let pHi = mul64To128(sigA << 10, sigB << 10);
  let pLo = wideLo;
  let cHi = sigC << 8;
  let cLo: u64 = 0;
  let exp = eA + eB - 1023;
  if (exp >= eC) {
    cHi = shiftRightJam128(cHi, cLo, exp - eC);
    cLo = wideLo;
  } else {
    pHi = shiftRightJam128(pHi, pLo, eC - exp);
    pLo = wideLo;
    exp = eC;
  }

  let sign = signP;
  let rHi: u64, rLo: u64;
  if (signP == signC) {
    rLo = pLo + cLo;
    rHi = pHi + cHi + <u64>(rLo < pLo);
  } else if (pHi > cHi || (pHi == cHi && pLo >= cLo)) {
    rLo = pLo - cLo;
    rHi = pHi - cHi - <u64>(pLo < cLo);
  } else {
    rLo = cLo - pLo;
    rHi = cHi - pHi - <u64>(cLo < pLo);
    sign = signC;
  }
  if ((rHi | rLo) == 0) return rm == RM_RDN ? F64_SIGN : 0; // exact cancellation

  // Move the leading one to bit 126 (bit 62 of the high half) and fold the low half into a
  // sticky bit; the high half then follows the usual convention with exponent exp + 2.
  const lz = rHi != 0 ? <i32>clz(rHi) : 64 + <i32>clz(rLo);
  const shift = lz - 1; // >= 0 because the sum is below 2^127
  if (shift >= 64) {
    rHi = rLo << <u64>(shift - 64);
    rLo = 0;
  } else if (shift > 0) {
    rHi = (rHi << <u64>shift) | (rLo >> <u64>(64 - shift));
    rLo <<= <u64>shift;
  }
  return roundPack64(sign, exp + 2 - shift, rHi | <u64>(rLo != 0), rm);
}

// ---------------------------------------------------------------------------------------------
// binary32 arithmetic

function f32AddSpecial(a: u32, b: u32): u32 {
  if (f32IsNaN(a) || f32IsNaN(b)) return f32PropagateNaN(a, b);
  const aInf = (a & ~F32_SIGN) == F32_INF;
  const bInf = (b & ~F32_SIGN) == F32_INF;
  if (aInf && bInf && ((a ^ b) >> 31) != 0) return f32InvalidNaN();
  return aInf ? a : b;
}

export function f32_add(a: u32, b: u32, rm: u32): u32 {
  const expA = <i32>(a >> 23) & 0xff;
  const expB = <i32>(b >> 23) & 0xff;
  if (expA == 0xff || expB == 0xff) return f32AddSpecial(a, b);

  // Fast path: with significands A, B < 2^24 and exponent fields d <= 29 apart (subnormals
  // read as 1), the exact sum is A * 2^d +- B times a power of two, and
  // (2^24 - 1) * 2^29 + 2^24 < 2^53: the native binary64 sum is exact and only needs rounding
  // to binary32. A zero sum goes to the general path for its sign rules.
  const gap = (expA != 0 ? expA : 1) - (expB != 0 ? expB : 1);
  if (<u32>(gap + 29) <= 58) {
    const sum = <f64>reinterpret<f32>(a) + <f64>reinterpret<f32>(b);
    if (sum != 0) return f32FromExactF64(sum, rm);
  }

  // Same algorithm as the binary64 slow path, in a u64 with the leading one at bit 61
  // (38 guard bits below the fraction).
  let signA = <u64>(a >> 31);
  const signB = <u64>(b >> 31);
  let sigA = <u64>(a & F32_FRAC_MASK);
  let sigB = <u64>(b & F32_FRAC_MASK);
  let eA = expA, eB = expB;
  if (eA != 0) sigA |= F32_IMPLICIT;
  else eA = 1;
  if (eB != 0) sigB |= F32_IMPLICIT;
  else eB = 1;
  sigA <<= 38;
  sigB <<= 38;
  if (eA < eB || (eA == eB && sigA < sigB)) {
    const ts = sigA; sigA = sigB; sigB = ts;
    const te = eA; eA = eB; eB = te;
    signA = signB;
  }
  sigB = shiftRightJam64(sigB, eA - eB);
  if (((a ^ b) >> 31) == 0) {
    const sum = sigA + sigB;
    if (sum == 0) return <u32>signA << 31;
    return normalizeRoundPack32(signA, eA + 1, sum, rm);
  }
  const diff = sigA - sigB;
  if (diff == 0) return rm == RM_RDN ? F32_SIGN : 0;
  return normalizeRoundPack32(signA, eA + 1, diff, rm);
}

export function f32_sub(a: u32, b: u32, rm: u32): u32 {
  return f32_add(a, b ^ F32_SIGN, rm);
}

/** Rounds a finite nonzero binary64 value to binary32 (shared by f32_mul and f64_to_f32). */
function f64BitsToF32(a: u64, rm: u32): u32 {
  const exp = <i32>(a >> 52) & 0x7ff;
  let sig = a & F64_FRAC_MASK;
  let e = 1;
  if (exp != 0) {
    sig |= F64_IMPLICIT;
    e = exp;
  }
  // Rebias 1023 -> 127 and move the leading one from bit 52 to bit 62.
  return normalizeRoundPack32(a >> 63, e - 896, sig << 10, rm);
}

/**
 * Rounds a finite nonzero binary64 value that holds an exact result to binary32.
 * Fast path: if the value lies in binary32's normal range below the top binade, rounding can
 * neither overflow nor produce a tiny result, so the only flag is NX. The value is exact in
 * binary32 when its 29 extra fraction bits are zero (then every mode agrees); otherwise
 * native demotion is the correctly rounded RNE result (a single rounding, since x is exact).
 */
@inline function f32FromExactF64(x: f64, rm: u32): u32 {
  const bits = reinterpret<u64>(x);
  const exp = <u32>(bits >> 52) & 0x7ff;
  if (exp - 897 < 253) {
    // binary32 biased exponent exp - 896 in [1, 253]
    if ((bits & 0x1fffffff) == 0) return reinterpret<u32>(<f32>x);
    if (rm == RM_RNE) {
      accruedFlags |= SF_FLAG_NX;
      return reinterpret<u32>(<f32>x);
    }
  }
  return f64BitsToF32(bits, rm);
}

export function f32_mul(a: u32, b: u32, rm: u32): u32 {
  const expA = <i32>(a >> 23) & 0xff;
  const expB = <i32>(b >> 23) & 0xff;
  const sign = (a ^ b) & F32_SIGN;
  if (expA == 0xff || expB == 0xff) {
    if (f32IsNaN(a) || f32IsNaN(b)) return f32PropagateNaN(a, b);
    if (f32IsZero(a) || f32IsZero(b)) return f32InvalidNaN(); // inf * 0
    return sign | F32_INF;
  }
  if (f32IsZero(a) || f32IsZero(b)) return sign;
  // Promotion to binary64 is exact, and so is the product: 24 x 24 = 48 significant bits
  // within binary64's 53, with magnitude in [2^-298, 2^256], inside binary64's normal range.
  // Rounding that exact product to binary32 is then the correctly rounded result.
  return f32FromExactF64(<f64>reinterpret<f32>(a) * <f64>reinterpret<f32>(b), rm);
}

export function f32_div(a: u32, b: u32, rm: u32): u32 {
  let eA = <i32>(a >> 23) & 0xff;
  let eB = <i32>(b >> 23) & 0xff;
  const sign = (a ^ b) & F32_SIGN;
  if (eA == 0xff || eB == 0xff) {
    if (f32IsNaN(a) || f32IsNaN(b)) return f32PropagateNaN(a, b);
    if (eA == 0xff) {
      if (eB == 0xff) return f32InvalidNaN();
      return sign | F32_INF;
    }
    return sign;
  }
  if (f32IsZero(b)) {
    if (f32IsZero(a)) return f32InvalidNaN();
    accruedFlags |= SF_FLAG_DZ;
    return sign | F32_INF;
  }
  if (f32IsZero(a)) return sign;

  let sigA = <u64>(a & F32_FRAC_MASK);
  let sigB = <u64>(b & F32_FRAC_MASK);
  if (eA == 0) {
    sigA = f32NormalizeSubnormal(sigA);
    eA = normExp;
  } else sigA |= F32_IMPLICIT;
  if (eB == 0) {
    sigB = f32NormalizeSubnormal(sigB);
    eB = normExp;
  } else sigB |= F32_IMPLICIT;
  // Integer long division: (sigA << 39) < 2^63, the quotient has 39 or 40 bits (24 needed),
  // and a nonzero remainder becomes the sticky bit.
  const dividend = sigA << 39;
  const q = dividend / sigB;
  const sig = q | <u64>(dividend - q * sigB != 0);
  return normalizeRoundPack32(<u64>(sign >> 31), eA - eB + 150, sig, rm);
}

export function f32_sqrt(a: u32, rm: u32): u32 {
  let eA = <i32>(a >> 23) & 0xff;
  if (f32IsNaN(a)) {
    if (f32IsSignalingNaN(a)) accruedFlags |= SF_FLAG_NV;
    return F32_DEFAULT_NAN;
  }
  if (f32IsZero(a)) return a;
  if ((a >> 31) != 0) return f32InvalidNaN();
  if (eA == 0xff) return a;

  let sigA = <u64>(a & F32_FRAC_MASK);
  if (eA == 0) {
    sigA = f32NormalizeSubnormal(sigA);
    eA = normExp;
  } else sigA |= F32_IMPLICIT;
  // value = sigA * 2^(E - 23) = X * 2^(2 * half) with X = sigA << (37 or 38) in [2^60, 2^62),
  // so floor(sqrt(X)) has 31 bits (24 needed) and the remainder gives the sticky bit.
  const unbiased = eA - 127;
  const odd = unbiased & 1;
  const x = sigA << <u64>(37 + odd);
  const half = (unbiased - 23 - 37 - odd) >> 1;
  // X is exact as a binary64 and the native root carries about 22 fractional bits, so its
  // integer part could only be wrong by being one too large (a true root just below an
  // integer rounding up to it). An exhaustive check over all 2^25 possible X shows that never
  // happens for these X (multiples of 2^37); the guard costs one multiply and is kept so the
  // floor is evidently correct.
  let q = <u64>sqrt<f64>(<f64>x);
  if (q * q > x) q -= 1;
  const sig = q | <u64>(x - q * q != 0);
  return normalizeRoundPack32(0, half + 189, sig, rm);
}

/** a * b + c with a single rounding. */
export function f32_mulAdd(a: u32, b: u32, c: u32, rm: u32): u32 {
  let eA = <i32>(a >> 23) & 0xff;
  let eB = <i32>(b >> 23) & 0xff;
  let eC = <i32>(c >> 23) & 0xff;
  const signP = <u64>((a ^ b) >> 31);
  const signC = <u64>(c >> 31);

  if (eA == 0xff || eB == 0xff || eC == 0xff) {
    const aNaN = f32IsNaN(a), bNaN = f32IsNaN(b);
    const infTimesZero =
      (!aNaN && !bNaN) &&
      ((eA == 0xff && f32IsZero(b)) || (eB == 0xff && f32IsZero(a)));
    if (aNaN || bNaN || f32IsNaN(c)) {
      if (infTimesZero || f32IsSignalingNaN(a) || f32IsSignalingNaN(b) || f32IsSignalingNaN(c)) {
        accruedFlags |= SF_FLAG_NV;
      }
      return F32_DEFAULT_NAN;
    }
    if (infTimesZero) return f32InvalidNaN();
    if (eA == 0xff || eB == 0xff) {
      if (eC == 0xff && signC != signP) return f32InvalidNaN();
      return (<u32>signP << 31) | F32_INF;
    }
    return c;
  }

  if (f32IsZero(a) || f32IsZero(b)) {
    if (f32IsZero(c)) {
      if (signP == signC) return c;
      return rm == RM_RDN ? F32_SIGN : 0;
    }
    return c;
  }
  if (f32IsZero(c)) return f32_mul(a, b, rm);

  // Fast path: the product of the promoted operands is exact in binary64 (see f32_mul): an
  // integer P <= (2^24 - 1)^2 times 2^(eA + eB - 300), while c is C < 2^24 times 2^(eC - 150)
  // (subnormal exponent fields read as 1). With D the difference of those two exponents, the
  // sum is an integer below 2^53 times the smaller power of two whenever -5 <= D <= 28
  // (P * 2^5 + C < 2^53 and P + C * 2^28 < 2^53), so the native sum is exact as well.
  // A zero sum goes to the general path for its sign rules.
  const lowGap = (eC != 0 ? eC : 1) - (eA != 0 ? eA : 1) - (eB != 0 ? eB : 1) + 150;
  if (<u32>(lowGap + 5) <= 33) {
    const sum = <f64>reinterpret<f32>(a) * <f64>reinterpret<f32>(b) + <f64>reinterpret<f32>(c);
    if (sum != 0) return f32FromExactF64(sum, rm);
  }

  let sigA = <u64>(a & F32_FRAC_MASK);
  let sigB = <u64>(b & F32_FRAC_MASK);
  let sigC = <u64>(c & F32_FRAC_MASK);
  if (eA == 0) {
    sigA = f32NormalizeSubnormal(sigA);
    eA = normExp;
  } else sigA |= F32_IMPLICIT;
  if (eB == 0) {
    sigB = f32NormalizeSubnormal(sigB);
    eB = normExp;
  } else sigB |= F32_IMPLICIT;
  if (eC == 0) {
    sigC = f32NormalizeSubnormal(sigC);
    eC = normExp;
  } else sigC |= F32_IMPLICIT;

  // Everything fits in 64 bits, value = X * 2^(e - 127 - 59):
  //  product P = sigA * sigB << 13 in [2^59, 2^61), exact, e = eA + eB - 127 (13 zero bits);
  //  addend  C = sigC << 36, leading one at bit 59, e = eC (36 zero bits).
  // The sum stays below 2^62; the alignment argument is the one of f64_mulAdd.
  let p = (sigA * sigB) << 13;
  let cs = sigC << 36;
  let exp = eA + eB - 127;
  if (exp >= eC) {
    cs = shiftRightJam64(cs, exp - eC);
  } else {
    p = shiftRightJam64(p, eC - exp);
    exp = eC;
  }
  let sign = signP;
  let r: u64;
  if (signP == signC) r = p + cs;
  else if (p >= cs) r = p - cs;
  else {
    r = cs - p;
    sign = signC;
  }
  if (r == 0) return rm == RM_RDN ? F32_SIGN : 0;
  return normalizeRoundPack32(sign, exp + 3, r, rm);
}

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
    if (f64IsSignalingNaN(a) || f64IsSignalingNaN(b)) accruedFlags |= SF_FLAG_NV;
    return 0;
  }
  return <u32>(a == b || ((a | b) << 1) == 0);
}

export function f64_lt(a: u64, b: u64): u32 {
  if (f64IsNaN(a) || f64IsNaN(b)) {
    accruedFlags |= SF_FLAG_NV; // signalling comparison: any NaN is invalid
    return 0;
  }
  return <u32>f64Less(a, b, false);
}

export function f64_le(a: u64, b: u64): u32 {
  if (f64IsNaN(a) || f64IsNaN(b)) {
    accruedFlags |= SF_FLAG_NV;
    return 0;
  }
  return <u32>(a == b || ((a | b) << 1) == 0 || f64Less(a, b, false));
}

export function f32_eq(a: u32, b: u32): u32 {
  if (f32IsNaN(a) || f32IsNaN(b)) {
    if (f32IsSignalingNaN(a) || f32IsSignalingNaN(b)) accruedFlags |= SF_FLAG_NV;
    return 0;
  }
  return <u32>(a == b || ((a | b) << 1) == 0);
}

export function f32_lt(a: u32, b: u32): u32 {
  if (f32IsNaN(a) || f32IsNaN(b)) {
    accruedFlags |= SF_FLAG_NV;
    return 0;
  }
  return <u32>f32Less(a, b, false);
}

export function f32_le(a: u32, b: u32): u32 {
  if (f32IsNaN(a) || f32IsNaN(b)) {
    accruedFlags |= SF_FLAG_NV;
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
    if (f64IsSignalingNaN(a) || f64IsSignalingNaN(b)) accruedFlags |= SF_FLAG_NV;
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
    if (f32IsSignalingNaN(a) || f32IsSignalingNaN(b)) accruedFlags |= SF_FLAG_NV;
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
      if (cvtInexact) accruedFlags |= SF_FLAG_NX;
      return sign != 0 ? 0 - magnitude : magnitude;
    }
    accruedFlags |= SF_FLAG_NV;
    return sign != 0 ? 0 - negLimit : posLimit;
  }
  accruedFlags |= SF_FLAG_NV;
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
    if (f32IsSignalingNaN(a)) accruedFlags |= SF_FLAG_NV;
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
    if (f64IsSignalingNaN(a)) accruedFlags |= SF_FLAG_NV;
    return F32_DEFAULT_NAN;
  }
  if (f64IsZero(a)) return sign;
  return f32FromExactF64(reinterpret<f64>(a), rm);
}
