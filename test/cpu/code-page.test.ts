// Code and data on one page: stores to the data part of a page holding decoded or translated code
// leave that code alone (mmu.ts, "Code chunks"); a store to the code part is seen (after FENCE.I).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Cpu, ExitReason, type CpuOptions } from "../../src/cpu/cpu.ts";
import { coreLayout } from "../../src/cpu/core-layout.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { parseElf } from "../../src/platform/elf.ts";
import { BareMetalMachine } from "../../src/machine/bare-metal.ts";
import { nodeClock } from "../../src/host/node/clock.ts";
import { buildCodePage } from "../../src/image/guest-programs.ts";
import * as L from "../../src/cpu/layout.ts";
import { aluImm, branch, fenceI, jal, jalr, store, toBytes, wfi } from "../diff/encode.ts";
import { BAREMETAL_TOOLCHAIN, needsHostTools } from "../support/host-tools.ts";

const RAM = 0x8000_0000;
const CALLS = 200;
/** The function starts 2 bytes before a chunk boundary, so its first instruction straddles two chunks. */
const FUNC = 0x13e;
/** Data in the same page, chunks away from the code. */
const DATA = 0x7f0;

const returns = (value: number) => [aluImm("addi", 10, 0, value), jalr(0, 1, 0)];

/**
 * One page: CALLS calls of the function at FUNC, each followed by a store of the loop counter to
 * DATA; then the upper half of the function's first instruction (the chunk after the boundary) is
 * rewritten to return 2, and after FENCE.I the function is called again.
 */
function program(): Uint8Array {
  const p: number[] = [];
  const call = () => jal(1, FUNC - 4 * p.length);
  p.push(aluImm("addi", 8, 0, CALLS));
  const loop = p.length;
  p.push(call());
  p.push(store("sw", 9, 8, DATA));
  p.push(aluImm("addi", 8, 8, -1));
  p.push(branch("bne", 8, 0, (loop - p.length) * 4));
  p.push(aluImm("addi", 18, 10, 0));
  p.push(store("sh", 9, 5, FUNC + 2));
  p.push(fenceI());
  p.push(call());
  p.push(aluImm("addi", 21, 10, 0));
  p.push(wfi());
  const page = new Uint8Array(0x1000);
  page.set(toBytes(p), 0);
  page.set(toBytes(returns(1)), FUNC);
  return page;
}

for (const jit of ["off", "eager", { threshold: 2 }] as const) {
  const name = typeof jit === "string" ? jit : "threshold 2";
  test(`a store to the data of a code page drops nothing, a store to its code is seen after FENCE.I (translator ${name})`, () => {
    const cpu = new Cpu({ module: loadCoreModule(), ramSize: 1 << 20, jit: jit as CpuOptions["jit"] });
    cpu.writeRam(RAM, program());
    cpu.pc = BigInt(RAM);
    cpu.setX(9, BigInt(RAM));
    cpu.setX(5, BigInt(returns(2)[0] >>> 16));
    let exit: ExitReason | undefined;
    for (let i = 0; i < 1000 && exit !== ExitReason.Wfi; i++) exit = cpu.run(1000);
    assert.equal(exit, ExitReason.Wfi);
    assert.equal(cpu.x(18), 1n, "the old function ran before the rewrite");
    assert.equal(cpu.x(21), 2n, "the rewritten function runs after FENCE.I");
    assert.equal(new DataView(cpu.ram.buffer, cpu.ram.byteOffset).getUint32(DATA, true), 1);
    // Only the store to the code dropped the page; every data store was counted as such.
    assert.equal(cpu.getState(L.S_CODE_INVALIDATIONS), 1n);
    assert.equal(cpu.getState(L.S_CODE_PAGE_DATA_WRITES), BigInt(CALLS));
    const t = cpu.translatorCounters();
    if (t) {
      assert.ok(t.installs >= 1 && t.instructionsTranslatedRetired > 0, "the page was translated and ran translated");
      assert.ok(t.drops <= 1, `translations dropped: ${t.drops}`);
    }
  });
}

