// Control and status registers, traps, interrupts and the xRET instructions
// (RISC-V privileged architecture, version 1.12 and later).
import * as L from "../layout";
import * as O from "./ops";
import {
  getState, setState, stateBase,
  PRIV_M, PRIV_S, PRIV_U,
  MSTATUS_SIE, MSTATUS_MIE, MSTATUS_SPIE, MSTATUS_MPIE, MSTATUS_SPP, MSTATUS_MPP, MSTATUS_MPP_SHIFT,
  MSTATUS_FS, MSTATUS_VS, MSTATUS_XS, MSTATUS_MPRV, MSTATUS_SUM, MSTATUS_MXR, MSTATUS_TVM, MSTATUS_TW,
  MSTATUS_TSR, MSTATUS_UXL, MSTATUS_SXL, MSTATUS_SD, MSTATUS_UBE, MSTATUS_FS_DIRTY,
  MIP_SSIP, MIP_MSIP, MIP_STIP, MIP_MTIP, MIP_SEIP, MIP_MEIP,
  IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI,
  CAUSE_INTERRUPT, MENVCFG_FIOM, MENVCFG_STCE,
} from "./state";
import { updateContexts, flushTranslated, flushAll } from "./mmu";

@external("env", "readTime") declare function hostReadTime(): f64;

// CSR numbers: the shared list in src/cpu/csr-numbers.ts (the host side uses the same numbers).
export * from "../csr-numbers";
import {
  CSR_FFLAGS, CSR_FRM, CSR_FCSR, CSR_CYCLE, CSR_TIME, CSR_INSTRET, CSR_HPMCOUNTER3, CSR_HPMCOUNTER31,
  CSR_SSTATUS, CSR_SIE, CSR_STVEC, CSR_SCOUNTEREN, CSR_SENVCFG, CSR_SSCRATCH, CSR_SEPC, CSR_SCAUSE,
  CSR_STVAL, CSR_SIP, CSR_STIMECMP, CSR_SATP, CSR_MVENDORID, CSR_MARCHID, CSR_MIMPID, CSR_MHARTID,
  CSR_MCONFIGPTR, CSR_MSTATUS, CSR_MISA, CSR_MEDELEG, CSR_MIDELEG, CSR_MIE, CSR_MTVEC, CSR_MCOUNTEREN,
  CSR_MENVCFG, CSR_MCOUNTINHIBIT, CSR_MHPMEVENT3, CSR_MHPMEVENT31, CSR_MSCRATCH, CSR_MEPC, CSR_MCAUSE,
  CSR_MTVAL, CSR_MIP, CSR_PMPCFG0, CSR_PMPCFG15, CSR_PMPADDR0, CSR_PMPADDR63, CSR_MCYCLE, CSR_MINSTRET,
  CSR_MHPMCOUNTER3, CSR_MHPMCOUNTER31,
} from "../csr-numbers";

/** misa: MXL=2 (64-bit) and extensions A, C, D, F, I, M, S, U. Read-only (WARL). */
export const MISA_VALUE: i64 = (<i64>2 << 62) | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20);

const MSTATUS_WRITABLE: i64 = MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP |
  MSTATUS_FS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR;
const SSTATUS_VISIBLE: i64 = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_UBE | MSTATUS_SPP | MSTATUS_VS | MSTATUS_FS | MSTATUS_XS |
  MSTATUS_SUM | MSTATUS_MXR | MSTATUS_UXL | MSTATUS_SD;
const SSTATUS_WRITABLE: i64 = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR;
/** UXL = SXL = 2: U and S are 64-bit. */
export const MSTATUS_RESET: i64 = (<i64>2 << 32) | (<i64>2 << 34);
const MIE_WRITABLE: i64 = MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP;
const MIP_WRITABLE: i64 = MIP_SSIP | MIP_STIP | MIP_SEIP;
const S_INTERRUPTS: i64 = MIP_SSIP | MIP_STIP | MIP_SEIP;
/** Exceptions M-mode may delegate: all but ECALL from M (11) and the reserved numbers. */
const MEDELEG_WRITABLE: i64 = 0xb3ff;

