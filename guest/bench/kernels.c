/*
 * Benchmark kernels. Every iteration of a kernel does exactly the same work on
 * the same input, so each kernel's result is a constant that can be checked on
 * every iteration, for any iteration count. All arithmetic is unsigned or free
 * of overflow, and nothing depends on addresses, so results are the same on
 * any target (and on a native host build).
 *
 * No libc calls are allowed here (not even implicit memset/memcpy): they would
 * run different code on bare metal (picolibc) and Linux (glibc).
 */
#include "kernels.h"

typedef uint64_t u64;
typedef uint32_t u32;
typedef int64_t i64;
typedef int32_t i32;
typedef uint8_t u8;

#define NOINLINE __attribute__((noinline))

const char *const bench_kernel_names[BENCH_KERNEL_COUNT] = {"alu", "matmul", "sort", "chase", "interp", "text"};

/* Results of one iteration of each kernel, established with qemu-riscv64 and
   cross-checked with a native x86-64 build of this file. */
const uint64_t bench_expected[BENCH_KERNEL_COUNT] = {
    0xa2c2e4ad28f6618cULL, /* alu */
    0x119e475035c1dd90ULL, /* matmul */
    0x800514f4646c55d5ULL, /* sort */
    0x54a3b927ba7de619ULL, /* chase */
    0x4da7663d0bbac356ULL, /* interp */
    0x1f216d3a7931a6f4ULL, /* text */
};

/* xorshift64* generator: cheap, full-period, and good enough for test data. */
static inline u64 rng_next(u64 *state) {
  u64 x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1dULL;
}

static inline u64 fold(u64 h, u64 v) { return (h ^ v) * 0x100000001b3ULL + (h >> 29); }

/* ---------------------------------------------------------------- alu --- */

#define ALU_ROUNDS 10000

static NOINLINE u64 k_alu(void) {
  u64 s = 0x243f6a8885a308d3ULL;
  u64 acc = 0;
  u32 w = 0x9e3779b9u;
  for (u32 i = 0; i < ALU_ROUNDS; i++) {
    u64 r = rng_next(&s);

    /* Euclid's algorithm: a chain of data-dependent remainders. */
    u64 a = (r >> 20) | 1, b = (r & 0xfffff) + 1;
    while (b != 0) {
      u64 t = a % b;
      a = b;
      b = t;
    }
    acc += a;

    /* Integer square root by Newton's method: unsigned division. */
    u64 n = (r >> 24) + 1;
    u64 x = n, y = (n + 1) >> 1;
    while (y < x) {
      x = y;
      y = (x + n / x) >> 1;
    }
    acc ^= x << (i & 15);

    /* 32-bit arithmetic, so the W-form instructions get exercised. */
    w = w * 1664525u + 1013904223u;
    u32 rot = i & 31;
    u32 rotated = rot ? (w << rot) | (w >> (32 - rot)) : w;
    acc += (u64)(i64)((i32)w >> 7) + rotated;

    /* Signed division and remainder; the divisor is never 0 or -1. */
    i64 divisor = (i64)(w >> 3) + 2;
    if (w & 1) divisor = -divisor;
    i64 dividend = (i64)(r ^ acc);
    acc += (u64)(dividend / divisor) ^ (u64)(dividend % divisor);
    i32 wd = (i32)(w ^ (u32)acc) / (i32)((w & 0xffff) + 3);
    acc += (u64)(i64)wd;

    /* High halves of 64x64 products (mulhu / mulh). */
    acc += (u64)(((unsigned __int128)r * (acc | 1)) >> 64);
    acc ^= (u64)(((__int128)(i64)r * (i64)(acc >> 1)) >> 64);

    /* A short Collatz walk every few rounds: unpredictable branches. */
    if ((i & 7) == 0) {
      u64 c = (r & 0x3ff) + 1;
      u32 steps = 0;
      while (c != 1) {
        c = (c & 1) ? 3 * c + 1 : c >> 1;
        steps++;
      }
      acc += steps;
    }
  }
  return acc;
}

/* ------------------------------------------------------------- matmul --- */

#define MM 64

static u32 mat_a[MM][MM], mat_b[MM][MM], mat_c[MM][MM];

static void matmul_init(void) {
  u64 s = 0x13198a2e03707344ULL;
  for (int i = 0; i < MM; i++)
    for (int j = 0; j < MM; j++) {
      u64 r = rng_next(&s);
      mat_a[i][j] = (u32)(r & 0xffff) - 0x8000u;
      mat_b[i][j] = (u32)(r >> 48) - 0x8000u;
    }
}

