/*
 * Parley ISA test support: constants, self-checking test macros, a trap-expectation
 * mechanism with default M- and S-mode trap handlers, privilege-switch helpers and a
 * tiny HTIF runtime (console output, pass/fail exit).
 *
 * Every test program looks like
 *
 *     #include "macros.h"
 *     TEST_BEGIN
 *       TEST_RR(1, add, 3, 1, 2)
 *       ...
 *     TEST_END
 *
 * and is linked with link.ld.  It starts in M-mode at 0x80000000 and reports through
 * the HTIF tohost/fromhost symbols, so the same ELF runs on Parley's run-elf and on
 * `qemu-system-riscv64 -M spike -bios none -kernel`.
 *
 * Conventions (kept small so a failure is easy to diagnose):
 *   gp (x3)  TESTNUM: the number of the test being run.  On failure the program prints
 *            "FAIL <file> test <n>: <reason> ..." and exits with (n << 1) | 1 in tohost.
 *   t5, t6   scratch for the macros below; test code must not keep values in them
 *            across a macro.  a0-a3 are clobbered only on the failure path.
 *   Macro arguments handed to GAS macros (expect_trap ...) must not contain spaces:
 *   GAS splits macro arguments on whitespace.  Write 0x8000000000000007, not (1 << 63) | 7.
 *   Comments in .S files use C syntax: a '#' at the start of a line is a cpp directive.
 *   Numeric local labels 8880-8899 belong to the macros; tests use small numbers.
 *
 * State when the test body starts (TEST_BEGIN): M-mode, all integer registers zero,
 * mtvec/stvec = the default handlers (direct mode), mscratch/sscratch = their save
 * areas, medeleg = mideleg = mie = mip = satp = 0, PMP entry 0 open to S/U for the
 * whole address space, mstatus.FS = Initial with fcsr = 0, .bss zeroed.  A failure
 * before the first test number is set exits with code 65535.
 *
 * Failures, passes and "return to M-mode" requests are all delivered as an ECALL with a
 * magic value in t6, so they work from any privilege level (and under any page table,
 * as long as the code doing it is mapped): the M-mode handler recognises the magic
 * before consulting the trap expectation.
 */
#ifndef PARLEY_ISA_MACROS_H
#define PARLEY_ISA_MACROS_H

#define TESTNUM gp

/* ---------------------------------------------------------------- constants */

#define MSTATUS_SIE   0x2
#define MSTATUS_MIE   0x8
#define MSTATUS_SPIE  0x20
#define MSTATUS_MPIE  0x80
#define MSTATUS_SPP   0x100
#define MSTATUS_MPP   0x1800
#define MSTATUS_MPP_S 0x800
#define MSTATUS_MPP_M 0x1800
#define MSTATUS_FS    0x6000
#define MSTATUS_FS_INITIAL 0x2000
#define MSTATUS_FS_CLEAN   0x4000
#define MSTATUS_FS_DIRTY   0x6000
#define MSTATUS_MPRV  0x20000
#define MSTATUS_SUM   0x40000
#define MSTATUS_MXR   0x80000
#define MSTATUS_TVM   0x100000
#define MSTATUS_TW    0x200000
#define MSTATUS_TSR   0x400000
#define MSTATUS_SD    0x8000000000000000

#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS     1
#define CAUSE_ILLEGAL          2
#define CAUSE_BREAKPOINT       3
#define CAUSE_MISALIGNED_LOAD  4
#define CAUSE_LOAD_ACCESS      5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS     7
#define CAUSE_ECALL_U          8
#define CAUSE_ECALL_S          9
#define CAUSE_ECALL_M          11
#define CAUSE_FETCH_PAGE       12
#define CAUSE_LOAD_PAGE        13
#define CAUSE_STORE_PAGE       15

/* Interrupt numbers (bit positions in mip/mie) and the matching mcause values. */
#define IRQ_SSI 1
#define IRQ_MSI 3
#define IRQ_STI 5
#define IRQ_MTI 7
#define IRQ_SEI 9
#define IRQ_MEI 11
#define MIP_SSIP 0x2
#define MIP_MSIP 0x8
#define MIP_STIP 0x20
#define MIP_MTIP 0x80
#define MIP_SEIP 0x200
#define MIP_MEIP 0x800
#define CAUSE_INT_SSI 0x8000000000000001
#define CAUSE_INT_MSI 0x8000000000000003
#define CAUSE_INT_STI 0x8000000000000005
#define CAUSE_INT_MTI 0x8000000000000007
#define CAUSE_INT_SEI 0x8000000000000009
#define CAUSE_INT_MEI 0x800000000000000b

