// Instruction decoder: turns a raw RV64GC instruction into the 8-byte form the executor
// dispatches on. Compressed instructions are expanded here into their base equivalents, so the
// executor never sees an RVC encoding. Decoding happens once per instruction slot of a code
// page (see fetch in exec.ts); the result is cached until the page is written.
//
// The decoded form (word and 32-bit immediate) is laid out in src/cpu/decoded.ts.
import * as O from "./ops";
import * as D from "../decoded";

export let decodedWord: u32 = 0;
export let decodedImm: i32 = 0;

// Lookup tables, at module level so that they live in static data: an array literal inside a
// function would be allocated on every call by the runtime (which never frees).
const BRANCH_OPS: StaticArray<u32> = [O.OP_BEQ, O.OP_BNE, O.OP_ILLEGAL, O.OP_ILLEGAL, O.OP_BLT, O.OP_BGE, O.OP_BLTU, O.OP_BGEU];
const LOAD_OPS: StaticArray<u32> = [O.OP_LB, O.OP_LH, O.OP_LW, O.OP_LD, O.OP_LBU, O.OP_LHU, O.OP_LWU, O.OP_ILLEGAL];
const STORE_OPS: StaticArray<u32> = [O.OP_SB, O.OP_SH, O.OP_SW, O.OP_SD];
const OP_FUNCT7_0_OPS: StaticArray<u32> = [O.OP_ADD, O.OP_SLL, O.OP_SLT, O.OP_SLTU, O.OP_XOR, O.OP_SRL, O.OP_OR, O.OP_AND];
const OP_MULDIV_OPS: StaticArray<u32> = [O.OP_MUL, O.OP_MULH, O.OP_MULHSU, O.OP_MULHU, O.OP_DIV, O.OP_DIVU, O.OP_REM, O.OP_REMU];
const CSR_OPS: StaticArray<u32> = [O.OP_ILLEGAL, O.OP_CSRRW, O.OP_CSRRS, O.OP_CSRRC, O.OP_ILLEGAL, O.OP_CSRRWI, O.OP_CSRRSI, O.OP_CSRRCI];
const C_ARITH_OPS: StaticArray<u32> = [O.OP_SUB, O.OP_XOR, O.OP_OR, O.OP_AND];

// Fields of a decoded word, extracted only by the executor's cases that use them.
@inline export function decodedOp(w: u32): u32 { return w & D.DECODED_OP_MASK; }
@inline export function decodedRd(w: u32): u32 { return (w >> D.DECODED_RD_SHIFT) & D.DECODED_REG_MASK; }
@inline export function decodedRs1(w: u32): u32 { return (w >> D.DECODED_RS1_SHIFT) & D.DECODED_REG_MASK; }
@inline export function decodedRs2(w: u32): u32 { return (w >> D.DECODED_RS2_SHIFT) & D.DECODED_REG_MASK; }
@inline export function decodedRs3(w: u32): u32 { return (w >> D.DECODED_RS3_SHIFT) & D.DECODED_REG_MASK; }
@inline export function decodedRm(w: u32): u32 { return (w >> D.DECODED_RM_SHIFT) & D.DECODED_RM_MASK; }
/** Instruction length: 2 for compressed encodings, else 4. */
@inline export function decodedLength(w: u32): i64 { return 4 - <i64>((w >> (D.DECODED_COMPRESSED_SHIFT - 1)) & 2); }

@inline function pack(op: u32, rd: u32, rs1: u32, rs2: u32, imm: i32): void {
  decodedWord = op | (rd << D.DECODED_RD_SHIFT) | (rs1 << D.DECODED_RS1_SHIFT) | (rs2 << D.DECODED_RS2_SHIFT);
  decodedImm = imm;
}
@inline function packFp(op: u32, rd: u32, rs1: u32, rs2: u32, rs3: u32, rm: u32): void {
  decodedWord = op | (rd << D.DECODED_RD_SHIFT) | (rs1 << D.DECODED_RS1_SHIFT) | (rs2 << D.DECODED_RS2_SHIFT) |
    (rs3 << D.DECODED_RS3_SHIFT) | (rm << D.DECODED_RM_SHIFT);
  decodedImm = 0;
}
@inline function illegal(raw: u32): void {
  decodedWord = O.OP_ILLEGAL;
  decodedImm = <i32>raw;
}

