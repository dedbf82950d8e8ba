// The machine's dirty-page log as live migration uses it: two harts write RAM continuously
// (plain stores and AMOs, translated and interpreted) while the host starts the log, copies all
// of RAM into a shadow, then repeatedly takes the dirty pages and copies those; once the machine
// is stopped, a last take and copy must leave the shadow equal to guest RAM. Both with a thread
// per hart (the shared engine, remote acknowledgements) and round robin on one thread.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtMachine, type HartThreadHost } from "./virt.ts";
import type { HartControl } from "./hart-control.ts";
import { loadCoreModule } from "../host/node/core-module.ts";
import { nodeHartThreads } from "../host/node/hart-threads.ts";
import { aluImm, aluReg, amo, jal, shiftImm, store, uType, OP } from "../../test/diff/encode.ts";
import { kernelImage, liSigned } from "../../test/support/guest-kernel.ts";
import { SBI_EXT_HSM } from "../sbi/index.ts";
import * as L from "../cpu/layout.ts";

const A0 = 10, A1 = 11, A2 = 12, A6 = 16, A7 = 17, S0 = 8, T0 = 5, T1 = 6, T2 = 7, T3 = 28, T4 = 29;
const ECALL = 0x00000073;
const PAGE = 4096;
const RAM_SIZE = 16 << 20;

/**
 * Hart 0 starts hart 1, then both run `common` with s0 = their hart id: t0 = a 1 MiB region
 * 2 MiB past the code (a region per hart); forever: t1 = counter, stores t1 into page
 * (t1 & 63) of the region at slot (t1 >> 6) & 511, and adds 1 to the region's first word with
 * an AMO.
 */
function writersKernel(): number[] {
  const hart0 = [
    ...liSigned(S0, 0),
    ...liSigned(A7, SBI_EXT_HSM), ...liSigned(A6, 0), ...liSigned(A0, 1),
    uType(OP.AUIPC, A1, 0), aluImm("addi", A1, A1, 0), // patched: a1 = hart 1's entry
    ...liSigned(A2, 0), ECALL,
    jal(0, 0), // patched: j common
  ];
  const hart1 = [aluImm("addi", S0, A0, 0), jal(0, 0)]; // patched: j common
  const common = [
    uType(OP.AUIPC, T0, 0x200),
    shiftImm("srli", T0, T0, 20),
    shiftImm("slli", T0, T0, 20),
    shiftImm("slli", T4, S0, 20),
    aluReg("add", T0, T0, T4),
    aluImm("addi", T1, 0, 0),
    // loop:
    aluImm("andi", T2, T1, 63),
    shiftImm("slli", T2, T2, 12),
    shiftImm("srli", T3, T1, 6),
    aluImm("andi", T3, T3, 511),
    shiftImm("slli", T3, T3, 3),
    aluReg("add", T2, T2, T3),
    aluReg("add", T2, T2, T0),
    store("sd", T2, T1, 0),
    amo("amoadd", 8, 0, T0, T1, false, false),
    aluImm("addi", T1, T1, 1),
    jal(0, -4 * 10),
  ];
  const hart1At = hart0.length;
  const commonAt = hart1At + hart1.length;
  const auipcAt = hart0.findIndex((insn) => insn === uType(OP.AUIPC, A1, 0));
  hart0[auipcAt + 1] = aluImm("addi", A1, A1, 4 * (hart1At - auipcAt));
  hart0[hart0.length - 1] = jal(0, 4 * (commonAt - (hart0.length - 1)));
  hart1[1] = jal(0, 4 * (commonAt - (hart1At + 1)));
  return [...hart0, ...hart1, ...common];
}

function pagesOf(bitmap: Uint32Array): number[] {
  const pages: number[] = [];
  bitmap.forEach((word, i) => {
    for (let bit = 0; bit < 32; bit++) if (word & (1 << bit)) pages.push(i * 32 + bit);
  });
  return pages;
}

/**
 * The invariant a harvest leaves behind: every write tag in any hart's TLB belongs to a page whose
 * dirty bit is set (the harts may keep running and granting tags, but only after marking).
 * Returns the pages that break it.
 */