/* CSRs referred to by number: not every assembler knows the newer names. */
#define CSR_MENVCFG  0x30a
#define CSR_STIMECMP 0x14d
#define MENVCFG_STCE 0x8000000000000000

/* fflags bits */
#define FFLAG_NX 0x01
#define FFLAG_UF 0x02
#define FFLAG_OF 0x04
#define FFLAG_DZ 0x08
#define FFLAG_NV 0x10

/* CLINT as on QEMU's spike machine and in Parley (mtime runs at 10 MHz). */
#define CLINT_BASE     0x2000000
#define CLINT_MSIP     0x2000000
#define CLINT_MTIMECMP 0x2004000
#define CLINT_MTIME    0x200bff8

/* Trap-expectation flags (see expect_trap). */
#define TF_TVAL    1   /* compare xtval with the expected value */
#define TF_IN_S    2   /* the trap must be delegated: it has to arrive at the S-mode handler */
#define TF_ELEVATE 4   /* resume in the handler's own mode (M for the M handler, S for the S handler) */

/* Layout of trap_ctl, the record shared by the test and both trap handlers. */
#define TC_ARMED       0   /* 1 while a trap is expected; handlers clear it when it arrives */
#define TC_CAUSE       8
#define TC_TVAL        16
#define TC_FLAGS       24
#define TC_RESUME      32  /* 0: skip the trapping instruction; else the resume address */
#define TC_COUNT       40  /* number of expected traps taken so far */
#define TC_LAST_CAUSE  48  /* what the handler saw for the last expected trap */
#define TC_LAST_EPC    56
#define TC_LAST_TVAL   64
#define TC_LAST_STATUS 72  /* mstatus (or sstatus) on handler entry: MPP/SPP/MPIE/SPIE */
#define TC_LAST_MODE   80  /* 3 when the M handler took it, 1 when the S handler did */
#define TC_SIZE        88

/* ECALL magic values in t6 (see the file comment). */
#define MAGIC_FAIL 0x4641494c
#define MAGIC_PASS 0x50415353
#define MAGIC_TO_M 0x544f4d

/* Failure kinds, passed to the reporter in a3. */
#define FK_CHECK       0
#define FK_VALUE       1
#define FK_NOTRAP      2
#define FK_M_UNEXP     3
#define FK_M_TVAL      4
#define FK_M_NOTDELEG  5
#define FK_S_UNEXP     6
#define FK_S_TVAL      7
#define FK_S_DELEG     8
#define FK_M_NESTED    9
#define FK_S_MAGIC     10

/* ---------------------------------------------------------------- value checks */

/* Fail unless reg == exp.  Numeric label 8888 is reserved for the macros. */
#define CHECK_EQ(reg, exp) \
  li t6, exp; beq reg, t6, 8888f; mv a0, reg; mv a1, t6; jal a2, rt_fail_value; 8888:

/* Fail unless reg1 == reg2 (neither may be t6). */
#define CHECK_EQ_REG(reg1, reg2) \
  beq reg1, reg2, 8888f; mv a0, reg1; mv a1, reg2; jal a2, rt_fail_value; 8888:

/* Unconditional failure of the current test. */
#define FAIL_TEST jal a2, rt_fail_check

/* Run code, then compare reg with exp. */
#define TEST_CASE(n, reg, exp, ...) \
  li TESTNUM, n; __VA_ARGS__; CHECK_EQ(reg, exp)

/* Register-register / register-immediate / unary forms, result in a0, sources a1/a2. */
#define TEST_RR(n, op, exp, a, b) \
  TEST_CASE(n, a0, exp, li a1, a; li a2, b; op a0, a1, a2)
#define TEST_RI(n, op, exp, a, imm) \
  TEST_CASE(n, a0, exp, li a1, a; op a0, a1, imm)
#define TEST_R(n, op, exp, a) \
  TEST_CASE(n, a0, exp, li a1, a; op a0, a1)
/* Destination equal to a source: the result must not depend on reading a source late. */
#define TEST_RR_DEST1(n, op, exp, a, b) \
  TEST_CASE(n, a1, exp, li a1, a; li a2, b; op a1, a1, a2)
