// SBI conformance, one hart: BASE (§4), TIME (§6) with the legacy set_timer (§5.1), DBCN (§12)
// and SRST (§10), checked against the SBI v2.0 text. Ends with an SRST shutdown.
#include "sbi-test.h"

static void base_checks(void) {
  struct sbiret r = SBI0(EID_BASE, 0);
  check_err("BASE.get_spec_version", r, SBI_SUCCESS);
  // §4.1: minor in bits 0..23, major in bits 24..30, bit 31 must be 0 (and so all above it).
  check("BASE.get_spec_version.bit31_zero", (r.value >> 31) == 0);
  info_hex("spec_version", r.value);
  r = SBI0(EID_BASE, 1);
  check_err("BASE.get_impl_id", r, SBI_SUCCESS);
  info_hex("impl_id", r.value);
  r = SBI0(EID_BASE, 2);
  check_err("BASE.get_impl_version", r, SBI_SUCCESS);
  info_hex("impl_version", r.value);

  // §4.4: 0 when the extension is not available, else 1 or an extension-defined non-zero value.
  static const struct { const char *name; ulong eid; } present[] = {
      {"BASE.probe_extension.BASE", EID_BASE}, {"BASE.probe_extension.TIME", EID_TIME},
      {"BASE.probe_extension.IPI", EID_IPI},   {"BASE.probe_extension.RFENCE", EID_RFENCE},
      {"BASE.probe_extension.HSM", EID_HSM},   {"BASE.probe_extension.SRST", EID_SRST},
      {"BASE.probe_extension.DBCN", EID_DBCN},
  };
  for (unsigned i = 0; i < sizeof present / sizeof present[0]; i++) {
    r = SBI1(EID_BASE, 3, present[i].eid);
    check(present[i].name, r.error == SBI_SUCCESS && r.value != 0);
  }
  r = SBI1(EID_BASE, 3, EID_ABSENT);
  check("BASE.probe_extension.absent", r.error == SBI_SUCCESS && r.value == 0);
  r = SBI1(EID_BASE, 3, 0x0f); // legacy range 0x09..0x0F is reserved (§5)
  check("BASE.probe_extension.reserved_legacy", r.error == SBI_SUCCESS && r.value == 0);
  info_hex("probe_legacy_set_timer", SBI1(EID_BASE, 3, EID_LEGACY_SET_TIMER).value);

  // §4.5-4.7: always succeed; any value legal for the CSR.
  r = SBI0(EID_BASE, 4);
  check_err("BASE.get_mvendorid", r, SBI_SUCCESS);
  info_hex("mvendorid", r.value);
  r = SBI0(EID_BASE, 5);
  check_err("BASE.get_marchid", r, SBI_SUCCESS);
  info_hex("marchid", r.value);
  r = SBI0(EID_BASE, 6);
  check_err("BASE.get_mimpid", r, SBI_SUCCESS);
  info_hex("mimpid", r.value);

  // §3: an unsupported EID or FID must return SBI_ERR_NOT_SUPPORTED.
  check_err("BASE.unknown_fid", SBI0(EID_BASE, 0x7fff), SBI_ERR_NOT_SUPPORTED);
  check_err("BASE.unknown_eid", SBI0(EID_ABSENT, 0), SBI_ERR_NOT_SUPPORTED);
}

static int stip(void) { return (csr_read(sip) & SIP_STIP) != 0; }

/** Polls sip.STIP until it is `want` or `ms` pass; true when it got there. */
static int wait_stip(int want, ulong ms) {
  ulong end = rdtime() + ms * ticks_per_ms;
  while (stip() != want)
    if (rdtime() >= end) return 0;
  return 1;
}

static void set_timer(ulong when) { SBI1(EID_TIME, 0, when); }

