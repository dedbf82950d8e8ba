/*
 * A bare-metal program whose ledger is known exactly: it disables the 16550's interrupts
 * (one IER store), then for each of UART_BYTES bytes polls LSR once (THRE is always set on
 * Parley's infinitely fast wire) and writes the byte to THR, then exits through HTIF.
 *
 * Every instruction below is one the test counts (uart-exits.test.ts): no C runtime, no
 * compressed-vs-not ambiguity matters (instret counts instructions, not bytes), and linker
 * relaxation is off so `la` stays two instructions.
 */
#ifndef UART_BYTES
#error "UART_BYTES must be defined"
#endif

        .option norelax
        .section .text.init, "ax", @progbits
        .globl  _start
_start:
        li      t0, 0x10000000          /* 1: lui */
        li      t1, UART_BYTES          /* 1: addi (UART_BYTES < 2048) */
        li      t2, 'a'                 /* 1 */
        sb      zero, 1(t0)             /* 1: IER = 0 (one exit) */
1:      lbu     t3, 5(t0)               /* per byte, 6 instructions: LSR load (one exit) */
        andi    t3, t3, 0x20
        beqz    t3, 1b                  /*   never taken: THRE is always set */
        sb      t2, 0(t0)               /*   THR store (one exit) */
        addi    t1, t1, -1
        bnez    t1, 1b
        la      t0, tohost              /* 2: auipc + addi */
        li      t1, 1                   /* 1: exit code 0 is (0 << 1) | 1 */
        sd      t1, 0(t0)               /* 1: the HTIF exit (one exit); the machine stops after it */
2:      j       2b

        .section .tohost, "aw", @progbits
        .align  6
        .globl  tohost
tohost: .dword  0
        .align  6
        .globl  fromhost
fromhost:
        .dword  0