#define TEST_RR_DEST2(n, op, exp, a, b) \
  TEST_CASE(n, a2, exp, li a1, a; li a2, b; op a2, a1, a2)
/* Writes to x0 are discarded. */
#define TEST_RR_ZERO(n, op, a, b) \
  TEST_CASE(n, x0, 0, li a1, a; li a2, b; op x0, a1, a2)

/* ---------------------------------------------------------------- trap expectations */

/*
 * expect_trap cause[, resume[, flags]]
 *   Arms an expected trap.  The next trap must have mcause (or scause with TF_IN_S)
 *   equal to cause.  The handler records it in trap_ctl (TC_LAST_*), disarms and
 *   resumes at `resume` if given, else after the trapping instruction (it reads the
 *   instruction's length at xepc, so without a resume label the trapping code must be
 *   readable at its PC from the handler's mode).  Interrupts resume at xepc (or at
 *   `resume`); the handler clears the interrupt's enable bit in mie/sie so it does not
 *   fire again, and clears MPIE/SPIE so the interrupted M/S code continues with
 *   interrupts globally disabled until the test enables them again.
 *   Any other trap, or a trap of the right cause at the wrong handler, fails the test.
 *   When the M handler returns to M-mode it clears mstatus.MPRV (mret leaves MPP = U).
 * expect_trap_tval cause, tval[, resume[, flags]]        also check xtval == tval
 * expect_trap_tval_sym cause, sym[, resume[, flags]]     ... xtval == address of sym
 * expect_trap_tval_reg cause, reg[, resume[, flags]]     ... xtval == reg (not t5/t6)
 * CHECK_TRAPPED fails the test if the armed trap did not happen (and disarms).
 */
.macro rt_arm_common cause, flags, resume
  li t6, \cause
  sd t6, TC_CAUSE(t5)
  li t6, \flags
  sd t6, TC_FLAGS(t5)
  .ifc \resume,0
    sd zero, TC_RESUME(t5)
  .else
    la t6, \resume
    sd t6, TC_RESUME(t5)
  .endif
  li t6, 1
  sd t6, TC_ARMED(t5)
.endm

.macro expect_trap cause, resume=0, flags=0
  la t5, trap_ctl
  rt_arm_common \cause, \flags, \resume
.endm

.macro expect_trap_tval cause, tval, resume=0, flags=0
  la t5, trap_ctl
  li t6, \tval
  sd t6, TC_TVAL(t5)
  rt_arm_common \cause, (\flags|TF_TVAL), \resume
.endm

.macro expect_trap_tval_sym cause, sym, resume=0, flags=0
  la t5, trap_ctl
  la t6, \sym
  sd t6, TC_TVAL(t5)
  rt_arm_common \cause, (\flags|TF_TVAL), \resume
.endm

.macro expect_trap_tval_reg cause, reg, resume=0, flags=0
  la t5, trap_ctl
  sd \reg, TC_TVAL(t5)
  rt_arm_common \cause, (\flags|TF_TVAL), \resume
.endm

#define CHECK_TRAPPED \
  la t5, trap_ctl; ld t6, TC_ARMED(t5); beqz t6, 8888f; sd zero, TC_ARMED(t5); jal a2, rt_fail_notrap; 8888:

/* Spin until the armed trap (typically an interrupt) has been taken, at most `iters`
 * iterations; CHECK_TRAPPED afterwards reports a trap that never came. */
#define WAIT_TRAPPED(iters) \
  li t6, iters; 8886: la t5, trap_ctl; ld t5, TC_ARMED(t5); beqz t5, 8885f; \
  addi t6, t6, -1; bnez t6, 8886b; 8885: CHECK_TRAPPED

/* Load a field of trap_ctl (TC_LAST_EPC, ...) into reg, or compare it with exp. */
#define TRAP_FIELD(reg, field) la reg, trap_ctl; ld reg, field(reg)
#define CHECK_TRAP_FIELD(field, exp) TRAP_FIELD(t5, field); CHECK_EQ(t5, exp)

/* Test n: arm `cause`, run the code (whose last instruction should trap) and check it did. */
#define TEST_TRAP(n, cause, ...) \
  li TESTNUM, n; expect_trap cause; __VA_ARGS__; CHECK_TRAPPED
#define TEST_TRAP_TVAL(n, cause, tval, ...) \
  li TESTNUM, n; expect_trap_tval cause, tval; __VA_ARGS__; CHECK_TRAPPED

