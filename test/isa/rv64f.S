/*
 * RV64F: single-precision arithmetic in all five static rounding modes and with dynamic
 * frm, the exception flags after each operation, NaN-boxing, canonical NaNs, conversions
 * with saturation, fmin/fmax with NaNs and signed zeros, fused multiply-add rounding,
 * fclass, comparisons, the fcsr CSRs, reserved rounding modes, and mstatus.FS tracking.
 *
 * Expected values follow IEEE 754-2008 as the RISC-V F chapter specifies it (tininess
 * detected after rounding, canonical NaN 0x7fc00000, minimumNumber/maximumNumber for
 * fmin/fmax); they were computed with exact rational arithmetic.  Results are checked as
 * the full 64-bit register, so every single-precision result must also come back
 * NaN-boxed (upper 32 bits all ones).
 * Test numbers: rounding 1-99, flags/special values 100-149, FMA 150-199,
 * conversions 200-299, fmin/fmax 300-329, compares 330-349, fclass 350-369,
 * sign injection 370-399, moves/loads/stores 400-419, NaN-boxing 420-449,
 * fcsr and reserved rounding modes 450-479, mstatus.FS 480-509.
 */
#include "macros.h"

#define BOXED(x) (0xffffffff00000000|(x))
/* Load a single into an f register the architected way (fmv.w.x NaN-boxes it). */
#define LDS(freg, bits) li t5, bits; fmv.w.x freg, t5

/* f3 = inst(f1[, f2[, f4]]) with rounding mode rm; check the boxed result and fflags. */
#define TEST_S2(n, inst, rm, exp, flags, a, b) \
  li TESTNUM, n; LDS(f1, a); LDS(f2, b); fsflags zero; inst f3, f1, f2, rm; \
  frflags a1; fmv.x.d a0, f3; CHECK_EQ(a0, BOXED(exp)); CHECK_EQ(a1, flags)
#define TEST_S2_DYN(n, inst, frm, exp, flags, a, b) \
  li t5, frm; fsrm t5; TEST_S2(n, inst, dyn, exp, flags, a, b); fsrm zero
#define TEST_S1(n, inst, rm, exp, flags, a) \
  li TESTNUM, n; LDS(f1, a); fsflags zero; inst f3, f1, rm; \
  frflags a1; fmv.x.d a0, f3; CHECK_EQ(a0, BOXED(exp)); CHECK_EQ(a1, flags)
#define TEST_S3(n, inst, rm, exp, flags, a, b, c) \
  li TESTNUM, n; LDS(f1, a); LDS(f2, b); LDS(f4, c); fsflags zero; inst f3, f1, f2, f4, rm; \
  frflags a1; fmv.x.d a0, f3; CHECK_EQ(a0, BOXED(exp)); CHECK_EQ(a1, flags)
/* Instructions without a rounding mode (fmin/fmax, sign injection). */
#define TEST_S2N(n, inst, exp, flags, a, b) \
  li TESTNUM, n; LDS(f1, a); LDS(f2, b); fsflags zero; inst f3, f1, f2; \
  frflags a1; fmv.x.d a0, f3; CHECK_EQ(a0, BOXED(exp)); CHECK_EQ(a1, flags)
/* Float -> integer register (conversions): the full 64-bit result is checked. */
#define TEST_S_TOINT(n, inst, rm, exp, flags, a) \
  li TESTNUM, n; LDS(f1, a); fsflags zero; inst a0, f1, rm; frflags a1; \
  CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)
/* Integer register -> float. */
#define TEST_S_FROMINT(n, inst, rm, exp, flags, ival) \
  li TESTNUM, n; li a2, ival; fsflags zero; inst f3, a2, rm; frflags a1; fmv.x.d a0, f3; \
  CHECK_EQ(a0, BOXED(exp)); CHECK_EQ(a1, flags)
/* Comparisons and fclass: integer result. */
#define TEST_S_CMP(n, inst, exp, flags, a, b) \
  li TESTNUM, n; LDS(f1, a); LDS(f2, b); fsflags zero; inst a0, f1, f2; frflags a1; \
  CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)
#define TEST_S_CLASS(n, exp, a) \
  li TESTNUM, n; LDS(f1, a); fclass.s a0, f1; CHECK_EQ(a0, exp)

/* Encodings the assembler refuses: fadd.s f3, f1, f2 with rm = 5 / 6 (reserved). */
#define FADD_S_RM5 0x0020d1d3
#define FADD_S_RM6 0x0020e1d3

#define S_QNAN 0x7fc00000
#define S_SNAN 0x7f800001
#define S_ONE  0x3f800000
#define S_MONE 0xbf800000
#define S_TWO  0x40000000
#define S_PZ   0x00000000
#define S_NZ   0x80000000
#define S_INF  0x7f800000
#define S_MINF 0xff800000