static NOINLINE u64 k_matmul(void) {
  /* i-k-j order keeps the inner loop streaming along rows of B and C. The
     first k step assigns instead of accumulating so no clearing loop (which
     the compiler could turn into a memset call) is needed. */
  for (int i = 0; i < MM; i++) {
    u32 aik = mat_a[i][0];
    for (int j = 0; j < MM; j++) mat_c[i][j] = aik * mat_b[0][j];
    for (int k = 1; k < MM; k++) {
      aik = mat_a[i][k];
      for (int j = 0; j < MM; j++) mat_c[i][j] += aik * mat_b[k][j];
    }
  }
  u64 h = 0;
  for (int i = 0; i < MM; i++) {
    u64 row = 0;
    for (int j = 0; j < MM; j++) row = row * 31 + mat_c[i][j];
    h = fold(h, row + mat_c[MM - 1 - i][i]);
  }
  return h;
}

/* --------------------------------------------------------------- sort --- */

#define SORT_N 32768 /* 128 KiB of keys: well beyond a typical L1 */

static u32 sort_keys[SORT_N];

static void insertion_sort(u32 *v, long lo, long hi) {
  for (long i = lo + 1; i <= hi; i++) {
    u32 key = v[i];
    long j = i - 1;
    while (j >= lo && v[j] > key) {
      v[j + 1] = v[j];
      j--;
    }
    v[j + 1] = key;
  }
}

static void quick_sort(u32 *v, long lo, long hi) {
  /* Recursing only into the smaller part bounds the stack depth by log2(n). */
  while (hi - lo > 16) {
    long mid = lo + ((hi - lo) >> 1);
    u32 x = v[lo], y = v[mid], z = v[hi];
    u32 pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
    long i = lo - 1, j = hi + 1;
    for (;;) {
      do i++; while (v[i] < pivot);
      do j--; while (v[j] > pivot);
      if (i >= j) break;
      u32 t = v[i];
      v[i] = v[j];
      v[j] = t;
    }
    if (j - lo < hi - j) {
      quick_sort(v, lo, j);
      lo = j + 1;
    } else {
      quick_sort(v, j + 1, hi);
      hi = j;
    }
  }
  insertion_sort(v, lo, hi);
}

static NOINLINE u64 k_sort(void) {
  u64 s = 0xa4093822299f31d0ULL;
  for (long i = 0; i < SORT_N; i += 2) {
    u64 r = rng_next(&s);
    /* Narrow keys in half the slots give the partitioning plenty of duplicates. */
    sort_keys[i] = (u32)r;
    sort_keys[i + 1] = (u32)(r >> 32) & 0xfff;
  }
  quick_sort(sort_keys, 0, SORT_N - 1);
  u64 h = 0;
  u32 disorder = 0, runs = 0;
  for (long i = 1; i < SORT_N; i++) {
    disorder += sort_keys[i - 1] > sort_keys[i];
    runs += sort_keys[i - 1] != sort_keys[i];
    h += (u64)sort_keys[i] * (u64)(i | 1);
  }
  return fold(fold(h, runs), disorder);
}

/* -------------------------------------------------------------- chase --- */

/* One node per 64-byte line, linked in shuffled order across 2 MiB, so every
   step is a dependent load to an unpredictable address. */
#define RING_N 32768
#define RING_LAPS 3

struct ring_node {
  struct ring_node *next;
  u32 value;
  u32 pad[13];
};

static struct ring_node ring[RING_N];
static u32 ring_order[RING_N];

#define TREE_N 6000
#define TREE_LOOKUPS 12000

struct tree_node {
  struct tree_node *left, *right;
  u64 key;
  u32 count;
  u32 pad;
};

static struct tree_node tree_pool[TREE_N];
static struct tree_node *tree_stack[TREE_N];

static void chase_init(void) {
  u64 s = 0x082efa98ec4e6c89ULL;
  for (u32 i = 0; i < RING_N; i++) ring_order[i] = i;
  for (u32 i = RING_N - 1; i > 0; i--) {
    u32 j = (u32)(rng_next(&s) % (i + 1));
    u32 t = ring_order[i];
    ring_order[i] = ring_order[j];
    ring_order[j] = t;
  }
  for (u32 i = 0; i < RING_N; i++) {
    struct ring_node *n = &ring[ring_order[i]];
    n->next = &ring[ring_order[(i + 1) % RING_N]];
    n->value = (u32)rng_next(&s);
  }
}

