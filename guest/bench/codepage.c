// codepage: a hot loop whose code shares one 4 KiB page with the data it keeps writing, as in
// firmware, bare-metal programs and older binaries linked without page-aligned segments. Parley
// tracks written code per 64-byte chunk of a page (src/cpu/wasm/mmu.ts, "Code chunks"): the stores
// to the data part of the page must not drop the decoded or translated code of the loop.
//
// The loop function goes into the writable .data section (attribute below) so that the linker
// puts it right before .sbss/.bss, where the counters are: test/cpu/code-page.test.ts checks from
// the ELF's symbols that codepage_loop and codepage_state/codepage_histogram share a page.
// In machine mode nothing forbids executing from the data segment.
//
// It prints "codepage <iterations> <checksum>"; the checksum is recomputed by the test.
#include <stdint.h>
#include <stdio.h>

#ifndef CODEPAGE_ITERATIONS
#define CODEPAGE_ITERATIONS 2000000
#endif

// Written on every iteration (volatile: kept in memory, not in registers): an LCG state, a running
// sum and an event count per bucket. The histogram goes into .sbss with the other two, so that no
// bigger .bss of the C library comes between the loop and it.
volatile uint64_t codepage_state;
volatile uint64_t codepage_sum;
__attribute__((section(".sbss.codepage"))) uint32_t codepage_histogram[64];

__attribute__((section(".data.codepage"), noinline)) void codepage_loop(uint64_t iterations) {
  for (uint64_t i = 0; i < iterations; i++) {
    // Knuth's MMIX LCG; the top 6 bits pick the bucket.
    codepage_state = codepage_state * 6364136223846793005ull + 1442695040888963407ull;
    codepage_histogram[codepage_state >> 58]++;
    codepage_sum += codepage_state >> 32;
  }
}

int main(void) {
  codepage_state = 1;
  codepage_loop(CODEPAGE_ITERATIONS);
  uint64_t checksum = codepage_sum;
  for (unsigned b = 0; b < 64; b++) checksum = checksum * 31 + codepage_histogram[b];
  printf("codepage %llu %016llx\n", (unsigned long long)CODEPAGE_ITERATIONS, (unsigned long long)checksum);
  return 0;
}
