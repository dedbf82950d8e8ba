// The ledger is exact on a program whose every instruction and exit is known: N bytes written
// to the bare-metal machine's 16550, one LSR poll per byte, one IER store, one HTIF exit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGuest } from "../../src/image/toolchain.ts";
import { GUEST_ARCH_FLAGS } from "../../src/image/guest-programs.ts";
import { runElfFile } from "../../src/cli/run-elf.ts";
import { formatLedger } from "../../src/cli/stats.ts";
import { BAREMETAL_TOOLCHAIN, needsHostTools } from "../support/host-tools.ts";
import type { Ledger } from "../../src/machine/ledger.ts";

const BYTES = 37;

function build(bytes: number): Promise<string> {
  return buildGuest({
    name: `ledger-uart-${bytes}`,
    target: "baremetal",
    sources: ["test/ledger/uart-exits.S"],
    dependencies: ["test/isa/link.ld"],
    args: [...GUEST_ARCH_FLAGS, "-nostdlib", "-nostartfiles", "-static", "-Wl,--no-relax", "-T", "test/isa/link.ld", `-DUART_BYTES=${bytes}`],
  });
}

const tools = needsHostTools(...BAREMETAL_TOOLCHAIN);

test("N bytes to the UART: exactly N THR stores, N LSR loads, 6N + 8 instructions", { skip: tools.skip }, async () => {
  tools.check();
  const elf = await build(BYTES);
  const dir = mkdtempSync(join(tmpdir(), "parley-ledger-"));
  try {
    const statsJson = join(dir, "ledger.json");
    const result = await runElfFile(elf, { statsJson });
    assert.equal(result.exitCode, 0);
    assert.equal(result.output, "a".repeat(BYTES));
    const ledger = result.ledger;

    // 4 set-up instructions, 6 per byte, 4 to exit (la is auipc + addi); the HTIF store is the last.
    assert.equal(ledger.instructions, 6 * BYTES + 8);
    assert.equal(BigInt(ledger.instructions), result.instret);

    assert.deepEqual(ledger.exits.byDevice.uart0, { loads: BYTES, stores: BYTES + 1, byRegister: { THR: BYTES, IER: 1, LSR: BYTES } });
    assert.deepEqual(ledger.exits.byDevice.htif, { loads: 0, stores: 1, byRegister: { tohost: 1 } });
    assert.deepEqual(ledger.exits.byDevice.clint, { loads: 0, stores: 0, byRegister: {} });
    assert.equal(ledger.exits.unmapped, 0);
    assert.equal(ledger.exits.total, 2 * BYTES + 2);
    // Register names follow the register map's order.
    assert.deepEqual(Object.keys(ledger.exits.byDevice.uart0.byRegister), ["THR", "IER", "LSR"]);

    assert.deepEqual(ledger.bytes, { uart0: { in: 0, out: BYTES } });
    assert.deepEqual(ledger.interrupts, { total: 0, byCause: {}, bySource: {} });
    assert.deepEqual(ledger.exceptions, { total: 0, byCause: {} });
    assert.deepEqual(ledger.sbi, { total: 0, byExtension: {}, byFunction: {}, errors: {} });
    assert.deepEqual(ledger.virtio, {});
    assert.ok(ledger.wallSeconds > 0 && ledger.wallSeconds < 60);

    // --stats-json writes the same ledger.
    const written = JSON.parse(readFileSync(statsJson, "utf8")) as Ledger;
    assert.deepEqual(written, ledger);

    // --stats shows the register lines.
    const table = formatLedger(ledger);
    assert.match(table, new RegExp(`^ {4}THR +${BYTES}$`, "m"));
    assert.match(table, new RegExp(`^ {4}LSR +${BYTES}$`, "m"));
    assert.match(table, new RegExp(`^ {2}uart0 +${BYTES} +${BYTES + 1} +${2 * BYTES + 1}$`, "m"));
    assert.match(table, new RegExp(`^ {2}instructions retired +${6 * BYTES + 8}$`, "m"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the counts scale with N: a second size gives the same formula", { skip: tools.skip }, async () => {
  tools.check();
  const n = 1000;
  const result = await runElfFile(await build(n));
  assert.equal(result.exitCode, 0);
  assert.equal(result.ledger.instructions, 6 * n + 8);
  assert.equal(result.ledger.exits.byDevice.uart0.byRegister.THR, n);
  assert.equal(result.ledger.exits.byDevice.uart0.byRegister.LSR, n);
  assert.equal(result.ledger.bytes.uart0.out, n);
});

test("the counts do not depend on the engine; the translator's own counters show it ran", { skip: tools.skip }, async () => {
  tools.check();
  const elf = await build(500);
  const interpreted = await runElfFile(elf, { jit: "off" });
  const translated = await runElfFile(elf, { jit: "eager" });
  for (const r of [interpreted, translated]) assert.equal(r.exitCode, 0);
  const { wallSeconds: _a, translator: none, ...reference } = interpreted.ledger;
  const { wallSeconds: _b, translator, ...same } = translated.ledger;
  assert.deepEqual(same, reference);
  assert.equal(none, undefined, "no translator section with the interpreter alone");
  assert.ok(translator, "translator section present");
  // Each iteration enters the translation at the loop head, whose first instruction is the LSR
  // poll: an MMIO load that translated code leaves to the interpreter (a bounce), which then runs
  // the rest of the iteration. So the translator is entered and bounces once per byte, and the
  // counts above stay exact across every bounce.
  assert.ok(translator.entries >= 500 && translator.bounces >= 500, `${translator.entries} entries, ${translator.bounces} bounces`);
  assert.ok(translator.pagesTranslated >= 1);
  assert.match(formatLedger(translated.ledger), /^ {2}instructions retired in translated code +\d+ \(\d+\.\d%\)$/m);
});
