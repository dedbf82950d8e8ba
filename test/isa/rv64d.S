/*
 * RV64D: double-precision arithmetic in every rounding mode, fflags, canonical NaNs,
 * conversions (integer <-> double with saturation, single <-> double with rounding,
 * tininess after rounding and NaN-boxing), fmin/fmax, FMA single rounding, fclass,
 * comparisons, 64-bit moves, loads/stores and FS tracking.
 * Values follow IEEE 754-2008 as the RISC-V D chapter specifies it; they were computed
 * with exact rational arithmetic.
 * Test numbers: rounding 1-99, flags/special values 100-149, FMA 150-199,
 * integer conversions 200-289, fcvt.s.d 290-309, fcvt.d.s 310-329,
 * fmin/fmax 330-349, compares 350-369, fclass 370-389, sign injection 390-409,
 * moves/loads/stores 410-429, reserved rounding modes 430-439, mstatus.FS 440-459.
 */
#include "macros.h"

#define LDD(freg, bits) li t5, bits; fmv.d.x freg, t5
#define LDS(freg, bits) li t5, bits; fmv.w.x freg, t5

#define TEST_D2(n, inst, rm, exp, flags, a, b) \
  li TESTNUM, n; LDD(f1, a); LDD(f2, b); fsflags zero; inst f3, f1, f2, rm; \
  frflags a1; fmv.x.d a0, f3; CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)
#define TEST_D2_DYN(n, inst, frm, exp, flags, a, b) \
  li t5, frm; fsrm t5; TEST_D2(n, inst, dyn, exp, flags, a, b); fsrm zero
#define TEST_D1(n, inst, rm, exp, flags, a) \
  li TESTNUM, n; LDD(f1, a); fsflags zero; inst f3, f1, rm; \
  frflags a1; fmv.x.d a0, f3; CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)
#define TEST_D3(n, inst, rm, exp, flags, a, b, c) \
  li TESTNUM, n; LDD(f1, a); LDD(f2, b); LDD(f4, c); fsflags zero; inst f3, f1, f2, f4, rm; \
  frflags a1; fmv.x.d a0, f3; CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)
#define TEST_D2N(n, inst, exp, flags, a, b) \
  li TESTNUM, n; LDD(f1, a); LDD(f2, b); fsflags zero; inst f3, f1, f2; \
  frflags a1; fmv.x.d a0, f3; CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)
#define TEST_D_TOINT(n, inst, rm, exp, flags, a) \
  li TESTNUM, n; LDD(f1, a); fsflags zero; inst a0, f1, rm; frflags a1; \
  CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)
#define TEST_D_FROMINT(n, inst, rm, exp, flags, ival) \
  li TESTNUM, n; li a2, ival; fsflags zero; inst f3, a2, rm; frflags a1; fmv.x.d a0, f3; \
  CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)
/* fcvt.d.w/fcvt.d.wu are always exact and take no rounding mode. */
#define TEST_D_FROMINT32(n, inst, exp, flags, ival) \
  li TESTNUM, n; li a2, ival; fsflags zero; inst f3, a2; frflags a1; fmv.x.d a0, f3; \
  CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)
#define TEST_D_CMP(n, inst, exp, flags, a, b) \
  li TESTNUM, n; LDD(f1, a); LDD(f2, b); fsflags zero; inst a0, f1, f2; frflags a1; \
  CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)
#define TEST_D_CLASS(n, exp, a) \
  li TESTNUM, n; LDD(f1, a); fclass.d a0, f1; CHECK_EQ(a0, exp)
/* fcvt.s.d: double in, NaN-boxed single out. */
#define TEST_SD(n, rm, exp, flags, a) \
  li TESTNUM, n; LDD(f1, a); fsflags zero; fcvt.s.d f3, f1, rm; frflags a1; fmv.x.d a0, f3; \
  CHECK_EQ(a0, (0xffffffff00000000|(exp))); CHECK_EQ(a1, flags)
/* fcvt.d.s: boxed single in (always exact, so the rounding mode does not matter). */
#define TEST_DS(n, exp, flags, a) \
  li TESTNUM, n; LDS(f1, a); fsflags zero; fcvt.d.s f3, f1; frflags a1; fmv.x.d a0, f3; \
  CHECK_EQ(a0, exp); CHECK_EQ(a1, flags)

/* fadd.d f3, f1, f2 with the reserved rounding modes 5 and 6. */
#define FADD_D_RM5 0x0220d1d3
#define FADD_D_RM6 0x0220e1d3

#define D_QNAN 0x7ff8000000000000
#define D_SNAN 0x7ff0000000000001
#define D_ONE  0x3ff0000000000000
#define D_MONE 0xbff0000000000000
#define D_TWO  0x4000000000000000
#define D_PZ   0x0000000000000000
#define D_NZ   0x8000000000000000
#define D_INF  0x7ff0000000000000
#define D_MINF 0xfff0000000000000

