// smp-counters N ITER: N threads each add 1 to three shared counters ITER times, each counter in
// its own way: an AMO (amoadd.d), an explicit lr.d/sc.d retry loop, and a plain increment under a
// pthread mutex. Prints the three totals and exits 0 only if each is exactly N*ITER (1 if any is
// not, 2 on a usage or system error). Threads are spread over the CPUs round robin, and all start
// together behind a barrier so that they contend.
#include "smp.h"

static const char *const PROG = "smp-counters";

// Each counter on its own 64-byte line, so that contention is on the counter and not on a
// neighbour sharing its line.
static struct {
  _Alignas(64) int64_t amo;
  _Alignas(64) int64_t lrsc;
  _Alignas(64) int64_t locked;
  _Alignas(64) pthread_mutex_t lock;
} shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct smp_barrier start;
static long iterations;
static int64_t lrsc_retries;

static inline void amo_add(int64_t *p, int64_t v) {
  __asm__ volatile("amoadd.d zero, %1, (%0)" : : "r"(p), "r"(v) : "memory");
}

/** lr.d/sc.d loop adding v to *p; returns how many times the sc.d failed and the loop retried. */
static inline int64_t lrsc_add(int64_t *p, int64_t v) {
  int64_t old, failed, retries = -1;
  __asm__ volatile(
      "1:\n\t"
      "addi %[retries], %[retries], 1\n\t"
      "lr.d %[old], (%[p])\n\t"
      "add %[old], %[old], %[v]\n\t"
      "sc.d %[failed], %[old], (%[p])\n\t"
      "bnez %[failed], 1b"
      : [old] "=&r"(old), [failed] "=&r"(failed), [retries] "+&r"(retries)
      : [p] "r"(p), [v] "r"(v)
      : "memory");
  return retries;
}

struct worker {
  pthread_t thread;
  int index;
  int cpu;
  int64_t retries;
};

static void *work(void *arg) {
  struct worker *w = arg;
  smp_pin(PROG, w->index);
  w->cpu = smp_cpu();
  unsigned sense = 0;
  smp_barrier_wait(&start, &sense);
  int64_t retries = 0;
  for (long i = 0; i < iterations; i++) {
    amo_add(&shared.amo, 1);
    retries += lrsc_add(&shared.lrsc, 1);
    pthread_mutex_lock(&shared.lock);
    shared.locked++;
    pthread_mutex_unlock(&shared.lock);
  }
  w->retries = retries;
  return NULL;
}

int main(int argc, char **argv) {
  const char *usage = "THREADS ITERATIONS";
  if (argc != 3) {
    fprintf(stderr, "usage: %s %s\n", PROG, usage);
    return 2;
  }
  long threads = smp_count(PROG, usage, argv[1]);
  iterations = smp_count(PROG, usage, argv[2]);
  if (threads > 1024) {
    fprintf(stderr, "%s: at most 1024 threads\n", PROG);
    return 2;
  }
  struct worker *workers = calloc((size_t)threads, sizeof *workers);
  if (!workers) smp_die(PROG, "calloc", errno);
  smp_barrier_init(&start, (unsigned)threads);
  for (long t = 0; t < threads; t++) {
    workers[t].index = (int)t;
    workers[t].thread = smp_spawn(PROG, work, &workers[t]);
  }
  // CPUs the threads were running on once pinned (a set of up to 1024 CPUs).
  static unsigned char used[1024];
  int cpus_used = 0;
  for (long t = 0; t < threads; t++) {
    int err = pthread_join(workers[t].thread, NULL);
    if (err) smp_die(PROG, "pthread_join", err);
    lrsc_retries += workers[t].retries;
    int cpu = workers[t].cpu;
    if (cpu >= 0 && cpu < 1024 && !used[cpu]++) cpus_used++;
  }
  const int64_t expected = (int64_t)threads * iterations;
  printf("threads=%ld iterations=%ld cpus=%d cpus_used=%d expected=%lld\n", threads, iterations, smp_online_cpus(), cpus_used,
         (long long)expected);
  printf("amoadd=%lld lrsc=%lld mutex=%lld lrsc_retries=%lld\n", (long long)shared.amo, (long long)shared.lrsc,
         (long long)shared.locked, (long long)lrsc_retries);
  int ok = shared.amo == expected && shared.lrsc == expected && shared.locked == expected;
  printf("%s\n", ok ? "smp-counters: PASS" : "smp-counters: FAIL");
  free(workers);
  return ok ? 0 : 1;
}
