/*
 * Exceptions, delegation, xRET, the mstatus trap controls and interrupts.
 *
 * Every synchronous cause reachable without paging (paging.S has the page faults):
 * illegal instruction (mtval = the instruction bits), breakpoint (ebreak, c.ebreak),
 * load/store/fetch access faults (mtval = the address), ECALL from U/S/M.  Misaligned
 * loads/stores do not trap (rv64i.S), instruction-address-misaligned cannot happen with
 * C (misa is read-only), and misaligned AMOs are in rv64a.S.
 *
 * Physical address NOT_RAM (0x40000000) is neither RAM, nor the CLINT, nor HTIF on
 * either Parley or QEMU's spike machine, so any access there is an access fault.
 *
 * Test numbers: M-mode exceptions 1-29, ECALL/privileged instructions from S and U
 * 30-49, delegation 50-79, xRET 80-99, TW/TSR/TVM 100-119, software interrupts
 * 129-139, CLINT timer 140-149, Sstc 150-159, priorities 160-179, vectored mtvec
 * 180-189.
 */
#include "macros.h"

#define NOT_RAM   0x40000000
#define BELOW_RAM 0x7ffff000
#define ILLEGAL32 0xfe000033        /* OP major opcode with an undefined funct7 */
#define ILLEGAL16 0x0004            /* c.addi4spn with nzuimm = 0: reserved */
#define INSN_WFI  0x10500073
#define INSN_SRET 0x10200073
#define INSN_MRET 0x30200073
#define INSN_SFENCE_VMA 0x12000073
#define INSN_CSRR_A0_SATP 0x18002573

/* mstatus bit helpers (M-mode only). */
#define MSTATUS_SET(bits) li t5, bits; csrs mstatus, t5
#define MSTATUS_CLR(bits) li t5, bits; csrc mstatus, t5
/* Check the bits `mask` of the mstatus/sstatus value the handler saw on entry. */
#define CHECK_LAST_STATUS(mask, exp) TRAP_FIELD(t5, TC_LAST_STATUS); li t6, mask; and t5, t5, t6; CHECK_EQ(t5, exp)
/* Check that the last trap's xepc is the address of label. */
#define CHECK_LAST_EPC(label) TRAP_FIELD(t5, TC_LAST_EPC); la a1, label; CHECK_EQ_REG(t5, a1)

TEST_BEGIN

  /* ------------------------------------------------------------ exceptions in M-mode */
  TEST_TRAP_TVAL(1, CAUSE_ILLEGAL, ILLEGAL32, .word ILLEGAL32)
  /* A 16-bit illegal instruction: mtval holds its 16 bits. */
  TEST_TRAP_TVAL(2, CAUSE_ILLEGAL, ILLEGAL16, .half ILLEGAL16)
  TEST_TRAP_TVAL(3, CAUSE_ILLEGAL, 0, .half 0)
  /* mepc is the trapping instruction; a trap from M sets MPP = M and MPIE = MIE (0). */
  li TESTNUM, 4
  expect_trap CAUSE_ILLEGAL
1:
  .word ILLEGAL32
  CHECK_TRAPPED
  CHECK_LAST_EPC(1b)
  CHECK_LAST_STATUS(MSTATUS_MPP|MSTATUS_MPIE|MSTATUS_MIE, MSTATUS_MPP_M)
  /* Breakpoints: mepc is the ebreak itself (it does not retire). */
  li TESTNUM, 5
  expect_trap CAUSE_BREAKPOINT
1:
  ebreak
  CHECK_TRAPPED
  CHECK_LAST_EPC(1b)
  li TESTNUM, 6
  expect_trap CAUSE_BREAKPOINT
1:
  c.ebreak
  CHECK_TRAPPED
  CHECK_LAST_EPC(1b)
  /* ECALL from M: cause 11, mtval 0. */
  li TESTNUM, 7
  expect_trap_tval CAUSE_ECALL_M, 0
