// The dirty-page log below the machine: one hart (the single-hart default layout on the plain
// engine, and hart 0 of a two-hart layout on the shared engine), interpreted and translated,
// writes a known set of pages through plain stores, a loop of stores, an AMO and LR/SC, in S-mode
// under an Sv39 page table whose A/D bits the walker sets; the log must report exactly those
// pages (and the page-table page), then after a harvest only the pages written since. Host
// writes (DMA) are logged too, and with logging off nothing is.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cpu, ExitReason, PRIV_S, type CpuOptions } from "../../src/cpu/cpu.ts";
import { coreLayout } from "../../src/cpu/core-layout.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { CSR_SATP } from "../../src/cpu/csr-numbers.ts";
import { aluImm, amo, branch, load, store, toBytes, wfi } from "../diff/encode.ts";

const RAM = 0x8000_0000;
const RAM_SIZE = 4 << 20;
const PAGE = 4096;
const ROOT_TABLE_PAGE = 16;
const page = (n: number) => RAM + n * PAGE;

// x9 = 1; x5, x6, x7, x28, x29, x30, x31: pages 32, 33, 34, 40, 41, 35, 36 (set by the host).
const PHASE1 = [
  store("sd", 5, 9, 0), // page 32
  store("sd", 6, 9, 8), // page 33, twice
  store("sd", 6, 9, 16),
  aluImm("addi", 8, 0, 100), // 100 stores to page 34 in a loop (translated in eager mode)
  store("sw", 7, 8, 0),
  aluImm("addi", 8, 8, -1),
  branch("bne", 8, 0, -8),
  amo("amoadd", 8, 0, 28, 9, false, false), // page 40
  amo("lr", 8, 10, 29, 0, false, false), // page 41: LR/SC adds 5
  aluImm("addi", 10, 10, 5),
  amo("sc", 8, 11, 29, 10, false, false),
  wfi(),
];
const PHASE1_PAGES = [ROOT_TABLE_PAGE, 32, 33, 34, 40, 41];
const PHASE2_AT = 0x100;
const PHASE2 = [
  store("sd", 5, 9, 24), // page 32 again
  store("sw", 30, 9, 0), // page 35
  store("sw", 30, 9, 4),
  amo("amoswap", 8, 0, 28, 9, false, false), // page 40 again
  load("ld", 12, 31, 0), // page 36: a load fills the TLB entry first (the PTE's D is set), then a store
  store("sd", 31, 9, 0),
  wfi(),
];
const PHASE2_PAGES = [32, 35, 36, 40];

type Variant = { name: string; shared: boolean; jit: CpuOptions["jit"] };
const VARIANTS: Variant[] = [
  { name: "plain engine, one hart's default layout, interpreter", shared: false, jit: "off" },
  { name: "plain engine, one hart's default layout, translator eager", shared: false, jit: "eager" },
  { name: "shared engine, hart 0 of a two-hart layout, interpreter", shared: true, jit: "off" },
  { name: "shared engine, hart 0 of a two-hart layout, translator eager", shared: true, jit: "eager" },
];

function makeCpu({ shared, jit }: Variant): Cpu {
  const module = loadCoreModule({ shared });
  if (!shared) return new Cpu({ module, ramSize: RAM_SIZE, jit });
  const layout = coreLayout({ harts: 2, ramSize: RAM_SIZE });
  const memory = new WebAssembly.Memory({ initial: layout.memoryPages, maximum: layout.memoryPages, shared: true });
  return new Cpu({ module, ramSize: RAM_SIZE, layout, hartIndex: 0, memory, jit });
}

/** The program in S-mode, with RAM's first GiB identity-mapped by one Sv39 gigapage whose PTE has A and D clear. */
function prepare(cpu: Cpu): void {
  cpu.writeRam(RAM, toBytes(PHASE1));
  cpu.writeRam(RAM + PHASE2_AT, toBytes(PHASE2));
  const pte = (BigInt(RAM >>> 12) << 10n) | 0xfn; // V R W X, no A/D
  const root = new Uint8Array(8);
  new DataView(root.buffer).setBigUint64(0, pte, true);
  cpu.writeRam(page(ROOT_TABLE_PAGE) + 2 * 8, root); // VPN[2] = 2 for 0x8000_0000
  cpu.writeCsr(CSR_SATP, (8n << 60n) | BigInt(page(ROOT_TABLE_PAGE) >>> 12));
  cpu.priv = PRIV_S;
  cpu.pc = BigInt(RAM);
  cpu.setX(9, 1n);
  for (const [reg, n] of [[5, 32], [6, 33], [7, 34], [28, 40], [29, 41], [30, 35], [31, 36]]) cpu.setX(reg, BigInt(page(n)));
}

