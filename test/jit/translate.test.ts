// The translator against the interpreter: the same programs on a core with the translator off and
// on (eager: every code page translated on its first execution; and hot-page mode with a
// threshold of one taken branch) must end in the same state, with the same instret, whatever
// the budgets run() gets. Plus the cases the translator must get right beyond plain computing:
// self-modifying code, precise faults, page-table changes, atomics, FP dirty tracking,
// interrupts between runs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cpu, ExitReason, PRIV_S, type AccessSize, type CpuOptions } from "../../src/cpu/cpu.ts";
import * as L from "../../src/cpu/layout.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { startTypeScriptWorker } from "../../src/host/node/hart-threads.ts";
import { observeTranslations } from "../../src/cpu/jit/jit.ts";
import { Note } from "../../src/cpu/jit/frame.ts";
import * as E from "../diff/encode.ts";
import { BASE, RAM, SCRATCH, li, loadProgram, randomProgram, words } from "./programs.ts";
import { PAGE_END_LOOPS, PAGE_END_VALUE, runPageEndProgram, type PageEndResult } from "./page-end-entry.ts";
import {
  CSR_MSTATUS as MSTATUS, CSR_MIE as MIE, CSR_MTVEC as MTVEC, CSR_MEPC as MEPC, CSR_MCAUSE as MCAUSE, CSR_MTVAL as MTVAL,
  CSR_SATP as SATP, CSR_INSTRET, CSR_MCOUNTEREN,
} from "../../src/cpu/csr-numbers.ts";
import { MIP_MSIP } from "../../src/cpu/interrupts.ts";

const RAM_SIZE = 4 << 20;
/** Random programs per translator mode (JIT_TEST_SEEDS for longer campaigns). */
const SEEDS = Number(process.env.JIT_TEST_SEEDS ?? 12);

type Mode = NonNullable<CpuOptions["jit"]>;
const MODES: [string, Mode][] = [
  ["eager", "eager"],
  ["hot pages (threshold 1)", { threshold: 1 }],
];

function makeCpu(jit: Mode | false, bus?: Cpu["bus"]): Cpu {
  const cpu = new Cpu({ module: loadCoreModule(), ramSize: RAM_SIZE, bus, jit });
  cpu.writeCsr(MSTATUS, 3n << 13n); // FS = Dirty: FP instructions allowed
  return cpu;
}

/** Runs until WFI, in slices of the given sizes (cycling); fails on a program that does not get there. */
function runToWfi(cpu: Cpu, slices: number[], limit = 2_000_000): void {
  let steps = 0;
  for (let k = 0; steps < limit; k++) {
    const slice = slices[k % slices.length];
    const reason = cpu.run(slice);
    steps += slice;
    if (reason === ExitReason.Wfi) return;
  }
  throw new Error(`no WFI within ${limit} steps (pc 0x${cpu.pc.toString(16)}, mcause ${cpu.readCsr(MCAUSE)})`);
}

interface Snapshot {
  pc: bigint;
  instret: bigint;
  x: bigint[];
  f: bigint[];
  fcsr: bigint;
  mstatus: bigint;
  scratch: Uint8Array;
}
function snapshot(cpu: Cpu): Snapshot {
  return {
    pc: cpu.pc,
    instret: cpu.instret,
    x: Array.from({ length: 32 }, (_, i) => cpu.x(i)),
    f: Array.from({ length: 32 }, (_, i) => cpu.f(i)),
    fcsr: cpu.readCsr(0x003),
    mstatus: cpu.readCsr(MSTATUS),
    scratch: cpu.readRam(SCRATCH, 8192),
  };
}

// ---- random programs --------------------------------------------------------------------------

for (const [name, mode] of MODES) {
  test(`random programs end alike with the translator (${name}) and without, whatever the budgets`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const program = randomProgram(seed);
      const reference = makeCpu(false);
      loadProgram(reference, program, seed);
      try {
        runToWfi(reference, [1_000_000]);
      } catch (err) {
        throw new Error(`seed ${seed} (interpreter): ${(err as Error).message}`);
      }
      const expected = snapshot(reference);
      for (const slices of [[1_000_000], [1, 7, 50, 333], [97]]) {
        const cpu = makeCpu(mode);
        loadProgram(cpu, program, seed);
        try {
          runToWfi(cpu, slices);
        } catch (err) {
          throw new Error(`seed ${seed}, slices ${slices}: ${(err as Error).message}`);
        }
        assert.deepEqual(snapshot(cpu), expected, `seed ${seed}, slices ${slices}`);
      }
    }
  });
}

// ---- specific behaviours ------------------------------------------------------------------------

