// smp-litmus ITER: the message-passing litmus test (MP) with fences, ITER times.
//
//   writer (cpu 0)          reader (cpu 1)
//   data = 1                r1 = flag
//   fence w,w               fence r,r
//   flag = 1                r2 = data
//
// The outcome r1 == 1 && r2 == 0 is forbidden by RVWMO: the reader saw the flag but not the data
// written before it. Each iteration uses a fresh, zeroed pair of locations (flag and data on
// lines of their own) from a ring of RING slots, and the two threads hand iterations to each other:
// the writer announces iteration i (release) just before writing it, the reader waits for that
// announcement (acquire), reads the slot once, resets it to zero and reports the iteration done
// (release); the writer reuses a slot only after the reader is done with it (acquire). So the
// reader's one look at an iteration races with the writer's two stores, and every iteration starts
// from flag == data == 0 without a full barrier per iteration. Prints the count of each outcome;
// exits 0 iff no forbidden outcome was seen (1 otherwise, 2 on a usage or system error).
#include "smp.h"

static const char *const PROG = "smp-litmus";

#define RING 64

struct slot {
  _Alignas(64) volatile int64_t flag;
  _Alignas(64) volatile int64_t data;
};

static struct slot slots[RING];
// Progress counters, each on its own line: the iteration the writer has announced, and the last
// one the reader has finished (and reset).
static _Alignas(64) int64_t announced;
static _Alignas(64) int64_t finished;

static long iterations;
/** outcomes[r1][r2]: how often the reader saw flag == r1 and data == r2. */
static int64_t outcomes[2][2];
static int64_t odd_values;
static int writer_cpu, reader_cpu;

static void *writer(void *arg) {
  (void)arg;
  smp_pin(PROG, 0);
  writer_cpu = smp_cpu();
  for (int64_t i = 1; i <= iterations; i++) {
    struct slot *s = &slots[i % RING];
    unsigned spins = 0;
    while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < i - RING) {
      smp_relax();
      if (++spins % 4096 == 0) sched_yield();
    }
    __atomic_store_n(&announced, i, __ATOMIC_RELEASE);
    s->data = 1;
    __asm__ volatile("fence w,w" ::: "memory");
    s->flag = 1;
  }
  return NULL;
}

static void *reader(void *arg) {
  (void)arg;
  smp_pin(PROG, 1);
  reader_cpu = smp_cpu();
  for (int64_t i = 1; i <= iterations; i++) {
    struct slot *s = &slots[i % RING];
    unsigned spins = 0;
    while (__atomic_load_n(&announced, __ATOMIC_ACQUIRE) < i) {
      smp_relax();
      if (++spins % 4096 == 0) sched_yield();
    }
    int64_t r1 = s->flag;
    __asm__ volatile("fence r,r" ::: "memory");
    int64_t r2 = s->data;
    if ((r1 | r2) & ~1) odd_values++;
    else outcomes[r1][r2]++;
    // Wait for the writer's last store to this slot before resetting it, so that the reset cannot
    // be overwritten by a store of this iteration that was still in flight; the fence keeps the
    // reset stores after that load (RVWMO lets a store pass an earlier load otherwise).
    spins = 0;
    while (s->flag != 1) {
      smp_relax();
      if (++spins % 4096 == 0) sched_yield();
    }
    __asm__ volatile("fence r,w" ::: "memory");
    s->data = 0;
    s->flag = 0;
    __atomic_store_n(&finished, i, __ATOMIC_RELEASE);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *usage = "ITERATIONS";
  if (argc != 2) {
    fprintf(stderr, "usage: %s %s\n", PROG, usage);
    return 2;
  }
  iterations = smp_count(PROG, usage, argv[1]);
  pthread_t w = smp_spawn(PROG, writer, NULL);
  pthread_t r = smp_spawn(PROG, reader, NULL);
  int err = pthread_join(w, NULL);
  if (!err) err = pthread_join(r, NULL);
  if (err) smp_die(PROG, "pthread_join", err);
  int64_t total = outcomes[0][0] + outcomes[0][1] + outcomes[1][0] + outcomes[1][1] + odd_values;
  printf("iterations=%ld cpus=%d writer_cpu=%d reader_cpu=%d\n", iterations, smp_online_cpus(), writer_cpu, reader_cpu);
  printf("flag=0,data=0: %lld\nflag=0,data=1: %lld\nflag=1,data=1: %lld\nflag=1,data=0: %lld (forbidden)\n",
         (long long)outcomes[0][0], (long long)outcomes[0][1], (long long)outcomes[1][1], (long long)outcomes[1][0]);
  if (odd_values) printf("values other than 0 and 1: %lld\n", (long long)odd_values);
  int ok = outcomes[1][0] == 0 && odd_values == 0 && total == iterations;
  printf("forbidden=%lld\n%s\n", (long long)(outcomes[1][0] + odd_values), ok ? "smp-litmus: PASS" : "smp-litmus: FAIL");
  return ok ? 0 : 1;
}
