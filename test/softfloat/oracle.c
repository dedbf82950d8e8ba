/*
 * Reference oracle for the softfloat differential test: executes real RISC-V F/D instructions
 * (run under qemu-riscv64, whose floating point nobody in this project wrote).
 *
 * Input, one vector per line:   <op> <rm> <a hex> <b hex> <c hex>
 *   op is the instruction mnemonic (fadd.s, fcvt.w.d, fnmadd.d, ...), rm the RISC-V rounding
 *   mode 0..4, operands are raw bit patterns (binary32 / 32-bit integers in the low 32 bits).
 * Output, one line per vector:  <result hex> <fflags hex>
 *   32-bit results (binary32 values, W conversions, compares, fclass) are printed masked to 32
 *   bits; the register value is sign-extended, which the softfloat API leaves to its caller.
 * An unknown op prints "error <op>".
 *
 * Each instruction runs in one asm block that sets frm (fsrm; the instruction uses the dynamic
 * rounding mode), clears fflags, moves operands in with fmv (which NaN-boxes binary32), executes
 * and reads fflags back, so the compiler cannot move anything floating-point in between.
 *
 * Build: riscv64-linux-gnu-gcc -O2 -static -o oracle oracle.c
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t (*op_fn)(uint64_t a, uint64_t b, uint64_t c, uint64_t rm, uint64_t *flags);

#define PROLOGUE "fsrm %[rm]\n\tcsrw fflags, zero\n\t"
#define EPILOGUE "frflags %[f]\n\t"

/* float op float, float -> float; MV is "w" or "d" */
#define BINARY(NAME, INSN, MV)                                                                 \
  static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, uint64_t rm, uint64_t *flags) {     \
    uint64_t r, f;                                                                             \
    (void)c;                                                                                   \
    __asm__ volatile(PROLOGUE "fmv." MV ".x ft0, %[a]\n\tfmv." MV ".x ft1, %[b]\n\t" INSN     \
                              " ft2, ft0, ft1\n\tfmv.x." MV " %[r], ft2\n\t" EPILOGUE         \
                     : [r] "=&r"(r), [f] "=&r"(f)                                              \
                     : [a] "r"(a), [b] "r"(b), [rm] "r"(rm)                                    \
                     : "ft0", "ft1", "ft2");                                                   \
    *flags = f;                                                                                \
    return r;                                                                                  \
  }

/* fused multiply-add family: float, float, float -> float */
#define TERNARY(NAME, INSN, MV)                                                                \
  static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, uint64_t rm, uint64_t *flags) {     \
    uint64_t r, f;                                                                             \
    __asm__ volatile(PROLOGUE "fmv." MV ".x ft0, %[a]\n\tfmv." MV ".x ft1, %[b]\n\tfmv." MV  \
                              ".x ft2, %[c]\n\t" INSN                                          \
                              " ft3, ft0, ft1, ft2\n\tfmv.x." MV " %[r], ft3\n\t" EPILOGUE    \
                     : [r] "=&r"(r), [f] "=&r"(f)                                              \
                     : [a] "r"(a), [b] "r"(b), [c] "r"(c), [rm] "r"(rm)                        \
                     : "ft0", "ft1", "ft2", "ft3");                                            \
    *flags = f;                                                                                \
    return r;                                                                                  \
  }

/* float -> float (sqrt, precision conversions); MVI/MVO are the input/output widths */
#define UNARY(NAME, INSN, MVI, MVO)                                                            \
  static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, uint64_t rm, uint64_t *flags) {     \
    uint64_t r, f;                                                                             \
    (void)b, (void)c;                                                                          \
    __asm__ volatile(PROLOGUE "fmv." MVI ".x ft0, %[a]\n\t" INSN                              \
                              " ft2, ft0\n\tfmv.x." MVO " %[r], ft2\n\t" EPILOGUE             \
                     : [r] "=&r"(r), [f] "=&r"(f)                                              \
                     : [a] "r"(a), [rm] "r"(rm)                                                \
                     : "ft0", "ft2");                                                          \
    *flags = f;                                                                                \
    return r;                                                                                  \
  }