/** Set by csrRead/csrWrite when the access is illegal (the caller raises an illegal-instruction trap). */
export let csrIllegal = false;
/** Set when a CSR write may have made an interrupt deliverable or changed translation. */
export let csrSideEffects = false;

export function config(): i64 { return getState(L.S_FLAGS); }
@inline function hasSstc(): bool { return (getState(L.S_FLAGS) & L.CONFIG_SSTC) != 0; }
@inline function priv(): i32 { return <i32>getState(L.S_PRIV); }

export function readTime(): i64 {
  const t = <i64>hostReadTime();
  setState(L.S_TIME, t);
  return t;
}

/** mip as software sees it: with Sstc enabled, STIP follows time >= stimecmp (Sstc spec 2.1). */
export function effectiveMip(): i64 {
  let mip = getState(L.S_MIP);
  if (hasSstc() && (getState(L.S_MENVCFG) & MENVCFG_STCE) != 0) {
    mip &= ~MIP_STIP;
    if (<u64>readTime() >= <u64>getState(L.S_STIMECMP)) mip |= MIP_STIP;
  }
  return mip;
}

/** Counter CSR access from S/U needs mcounteren (and scounteren for U) to allow it (privileged ISA 3.1.11). */
function counterAllowed(index: u32): bool {
  const p = priv();
  if (p == PRIV_M) return true;
  if (((getState(L.S_MCOUNTEREN) >> index) & 1) == 0) return false;
  if (p == PRIV_U && ((getState(L.S_SCOUNTEREN) >> index) & 1) == 0) return false;
  return true;
}

function fsOff(): bool { return (getState(L.S_MSTATUS) & MSTATUS_FS) == 0; }

@inline export function mcycle(): i64 { return getState(L.S_MINSTRET) + getState(L.S_MCYCLE_OFFSET); }

/** Whether the last csrInstruction wrote its CSR (not a read-only form, not illegal). */
export let csrInstructionWrote = false;

/**
 * Executes the Zicsr instruction `op` (CSRRW/S/C and their immediate forms) on `csr`, whose rs1
 * field is `rs1` and rs1's value `rs1Value`: returns the CSR's old value (rd's), or sets
 * csrIllegal with nothing changed when the access must trap. The interpreter and translated
 * code (jitCsr) both execute CSR instructions through it.
 */
export function csrInstruction(op: u32, csr: u32, rs1: u32, rs1Value: i64): i64 {
  // CSRRS/C with rs1 = x0 (and the immediate forms with 0) only read (Zicsr, "CSR Instructions").
  const isWrite = op == O.OP_CSRRW || op == O.OP_CSRRWI || rs1 != 0;
  csrInstructionWrote = false;
  if (isWrite && (csr >> 10) == 3) { csrIllegal = true; return 0; } // a read-only CSR
  const old = csrRead(csr);
  if (csrIllegal || !isWrite) return old;
  csrInstructionWrote = true;
  const source: i64 = op >= <u32>O.OP_CSRRWI ? <i64>rs1 : rs1Value;
  let next = source;
  if (op == O.OP_CSRRS || op == O.OP_CSRRSI) next = old | source;
  else if (op == O.OP_CSRRC || op == O.OP_CSRRCI) next = old & ~source;
  csrWrite(csr, next);
  return old;
}