/* ---------------------------------------------------------------- privilege switches */

/*
 * GOTO_S / GOTO_U (from M): continue with the next instruction in S- or U-mode, via
 * mret.  Side effects of mret apply: MIE := MPIE, MPIE := 1, MPRV := 0.
 * GOTO_U_FROM_S: the same through sret (SIE := SPIE, SPIE := 1).
 * GOTO_M (from S or U): continue with the next instruction in M-mode, via an ECALL the
 * M handler recognises, with MIE = 0.  ECALLs from the current mode must not be
 * delegated.  (Resuming in M after an expected trap with TF_ELEVATE also leaves MIE = 0.)
 */
#define GOTO_MODE_MPP(mppbits) \
  li t5, MSTATUS_MPP; csrc mstatus, t5; li t5, mppbits; csrs mstatus, t5; \
  la t5, 8887f; csrw mepc, t5; mret; 8887:
#define GOTO_S GOTO_MODE_MPP(MSTATUS_MPP_S)
#define GOTO_U GOTO_MODE_MPP(0)
#define GOTO_U_FROM_S \
  li t5, MSTATUS_SPP; csrc sstatus, t5; la t5, 8887f; csrw sepc, t5; sret; 8887:
#define GOTO_M li t6, MAGIC_TO_M; ecall

/* ---------------------------------------------------------------- program frame */

#define TEST_BEGIN rt_test_begin
#define TEST_END \
  rt_test_end; \
  .pushsection .data; rt_file_name: .asciz __FILE_NAME__; .popsection

/* Save/restore x1 and x3..x31 at 8*n(sp); sp itself is handled by the handlers. */
.macro rt_save_regs
  .irp n,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd x\n, (8*\n)(sp)
  .endr
.endm
.macro rt_restore_regs
  .irp n,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld x\n, (8*\n)(sp)
  .endr
.endm

.macro rt_test_begin
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  la t0, rt_m_trap
  csrw mtvec, t0
  la t0, rt_m_save
  csrw mscratch, t0
  la t0, rt_s_trap
  csrw stvec, t0
  la t0, rt_s_save
  csrw sscratch, t0
  csrw medeleg, zero
  csrw mideleg, zero
  csrw mie, zero
  csrw mip, zero
  csrw satp, zero
  /* PMP: an implementation with PMP (QEMU has it) denies S/U every access that no entry
   * matches, so open the whole address space with one NAPOT RWX entry.  The accesses are
   * guarded by a temporary mtvec in case the PMP CSRs are absent. */
  la t0, 1f
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  .align 2
1:
  la t0, rt_m_trap
  csrw mtvec, t0
  /* Enable the FPU (FS=Initial) with a clean fcsr. */
  li t0, MSTATUS_FS
  csrc mstatus, t0
  li t0, MSTATUS_FS_INITIAL
  csrs mstatus, t0
  fscsr zero
  /* Zero .bss (page tables and buffers live there). */
  la t0, _bss_start
  la t1, _end
2:
  bgeu t0, t1, 3f
  sd zero, 0(t0)
  addi t0, t0, 8
  j 2b
3:
  .irp n,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    li x\n, 0
  .endr
  j rt_test_body
  .text
  .align 2
rt_test_body:
.endm

.macro rt_test_end
  li t6, MAGIC_PASS
  ecall
  j .

  /* The runtime is assembled with compression enabled whatever the test selected: under
   * .option norvc, GAS assumes 4-byte alignment and an .align after 2-byte code fails. */
  .option push
  .option rvc

  .align 2
/* ---- failure entry points, callable from any mode (jal a2, ...) ---- */
rt_fail_value:           /* a0 = got, a1 = expected, a2 = return address of the check */
  li a3, FK_VALUE
  j rt_fail_ecall
rt_fail_check:
  li a3, FK_CHECK
  j rt_fail_ecall
rt_fail_notrap:
  li a3, FK_NOTRAP
rt_fail_ecall:
  li t6, MAGIC_FAIL
  ecall
  j .

/* ---- M-mode trap handler ---- */
  .align 2
