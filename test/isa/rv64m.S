/*
 * RV64M: multiplication and division, including the W forms, division by zero and
 * signed overflow (which the spec defines to produce fixed results, never a trap).
 * Expected values come from the spec's definitions (table "Semantics for division by
 * zero and division overflow") evaluated with exact integer arithmetic.
 * Test numbers: by instruction in blocks of ten, 130+ for register aliasing.
 */
#include "macros.h"

TEST_BEGIN

  /* MUL: low 64 bits of the product, identical for signed and unsigned operands. */
  TEST_RR(1, mul, 0x15, 0x3, 0x7)
  TEST_RR(2, mul, 0x1, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(3, mul, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)
  TEST_RR(4, mul, 0x0, 0x100000000, 0x100000000)
  TEST_RR(5, mul, 0xfffffffffffffffe, 0x7fffffffffffffff, 0x2)
  TEST_RR(6, mul, 0x236d88fe5618cf00, 0x123456789abcdef0, 0xfedcba9876543210)

  /* MULH: high 64 bits of signed x signed. */
  TEST_RR(10, mulh, 0x0, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(11, mulh, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000)
  TEST_RR(12, mulh, 0xffffffffffffffff, 0x8000000000000000, 0x1)
  TEST_RR(13, mulh, 0x3fffffffffffffff, 0x7fffffffffffffff, 0x7fffffffffffffff)
  TEST_RR(14, mulh, 0x0, 0x2, 0x4000000000000000)
  TEST_RR(15, mulh, 0xffffffffffffffff, 0xfffffffffffffffe, 0x4000000000000000)
  TEST_RR(16, mulh, 0xffeb49923cc09532, 0x123456789abcdef0, 0xfedcba9876543210)

  /* MULHU: high 64 bits of unsigned x unsigned. */
  TEST_RR(20, mulhu, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(21, mulhu, 0x1, 0x8000000000000000, 0x2)
  TEST_RR(22, mulhu, 0x1, 0x100000000, 0x100000000)
  TEST_RR(23, mulhu, 0x121fa00ad77d7422, 0x123456789abcdef0, 0xfedcba9876543210)
  TEST_RR(24, mulhu, 0x0, 0xffffffffffffffff, 0x1)

  /* MULHSU: rs1 signed, rs2 unsigned.  -1 x (2^64-1) is negative, so the high word is all ones. */
  TEST_RR(30, mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(31, mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0x1)
  TEST_RR(32, mulhsu, 0x0, 0x1, 0xffffffffffffffff)
  TEST_RR(33, mulhsu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)
  TEST_RR(34, mulhsu, 0x7ffffffffffffffe, 0x7fffffffffffffff, 0xffffffffffffffff)
  TEST_RR(35, mulhsu, 0x121fa00ad77d7422, 0x123456789abcdef0, 0xfedcba9876543210)
  TEST_RR(36, mulhsu, 0xffffffffffffffff, 0xfffffffffffffffe, 0x8000000000000000)

  /* MULW: low 32 bits of the product of the low words, sign-extended. */
  TEST_RR(40, mulw, 0xfffffffffffffffe, 0x7fffffff, 0x2)
  TEST_RR(41, mulw, 0xf, 0x100000003, 0x100000005)
  TEST_RR(42, mulw, 0x1, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(43, mulw, 0x0, 0x10000, 0x10000)
  TEST_RR(44, mulw, 0x242d2080, 0x12345678, 0x9abcdef0)

  /* DIV rounds toward zero; x/0 = -1; INT64_MIN/-1 overflows to INT64_MIN (no trap). */
  TEST_RR(50, div, 0x3, 0x14, 0x6)
  TEST_RR(51, div, 0xfffffffffffffffd, 0xffffffffffffffec, 0x6)
  TEST_RR(52, div, 0xfffffffffffffffd, 0x14, 0xfffffffffffffffa)
  TEST_RR(53, div, 0x3, 0xffffffffffffffec, 0xfffffffffffffffa)
  TEST_RR(54, div, 0xffffffffffffffff, 0x4d2, 0x0)
  TEST_RR(55, div, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)
  TEST_RR(56, div, 0x8000000000000000, 0x8000000000000000, 0x1)
  TEST_RR(57, div, 0xffffffffffffffff, 0x0, 0x0)

  /* DIVU: x/0 = 2^64-1. */
  TEST_RR(60, divu, 0x7fffffffffffffff, 0xffffffffffffffff, 0x2)
  TEST_RR(61, divu, 0xffffffffffffffff, 0x4d2, 0x0)
  TEST_RR(62, divu, 0x2aaaaaaaaaaaaaa7, 0xffffffffffffffec, 0x6)
  TEST_RR(63, divu, 0x0, 0x8000000000000000, 0xffffffffffffffff)

  /* REM takes the sign of the dividend; x%0 = x; INT64_MIN%-1 = 0. */
  TEST_RR(70, rem, 0xfffffffffffffffe, 0xffffffffffffffec, 0x6)
  TEST_RR(71, rem, 0x2, 0x14, 0xfffffffffffffffa)
  TEST_RR(72, rem, 0x2, 0x14, 0x6)
  TEST_RR(73, rem, 0xfffffffffffffffe, 0xffffffffffffffec, 0xfffffffffffffffa)
  TEST_RR(74, rem, 0x4d2, 0x4d2, 0x0)
  TEST_RR(75, rem, 0xfffffffffffffb2e, 0xfffffffffffffb2e, 0x0)
  TEST_RR(76, rem, 0x0, 0x8000000000000000, 0xffffffffffffffff)

  /* REMU: x%0 = x. */
  TEST_RR(80, remu, 0x2, 0xffffffffffffffec, 0x6)
  TEST_RR(81, remu, 0x4d2, 0x4d2, 0x0)
  TEST_RR(82, remu, 0xffffffffffffffff, 0xffffffffffffffff, 0x0)
  TEST_RR(83, remu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)

  /* DIVW: 32-bit signed division of the low words; INT32_MIN/-1 = INT32_MIN, sign-extended. */
  TEST_RR(90, divw, 0xffffffff80000000, 0x80000000, 0xffffffffffffffff)
  TEST_RR(91, divw, 0xffffffffffffffff, 0x4d2, 0x0)
  TEST_RR(92, divw, 0xfffffffffffffffd, 0xffffffffffffffec, 0x6)
  TEST_RR(93, divw, 0x3, 0x100000014, 0xffffffff00000006)
  TEST_RR(94, divw, 0xffffffff80000001, 0x7fffffff, 0xffffffffffffffff)

  /* DIVUW: the 32-bit unsigned quotient is still sign-extended to 64 bits; x/0 = all ones. */
  TEST_RR(100, divuw, 0x7fffffff, 0xffffffff, 0x2)
  TEST_RR(101, divuw, 0xffffffffffffffff, 0x4d2, 0x0)
  TEST_RR(102, divuw, 0xffffffff80000000, 0x80000000, 0x1)
  TEST_RR(103, divuw, 0x3, 0xfffffffe00000014, 0x6)
  TEST_RR(104, divuw, 0x2aaaaaa7, 0xffffffffffffffec, 0x6)

  /* REMW: x%0 = sext(x[31:0]); INT32_MIN%-1 = 0. */
  TEST_RR(110, remw, 0x0, 0x80000000, 0xffffffffffffffff)
  TEST_RR(111, remw, 0xffffffff9abcdef0, 0x123456789abcdef0, 0x0)
  TEST_RR(112, remw, 0xfffffffffffffffe, 0xffffffffffffffec, 0x6)
  TEST_RR(113, remw, 0x2, 0x14, 0xfffffffffffffffa)
  TEST_RR(114, remw, 0x2, 0x100000014, 0x6)

  /* REMUW: x%0 = sext(x[31:0]); the remainder is sign-extended. */
  TEST_RR(120, remuw, 0xffffffff9abcdef0, 0x123456789abcdef0, 0x0)
  TEST_RR(121, remuw, 0xf, 0xffffffff, 0x10)
  TEST_RR(122, remuw, 0x2, 0xffffffffffffffec, 0x6)
  TEST_RR(123, remuw, 0x5, 0x80000005, 0x80000000)
  /* Destination aliasing a source: both sources are read before the write. */
  TEST_RR_DEST1(130, mul, 42, 6, 7)
  TEST_RR_DEST2(131, mulhu, 1, 0x8000000000000000, 2)
  TEST_RR_DEST1(132, div, 0xfffffffffffffffd, -20, 6)
  TEST_RR_DEST2(133, remu, 2, -20, 6)
  TEST_RR_DEST1(134, divw, 0xffffffff80000000, 0x80000000, -1)
  TEST_RR_ZERO(135, mul, 6, 7)
  TEST_RR_ZERO(136, div, 1, 0)
  /* Squaring (rs1 == rs2). */
  TEST_CASE(137, a0, 0xfffffffffffffffe, li a1, -1; mulhu a0, a1, a1)
  TEST_CASE(138, a0, 1, li a1, 0x8000000000000000; div a0, a1, a1)
  TEST_CASE(139, a0, 0, li a1, 0x80000000; remw a0, a1, a1)

TEST_END