static NOINLINE u64 k_chase(void) {
  u64 h = 0;
  const struct ring_node *p = &ring[0];
  for (u32 step = 0; step < RING_N * RING_LAPS; step++) {
    h += p->value ^ step;
    p = p->next;
  }

  /* Binary search tree rebuilt from the same key stream every iteration:
     pointer chasing with a data-dependent branch at every level. */
  struct tree_node *root = 0;
  u32 used = 0;
  u64 s = 0x452821e638d01377ULL;
  for (u32 i = 0; i < TREE_N; i++) {
    u64 key = rng_next(&s) >> 46;
    struct tree_node **link = &root;
    while (*link && (*link)->key != key) link = key < (*link)->key ? &(*link)->left : &(*link)->right;
    if (*link) {
      (*link)->count++;
    } else {
      struct tree_node *n = &tree_pool[used++];
      n->left = n->right = 0;
      n->key = key;
      n->count = 1;
      *link = n;
    }
  }
  u64 s2 = 0x452821e638d01377ULL, s3 = 0xbe5466cf34e90c6cULL;
  u64 hits = 0, depth_sum = 0;
  for (u32 i = 0; i < TREE_LOOKUPS; i++) {
    /* Alternate between keys known to be present and random ones. */
    u64 key = (i & 1) ? rng_next(&s3) >> 46 : rng_next(&s2) >> 46;
    const struct tree_node *n = root;
    u32 depth = 0;
    while (n && n->key != key) {
      n = key < n->key ? n->left : n->right;
      depth++;
    }
    if (n) hits += n->count;
    depth_sum += depth;
  }
  /* In-order walk with an explicit stack checks the tree is really ordered. */
  u32 top = 0, visited = 0, misordered = 0;
  u64 prev = 0, order_hash = 0;
  struct tree_node *n = root;
  while (n || top) {
    while (n) {
      tree_stack[top++] = n;
      n = n->left;
    }
    n = tree_stack[--top];
    misordered += visited && n->key <= prev;
    prev = n->key;
    order_hash = fold(order_hash, n->key * n->count);
    visited++;
    n = n->right;
  }
  return fold(fold(fold(fold(h, hits), depth_sum), order_hash), (u64)visited << 32 | misordered);
}

/* ------------------------------------------------------------- interp --- */

/* A small register machine. Programs are generated at start-up; the
   interpreter's switch compiles to an indirect jump through a table, the
   classic dispatch pattern of bytecode VMs. */
enum vm_op {
  VM_LI,   /* r[a] = imm */
  VM_MOV,  /* r[a] = r[b] */
  VM_ADD,  /* r[a] = r[b] + r[c] */
  VM_ADDI, /* r[a] = r[b] + imm */
  VM_SUB,  /* r[a] = r[b] - r[c] */
  VM_MUL,  /* r[a] = r[b] * r[c] */
  VM_AND,  /* r[a] = r[b] & r[c] */
  VM_XOR,  /* r[a] = r[b] ^ r[c] */
  VM_SHRI, /* r[a] = r[b] >> imm */
  VM_SHLI, /* r[a] = r[b] << imm */
  VM_LD,   /* r[a] = mem[r[b] + imm] */
  VM_ST,   /* mem[r[b] + imm] = r[a] */
  VM_BLT,  /* if r[a] < r[b] goto imm */
  VM_BNE,  /* if r[a] != r[b] goto imm */
  VM_JMP,  /* goto imm */
  VM_HALT,
};

struct vm_insn {
  u8 op, a, b, c;
  i32 imm;
};

#define VM_MEM_WORDS 8192 /* power of two: addresses wrap instead of faulting */
#define VM_SIEVE_LIMIT 8000
#define VM_MIX_ROUNDS 6000

static struct vm_insn vm_prog[64];
static u32 vm_len;
static u32 vm_mem[VM_MEM_WORDS];

static u32 vm_emit(u8 op, u8 a, u8 b, u8 c, i32 imm) {
  struct vm_insn *in = &vm_prog[vm_len];
  in->op = op;
  in->a = a;
  in->b = b;
  in->c = c;
  in->imm = imm;
  return vm_len++;
}