1:
  ecall
  CHECK_TRAPPED
  CHECK_LAST_EPC(1b)
  /* Load access faults, mtval = the faulting address (including the offset). */
  TEST_TRAP_TVAL(10, CAUSE_LOAD_ACCESS, NOT_RAM, li a1, NOT_RAM; ld a0, 0(a1))
  TEST_TRAP_TVAL(11, CAUSE_LOAD_ACCESS, NOT_RAM+5, li a1, NOT_RAM; lb a0, 5(a1))
  TEST_TRAP_TVAL(12, CAUSE_LOAD_ACCESS, BELOW_RAM+8, li a1, BELOW_RAM; lwu a0, 8(a1))
  TEST_TRAP_TVAL(13, CAUSE_LOAD_ACCESS, NOT_RAM, li a1, NOT_RAM; fld f1, 0(a1))
  TEST_TRAP_TVAL(14, CAUSE_LOAD_ACCESS, NOT_RAM, li a1, NOT_RAM; lr.d a0, (a1))
  /* The destination of a faulting load keeps its old value. */
  TEST_CASE(15, a0, 0x77, li a0, 0x77; li a1, NOT_RAM; expect_trap CAUSE_LOAD_ACCESS; ld a0, 0(a1); CHECK_TRAPPED)
  /* Store (and AMO) access faults. */
  TEST_TRAP_TVAL(16, CAUSE_STORE_ACCESS, NOT_RAM, li a1, NOT_RAM; sd a0, 0(a1))
  TEST_TRAP_TVAL(17, CAUSE_STORE_ACCESS, NOT_RAM+3, li a1, NOT_RAM; sb a0, 3(a1))
  TEST_TRAP_TVAL(19, CAUSE_STORE_ACCESS, NOT_RAM, li a1, NOT_RAM; fsd f1, 0(a1))
#ifndef QEMU_AMO_FAULT_IS_LOAD
  /* AMOs report store/AMO access faults (cause 7).  QEMU 7.2 reports a load access
   * fault (5) because it performs the read half first. */
  TEST_TRAP_TVAL(18, CAUSE_STORE_ACCESS, NOT_RAM, li a1, NOT_RAM; amoadd.w a0, a0, (a1))
  TEST_CASE(20, a0, 0x66, li a0, 0x66; li a1, NOT_RAM; expect_trap CAUSE_STORE_ACCESS; amoswap.d a0, a0, (a1); CHECK_TRAPPED)
#endif
  /* Fetch access fault: mepc = mtval = the target; resume at a label. */
  li TESTNUM, 21
  li a1, NOT_RAM
  expect_trap_tval CAUSE_FETCH_ACCESS, NOT_RAM, 1f
  jalr ra, 0(a1)
  FAIL_TEST
1:
  CHECK_TRAP_FIELD(TC_LAST_EPC, NOT_RAM)
  /* The jump itself completed: ra holds its link. */
  li TESTNUM, 22
  la a1, 1b
  addi a1, a1, -4
  sub a0, ra, a1
  CHECK_EQ(a0, 0)

  /* ------------------------------------------------------------ from S and U */
  /* ECALL from U (8) and S (9); resume in M.  The trap records MPP and MPIE = MIE. */
  li TESTNUM, 30
  expect_trap_tval CAUSE_ECALL_U, 0, 1f, TF_ELEVATE
  GOTO_U
2:
  ecall
  FAIL_TEST
1:
  CHECK_LAST_EPC(2b)
  CHECK_LAST_STATUS(MSTATUS_MPP, 0)
  li TESTNUM, 31
  MSTATUS_SET(MSTATUS_MPIE)         /* mret copies MPIE into MIE: S runs with MIE = 1 */
  expect_trap_tval CAUSE_ECALL_S, 0, 1f, TF_ELEVATE
  GOTO_S
2:
  ecall
  FAIL_TEST
1:
  CHECK_LAST_EPC(2b)
  CHECK_LAST_STATUS(MSTATUS_MPP|MSTATUS_MPIE|MSTATUS_MIE, MSTATUS_MPP_S|MSTATUS_MPIE)
  /* Privileged instructions and M-mode CSRs are illegal below M (mtval = instruction). */
  GOTO_S
  TEST_TRAP_TVAL(32, CAUSE_ILLEGAL, INSN_MRET, mret)
  TEST_TRAP(33, CAUSE_ILLEGAL, csrr a0, mie)
  TEST_TRAP_TVAL(34, CAUSE_ILLEGAL, ILLEGAL32, .word ILLEGAL32)
  GOTO_U_FROM_S
  TEST_TRAP_TVAL(35, CAUSE_ILLEGAL, INSN_SRET, sret)
  TEST_TRAP_TVAL(36, CAUSE_ILLEGAL, INSN_MRET, mret)
  TEST_TRAP(37, CAUSE_ILLEGAL, csrr a0, sie)
  TEST_TRAP(38, CAUSE_ILLEGAL, sfence.vma)
  /* Access faults from U (PMP grants everything; the address itself is not memory). */
  TEST_TRAP_TVAL(39, CAUSE_LOAD_ACCESS, NOT_RAM, li a1, NOT_RAM; lw a0, 0(a1))
  TEST_TRAP_TVAL(40, CAUSE_STORE_ACCESS, NOT_RAM, li a1, NOT_RAM; sw a0, 0(a1))
  TEST_TRAP(41, CAUSE_BREAKPOINT, ebreak)
  li TESTNUM, 42
  CHECK_LAST_STATUS(MSTATUS_MPP, 0)
  GOTO_M

  /* ------------------------------------------------------------ delegation */
  /* Delegated exceptions from S/U go to the S handler with scause/sepc/stval; the same
   * exceptions in M-mode still go to M. */
  li a1, (1<<CAUSE_ILLEGAL)|(1<<CAUSE_BREAKPOINT)|(1<<CAUSE_LOAD_ACCESS)|(1<<CAUSE_STORE_ACCESS)|(1<<CAUSE_ECALL_U)
  csrw medeleg, a1
  GOTO_S
  csrsi sstatus, MSTATUS_SIE        /* SIE = 1 (sie is 0, so nothing can interrupt) */
  li TESTNUM, 50
  expect_trap_tval CAUSE_ILLEGAL, ILLEGAL32, 0, TF_IN_S
