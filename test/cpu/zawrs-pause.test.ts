// The engine's side of cooperative waiting: Zawrs (WRS.NTO/STO leave run() with EXIT_WRS when the
// reservation set is valid and no interrupt is pending, else they do nothing) and pause-loop
// exiting (PAUSEs close together for S_PLE_WINDOW instructions leave run() with EXIT_PAUSE), on
// the interpreter and with the translator, in the plain and the shared-memory engines.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cpu, ExitReason, type CpuOptions } from "../../src/cpu/cpu.ts";
import { coreLayout } from "../../src/cpu/core-layout.ts";
import * as L from "../../src/cpu/layout.ts";
import { CSR_MIE } from "../../src/cpu/csr-numbers.ts";
import { MIP_MSIP } from "../../src/cpu/interrupts.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { aluImm, amo, jal, toBytes, wfi } from "../diff/encode.ts";

const RAM = 0x8000_0000;
const RAM_SIZE = 1 << 20;
const FLAG = RAM + 0x8000;
const WRS_NTO = 0x00d00073;
const WRS_STO = 0x01d00073;
const PAUSE = 0x0100000f;

const ENGINES: { name: string; shared: boolean; jit: CpuOptions["jit"] }[] = [
  { name: "interpreter", shared: false, jit: "off" },
  { name: "translator", shared: false, jit: "eager" },
  { name: "shared memory, translator", shared: true, jit: "eager" },
];

function makeCpu(engine: (typeof ENGINES)[number], program: number[]): Cpu {
  const layout = coreLayout({ harts: 1, ramSize: RAM_SIZE });
  const memory = engine.shared ? new WebAssembly.Memory({ initial: layout.memoryPages, maximum: layout.memoryPages, shared: true }) : undefined;
  const cpu = new Cpu({ module: loadCoreModule({ shared: engine.shared }), ramSize: RAM_SIZE, layout, memory, jit: engine.jit });
  cpu.writeRam(RAM, toBytes(program));
  cpu.pc = BigInt(RAM);
  cpu.setX(10, BigInt(FLAG));
  return cpu;
}

for (const engine of ENGINES) {
  test(`WRS without a reservation does nothing (${engine.name})`, () => {
    const cpu = makeCpu(engine, [WRS_NTO, WRS_STO, aluImm("addi", 5, 0, 7), wfi()]);
    assert.equal(cpu.run(100), ExitReason.Wfi);
    assert.equal(cpu.x(5), 7n);
  });

  test(`LR then WRS.NTO/STO leaves run() after the WRS, the reservation kept (${engine.name})`, () => {
    for (const [wrs, kind] of [[WRS_NTO, 0n], [WRS_STO, 1n]] as const) {
      const cpu = makeCpu(engine, [amo("lr", 4, 6, 10, 0, false, false), wrs, aluImm("addi", 5, 0, 7), wfi()]);
      assert.equal(cpu.run(100), ExitReason.Wrs);
      assert.equal(cpu.pc, BigInt(RAM + 8), "pc after the WRS");
      assert.equal(cpu.x(5), 0n, "nothing after the WRS ran");
      assert.equal(cpu.getState(L.S_RESERVATION), BigInt(FLAG));
      assert.equal(cpu.getState(L.S_RESERVATION_SIZE), 4n);
      assert.equal(cpu.getState(L.S_WRS_KIND), kind);
      // Resumed (the wait ended), the hart goes on after the WRS.
      assert.equal(cpu.run(100), ExitReason.Wfi);
      assert.equal(cpu.x(5), 7n);
    }
  });

  test(`WRS does not wait while an interrupt is pending and enabled, even with interrupts off globally (${engine.name})`, () => {
    const cpu = makeCpu(engine, [amo("lr", 8, 6, 10, 0, false, false), WRS_NTO, aluImm("addi", 5, 0, 7), jal(0, 0)]);
    cpu.writeCsr(CSR_MIE, BigInt(MIP_MSIP));
    cpu.setPendingInterrupt(MIP_MSIP, true); // mstatus.MIE is 0: pending, not taken
    assert.equal(cpu.run(100), ExitReason.Budget);
    assert.equal(cpu.x(5), 7n);
    assert.equal(cpu.getState(L.S_RESERVATION_SIZE), 8n);
  });

  test(`a loop of PAUSEs leaves run() once it spans the window; off, or PAUSEs far apart, it does not (${engine.name})`, () => {
    const spin = [PAUSE, aluImm("addi", 5, 5, 1), jal(0, -8)];
    const cpu = makeCpu(engine, spin);
    cpu.setState(L.S_PLE_WINDOW, 256n);
    assert.equal(cpu.run(1_000_000), ExitReason.Pause);
    const spins = Number(cpu.x(5));
    assert.ok(spins >= 256 / 3 - 1 && spins < 1000, `left after ${spins} turns of a 3-instruction loop`);

    const off = makeCpu(engine, spin);
    off.setState(L.S_PLE_WINDOW, 0n);
    assert.equal(off.run(100_000), ExitReason.Budget);

    // More than PLE_GAP instructions between PAUSEs: not a spin loop.
    const work = Array.from({ length: L.PLE_GAP + 8 }, () => aluImm("addi", 6, 6, 1));
    const apart = makeCpu(engine, [PAUSE, ...work, jal(0, -4 * (work.length + 1))]);
    apart.setState(L.S_PLE_WINDOW, 256n);
    assert.equal(apart.run(100_000), ExitReason.Budget);
  });
}