// Immediate formats, RISC-V unprivileged ISA section 2.3.
@inline function immI(raw: u32): i32 { return (<i32>raw) >> 20; }
@inline function immS(raw: u32): i32 { return (((<i32>raw) >> 25) << 5) | <i32>((raw >> 7) & 0x1f); }
@inline function immB(raw: u32): i32 {
  return (((<i32>raw) >> 31) << 12) | <i32>(((raw >> 7) & 1) << 11) | <i32>(((raw >> 25) & 0x3f) << 5) | <i32>(((raw >> 8) & 0xf) << 1);
}
@inline function immU(raw: u32): i32 { return <i32>(raw & 0xfffff000); }
@inline function immJ(raw: u32): i32 {
  return (((<i32>raw) >> 31) << 20) | <i32>(raw & 0xff000) | <i32>(((raw >> 20) & 1) << 11) | <i32>(((raw >> 21) & 0x3ff) << 1);
}

/** An ALU op whose only effect is writing rd becomes a NOP when rd is x0 (these are the HINT encodings). */
@inline function alu(op: u32, rd: u32, rs1: u32, rs2: u32, imm: i32): void {
  if (rd == 0) pack(O.OP_NOP, 0, 0, 0, 0);
  else pack(op, rd, rs1, rs2, imm);
}

