// A program whose block entry is the last parcel of a code page: C.JALR at 0xffc calls a
// function, which returns to a compressed MMIO load at 0xffe. Translated code must leave the
// load to the interpreter (it is MMIO), and the interpreter must then run it rather than call
// the translation again. Run in a worker thread by translate.test.ts: before the fix the core
// never returned from run(), which only terminating the thread ends.
import { parentPort, workerData } from "node:worker_threads";
import { Cpu, ExitReason, type AccessSize, type CpuOptions } from "../../src/cpu/cpu.ts";
import * as L from "../../src/cpu/layout.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import * as E from "../diff/encode.ts";
import { RAM, li, words } from "./programs.ts";

export const PAGE_END_LOOPS = 300;
/** What the MMIO load returns each time. */
export const PAGE_END_VALUE = 5;

export interface PageEndResult {
  exit: ExitReason;
  sum: bigint;
  mmioLoads: number;
  instret: bigint;
  bounces: bigint;
}

const halfword = (h: number) => new Uint8Array([h & 0xff, h >> 8]);
/** C.JALR rs1 (RVC quadrant 2, funct4 1001, rs2 = 0). */
const cJalr = (rs1: number) => 0x9002 | (rs1 << 7);

export function runPageEndProgram(jit: CpuOptions["jit"]): PageEndResult {
  let mmioLoads = 0;
  const bus = { load: (_paddr: number, _size: AccessSize) => (mmioLoads++, PAGE_END_VALUE), store: () => true };
  const cpu = new Cpu({ module: loadCoreModule(), ramSize: 4 << 20, bus, jit });
  // sp = MMIO base, t0 = loop count, s1 = the called function; then to the page's end.
  const setup = [E.lui(2, 0x10000), E.aluImm("addi", 5, 0, PAGE_END_LOOPS), ...li(9, RAM + 0x2000)];
  setup.push(E.jType(0, 0xffc - 4 * setup.length));
  cpu.writeRam(RAM, words(setup));
  cpu.writeRam(RAM + 0xffc, halfword(cJalr(9)));
  cpu.writeRam(RAM + 0xffe, halfword(E.cLwsp(13, 0))); // the return point: an entry at the page's last parcel
  // Next page: a0 += a3; t0 -= 1; bnez t0 -> 0xffc; wfi
  cpu.writeRam(RAM + 0x1000, words([E.aluReg("add", 10, 10, 13), E.aluImm("addi", 5, 5, -1), E.bType(1, 5, 0, -12), E.wfi()]));
  cpu.writeRam(RAM + 0x2000, words([E.iType(0x67, 0, 0, 1, 0)])); // ret
  cpu.pc = BigInt(RAM);
  let exit = ExitReason.Budget;
  for (let k = 0; k < 1000 && exit !== ExitReason.Wfi; k++) exit = cpu.run(1000);
  return { exit, sum: cpu.x(10), mmioLoads, instret: cpu.instret, bounces: cpu.getState(L.S_JIT_BOUNCES) };
}

if (parentPort && workerData?.pageEnd) parentPort.postMessage(runPageEndProgram(workerData.pageEnd.jit));
