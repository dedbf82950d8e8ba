/* The reference side of the differential tests: a static riscv64 Linux program run under
 * qemu-riscv64. It reads a batch of test cases from stdin, runs each one natively (that is, on
 * QEMU's CPU) and writes the final registers, fcsr and scratch buffer to stdout.
 *
 * Batch format (all little-endian):
 *   input:  u32 magic "PDI1", u32 count, then per case:
 *           u32 code_len, u32 reserved (0), code[code_len],
 *           u64 x[32], u64 f[32], u64 fcsr, u8 scratch[4096]
 *   output: u32 magic "PDO1", u32 count, then per case:
 *           u32 status (0 = reached the end, 1 = trapped), u32 signal, u64 trap_pc, u64 trap_addr,
 *           u64 x[32], u64 f[32], u64 fcsr, u8 scratch[4096]
 * x[0] is ignored on input and 0 on output; x[31] must be SCRATCH_BASE_REG_VALUE (the generated
 * code never writes it). After a trap the registers are those the case started with.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include "oracle-layout.h"

#define MAGIC_IN 0x31494450u  /* "PDI1" */
#define MAGIC_OUT 0x314f4450u /* "PDO1" */

struct state {
  uint64_t x[32];
  uint64_t f[32];
  uint64_t fcsr;
};

extern int oracle_enter(void);
extern void oracle_trap_resume(void);
extern const uint8_t oracle_prologue[], oracle_prologue_end[];
extern const uint8_t oracle_epilogue[], oracle_epilogue_end[];

/* Written by the signal handler, which must not rely on tp/gp/sp: the code may have clobbered
 * them. It runs on the alternate stack and only touches these globals and the ucontext. */
static volatile int trap_signal;
static volatile uint64_t trap_pc, trap_addr;

static void on_trap(int sig, siginfo_t *info, void *ctx) {
  ucontext_t *uc = ctx;
  trap_signal = sig;
  trap_pc = uc->uc_mcontext.__gregs[REG_PC];
  trap_addr = (uint64_t)(uintptr_t)info->si_addr;
  /* Leave through the harness-restoring path instead of returning into the faulting code. */
  uc->uc_mcontext.__gregs[REG_PC] = (uint64_t)(uintptr_t)oracle_trap_resume;
}

static void die(const char *msg) {
  fprintf(stderr, "oracle: %s\n", msg);
  exit(2);
}

static void read_exact(void *buf, size_t len) {
  if (len && fread(buf, 1, len, stdin) != len) die("truncated input");
}

static void write_exact(const void *buf, size_t len) {
  if (len && fwrite(buf, 1, len, stdout) != len) die("write failed");
}

static void setup_memory(void) {
  void *want = (void *)(uintptr_t)REGION_BASE;
  void *got = mmap(want, REGION_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (got != want) die("cannot map the fixed test region");
  memcpy((void *)(uintptr_t)(CODE_BASE - 4), oracle_prologue, oracle_prologue_end - oracle_prologue);
}

static void setup_signals(void) {
  static uint8_t altstack[64 * 1024];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) die("sigaltstack failed");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_trap;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  const int sigs[] = {SIGILL, SIGSEGV, SIGBUS, SIGFPE, SIGTRAP};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    if (sigaction(sigs[i], &sa, NULL) != 0) die("sigaction failed");
  }
}

/* Copies the code and the epilogue into place; fence.i makes the new code visible to fetch. */
static void install_code(const uint8_t *code, uint32_t len) {
  size_t epi = oracle_epilogue_end - oracle_epilogue;
  if (len + epi > CODE_MAX) die("code too long");
  memcpy((void *)(uintptr_t)CODE_BASE, code, len);
  memcpy((void *)(uintptr_t)(CODE_BASE + len), oracle_epilogue, epi);
  __asm__ volatile("fence.i" ::: "memory");
}

static void run_case(void) {
  static uint8_t code[CODE_MAX];
  uint32_t hdr[2];
  read_exact(hdr, sizeof hdr);
  if (hdr[0] > CODE_MAX) die("code too long");
  read_exact(code, hdr[0]);
  struct state *in = (struct state *)(uintptr_t)IN_STATE;
  struct state *out = (struct state *)(uintptr_t)OUT_STATE;
  read_exact(in, sizeof *in);
  read_exact((void *)(uintptr_t)SCRATCH, SCRATCH_SIZE);
  if (in->x[31] != SCRATCH_BASE_REG_VALUE) die("x31 must hold the scratch base");
  install_code(code, hdr[0]);

  trap_signal = 0;
  int status = oracle_enter();

  uint32_t res[2] = {(uint32_t)status, (uint32_t)trap_signal};
  uint64_t where[2] = {status ? trap_pc : 0, status ? trap_addr : 0};
  write_exact(res, sizeof res);
  write_exact(where, sizeof where);
  if (status) {
    write_exact(in, sizeof *in);
  } else {
    out->x[0] = 0;
    out->x[31] = in->x[31];
    write_exact(out, sizeof *out);
  }
  write_exact((void *)(uintptr_t)SCRATCH, SCRATCH_SIZE);
}

int main(void) {
  setup_memory();
  setup_signals();
  uint32_t hdr[2];
  read_exact(hdr, sizeof hdr);
  if (hdr[0] != MAGIC_IN) die("bad magic");
  uint32_t out_hdr[2] = {MAGIC_OUT, hdr[1]};
  write_exact(out_hdr, sizeof out_hdr);
  for (uint32_t i = 0; i < hdr[1]; i++) run_case();
  if (fflush(stdout) != 0) die("write failed");
  return 0;
}