/** Runs a program on the interpreter and with each translator mode; returns the snapshots. */
function compareModes(setup: (cpu: Cpu) => void, slices = [1_000_000]): Snapshot {
  return compareModesOn(setup, slices);
}

function compareModesOn(setup: (cpu: Cpu) => void, slices: number[], bus?: Cpu["bus"]): Snapshot {
  const reference = makeCpu(false, bus);
  setup(reference);
  runToWfi(reference, slices);
  const expected = snapshot(reference);
  for (const [name, mode] of MODES) {
    const cpu = makeCpu(mode, bus);
    setup(cpu);
    runToWfi(cpu, slices);
    assert.deepEqual(snapshot(cpu), expected, name);
  }
  return expected;
}

test("a loop that rewrites an instruction of its own page sees every new version", () => {
  // 0: li t0, 100 ; loop: patched: addi a0, a0, k ; build addi a0,a0,(t0) in t1 ; sw t1, -> patched ;
  // addi t0, t0, -1 ; bnez t0, loop ; wfi
  const base = RAM + 0x800;
  const patched = base + 16;
  const addiA0 = E.aluImm("addi", 10, 10, 0); // immediate field filled in by the program
  const prog = [
    ...li(5, 100), // t0 = 100           (base + 0 .. + 12)
    addiA0, // patched                   (base + 16)
    ...li(6, addiA0), // t1 = addi a0,a0,0 template
    E.shiftImm("slli", 7, 5, 20), // t2 = t0 << 20 (the immediate field)
    E.aluReg("or", 6, 6, 7),
    ...li(28, patched), // t3 = &patched
    E.store("sw", 28, 6, 0),
    E.aluImm("addi", 5, 5, -1),
    E.branch("bne", 5, 0, -4 * 13), // back to the patched instruction
    E.wfi(),
  ];
  const final = compareModes((cpu) => {
    cpu.writeRam(base, words(prog));
    cpu.pc = BigInt(base);
  });
  // First pass adds 0, then 100, 99, ..., 2 (each iteration runs the instruction patched before).
  assert.equal(final.x[10], BigInt((100 * 101) / 2 - 1));
});

test("an access fault in the middle of translated code traps precisely", () => {
  const bus = { load: (paddr: number) => (paddr === 0x1000_0000 ? undefined : 0), store: () => true };
  const prog = [
    E.aluImm("addi", 10, 0, 1),
    E.aluImm("addi", 11, 0, 2),
    E.lui(12, 0x10000), // a2 = 0x10000000: the bus refuses loads there
    E.load("lw", 13, 12, 0), // faults
    E.aluImm("addi", 14, 0, 4), // must not run
    E.wfi(),
  ];
  const trap = [E.wfi()];
  for (const [name, mode] of [["interpreter", false], ...MODES] as [string, Mode | false][]) {
    const cpu = makeCpu(mode, bus);
    cpu.writeRam(RAM, words(prog));
    cpu.writeRam(RAM + 0x400, words(trap));
    cpu.writeCsr(MTVEC, BigInt(RAM + 0x400));
    cpu.pc = BigInt(RAM);
    assert.equal(cpu.run(1000), ExitReason.Wfi, name);
    assert.equal(cpu.readCsr(MCAUSE), 5n, name);
    assert.equal(cpu.readCsr(MEPC), BigInt(RAM + 12), name);
    assert.equal(cpu.readCsr(MTVAL), 0x1000_0000n, name);
    assert.deepEqual([cpu.x(10), cpu.x(11), cpu.x(13), cpu.x(14)], [1n, 2n, 0n, 0n], name);
    assert.equal(cpu.instret, 4n, name); // three before the fault, and the handler's wfi
  }
});

test("MMIO from translated code leaves the core with the right values", () => {
  const seen: string[] = [];
  const bus = {
    load: (paddr: number, size: AccessSize) => (seen.push(`load ${paddr.toString(16)} ${size}`), 0x40 + seen.length),
    store: (paddr: number, size: AccessSize, value: number | bigint) => (seen.push(`store ${paddr.toString(16)} ${size} ${value}`), true),
  };
  const prog = [E.lui(12, 0x10000), E.aluImm("addi", 5, 0, 3)];
  // loop: load, add, store back, three times
  prog.push(E.load("lbu", 13, 12, 5), E.aluImm("addi", 13, 13, 1), E.store("sb", 12, 13, 0), E.aluImm("addi", 5, 5, -1), E.branch("bne", 5, 0, -16), E.wfi());
  for (const [name, mode] of [["interpreter", false], ...MODES] as [string, Mode | false][]) {
    seen.length = 0;
    const cpu = makeCpu(mode, bus);
    cpu.writeRam(RAM, words(prog));
    cpu.pc = BigInt(RAM);
    runToWfi(cpu, [1000]);
    assert.deepEqual(seen, ["load 10000005 1", "store 10000000 1 66", "load 10000005 1", "store 10000000 1 68", "load 10000005 1", "store 10000000 1 70"], name);
  }
});

