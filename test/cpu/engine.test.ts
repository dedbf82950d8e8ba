// Behaviour of the execution engine that the ISA tests cannot see from inside the guest:
// decoded-code invalidation, exits to the host, instruction budgets, robustness on garbage.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cpu, ExitReason, type AccessSize, type CpuOptions } from "../../src/cpu/cpu.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { jitFromEnvironment } from "../../src/host/node/jit-environment.ts";
import { aluImm, store, load, jal, wfi, lui } from "../diff/encode.ts";
import {
  CSR_MSTATUS as MSTATUS, CSR_MTVEC as MTVEC, CSR_MCAUSE as MCAUSE, CSR_MTVAL as MTVAL, CSR_MEPC as MEPC,
} from "../../src/cpu/csr-numbers.ts";

const RAM = 0x8000_0000;

function words(...insns: number[]): Uint8Array {
  const out = new Uint8Array(insns.length * 4);
  const v = new DataView(out.buffer);
  insns.forEach((w, i) => v.setUint32(i * 4, w >>> 0, true));
  return out;
}

function makeCpu(bus?: Cpu["bus"], jit?: CpuOptions["jit"]): Cpu {
  return new Cpu({ module: loadCoreModule(), ramSize: 1 << 20, bus, jit: jit ?? jitFromEnvironment() });
}

test("x0 stays zero whatever writes it", () => {
  const cpu = makeCpu();
  cpu.writeRam(RAM, words(aluImm("addi", 0, 0, 5), load("ld", 0, 2, 0), jal(0, 4), wfi()));
  cpu.setX(2, BigInt(RAM));
  assert.equal(cpu.run(100), ExitReason.Wfi);
  assert.equal(cpu.x(0), 0n);
  assert.equal(cpu.pc, BigInt(RAM + 16)); // pc after the WFI
});

test("run(n) retires exactly n instructions once the code is decoded", () => {
  const cpu = makeCpu();
  cpu.writeRam(RAM, words(...Array.from({ length: 64 }, () => aluImm("addi", 5, 5, 1)), wfi()));
  // First pass: each slot is decoded on first execution (a budget unit that retires nothing).
  assert.equal(cpu.run(1000), ExitReason.Wfi);
  assert.equal(cpu.instret, 65n);
  assert.equal(cpu.x(5), 64n);
  cpu.pc = BigInt(RAM);
  assert.equal(cpu.run(30), ExitReason.Budget);
  assert.equal(cpu.instret, 95n);
  assert.equal(cpu.x(5), 94n);
});

test("a store over code that already ran takes effect (self-modifying code)", () => {
  const cpu = makeCpu();
  // 0: addi x5, x0, 1     <- will be overwritten with addi x5, x0, 2
  // 4: addi x6, x6, 1
  // 8: sw x7, 0(x8)       (x7 = new instruction, x8 = RAM)
  // c: jal x0, -12        back to 0; loop ends when x6 == 2 via the budget
  const newInsn = aluImm("addi", 5, 0, 2);
  cpu.writeRam(RAM, words(aluImm("addi", 5, 0, 1), aluImm("addi", 6, 6, 1), store("sw", 8, 7, 0), jal(0, -12)));
  cpu.setX(7, BigInt(newInsn));
  cpu.setX(8, BigInt(RAM));
  cpu.run(4 + 4); // decode bounces + first pass
  while (cpu.x(6) < 2n) cpu.run(1);
  cpu.run(1); // executes the rewritten first instruction
  assert.equal(cpu.x(5), 2n);
});

test("host writes into RAM (DMA) drop decoded code", () => {
  const cpu = makeCpu();
  cpu.writeRam(RAM, words(aluImm("addi", 5, 0, 1), wfi()));
  assert.equal(cpu.run(100), ExitReason.Wfi);
  assert.equal(cpu.x(5), 1n);
  cpu.writeRam(RAM, words(aluImm("addi", 5, 0, 7)));
  cpu.pc = BigInt(RAM);
  assert.equal(cpu.run(100), ExitReason.Wfi);
  assert.equal(cpu.x(5), 7n);
  // Writes through the raw view need ramWritten().
  new DataView(cpu.ram.buffer, cpu.ram.byteOffset).setUint32(0, aluImm("addi", 5, 0, 9), true);
  cpu.ramWritten(RAM, 4);
  cpu.pc = BigInt(RAM);
  cpu.run(100);
  assert.equal(cpu.x(5), 9n);
});

