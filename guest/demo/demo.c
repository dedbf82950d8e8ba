/*
 * Parley's bare-metal demo: what `npm start` shows before Linux is up. Each
 * section is both something to look at and a check of the emulated CPU (the
 * Mandelbrot set exercises double precision including fused multiply-add, the
 * others integer, memory and branch behaviour). Any failed check makes the
 * program exit with status 1, so the demo doubles as a smoke test.
 */
#include <stdint.h>
#include <stdio.h>

static int failures;

static void check(int ok, const char *what) {
  if (!ok) {
    printf("  ** check failed: %s\n", what);
    failures++;
  }
}

/* ----------------------------------------------------------------------- */

static void banner(void) {
  uint64_t misa, hart;
  __asm__ volatile("csrr %0, misa" : "=r"(misa));
  __asm__ volatile("csrr %0, mhartid" : "=r"(hart));
  printf("\n");
  printf("  +--------------------------------------------------------------+\n");
  printf("  |  Parley  -  RISC-V RV64GC in TypeScript and WebAssembly       |\n");
  printf("  |  bare-metal demo, running in machine mode before Linux boots  |\n");
  printf("  +--------------------------------------------------------------+\n");
  /* misa may legally read as zero; only decode it when the hart reports it. */
  if (misa != 0) {
    char ext[27];
    int n = 0;
    for (int bit = 0; bit < 26; bit++)
      if (misa & (1ULL << bit)) ext[n++] = (char)('a' + bit);
    ext[n] = 0;
    unsigned xlen = 16u << (misa >> 62);
    printf("  hart %u, misa = rv%u%s\n\n", (unsigned)hart, xlen, ext);
  } else {
    printf("  hart %u (misa not reported)\n\n", (unsigned)hart);
  }
}

/* ----------------------------------------------------------------------- */

#define MANDEL_W 76
#define MANDEL_H 30
#define MANDEL_MAX_ITER 400
/* Sum of escape counts over the picture; any rounding difference in the
   emulated FPU (a separately rounded multiply-add, say) changes it. */
#define MANDEL_EXPECTED 214268

static void mandelbrot(void) {
  static const char shades[] = " .:-=+*#%@";
  const int nshades = (int)sizeof shades - 1;
  uint64_t total = 0;
  printf("  Mandelbrot set, %dx%d, up to %d iterations per point (double precision):\n", MANDEL_W, MANDEL_H,
         MANDEL_MAX_ITER);
  for (int row = 0; row < MANDEL_H; row++) {
    char line[MANDEL_W + 1];
    double ci = 1.2 - 2.4 * row / (MANDEL_H - 1);
    for (int col = 0; col < MANDEL_W; col++) {
      double cr = -2.15 + 2.75 * col / (MANDEL_W - 1);
      double zr = 0, zi = 0;
      int it = 0;
      while (it < MANDEL_MAX_ITER && zr * zr + zi * zi <= 4.0) {
        double t = zr * zr - zi * zi + cr;
        zi = 2.0 * zr * zi + ci;
        zr = t;
        it++;
      }
      total += (uint64_t)it;
      /* Points inside the set are drawn solid; outside, shade by log-ish speed. */
      int shade;
      if (it == MANDEL_MAX_ITER) {
        shade = nshades - 1;
      } else {
        shade = 0;
        for (int v = it; v > 1 && shade < nshades - 2; v >>= 1) shade++;
      }
      line[col] = shades[shade];
    }
    line[MANDEL_W] = 0;
    printf("  %s\n", line);
  }
  printf("  escape-count sum: %llu\n\n", (unsigned long long)total);
  check(total == MANDEL_EXPECTED, "Mandelbrot escape-count sum");
}

/* ----------------------------------------------------------------------- */

#define SIEVE_LIMIT 200000

static uint8_t composite[SIEVE_LIMIT];

static void primes(void) {
  for (uint32_t p = 2; (uint64_t)p * p < SIEVE_LIMIT; p++)
    if (!composite[p])
      for (uint32_t m = p * p; m < SIEVE_LIMIT; m += p) composite[m] = 1;
  printf("  Primes (sieve of Eratosthenes up to %d):\n  ", SIEVE_LIMIT);
  uint32_t count = 0;
  uint64_t sum = 0;
  uint32_t largest = 0;
  for (uint32_t n = 2; n < SIEVE_LIMIT; n++) {
    if (composite[n]) continue;
    if (count < 24) printf("%u ", (unsigned)n);
    count++;
    sum += n;
    largest = n;
  }
  printf("...\n  %u primes below %d, the largest %u, their sum %llu\n\n", (unsigned)count, SIEVE_LIMIT,
         (unsigned)largest, (unsigned long long)sum);
  /* pi(200000) = 17984 is a textbook value; the others follow from it. */
  check(count == 17984, "prime count below 200000");
  check(largest == 199999, "largest prime below 200000");
}

/* ----------------------------------------------------------------------- */

static uint32_t crc_table[256];

