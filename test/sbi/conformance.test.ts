// SBI conformance: the S-mode programs of guest/sbi check every function of each SBI extension
// Parley implements against the SBI v2.0 text, including error codes, and print one line per
// check. Each runs on both boot paths -- paravirtual (Parley is the SBI implementation) and
// firmware (Debian's OpenSBI fw_dynamic in emulated M-mode) -- with 1 hart on this thread and
// with 4 harts on threads of their own. A result that depends on the implementation (its ids,
// what counts as an invalid address) is checked for Parley's own values on the paravirtual path
// only; everything else must hold on both, as the spec requires.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { VirtMachine, type MachineExit } from "../../src/machine/virt.ts";
import { nodeClock } from "../../src/host/node/clock.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { nodeHartThreads } from "../../src/host/node/hart-threads.ts";
import { buildGuestImage } from "../../src/image/index.ts";
import { buildSbiConformance, SBI_CONFORMANCE_PROGRAMS, type SbiConformanceProgram } from "../../src/image/guest-programs.ts";
import { PARLEY_SBI_IMPL_ID, PARLEY_SBI_IMPL_VERSION, SBI_SPEC_VERSION } from "../../src/sbi/index.ts";
import { needsHostTools } from "../support/host-tools.ts";

const tools = needsHostTools("riscv64-unknown-elf-gcc");
const RUN_TIMEOUT_MS = 60_000;

let programs: Promise<Record<SbiConformanceProgram, Uint8Array>> | undefined;
let firmware: Promise<Uint8Array> | undefined;
const program = async (name: SbiConformanceProgram) => (await (programs ??= buildSbiConformance()))[name];
const opensbi = () =>
  (firmware ??= buildGuestImage({ log: () => {} }).then((image) => new Uint8Array(readFileSync(image.opensbi.fwDynamic!))));

interface Run {
  exit: MachineExit;
  output: string;
  /** Check name -> "ok", "FAIL ...", or "skip ...". */
  results: Map<string, string>;
  info: Map<string, bigint>;
}

async function run(name: SbiConformanceProgram, boot: "paravirtual" | "firmware", harts: number): Promise<Run> {
  const threads = harts > 1;
  let output = "";
  const decoder = new TextDecoder();
  const machine = new VirtMachine({
    module: loadCoreModule({ shared: threads }),
    hartThreads: threads ? nodeHartThreads() : undefined,
    harts,
    ramSize: 64 << 20,
    kernel: await program(name),
    firmware: boot === "firmware" ? await opensbi() : undefined,
    bootargs: "",
    clock: nodeClock,
    output: (bytes) => (output += decoder.decode(bytes, { stream: true })),
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), RUN_TIMEOUT_MS)));
  const finished = machine.run();
  const first = await Promise.race([finished, timeout]);
  clearTimeout(timer);
  if (first === "timeout") {
    machine.stop();
    await finished;
    assert.fail(`${name} (${boot}, ${harts} harts) did not end within ${RUN_TIMEOUT_MS} ms; output:\n${output}`);
  }
  const results = new Map<string, string>();
  const info = new Map<string, bigint>();
  for (const line of output.split(/\r?\n/)) {
    const m = /^SBI (\S+) (ok|FAIL.*|skip.*)$/.exec(line);
    if (m && m[1] !== "info" && m[1] !== "done") {
      results.set(m[1], results.has(m[1]) ? `FAIL reported twice (${results.get(m[1])}, ${m[2]})` : m[2]);
    }
    const i = /^SBI info (\S+) (0x[0-9a-f]+)$/.exec(line);
    if (i) info.set(i[1], BigInt(i[2]));
  }
  return { exit: first, output, results, info };
}

/**
 * Where Debian's OpenSBI (1.6) does not do what SBI v2.0 requires, by check: the exact failure
 * line is expected on the firmware path, so the test notices when a new OpenSBI changes it.
 */
const OPENSBI_DEVIATIONS: Readonly<Record<SbiConformanceProgram, Readonly<Record<string, string>>>> = {
  core: {
    // §12.1/§12.2 with §3.2: memory the hart cannot name is SBI_ERR_INVALID_PARAM; OpenSBI
    // answers SBI_ERR_FAILED for a non-zero base_addr_hi.
    "DBCN.console_write.addr_hi": "FAIL got -1 want -3",
    "DBCN.console_read.addr_hi": "FAIL got -1 want -3",
  },
  harts: Object.fromEntries(
    [
      // §3.1 "Hart Mask Errors": SBI_ERR_INVALID_PARAM when hart_mask_base or any hart id in
      // hart_mask is not valid; OpenSBI drops hart ids it does not have and reports success.
      "IPI.send_ipi.invalid_base",
      "IPI.send_ipi.invalid_base_high",
      "IPI.send_ipi.invalid_mask_bit",
      "IPI.send_ipi.valid_and_invalid_bits",
      "RFENCE.remote_fence_i.invalid_base",
      "RFENCE.remote_fence_i.invalid_mask",
      "RFENCE.remote_sfence_vma.invalid_base",
      "RFENCE.remote_sfence_vma_asid.invalid_base",
      "RFENCE.remote_sfence_vma.invalid_mask",
      "RFENCE.remote_sfence_vma_asid.invalid_mask",
    ].map((check) => [check, "FAIL got 0 want -3"]),
  ),
};

/**
 * Every check passed (or was skipped with a reason) except exactly the `deviations`; the run
 * ended with the SRST shutdown.
 */