/** Reads a CSR with privilege checks; sets csrIllegal when the access must trap. */
export function csrRead(csr: u32): i64 {
  csrIllegal = false;
  if (<i32>((csr >> 8) & 3) > priv()) { csrIllegal = true; return 0; }
  switch (csr) {
    case CSR_FFLAGS: if (fsOff()) break; return getState(L.S_FCSR) & 0x1f;
    case CSR_FRM: if (fsOff()) break; return (getState(L.S_FCSR) >> 5) & 7;
    case CSR_FCSR: if (fsOff()) break; return getState(L.S_FCSR) & 0xff;
    case CSR_CYCLE: if (!counterAllowed(0)) break; return mcycle();
    case CSR_TIME: if (!counterAllowed(1)) break; return readTime();
    case CSR_INSTRET: if (!counterAllowed(2)) break; return getState(L.S_MINSTRET);
    case CSR_SSTATUS: return getState(L.S_MSTATUS) & SSTATUS_VISIBLE;
    case CSR_SIE: return getState(L.S_MIE) & getState(L.S_MIDELEG);
    case CSR_SIP: return effectiveMip() & getState(L.S_MIDELEG);
    case CSR_STVEC: return getState(L.S_STVEC);
    case CSR_SCOUNTEREN: return getState(L.S_SCOUNTEREN);
    case CSR_SENVCFG: return getState(L.S_SENVCFG);
    case CSR_SSCRATCH: return getState(L.S_SSCRATCH);
    case CSR_SEPC: return getState(L.S_SEPC);
    case CSR_SCAUSE: return getState(L.S_SCAUSE);
    case CSR_STVAL: return getState(L.S_STVAL);
    case CSR_STIMECMP:
      if (!stimecmpAllowed()) break;
      return getState(L.S_STIMECMP);
    case CSR_SATP:
      if (priv() == PRIV_S && (getState(L.S_MSTATUS) & MSTATUS_TVM) != 0) break;
      return getState(L.S_SATP);
    case CSR_MVENDORID: case CSR_MARCHID: case CSR_MIMPID: case CSR_MCONFIGPTR: return 0;
    case CSR_MHARTID: return getState(L.S_MHARTID);
    case CSR_MSTATUS: return getState(L.S_MSTATUS);
    case CSR_MISA: return MISA_VALUE;
    case CSR_MEDELEG: return getState(L.S_MEDELEG);
    case CSR_MIDELEG: return getState(L.S_MIDELEG);
    case CSR_MIE: return getState(L.S_MIE);
    case CSR_MTVEC: return getState(L.S_MTVEC);
    case CSR_MCOUNTEREN: return getState(L.S_MCOUNTEREN);
    case CSR_MENVCFG: return getState(L.S_MENVCFG);
    case CSR_MCOUNTINHIBIT: return getState(L.S_MCOUNTINHIBIT);
    case CSR_MSCRATCH: return getState(L.S_MSCRATCH);
    case CSR_MEPC: return getState(L.S_MEPC);
    case CSR_MCAUSE: return getState(L.S_MCAUSE);
    case CSR_MTVAL: return getState(L.S_MTVAL);
    case CSR_MIP: return effectiveMip();
    case CSR_MCYCLE: return mcycle();
    case CSR_MINSTRET: return getState(L.S_MINSTRET);
    default:
      if (csr >= <u32>CSR_HPMCOUNTER3 && csr <= <u32>CSR_HPMCOUNTER31) {
        if (!counterAllowed(csr - CSR_CYCLE)) break;
        return 0;
      }
      if (csr >= <u32>CSR_MHPMCOUNTER3 && csr <= <u32>CSR_MHPMCOUNTER31) return 0;
      if (csr >= <u32>CSR_MHPMEVENT3 && csr <= <u32>CSR_MHPMEVENT31) return 0;
      if (csr >= <u32>CSR_PMPCFG0 && csr <= <u32>CSR_PMPCFG15) {
        if ((csr & 1) != 0) break; // odd pmpcfg registers do not exist on RV64
        return getState(L.S_PMPCFG + <i32>((csr - CSR_PMPCFG0) >> 1) * 8);
      }
      if (csr >= <u32>CSR_PMPADDR0 && csr <= <u32>CSR_PMPADDR63) return getState(L.S_PMPADDR + <i32>(csr - CSR_PMPADDR0) * 8);
  }
  csrIllegal = true;
  return 0;
}

function stimecmpAllowed(): bool {
  if (!hasSstc()) return false;
  const p = priv();
  if (p == PRIV_M) return true;
  // Sstc: S-mode access needs menvcfg.STCE and mcounteren.TM, else an illegal-instruction trap.
  return (getState(L.S_MENVCFG) & MENVCFG_STCE) != 0 && (getState(L.S_MCOUNTEREN) & 2) != 0 && p == PRIV_S;
}

/** Marks the FP state dirty (mstatus.FS = Dirty, SD = 1). */
@inline export function markFpDirty(): void {
  setState(L.S_MSTATUS, getState(L.S_MSTATUS) | MSTATUS_FS_DIRTY | MSTATUS_SD);
}