TEST_BEGIN

  /* Rounding: 1 + 2^-53 is an exact tie between 1 and 1+2^-52. */
  TEST_D2(1, fadd.d, rne, 0x3ff0000000000000, FFLAG_NX, 0x3ff0000000000000, 0x3ca0000000000000)
  TEST_D2(2, fadd.d, rtz, 0x3ff0000000000000, FFLAG_NX, 0x3ff0000000000000, 0x3ca0000000000000)
  TEST_D2(3, fadd.d, rdn, 0x3ff0000000000000, FFLAG_NX, 0x3ff0000000000000, 0x3ca0000000000000)
  TEST_D2(4, fadd.d, rup, 0x3ff0000000000001, FFLAG_NX, 0x3ff0000000000000, 0x3ca0000000000000)
  TEST_D2(5, fadd.d, rmm, 0x3ff0000000000001, FFLAG_NX, 0x3ff0000000000000, 0x3ca0000000000000)

  /* -1 - 2^-53. */
  TEST_D2(6, fadd.d, rne, 0xbff0000000000000, FFLAG_NX, 0xbff0000000000000, 0xbca0000000000000)
  TEST_D2(7, fadd.d, rtz, 0xbff0000000000000, FFLAG_NX, 0xbff0000000000000, 0xbca0000000000000)
  TEST_D2(8, fadd.d, rdn, 0xbff0000000000001, FFLAG_NX, 0xbff0000000000000, 0xbca0000000000000)
  TEST_D2(9, fadd.d, rup, 0xbff0000000000000, FFLAG_NX, 0xbff0000000000000, 0xbca0000000000000)
  TEST_D2(10, fadd.d, rmm, 0xbff0000000000001, FFLAG_NX, 0xbff0000000000000, 0xbca0000000000000)

  /* (1+2^-52) + 2^-53: a tie with an odd lower neighbour. */
  TEST_D2(11, fadd.d, rne, 0x3ff0000000000002, FFLAG_NX, 0x3ff0000000000001, 0x3ca0000000000000)
  TEST_D2(12, fadd.d, rtz, 0x3ff0000000000001, FFLAG_NX, 0x3ff0000000000001, 0x3ca0000000000000)
  TEST_D2(13, fadd.d, rdn, 0x3ff0000000000001, FFLAG_NX, 0x3ff0000000000001, 0x3ca0000000000000)
  TEST_D2(14, fadd.d, rup, 0x3ff0000000000002, FFLAG_NX, 0x3ff0000000000001, 0x3ca0000000000000)
  TEST_D2(15, fadd.d, rmm, 0x3ff0000000000002, FFLAG_NX, 0x3ff0000000000001, 0x3ca0000000000000)

  /* 1 - 2^-54: a tie just below 1. */
  TEST_D2(16, fsub.d, rne, 0x3ff0000000000000, FFLAG_NX, 0x3ff0000000000000, 0x3c90000000000000)
  TEST_D2(17, fsub.d, rtz, 0x3fefffffffffffff, FFLAG_NX, 0x3ff0000000000000, 0x3c90000000000000)
  TEST_D2(18, fsub.d, rdn, 0x3fefffffffffffff, FFLAG_NX, 0x3ff0000000000000, 0x3c90000000000000)
  TEST_D2(19, fsub.d, rup, 0x3ff0000000000000, FFLAG_NX, 0x3ff0000000000000, 0x3c90000000000000)
  TEST_D2(20, fsub.d, rmm, 0x3ff0000000000000, FFLAG_NX, 0x3ff0000000000000, 0x3c90000000000000)

  /* (1+2^-52)^2 = 1 + 2^-51 + 2^-104, both signs. */
  TEST_D2(21, fmul.d, rne, 0x3ff0000000000002, FFLAG_NX, 0x3ff0000000000001, 0x3ff0000000000001)
  TEST_D2(22, fmul.d, rtz, 0x3ff0000000000002, FFLAG_NX, 0x3ff0000000000001, 0x3ff0000000000001)
  TEST_D2(23, fmul.d, rdn, 0x3ff0000000000002, FFLAG_NX, 0x3ff0000000000001, 0x3ff0000000000001)
  TEST_D2(24, fmul.d, rup, 0x3ff0000000000003, FFLAG_NX, 0x3ff0000000000001, 0x3ff0000000000001)
  TEST_D2(25, fmul.d, rmm, 0x3ff0000000000002, FFLAG_NX, 0x3ff0000000000001, 0x3ff0000000000001)
  TEST_D2(26, fmul.d, rne, 0xbff0000000000002, FFLAG_NX, 0xbff0000000000001, 0x3ff0000000000001)
  TEST_D2(27, fmul.d, rtz, 0xbff0000000000002, FFLAG_NX, 0xbff0000000000001, 0x3ff0000000000001)
  TEST_D2(28, fmul.d, rdn, 0xbff0000000000003, FFLAG_NX, 0xbff0000000000001, 0x3ff0000000000001)
  TEST_D2(29, fmul.d, rup, 0xbff0000000000002, FFLAG_NX, 0xbff0000000000001, 0x3ff0000000000001)
  TEST_D2(30, fmul.d, rmm, 0xbff0000000000002, FFLAG_NX, 0xbff0000000000001, 0x3ff0000000000001)

  /* 1/3 and -1/3. */
  TEST_D2(31, fdiv.d, rne, 0x3fd5555555555555, FFLAG_NX, 0x3ff0000000000000, 0x4008000000000000)
  TEST_D2(32, fdiv.d, rtz, 0x3fd5555555555555, FFLAG_NX, 0x3ff0000000000000, 0x4008000000000000)
  TEST_D2(33, fdiv.d, rdn, 0x3fd5555555555555, FFLAG_NX, 0x3ff0000000000000, 0x4008000000000000)
  TEST_D2(34, fdiv.d, rup, 0x3fd5555555555556, FFLAG_NX, 0x3ff0000000000000, 0x4008000000000000)
  TEST_D2(35, fdiv.d, rmm, 0x3fd5555555555555, FFLAG_NX, 0x3ff0000000000000, 0x4008000000000000)
  TEST_D2(36, fdiv.d, rne, 0xbfd5555555555555, FFLAG_NX, 0xbff0000000000000, 0x4008000000000000)
  TEST_D2(37, fdiv.d, rtz, 0xbfd5555555555555, FFLAG_NX, 0xbff0000000000000, 0x4008000000000000)
  TEST_D2(38, fdiv.d, rdn, 0xbfd5555555555556, FFLAG_NX, 0xbff0000000000000, 0x4008000000000000)
  TEST_D2(39, fdiv.d, rup, 0xbfd5555555555555, FFLAG_NX, 0xbff0000000000000, 0x4008000000000000)
  TEST_D2(40, fdiv.d, rmm, 0xbfd5555555555555, FFLAG_NX, 0xbff0000000000000, 0x4008000000000000)

  /* sqrt(2) and sqrt(3). */
  TEST_D1(41, fsqrt.d, rne, 0x3ff6a09e667f3bcd, FFLAG_NX, 0x4000000000000000)
  TEST_D1(42, fsqrt.d, rtz, 0x3ff6a09e667f3bcc, FFLAG_NX, 0x4000000000000000)
  TEST_D1(43, fsqrt.d, rdn, 0x3ff6a09e667f3bcc, FFLAG_NX, 0x4000000000000000)
  TEST_D1(44, fsqrt.d, rup, 0x3ff6a09e667f3bcd, FFLAG_NX, 0x4000000000000000)
  TEST_D1(45, fsqrt.d, rmm, 0x3ff6a09e667f3bcd, FFLAG_NX, 0x4000000000000000)
  TEST_D1(46, fsqrt.d, rne, 0x3ffbb67ae8584caa, FFLAG_NX, 0x4008000000000000)
  TEST_D1(47, fsqrt.d, rtz, 0x3ffbb67ae8584caa, FFLAG_NX, 0x4008000000000000)
  TEST_D1(48, fsqrt.d, rdn, 0x3ffbb67ae8584caa, FFLAG_NX, 0x4008000000000000)
  TEST_D1(49, fsqrt.d, rup, 0x3ffbb67ae8584cab, FFLAG_NX, 0x4008000000000000)
  TEST_D1(50, fsqrt.d, rmm, 0x3ffbb67ae8584caa, FFLAG_NX, 0x4008000000000000)

  /* Dynamic rounding follows frm. */
  TEST_D2_DYN(51, fadd.d, 0, 0x3ff0000000000002, FFLAG_NX, 0x3ff0000000000001, 0x3ca0000000000000)   /* frm = rne */
  TEST_D2_DYN(52, fadd.d, 1, 0x3ff0000000000001, FFLAG_NX, 0x3ff0000000000001, 0x3ca0000000000000)   /* frm = rtz */
  TEST_D2_DYN(53, fadd.d, 2, 0x3ff0000000000001, FFLAG_NX, 0x3ff0000000000001, 0x3ca0000000000000)   /* frm = rdn */
  TEST_D2_DYN(54, fadd.d, 3, 0x3ff0000000000002, FFLAG_NX, 0x3ff0000000000001, 0x3ca0000000000000)   /* frm = rup */
  TEST_D2_DYN(55, fadd.d, 4, 0x3ff0000000000002, FFLAG_NX, 0x3ff0000000000001, 0x3ca0000000000000)   /* frm = rmm */
  TEST_D2_DYN(56, fdiv.d, 0, 0xbfd5555555555555, FFLAG_NX, 0xbff0000000000000, 0x4008000000000000)   /* frm = rne */
  TEST_D2_DYN(57, fdiv.d, 1, 0xbfd5555555555555, FFLAG_NX, 0xbff0000000000000, 0x4008000000000000)   /* frm = rtz */
  TEST_D2_DYN(58, fdiv.d, 2, 0xbfd5555555555556, FFLAG_NX, 0xbff0000000000000, 0x4008000000000000)   /* frm = rdn */
  TEST_D2_DYN(59, fdiv.d, 3, 0xbfd5555555555555, FFLAG_NX, 0xbff0000000000000, 0x4008000000000000)   /* frm = rup */
  TEST_D2_DYN(60, fdiv.d, 4, 0xbfd5555555555555, FFLAG_NX, 0xbff0000000000000, 0x4008000000000000)   /* frm = rmm */

  /* Overflow. */
  TEST_D2(100, fmul.d, rne, 0x7ff0000000000000, FFLAG_OF|FFLAG_NX, 0x7fefffffffffffff, 0x4000000000000000)
  TEST_D2(101, fmul.d, rtz, 0x7fefffffffffffff, FFLAG_OF|FFLAG_NX, 0x7fefffffffffffff, 0x4000000000000000)
  TEST_D2(102, fmul.d, rdn, 0x7fefffffffffffff, FFLAG_OF|FFLAG_NX, 0x7fefffffffffffff, 0x4000000000000000)
  TEST_D2(103, fmul.d, rup, 0x7ff0000000000000, FFLAG_OF|FFLAG_NX, 0x7fefffffffffffff, 0x4000000000000000)
  TEST_D2(104, fmul.d, rmm, 0x7ff0000000000000, FFLAG_OF|FFLAG_NX, 0x7fefffffffffffff, 0x4000000000000000)
  TEST_D2(105, fmul.d, rne, 0xfff0000000000000, FFLAG_OF|FFLAG_NX, 0xffefffffffffffff, 0x4000000000000000)
  TEST_D2(106, fmul.d, rtz, 0xffefffffffffffff, FFLAG_OF|FFLAG_NX, 0xffefffffffffffff, 0x4000000000000000)
  TEST_D2(107, fmul.d, rdn, 0xfff0000000000000, FFLAG_OF|FFLAG_NX, 0xffefffffffffffff, 0x4000000000000000)
  TEST_D2(108, fmul.d, rup, 0xffefffffffffffff, FFLAG_OF|FFLAG_NX, 0xffefffffffffffff, 0x4000000000000000)
  TEST_D2(109, fmul.d, rmm, 0xfff0000000000000, FFLAG_OF|FFLAG_NX, 0xffefffffffffffff, 0x4000000000000000)

  /* Underflow: tiny and exact raises nothing; tiny and inexact raises UF|NX. */
  TEST_D2(110, fmul.d, rne, 0x8000000000000, 0, 0x10000000000000, 0x3fe0000000000000)   /* 2^-1023: exact subnormal */
  TEST_D2(111, fmul.d, rne, 0x8000000000000, FFLAG_UF|FFLAG_NX, 0x10000000000001, 0x3fe0000000000000)   /* half an ulp lost */
  TEST_D2(112, fmul.d, rup, 0x8000000000001, FFLAG_UF|FFLAG_NX, 0x10000000000001, 0x3fe0000000000000)
  TEST_D2(113, fmul.d, rne, 0x10000000000000, FFLAG_UF|FFLAG_NX, 0x3fefffffffffffff, 0x10000000000000)   /* rounds up to the smallest normal but was tiny */
  TEST_D2(114, fmul.d, rne, 0x0, FFLAG_UF|FFLAG_NX, 0x1, 0x3fe0000000000000)   /* half the smallest subnormal: ties to even zero */
  TEST_D2(115, fmul.d, rup, 0x1, FFLAG_UF|FFLAG_NX, 0x1, 0x3fe0000000000000)

  /* Division by zero, invalid operations, exact zeros. */
  TEST_D2(120, fdiv.d, rne, 0x7ff0000000000000, FFLAG_DZ, 0x3ff0000000000000, 0x0)   /* DZ: +inf */
  TEST_D2(121, fdiv.d, rne, 0xfff0000000000000, FFLAG_DZ, 0xbff0000000000000, 0x0)   /* DZ: -inf */
  TEST_D2(122, fdiv.d, rne, 0x7ff8000000000000, FFLAG_NV, 0x0, 0x0)   /* NV: canonical NaN */
  TEST_D2(123, fsub.d, rne, 0x7ff8000000000000, FFLAG_NV, 0x7ff0000000000000, 0x7ff0000000000000)   /* NV */
  TEST_D2(124, fmul.d, rne, 0x7ff8000000000000, FFLAG_NV, 0x0, 0xfff0000000000000)   /* NV */
  TEST_D1(125, fsqrt.d, rne, 0x7ff8000000000000, FFLAG_NV, 0xbff0000000000000)   /* NV */
  TEST_D1(126, fsqrt.d, rne, 0x8000000000000000, 0, 0x8000000000000000)   /* sqrt(-0) = -0 */
  TEST_D2(127, fsub.d, rne, 0x0, 0, 0x3ff0000000000000, 0x3ff0000000000000)   /* x - x = +0 ... */
  TEST_D2(128, fsub.d, rdn, 0x8000000000000000, 0, 0x3ff0000000000000, 0x3ff0000000000000)   /* ... except -0 when rounding down */
  TEST_D2(129, fadd.d, rne, 0x8000000000000000, 0, 0x8000000000000000, 0x8000000000000000)   /* -0 + -0 = -0 */

  /* NaN results are the canonical NaN 0x7ff8000000000000. */
  TEST_D2(140, fadd.d, rne, 0x7ff8000000000000, 0, 0x7ff8000000012345, 0x3ff0000000000000)   /* quiet NaN input: no flag */
  TEST_D2(141, fadd.d, rne, 0x7ff8000000000000, 0, 0x3ff0000000000000, 0xfff8000000000000)
  TEST_D2(142, fmul.d, rne, 0x7ff8000000000000, FFLAG_NV, 0x7ff0000000000001, 0x3ff0000000000000)   /* signaling NaN input: NV */
  TEST_D1(143, fsqrt.d, rne, 0x7ff8000000000000, 0, 0x7ff8000000012345)
  TEST_D2(144, fdiv.d, rne, 0x7ff8000000000000, 0, 0x7ff8000000000000, 0x0)   /* no DZ for a NaN dividend */
  TEST_D2(145, fadd.d, rne, 0x7ff8000000000000, 0, 0xffffffff3f800000, 0x3ff0000000000000)   /* a boxed single is just a quiet NaN to a double op */

  /* Fused multiply-add rounds once: (1+2^-27)^2 - 1 = 2^-26 + 2^-54 exactly; a separate
   * multiply would lose the 2^-54 (a tie, rounded to even) and give 2^-26. */
  TEST_D3(150, fmadd.d, rne, 0x3e70000004000000, 0, 0x3ff0000008000000, 0x3ff0000008000000, 0xbff0000000000000)
  TEST_D3(151, fmsub.d, rne, 0x3e70000004000000, 0, 0x3ff0000008000000, 0x3ff0000008000000, 0x3ff0000000000000)   /* a*b - c */
  TEST_D3(152, fnmsub.d, rne, 0xbe70000004000000, 0, 0x3ff0000008000000, 0x3ff0000008000000, 0x3ff0000000000000)   /* -(a*b) + c */
  TEST_D3(153, fnmadd.d, rne, 0xbe70000004000000, 0, 0x3ff0000008000000, 0x3ff0000008000000, 0xbff0000000000000)   /* -(a*b) - c */
  TEST_D3(154, fmadd.d, rne, 0x3cc0000000000000, FFLAG_NX, 0x3ff0000000000001, 0x3ff0000000000001, 0xbff0000000000000)   /* exact: 2^-51 + 2^-104 */
  TEST_D3(155, fmadd.d, rtz, 0x3cc0000000000000, FFLAG_NX, 0x3ff0000000000001, 0x3ff0000000000001, 0xbff0000000000000)
  TEST_D3(156, fmadd.d, rdn, 0x3cc0000000000000, FFLAG_NX, 0x3ff0000000000001, 0x3ff0000000000001, 0xbff0000000000000)
  TEST_D3(157, fmadd.d, rup, 0x3cc0000000000001, FFLAG_NX, 0x3ff0000000000001, 0x3ff0000000000001, 0xbff0000000000000)
  TEST_D3(158, fmadd.d, rmm, 0x3cc0000000000001, FFLAG_NX, 0x3ff0000000000001, 0x3ff0000000000001, 0xbff0000000000000)
  TEST_D3(159, fmadd.d, rup, 0x4008000000000001, FFLAG_NX, 0x3ff0000000000000, 0x4008000000000000, 0x3ca0000000000000)
  TEST_D3(160, fmadd.d, rne, 0x7ff8000000000000, FFLAG_NV, 0x7ff0000000000000, 0x0, 0x7ff8000000000000)   /* inf*0 + qNaN: NV */
  TEST_D3(161, fmadd.d, rne, 0x7ff8000000000000, FFLAG_NV, 0x3ff0000000000000, 0x3ff0000000000000, 0x7ff0000000000001)
  TEST_D3(162, fmadd.d, rne, 0x7fefffffffffffff, 0, 0x7fefffffffffffff, 0x4000000000000000, 0xffefffffffffffff)   /* no intermediate overflow */
  TEST_D3(163, fnmsub.d, rne, 0x0, 0, 0x3ff0000000000000, 0x0, 0x0)   /* -(1*0) + 0 = +0 */

  /* Double to integer. */
  TEST_D_TOINT(200, fcvt.w.d, rne, 0x2, FFLAG_NX, 0x3ff8000000000000)
  TEST_D_TOINT(201, fcvt.w.d, rtz, 0x1, FFLAG_NX, 0x3ff8000000000000)
  TEST_D_TOINT(202, fcvt.w.d, rdn, 0x1, FFLAG_NX, 0x3ff8000000000000)
  TEST_D_TOINT(203, fcvt.w.d, rup, 0x2, FFLAG_NX, 0x3ff8000000000000)
  TEST_D_TOINT(204, fcvt.w.d, rmm, 0x2, FFLAG_NX, 0x3ff8000000000000)
  TEST_D_TOINT(205, fcvt.w.d, rne, 0xfffffffffffffffe, FFLAG_NX, 0xbff8000000000000)
  TEST_D_TOINT(206, fcvt.w.d, rtz, 0xffffffffffffffff, FFLAG_NX, 0xbff8000000000000)
  TEST_D_TOINT(207, fcvt.w.d, rdn, 0xfffffffffffffffe, FFLAG_NX, 0xbff8000000000000)
  TEST_D_TOINT(208, fcvt.w.d, rup, 0xffffffffffffffff, FFLAG_NX, 0xbff8000000000000)
  TEST_D_TOINT(209, fcvt.w.d, rmm, 0xfffffffffffffffe, FFLAG_NX, 0xbff8000000000000)
  TEST_D_TOINT(210, fcvt.w.d, rne, 0x2, FFLAG_NX, 0x4004000000000000)
  TEST_D_TOINT(211, fcvt.w.d, rmm, 0x3, FFLAG_NX, 0x4004000000000000)
  TEST_D_TOINT(212, fcvt.w.d, rne, 0x7fffffff, FFLAG_NV, 0x41dfffffffe00000)   /* rounds to 2^31: out of range, NV without NX */
  TEST_D_TOINT(213, fcvt.w.d, rtz, 0x7fffffff, FFLAG_NX, 0x41dfffffffe00000)   /* rounds to 2^31-1: only NX */
  TEST_D_TOINT(214, fcvt.w.d, rne, 0xffffffff80000000, FFLAG_NX, 0xc1e0000000100000)   /* ties to even -2^31: in range */
  TEST_D_TOINT(215, fcvt.w.d, rdn, 0xffffffff80000000, FFLAG_NV, 0xc1e0000000100000)   /* -2^31-1: out of range */
  TEST_D_TOINT(216, fcvt.w.d, rne, 0x7fffffff, FFLAG_NV, 0x7ff8000000000000)
  TEST_D_TOINT(217, fcvt.w.d, rne, 0xffffffff80000000, FFLAG_NV, 0xfff0000000000000)
  TEST_D_TOINT(218, fcvt.w.d, rne, 0x7fffffff, FFLAG_NV, 0x7ff0000000000000)
  TEST_D_TOINT(230, fcvt.wu.d, rne, 0x0, FFLAG_NV, 0xbff0000000000000)
  TEST_D_TOINT(231, fcvt.wu.d, rtz, 0x0, FFLAG_NX, 0xbfe0000000000000)   /* rounds to 0: only NX */
  TEST_D_TOINT(232, fcvt.wu.d, rne, 0xffffffffffffffff, 0, 0x41efffffffe00000)   /* 2^32-1, sign-extended */
  TEST_D_TOINT(233, fcvt.wu.d, rne, 0xffffffffffffffff, FFLAG_NV, 0x41f0000000000000)
  TEST_D_TOINT(234, fcvt.wu.d, rne, 0xffffffffffffffff, FFLAG_NV, 0x7ff8000000000000)
  TEST_D_TOINT(235, fcvt.wu.d, rne, 0xffffffff80000000, 0, 0x41e0000000000000)
  TEST_D_TOINT(250, fcvt.l.d, rne, 0x7fffffffffffffff, FFLAG_NV, 0x7ff8000000000000)
  TEST_D_TOINT(251, fcvt.l.d, rne, 0x8000000000000000, FFLAG_NV, 0xfff0000000000000)
  TEST_D_TOINT(252, fcvt.l.d, rne, 0x7fffffffffffffff, FFLAG_NV, 0x7ff0000000000000)
  TEST_D_TOINT(253, fcvt.l.d, rne, 0x7fffffffffffffff, FFLAG_NV, 0x43e0000000000000)   /* 2^63: out of range */
  TEST_D_TOINT(254, fcvt.l.d, rne, 0x8000000000000000, 0, 0xc3e0000000000000)   /* -2^63: exact */
  TEST_D_TOINT(255, fcvt.l.d, rne, 0x7ffffffffffffc00, 0, 0x43dfffffffffffff)   /* largest double below 2^63 */
  TEST_D_TOINT(256, fcvt.l.d, rup, 0xffffffffffffffff, FFLAG_NX, 0xbff8000000000000)
  TEST_D_TOINT(257, fcvt.lu.d, rne, 0x0, FFLAG_NV, 0xbff0000000000000)
  TEST_D_TOINT(258, fcvt.lu.d, rne, 0xffffffffffffffff, FFLAG_NV, 0x43f0000000000000)   /* 2^64: out of range */
  TEST_D_TOINT(259, fcvt.lu.d, rne, 0xfffffffffffff800, 0, 0x43efffffffffffff)   /* largest double below 2^64 */
  TEST_D_TOINT(260, fcvt.lu.d, rne, 0xffffffffffffffff, FFLAG_NV, 0xfff8000000000000)
  TEST_D_TOINT(261, fcvt.lu.d, rmm, 0x0, FFLAG_NV, 0xbfe8000000000000)   /* rounds to -1: NV */

  /* Integer to double: 32-bit sources are always exact. */
  TEST_D_FROMINT32(270, fcvt.d.w, 0x41dfffffffc00000, 0, 0x7fffffff)
  TEST_D_FROMINT32(271, fcvt.d.w, 0xc1e0000000000000, 0, 0xffffffff80000000)
  TEST_D_FROMINT32(272, fcvt.d.w, 0xbff0000000000000, 0, 0x12345678ffffffff)   /* upper bits ignored: -1 */
  TEST_D_FROMINT32(273, fcvt.d.wu, 0x41efffffffe00000, 0, 0xffffffff)
  TEST_D_FROMINT32(274, fcvt.d.wu, 0x41e0000000000000, 0, 0xffffffff80000000)   /* low word 2^31 */
  TEST_D_FROMINT(275, fcvt.d.l, rne, 0x43e0000000000000, FFLAG_NX, 0x7fffffffffffffff)   /* needs rounding */
  TEST_D_FROMINT(276, fcvt.d.l, rtz, 0x43dfffffffffffff, FFLAG_NX, 0x7fffffffffffffff)
  TEST_D_FROMINT(277, fcvt.d.l, rne, 0xc3e0000000000000, 0, 0x8000000000000000)
  TEST_D_FROMINT(278, fcvt.d.l, rne, 0xc008000000000000, 0, 0xfffffffffffffffd)
  TEST_D_FROMINT(279, fcvt.d.lu, rne, 0x43f0000000000000, FFLAG_NX, 0xffffffffffffffff)
  TEST_D_FROMINT(280, fcvt.d.lu, rtz, 0x43efffffffffffff, FFLAG_NX, 0xffffffffffffffff)
  TEST_D_FROMINT(281, fcvt.d.lu, rne, 0x43e0000000000001, FFLAG_NX, 0x8000000000000401)   /* just above a tie: rounds up */
  TEST_D_FROMINT(282, fcvt.d.lu, rne, 0x43e0000000000000, FFLAG_NX, 0x8000000000000400)   /* a tie: rounds to even */

  /* ------------------------------------------------------------ fcvt.s.d / fcvt.d.s */
  /* 0x380ffffff0000000 is 2^-126 * (1 - 2^-25).  Rounded to single precision with an
   * unbounded exponent it becomes exactly 2^-126, so with tininess detected after
   * rounding (as RISC-V specifies) it is not tiny: NX but no UF. */
  TEST_SD(290, rne, 0x3f800000, FFLAG_NX, 0x3ff0000001000000)   /* 1 + 2^-24: a tie in single */
  TEST_SD(291, rtz, 0x3f800000, FFLAG_NX, 0x3ff0000001000000)
  TEST_SD(292, rdn, 0x3f800000, FFLAG_NX, 0x3ff0000001000000)
  TEST_SD(293, rup, 0x3f800001, FFLAG_NX, 0x3ff0000001000000)
  TEST_SD(294, rmm, 0x3f800000, FFLAG_NX, 0x3ff0000001000000)
  TEST_SD(295, rne, 0x7f800000, FFLAG_OF|FFLAG_NX, 0x7e37e43c8800759c)   /* overflow */
  TEST_SD(296, rtz, 0x7f7fffff, FFLAG_OF|FFLAG_NX, 0x7e37e43c8800759c)
  TEST_SD(297, rup, 0xff7fffff, FFLAG_OF|FFLAG_NX, 0xfe37e43c8800759c)
  TEST_SD(298, rne, 0x800000, FFLAG_NX, 0x380ffffff0000000)   /* 2^-126(1-2^-25): rounds to 2^-126, not tiny after rounding: no UF */
  TEST_SD(299, rtz, 0x7fffff, FFLAG_UF|FFLAG_NX, 0x380ffffff0000000)   /* rounds down to a subnormal: UF */
  TEST_SD(300, rne, 0x0, FFLAG_UF|FFLAG_NX, 0x358dee7a4ad4b81f)   /* underflow to zero */
  TEST_SD(301, rne, 0x7fc00000, 0, 0x7ff8000000012345)   /* canonical single NaN */
  TEST_SD(302, rne, 0x7fc00000, FFLAG_NV, 0x7ff0000000000001)
  TEST_SD(303, rne, 0x80000000, 0, 0x8000000000000000)
  TEST_SD(304, rne, 0xff800000, 0, 0xfff0000000000000)
  TEST_DS(310, 0x3ff8000000000000, 0, 0x3fc00000)
  TEST_DS(311, 0x36a0000000000000, 0, 0x1)   /* smallest single subnormal is a normal double */
  TEST_DS(312, 0x7ff8000000000000, 0, 0x7fc12345)   /* canonical double NaN */
  TEST_DS(313, 0x7ff8000000000000, FFLAG_NV, 0x7f800001)   /* sNaN: NV */
  TEST_DS(314, 0xfff0000000000000, 0, 0xff800000)
  TEST_DS(315, 0x8000000000000000, 0, 0x80000000)
  /* fcvt.d.s of a register that is not a NaN-boxed single reads the canonical NaN. */
  TEST_CASE(320, a0, D_QNAN, LDD(f1, 0x000000003f800000); fsflags zero; fcvt.d.s f3, f1; fmv.x.d a0, f3; frflags a1; CHECK_EQ(a1, 0))
  /* Round trip single -> double -> single is exact. */
  TEST_CASE(321, a0, 0xffffffffc0490fdb, LDS(f1, 0xc0490fdb); fcvt.d.s f2, f1; fcvt.s.d f3, f2; fmv.x.d a0, f3)

  /* ------------------------------------------------------------ fmin / fmax */
  TEST_D2N(330, fmin.d, D_ONE, 0, D_ONE, D_TWO)
  TEST_D2N(331, fmax.d, D_TWO, 0, D_ONE, D_TWO)
  TEST_D2N(332, fmin.d, D_NZ, 0, D_PZ, D_NZ)
  TEST_D2N(333, fmax.d, D_PZ, 0, D_NZ, D_PZ)
  TEST_D2N(334, fmin.d, D_ONE, 0, D_QNAN, D_ONE)
  TEST_D2N(335, fmax.d, D_MONE, 0, D_MONE, 0xfff8000000012345)
  TEST_D2N(336, fmin.d, D_ONE, FFLAG_NV, D_SNAN, D_ONE)
  TEST_D2N(337, fmax.d, D_ONE, FFLAG_NV, D_ONE, D_SNAN)
  TEST_D2N(338, fmin.d, D_QNAN, 0, 0x7ff8000000012345, 0x7ff8000000000001)
  TEST_D2N(339, fmax.d, D_QNAN, FFLAG_NV, D_SNAN, D_SNAN)
  TEST_D2N(340, fmin.d, D_MINF, 0, D_INF, D_MINF)
  /* A boxed single is a quiet NaN to a double operation, so fmin returns the number. */
  TEST_D2N(341, fmin.d, D_TWO, 0, 0xffffffff3f800000, D_TWO)

  /* ------------------------------------------------------------ comparisons */
  TEST_D_CMP(350, feq.d, 1, 0, D_ONE, D_ONE)
  TEST_D_CMP(351, feq.d, 1, 0, D_NZ, D_PZ)
  TEST_D_CMP(352, feq.d, 0, 0, D_QNAN, D_QNAN)
  TEST_D_CMP(353, feq.d, 0, FFLAG_NV, D_ONE, D_SNAN)
  TEST_D_CMP(354, flt.d, 1, 0, D_ONE, D_TWO)
  TEST_D_CMP(355, flt.d, 0, 0, D_NZ, D_PZ)
  TEST_D_CMP(356, flt.d, 0, FFLAG_NV, D_QNAN, D_ONE)
  TEST_D_CMP(357, fle.d, 1, 0, D_PZ, D_NZ)
  TEST_D_CMP(358, fle.d, 0, FFLAG_NV, D_ONE, D_QNAN)
  TEST_D_CMP(359, fle.d, 1, 0, D_MINF, D_MINF)
  /* Doubles differing only in the low bit of the mantissa. */
  TEST_D_CMP(360, flt.d, 1, 0, D_ONE, 0x3ff0000000000001)
  TEST_D_CMP(361, feq.d, 0, 0, D_ONE, 0x3ff0000000000001)

  /* ------------------------------------------------------------ fclass */
  TEST_D_CLASS(370, 0x001, D_MINF)
  TEST_D_CLASS(371, 0x002, D_MONE)
  TEST_D_CLASS(372, 0x004, 0x800fffffffffffff)
  TEST_D_CLASS(373, 0x008, D_NZ)
  TEST_D_CLASS(374, 0x010, D_PZ)
  TEST_D_CLASS(375, 0x020, 0x0000000000000001)
  TEST_D_CLASS(376, 0x040, 0x7fefffffffffffff)
  TEST_D_CLASS(377, 0x080, D_INF)
  TEST_D_CLASS(378, 0x100, D_SNAN)
  TEST_D_CLASS(379, 0x200, D_QNAN)
  TEST_D_CLASS(380, 0x200, 0xffffffff3f800000)     /* a boxed single, seen as a double */
  TEST_D_CLASS(381, 0x100, 0xfff7ffffffffffff)

  /* ------------------------------------------------------------ sign injection */
  TEST_D2N(390, fsgnj.d, D_MONE, 0, D_ONE, 0xc000000000000000)
  TEST_D2N(391, fsgnjn.d, D_ONE, 0, D_ONE, 0xc000000000000000)
  TEST_D2N(392, fsgnjx.d, D_ONE, 0, D_MONE, 0xc000000000000000)
  TEST_D2N(393, fsgnjx.d, D_MONE, 0, D_MONE, D_TWO)
  TEST_D2N(394, fsgnj.d, 0xfff0000000000001, 0, D_SNAN, D_NZ)      /* payload kept, no NV */
  TEST_CASE(395, a0, D_ONE, LDD(f1, D_MONE); fabs.d f3, f1; fmv.x.d a0, f3)
  TEST_CASE(396, a0, D_MONE, LDD(f1, D_ONE); fneg.d f3, f1; fmv.x.d a0, f3)

  /* ------------------------------------------------------------ moves, loads, stores */
  /* fmv.d.x / fmv.x.d move all 64 bits, including NaN payloads, without flags. */
  TEST_CASE(410, a0, 0x7ff0000000000001, fsflags zero; li a1, 0x7ff0000000000001; fmv.d.x f1, a1; fmv.x.d a0, f1; frflags a1; CHECK_EQ(a1, 0))
  TEST_CASE(411, a0, 0x0123456789abcdef, la a1, dbuf; li a2, 0x0123456789abcdef; sd a2, 0(a1); fld f1, 0(a1); fmv.x.d a0, f1)
  TEST_CASE(412, a0, 0xfff0000000abcdef, la a1, dbuf; LDD(f1, 0xfff0000000abcdef); fsd f1, 8(a1); ld a0, 8(a1))
  TEST_CASE(413, a0, 0xc00921fb54442d18, la a1, dbuf; li a2, 0xc00921fb54442d18; sd a2, 4(a1); fld f1, 4(a1); fmv.x.d a0, f1)   /* misaligned */
  TEST_CASE(414, a0, 0x400921fb54442d18, la a1, dbuf; LDD(f1, 0x400921fb54442d18); fsd f1, 3(a1); ld a0, 3(a1))
  /* fsd of a NaN-boxed single stores the whole box. */
  TEST_CASE(415, a0, 0xffffffff3f800000, la a1, dbuf; LDS(f1, 0x3f800000); fsd f1, 0(a1); ld a0, 0(a1))
  /* fld then a single-precision op: the loaded value is a valid box. */
  TEST_CASE(416, a0, 0xffffffff40000000, la a1, dbuf; fld f1, 0(a1); fadd.s f3, f1, f1; fmv.x.d a0, f3)

  /* ------------------------------------------------------------ reserved rounding modes */
  li TESTNUM, 430
  expect_trap_tval CAUSE_ILLEGAL, FADD_D_RM5
  .word FADD_D_RM5
  CHECK_TRAPPED
  li TESTNUM, 431
  expect_trap_tval CAUSE_ILLEGAL, FADD_D_RM6
  .word FADD_D_RM6
  CHECK_TRAPPED
  li TESTNUM, 432
  li a1, 6
  fsrm a1
  expect_trap CAUSE_ILLEGAL
  fmul.d f3, f1, f2, dyn
  CHECK_TRAPPED
  li TESTNUM, 433
  expect_trap CAUSE_ILLEGAL
  fcvt.l.d a0, f1, dyn
  CHECK_TRAPPED
  fscsr zero

  /* ------------------------------------------------------------ mstatus.FS */
