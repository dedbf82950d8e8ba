// SBI conformance across harts: HSM (§9), IPI (§7) and RFENCE (§8), with the hart-list rules of
// §3.1, checked against the SBI v2.0 text. The boot hart drives; the harts it starts run
// secondary_main, which reports what it saw and serves commands. Ends with an SRST shutdown.
#include "sbi-test.h"

#define OPAQUE(h, round) (0x5eed0000UL + ((ulong)(round) << 8) + (h))

enum { CMD_NONE, CMD_RUN_CODE, CMD_READ_VA, CMD_PAGING_OFF, CMD_STOP, CMD_SUSPEND };

// What each started hart saw on entry (§9.1: a0 = hartid, a1 = opaque, satp = 0, sstatus.SIE = 0).
static volatile ulong entry_a0[MAX_HARTS], entry_a1[MAX_HARTS], entry_satp[MAX_HARTS], entry_sie[MAX_HARTS];
static volatile ulong entries[MAX_HARTS];
// Commands to a started hart, and its answers.
static volatile ulong cmd[MAX_HARTS], cmd_arg[MAX_HARTS], cmd_result[MAX_HARTS], cmd_done[MAX_HARTS];
static volatile long stop_error[MAX_HARTS], suspend_error[MAX_HARTS];

static ulong self;

static struct sbiret hsm_status(ulong h) { return SBI1(EID_HSM, 2, h); }
static struct sbiret send_ipi(ulong mask, ulong base) { return SBI2(EID_IPI, 0, mask, base); }
static ulong bit(ulong h) { return 1UL << h; }

/** Polls get_status until it returns `want` or `ms` pass. */
static int wait_status(ulong h, long want, ulong ms) {
  ulong end = rdtime() + ms * ticks_per_ms;
  for (;;) {
    struct sbiret r = hsm_status(h);
    if (r.error == SBI_SUCCESS && r.value == want) return 1;
    if (rdtime() >= end) return 0;
  }
}

// ---- the started harts ---------------------------------------------------------------------------
static unsigned code_buffer[4] __attribute__((aligned(16)));
typedef long (*code_fn)(void);

/** li a0, value; ret */
static void write_code(long value) {
  code_buffer[0] = ((unsigned)value << 20) | 0x513;
  code_buffer[1] = 0x8067;
  mb();
}

#define TEST_VA 0xC0000000UL

void secondary_main(ulong hartid, ulong opaque) {
  ulong h = hartid;
  entry_satp[h] = csr_read(satp);
  entry_sie[h] = csr_read(sstatus) & SSTATUS_SIE;
  entry_a0[h] = hartid;
  entry_a1[h] = opaque;
  csr_write(stvec, (ulong)trap_vector);
  csr_write(sie, SIP_SSIP);
  csr_set(sstatus, SSTATUS_SIE);
  mb();
  entries[h]++;
  for (;;) {
    // wfi with SIE clear: an IPI arriving between the check and wfi still ends the wfi.
    csr_clear(sstatus, SSTATUS_SIE);
    if (cmd[h] == CMD_NONE) wfi();
    csr_set(sstatus, SSTATUS_SIE);
    ulong c = cmd[h];
    if (c == CMD_NONE) continue;
    mb();
    switch (c) {
    case CMD_RUN_CODE:
      cmd_result[h] = ((code_fn)(void *)code_buffer)();
      break;
    case CMD_READ_VA:
      csr_write(satp, cmd_arg[h]);
      cmd_result[h] = *(volatile ulong *)TEST_VA;
      break;
    case CMD_PAGING_OFF:
      csr_write(satp, 0);
      __asm__ volatile("sfence.vma" ::: "memory");
      break;
    case CMD_STOP:
      cmd[h] = CMD_NONE;
      mb();
      stop_error[h] = SBI0(EID_HSM, 1).error; // returns only on failure
      cmd_done[h]++;
      continue;
    case CMD_SUSPEND: {
      // Retentive suspend, woken by an IPI: sie.SSIE on, sstatus.SIE off so the wake-up is seen
      // only after the call returns.
      cmd[h] = CMD_NONE;
      mb();
      cmd_done[h]++;
      csr_clear(sstatus, SSTATUS_SIE);
      suspend_error[h] = SBI3(EID_HSM, 3, 0, 0, 0).error;
      mb();
      cmd_result[h] = csr_read(sip) & SIP_SSIP;
      cmd_done[h]++;
      csr_set(sstatus, SSTATUS_SIE);
      continue;
    }
    }
    mb();
    cmd[h] = CMD_NONE;
    mb();
    cmd_done[h]++;
  }
}

