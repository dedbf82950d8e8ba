/*
 * Virtual memory: Sv39, Sv48 and Sv57 page tables built here at run time.
 *
 * The test image (0x80000000, well under 1 GiB) is identity-mapped with a gigapage so
 * S-mode can keep running the test code, the trap handlers and trap_ctl at the same
 * addresses; test pages live at VA 0x40000000.  Page faults are not delegated unless a
 * test says so, so the M handler (untranslated, with mepc = an identity VA = the PA)
 * checks mcause/mtval.  PTEs under test start with A/D clear where the test looks at
 * the hardware A/D update (both Parley and QEMU update A/D in hardware, no Svade).
 *
 * Sv39 layout (root39):
 *   VPN2 = 1   VA 0x40000000  -> L1 table:
 *                 L1[0] -> L0 table, 4 KiB test pages VA 0x40000000 + 0x1000 * i (below)
 *                 L1[1] 2 MiB page VA 0x40200000 -> PA 0x80000000
 *                 L1[2] 2 MiB page VA 0x40400000 with a misaligned PPN  (faults)
 *   VPN2 = 2   VA 0x80000000  gigapage identity, RWX (U only in the U-mode block)
 *   VPN2 = 4   VA 0x100000000 gigapage alias of 0x80000000 with U set
 *   VPN2 = 5   VA 0x140000000 gigapage with a misaligned PPN (faults)
 *   VPN2 = 256 VA 0xffffffc000000000 gigapage alias of 0x80000000 (upper half)
 *
 * Test numbers: Sv39 basics 1-19, A/D 20-39, permissions and malformed PTEs 40-69,
 * misaligned accesses and instructions across virtual pages 70-79,
 * SUM and U pages 80-99, U-mode 100-119, MPRV 120-139, satp 140-149, sfence.vma
 * 150-159, delegated page faults 160-169, Sv48 170-189, Sv57 190-209, S-mode satp
 * switch 210-219.
 */
#include "macros.h"

#define PTE_V 0x1
#define PTE_R 0x2
#define PTE_W 0x4
#define PTE_X 0x8
#define PTE_U 0x10
#define PTE_G 0x20
#define PTE_A 0x40
#define PTE_D 0x80
#define PTE_BIT60 0x1000000000000000
#define PTE_PBMT_NC 0x2000000000000000     /* PBMT = 1 (NC): reserved without Svpbmt */
#define PTE_N 0x8000000000000000           /* NAPOT: reserved without Svnapot */

#define SATP_SV39 0x8000000000000000
#define SATP_SV48 0x9000000000000000
#define SATP_SV57 0xa000000000000000

#define VA_PAGE(i) (0x40000000+0x1000*(i))
#define VA_2M      0x40200000
#define VA_2M_BAD  0x40400000
#define VA_ALIAS_U 0x100000000             /* + (sym - 0x80000000) */
#define VA_1G_BAD  0x140000000
#define VA_UPPER   0xffffffc000000000      /* + (sym - 0x80000000) */

/* Map: root table symbol, VA, number of levels, leaf level (0 = 4 KiB), PA, PTE flags. */
#define MAP_SYM(root, va, levels, leaf, pasym, flags) \
  la a0, root; li a1, va; li a2, levels; li a3, leaf; la a4, pasym; li a5, flags; call pt_map
#define MAP_PA(root, va, levels, leaf, pa, flags) \
  la a0, root; li a1, va; li a2, levels; li a3, leaf; li a4, pa; li a5, flags; call pt_map
/* reg = the PTE currently mapping va (leaf level given). */
#define PTE_OF(reg, root, va, levels, leaf) \
  la a0, root; li a1, va; li a2, levels; li a3, leaf; call pt_pte_addr; ld reg, 0(a0)
/* reg = VA of symbol sym through a mapping of 0x80000000 at base. */
#define VA_OF(reg, base, sym) la reg, sym; li t5, (base)-0x80000000; add reg, reg, t5

#define SET_SATP(mode, root) la t5, root; srli t5, t5, 12; li t6, mode; or t5, t5, t6; csrw satp, t5; sfence.vma

#define FAULT_LOAD(n, va)  li TESTNUM, n; li a1, va; expect_trap_tval CAUSE_LOAD_PAGE, va; ld a0, 0(a1); CHECK_TRAPPED
#define FAULT_STORE(n, va) li TESTNUM, n; li a1, va; expect_trap_tval CAUSE_STORE_PAGE, va; sd a0, 0(a1); CHECK_TRAPPED
/* Fetch fault: jump to va, resume at the next line with mepc == mtval == va. */
#define FAULT_FETCH(n, va) \
  li TESTNUM, n; li a1, va; expect_trap_tval CAUSE_FETCH_PAGE, va, 8884f; jalr ra, 0(a1); FAIL_TEST; 8884: \
  CHECK_TRAP_FIELD(TC_LAST_EPC, va)