test("instret read inside a loop counts exactly", () => {
  const prog = [E.aluImm("addi", 5, 0, 50), E.aluImm("addi", 6, 6, 1), E.csr("csrrs", 7, CSR_INSTRET, 0), E.aluReg("add", 10, 10, 7), E.aluImm("addi", 5, 5, -1), E.branch("bne", 5, 0, -16), E.wfi()];
  compareModes((cpu) => {
    cpu.writeRam(RAM, words(prog));
    cpu.writeCsr(CSR_MCOUNTEREN, 0xffff_ffffn); // harmless in M-mode
    cpu.pc = BigInt(RAM);
  }, [1, 13, 1000]);
});

test("LR/SC and AMOs in translated loops", () => {
  const prog = [
    ...li(BASE, SCRATCH),
    E.aluImm("addi", 5, 0, 64),
    // retry: lr.d a0, (s11); addi a0, a0, 3; sc.d a1, a0, (s11); bnez a1, retry
    E.amo("lr", 8, 10, BASE, 0, true, false),
    E.aluImm("addi", 10, 10, 3),
    E.amo("sc", 8, 11, BASE, 10, false, true),
    E.branch("bne", 11, 0, -12),
    E.amo("amoadd", 4, 12, BASE, 5, false, false),
    E.amo("amomaxu", 8, 13, BASE, 12, false, false),
    E.aluImm("addi", 5, 5, -1),
    E.branch("bne", 5, 0, -28),
    E.wfi(),
  ];
  compareModes((cpu) => {
    cpu.writeRam(RAM, words(prog));
    cpu.pc = BigInt(RAM);
  }, [5, 1000]);
});

test("FP writes in translated code mark the FP state dirty", () => {
  const prog = [E.aluImm("addi", 5, 0, 7), E.fcvtFpFromInt(2, 1, 7, 1, 5), E.fmvXF(1, 6, 1), E.wfi()];
  const final = compareModes((cpu) => {
    cpu.writeCsr(MSTATUS, 1n << 13n); // FS = Initial
    cpu.writeRam(RAM, words(prog));
    cpu.pc = BigInt(RAM);
  });
  assert.equal((final.mstatus >> 13n) & 3n, 3n);
  assert.equal(final.x[6], 0x401c000000000000n); // 7.0
});

test("an interrupt raised between runs is taken where the translated code stopped", () => {
  // An endless counting loop; the host raises a software interrupt after some slices. (Budgets
  // differ between modes by the interpreter's decode bounces, so each mode is checked for a
  // consistent state rather than against the others.)
  const prog = [E.aluImm("addi", 10, 10, 1), E.jal(0, -4)];
  const handler = [E.csr("csrrw", 0, MIE, 0), E.wfi()]; // mie = 0 so that the wfi waits
  for (const [name, mode] of [["interpreter", false], ...MODES] as [string, Mode | false][]) {
    const cpu = makeCpu(mode);
    cpu.writeRam(RAM, words(prog));
    cpu.writeRam(RAM + 0x400, words(handler));
    cpu.writeCsr(MTVEC, BigInt(RAM + 0x400));
    cpu.writeCsr(MIE, BigInt(MIP_MSIP));
    cpu.writeCsr(MSTATUS, cpu.readCsr(MSTATUS) | 8n); // MIE
    cpu.pc = BigInt(RAM);
    for (let i = 0; i < 5; i++) assert.equal(cpu.run(1001), ExitReason.Budget, name);
    cpu.setPendingInterrupt(MIP_MSIP, true);
    assert.equal(cpu.run(1000), ExitReason.Wfi, name);
    assert.equal(cpu.readCsr(MCAUSE), (1n << 63n) | 3n, name);
    const loop = cpu.instret - 2n; // the handler retired two
    assert.ok(loop > 4900n, `${name}: ${loop} loop instructions`);
    assert.equal(cpu.x(10), (loop + 1n) / 2n, name);
    assert.equal(cpu.readCsr(MEPC), BigInt(RAM) + 4n * (loop % 2n), name);
  }
});