/** Gives hart h a command and kicks it with an IPI; true when it was done within a second. */
static int command(ulong h, ulong c, ulong arg) {
  ulong done = cmd_done[h];
  cmd_arg[h] = arg;
  mb();
  cmd[h] = c;
  mb();
  send_ipi(1, h);
  return wait_change(cmd_done + h, done, 1000);
}

// ---- HSM -------------------------------------------------------------------------------------------
static void hsm_start_checks(void) {
  check_val("HSM.get_status.self", hsm_status(self).value, HSM_STARTED);
  int stopped = 1;
  for (ulong h = 0; h < nharts; h++)
    if (h != self && hsm_status(h).value != HSM_STOPPED) stopped = 0;
  if (nharts > 1) check("HSM.get_status.others_stopped", stopped);
  check_err("HSM.get_status.invalid_hart", hsm_status(nharts), SBI_ERR_INVALID_PARAM);
  check_err("HSM.get_status.invalid_hart_minus_one", hsm_status(~0UL), SBI_ERR_INVALID_PARAM);
  check_err("HSM.hart_start.self", SBI3(EID_HSM, 0, self, (ulong)secondary_entry, 0), SBI_ERR_ALREADY_AVAILABLE);
  check_err("HSM.hart_start.invalid_hart", SBI3(EID_HSM, 0, nharts, (ulong)secondary_entry, 0), SBI_ERR_INVALID_PARAM);
  if (nharts == 1) {
    skip("HSM.hart_start.others", "one hart");
    return;
  }
  ulong other = self == 0 ? 1 : 0;
  if (on_parley) {
    // §9.1: "start_addr is not valid" -- outside RAM, or odd. (OpenSBI would accept any address
    // its domain lets S-mode execute: Parley only.)
    check_err("HSM.hart_start.invalid_address", SBI3(EID_HSM, 0, other, 0x1000, 0), SBI_ERR_INVALID_ADDRESS);
    check_err("HSM.hart_start.odd_address", SBI3(EID_HSM, 0, other, (ulong)secondary_entry + 1, 0), SBI_ERR_INVALID_ADDRESS);
  }
  int all_ok = 1, all_started = 1, regs_ok = 1;
  for (ulong h = 0; h < nharts; h++) {
    if (h == self) continue;
    if (SBI3(EID_HSM, 0, h, (ulong)secondary_entry, OPAQUE(h, 1)).error != SBI_SUCCESS) all_ok = 0;
  }
  check("HSM.hart_start.others", all_ok);
  for (ulong h = 0; h < nharts; h++) {
    if (h == self) continue;
    if (!wait_status(h, HSM_STARTED, 2000) || !wait_change(entries + h, 0, 2000)) all_started = 0;
    if (entry_a0[h] != h || entry_a1[h] != OPAQUE(h, 1) || entry_satp[h] != 0 || entry_sie[h] != 0) regs_ok = 0;
  }
  check("HSM.hart_start.started", all_started);
  check("HSM.hart_start.entry_registers", regs_ok);
  check_err("HSM.hart_start.already_started", SBI3(EID_HSM, 0, other, (ulong)secondary_entry, 0), SBI_ERR_ALREADY_AVAILABLE);
}

