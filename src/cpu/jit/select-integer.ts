// Instruction selection for the integer computations (RV64I register-immediate and
// register-register operations, M extension): each becomes the wasm operation that computes the
// same bits, with the RISC-V definitions wasm lacks (high multiplies, division by zero and
// overflow) spelled out.
import * as O from "../opcodes.ts";
import { Op, ValType } from "./wasm-emitter.ts";
import { L_T, L_T2, type Emitter, type Insn } from "./frame.ts";

type Emit = (e: Emitter, x: Insn) => void;

/** rd = rs1 op rs2 (64-bit). wasm shifts count modulo 64, as RISC-V does. */
function binary(wasmOp: Op): Emit {
  return (e, x) => {
    e.beginRd(x.rd);
    e.getX(x.rs1);
    e.getX(x.rs2);
    e.c.op(wasmOp);
    e.endRd(x.rd);
  };
}
/** rd = rs1 op imm (64-bit). */
function binaryImm(wasmOp: Op): Emit {
  return (e, x) => {
    e.beginRd(x.rd);
    e.getX(x.rs1);
    e.c.i64Const(x.imm);
    e.c.op(wasmOp);
    e.endRd(x.rd);
  };
}
function wrap(e: Emitter, r: number): void {
  e.getX(r);
  e.c.op(Op.i32_wrap_i64);
}
/** rd = sext(rs1[31:0] op rs2[31:0]). i32 shifts count modulo 32, as the W shifts do. */
function binaryW(wasmOp: Op): Emit {
  return (e, x) => {
    e.beginRd(x.rd);
    wrap(e, x.rs1);
    wrap(e, x.rs2);
    e.c.op(wasmOp);
    e.c.op(Op.i64_extend_i32_s);
    e.endRd(x.rd);
  };
}
/** rd = sext(rs1[31:0] op imm). */
function binaryImmW(wasmOp: Op): Emit {
  return (e, x) => {
    e.beginRd(x.rd);
    wrap(e, x.rs1);
    e.c.i32Const(x.imm);
    e.c.op(wasmOp);
    e.c.op(Op.i64_extend_i32_s);
    e.endRd(x.rd);
  };
}
/** rd = (rs1 < rs2 or imm) ? 1 : 0. */
function compare(wasmOp: Op, withImm: boolean): Emit {
  return (e, x) => {
    e.beginRd(x.rd);
    e.getX(x.rs1);
    if (withImm) e.c.i64Const(x.imm);
    else e.getX(x.rs2);
    e.c.op(wasmOp);
    e.c.op(Op.i64_extend_i32_u);
    e.endRd(x.rd);
  };
}

/** MULH, MULHSU, MULHU: wasm has no 64x64->128 multiply, so 32-bit halves. */
function mulHigh(e: Emitter, x: Insn): void {
  const c = e.c;
  const lo = (r: number) => {
    e.getX(r);
    c.i64Const(0xffffffff);
    c.op(Op.i64_and);
  };
  const hi = (r: number) => {
    e.getX(r);
    c.i64Const(32);
    c.op(Op.i64_shr_u);
  };
  const a = x.rs1, b = x.rs2;
  e.beginRd(x.rd);
  lo(a); hi(b); c.op(Op.i64_mul); c.set(L_T); // p1 = aLo * bHi
  hi(a); lo(b); c.op(Op.i64_mul); c.set(L_T2); // p2 = aHi * bLo
  // mid = (aLo * bLo >>> 32) + (p1 & mask) + (p2 & mask); result = aHi * bHi + (p1 >>> 32) + (p2 >>> 32) + (mid >>> 32)
  lo(a); lo(b); c.op(Op.i64_mul); c.i64Const(32); c.op(Op.i64_shr_u);
  c.get(L_T); c.i64Const(0xffffffff); c.op(Op.i64_and); c.op(Op.i64_add);
  c.get(L_T2); c.i64Const(0xffffffff); c.op(Op.i64_and); c.op(Op.i64_add);
  c.i64Const(32); c.op(Op.i64_shr_u);
  hi(a); hi(b); c.op(Op.i64_mul); c.op(Op.i64_add);
  c.get(L_T); c.i64Const(32); c.op(Op.i64_shr_u); c.op(Op.i64_add);
  c.get(L_T2); c.i64Const(32); c.op(Op.i64_shr_u); c.op(Op.i64_add);
  // signed corrections: mulh subtracts (a < 0 ? b : 0) and (b < 0 ? a : 0); mulhsu only the first
  if (x.op === O.OP_MULH || x.op === O.OP_MULHSU) {
    e.getX(a); c.i64Const(63); c.op(Op.i64_shr_s); e.getX(b); c.op(Op.i64_and); c.op(Op.i64_sub);
  }
  if (x.op === O.OP_MULH) {
    e.getX(b); c.i64Const(63); c.op(Op.i64_shr_s); e.getX(a); c.op(Op.i64_and); c.op(Op.i64_sub);
  }
  e.endRd(x.rd);
}

// Division by zero and overflow have defined results in RISC-V (unprivileged ISA 13.2) but
// trap in wasm: what a division by zero gives, and what a division by -1 needs.
const enum ByZero { AllOnes, Dividend }
const enum ByMinusOne { Native, Negate, Zero }