/* Sieve of Eratosthenes, then a pass that counts, sums and hashes the primes,
   then an arithmetic mixing loop. Results are left in r6, r7, r8 and r11. */
static void interp_init(void) {
  enum { R0 = 0, N = 1, I = 2, ONE = 3, J = 4, T = 5, COUNT = 6, SUM = 7, HASH = 8, PRIME = 9, A = 10, B = 11, C = 12, T2 = 13 };
  vm_len = 0;
  vm_emit(VM_LI, R0, 0, 0, 0);
  vm_emit(VM_LI, N, 0, 0, VM_SIEVE_LIMIT);
  vm_emit(VM_LI, ONE, 0, 0, 1);
  vm_emit(VM_LI, I, 0, 0, 0);
  u32 clear = vm_emit(VM_ST, R0, I, 0, 0);
  vm_emit(VM_ADDI, I, I, 0, 1);
  vm_emit(VM_BLT, I, N, 0, (i32)clear);
  vm_emit(VM_LI, I, 0, 0, 2);
  u32 outer = vm_emit(VM_MUL, J, I, I, 0);
  u32 to_count = vm_emit(VM_BLT, N, J, 0, 0); /* patched below */
  vm_emit(VM_LD, T, I, 0, 0);
  u32 skip_marking = vm_emit(VM_BNE, T, R0, 0, 0); /* patched below */
  u32 mark = vm_emit(VM_ST, ONE, J, 0, 0);
  vm_emit(VM_ADD, J, J, I, 0);
  vm_emit(VM_BLT, J, N, 0, (i32)mark);
  vm_prog[skip_marking].imm = (i32)vm_len;
  vm_emit(VM_ADDI, I, I, 0, 1);
  vm_emit(VM_JMP, 0, 0, 0, (i32)outer);
  vm_prog[to_count].imm = (i32)vm_len;
  vm_emit(VM_LI, I, 0, 0, 2);
  vm_emit(VM_LI, COUNT, 0, 0, 0);
  vm_emit(VM_LI, SUM, 0, 0, 0);
  vm_emit(VM_LI, HASH, 0, 0, 0x3c6ef372);
  vm_emit(VM_LI, PRIME, 0, 0, 16777619);
  u32 count = vm_emit(VM_LD, T, I, 0, 0);
  u32 composite = vm_emit(VM_BNE, T, R0, 0, 0); /* patched below */
  vm_emit(VM_ADDI, COUNT, COUNT, 0, 1);
  vm_emit(VM_ADD, SUM, SUM, I, 0);
  vm_emit(VM_XOR, HASH, HASH, I, 0);
  vm_emit(VM_MUL, HASH, HASH, PRIME, 0);
  vm_prog[composite].imm = (i32)vm_len;
  vm_emit(VM_ADDI, I, I, 0, 1);
  vm_emit(VM_BLT, I, N, 0, (i32)count);
  vm_emit(VM_LI, I, 0, 0, 0);
  vm_emit(VM_LI, N, 0, 0, VM_MIX_ROUNDS);
  vm_emit(VM_LI, A, 0, 0, 1);
  vm_emit(VM_LI, B, 0, 0, 2);
  u32 mix = vm_emit(VM_ADD, C, A, B, 0);
  vm_emit(VM_MOV, A, B, 0, 0);
  vm_emit(VM_SHRI, T, C, 0, 7);
  vm_emit(VM_SHLI, T2, C, 0, 3);
  vm_emit(VM_XOR, B, C, T, 0);
  vm_emit(VM_SUB, B, B, T2, 0);
  vm_emit(VM_AND, T, B, HASH, 0);
  vm_emit(VM_ST, T, I, 0, 0);
  vm_emit(VM_LD, T2, T, 0, 0);
  vm_emit(VM_ADD, B, B, T2, 0);
  vm_emit(VM_ADDI, I, I, 0, 1);
  vm_emit(VM_BLT, I, N, 0, (i32)mix);
  vm_emit(VM_HALT, 0, 0, 0, 0);
}