1:
  .word ILLEGAL32
  CHECK_TRAPPED
  CHECK_LAST_EPC(1b)
  CHECK_TRAP_FIELD(TC_LAST_MODE, 1)
  /* Trap from S into S: SPP = 1, SPIE = the old SIE (1), SIE = 0. */
  li TESTNUM, 51
  CHECK_LAST_STATUS(MSTATUS_SPP|MSTATUS_SPIE|MSTATUS_SIE, MSTATUS_SPP|MSTATUS_SPIE)
  /* sret restored SIE from SPIE. */
  TEST_CASE(52, a0, MSTATUS_SIE, csrr a0, sstatus; andi a0, a0, MSTATUS_SIE)
  li TESTNUM, 53
  li a1, NOT_RAM
  expect_trap_tval CAUSE_LOAD_ACCESS, NOT_RAM+16, 0, TF_IN_S
  ld a0, 16(a1)
  CHECK_TRAPPED
  li TESTNUM, 54
  expect_trap_tval CAUSE_STORE_ACCESS, NOT_RAM, 0, TF_IN_S
  sh a0, 0(a1)
  CHECK_TRAPPED
  li TESTNUM, 55
  expect_trap CAUSE_BREAKPOINT, 0, TF_IN_S
  ebreak
  CHECK_TRAPPED
  /* From U: SPP = 0.  The delegated ECALL returns to S at a label. */
  GOTO_U_FROM_S
  li TESTNUM, 56
  expect_trap_tval CAUSE_ILLEGAL, INSN_SRET, 0, TF_IN_S
  sret
  CHECK_TRAPPED
  CHECK_LAST_STATUS(MSTATUS_SPP, 0)
  li TESTNUM, 57
  expect_trap CAUSE_ECALL_U, 1f, TF_IN_S|TF_ELEVATE
2:
  ecall
  FAIL_TEST
1:
  CHECK_LAST_EPC(2b)
  CHECK_TRAP_FIELD(TC_LAST_MODE, 1)
  /* Now in S again; ECALL from S is not delegated and reaches M. */
  li TESTNUM, 58
  expect_trap CAUSE_ECALL_S, 1f, TF_ELEVATE
  ecall
  FAIL_TEST
1:
  /* In M: a delegated cause still traps to M. */
  TEST_TRAP_TVAL(59, CAUSE_ILLEGAL, ILLEGAL32, .word ILLEGAL32)
  TEST_TRAP(60, CAUSE_BREAKPOINT, ebreak)
  csrw medeleg, zero

  /* ------------------------------------------------------------ xRET */
  /* mret to M: MIE = MPIE (0), MPIE = 1, MPP = U (the least-privileged mode). */
  li TESTNUM, 80
  MSTATUS_SET(MSTATUS_MPP|MSTATUS_MIE)
  MSTATUS_CLR(MSTATUS_MPIE)
  la t0, 1f
  csrw mepc, t0
  mret
  FAIL_TEST
1:
  csrr a0, mstatus
  li a1, MSTATUS_MPP|MSTATUS_MPIE|MSTATUS_MIE
  and a0, a0, a1
  CHECK_EQ(a0, MSTATUS_MPIE)
  /* mret to M keeps MPRV; mret to a lower mode clears it. */
  li TESTNUM, 81
  MSTATUS_SET(MSTATUS_MPP|MSTATUS_MPRV)
  la t0, 1f
  csrw mepc, t0
  mret
1:
  csrr a0, mstatus
  MSTATUS_CLR(MSTATUS_MPRV)
  li a1, MSTATUS_MPRV
  and a0, a0, a1
  CHECK_EQ(a0, MSTATUS_MPRV)
