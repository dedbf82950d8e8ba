// Parley's own ISA test suite: every test/isa/*.S is a self-checking bare-metal program
// (see macros.h).  Each is built once and run twice: on Parley (the thing under test) and
// on qemu-system-riscv64 -M spike (the oracle), so the suite also documents that QEMU
// agrees with the expected values written in the tests.
//
// A program reports through HTIF: tohost = 1 means pass, (n << 1) | 1 means test n failed.
// On failure it also prints "FAIL <file> test <n>: <reason> <values>" on the HTIF console.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { buildGuest, REPO_ROOT } from "../../src/image/toolchain.ts";
import { BAREMETAL_TOOLCHAIN, needsHostTools } from "../support/host-tools.ts";

const ISA_DIR = join(REPO_ROOT, "test/isa");

const GCC_ARGS = [
  "-march=rv64gc_zicsr_zifencei",
  "-mabi=lp64d",
  "-nostdlib",
  "-nostartfiles",
  "-static",
  "-T",
  "test/isa/link.ld",
  "-I",
  "test/isa",
];

// QEMU's spike CPU enables the hypervisor extension by default; Parley implements
// RV64IMAFDC + S + U, so turn H off to make misa (and the trap behaviour that depends on
// H) match.  Everything else (Sstc, PMP, the counters) is QEMU's default rv64 CPU.
const QEMU_BASE = ["-M", "spike", "-cpu", "rv64,h=false", "-bios", "none", "-nographic", "-m", "128M"];

// Per-file QEMU adjustments.
//   args:   extra QEMU arguments.
//   quirks: cpp symbols defined only for the QEMU build.  Each names a place where QEMU 7.2
//           deviates from the ratified spec; the test case guarded by `#ifndef <quirk>`
//           then runs only on Parley (which follows the spec).
const QEMU_SETUP: Record<string, { args?: string[]; quirks?: Record<string, string> }> = {
  rv64a: {
    quirks: {
      QEMU_AMO_MISALIGNED_IS_LOAD:
        "a misaligned AMO raises load address-misaligned (4) instead of store/AMO address-misaligned (6)",
      QEMU_SC_MISALIGNED_NO_TRAP:
        "a misaligned SC without a matching reservation fails (rd = 1) instead of raising cause 6",
    },
  },
  traps: {
    quirks: {
      QEMU_AMO_FAULT_IS_LOAD:
        "an AMO to a non-existent address raises a load access fault (5) instead of store/AMO access fault (7)",
      QEMU_XRET_KEEPS_MPRV: "MRET/SRET to a mode below M do not clear mstatus.MPRV (priv 1.12 rule)",
      QEMU_IRQ_PRIORITY_BY_NUMBER:
        "without AIA, the lowest-numbered pending interrupt is taken instead of MEI > MSI > MTI > SEI > SSI > STI",
      QEMU_SPIKE_NO_SSTC:
        "the spike machine has no time source for the CPU (no rdtime), so stimecmp is an illegal CSR",
    },
  },
  zicsr: {
    // Without -icount QEMU derives instret (and cycle) from the host clock, so an exact
    // instruction count is only available in icount mode (one instruction per ns).
    args: ["-icount", "shift=0"],
    quirks: {
      QEMU_CSRRS_ZERO_REG_NO_WRITE:
        "csrrs/csrrc with rs1 != x0 holding 0 are treated as not writing, so no trap on read-only CSRs",
      QEMU_XEPC_BIT0: "mepc/sepc keep bit 0 as written instead of reading it as zero",
      QEMU_MEDELEG_BIT11: "medeleg bit 11 (ECALL from M) is writable; the spec makes it read-only zero",
      QEMU_MINSTRET_WRITE_COUNTS:
        "the csrw to minstret is itself counted, so the next read is the written value + 1",
      QEMU_SPIKE_NO_TIME_CSR:
        "the spike machine does not implement the time CSR (reads trap, as on real Spike); Parley does",
    },
  },
};