/** Decodes a 32-bit instruction (raw & 3 == 3). */
export function decode32(raw: u32): void {
  const opcode = raw & 0x7f;
  const rd = (raw >> 7) & 0x1f;
  const funct3 = (raw >> 12) & 7;
  const rs1 = (raw >> 15) & 0x1f;
  const rs2 = (raw >> 20) & 0x1f;
  const funct7 = raw >> 25;
  switch (opcode) {
    case 0x37: // LUI
      alu(O.OP_LI, rd, 0, 0, immU(raw));
      return;
    case 0x17: // AUIPC
      alu(O.OP_AUIPC, rd, 0, 0, immU(raw));
      return;
    case 0x6f: // JAL
      pack(rd == 0 ? O.OP_J : O.OP_JAL, rd, 0, 0, immJ(raw));
      return;
    case 0x67: // JALR
      if (funct3 != 0) break;
      pack(O.OP_JALR, rd, rs1, 0, immI(raw));
      return;
    case 0x63: { // branches
      const ops = BRANCH_OPS;
      const op = unchecked(ops[funct3]);
      if (op == O.OP_ILLEGAL) break;
      pack(op, 0, rs1, rs2, immB(raw));
      return;
    }
    case 0x03: { // loads
      const ops = LOAD_OPS;
      const op = unchecked(ops[funct3]);
      if (op == O.OP_ILLEGAL) break;
      pack(op, rd, rs1, 0, immI(raw));
      return;
    }
    case 0x23: { // stores
      if (funct3 > 3) break;
      const ops = STORE_OPS;
      pack(unchecked(ops[funct3]), 0, rs1, rs2, immS(raw));
      return;
    }
    case 0x13: { // OP-IMM
      const imm = immI(raw);
      switch (funct3) {
        case 0:
          if (rs1 == 0) alu(O.OP_LI, rd, 0, 0, imm);
          else if (imm == 0) alu(O.OP_MV, rd, rs1, 0, 0);
          else alu(O.OP_ADDI, rd, rs1, 0, imm);
          return;
        case 2: alu(O.OP_SLTI, rd, rs1, 0, imm); return;
        case 3: alu(O.OP_SLTIU, rd, rs1, 0, imm); return;
        case 4: alu(O.OP_XORI, rd, rs1, 0, imm); return;
        case 6: alu(O.OP_ORI, rd, rs1, 0, imm); return;
        case 7: alu(O.OP_ANDI, rd, rs1, 0, imm); return;
        case 1:
          if ((raw >> 26) != 0) break;
          alu(O.OP_SLLI, rd, rs1, 0, imm & 63);
          return;
        case 5:
          if ((raw >> 26) == 0) { alu(O.OP_SRLI, rd, rs1, 0, imm & 63); return; }
          if ((raw >> 26) == 0x10) { alu(O.OP_SRAI, rd, rs1, 0, imm & 63); return; }
          break;
      }
      break;
    }
    case 0x1b: { // OP-IMM-32
      const imm = immI(raw);
      if (funct3 == 0) { alu(O.OP_ADDIW, rd, rs1, 0, imm); return; }
      if (funct3 == 1 && funct7 == 0) { alu(O.OP_SLLIW, rd, rs1, 0, imm & 31); return; }
      if (funct3 == 5 && funct7 == 0) { alu(O.OP_SRLIW, rd, rs1, 0, imm & 31); return; }
      if (funct3 == 5 && funct7 == 0x20) { alu(O.OP_SRAIW, rd, rs1, 0, imm & 31); return; }
      break;
    }
    case 0x33: { // OP
      let op = O.OP_ILLEGAL;
      if (funct7 == 0) {
        const ops = OP_FUNCT7_0_OPS;
        op = unchecked(ops[funct3]);
      } else if (funct7 == 0x20) {
        if (funct3 == 0) op = O.OP_SUB;
        else if (funct3 == 5) op = O.OP_SRA;
      } else if (funct7 == 1) {
        const ops = OP_MULDIV_OPS;
        op = unchecked(ops[funct3]);
      }
      if (op == O.OP_ILLEGAL) break;
      alu(op, rd, rs1, rs2, 0);
      return;
    }
    case 0x3b: { // OP-32
      let op = O.OP_ILLEGAL;
      if (funct7 == 0) {
        if (funct3 == 0) op = O.OP_ADDW;
        else if (funct3 == 1) op = O.OP_SLLW;
        else if (funct3 == 5) op = O.OP_SRLW;
      } else if (funct7 == 0x20) {
        if (funct3 == 0) op = O.OP_SUBW;
        else if (funct3 == 5) op = O.OP_SRAW;
      } else if (funct7 == 1) {
        if (funct3 == 0) op = O.OP_MULW;
        else if (funct3 == 4) op = O.OP_DIVW;
        else if (funct3 == 5) op = O.OP_DIVUW;
        else if (funct3 == 6) op = O.OP_REMW;
        else if (funct3 == 7) op = O.OP_REMUW;
      }
      if (op == O.OP_ILLEGAL) break;
      alu(op, rd, rs1, rs2, 0);
      return;
    }
    case 0x0f: // MISC-MEM
      // PAUSE (Zihintpause) is FENCE with pred = W, succ = 0: a hint, kept apart for pause-loop exiting.
      if (raw == 0x0100000f) { pack(O.OP_PAUSE, 0, 0, 0, 0); return; }
      if (funct3 == 0) {
        // The immediate says whether the fence orders memory accesses (both its predecessor and
        // successor sets hold R or W), the only ones atomics.ts's fence has work for.
        pack(O.OP_FENCE, 0, 0, 0, ((raw >> 24) & 3) != 0 && ((raw >> 20) & 3) != 0 ? 1 : 0);
        return;
      }
      if (funct3 == 1) { pack(O.OP_FENCE_I, 0, 0, 0, 0); return; }
      break;
    case 0x73: { // SYSTEM
      if (funct3 == 0) {
        if (rd != 0) break;
        if (raw == 0x00000073) { pack(O.OP_ECALL, 0, 0, 0, 0); return; }
        if (raw == 0x00100073) { pack(O.OP_EBREAK, 0, 0, 0, 0); return; }
        if (raw == 0x30200073) { pack(O.OP_MRET, 0, 0, 0, 0); return; }
        if (raw == 0x10200073) { pack(O.OP_SRET, 0, 0, 0, 0); return; }
        if (raw == 0x10500073) { pack(O.OP_WFI, 0, 0, 0, 0); return; }
        if (raw == 0x00d00073) { pack(O.OP_WRS_NTO, 0, 0, 0, 0); return; }
        if (raw == 0x01d00073) { pack(O.OP_WRS_STO, 0, 0, 0, 0); return; }
        if (funct7 == 0x09) { pack(O.OP_SFENCE_VMA, 0, rs1, rs2, 0); return; }
        break;
      }
      if (funct3 == 4) break;
      const ops = CSR_OPS;
      // imm carries the CSR number; rs1 is the source register or the 5-bit immediate.
      pack(unchecked(ops[funct3]), rd, rs1, 0, <i32>(raw >> 20));
      return;
    }
    case 0x2f: { // AMO
      const funct5 = raw >> 27;
      let op = O.OP_ILLEGAL;
      if (funct3 == 2 || funct3 == 3) {
        const base = funct3 == 2 ? O.OP_LR_W : O.OP_LR_D;
        switch (funct5) {
          case 0x02: if (rs2 == 0) op = base; break; // LR
          case 0x03: op = base + 1; break; // SC
          case 0x01: op = base + 2; break; // AMOSWAP
          case 0x00: op = base + 3; break; // AMOADD
          case 0x04: op = base + 4; break; // AMOXOR
          case 0x0c: op = base + 5; break; // AMOAND
          case 0x08: op = base + 6; break; // AMOOR
          case 0x10: op = base + 7; break; // AMOMIN
          case 0x14: op = base + 8; break; // AMOMAX
          case 0x18: op = base + 9; break; // AMOMINU
          case 0x1c: op = base + 10; break; // AMOMAXU
        }
      }
      if (op == O.OP_ILLEGAL) break;
      pack(op, rd, rs1, rs2, 0);
      return;
    }
    case 0x07: // LOAD-FP
      if (funct3 == 2) { pack(O.OP_FLW, rd, rs1, 0, immI(raw)); return; }
      if (funct3 == 3) { pack(O.OP_FLD, rd, rs1, 0, immI(raw)); return; }
      break;
    case 0x27: // STORE-FP
      if (funct3 == 2) { pack(O.OP_FSW, 0, rs1, rs2, immS(raw)); return; }
      if (funct3 == 3) { pack(O.OP_FSD, 0, rs1, rs2, immS(raw)); return; }
      break;
    case 0x43: case 0x47: case 0x4b: case 0x4f: { // FMADD, FMSUB, FNMSUB, FNMADD
      const fmt = (raw >> 25) & 3;
      if (fmt > 1 || !validRm(funct3)) break;
      const base = fmt == 0 ? O.OP_FMADD_S : O.OP_FMADD_D;
      packFp(base + ((opcode - 0x43) >> 2), rd, rs1, rs2, raw >> 27, funct3);
      return;
    }
    case 0x53: {
      decodeOpFp(raw, rd, funct3, rs1, rs2, funct7);
      return;
    }
  }
  illegal(raw);
}