for (const shared of [false, true]) {
  test(`another hart's stores to the data of a page hart 0 runs code of are not queued, to its code they are (${shared ? "shared" : "plain"} memory)`, () => {
    const layout = coreLayout({ harts: 2, ramSize: 1 << 20 });
    const memory = new WebAssembly.Memory({ initial: layout.memoryPages, maximum: layout.memoryPages, shared });
    const module = loadCoreModule({ shared });
    const [a, b] = [0, 1].map((hartIndex) => new Cpu({ module, ramSize: 1 << 20, layout, hartIndex, memory, jit: "off" }));
    // Hart 0 loops calling the function at FUNC of the page at RAM, keeping its result in x18.
    const page = new Uint8Array(0x1000);
    page.set(toBytes([jal(1, FUNC), aluImm("addi", 18, 10, 0), jal(0, -8)]), 0);
    page.set(toBytes(returns(1)), FUNC);
    a.writeRam(RAM, page);
    a.pc = BigInt(RAM);
    // Hart 1, from the next page: 100 stores to DATA, then one to the function's first instruction.
    b.writeRam(RAM + 0x1000, toBytes([
      aluImm("addi", 6, 0, 100),
      store("sw", 9, 6, DATA), // loop
      aluImm("addi", 6, 6, -1),
      branch("bne", 6, 0, -8),
      wfi(),
      store("sw", 9, 5, FUNC),
      wfi(),
    ]));
    b.pc = BigInt(RAM + 0x1000);
    b.setX(9, BigInt(RAM));
    b.setX(5, BigInt(returns(5)[0]));
    const queue = () => a.getState(L.HART_CODE_QUEUE + L.CODE_QUEUE_HEAD); // head and tail share the slot
    for (let i = 0; i < 5; i++) a.run(50);
    assert.equal(a.x(18), 1n);
    const runToWfi = () => {
      for (let i = 0; i < 100; i++) if (b.run(97) === ExitReason.Wfi) return;
      assert.fail("hart 1 did not reach WFI");
    };
    runToWfi();
    assert.equal(queue(), 0n, "data stores queued nothing");
    assert.equal(b.getState(L.S_CODE_PAGE_DATA_WRITES), 0n, "hart 1 holds no code of the page");
    a.run(50);
    assert.equal(a.getState(L.S_CODE_INVALIDATIONS), 0n);
    runToWfi(); // WFI returned with pc after it: on to the code store
    assert.equal(queue(), 1n << 32n, "the code store queued the page for hart 0");
    a.run(50);
    assert.equal(a.x(18), 5n, "hart 0 runs the new code from its next slice");
    assert.equal(a.getState(L.S_CODE_INVALIDATIONS), 1n);
  });
}

/** The checksum guest/bench/codepage.c prints, computed here. */
function codePageChecksum(iterations: number): string {
  const M = (1n << 64n) - 1n;
  let state = 1n;
  let sum = 0n;
  const histogram = new Array<bigint>(64).fill(0n);
  for (let i = 0; i < iterations; i++) {
    state = (state * 6364136223846793005n + 1442695040888963407n) & M;
    histogram[Number(state >> 58n)]++;
    sum = (sum + (state >> 32n)) & M;
  }
  let checksum = sum;
  for (const count of histogram) checksum = (checksum * 31n + count) & M;
  return checksum.toString(16).padStart(16, "0");
}

const tools = needsHostTools(...BAREMETAL_TOOLCHAIN);
const ITERATIONS = 20_000;

for (const jit of ["off", "eager"] as const) {
  test(`guest/bench/codepage.c: its loop shares a page with its data, and the data stores drop no code (translator ${jit})`, { skip: tools.skip }, async () => {
    tools.check();
    const elf = parseElf(new Uint8Array(readFileSync(await buildCodePage("baremetal", ITERATIONS))));
    const page = (symbol: string) => {
      const address = elf.symbols.get(symbol);
      assert.ok(address !== undefined, `symbol ${symbol}`);
      return Math.floor(address / 4096);
    };
    for (const data of ["codepage_state", "codepage_sum", "codepage_histogram"]) {
      assert.equal(page(data), page("codepage_loop"), `${data} is on codepage_loop's page`);
    }
    let output = "";
    const machine = new BareMetalMachine({
      module: loadCoreModule(), elf, jit, clock: nodeClock,
      onOutput: (bytes) => { output += new TextDecoder().decode(bytes); },
    });
    const result = await machine.run();
    assert.equal(result.exitCode, 0);
    assert.equal(output.trim(), `codepage ${ITERATIONS} ${codePageChecksum(ITERATIONS)}`);
    // Three stores per iteration into the loop's page (before sub-page tracking each dropped the
    // page's code: 3 * ITERATIONS drops); now none does.
    assert.equal(machine.cpu.getState(L.S_CODE_INVALIDATIONS), 0n);
    assert.ok(machine.cpu.getState(L.S_CODE_PAGE_DATA_WRITES) >= BigInt(3 * ITERATIONS));
    if (jit === "eager") {
      // The ledger (--stats) shows the same counts.
      const translator = machine.ledger().translator!;
      assert.equal(translator.drops, 0);
      assert.equal(translator.codePagesDropped, 0);
      assert.equal(BigInt(translator.codePageDataWrites), machine.cpu.getState(L.S_CODE_PAGE_DATA_WRITES));
    }
  });
}