test("a page mapped anew (page table change + SFENCE.VMA) runs its new code", () => {
  // Sv39: root at RAM+0x20000 -> level 1 at +0x21000 -> level 0 at +0x22000; VA 0x40000000
  // maps the code page, VA 0x40001000 a trampoline (sfence.vma; jump to 0x40000000).
  const root = RAM + 0x20000, l1 = RAM + 0x21000, l0 = RAM + 0x22000;
  const pageA = RAM + 0x30000, pageB = RAM + 0x31000, tramp = RAM + 0x32000;
  const ptr = (pa: number) => BigInt(((pa >>> 12) << 10) | 1);
  const leaf = (pa: number) => BigInt(((pa >>> 12) << 10) | 0xcf); // V R W X A D
  const pte = (v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return b;
  };
  const codeA = [E.aluImm("addi", 11, 0, 1), E.aluImm("addi", 12, 12, 1), E.aluImm("addi", 13, 13, 1), E.wfi()];
  const codeB = [E.aluImm("addi", 11, 0, 2), E.aluImm("addi", 12, 12, 10), E.aluImm("addi", 13, 13, 10), E.wfi()];
  const trampoline = [0x12000073 /* sfence.vma */, E.lui(5, 0x40000), E.jalr(0, 5, 0)];
  const results: bigint[][] = [];
  for (const [name, mode] of [["interpreter", false], ...MODES] as [string, Mode | false][]) {
    const cpu = makeCpu(mode);
    cpu.writeRam(root + 8 * 1, pte(ptr(l1))); // VA bits 38:30 = 1
    cpu.writeRam(l1, pte(ptr(l0)));
    cpu.writeRam(l0, pte(leaf(pageA)));
    cpu.writeRam(l0 + 8, pte(leaf(tramp)));
    cpu.writeRam(pageA, words(codeA));
    cpu.writeRam(pageB, words(codeB));
    cpu.writeRam(tramp, words(trampoline));
    cpu.writeCsr(SATP, (8n << 60n) | BigInt(root >>> 12));
    cpu.priv = PRIV_S;
    for (let pass = 0; pass < 3; pass++) {
      cpu.pc = 0x40000000n;
      assert.equal(cpu.run(100), ExitReason.Wfi, name);
    }
    assert.equal(cpu.x(11), 1n, name);
    cpu.writeRam(l0, pte(leaf(pageB))); // remap; the guest's sfence.vma makes it visible
    for (let pass = 0; pass < 3; pass++) {
      cpu.pc = 0x40001000n;
      assert.equal(cpu.run(100), ExitReason.Wfi, name);
      assert.equal(cpu.x(11), 2n, name);
    }
    results.push([cpu.x(12), cpu.x(13), cpu.instret]);
  }
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
  assert.deepEqual(results[0].slice(0, 2), [33n, 33n]);
});

test("the translator's statistics show it ran", () => {
  const program = randomProgram(7);
  const cpu = makeCpu("eager");
  loadProgram(cpu, program, 7);
  runToWfi(cpu, [1_000_000]);
  assert.ok(cpu.jit!.stats.translations > 0);
  const retired = cpu.getState(L.S_JIT_RETIRED);
  assert.ok(retired > cpu.instret / 2n, `translated code retired ${retired} of ${cpu.instret}`);
});