function withSd(mstatus: i64): i64 {
  const dirty = (mstatus & MSTATUS_FS) == MSTATUS_FS || (mstatus & MSTATUS_XS) == MSTATUS_XS || (mstatus & MSTATUS_VS) == MSTATUS_VS;
  return dirty ? mstatus | MSTATUS_SD : mstatus & ~MSTATUS_SD;
}

function writeMstatus(value: i64): void {
  const old = getState(L.S_MSTATUS);
  let next = (old & ~MSTATUS_WRITABLE) | (value & MSTATUS_WRITABLE);
  // MPP is WARL over {U, S, M}: the reserved value 2 keeps the previous mode.
  if ((next & MSTATUS_MPP) == (<i64>2 << MSTATUS_MPP_SHIFT)) next = (next & ~MSTATUS_MPP) | (old & MSTATUS_MPP);
  next = withSd(next);
  setState(L.S_MSTATUS, next);
  if (((old ^ next) & MSTATUS_MXR) != 0) flushTranslated();
  updateContexts();
  csrSideEffects = true;
}

/** Writes a CSR (the caller has already checked csrRead's verdict and read-only numbers). */
export function csrWrite(csr: u32, value: i64): void {
  csrIllegal = false;
  switch (csr) {
    case CSR_FFLAGS: setState(L.S_FCSR, (getState(L.S_FCSR) & ~0x1f) | (value & 0x1f)); markFpDirty(); return;
    case CSR_FRM: setState(L.S_FCSR, (getState(L.S_FCSR) & 0x1f) | ((value & 7) << 5)); markFpDirty(); return;
    case CSR_FCSR: setState(L.S_FCSR, value & 0xff); markFpDirty(); return;
    case CSR_SSTATUS: {
      const mstatus = getState(L.S_MSTATUS);
      writeMstatus((mstatus & ~SSTATUS_WRITABLE) | (value & SSTATUS_WRITABLE) | (mstatus & MSTATUS_MPP));
      return;
    }
    case CSR_SIE: {
      const mask = getState(L.S_MIDELEG) & S_INTERRUPTS;
      setState(L.S_MIE, (getState(L.S_MIE) & ~mask) | (value & mask));
      csrSideEffects = true;
      return;
    }
    case CSR_SIP: {
      // Only SSIP is writable through sip (privileged ISA 4.1.3), and only when delegated.
      const mask = getState(L.S_MIDELEG) & MIP_SSIP;
      setState(L.S_MIP, (getState(L.S_MIP) & ~mask) | (value & mask));
      csrSideEffects = true;
      return;
    }
    case CSR_STVEC: setState(L.S_STVEC, value & ~2); return;
    case CSR_SCOUNTEREN: setState(L.S_SCOUNTEREN, value & 0xffffffff); return;
    case CSR_SENVCFG: setState(L.S_SENVCFG, value & MENVCFG_FIOM); return;
    case CSR_SSCRATCH: setState(L.S_SSCRATCH, value); return;
    case CSR_SEPC: setState(L.S_SEPC, value & ~1); return;
    case CSR_SCAUSE: setState(L.S_SCAUSE, value); return;
    case CSR_STVAL: setState(L.S_STVAL, value); return;
    case CSR_STIMECMP: setState(L.S_STIMECMP, value); csrSideEffects = true; return;
    case CSR_SATP: {
      const mode = value >>> 60;
      // WARL: a write with an unsupported mode leaves satp unchanged (privileged ISA 10.1.11).
      if (mode != 0 && mode != 8 && mode != 9 && mode != 10) return;
      // ASIDs are not used to tag the TLB, so every satp write flushes the translated contexts.
      setState(L.S_SATP, value);
      flushTranslated();
      return;
    }
    case CSR_MSTATUS: writeMstatus(value); return;
    case CSR_MISA: return;
    case CSR_MEDELEG: setState(L.S_MEDELEG, value & MEDELEG_WRITABLE); return;
    case CSR_MIDELEG: setState(L.S_MIDELEG, value & S_INTERRUPTS); csrSideEffects = true; return;
    case CSR_MIE: setState(L.S_MIE, value & MIE_WRITABLE); csrSideEffects = true; return;
    case CSR_MTVEC: setState(L.S_MTVEC, value & ~2); return;
    case CSR_MCOUNTEREN: setState(L.S_MCOUNTEREN, value & 0xffffffff); return;
    case CSR_MENVCFG: {
      let mask = MENVCFG_FIOM;
      if (hasSstc()) mask |= MENVCFG_STCE;
      setState(L.S_MENVCFG, value & mask);
      csrSideEffects = true;
      return;
    }
    case CSR_MCOUNTINHIBIT: setState(L.S_MCOUNTINHIBIT, value & 5); return;
    case CSR_MSCRATCH: setState(L.S_MSCRATCH, value); return;
    case CSR_MEPC: setState(L.S_MEPC, value & ~1); return;
    case CSR_MCAUSE: setState(L.S_MCAUSE, value); return;
    case CSR_MTVAL: setState(L.S_MTVAL, value); return;
    case CSR_MIP: {
      let mask = MIP_WRITABLE;
      if (hasSstc() && (getState(L.S_MENVCFG) & MENVCFG_STCE) != 0) mask &= ~MIP_STIP;
      setState(L.S_MIP, (getState(L.S_MIP) & ~mask) | (value & mask));
      csrSideEffects = true;
      return;
    }
    // The writing instruction's own retirement must not show in the value the next one reads.
    case CSR_MCYCLE: setState(L.S_MCYCLE_OFFSET, value - getState(L.S_MINSTRET) - 1); return;
    case CSR_MINSTRET:
      // The executor adds the instructions of the current run on exit; the write instruction itself
      // is not counted (privileged ISA 3.3.1: the written value is seen by the next instruction).
      setState(L.S_MINSTRET, value - 1);
      return;
    default:
      if (csr >= <u32>CSR_PMPCFG0 && csr <= <u32>CSR_PMPCFG15) {
        setState(L.S_PMPCFG + <i32>((csr - CSR_PMPCFG0) >> 1) * 8, value);
        return;
      }
      if (csr >= <u32>CSR_PMPADDR0 && csr <= <u32>CSR_PMPADDR63) {
        setState(L.S_PMPADDR + <i32>(csr - CSR_PMPADDR0) * 8, value & ((<i64>1 << 54) - 1));
        return;
      }
      // hpm counters and events: hardwired to zero, writes ignored.
      return;
  }
}