test("a 32-bit instruction straddling a page boundary executes", () => {
  const cpu = makeCpu();
  const page = RAM + 0x1000;
  const bytes = new Uint8Array(8);
  const v = new DataView(bytes.buffer);
  v.setUint16(0, 0x0001, true); // c.nop at 0xffc
  v.setUint16(2, 0x0001, true); // c.nop at 0xffe? no: keep the 32-bit one at 0xffe
  cpu.writeRam(page - 4, bytes.subarray(0, 2)); // c.nop at page-4
  cpu.writeRam(page - 2, words(aluImm("addi", 9, 0, 42)).subarray(0, 4)); // straddles page-2..page+2
  cpu.writeRam(page + 2, words(wfi()));
  cpu.writeRam(page - 6, new Uint8Array([0x01, 0x00])); // c.nop
  cpu.pc = BigInt(page - 6);
  cpu.writeRam(page - 4, new Uint8Array([0x01, 0x00]));
  assert.equal(cpu.run(100), ExitReason.Wfi);
  assert.equal(cpu.x(9), 42n);
});

test("MMIO loads and stores leave the core with address, size and value", () => {
  const seen: string[] = [];
  const bus = {
    load(paddr: number, size: AccessSize) {
      seen.push(`load ${paddr.toString(16)} ${size}`);
      return size === 8 ? 0x1122334455667788n : 0xabcd;
    },
    store(paddr: number, size: AccessSize, value: number | bigint) {
      seen.push(`store ${paddr.toString(16)} ${size} ${value.toString(16)}`);
      return true;
    },
  };
  const cpu = makeCpu(bus);
  cpu.writeRam(RAM, words(lui(8, 0x10000), load("lw", 5, 8, 4), load("ld", 6, 8, 8), store("sh", 8, 5, 2), wfi()));
  assert.equal(cpu.run(100), ExitReason.Wfi);
  assert.deepEqual(seen, ["load 10000004 4", "load 10000008 8", "store 10000002 2 abcd"]);
  assert.equal(cpu.x(5), 0xabcdn);
  assert.equal(cpu.x(6), 0x1122334455667788n);
});

test("an access the bus refuses becomes a load access fault in the guest", () => {
  const cpu = makeCpu({ load: () => undefined, store: () => false });
  cpu.writeRam(RAM, words(lui(8, 0x10000), load("lw", 5, 8, 0)));
  cpu.writeRam(RAM + 0x100, words(wfi()));
  cpu.writeCsr(MTVEC, BigInt(RAM + 0x100));
  assert.equal(cpu.run(100), ExitReason.Wfi);
  assert.equal(cpu.readCsr(MCAUSE), 5n);
  assert.equal(cpu.readCsr(MTVAL), 0x10000000n);
  assert.equal(cpu.readCsr(MEPC), BigInt(RAM + 4));
});

// The translator reads guest code too: eager mode translates every page the random code reaches.
for (const jit of ["off", "eager"] as const) {
  test(`random bytes as code never crash or hang the host (translator ${jit})`, () => {
    let seed = 0x9e3779b9;
    const rand = () => {
      seed ^= seed << 13; seed >>>= 0;
      seed ^= seed >>> 17;
      seed ^= seed << 5; seed >>>= 0;
      return seed;
    };
    const cpu = makeCpu({ load: () => 0, store: () => true }, jit);
    for (let round = 0; round < 40; round++) {
      const code = new Uint8Array(8192);
      for (let i = 0; i < code.length; i += 4) new DataView(code.buffer).setUint32(i, rand(), true);
      cpu.writeRam(RAM, code);
      for (let r = 1; r < 32; r++) cpu.setX(r, BigInt(RAM + (rand() & 0xffff)) | (r % 5 === 0 ? BigInt(rand()) << 32n : 0n));
      cpu.writeCsr(MTVEC, BigInt(RAM + (rand() & 0x1ffc)));
      cpu.writeCsr(MSTATUS, BigInt(rand() & 0x6000)); // FS on or off
      cpu.pc = BigInt(RAM + (rand() & 0x1ffe));
      const reason = cpu.run(20_000);
      assert.ok([ExitReason.Budget, ExitReason.Wfi, ExitReason.Stop].includes(reason));
    }
    if (jit === "eager") {
      assert.ok(cpu.jit!.stats.translations > 0, "pages were translated");
      assert.equal(cpu.jit!.stats.failures, 0, "the translator handled every page");
    }
  });
}
