/*
 * RV64I base integer instructions.
 *
 * Every instruction is assembled in its 32-bit form (.option norvc): otherwise the
 * assembler would silently turn some of them into compressed instructions, which
 * rv64c.S covers.  Test numbers: ALU 1-199, W forms 200-299, LUI/AUIPC/jumps 300-399,
 * branches 400-499, loads/stores 500-599, misaligned 600-699, misc 700-799.
 */
#include "macros.h"

/* Branch taken / not taken with a1 = a, a2 = b. */
#define TEST_BR_TAKEN(n, op, a, b) \
  li TESTNUM, n; li a1, a; li a2, b; op a1, a2, 1f; FAIL_TEST; 1:
#define TEST_BR_NOT(n, op, a, b) \
  li TESTNUM, n; li a1, a; li a2, b; op a1, a2, 1f; j 2f; 1: FAIL_TEST; 2:

/* Load of the given width at sym+off, result checked. */
#define TEST_LD(n, op, exp, sym, off) \
  TEST_CASE(n, a0, exp, la a1, sym; op a0, off(a1))

TEST_BEGIN
  .option norvc

  /* ------------------------------------------------------------ register-register */
  TEST_RR(1, add, 3, 1, 2)
  TEST_RR(2, add, 0x8000000000000000, 0x7fffffffffffffff, 1)   /* wraps, no trap */
  TEST_RR(3, add, 0, -1, 1)
  TEST_RR(4, add, 0x100000000, 0xffffffff, 1)                   /* full 64-bit carry */
  TEST_RR_DEST1(5, add, 30, 10, 20)
  TEST_RR_DEST2(6, add, 30, 10, 20)
  TEST_RR_ZERO(7, add, 10, 20)

  TEST_RR(10, sub, -1, 0, 1)
  TEST_RR(11, sub, 0x7fffffffffffffff, 0x8000000000000000, 1)
  TEST_RR(12, sub, 0xffffffff00000000, 0, 0x100000000)
  TEST_RR_DEST1(13, sub, 7, 10, 3)
  TEST_RR_DEST2(14, sub, 7, 10, 3)

  /* Shift amounts come from the low 6 bits of rs2 only. */
  TEST_RR(20, sll, 0x8000000000000000, 1, 63)
  TEST_RR(21, sll, 1, 1, 64)
  TEST_RR(22, sll, 0x8000000000000000, 1, 0x7f)
  TEST_RR(23, sll, 2, 1, 0xffffffffffffffc1)
  TEST_RR(24, sll, 0xfffffffffffffff0, -1, 4)
  TEST_RR(25, sll, 0x0000000100000000, 0x80000000, 1)          /* no 32-bit truncation */

  TEST_RR(30, srl, 1, 0x8000000000000000, 63)
  TEST_RR(31, srl, 0x7fffffffffffffff, -1, 1)
  TEST_RR(32, srl, 0x0800000000000000, 0x8000000000000000, 68)  /* 68 & 63 = 4 */
  TEST_RR(33, srl, 0x8000000000000000, 0x8000000000000000, 0)

  TEST_RR(40, sra, -1, 0x8000000000000000, 63)
  TEST_RR(41, sra, 0xc000000000000000, 0x8000000000000000, 1)
  TEST_RR(42, sra, 0, 0x7fffffffffffffff, 63)
  TEST_RR(43, sra, 0xf800000000000000, 0x8000000000000000, 68)
  TEST_RR(44, sra, -1, -2, 1)

  TEST_RR(50, slt, 1, -1, 1)
  TEST_RR(51, slt, 0, 1, -1)
  TEST_RR(52, slt, 0, 5, 5)
  TEST_RR(53, slt, 1, 0x8000000000000000, 0x7fffffffffffffff)
  TEST_RR(55, sltu, 0, -1, 1)
  TEST_RR(56, sltu, 1, 1, -1)
  TEST_RR(57, sltu, 0, 5, 5)
  TEST_RR(58, sltu, 1, 0, 1)
  TEST_RR(59, sltu, 0, 0x8000000000000000, 0x7fffffffffffffff)

  TEST_RR(60, xor, 0xf00ff00ff00ff00f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
  TEST_RR(61, or,  0xff0fff0fff0fff0f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
  TEST_RR(62, and, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
  TEST_RR_DEST1(63, xor, 0, 0x1234, 0x1234)
  TEST_RR_DEST2(64, or, 0x1236, 0x1234, 0x0002)
  TEST_RR_ZERO(65, and, -1, -1)

  /* ------------------------------------------------------------ register-immediate */
  /* 12-bit immediates are sign-extended to 64 bits. */
  TEST_RI(100, addi, -2048, 0, -2048)
  TEST_RI(101, addi, 2048, 1, 2047)
  TEST_RI(102, addi, 0x8000000000000000, 0x7fffffffffffffff, 1)
  TEST_RI(103, addi, 0xffffffff, 0x100000000, -1)
  TEST_CASE(104, a0, 0, addi x0, x0, 5; mv a0, x0)

  TEST_RI(110, slti, 1, -1, 0)
  TEST_RI(111, slti, 0, 0, -1)
  TEST_RI(112, slti, 1, 0x8000000000000000, -2048)
  TEST_RI(113, slti, 0, 2047, 2047)
  TEST_RI(115, sltiu, 1, 0, -1)           /* -1 becomes 0xffff...ffff, compared unsigned */
  TEST_RI(116, sltiu, 0, 1, 1)
  TEST_RI(117, sltiu, 1, 0, 1)            /* seqz */
  TEST_RI(118, sltiu, 0, -1, -1)

  TEST_RI(120, xori, 0xffffffffffffff00, 0xff, -1)   /* not */
  TEST_RI(121, xori, 0x00ff00ff00ff070f, 0x00ff00ff00ff00f0, 0x7ff)
  TEST_RI(122, ori, 0xfffffffffffff800, 0, -2048)
  TEST_RI(123, ori, 0x123456789abcd7ff, 0x123456789abcd000, 0x7ff)
  TEST_RI(124, andi, 0x7ff, -1, 0x7ff)
  TEST_RI(125, andi, 0x123456789abcd800, 0x123456789abcdeff, -2048)

  TEST_RI(130, slli, 0x8000000000000000, 1, 63)
  TEST_RI(131, slli, 0x123456789abcdef0, 0x0123456789abcdef, 4)
  TEST_RI(132, slli, 0x0000000100000000, 0x80000000, 1)
  TEST_RI(133, srli, 1, -1, 63)
  TEST_RI(134, srli, 0x00ffffffffffffff, -1, 8)
  TEST_RI(135, srli, 0x8000000000000000, 0x8000000000000000, 0)
  TEST_RI(136, srai, -1, 0x8000000000000000, 63)
  TEST_RI(137, srai, 0xff80000000000000, 0x8000000000000000, 8)
  TEST_RI(138, srai, 0x007fffffffffffff, 0x7fffffffffffffff, 8)

  /* ------------------------------------------------------------ W forms */
  /* They read only the low 32 bits of their sources and sign-extend the 32-bit result. */
  TEST_RR(200, addw, 0xffffffff80000000, 0x7fffffff, 1)
  TEST_RR(201, addw, 3, 0x1234567800000001, 0x8765432100000002)
  TEST_RR(202, addw, -2, -1, -1)
  TEST_RR(203, addw, 0, 0xffffffff, 1)
  TEST_RR(205, subw, -1, 0, 1)
  TEST_RR(206, subw, 0x7fffffff, 0xffffffff80000000, 1)
  TEST_RR(207, subw, 0xffffffff80000000, 0, 0x80000000)
  TEST_RR(208, subw, 0, 0x1200000005, 0x3400000005)

  TEST_RR(210, sllw, 0xffffffff80000000, 1, 31)
  TEST_RR(211, sllw, 1, 1, 32)                       /* only rs2[4:0] is used */
  TEST_RR(212, sllw, 6, 0xffffffff00000003, 1)
  TEST_RR(213, sllw, 2, 1, 33)
  TEST_RR(214, sllw, 0, 0x100000000, 0)
  TEST_RR(215, srlw, 1, 0x80000000, 31)
  TEST_RR(216, srlw, 0xffffffff80000000, 0x1234567880000000, 0)
  TEST_RR(217, srlw, 0x7fffffff, -1, 1)
  TEST_RR(218, srlw, 0xffffffff80000000, 0x1234567880000000, 32)
  TEST_RR(219, srlw, 0x00ffffff, 0xffffffffffffffff, 0xffffffffffffffe8) /* rs2[4:0] = 8 */
  TEST_RR(220, sraw, -1, 0x80000000, 31)
  TEST_RR(221, sraw, 0, 0x7fffffff, 31)
  TEST_RR(222, sraw, 0xfffffffff8000000, 0x80000000, 4)
  TEST_RR(223, sraw, 0x07ffffff, 0xffffffff7fffffff, 4)   /* the upper word is ignored */
  TEST_RR(224, sraw, 0xffffffff80000000, 0x0000000080000000, 32)

  TEST_RI(230, addiw, 0xffffffff80000000, 0x7fffffff, 1)
  TEST_RI(231, addiw, -1, 0xffffffffffffffff, 0)
  TEST_RI(232, addiw, 0, 0x100000000, 0)                 /* sext.w */
  TEST_RI(233, addiw, 0xffffffff80000000, 0x80000000, 0)
  TEST_RI(234, addiw, 0x7fffffff, 0xffffffff80000000, -1)
  TEST_RI(235, addiw, -2048, 0x5500000000, -2048)
  TEST_RI(240, slliw, 0xffffffff80000000, 1, 31)
  TEST_RI(241, slliw, 1, 0x100000001, 0)
  TEST_RI(242, slliw, 0x12345670, 0xabcdef0001234567, 4)
  TEST_RI(245, srliw, 1, 0x80000000, 31)
  TEST_RI(246, srliw, 0xffffffff80000000, 0x80000000, 0)
  TEST_RI(247, srliw, 0x7fffffff, -1, 1)
  TEST_RI(248, srliw, 0x0fffffff, 0x12345678ffffffff, 4)
  TEST_RI(250, sraiw, -1, 0x80000000, 31)
  TEST_RI(251, sraiw, 0x7fffffff, 0x7fffffff, 0)
  TEST_RI(252, sraiw, 0xfffffffff8000000, 0x1234567880000000, 4)
  TEST_RI(253, sraiw, 0, 0xffffffff7fffffff, 31)

  /* ------------------------------------------------------------ LUI / AUIPC */
  TEST_CASE(300, a0, 0xffffffff80000000, lui a0, 0x80000)   /* bit 31 sign-extends */
  TEST_CASE(301, a0, 0x7ffff000, lui a0, 0x7ffff)
  TEST_CASE(302, a0, 0, lui a0, 0)
  TEST_CASE(303, a0, 0xfffffffffffff000, lui a0, 0xfffff)
  TEST_CASE(304, a0, 0, lui x0, 0x12345; mv a0, x0)
  TEST_CASE(305, a0, 0, 1: auipc a0, 0; la a1, 1b; sub a0, a0, a1)
  TEST_CASE(306, a0, 0x1000, 1: auipc a0, 1; la a1, 1b; sub a0, a0, a1)
  TEST_CASE(307, a0, 0xffffffff80000000, 1: auipc a0, 0x80000; la a1, 1b; sub a0, a0, a1)
  TEST_CASE(308, a0, 0xfffffffffffff000, 1: auipc a0, 0xfffff; la a1, 1b; sub a0, a0, a1)

  /* ------------------------------------------------------------ JAL / JALR */
  /* JAL writes pc+4 and jumps pc-relative. */
  TEST_CASE(310, a0, 0, jal a0, 1f; 2: FAIL_TEST; 1: la a1, 2b; sub a0, a0, a1)
  /* Backward JAL. */
  li TESTNUM, 311
  j 2f
1:
  j 3f
2:
  jal x0, 1b
  FAIL_TEST
3:
  /* JAL x0 links nowhere. */
  TEST_CASE(312, a0, 0, jal x0, 1f; FAIL_TEST; 1: mv a0, x0)
  /* JALR writes pc+4, target = (rs1 + imm) & ~1. */
  TEST_CASE(320, a0, 0, la t0, 1f; jalr a0, 0(t0); 2: FAIL_TEST; 1: la a1, 2b; sub a0, a0, a1)
  TEST_CASE(321, a0, 0, la t0, 1f; addi t0, t0, 1; jalr a0, 0(t0); 2: FAIL_TEST; 1: la a1, 2b; sub a0, a0, a1)
  TEST_CASE(322, a0, 0, la t0, 1f; jalr a0, 1(t0); 2: FAIL_TEST; 1: la a1, 2b; sub a0, a0, a1)
  TEST_CASE(323, a0, 0, la t0, 1f; addi t0, t0, 16; jalr a0, -16(t0); 2: FAIL_TEST; 1: la a1, 2b; sub a0, a0, a1)
  TEST_CASE(324, a0, 0, la t0, 1f; addi t0, t0, -15; jalr a0, 15(t0); 2: FAIL_TEST; 1: la a1, 2b; sub a0, a0, a1)
  /* rd == rs1: the target uses the old value, then rd gets the link. */
  TEST_CASE(325, a0, 0, la t0, 1f; jalr t0, 0(t0); 2: FAIL_TEST; 1: la a1, 2b; sub a0, t0, a1)
  /* Call and return through ra. */
  TEST_CASE(326, a0, 42, li a0, 0; jal ra, rv64i_func42; nop)

  /* ------------------------------------------------------------ branches */
  TEST_BR_TAKEN(400, beq, 5, 5)
  TEST_BR_NOT(401, beq, 5, 6)
  TEST_BR_TAKEN(402, beq, -1, -1)
  TEST_BR_NOT(403, beq, 0x100000000, 0)           /* all 64 bits compared */
  TEST_BR_TAKEN(404, bne, 0x100000000, 0)
  TEST_BR_NOT(405, bne, 7, 7)
  TEST_BR_TAKEN(410, blt, -1, 1)
  TEST_BR_NOT(411, blt, 1, -1)
  TEST_BR_NOT(412, blt, 3, 3)
  TEST_BR_TAKEN(413, blt, 0x8000000000000000, 0x7fffffffffffffff)
  TEST_BR_TAKEN(414, bge, 1, -1)
  TEST_BR_TAKEN(415, bge, 3, 3)
  TEST_BR_NOT(416, bge, -1, 1)
  TEST_BR_NOT(417, bge, 0x8000000000000000, 0)
  TEST_BR_NOT(420, bltu, -1, 1)
  TEST_BR_TAKEN(421, bltu, 1, -1)
  TEST_BR_NOT(422, bltu, 3, 3)
  TEST_BR_TAKEN(423, bltu, 0x7fffffffffffffff, 0x8000000000000000)
  TEST_BR_TAKEN(424, bgeu, -1, 1)
  TEST_BR_TAKEN(425, bgeu, 3, 3)
  TEST_BR_NOT(426, bgeu, 0, -1)
  TEST_BR_NOT(427, bgeu, 0x7fffffffffffffff, 0x8000000000000000)
  /* Backward taken branch: a counted loop runs exactly 10 times. */
  TEST_CASE(430, a0, 10, li a0, 0; li a1, 10; 1: addi a0, a0, 1; addi a1, a1, -1; bnez a1, 1b)
  TEST_CASE(431, a0, 5, li a0, 0; li a1, -5; 1: addi a0, a0, 1; addi a1, a1, 1; blt a1, x0, 1b)

  /* ------------------------------------------------------------ loads */
  /* tdata bytes (little endian): 87 96 a5 b4 c3 d2 e1 f0 | ef cd ab 89 67 45 23 01 */
  TEST_LD(500, lb,  0xffffffffffffff87, tdata, 0)
  TEST_LD(501, lbu, 0x87, tdata, 0)
  TEST_LD(502, lb,  0xffffffffffffffef, tdata, 8)
  TEST_LD(503, lb,  0x01, tdata, 15)
  TEST_LD(504, lbu, 0x23, tdata, 14)
  TEST_LD(505, lh,  0xffffffffffff9687, tdata, 0)
  TEST_LD(506, lhu, 0x9687, tdata, 0)
  TEST_LD(507, lh,  0x4567, tdata, 12)
  TEST_LD(508, lhu, 0xf0e1, tdata, 6)
  TEST_LD(509, lw,  0xffffffffb4a59687, tdata, 0)
  TEST_LD(510, lwu, 0xb4a59687, tdata, 0)
  TEST_LD(511, lw,  0xfffffffff0e1d2c3, tdata, 4)
  TEST_LD(512, lw,  0x01234567, tdata, 12)
  TEST_LD(513, lwu, 0x01234567, tdata, 12)
  TEST_LD(514, ld,  0xf0e1d2c3b4a59687, tdata, 0)
  TEST_LD(515, ld,  0x0123456789abcdef, tdata, 8)
  /* Negative offsets. */
  TEST_CASE(516, a0, 0xf0e1d2c3b4a59687, la a1, tdata+16; ld a0, -16(a1))
  TEST_CASE(517, a0, 0xffffffffffffffef, la a1, tdata+16; lb a0, -8(a1))
  /* Load into the base register. */
  TEST_CASE(518, a1, 0x0123456789abcdef, la a1, tdata; ld a1, 8(a1))
  /* Load to x0 is discarded (but still performed). */
  TEST_CASE(519, a0, 0, la a1, tdata; ld x0, 0(a1); mv a0, x0)

  /* ------------------------------------------------------------ stores */
  /* Each store must touch exactly its bytes: check the whole doubleword afterwards. */
  TEST_CASE(530, a0, 0xaa, la a1, sbuf; sd x0, 0(a1); li a2, 0x12345678aa; sb a2, 0(a1); ld a0, 0(a1))
  TEST_CASE(531, a0, 0x00bb0000000000aa, la a1, sbuf; li a2, 0xbb; sb a2, 6(a1); ld a0, 0(a1))
  TEST_CASE(532, a0, 0x00bb0000567800aa, la a1, sbuf; li a2, 0x12345678; sh a2, 2(a1); ld a0, 0(a1))
  TEST_CASE(533, a0, 0xdeadbeef567800aa, la a1, sbuf; li a2, 0x11deadbeef; sw a2, 4(a1); ld a0, 0(a1))
  TEST_CASE(534, a0, 0x0123456789abcdef, la a1, sbuf; li a2, 0x0123456789abcdef; sd a2, 0(a1); ld a0, 0(a1))
  TEST_CASE(535, a0, 0x55, la a1, sbuf+8; sd x0, 0(a1); li a2, 0x55; sb a2, -8(a1); lbu a0, -8(a1))
  TEST_CASE(536, a0, 0x0123456789abcd55, la a1, sbuf; ld a0, 0(a1))
  /* Store then load of every width round-trips with the right extension. */
  TEST_CASE(537, a0, 0xffffffffffff8001, la a1, sbuf; li a2, 0x8001; sh a2, 8(a1); lh a0, 8(a1))
  TEST_CASE(538, a0, 0xffffffff80000001, la a1, sbuf; li a2, 0x80000001; sw a2, 8(a1); lw a0, 8(a1))
  TEST_CASE(539, a0, 0x80000001, la a1, sbuf; lwu a0, 8(a1))

  /* ------------------------------------------------------------ misaligned */
  /* Parley (and QEMU) perform misaligned accesses in hardware: no trap, same result
   * as the byte-by-byte access. */
  TEST_LD(600, lh,  0xffffffffffffa596, tdata, 1)
  TEST_LD(601, lhu, 0xeff0, tdata, 7)
  TEST_LD(602, lw,  0xffffffffe1d2c3b4, tdata, 3)
  TEST_LD(603, lwu, 0xeff0e1d2, tdata, 5)
  TEST_LD(604, ld,  0xeff0e1d2c3b4a596, tdata, 1)
  TEST_LD(605, ld,  0x23456789abcdeff0, tdata, 7)
  TEST_LD(606, lw,  0x456789ab, tdata, 10)
  TEST_CASE(607, a0, 0x00112233445566ff, la a1, sbuf; sd x0, 0(a1); sd x0, 8(a1); li a2, 0x00112233445566ff; sd a2, 3(a1); ld a0, 3(a1))
  TEST_CASE(608, a0, 0x33445566ff000000, la a1, sbuf; ld a0, 0(a1))
  TEST_CASE(609, a0, 0x1122, la a1, sbuf; ld a0, 8(a1))
  TEST_CASE(610, a0, 0xffffffffcafe6666, la a1, sbuf; li a2, 0xcafe66; sw a2, 5(a1); lw a0, 4(a1))
  TEST_CASE(611, a0, 0xbeef, la a1, sbuf; li a2, 0xbeef; sh a2, 11(a1); lhu a0, 11(a1))

  /* Across a 4 KiB page boundary: xbuf+4096 is the start of the second page. */
  /* Fill 16 bytes around the boundary with 0x10..0x1f using aligned byte stores. */
  li TESTNUM, 620
  la a1, xbuf+4096-8
  li a2, 0x10
  li a3, 16
1:
  sb a2, 0(a1)
  addi a1, a1, 1
  addi a2, a2, 1
  addi a3, a3, -1
  bnez a3, 1b
  TEST_CASE(621, a0, 0x1a19181716151413, la a1, xbuf+4096; ld a0, -5(a1))
  TEST_CASE(622, a0, 0x1817161514131211, la a1, xbuf+4096; ld a0, -7(a1))
  TEST_CASE(623, a0, 0x18171615, la a1, xbuf+4096; lwu a0, -3(a1))
  TEST_CASE(624, a0, 0x1817, la a1, xbuf+4096; lhu a0, -1(a1))
  TEST_CASE(625, a0, 0x1817, la a1, xbuf+4096; lh a0, -1(a1))
  TEST_CASE(626, a0, 0x1a191817, la a1, xbuf+4096; lw a0, -1(a1))
  /* A misaligned store across the boundary, checked byte by byte on each side. */
  TEST_CASE(627, a0, 0xa1, la a1, xbuf+4096; li a2, 0xa8a7a6a5a4a3a2a1; sd a2, -3(a1); lbu a0, -3(a1))
  TEST_CASE(628, a0, 0xa3, la a1, xbuf+4096; lbu a0, -1(a1))
  TEST_CASE(629, a0, 0xa4, la a1, xbuf+4096; lbu a0, 0(a1))
  TEST_CASE(630, a0, 0xa8, la a1, xbuf+4096; lbu a0, 4(a1))
  TEST_CASE(631, a0, 0x1d, la a1, xbuf+4096; lbu a0, 5(a1))      /* untouched */
  TEST_CASE(632, a0, 0x14, la a1, xbuf+4096; lbu a0, -4(a1))     /* untouched */
  TEST_CASE(633, a0, 0xb2b1, la a1, xbuf+4096; li a2, 0xb2b1; sh a2, -1(a1); lhu a0, -1(a1))
  TEST_CASE(634, a0, 0xa8a7a6a5b2b1a2a1, la a1, xbuf+4096; ld a0, -3(a1))
  TEST_CASE(635, a0, 0xfffffffffaf9f8f7, la a1, xbuf+4096; li a2, 0xfaf9f8f7; sw a2, -2(a1); lw a0, -2(a1))

  /* ------------------------------------------------------------ misc */
  /* FENCE and FENCE.I execute as no-ops for a single hart... */
  TEST_CASE(700, a0, 3, li a0, 1; fence; addi a0, a0, 1; fence rw, rw; fence.i; fence iorw, iorw; addi a0, a0, 1)
  /* ...but FENCE.I must make a store to code visible to instruction fetch (a translator
   * that caches decoded code has to notice).  smc_slot first returns 1; patch it to
   * return 2 (addi a0, x0, 2 = 0x00200513), execute it before and after fence.i. */
  TEST_CASE(701, a0, 1, jal ra, smc_slot)
  TEST_CASE(702, a0, 2, la a1, smc_slot; li a2, 0x00200513; sw a2, 0(a1); fence.i; jal ra, smc_slot)
  TEST_CASE(703, a0, 7, la a1, smc_slot; li a2, 0x00700513; sw a2, 0(a1); fence.i; jal ra, smc_slot)
  /* The same function patched in a loop: each iteration must see its own value. */
  li TESTNUM, 704
  li s0, 20
  la s1, smc_slot
1:
  slli a2, s0, 20
  li a3, 0x513            /* addi a0, x0, imm: imm in bits 31:20 */
  or a2, a2, a3
  sw a2, 0(s1)
  fence.i
  jal ra, smc_slot
  CHECK_EQ_REG(a0, s0)
  addi s0, s0, -1
  bnez s0, 1b
  /* HINTs encoded as writes to x0 have no effect. */
  TEST_CASE(710, a0, 0, slti x0, x0, 1; sltiu x0, x0, 1; add x0, x0, gp; mv a0, x0)

TEST_END

  /* A section of its own: .align under norvc is only reliable at a known offset. */
  .section .text.rv64i_funcs, "ax", @progbits
  .option norvc
rv64i_func42:
  li a0, 42
  ret
  .align 3
smc_slot:
  addi a0, x0, 1
  ret

  .data
  .align 4
tdata:
  .dword 0xf0e1d2c3b4a59687, 0x0123456789abcdef
sbuf:
  .dword 0, 0, 0, 0

  .bss
  .align 12
xbuf:
  .skip 8192