function assertClean(r: Run, label: string, expectedChecks: readonly string[], deviations: Readonly<Record<string, string>> = {}): void {
  const failed = [...r.results].filter(([, v]) => v.startsWith("FAIL")).map(([k, v]) => `${k} ${v}`);
  const known = Object.entries(deviations).map(([k, v]) => `${k} ${v}`);
  assert.deepEqual(failed.sort(), known.sort(), `${label}: failed checks\n${r.output}`);
  assert.match(r.output, new RegExp(`^SBI done failures ${known.length}$`, "m"), `${label}: the program did not finish\n${r.output}`);
  assert.deepEqual(r.exit, { reason: "poweroff", code: 0 }, `${label}: SRST shutdown ends the run`);
  for (const check of expectedChecks) {
    assert.equal(r.results.get(check), deviations[check] ?? "ok", `${label}: check ${check}\n${r.output}`);
  }
}

const CONFIGS = [
  ["paravirtual", 1],
  ["firmware", 1],
  ["paravirtual", 4],
  ["firmware", 4],
] as const;

// Checks every run must report "ok" (beyond "no FAIL"), so that a program that skips or loses
// lines cannot pass quietly.
const CORE_CHECKS = [
  "BASE.get_spec_version",
  "BASE.probe_extension.TIME",
  "BASE.probe_extension.absent",
  "BASE.unknown_eid",
  "TIME.set_timer.interrupt_arrives",
  "TIME.set_timer.stip_set_in_handler",
  "TIME.set_timer.exactly_once",
  "TIME.set_timer.zero_pending_at_once",
  "TIME.masked.pending",
  "TIME.masked.delivered_when_enabled",
  "TIME.far_future_clears_pending",
  "TIME.legacy_set_timer.interrupt_arrives",
  "DBCN.console_write",
  "DBCN.console_write.text",
  "DBCN.console_write_byte.text",
  "DBCN.console_read",
  "DBCN.console_write.addr_hi",
  "SRST.reserved_type",
  "SRST.reserved_reason",
];
const HARTS_CHECKS = [
  "HSM.get_status.self",
  "HSM.get_status.invalid_hart",
  "HSM.hart_start.self",
  "HSM.hart_start.invalid_hart",
  "HSM.hart_suspend.reserved_1",
  "HSM.hart_suspend.retentive",
  "HSM.hart_suspend.retentive.woken_by_timer",
  "IPI.send_ipi.self.arrives",
  "IPI.send_ipi.base_minus_one.every_hart",
  "IPI.send_ipi.invalid_base",
  "IPI.send_ipi.invalid_mask_bit",
  "RFENCE.remote_fence_i.self.new_code",
  "RFENCE.remote_fence_i.invalid_mask",
  "RFENCE.remote_sfence_vma.page.sees_new_mapping",
  "RFENCE.remote_sfence_vma_asid.page.sees_new_mapping",
  "RFENCE.remote_sfence_vma.invalid_mask",
  "RFENCE.remote_hfence_gvma",
];
const MULTI_HART_CHECKS = [
  "HSM.get_status.others_stopped",
  "HSM.hart_start.others",
  "HSM.hart_start.entry_registers",
  "HSM.hart_start.already_started",
  "HSM.hart_suspend.other.suspended",
  "HSM.hart_suspend.other.resumed",
  "HSM.hart_stop",
  "HSM.hart_start.restarted",
  "IPI.send_ipi.other.arrives",
  "IPI.send_ipi.other.only_target",
  "RFENCE.remote_fence_i.other.new_code",
  "RFENCE.remote_sfence_vma.other.sees_new_mapping",
  "RFENCE.remote_sfence_vma_asid.other.sees_new_mapping",
];
const PARLEY_ONLY_CHECKS = {
  core: ["DBCN.console_write.not_ram", "DBCN.console_read.not_ram", "DBCN.console_write.wraps", "DBCN.console_write.value_all"],
  harts: ["RFENCE.remote_sfence_vma.range_wraps"],
} as const;

for (const name of SBI_CONFORMANCE_PROGRAMS) {
  for (const [boot, harts] of CONFIGS) {
    const label = `${name} (${boot}, ${harts} hart${harts > 1 ? "s on threads" : ""})`;
    test(`SBI conformance: ${label}`, { skip: tools.skip, timeout: RUN_TIMEOUT_MS + 120_000 }, async () => {
      tools.check();
      const started = Date.now();
      const r = await run(name, boot, harts);
      const expected: string[] = name === "core" ? [...CORE_CHECKS] : [...HARTS_CHECKS, ...(harts > 1 ? MULTI_HART_CHECKS : [])];
      if (boot === "paravirtual") expected.push(...PARLEY_ONLY_CHECKS[name]);
      if (name === "harts" && boot === "paravirtual" && harts > 1) {
        expected.push("HSM.hart_start.invalid_address", "HSM.hart_start.odd_address", "HSM.hart_start.suspended");
      }
      assertClean(r, label, expected, boot === "firmware" ? OPENSBI_DEVIATIONS[name] : {});
      assert.equal(r.info.get("harts"), BigInt(harts), `${label}: the program found every hart in the device tree`);
      if (name === "core") {
        const spec = r.info.get("spec_version")!;
        assert.ok(spec >= 0x2000000n, `${label}: SBI v2.0 or later (0x${spec.toString(16)})`);
        if (boot === "paravirtual") {
          assert.equal(spec, SBI_SPEC_VERSION);
          assert.equal(r.info.get("impl_id"), PARLEY_SBI_IMPL_ID);
          assert.equal(r.info.get("impl_version"), PARLEY_SBI_IMPL_VERSION);
          assert.deepEqual(["mvendorid", "marchid", "mimpid"].map((k) => r.info.get(k)), [0n, 0n, 0n]);
        } else {
          assert.equal(r.info.get("impl_id"), 1n, `${label}: OpenSBI's implementation id`);
          assert.match(r.output, /OpenSBI v\d+\.\d+/);
        }
      }
      console.log(`${label}: ${r.results.size} checks in ${Date.now() - started} ms`);
    });
  }
}