function runToWfi(cpu: Cpu): void {
  for (let i = 0; i < 100; i++) if (cpu.run(1000) === ExitReason.Wfi) return;
  assert.fail("the hart did not reach WFI");
}

const pagesOf = (bitmap: Uint32Array) => {
  const pages: number[] = [];
  bitmap.forEach((word, i) => {
    for (let bit = 0; bit < 32; bit++) if (word & (1 << bit)) pages.push(i * 32 + bit);
  });
  return pages;
};

/** Turns logging on as the machine does for a hart that is not running: on, then no write tag survives. */
function startLog(cpu: Cpu): void {
  cpu.setDirtyLogging(true);
  cpu.dropWriteTags();
}
function harvest(cpu: Cpu): number[] {
  const pages = pagesOf(cpu.exchangeDirtyBitmap());
  cpu.dropWriteTags();
  return pages;
}

for (const variant of VARIANTS) {
  test(`the log reports exactly the pages written, then only those written since (${variant.name})`, () => {
    const cpu = makeCpu(variant);
    prepare(cpu);
    // Write tags granted before logging starts (a first run of the phase) must not hide later stores.
    runToWfi(cpu);
    assert.equal(cpu.exchangeDirtyBitmap().every((w) => w === 0), true, "nothing is logged while logging is off");
    cpu.pc = BigInt(RAM);
    startLog(cpu);
    assert.equal(cpu.dirtyLogging, true);
    runToWfi(cpu);
    assert.equal(cpu.x(11), 0n, "the SC succeeded");
    assert.deepEqual(pagesOf(cpu.exchangeDirtyBitmap()), [32, 33, 34, 40, 41], "the second run: A/D already set, so no page-table write");
    cpu.dropWriteTags();

    // A fresh page table (A/D clear again) and a fresh run: the walker's writes are logged too.
    const fresh = makeCpu(variant);
    prepare(fresh);
    startLog(fresh);
    runToWfi(fresh);
    assert.deepEqual(harvest(fresh), PHASE1_PAGES);
    assert.ok(fresh.dirtyFaults >= PHASE1_PAGES.length, `dirty faults ${fresh.dirtyFaults}`);
    assert.equal(new DataView(fresh.ram.buffer, fresh.ram.byteOffset).getBigUint64(page(41) - RAM, true), 5n, "LR/SC wrote");

    fresh.pc = BigInt(RAM + PHASE2_AT);
    runToWfi(fresh);
    assert.deepEqual(harvest(fresh), PHASE2_PAGES, "only the pages written since the harvest");
    assert.deepEqual(harvest(fresh), [], "nothing written since");

    // Again, for pages whose write tags the first phase left behind: they were dropped at harvest.
    fresh.pc = BigInt(RAM);
    runToWfi(fresh);
    assert.deepEqual(harvest(fresh), [32, 33, 34, 40, 41]);
  });

  test(`DMA through writeRam and ramWritten is logged; with logging off nothing is (${variant.name})`, () => {
    const cpu = makeCpu(variant);
    cpu.writeRam(page(70), new Uint8Array([1, 2, 3]));
    cpu.ramWritten(page(71), PAGE);
    assert.deepEqual(pagesOf(cpu.exchangeDirtyBitmap()), [], "logging off");
    startLog(cpu);
    cpu.writeRam(page(70) + PAGE - 2, new Uint8Array([1, 2, 3, 4])); // straddles pages 70 and 71
    cpu.ram[page(80) - RAM] = 9;
    cpu.ramWritten(page(80), 1);
    cpu.hostWroteRam(page(90) + 8, PAGE); // pages 90 and 91
    cpu.markDirty(page(100), 1);
    assert.deepEqual(harvest(cpu), [70, 71, 80, 90, 91, 100]);
    assert.equal(cpu.dirtyFaults, 0, "host writes are not the hart's dirty-page faults");
    cpu.setDirtyLogging(false);
    cpu.writeRam(page(70), new Uint8Array([1]));
    assert.deepEqual(harvest(cpu), [], "logging stopped");
  });
}

test("with logging off, stores keep their write tags: one TLB miss per page, no dirty faults", () => {
  const cpu = makeCpu(VARIANTS[0]);
  prepare(cpu);
  runToWfi(cpu);
  assert.equal(cpu.dirtyFaults, 0);
  assert.equal(cpu.dirtyLogging, false);
  assert.deepEqual(pagesOf(cpu.exchangeDirtyBitmap()), []);
});