rt_m_trap:
  csrrw sp, mscratch, sp
  rt_save_regs
  csrr t0, mscratch
  sd t0, 16(sp)
  csrw mscratch, sp
  csrr s0, mcause
  csrr s1, mepc
  csrr s2, mtval
  csrr s3, mstatus
  /* A trap while the handler itself runs means the handler cannot work: report it. */
  la t0, rt_in_m_handler
  ld t1, 0(t0)
  bnez t1, rt_m_nested
  li t1, 1
  sd t1, 0(t0)

  /* ECALL with a magic value in t6: pass, fail or return-to-M request. */
  li t0, CAUSE_ECALL_U
  beq s0, t0, 1f
  li t0, CAUSE_ECALL_S
  beq s0, t0, 1f
  li t0, CAUSE_ECALL_M
  bne s0, t0, 2f
1:
  ld t1, (8*31)(sp)
  li t0, MAGIC_PASS
  beq t1, t0, rt_pass
  li t0, MAGIC_FAIL
  bne t1, t0, 3f
  ld a0, (8*10)(sp)
  ld a1, (8*11)(sp)
  ld a2, (8*12)(sp)
  ld a3, (8*13)(sp)
  j rt_report
3:
  li t0, MAGIC_TO_M
  bne t1, t0, 2f
  addi s1, s1, 4
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  li t0, MSTATUS_MPIE        /* continue in M with MIE = 0 */
  csrc mstatus, t0
  j 8f                       /* (clears MPRV too) */

2:
  la s4, trap_ctl
  ld t0, TC_ARMED(s4)
  beqz t0, rt_m_unexpected
  ld t0, TC_CAUSE(s4)
  bne s0, t0, rt_m_unexpected
  ld s5, TC_FLAGS(s4)
  andi t0, s5, TF_IN_S
  bnez t0, rt_m_not_delegated
  andi t0, s5, TF_TVAL
  beqz t0, 4f
  ld t0, TC_TVAL(s4)
  bne s2, t0, rt_m_bad_tval
4:
  sd zero, TC_ARMED(s4)
  ld t0, TC_COUNT(s4)
  addi t0, t0, 1
  sd t0, TC_COUNT(s4)
  sd s0, TC_LAST_CAUSE(s4)
  sd s1, TC_LAST_EPC(s4)
  sd s2, TC_LAST_TVAL(s4)
  sd s3, TC_LAST_STATUS(s4)
  li t0, 3
  sd t0, TC_LAST_MODE(s4)
  ld t0, TC_RESUME(s4)
  bltz s0, 5f
  bnez t0, 6f
  /* Skip the trapping instruction: 2 bytes if its low bits are not 11, else 4. */
  lhu t1, 0(s1)
  andi t1, t1, 3
  li t2, 3
  addi s1, s1, 2
  bne t1, t2, 7f
  addi s1, s1, 2
  j 7f
5:
  /* Interrupt: disable its source in mie so it does not retrigger, and return to mepc
   * with MIE off (MPIE cleared) so a second pending interrupt waits until the test
   * re-enables interrupts (and arms the next expectation). */
  andi t1, s0, 63
  li t2, 1
  sll t2, t2, t1
  csrc mie, t2
  li t2, MSTATUS_MPIE
  csrc mstatus, t2
  beqz t0, 7f
6:
  mv s1, t0
7:
  andi t0, s5, TF_ELEVATE
  beqz t0, 8f
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  li t0, MSTATUS_MPIE        /* continue in M with MIE = 0 */
  csrc mstatus, t0
8:
  /* Returning to M: mret will leave MPP = U, so a still-set MPRV would turn the test's
   * own loads and stores into U-mode accesses.  Clear it; tests set it again. */
  csrr t0, mstatus
  li t1, MSTATUS_MPP
  and t1, t0, t1
  li t2, MSTATUS_MPP_M
  bne t1, t2, rt_m_return
  li t0, MSTATUS_MPRV
  csrc mstatus, t0
rt_m_return:
  csrw mepc, s1
  la t0, rt_in_m_handler
  sd zero, 0(t0)
  rt_restore_regs
  ld sp, 16(sp)
  mret

rt_m_unexpected:
  li a3, FK_M_UNEXP
  j 8f
rt_m_not_delegated:
  li a3, FK_M_NOTDELEG
  j 8f
rt_m_nested:
  li a3, FK_M_NESTED
8:
  mv a0, s0
  mv a1, s1
  mv a2, s2
  j rt_report
rt_m_bad_tval:
  li a3, FK_M_TVAL
  mv a0, s2
  ld a1, TC_TVAL(s4)
  mv a2, s1
  j rt_report

/* ---- S-mode trap handler (for delegated traps) ---- */
  .align 2