TEST_BEGIN
  /* Known contents for the test pages: first doubleword of page i = PATTERN(i). */
#define PATTERN(i) (0x1111111111111111*((i)+1))
  .irp i,0,1,2,3,4,5
    la a1, tpages+0x1000*\i
    li a2, PATTERN(\i)
    sd a2, 0(a1)
  .endr
  /* Last doubleword of page 1, for accesses that cross from page 1 into page 0. */
  la a1, tpages+0x1ff8
  li a2, 0x8877665544332211
  sd a2, 0(a1)
  /* Page 6 holds code: the upper half of the 4-byte instruction that starts at the end
   * of xpage (addi a0, a0, 1 = 0x00150513), then c.jr ra. */
  la a1, tpages+0x6000
  li a2, 0x0015
  sh a2, 0(a1)
  li a2, 0x8082
  sh a2, 2(a1)
  fence.i
  la a1, pt_pool
  la a2, pt_next
  sd a1, 0(a2)

  /* ------------------------------------------------------------ Sv39 tables */
  MAP_PA(root39, 0x80000000, 3, 2, 0x80000000, PTE_V|PTE_R|PTE_W|PTE_X|PTE_A|PTE_D)
  MAP_PA(root39, VA_ALIAS_U, 3, 2, 0x80000000, PTE_V|PTE_R|PTE_W|PTE_X|PTE_U|PTE_A|PTE_D)
  MAP_PA(root39, VA_1G_BAD, 3, 2, 0x80200000, PTE_V|PTE_R|PTE_A)
  MAP_PA(root39, VA_UPPER, 3, 2, 0x80000000, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D)
  MAP_PA(root39, VA_2M, 3, 1, 0x80000000, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D)
  MAP_PA(root39, VA_2M_BAD, 3, 1, 0x80001000, PTE_V|PTE_R|PTE_A)
  MAP_SYM(root39, VA_PAGE(0), 3, 0, tpages+0x0000, PTE_V|PTE_R|PTE_W)                 /* A/D clear */
  MAP_SYM(root39, VA_PAGE(1), 3, 0, tpages+0x1000, PTE_V|PTE_R|PTE_W)                 /* A/D clear */
  MAP_SYM(root39, VA_PAGE(2), 3, 0, tpages+0x2000, PTE_V|PTE_R|PTE_A)                 /* read-only, D clear */
  MAP_SYM(root39, VA_PAGE(3), 3, 0, xpage, PTE_V|PTE_X)                               /* execute-only, A clear */
  MAP_SYM(root39, VA_PAGE(4), 3, 0, tpages+0x3000, PTE_V|PTE_W|PTE_A|PTE_D)           /* W without R */
  MAP_SYM(root39, VA_PAGE(5), 3, 0, tpages+0x3000, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D|PTE_BIT60)
  MAP_SYM(root39, VA_PAGE(6), 3, 0, tpages+0x3000, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D|PTE_PBMT_NC)
  MAP_SYM(root39, VA_PAGE(7), 3, 0, tpages+0x3000, PTE_R|PTE_W|PTE_A|PTE_D)           /* V = 0 */
  MAP_SYM(root39, VA_PAGE(8), 3, 0, tpages+0x4000, PTE_V|PTE_R|PTE_W|PTE_U|PTE_A|PTE_D)
  MAP_SYM(root39, VA_PAGE(9), 3, 0, xpage, PTE_V|PTE_X|PTE_U|PTE_A)                   /* U execute-only */
  MAP_SYM(root39, VA_PAGE(10), 3, 0, tpages+0x3000, PTE_V)                            /* pointer at level 0 */
  MAP_SYM(root39, VA_PAGE(11), 3, 0, tpages+0x3000, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D|PTE_N)
  MAP_SYM(root39, VA_PAGE(12), 3, 0, tpages+0x5000, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D)
  MAP_SYM(root39, VA_PAGE(13), 3, 0, xpage, PTE_V|PTE_R|PTE_X|PTE_A)                  /* S code page */
  /* Pairs of adjacent virtual pages backed by non-adjacent physical pages. */
  MAP_SYM(root39, VA_PAGE(14), 3, 0, tpages+0x1000, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D)
  MAP_SYM(root39, VA_PAGE(15), 3, 0, tpages+0x0000, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D)  /* VA_PAGE(16) unmapped */
  MAP_SYM(root39, VA_PAGE(17), 3, 0, xpage, PTE_V|PTE_X|PTE_A)                      /* VA_PAGE(18) unmapped */
  MAP_SYM(root39, VA_PAGE(19), 3, 0, xpage, PTE_V|PTE_X|PTE_A)
  MAP_SYM(root39, VA_PAGE(20), 3, 0, tpages+0x6000, PTE_V|PTE_X|PTE_A)

  /* ------------------------------------------------------------ Sv39 basics */
  TEST_CASE(1, a0, 0, csrr a0, satp)
  li TESTNUM, 2
  SET_SATP(SATP_SV39, root39)
  csrr a0, satp
  la a1, root39
  srli a1, a1, 12
  li a2, SATP_SV39
  or a1, a1, a2
  CHECK_EQ_REG(a0, a1)
  GOTO_S
  /* Running in S at identity-mapped addresses; loads through each kind of mapping. */
  TEST_CASE(3, a0, PATTERN(2), li a1, VA_PAGE(2); ld a0, 0(a1))
  TEST_CASE(4, a0, 0x0123456789abcdef, VA_OF(a1, VA_2M, tdata); ld a0, 0(a1))
  TEST_CASE(5, a0, 0x0123456789abcdef, VA_OF(a1, VA_UPPER, tdata); ld a0, 0(a1))
  TEST_CASE(6, a0, PATTERN(5), li a1, VA_PAGE(12); ld a0, 0(a1))
  /* Offsets within a superpage, including a misaligned load. */
  TEST_CASE(7, a0, 0x01234567, VA_OF(a1, VA_2M, tdata); lwu a0, 4(a1))
  TEST_CASE(8, a0, 0xd2c3b4a596870123, VA_OF(a1, VA_2M, tdata); ld a0, 6(a1))
  /* A store through one mapping is visible through another (same physical page). */
  TEST_CASE(9, a0, 0x5555, li a1, VA_PAGE(12); li a2, 0x5555; sd a2, 8(a1); la a1, tpages+0x5000; ld a0, 8(a1))

  /* ------------------------------------------------------------ A and D bits */
  /* A load sets A (not D); a later store sets D. */
  TEST_CASE(20, a0, 0, PTE_OF(a0, root39, VA_PAGE(0), 3, 0); andi a0, a0, PTE_A|PTE_D)
  TEST_CASE(21, a0, PATTERN(0), li a1, VA_PAGE(0); ld a0, 0(a1))
  TEST_CASE(22, a0, PTE_A, PTE_OF(a0, root39, VA_PAGE(0), 3, 0); andi a0, a0, PTE_A|PTE_D)
  TEST_CASE(23, a0, PTE_A|PTE_D, li a1, VA_PAGE(0); sd zero, 16(a1); PTE_OF(a0, root39, VA_PAGE(0), 3, 0); andi a0, a0, PTE_A|PTE_D)
  /* A store to a page with A and D clear sets both. */
  TEST_CASE(24, a0, PTE_A|PTE_D, li a1, VA_PAGE(1); li a2, 7; sw a2, 0(a1); PTE_OF(a0, root39, VA_PAGE(1), 3, 0); andi a0, a0, PTE_A|PTE_D)
  /* The rest of the PTE is untouched by the update. */
  TEST_CASE(25, a0, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D, PTE_OF(a0, root39, VA_PAGE(1), 3, 0); andi a0, a0, 0x3ff)
  /* An instruction fetch sets A on an execute-only page (and not D). */
  TEST_CASE(26, a0, 0x77, li a1, VA_PAGE(3); jalr ra, 0(a1))
  TEST_CASE(27, a0, PTE_A, PTE_OF(a0, root39, VA_PAGE(3), 3, 0); andi a0, a0, PTE_A|PTE_D)
  /* A store that faults on a read-only page does not set D. */
  FAULT_STORE(28, VA_PAGE(2))
  TEST_CASE(29, a0, PTE_A, PTE_OF(a0, root39, VA_PAGE(2), 3, 0); andi a0, a0, PTE_D|PTE_A)

  /* ------------------------------------------------------------ permissions, bad PTEs */
  /* Execute-only: loads fault unless MXR; stores always fault. */
  FAULT_LOAD(40, VA_PAGE(3))
  TEST_CASE(41, a0, 0, li a1, VA_PAGE(3); csrr a2, sstatus; li a3, MSTATUS_MXR; or a2, a2, a3; csrw sstatus, a2; \
            lw a0, 0(a1); la a1, xpage; lw a2, 0(a1); sub a0, a0, a2)
  FAULT_STORE(42, VA_PAGE(3))
  li a3, MSTATUS_MXR
  csrc sstatus, a3
  /* Read-only page: stores and AMOs fault with the store/AMO page fault. */
  FAULT_STORE(43, VA_PAGE(2))
