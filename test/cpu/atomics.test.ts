// The A extension across harts running in parallel: each hart a Cpu in a worker thread of its
// own (test/cpu/atomics-worker.ts), all on one shared memory laid out by coreLayout, the engine
// built for it (build/cpu-shared.wasm). Counters that every hart increments with AMOs or LR/SC
// must come out exact; a plain load/add/store counter beside them is the control, which may
// lose updates. A message-passing litmus test checks FENCE. Also, on one thread, that the
// shared build's AMOs compute exactly what the architecture says (src/cpu/wasm/atomics.ts has
// a separate code path for it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { Cpu, ExitReason, type CpuOptions } from "../../src/cpu/cpu.ts";
import { coreLayout } from "../../src/cpu/core-layout.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { aluImm, amo, branch, fenceRaw, load, store, toBytes, wfi, type AmoOp } from "../diff/encode.ts";
import type { HartJob, HartResult } from "./atomics-worker.ts";

const RAM = 0x8000_0000;
const RAM_SIZE = 4 << 20;
const CODE = RAM;
const COUNTERS = RAM + 0x10_0000;
const MAILBOX = RAM + 0x10_1000;
const ITERATIONS = 200_000;
/** Round trips of the message-passing test (each one a hand-over between the threads). */
const MESSAGES = 20_000;
const HARTS = Math.min(4, Math.max(2, availableParallelism()));

const TRANSLATORS: { name: string; jit: CpuOptions["jit"] }[] = [
  { name: "interpreter", jit: "off" },
  { name: "translator", jit: "eager" },
];

// FENCE's predecessor/successor bits.
const FENCE_R = 2, FENCE_W = 1;

/**
 * x10 = COUNTERS, x11 = iterations, x19 = this hart's bit. Per iteration: amoadd.d at +0,
 * amoadd.w at +8, an LR.D/SC.D retry loop at +16, plain ld/addi/sd at +24, an LR.W/SC.W retry
 * loop at +32, and amoxor.d of the hart's bit at +48 (an even count leaves it clear).
 */
const counterProgram = [
  aluImm("addi", 5, 0, 1),
  aluImm("addi", 12, 10, 8),
  aluImm("addi", 13, 10, 16),
  aluImm("addi", 17, 10, 32),
  aluImm("addi", 18, 10, 48),
  // loop:
  amo("amoadd", 8, 0, 10, 5, false, false),
  amo("amoadd", 4, 0, 12, 5, false, false),
  amo("lr", 8, 14, 13, 0, true, false), // retry.d:
  aluImm("addi", 14, 14, 1),
  amo("sc", 8, 15, 13, 14, false, true),
  branch("bne", 15, 0, -12),
  amo("lr", 4, 14, 17, 0, true, false), // retry.w:
  aluImm("addi", 14, 14, 1),
  amo("sc", 4, 15, 17, 14, false, true),
  branch("bne", 15, 0, -12),
  amo("amoxor", 8, 0, 18, 19, false, false),
  load("ld", 16, 10, 24),
  aluImm("addi", 16, 16, 1),
  store("sd", 10, 16, 24),
  aluImm("addi", 11, 11, -1),
  branch("bne", 11, 0, -60), // to loop
  wfi(),
];

/**
 * Writer: x10 = MAILBOX, x20 = n. For i = 1..n: data (+0) = i; fence w,w; flag (+64) = i; then
 * wait until the reader acknowledges i (+128), so that every flag value is a fresh race.
 */
const writerProgram = [
  aluImm("addi", 24, 0, 1),
  store("sd", 10, 24, 0), // loop:
  fenceRaw(0, FENCE_W, FENCE_W),
  store("sd", 10, 24, 64),
  load("ld", 27, 10, 128), // wait:
  fenceRaw(0, FENCE_R, FENCE_R | FENCE_W),
  branch("bne", 27, 24, -8), // to wait
  aluImm("addi", 24, 24, 1),
  branch("bge", 20, 24, -28), // to loop
  wfi(),
];

/**
 * Reader: x10 = MAILBOX, x20 = n. Spins: read flag; fence r,r; read data; data < flag (a flag
 * seen before the data it publishes) counts in x21. A new flag is acknowledged; until flag == n.
 * x26 ends as the number of flags acknowledged + 1.
 */
const readerProgram = [
  aluImm("addi", 21, 0, 0),
  aluImm("addi", 26, 0, 1),
  load("ld", 22, 10, 64), // loop:
  fenceRaw(0, FENCE_R, FENCE_R),
  load("ld", 23, 10, 0),
  branch("bgeu", 23, 22, 8),
  aluImm("addi", 21, 21, 1),
  branch("bltu", 22, 26, -20), // not new yet: to loop
  fenceRaw(0, FENCE_R | FENCE_W, FENCE_W),
  store("sd", 10, 22, 128),
  aluImm("addi", 26, 22, 1),
  branch("bltu", 22, 20, -36), // to loop
  wfi(),
];