TEST_BEGIN

  /* Rounding: 1 + 2^-24 is an exact tie between 1 and 1+2^-23 (mantissa ...0 is even). */
  TEST_S2(1, fadd.s, rne, 0x3f800000, FFLAG_NX, 0x3f800000, 0x33800000)
  TEST_S2(2, fadd.s, rtz, 0x3f800000, FFLAG_NX, 0x3f800000, 0x33800000)
  TEST_S2(3, fadd.s, rdn, 0x3f800000, FFLAG_NX, 0x3f800000, 0x33800000)
  TEST_S2(4, fadd.s, rup, 0x3f800001, FFLAG_NX, 0x3f800000, 0x33800000)
  TEST_S2(5, fadd.s, rmm, 0x3f800001, FFLAG_NX, 0x3f800000, 0x33800000)

  /* -1 - 2^-24: the directed modes round the other way for negative values. */
  TEST_S2(6, fadd.s, rne, 0xbf800000, FFLAG_NX, 0xbf800000, 0xb3800000)
  TEST_S2(7, fadd.s, rtz, 0xbf800000, FFLAG_NX, 0xbf800000, 0xb3800000)
  TEST_S2(8, fadd.s, rdn, 0xbf800001, FFLAG_NX, 0xbf800000, 0xb3800000)
  TEST_S2(9, fadd.s, rup, 0xbf800000, FFLAG_NX, 0xbf800000, 0xb3800000)
  TEST_S2(10, fadd.s, rmm, 0xbf800001, FFLAG_NX, 0xbf800000, 0xb3800000)

  /* (1+2^-23) + 2^-24: a tie whose lower neighbour is odd, so RNE rounds up. */
  TEST_S2(11, fadd.s, rne, 0x3f800002, FFLAG_NX, 0x3f800001, 0x33800000)
  TEST_S2(12, fadd.s, rtz, 0x3f800001, FFLAG_NX, 0x3f800001, 0x33800000)
  TEST_S2(13, fadd.s, rdn, 0x3f800001, FFLAG_NX, 0x3f800001, 0x33800000)
  TEST_S2(14, fadd.s, rup, 0x3f800002, FFLAG_NX, 0x3f800001, 0x33800000)
  TEST_S2(15, fadd.s, rmm, 0x3f800002, FFLAG_NX, 0x3f800001, 0x33800000)

  /* 1 - 2^-25: a tie just below 1. */
  TEST_S2(16, fsub.s, rne, 0x3f800000, FFLAG_NX, 0x3f800000, 0x33000000)
  TEST_S2(17, fsub.s, rtz, 0x3f7fffff, FFLAG_NX, 0x3f800000, 0x33000000)
  TEST_S2(18, fsub.s, rdn, 0x3f7fffff, FFLAG_NX, 0x3f800000, 0x33000000)
  TEST_S2(19, fsub.s, rup, 0x3f800000, FFLAG_NX, 0x3f800000, 0x33000000)
  TEST_S2(20, fsub.s, rmm, 0x3f800000, FFLAG_NX, 0x3f800000, 0x33000000)

  /* (1+2^-23)^2 = 1 + 2^-22 + 2^-46: rounding of a product, both signs. */
  TEST_S2(21, fmul.s, rne, 0x3f800002, FFLAG_NX, 0x3f800001, 0x3f800001)
  TEST_S2(22, fmul.s, rtz, 0x3f800002, FFLAG_NX, 0x3f800001, 0x3f800001)
  TEST_S2(23, fmul.s, rdn, 0x3f800002, FFLAG_NX, 0x3f800001, 0x3f800001)
  TEST_S2(24, fmul.s, rup, 0x3f800003, FFLAG_NX, 0x3f800001, 0x3f800001)
  TEST_S2(25, fmul.s, rmm, 0x3f800002, FFLAG_NX, 0x3f800001, 0x3f800001)
  TEST_S2(26, fmul.s, rne, 0xbf800002, FFLAG_NX, 0xbf800001, 0x3f800001)
  TEST_S2(27, fmul.s, rtz, 0xbf800002, FFLAG_NX, 0xbf800001, 0x3f800001)
  TEST_S2(28, fmul.s, rdn, 0xbf800003, FFLAG_NX, 0xbf800001, 0x3f800001)
  TEST_S2(29, fmul.s, rup, 0xbf800002, FFLAG_NX, 0xbf800001, 0x3f800001)
  TEST_S2(30, fmul.s, rmm, 0xbf800002, FFLAG_NX, 0xbf800001, 0x3f800001)

  /* 1/3 and -1/3. */
  TEST_S2(31, fdiv.s, rne, 0x3eaaaaab, FFLAG_NX, 0x3f800000, 0x40400000)
  TEST_S2(32, fdiv.s, rtz, 0x3eaaaaaa, FFLAG_NX, 0x3f800000, 0x40400000)
  TEST_S2(33, fdiv.s, rdn, 0x3eaaaaaa, FFLAG_NX, 0x3f800000, 0x40400000)
  TEST_S2(34, fdiv.s, rup, 0x3eaaaaab, FFLAG_NX, 0x3f800000, 0x40400000)
  TEST_S2(35, fdiv.s, rmm, 0x3eaaaaab, FFLAG_NX, 0x3f800000, 0x40400000)
  TEST_S2(36, fdiv.s, rne, 0xbeaaaaab, FFLAG_NX, 0xbf800000, 0x40400000)
  TEST_S2(37, fdiv.s, rtz, 0xbeaaaaaa, FFLAG_NX, 0xbf800000, 0x40400000)
  TEST_S2(38, fdiv.s, rdn, 0xbeaaaaab, FFLAG_NX, 0xbf800000, 0x40400000)
  TEST_S2(39, fdiv.s, rup, 0xbeaaaaaa, FFLAG_NX, 0xbf800000, 0x40400000)
  TEST_S2(40, fdiv.s, rmm, 0xbeaaaaab, FFLAG_NX, 0xbf800000, 0x40400000)

  /* sqrt(2) and sqrt(3): square roots round like everything else. */
  TEST_S1(41, fsqrt.s, rne, 0x3fb504f3, FFLAG_NX, 0x40000000)
  TEST_S1(42, fsqrt.s, rtz, 0x3fb504f3, FFLAG_NX, 0x40000000)
  TEST_S1(43, fsqrt.s, rdn, 0x3fb504f3, FFLAG_NX, 0x40000000)
  TEST_S1(44, fsqrt.s, rup, 0x3fb504f4, FFLAG_NX, 0x40000000)
  TEST_S1(45, fsqrt.s, rmm, 0x3fb504f3, FFLAG_NX, 0x40000000)
  TEST_S1(46, fsqrt.s, rne, 0x3fddb3d7, FFLAG_NX, 0x40400000)
  TEST_S1(47, fsqrt.s, rtz, 0x3fddb3d7, FFLAG_NX, 0x40400000)
  TEST_S1(48, fsqrt.s, rdn, 0x3fddb3d7, FFLAG_NX, 0x40400000)
  TEST_S1(49, fsqrt.s, rup, 0x3fddb3d8, FFLAG_NX, 0x40400000)
  TEST_S1(50, fsqrt.s, rmm, 0x3fddb3d7, FFLAG_NX, 0x40400000)

  /* Dynamic rounding (rm = dyn) follows frm. */
  TEST_S2_DYN(51, fadd.s, 0, 0x3f800002, FFLAG_NX, 0x3f800001, 0x33800000)   /* frm = rne */
  TEST_S2_DYN(52, fadd.s, 1, 0x3f800001, FFLAG_NX, 0x3f800001, 0x33800000)   /* frm = rtz */
  TEST_S2_DYN(53, fadd.s, 2, 0x3f800001, FFLAG_NX, 0x3f800001, 0x33800000)   /* frm = rdn */
  TEST_S2_DYN(54, fadd.s, 3, 0x3f800002, FFLAG_NX, 0x3f800001, 0x33800000)   /* frm = rup */
  TEST_S2_DYN(55, fadd.s, 4, 0x3f800002, FFLAG_NX, 0x3f800001, 0x33800000)   /* frm = rmm */
  TEST_S2_DYN(56, fdiv.s, 0, 0xbeaaaaab, FFLAG_NX, 0xbf800000, 0x40400000)   /* frm = rne */
  TEST_S2_DYN(57, fdiv.s, 1, 0xbeaaaaaa, FFLAG_NX, 0xbf800000, 0x40400000)   /* frm = rtz */
  TEST_S2_DYN(58, fdiv.s, 2, 0xbeaaaaab, FFLAG_NX, 0xbf800000, 0x40400000)   /* frm = rdn */
  TEST_S2_DYN(59, fdiv.s, 3, 0xbeaaaaaa, FFLAG_NX, 0xbf800000, 0x40400000)   /* frm = rup */
  TEST_S2_DYN(60, fdiv.s, 4, 0xbeaaaaab, FFLAG_NX, 0xbf800000, 0x40400000)   /* frm = rmm */

  /* Overflow: MAX*2 gives inf or MAX depending on mode and sign (OF|NX). */
  TEST_S2(100, fmul.s, rne, 0x7f800000, FFLAG_OF|FFLAG_NX, 0x7f7fffff, 0x40000000)
  TEST_S2(101, fmul.s, rtz, 0x7f7fffff, FFLAG_OF|FFLAG_NX, 0x7f7fffff, 0x40000000)
  TEST_S2(102, fmul.s, rdn, 0x7f7fffff, FFLAG_OF|FFLAG_NX, 0x7f7fffff, 0x40000000)
  TEST_S2(103, fmul.s, rup, 0x7f800000, FFLAG_OF|FFLAG_NX, 0x7f7fffff, 0x40000000)
  TEST_S2(104, fmul.s, rmm, 0x7f800000, FFLAG_OF|FFLAG_NX, 0x7f7fffff, 0x40000000)
  TEST_S2(105, fmul.s, rne, 0xff800000, FFLAG_OF|FFLAG_NX, 0xff7fffff, 0x40000000)
  TEST_S2(106, fmul.s, rtz, 0xff7fffff, FFLAG_OF|FFLAG_NX, 0xff7fffff, 0x40000000)
  TEST_S2(107, fmul.s, rdn, 0xff800000, FFLAG_OF|FFLAG_NX, 0xff7fffff, 0x40000000)
  TEST_S2(108, fmul.s, rup, 0xff7fffff, FFLAG_OF|FFLAG_NX, 0xff7fffff, 0x40000000)
  TEST_S2(109, fmul.s, rmm, 0xff800000, FFLAG_OF|FFLAG_NX, 0xff7fffff, 0x40000000)

  /* Underflow: tiny and exact raises nothing; tiny and inexact raises UF|NX. */
  TEST_S2(110, fmul.s, rne, 0x400000, 0, 0x800000, 0x3f000000)   /* 2^-127: a subnormal, exact */
  TEST_S2(111, fmul.s, rne, 0x400000, FFLAG_UF|FFLAG_NX, 0x800001, 0x3f000000)   /* (2^-126+2^-149)/2: half an ulp lost */
  TEST_S2(112, fmul.s, rup, 0x400001, FFLAG_UF|FFLAG_NX, 0x800001, 0x3f000000)
  TEST_S2(113, fmul.s, rne, 0x800000, FFLAG_UF|FFLAG_NX, 0x3f7fffff, 0x800000)   /* 2^-126(1-2^-24) rounds up to the smallest normal: still tiny */
  TEST_S2(114, fmul.s, rne, 0x0, FFLAG_UF|FFLAG_NX, 0x1, 0x3f000000)   /* half the smallest subnormal: ties to even zero */
  TEST_S2(115, fmul.s, rup, 0x1, FFLAG_UF|FFLAG_NX, 0x1, 0x3f000000)

  /* Division by zero, invalid operations, exact zeros. */
  TEST_S2(120, fdiv.s, rne, 0x7f800000, FFLAG_DZ, 0x3f800000, 0x0)   /* DZ: +inf */
  TEST_S2(121, fdiv.s, rne, 0xff800000, FFLAG_DZ, 0xbf800000, 0x0)   /* DZ: -inf */
  TEST_S2(122, fdiv.s, rne, 0xff800000, FFLAG_DZ, 0x3f800000, 0x80000000)   /* DZ: -inf */
  TEST_S2(123, fdiv.s, rne, 0x7fc00000, FFLAG_NV, 0x0, 0x0)   /* NV: canonical NaN */
  TEST_S2(124, fsub.s, rne, 0x7fc00000, FFLAG_NV, 0x7f800000, 0x7f800000)   /* NV */
  TEST_S2(125, fadd.s, rne, 0x7fc00000, FFLAG_NV, 0x7f800000, 0xff800000)   /* NV */
  TEST_S2(126, fmul.s, rne, 0x7fc00000, FFLAG_NV, 0x0, 0x7f800000)   /* NV */
  TEST_S2(127, fdiv.s, rne, 0x7fc00000, FFLAG_NV, 0x7f800000, 0x7f800000)   /* NV */
  TEST_S1(128, fsqrt.s, rne, 0x7fc00000, FFLAG_NV, 0xbf800000)   /* NV */
  TEST_S1(129, fsqrt.s, rne, 0x80000000, 0, 0x80000000)   /* sqrt(-0) = -0 */
  TEST_S1(130, fsqrt.s, rne, 0x7f800000, 0, 0x7f800000)
  TEST_S2(131, fadd.s, rne, 0x7f800000, 0, 0x7f800000, 0x7f7fffff)   /* exact infinity: no flags */
  TEST_S2(132, fdiv.s, rne, 0x0, 0, 0x3f800000, 0x7f800000)   /* +0 */
  TEST_S2(133, fsub.s, rne, 0x0, 0, 0x3f800000, 0x3f800000)   /* x - x = +0 ... */
  TEST_S2(134, fsub.s, rdn, 0x80000000, 0, 0x3f800000, 0x3f800000)   /* ... except -0 when rounding down */
  TEST_S2(135, fadd.s, rne, 0x80000000, 0, 0x80000000, 0x80000000)   /* -0 + -0 = -0 */
  TEST_S2(136, fadd.s, rne, 0x0, 0, 0x80000000, 0x0)   /* -0 + +0 = +0 */
  TEST_S2(137, fadd.s, rdn, 0x80000000, 0, 0x80000000, 0x0)   /* -0 + +0 = -0 in RDN */

  /* NaN results are always the canonical NaN: payloads and signs are not propagated. */
  TEST_S2(140, fadd.s, rne, 0x7fc00000, 0, 0x7fc12345, 0x3f800000)   /* quiet NaN input: no flag */
  TEST_S2(141, fadd.s, rne, 0x7fc00000, 0, 0x3f800000, 0xffc00000)
  TEST_S2(142, fmul.s, rne, 0x7fc00000, FFLAG_NV, 0x7f800001, 0x3f800000)   /* signaling NaN input: NV */
  TEST_S2(143, fsub.s, rne, 0x7fc00000, FFLAG_NV, 0x7fc00000, 0x7f800001)
  TEST_S1(144, fsqrt.s, rne, 0x7fc00000, 0, 0x7fc12345)
  TEST_S1(145, fsqrt.s, rne, 0x7fc00000, FFLAG_NV, 0x7f800001)
  TEST_S2(146, fdiv.s, rne, 0x7fc00000, 0, 0x7fc00000, 0x0)   /* NaN beats division by zero: no DZ */

  /* Fused multiply-add rounds once: (1+2^-12)^2 - 1 = 2^-11 + 2^-24 exactly, while a separate
   * multiply would round 1 + 2^-11 + 2^-24 (a tie) to 1 + 2^-11 and give 2^-11. */
  TEST_S3(150, fmadd.s, rne, 0x3a000400, 0, 0x3f800800, 0x3f800800, 0xbf800000)
  TEST_S3(151, fmsub.s, rne, 0x3a000400, 0, 0x3f800800, 0x3f800800, 0x3f800000)   /* a*b - c */
  TEST_S3(152, fnmsub.s, rne, 0xba000400, 0, 0x3f800800, 0x3f800800, 0x3f800000)   /* -(a*b) + c */
  TEST_S3(153, fnmadd.s, rne, 0xba000400, 0, 0x3f800800, 0x3f800800, 0xbf800000)   /* -(a*b) - c */
  TEST_S3(154, fmadd.s, rne, 0x3f800003, FFLAG_NX, 0x3f800001, 0x3f800001, 0x33800000)   /* rounded once: (1+2^-23)^2 + 2^-24 */
  TEST_S3(155, fmadd.s, rne, 0x40400000, FFLAG_NX, 0x3f800000, 0x40400000, 0x33800000)
  TEST_S3(156, fmadd.s, rtz, 0x40400000, FFLAG_NX, 0x3f800000, 0x40400000, 0x33800000)
  TEST_S3(157, fmadd.s, rdn, 0x40400000, FFLAG_NX, 0x3f800000, 0x40400000, 0x33800000)
  TEST_S3(158, fmadd.s, rup, 0x40400001, FFLAG_NX, 0x3f800000, 0x40400000, 0x33800000)
  TEST_S3(159, fmadd.s, rmm, 0x40400000, FFLAG_NX, 0x3f800000, 0x40400000, 0x33800000)
  TEST_S3(160, fnmadd.s, rdn, 0xc0400001, FFLAG_NX, 0x3f800000, 0x40400000, 0x33800000)
  TEST_S3(161, fmadd.s, rne, 0x7fc00000, FFLAG_NV, 0x7f800000, 0x0, 0x7fc00000)   /* inf*0 + qNaN: invalid even with a quiet NaN addend */
  TEST_S3(162, fmadd.s, rne, 0x7fc00000, FFLAG_NV, 0x7f800000, 0x3f800000, 0xff800000)   /* inf - inf */
  TEST_S3(163, fmadd.s, rne, 0x7fc00000, FFLAG_NV, 0x3f800000, 0x3f800000, 0x7f800001)
  TEST_S3(164, fmadd.s, rne, 0x7f7fffff, 0, 0x7f7fffff, 0x40000000, 0xff7fffff)   /* no intermediate overflow: MAX*2 - MAX = MAX */
  TEST_S3(165, fmadd.s, rne, 0x0, 0, 0x3f800000, 0x0, 0x80000000)   /* +0 + -0 = +0 */
  TEST_S3(166, fnmadd.s, rne, 0x80000000, 0, 0x3f800000, 0x0, 0x0)   /* -(+0) - +0 = -0 */

  /* Float to integer: rounding, saturation (NV) and inexactness (NX). */
  TEST_S_TOINT(200, fcvt.w.s, rne, 0x2, FFLAG_NX, 0x3fc00000)
  TEST_S_TOINT(201, fcvt.w.s, rtz, 0x1, FFLAG_NX, 0x3fc00000)
  TEST_S_TOINT(202, fcvt.w.s, rdn, 0x1, FFLAG_NX, 0x3fc00000)
  TEST_S_TOINT(203, fcvt.w.s, rup, 0x2, FFLAG_NX, 0x3fc00000)
  TEST_S_TOINT(204, fcvt.w.s, rmm, 0x2, FFLAG_NX, 0x3fc00000)
  TEST_S_TOINT(205, fcvt.w.s, rne, 0xfffffffffffffffe, FFLAG_NX, 0xbfc00000)
  TEST_S_TOINT(206, fcvt.w.s, rtz, 0xffffffffffffffff, FFLAG_NX, 0xbfc00000)
  TEST_S_TOINT(207, fcvt.w.s, rdn, 0xfffffffffffffffe, FFLAG_NX, 0xbfc00000)
  TEST_S_TOINT(208, fcvt.w.s, rup, 0xffffffffffffffff, FFLAG_NX, 0xbfc00000)
  TEST_S_TOINT(209, fcvt.w.s, rmm, 0xfffffffffffffffe, FFLAG_NX, 0xbfc00000)
  TEST_S_TOINT(210, fcvt.w.s, rne, 0x2, FFLAG_NX, 0x40200000)   /* tie to even: 2 */
  TEST_S_TOINT(211, fcvt.w.s, rmm, 0x3, FFLAG_NX, 0x40200000)   /* tie away: 3 */
  TEST_S_TOINT(212, fcvt.w.s, rne, 0x7fffffff, FFLAG_NV, 0x7fc00000)   /* NaN -> INT32_MAX */
  TEST_S_TOINT(213, fcvt.w.s, rne, 0x7fffffff, FFLAG_NV, 0xffc00000)   /* negative NaN too */
  TEST_S_TOINT(214, fcvt.w.s, rne, 0x7fffffff, FFLAG_NV, 0x7f800000)
  TEST_S_TOINT(215, fcvt.w.s, rne, 0xffffffff80000000, FFLAG_NV, 0xff800000)
  TEST_S_TOINT(216, fcvt.w.s, rne, 0x7fffffff, FFLAG_NV, 0x4f32d05e)
  TEST_S_TOINT(217, fcvt.w.s, rne, 0xffffffff80000000, FFLAG_NV, 0xcf32d05e)
  TEST_S_TOINT(218, fcvt.w.s, rne, 0xffffffff80000000, 0, 0xcf000000)   /* -2^31 exactly: in range */
  TEST_S_TOINT(219, fcvt.w.s, rne, 0x7fffffff, FFLAG_NV, 0x4f000000)   /* +2^31: out of range */
  TEST_S_TOINT(230, fcvt.wu.s, rne, 0x0, FFLAG_NV, 0xbf800000)   /* negative -> 0, NV */
  TEST_S_TOINT(231, fcvt.wu.s, rtz, 0x0, FFLAG_NX, 0xbf000000)   /* rounds to 0: in range, only NX */
  TEST_S_TOINT(232, fcvt.wu.s, rdn, 0x0, FFLAG_NV, 0xbf000000)   /* rounds to -1: NV */
  TEST_S_TOINT(233, fcvt.wu.s, rne, 0xffffffffffffffff, FFLAG_NV, 0x7fc00000)   /* NaN -> 2^32-1, sign-extended in the register */
  TEST_S_TOINT(234, fcvt.wu.s, rne, 0xffffffffffffffff, FFLAG_NV, 0x7f800000)
  TEST_S_TOINT(235, fcvt.wu.s, rne, 0x0, FFLAG_NV, 0xff800000)
  TEST_S_TOINT(236, fcvt.wu.s, rne, 0xffffffffee6b2800, 0, 0x4f6e6b28)   /* 4e9 fits; the 32-bit result is sign-extended */
  TEST_S_TOINT(237, fcvt.wu.s, rne, 0xffffffffffffffff, FFLAG_NV, 0x4f9502f9)
  TEST_S_TOINT(238, fcvt.wu.s, rup, 0x2, FFLAG_NX, 0x3fc00000)
  TEST_S_TOINT(250, fcvt.l.s, rne, 0x7fffffffffffffff, FFLAG_NV, 0x7fc00000)
  TEST_S_TOINT(251, fcvt.l.s, rne, 0x8000000000000000, FFLAG_NV, 0xff800000)
  TEST_S_TOINT(252, fcvt.l.s, rne, 0x7fffffffffffffff, FFLAG_NV, 0x7f800000)
  TEST_S_TOINT(253, fcvt.l.s, rne, 0x7fffffffffffffff, FFLAG_NV, 0x5f000000)   /* 2^63: out of range */
  TEST_S_TOINT(254, fcvt.l.s, rne, 0x8000000000000000, 0, 0xdf000000)   /* -2^63: exact */
  TEST_S_TOINT(255, fcvt.l.s, rdn, 0xfffffffffffffffe, FFLAG_NX, 0xbfc00000)
  TEST_S_TOINT(256, fcvt.l.s, rne, 0xb2d05e00, 0, 0x4f32d05e)   /* fits in 64 bits */
  TEST_S_TOINT(257, fcvt.lu.s, rne, 0x0, FFLAG_NV, 0xbf800000)
  TEST_S_TOINT(258, fcvt.lu.s, rne, 0xffffffffffffffff, FFLAG_NV, 0x5f800000)   /* 2^64: out of range */
  TEST_S_TOINT(259, fcvt.lu.s, rne, 0x8000000000000000, 0, 0x5f000000)   /* 2^63 fits unsigned */
  TEST_S_TOINT(260, fcvt.lu.s, rne, 0xffffffffffffffff, FFLAG_NV, 0x7fc00000)
  TEST_S_TOINT(261, fcvt.lu.s, rne, 0x0, FFLAG_NV, 0xff800000)
  TEST_S_TOINT(262, fcvt.lu.s, rmm, 0x3, FFLAG_NX, 0x40200000)

  /* Integer to float: the W forms read the low 32 bits only. */
  TEST_S_FROMINT(270, fcvt.s.w, rne, 0x4f000000, FFLAG_NX, 0x7fffffff)   /* 2^31-1 needs rounding */
  TEST_S_FROMINT(271, fcvt.s.w, rtz, 0x4effffff, FFLAG_NX, 0x7fffffff)
  TEST_S_FROMINT(272, fcvt.s.w, rne, 0xbf800000, 0, 0xffffffffffffffff)
  TEST_S_FROMINT(273, fcvt.s.w, rne, 0x3f800000, 0, 0xffffffff00000001)   /* upper bits ignored */
  TEST_S_FROMINT(274, fcvt.s.w, rne, 0xcf000000, 0, 0x80000000)   /* INT32_MIN */
  TEST_S_FROMINT(275, fcvt.s.wu, rne, 0x4f800000, FFLAG_NX, 0xffffffff)
  TEST_S_FROMINT(276, fcvt.s.wu, rdn, 0x4f7fffff, FFLAG_NX, 0xffffffff)
  TEST_S_FROMINT(277, fcvt.s.wu, rne, 0x40400000, 0, 0xffffffff00000003)
  TEST_S_FROMINT(278, fcvt.s.l, rne, 0xdf000000, 0, 0x8000000000000000)
  TEST_S_FROMINT(279, fcvt.s.l, rtz, 0x5effffff, FFLAG_NX, 0x7fffffffffffffff)
  TEST_S_FROMINT(280, fcvt.s.l, rne, 0xc0400000, 0, 0xfffffffffffffffd)
  TEST_S_FROMINT(281, fcvt.s.l, rup, 0x4f800001, FFLAG_NX, 0x100000001)
  TEST_S_FROMINT(282, fcvt.s.lu, rne, 0x5f800000, FFLAG_NX, 0xffffffffffffffff)
  TEST_S_FROMINT(283, fcvt.s.lu, rdn, 0x5f7fffff, FFLAG_NX, 0xffffffffffffffff)
  TEST_S_FROMINT(284, fcvt.s.lu, rne, 0x0, 0, 0x0)   /* exact +0 */

  /* ------------------------------------------------------------ fmin / fmax */
  /* minimumNumber/maximumNumber: a NaN operand is ignored (NV only if signaling),
   * two NaNs give the canonical NaN, and -0 is smaller than +0. */
  TEST_S2N(300, fmin.s, S_ONE, 0, S_ONE, S_TWO)
  TEST_S2N(301, fmax.s, S_TWO, 0, S_ONE, S_TWO)
  TEST_S2N(302, fmin.s, S_NZ, 0, S_NZ, S_PZ)
  TEST_S2N(303, fmin.s, S_NZ, 0, S_PZ, S_NZ)
  TEST_S2N(304, fmax.s, S_PZ, 0, S_NZ, S_PZ)
  TEST_S2N(305, fmax.s, S_PZ, 0, S_PZ, S_NZ)
  TEST_S2N(306, fmin.s, S_ONE, 0, S_QNAN, S_ONE)
  TEST_S2N(307, fmin.s, S_ONE, 0, S_ONE, S_QNAN)
  TEST_S2N(308, fmax.s, S_MONE, 0, 0xffc12345, S_MONE)
  TEST_S2N(309, fmin.s, S_ONE, FFLAG_NV, S_SNAN, S_ONE)
  TEST_S2N(310, fmax.s, S_ONE, FFLAG_NV, S_ONE, S_SNAN)
  TEST_S2N(311, fmin.s, S_QNAN, 0, 0x7fc12345, 0xffc00001)
  TEST_S2N(312, fmax.s, S_QNAN, FFLAG_NV, S_SNAN, S_QNAN)
  TEST_S2N(313, fmin.s, S_MINF, 0, S_INF, S_MINF)
  TEST_S2N(314, fmax.s, S_INF, 0, S_INF, S_MINF)
  TEST_S2N(315, fmin.s, S_MONE, 0, S_MONE, S_NZ)

  /* ------------------------------------------------------------ comparisons */
  /* feq is a quiet comparison (NV only for signaling NaNs); flt/fle are signaling
   * (NV for any NaN).  A NaN compares false; -0 == +0. */
  TEST_S_CMP(330, feq.s, 1, 0, S_ONE, S_ONE)
  TEST_S_CMP(331, feq.s, 0, 0, S_ONE, S_TWO)
  TEST_S_CMP(332, feq.s, 1, 0, S_NZ, S_PZ)
  TEST_S_CMP(333, feq.s, 0, 0, S_QNAN, S_ONE)
  TEST_S_CMP(334, feq.s, 0, 0, S_QNAN, S_QNAN)
  TEST_S_CMP(335, feq.s, 0, FFLAG_NV, S_SNAN, S_ONE)
  TEST_S_CMP(336, flt.s, 1, 0, S_ONE, S_TWO)
  TEST_S_CMP(337, flt.s, 0, 0, S_TWO, S_ONE)
  TEST_S_CMP(338, flt.s, 0, 0, S_NZ, S_PZ)
  TEST_S_CMP(339, flt.s, 0, FFLAG_NV, S_QNAN, S_ONE)
  TEST_S_CMP(340, flt.s, 1, 0, S_MINF, S_MONE)
  TEST_S_CMP(341, fle.s, 1, 0, S_ONE, S_ONE)
  TEST_S_CMP(342, fle.s, 1, 0, S_NZ, S_PZ)
  TEST_S_CMP(343, fle.s, 0, FFLAG_NV, S_ONE, S_QNAN)
  TEST_S_CMP(344, fle.s, 0, FFLAG_NV, S_SNAN, S_ONE)
  TEST_S_CMP(345, fle.s, 0, 0, S_TWO, S_ONE)

  /* ------------------------------------------------------------ fclass */
  TEST_S_CLASS(350, 0x001, S_MINF)        /* -inf */
  TEST_S_CLASS(351, 0x002, S_MONE)        /* negative normal */
  TEST_S_CLASS(352, 0x004, 0x807fffff)    /* negative subnormal */
  TEST_S_CLASS(353, 0x008, S_NZ)          /* -0 */
  TEST_S_CLASS(354, 0x010, S_PZ)          /* +0 */
  TEST_S_CLASS(355, 0x020, 0x00000001)    /* positive subnormal */
  TEST_S_CLASS(356, 0x040, 0x7f7fffff)    /* positive normal */
  TEST_S_CLASS(357, 0x080, S_INF)         /* +inf */
  TEST_S_CLASS(358, 0x100, S_SNAN)        /* signaling NaN */
  TEST_S_CLASS(359, 0x200, S_QNAN)        /* quiet NaN */
  TEST_S_CLASS(360, 0x100, 0xffbfffff)    /* negative signaling NaN */
  TEST_S_CLASS(361, 0x200, 0xffc00001)    /* negative quiet NaN */
  TEST_S_CLASS(362, 0x040, 0x00800000)    /* smallest normal */

  /* ------------------------------------------------------------ sign injection */
  /* Pure bit operations: no flags, NaN payloads pass through untouched. */
  TEST_S2N(370, fsgnj.s, S_MONE, 0, S_ONE, 0xc0000000)
  TEST_S2N(371, fsgnj.s, S_ONE, 0, S_MONE, S_TWO)
  TEST_S2N(372, fsgnjn.s, S_ONE, 0, S_ONE, 0xc0000000)
  TEST_S2N(373, fsgnjn.s, S_MONE, 0, S_ONE, S_TWO)
  TEST_S2N(374, fsgnjx.s, S_ONE, 0, S_MONE, 0xc0000000)
  TEST_S2N(375, fsgnjx.s, S_MONE, 0, S_MONE, S_TWO)
  TEST_S2N(376, fsgnj.s, 0xffc12345, 0, 0x7fc12345, S_NZ)
  TEST_S2N(377, fsgnjn.s, 0xff800001, 0, S_SNAN, S_PZ)
  TEST_CASE(378, a0, BOXED(0x3f800000), LDS(f1, S_MONE); fabs.s f3, f1; fmv.x.d a0, f3)
  TEST_CASE(379, a0, BOXED(0x3f800000), LDS(f1, S_MONE); fneg.s f3, f1; fmv.x.d a0, f3)
  TEST_CASE(380, a0, BOXED(0xbf800000), LDS(f1, S_MONE); fmv.s f3, f1; fmv.x.d a0, f3)

  /* ------------------------------------------------------------ moves, loads, stores */
  /* fmv.w.x takes the low 32 bits and NaN-boxes them; fmv.x.w sign-extends bit 31. */
  TEST_CASE(400, a0, BOXED(0x3f800000), li a1, 0x123456783f800000; fmv.w.x f1, a1; fmv.x.d a0, f1)
  TEST_CASE(401, a0, 0xffffffffbf800000, LDS(f1, S_MONE); fmv.x.w a0, f1)
  TEST_CASE(402, a0, 0x7fc00000, LDS(f1, S_QNAN); fmv.x.w a0, f1)
  /* Moves never touch NaN payloads or flags. */
  TEST_CASE(403, a0, BOXED(0x7f800001), fsflags zero; li a1, 0x7f800001; fmv.w.x f1, a1; fmv.x.d a0, f1; frflags a1; CHECK_EQ(a1, 0))
  /* flw boxes the loaded word unchanged (even a signaling NaN); fsw stores 32 bits. */
  TEST_CASE(404, a0, BOXED(0x7f812345), la a1, fbuf; li a2, 0x7f812345; sw a2, 0(a1); flw f1, 0(a1); fmv.x.d a0, f1)
  TEST_CASE(405, a0, 0x55555555bf800000, la a1, fbuf; li a2, 0x5555555555555555; sd a2, 0(a1); LDS(f1, S_MONE); fsw f1, 0(a1); ld a0, 0(a1))
  TEST_CASE(406, a0, BOXED(0xc0490fdb), la a1, fbuf; li a2, 0xc0490fdb; sw a2, 6(a1); flw f1, 6(a1); fmv.x.d a0, f1)   /* misaligned */

  /* ------------------------------------------------------------ NaN-boxing */
  /* A single-precision operation reading an f register whose upper 32 bits are not all
   * ones sees the canonical NaN instead.  Set up f1 with fmv.d.x (a 64-bit move). */
