// Instruction selection for memory accesses: integer and FP loads and stores check the core's
// data TLB inline (src/cpu/layout.ts describes its entries); on a miss they ask the core's load or
// store helper (RAM accesses within one page; for stores also those without a write tag, such as
// those into the data of a page holding code) and leave to the interpreter on anything else
// (faults, MMIO, page crossings); LR/SC and AMOs call the core's helper. Also the FP state checks that FP loads
// and stores share with the FP computations (select-fp.ts).
import * as L from "../layout.ts";
import * as O from "../opcodes.ts";
import * as C from "../csr-numbers.ts";
import { Op, ValType } from "./wasm-emitter.ts";
import { emitTlbEntryOffset } from "./fetch-tlb.ts";
import { FN_AMO, FN_CSR, FN_LOAD, FN_STORE, L_E, L_T, L_TLB, L_VA, Note, type Emitter, type Insn, type LoadGroup } from "./frame.ts";

type Emit = (e: Emitter, x: Insn) => void;

/** A single-precision value in an f register: the upper 32 bits all ones (unprivileged ISA 13.2). */
export const NAN_BOX = -0x1_0000_0000n; // 0xffffffff_00000000
/** mstatus.SD (privileged ISA 3.1.6), set with FS = Dirty. */
const MSTATUS_SD = 1n << 63n;
const MSTATUS_FS_DIRTY_SD = BigInt(C.MSTATUS_FS_DIRTY) | MSTATUS_SD;

/** Pushes the address x[rs1] + offset. */
function pushAddress(e: Emitter, rs1: number, offset: number): void {
  e.getX(rs1);
  if (offset !== 0) {
    e.c.i64Const(offset);
    e.c.op(Op.i64_add);
  }
}

/** $va = x[rs1] + offset and $e = its data TLB entry; pushes the entry's tag at `tagOffset`. */
function tlbTag(e: Emitter, rs1: number, offset: number, tagOffset: number): void {
  const c = e.c;
  pushAddress(e, rs1, offset);
  c.tee(L_VA);
  emitTlbEntryOffset(c);
  c.get(L_TLB);
  c.op(Op.i32_add);
  c.tee(L_E);
  c.mem(Op.i64_load, tagOffset);
}

/** Pushes the page number of $va + `bytes`. */
function pageOfVa(e: Emitter, bytes: number): void {
  const c = e.c;
  c.get(L_VA);
  if (bytes !== 0) {
    c.i64Const(bytes);
    c.op(Op.i64_add);
  }
  c.i64Const(L.PAGE_SHIFT);
  c.op(Op.i64_shr_u);
}

/**
 * $va = x[rs1] + imm and $e = its data TLB entry; leaves "the TLB hits for all `size` bytes"
 * on the stack. Comparing the tag (the page number of the entry's page) with the page of the
 * access's last byte checks both at once: an access crossing into the next page looks that
 * page up at the first page's index, where its tag cannot be (tag & mask == index).
 */
function tlbLookup(e: Emitter, x: Insn, tagOffset: number, size: number): void {
  tlbTag(e, x.rs1, x.imm, tagOffset);
  pageOfVa(e, size - 1);
  e.c.op(Op.i64_eq);
}

/** wasm address = va + addend; the low 32 bits of both suffice. */
function hostAddress(e: Emitter): void {
  const c = e.c;
  c.get(L_VA);
  c.op(Op.i32_wrap_i64);
  c.get(L_E);
  c.mem(Op.i32_load, L.TLB_ADDEND);
  c.op(Op.i32_add);
}

/**
 * A load: inline on a TLB hit; otherwise the core's helper (jitLoad) performs it when it is a RAM
 * load within one page, filling the TLB for the next time, and returns the value zero-extended
 * (`extend` sign-extends it for LB, LH, LW); on anything else (fault, MMIO, page crossing) it
 * reports JIT_STATUS_FAULT and the function leaves in front of the load for the interpreter.
 */