static void time_checks(void) {
  ulong h = hart_id();
  csr_clear(sstatus, SSTATUS_SIE);
  csr_write(sie, SIP_STIP);

  // The interrupt arrives, not before stime_value, once; the handler sees sip.STIP set and
  // set_timer(-1) clears it (§6.1: "clear the pending timer interrupt bit as well").
  ulong before = timer_irqs[h];
  ulong target = rdtime() + 2 * ticks_per_ms;
  struct sbiret r = SBI1(EID_TIME, 0, target);
  check_err("TIME.set_timer", r, SBI_SUCCESS);
  csr_set(sstatus, SSTATUS_SIE);
  check("TIME.set_timer.interrupt_arrives", wait_change(timer_irqs + h, before, 2000));
  check("TIME.set_timer.not_before_stime_value", timer_irq_time[h] >= target);
  check("TIME.set_timer.stip_set_in_handler", stip_on_entry[h]);
  check("TIME.set_timer.minus_one_clears_stip", !stip_after_clear[h]);
  delay_ms(5);
  check_val("TIME.set_timer.exactly_once", (long)(timer_irqs[h] - before), 1);

  // stime_value 0 is in the past: pending at once; taken as soon as sstatus.SIE allows it.
  csr_clear(sstatus, SSTATUS_SIE);
  before = timer_irqs[h];
  set_timer(0);
  check("TIME.set_timer.zero_pending_at_once", wait_stip(1, 1));
  csr_set(sstatus, SSTATUS_SIE);
  check_val("TIME.set_timer.zero_delivered", (long)(timer_irqs[h] - before), 1);

  // Masked by sie.STIE: pending but not taken; taken when enabled.
  csr_clear(sie, SIP_STIP);
  before = timer_irqs[h];
  set_timer(rdtime() + ticks_per_ms);
  delay_ms(4);
  check_val("TIME.masked.not_taken", (long)(timer_irqs[h] - before), 0);
  check("TIME.masked.pending", stip());
  csr_set(sie, SIP_STIP);
  __asm__ volatile("nop; nop; nop; nop");
  check_val("TIME.masked.delivered_when_enabled", (long)(timer_irqs[h] - before), 1);

  // A far-future stime_value (and -1) clears a pending timer interrupt at once.
  csr_clear(sstatus, SSTATUS_SIE);
  set_timer(0);
  int was = wait_stip(1, 10);
  set_timer(rdtime() + 1000UL * 1000 * ticks_per_ms);
  check("TIME.far_future_clears_pending", was && !stip());
  set_timer(0);
  was = wait_stip(1, 10);
  set_timer(~0UL);
  check("TIME.minus_one_clears_pending", was && !stip());
  before = timer_irqs[h];
  csr_set(sstatus, SSTATUS_SIE);
  delay_ms(3);
  check_val("TIME.minus_one_no_interrupt", (long)(timer_irqs[h] - before), 0);

  // The legacy set_timer (§5.1) arms the same timer.
  if (SBI1(EID_BASE, 3, EID_LEGACY_SET_TIMER).value != 0) {
    before = timer_irqs[h];
    target = rdtime() + ticks_per_ms;
    SBI1(EID_LEGACY_SET_TIMER, 0, target);
    check("TIME.legacy_set_timer.interrupt_arrives", wait_change(timer_irqs + h, before, 2000));
    delay_ms(3);
    check_val("TIME.legacy_set_timer.exactly_once", (long)(timer_irqs[h] - before), 1);
  } else {
    skip("TIME.legacy_set_timer", "legacy extension absent");
  }
  csr_clear(sstatus, SSTATUS_SIE);
  csr_write(sie, 0);
  set_timer(~0UL);
}

static char dbcn_buffer[64];

