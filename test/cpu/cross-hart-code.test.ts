// Code written by one hart (or by DMA through one Cpu) and executed by another: two Cpus on one
// memory, interleaved in one thread. Hart 0 calls a function many times (so that its page is
// decoded and, with the translator, translated), then makes an MMIO load whose handler rewrites
// the function, through hart 1's store or through the host; hart 0 calls the function again,
// executes FENCE.I, and calls it a last time: that call must run the new code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cpu, ExitReason, type CpuOptions, type PhysicalBus } from "../../src/cpu/cpu.ts";
import { coreLayout } from "../../src/cpu/core-layout.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import * as L from "../../src/cpu/layout.ts";
import { aluImm, branch, fenceI, jal, jalr, load, store, toBytes, wfi } from "../diff/encode.ts";

const RAM = 0x8000_0000;
const RAM_SIZE = 4 << 20;
const CODE0 = RAM;
const CODE1 = RAM + 0x1000;
const FUNC = RAM + 0x2000;
const SYNC_MMIO = 0x1000_0000;
const CALLS = 50;

const returns = (value: number) => [aluImm("addi", 10, 0, value), jalr(0, 1, 0)];

/** Hart 0: CALLS calls; x18 = result; MMIO load (the rewrite happens); x19 = call; FENCE.I; x21 = call. */
function hart0Program(): number[] {
  const p: number[] = [];
  const callFunc = () => jal(1, FUNC - (CODE0 + 4 * p.length));
  p.push(aluImm("addi", 8, 0, CALLS));
  const loop = p.length;
  p.push(callFunc());
  p.push(aluImm("addi", 8, 8, -1));
  p.push(branch("bne", 8, 0, (loop - p.length) * 4));
  p.push(aluImm("addi", 18, 10, 0));
  p.push(load("lw", 6, 20, 0));
  p.push(callFunc());
  p.push(aluImm("addi", 19, 10, 0));
  p.push(fenceI());
  p.push(callFunc());
  p.push(aluImm("addi", 21, 10, 0));
  p.push(wfi());
  return p;
}

/** Hart 1: stores x5 (the new first instruction) at x9 (FUNC). */
const hart1Program = [store("sw", 9, 5, 0), wfi()];

function twoHarts(shared: boolean, jit: CpuOptions["jit"], bus: PhysicalBus): [Cpu, Cpu] {
  const layout = coreLayout({ harts: 2, ramSize: RAM_SIZE });
  const memory = new WebAssembly.Memory({ initial: layout.memoryPages, maximum: layout.memoryPages, shared });
  const module = loadCoreModule({ shared });
  const make = (hartIndex: number) => new Cpu({ module, ramSize: RAM_SIZE, layout, hartIndex, memory, jit, bus });
  return [make(0), make(1)];
}

function runToWfi(cpu: Cpu): void {
  for (let i = 0; i < 1000; i++) if (cpu.run(97) === ExitReason.Wfi) return;
  assert.fail("the hart did not reach WFI");
}