#ifndef QEMU_XRET_KEEPS_MPRV
  /* Priv 1.12: "An MRET or SRET instruction that changes the privilege mode to a mode
   * less privileged than M also sets MPRV=0."  QEMU 7.2 predates that rule. */
  li TESTNUM, 82
  MSTATUS_SET(MSTATUS_MPRV)
  GOTO_S
  GOTO_M
  csrr a0, mstatus
  li a1, MSTATUS_MPRV
  and a0, a0, a1
  CHECK_EQ(a0, 0)
#endif
  MSTATUS_CLR(MSTATUS_MPRV)
  /* sret (executed in M) pops the S stack: S-mode at sepc, SIE = SPIE, SPIE = 1,
   * SPP = U, and MPRV is cleared because the new mode is below M. */
  li TESTNUM, 83
  MSTATUS_SET(MSTATUS_MPP|MSTATUS_MPRV|MSTATUS_SPP|MSTATUS_SPIE)
  MSTATUS_CLR(MSTATUS_SIE)
  la t0, 1f
  csrw sepc, t0
  sret
  FAIL_TEST
1:
  /* In S now: a CSR only S may read proves the mode; then back to M by an ECALL that
   * must be the S-mode one. */
  csrr a0, sscratch
  expect_trap CAUSE_ECALL_S, 2f, TF_ELEVATE
  ecall
2:
  csrr a0, mstatus
  li a1, MSTATUS_SPP|MSTATUS_SPIE|MSTATUS_SIE
  and a0, a0, a1
  CHECK_EQ(a0, MSTATUS_SPIE|MSTATUS_SIE)
#ifndef QEMU_XRET_KEEPS_MPRV
  li TESTNUM, 86
  csrr a0, mstatus
  li a1, MSTATUS_MPRV
  and a0, a0, a1
  CHECK_EQ(a0, 0)
#endif
  MSTATUS_CLR(MSTATUS_SIE|MSTATUS_MPRV)
  /* The trap from S recorded MPP = S. */
  li TESTNUM, 84
  CHECK_LAST_STATUS(MSTATUS_MPP, MSTATUS_MPP_S)
  /* sret from S with SPP = U lands in U: an S CSR is then illegal, trapping with MPP=U. */
  li TESTNUM, 85
  GOTO_S
  GOTO_U_FROM_S
  expect_trap CAUSE_ILLEGAL
  csrr a0, sstatus
  CHECK_TRAPPED
  CHECK_LAST_STATUS(MSTATUS_MPP, 0)
  GOTO_M

  /* ------------------------------------------------------------ TW, TSR, TVM */
  /* TW = 1: WFI in S is illegal. */
  MSTATUS_SET(MSTATUS_TW)
  GOTO_S
  TEST_TRAP_TVAL(100, CAUSE_ILLEGAL, INSN_WFI, wfi)
  GOTO_M
  MSTATUS_CLR(MSTATUS_TW)
  /* TW = 0: WFI in S completes when an interrupt is pending, even one that is not
   * enabled globally (SSIP delegated and enabled in sie, SIE = 0). */
  li a1, MIP_SSIP
  csrw mideleg, a1
  csrw mie, a1
  csrw mip, a1
  MSTATUS_CLR(MSTATUS_SIE)
  GOTO_S
  TEST_CASE(101, a0, 5, li a0, 4; wfi; addi a0, a0, 1)
  GOTO_M
  /* WFI in M with a pending interrupt and MIE = 0 completes too. */
  csrw mideleg, zero
  TEST_CASE(102, a0, 6, li a0, 5; wfi; addi a0, a0, 1)
  csrw mip, zero
  csrw mie, zero
  /* TSR = 1: SRET in S is illegal; in M it still works. */
  MSTATUS_SET(MSTATUS_TSR)
  GOTO_S
  TEST_TRAP_TVAL(103, CAUSE_ILLEGAL, INSN_SRET, sret)
  GOTO_M
  li TESTNUM, 104
  MSTATUS_SET(MSTATUS_SPP)
  la t0, 1f
  csrw sepc, t0
  sret
  FAIL_TEST