static NOINLINE u64 k_interp(void) {
  u64 r[16];
  for (int i = 0; i < 16; i++) r[i] = 0;
  const struct vm_insn *prog = vm_prog;
  u32 pc = 0;
  u64 executed = 0;
  for (;;) {
    const struct vm_insn *in = &prog[pc++];
    executed++;
    switch (in->op) {
      case VM_LI: r[in->a] = (u64)(i64)in->imm; break;
      case VM_MOV: r[in->a] = r[in->b]; break;
      case VM_ADD: r[in->a] = r[in->b] + r[in->c]; break;
      case VM_ADDI: r[in->a] = r[in->b] + (u64)(i64)in->imm; break;
      case VM_SUB: r[in->a] = r[in->b] - r[in->c]; break;
      case VM_MUL: r[in->a] = r[in->b] * r[in->c]; break;
      case VM_AND: r[in->a] = r[in->b] & r[in->c]; break;
      case VM_XOR: r[in->a] = r[in->b] ^ r[in->c]; break;
      case VM_SHRI: r[in->a] = r[in->b] >> (in->imm & 63); break;
      case VM_SHLI: r[in->a] = r[in->b] << (in->imm & 63); break;
      case VM_LD: r[in->a] = vm_mem[(r[in->b] + (u64)(i64)in->imm) & (VM_MEM_WORDS - 1)]; break;
      case VM_ST: vm_mem[(r[in->b] + (u64)(i64)in->imm) & (VM_MEM_WORDS - 1)] = (u32)r[in->a]; break;
      case VM_BLT: if (r[in->a] < r[in->b]) pc = (u32)in->imm; break;
      case VM_BNE: if (r[in->a] != r[in->b]) pc = (u32)in->imm; break;
      case VM_JMP: pc = (u32)in->imm; break;
      case VM_HALT: return fold(fold(fold(fold(r[6], r[7]), r[8]), r[11]), executed);
      default: return 0;
    }
  }
}

/* --------------------------------------------------------------- text --- */

#define TEXT_N 49152
#define VOCAB_N 200
#define WORD_TABLE_N 1024 /* power of two, comfortably above the vocabulary size */
#define PATTERN_N 6

static u8 text[TEXT_N];
static u8 vocab[VOCAB_N][12];
static u8 vocab_len[VOCAB_N];
static u32 crc_table[256];
static const u8 *patterns[PATTERN_N];
static u32 pattern_len[PATTERN_N];
static const u8 absent_pattern[] = "qqxqzq";

struct word_slot {
  u32 offset, len, count, hash;
};

static struct word_slot word_table[WORD_TABLE_N];

static void text_init(void) {
  for (u32 i = 0; i < 256; i++) {
    u32 c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    crc_table[i] = c;
  }
  u64 s = 0xc0ac29b7c97c50ddULL;
  for (u32 w = 0; w < VOCAB_N; w++) {
    u32 len = 2 + (u32)(rng_next(&s) % 9);
    for (u32 k = 0; k < len; k++) vocab[w][k] = (u8)('a' + rng_next(&s) % 26);
    vocab_len[w] = (u8)len;
  }
  /* Word frequencies skewed towards the start of the vocabulary, like text. */
  u32 pos = 0;
  while (pos < TEXT_N - 16) {
    u64 r = rng_next(&s);
    if ((r & 31) == 0) {
      u32 digits = 1 + (u32)((r >> 5) % 6);
      for (u32 k = 0; k < digits; k++) text[pos++] = (u8)('0' + (r >> (8 + 4 * k)) % 10);
    } else {
      u32 w = (u32)(((r >> 8) % VOCAB_N) * ((r >> 40) % VOCAB_N) / VOCAB_N);
      for (u32 k = 0; k < vocab_len[w]; k++) text[pos++] = vocab[w][k];
    }
    text[pos++] = (r & 0xf00000) == 0 ? '.' : ((r & 0xf00000) == 0x100000 ? ',' : ' ');
    if (text[pos - 1] != ' ') text[pos++] = ' ';
  }
  while (pos < TEXT_N) text[pos++] = ' ';
  for (u32 p = 0; p < PATTERN_N - 1; p++) {
    u32 w = p * 7 + 3;
    patterns[p] = vocab[w];
    pattern_len[p] = vocab_len[w];
  }
  patterns[PATTERN_N - 1] = absent_pattern;
  pattern_len[PATTERN_N - 1] = sizeof absent_pattern - 1;
}