#ifndef QEMU_AMO_FAULT_IS_LOAD
  TEST_TRAP_TVAL(44, CAUSE_STORE_PAGE, VA_PAGE(2), li a1, VA_PAGE(2); amoadd.d a0, a0, (a1))
#endif
  /* An SC that holds a valid reservation (the LR could read the page) but may not write. */
  TEST_TRAP_TVAL(45, CAUSE_STORE_PAGE, VA_PAGE(2), li a1, VA_PAGE(2); lr.d a0, (a1); li a2, 1; sc.d a0, a2, (a1))
  /* Fetch from a page without X (mtval = mepc = the target). */
  FAULT_FETCH(46, VA_PAGE(12))
  /* W without R is a reserved encoding: every access type faults. */
  FAULT_LOAD(47, VA_PAGE(4))
  FAULT_STORE(48, VA_PAGE(4))
  /* Reserved PTE bits 60:54, PBMT without Svpbmt, N without Svnapot: page faults. */
  FAULT_LOAD(49, VA_PAGE(5))
  FAULT_STORE(50, VA_PAGE(5))
  FAULT_LOAD(51, VA_PAGE(6))
  FAULT_LOAD(52, VA_PAGE(11))
  /* V = 0. */
  FAULT_LOAD(53, VA_PAGE(7))
  FAULT_STORE(54, VA_PAGE(7))
  FAULT_FETCH(55, VA_PAGE(7))
  /* A pointer PTE (R = W = X = 0) at the last level. */
  FAULT_LOAD(56, VA_PAGE(10))
  /* Unmapped: an invalid entry in an existing table, and a missing table. */
  FAULT_LOAD(57, VA_PAGE(100))
  FAULT_LOAD(58, 0x10000000)
  /* Misaligned superpages: a 2 MiB page whose PPN is not 2 MiB aligned, a gigapage whose
   * PPN is not 1 GiB aligned. */
  FAULT_LOAD(59, VA_2M_BAD)
  FAULT_LOAD(60, VA_1G_BAD+0x1000)
  /* Non-canonical addresses (bits 63:39 not all equal to bit 38): page fault, with the
   * full address in mtval. */
  FAULT_LOAD(61, 0x0000004000000000)
  FAULT_STORE(62, 0x8000000080000000)
  FAULT_LOAD(63, 0xffffff0000000000+0x80000000)
  FAULT_FETCH(64, 0x0000008080000000)
  /* Loads that fault leave rd unchanged. */
  TEST_CASE(65, a0, 0x42, li a0, 0x42; li a1, VA_PAGE(7); expect_trap CAUSE_LOAD_PAGE; ld a0, 0(a1); CHECK_TRAPPED)

  /* ------------------------------------------------------------ accesses across pages */
  /* Misaligned loads and stores that straddle two virtual pages are translated page by
   * page (VA_PAGE(14) -> tpage 1, VA_PAGE(15) -> tpage 0). */
  TEST_CASE(70, a0, 0x1111111188776655, li a1, VA_PAGE(15); ld a0, -4(a1))
  TEST_CASE(71, a0, 0x11118877, li a1, VA_PAGE(15); lwu a0, -2(a1))
  TEST_CASE(72, a0, 0xa6a7a85544332211, li a1, VA_PAGE(15); li a2, 0xa1a2a3a4a5a6a7a8; sd a2, -3(a1); la a1, tpages+0x1ff8; ld a0, 0(a1))
  TEST_CASE(73, a0, 0x111111a1a2a3a4a5, la a1, tpages; ld a0, 0(a1); li a2, PATTERN(0); sd a2, 0(a1))
  /* When the second page faults, mtval is the address of the part that faulted (the
   * start of that page). */
  li TESTNUM, 74
  li a1, VA_PAGE(16)
  expect_trap_tval CAUSE_LOAD_PAGE, VA_PAGE(16)
  ld a0, -4(a1)
  CHECK_TRAPPED
  /* A 4-byte instruction straddling two code pages: it executes when both are mapped
   * (c.nop at VA_PAGE(19)+0xffc, then addi a0, a0, 1 across the boundary, then c.jr ra
   * from the other physical page)... */
  TEST_CASE(75, a0, 6, li a0, 5; li a1, VA_PAGE(19)+0xffc; jalr ra, 0(a1))
  /* ...and when the second page is unmapped, mepc is the instruction and mtval the
   * faulting part of it: the start of the second page. */
  li TESTNUM, 76
  li a1, VA_PAGE(17)+0xffc
  expect_trap_tval CAUSE_FETCH_PAGE, VA_PAGE(18), 1f
  jalr ra, 0(a1)
  FAIL_TEST