// ---- Traps -----------------------------------------------------------------------------------

/** Enters the trap handler for `cause` (interrupt bit 63 set for interrupts); returns the new pc. */
export function takeTrap(cause: i64, tval: i64, pc: i64): i64 {
  const p = priv();
  const isInterrupt = cause < 0;
  const code = <i32>(cause & 63);
  const countSlot = L.S_TRAP_COUNTS + ((isInterrupt ? 32 : 0) + (code & 31)) * 8;
  setState(countSlot, getState(countSlot) + 1);
  setState(L.S_LAST_TRAP_CAUSE, cause);
  setState(L.S_RESERVATION, -1);
  const delegation = getState(isInterrupt ? L.S_MIDELEG : L.S_MEDELEG);
  let mstatus = getState(L.S_MSTATUS);
  let vector: i64;
  if (p <= PRIV_S && ((delegation >> code) & 1) != 0) {
    setState(L.S_SCAUSE, cause);
    setState(L.S_SEPC, pc);
    setState(L.S_STVAL, tval);
    mstatus = (mstatus & ~(MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE)) |
      (p == PRIV_S ? MSTATUS_SPP : 0) | ((mstatus & MSTATUS_SIE) != 0 ? MSTATUS_SPIE : 0);
    setState(L.S_PRIV, PRIV_S);
    vector = getState(L.S_STVEC);
  } else {
    setState(L.S_MCAUSE, cause);
    setState(L.S_MEPC, pc);
    setState(L.S_MTVAL, tval);
    mstatus = (mstatus & ~(MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE)) |
      (<i64>p << MSTATUS_MPP_SHIFT) | ((mstatus & MSTATUS_MIE) != 0 ? MSTATUS_MPIE : 0);
    setState(L.S_PRIV, PRIV_M);
    vector = getState(L.S_MTVEC);
  }
  setState(L.S_MSTATUS, mstatus);
  updateContexts();
  const base = vector & ~3;
  if ((vector & 1) != 0 && isInterrupt) return base + 4 * <i64>code;
  return base;
}