static void dbcn_checks(void) {
  // console_write (§12.1): the line below reaches the console through it; value = bytes written.
  static const char line[] = "SBI DBCN.console_write.text ok\n";
  ulong len = sizeof line - 1;
  struct sbiret r = SBI3(EID_DBCN, 0, len, (ulong)line, 0);
  check_err("DBCN.console_write", r, SBI_SUCCESS);
  check("DBCN.console_write.value", r.value >= 0 && (ulong)r.value <= len);
  if (on_parley) check_val("DBCN.console_write.value_all", r.value, (long)len);

  // console_write_byte (§12.3): the line below, one byte per call.
  static const char bytes[] = "SBI DBCN.console_write_byte.text ok\n";
  long worst = SBI_SUCCESS;
  for (unsigned i = 0; i < sizeof bytes - 1; i++) {
    r = SBI1(EID_DBCN, 2, (unsigned char)bytes[i]);
    if (r.error != SBI_SUCCESS) worst = r.error;
  }
  check_val("DBCN.console_write_byte", worst, SBI_SUCCESS);

  // console_read (§12.2): no input is queued, so 0..num_bytes bytes and success.
  r = SBI3(EID_DBCN, 1, sizeof dbcn_buffer, (ulong)dbcn_buffer, 0);
  check_err("DBCN.console_read", r, SBI_SUCCESS);
  check("DBCN.console_read.value", r.value >= 0 && (ulong)r.value <= sizeof dbcn_buffer);

  // Bad memory (§3.2 via §12.1/§12.2: SBI_ERR_INVALID_PARAM). base_addr_hi holds address bits
  // 64..127 on RV64: non-zero names memory no RV64 hart can reach.
  check_err("DBCN.console_write.addr_hi", SBI3(EID_DBCN, 0, 4, (ulong)line, 1), SBI_ERR_INVALID_PARAM);
  check_err("DBCN.console_read.addr_hi", SBI3(EID_DBCN, 1, 4, (ulong)dbcn_buffer, 1), SBI_ERR_INVALID_PARAM);
  if (on_parley) {
    // Not RAM, and a range wrapping past 2^64. (OpenSBI's root domain lets S-mode name any
    // address outside the firmware, and then faults in M-mode reading it: Parley only.)
    check_err("DBCN.console_write.not_ram", SBI3(EID_DBCN, 0, 4, 0x1000, 0), SBI_ERR_INVALID_PARAM);
    check_err("DBCN.console_read.not_ram", SBI3(EID_DBCN, 1, 4, 0x1000, 0), SBI_ERR_INVALID_PARAM);
    check_err("DBCN.console_write.wraps", SBI3(EID_DBCN, 0, 0x2000, ~0UL - 0xfff, 0), SBI_ERR_INVALID_PARAM);
    check_err("DBCN.console_read.past_ram", SBI3(EID_DBCN, 1, ~0UL >> 1, (ulong)dbcn_buffer, 0), SBI_ERR_INVALID_PARAM);
  } else {
    skip("DBCN.bad_addresses", "address validity outside RAM is the firmware's domain policy");
  }
}

static void srst_checks(void) {
  // §10.1: reserved (or unimplemented platform-specific) type or reason: SBI_ERR_INVALID_PARAM.
  check_err("SRST.reserved_type", SBI2(EID_SRST, 0, 3, 0), SBI_ERR_INVALID_PARAM);
  check_err("SRST.reserved_type_high", SBI2(EID_SRST, 0, 0xefffffff, 0), SBI_ERR_INVALID_PARAM);
  check_err("SRST.reserved_reason", SBI2(EID_SRST, 0, 0, 2), SBI_ERR_INVALID_PARAM);
  check_err("SRST.reserved_reason_high", SBI2(EID_SRST, 0, 0, 0xdfffffff), SBI_ERR_INVALID_PARAM);
  check_err("SRST.unknown_fid", SBI2(EID_SRST, 1, 0, 0), SBI_ERR_NOT_SUPPORTED);
}

void boot_main(ulong hartid, const void *fdt) {
  platform_init(hartid, fdt);
  base_checks();
  time_checks();
  dbcn_checks();
  srst_checks();
  pass_or_fail_summary_and_shutdown();
}
