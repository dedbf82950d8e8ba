// How a hart enters the kernel in S-mode, shared by the machine's own harts and hart threads.
import { PRIV_S, type Cpu } from "../cpu/cpu.ts";
import { CSR_MSTATUS, CSR_SATP } from "../cpu/csr-numbers.ts";

/** mstatus.SIE (privileged ISA 3.1.6). */
const MSTATUS_SIE = 1n << 1n;

/** SBI spec §9.1 (hart_start) and §9.4 (non-retentive resume): S-mode at `pc`, a0 = hartid, a1 = `a1`, satp = 0, SIE = 0. */
export function enterSupervisor(cpu: Cpu, hart: number, pc: bigint, a1: bigint): void {
  cpu.priv = PRIV_S;
  cpu.writeCsr(CSR_SATP, 0n);
  cpu.writeCsr(CSR_MSTATUS, cpu.readCsr(CSR_MSTATUS) & ~MSTATUS_SIE);
  cpu.flushTlb();
  cpu.pc = pc;
  cpu.setX(10, BigInt(hart));
  cpu.setX(11, a1);
}
