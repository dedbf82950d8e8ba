/*
 * CPU benchmark driver: the same source is built for bare metal (Parley,
 * QEMU's spike machine) and as a static Linux program (qemu-riscv64). Only the
 * glue in this file differs between the two; the measured work lives in
 * kernels.c, which is target-independent.
 *
 * Build-time knobs:
 *   BENCH_ITERATIONS      rounds of the selected kernels (default below)
 *   BENCH_KERNELS         BENCH_K_* mask selecting kernels (default: all)
 *   BENCH_REPORT_INSTRET  bare metal only: also print minstret around the
 *                         kernel loop (needs a machine that implements it)
 */
#include <inttypes.h>
#include <stdio.h>

#include "kernels.h"

#ifndef BENCH_ITERATIONS
#define BENCH_ITERATIONS 35
#endif
#ifndef BENCH_KERNELS
#define BENCH_KERNELS BENCH_K_ALL
#endif

#if defined(__linux__)
#define BENCH_TARGET "linux"
#else
#define BENCH_TARGET "baremetal"
#endif

#if defined(BENCH_REPORT_INSTRET) && !defined(__linux__)
static inline uint64_t read_minstret(void) {
  uint64_t v;
  __asm__ volatile("csrr %0, minstret" : "=r"(v));
  return v;
}
#endif

int main(void) {
  struct bench_report report;
  printf("cpubench: target=%s iterations=%d kernels=0x%02x\n", BENCH_TARGET, (int)BENCH_ITERATIONS,
         (unsigned)BENCH_KERNELS);
  bench_init();
#if defined(BENCH_REPORT_INSTRET) && !defined(__linux__)
  uint64_t before = read_minstret();
#endif
  bench_run(BENCH_ITERATIONS, BENCH_KERNELS, &report);
#if defined(BENCH_REPORT_INSTRET) && !defined(__linux__)
  uint64_t after = read_minstret();
  printf("cpubench: instret=%" PRIu64 "\n", after - before);
#endif
  printf("cpubench: checksum=0x%016" PRIx64 "\n", report.checksum);
  if (report.failures != 0) {
    int k = report.first_bad_kernel;
    printf("cpubench: FAILED: %u kernel results wrong; first: %s gave 0x%016" PRIx64 ", expected 0x%016" PRIx64 "\n",
           (unsigned)report.failures, bench_kernel_names[k], report.first_bad_value, bench_expected[k]);
    return 1;
  }
  printf("cpubench: OK\n");
  return 0;
}
