// ipiping: the inter-processor hand-off latency of `npm run bench -- smp` (bench/smp.ts). A static
// riscv64 Linux program that the benchmark adds to the initramfs as /usr/bin/ipiping.
//
//   ipiping [ROUND_TRIPS [WARMUP [MAX_SECONDS]]]     (defaults 2000, 200, 60)
//
// Two threads, one pinned to CPU 0 and one to CPU 1 (sched_setaffinity), pass a token back and
// forth through a futex: each side sleeps in FUTEX_WAIT (never spins) until the other hands the
// token over with FUTEX_WAKE. With nothing else to run, the waiting CPU is idle (wfi), so every
// hand-off makes the kernel wake a remote hart by IPI. The main thread (CPU 0) times each round
// trip (hand the token to CPU 1, wait for it to come back) with clock_gettime(CLOCK_MONOTONIC),
// served from the vDSO, and prints one line of key=value pairs:
//
//   ipiping n=2000 warmup=200 cpu_a=0 cpu_b=1 min_us=.. avg_us=.. p50_us=.. p99_us=.. max_us=..
//
// MAX_SECONDS caps the measured round trips on a very slow machine (n is then smaller).
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/** The token: odd while CPU 1 holds it, even while CPU 0 does; it counts hand-offs. */
static _Atomic uint32_t token;
static int total;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int err) {
  fprintf(stderr, "ipiping: %s: %s\n", what, strerror(err));
  exit(1);
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/** Sleeps until the token leaves the value `held_by_other` (spurious wake-ups just wait again). */
static uint32_t wait_while(uint32_t held_by_other) {
  uint32_t v;
  while ((v = token) == held_by_other) futex_wait(&token, held_by_other);
  return v;
}

static void pass(uint32_t next) {
  token = next;
  futex_wake(&token);
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity", errno);
  // The affinity takes effect at once for the calling thread; check where it runs now.
  if (sched_getcpu() != cpu) {
    fprintf(stderr, "ipiping: pinned to CPU %d but running on %d\n", cpu, sched_getcpu());
    exit(1);
  }
}

static void *responder(void *arg) {
  (void)arg;
  pin(1);
  for (uint32_t expect = 1;; expect += 2) {
    wait_while(expect - 1);
    if ((int)expect > 2 * total) break; // the final odd value: stop
    pass(expect + 1);
  }
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 2000;
  int warmup = argc > 2 ? atoi(argv[2]) : 200;
  double max_seconds = argc > 3 ? atof(argv[3]) : 60;
  if (count <= 0 || warmup < 0 || max_seconds <= 0) {
    fprintf(stderr, "usage: ipiping [ROUND_TRIPS [WARMUP [MAX_SECONDS]]]\n");
    return 2;
  }
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    fprintf(stderr, "ipiping: needs two online CPUs, found %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
    return 1;
  }
  total = warmup + count;
  int64_t *rtt = calloc(count, sizeof *rtt);
  if (!rtt) die("calloc", errno);
  pin(0);
  pthread_t thread;
  int err = pthread_create(&thread, NULL, responder, NULL);
  if (err) die("pthread_create", err);

  int64_t deadline = now_ns() + (int64_t)(max_seconds * 1e9);
  int measured = 0;
  uint32_t t = 0;
  for (int i = 0; i < total; i++) {
    int64_t t0 = now_ns();
    pass(t + 1);          // to CPU 1
    t = wait_while(t + 1); // back from CPU 1 (t + 2)
    int64_t t1 = now_ns();
    if (i >= warmup) {
      rtt[measured++] = t1 - t0;
      if (t1 > deadline) break;
    }
  }
  // Release the responder: an odd value beyond every round trip it would answer.
  total = 0;
  pass(t + 1);
  pthread_join(thread, NULL);

  int64_t sum = 0;
  for (int i = 0; i < measured; i++) sum += rtt[i];
  qsort(rtt, measured, sizeof *rtt, cmp_i64);
  int p99 = (int)((measured - 1) * 0.99 + 0.5);
  printf("ipiping n=%d warmup=%d cpu_a=0 cpu_b=1 min_us=%.1f avg_us=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f\n", measured, warmup,
         rtt[0] / 1e3, (double)sum / measured / 1e3, rtt[measured / 2] / 1e3, rtt[p99] / 1e3, rtt[measured - 1] / 1e3);
  return 0;
}