1:
  GOTO_M
  MSTATUS_CLR(MSTATUS_TSR)
  /* TVM = 1: satp and SFENCE.VMA are illegal in S, fine in M. */
  MSTATUS_SET(MSTATUS_TVM)
  GOTO_S
  TEST_TRAP_TVAL(105, CAUSE_ILLEGAL, INSN_CSRR_A0_SATP, csrr a0, satp)
  TEST_TRAP(106, CAUSE_ILLEGAL, csrw satp, zero)
  TEST_TRAP_TVAL(107, CAUSE_ILLEGAL, INSN_SFENCE_VMA, sfence.vma)
  TEST_TRAP(108, CAUSE_ILLEGAL, sfence.vma a0, a1)
  GOTO_M
  TEST_CASE(109, a0, 0, csrr a0, satp; sfence.vma)
  MSTATUS_CLR(MSTATUS_TVM)
  GOTO_S
  TEST_CASE(110, a0, 0, csrr a0, satp; csrw satp, zero; sfence.vma)
  GOTO_M

  /* ------------------------------------------------------------ software interrupts */
  /* menvcfg.STCE = 0 keeps mip.STIP writable by M for the priority tests; mtimecmp at
   * its maximum keeps MTIP clear. */
  li a1, MENVCFG_STCE
  csrc CSR_MENVCFG, a1
  li a1, CLINT_MTIMECMP
  li a2, -1
  sd a2, 0(a1)
  /* SSIP, not delegated, taken in M when MIE = 1; mepc is the next instruction. */
  li TESTNUM, 130
  li a1, MIP_SSIP
  csrw mie, a1
  MSTATUS_SET(MSTATUS_MIE)
  expect_trap CAUSE_INT_SSI
  csrs mip, a1
1:
  CHECK_TRAPPED
  CHECK_LAST_EPC(1b)
  /* The handler disabled mie.SSIE; SSIP itself stays pending until cleared. */
  TEST_CASE(131, a0, MIP_SSIP, csrr a0, mip; andi a0, a0, MIP_SSIP)
  /* With MIE = 0 nothing is taken in M. */
  TEST_CASE(132, a0, 3, li a1, MIP_SSIP; csrw mie, a1; MSTATUS_CLR(MSTATUS_MIE); li a0, 1; addi a0, a0, 1; addi a0, a0, 1)
  /* Delegated: never taken in M, even with MIE = 1 and SIE = 1... */
  li TESTNUM, 133
  csrw mideleg, a1
  MSTATUS_SET(MSTATUS_MIE|MSTATUS_SIE)
  nop
  nop
  MSTATUS_CLR(MSTATUS_MIE)
  /* ...but taken in S once S-mode runs with SIE = 1 (at the first S instruction). */
  li TESTNUM, 134
  expect_trap CAUSE_INT_SSI, 0, TF_IN_S
  GOTO_S
  CHECK_TRAPPED
  CHECK_LAST_STATUS(MSTATUS_SPP, MSTATUS_SPP)
  /* In S with SIE = 0 it waits; in U it is taken whatever SIE says.  S can raise it
   * itself through sip. */
  li TESTNUM, 135
  csrsi sie, MIP_SSIP
  csrci sstatus, MSTATUS_SIE
  nop
  expect_trap CAUSE_INT_SSI, 0, TF_IN_S
  GOTO_U_FROM_S
  CHECK_TRAPPED
  CHECK_LAST_STATUS(MSTATUS_SPP, 0)
  GOTO_M
  csrci mip, MIP_SSIP
  GOTO_S
  li TESTNUM, 136
  csrsi sie, MIP_SSIP
  csrsi sstatus, MSTATUS_SIE
  expect_trap CAUSE_INT_SSI, 0, TF_IN_S
  csrsi sip, MIP_SSIP
  CHECK_TRAPPED
  csrci sip, MIP_SSIP
  GOTO_M
  /* Not delegated: SSIP pending while in S goes to M even with MIE = 0. */
  li TESTNUM, 137
  csrw mideleg, zero
  li a1, MIP_SSIP
  csrw mie, a1
  csrw mip, a1
  MSTATUS_CLR(MSTATUS_MIE|MSTATUS_MPIE)
  expect_trap CAUSE_INT_SSI
  GOTO_S
  CHECK_TRAPPED
  CHECK_LAST_STATUS(MSTATUS_MPP, MSTATUS_MPP_S)
  GOTO_M
  csrw mip, zero
  /* Machine software interrupt from the CLINT: mip.MSIP follows msip and is read-only;
   * with MIE = 0 it waits in M, but M interrupts are always enabled in S and U. */
  li TESTNUM, 138
  li a1, MIP_MSIP
  csrw mie, a1
  li a2, CLINT_MSIP
  li a3, 1
  sw a3, 0(a2)
  csrc mip, a1                      /* no effect: MSIP is read-only in mip */
  csrr a0, mip
  andi a0, a0, MIP_MSIP
  CHECK_EQ(a0, MIP_MSIP)
  li TESTNUM, 139
  expect_trap CAUSE_INT_MSI
  GOTO_U
  CHECK_TRAPPED
  CHECK_LAST_STATUS(MSTATUS_MPP, 0)
  GOTO_M
  li a1, MIP_MSIP
  csrs mie, a1
  expect_trap CAUSE_INT_MSI
  GOTO_S
  CHECK_TRAPPED
  CHECK_LAST_STATUS(MSTATUS_MPP, MSTATUS_MPP_S)
  GOTO_M
  li a2, CLINT_MSIP
  sw zero, 0(a2)
  TEST_CASE(129, a0, 0, csrr a0, mip; andi a0, a0, MIP_MSIP)
  csrw mie, zero

  /* ------------------------------------------------------------ CLINT timer */
  /* MTIP follows mtime >= mtimecmp and cannot be written through mip. */
  li TESTNUM, 140
  li a1, CLINT_MTIMECMP
  sd zero, 0(a1)
  li a2, 100000
