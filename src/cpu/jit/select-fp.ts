// Instruction selection for the F/D computations. The operations wasm does exactly (bit moves,
// sign injection, compares of non-NaN doubles, integer-to-double conversions that need no
// rounding) are inline; the other cases of the same instructions, and every other F/D
// instruction, call the core's softfloat (the interpreter's code), which also raises the flags.
import * as L from "../layout.ts";
import * as O from "../opcodes.ts";
import * as C from "../csr-numbers.ts";
import { Op, ValType } from "./wasm-emitter.ts";
import { FP_WRITES_X, rmOf } from "./instructions.ts";
import { FN_FP, Note, type Emitter, type Insn } from "./frame.ts";
import { NAN_BOX, markFpDirty, requireFp } from "./select-memory.ts";

type Emit = (e: Emitter, x: Insn) => void;

/** The sign bit of a double. */
const SIGN = -0x8000_0000_0000_0000n;

/** An F/D computation by the core's softfloat (operands in memory, which registers are written through to). */
function fpHelper(e: Emitter, x: Insn): void {
  const c = e.c;
  c.i32Const(x.w);
  c.call(FN_FP);
  c.if();
  e.exitTo(x.off, x.before, true, Note.ExitHelper); // illegal here (FS off, bad rounding mode): the interpreter traps
  c.end();
  if (FP_WRITES_X.has(x.op) && x.rd !== 0) {
    c.i32Const(0);
    c.mem(Op.i64_load, e.state + L.S_X + x.rd * 8);
    c.set(e.regLocal(x.rd));
  }
}

function fReg(e: Emitter, r: number, type: Op.i64_load | Op.f64_load | Op.i64_load32_s): void {
  e.c.i32Const(0);
  e.c.mem(type, e.state + L.S_F + r * 8);
}

/** An instruction whose rounding-mode field says dynamic needs a valid frm, else it is illegal. */
function requireRoundingMode(e: Emitter, x: Insn): void {
  if (rmOf(x.w) !== C.RM_DYNAMIC) return; // static modes were validated by the decoder
  const c = e.c;
  c.i32Const(0);
  c.mem(Op.i32_load, e.state + L.S_FCSR);
  c.i32Const(C.FCSR_FRM_SHIFT);
  c.op(Op.i32_shr_u);
  c.i32Const(C.FCSR_FRM_MASK);
  c.op(Op.i32_and);
  c.i32Const(C.RM_MAX_VALID);
  c.op(Op.i32_gt_u);
  c.if();
  e.exitTo(x.off, x.before, true, Note.ExitHelper);
  c.end();
}

/** FMV.X.D, FMV.X.W: rd = the register's bits (the single's sign-extended). */
const moveToX: Emit = (e, x) => {
  requireFp(e, x);
  e.beginRd(x.rd);
  fReg(e, x.rs1, x.op === O.OP_FMV_X_D ? Op.i64_load : Op.i64_load32_s);
  e.endRd(x.rd);
};

/** FMV.D.X, FMV.W.X: the bits of rs1 (a single NaN-boxed). */
const moveFromX: Emit = (e, x) => {
  const c = e.c;
  requireFp(e, x);
  c.i32Const(0);
  e.getX(x.rs1);
  if (x.op === O.OP_FMV_W_X) {
    c.i64Const(0xffffffff);
    c.op(Op.i64_and);
    c.i64Const(NAN_BOX);
    c.op(Op.i64_or);
  }
  c.mem(Op.i64_store, e.state + L.S_F + x.rd * 8);
  markFpDirty(e);
};

/** FSGNJ.D, FSGNJN.D, FSGNJX.D: bit operations on the sign. */
const signInject: Emit = (e, x) => {
  const c = e.c;
  requireFp(e, x);
  c.i32Const(0);
  fReg(e, x.rs1, Op.i64_load);
  if (x.op !== O.OP_FSGNJX_D) {
    c.i64Const(~SIGN);
    c.op(Op.i64_and);
  }
  fReg(e, x.rs2, Op.i64_load);
  if (x.op === O.OP_FSGNJN_D) {
    c.i64Const(-1);
    c.op(Op.i64_xor);
  }
  c.i64Const(SIGN);
  c.op(Op.i64_and);
  c.op(x.op === O.OP_FSGNJX_D ? Op.i64_xor : Op.i64_or);
  c.mem(Op.i64_store, e.state + L.S_F + x.rd * 8);
  markFpDirty(e);
};

