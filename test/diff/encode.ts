// A small RISC-V instruction encoder for the differential tests: pure functions from operands to
// instruction words (32-bit ones as unsigned numbers, compressed ones as 16-bit numbers).
// Every function checks its operands so that a generator bug shows up as an exception here
// instead of as a silently different instruction that both emulators then disagree about.

// ---- operand checks -------------------------------------------------------------------------

function reg(r: number): number {
  if (!Number.isInteger(r) || r < 0 || r > 31) throw new RangeError(`bad register ${r}`);
  return r;
}

/** A register of the compressed 3-bit register fields (x8..x15 / f8..f15) as its 3-bit code. */
function creg(r: number): number {
  if (!Number.isInteger(r) || r < 8 || r > 15) throw new RangeError(`bad compressed register ${r}`);
  return r - 8;
}

/** Checks that imm fits a signed field of `bits` bits and is a multiple of `align`. */
function simm(imm: number, bits: number, align = 1): number {
  const lo = -(2 ** (bits - 1));
  const hi = 2 ** (bits - 1) - 1;
  if (!Number.isInteger(imm) || imm < lo || imm > hi || imm % align !== 0) {
    throw new RangeError(`immediate ${imm} does not fit signed ${bits} bits (align ${align})`);
  }
  return imm;
}

/** Checks that imm fits an unsigned field of `bits` bits and is a multiple of `align`. */
function uimm(imm: number, bits: number, align = 1): number {
  if (!Number.isInteger(imm) || imm < 0 || imm >= 2 ** bits || imm % align !== 0) {
    throw new RangeError(`immediate ${imm} does not fit unsigned ${bits} bits (align ${align})`);
  }
  return imm;
}

/** Bits hi..lo of v (v may be negative; JS bit operators work on its 32-bit two's complement). */
function bits(v: number, hi: number, lo: number): number {
  return (v >> lo) & ((1 << (hi - lo + 1)) - 1);
}

// ---- 32-bit formats -------------------------------------------------------------------------

export const OP = {
  LOAD: 0x03,
  LOAD_FP: 0x07,
  MISC_MEM: 0x0f,
  OP_IMM: 0x13,
  AUIPC: 0x17,
  OP_IMM_32: 0x1b,
  STORE: 0x23,
  STORE_FP: 0x27,
  AMO: 0x2f,
  OP: 0x33,
  LUI: 0x37,
  OP_32: 0x3b,
  MADD: 0x43,
  MSUB: 0x47,
  NMSUB: 0x4b,
  NMADD: 0x4f,
  OP_FP: 0x53,
  BRANCH: 0x63,
  JALR: 0x67,
  JAL: 0x6f,
  SYSTEM: 0x73,
} as const;

