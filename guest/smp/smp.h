// Shared helpers for the multiprocessor correctness programs (smp-counters, smp-litmus,
// smp-xmodify): argument parsing, pinning a thread to a CPU, and a two-sided spin barrier.
#ifndef PARLEY_SMP_H
#define PARLEY_SMP_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void smp_die(const char *prog, const char *what, int err) {
  fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(err));
  exit(2);
}

/** A positive count from argv, or exit 2 with the usage line. */
static inline long smp_count(const char *prog, const char *usage, const char *arg) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (errno || *end || v <= 0) {
    fprintf(stderr, "usage: %s %s\n", prog, usage);
    exit(2);
  }
  return v;
}

/** CPUs this process may run on. */
static inline int smp_online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/** Pins the calling thread to `cpu` (modulo the online CPUs); a no-op with one CPU. */
static inline void smp_pin(const char *prog, int cpu) {
  int cpus = smp_online_cpus();
  if (cpus < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % cpus, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) smp_die(prog, "sched_setaffinity", errno);
}

/** The CPU the calling thread runs on now. */
static inline int smp_cpu(void) { return sched_getcpu(); }

/**
 * The body of every spin loop here: PAUSE (Zihintpause, encoded as the FENCE hint the assembler
 * may not know by name), as Linux's cpu_relax() and C runtimes' spin loops do. On a host that
 * overcommits the harts it lets the hypervisor see the spin (pause-loop exiting).
 */
static inline void smp_relax(void) { __asm__ volatile(".insn i 0x0f, 0, x0, x0, 0x010"); }

/**
 * A sense-reversing spin barrier for `parties` threads: the last to arrive resets the count and
 * flips the sense with a release store; the others spin on the sense with acquire loads. Each
 * thread keeps its own local sense. After a long spin a waiter yields, so a barrier still makes
 * progress when there are fewer CPUs than parties.
 */
struct smp_barrier {
  unsigned parties;
  unsigned count;
  unsigned sense;
};

static inline void smp_barrier_init(struct smp_barrier *b, unsigned parties) {
  b->parties = parties;
  b->count = 0;
  b->sense = 0;
}

static inline void smp_barrier_wait(struct smp_barrier *b, unsigned *local_sense) {
  unsigned sense = *local_sense ^ 1;
  *local_sense = sense;
  if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->parties) {
    __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&b->sense, sense, __ATOMIC_RELEASE);
    return;
  }
  unsigned spins = 0;
  while (__atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) != sense) {
    smp_relax();
    if (++spins % 4096 == 0) sched_yield();
  }
}

static inline pthread_t smp_spawn(const char *prog, void *(*fn)(void *), void *arg) {
  pthread_t t;
  int err = pthread_create(&t, NULL, fn, arg);
  if (err) smp_die(prog, "pthread_create", err);
  return t;
}

#endif
