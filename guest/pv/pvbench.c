// pvbench: the in-guest half of `parley bench pv` (src/host/node/bench-pv.ts). A static riscv64
// Linux program that the benchmark adds to the initramfs as /usr/bin/pvbench.
//
// The host counts exits, hypercalls and instructions around each command; what only the guest
// can see precisely is time: every subcommand measures with clock_gettime(CLOCK_MONOTONIC), which
// Linux serves from the vDSO by reading the `time` CSR (no exit), at nanosecond resolution instead
// of busybox `time -p`'s 10 ms. Each subcommand prints one line of key=value pairs.
//
//   pvbench elapsed CMD [ARG...]           run CMD, report its wall time
//   pvbench write FILE TTY                 write FILE to TTY in 4 KiB writes, wait until sent (tcdrain)
//   pvbench timerlat PERIOD_US COUNT [busy] cyclictest-style timer lateness (busy: with a CPU hog)
//   pvbench spin SECONDS                   keep the CPU busy; report loop iterations done
//   pvbench readlat DEV COUNT [BS]         O_DIRECT reads of BS (4096) bytes, one at a time
//   pvbench udprr IP PORT COUNT SIZE       UDP request/response round trips
//   pvbench udprx IP PORT COUNT SIZE       ask IP:PORT to send COUNT datagrams of SIZE bytes; receive them
//   pvbench udptx IP PORT COUNT SIZE       send COUNT datagrams of SIZE bytes as fast as the socket allows
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "pvbench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/** Prints count, min, mean, median, 99th percentile and max of `n` samples (ns) in microseconds. */
static void print_stats(const char *prefix, int64_t *s, int n) {
  if (n == 0) {
    printf("%s_n=0", prefix);
    return;
  }
  int64_t sum = 0;
  for (int i = 0; i < n; i++) sum += s[i];
  qsort(s, n, sizeof *s, cmp_i64);
  int p99 = (int)((n - 1) * 0.99 + 0.5);
  printf("%s_n=%d %s_min_us=%.1f %s_avg_us=%.1f %s_p50_us=%.1f %s_p99_us=%.1f %s_max_us=%.1f", prefix, n, prefix, s[0] / 1e3, prefix,
         (double)sum / n / 1e3, prefix, s[n / 2] / 1e3, prefix, s[p99] / 1e3, prefix, s[n - 1] / 1e3);
}

static int cmd_elapsed(int argc, char **argv) {
  if (argc < 1) return 2;
  int64_t t0 = now_ns();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  int status;
  if (waitpid(pid, &status, 0) < 0) die("waitpid");
  int64_t t1 = now_ns();
  // On a line of its own: the command's output need not end with a newline.
  printf("\nelapsed_ns=%lld status=%d\n", (long long)(t1 - t0), WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return 0;
}

static int cmd_write(int argc, char **argv) {
  if (argc < 2) return 2;
  int in = open(argv[0], O_RDONLY);
  if (in < 0) die(argv[0]);
  struct stat st;
  if (fstat(in, &st) < 0) die("fstat");
  char *data = malloc(st.st_size + 1);
  ssize_t got = 0;
  while (got < st.st_size) {
    ssize_t n = read(in, data + got, st.st_size - got);
    if (n <= 0) die("read");
    got += n;
  }
  int out = open(argv[1], O_WRONLY | O_NOCTTY);
  if (out < 0) die(argv[1]);
  // Only the transfer is timed: the file is in memory and the tty is open before the clock starts.
  int64_t t0 = now_ns();
  for (ssize_t done = 0; done < got;) {
    ssize_t n = write(out, data + done, got - done < 4096 ? got - done : 4096);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    done += n;
  }
  if (isatty(out)) tcdrain(out); // until the driver has handed every byte to the device
  int64_t t1 = now_ns();
  printf("\nbytes=%lld elapsed_ns=%lld\n", (long long)got, (long long)(t1 - t0));
  return 0;
}

/** A child that only burns CPU until killed: the "busy" half of the timer measurements. */
static pid_t start_hog(void) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    volatile uint64_t x = 0;
    for (;;) x++;
  }
  return pid;
}