/* float, float -> integer register (compares) */
#define COMPARE(NAME, INSN, MV)                                                                \
  static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, uint64_t rm, uint64_t *flags) {     \
    uint64_t r, f;                                                                             \
    (void)c;                                                                                   \
    __asm__ volatile(PROLOGUE "fmv." MV ".x ft0, %[a]\n\tfmv." MV ".x ft1, %[b]\n\t" INSN     \
                              " %[r], ft0, ft1\n\t" EPILOGUE                                   \
                     : [r] "=&r"(r), [f] "=&r"(f)                                              \
                     : [a] "r"(a), [b] "r"(b), [rm] "r"(rm)                                    \
                     : "ft0", "ft1");                                                          \
    *flags = f;                                                                                \
    return r;                                                                                  \
  }

/* float -> integer register (fcvt to integer, fclass) */
#define TO_INT(NAME, INSN, MV)                                                                 \
  static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, uint64_t rm, uint64_t *flags) {     \
    uint64_t r, f;                                                                             \
    (void)b, (void)c;                                                                          \
    __asm__ volatile(PROLOGUE "fmv." MV ".x ft0, %[a]\n\t" INSN " %[r], ft0\n\t" EPILOGUE     \
                     : [r] "=&r"(r), [f] "=&r"(f)                                              \
                     : [a] "r"(a), [rm] "r"(rm)                                                \
                     : "ft0");                                                                 \
    *flags = f;                                                                                \
    return r;                                                                                  \
  }

/* integer register -> float (fcvt from integer) */
#define FROM_INT(NAME, INSN, MV)                                                               \
  static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, uint64_t rm, uint64_t *flags) {     \
    uint64_t r, f;                                                                             \
    (void)b, (void)c;                                                                          \
    __asm__ volatile(PROLOGUE INSN " ft0, %[a]\n\tfmv.x." MV " %[r], ft0\n\t" EPILOGUE        \
                     : [r] "=&r"(r), [f] "=&r"(f)                                              \
                     : [a] "r"(a), [rm] "r"(rm)                                                \
                     : "ft0");                                                                 \
    *flags = f;                                                                                \
    return r;                                                                                  \
  }

