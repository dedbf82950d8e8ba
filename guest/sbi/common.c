// The runtime of the SBI conformance programs: console output through the SBI debug console,
// result lines, the device tree (harts, timebase), and the S-mode trap handler.
#include "sbi-test.h"

ulong nharts = 1;
ulong ticks_per_ms = 10000;
int on_parley;
volatile ulong timer_irqs[MAX_HARTS];
volatile ulong soft_irqs[MAX_HARTS];
volatile int stip_on_entry[MAX_HARTS];
volatile int stip_after_clear[MAX_HARTS];
volatile ulong timer_irq_time[MAX_HARTS];

static int have_dbcn;
static ulong failures;

// The compiler may emit calls to these even in freestanding code.
void *memset(void *d, int c, unsigned long n) {
  unsigned char *p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
void *memcpy(void *d, const void *s, unsigned long n) {
  unsigned char *p = d;
  const unsigned char *q = s;
  while (n--) *p++ = *q++;
  return d;
}

static ulong strlen_(const char *s) {
  ulong n = 0;
  while (s[n]) n++;
  return n;
}

/** Writes through DBCN console_write (looping on partial writes), else legacy console_putchar. */
static void write_bytes(const char *s, ulong n) {
  if (!have_dbcn) {
    for (ulong i = 0; i < n; i++) SBI1(EID_LEGACY_PUTCHAR, 0, (unsigned char)s[i]);
    return;
  }
  while (n > 0) {
    struct sbiret r = SBI3(EID_DBCN, 0, n, (ulong)s, 0);
    if (r.error != SBI_SUCCESS) return;
    if ((ulong)r.value > n) return;
    s += r.value;
    n -= r.value;
  }
}

void puts_(const char *s) { write_bytes(s, strlen_(s)); }

void put_hex(ulong v) {
  char buf[19];
  int i = 18;
  buf[i] = 0;
  do {
    buf[--i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  buf[--i] = 'x';
  buf[--i] = '0';
  puts_(buf + i);
}

void put_dec(long v) {
  char buf[24];
  int i = 23;
  ulong u = v < 0 ? -(ulong)v : (ulong)v;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) buf[--i] = '-';
  puts_(buf + i);
}

static void line_start(const char *name) {
  puts_("SBI ");
  puts_(name);
}

void check(const char *name, int ok) {
  line_start(name);
  if (ok) {
    puts_(" ok\n");
  } else {
    failures++;
    puts_(" FAIL\n");
  }
}

void check_val(const char *name, long got, long want) {
  line_start(name);
  if (got == want) {
    puts_(" ok\n");
    return;
  }
  failures++;
  puts_(" FAIL got ");
  put_dec(got);
  puts_(" want ");
  put_dec(want);
  puts_("\n");
}

void check_err(const char *name, struct sbiret ret, long want) { check_val(name, ret.error, want); }

void skip(const char *name, const char *why) {
  line_start(name);
  puts_(" skip ");
  puts_(why);
  puts_("\n");
}

void info_hex(const char *key, ulong value) {
  puts_("SBI info ");
  puts_(key);
  puts_(" ");
  put_hex(value);
  puts_("\n");
}

void pass_or_fail_summary_and_shutdown(void) {
  puts_("SBI done failures ");
  put_dec((long)failures);
  puts_("\n");
  SBI2(EID_SRST, 0, 0, 0); // shutdown, no reason: does not return on success (SBI spec §10.1)
  puts_("SBI SRST.shutdown FAIL returned\n");
  for (;;) wfi();
}

void delay_ms(ulong ms) {
  ulong end = rdtime() + ms * ticks_per_ms;
  while (rdtime() < end) {
  }
}

int wait_change(volatile ulong *counter, ulong before, ulong ms) {
  ulong end = rdtime() + ms * ticks_per_ms;
  while (*counter == before) {
    if (rdtime() >= end) return 0;
  }
  return 1;
}

// ---- the device tree (devicetree specification, chapter 5: the flattened format) -------------
static unsigned be32(const void *p) {
  const unsigned char *b = p;
  return (unsigned)b[0] << 24 | (unsigned)b[1] << 16 | (unsigned)b[2] << 8 | b[3];
}

static int str_eq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

static int starts_with(const char *s, const char *prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}

/** Counts /cpus/cpu@N nodes and reads /cpus/timebase-frequency. */
static void parse_fdt(const void *fdt) {
  const unsigned char *base = fdt;
  if (be32(base) != 0xd00dfeed) return;
  const unsigned char *p = base + be32(base + 8);
  const char *strings = (const char *)base + be32(base + 12);
  int depth = 0, in_cpus = 0;
  ulong cpus = 0;
  for (;;) {
    unsigned token = be32(p);
    p += 4;
    if (token == 1) { // FDT_BEGIN_NODE
      const char *name = (const char *)p;
      depth++;
      if (depth == 2) in_cpus = str_eq(name, "cpus");
      if (depth == 3 && in_cpus && starts_with(name, "cpu@")) cpus++;
      p += (strlen_(name) + 4) & ~3UL;
    } else if (token == 2) { // FDT_END_NODE
      depth--;
    } else if (token == 3) { // FDT_PROP
      unsigned len = be32(p), nameoff = be32(p + 4);
      if (depth == 2 && in_cpus && len == 4 && str_eq(strings + nameoff, "timebase-frequency")) ticks_per_ms = be32(p + 8) / 1000;
      p += 8 + ((len + 3) & ~3U);
    } else if (token == 4) { // FDT_NOP
    } else {
      break; // FDT_END or garbage
    }
  }
  if (cpus > 0) nharts = cpus > MAX_HARTS ? MAX_HARTS : cpus;
}

void platform_init(ulong hartid, const void *fdt) {
  have_dbcn = SBI1(EID_BASE, 3, EID_DBCN).value != 0;
  parse_fdt(fdt);
  on_parley = SBI0(EID_BASE, 1).value == PARLEY_IMPL_ID;
  csr_write(stvec, (ulong)trap_vector);
  puts_("SBI start\n");
  info_hex("boot_hart", hartid);
  info_hex("harts", nharts);
  info_hex("ticks_per_ms", ticks_per_ms);
}

// ---- traps -------------------------------------------------------------------------------------
static void fatal_trap(ulong cause, ulong epc, ulong tval) {
  puts_("SBI trap FAIL hart ");
  put_dec((long)hart_id());
  puts_(" scause ");
  put_hex(cause);
  puts_(" sepc ");
  put_hex(epc);
  puts_(" stval ");
  put_hex(tval);
  puts_("\n");
  SBI2(EID_SRST, 0, 0, 1); // shutdown, system failure
  for (;;) wfi();
}

/**
 * Timer: counts it, notes whether sip.STIP was set on entry, then set_timer(-1) -- the spec's
 * way to clear the pending bit (§6.1) -- and notes whether it was. Software: counts it and
 * clears sip.SSIP (an IPI is SSIP, §7.1). Anything else is a bug in the program or the SEE.
 */
void trap_handler(ulong cause, ulong epc, ulong tval) {
  ulong h = hart_id();
  if (cause == (SCAUSE_INTERRUPT | IRQ_S_TIMER)) {
    if (timer_irqs[h] == 0) {
      stip_on_entry[h] = (csr_read(sip) & SIP_STIP) != 0;
      timer_irq_time[h] = rdtime();
    }
    SBI1(EID_TIME, 0, ~0UL);
    if (timer_irqs[h] == 0) stip_after_clear[h] = (csr_read(sip) & SIP_STIP) != 0;
    timer_irqs[h]++;
    if (csr_read(sip) & SIP_STIP) {
      // Still pending after set_timer(-1): the interrupt would be taken again at once, forever.
      static int reported;
      if (!reported++) check("TIME.handler_clears_stip", 0);
      csr_clear(sie, SIP_STIP);
    }
    return;
  }
  if (cause == (SCAUSE_INTERRUPT | IRQ_S_SOFT)) {
    csr_clear(sip, SIP_SSIP);
    soft_irqs[h]++;
    return;
  }
  fatal_trap(cause, epc, tval);
}

/** Programs without other harts: a started hart only parks. */
__attribute__((weak)) void secondary_main(ulong hartid, ulong opaque) {
  (void)hartid;
  (void)opaque;
  for (;;) wfi();
}