1:
  csrr a0, mip
  andi a0, a0, MIP_MTIP
  bnez a0, 2f
  addi a2, a2, -1
  bnez a2, 1b
  FAIL_TEST
2:
  li a2, -1
  sd a2, 0(a1)
  TEST_CASE(141, a0, 0, csrr a0, mip; andi a0, a0, MIP_MTIP)
  TEST_CASE(142, a0, 0, li a1, MIP_MTIP; csrs mip, a1; csrr a0, mip; andi a0, a0, MIP_MTIP)
  /* A timer interrupt a little in the future, taken in M with MIE = 1. */
  li TESTNUM, 143
  li a1, CLINT_MTIME
  ld a2, 0(a1)
  addi a2, a2, 50
  li a1, CLINT_MTIMECMP
  sd a2, 0(a1)
  li a1, MIP_MTIP
  csrw mie, a1
  expect_trap CAUSE_INT_MTI
  MSTATUS_SET(MSTATUS_MIE)
  WAIT_TRAPPED(10000000)
  li a1, CLINT_MTIMECMP
  li a2, -1
  sd a2, 0(a1)
  /* WFI waits for it with MIE = 0: a pending interrupt that is enabled in mie wakes
   * WFI even when globally disabled (so there is no lost wake-up if the deadline passes
   * before the WFI).  WFI may also return early, hence the loop on mip.MTIP.  Setting
   * MIE then takes the interrupt at once: mepc is the next instruction. */
  li TESTNUM, 144
  MSTATUS_CLR(MSTATUS_MIE)
  li a1, CLINT_MTIME
  ld a2, 0(a1)
  li a3, 10000
  add a2, a2, a3
  li a1, CLINT_MTIMECMP
  sd a2, 0(a1)
  li a1, MIP_MTIP
  csrw mie, a1
  expect_trap CAUSE_INT_MTI
  li a4, 100000000
1:
  wfi
  csrr a0, mip
  andi a0, a0, MIP_MTIP
  beqz a0, 3f
  csrsi mstatus, MSTATUS_MIE
2:
  CHECK_TRAPPED
  CHECK_LAST_EPC(2b)
  j 4f
3:
  addi a4, a4, -1
  bnez a4, 1b
  FAIL_TEST
4:
  li a1, CLINT_MTIMECMP
  li a2, -1
  sd a2, 0(a1)
  /* In U the timer interrupt comes even with MIE = 0. */
  li TESTNUM, 145
  li a1, MIP_MTIP
  csrw mie, a1
  MSTATUS_CLR(MSTATUS_MIE|MSTATUS_MPIE)
  li a1, CLINT_MTIMECMP
  sd zero, 0(a1)
  expect_trap CAUSE_INT_MTI
  GOTO_U
  WAIT_TRAPPED(10000000)
  GOTO_M
  li a1, CLINT_MTIMECMP
  li a2, -1
  sd a2, 0(a1)

