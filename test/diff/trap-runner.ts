// Runs trap-programs.ts cases on one Parley core (interpreter or translator) and captures the
// final architectural state: registers, pc, privilege, trap CSRs, instructions retired, and every
// memory region the program or its trap handlers may write.
import { setImmediate } from "node:timers";
import { Cpu, ExitReason, PRIV_M, PRIV_S, PRIV_U, type CpuOptions } from "../../src/cpu/cpu.ts";
import * as CL from "../../src/cpu/layout.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import {
  CSR_FCSR, CSR_MCAUSE, CSR_MEDELEG, CSR_MEPC, CSR_MIDELEG, CSR_MIE, CSR_MIP, CSR_MSCRATCH, CSR_MSTATUS, CSR_MTVAL, CSR_MTVEC,
  CSR_SATP, CSR_SCAUSE, CSR_SEPC, CSR_SSCRATCH, CSR_STVAL, CSR_STVEC,
} from "../../src/cpu/csr-numbers.ts";
import * as E from "./encode.ts";
import { CODE_BASE, SCRATCH } from "./layout.ts";
import { Rng } from "./rng.ts";
import {
  BEFORE_HOLE, CODE_PAGES, HALT_OFFSET, LOG_COUNT, LOG_ENTRIES, LOG_ENTRY, LOG_FIRST, SAVE_END, SSIP, COMPARED_MEMORY, CONTROL, EXECONLY_PAGE, EXECONLY_RET, EXECONLY_STRADDLE, FUNC_PAGE, FUNC_SLOT_SIZE, M_HANDLER, M_SAVE, NEAR_DATA,
  RAM_BASE, RAM_SIZE, READONLY_PAGE, SATP_SV39, S_HANDLER, S_SAVE, UNACCESSED_PAGE, HOLE_PAGE, DEVICE_PAGE, assembleTrapCase, pageTables, trapHandler, userPages,
  type TrapCase,
} from "./trap-programs.ts";
import type { Item } from "./sequence.ts";

/** mstatus.FS = Dirty: FP instructions and the fcsr CSRs are enabled. */
const MSTATUS_FS = 3n << 13n;
/** mstatus.SIE (supervisor interrupts on in S-mode) and SUM (S-mode may read user pages). */
const MSTATUS_SIE = 1n << 1n;
const MSTATUS_SUM = 1n << 18n;
/** mstatus.MPRV: M-mode loads and stores use the privilege in MPP. */
const MSTATUS_MPRV = 1n << 17n;
/**
 * Far more than any case retires (a few hundred instructions a pass, a few passes: at most 3,573
 * over seeds 1 to 30, 1500 cases each), and small enough that a program that never ends fails fast.
 */
const STEP_LIMIT = 100_000;
const RET = E.jalr(0, 1, 0);
/** Slices after which runAsync(settle) waits for the compilation in flight. */
const SETTLE_AFTER_SLICES = 2;

/** The CSRs compared at the end. */
export const COMPARED_CSRS: ReadonlyArray<readonly [number, string]> = [
  [CSR_MSTATUS, "mstatus"], [CSR_MCAUSE, "mcause"], [CSR_MEPC, "mepc"], [CSR_MTVAL, "mtval"], [CSR_MSCRATCH, "mscratch"],
  [CSR_SCAUSE, "scause"], [CSR_SEPC, "sepc"], [CSR_STVAL, "stval"], [CSR_SSCRATCH, "sscratch"], [CSR_FCSR, "fcsr"],
];

export interface FinalState {
  /** How run() ended: "wfi" at the end of the code, or a description of anything else. */
  end: string;
  pc: bigint;
  priv: number;
  /** Instructions retired by this run. */
  instret: bigint;
  x: bigint[];
  f: bigint[];
  csrs: bigint[];
  memory: Uint8Array[];
}

/** `async`: run with runAsync (the event loop turns between slices). */
export type Engine = { name: string; jit: CpuOptions["jit"]; slices: readonly number[]; async?: boolean };

interface RunProgress {
  tc: TrapCase;
  /** Host interrupts raised so far. */
  interrupts: number;
  codeEnd: number;
  instret0: bigint;
  translated0: bigint;
  steps: number;
  slices: number;
  /** How the run ended, once it did. */
  end?: string;
}

function u64s(values: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setBigUint64(i * 8, v, true));
  return out;
}

/** Pseudo-random bytes (the initial contents of the data pages). */
function noise(seed: number, size: number): Uint8Array {
  const rng = new Rng(seed);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 4) new DataView(out.buffer).setUint32(i, rng.u32(), true);
  return out;
}