test("asynchronous compilation: the guest runs interpreted until a module is ready, and ends alike", async () => {
  for (const seed of [3, 11]) {
    const program = randomProgram(seed);
    const reference = makeCpu(false);
    loadProgram(reference, program, seed);
    runToWfi(reference, [1_000_000]);
    const cpu = makeCpu({ threshold: 1, async: true });
    loadProgram(cpu, program, seed);
    // Short slices with the event loop turning between them, as a machine runs: modules
    // compiled off the critical path get installed while the program is still running.
    let reason = ExitReason.Budget;
    for (let slices = 0; reason !== ExitReason.Wfi; slices++) {
      assert.ok(slices < 200_000, `seed ${seed}: no WFI`);
      reason = cpu.run(100);
      await new Promise((resolve) => setTimeout(resolve, 1));
      // On a slow host the whole program could end before the first module is ready: after a
      // few interpreted slices, let the compilation in flight finish.
      if (slices === 20) while ((cpu.jit as unknown as { compiling: boolean }).compiling) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.deepEqual(snapshot(cpu), snapshot(reference), `seed ${seed}`);
    assert.ok(cpu.jit!.stats.modules > 0, "modules were compiled");
    assert.ok(cpu.getState(L.S_JIT_RETIRED) > 0n, "translated code ran");
  }
});

test("a module the engine refuses leaves its pages interpreted, and the guest unaware", () => {
  const program = randomProgram(5);
  const reference = makeCpu(false);
  loadProgram(reference, program, 5);
  runToWfi(reference, [1_000_000]);
  const cpu = makeCpu({ threshold: 1 });
  loadProgram(cpu, program, 5);
  const RealModule = WebAssembly.Module;
  const warn = console.warn;
  // As if the translator had emitted an invalid module (validation fails on compilation).
  (WebAssembly as { Module: unknown }).Module = function refuse(): never {
    throw new WebAssembly.CompileError("injected: invalid module");
  };
  console.warn = () => {};
  try {
    runToWfi(cpu, [1_000, 77]);
  } finally {
    (WebAssembly as { Module: unknown }).Module = RealModule;
    console.warn = warn;
  }
  assert.deepEqual(snapshot(cpu), snapshot(reference));
  assert.ok(cpu.jit!.stats.failures > 0);
  assert.equal(cpu.getState(L.S_JIT_RETIRED), 0n, "nothing ran translated");
});

test("host writes into a translated page (DMA) drop its translation", () => {
  const prog = (k: number) => words([E.aluImm("addi", 5, 0, 10), E.aluImm("addi", 6, 6, k), E.aluImm("addi", 5, 5, -1), E.branch("bne", 5, 0, -8), E.wfi()]);
  for (const [name, mode] of MODES) {
    const cpu = makeCpu(mode);
    cpu.writeRam(RAM, prog(1));
    cpu.pc = BigInt(RAM);
    runToWfi(cpu, [7]); // short runs: hot-page mode compiles between them
    assert.equal(cpu.x(6), 10n, name);
    assert.ok(cpu.getState(L.S_JIT_RETIRED) > 0n, `${name}: the loop ran translated`);
    // As a device's DMA does: through writeRam, and through the raw view plus ramWritten().
    cpu.writeRam(RAM, prog(3));
    cpu.pc = BigInt(RAM);
    runToWfi(cpu, [7]); // short runs: hot-page mode compiles between them
    assert.equal(cpu.x(6), 10n + 30n, name);
    new DataView(cpu.ram.buffer, cpu.ram.byteOffset).setUint32(4, E.aluImm("addi", 6, 6, 100), true);
    cpu.ramWritten(RAM + 4, 4);
    cpu.pc = BigInt(RAM);
    runToWfi(cpu, [7]); // short runs: hot-page mode compiles between them
    assert.equal(cpu.x(6), 40n + 1000n, name);
    assert.ok(cpu.getState(L.S_JIT_DROPS) >= 2n, `${name}: ${cpu.getState(L.S_JIT_DROPS)} translations dropped`);
  }
});

/**
 * Runs page-end-entry.ts's program in a worker thread, so a core that never returns from run()
 * fails the test instead of hanging the suite.
 */
function runPageEndInWorker(jit: Mode | false, limitMs: number): Promise<PageEndResult> {
  const worker = startTypeScriptWorker(new URL("./page-end-entry.ts", import.meta.url), { workerData: { pageEnd: { jit } } });
  return new Promise<PageEndResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error(`run() did not return within ${limitMs / 1000} s: the core loops at the entry on the page's last parcel`));
    }, limitMs);
    worker.once("message", (result: PageEndResult) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(result);
    });
    worker.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

test("a block entry on a page's last parcel that the translation leaves to the interpreter (MMIO) runs once, not forever", async () => {
  const reference = runPageEndProgram(false);
  assert.equal(reference.exit, ExitReason.Wfi);
  assert.equal(reference.sum, BigInt(PAGE_END_LOOPS * PAGE_END_VALUE));
  assert.equal(reference.mmioLoads, PAGE_END_LOOPS);
  for (const [name, mode] of MODES) {
    const result = await runPageEndInWorker(mode, 30_000);
    assert.deepEqual([result.exit, result.sum, result.mmioLoads, result.instret], [reference.exit, reference.sum, reference.mmioLoads, reference.instret], name);
    // The translation had an entry there and handed the load back each time.
    assert.ok(result.bounces > 0n, `${name}: no decode bounces, so the entry at 0xffe was never translated and the case not exercised`);
  }
});

/**
 * A loop across a page end whose `add a0, a0, a1` straddles it (at 0xffe), run `passes` times;
 * before the second pass the program rewrites the straddler's second half (on the next page) into
 * `sub`.
 */