static u32 crc32(const u8 *p, u32 n) {
  u32 c = 0xffffffffu;
  for (u32 i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

enum tok_state { TOK_SPACE, TOK_WORD, TOK_NUMBER, TOK_PUNCT };

/* Horspool's variant of Boyer-Moore: skips by a bad-character table. */
static u32 count_occurrences(const u8 *hay, u32 n, const u8 *needle, u32 m) {
  u32 shift[256];
  for (u32 i = 0; i < 256; i++) shift[i] = m;
  for (u32 i = 0; i + 1 < m; i++) shift[needle[i]] = m - 1 - i;
  u32 found = 0;
  u32 pos = 0;
  while (pos + m <= n) {
    u8 last = hay[pos + m - 1];
    if (last == needle[m - 1]) {
      u32 k = 0;
      while (k + 1 < m && hay[pos + k] == needle[k]) k++;
      found += k + 1 == m;
    }
    pos += shift[last];
  }
  return found;
}

static NOINLINE u64 k_text(void) {
  u64 h = crc32(text, TEXT_N);

  /* Tokenizer: a table-free state machine over character classes. */
  enum tok_state state = TOK_SPACE;
  u32 tokens[4] = {0, 0, 0, 0};
  u64 shape = 0;
  u32 start = 0;
  for (u32 i = 0; i < TEXT_N; i++) {
    u8 ch = text[i];
    enum tok_state next;
    if (ch >= 'a' && ch <= 'z') next = state == TOK_NUMBER ? TOK_NUMBER : TOK_WORD;
    else if (ch >= '0' && ch <= '9') next = state == TOK_WORD ? TOK_WORD : TOK_NUMBER;
    else if (ch == ' ') next = TOK_SPACE;
    else next = TOK_PUNCT;
    if (next != state) {
      if (state != TOK_SPACE) {
        tokens[state]++;
        shape = shape * 5 + (i - start) + state;
      }
      start = i;
      state = next;
    }
  }
  h = fold(h, shape);
  h = fold(h, (u64)tokens[TOK_WORD] << 32 | tokens[TOK_NUMBER]);
  h = fold(h, tokens[TOK_PUNCT]);

  /* Word frequencies in an open-addressing hash table keyed by FNV-1a. */
  for (u32 i = 0; i < WORD_TABLE_N; i++) word_table[i].len = 0;
  u32 distinct = 0, best = 0;
  u32 i = 0;
  while (i < TEXT_N) {
    while (i < TEXT_N && !(text[i] >= 'a' && text[i] <= 'z')) i++;
    u32 begin = i;
    u32 hash = 2166136261u;
    while (i < TEXT_N && text[i] >= 'a' && text[i] <= 'z') hash = (hash ^ text[i++]) * 16777619u;
    u32 len = i - begin;
    if (len == 0) break;
    u32 slot = hash & (WORD_TABLE_N - 1);
    for (;;) {
      struct word_slot *ws = &word_table[slot];
      if (ws->len == 0) {
        ws->offset = begin;
        ws->len = len;
        ws->hash = hash;
        ws->count = 1;
        distinct++;
        break;
      }
      if (ws->hash == hash && ws->len == len) {
        u32 k = 0;
        while (k < len && text[ws->offset + k] == text[begin + k]) k++;
        if (k == len) {
          if (++ws->count > best) best = ws->count;
          break;
        }
      }
      slot = (slot + 1) & (WORD_TABLE_N - 1);
    }
  }
  h = fold(h, (u64)distinct << 32 | best);

  for (u32 p = 0; p < PATTERN_N; p++) h = fold(h, count_occurrences(text, TEXT_N, patterns[p], pattern_len[p]));
  return h;
}

/* --------------------------------------------------------------- driver --- */

void bench_init(void) {
  matmul_init();
  chase_init();
  interp_init();
  text_init();
}

typedef u64 (*kernel_fn)(void);

static const kernel_fn kernels_table[BENCH_KERNEL_COUNT] = {k_alu, k_matmul, k_sort, k_chase, k_interp, k_text};

void bench_run(uint64_t iterations, uint32_t kernels, struct bench_report *report) {
  u64 checksum = 0;
  u32 failures = 0;
  report->first_bad_kernel = -1;
  report->first_bad_value = 0;
  for (u64 it = 0; it < iterations; it++) {
    for (int k = 0; k < BENCH_KERNEL_COUNT; k++) {
      if (!(kernels & (1u << k))) continue;
      u64 result = kernels_table[k]();
      if (result != bench_expected[k]) {
        if (failures++ == 0) {
          report->first_bad_kernel = k;
          report->first_bad_value = result;
        }
      }
      checksum = fold(checksum, result);
    }
  }
  report->checksum = checksum;
  report->failures = failures;
}