static uint32_t crc32(const uint8_t *p, uint32_t n) {
  uint32_t c = 0xffffffffu;
  while (n--) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

#define CRC_BUF_SIZE 65536
/* CRC-32 of the generated buffer below, as computed by zlib.crc32 on the host. */
#define CRC_BUF_EXPECTED 0x14aae745u

static uint8_t crc_buf[CRC_BUF_SIZE];

static void checksums(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0xedb88320u : c >> 1;
    crc_table[i] = c;
  }
  uint32_t check_value = crc32((const uint8_t *)"123456789", 9);
  /* 64-bit LCG (Knuth's MMIX constants); the top byte is the best-mixed one. */
  uint64_t x = 2024;
  for (uint32_t i = 0; i < CRC_BUF_SIZE; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    crc_buf[i] = (uint8_t)(x >> 56);
  }
  uint32_t buf_crc = crc32(crc_buf, CRC_BUF_SIZE);
  printf("  CRC-32:\n");
  printf("  crc32(\"123456789\")           = 0x%08x (standard check value 0xcbf43926)\n", (unsigned)check_value);
  printf("  crc32(64 KiB LCG sequence)    = 0x%08x (expected 0x%08x)\n\n", (unsigned)buf_crc,
         (unsigned)CRC_BUF_EXPECTED);
  check(check_value == 0xcbf43926u, "CRC-32 check value");
  check(buf_crc == CRC_BUF_EXPECTED, "CRC-32 of generated buffer");
}

/* ----------------------------------------------------------------------- */

#define SORT_N 5000

static int32_t sort_a[SORT_N], sort_tmp[SORT_N];

/* Bottom-up merge sort: stable, no recursion, and easy to verify. */
static void merge_sort(int32_t *a, int32_t *tmp, int n) {
  for (int width = 1; width < n; width *= 2) {
    for (int lo = 0; lo < n; lo += 2 * width) {
      int mid = lo + width < n ? lo + width : n;
      int hi = lo + 2 * width < n ? lo + 2 * width : n;
      int i = lo, j = mid, k = lo;
      while (i < mid && j < hi) tmp[k++] = a[j] < a[i] ? a[j++] : a[i++];
      while (i < mid) tmp[k++] = a[i++];
      while (j < hi) tmp[k++] = a[j++];
    }
    for (int i = 0; i < n; i++) a[i] = tmp[i];
  }
}

static void sorting(void) {
  uint64_t x = 7;
  int64_t sum_before = 0, sum_after = 0;
  for (int i = 0; i < SORT_N; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sort_a[i] = (int32_t)(x % 2000001) - 1000000;
    sum_before += sort_a[i];
  }
  merge_sort(sort_a, sort_tmp, SORT_N);
  int ordered = 1;
  for (int i = 0; i < SORT_N; i++) {
    sum_after += sort_a[i];
    if (i > 0 && sort_a[i - 1] > sort_a[i]) ordered = 0;
  }
  printf("  Merge sort of %d signed integers:\n  smallest:", SORT_N);
  for (int i = 0; i < 5; i++) printf(" %ld", (long)sort_a[i]);
  printf("\n  largest: ");
  for (int i = SORT_N - 5; i < SORT_N; i++) printf(" %ld", (long)sort_a[i]);
  printf("\n  in order: %s, sum preserved: %s\n\n", ordered ? "yes" : "NO", sum_before == sum_after ? "yes" : "NO");
  check(ordered, "merge sort order");
  check(sum_before == sum_after, "merge sort keeps the elements");
}

/* ----------------------------------------------------------------------- */

/* arctan(1/k) by its Taylor series, for Machin's formula. */
static double arctan_inv(int k) {
  double x = 1.0 / k, x2 = x * x, term = x, sum = 0;
  for (int n = 0; term > 1e-20; n++) {
    sum += (n & 1 ? -term : term) / (2 * n + 1);
    term *= x2;
  }
  return sum;
}

static double sqrt_hw(double v) {
  double r;
  __asm__("fsqrt.d %0, %1" : "=f"(r) : "f"(v));
  return r;
}

static void floating_point(void) {
  double pi = 16 * arctan_inv(5) - 4 * arctan_inv(239);
  double err = pi - 3.14159265358979323846;
  if (err < 0) err = -err;
  double root2 = sqrt_hw(2.0);
  union {
    double d;
    uint64_t bits;
  } r2 = {root2};
  printf("  Floating point:\n");
  printf("  pi (Machin's formula)  = %.15f (error %.1e)\n", pi, err);
  printf("  sqrt(2) (fsqrt.d)      = %.15f (bits 0x%016llx)\n", root2, (unsigned long long)r2.bits);
  printf("  sqrt(1e10) (fsqrt.d)   = %.1f\n\n", sqrt_hw(1e10));
  check(err < 1e-15, "pi from Machin's formula");
  /* IEEE 754 requires the correctly rounded result, so the bits are exact. */
  check(r2.bits == 0x3ff6a09e667f3bcdULL, "fsqrt.d(2) correctly rounded");
  check(sqrt_hw(1e10) == 1e5, "fsqrt.d of a perfect square");
}

/* ----------------------------------------------------------------------- */

int main(void) {
  banner();
  mandelbrot();
  primes();
  checksums();
  sorting();
  floating_point();
  if (failures) {
    printf("demo: %d check%s FAILED\n", failures, failures == 1 ? "" : "s");
    return 1;
  }
  printf("demo: all checks passed\n");
  return 0;
}
