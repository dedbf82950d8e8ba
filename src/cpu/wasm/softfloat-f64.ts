// Software IEEE-754 for the RISC-V F and D extensions (see softfloat-common.ts for the
// representation and conventions): binary64 arithmetic: add, subtract, multiply, divide, square root, fused multiply-add.
import {
  F64_DEFAULT_NAN, F64_FRAC_MASK, F64_IMPLICIT, F64_INF, F64_SIGN, RM_RDN, RM_RNE, SF_FLAG_DZ,
  SF_FLAG_NV, SF_FLAG_NX, f64InvalidNaN, f64IsNaN, f64IsSignalingNaN, f64IsZero,
  f64NormalizeSubnormal, f64PropagateNaN, mul64To128, normExp, normalizeRoundPack64, raiseFlags,
  roundPack64, shiftRightJam128, shiftRightJam64, wideLo,
} from "./softfloat-common";

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
      raiseFlags(SF_FLAG_NX);
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
      raiseFlags(SF_FLAG_NX);
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
    raiseFlags(SF_FLAG_DZ);
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
    if (f64IsSignalingNaN(a)) raiseFlags(SF_FLAG_NV);
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
        raiseFlags(SF_FLAG_NV);
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

