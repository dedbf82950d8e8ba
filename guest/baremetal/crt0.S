/*
 * Machine-mode start-up for Parley's bare-metal guests (also runs unchanged on
 * `qemu-system-riscv64 -M spike -bios none`). Nothing below main() may depend on
 * libc: the C library is only usable once gp, tp and .bss are in place.
 */

        .section .text.init, "ax", @progbits
        .globl  _start
        .type   _start, @function
_start:
        /* gp must be loaded without relaxation, or the assembler would turn the
           load into a gp-relative one that depends on gp itself. */
        .option push
        .option norelax
        la      gp, __global_pointer$
        .option pop

        /* Only hart 0 runs the program; any other hart parks so it cannot
           scribble over the shared stack. */
        csrr    t0, mhartid
        bnez    t0, .Lpark

        la      sp, __stack_top

        /* Install the trap reporter first so that a fault anywhere in start-up
           is reported instead of looping at whatever mtvec happened to hold. */
        la      t0, __bm_trap_entry
        csrw    mtvec, t0

        /* FS=Initial: without it every FP instruction (including the ones
           GCC emits for struct copies and varargs) raises illegal-instruction. */
        li      t0, (1 << 13)
        csrs    mstatus, t0
        csrw    fcsr, zero

        /* .bss (which also covers .tbss and .sbss) is not guaranteed to be zero
           by the loader; the linker script keeps both bounds 8-byte aligned. */
        la      t0, __bss_start
        la      t1, __bss_end
        bgeu    t0, t1, 2f
1:      sd      zero, 0(t0)
        addi    t0, t0, 8
        bltu    t0, t1, 1b
2:
        /* picolibc keeps errno and friends in TLS (local-exec model), so tp
           must point at the static TLS block before any libc call. */
        la      tp, __tls_base

        call    __libc_init_array

        li      a0, 0
        li      a1, 0
        li      a2, 0
        call    main
        /* exit() runs atexit handlers and then our _exit, which reports the
           status over HTIF. */
        call    exit
.Lhang:
        j       .Lhang

.Lpark:
        wfi
        j       .Lpark
        .size   _start, . - _start

/*
 * Every trap is fatal for these programs: report it and stop with status 3.
 * A private stack and a fresh gp are used because the fault may well have been
 * caused by a corrupt sp or gp.
 */
        .section .text.init, "ax", @progbits
        .align  2
        .globl  __bm_trap_entry
        .type   __bm_trap_entry, @function
__bm_trap_entry:
        .option push
        .option norelax
        la      gp, __global_pointer$
        .option pop
        la      sp, __trap_stack_top
        csrr    a0, mcause
        csrr    a1, mepc
        csrr    a2, mtval
        call    __bm_trap_report
1:      j       1b
        .size   __bm_trap_entry, . - __bm_trap_entry

/*
 * HTIF mailboxes. Kept together in their own section because QEMU's spike
 * machine maps one MMIO window spanning tohost..fromhost+8: anything placed
 * between them would be shadowed by the device.
 */
        .section .tohost, "aw", @progbits
        .align  6
        .globl  tohost
tohost: .dword  0
        .size   tohost, 8
        .align  6
        .globl  fromhost
fromhost:
        .dword  0
        .size   fromhost, 8
        .align  6

        .section .bss.trap_stack, "aw", @nobits
        .align  4
__trap_stack:
        .skip   4096
__trap_stack_top:
