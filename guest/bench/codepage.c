// codepage: a hot loop whose code shares one 4 KiB page with the data it keeps writing, as in
// firmware, bare-metal programs and older binaries linked without page-aligned segments. Parley
// tracks written code per 64-byte chunk of a page (src/cpu/wasm/mmu.ts, "Code chunks"): the stores
// to the data part of the page must not drop the decoded or translated code of the loop.
//
// The loop function goes into the writable .data section (attribute below) so that the linker
// puts it right before .sbss/.bss, where the counters are: test/cpu/code-page.test.ts checks from
// the ELF's symbols that codepage_loop and codepage_state/codepage_histogram share a page.
// In machine mode nothing forbids executing from the data segment; the Linux build (run by
// qemu-riscv64 in bench/cpu.ts) makes the page executable first.
//
// It prints "codepage <iterations> <checksum>"; the checksum is recomputed by the test.
#include <stdint.h>
#include <stdio.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#ifndef CODEPAGE_ITERATIONS
#define CODEPAGE_ITERATIONS 2000000
#endif

// Written on every iteration (volatile: kept in memory, not in registers): an LCG state, a running
// sum and an event count per bucket. Zero-initialised, so .bss; on bare metal in .sbss with the
// other small variables, so that no bigger .bss of the C library comes between the loop and them.
// The Linux build's C library has kilobytes of .data between the loop and any .bss: there they go
// into .data right after the loop (CODEPAGE_DATA).
// Each starts a 64-byte chunk of its own, so that no code shares a chunk with them (Parley tracks
// code per 64-byte chunk; data within a chunk of code still drops the code when written).
#ifdef __linux__
#define CODEPAGE_DATA __attribute__((section(".data.codepage.vars"), aligned(64)))
#else
#define CODEPAGE_DATA __attribute__((section(".sbss.codepage"), aligned(64)))
#endif
CODEPAGE_DATA volatile uint64_t codepage_state;
CODEPAGE_DATA volatile uint64_t codepage_sum;
CODEPAGE_DATA uint32_t codepage_histogram[64];

__attribute__((section(".data.codepage"), noinline)) void codepage_loop(uint64_t iterations) {
  for (uint64_t i = 0; i < iterations; i++) {
    // Knuth's MMIX LCG; the top 6 bits pick the bucket.
    codepage_state = codepage_state * 6364136223846793005ull + 1442695040888963407ull;
    codepage_histogram[codepage_state >> 58]++;
    codepage_sum += codepage_state >> 32;
  }
}

int main(void) {
#ifdef __linux__
  uintptr_t page = (uintptr_t)codepage_loop & ~(uintptr_t)4095;
  if (mprotect((void *)page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
    perror("codepage: mprotect");
    return 1;
  }
#endif
  codepage_state = 1;
  codepage_loop(CODEPAGE_ITERATIONS);
  uint64_t checksum = codepage_sum;
  for (unsigned b = 0; b < 64; b++) checksum = checksum * 31 + codepage_histogram[b];
  printf("codepage %llu %016llx\n", (unsigned long long)CODEPAGE_ITERATIONS, (unsigned long long)checksum);
  return 0;
}