rt_s_trap:
  csrrw sp, sscratch, sp
  rt_save_regs
  csrr t0, sscratch
  sd t0, 16(sp)
  csrw sscratch, sp
  csrr s0, scause
  csrr s1, sepc
  csrr s2, stval
  csrr s3, sstatus
  /* Magic ECALLs delegated to S: forward pass/fail to M with an ECALL from S. */
  li t0, CAUSE_ECALL_U
  bne s0, t0, 2f
  ld t1, (8*31)(sp)
  li t0, MAGIC_PASS
  beq t1, t0, 1f
  li t0, MAGIC_FAIL
  beq t1, t0, 1f
  li t0, MAGIC_TO_M
  bne t1, t0, 2f
  li a3, FK_S_MAGIC
  j 8f
1:
  rt_restore_regs
  ecall
  j .
2:
  la s4, trap_ctl
  ld t0, TC_ARMED(s4)
  beqz t0, 3f
  ld t0, TC_CAUSE(s4)
  bne s0, t0, 3f
  ld s5, TC_FLAGS(s4)
  andi t0, s5, TF_IN_S
  beqz t0, 4f
  andi t0, s5, TF_TVAL
  beqz t0, 5f
  ld t0, TC_TVAL(s4)
  beq s2, t0, 5f
  li a3, FK_S_TVAL
  mv a0, s2
  ld a1, TC_TVAL(s4)
  mv a2, s1
  j 9f
3:
  li a3, FK_S_UNEXP
  j 8f
4:
  li a3, FK_S_DELEG
8:
  mv a0, s0
  mv a1, s1
  mv a2, s2
9:
  li t6, MAGIC_FAIL
  ecall
  j .
5:
  sd zero, TC_ARMED(s4)
  ld t0, TC_COUNT(s4)
  addi t0, t0, 1
  sd t0, TC_COUNT(s4)
  sd s0, TC_LAST_CAUSE(s4)
  sd s1, TC_LAST_EPC(s4)
  sd s2, TC_LAST_TVAL(s4)
  sd s3, TC_LAST_STATUS(s4)
  li t0, 1
  sd t0, TC_LAST_MODE(s4)
  ld t0, TC_RESUME(s4)
  bltz s0, 5f
  bnez t0, 6f
  lhu t1, 0(s1)
  andi t1, t1, 3
  li t2, 3
  addi s1, s1, 2
  bne t1, t2, 7f
  addi s1, s1, 2
  j 7f
5:
  andi t1, s0, 63
  li t2, 1
  sll t2, t2, t1
  csrc sie, t2
  li t2, MSTATUS_SPIE
  csrc sstatus, t2
  beqz t0, 7f
6:
  mv s1, t0
7:
  andi t0, s5, TF_ELEVATE
  beqz t0, 8f
  li t0, MSTATUS_SPP
  csrs sstatus, t0
8:
  csrw sepc, s1
  rt_restore_regs
  ld sp, 16(sp)
  sret

/* ---- reporting (M-mode only) ---- */
rt_pass:
  la sp, rt_report_stack_top
  la a0, rt_msg_pass
  call rt_puts
  li a0, 1
  j rt_exit

/* a3 = failure kind, a0..a2 = details printed in hex. */
rt_report:
  la sp, rt_report_stack_top
  mv s6, a0
  mv s7, a1
  mv s8, a2
  mv s9, a3
  la a0, rt_msg_fail
  call rt_puts
  la a0, rt_file_name
  call rt_puts
  la a0, rt_msg_test
  call rt_puts
  mv a0, TESTNUM
  call rt_putdec
  li a0, 58
  call rt_putc
  li a0, 32
  call rt_putc
  li t0, 10
  bgeu s9, t0, 1f
  la t0, rt_fail_msgs
  slli t1, s9, 3
  add t0, t0, t1
  ld a0, 0(t0)
  j 2f
1:
  la a0, rt_msg_unknown
2:
  call rt_puts
  mv a0, s6
  call rt_puthex
  li a0, 32
  call rt_putc
  mv a0, s7
  call rt_puthex
  li a0, 32
  call rt_putc
  mv a0, s8
  call rt_puthex
  li a0, 10
  call rt_putc
  /* Exit code: the test number (65535 if the failure happened before test 1). */
  mv a0, TESTNUM
  bnez a0, 3f
  li a0, 65535
3:
  slli a0, a0, 1
  ori a0, a0, 1