#define UNBOXED(freg, bits) li t5, bits; fmv.d.x freg, t5
  TEST_CASE(420, a0, BOXED(S_QNAN), UNBOXED(f1, 0x000000003f800000); fsflags zero; fadd.s f3, f1, f1; fmv.x.d a0, f3)
  TEST_CASE(421, a0, 0, frflags a0)                          /* canonical NaN is quiet: no NV */
  TEST_CASE(422, a0, BOXED(S_QNAN), UNBOXED(f1, 0xfffffffe3f800000); LDS(f2, S_ONE); fmul.s f3, f1, f2; fmv.x.d a0, f3)
  TEST_CASE(423, a0, 0x200, UNBOXED(f1, 0x7fffffff3f800000); fclass.s a0, f1)
  /* Sign injection uses the canonical NaN too, then applies the sign. */
  TEST_CASE(424, a0, BOXED(0x7fc00000), UNBOXED(f1, 0x00000000bf800000); LDS(f2, S_ONE); fsgnj.s f3, f1, f2; fmv.x.d a0, f3)
  TEST_CASE(425, a0, BOXED(0xbf800000), LDS(f1, S_ONE); UNBOXED(f2, 0x000000003f800000); fsgnjn.s f3, f1, f2; fmv.x.d a0, f3)   /* sign of the canonical NaN (+), negated */
  TEST_CASE(426, a0, BOXED(0x7fc00000), UNBOXED(f1, 0x12345678bf800000); fabs.s f3, f1; fmv.x.d a0, f3)
  /* fmin ignores the (quiet) canonical NaN; feq sees NaN and returns 0 without NV. */
  TEST_CASE(427, a0, BOXED(S_TWO), UNBOXED(f1, 0x00000000bf800000); LDS(f2, S_TWO); fmin.s f3, f1, f2; fmv.x.d a0, f3)
  TEST_CASE(428, a0, 0, UNBOXED(f1, 0x000000003f800000); LDS(f2, S_ONE); fsflags zero; feq.s a0, f1, f2; frflags a1; CHECK_EQ(a1, 0))
  TEST_CASE(429, a0, 0x7fffffff, UNBOXED(f1, 0x0000000040000000); fcvt.w.s a0, f1, rtz)
  TEST_CASE(430, a0, BOXED(S_QNAN), UNBOXED(f1, 0x0000000040000000); LDS(f2, S_ONE); LDS(f4, S_ONE); fmadd.s f3, f2, f4, f1; fmv.x.d a0, f3)
  /* Transfers are exempt: fmv.x.w and fsw move the low 32 bits as they are. */
  TEST_CASE(431, a0, 0xffffffffbf800000, UNBOXED(f1, 0x12345678bf800000); fmv.x.w a0, f1)
  TEST_CASE(432, a0, 0x3f800000, UNBOXED(f1, 0x000000003f800000); la a1, fbuf; fsw f1, 0(a1); lwu a0, 0(a1))
  /* A properly boxed value with the upper half all ones works normally. */
  TEST_CASE(433, a0, BOXED(0x40000000), UNBOXED(f1, 0xffffffff3f800000); fadd.s f3, f1, f1; fmv.x.d a0, f3)

  /* ------------------------------------------------------------ fcsr */
  /* fcsr = frm[7:5] | fflags[4:0]; bits above 7 read as zero. */
  TEST_CASE(450, a0, 0xff, li a1, 0xffffffff; fscsr a1; frcsr a0)
  TEST_CASE(451, a0, 7, frrm a0)
  TEST_CASE(452, a0, 0x1f, frflags a0)
  TEST_CASE(453, a0, 0x1f, li a1, 0x1f; fscsr a1; frcsr a0)
  TEST_CASE(454, a0, 0x5f, li a1, 2; fsrm a1; frcsr a0)
  TEST_CASE(455, a0, 0x45, li a1, 0x25; fsflags a2, a1; frcsr a0; CHECK_EQ(a2, 0x1f))   /* swap returns old */
  TEST_CASE(456, a0, 4, li a1, 0x7; fsrm a2, a1; frcsr a0; CHECK_EQ(a2, 2); srli a0, a0, 5; addi a0, a0, -3)
  /* The flags accrue: two operations OR their flags together. */
  TEST_CASE(457, a0, FFLAG_DZ|FFLAG_NX, fscsr zero; LDS(f1, S_ONE); LDS(f2, S_PZ); fdiv.s f3, f1, f2; LDS(f2, 0x40400000); fdiv.s f3, f1, f2; frflags a0)
  /* Immediate forms of the CSR instructions. */
  TEST_CASE(458, a0, 0x43, csrwi fflags, 3; csrwi frm, 2; csrsi fflags, 0x10; csrci fflags, 0x10; frcsr a0)
  fscsr zero
  /* Reserved static rounding modes 5 and 6 are illegal instructions... */
  li TESTNUM, 460
  expect_trap_tval CAUSE_ILLEGAL, FADD_S_RM5
  .word FADD_S_RM5
  CHECK_TRAPPED
  li TESTNUM, 461
  expect_trap_tval CAUSE_ILLEGAL, FADD_S_RM6
  .word FADD_S_RM6
  CHECK_TRAPPED
  /* ...and so is rm = dyn when frm holds 5, 6 or 7. */
  li TESTNUM, 462
  li a1, 5
  fsrm a1
  expect_trap CAUSE_ILLEGAL
  fadd.s f3, f1, f2, dyn
  CHECK_TRAPPED
  li TESTNUM, 463
  li a1, 7
  fsrm a1
  expect_trap CAUSE_ILLEGAL
  fsqrt.s f3, f1, dyn
  CHECK_TRAPPED
  /* A static mode does not look at frm. */
  TEST_CASE(464, a0, BOXED(0x40000000), LDS(f1, S_ONE); fadd.s f3, f1, f1, rne; fmv.x.d a0, f3)
  fscsr zero

  /* ------------------------------------------------------------ mstatus.FS */
  /* FS = Initial: any write to the FP state makes it Dirty (3), and SD mirrors it. */
