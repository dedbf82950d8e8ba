// memwrite: the memory-writing workload of `npm run bench -- lifecycle` (bench/lifecycle.ts). A
// static riscv64 Linux program the benchmark adds to the initramfs as /usr/bin/memwrite, started in
// the background (`memwrite &`) before a live migration.
//
//   memwrite [MIB [PAGES_PER_MS [HEARTBEAT_MS]]]     (defaults 64, 40, 250)
//
// It maps MIB MiB and rewrites it one page after the other, round and round, at a fixed rate of
// PAGES_PER_MS pages per millisecond of CLOCK_MONOTONIC (40 pages/ms = 160 MiB/s of pages dirtied).
// The rate is set by the clock, not by how fast the machine runs, so that two hypervisors migrating
// the guest face the same dirtying rate; a machine too slow for it shows a lower achieved rate.
// Each page is dirtied by one 64-bit store (the page's pass number): it is the page, not the bytes,
// that a migration must send again. Before each store the program checks that the page still
// holds the previous pass's number, so a page a migration lost or sent stale counts as an error.
//
// It catches up on at most 100 ms of missed pages: a late wake-up from its 1 ms sleep is made good,
// a long stall is not (the burst would measure the catching up, not the steady rate). It moves its
// time base instead of skipping pages, so every page is still written once per pass.
//
// Output: one start line, then every HEARTBEAT_MS a heartbeat (key=value pairs):
//
//   memwrite start mib=64 pages_per_ms=40 heartbeat_ms=250
//   memwrite beat=12 t_ms=3000 pages=120000 mib_s=156.2 errors=0
//
// t_ms is the time spent writing so far (stalls beyond 100 ms not counted), pages the pages written
// so far, mib_s the rate achieved since the previous heartbeat, errors the pages found with the
// wrong pass number so far.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE_BYTES 4096
#define WORDS_PER_PAGE (PAGE_BYTES / 8)
/** Missed pages caught up after a pause, in milliseconds of the rate. */
#define MAX_BACKLOG_MS 100

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long arg(int argc, char **argv, int i, long fallback) {
  if (argc <= i) return fallback;
  char *end;
  long v = strtol(argv[i], &end, 10);
  if (*end != '\0' || v < 1) {
    fprintf(stderr, "memwrite: argument %d (%s): expected a positive whole number\n", i, argv[i]);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  long mib = arg(argc, argv, 1, 64);
  long pages_per_ms = arg(argc, argv, 2, 40);
  long heartbeat_ms = arg(argc, argv, 3, 250);
  uint64_t page_count = (uint64_t)mib * (1024 * 1024 / PAGE_BYTES);
  uint64_t *area = mmap(NULL, page_count * PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (area == MAP_FAILED) {
    perror("memwrite: mmap");
    return 1;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("memwrite start mib=%ld pages_per_ms=%ld heartbeat_ms=%ld\n", mib, pages_per_ms, heartbeat_ms);

  int64_t start = now_ms();
  uint64_t written = 0;   // pages stored so far; page = written % page_count, pass = written / page_count
  uint64_t errors = 0;
  uint64_t beats = 0;
  int64_t last_beat = start;
  uint64_t written_at_last_beat = 0;
  for (;;) {
    int64_t now = now_ms();
    uint64_t max_backlog = (uint64_t)pages_per_ms * MAX_BACKLOG_MS;
    uint64_t due = (uint64_t)(now - start) * (uint64_t)pages_per_ms;
    if (due > written + max_backlog) {
      start += (int64_t)((due - written - max_backlog) / (uint64_t)pages_per_ms);
      due = (uint64_t)(now - start) * (uint64_t)pages_per_ms;
    }
    for (uint64_t n = written; n < due; n++) {
      uint64_t page = n % page_count;
      uint64_t pass = n / page_count;
      uint64_t *word = &area[page * WORDS_PER_PAGE];
      // A page holds the number of passes over it so far: pass `pass` finds `pass` there.
      if (*word != pass) errors++;
      *word = pass + 1;
    }
    written = due;
    if (now - last_beat >= heartbeat_ms) {
      beats++;
      double seconds = (double)(now - last_beat) / 1000.0;
      double mib_s = (double)(written - written_at_last_beat) * PAGE_BYTES / (1024.0 * 1024.0) / seconds;
      printf("memwrite beat=%llu t_ms=%lld pages=%llu mib_s=%.1f errors=%llu\n", (unsigned long long)beats, (long long)(now - start),
             (unsigned long long)written, mib_s, (unsigned long long)errors);
      last_beat = now;
      written_at_last_beat = written;
    }
    struct timespec one_ms = {0, 1000000};
    nanosleep(&one_ms, NULL);
  }
}
