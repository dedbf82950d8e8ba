/*
 * RV64C: every compressed instruction of RV64GC, written with explicit c. mnemonics so
 * the encoding under test is the 16-bit one.  (c.jal and c.flw/c.fsw are RV32-only; in
 * RV64 their slots are c.addiw and c.ld/c.sd.)  CL/CS/CA/CB formats only reach x8-x15
 * (s0, s1, a0-a5), so those tests use them.
 * Test numbers: immediates 1-29, shifts/ALU 30-59, loads/stores 60-99,
 * control transfer 100-139, misc 140-149, reserved encodings 150-159.
 */
#include "macros.h"

TEST_BEGIN
  .option rvc

  /* ------------------------------------------------------------ immediates */
  TEST_CASE(1, a0, 0xffffffffffffffe0, c.li a0, -32)        /* 6-bit immediate, sign-extended */
  TEST_CASE(2, a0, 31, c.li a0, 31)
  TEST_CASE(3, t3, 0, li t3, 5; c.li t3, 0)                    /* any register */
  TEST_CASE(4, a0, 0xffffffffffffffe0, li a0, 0; c.addi a0, -32)
  TEST_CASE(5, a0, 32, li a0, 1; c.addi a0, 31)
  TEST_CASE(6, t4, 0x8000000000000000, li t4, 0x7fffffffffffffff; c.addi t4, 1)   /* 64-bit add */
  TEST_CASE(7, a0, 0xffffffff80000000, li a0, 0x7fffffff; c.addiw a0, 1)          /* 32-bit, sign-extended */
  TEST_CASE(8, a0, 0xffffffff80000000, li a0, 0x1234567880000000; c.addiw a0, 0)  /* sext.w */
  TEST_CASE(9, s2, 0xffffffffffffffff, li s2, 0; c.addiw s2, -1)
  TEST_CASE(10, a0, 0x1000, c.lui a0, 1)
  TEST_CASE(11, a0, 0x1f000, c.lui a0, 0x1f)
  TEST_CASE(12, a0, 0xfffffffffffff000, c.lui a0, 0xfffff)      /* nzimm[17] sign-extends */
  TEST_CASE(13, t5, 0xfffffffffffe0000, c.lui t5, 0xfffe0)
  /* c.addi16sp: sp += nzimm*16, range -512..496. */
  TEST_CASE(14, sp, 0xe00, li sp, 0x1000; c.addi16sp sp, -512)
  TEST_CASE(15, sp, 0xff0, c.addi16sp sp, 496)
  /* c.addi4spn: rd' = sp + nzuimm*4, range 4..1020. */
  TEST_CASE(16, a0, 0x13ec, c.addi4spn a0, sp, 1020)
  TEST_CASE(17, a1, 0xff4, c.addi4spn a1, sp, 4)

  /* ------------------------------------------------------------ shifts and ALU */
  TEST_CASE(30, a0, 1, li a0, 0x8000000000000000; c.srli a0, 63)
  TEST_CASE(31, a0, 0x7fffffffffffffff, li a0, -1; c.srli a0, 1)
  TEST_CASE(32, a1, 0xffffffff, li a1, 0xffffffff00000000; c.srli a1, 32)     /* shamt[5] */
  TEST_CASE(33, a0, 0xffffffffffffffff, li a0, 0x8000000000000000; c.srai a0, 63)
  TEST_CASE(34, a0, 0xf800000000000000, li a0, 0x8000000000000000; c.srai a0, 4)
  TEST_CASE(35, a2, 0xffffffff80000000, li a2, 0x8000000000000000; c.srai a2, 32)
  TEST_CASE(36, a0, 0x1234, li a0, 0x1234; c.andi a0, -1)
  TEST_CASE(37, a0, 0xffffffffffffffe0, li a0, -1; c.andi a0, -32)
  TEST_CASE(38, a3, 0x1f, li a3, 0xff; c.andi a3, 31)
  TEST_CASE(39, a0, 0, li a0, 0xff; c.andi a0, 0)
  TEST_CASE(40, t3, 0x8000000000000000, li t3, 1; c.slli t3, 63)
  TEST_CASE(41, a0, 0xffffffff00000000, li a0, 0xffffffff; c.slli a0, 32)
  TEST_CASE(42, ra, 2, li ra, 0x8000000000000001; c.slli ra, 1)
  TEST_CASE(43, a0, 0xfffffffffffffffe, li a0, 5; li a1, 7; c.sub a0, a1)
  TEST_CASE(44, a0, 0xf00ff00ff00ff00f, li a0, 0xff00ff00ff00ff00; li a1, 0x0f0f0f0f0f0f0f0f; c.xor a0, a1)
  TEST_CASE(45, a0, 0xff0fff0fff0fff0f, li a0, 0xff00ff00ff00ff00; c.or a0, a1)
  TEST_CASE(46, a0, 0x0f000f000f000f00, li a0, 0xff00ff00ff00ff00; c.and a0, a1)
  TEST_CASE(47, s1, 0xffffffffffffffff, li s1, 0; li s0, 1; c.subw s1, s0)
  TEST_CASE(48, a4, 0x7fffffff, li a4, 0x80000000; li a5, 1; c.subw a4, a5)
  TEST_CASE(49, a0, 0xffffffff80000000, li a0, 0x7fffffff; li a1, 1; c.addw a0, a1)
  TEST_CASE(50, a0, 2, li a0, 0x100000001; li a1, 0x100000001; c.addw a0, a1)
  TEST_CASE(51, t3, 0x1234, li t4, 0x1234; c.mv t3, t4)
  TEST_CASE(52, t3, 0x8000000000000000, li t3, 0x7fffffffffffffff; li t4, 1; c.add t3, t4)
  TEST_CASE(53, s3, 0x2468, li s3, 0x1234; c.add s3, s3)
  TEST_CASE(54, a0, 0x0f0f0f0f0f0f0f0f, li a1, 0x0f0f0f0f0f0f0f0f; c.mv a0, a1; c.and a0, a0)

  /* ------------------------------------------------------------ loads and stores */
  /* tdata bytes: 87 96 a5 b4 c3 d2 e1 f0 | ef cd ab 89 67 45 23 01 | 1.5 as a double */
  TEST_CASE(60, a0, 0xffffffffb4a59687, la a1, tdata; c.lw a0, 0(a1))            /* sign-extends */
  TEST_CASE(61, a0, 0xfffffffff0e1d2c3, la a1, tdata-120; c.lw a0, 124(a1))      /* max offset */
  TEST_CASE(62, a0, 0x0123456789abcdef, la a1, tdata; c.ld a0, 8(a1))
  TEST_CASE(63, a0, 0xf0e1d2c3b4a59687, la a1, tdata-248; c.ld a0, 248(a1))      /* max offset */
  TEST_CASE(64, a0, 0x3ff8000000000000, la a1, tdata; c.fld fa0, 16(a1); fmv.x.d a0, fa0)
  TEST_CASE(65, a0, 0x3ff8000000000000, la a1, tdata-232; c.fld fs1, 248(a1); fmv.x.d a0, fs1)
  TEST_CASE(66, a0, 0xffffffff89abcdef, la a1, sbuf; sd zero, 0(a1); li a2, 0x1289abcdef; c.sw a2, 4(a1); c.lw a0, 4(a1))
  TEST_CASE(67, a0, 0x89abcdef00000000, la a1, sbuf; ld a0, 0(a1))
  TEST_CASE(68, a0, 0x0123456789abcdef, la a1, sbuf-240; li a2, 0x0123456789abcdef; c.sd a2, 248(a1); ld a0, 248(a1))
  TEST_CASE(69, a0, 0x400921fb54442d18, la a1, sbuf; li a2, 0x400921fb54442d18; fmv.d.x fa5, a2; c.fsd fa5, 16(a1); ld a0, 16(a1))
  /* Stack-pointer relative forms (any rd, offsets scaled and zero-extended). */
  TEST_CASE(70, t3, 0xffffffffb4a59687, la sp, tdata; c.lwsp t3, 0(sp))
  TEST_CASE(71, t3, 0x01234567, la sp, tdata-240; c.lwsp t3, 252(sp))
  TEST_CASE(72, t4, 0x0123456789abcdef, la sp, tdata; c.ldsp t4, 8(sp))
  TEST_CASE(73, t4, 0x3ff8000000000000, la sp, tdata-488; c.ldsp t4, 504(sp))
  TEST_CASE(74, a0, 0x3ff8000000000000, la sp, tdata; c.fldsp ft7, 16(sp); fmv.x.d a0, ft7)
  TEST_CASE(75, a0, 0x3ff8000000000000, la sp, tdata-488; c.fldsp f31, 504(sp); fmv.x.d a0, f31)
  TEST_CASE(76, a0, 0xffffffffdeadbeef, la sp, sbuf; li t3, 0xdeadbeef; c.swsp t3, 24(sp); lw a0, 24(sp))
  TEST_CASE(77, a0, 0xfeedfacecafef00d, la sp, sbuf-472; li t3, 0xfeedfacecafef00d; c.sdsp t3, 504(sp); ld a0, 504(sp))
  TEST_CASE(78, a0, 0xc000000000000000, la sp, sbuf; li t3, 0xc000000000000000; fmv.d.x f20, t3; c.fsdsp f20, 40(sp); ld a0, 40(sp))
  TEST_CASE(79, a0, 0x3ff8000000000000, la sp, sbuf-464; c.fsdsp ft7, 504(sp); ld a0, 504(sp))

  /* ------------------------------------------------------------ control transfer */
  TEST_CASE(100, a0, 1, li a0, 0; c.j 1f; FAIL_TEST; 1: li a0, 1)
  li TESTNUM, 101          /* backward c.j */
  c.j 2f