#ifndef QEMU_SPIKE_NO_SSTC
  /* ------------------------------------------------------------ Sstc */
  /* With menvcfg.STCE = 1, STIP is (time >= stimecmp) and read-only in mip.  QEMU's
   * spike machine has no time CSR, so its Sstc is unusable; Parley-only. */
  li TESTNUM, 150
  li a1, MENVCFG_STCE
  csrs CSR_MENVCFG, a1
  li a1, -1
  csrw CSR_STIMECMP, a1
  li a1, MIP_STIP
  csrs mip, a1                      /* read-only now: stays clear */
  csrr a0, mip
  andi a0, a0, MIP_STIP
  CHECK_EQ(a0, 0)
  li TESTNUM, 151
  csrw CSR_STIMECMP, zero           /* time >= 0: pending at once */
  csrr a0, mip
  andi a0, a0, MIP_STIP
  CHECK_EQ(a0, MIP_STIP)
  /* Not delegated: an S timer interrupt in M needs MIE. */
  li TESTNUM, 152
  li a1, MIP_STIP
  csrw mie, a1
  expect_trap CAUSE_INT_STI
  MSTATUS_SET(MSTATUS_MIE)
  CHECK_TRAPPED
  /* Delegated and programmed from S (mcounteren.TM lets S touch stimecmp). */
  li TESTNUM, 153
  li a1, MIP_STIP
  csrw mideleg, a1
  li a1, 2
  csrw mcounteren, a1
  li a1, -1
  csrw CSR_STIMECMP, a1
  GOTO_S
  csrsi sstatus, MSTATUS_SIE
  li a1, MIP_STIP
  csrs sie, a1
  rdtime a2
  addi a2, a2, 50
  expect_trap CAUSE_INT_STI, 0, TF_IN_S
  csrw CSR_STIMECMP, a2
  WAIT_TRAPPED(10000000)
  li a1, -1
  csrw CSR_STIMECMP, a1
  TEST_CASE(154, a0, 0, csrr a0, sip; andi a0, a0, MIP_STIP)
  GOTO_M
  /* S may not access stimecmp when mcounteren.TM = 0 or menvcfg.STCE = 0. */
  csrw mcounteren, zero
  GOTO_S
  TEST_TRAP(155, CAUSE_ILLEGAL, csrr a0, CSR_STIMECMP)
  GOTO_M
  li a1, 2
  csrw mcounteren, a1
  li a1, MENVCFG_STCE
  csrc CSR_MENVCFG, a1
  GOTO_S
  TEST_TRAP(156, CAUSE_ILLEGAL, csrw CSR_STIMECMP, zero)
  GOTO_M
  csrw mcounteren, zero
  csrw mideleg, zero
  csrw mie, zero
  csrw mip, zero
#endif

  /* ------------------------------------------------------------ priorities */
  /* Several interrupts pending and enabled at once: M takes MEI > MSI > MTI > SEI >
   * SSI > STI (MEI has no source here).  Each handled interrupt is disabled in mie and
   * leaves MIE off, so the next one is taken when MIE is set again.
   * QEMU 7.2 without AIA simply takes the lowest-numbered pending interrupt (SSI=1 <
   * MSI=3 < STI=5 < MTI=7 < SEI=9), which agrees with the spec only within the groups
   * {MSI, MTI, SEI} and {SSI, STI}; the sets mixing the groups are Parley-only. */
#define IRQ_WAIT_MTIP \
  li a2, 100000; 1: csrr a0, mip; andi a0, a0, MIP_MTIP; bnez a0, 2f; addi a2, a2, -1; bnez a2, 1b; FAIL_TEST; 2:
#define IRQ_NEXT(n, cause) \
  li TESTNUM, n; expect_trap cause; csrsi mstatus, MSTATUS_MIE; CHECK_TRAPPED
  li TESTNUM, 160
  MSTATUS_CLR(MSTATUS_MIE)
  csrw mideleg, zero
  /* MSI, MTI, SEI. */
  li a1, CLINT_MSIP
  li a2, 1
  sw a2, 0(a1)
  li a1, CLINT_MTIMECMP
  sd zero, 0(a1)
  li a1, MIP_SEIP
  csrw mip, a1
  IRQ_WAIT_MTIP
  li a1, MIP_MSIP|MIP_MTIP|MIP_SEIP
  csrw mie, a1
  IRQ_NEXT(161, CAUSE_INT_MSI)
  IRQ_NEXT(162, CAUSE_INT_MTI)
  IRQ_NEXT(163, CAUSE_INT_SEI)
  /* SSI, STI. */
  li a1, MIP_SSIP|MIP_STIP
  csrw mip, a1
  csrw mie, a1
  IRQ_NEXT(164, CAUSE_INT_SSI)
  IRQ_NEXT(165, CAUSE_INT_STI)
  TEST_CASE(166, a0, 0, csrr a0, mie)
#ifndef QEMU_IRQ_PRIORITY_BY_NUMBER
  /* All of MSI, MTI, SEI, SSI, STI at once. */
  li a1, MIP_SSIP|MIP_STIP|MIP_SEIP
  csrw mip, a1
  li a1, MIP_MSIP|MIP_MTIP|MIP_SEIP|MIP_SSIP|MIP_STIP
  csrw mie, a1
  IRQ_NEXT(173, CAUSE_INT_MSI)
  IRQ_NEXT(174, CAUSE_INT_MTI)
  IRQ_NEXT(175, CAUSE_INT_SEI)
  IRQ_NEXT(176, CAUSE_INT_SSI)
  IRQ_NEXT(177, CAUSE_INT_STI)