#define FORMAT_OPS(S, MV)                                                                      \
  BINARY(op_fadd_##S, "fadd." #S, MV)                                                          \
  BINARY(op_fsub_##S, "fsub." #S, MV)                                                          \
  BINARY(op_fmul_##S, "fmul." #S, MV)                                                          \
  BINARY(op_fdiv_##S, "fdiv." #S, MV)                                                          \
  BINARY(op_fmin_##S, "fmin." #S, MV)                                                          \
  BINARY(op_fmax_##S, "fmax." #S, MV)                                                          \
  UNARY(op_fsqrt_##S, "fsqrt." #S, MV, MV)                                                     \
  TERNARY(op_fmadd_##S, "fmadd." #S, MV)                                                       \
  TERNARY(op_fmsub_##S, "fmsub." #S, MV)                                                       \
  TERNARY(op_fnmsub_##S, "fnmsub." #S, MV)                                                     \
  TERNARY(op_fnmadd_##S, "fnmadd." #S, MV)                                                     \
  COMPARE(op_feq_##S, "feq." #S, MV)                                                           \
  COMPARE(op_flt_##S, "flt." #S, MV)                                                           \
  COMPARE(op_fle_##S, "fle." #S, MV)                                                           \
  TO_INT(op_fclass_##S, "fclass." #S, MV)                                                      \
  TO_INT(op_fcvt_w_##S, "fcvt.w." #S, MV)                                                      \
  TO_INT(op_fcvt_wu_##S, "fcvt.wu." #S, MV)                                                    \
  TO_INT(op_fcvt_l_##S, "fcvt.l." #S, MV)                                                      \
  TO_INT(op_fcvt_lu_##S, "fcvt.lu." #S, MV)                                                    \
  FROM_INT(op_fcvt_##S##_w, "fcvt." #S ".w", MV)                                               \
  FROM_INT(op_fcvt_##S##_wu, "fcvt." #S ".wu", MV)                                             \
  FROM_INT(op_fcvt_##S##_l, "fcvt." #S ".l", MV)                                               \
  FROM_INT(op_fcvt_##S##_lu, "fcvt." #S ".lu", MV)

FORMAT_OPS(s, "w")
FORMAT_OPS(d, "d")
UNARY(op_fcvt_d_s, "fcvt.d.s", "w", "d")
UNARY(op_fcvt_s_d, "fcvt.s.d", "d", "w")

struct op {
  const char *name;
  op_fn fn;
  int narrow; /* result is 32 bits wide */
};

#define FORMAT_TABLE(S, NARROW)                                                                \
  {"fadd." #S, op_fadd_##S, NARROW}, {"fsub." #S, op_fsub_##S, NARROW},                        \
      {"fmul." #S, op_fmul_##S, NARROW}, {"fdiv." #S, op_fdiv_##S, NARROW},                    \
      {"fmin." #S, op_fmin_##S, NARROW}, {"fmax." #S, op_fmax_##S, NARROW},                    \
      {"fsqrt." #S, op_fsqrt_##S, NARROW}, {"fmadd." #S, op_fmadd_##S, NARROW},                \
      {"fmsub." #S, op_fmsub_##S, NARROW}, {"fnmsub." #S, op_fnmsub_##S, NARROW},              \
      {"fnmadd." #S, op_fnmadd_##S, NARROW}, {"feq." #S, op_feq_##S, 1},                       \
      {"flt." #S, op_flt_##S, 1}, {"fle." #S, op_fle_##S, 1},                                  \
      {"fclass." #S, op_fclass_##S, 1}, {"fcvt.w." #S, op_fcvt_w_##S, 1},                      \
      {"fcvt.wu." #S, op_fcvt_wu_##S, 1}, {"fcvt.l." #S, op_fcvt_l_##S, 0},                    \
      {"fcvt.lu." #S, op_fcvt_lu_##S, 0}, {"fcvt." #S ".w", op_fcvt_##S##_w, NARROW},          \
      {"fcvt." #S ".wu", op_fcvt_##S##_wu, NARROW}, {"fcvt." #S ".l", op_fcvt_##S##_l, NARROW}, \
      {"fcvt." #S ".lu", op_fcvt_##S##_lu, NARROW}

static const struct op ops[] = {
    FORMAT_TABLE(s, 1),
    FORMAT_TABLE(d, 0),
    {"fcvt.d.s", op_fcvt_d_s, 0},
    {"fcvt.s.d", op_fcvt_s_d, 1},
};

int main(void) {
  static char outbuf[1 << 16];
  setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  char name[32];
  unsigned rm;
  unsigned long long a, b, c;
  const struct op *cached = NULL; /* vectors usually arrive grouped by op */
  while (scanf("%31s %u %llx %llx %llx", name, &rm, &a, &b, &c) == 5) {
    const struct op *op = NULL;
    if (cached && strcmp(cached->name, name) == 0) {
      op = cached;
    } else {
      for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].name, name) == 0) {
          op = &ops[i];
          break;
        }
      }
    }
    if (!op || rm > 4) {
      printf("error %s\n", name);
      continue;
    }
    cached = op;
    uint64_t flags;
    uint64_t r = op->fn(a, b, c, rm, &flags);
    if (op->narrow) r &= 0xffffffffu;
    printf("%llx %llx\n", (unsigned long long)r, (unsigned long long)flags);
  }
  fflush(stdout);
  return 0;
}