function load(size: number, fastOp: Op, fp: boolean, extend?: Op): Emit {
  return (e, x) => {
    const c = e.c;
    const group = fp ? undefined : e.loadGroupOf(x.i);
    if (group?.first) groupCheck(e, x, group);
    if (fp) {
      requireFp(e, x);
      c.i32Const(0);
    } else e.beginRd(x.rd);
    if (group !== undefined) {
      // The group's check passed: straight from the page. Else (rare: the group's bytes cross a
      // page end or its page is not in the TLB) the core's load helper, as on a TLB miss.
      c.get(group.okLocal);
      c.if(ValType.i64);
      c.get(group.hostLocal);
      c.mem(fastOp, x.imm - group.lo);
      c.else();
      pushAddress(e, x.rs1, x.imm);
      c.set(L_VA);
    } else {
      tlbLookup(e, x, L.TLB_TAG_R, size);
      c.if(ValType.i64);
      hostAddress(e);
      c.mem(fastOp, 0);
      c.else();
    }
    c.get(L_VA);
    c.i32Const(size);
    c.call(FN_LOAD);
    if (extend !== undefined) c.op(extend);
    c.i32Const(0);
    c.mem(Op.i32_load, e.state + L.S_JIT_STATUS);
    c.if();
    e.exitTo(x.off, x.before, true, Note.ExitLoad);
    c.end();
    c.end();
    if (!fp) {
      e.endRd(x.rd);
      return;
    }
    if (size === 4) {
      c.i64Const(NAN_BOX);
      c.op(Op.i64_or);
    }
    c.mem(Op.i64_store, e.state + L.S_F + x.rd * 8);
    markFpDirty(e);
  };
}

/**
 * In front of a load group's first load (frame.ts, LoadGroup): whether x[base] + lo hits the
 * data TLB for reading and x[base] + hi lies in the same page, and if so the host address of
 * x[base] + lo (in the group's locals; the group's loads add their offset from lo).
 */
function groupCheck(e: Emitter, x: Insn, group: LoadGroup): void {
  const c = e.c;
  tlbTag(e, x.rs1, group.lo, L.TLB_TAG_R);
  pageOfVa(e, 0);
  c.op(Op.i64_eq);
  pageOfVa(e, group.hi - group.lo);
  pageOfVa(e, 0);
  c.op(Op.i64_eq);
  c.op(Op.i32_and);
  c.tee(group.okLocal);
  c.if();
  hostAddress(e);
  c.set(group.hostLocal);
  c.end();
}

/**
 * A store: inline on a TLB hit; otherwise the core's helper (jitStore) performs it when it is a
 * RAM store within one page (a TLB miss, or a page without a write tag because it holds code),
 * and reports in S_JIT_STATUS: done; done but the core wants control (the store dropped code);
 * or not done (fault, MMIO, page crossing): the function leaves in front of it for the interpreter.
 */
function store(size: number, storeOp: Op, fp: boolean): Emit {
  return (e, x) => {
    const c = e.c;
    const value = () => {
      if (fp) {
        c.i32Const(0);
        c.mem(Op.i64_load, e.state + L.S_F + x.rs2 * 8);
      } else e.getX(x.rs2);
    };
    if (fp) requireFp(e, x);
    tlbLookup(e, x, L.TLB_TAG_W, size);
    c.if();
    hostAddress(e);
    value();
    c.mem(storeOp, 0);
    c.else();
    c.get(L_VA);
    value();
    c.i32Const(size);
    c.call(FN_STORE);
    checkStatus(e, x, Note.ExitStore, false); // an exit request after it: the store dropped code
    c.end();
  };
}

/**
 * The integer loads: bytes accessed, the wasm load of an inline hit, and the sign extension of
 * the load helper's zero-extended value.
 */
const INTEGER_LOADS: readonly [op: number, size: number, hitOp: Op, extend?: Op][] = [
  [O.OP_LB, 1, Op.i64_load8_s, Op.i64_extend8_s],
  [O.OP_LH, 2, Op.i64_load16_s, Op.i64_extend16_s],
  [O.OP_LW, 4, Op.i64_load32_s, Op.i64_extend32_s],
  [O.OP_LD, 8, Op.i64_load],
  [O.OP_LBU, 1, Op.i64_load8_u],
  [O.OP_LHU, 2, Op.i64_load16_u],
  [O.OP_LWU, 4, Op.i64_load32_u],
];
/** Bytes each integer load accesses, by op (load groups: page-emitter.ts). */
export const INTEGER_LOAD_SIZE = new Map(INTEGER_LOADS.map(([op, size]) => [op, size]));