1:
  CHECK_TRAP_FIELD(TC_LAST_EPC, VA_PAGE(17)+0xffe)

  /* ------------------------------------------------------------ SUM and U pages from S */
  /* S-mode loads/stores to a U page fault unless sstatus.SUM = 1. */
  li TESTNUM, 80
  VA_OF(a1, VA_ALIAS_U, tdata)
  expect_trap_tval_reg CAUSE_LOAD_PAGE, a1
  ld a0, 0(a1)
  CHECK_TRAPPED
  FAULT_LOAD(81, VA_PAGE(8))
  FAULT_STORE(82, VA_PAGE(8))
  li a3, MSTATUS_SUM
  csrs sstatus, a3
  TEST_CASE(83, a0, 0x0123456789abcdef, VA_OF(a1, VA_ALIAS_U, tdata); ld a0, 0(a1))
  TEST_CASE(84, a0, 0x99, li a1, VA_PAGE(8); li a2, 0x99; sd a2, 8(a1); ld a0, 8(a1))
  /* ...but S may never execute from a U page, SUM or not. */
  li TESTNUM, 85
  VA_OF(a1, VA_ALIAS_U, xpage)
  expect_trap_tval_reg CAUSE_FETCH_PAGE, a1, 1f
  jalr ra, 0(a1)
  FAIL_TEST