#define SET_FS(v) li t5, MSTATUS_FS; csrc mstatus, t5; li t5, v; csrs mstatus, t5
#define FS_OF(reg) csrr reg, mstatus; srli reg, reg, 13; andi reg, reg, 3
  TEST_CASE(480, a0, 1, SET_FS(MSTATUS_FS_INITIAL); FS_OF(a0))
  TEST_CASE(481, a0, 0, csrr a0, mstatus; srli a0, a0, 63)              /* SD = 0 */
  TEST_CASE(482, a0, 3, LDS(f1, S_ONE); fadd.s f2, f1, f1; FS_OF(a0))
  TEST_CASE(483, a0, 1, csrr a0, mstatus; srli a0, a0, 63)              /* SD = 1 */
  TEST_CASE(484, a0, 1, csrr a0, sstatus; srli a0, a0, 63)              /* visible in sstatus */
  TEST_CASE(485, a0, 3, csrr a0, sstatus; srli a0, a0, 13; andi a0, a0, 3)
  /* Clean -> Dirty through an f-register load and through a write to fflags. */
  TEST_CASE(486, a0, 2, SET_FS(MSTATUS_FS_CLEAN); FS_OF(a0))
  TEST_CASE(487, a0, 3, la a1, fbuf; flw f5, 0(a1); FS_OF(a0))
  TEST_CASE(488, a0, 3, SET_FS(MSTATUS_FS_CLEAN); csrwi fflags, 1; FS_OF(a0))
  TEST_CASE(489, a0, 3, SET_FS(MSTATUS_FS_CLEAN); li a1, 5; fcvt.s.w f6, a1; FS_OF(a0))
  /* FS = Off: every FP instruction and FP CSR access is illegal, and the state is kept. */
  LDS(f7, 0x40490fdb)
  SET_FS(0)
  TEST_TRAP(490, CAUSE_ILLEGAL, fadd.s f3, f1, f2)
  TEST_TRAP(491, CAUSE_ILLEGAL, la a1, fbuf; flw f3, 0(a1))
  TEST_TRAP(492, CAUSE_ILLEGAL, la a1, fbuf; fsw f3, 0(a1))
  TEST_TRAP(493, CAUSE_ILLEGAL, fmv.x.w a0, f1)
  TEST_TRAP(494, CAUSE_ILLEGAL, fmv.w.x f1, a0)
  TEST_TRAP(495, CAUSE_ILLEGAL, frflags a0)
  TEST_TRAP(496, CAUSE_ILLEGAL, csrwi frm, 1)
  TEST_TRAP(497, CAUSE_ILLEGAL, frcsr a0)
  TEST_TRAP(498, CAUSE_ILLEGAL, feq.s a0, f1, f2)
  TEST_CASE(499, a0, 0, FS_OF(a0))
  TEST_CASE(500, a0, 0, csrr a0, mstatus; srli a0, a0, 63)
  TEST_CASE(501, a0, BOXED(0x40490fdb), SET_FS(MSTATUS_FS_INITIAL); fmv.x.d a0, f7)   /* register survived */

TEST_END

  .data
  .align 3
fbuf:
  .dword 0, 0