static int cmd_timerlat(int argc, char **argv) {
  if (argc < 2) return 2;
  long period_us = atol(argv[0]);
  int count = atoi(argv[1]);
  int busy = argc > 2 && strcmp(argv[2], "busy") == 0;
  // A count of 0 is allowed: the benchmark's baseline (fork, exec, output) without the work.
  if (period_us <= 0 || count < 0) return 2;
  int64_t *lat = calloc(count + 1, sizeof *lat);
  pid_t hog = busy ? start_hog() : 0;
  // Absolute deadlines on a fixed grid, as cyclictest does: lateness does not accumulate.
  int64_t next = now_ns() + period_us * 1000;
  int64_t t0 = now_ns();
  for (int i = 0; i < count; i++) {
    struct timespec ts = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    int64_t t = now_ns();
    lat[i] = t - next;
    next += period_us * 1000;
    if (next < t) next = t + period_us * 1000; // overran a whole period: restart the grid
  }
  int64_t t1 = now_ns();
  if (hog) {
    kill(hog, SIGKILL);
    waitpid(hog, NULL, 0);
  }
  printf("period_us=%ld elapsed_ns=%lld ", period_us, (long long)(t1 - t0));
  print_stats("lat", lat, count);
  printf("\n");
  return 0;
}

static int cmd_spin(int argc, char **argv) {
  if (argc < 1) return 2;
  int64_t end = now_ns() + (int64_t)(atof(argv[0]) * 1e9);
  uint64_t iterations = 0;
  volatile uint64_t x = 0;
  while (now_ns() < end) {
    for (int i = 0; i < 10000; i++) x++;
    iterations += 10000;
  }
  printf("iterations=%llu\n", (unsigned long long)iterations);
  return 0;
}

static int cmd_readlat(int argc, char **argv) {
  if (argc < 2) return 2;
  int count = atoi(argv[1]);
  if (count < 0) return 2;
  size_t bs = argc > 2 ? (size_t)atol(argv[2]) : 4096;
  int fd = open(argv[0], O_RDONLY | O_DIRECT);
  if (fd < 0) die(argv[0]);
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < (off_t)bs) die("device too small");
  void *buf;
  if (posix_memalign(&buf, 4096, bs)) die("posix_memalign");
  int64_t *lat = calloc(count + 1, sizeof *lat);
  int64_t t0 = now_ns();
  for (int i = 0; i < count; i++) {
    off_t at = ((off_t)i * bs) % (size - size % bs);
    int64_t a = now_ns();
    if (pread(fd, buf, bs, at) != (ssize_t)bs) die("pread");
    lat[i] = now_ns() - a;
  }
  int64_t t1 = now_ns();
  printf("bs=%zu elapsed_ns=%lld ", bs, (long long)(t1 - t0));
  print_stats("op", lat, count);
  printf("\n");
  return 0;
}

static int udp_socket(const char *ip, const char *port) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) die("socket");
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
  if (inet_pton(AF_INET, ip, &to.sin_addr) != 1) {
    errno = EINVAL;
    die(ip);
  }
  if (connect(s, (struct sockaddr *)&to, sizeof to) < 0) die("connect");
  struct timeval tv = {.tv_sec = 1};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return s;
}