const QEMU_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 180_000;
const PARLEY_MAX_INSNS = 50_000_000;

const sources = readdirSync(ISA_DIR)
  .filter((f) => f.endsWith(".S"))
  .sort();

function build(file: string, variant: "parley" | "qemu"): Promise<string> {
  const base = basename(file, ".S");
  const quirks = variant === "qemu" ? Object.keys(QEMU_SETUP[base]?.quirks ?? {}) : [];
  return buildGuest({
    name: variant === "parley" ? `isa-${base}` : `isa-${base}-qemu`,
    target: "baremetal",
    sources: [join("test/isa", file)],
    dependencies: ["test/isa/macros.h", "test/isa/link.ld"],
    args: [...GCC_ARGS, ...quirks.map((q) => `-D${q}=1`)],
  });
}

/** The failing test number and the runtime's own FAIL line, for assertion messages. */
function describeFailure(file: string, exitCode: number | null, output: string): string {
  const failLine = output.split("\n").find((l) => l.startsWith("FAIL")) ?? "(no FAIL line printed)";
  return `${file}: failing test number ${exitCode} -- ${failLine.trim()}\n--- output ---\n${output}`;
}

const parleyTools = needsHostTools(...BAREMETAL_TOOLCHAIN);
const qemuTools = needsHostTools(...BAREMETAL_TOOLCHAIN, "qemu-system-riscv64");

for (const file of sources) {
  const base = basename(file, ".S");

  // On the interpreter and on the translator (eager: every code page translated before it runs).
  for (const [engine, jit] of [["interpreter", "off"], ["translator", "eager"]] as const) {
    test(`isa ${base} on Parley (${engine})`, { timeout: TEST_TIMEOUT_MS, skip: parleyTools.skip }, async () => {
      parleyTools.check();
      const elf = await build(file, "parley");
      // Imported lazily so the QEMU half of the suite does not depend on Parley's core.
      const { runElfFile } = await import("../../src/cli/run-elf.ts");
      const result = await runElfFile(elf, { maxInsns: PARLEY_MAX_INSNS, jit });
      if (result.exitCode === -1) {
        assert.fail(`${file}: stopped by the ${PARLEY_MAX_INSNS}-instruction limit (last test number unknown)\n${result.output}`);
      }
      assert.equal(result.exitCode, 0, describeFailure(file, result.exitCode, result.output));
      assert.match(result.output, /PASS/, `${file}: exited 0 without printing PASS\n${result.output}`);
    });
  }

  test(`isa ${base} on QEMU (oracle)`, { timeout: TEST_TIMEOUT_MS, skip: qemuTools.skip }, async (t) => {
    qemuTools.check();
    for (const [quirk, why] of Object.entries(QEMU_SETUP[base]?.quirks ?? {})) {
      t.diagnostic(`Parley-only (QEMU 7.2 deviates from the spec): ${quirk}: ${why}`);
    }
    const elf = await build(file, "qemu");
    const args = [...QEMU_BASE, ...(QEMU_SETUP[base]?.args ?? []), "-kernel", elf];
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(
        "qemu-system-riscv64",
        args,
        { timeout: QEMU_TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 4 << 20 },
        (err: any, stdout, stderr) => {
          const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
          const note = err?.killed ? `\n(killed after ${QEMU_TIMEOUT_MS} ms)` : "";
          resolve({ code, output: `${stdout}${stderr}${note}` });
        },
      );
    });
    // QEMU's exit status is the test number modulo 256, so the printed line is the
    // authoritative verdict; both must agree on a pass.
    assert.ok(!/FAIL/.test(output), describeFailure(file, code, output));
    assert.equal(code, 0, describeFailure(file, code, output));
    assert.match(output, /PASS/, `${file}: QEMU exited 0 without PASS\n${output}`);
  });
}