function untrackedWriteTags(m: VirtMachine): number[] {
  const layout = m.cpu.layout;
  const view = new DataView(m.cpu.memory.buffer);
  const words = new Uint32Array(m.cpu.memory.buffer, layout.dirtyLogBase + L.DIRTY_LOG_BITMAP, layout.dirtyBitmapWords);
  // A hart that was not running when the harvest asked (between two slices of its thread, which
  // a loaded host can stretch) performs the flush before it runs again: until then its TLB may
  // still hold tags, harmlessly. Only harts with no flush pending are checked.
  const control = (m as unknown as { control?: HartControl }).control;
  const bad: number[] = [];
  for (const [hart, base] of layout.hartBases.entries()) {
    if (control && !control.fenceAcknowledged(hart, control.fenceRequested(hart))) continue;
    for (let e = base + L.HART_TLB; e < base + L.HART_TLB + L.TLB_CONTEXTS * L.TLB_ENTRIES * L.TLB_ENTRY_SIZE; e += L.TLB_ENTRY_SIZE) {
      const tag = view.getBigInt64(e + L.TLB_TAG_W, true);
      if (tag === -1n) continue;
      const addend = view.getBigInt64(e + L.TLB_ADDEND, true);
      if (view.getBigInt64(e + L.TLB_TAG_W, true) !== tag) continue; // refilled meanwhile
      const page = Number((((tag << 12n) + addend) & 0xffff_ffffn) - BigInt(layout.ramWasmBase)) / PAGE;
      if (page < 0 || page >= layout.ramSize / PAGE) continue;
      if ((Atomics.load(words, page >>> 5) & (1 << (page & 31))) === 0) bad.push(page);
    }
  }
  return bad;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const threads of [true, false]) {
  for (const jit of ["on", "off"] as const) {
    test(`pre-copy migration: the shadow equals guest RAM after the final harvest (${threads ? "a thread per hart" : "round robin"}, translator ${jit})`, async () => {
      const hartThreads: HartThreadHost | undefined = threads ? nodeHartThreads() : undefined;
      const m = new VirtMachine({
        module: loadCoreModule({ shared: threads }),
        hartThreads,
        harts: 2,
        ramSize: RAM_SIZE,
        kernel: kernelImage(writersKernel()),
        bootargs: "",
        jit: jit === "on" ? { threshold: 2 } : "off",
        output: () => {},
      });
      const running = m.run();
      const ram = m.cpu.ram;
      const shadow = new Uint8Array(ram.length);
      const copyPages = (bitmap: Uint32Array) => {
        for (const page of pagesOf(bitmap)) shadow.set(ram.subarray(page * PAGE, (page + 1) * PAGE), page * PAGE);
      };
      // Until both harts write (threads take a while to start).
      const counterAt = (hart: number) => new DataView(ram.buffer, ram.byteOffset).getBigUint64(0x400000 + hart * 0x100000, true);
      for (let wait = 0; wait < 500 && (counterAt(0) === 0n || counterAt(1) === 0n); wait++) await sleep(10);
      assert.ok(counterAt(0) !== 0n && counterAt(1) !== 0n, "both harts write");
      assert.equal(m.dirtyLogging, false);
      await m.startDirtyLog();
      assert.equal(m.dirtyLogging, true);
      shadow.set(ram);
      const rounds: number[][] = [];
      try {
        for (let round = 0; round < 12; round++) {
          await sleep(5);
          const bitmap = await m.takeDirtyPages();
          assert.deepEqual(untrackedWriteTags(m), [], `round ${round}: write tags of pages not marked dirty`);
          copyPages(bitmap);
          rounds.push(pagesOf(bitmap));
        }
      } finally {
        // A failed round must not leave the harts running: the test file would never end.
        m.stop();
      }
      assert.deepEqual(await running, { reason: "stopped" });
      copyPages(await m.takeDirtyPages());

      // Both harts' regions are being written (64 pages each, 4 MiB and 5 MiB into RAM).
      const written = new Set(rounds.flat());
      for (const hart of [0, 1]) {
        const first = (0x400000 + hart * 0x100000) / PAGE;
        assert.ok([...written].some((p) => p >= first && p < first + 64), `hart ${hart}'s pages appear in the harvests`);
      }
      let firstDiff = -1;
      for (let i = 0; i < ram.length; i++) {
        if (ram[i] !== shadow[i]) {
          firstDiff = i;
          break;
        }
      }
      assert.equal(firstDiff, -1, `shadow differs from RAM at offset 0x${firstDiff.toString(16)} (page ${firstDiff >> 12})`);
      const stats = m.dirtyLogStats;
      assert.equal(stats.harvests, 13);
      assert.ok(stats.pagesHarvested >= written.size, JSON.stringify(stats));
      assert.ok(stats.dirtyPageFaults > 0, JSON.stringify(stats));
      m.stopDirtyLog();
      assert.equal(m.dirtyLogging, false);
      await assert.rejects(m.takeDirtyPages(), /dirty logging is off/);
    });
  }
}

for (const threads of [false, true]) {
  test(`host writes (hostRam.ramWritten, writeGuest) are logged (${threads ? "a thread per hart" : "round robin"})`, async () => {
    const m = new VirtMachine({
      module: loadCoreModule({ shared: threads }),
      hartThreads: threads ? nodeHartThreads() : undefined,
      harts: 2,
      ramSize: RAM_SIZE,
      kernel: kernelImage([jal(0, 0)]),
      bootargs: "",
      output: () => {},
    });
    const ramBase = m.hostRam.ramBase;
    m.hostRam.ramWritten(ramBase + 0x800000, PAGE); // before logging: not reported
    await m.startDirtyLog();
    m.hostRam.ramWritten(ramBase + 0x900000, 2 * PAGE); // a balloon release of two pages
    assert.equal(m.writeGuest(BigInt(ramBase + 0xa00ff8), new Uint8Array(16)), true); // straddles two pages
    assert.deepEqual(pagesOf(await m.takeDirtyPages()), [0x900, 0x901, 0xa00, 0xa01]);
    assert.deepEqual(pagesOf(await m.takeDirtyPages()), []);
    assert.equal(m.dirtyLogStats.pagesHarvested, 4);
    m.stopDirtyLog();
  });
}