/** The highest-priority interrupt that can be taken now, or -1 (privileged ISA 3.1.9). */
export function pendingInterrupt(): i32 {
  const pending = effectiveMip() & getState(L.S_MIE);
  if (pending == 0) return -1;
  const p = priv();
  const mstatus = getState(L.S_MSTATUS);
  const mideleg = getState(L.S_MIDELEG);
  const mEnabled = p < PRIV_M || (mstatus & MSTATUS_MIE) != 0;
  const sEnabled = p == PRIV_U || (p == PRIV_S && (mstatus & MSTATUS_SIE) != 0);
  let irqs = mEnabled ? pending & ~mideleg : 0;
  if (irqs == 0 && sEnabled) irqs = pending & mideleg;
  if (irqs == 0) return -1;
  if ((irqs & MIP_MEIP) != 0) return IRQ_MEI;
  if ((irqs & MIP_MSIP) != 0) return IRQ_MSI;
  if ((irqs & MIP_MTIP) != 0) return IRQ_MTI;
  if ((irqs & MIP_SEIP) != 0) return IRQ_SEI;
  if ((irqs & MIP_SSIP) != 0) return IRQ_SSI;
  if ((irqs & MIP_STIP) != 0) return IRQ_STI;
  return -1;
}

/** Takes a pending interrupt if one is deliverable; returns the (possibly redirected) pc. */
export function checkInterrupts(pc: i64): i64 {
  const irq = pendingInterrupt();
  if (irq < 0) return pc;
  return takeTrap(CAUSE_INTERRUPT | <i64>irq, 0, pc);
}

/** WFI resumes when any interrupt is pending and enabled in mie, regardless of global enables. */
export function wfiShouldWake(): bool {
  return (effectiveMip() & getState(L.S_MIE)) != 0;
}

/** MRET; returns the new pc. */
export function doMret(): i64 {
  let mstatus = getState(L.S_MSTATUS);
  const target = <i32>((mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
  mstatus = (mstatus & ~(MSTATUS_MIE | MSTATUS_MPP)) | ((mstatus & MSTATUS_MPIE) != 0 ? MSTATUS_MIE : 0) | MSTATUS_MPIE;
  if (target != PRIV_M) mstatus &= ~MSTATUS_MPRV;
  setState(L.S_MSTATUS, mstatus);
  setState(L.S_PRIV, target);
  updateContexts();
  return getState(L.S_MEPC);
}

/** SRET; returns the new pc. */
export function doSret(): i64 {
  let mstatus = getState(L.S_MSTATUS);
  const target = (mstatus & MSTATUS_SPP) != 0 ? PRIV_S : PRIV_U;
  mstatus = (mstatus & ~(MSTATUS_SIE | MSTATUS_SPP | MSTATUS_MPRV)) | ((mstatus & MSTATUS_SPIE) != 0 ? MSTATUS_SIE : 0) | MSTATUS_SPIE;
  setState(L.S_MSTATUS, mstatus);
  setState(L.S_PRIV, target);
  updateContexts();
  return getState(L.S_SEPC);
}

/** Architectural reset state (privileged ISA 3.4): M-mode, interrupts off, FP off, bare translation. */
export function resetHart(): void {
  memory.fill(stateBase(), 0, 0x600); // registers and CSRs; configuration and statistics survive
  setState(L.S_PRIV, PRIV_M);
  setState(L.S_MSTATUS, MSTATUS_RESET);
  setState(L.S_MISA, MISA_VALUE);
  setState(L.S_RESERVATION, -1);
  setState(L.S_PC, getState(L.S_RAM_PHYS_BASE));
  csrSideEffects = false;
  csrIllegal = false;
  flushAll();
  updateContexts();
}

export function clearCsrSideEffects(): void { csrSideEffects = false; }