#endif
  /* Delegated S interrupts taken in S: SEI > SSI > STI there too. */
  li TESTNUM, 167
  li a1, CLINT_MSIP
  sw zero, 0(a1)
  li a1, CLINT_MTIMECMP
  li a2, -1
  sd a2, 0(a1)
  li a1, MIP_SEIP|MIP_SSIP|MIP_STIP
  csrw mideleg, a1
#ifdef QEMU_IRQ_PRIORITY_BY_NUMBER
  li a1, MIP_SSIP|MIP_STIP
#endif
  csrw mip, a1
  csrw mie, a1
  MSTATUS_CLR(MSTATUS_SIE)
  GOTO_S
#ifndef QEMU_IRQ_PRIORITY_BY_NUMBER
  li TESTNUM, 168
  expect_trap CAUSE_INT_SEI, 0, TF_IN_S
  csrsi sstatus, MSTATUS_SIE
  CHECK_TRAPPED
#endif
  li TESTNUM, 169
  expect_trap CAUSE_INT_SSI, 0, TF_IN_S
  csrsi sstatus, MSTATUS_SIE
  CHECK_TRAPPED
  li TESTNUM, 170
  expect_trap CAUSE_INT_STI, 0, TF_IN_S
  csrsi sstatus, MSTATUS_SIE
  CHECK_TRAPPED
  GOTO_M
  /* An M-level interrupt is taken before a delegated S-level one. */
  li TESTNUM, 171
  li a1, MIP_MTIP|MIP_SSIP
  csrw mie, a1
  csrw mip, a1
  li a1, CLINT_MTIMECMP
  sd zero, 0(a1)
  IRQ_WAIT_MTIP
  MSTATUS_SET(MSTATUS_SIE)
  /* Both could be taken on entering S: MTI must win.  Its handler resumes in M (where
   * the delegated SSI cannot be taken), then S is entered again for the SSI. */
  expect_trap CAUSE_INT_MTI, 1f, TF_ELEVATE
  GOTO_S
  FAIL_TEST
1:
  CHECK_TRAPPED
  li TESTNUM, 172
  expect_trap CAUSE_INT_SSI, 0, TF_IN_S
  GOTO_S
  CHECK_TRAPPED
  GOTO_M
  li a1, CLINT_MTIMECMP
  li a2, -1
  sd a2, 0(a1)
  csrw mip, zero
  csrw mie, zero
  csrw mideleg, zero

  /* ------------------------------------------------------------ vectored mtvec */
  /* Interrupt cause c goes to BASE + 4*c; exceptions still go to BASE.  The vector stubs
   * leave a mark in sscratch (unused by M-mode code here) and continue in the default
   * handler. */
  li TESTNUM, 180
  csrw sscratch, zero
  la a1, vector_table
  ori a1, a1, 1
  csrw mtvec, a1
  li a1, MIP_MSIP
  csrw mie, a1
  expect_trap CAUSE_INT_MSI
  li a1, CLINT_MSIP
  li a2, 1
  sw a2, 0(a1)
  csrsi mstatus, MSTATUS_MIE
  CHECK_TRAPPED
  li a1, CLINT_MSIP
  sw zero, 0(a1)
  csrr a0, sscratch
  CHECK_EQ(a0, 3)
  li TESTNUM, 181
  li a1, MIP_SSIP
  csrw mie, a1
  expect_trap CAUSE_INT_SSI
  csrsi mip, MIP_SSIP
  csrsi mstatus, MSTATUS_MIE
  CHECK_TRAPPED
  csrci mip, MIP_SSIP
  csrr a0, sscratch
  CHECK_EQ(a0, 1)
  /* An exception uses BASE (entry 0, which does not mark). */
  li TESTNUM, 182
  csrw sscratch, zero
  expect_trap CAUSE_ILLEGAL
  .word ILLEGAL32
  CHECK_TRAPPED
  csrr a0, sscratch
  CHECK_EQ(a0, 0)
  la a1, rt_m_trap
  csrw mtvec, a1
  la a1, rt_s_save
  csrw sscratch, a1
  csrw mie, zero

TEST_END

  /* 64 four-byte entries; the base is generously aligned. */
  .section .text.vectors, "ax", @progbits
  .option push
  .option norvc
  .balign 256
vector_table:
  j rt_m_trap                /* 0: exceptions */
  j vec_ssi                  /* 1: SSI */
  j vec_bad                  /* 2 */
  j vec_msi                  /* 3: MSI */
  .rept 60
  j vec_bad
  .endr
vec_ssi:
  csrwi sscratch, 1
  j rt_m_trap
vec_msi:
  csrwi sscratch, 3
  j rt_m_trap
vec_bad:
  csrwi sscratch, 31
  j rt_m_trap
  .option pop