1:
  c.j 3f
2:
  c.j 1b
  FAIL_TEST
3:
  TEST_CASE(102, a0, 0, li a0, 0; c.beqz a0, 1f; FAIL_TEST; 1: nop)
  TEST_CASE(103, a0, 1, li a0, 1; c.beqz a0, 1f; j 2f; 1: FAIL_TEST; 2: nop)
  /* The comparison sees all 64 bits. */
  TEST_CASE(104, a0, 0x100000000, li a0, 0x100000000; c.beqz a0, 1f; j 2f; 1: FAIL_TEST; 2: nop)
  TEST_CASE(105, a0, 0x100000000, c.bnez a0, 1f; FAIL_TEST; 1: nop)
  TEST_CASE(106, a0, 0, li a0, 0; c.bnez a0, 1f; j 2f; 1: FAIL_TEST; 2: nop)
  TEST_CASE(107, a5, 0, li a5, 3; 1: c.addi a5, -1; c.bnez a5, 1b)         /* backward */
  TEST_CASE(108, a0, 7, la t3, 1f; c.jr t3; FAIL_TEST; 1: li a0, 7)
  /* c.jalr links pc+2, the address of the next (compressed-size) instruction. */
  TEST_CASE(109, a0, 0, la t3, 1f; c.jalr t3; 2: FAIL_TEST; 1: la a1, 2b; sub a0, ra, a1)
  /* c.jalr ra: the target is the old ra. */
  TEST_CASE(110, a0, 0, la ra, 1f; c.jalr ra; 2: FAIL_TEST; 1: la a1, 2b; sub a0, ra, a1)
  /* c.jr to a target with bit 0 set: like jalr, bit 0 is cleared. */
  TEST_CASE(111, a0, 9, la t3, 1f; addi t3, t3, 1; c.jr t3; FAIL_TEST; 1: li a0, 9)
  /* A call to a function ending in c.jr ra. */
  TEST_CASE(112, a0, 0x55, la t3, rv64c_func; c.jalr t3)

  /* ------------------------------------------------------------ misc */
  TEST_CASE(140, a0, 3, li a0, 3; c.nop; c.nop)
  /* c.ebreak: breakpoint, mepc at the 2-byte instruction; the handler skips 2 bytes. */
  li TESTNUM, 141
  expect_trap CAUSE_BREAKPOINT