static void hsm_stop_suspend_checks(void) {
  // Reserved suspend types (§9.4 table): SBI_ERR_INVALID_PARAM.
  check_err("HSM.hart_suspend.reserved_1", SBI3(EID_HSM, 3, 1, 0, 0), SBI_ERR_INVALID_PARAM);
  check_err("HSM.hart_suspend.reserved_0fffffff", SBI3(EID_HSM, 3, 0x0fffffff, 0, 0), SBI_ERR_INVALID_PARAM);
  check_err("HSM.hart_suspend.reserved_80000001", SBI3(EID_HSM, 3, 0x80000001, 0, 0), SBI_ERR_INVALID_PARAM);

  // Retentive suspend of this hart, woken by its timer: returns SBI_SUCCESS after the wake-up.
  csr_clear(sstatus, SSTATUS_SIE);
  csr_write(sie, SIP_STIP);
  ulong target = rdtime() + 2 * ticks_per_ms;
  SBI1(EID_TIME, 0, target);
  struct sbiret r = SBI3(EID_HSM, 3, 0, 0, 0);
  ulong woke = rdtime();
  check_err("HSM.hart_suspend.retentive", r, SBI_SUCCESS);
  check("HSM.hart_suspend.retentive.woken_by_timer", woke >= target && (csr_read(sip) & SIP_STIP));
  SBI1(EID_TIME, 0, ~0UL);
  csr_write(sie, SIP_SSIP);
  csr_set(sstatus, SSTATUS_SIE);

  if (nharts == 1) {
    skip("HSM.other_harts", "one hart");
    return;
  }
  ulong last = self == nharts - 1 ? 0 : nharts - 1;

  // Another hart suspends (retentive); it reads SUSPENDED, and an IPI wakes it.
  ulong done = cmd_done[last];
  command(last, CMD_SUSPEND, 0);
  check("HSM.hart_suspend.other.suspended", wait_status(last, HSM_SUSPENDED, 2000));
  // §9.1 names no error for starting a SUSPENDED hart; Parley calls it "already started"
  // (SBI_ERR_ALREADY_AVAILABLE, as KVM), OpenSBI answers SBI_ERR_INVALID_PARAM: Parley only.
  if (on_parley) check_err("HSM.hart_start.suspended", SBI3(EID_HSM, 0, last, (ulong)secondary_entry, 0), SBI_ERR_ALREADY_AVAILABLE);
  send_ipi(bit(0), last);
  check("HSM.hart_suspend.other.resumed", wait_status(last, HSM_STARTED, 2000) && wait_change(cmd_done + last, done + 1, 2000));
  check_val("HSM.hart_suspend.other.returns_success", suspend_error[last], SBI_SUCCESS);
  check("HSM.hart_suspend.other.ipi_pending_after", cmd_result[last] != 0);

  // Another hart stops itself; it reads STOPPED, and starts again with new a0/a1.
  command(last, CMD_STOP, 0);
  check("HSM.hart_stop", wait_status(last, HSM_STOPPED, 2000));
  ulong entered = entries[last];
  check_err("HSM.hart_start.restart", SBI3(EID_HSM, 0, last, (ulong)secondary_entry, OPAQUE(last, 2)), SBI_SUCCESS);
  check("HSM.hart_start.restarted",
        wait_status(last, HSM_STARTED, 2000) && wait_change(entries + last, entered, 2000) && entry_a0[last] == last &&
            entry_a1[last] == OPAQUE(last, 2) && entry_satp[last] == 0 && entry_sie[last] == 0);
}