#define SET_FS(v) li t5, MSTATUS_FS; csrc mstatus, t5; li t5, v; csrs mstatus, t5
#define FS_OF(reg) csrr reg, mstatus; srli reg, reg, 13; andi reg, reg, 3
  TEST_CASE(440, a0, 3, SET_FS(MSTATUS_FS_CLEAN); la a1, dbuf; fld f5, 0(a1); FS_OF(a0))
  TEST_CASE(441, a0, 1, csrr a0, mstatus; srli a0, a0, 63)
  TEST_CASE(442, a0, 3, SET_FS(MSTATUS_FS_INITIAL); li a1, 1; fmv.d.x f5, a1; FS_OF(a0))
  TEST_CASE(443, a0, 3, SET_FS(MSTATUS_FS_CLEAN); LDD(f1, D_ONE); fmadd.d f2, f1, f1, f1; FS_OF(a0))
  LDD(f8, 0x4005bf0a8b145769)
  SET_FS(0)
  TEST_TRAP(444, CAUSE_ILLEGAL, la a1, dbuf; fld f3, 0(a1))
  TEST_TRAP(445, CAUSE_ILLEGAL, la a1, dbuf; fsd f3, 0(a1))
  TEST_TRAP(446, CAUSE_ILLEGAL, fmv.x.d a0, f1)
  TEST_TRAP(447, CAUSE_ILLEGAL, fmv.d.x f1, a0)
  TEST_TRAP(448, CAUSE_ILLEGAL, fcvt.d.s f1, f2)
  TEST_TRAP(449, CAUSE_ILLEGAL, fsqrt.d f1, f2)
  TEST_TRAP(450, CAUSE_ILLEGAL, la a1, dbuf; c.fld f9, 0(a1))
  TEST_CASE(451, a0, 0, FS_OF(a0))
  TEST_CASE(452, a0, 0x4005bf0a8b145769, SET_FS(MSTATUS_FS_INITIAL); fmv.x.d a0, f8)

TEST_END

  .data
  .align 4
dbuf:
  .dword 0x4000000000000000, 0, 0