rt_exit:
  la t0, tohost
  sd a0, 0(t0)
  j rt_exit

/* HTIF console: tohost = device 1, command 1, payload = the character; then wait for
 * the host to answer in fromhost and acknowledge by clearing it. */
rt_putc:
  li t0, 0x0101000000000000
  andi a0, a0, 0xff
  or t0, t0, a0
  la t1, tohost
  sd t0, 0(t1)
  la t1, fromhost
1:
  ld t2, 0(t1)
  beqz t2, 1b
  sd zero, 0(t1)
  ret

rt_puts:
  addi sp, sp, -16
  sd ra, 0(sp)
  sd s0, 8(sp)
  mv s0, a0
1:
  lbu a0, 0(s0)
  beqz a0, 2f
  call rt_putc
  addi s0, s0, 1
  j 1b
2:
  ld ra, 0(sp)
  ld s0, 8(sp)
  addi sp, sp, 16
  ret

rt_puthex:
  addi sp, sp, -32
  sd ra, 0(sp)
  sd s0, 8(sp)
  sd s1, 16(sp)
  mv s0, a0
  li a0, 48
  call rt_putc
  li a0, 120
  call rt_putc
  li s1, 60
1:
  srl a0, s0, s1
  andi a0, a0, 15
  li t0, 10
  blt a0, t0, 2f
  addi a0, a0, 39  /* 'a' - '0' - 10 */
2:
  addi a0, a0, 48
  call rt_putc
  addi s1, s1, -4
  bgez s1, 1b
  ld ra, 0(sp)
  ld s0, 8(sp)
  ld s1, 16(sp)
  addi sp, sp, 32
  ret

rt_putdec:
  addi sp, sp, -64
  sd ra, 0(sp)
  sd s0, 8(sp)
  sd s1, 16(sp)
  mv s0, a0
  addi s1, sp, 63
  sb zero, 0(s1)
  li t1, 10
1:
  remu t0, s0, t1
  divu s0, s0, t1
  addi t0, t0, 48
  addi s1, s1, -1
  sb t0, 0(s1)
  bnez s0, 1b
  mv a0, s1
  call rt_puts
  ld ra, 0(sp)
  ld s0, 8(sp)
  ld s1, 16(sp)
  addi sp, sp, 64
  ret
  .option pop

/* ---- data ---- */
  .pushsection .data
  .align 3
rt_fail_msgs:
  .dword rt_fk0, rt_fk1, rt_fk2, rt_fk3, rt_fk4, rt_fk5, rt_fk6, rt_fk7, rt_fk8, rt_fk9, rt_fk10
  .globl trap_ctl
  .align 6
trap_ctl:
  .fill TC_SIZE, 1, 0
  .align 3
rt_in_m_handler:
  .dword 0
rt_msg_pass: .asciz "PASS\n"
rt_msg_fail: .asciz "FAIL "
rt_msg_test: .asciz " test "
rt_msg_unknown: .asciz "unknown failure "
rt_fk0: .asciz "check failed; -, -, pc="
rt_fk1: .asciz "value mismatch; got, expected, pc="
rt_fk2: .asciz "expected trap did not happen; -, -, pc="
rt_fk3: .asciz "unexpected trap in M; mcause, mepc, mtval="
rt_fk4: .asciz "wrong mtval; got, expected, mepc="
rt_fk5: .asciz "trap reached M but was expected delegated to S; mcause, mepc, mtval="
rt_fk6: .asciz "unexpected trap in S; scause, sepc, stval="
rt_fk7: .asciz "wrong stval; got, expected, sepc="
rt_fk8: .asciz "trap reached S but was expected in M; scause, sepc, stval="
rt_fk9: .asciz "trap inside the M handler; mcause, mepc, mtval="
rt_fk10: .asciz "GOTO_M ecall was delegated to S; scause, sepc, stval="
  .popsection

  .pushsection .bss
  .align 4
  .globl rt_m_save, rt_s_save
rt_m_save: .skip 256
rt_s_save: .skip 256
rt_report_stack: .skip 1024
rt_report_stack_top:
  .popsection

  .pushsection .tohost, "aw", @progbits
  .align 6
  .globl tohost
  .type tohost, @object
  .size tohost, 8       /* QEMU insists on 8-byte symbols */
tohost: .dword 0
  .align 6
  .globl fromhost
  .type fromhost, @object
  .size fromhost, 8
fromhost: .dword 0
  .popsection
.endm

#endif