/** The causes (mcause/scause values) the handlers logged, M-mode's first (the last 16 traps of each). */
export function loggedCauses(state: FinalState): bigint[] {
  const out: bigint[] = [];
  for (const name of ["M trap log", "S trap log"]) {
    const log = new DataView(state.memory[COMPARED_MEMORY.findIndex(([, , n]) => n === name)].buffer);
    const count = Number(log.getBigUint64(LOG_COUNT, true));
    for (let k = 0; k < Math.min(count, LOG_ENTRIES); k++) out.push(log.getBigUint64(LOG_FIRST + k * LOG_ENTRY, true));
  }
  return out;
}

/** How a case's run ends when it runs to its end: U-mode's final wfi is illegal and traps. */
export function expectedEnd(tc: TrapCase): string {
  return tc.mode === "U" ? "final wfi trapped into the " + ((tc.medeleg >> 2n) & 1n ? "S" : "M") + "-mode handler" : "wfi";
}

export class TrapRunner {
  private cpu: Cpu;
  /** Instructions retired over all runs, and of those by translated code. */
  retired = 0n;
  translated = 0n;

  constructor(readonly engine: Engine) {
    this.cpu = this.makeCpu();
  }

  private makeCpu(): Cpu {
    return new Cpu({ module: loadCoreModule(), ramSize: RAM_SIZE, jit: this.engine.jit });
  }

  /** A fresh core (translations, decoded code, TLB and counters from earlier cases gone). */
  reset(): void {
    this.cpu = this.makeCpu();
  }

  /** Runs the case (with `items` instead of its own, when shrinking) and returns its final state. */
  run(tc: TrapCase, items: readonly Item[] = tc.items): FinalState {
    const run = this.begin(tc, items);
    while (run.end === undefined) this.slice(run);
    return this.finish(run);
  }

