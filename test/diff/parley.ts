// The Parley side of the differential tests: runs a case on Parley's CPU core in M-mode with
// paging off. The code is followed by a wfi; with mie = 0 nothing can wake the hart, so run()
// returns ExitReason.Wfi with the pc at that wfi when the sequence completes. mtvec points at a
// second wfi (TRAP_BASE), which tells a trap apart from the normal end.
import { Cpu, ExitReason, PRIV_M, type CpuOptions } from "../../src/cpu/cpu.ts";
import * as CL from "../../src/cpu/layout.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import * as E from "./encode.ts";
import * as L from "./layout.ts";
import type { RunResult } from "./oracle.ts";
import { CSR_FCSR, CSR_MCAUSE, CSR_MEPC, CSR_MIE, CSR_MSTATUS, CSR_MTVAL, CSR_MTVEC } from "../../src/cpu/csr-numbers.ts";

const RAM_SIZE = 1 << 20;
/** mstatus.FS = Dirty: FP instructions and the fcsr CSRs are enabled. */
const MSTATUS_FS = 3n << 13n;
/** More than any generated sequence can execute (they are short and only jump forward). */
const BUDGET = 100_000;

const WFI_BYTES = E.toBytes([E.wfi()]);

/** True when pc is at the wfi at `addr` or just past it (the core may retire the wfi first). */
function atWfi(pc: bigint, addr: number): boolean {
  return pc === BigInt(addr) || pc === BigInt(addr + 4);
}

export class ParleyRunner {
  private readonly cpu: Cpu;
  /** Instructions retired over all runs, and those retired by translated code (src/cpu/jit). */
  retired = 0n;
  translated = 0n;

  /** `jit`: "off" runs the interpreter; "eager" translates every sequence before it runs. */
  constructor(jit?: CpuOptions["jit"], module: WebAssembly.Module = loadCoreModule()) {
    this.cpu = new Cpu({ module, ramSize: RAM_SIZE, jit });
    this.cpu.writeRam(L.TRAP_BASE, WFI_BYTES);
  }

  /** Runs `code` from the given initial state and returns the final state (or the trap). */
  run(code: Uint8Array, init: L.MachineState): RunResult {
    const cpu = this.cpu;
    const image = new Uint8Array(code.length + WFI_BYTES.length);
    image.set(code);
    image.set(WFI_BYTES, code.length);
    cpu.writeRam(L.CODE_BASE, image);
    cpu.writeRam(L.SCRATCH, init.mem);
    this.resetHart(init);

    const instret0 = cpu.instret, translated0 = cpu.getState(CL.S_JIT_RETIRED);
    const exit = cpu.run(BUDGET);
    this.retired += cpu.instret - instret0;
    this.translated += cpu.getState(CL.S_JIT_RETIRED) - translated0;
    if (exit === ExitReason.Wfi && atWfi(cpu.pc, L.CODE_BASE + code.length)) return { kind: "ok", state: this.capture() };
    return { kind: "trap", detail: this.describeStop(exit) };
  }

  /** Puts the hart in M-mode at the code with the case's registers, fcsr and no reservation. */
  private resetHart(init: L.MachineState): void {
    const cpu = this.cpu;
    cpu.priv = PRIV_M;
    cpu.writeCsr(CSR_MIE, 0n);
    cpu.writeCsr(CSR_MTVEC, BigInt(L.TRAP_BASE));
    cpu.writeCsr(CSR_MSTATUS, (cpu.readCsr(CSR_MSTATUS) & ~MSTATUS_FS) | MSTATUS_FS);
    for (let i = 1; i < 32; i++) cpu.setX(i, init.x[i]);
    for (let i = 0; i < 32; i++) cpu.setF(i, init.f[i]);
    cpu.writeCsr(CSR_FCSR, BigInt(init.fcsr));
    // QEMU's harness clears the reservation with an SC before each case; do the same here.
    cpu.setState(CL.S_RESERVATION, -1n);
    cpu.pc = BigInt(L.CODE_BASE);
  }

  private capture(): L.MachineState {
    const cpu = this.cpu;
    return {
      x: Array.from({ length: 32 }, (_, i) => cpu.x(i)),
      f: Array.from({ length: 32 }, (_, i) => cpu.f(i)),
      fcsr: Number(cpu.readCsr(CSR_FCSR)),
      mem: cpu.readRam(L.SCRATCH, L.SCRATCH_SIZE),
    };
  }

  private describeStop(exit: ExitReason): string {
    const cpu = this.cpu;
    const hex = (v: bigint) => `0x${v.toString(16)}`;
    if (exit === ExitReason.Wfi && atWfi(cpu.pc, L.TRAP_BASE)) {
      const cause = cpu.readCsr(CSR_MCAUSE);
      return `trap mcause ${cause} at mepc ${hex(cpu.readCsr(CSR_MEPC))}, mtval ${hex(cpu.readCsr(CSR_MTVAL))}`;
    }
    const why = exit === ExitReason.Budget ? "budget exhausted" : exit === ExitReason.Wfi ? "stopped at a wfi" : `exit ${exit}`;
    return `${why} with pc ${hex(cpu.pc)}`;
  }
}