export function rType(opcode: number, f3: number, f7: number, rd: number, rs1: number, rs2: number): number {
  return ((f7 << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (f3 << 12) | (reg(rd) << 7) | opcode) >>> 0;
}

export function iType(opcode: number, f3: number, rd: number, rs1: number, imm: number): number {
  return (((simm(imm, 12) & 0xfff) << 20) | (reg(rs1) << 15) | (f3 << 12) | (reg(rd) << 7) | opcode) >>> 0;
}

export function sType(opcode: number, f3: number, rs1: number, rs2: number, imm: number): number {
  simm(imm, 12);
  return ((bits(imm, 11, 5) << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (f3 << 12) | (bits(imm, 4, 0) << 7) | opcode) >>> 0;
}

export function bType(f3: number, rs1: number, rs2: number, offset: number): number {
  simm(offset, 13, 2);
  return (
    ((bits(offset, 12, 12) << 31) |
      (bits(offset, 10, 5) << 25) |
      (reg(rs2) << 20) |
      (reg(rs1) << 15) |
      (f3 << 12) |
      (bits(offset, 4, 1) << 8) |
      (bits(offset, 11, 11) << 7) |
      OP.BRANCH) >>>
    0
  );
}

/** U-type: imm20 is the value of bits 31:12 (0..0xfffff). */
export function uType(opcode: number, rd: number, imm20: number): number {
  return ((uimm(imm20, 20) << 12) | (reg(rd) << 7) | opcode) >>> 0;
}

export function jType(rd: number, offset: number): number {
  simm(offset, 21, 2);
  return (
    ((bits(offset, 20, 20) << 31) |
      (bits(offset, 10, 1) << 21) |
      (bits(offset, 11, 11) << 20) |
      (bits(offset, 19, 12) << 12) |
      (reg(rd) << 7) |
      OP.JAL) >>>
    0
  );
}

export function r4Type(opcode: number, fmt: number, rm: number, rd: number, rs1: number, rs2: number, rs3: number): number {
  return ((reg(rs3) << 27) | (fmt << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (rm << 12) | (reg(rd) << 7) | opcode) >>> 0;
}

// ---- RV64I ----------------------------------------------------------------------------------

export const lui = (rd: number, imm20: number) => uType(OP.LUI, rd, imm20);
export const auipc = (rd: number, imm20: number) => uType(OP.AUIPC, rd, imm20);
export const jal = (rd: number, offset: number) => jType(rd, offset);
export const jalr = (rd: number, rs1: number, imm: number) => iType(OP.JALR, 0, rd, rs1, imm);

export const BRANCH_F3 = { beq: 0, bne: 1, blt: 4, bge: 5, bltu: 6, bgeu: 7 } as const;
export type BranchOp = keyof typeof BRANCH_F3;
export const branch = (op: BranchOp, rs1: number, rs2: number, offset: number) => bType(BRANCH_F3[op], rs1, rs2, offset);

export const LOAD_F3 = { lb: 0, lh: 1, lw: 2, ld: 3, lbu: 4, lhu: 5, lwu: 6 } as const;
export type LoadOp = keyof typeof LOAD_F3;
export const load = (op: LoadOp, rd: number, rs1: number, imm: number) => iType(OP.LOAD, LOAD_F3[op], rd, rs1, imm);

export const STORE_F3 = { sb: 0, sh: 1, sw: 2, sd: 3 } as const;
export type StoreOp = keyof typeof STORE_F3;
export const store = (op: StoreOp, rs1: number, rs2: number, imm: number) => sType(OP.STORE, STORE_F3[op], rs1, rs2, imm);

/** Register-immediate ALU ops whose immediate is a plain signed 12-bit value. */
export const ALU_IMM_F3 = { addi: 0, slti: 2, sltiu: 3, xori: 4, ori: 6, andi: 7 } as const;
export type AluImmOp = keyof typeof ALU_IMM_F3;
export const aluImm = (op: AluImmOp, rd: number, rs1: number, imm: number) => iType(OP.OP_IMM, ALU_IMM_F3[op], rd, rs1, imm);
export const addiw = (rd: number, rs1: number, imm: number) => iType(OP.OP_IMM_32, 0, rd, rs1, imm);

export type ShiftOp = "slli" | "srli" | "srai";
/** 64-bit shifts by an immediate: 6-bit shamt, srai sets bit 30. */
export function shiftImm(op: ShiftOp, rd: number, rs1: number, shamt: number): number {
  uimm(shamt, 6);
  const f3 = op === "slli" ? 1 : 5;
  const hi = op === "srai" ? 0x400 : 0;
  return iTypeRaw(OP.OP_IMM, f3, rd, rs1, hi | shamt);
}
/** 32-bit shifts by an immediate (slliw/srliw/sraiw): 5-bit shamt. */
export function shiftImmW(op: ShiftOp, rd: number, rs1: number, shamt: number): number {
  uimm(shamt, 5);
  const f3 = op === "slli" ? 1 : 5;
  const hi = op === "srai" ? 0x400 : 0;
  return iTypeRaw(OP.OP_IMM_32, f3, rd, rs1, hi | shamt);
}
/** An I-type word whose 12-bit immediate field is given as raw bits (shifts, CSR numbers). */
function iTypeRaw(opcode: number, f3: number, rd: number, rs1: number, field: number): number {
  return ((uimm(field, 12) << 20) | (reg(rs1) << 15) | (f3 << 12) | (reg(rd) << 7) | opcode) >>> 0;
}

/** Register-register ops of OP and OP-32 as [funct3, funct7]. */
export const ALU_REG = {
  add: [0, 0x00],
  sub: [0, 0x20],
  sll: [1, 0x00],
  slt: [2, 0x00],
  sltu: [3, 0x00],
  xor: [4, 0x00],
  srl: [5, 0x00],
  sra: [5, 0x20],
  or: [6, 0x00],
  and: [7, 0x00],
  mul: [0, 0x01],
  mulh: [1, 0x01],
  mulhsu: [2, 0x01],
  mulhu: [3, 0x01],
  div: [4, 0x01],
  divu: [5, 0x01],
  rem: [6, 0x01],
  remu: [7, 0x01],
} as const;
export type AluRegOp = keyof typeof ALU_REG;
export const aluReg = (op: AluRegOp, rd: number, rs1: number, rs2: number) => rType(OP.OP, ALU_REG[op][0], ALU_REG[op][1], rd, rs1, rs2);

export const ALU_REG_W = {
  addw: [0, 0x00],
  subw: [0, 0x20],
  sllw: [1, 0x00],
  srlw: [5, 0x00],
  sraw: [5, 0x20],
  mulw: [0, 0x01],
  divw: [4, 0x01],
  divuw: [5, 0x01],
  remw: [6, 0x01],
  remuw: [7, 0x01],
} as const;
export type AluRegWOp = keyof typeof ALU_REG_W;
export const aluRegW = (op: AluRegWOp, rd: number, rs1: number, rs2: number) =>
  rType(OP.OP_32, ALU_REG_W[op][0], ALU_REG_W[op][1], rd, rs1, rs2);

/** fence iorw, iorw */
export const fence = () => 0x0ff0000f;
export const fenceI = () => 0x0000100f;
export const wfi = () => 0x10500073;

// ---- Zicsr ----------------------------------------------------------------------------------

export { CSR_FFLAGS, CSR_FRM, CSR_FCSR } from "../../src/cpu/csr-numbers.ts";
export const CSR_F3 = { csrrw: 1, csrrs: 2, csrrc: 3, csrrwi: 5, csrrsi: 6, csrrci: 7 } as const;
export type CsrOp = keyof typeof CSR_F3;
/** For the *i forms, `src` is the 5-bit unsigned immediate; otherwise it is rs1. */
export function csr(op: CsrOp, rd: number, csrNum: number, src: number): number {
  return iTypeRaw(OP.SYSTEM, CSR_F3[op], rd, uimm(src, 5), uimm(csrNum, 12));
}

// ---- A --------------------------------------------------------------------------------------

export const AMO_F5 = {
  lr: 0x02,
  sc: 0x03,
  amoswap: 0x01,
  amoadd: 0x00,
  amoxor: 0x04,
  amoand: 0x0c,
  amoor: 0x08,
  amomin: 0x10,
  amomax: 0x14,
  amominu: 0x18,
  amomaxu: 0x1c,
} as const;
export type AmoOp = keyof typeof AMO_F5;
/** width 4 = .w, 8 = .d; lr takes rs2 = 0. */
export function amo(op: AmoOp, width: 4 | 8, rd: number, rs1: number, rs2: number, aq: boolean, rl: boolean): number {
  const f7 = (AMO_F5[op] << 2) | (aq ? 2 : 0) | (rl ? 1 : 0);
  return rType(OP.AMO, width === 4 ? 2 : 3, f7, rd, rs1, op === "lr" ? 0 : rs2);
}

// ---- F / D ----------------------------------------------------------------------------------

/** fmt field: 0 = single, 1 = double. */
export type Fmt = 0 | 1;
/** Rounding mode field: 0..4 static, 7 dynamic. */
export type Rm = 0 | 1 | 2 | 3 | 4 | 7;

export const flw = (fd: number, rs1: number, imm: number) => iType(OP.LOAD_FP, 2, fd, rs1, imm);
export const fld = (fd: number, rs1: number, imm: number) => iType(OP.LOAD_FP, 3, fd, rs1, imm);
export const fsw = (rs1: number, fs2: number, imm: number) => sType(OP.STORE_FP, 2, rs1, fs2, imm);
export const fsd = (rs1: number, fs2: number, imm: number) => sType(OP.STORE_FP, 3, rs1, fs2, imm);

const opFp = (f5: number, fmt: Fmt, rm: number, rd: number, rs1: number, rs2: number) =>
  rType(OP.OP_FP, rm, (f5 << 2) | fmt, rd, rs1, rs2);

export const FP_ARITH_F5 = { fadd: 0x00, fsub: 0x01, fmul: 0x02, fdiv: 0x03 } as const;
export type FpArithOp = keyof typeof FP_ARITH_F5;
export const fpArith = (op: FpArithOp, fmt: Fmt, rm: Rm, fd: number, fs1: number, fs2: number) =>
  opFp(FP_ARITH_F5[op], fmt, rm, fd, fs1, fs2);
export const fsqrt = (fmt: Fmt, rm: Rm, fd: number, fs1: number) => opFp(0x0b, fmt, rm, fd, fs1, 0);

export const FSGNJ_RM = { fsgnj: 0, fsgnjn: 1, fsgnjx: 2 } as const;
export type FsgnjOp = keyof typeof FSGNJ_RM;
export const fsgnj = (op: FsgnjOp, fmt: Fmt, fd: number, fs1: number, fs2: number) => opFp(0x04, fmt, FSGNJ_RM[op], fd, fs1, fs2);

export const fminmax = (max: boolean, fmt: Fmt, fd: number, fs1: number, fs2: number) => opFp(0x05, fmt, max ? 1 : 0, fd, fs1, fs2);

export const FCMP_RM = { fle: 0, flt: 1, feq: 2 } as const;
export type FcmpOp = keyof typeof FCMP_RM;
export const fcmp = (op: FcmpOp, fmt: Fmt, rd: number, fs1: number, fs2: number) => opFp(0x14, fmt, FCMP_RM[op], rd, fs1, fs2);

export const fclass = (fmt: Fmt, rd: number, fs1: number) => opFp(0x1c, fmt, 1, rd, fs1, 0);
/** fmv.x.w (fmt 0) / fmv.x.d (fmt 1) */
export const fmvXF = (fmt: Fmt, rd: number, fs1: number) => opFp(0x1c, fmt, 0, rd, fs1, 0);
/** fmv.w.x (fmt 0) / fmv.d.x (fmt 1) */
export const fmvFX = (fmt: Fmt, fd: number, rs1: number) => opFp(0x1e, fmt, 0, fd, rs1, 0);

/** Integer type of a conversion: 0 = w, 1 = wu, 2 = l, 3 = lu (the rs2 field). */
export type IntKind = 0 | 1 | 2 | 3;
/** fcvt.{w,wu,l,lu}.{s,d} rd, fs1 */
export const fcvtIntFromFp = (kind: IntKind, fmt: Fmt, rm: Rm, rd: number, fs1: number) => opFp(0x18, fmt, rm, rd, fs1, kind);
/** fcvt.{s,d}.{w,wu,l,lu} fd, rs1 */
export const fcvtFpFromInt = (kind: IntKind, fmt: Fmt, rm: Rm, fd: number, rs1: number) => opFp(0x1a, fmt, rm, fd, rs1, kind);
/** fcvt.s.d (toFmt 0) / fcvt.d.s (toFmt 1) */
export const fcvtFpFp = (toFmt: Fmt, rm: Rm, fd: number, fs1: number) => opFp(0x08, toFmt, rm, fd, fs1, toFmt === 0 ? 1 : 0);

export const FMA_OPCODE = { fmadd: OP.MADD, fmsub: OP.MSUB, fnmsub: OP.NMSUB, fnmadd: OP.NMADD } as const;
export type FmaOp = keyof typeof FMA_OPCODE;
export const fma = (op: FmaOp, fmt: Fmt, rm: Rm, fd: number, fs1: number, fs2: number, fs3: number) =>
  r4Type(FMA_OPCODE[op], fmt, rm, fd, fs1, fs2, fs3);

// ---- C (16-bit) -----------------------------------------------------------------------------

/** Places bit `from` of v at bit `to` (the compressed formats scatter immediate bits). */
function bitAt(v: number, from: number, to: number): number {
  return ((v >> from) & 1) << to;
}
/** Places bits hi..lo of v starting at bit `to`. */
function fieldAt(v: number, hi: number, lo: number, to: number): number {
  return bits(v, hi, lo) << to;
}

function nonZeroReg(r: number): number {
  if (reg(r) === 0) throw new RangeError("compressed instruction needs a non-zero register");
  return r;
}

export function cAddi4spn(rd: number, nzuimm: number): number {
  if (uimm(nzuimm, 10, 4) === 0) throw new RangeError("c.addi4spn immediate must be non-zero");
  return (
    fieldAt(nzuimm, 5, 4, 11) | fieldAt(nzuimm, 9, 6, 7) | bitAt(nzuimm, 2, 6) | bitAt(nzuimm, 3, 5) | (creg(rd) << 2) | 0b00
  );
}

/** c.fld / c.ld / c.fsd / c.sd: 8-byte accesses, uimm multiple of 8 up to 248. */
function cMem8(f3: number, r: number, rs1: number, off: number): number {
  uimm(off, 8, 8);
  return (f3 << 13) | fieldAt(off, 5, 3, 10) | (creg(rs1) << 7) | fieldAt(off, 7, 6, 5) | (creg(r) << 2) | 0b00;
}
/** c.lw / c.sw: 4-byte accesses, uimm multiple of 4 up to 124. */
function cMem4(f3: number, r: number, rs1: number, off: number): number {
  uimm(off, 7, 4);
  return (f3 << 13) | fieldAt(off, 5, 3, 10) | (creg(rs1) << 7) | bitAt(off, 2, 6) | bitAt(off, 6, 5) | (creg(r) << 2) | 0b00;
}
export const cFld = (fd: number, rs1: number, off: number) => cMem8(1, fd, rs1, off);
export const cLw = (rd: number, rs1: number, off: number) => cMem4(2, rd, rs1, off);
export const cLd = (rd: number, rs1: number, off: number) => cMem8(3, rd, rs1, off);
export const cFsd = (rs1: number, fs2: number, off: number) => cMem8(5, fs2, rs1, off);
export const cSw = (rs1: number, rs2: number, off: number) => cMem4(6, rs2, rs1, off);
export const cSd = (rs1: number, rs2: number, off: number) => cMem8(7, rs2, rs1, off);

/** CI format with a 6-bit signed immediate (c.addi, c.addiw, c.li). */
function ci6(f3: number, rd: number, imm: number, op: number): number {
  simm(imm, 6);
  return (f3 << 13) | bitAt(imm, 5, 12) | (reg(rd) << 7) | fieldAt(imm, 4, 0, 2) | op;
}
export const cNop = () => 0x0001;
export function cAddi(rd: number, nzimm: number): number {
  if (nzimm === 0) throw new RangeError("c.addi immediate must be non-zero");
  return ci6(0, nonZeroReg(rd), nzimm, 0b01);
}
export const cAddiw = (rd: number, imm: number) => ci6(1, nonZeroReg(rd), imm, 0b01);
export const cLi = (rd: number, imm: number) => ci6(2, nonZeroReg(rd), imm, 0b01);

export function cAddi16sp(nzimm: number): number {
  if (simm(nzimm, 10, 16) === 0) throw new RangeError("c.addi16sp immediate must be non-zero");
  return (
    (3 << 13) |
    bitAt(nzimm, 9, 12) |
    (2 << 7) |
    bitAt(nzimm, 4, 6) |
    bitAt(nzimm, 6, 5) |
    fieldAt(nzimm, 8, 7, 3) |
    bitAt(nzimm, 5, 2) |
    0b01
  );
}

/** c.lui rd, imm6: loads sext(imm6) << 12; imm6 in -32..31, non-zero; rd not x0/x2. */
export function cLui(rd: number, imm6: number): number {
  if (imm6 === 0 || rd === 2) throw new RangeError("c.lui needs a non-zero immediate and rd != sp");
  return ci6(3, nonZeroReg(rd), imm6, 0b01);
}

function cShift(f2: number, rd: number, shamt: number): number {
  if (uimm(shamt, 6) === 0) throw new RangeError("compressed shift amount must be non-zero");
  return (4 << 13) | bitAt(shamt, 5, 12) | (f2 << 10) | (creg(rd) << 7) | fieldAt(shamt, 4, 0, 2) | 0b01;
}
export const cSrli = (rd: number, shamt: number) => cShift(0, rd, shamt);
export const cSrai = (rd: number, shamt: number) => cShift(1, rd, shamt);
export function cAndi(rd: number, imm: number): number {
  simm(imm, 6);
  return (4 << 13) | bitAt(imm, 5, 12) | (2 << 10) | (creg(rd) << 7) | fieldAt(imm, 4, 0, 2) | 0b01;
}

export const C_ARITH = { "c.sub": [0, 0], "c.xor": [0, 1], "c.or": [0, 2], "c.and": [0, 3], "c.subw": [1, 0], "c.addw": [1, 1] } as const;
export type CArithOp = keyof typeof C_ARITH;
export function cArith(op: CArithOp, rd: number, rs2: number): number {
  const [w, f2] = C_ARITH[op];
  return (4 << 13) | (w << 12) | (3 << 10) | (creg(rd) << 7) | (f2 << 5) | (creg(rs2) << 2) | 0b01;
}

export function cJ(offset: number): number {
  simm(offset, 12, 2);
  return (
    (5 << 13) |
    bitAt(offset, 11, 12) |
    bitAt(offset, 4, 11) |
    fieldAt(offset, 9, 8, 9) |
    bitAt(offset, 10, 8) |
    bitAt(offset, 6, 7) |
    bitAt(offset, 7, 6) |
    fieldAt(offset, 3, 1, 3) |
    bitAt(offset, 5, 2) |
    0b01
  );
}

/** c.beqz (bnez false) / c.bnez (bnez true) */
export function cBranch(bnez: boolean, rs1: number, offset: number): number {
  simm(offset, 9, 2);
  return (
    ((bnez ? 7 : 6) << 13) |
    bitAt(offset, 8, 12) |
    fieldAt(offset, 4, 3, 10) |
    (creg(rs1) << 7) |
    fieldAt(offset, 7, 6, 5) |
    fieldAt(offset, 2, 1, 3) |
    bitAt(offset, 5, 2) |
    0b01
  );
}

export function cSlli(rd: number, shamt: number): number {
  if (uimm(shamt, 6) === 0) throw new RangeError("c.slli shift amount must be non-zero");
  return (0 << 13) | bitAt(shamt, 5, 12) | (nonZeroReg(rd) << 7) | fieldAt(shamt, 4, 0, 2) | 0b10;
}

/** c.fldsp / c.ldsp: uimm multiple of 8 up to 504. */
function cLoadSp8(f3: number, rd: number, off: number): number {
  uimm(off, 9, 8);
  return (f3 << 13) | bitAt(off, 5, 12) | (reg(rd) << 7) | fieldAt(off, 4, 3, 5) | fieldAt(off, 8, 6, 2) | 0b10;
}
export const cFldsp = (fd: number, off: number) => cLoadSp8(1, fd, off);
export const cLdsp = (rd: number, off: number) => cLoadSp8(3, nonZeroReg(rd), off);
/** c.lwsp: uimm multiple of 4 up to 252. */
export function cLwsp(rd: number, off: number): number {
  uimm(off, 8, 4);
  return (2 << 13) | bitAt(off, 5, 12) | (nonZeroReg(rd) << 7) | fieldAt(off, 4, 2, 4) | fieldAt(off, 7, 6, 2) | 0b10;
}

export const cJr = (rs1: number) => (4 << 13) | (nonZeroReg(rs1) << 7) | 0b10;
export const cMv = (rd: number, rs2: number) => (4 << 13) | (nonZeroReg(rd) << 7) | (nonZeroReg(rs2) << 2) | 0b10;
export const cJalr = (rs1: number) => (4 << 13) | (1 << 12) | (nonZeroReg(rs1) << 7) | 0b10;
export const cAdd = (rd: number, rs2: number) => (4 << 13) | (1 << 12) | (nonZeroReg(rd) << 7) | (nonZeroReg(rs2) << 2) | 0b10;

/** c.fsdsp / c.sdsp: uimm multiple of 8 up to 504. */
function cStoreSp8(f3: number, rs2: number, off: number): number {
  uimm(off, 9, 8);
  return (f3 << 13) | fieldAt(off, 5, 3, 10) | fieldAt(off, 8, 6, 7) | (reg(rs2) << 2) | 0b10;
}
export const cFsdsp = (fs2: number, off: number) => cStoreSp8(5, fs2, off);
export const cSdsp = (rs2: number, off: number) => cStoreSp8(7, rs2, off);
/** c.swsp: uimm multiple of 4 up to 252. */
export function cSwsp(rs2: number, off: number): number {
  uimm(off, 8, 4);
  return (6 << 13) | fieldAt(off, 5, 2, 9) | fieldAt(off, 7, 6, 7) | (reg(rs2) << 2) | 0b10;
}

// ---- HINT encodings ---------------------------------------------------------------------------
// Encodings the ISA reserves as HINTs: they must execute as no-ops (or as their base operation
// with no architectural effect). The checked encoders above refuse them on purpose.

/** CI-format word without the non-zero checks (c.addi/c.li/c.lui/c.slli with rd = 0 or imm = 0). */
export function cCiRaw(f3: number, rd: number, imm6: number, op: number): number {
  return (f3 << 13) | bitAt(imm6, 5, 12) | (reg(rd) << 7) | fieldAt(imm6, 4, 0, 2) | op;
}
/** c.srli/c.srai with shamt 0 (RV64 HINTs). */
export function cShiftZero(srai: boolean, rd: number): number {
  return (4 << 13) | ((srai ? 1 : 0) << 10) | (creg(rd) << 7) | 0b01;
}
/** c.mv / c.add with rd = x0 (HINTs). */
export function cMvAddToZero(add: boolean, rs2: number): number {
  return (4 << 13) | ((add ? 1 : 0) << 12) | (nonZeroReg(rs2) << 2) | 0b10;
}
/**
 * A FENCE with arbitrary fm/pred/succ (fence.tso, pause and the HINT forms among them) and the
 * reserved rs1/rd fields, which implementations must ignore.
 */
export function fenceRaw(fm: number, pred: number, succ: number, rs1 = 0, rd = 0): number {
  return ((uimm(fm, 4) << 28) | (uimm(pred, 4) << 24) | (uimm(succ, 4) << 20) | (reg(rs1) << 15) | (reg(rd) << 7) | OP.MISC_MEM) >>> 0;
}
/** FENCE.I with its reserved imm/rs1/rd fields set (to be ignored). */
export function fenceIRaw(imm: number, rs1: number, rd: number): number {
  return ((uimm(imm, 12) << 20) | (reg(rs1) << 15) | (1 << 12) | (reg(rd) << 7) | OP.MISC_MEM) >>> 0;
}

// ---- byte images ----------------------------------------------------------------------------

/** Size in bytes of an encoded instruction word: 32-bit ones have both low bits set. */
export function insnSize(word: number): 2 | 4 {
  return (word & 3) === 3 ? 4 : 2;
}

/** Little-endian bytes of a list of instruction words (mixing 16- and 32-bit ones). */
export function toBytes(words: readonly number[]): Uint8Array {
  const out: number[] = [];
  for (const w of words) {
    out.push(w & 0xff, (w >>> 8) & 0xff);
    if (insnSize(w) === 4) out.push((w >>> 16) & 0xff, (w >>> 24) & 0xff);
  }
  return Uint8Array.from(out);
}