1:
  /* MXR does not open U pages to S either when SUM = 0. */
  li a3, MSTATUS_SUM
  csrc sstatus, a3
  li a3, MSTATUS_MXR
  csrs sstatus, a3
  FAULT_LOAD(86, VA_PAGE(9))
  li a3, MSTATUS_MXR
  csrc sstatus, a3
  GOTO_M

  /* ------------------------------------------------------------ U-mode */
  /* Make the identity gigapage a U page (the code runs there in U), then check that U
   * can use U pages and nothing else. */
  MAP_PA(root39, 0x80000000, 3, 2, 0x80000000, PTE_V|PTE_R|PTE_W|PTE_X|PTE_U|PTE_A|PTE_D)
  sfence.vma
  GOTO_U
  TEST_CASE(100, a0, 0x99, li a1, VA_PAGE(8); ld a0, 8(a1))
  FAULT_LOAD(101, VA_PAGE(2))
  FAULT_STORE(102, VA_PAGE(0))
  FAULT_FETCH(103, VA_PAGE(13))
  /* U execute-only page: fetch works, load needs MXR. */
  TEST_CASE(104, a0, 0x77, li a1, VA_PAGE(9); jalr ra, 0(a1))
  FAULT_LOAD(105, VA_PAGE(9))
  GOTO_M
  li a1, MSTATUS_MXR
  csrs mstatus, a1
  GOTO_U
  TEST_CASE(106, a0, 0, li a1, VA_PAGE(9); lw a0, 0(a1); la a1, xpage; lw a2, 0(a1); sub a0, a0, a2)
  GOTO_M
  li a1, MSTATUS_MXR
  csrc mstatus, a1
  MAP_PA(root39, 0x80000000, 3, 2, 0x80000000, PTE_V|PTE_R|PTE_W|PTE_X|PTE_A|PTE_D)
  sfence.vma

  /* ------------------------------------------------------------ MPRV */
  /* M-mode loads and stores with MPRV = 1 are translated and checked as if in MPP's
   * mode; instruction fetch is not affected.  A fault is taken in M (mtval = the VA),
   * and it sets MPP = M, which makes MPRV inert until MPP is set again. */