  /**
   * The same, letting the event loop turn between slices: with asynchronous compilation
   * (JitOptions.async), modules compiled off the critical path get installed mid-run.
   */
  async runAsync(tc: TrapCase, items: readonly Item[] = tc.items, settle = false): Promise<FinalState> {
    const run = this.begin(tc, items);
    while (run.end === undefined) {
      this.slice(run);
      await new Promise((resolve) => setImmediate(resolve));
      // `settle`: after the first slices, wait for the compilation in flight, so that this case
      // surely runs translated code whatever the host's speed (the others race their compiles).
      if (settle && run.slices === SETTLE_AFTER_SLICES) {
        while ((this.cpu.jit as unknown as { compiling: boolean } | undefined)?.compiling) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    return this.finish(run);
  }

  private begin(tc: TrapCase, items: readonly Item[]): RunProgress {
    this.load(tc, items);
    const cpu = this.cpu;
    return {
      tc,
      interrupts: 0,
      codeEnd: CODE_BASE + assembleTrapCase(tc, items).length,
      instret0: cpu.instret,
      translated0: cpu.getState(CL.S_JIT_RETIRED),
      steps: 0,
      slices: 0,
    };
  }

  /** Runs one slice (cut short at the next host interrupt); sets `end` when the run is over. */
  private slice(run: RunProgress): void {
    const cpu = this.cpu;
    let slice = this.engine.slices[run.slices++ % this.engine.slices.length];
    const retired = Number(cpu.instret - run.instret0);
    const points = run.tc.hostInterrupts;
    while (run.interrupts < points.length && retired >= points[run.interrupts]) {
      cpu.setPendingInterrupt(Number(SSIP), true);
      run.interrupts++;
    }
    if (run.interrupts < points.length) slice = Math.min(slice, points[run.interrupts] - retired);
    const exit = cpu.run(slice);
    run.steps += slice;
    if (exit === ExitReason.Wfi) {
      const pc = Number(cpu.pc);
      const at = (addr: number) => pc === addr || pc === addr + 4;
      if (at(run.codeEnd)) run.end = "wfi";
      else if (at(M_HANDLER + HALT_OFFSET)) run.end = "final wfi trapped into the M-mode handler";
      else if (at(S_HANDLER + HALT_OFFSET)) run.end = "final wfi trapped into the S-mode handler";
      else run.end = `wfi at 0x${pc.toString(16)}, not at the end`;
    } else if (exit !== ExitReason.Budget) run.end = `exit ${exit}`;
    else if (run.steps >= STEP_LIMIT) run.end = `did not finish within ${STEP_LIMIT} steps (then at pc 0x${cpu.pc.toString(16)}, privilege ${cpu.priv})`;
  }

  private finish(run: RunProgress): FinalState {
    const cpu = this.cpu;
    this.retired += cpu.instret - run.instret0;
    this.translated += cpu.getState(CL.S_JIT_RETIRED) - run.translated0;
    return {
      end: run.end!,
      pc: cpu.pc,
      priv: cpu.priv,
      instret: cpu.instret - run.instret0,
      x: Array.from({ length: 32 }, (_, i) => cpu.x(i)),
      f: Array.from({ length: 32 }, (_, i) => cpu.f(i)),
      csrs: COMPARED_CSRS.map(([csr]) => cpu.readCsr(csr)),
      memory: COMPARED_MEMORY.map(([addr, size]) => cpu.readRam(addr, size)),
    };
  }

  /** Writes the whole environment anew (so nothing of an earlier case survives) and sets up the hart. */
  private load(tc: TrapCase, items: readonly Item[]): void {
    const cpu = this.cpu;
    const code = assembleTrapCase(tc, items);
    // The code pages: zeros around the code and its final wfi, then the near data.
    const codeImage = new Uint8Array(CODE_PAGES[1] - CODE_PAGES[0]);
    codeImage.set(code, CODE_BASE - RAM_BASE);
    codeImage.set(E.toBytes([E.wfi()]), CODE_BASE - RAM_BASE + code.length);
    codeImage.set(noise(tc.fill, 0x400), NEAR_DATA - RAM_BASE);
    cpu.writeRam(RAM_BASE, codeImage);
    const funcPage = noise(tc.fill ^ 1, 0x1000);
    tc.slots.forEach((w, i) => funcPage.set(E.toBytes([w, RET]), i * FUNC_SLOT_SIZE));
    cpu.writeRam(FUNC_PAGE, funcPage);
    const handlers = new Uint8Array(0x1000);
    handlers.set(E.toBytes(trapHandler(true)), M_HANDLER - RAM_BASE - 0x6000);
    handlers.set(E.toBytes(trapHandler(false)), S_HANDLER - RAM_BASE - 0x6000);
    cpu.writeRam(M_HANDLER, handlers);
    cpu.writeRam(M_SAVE, new Uint8Array(0x1000)); // both save areas
    for (const save of [M_SAVE, S_SAVE]) cpu.writeRam(save + SAVE_END, u64s([BigInt(CODE_BASE + code.length)]));
    cpu.writeRam(CONTROL, u64s([BigInt(tc.trips)]));
    for (const [addr, entries] of pageTables(userPages(tc.mode))) cpu.writeRam(addr, u64s(entries));
    for (const [page, salt] of [[BEFORE_HOLE, 2], [READONLY_PAGE, 3], [UNACCESSED_PAGE, 5], [HOLE_PAGE, 6], [DEVICE_PAGE, 7]]) {
      cpu.writeRam(page, noise(tc.fill ^ salt, 0x1000));
    }
    const execOnly = noise(tc.fill ^ 4, 0x1000);
    execOnly.set(E.toBytes([RET]), EXECONLY_RET);
    execOnly.set(E.toBytes([E.aluImm("addi", 0, 0, 0)]).subarray(0, 2), EXECONLY_STRADDLE); // the first half of a nop
    cpu.writeRam(EXECONLY_PAGE, execOnly);
    cpu.writeRam(SCRATCH, tc.init.mem);

    cpu.priv = PRIV_M;
    const machine = tc.mode === "M" || tc.mode === "MPRV";
    cpu.writeCsr(CSR_MIE, machine ? 0n : SSIP);
    cpu.writeCsr(CSR_MIP, 0n);
    cpu.writeCsr(CSR_MIDELEG, tc.mideleg);
    cpu.writeCsr(CSR_MEDELEG, tc.medeleg);
    cpu.writeCsr(CSR_MTVEC, BigInt(M_HANDLER));
    cpu.writeCsr(CSR_STVEC, BigInt(S_HANDLER));
    cpu.writeCsr(CSR_MSCRATCH, BigInt(M_SAVE));
    cpu.writeCsr(CSR_SSCRATCH, BigInt(S_SAVE));
    // MPP = U (0): where mret goes from a trap handler, and MPRV's privilege for loads and stores.
    const mprv = tc.mode === "MPRV" ? MSTATUS_MPRV : 0n;
    cpu.writeCsr(CSR_MSTATUS, MSTATUS_FS | MSTATUS_SIE | (userPages(tc.mode) ? MSTATUS_SUM : 0n) | mprv);
    for (const csr of [CSR_MCAUSE, CSR_MEPC, CSR_MTVAL, CSR_SCAUSE, CSR_SEPC, CSR_STVAL]) cpu.writeCsr(csr, 0n);
    cpu.writeCsr(CSR_SATP, SATP_SV39);
    cpu.flushTlb();
    for (let i = 1; i < 32; i++) cpu.setX(i, tc.init.x[i]);
    for (let i = 0; i < 32; i++) cpu.setF(i, tc.init.f[i]);
    cpu.writeCsr(CSR_FCSR, BigInt(tc.init.fcsr));
    cpu.setState(CL.S_RESERVATION, -1n);
    cpu.priv = machine ? PRIV_M : tc.mode === "U" ? PRIV_U : PRIV_S;
    cpu.pc = BigInt(CODE_BASE);
  }
}