function straddleLoop(cpu: Cpu, passes: 1 | 2): void {
  const loops = 2000;
  const add = E.aluReg("add", 10, 10, 11);
  const sub = E.aluReg("sub", 10, 10, 11);
  // Page 0: s2 = passes - 1, s3 = sub's second half, s4 = its address, t0 = loops; j loop.
  const setup = [E.aluImm("addi", 18, 0, passes - 1), ...li(19, sub >>> 16), ...li(20, RAM + 0x1000), E.aluImm("addi", 5, 0, loops)];
  setup.push(E.jal(0, 0xffa - 4 * setup.length));
  cpu.writeRam(RAM, words(setup));
  // 0xffa: addi a1, a1, 3; 0xffe: add a0, a0, a1 (straddling); 0x1002: addi t0, t0, -1; bnez t0 -> 0xffa;
  // 0x100a: beqz s2 -> wfi; sh s3 -> the straddler's second half; s2 = 0; t0 = loops; j 0xffa; 0x101e: wfi
  cpu.writeRam(RAM + 0xffa, words([E.aluImm("addi", 11, 11, 3), add, E.aluImm("addi", 5, 5, -1), E.branch("bne", 5, 0, -12)]));
  cpu.writeRam(RAM + 0x100a, words([
    E.branch("beq", 18, 0, 0x14), E.store("sh", 20, 19, 0), E.aluImm("addi", 18, 0, 0), E.aluImm("addi", 5, 0, loops),
    E.jal(0, 0xffa - 0x101a), E.wfi(),
  ]));
  cpu.pc = BigInt(RAM);
}

test("an instruction straddling a page end runs translated, and a rewrite of its second half is seen", () => {
  for (const passes of [1, 2] as const) {
    const final = compareModes((cpu) => straddleLoop(cpu, passes), [1_000_000, 333]);
    // a1 = 3, 6, ..., 6000 over the first pass; a0 adds them (then subtracts the next 2000).
    const firstPass = (3 * 2000 * 2001) / 2;
    const secondPass = 3 * (2000 * 4001 - (2000 * 2001) / 2);
    assert.equal(final.x[10], BigInt.asUintN(64, BigInt(passes === 1 ? firstPass : firstPass - secondPass)));
  }
  // The loop leaves translated code only at its budget's end, not at the straddler every time.
  const cpu = makeCpu({ threshold: 1 });
  straddleLoop(cpu, 1);
  runToWfi(cpu, [200, 1_000_000]); // translations are compiled when run() returns
  const [entries, retired] = [cpu.getState(L.S_JIT_ENTRIES), cpu.getState(L.S_JIT_RETIRED)];
  assert.ok(entries < 200n && retired * 10n > cpu.instret * 8n, `${entries} calls into translated code for 2000 iterations, ${retired} of ${cpu.instret} instructions translated`);
});

test("a page translated while the page after its straddling instruction is not in the fetch TLB is still translated", () => {
  // Eager mode translates page 0 at its first fetch, before page 1 was ever fetched: the
  // straddler stays the interpreter's, the rest of the page is translated.
  const setup = (cpu: Cpu) => {
    cpu.writeRam(RAM, words([E.aluImm("addi", 5, 0, 500), E.jal(0, 0xffa - 4)]));
    cpu.writeRam(RAM + 0xffa, words([E.aluImm("addi", 11, 11, 3), E.aluReg("add", 10, 10, 11), E.jal(0, 0x800 - 0x1002)]));
    cpu.writeRam(RAM + 0x800, words([E.aluImm("addi", 5, 5, -1), E.branch("bne", 5, 0, -4), E.wfi()]));
    cpu.pc = BigInt(RAM);
  };
  compareModes(setup, [100, 1_000_000]);
  const cpu = makeCpu("eager");
  setup(cpu);
  runToWfi(cpu, [100, 1_000_000]);
  assert.equal(cpu.jit!.stats.failures, 0);
  assert.ok(cpu.jit!.stats.translations > 0);
});

test("a translation observer sees each module and the translated code's exits and transitions", () => {
  const notes = new Map<number, number>();
  let modules = 0;
  observeTranslations({ module: () => modules++, note: (note) => notes.set(note, (notes.get(note) ?? 0) + 1) });
  let cpu: Cpu;
  try {
    cpu = makeCpu({ threshold: 1 });
  } finally {
    observeTranslations(undefined);
  }
  straddleLoop(cpu, 2); // the second pass's rewrite of the straddler makes its check fail every time
  runToWfi(cpu, [200, 1_000_000]);
  assert.equal(modules, cpu.jit!.stats.modules);
  assert.ok(modules > 0);
  assert.ok((notes.get(Note.Enter) ?? 0) > 0 && (notes.get(Note.Chain) ?? 0) > 1000, `notes: ${[...notes]}`);
  assert.ok((notes.get(Note.ExitSystem) ?? 0) >= 1000, "the straddler's failed checks are exits in front of an instruction left to the interpreter");
});