#define MPRV_AS(mpp) li t5, MSTATUS_MPP; csrc mstatus, t5; li t5, (mpp)|MSTATUS_MPRV; csrs mstatus, t5
#define MPRV_OFF li t5, MSTATUS_MPRV; csrc mstatus, t5
  MPRV_AS(MSTATUS_MPP_S)
  TEST_CASE(120, a0, PATTERN(2), li a1, VA_PAGE(2); ld a0, 0(a1))
  TEST_CASE(121, a0, 0x1234, li a1, VA_PAGE(12); li a2, 0x1234; sd a2, 0(a1); ld a0, 0(a1))
  FAULT_STORE(122, VA_PAGE(2))
  /* The trap set MPP = M and left MPRV alone (the handler then clears MPRV itself). */
  li TESTNUM, 123
  TRAP_FIELD(a0, TC_LAST_STATUS)
  li a1, MSTATUS_MPP|MSTATUS_MPRV
  and a0, a0, a1
  CHECK_EQ(a0, MSTATUS_MPP|MSTATUS_MPRV)
  MPRV_AS(MSTATUS_MPP_S)
  FAULT_LOAD(124, VA_PAGE(8))                      /* U page, SUM = 0 */
  li a1, MSTATUS_SUM
  csrs mstatus, a1
  MPRV_AS(MSTATUS_MPP_S)
  TEST_CASE(125, a0, 0x99, li a1, VA_PAGE(8); ld a0, 8(a1))
  MPRV_OFF
  li a1, MSTATUS_SUM
  csrc mstatus, a1
  /* MPP = U: only U pages.  trap_ctl is on a non-U page, so arm before switching. */
  li TESTNUM, 126
  li a1, VA_PAGE(12)
  expect_trap_tval CAUSE_LOAD_PAGE, VA_PAGE(12)
  MPRV_AS(0)
  ld a0, 0(a1)
  MPRV_OFF
  CHECK_TRAPPED
  MPRV_AS(0)
  li a1, VA_PAGE(8)
  ld a0, 8(a1)
  MPRV_OFF
  li TESTNUM, 127
  CHECK_EQ(a0, 0x99)
  /* With MPRV = 0 the same M-mode load is physical: VA_PAGE(12) is not RAM. */
  TEST_TRAP(128, CAUSE_LOAD_ACCESS, li a1, VA_PAGE(12); ld a0, 0(a1))
  /* MPRV with MPP = M is no translation at all. */
  TEST_CASE(129, a0, PATTERN(3), MPRV_AS(MSTATUS_MPP_M); la a1, tpages+0x3000; ld a0, 0(a1); MPRV_OFF)

  /* ------------------------------------------------------------ satp */
  /* Writing an unsupported MODE leaves satp entirely unchanged. */
  li TESTNUM, 140
  csrr s0, satp
  li a1, 0xf000000000012345
  csrw satp, a1
  csrr a0, satp
  CHECK_EQ_REG(a0, s0)
  li TESTNUM, 141
  li a1, 0x1000000000012345            /* MODE 1: reserved */
  csrw satp, a1
  csrr a0, satp
  CHECK_EQ_REG(a0, s0)
  li TESTNUM, 142
  li a1, 0x7000000000012345            /* MODE 7: reserved */
  csrw satp, a1
  csrr a0, satp
  CHECK_EQ_REG(a0, s0)
  /* ...also when S-mode writes it. */
  GOTO_S
  li TESTNUM, 143
  li a1, 0xf000000000012345
  csrw satp, a1
  csrr a0, satp
  CHECK_EQ_REG(a0, s0)
  /* Still translating with the old tables. */
  TEST_CASE(144, a0, PATTERN(2), li a1, VA_PAGE(2); ld a0, 0(a1))

  /* ------------------------------------------------------------ sfence.vma */
  /* After changing a PTE and executing sfence.vma, the new mapping is used. */
  TEST_CASE(150, a0, 0x1234, li a1, VA_PAGE(12); ld a0, 0(a1))
  li TESTNUM, 151
  PTE_OF(a2, root39, VA_PAGE(12), 3, 0)      /* a0 = PTE address */
  la a3, tpages+0x4000
  srli a3, a3, 12
  slli a3, a3, 10
  ori a3, a3, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D
  sd a3, 0(a0)
  li a1, VA_PAGE(12)
  sfence.vma a1, zero
  ld a0, 0(a1)
  CHECK_EQ(a0, PATTERN(4))
  /* Invalidate it: the access now faults. */
  li TESTNUM, 152
  PTE_OF(a2, root39, VA_PAGE(12), 3, 0)
  sd zero, 0(a0)
  sfence.vma
  FAULT_LOAD(153, VA_PAGE(12))
  /* Map it again (to tpages+0x5000) and flush by address space only. */
  li TESTNUM, 154
  PTE_OF(a2, root39, VA_PAGE(12), 3, 0)
  la a3, tpages+0x5000
  srli a3, a3, 12
  slli a3, a3, 10
  ori a3, a3, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D
  sd a3, 0(a0)
  sfence.vma zero, zero
  TEST_CASE(155, a0, 0x1234, li a1, VA_PAGE(12); ld a0, 0(a1))

  /* ------------------------------------------------------------ delegated page faults */
  /* With medeleg set, page faults from S go to the S handler with scause/stval/sepc. */
  GOTO_M
  li a1, (1<<CAUSE_FETCH_PAGE)|(1<<CAUSE_LOAD_PAGE)|(1<<CAUSE_STORE_PAGE)
  csrw medeleg, a1
  GOTO_S
  li TESTNUM, 160
  li a1, VA_PAGE(7)
  expect_trap_tval CAUSE_LOAD_PAGE, VA_PAGE(7), 0, TF_IN_S