/** FEQ.D, FLT.D, FLE.D: native when neither operand is NaN. */
function compareD(wasmOp: Op): Emit {
  return (e, x) => {
    const c = e.c;
    // NaN operands raise flags (FLT/FLE always, FEQ for signaling ones): the helper does those.
    requireFp(e, x);
    e.beginRd(x.rd);
    fReg(e, x.rs1, Op.f64_load);
    fReg(e, x.rs1, Op.f64_load);
    c.op(Op.f64_eq);
    fReg(e, x.rs2, Op.f64_load);
    fReg(e, x.rs2, Op.f64_load);
    c.op(Op.f64_eq);
    c.op(Op.i32_and);
    c.if(ValType.i64);
    fReg(e, x.rs1, Op.f64_load);
    fReg(e, x.rs2, Op.f64_load);
    c.op(wasmOp);
    c.op(Op.i64_extend_i32_u);
    c.else();
    fpHelper(e, x);
    if (x.rd !== 0) c.get(e.regLocal(x.rd));
    else c.i64Const(0);
    c.end();
    e.endRd(x.rd);
  };
}

/**
 * FCVT.D.W/WU/L/LU: a 32-bit integer always converts exactly; a 64-bit one when its magnitude
 * is at most 2^53, else the helper rounds it.
 */
function convertToD(convertOp: Op, wide: boolean, signed: boolean): Emit {
  return (e, x) => {
    const c = e.c;
    requireFp(e, x);
    requireRoundingMode(e, x);
    if (wide) {
      // exact (no rounding, no flags) when |value| <= 2^53 (unsigned: value <= 2^53)
      e.getX(x.rs1);
      if (signed) {
        c.i64Const(2 ** 53);
        c.op(Op.i64_add);
        c.i64Const(2 ** 54);
      } else c.i64Const(2 ** 53);
      c.op(Op.i64_le_u);
      c.if();
    }
    c.i32Const(0);
    e.getX(x.rs1);
    if (!wide) c.op(Op.i32_wrap_i64);
    c.op(convertOp);
    c.mem(Op.f64_store, e.state + L.S_F + x.rd * 8);
    markFpDirty(e);
    if (wide) {
      c.else();
      fpHelper(e, x);
      c.end();
    }
  };
}

/** The F/D computations with inline code; the rest go to the helper entirely. */
const FP_INLINE = new Map<number, Emit>([
  [O.OP_FMV_X_D, moveToX],
  [O.OP_FMV_X_W, moveToX],
  [O.OP_FMV_D_X, moveFromX],
  [O.OP_FMV_W_X, moveFromX],
  [O.OP_FSGNJ_D, signInject],
  [O.OP_FSGNJN_D, signInject],
  [O.OP_FSGNJX_D, signInject],
  [O.OP_FEQ_D, compareD(Op.f64_eq)],
  [O.OP_FLT_D, compareD(Op.f64_lt)],
  [O.OP_FLE_D, compareD(Op.f64_le)],
  [O.OP_FCVT_D_W, convertToD(Op.f64_convert_i32_s, false, true)],
  [O.OP_FCVT_D_WU, convertToD(Op.f64_convert_i32_u, false, false)],
  [O.OP_FCVT_D_L, convertToD(Op.f64_convert_i64_s, true, true)],
  [O.OP_FCVT_D_LU, convertToD(Op.f64_convert_i64_u, true, false)],
]);

/** An F/D computation instruction. */
export function floatingPoint(e: Emitter, x: Insn): void {
  (FP_INLINE.get(x.op) ?? fpHelper)(e, x);
}
