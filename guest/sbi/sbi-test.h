// Shared by the SBI conformance programs (guest/sbi): SBI calls, CSR access, the result lines.
//
// Every check prints one line on the SBI debug console, which test/sbi/conformance.test.ts
// parses:  "SBI <check> ok", "SBI <check> FAIL <details>", "SBI <check> skip <reason>",
// "SBI info <key> <value>", and "SBI done" before the final SRST shutdown.
#ifndef SBI_TEST_H
#define SBI_TEST_H

#define MAX_HARTS 32
#define STACK_SHIFT 13 /* 8 KiB per hart */

#ifndef __ASSEMBLER__

typedef unsigned long ulong;

// ---- SBI spec v2.0: extension ids, function ids, error codes -----------------------------
#define EID_LEGACY_SET_TIMER 0x00
#define EID_LEGACY_PUTCHAR 0x01
#define EID_BASE 0x10
#define EID_TIME 0x54494D45
#define EID_IPI 0x735049
#define EID_RFENCE 0x52464E43
#define EID_HSM 0x48534D
#define EID_SRST 0x53525354
#define EID_DBCN 0x4442434E
#define EID_ABSENT 0x0ABCDEF0 /* in the firmware-specific range, which no one here implements */

#define SBI_SUCCESS 0
#define SBI_ERR_FAILED -1
#define SBI_ERR_NOT_SUPPORTED -2
#define SBI_ERR_INVALID_PARAM -3
#define SBI_ERR_DENIED -4
#define SBI_ERR_INVALID_ADDRESS -5
#define SBI_ERR_ALREADY_AVAILABLE -6

#define HSM_STARTED 0
#define HSM_STOPPED 1
#define HSM_START_PENDING 2
#define HSM_SUSPENDED 4

#define PARLEY_IMPL_ID 0x5041524C

struct sbiret {
  long error;
  long value;
};

static inline struct sbiret sbi_call(ulong eid, ulong fid, ulong a0, ulong a1, ulong a2, ulong a3, ulong a4) {
  register ulong r0 __asm__("a0") = a0;
  register ulong r1 __asm__("a1") = a1;
  register ulong r2 __asm__("a2") = a2;
  register ulong r3 __asm__("a3") = a3;
  register ulong r4 __asm__("a4") = a4;
  register ulong r6 __asm__("a6") = fid;
  register ulong r7 __asm__("a7") = eid;
  __asm__ volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r3), "r"(r4), "r"(r6), "r"(r7) : "memory");
  return (struct sbiret){(long)r0, (long)r1};
}
#define SBI0(e, f) sbi_call(e, f, 0, 0, 0, 0, 0)
#define SBI1(e, f, a) sbi_call(e, f, a, 0, 0, 0, 0)
#define SBI2(e, f, a, b) sbi_call(e, f, a, b, 0, 0, 0)
#define SBI3(e, f, a, b, c) sbi_call(e, f, a, b, c, 0, 0)

// ---- CSRs ----------------------------------------------------------------------------------
#define csr_read(csr) ({ ulong v_; __asm__ volatile("csrr %0, " #csr : "=r"(v_)); v_; })
#define csr_write(csr, v) __asm__ volatile("csrw " #csr ", %0" ::"r"((ulong)(v)) : "memory")
#define csr_set(csr, v) __asm__ volatile("csrs " #csr ", %0" ::"r"((ulong)(v)) : "memory")
#define csr_clear(csr, v) __asm__ volatile("csrc " #csr ", %0" ::"r"((ulong)(v)) : "memory")

#define SSTATUS_SIE (1UL << 1)
#define SIP_SSIP (1UL << 1)
#define SIP_STIP (1UL << 5)
#define SCAUSE_INTERRUPT (1UL << 63)
#define IRQ_S_SOFT 1
#define IRQ_S_TIMER 5

static inline ulong rdtime(void) {
  ulong t;
  __asm__ volatile("rdtime %0" : "=r"(t));
  return t;
}
static inline ulong hart_id(void) {
  ulong h;
  __asm__ volatile("mv %0, tp" : "=r"(h));
  return h;
}
static inline void wfi(void) { __asm__ volatile("wfi" ::: "memory"); }
static inline void mb(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }

// ---- the runtime (common.c) -----------------------------------------------------------------
extern void trap_vector(void);
extern void secondary_entry(void);

/** Set by platform_init: harts in the device tree, the timebase, whether the SEE is Parley. */
extern ulong nharts;
extern ulong ticks_per_ms;
extern int on_parley;

/** Per-hart interrupt counts kept by the trap handler. */
extern volatile ulong timer_irqs[MAX_HARTS];
extern volatile ulong soft_irqs[MAX_HARTS];
/** The first timer interrupt's view: sip.STIP on entry, after set_timer(-1), and the time. */
extern volatile int stip_on_entry[MAX_HARTS];
extern volatile int stip_after_clear[MAX_HARTS];
extern volatile ulong timer_irq_time[MAX_HARTS];

void platform_init(ulong hartid, const void *fdt);
void puts_(const char *s);
void put_hex(ulong v);
void put_dec(long v);
void check(const char *name, int ok);
void check_err(const char *name, struct sbiret ret, long want);
void check_val(const char *name, long got, long want);
void skip(const char *name, const char *why);
void info_hex(const char *key, ulong value);
void pass_or_fail_summary_and_shutdown(void) __attribute__((noreturn));
/** Polls until *counter != before or `ms` have passed (no wfi: a missed wake-up must not hang); true if it changed. */
int wait_change(volatile ulong *counter, ulong before, ulong ms);
void delay_ms(ulong ms);

#endif /* __ASSEMBLER__ */
#endif