// ---- IPI -------------------------------------------------------------------------------------------
static void ipi_checks(void) {
  csr_write(sie, SIP_SSIP);
  csr_set(sstatus, SSTATUS_SIE);
  ulong before = soft_irqs[self];
  check_err("IPI.send_ipi.self", send_ipi(self < 64 ? bit(self) : 0, self < 64 ? 0 : self), SBI_SUCCESS);
  check("IPI.send_ipi.self.arrives", wait_change(soft_irqs + self, before, 1000));
  before = soft_irqs[self];
  check_err("IPI.send_ipi.self_base", send_ipi(1, self), SBI_SUCCESS);
  check("IPI.send_ipi.self_base.arrives", wait_change(soft_irqs + self, before, 1000));

  // Every hart once: hart_mask_base = -1 ignores hart_mask (§3.1); then a mask naming all.
  ulong snap[MAX_HARTS];
  for (int round = 0; round < 2; round++) {
    for (ulong h = 0; h < nharts; h++) snap[h] = soft_irqs[h];
    struct sbiret r = round == 0 ? send_ipi(0, ~0UL) : send_ipi(nharts >= 64 ? ~0UL : bit(nharts) - 1, 0);
    check_err(round == 0 ? "IPI.send_ipi.base_minus_one" : "IPI.send_ipi.mask_all", r, SBI_SUCCESS);
    int all = 1;
    for (ulong h = 0; h < nharts; h++)
      if (!wait_change(soft_irqs + h, snap[h], 1000)) all = 0;
    check(round == 0 ? "IPI.send_ipi.base_minus_one.every_hart" : "IPI.send_ipi.mask_all.every_hart", all);
  }
  if (nharts > 1) {
    // Each other hart alone (hart_mask_base = its id, bit 0): it gets one, no one else does.
    int errors_ok = 1, arrived = 1, only_target = 1;
    for (ulong t = 0; t < nharts; t++) {
      if (t == self) continue;
      for (ulong h = 0; h < nharts; h++) snap[h] = soft_irqs[h];
      if (send_ipi(1, t).error != SBI_SUCCESS) errors_ok = 0;
      if (!wait_change(soft_irqs + t, snap[t], 1000)) arrived = 0;
      delay_ms(1);
      for (ulong h = 0; h < nharts; h++)
        if (soft_irqs[h] != snap[h] + (h == t)) only_target = 0;
    }
    check("IPI.send_ipi.other", errors_ok);
    check("IPI.send_ipi.other.arrives", arrived);
    check("IPI.send_ipi.other.only_target", only_target);
  } else {
    skip("IPI.send_ipi.other", "one hart");
  }

  // §3.1: an invalid hart_mask_base, or any hart id in hart_mask that is not valid.
  check_err("IPI.send_ipi.invalid_base", send_ipi(1, nharts), SBI_ERR_INVALID_PARAM);
  check_err("IPI.send_ipi.invalid_base_high", send_ipi(1, 0x100000), SBI_ERR_INVALID_PARAM);
  if (nharts < 64) {
    check_err("IPI.send_ipi.invalid_mask_bit", send_ipi(bit(nharts), 0), SBI_ERR_INVALID_PARAM);
    check_err("IPI.send_ipi.valid_and_invalid_bits", send_ipi(bit(nharts) | 1, 0), SBI_ERR_INVALID_PARAM);
  }
  check_err("IPI.unknown_fid", SBI0(EID_IPI, 1), SBI_ERR_NOT_SUPPORTED);
}

// ---- RFENCE ----------------------------------------------------------------------------------------
// Sv39 tables (privileged ISA §10.4): gigapage 2 maps 0x80000000.. to itself (this program and its
// data); TEST_VA (gigapage 3) goes through two more levels to one 4 KiB page, page_a or page_b.
#define PTE_V 1UL
#define PTE_R 2UL
#define PTE_W 4UL
#define PTE_X 8UL
#define PTE_A 64UL
#define PTE_D 128UL
#define PTE_LEAF (PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D)
#define SATP_SV39 (8UL << 60)
#define TEST_ASID 5UL

static ulong root[512] __attribute__((aligned(4096)));
static ulong level1[512] __attribute__((aligned(4096)));
static ulong level0[512] __attribute__((aligned(4096)));
static ulong page_a[512] __attribute__((aligned(4096)));
static ulong page_b[512] __attribute__((aligned(4096)));

static ulong pte_table(void *table) { return ((ulong)table >> 12) << 10 | PTE_V; }
static void map_test_page(ulong *page) {
  level0[0] = ((ulong)page >> 12) << 10 | PTE_LEAF;
  mb();
}
static ulong test_satp(ulong asid) { return SATP_SV39 | asid << 44 | (ulong)root >> 12; }
static ulong read_test_va(void) { return *(volatile ulong *)TEST_VA; }

