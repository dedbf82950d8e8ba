// contend: kernel lock contention for the overcommit comparison of `npm run bench -- pv contention`
// (bench/pv/contention.ts). A static riscv64 Linux program the benchmark adds to the initramfs as
// /usr/bin/contend.
//
//   contend pipe|file THREADS SECONDS [WARMUP_MS]
//
// THREADS threads hammer one kernel object with small system calls for SECONDS seconds:
//
//   pipe  every thread writes one byte into one shared pipe, then reads one byte back: each
//         operation takes the pipe's mutex twice. A thread reads only after it wrote, so the pipe
//         always holds at least one byte per thread about to read (no read ever blocks), and it
//         never fills.
//   file  every thread pwrite()s 64 bytes into one shared file in /tmp (tmpfs), each to its own
//         offset inside the first 4 KiB: every write takes the file's inode lock (i_rwsem).
//
// Both locks are sleeping locks with optimistic spinning: a waiter spins (cpu_relax, i.e. PAUSE)
// while the holder runs on another CPU, which is what goes wrong when the holder's vCPU is not
// running. Each operation is timed with clock_gettime(CLOCK_MONOTONIC) (vDSO); after WARMUP_MS
// (default 500), every operation's latency is recorded (up to a per-thread cap), and one line of
// key=value pairs is printed:
//
//   contend mode=pipe threads=4 seconds=5.00 ops=123456 ops_per_s=24691.2 avg_us=.. p50_us=.. p99_us=.. max_us=..
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_SAMPLES (1 << 20)
#define FILE_WRITE 64

enum mode { MODE_PIPE, MODE_FILE };

struct worker {
  pthread_t thread;
  int index;
  long ops;
  long n;
  uint32_t *lat_ns;
  int64_t max_ns;
};

static enum mode mode;
static int pipe_fd[2];
static int file_fd;
static atomic_int phase; /* 0: warm-up, 1: measuring, 2: stop */
static atomic_int started;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int err) {
  fprintf(stderr, "contend: %s: %s\n", what, strerror(err));
  exit(1);
}

static void operation(struct worker *w) {
  char buf[FILE_WRITE];
  if (mode == MODE_PIPE) {
    buf[0] = (char)w->index;
    if (write(pipe_fd[1], buf, 1) != 1) die("write", errno);
    if (read(pipe_fd[0], buf, 1) != 1) die("read", errno);
  } else {
    memset(buf, w->index, sizeof buf);
    off_t at = (off_t)((w->index * FILE_WRITE) % 4096);
    if (pwrite(file_fd, buf, sizeof buf, at) != (ssize_t)sizeof buf) die("pwrite", errno);
  }
}

static void *run(void *arg) {
  struct worker *w = arg;
  atomic_fetch_add(&started, 1);
  for (;;) {
    int p = atomic_load_explicit(&phase, memory_order_relaxed);
    if (p == 2) break;
    int64_t t0 = now_ns();
    operation(w);
    int64_t dt = now_ns() - t0;
    if (p == 1) {
      w->ops++;
      if (w->n < MAX_SAMPLES) w->lat_ns[w->n++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
      if (dt > w->max_ns) w->max_ns = dt;
    }
  }
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static long count(const char *arg) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (errno || *end || v < 0) {
    fprintf(stderr, "usage: contend pipe|file THREADS SECONDS [WARMUP_MS]\n");
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: contend pipe|file THREADS SECONDS [WARMUP_MS]\n");
    return 2;
  }
  if (strcmp(argv[1], "pipe") == 0) mode = MODE_PIPE;
  else if (strcmp(argv[1], "file") == 0) mode = MODE_FILE;
  else {
    fprintf(stderr, "contend: unknown mode %s (pipe, file)\n", argv[1]);
    return 2;
  }
  int threads = (int)count(argv[2]);
  long seconds = count(argv[3]);
  long warmup_ms = argc == 5 ? count(argv[4]) : 500;
  if (threads < 1 || threads > MAX_THREADS || seconds < 1) {
    fprintf(stderr, "contend: THREADS 1..%d, SECONDS >= 1\n", MAX_THREADS);
    return 2;
  }
  if (mode == MODE_PIPE) {
    if (pipe(pipe_fd) != 0) die("pipe", errno);
  } else {
    char path[] = "/tmp/contend-XXXXXX";
    file_fd = mkstemp(path);
    if (file_fd < 0) die("mkstemp", errno);
    unlink(path);
  }
  struct worker *workers = calloc((size_t)threads, sizeof *workers);
  if (!workers) die("calloc", ENOMEM);
  for (int i = 0; i < threads; i++) {
    workers[i].index = i;
    workers[i].lat_ns = malloc(MAX_SAMPLES * sizeof(uint32_t));
    if (!workers[i].lat_ns) die("malloc", ENOMEM);
    int err = pthread_create(&workers[i].thread, NULL, run, &workers[i]);
    if (err) die("pthread_create", err);
  }
  while (atomic_load(&started) < threads) usleep(1000);
  usleep((useconds_t)(warmup_ms * 1000));
  int64_t t0 = now_ns();
  atomic_store(&phase, 1);
  struct timespec span = { .tv_sec = seconds, .tv_nsec = 0 };
  while (nanosleep(&span, &span) != 0 && errno == EINTR) {
  }
  atomic_store(&phase, 2);
  int64_t elapsed = now_ns() - t0;
  long ops = 0, n = 0;
  int64_t max_ns = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(workers[i].thread, NULL);
    ops += workers[i].ops;
    n += workers[i].n;
    if (workers[i].max_ns > max_ns) max_ns = workers[i].max_ns;
  }
  uint32_t *all = malloc((size_t)(n ? n : 1) * sizeof(uint32_t));
  if (!all) die("malloc", ENOMEM);
  long k = 0;
  double sum = 0;
  for (int i = 0; i < threads; i++)
    for (long j = 0; j < workers[i].n; j++) {
      all[k++] = workers[i].lat_ns[j];
      sum += workers[i].lat_ns[j];
    }
  qsort(all, (size_t)n, sizeof *all, cmp_u32);
  double secs = elapsed / 1e9;
  double p50 = n ? all[n / 2] / 1e3 : 0, p99 = n ? all[(long)((n - 1) * 0.99)] / 1e3 : 0;
  printf("contend mode=%s threads=%d seconds=%.2f ops=%ld ops_per_s=%.1f avg_us=%.2f p50_us=%.2f p99_us=%.2f max_us=%.2f\n", argv[1], threads,
         secs, ops, ops / secs, n ? sum / n / 1e3 : 0, p50, p99, max_ns / 1e3);
  return 0;
}