/** Rounding-mode field values 5 and 6 are reserved (unprivileged ISA 11.2); 7 is dynamic. */
@inline function validRm(rm: u32): bool { return rm != 5 && rm != 6; }

function decodeOpFp(raw: u32, rd: u32, rm: u32, rs1: u32, rs2: u32, funct7: u32): void {
  const isDouble = (funct7 & 1) != 0;
  if ((funct7 & 2) != 0) { illegal(raw); return; } // only fmt S (00) and D (01)
  const S = isDouble ? O.OP_FADD_D - O.OP_FADD_S : 0; // distance from the S op to its D twin
  let op = O.OP_ILLEGAL;
  let needsRm = true;
  switch (funct7 >> 2) {
    case 0x00: op = O.OP_FADD_S + S; break;
    case 0x01: op = O.OP_FSUB_S + S; break;
    case 0x02: op = O.OP_FMUL_S + S; break;
    case 0x03: op = O.OP_FDIV_S + S; break;
    case 0x0b: if (rs2 == 0) op = O.OP_FSQRT_S + S; break;
    case 0x04:
      needsRm = false;
      if (rm <= 2) op = O.OP_FSGNJ_S + S + rm;
      break;
    case 0x05:
      needsRm = false;
      if (rm <= 1) op = O.OP_FMIN_S + S + rm;
      break;
    case 0x18: // FCVT.{W,WU,L,LU}.fmt
      if (rs2 <= 3) op = O.OP_FCVT_W_S + S + rs2;
      break;
    case 0x1a: // FCVT.fmt.{W,WU,L,LU}
      if (rs2 <= 3) op = O.OP_FCVT_S_W + S + rs2;
      break;
    case 0x1c:
      needsRm = false;
      if (rs2 == 0 && rm == 0) op = O.OP_FMV_X_W + S;
      else if (rs2 == 0 && rm == 1) op = O.OP_FCLASS_S + S;
      break;
    case 0x14: // FLE (0), FLT (1), FEQ (2)
      needsRm = false;
      if (rm == 0) op = O.OP_FLE_S + S;
      else if (rm == 1) op = O.OP_FLT_S + S;
      else if (rm == 2) op = O.OP_FEQ_S + S;
      break;
    case 0x1e:
      needsRm = false;
      if (rs2 == 0 && rm == 0) op = O.OP_FMV_W_X + S;
      break;
    case 0x08: // FCVT.S.D (funct7 0x20, rs2 = 1) and FCVT.D.S (funct7 0x21, rs2 = 0)
      if (!isDouble && rs2 == 1) op = O.OP_FCVT_S_D;
      else if (isDouble && rs2 == 0) op = O.OP_FCVT_D_S;
      break;
  }
  if (op == O.OP_ILLEGAL || (needsRm && !validRm(rm))) { illegal(raw); return; }
  packFp(op, rd, rs1, rs2, 0, needsRm ? rm : 0);
}

