// Software IEEE-754 for the RISC-V F and D extensions (see softfloat-common.ts for the
// representation and conventions): binary32 arithmetic: add, subtract, multiply, divide, square root, fused multiply-add.
import {
  F32_DEFAULT_NAN, F32_FRAC_MASK, F32_IMPLICIT, F32_INF, F32_SIGN, F64_FRAC_MASK, F64_IMPLICIT,
  RM_RDN, RM_RNE, SF_FLAG_DZ, SF_FLAG_NV, SF_FLAG_NX, f32InvalidNaN, f32IsNaN, f32IsSignalingNaN,
  f32IsZero, f32NormalizeSubnormal, f32PropagateNaN, normExp, normalizeRoundPack32, raiseFlags,
  shiftRightJam64,
} from "./softfloat-common";
import {
  f64_mulAdd,
} from "./softfloat-f64";

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
@inline export function f32FromExactF64(x: f64, rm: u32): u32 {
  const bits = reinterpret<u64>(x);
  const exp = <u32>(bits >> 52) & 0x7ff;
  if (exp - 897 < 253) {
    // binary32 biased exponent exp - 896 in [1, 253]
    if ((bits & 0x1fffffff) == 0) return reinterpret<u32>(<f32>x);
    if (rm == RM_RNE) {
      raiseFlags(SF_FLAG_NX);
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
    raiseFlags(SF_FLAG_DZ);
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
    if (f32IsSignalingNaN(a)) raiseFlags(SF_FLAG_NV);
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
        raiseFlags(SF_FLAG_NV);
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