test("CSR instructions run in translated code, and an interrupt one enables is taken right after it", () => {
  // M-mode loop: interrupts off, mscratch swapped, the supervisor software interrupt raised
  // (pending only), interrupts on again: the interrupt is taken after the enabling csrrsi,
  // whose next instruction the handler records.
  const MSCRATCH = 0x340, MIP = 0x344;
  const prog = [
    E.aluImm("addi", 5, 0, 100),
    E.csr("csrrci", 0, MSTATUS, 8), // loop: MIE off
    E.aluImm("addi", 6, 6, 1),
    E.csr("csrrw", 7, MSCRATCH, 6),
    E.aluReg("add", 10, 10, 7),
    E.csr("csrrsi", 0, MIP, 2), // SSIP pending, not taken
    E.csr("csrrsi", 0, MSTATUS, 8), // MIE on: taken here
    E.aluImm("addi", 5, 5, -1),
    E.branch("bne", 5, 0, -28),
    E.wfi(),
  ];
  const handler = [E.aluImm("addi", 21, 21, 1), E.csr("csrrs", 20, MEPC, 0), E.csr("csrrci", 0, MIP, 2), 0x30200073 /* mret */];
  const setup = (cpu: Cpu) => {
    cpu.writeRam(RAM, words(prog));
    cpu.writeRam(RAM + 0x400, words(handler));
    cpu.writeCsr(MTVEC, BigInt(RAM + 0x400));
    cpu.writeCsr(MIE, 2n); // SSIE
    cpu.pc = BigInt(RAM);
  };
  const expected = compareModes(setup, [1, 13, 1000]);
  assert.equal(expected.x[21], 100n);
  assert.equal(expected.x[20], BigInt(RAM + 28));
  assert.equal(expected.x[10], 99n * 100n / 2n);
  for (const [name, mode] of MODES) {
    const cpu = makeCpu(mode);
    setup(cpu);
    runToWfi(cpu, [50]); // hot pages are installed between runs (and a run may end inside the window)
    const counters = cpu.translatorCounters()!;
    assert.ok(counters.csrAccesses >= 300, `${name}: ${counters.csrAccesses} CSR instructions in translated code`);
    assert.ok(counters.csrExits >= 50, `${name}: ${counters.csrExits} exits after an enabling write`);
  }
});

test("a translated load that misses the TLB stays in translated code, and a faulting one still traps precisely", () => {
  // One load pair per page over 256 pages never touched before (each misses the data TLB), then
  // the 257th page is past the end of RAM, where the bus refuses loads: an access fault.
  const PAGES = 256;
  const first = RAM + RAM_SIZE - PAGES * 4096;
  const bus = { load: () => undefined, store: () => false };
  const prog = [
    ...li(11, first),
    E.aluImm("addi", 5, 0, PAGES + 1),
    E.lui(28, 1), // t3 = 4096
    E.load("lw", 6, 11, 16), // loop: sign-extended
    E.aluReg("add", 10, 10, 6),
    E.load("lhu", 7, 11, 18), // zero-extended
    E.aluReg("add", 12, 12, 7),
    E.aluReg("add", 11, 11, 28),
    E.aluImm("addi", 5, 5, -1),
    E.branch("bne", 5, 0, -24),
    E.wfi(),
  ];
  const loopStart = RAM + (prog.length - 8) * 4; // the first lw
  const handler = [E.wfi()];
  const setup = (cpu: Cpu) => {
    cpu.writeRam(RAM, words(prog));
    cpu.writeRam(RAM + 0x400, words(handler));
    const word = new Uint8Array(4);
    for (let i = 0; i < PAGES; i++) {
      new DataView(word.buffer).setUint32(0, 0x8000_0000 + i, true);
      cpu.writeRam(first + i * 4096 + 16, word);
    }
    cpu.writeCsr(MTVEC, BigInt(RAM + 0x400));
    cpu.pc = BigInt(RAM);
  };
  const expected = compareModesOn(setup, [50, 1_000_000], bus);
  assert.equal(expected.x[10], BigInt.asUintN(64, BigInt(PAGES * -0x8000_0000 + (PAGES * (PAGES - 1)) / 2)));
  assert.equal(expected.x[12], BigInt(PAGES * 0x8000));
  for (const [name, mode] of MODES) {
    const cpu = makeCpu(mode, bus);
    setup(cpu);
    runToWfi(cpu, [50, 1_000_000]);
    assert.equal(cpu.readCsr(MCAUSE), 5n, name);
    assert.equal(cpu.readCsr(MEPC), BigInt(loopStart), name);
    assert.equal(cpu.readCsr(MTVAL), BigInt(RAM + RAM_SIZE + 16), name);
    const entries = cpu.getState(L.S_JIT_ENTRIES);
    assert.ok(entries < 32n, `${name}: ${entries} calls into translated code for ${PAGES} pages' first loads`);
    assert.ok(cpu.getState(L.S_JIT_RETIRED) > BigInt(PAGES * 6), `${name}: ${cpu.getState(L.S_JIT_RETIRED)} instructions translated`);
  }
});

