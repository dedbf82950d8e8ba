// Two harts of one machine: two Cpus (two engine instances) on one memory, each with its own
// region (state, TLB, decoded code, translations) and both on the same guest RAM
// (src/cpu/core-layout.ts). Run on one thread here; only the layout is under test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cpu, ExitReason, type CpuOptions } from "../../src/cpu/cpu.ts";
import { coreLayout } from "../../src/cpu/core-layout.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { aluImm, branch, csr, load, store, wfi, toBytes } from "../diff/encode.ts";
import { CSR_MSCRATCH } from "../../src/cpu/csr-numbers.ts";

const RAM = 0x8000_0000;
const RAM_SIZE = 4 << 20;
const DATA = RAM + 0x10_0000; // a page both harts use
const CODE0 = RAM;
const CODE1 = RAM + 0x1000;

/** x5 = 0; 200 times x5 += 3; then sd x5 -> 0(x8); csrw mscratch, x5; wfi. */
const program0 = [
  aluImm("addi", 5, 0, 0),
  aluImm("addi", 6, 0, 200),
  aluImm("addi", 5, 5, 3), // loop
  aluImm("addi", 6, 6, -1),
  branch("bne", 6, 0, -8),
  store("sd", 8, 5, 0),
  csr("csrrw", 0, CSR_MSCRATCH, 5),
  wfi(),
];

/** x7 = 7 x 100 by a loop of its own; then x9 = ld 0(x8); wfi. */
const program1 = [
  aluImm("addi", 7, 0, 0),
  aluImm("addi", 6, 0, 100),
  aluImm("addi", 7, 7, 7), // loop
  aluImm("addi", 6, 6, -1),
  branch("bne", 6, 0, -8),
  load("ld", 9, 8, 0),
  wfi(),
];

function twoHarts(shared: boolean, jit: CpuOptions["jit"]): [Cpu, Cpu] {
  const layout = coreLayout({ harts: 2, ramSize: RAM_SIZE });
  const memory = new WebAssembly.Memory({ initial: layout.memoryPages, maximum: layout.memoryPages, shared });
  const module = loadCoreModule({ shared });
  const make = (hartIndex: number) => new Cpu({ module, ramSize: RAM_SIZE, layout, hartIndex, memory, jit });
  return [make(0), make(1)];
}

for (const shared of [false, true]) {
  for (const jit of ["off", "eager", { threshold: 2 }] as const) {
    const name = `${shared ? "shared" : "plain"} memory, translator ${typeof jit === "string" ? jit : "on"}`;

    test(`two harts run their own programs and see each other's stores (${name})`, () => {
      const [a, b] = twoHarts(shared, jit);
      assert.equal(a.ram.buffer, b.ram.buffer);
      assert.equal(a.ramWasmBase, b.ramWasmBase);
      assert.notEqual(a.hartBase, b.hartBase);
      assert.equal(a.readCsr(0xf14), 0n); // mhartid
      assert.equal(b.readCsr(0xf14), 1n);

      a.writeRam(CODE0, toBytes(program0));
      b.writeRam(CODE1, toBytes(program1));
      a.pc = BigInt(CODE0);
      b.pc = BigInt(CODE1);
      a.setX(8, BigInt(DATA));
      b.setX(8, BigInt(DATA));
      a.setX(7, 0x77n); // hart 1's loop register: must stay hart 0's own

      // Interleave the two a slice at a time, as two threads might: hart 1 stays inside its loop
      // (300 instructions) until hart 0 (600) has stored, then runs to its load.
      let aDone = false, bDone = false;
      assert.equal(b.run(20), ExitReason.Budget);
      for (let i = 0; i < 100 && !aDone; i++) {
        aDone = a.run(37) === ExitReason.Wfi;
        assert.equal(b.run(5), ExitReason.Budget);
      }
      assert.equal(b.x(9), 0n, "hart 1 has not loaded yet");
      for (let i = 0; i < 100 && !bDone; i++) bDone = b.run(41) === ExitReason.Wfi;
      assert.ok(aDone && bDone, "both harts reached WFI");
      assert.equal(a.x(5), 600n);
      assert.equal(b.x(7), 700n);
      assert.equal(a.x(7), 0x77n, "hart 0's x7 is its own");
      assert.equal(b.x(5), 0n, "hart 1's x5 is its own");
      assert.equal(b.x(9), 600n, "hart 1 loaded what hart 0 stored");
      assert.equal(a.readCsr(CSR_MSCRATCH), 600n);
      assert.equal(b.readCsr(CSR_MSCRATCH), 0n, "CSRs are per hart");
      assert.equal(new DataView(a.ram.buffer).getBigUint64(a.ramWasmBase + (DATA - RAM), true), 600n);
      assert.equal(a.pc, BigInt(CODE0 + 4 * program0.length));
      assert.equal(b.pc, BigInt(CODE1 + 4 * program1.length));
      if (jit !== "off") {
        // Each hart translated its own loop, into its own pool and table.
        assert.ok(a.translatorCounters()!.installs > 0 && b.translatorCounters()!.installs > 0);
        assert.ok(a.translatorCounters()!.instructionsTranslatedRetired > 0 && b.translatorCounters()!.instructionsTranslatedRetired > 0);
      }
    });
  }
}

test("a hart's host-side writes and CSR writes stay in its region", () => {
  const [a, b] = twoHarts(false, "off");
  a.writeCsr(CSR_MSCRATCH, 0x1234n);
  a.setX(10, 5n);
  a.pc = 0x8000_1234n;
  assert.equal(b.readCsr(CSR_MSCRATCH), 0n);
  assert.equal(b.x(10), 0n);
  assert.equal(b.pc, BigInt(RAM));
  assert.equal(a.instret, 0n);
  assert.equal(b.instret, 0n);
});

test("a Cpu refuses a memory smaller than its layout, or a hart outside it", () => {
  const layout = coreLayout({ harts: 2, ramSize: RAM_SIZE });
  const small = new WebAssembly.Memory({ initial: layout.memoryPages - 1 });
  assert.throws(() => new Cpu({ module: loadCoreModule(), ramSize: RAM_SIZE, layout, memory: small }), /layout needs/);
  assert.throws(() => new Cpu({ module: loadCoreModule(), ramSize: RAM_SIZE, layout, hartIndex: 2 }), /outside the layout/);
});
