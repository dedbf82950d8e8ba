/*
 * The CPU benchmark's workload. This translation unit is compiled from the
 * same source with the same code-generation flags for every target, and calls
 * nothing outside itself, so the instruction stream it executes is identical
 * on bare metal and under Linux: instruction counts measured on one target
 * carry over to the other.
 */
#ifndef PARLEY_BENCH_KERNELS_H
#define PARLEY_BENCH_KERNELS_H

#include <stdint.h>

enum {
  BENCH_K_ALU = 1 << 0,    /* integer arithmetic: div/rem, mul-high, 32-bit ops */
  BENCH_K_MATMUL = 1 << 1, /* 64x64 integer matrix multiply */
  BENCH_K_SORT = 1 << 2,   /* quicksort of a 128 KiB array */
  BENCH_K_CHASE = 1 << 3,  /* pointer chasing: 2 MiB shuffled ring and a binary search tree */
  BENCH_K_INTERP = 1 << 4, /* bytecode interpreter (switch dispatch) */
  BENCH_K_TEXT = 1 << 5,   /* CRC32, tokenizer state machine, hash table, string search */
  BENCH_K_ALL = (1 << 6) - 1,
};

#define BENCH_KERNEL_COUNT 6

struct bench_report {
  uint64_t checksum;   /* folds every kernel result of every iteration */
  uint32_t failures;   /* kernel results that differed from the expected value */
  int first_bad_kernel;
  uint64_t first_bad_value;
};

extern const char *const bench_kernel_names[BENCH_KERNEL_COUNT];
extern const uint64_t bench_expected[BENCH_KERNEL_COUNT];

/* Builds the input data the kernels share (not part of an iteration). */
void bench_init(void);
/* Runs `iterations` rounds of the kernels selected by `kernels` (a BENCH_K_* mask). */
void bench_run(uint64_t iterations, uint32_t kernels, struct bench_report *report);

#endif