/** Loads and stores by op. */
export const MEMORY_OPS = new Map<number, Emit>([
  ...INTEGER_LOADS.map(([op, size, hitOp, extend]): [number, Emit] => [op, load(size, hitOp, false, extend)]),
  [O.OP_SB, store(1, Op.i64_store8, false)],
  [O.OP_SH, store(2, Op.i64_store16, false)],
  [O.OP_SW, store(4, Op.i64_store32, false)],
  [O.OP_SD, store(8, Op.i64_store, false)],
  [O.OP_FLW, load(4, Op.i64_load32_u, true)],
  [O.OP_FLD, load(8, Op.i64_load, true)],
  [O.OP_FSW, store(4, Op.i64_store32, true)],
  [O.OP_FSD, store(8, Op.i64_store, true)],
]);

/** LR, SC and AMOs: the core's helper does the access (through the same TLB) and reports in S_JIT_STATUS. */
export function atomic(e: Emitter, x: Insn): void {
  const c = e.c;
  c.i32Const(x.w);
  e.getX(x.rs1);
  e.getX(x.rs2);
  c.call(FN_AMO);
  setRdFromHelper(e, x);
}

/**
 * A CSR instruction (not a retirement counter: kindOf leaves those to the interpreter): the core's
 * own CSR code does it (jitCsr) and reports in S_JIT_STATUS: illegal (leave in front, nothing
 * changed, the interpreter traps), done but leave right after it (an interrupt became
 * deliverable, satp or mstatus changed what this code relies on), or done.
 */
export function csrAccess(e: Emitter, x: Insn): void {
  const c = e.c;
  c.i32Const(x.w);
  c.i32Const(x.imm & 0xfff);
  if (x.op >= O.OP_CSRRWI) c.i64Const(0);
  else e.getX(x.rs1);
  c.call(FN_CSR);
  setRdFromHelper(e, x);
}

/** The helper just called left rd's value on the stack and its status in S_JIT_STATUS: act on both. */
function setRdFromHelper(e: Emitter, x: Insn): void {
  const c = e.c;
  c.set(L_T);
  checkStatus(e, x);
  e.beginRd(x.rd);
  c.get(L_T);
  e.endRd(x.rd);
}

/**
 * After a helper call: a fault leaves in front of the instruction (counted as `faultNote`), an
 * exit request after it, with rd first set from L_T when the instruction has a result (`writesRd`).
 */
function checkStatus(e: Emitter, x: Insn, faultNote = Note.ExitHelper, writesRd = true): void {
  const c = e.c;
  c.i32Const(0);
  c.mem(Op.i32_load, e.state + L.S_JIT_STATUS);
  c.tee(L_E);
  c.if();
  c.get(L_E);
  c.i32Const(L.JIT_STATUS_FAULT);
  c.op(Op.i32_eq);
  c.if();
  e.exitTo(x.off, x.before, true, faultNote);
  c.end();
  // the access was done, but the core wants control back: complete the instruction, leave after it
  if (writesRd) {
    e.beginRd(x.rd);
    c.get(L_T);
    e.endRd(x.rd);
  }
  e.exitTo(x.off + x.len, x.after, false, Note.ExitHelper);
  c.end();
}

/** FP instructions need mstatus.FS != Off, else the interpreter raises illegal-instruction. */
export function requireFp(e: Emitter, x: Insn): void {
  const c = e.c;
  c.i32Const(0);
  c.mem(Op.i64_load, e.state + L.S_MSTATUS);
  c.i64Const(C.MSTATUS_FS);
  c.op(Op.i64_and);
  c.op(Op.i64_eqz);
  c.if();
  e.exitTo(x.off, x.before, true, Note.ExitHelper);
  c.end();
}

/** An f register was written: mstatus.FS = Dirty, and SD with it. */
export function markFpDirty(e: Emitter): void {
  const c = e.c;
  c.i32Const(0);
  c.i32Const(0);
  c.mem(Op.i64_load, e.state + L.S_MSTATUS);
  c.i64Const(MSTATUS_FS_DIRTY_SD);
  c.op(Op.i64_or);
  c.mem(Op.i64_store, e.state + L.S_MSTATUS);
}