interface Machine {
  memory: WebAssembly.Memory;
  layout: ReturnType<typeof coreLayout>;
  dv: DataView;
  ramAddr(guest: number): number;
}

function sharedMachine(harts: number): Machine {
  const layout = coreLayout({ harts, ramSize: RAM_SIZE });
  const memory = new WebAssembly.Memory({ initial: layout.memoryPages, maximum: layout.memoryPages, shared: true });
  const dv = new DataView(memory.buffer);
  return { memory, layout, dv, ramAddr: (guest) => layout.ramWasmBase + (guest - RAM) };
}

function place(m: Machine, at: number, program: number[]): void {
  new Uint8Array(m.memory.buffer, m.ramAddr(at)).set(toBytes(program));
}

type Job = Pick<HartJob, "pc" | "registers" | "report">;

/** Runs one job per hart, each in its own thread, released together; their results by hart. */
async function runHarts(m: Machine, jit: CpuOptions["jit"], jobs: Job[]): Promise<HartResult[]> {
  const start = new SharedArrayBuffer(4);
  const workers = jobs.map((job, hartIndex) => {
    const workerData: HartJob = { ...job, memory: m.memory, layout: m.layout, ramSize: RAM_SIZE, hartIndex, jit, start };
    return new Worker(new URL("./atomics-worker.mjs", import.meta.url), { workerData });
  });
  const messages = workers.map((w) => {
    const ready = new Promise<void>((resolve, reject) => {
      w.once("message", () => resolve());
      w.once("error", reject);
    });
    const done = ready.then(
      () =>
        new Promise<HartResult>((resolve, reject) => {
          w.once("message", (r: HartResult) => resolve(r));
          w.once("error", reject);
          w.once("exit", (code) => reject(new Error(`worker exited (${code}) without a result`)));
        }),
    );
    return { ready, done };
  });
  try {
    await Promise.all(messages.map((x) => x.ready));
    const flag = new Int32Array(start);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    return await Promise.all(messages.map((x) => x.done));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

for (const { name, jit } of TRANSLATORS) {
  test(`${HARTS} harts in ${HARTS} threads: AMO and LR/SC counters are exact (${name})`, async () => {
    const m = sharedMachine(HARTS);
    place(m, CODE, counterProgram);
    const results = await runHarts(
      m,
      jit,
      Array.from({ length: HARTS }, (_, hart) => ({
        pc: CODE,
        registers: [[10, COUNTERS], [11, ITERATIONS], [19, 1 << hart]],
        report: [11],
      })),
    );
    const counter = (offset: number, size: 4 | 8) =>
      size === 8 ? m.dv.getBigUint64(m.ramAddr(COUNTERS + offset), true) : BigInt(m.dv.getUint32(m.ramAddr(COUNTERS + offset), true));
    const total = BigInt(HARTS * ITERATIONS);
    for (const r of results) assert.equal(r.registers[11], "0", `hart ${r.hartIndex} finished its loop`);
    assert.equal(counter(0, 8), total, "amoadd.d");
    assert.equal(counter(8, 4), total, "amoadd.w");
    assert.equal(counter(12, 4), 0n, "amoadd.w stays in its word");
    assert.equal(counter(16, 8), total, "lr.d/sc.d");
    assert.equal(counter(32, 8), total, "lr.w/sc.w (and the word above it untouched)");
    assert.equal(counter(48, 8), 0n, "amoxor.d: every hart's bit toggled an even number of times");
    const plain = counter(24, 8);
    assert.ok(plain <= total, "plain ld/add/sd never gains updates");
    const lost = total - plain;
    console.log(`  plain ld/add/sd counter (${name}): ${plain} of ${total}, ${lost} updates lost`);
    if (jit !== "off") for (const r of results) assert.ok(r.translated > 0, `hart ${r.hartIndex} ran translated code`);
  });

  test(`message passing with fences never shows the flag before the data (${name})`, async () => {
    const m = sharedMachine(2);
    const writerAt = CODE, readerAt = CODE + 0x1000;
    place(m, writerAt, writerProgram);
    place(m, readerAt, readerProgram);
    const results = await runHarts(m, jit, [
      { pc: writerAt, registers: [[10, MAILBOX], [20, MESSAGES]], report: [24] },
      { pc: readerAt, registers: [[10, MAILBOX], [20, MESSAGES]], report: [21, 22, 26] },
    ]);
    const [writer, reader] = results;
    assert.equal(writer.registers[24], String(MESSAGES + 1));
    assert.equal(reader.registers[22], String(MESSAGES), "the reader saw the last flag");
    assert.equal(reader.registers[26], String(MESSAGES + 1), "the reader acknowledged every flag");
    assert.equal(reader.registers[21], "0", "no flag was seen before its data");
  });
}

// ---- one thread: the shared build's AMOs compute what the architecture says -----------------------

const AMO_OPS: Exclude<AmoOp, "lr" | "sc">[] = ["amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin", "amomax", "amominu", "amomaxu"];
const S64 = (v: bigint) => BigInt.asIntN(64, v);
const S32 = (v: bigint) => BigInt.asIntN(32, v);

function reference(op: (typeof AMO_OPS)[number], a: bigint, b: bigint, bits: 32 | 64): bigint {
  const s = bits === 32 ? S32 : S64;
  const u = (v: bigint) => BigInt.asUintN(bits, v);
  a = s(a);
  b = s(b);
  switch (op) {
    case "amoswap": return b;
    case "amoadd": return s(a + b);
    case "amoxor": return s(a ^ b);
    case "amoand": return s(a & b);
    case "amoor": return s(a | b);
    case "amomin": return a < b ? a : b;
    case "amomax": return a > b ? a : b;
    case "amominu": return u(a) < u(b) ? a : b;
    case "amomaxu": return u(a) > u(b) ? a : b;
  }
}

const PAIRS: [bigint, bigint][] = [
  [0x7fff_ffffn, 1n],
  [0xffff_ffff_8000_0000n, 0x0000_0001_7fff_ffffn],
  [0x8000_0000_0000_0000n, 0x7fff_ffff_ffff_ffffn],
  [0x1234_5678_9abc_def0n, 0xffff_ffff_ffff_ffffn],
];

for (const shared of [false, true]) {
  for (const { name, jit } of TRANSLATORS) {
    test(`AMO results, sign extension and memory match the architecture (${shared ? "shared" : "plain"} build, ${name})`, () => {
      const layout = coreLayout({ harts: 1, ramSize: RAM_SIZE });
      const memory = new WebAssembly.Memory({ initial: layout.memoryPages, maximum: layout.memoryPages, shared });
      const cpu = new Cpu({ module: loadCoreModule({ shared }), ramSize: RAM_SIZE, layout, memory, jit });
      // Per case: x6 = a is stored at 0(x10), rd x7 = AMO(x8 = b), x9 = the memory after (lw/ld);
      // x7 and x9 go to the results area at x11.
      const program: number[] = [];
      const cases: { op: (typeof AMO_OPS)[number]; bits: 32 | 64; a: bigint; b: bigint }[] = [];
      let slot = 0;
      for (const [a, b] of PAIRS) {
        for (const bits of [32, 64] as const) {
          for (const op of AMO_OPS) {
            cases.push({ op, bits, a, b });
            program.push(
              load("ld", 6, 12, 0),
              load("ld", 8, 12, 8),
              store(bits === 32 ? "sw" : "sd", 10, 6, 0),
              amo(op, bits === 32 ? 4 : 8, 7, 10, 8, slot % 2 === 0, slot % 3 === 0),
              load(bits === 32 ? "lw" : "ld", 9, 10, 0),
              store("sd", 11, 7, 0),
              store("sd", 11, 9, 8),
              aluImm("addi", 11, 11, 16),
              aluImm("addi", 12, 12, 16),
            );
            slot++;
          }
        }
      }
      program.push(wfi());
      const operands = RAM + 0x20_0000, results = RAM + 0x30_0000;
      const dv = new DataView(memory.buffer);
      const at = (guest: number) => layout.ramWasmBase + (guest - RAM);
      cases.forEach((c, i) => {
        dv.setBigUint64(at(operands + 16 * i), BigInt.asUintN(64, c.a), true);
        dv.setBigUint64(at(operands + 16 * i + 8), BigInt.asUintN(64, c.b), true);
      });
      cpu.writeRam(CODE, toBytes(program));
      cpu.pc = BigInt(CODE);
      cpu.setX(10, BigInt(COUNTERS));
      cpu.setX(11, BigInt(results));
      cpu.setX(12, BigInt(operands));
      let reason: ExitReason;
      do reason = cpu.run(100_000); while (reason === ExitReason.Budget);
      assert.equal(reason, ExitReason.Wfi);
      cases.forEach((c, i) => {
        const rd = dv.getBigInt64(at(results + 16 * i), true);
        const after = dv.getBigInt64(at(results + 16 * i + 8), true);
        const what = `${c.op}.${c.bits === 32 ? "w" : "d"} a=${c.a.toString(16)} b=${c.b.toString(16)}`;
        assert.equal(rd, c.bits === 32 ? S32(c.a) : S64(c.a), `${what}: rd gets the old value, sign-extended`);
        assert.equal(after, reference(c.op, c.a, c.b, c.bits), `${what}: memory`);
      });
    });
  }
}
