// wrsping: how long a hart parked in WRS.NTO (Zawrs) takes to resume after another hart writes its
// reservation set; the wake latency of `npm run bench -- pv contention` (bench/pv/contention.ts).
// A static riscv64 Linux program the benchmark adds to the initramfs as /usr/bin/wrsping.
//
//   wrsping [ROUNDS [WARMUP]]     (defaults 2000, 100)
//
// Two threads: the waiter, pinned to CPU 1, loads a 64-bit flag with LR.D and, while it is 0,
// waits with WRS.NTO (the reservation stays valid until someone stores to the flag), as Linux's
// smp_cond_load_relaxed does with Zawrs. The storer, pinned to CPU 0, waits a random 20-100 µs
// (spinning on the time CSR), then stores the time CSR's value into the flag. The waiter reads the
// time CSR as soon as its LR.D sees the value: the difference is the wake latency, in time-CSR
// ticks (converted with the timebase frequency from the device tree). It then clears the flag and
// hands the round back through a second flag, on which the storer waits the same way. Rounds in
// which the waiter never executed WRS (the value was already there) are not counted as wakes.
//
//   wrsping n=2000 warmup=100 parked=1987 timebase_hz=10000000 min_us=.. avg_us=.. p50_us=.. p99_us=.. max_us=..
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile uint64_t stamp __attribute__((aligned(64)));
static volatile uint64_t round_done __attribute__((aligned(64)));
static int rounds, warmup;
static uint64_t *latency;
static char *parked;

static inline uint64_t rdtime(void) {
  uint64_t t;
  __asm__ volatile("rdtime %0" : "=r"(t));
  return t;
}

/** Waits with LR.D + WRS.NTO until *p != old; returns the new value and counts the WRS executed. */
static inline uint64_t wait_change(volatile uint64_t *p, uint64_t old, int *waits) {
  for (;;) {
    uint64_t v;
    __asm__ volatile("lr.d %0, (%1)" : "=r"(v) : "r"(p) : "memory");
    if (v != old) return v;
    __asm__ volatile(".4byte 0x00d00073" ::: "memory"); /* wrs.nto */
    (*waits)++;
  }
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    fprintf(stderr, "wrsping: sched_setaffinity: %s\n", strerror(errno));
    exit(1);
  }
}

static void *waiter(void *arg) {
  (void)arg;
  pin(1);
  for (int i = 0; i < rounds; i++) {
    int waits = 0;
    uint64_t sent = wait_change(&stamp, 0, &waits);
    uint64_t woke = rdtime();
    latency[i] = woke > sent ? woke - sent : 0;
    parked[i] = waits > 0;
    stamp = 0;
    __atomic_store_n(&round_done, (uint64_t)i + 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/** The timebase frequency from the device tree (big-endian u32), or 10 MHz. */
static double timebase_hz(void) {
  FILE *f = fopen("/proc/device-tree/cpus/timebase-frequency", "rb");
  unsigned char b[4];
  double hz = 10e6;
  if (f) {
    if (fread(b, 1, 4, f) == 4) hz = (double)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
    fclose(f);
  }
  return hz;
}

int main(int argc, char **argv) {
  rounds = argc > 1 ? atoi(argv[1]) : 2000;
  warmup = argc > 2 ? atoi(argv[2]) : 100;
  if (rounds < 1 || warmup < 0) {
    fprintf(stderr, "usage: wrsping [ROUNDS [WARMUP]]\n");
    return 2;
  }
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    fprintf(stderr, "wrsping: needs two CPUs\n");
    return 1;
  }
  rounds += warmup;
  latency = calloc((size_t)rounds, sizeof *latency);
  parked = calloc((size_t)rounds, 1);
  if (!latency || !parked) return 1;
  double hz = timebase_hz();
  pin(0);
  pthread_t t;
  if (pthread_create(&t, NULL, waiter, NULL) != 0) return 1;
  unsigned seed = 12345;
  for (int i = 0; i < rounds; i++) {
    seed = seed * 1103515245 + 12345;
    uint64_t delay = (uint64_t)((20 + (seed >> 16) % 81) * hz / 1e6);
    uint64_t until = rdtime() + delay;
    while (rdtime() < until) {
    }
    uint64_t now = rdtime();
    __atomic_store_n(&stamp, now ? now : 1, __ATOMIC_RELEASE); /* 0 means no value yet */
    int waits = 0;
    wait_change(&round_done, (uint64_t)i, &waits);
  }
  pthread_join(t, NULL);
  uint64_t *x = malloc((size_t)rounds * sizeof *x);
  int n = 0;
  for (int i = warmup; i < rounds; i++)
    if (parked[i]) x[n++] = latency[i];
  if (!n) {
    printf("wrsping n=0 warmup=%d parked=0\n", warmup);
    return 1;
  }
  qsort(x, (size_t)n, sizeof *x, cmp_u64);
  double sum = 0;
  for (int i = 0; i < n; i++) sum += x[i];
  double us = 1e6 / hz;
  printf("wrsping n=%d warmup=%d parked=%d timebase_hz=%.0f min_us=%.2f avg_us=%.2f p50_us=%.2f p99_us=%.2f max_us=%.2f\n", rounds - warmup, warmup, n,
         hz, x[0] * us, sum / n * us, x[n / 2] * us, x[(int)((n - 1) * 0.99)] * us, x[n - 1] * us);
  return 0;
}
