// Entry points of the SBI conformance programs: a RISC-V Linux Image header (Linux
// Documentation/arch/riscv/boot-image-header.rst), so that both Parley's paravirtual boot and
// OpenSBI's fw_dynamic enter the program in S-mode with a0 = hart id and a1 = the device tree;
// the entry of harts started through SBI HSM; and the S-mode trap vector.
#include "sbi-test.h"

  .section .text.head, "ax"
  .option push
  .option norvc
  .globl _start
_start:
  j entry                       // code0: jump over the header
  .word 0                       // code1
  .dword 0x200000               // text_offset: 2 MiB into RAM
  .dword _image_size            // image_size, including .bss
  .dword 0                      // flags: little endian
  .word 2                       // version 0.2
  .word 0                       // res1
  .dword 0                      // res2
  .ascii "RISCV\0\0\0"          // magic (deprecated)
  .ascii "RSC\x05"              // magic2
  .word 0                       // res3
  .option pop

  .text
entry:
  call set_stack                // sp for this hart (a0), tp = hart id
  call boot_main                // (hartid, fdt): never returns
1:wfi
  j 1b

  .globl secondary_entry
secondary_entry:                // from sbi_hart_start: a0 = hart id, a1 = opaque
  call set_stack
  call secondary_main
1:wfi
  j 1b

// sp = top of this hart's stack; harts above MAX_HARTS spin (they have none).
set_stack:
  li t0, MAX_HARTS
  bgeu a0, t0, 2f
  mv tp, a0
  la sp, stacks
  addi t0, a0, 1
  slli t0, t0, STACK_SHIFT
  add sp, sp, t0
  ret
2:wfi
  j 2b

// Traps of S-mode: the caller-saved registers go on the interrupted stack (S-mode only, no user
// mode), then trap_handler(scause, sepc, stval) in C.
  .balign 4
  .globl trap_vector
trap_vector:
  addi sp, sp, -144
  sd ra, 0(sp)
  sd t0, 8(sp)
  sd t1, 16(sp)
  sd t2, 24(sp)
  sd a0, 32(sp)
  sd a1, 40(sp)
  sd a2, 48(sp)
  sd a3, 56(sp)
  sd a4, 64(sp)
  sd a5, 72(sp)
  sd a6, 80(sp)
  sd a7, 88(sp)
  sd t3, 96(sp)
  sd t4, 104(sp)
  sd t5, 112(sp)
  sd t6, 120(sp)
  csrr a0, scause
  csrr a1, sepc
  csrr a2, stval
  call trap_handler
  ld ra, 0(sp)
  ld t0, 8(sp)
  ld t1, 16(sp)
  ld t2, 24(sp)
  ld a0, 32(sp)
  ld a1, 40(sp)
  ld a2, 48(sp)
  ld a3, 56(sp)
  ld a4, 64(sp)
  ld a5, 72(sp)
  ld a6, 80(sp)
  ld a7, 88(sp)
  ld t3, 96(sp)
  ld t4, 104(sp)
  ld t5, 112(sp)
  ld t6, 120(sp)
  addi sp, sp, 144
  sret

  .bss
  .balign 16
  .globl stacks
stacks:
  .space MAX_HARTS << STACK_SHIFT
