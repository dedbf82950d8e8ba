/* Context switch between the oracle harness (C) and a generated instruction sequence.
 *
 * oracle_enter() saves the harness's callee-saved state in HCTX, loads every x/f register and
 * fcsr from IN_STATE and jumps to CODE_BASE - 4. Jumping needs a register, so t0 carries the
 * target and the one-instruction prologue copied there (oracle_prologue) reloads t0's initial
 * value before falling into the code.
 *
 * The generated code never writes x31 (the scratch base, SCRATCH_BASE_REG_VALUE), so the epilogue
 * appended after it (oracle_epilogue, position independent) derives HCTX from x31, stores every
 * register into OUT_STATE and jumps to the resume address that oracle_enter left in HCTX.
 * oracle_enter therefore "returns" through oracle_resume (0) or, after a signal whose handler
 * redirected the pc, through oracle_trap_resume (1).
 */
#include "oracle-layout.h"

#define H_RESUME 0
#define H_SP 8
#define H_GP 16
#define H_TP 24
#define H_RA 32
#define H_S(n) (40 + 8 * (n))
#define H_FS(n) (136 + 8 * (n))

    .text
    .option norvc

/* Callee-saved integer and FP registers (psABI) plus gp/tp, which the code may clobber. */
.macro save_or_load_hctx op, fop
    \op sp, H_SP(t0)
    \op gp, H_GP(t0)
    \op tp, H_TP(t0)
    \op ra, H_RA(t0)
    \op s0, H_S(0)(t0)
    \op s1, H_S(1)(t0)
    \op s2, H_S(2)(t0)
    \op s3, H_S(3)(t0)
    \op s4, H_S(4)(t0)
    \op s5, H_S(5)(t0)
    \op s6, H_S(6)(t0)
    \op s7, H_S(7)(t0)
    \op s8, H_S(8)(t0)
    \op s9, H_S(9)(t0)
    \op s10, H_S(10)(t0)
    \op s11, H_S(11)(t0)
    \fop fs0, H_FS(0)(t0)
    \fop fs1, H_FS(1)(t0)
    \fop fs2, H_FS(2)(t0)
    \fop fs3, H_FS(3)(t0)
    \fop fs4, H_FS(4)(t0)
    \fop fs5, H_FS(5)(t0)
    \fop fs6, H_FS(6)(t0)
    \fop fs7, H_FS(7)(t0)
    \fop fs8, H_FS(8)(t0)
    \fop fs9, H_FS(9)(t0)
    \fop fs10, H_FS(10)(t0)
    \fop fs11, H_FS(11)(t0)
.endm

    .globl oracle_enter
    .type oracle_enter, @function
oracle_enter:
    li t0, HCTX
    la t1, oracle_resume
    sd t1, H_RESUME(t0)
    save_or_load_hctx sd, fsd

    li t0, IN_STATE
    /* Drop any reservation left by the harness or an earlier case: an SC always clears it.
       It targets the x0 slot, which nothing reads, in case it were to succeed. */
    sc.d zero, zero, (t0)
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fld f\n, ST_F + 8 * \n(t0)
    .endr
    ld t1, ST_FCSR(t0)
    fscsr t1
    /* Every x register but t0 (x5), which the prologue loads after the jump. */
    .irp n, 1,2,3,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld x\n, ST_X + 8 * \n(t0)
    .endr
    li t0, CODE_BASE - 4
    jr t0
    .size oracle_enter, . - oracle_enter

/* Restores the harness state saved by oracle_enter; a0 becomes the return value. */
.macro restore_harness status
    li t0, HCTX
    save_or_load_hctx ld, fld
    csrw fcsr, zero
    li a0, \status
    ret
.endm

    .globl oracle_resume
oracle_resume:
    restore_harness 0

    .globl oracle_trap_resume
oracle_trap_resume:
    restore_harness 1

/* ---- Blobs copied into the RWX region by oracle.c ------------------------------------------ */
    .section .rodata
    .balign 4

/* At CODE_BASE - 4, entered with t0 = CODE_BASE - 4: loads t0's initial value from IN_STATE. */
    .globl oracle_prologue, oracle_prologue_end
oracle_prologue:
    ld t0, (IN_STATE + ST_X + 8 * 5) - (CODE_BASE - 4)(t0)
oracle_prologue_end:

/* Appended after the code (position independent): x31 + 2 * -2048 == HCTX, OUT_STATE = HCTX - 2048. */
    .globl oracle_epilogue, oracle_epilogue_end
oracle_epilogue:
    addi x31, x31, -2048
    addi x31, x31, -2048
    .irp n, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    sd x\n, -2048 + ST_X + 8 * \n(x31)
    .endr
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fsd f\n, -2048 + ST_F + 8 * \n(x31)
    .endr
    csrr x1, fcsr
    sd x1, -2048 + ST_FCSR(x31)
    ld x1, H_RESUME(x31)
    jr x1
oracle_epilogue_end:

    .section .note.GNU-stack, "", @progbits