static int cmd_udprr(int argc, char **argv) {
  if (argc < 4) return 2;
  int count = atoi(argv[2]);
  size_t size = (size_t)atol(argv[3]);
  int s = udp_socket(argv[0], argv[1]);
  char *buf = calloc(1, size + 1), *in = calloc(1, 65536);
  int64_t *rtt = calloc(count + 1, sizeof *rtt);
  int got = 0, lost = 0;
  for (int i = 0; i < count; i++) {
    memcpy(buf, &i, sizeof i < size ? sizeof i : size);
    int64_t a = now_ns();
    if (send(s, buf, size, 0) < 0) die("send");
    ssize_t n = recv(s, in, 65536, 0);
    if (n < 0) {
      lost++;
      continue;
    }
    rtt[got++] = now_ns() - a;
  }
  printf("size=%zu lost=%d ", size, lost);
  print_stats("rtt", rtt, got);
  printf("\n");
  return 0;
}

static int cmd_udprx(int argc, char **argv) {
  if (argc < 4) return 2;
  long count = atol(argv[2]);
  long size = atol(argv[3]);
  int s = udp_socket(argv[0], argv[1]);
  // A deep socket buffer, so that a burst the application has not read yet is not dropped by
  // the guest's own UDP layer (root may exceed rmem_max with SO_RCVBUFFORCE).
  int rcvbuf = 8 << 20;
  if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0) setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  char request[64], *in = malloc(65536);
  int len = snprintf(request, sizeof request, "%ld %ld", count, size);
  int64_t t0 = now_ns(), last = t0, first = 0;
  if (send(s, request, len, 0) < 0) die("send");
  long datagrams = 0, bytes = 0;
  while (datagrams < count) {
    ssize_t n = recv(s, in, 65536, 0);
    if (n < 0) break; // a second without data: the rest was lost
    if (datagrams == 0) first = now_ns();
    datagrams++;
    bytes += n;
    last = now_ns();
  }
  printf("datagrams=%ld bytes=%ld elapsed_ns=%lld first_ns=%lld\n", datagrams, bytes, (long long)(last - t0), (long long)(first ? first - t0 : 0));
  return 0;
}

static int cmd_udptx(int argc, char **argv) {
  if (argc < 4) return 2;
  long count = atol(argv[2]);
  size_t size = (size_t)atol(argv[3]);
  int s = udp_socket(argv[0], argv[1]);
  char *buf = calloc(1, size + 1);
  long sent = 0, bytes = 0;
  int64_t t0 = now_ns();
  // Blocking sends: once the socket's send buffer is full, each send waits for the device to
  // return transmit buffers, so the rate follows transmit completions (and their interrupts).
  for (long i = 0; i < count; i++) {
    ssize_t n = send(s, buf, size, 0);
    if (n < 0) {
      if (errno == ENOBUFS || errno == EAGAIN) continue;
      die("send");
    }
    sent++;
    bytes += n;
  }
  int64_t t1 = now_ns();
  printf("datagrams=%ld bytes=%ld elapsed_ns=%lld\n", sent, bytes, (long long)(t1 - t0));
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) goto usage;
  const char *cmd = argv[1];
  int rc = 2;
  if (strcmp(cmd, "elapsed") == 0) rc = cmd_elapsed(argc - 2, argv + 2);
  else if (strcmp(cmd, "write") == 0) rc = cmd_write(argc - 2, argv + 2);
  else if (strcmp(cmd, "timerlat") == 0) rc = cmd_timerlat(argc - 2, argv + 2);
  else if (strcmp(cmd, "spin") == 0) rc = cmd_spin(argc - 2, argv + 2);
  else if (strcmp(cmd, "readlat") == 0) rc = cmd_readlat(argc - 2, argv + 2);
  else if (strcmp(cmd, "udprr") == 0) rc = cmd_udprr(argc - 2, argv + 2);
  else if (strcmp(cmd, "udprx") == 0) rc = cmd_udprx(argc - 2, argv + 2);
  else if (strcmp(cmd, "udptx") == 0) rc = cmd_udptx(argc - 2, argv + 2);
  if (rc != 2) return rc;
usage:
  fprintf(stderr, "usage: pvbench elapsed|write|timerlat|spin|readlat|udprr|udprx|udptx ARGS (see guest/pv/pvbench.c)\n");
  return 2;
}
