// What the translator needs to know about a decoded instruction (src/cpu/decoded.ts): its
// fields, what kind of control flow and code it makes, and which integer registers it uses.
import * as O from "../opcodes.ts";
import * as D from "../decoded.ts";
import * as C from "../csr-numbers.ts";

/** The decoded page: (word, imm) per 2-byte parcel, as the core's jitDecodePage writes them. */
export interface DecodedPage {
  word(offset: number): number;
  imm(offset: number): number;
}

export const opOf = (w: number) => w & D.DECODED_OP_MASK;
export const rdOf = (w: number) => (w >>> D.DECODED_RD_SHIFT) & D.DECODED_REG_MASK;
export const rs1Of = (w: number) => (w >>> D.DECODED_RS1_SHIFT) & D.DECODED_REG_MASK;
export const rs2Of = (w: number) => (w >>> D.DECODED_RS2_SHIFT) & D.DECODED_REG_MASK;
export const rmOf = (w: number) => (w >>> D.DECODED_RM_SHIFT) & D.DECODED_RM_MASK;
export const lenOf = (w: number) => ((w >>> D.DECODED_COMPRESSED_SHIFT) !== 0 ? 2 : 4);

export const enum Kind {
  Alu, // pure computation writing rd
  Nop,
  Branch, // conditional, falls through
  Jal, // unconditional, static target
  Jalr,
  Load,
  Store,
  FpLoad,
  FpStore,
  Fp, // F/D computation through the core
  Amo,
  Csr, // a CSR instruction through the core's CSR code (jitCsr)
  Exit, // left to the interpreter: system instructions, CSRs, illegal, page-straddling
}

/**
 * The kind of an instruction by its op, and for CSR instructions by the CSR number in its
 * immediate (`imm`): callers that only ask about control flow or registers may leave it out.
 */
export function kindOf(op: number, imm = 0): Kind {
  if (op >= O.OP_LI && op <= O.OP_REMUW) return Kind.Alu;
  if (op === O.OP_MV) return Kind.Alu;
  if ((op >= O.OP_BEQ && op <= O.OP_BGEU) || op === O.OP_BEQZ || op === O.OP_BNEZ) return Kind.Branch;
  if (op === O.OP_JAL || op === O.OP_J) return Kind.Jal;
  if (op === O.OP_JALR) return Kind.Jalr;
  if (op >= O.OP_LB && op <= O.OP_LWU) return Kind.Load;
  if (op >= O.OP_SB && op <= O.OP_SD) return Kind.Store;
  // FENCE is a barrier only on a shared memory (select.ts). FENCE.I goes to the interpreter,
  // which drops the code other harts wrote (this hart's own stores already did).
  if (op === O.OP_NOP || op === O.OP_FENCE) return Kind.Nop;
  if (op >= O.OP_LR_W && op <= O.OP_AMOMAXU_D) return Kind.Amo;
  if (op === O.OP_FLW || op === O.OP_FLD) return Kind.FpLoad;
  if (op === O.OP_FSW || op === O.OP_FSD) return Kind.FpStore;
  if (op >= O.OP_FMADD_S && op <= O.OP_FCVT_D_S) return Kind.Fp;
  if (op >= O.OP_CSRRW && op <= O.OP_CSRRCI) return readsRetiredCount(imm & 0xfff) ? Kind.Exit : Kind.Csr;
  return Kind.Exit;
}

/**
 * CSRs whose value is the count of instructions retired up to the accessing one: the interpreter
 * makes that count exact for the instruction (exec.ts), translated code does not know it there.
 */
function readsRetiredCount(csr: number): boolean {
  return csr === C.CSR_CYCLE || csr === C.CSR_INSTRET || csr === C.CSR_MCYCLE || csr === C.CSR_MINSTRET;
}

/** System instructions after which execution resumes at the next one once the interpreter ran them. */
export function resumesAfter(op: number): boolean {
  return (
    op === O.OP_ECALL || op === O.OP_WFI || op === O.OP_SFENCE_VMA || op === O.OP_FENCE_I || (op >= O.OP_CSRRW && op <= O.OP_CSRRCI) ||
    // The interpreter counts PAUSE for pause-loop exiting and parks the hart on WRS.
    op === O.OP_PAUSE || op === O.OP_WRS_NTO || op === O.OP_WRS_STO
  );
}

/** True when control can continue with the next instruction in memory. */
export function fallsThrough(op: number): boolean {
  const k = kindOf(op);
  if (k === Kind.Jal || k === Kind.Jalr) return false;
  if (k === Kind.Exit) return resumesAfter(op);
  return true;
}

/** F/D instructions that read an integer register (rs1), and those that write one (rd). */
export const FP_READS_X = new Set([
  O.OP_FMV_W_X, O.OP_FMV_D_X, O.OP_FCVT_S_W, O.OP_FCVT_S_WU, O.OP_FCVT_S_L, O.OP_FCVT_S_LU,
  O.OP_FCVT_D_W, O.OP_FCVT_D_WU, O.OP_FCVT_D_L, O.OP_FCVT_D_LU,
]);
export const FP_WRITES_X = new Set([
  O.OP_FMV_X_W, O.OP_FMV_X_D, O.OP_FCLASS_S, O.OP_FCLASS_D, O.OP_FEQ_S, O.OP_FLT_S, O.OP_FLE_S,
  O.OP_FEQ_D, O.OP_FLT_D, O.OP_FLE_D, O.OP_FCVT_W_S, O.OP_FCVT_WU_S, O.OP_FCVT_L_S, O.OP_FCVT_LU_S,
  O.OP_FCVT_W_D, O.OP_FCVT_WU_D, O.OP_FCVT_L_D, O.OP_FCVT_LU_D,
]);

/** Integer registers an instruction reads and writes (bit masks over x1..x31). */
export function regUse(op: number, w: number): { reads: number; writes: number } {
  const rd = rdOf(w), rs1 = rs1Of(w), rs2 = rs2Of(w);
  const bit = (r: number) => (r === 0 ? 0 : 1 << r);
  switch (kindOf(op)) {
    case Kind.Alu:
      if (op === O.OP_LI || op === O.OP_AUIPC) return { reads: 0, writes: bit(rd) };
      if (op >= O.OP_ADD && op <= O.OP_REMUW) return { reads: bit(rs1) | bit(rs2), writes: bit(rd) };
      return { reads: bit(rs1), writes: bit(rd) };
    case Kind.Branch:
      return { reads: bit(rs1) | (op === O.OP_BEQZ || op === O.OP_BNEZ ? 0 : bit(rs2)), writes: 0 };
    case Kind.Jal:
      return { reads: 0, writes: op === O.OP_JAL ? bit(rd) : 0 };
    case Kind.Jalr:
    case Kind.Load:
      return { reads: bit(rs1), writes: bit(rd) };
    case Kind.Store:
      return { reads: bit(rs1) | bit(rs2), writes: 0 };
    case Kind.FpLoad:
    case Kind.FpStore:
      return { reads: bit(rs1), writes: 0 };
    case Kind.Amo:
      return { reads: bit(rs1) | bit(rs2), writes: bit(rd) };
    case Kind.Csr:
      return { reads: op >= O.OP_CSRRWI ? 0 : bit(rs1), writes: bit(rd) };
    case Kind.Fp:
      return { reads: FP_READS_X.has(op) ? bit(rs1) : 0, writes: FP_WRITES_X.has(op) ? bit(rd) : 0 };
    default:
      return { reads: 0, writes: 0 };
  }
}