static struct sbiret sfence_vma(ulong mask, ulong base, ulong start, ulong size) {
  return sbi_call(EID_RFENCE, 1, mask, base, start, size, 0);
}
static struct sbiret sfence_vma_asid(ulong mask, ulong base, ulong start, ulong size, ulong asid) {
  return sbi_call(EID_RFENCE, 2, mask, base, start, size, asid);
}

/** Remaps TEST_VA from page_a to page_b (or back), fences through `fence`, reads the new page. */
#define REMAP_CHECK(name, to, fence_call)                                        \
  do {                                                                          \
    struct sbiret r_ = fence_call;                                              \
    check_err(name, r_, SBI_SUCCESS);                                           \
    check_val(name ".sees_new_mapping", (long)read_test_va(), (long)(to)[0]);   \
  } while (0)

static void rfence_checks(void) {
  // remote_fence_i (§8.1): this hart runs code it rewrote, with only the SBI call as fence.
  write_code(1);
  __asm__ volatile("fence.i" ::: "memory");
  long first = ((code_fn)(void *)code_buffer)();
  write_code(2);
  struct sbiret r = SBI2(EID_RFENCE, 0, 1, self);
  check_err("RFENCE.remote_fence_i.self", r, SBI_SUCCESS);
  check("RFENCE.remote_fence_i.self.new_code", first == 1 && ((code_fn)(void *)code_buffer)() == 2);
  check_err("RFENCE.remote_fence_i.base_minus_one", SBI2(EID_RFENCE, 0, 0, ~0UL), SBI_SUCCESS);
  check_err("RFENCE.remote_fence_i.invalid_base", SBI2(EID_RFENCE, 0, 1, nharts), SBI_ERR_INVALID_PARAM);
  if (nharts < 64) check_err("RFENCE.remote_fence_i.invalid_mask", SBI2(EID_RFENCE, 0, bit(nharts), 0), SBI_ERR_INVALID_PARAM);

  ulong other = self == 0 ? 1 : 0;
  if (nharts > 1) {
    // Another hart runs the code, this hart rewrites it and fences that hart remotely.
    int ran_old = command(other, CMD_RUN_CODE, 0) && cmd_result[other] == 2;
    write_code(3);
    check_err("RFENCE.remote_fence_i.other", SBI2(EID_RFENCE, 0, 1, other), SBI_SUCCESS);
    check("RFENCE.remote_fence_i.other.new_code", ran_old && command(other, CMD_RUN_CODE, 0) && cmd_result[other] == 3);
  }

  // remote_sfence_vma / remote_sfence_vma_asid (§8.2, §8.3) on this hart, paging on.
  page_a[0] = 0xaaaa;
  page_b[0] = 0xbbbb;
  root[2] = (0x80000000UL >> 12) << 10 | PTE_LEAF;
  root[3] = pte_table(level1);
  level1[0] = pte_table(level0);
  map_test_page(page_a);
  mb();
  csr_write(satp, test_satp(0));
  __asm__ volatile("sfence.vma" ::: "memory");
  check_val("RFENCE.paging.reads_page_a", (long)read_test_va(), 0xaaaa);
  map_test_page(page_b);
  REMAP_CHECK("RFENCE.remote_sfence_vma.page", page_b, sfence_vma(1, self, TEST_VA, 4096));
  map_test_page(page_a);
  REMAP_CHECK("RFENCE.remote_sfence_vma.all_zero_zero", page_a, sfence_vma(1, self, 0, 0));
  map_test_page(page_b);
  REMAP_CHECK("RFENCE.remote_sfence_vma.all_size_minus_one", page_b, sfence_vma(0, ~0UL, 0, ~0UL));
  map_test_page(page_a);
  REMAP_CHECK("RFENCE.remote_sfence_vma.range_around", page_a, sfence_vma(1, self, TEST_VA - 4096, 3 * 4096));

  // The same with an ASID: satp.ASID = TEST_ASID, fenced by that ASID.
  csr_write(satp, test_satp(TEST_ASID));
  __asm__ volatile("sfence.vma" ::: "memory");
  check_val("RFENCE.paging.asid_reads_page_a", (long)read_test_va(), 0xaaaa);
  map_test_page(page_b);
  REMAP_CHECK("RFENCE.remote_sfence_vma_asid.page", page_b, sfence_vma_asid(1, self, TEST_VA, 4096, TEST_ASID));
  map_test_page(page_a);
  REMAP_CHECK("RFENCE.remote_sfence_vma_asid.all", page_a, sfence_vma_asid(0, ~0UL, 0, ~0UL, TEST_ASID));
  csr_write(satp, 0);
  __asm__ volatile("sfence.vma" ::: "memory");

  check_err("RFENCE.remote_sfence_vma.invalid_base", sfence_vma(1, nharts, 0, 0), SBI_ERR_INVALID_PARAM);
  check_err("RFENCE.remote_sfence_vma_asid.invalid_base", sfence_vma_asid(1, nharts, 0, 0, 0), SBI_ERR_INVALID_PARAM);
  if (nharts < 64) {
    check_err("RFENCE.remote_sfence_vma.invalid_mask", sfence_vma(bit(nharts) | 1, 0, 0, 0), SBI_ERR_INVALID_PARAM);
    check_err("RFENCE.remote_sfence_vma_asid.invalid_mask", sfence_vma_asid(bit(nharts), 0, 0, 0, 0), SBI_ERR_INVALID_PARAM);
  }
  if (on_parley) {
    // §8.2: "start_addr or size is not valid" -- Parley's reading: a range running past 2^64.
    check_err("RFENCE.remote_sfence_vma.range_wraps", sfence_vma(1, self, ~0UL - 0xfff, 0x2000), SBI_ERR_INVALID_ADDRESS);
  }
  // §8.4-8.7: the HFENCE functions need the hypervisor extension, which these harts lack.
  for (ulong fid = 3; fid <= 6; fid++) {
    static const char *names[] = {"RFENCE.remote_hfence_gvma_vmid", "RFENCE.remote_hfence_gvma",
                                  "RFENCE.remote_hfence_vvma_asid", "RFENCE.remote_hfence_vvma"};
    check_err(names[fid - 3], sbi_call(EID_RFENCE, fid, 1, self, 0, 0, 0), SBI_ERR_NOT_SUPPORTED);
  }

  if (nharts > 1) {
    // Another hart caches TEST_VA -> page_a; this hart remaps it and fences that hart remotely.
    map_test_page(page_a);
    int read_a = command(other, CMD_READ_VA, test_satp(0)) && cmd_result[other] == 0xaaaa;
    map_test_page(page_b);
    check_err("RFENCE.remote_sfence_vma.other", sfence_vma(1, other, TEST_VA, 4096), SBI_SUCCESS);
    check("RFENCE.remote_sfence_vma.other.sees_new_mapping", read_a && command(other, CMD_READ_VA, test_satp(0)) && cmd_result[other] == 0xbbbb);
    map_test_page(page_a);
    read_a = command(other, CMD_READ_VA, test_satp(TEST_ASID)) && cmd_result[other] == 0xaaaa;
    map_test_page(page_b);
    check_err("RFENCE.remote_sfence_vma_asid.other", sfence_vma_asid(1, other, TEST_VA, 4096, TEST_ASID), SBI_SUCCESS);
    check("RFENCE.remote_sfence_vma_asid.other.sees_new_mapping",
          read_a && command(other, CMD_READ_VA, test_satp(TEST_ASID)) && cmd_result[other] == 0xbbbb);
    command(other, CMD_PAGING_OFF, 0);
  } else {
    skip("RFENCE.other_harts", "one hart");
  }
}

void boot_main(ulong hartid, const void *fdt) {
  platform_init(hartid, fdt);
  self = hartid;
  hsm_start_checks();
  ipi_checks();
  rfence_checks();
  hsm_stop_suspend_checks();
  pass_or_fail_summary_and_shutdown();
}
