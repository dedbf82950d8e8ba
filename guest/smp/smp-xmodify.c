// smp-xmodify ROUNDS: cross-modifying code between two harts.
//
// A page mapped read-write-execute holds a two-instruction function, `addi a0, zero, K` then
// `ret`, that returns the constant K. Each round, thread A (pinned to cpu 0) waits until B has
// finished the previous round, rewrites the addi's 12-bit immediate to a new value k, calls
// __riscv_flush_icache(start, end, 0) (Linux's riscv_flush_icache system call: a FENCE.I here and
// a remote FENCE.I on every other hart running this process) and then publishes the round with a
// release store. Thread B (pinned to cpu 1) keeps calling the function while it waits, so the old
// code stays hot in whatever caches or translations the hart keeps, and must see either the old
// or the new constant then; once it has seen the round published (acquire) the call must return
// exactly k. Exits 0 iff every call returned what it must (1 otherwise, 2 on a usage or system
// error).
#include "smp.h"
#include <sys/cachectl.h>
#include <sys/mman.h>

static const char *const PROG = "smp-xmodify";

typedef long (*constant_fn)(void);

#define RET 0x00008067u /* jalr zero, 0(ra) */

/** `addi a0, zero, imm` (I-type: imm[11:0] | rs1 = x0 | funct3 = 0 | rd = a0 (x10) | OP-IMM). */
static uint32_t li_a0(int imm) { return ((uint32_t)imm & 0xfffu) << 20 | 10u << 7 | 0x13u; }

/** Round r's constant: in the 12-bit signed range, and never the previous round's. */
static int constant(int64_t r) { return (int)((r * 1237) % 4096) - 2048; }

static volatile uint32_t *code;
static constant_fn fn;
static long rounds;
static _Alignas(64) int64_t published;
static _Alignas(64) int64_t acknowledged;
static int64_t stale_after_publish, wrong_while_waiting, calls_while_waiting;
static int64_t first_bad_round = -1;
static long first_bad_value;
static int modifier_cpu, caller_cpu;

static void *modifier(void *arg) {
  (void)arg;
  smp_pin(PROG, 0);
  modifier_cpu = smp_cpu();
  for (int64_t r = 1; r <= rounds; r++) {
    unsigned spins = 0;
    while (__atomic_load_n(&acknowledged, __ATOMIC_ACQUIRE) < r - 1) {
      smp_relax();
      if (++spins % 4096 == 0) sched_yield();
    }
    code[0] = li_a0(constant(r));
    __riscv_flush_icache((void *)code, (void *)(code + 2), 0);
    __atomic_store_n(&published, r, __ATOMIC_RELEASE);
  }
  return NULL;
}

static void *caller(void *arg) {
  (void)arg;
  smp_pin(PROG, 1);
  caller_cpu = smp_cpu();
  for (int64_t r = 1; r <= rounds; r++) {
    long before = constant(r - 1), after = constant(r);
    while (__atomic_load_n(&published, __ATOMIC_ACQUIRE) < r) {
      long v = fn();
      calls_while_waiting++;
      if (v != before && v != after) wrong_while_waiting++;
    }
    long v = fn();
    if (v != after) {
      if (first_bad_round < 0) first_bad_round = r, first_bad_value = v;
      stale_after_publish++;
    }
    __atomic_store_n(&acknowledged, r, __ATOMIC_RELEASE);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *usage = "ROUNDS";
  if (argc != 2) {
    fprintf(stderr, "usage: %s %s\n", PROG, usage);
    return 2;
  }
  rounds = smp_count(PROG, usage, argv[1]);
  long page = sysconf(_SC_PAGESIZE);
  void *mem = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) smp_die(PROG, "mmap (read-write-execute)", errno);
  code = mem;
  code[0] = li_a0(constant(0));
  code[1] = RET;
  __riscv_flush_icache(mem, (char *)mem + 8, 0);
  fn = (constant_fn)mem;
  long first = fn();
  if (first != constant(0)) {
    fprintf(stderr, "%s: the function returned %ld before any rewrite, expected %d\n", PROG, first, constant(0));
    return 1;
  }
  pthread_t a = smp_spawn(PROG, modifier, NULL);
  pthread_t b = smp_spawn(PROG, caller, NULL);
  int err = pthread_join(a, NULL);
  if (!err) err = pthread_join(b, NULL);
  if (err) smp_die(PROG, "pthread_join", err);
  printf("rounds=%ld cpus=%d modifier_cpu=%d caller_cpu=%d calls_while_waiting=%lld\n", rounds, smp_online_cpus(), modifier_cpu,
         caller_cpu, (long long)calls_while_waiting);
  printf("stale_after_publish=%lld wrong_while_waiting=%lld\n", (long long)stale_after_publish, (long long)wrong_while_waiting);
  if (first_bad_round >= 0)
    printf("first stale round %lld: returned %ld, expected %d\n", (long long)first_bad_round, first_bad_value, constant(first_bad_round));
  int ok = stale_after_publish == 0 && wrong_while_waiting == 0;
  printf("%s\n", ok ? "smp-xmodify: PASS" : "smp-xmodify: FAIL");
  return ok ? 0 : 1;
}
