// Random RISC-V programs for the translator tests: loops mixing ALU work, loads and stores,
// forward branches, an inner loop, FP conversions and compares, AMOs, and calls to a function in
// another page, placed so that the main body spans a page boundary.
import type { Cpu } from "../../src/cpu/cpu.ts";
import * as E from "../diff/encode.ts";

export const RAM = 0x8000_0000;
export const SCRATCH = RAM + 0x10_0000; // 8 KiB the programs load from and store to

export function words(ws: readonly number[]): Uint8Array {
  const out = new Uint8Array(ws.length * 4);
  const v = new DataView(out.buffer);
  ws.forEach((w, i) => v.setUint32(i * 4, w >>> 0, true));
  return out;
}

/** Loads an unsigned 32-bit constant into rd (lui + addi, then zero-extended: RAM is above 2^31). */
export function li(rd: number, value: number): number[] {
  const lo = (value << 20) >> 20;
  const hi = ((value - lo) >>> 12) & 0xfffff;
  return [E.lui(rd, hi), E.aluImm("addi", rd, rd, lo), E.shiftImm("slli", rd, rd, 32), E.shiftImm("srli", rd, rd, 32)];
}

/** xorshift32: deterministic cases */
export function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
  return { next, pick: <T>(xs: readonly T[]) => xs[next() % xs.length], int: (n: number) => next() % n };
}

export const WORK = [10, 11, 12, 13, 14, 15, 16, 17, 5, 6, 7, 28, 29]; // a0-a7, t0-t2, t3, t4
export const BASE = 27; // s11: scratch base
const COUNTER = 31; // t6: loop counter
const ALU: E.AluRegOp[] = ["add", "sub", "xor", "or", "and", "sll", "srl", "sra", "slt", "sltu", "mul", "mulh", "mulhu", "mulhsu", "div", "divu", "rem", "remu"];
const ALUW: E.AluRegWOp[] = ["addw", "subw", "sllw", "srlw", "sraw", "mulw", "divw", "divuw", "remw", "remuw"];

/**
 * A random program: an outer loop whose body mixes ALU operations, loads and stores in the
 * scratch area, forward branches, an inner loop, FP conversions and compares, AMOs, and calls to a
 * function in another page. Placed near a page end so the body spans two pages.
 */
export function randomProgram(seed: number): { code: Map<number, Uint8Array>; entry: number } {
  const r = rng(seed);
  const mainAt = RAM + 0xe00 + 4 * r.int(64);
  const funcAt = RAM + 0x3000 + 4 * r.int(128);
  const body: number[] = [];
  const reg = () => r.pick(WORK);
  const emitBody = (n: number, allowCall: boolean) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      switch (r.int(12)) {
        case 0: case 1: out.push(E.aluReg(r.pick(ALU), reg(), reg(), reg())); break;
        case 2: out.push(E.aluRegW(r.pick(ALUW), reg(), reg(), reg())); break;
        case 3: out.push(E.aluImm(r.pick(["addi", "xori", "ori", "andi", "slti", "sltiu"] as const), reg(), reg(), r.int(4096) - 2048)); break;
        case 4: out.push(E.shiftImm(r.pick(["slli", "srli", "srai"] as const), reg(), reg(), r.int(64))); break;
        case 5: { // load from scratch
          const op = r.pick(["lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"] as const);
          const size = { lb: 1, lbu: 1, lh: 2, lhu: 2, lw: 4, lwu: 4, ld: 8 }[op];
          out.push(E.load(op, reg(), BASE, size * r.int(2040 / size)));
          break;
        }
        case 6: { // store to scratch
          const op = r.pick(["sb", "sh", "sw", "sd"] as const);
          const size = { sb: 1, sh: 2, sw: 4, sd: 8 }[op];
          out.push(E.store(op, BASE, reg(), size * r.int(2040 / size)));
          break;
        }
        case 7: { // forward branch over 1-3 instructions
          const skip = 1 + r.int(3);
          out.push(E.branch(r.pick(["beq", "bne", "blt", "bge", "bltu", "bgeu"] as const), reg(), reg(), 4 * (skip + 1)));
          for (let k = 0; k < skip; k++) out.push(E.aluImm("addi", reg(), reg(), r.int(100)));
          break;
        }
        case 8: // FP: int -> double, compare, back to int bits
          out.push(E.fcvtFpFromInt(r.pick([0, 1, 2, 3] as const), 1, 7, 1, reg()));
          out.push(E.fcvtFpFromInt(r.pick([0, 1, 2, 3] as const), 1, 7, 2, reg()));
          out.push(E.fcmp(r.pick(["fle", "flt", "feq"] as const), 1, reg(), 1, 2));
          out.push(E.fmvXF(1, reg(), r.pick([1, 2])));
          break;
        case 9: // an atomic on an aligned scratch doubleword
          out.push(E.aluImm("addi", 9, BASE, 8 * r.int(64))); // s1 = scratch + 8k
          out.push(E.amo(r.pick(["amoadd", "amoswap", "amoxor", "amomax", "amominu"] as const), r.pick([4, 8] as const), reg(), 9, reg(), false, false));
          break;
        case 10: // a short inner loop: s2 counts 3 down to 0
          out.push(E.aluImm("addi", 18, 0, 3));
          out.push(E.aluReg("add", reg(), reg(), 18));
          out.push(E.aluImm("addi", 18, 18, -1));
          out.push(E.branch("bne", 18, 0, -8));
          break;
        case 11:
          if (allowCall) out.push(0); // patched below into jal ra, func
          else out.push(E.aluReg("xor", reg(), reg(), reg()));
          break;
      }
    }
    return out;
  };
  const prologue = [...li(BASE, SCRATCH), E.aluImm("addi", COUNTER, 0, 20 + r.int(20))];
  const loopStart = prologue.length;
  body.push(...prologue, ...emitBody(40 + r.int(40), true));
  body.push(E.aluImm("addi", COUNTER, COUNTER, -1));
  body.push(E.branch("bne", COUNTER, 0, -4 * (body.length - loopStart)));
  body.push(E.wfi());
  for (let i = 0; i < body.length; i++) if (body[i] === 0) body[i] = E.jal(1, funcAt - (mainAt + 4 * i));
  const func = [...emitBody(10 + r.int(20), false), E.jalr(0, 1, 0)];
  return { code: new Map([[mainAt, words(body)], [funcAt, words(func)]]), entry: mainAt };
}

export function loadProgram(cpu: Cpu, program: { code: Map<number, Uint8Array>; entry: number }, seed: number): void {
  for (const [addr, bytes] of program.code) cpu.writeRam(addr, bytes);
  const r = rng(seed ^ 0x5bd1e995);
  const scratch = new Uint8Array(8192);
  for (let i = 0; i < scratch.length; i++) scratch[i] = r.next() & 0xff;
  cpu.writeRam(SCRATCH, scratch);
  for (const reg of WORK) cpu.setX(reg, BigInt(r.next()) | (BigInt(r.next()) << 32n));
  cpu.pc = BigInt(program.entry);
}