/** rd = rs2 == 0 ? (all ones | rs1) : rs2 == -1 ? (-rs1 | 0) : rs1 op rs2 */
function divide(wasmOp: Op, zero: ByZero, minusOne: ByMinusOne): Emit {
  return (e, x) => {
    const c = e.c;
    e.beginRd(x.rd);
    e.getX(x.rs2);
    c.op(Op.i64_eqz);
    c.if(ValType.i64);
    if (zero === ByZero.AllOnes) c.i64Const(-1);
    else e.getX(x.rs1);
    c.else();
    if (minusOne !== ByMinusOne.Native) {
      e.getX(x.rs2);
      c.i64Const(-1);
      c.op(Op.i64_eq);
      c.if(ValType.i64);
      if (minusOne === ByMinusOne.Negate) {
        c.i64Const(0);
        e.getX(x.rs1);
        c.op(Op.i64_sub);
      } else c.i64Const(0);
      c.else();
    }
    e.getX(x.rs1);
    e.getX(x.rs2);
    c.op(wasmOp);
    if (minusOne !== ByMinusOne.Native) c.end();
    c.end();
    e.endRd(x.rd);
  };
}
/** The 32-bit divisions: operands are the low words, the result is sign-extended. */
function divideW(wasmOp: Op, zero: ByZero, minusOne: ByMinusOne): Emit {
  return (e, x) => {
    const c = e.c;
    e.beginRd(x.rd);
    wrap(e, x.rs2);
    c.op(Op.i32_eqz);
    c.if(ValType.i64);
    if (zero === ByZero.AllOnes) c.i64Const(-1);
    else {
      wrap(e, x.rs1);
      c.op(Op.i64_extend_i32_s);
    }
    c.else();
    if (minusOne !== ByMinusOne.Native) {
      wrap(e, x.rs2);
      c.i32Const(-1);
      c.op(Op.i32_eq);
      c.if(ValType.i64);
      if (minusOne === ByMinusOne.Negate) {
        c.i32Const(0);
        wrap(e, x.rs1);
        c.op(Op.i32_sub);
        c.op(Op.i64_extend_i32_s);
      } else c.i64Const(0);
      c.else();
    }
    wrap(e, x.rs1);
    wrap(e, x.rs2);
    c.op(wasmOp);
    c.op(Op.i64_extend_i32_s);
    if (minusOne !== ByMinusOne.Native) c.end();
    c.end();
    e.endRd(x.rd);
  };
}

/** The integer computations by op. */
export const INTEGER_OPS = new Map<number, Emit>([
  [O.OP_ADDI, binaryImm(Op.i64_add)],
  [O.OP_SLTI, compare(Op.i64_lt_s, true)],
  [O.OP_SLTIU, compare(Op.i64_lt_u, true)],
  [O.OP_XORI, binaryImm(Op.i64_xor)],
  [O.OP_ORI, binaryImm(Op.i64_or)],
  [O.OP_ANDI, binaryImm(Op.i64_and)],
  [O.OP_SLLI, binaryImm(Op.i64_shl)],
  [O.OP_SRLI, binaryImm(Op.i64_shr_u)],
  [O.OP_SRAI, binaryImm(Op.i64_shr_s)],
  [O.OP_ADDIW, binaryImmW(Op.i32_add)],
  [O.OP_SLLIW, binaryImmW(Op.i32_shl)],
  [O.OP_SRLIW, binaryImmW(Op.i32_shr_u)],
  [O.OP_SRAIW, binaryImmW(Op.i32_shr_s)],
  [O.OP_ADD, binary(Op.i64_add)],
  [O.OP_SUB, binary(Op.i64_sub)],
  [O.OP_SLL, binary(Op.i64_shl)],
  [O.OP_SLT, compare(Op.i64_lt_s, false)],
  [O.OP_SLTU, compare(Op.i64_lt_u, false)],
  [O.OP_XOR, binary(Op.i64_xor)],
  [O.OP_SRL, binary(Op.i64_shr_u)],
  [O.OP_SRA, binary(Op.i64_shr_s)],
  [O.OP_OR, binary(Op.i64_or)],
  [O.OP_AND, binary(Op.i64_and)],
  [O.OP_ADDW, binaryW(Op.i32_add)],
  [O.OP_SUBW, binaryW(Op.i32_sub)],
  [O.OP_SLLW, binaryW(Op.i32_shl)],
  [O.OP_SRLW, binaryW(Op.i32_shr_u)],
  [O.OP_SRAW, binaryW(Op.i32_shr_s)],
  [O.OP_MUL, binary(Op.i64_mul)],
  [O.OP_MULH, mulHigh],
  [O.OP_MULHSU, mulHigh],
  [O.OP_MULHU, mulHigh],
  [O.OP_MULW, binaryW(Op.i32_mul)],
  [O.OP_DIV, divide(Op.i64_div_s, ByZero.AllOnes, ByMinusOne.Negate)],
  [O.OP_DIVU, divide(Op.i64_div_u, ByZero.AllOnes, ByMinusOne.Native)],
  [O.OP_REM, divide(Op.i64_rem_s, ByZero.Dividend, ByMinusOne.Zero)],
  [O.OP_REMU, divide(Op.i64_rem_u, ByZero.Dividend, ByMinusOne.Native)],
  [O.OP_DIVW, divideW(Op.i32_div_s, ByZero.AllOnes, ByMinusOne.Negate)],
  [O.OP_DIVUW, divideW(Op.i32_div_u, ByZero.AllOnes, ByMinusOne.Native)],
  [O.OP_REMW, divideW(Op.i32_rem_s, ByZero.Dividend, ByMinusOne.Zero)],
  [O.OP_REMUW, divideW(Op.i32_rem_u, ByZero.Dividend, ByMinusOne.Native)],
]);
