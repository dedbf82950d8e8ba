/* Fixed guest addresses shared by oracle.c and oracle-entry.S (and mirrored in layout.ts).
 * Code and scratch sit at the same addresses as in Parley's RAM, so that anything derived from
 * the pc (auipc, jal/jalr link values) or from the buffer base register compares equal. */
#ifndef ORACLE_LAYOUT_H
#define ORACLE_LAYOUT_H

/* One RWX mapping covers everything below. */
#define REGION_BASE 0x80000000
#define REGION_SIZE 0x21000

/* Initial state the entry code loads: x[32], f[32], fcsr (within reach of the prologue). */
#define IN_STATE 0x80000800
#define ST_X 0
#define ST_F 256
#define ST_FCSR 512

/* The generated code, 64 bytes before a page boundary so that sequences cross it (and 32-bit
 * instructions sometimes straddle it); CODE_BASE - 4 holds the prologue that loads t0. */
#define CODE_BASE 0x80000FC0
#define CODE_MAX 0x7000

/* Final state the epilogue stores (same layout as IN_STATE). */
#define OUT_STATE 0x8001E800
/* Harness context (resume address, callee-saved registers): x31 - 4096. */
#define HCTX 0x8001F000

/* Scratch buffer around a page boundary; x31 points at its middle (the boundary), so 12-bit
 * offsets reach all of it and misaligned accesses near x31 cross pages. */
#define SCRATCH 0x8001F800
#define SCRATCH_SIZE 0x1000
#define SCRATCH_BASE_REG_VALUE 0x80020000

#endif
