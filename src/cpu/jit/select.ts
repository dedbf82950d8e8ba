// Instruction selection: the wasm code of one guest instruction, by its decoded op. Integer
// computations, memory accesses and F/D computations have their own modules (select-*.ts);
// constants and control transfers are here. Anything else is left to the interpreter.
import * as O from "../opcodes.ts";
import { Op } from "./wasm-emitter.ts";
import { Kind, kindOf } from "./instructions.ts";
import { FN_CHAIN, L_BUDGET0, L_LEFT, L_NPC, L_VBASE, Note, type Emitter, type Insn } from "./frame.ts";
import { INTEGER_OPS } from "./select-integer.ts";
import { MEMORY_OPS, atomic, csrAccess } from "./select-memory.ts";
import { floatingPoint } from "./select-fp.ts";

type Emit = (e: Emitter, x: Insn) => void;

/** rd = the page's virtual address + a page offset (AUIPC, and the link of JAL and JALR). */
function pcRelative(e: Emitter, rd: number, offset: number): void {
  e.beginRd(rd);
  e.c.get(L_VBASE);
  e.c.i64Const(offset);
  e.c.op(Op.i64_add);
  e.endRd(rd);
}

const BRANCH_COMPARE: Op[] = [Op.i64_eq, Op.i64_ne, Op.i64_lt_s, Op.i64_ge_s, Op.i64_lt_u, Op.i64_ge_u];

const branch: Emit = (e, x) => {
  const c = e.c;
  e.getX(x.rs1);
  if (x.op === O.OP_BEQZ) c.op(Op.i64_eqz);
  else if (x.op === O.OP_BNEZ) {
    c.op(Op.i64_eqz);
    c.op(Op.i32_eqz);
  } else {
    e.getX(x.rs2);
    c.op(BRANCH_COMPARE[x.op - O.OP_BEQ]);
  }
  const target = x.off + x.imm;
  if (target === x.off + x.len) {
    c.op(Op.drop); // a branch to the next instruction: both ways lead there (and may have no label)
    return;
  }
  const label = e.branchLabel(x.i, target);
  if (label !== undefined) {
    c.brIf(label);
  } else {
    c.if();
    e.jumpTo(target, x.i);
    c.end();
  }
};

const jal: Emit = (e, x) => {
  if (x.op === O.OP_JAL && x.rd !== 0) pcRelative(e, x.rd, x.off + x.len);
  e.jumpTo(x.off + x.imm, x.i);
};

const jalr: Emit = (e, x) => {
  const c = e.c;
  e.getX(x.rs1);
  if (x.imm !== 0) {
    c.i64Const(x.imm);
    c.op(Op.i64_add);
  }
  c.i64Const(-2);
  c.op(Op.i64_and);
  c.set(L_NPC); // before writing rd, which may be rs1
  if (x.rd !== 0) pcRelative(e, x.rd, x.off + x.len);
  // A target in this page: this function's entries, else the page's (see PageEmitter.dispatchInPage);
  // elsewhere: the chaining function.
  c.get(L_NPC);
  c.get(L_VBASE);
  c.op(Op.i64_sub);
  c.i64Const(4096);
  c.op(Op.i64_lt_u);
  c.if();
  e.dispatchInPage(L_NPC);
  c.end();
  e.profile(Note.Chain, () => c.get(L_NPC));
  c.get(L_NPC);
  c.get(L_LEFT);
  c.get(L_BUDGET0);
  c.returnCall(FN_CHAIN);
};

const OTHER_OPS = new Map<number, Emit>([
  [O.OP_LI, (e, x) => {
    e.beginRd(x.rd);
    e.c.i64Const(x.imm);
    e.endRd(x.rd);
  }],
  [O.OP_MV, (e, x) => {
    e.beginRd(x.rd);
    e.getX(x.rs1);
    e.endRd(x.rd);
  }],
  [O.OP_AUIPC, (e, x) => pcRelative(e, x.rd, x.off + x.imm)],
  ...[O.OP_BEQ, O.OP_BNE, O.OP_BLT, O.OP_BGE, O.OP_BLTU, O.OP_BGEU, O.OP_BEQZ, O.OP_BNEZ].map((op) => [op, branch] as const),
  [O.OP_JAL, jal],
  [O.OP_J, jal],
  [O.OP_JALR, jalr],
]);

/**
 * Emits the code of instruction `x`. Returns false when control never goes on to the next
 * instruction from here (it was left to the interpreter).
 */
export function selectInstruction(e: Emitter, x: Insn): boolean {
  const emit = INTEGER_OPS.get(x.op) ?? MEMORY_OPS.get(x.op) ?? OTHER_OPS.get(x.op);
  if (emit) {
    emit(e, x);
    return true;
  }
  switch (kindOf(x.op, x.imm)) {
    case Kind.Nop:
      // A FENCE that orders memory (decode.ts sets its immediate) is the core's fence: atomics.ts.
      if (x.op === O.OP_FENCE && x.imm !== 0 && e.parallelHarts) e.c.atomicFence();
      return true;
    case Kind.Amo:
      atomic(e, x);
      return true;
    case Kind.Fp:
      floatingPoint(e, x);
      return true;
    case Kind.Csr:
      csrAccess(e, x);
      return true;
    default:
      // System instruction, counter CSR access, illegal or page-straddling instruction: the interpreter's.
      e.exitTo(x.off, x.before, true, Note.ExitSystem);
      return false;
  }
}