test("a nested loop whose regions straddle the function size limit stays in one function (no tail calls per iteration)", () => {
  // 60 x addi a2; li t1, 100 | outer: li t0, 50 | inner: addi a0, a0, 1; addi t0, -1; bnez t0, inner;
  // addi t1, -1; bnez t1, outer; wfi. Regions: [straight code + li t1] (61 instructions), [outer]
  // (1) and [inner ... wfi] (6): the plain size limit (64) would put the last in a function of its
  // own, and every outer iteration would tail-call into it and back.
  const setup = (cpu: Cpu) => {
    const straight = Array.from({ length: 60 }, () => E.aluImm("addi", 12, 12, 1));
    cpu.writeRam(RAM, words([
      ...straight, E.aluImm("addi", 6, 0, 100),
      E.aluImm("addi", 5, 0, 50),
      E.aluImm("addi", 10, 10, 1), E.aluImm("addi", 5, 5, -1), E.branch("bne", 5, 0, -8),
      E.aluImm("addi", 6, 6, -1), E.branch("bne", 6, 0, -20),
      E.wfi(),
    ]));
    cpu.pc = BigInt(RAM);
  };
  const final = compareModes(setup);
  assert.equal(final.x[10], 5000n);
  assert.equal(final.x[12], 60n);

  const notes = new Map<number, number>();
  observeTranslations({ note: (note) => notes.set(note, (notes.get(note) ?? 0) + 1) });
  let cpu: Cpu;
  try {
    cpu = makeCpu("eager");
  } finally {
    observeTranslations(undefined);
  }
  setup(cpu);
  runToWfi(cpu, [1_000_000]);
  assert.equal(cpu.x(10), 5000n);
  // Straight code -> outer may be one tail call; the 100 passes back to `outer` go through the function's own br_table.
  assert.ok((notes.get(Note.TailCall) ?? 0) <= 1, `tail calls: ${notes.get(Note.TailCall)}`);
  assert.ok((notes.get(Note.Redispatch) ?? 0) >= 99, `branches back to an earlier region: ${notes.get(Note.Redispatch)}`);
});

test("loads through the same base register share one TLB check, also interleaved with other bases, across a page end and past a write to the base", () => {
  // Groups (three loads or more through one base register in straight-line code): a0's, with
  // loads through a2 between its loads (those stay ungrouped); a1's, whose bytes cross a page end
  // (its shared check cannot pass: each load takes the helper); a2's, ended by a write to a2.
  const setup = (cpu: Cpu) => {
    const data = new Uint8Array(8192);
    for (let k = 0; k < data.length; k++) data[k] = (k * 37 + 11) & 0xff;
    cpu.writeRam(SCRATCH, data);
    const A0 = 10, A1 = 11, A2 = 12, T0 = 5, T1 = 6, T2 = 7, T3 = 28, T4 = 29, T5 = 30, T6 = 31;
    const S2 = 18, S3 = 19, S4 = 20, S5 = 21, S6 = 22, S7 = 23, S8 = 24;
    const loaded = [T0, T1, T2, T3, S2, T4, T5, S6, S4, S7, S8];
    const body = [
      E.load("ld", T0, A0, 0), E.load("ld", T1, A2, 0), E.load("lw", T2, A0, 8), E.load("lbu", T3, A2, -3), E.load("lh", S2, A0, 24),
      E.load("ld", T4, A1, 0), E.load("ld", T5, A1, 8), E.load("lwu", S6, A1, 4),
      E.load("ld", S4, A2, 16), E.load("lhu", S7, A2, 2), E.load("lb", S8, A2, 5), E.aluImm("addi", A2, A2, 8), E.load("ld", S5, A2, 0),
      ...loaded.map((r) => E.aluReg("add", S3, S3, r)), E.aluReg("xor", S3, S3, S5),
      E.aluImm("addi", A0, A0, 8), E.aluImm("addi", T6, T6, -1),
    ];
    const setupCode = [...li(A0, SCRATCH + 0x10), ...li(A1, SCRATCH + 0x1000 - 12), ...li(A2, SCRATCH + 0x800), E.aluImm("addi", T6, 0, 50)];
    cpu.writeRam(RAM, words([...setupCode, ...body, E.branch("bne", T6, 0, -4 * body.length), E.wfi()]));
    cpu.pc = BigInt(RAM);
  };
  const final = compareModes(setup, [1_000_000, 13]);
  assert.notEqual(final.x[19], 0n);
});