1:
  ld a0, 0(a1)
  CHECK_TRAPPED
  TRAP_FIELD(t5, TC_LAST_EPC)
  la a2, 1b
  CHECK_EQ_REG(t5, a2)
  li TESTNUM, 161
  expect_trap_tval CAUSE_STORE_PAGE, VA_PAGE(2)+8, 0, TF_IN_S
  li a1, VA_PAGE(2)
  sw a0, 8(a1)
  CHECK_TRAPPED
  li TESTNUM, 162
  li a1, VA_PAGE(12)
  expect_trap_tval CAUSE_FETCH_PAGE, VA_PAGE(12), 1f, TF_IN_S
  jalr ra, 0(a1)
  FAIL_TEST
1:
  GOTO_M
  csrw medeleg, zero

  /* ------------------------------------------------------------ Sv48 */
  /* Identity gigapage through a level-2 table, a 512 GiB superpage at VA 2^39 (PPN 0, so
   * VA 2^39 + PA), a misaligned 512 GiB superpage, a 4 KiB page, and the upper half. */
  MAP_PA(root48, 0x80000000, 4, 2, 0x80000000, PTE_V|PTE_R|PTE_W|PTE_X|PTE_A|PTE_D)
  MAP_PA(root48, 0x8000000000, 4, 3, 0, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D)
  MAP_PA(root48, 0x10000000000, 4, 3, 0x80000000, PTE_V|PTE_R|PTE_A)
  MAP_PA(root48, 0xffff800000000000, 4, 3, 0, PTE_V|PTE_R|PTE_A)
  MAP_SYM(root48, VA_PAGE(0), 4, 0, tpages+0x2000, PTE_V|PTE_R)            /* A clear */
  MAP_PA(root48, 0xc0000000, 4, 2, 0x80000000, PTE_V|PTE_R|PTE_A)          /* second gigapage */
  MAP_PA(root48, 0x4000000000, 4, 2, 0x80000000, PTE_V|PTE_R|PTE_A)
  SET_SATP(SATP_SV48, root48)
  TEST_CASE(170, a0, 0x9, csrr a0, satp; srli a0, a0, 60)
  GOTO_S
  TEST_CASE(171, a0, PATTERN(2), li a1, VA_PAGE(0); ld a0, 0(a1))
  TEST_CASE(172, a0, PTE_A, PTE_OF(a0, root48, VA_PAGE(0), 4, 0); andi a0, a0, PTE_A|PTE_D)
  TEST_CASE(173, a0, 0x0123456789abcdef, VA_OF(a1, 0x8000000000+0x80000000, tdata); ld a0, 0(a1))
  TEST_CASE(174, a0, 0x0123456789abcdef, VA_OF(a1, 0xc0000000, tdata); ld a0, 0(a1))
  TEST_CASE(175, a0, 0x0123456789abcdef, VA_OF(a1, 0xffff800000000000+0x80000000, tdata); ld a0, 0(a1))
  FAULT_LOAD(176, 0x10000000000+0x80000000)                   /* misaligned 512 GiB page */
  FAULT_LOAD(177, 0x0000800000000000)                         /* bit 47 set, 63:48 clear */
  FAULT_LOAD(178, 0x7fff800080000000)
  FAULT_FETCH(179, 0x0000800080000000)
  /* 0x4000000000 is not canonical for Sv39 (test 61) but is for Sv48. */
  TEST_CASE(180, a0, 0x0123456789abcdef, VA_OF(a1, 0x4000000000, tdata); ld a0, 0(a1))
  GOTO_M

  /* ------------------------------------------------------------ Sv57 */
  /* Identity gigapage three tables down, a 256 TiB superpage at VA 2^48 (PPN 0), a
   * 512 GiB superpage at VA 2^39, a misaligned 256 TiB page, a 4 KiB page. */
  MAP_PA(root57, 0x80000000, 5, 2, 0x80000000, PTE_V|PTE_R|PTE_W|PTE_X|PTE_A|PTE_D)
  MAP_PA(root57, 0x1000000000000, 5, 4, 0, PTE_V|PTE_R|PTE_W|PTE_A|PTE_D)
  MAP_PA(root57, 0x8000000000, 5, 3, 0, PTE_V|PTE_R|PTE_A|PTE_D)
  MAP_PA(root57, 0x2000000000000, 5, 4, 0x8000000000, PTE_V|PTE_R|PTE_A)
  MAP_PA(root57, 0xff00000000000000, 5, 4, 0, PTE_V|PTE_R|PTE_A)
  MAP_SYM(root57, VA_PAGE(0), 5, 0, tpages+0x4000, PTE_V|PTE_R|PTE_W)      /* A, D clear */
  SET_SATP(SATP_SV57, root57)
  TEST_CASE(190, a0, 0xa, csrr a0, satp; srli a0, a0, 60)
  GOTO_S
  TEST_CASE(191, a0, PATTERN(4), li a1, VA_PAGE(0); ld a0, 0(a1))
  TEST_CASE(192, a0, PTE_A|PTE_D, li a1, VA_PAGE(0); sd a0, 0(a1); PTE_OF(a0, root57, VA_PAGE(0), 5, 0); andi a0, a0, PTE_A|PTE_D)
  TEST_CASE(193, a0, 0x0123456789abcdef, VA_OF(a1, 0x1000000000000+0x80000000, tdata); ld a0, 0(a1))
  TEST_CASE(194, a0, 0x0123456789abcdef, VA_OF(a1, 0x8000000000+0x80000000, tdata); ld a0, 0(a1))
  TEST_CASE(195, a0, 0x0123456789abcdef, VA_OF(a1, 0xff00000000000000+0x80000000, tdata); ld a0, 0(a1))
  FAULT_LOAD(196, 0x2000000000000+0x80000000)                 /* misaligned 256 TiB page */
  FAULT_LOAD(197, 0x0100000000000000)                         /* bit 56 set, 63:57 clear */
  FAULT_STORE(198, 0xfe00000080000000)
  FAULT_FETCH(199, 0x0100000080000000)

  /* ------------------------------------------------------------ S switches satp */
  /* S-mode (TVM = 0) moves between the Sv57 and Sv39 tables; both map the code. */
  li TESTNUM, 210
  SET_SATP(SATP_SV39, root39)
  csrr a0, satp
  srli a0, a0, 60
  CHECK_EQ(a0, 8)
  TEST_CASE(211, a0, PATTERN(2), li a1, VA_PAGE(2); ld a0, 0(a1))
  /* Back to Bare: VA = PA. */
  TEST_CASE(212, a0, PATTERN(3), csrw satp, zero; sfence.vma; la a1, tpages+0x3000; ld a0, 0(a1))
  GOTO_M