for (const shared of [false, true]) {
  for (const jit of ["off", "eager", { threshold: 2 }] as const) {
    const translated = jit !== "off";
    const name = `${shared ? "shared" : "plain"} memory, translator ${typeof jit === "string" ? jit : "threshold 2"}`;
    for (const writer of ["hart 1's store", "DMA through hart 1's Cpu"] as const) {
      test(`after ${writer}, hart 0 runs the new code once it executes FENCE.I (${name})`, () => {
        let rewrites = 0;
        let countersBefore: ReturnType<Cpu["translatorCounters"]>;
        const bus: PhysicalBus = {
          load(paddr) {
            if (paddr !== SYNC_MMIO) return undefined;
            rewrites++;
            countersBefore = a.translatorCounters();
            if (writer === "hart 1's store") {
              runToWfi(b);
            } else {
              new DataView(b.ram.buffer, b.ram.byteOffset).setUint32(FUNC - RAM, returns(2)[0], true);
              b.ramWritten(FUNC, 4);
            }
            return 0;
          },
          store: () => false,
        };
        const [a, b] = twoHarts(shared, jit, bus);
        a.writeRam(CODE0, toBytes(hart0Program()));
        a.writeRam(FUNC, toBytes(returns(1)));
        b.writeRam(CODE1, toBytes(hart1Program));
        a.pc = BigInt(CODE0);
        a.setX(20, BigInt(SYNC_MMIO));
        b.pc = BigInt(CODE1);
        b.setX(9, BigInt(FUNC));
        b.setX(5, BigInt(returns(2)[0]));

        runToWfi(a);
        assert.equal(rewrites, 1);
        assert.equal(a.x(18), 1n, "the old function ran before the rewrite");
        // Between the store and its FENCE.I hart 0 may still run what it decoded; it does here,
        // which shows that the FENCE.I is what brought the new code in.
        assert.equal(a.x(19), 1n);
        assert.equal(a.x(21), 2n, "after FENCE.I hart 0 runs the rewritten function");
        assert.equal(new DataView(a.ram.buffer, a.ram.byteOffset).getUint32(FUNC - RAM, true), returns(2)[0]);
        if (translated) {
          // Both code pages of hart 0 had been translated before the rewrite, and the function's
          // translation was dropped by the FENCE.I.
          assert.ok(countersBefore!.installs >= 2, `installs before the rewrite: ${countersBefore!.installs}`);
          assert.ok(countersBefore!.instructionsTranslatedRetired > 0);
          assert.ok(a.translatorCounters()!.drops > countersBefore!.drops, "hart 0 dropped a translation");
        }
      });
    }

    test(`code written by another hart becomes visible at the next run() even without FENCE.I (${name})`, () => {
      const bus: PhysicalBus = { load: () => undefined, store: () => false };
      const [a, b] = twoHarts(shared, jit, bus);
      // Hart 0: an endless loop calling the function, keeping its result in x18.
      const loop = [jal(1, FUNC - CODE0), aluImm("addi", 18, 10, 0), jal(0, -8)];
      a.writeRam(CODE0, toBytes(loop));
      a.writeRam(FUNC, toBytes(returns(1)));
      b.writeRam(CODE1, toBytes(hart1Program));
      a.pc = BigInt(CODE0);
      b.pc = BigInt(CODE1);
      b.setX(9, BigInt(FUNC));
      b.setX(5, BigInt(returns(3)[0]));
      for (let i = 0; i < 20; i++) a.run(50);
      assert.equal(a.x(18), 1n);
      runToWfi(b);
      a.run(50);
      assert.equal(a.x(18), 3n);
    });
  }
}

test("a hart's own stores to a page another hart holds code of stay correct, and repeated stores queue it once", () => {
  const bus: PhysicalBus = { load: () => undefined, store: () => false };
  const [a, b] = twoHarts(false, "off", bus);
  a.writeRam(CODE0, toBytes([jal(1, FUNC - CODE0), aluImm("addi", 18, 10, 0), jal(0, -8)]));
  a.writeRam(FUNC, toBytes(returns(1)));
  // Hart 1 fills the function's page behind the function with 1000 stores, then rewrites it.
  const fill = [
    aluImm("addi", 6, 0, 1000),
    store("sw", 9, 0, 8), // loop: the word after the function
    aluImm("addi", 6, 6, -1),
    branch("bne", 6, 0, -8),
    store("sw", 9, 5, 0),
    wfi(),
  ];
  b.writeRam(CODE1, toBytes(fill));
  a.pc = BigInt(CODE0);
  b.pc = BigInt(CODE1);
  b.setX(9, BigInt(FUNC));
  b.setX(5, BigInt(returns(4)[0]));
  for (let i = 0; i < 5; i++) a.run(50);
  assert.equal(a.x(18), 1n);
  const decodedBefore = Number(a.getState(L.S_CODE_PAGES_DECODED));
  runToWfi(b);
  a.run(50);
  assert.equal(a.x(18), 4n);
  // Hart 0 decoded its function page again once (its loop page was not written), and hart 1
  // queued the page for it once, not per store (the queue's head and tail sit in one 8-byte slot).
  assert.equal(Number(a.getState(L.S_CODE_PAGES_DECODED)) - decodedBefore, 1);
  assert.equal(a.getState(L.HART_CODE_QUEUE + L.CODE_QUEUE_HEAD), (1n << 32n) | 1n);
});