1:
  c.ebreak
  CHECK_TRAPPED
  TRAP_FIELD(t5, TC_LAST_EPC)
  la a1, 1b
  CHECK_EQ_REG(t5, a1)
  /* Execution continued right after the 2-byte c.ebreak. */
  TEST_CASE(142, a0, 0x42, li a0, 0x40; expect_trap CAUSE_BREAKPOINT; c.ebreak; c.addi a0, 2; CHECK_TRAPPED)

  /* ------------------------------------------------------------ reserved encodings */
  /* Reserved compressed encodings are illegal instructions; mtval holds the 16 bits. */
  TEST_TRAP_TVAL(150, CAUSE_ILLEGAL, 0x0000, .half 0x0000)   /* all zeros */
  TEST_TRAP_TVAL(151, CAUSE_ILLEGAL, 0x0004, .half 0x0004)   /* c.addi4spn, nzuimm = 0 */
  TEST_TRAP_TVAL(152, CAUSE_ILLEGAL, 0x6101, .half 0x6101)   /* c.addi16sp, nzimm = 0 */
  TEST_TRAP_TVAL(153, CAUSE_ILLEGAL, 0x6281, .half 0x6281)   /* c.lui t0, nzimm = 0 */
  TEST_TRAP_TVAL(154, CAUSE_ILLEGAL, 0x4002, .half 0x4002)   /* c.lwsp, rd = x0 */
  TEST_TRAP_TVAL(155, CAUSE_ILLEGAL, 0x6002, .half 0x6002)   /* c.ldsp, rd = x0 */
  TEST_TRAP_TVAL(156, CAUSE_ILLEGAL, 0x8002, .half 0x8002)   /* c.jr, rs1 = x0 */
TEST_END

  .section .text.rv64c_funcs, "ax", @progbits
rv64c_func:
  c.li a0, 0x15
  c.addi a0, 0x15
  c.addi a0, 0x15
  c.addi a0, 0x15
  c.addi a0, 0x1
  c.jr ra

  .data
  .align 4
tdata:
  .dword 0xf0e1d2c3b4a59687, 0x0123456789abcdef, 0x3ff8000000000000
  .align 4
sbuf:
  .skip 64