// ---- RVC (unprivileged ISA chapter 16) --------------------------------------------------------

@inline function bit(raw: u32, b: u32): u32 { return (raw >> b) & 1; }
@inline function bits(raw: u32, hi: u32, lo: u32): u32 { return (raw >> lo) & ((1 << (hi - lo + 1)) - 1); }
@inline function sext(value: u32, width: u32): i32 { return (<i32>(value << (32 - width))) >> (32 - width); }
/** Compressed register fields name x8..x15. */
@inline function creg(field: u32): u32 { return 8 + field; }

function setCompressed(): void { decodedWord |= <u32>1 << D.DECODED_COMPRESSED_SHIFT; }

/** Decodes a 16-bit instruction (raw & 3 != 3) into its base-ISA equivalent. */
export function decode16(raw: u32): void {
  decode16Inner(raw);
  if ((decodedWord & 0xff) == O.OP_ILLEGAL) decodedImm = <i32>(raw & 0xffff);
  setCompressed();
}

function decode16Inner(raw: u32): void {
  const quadrant = raw & 3;
  const funct3 = (raw >> 13) & 7;
  const rdFull = bits(raw, 11, 7);
  const rs2Full = bits(raw, 6, 2);
  const rdP = creg(bits(raw, 4, 2));
  const rs1P = creg(bits(raw, 9, 7));
  if (quadrant == 0) {
    switch (funct3) {
      case 0: { // C.ADDI4SPN
        const imm = (bits(raw, 12, 11) << 4) | (bits(raw, 10, 7) << 6) | (bit(raw, 6) << 2) | (bit(raw, 5) << 3);
        if (imm == 0) break; // includes the all-zero illegal instruction
        pack(O.OP_ADDI, rdP, 2, 0, <i32>imm);
        return;
      }
      case 1: pack(O.OP_FLD, rdP, rs1P, 0, <i32>((bits(raw, 12, 10) << 3) | (bits(raw, 6, 5) << 6))); return;
      case 2: pack(O.OP_LW, rdP, rs1P, 0, <i32>((bits(raw, 12, 10) << 3) | (bit(raw, 6) << 2) | (bit(raw, 5) << 6))); return;
      case 3: pack(O.OP_LD, rdP, rs1P, 0, <i32>((bits(raw, 12, 10) << 3) | (bits(raw, 6, 5) << 6))); return;
      case 5: pack(O.OP_FSD, 0, rs1P, rdP, <i32>((bits(raw, 12, 10) << 3) | (bits(raw, 6, 5) << 6))); return;
      case 6: pack(O.OP_SW, 0, rs1P, rdP, <i32>((bits(raw, 12, 10) << 3) | (bit(raw, 6) << 2) | (bit(raw, 5) << 6))); return;
      case 7: pack(O.OP_SD, 0, rs1P, rdP, <i32>((bits(raw, 12, 10) << 3) | (bits(raw, 6, 5) << 6))); return;
    }
  } else if (quadrant == 1) {
    const imm6 = sext((bit(raw, 12) << 5) | bits(raw, 6, 2), 6);
    switch (funct3) {
      case 0: alu(O.OP_ADDI, rdFull, rdFull, 0, imm6); return; // C.ADDI (rd = 0 or imm = 0: HINT/NOP)
      case 1: // C.ADDIW
        if (rdFull == 0) break;
        pack(O.OP_ADDIW, rdFull, rdFull, 0, imm6);
        return;
      case 2: alu(O.OP_LI, rdFull, 0, 0, imm6); return; // C.LI
      case 3: {
        if (rdFull == 2) { // C.ADDI16SP
          const imm = sext((bit(raw, 12) << 9) | (bit(raw, 6) << 4) | (bit(raw, 5) << 6) | (bits(raw, 4, 3) << 7) | (bit(raw, 2) << 5), 10);
          if (imm == 0) break;
          pack(O.OP_ADDI, 2, 2, 0, imm);
          return;
        }
        if (imm6 == 0) break; // C.LUI with nzimm = 0 is reserved
        alu(O.OP_LI, rdFull, 0, 0, imm6 << 12); // C.LUI
        return;
      }
      case 4: {
        const shamt = <i32>((bit(raw, 12) << 5) | bits(raw, 6, 2));
        switch (bits(raw, 11, 10)) {
          case 0: pack(O.OP_SRLI, rs1P, rs1P, 0, shamt); return;
          case 1: pack(O.OP_SRAI, rs1P, rs1P, 0, shamt); return;
          case 2: pack(O.OP_ANDI, rs1P, rs1P, 0, imm6); return;
          case 3: {
            const sub = bits(raw, 6, 5);
            if (bit(raw, 12) == 0) {
              const ops = C_ARITH_OPS;
              pack(unchecked(ops[sub]), rs1P, rs1P, rdP, 0);
              return;
            }
            if (sub == 0) { pack(O.OP_SUBW, rs1P, rs1P, rdP, 0); return; }
            if (sub == 1) { pack(O.OP_ADDW, rs1P, rs1P, rdP, 0); return; }
            break;
          }
        }
        break;
      }
      case 5: { // C.J
        const imm = sext((bit(raw, 12) << 11) | (bit(raw, 11) << 4) | (bits(raw, 10, 9) << 8) | (bit(raw, 8) << 10) |
          (bit(raw, 7) << 6) | (bit(raw, 6) << 7) | (bits(raw, 5, 3) << 1) | (bit(raw, 2) << 5), 12);
        pack(O.OP_J, 0, 0, 0, imm);
        return;
      }
      case 6: case 7: { // C.BEQZ, C.BNEZ
        const imm = sext((bit(raw, 12) << 8) | (bits(raw, 11, 10) << 3) | (bits(raw, 6, 5) << 6) | (bits(raw, 4, 3) << 1) | (bit(raw, 2) << 5), 9);
        pack(funct3 == 6 ? O.OP_BEQZ : O.OP_BNEZ, 0, rs1P, 0, imm);
        return;
      }
    }
  } else { // quadrant 2
    switch (funct3) {
      case 0: { // C.SLLI
        const shamt = <i32>((bit(raw, 12) << 5) | bits(raw, 6, 2));
        alu(O.OP_SLLI, rdFull, rdFull, 0, shamt);
        return;
      }
      case 1: pack(O.OP_FLD, rdFull, 2, 0, <i32>((bit(raw, 12) << 5) | (bits(raw, 6, 5) << 3) | (bits(raw, 4, 2) << 6))); return; // C.FLDSP
      case 2: // C.LWSP
        if (rdFull == 0) break;
        pack(O.OP_LW, rdFull, 2, 0, <i32>((bit(raw, 12) << 5) | (bits(raw, 6, 4) << 2) | (bits(raw, 3, 2) << 6)));
        return;
      case 3: // C.LDSP
        if (rdFull == 0) break;
        pack(O.OP_LD, rdFull, 2, 0, <i32>((bit(raw, 12) << 5) | (bits(raw, 6, 5) << 3) | (bits(raw, 4, 2) << 6)));
        return;
      case 4: {
        if (bit(raw, 12) == 0) {
          if (rs2Full == 0) { // C.JR
            if (rdFull == 0) break;
            pack(O.OP_JALR, 0, rdFull, 0, 0);
            return;
          }
          alu(O.OP_MV, rdFull, rs2Full, 0, 0); // C.MV
          return;
        }
        if (rs2Full == 0) {
          if (rdFull == 0) { pack(O.OP_EBREAK, 0, 0, 0, 0); return; } // C.EBREAK
          pack(O.OP_JALR, 1, rdFull, 0, 0); // C.JALR
          return;
        }
        alu(O.OP_ADD, rdFull, rdFull, rs2Full, 0); // C.ADD
        return;
      }
      case 5: pack(O.OP_FSD, 0, 2, rs2Full, <i32>((bits(raw, 12, 10) << 3) | (bits(raw, 9, 7) << 6))); return; // C.FSDSP
      case 6: pack(O.OP_SW, 0, 2, rs2Full, <i32>((bits(raw, 12, 9) << 2) | (bits(raw, 8, 7) << 6))); return; // C.SWSP
      case 7: pack(O.OP_SD, 0, 2, rs2Full, <i32>((bits(raw, 12, 10) << 3) | (bits(raw, 9, 7) << 6))); return; // C.SDSP
    }
  }
  illegal(raw);
}