TEST_END

/* ---------------------------------------------------------------- page-table builder */
  .text
/* pt_pte_addr: a0 = root table, a1 = VA, a2 = levels (3/4/5), a3 = leaf level.
 * Returns in a0 the address of the PTE that maps VA at the leaf level, allocating
 * missing intermediate tables from pt_pool.  Clobbers t0-t4. */
pt_pte_addr:
  addi t0, a2, -1
1:
  li t1, 9
  mul t1, t1, t0
  addi t1, t1, 12
  srl t2, a1, t1
  andi t2, t2, 511
  slli t2, t2, 3
  add t2, a0, t2
  beq t0, a3, 3f
  ld t3, 0(t2)
  andi t4, t3, PTE_V
  bnez t4, 2f
  la t4, pt_next
  ld t3, 0(t4)
  li t1, 4096
  add t1, t3, t1
  sd t1, 0(t4)
  srli t3, t3, 12
  slli t3, t3, 10
  ori t3, t3, PTE_V
  sd t3, 0(t2)
2:
  srli t3, t3, 10
  slli a0, t3, 12
  addi t0, t0, -1
  j 1b
3:
  mv a0, t2
  ret

/* pt_map: a0 = root, a1 = VA, a2 = levels, a3 = leaf level, a4 = PA, a5 = flags.
 * Writes the leaf PTE ((PA >> 12) << 10 | flags).  Clobbers a0, a6, a7, t0-t4. */
pt_map:
  mv a6, ra
  srli a7, a4, 12
  slli a7, a7, 10
  or a7, a7, a5
  call pt_pte_addr
  sd a7, 0(a0)
  mv ra, a6
  ret

/* A page of code reachable through several mappings: returns 0x77 in a0.  Its last
 * four bytes are c.nop and the lower half of addi a0, a0, 1 (the upper half is placed
 * in tpage 6 at run time). */
  .section .text.xpage, "ax", @progbits
  .option push
  .option norelax
  .balign 4096
xpage:
  li a0, 0x77
  ret
  .org 0xffc
  c.nop
  .half 0x0513
  .option pop

  .data
  .align 3
tdata:
  .dword 0x0123456789abcdef, 0xf0e1d2c3b4a59687

  .bss
  .align 12
root39: .skip 4096
root48: .skip 4096
root57: .skip 4096
tpages: .skip 7*4096
pt_pool: .skip 32*4096
pt_next: .dword 0
