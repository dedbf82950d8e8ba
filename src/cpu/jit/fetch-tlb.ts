// The fetch TLB lookup that translated code makes where it needs to know whether a page may be
// executed as the interpreter would fetch it: the chaining function (jit.ts: is the target pc's
// page mapped executable?) and a page-straddling instruction (straddle.ts: is the next page still
// mapped as at translation time?). Same entry layout as the interpreter's (layout.ts).
import * as L from "../layout.ts";
import { Op, type Code } from "./wasm-emitter.ts";

/**
 * Turns the i64 address on the stack into the i32 byte offset of its entry in a TLB table, fetch
 * or data alike: ((address >>> PAGE_SHIFT) & (TLB_ENTRIES - 1)) * TLB_ENTRY_SIZE.
 */
export function emitTlbEntryOffset(c: Code): void {
  c.op(Op.i32_wrap_i64);
  c.i32Const(L.PAGE_SHIFT - L.TLB_ENTRY_SHIFT);
  c.op(Op.i32_shr_u);
  c.i32Const((L.TLB_ENTRIES - 1) << L.TLB_ENTRY_SHIFT);
  c.op(Op.i32_and);
}

/**
 * Leaves an i32 that compares the execute tag of the fetch TLB entry of an address with the
 * address's page (`Op.i64_eq`: hit, `Op.i64_ne`: miss), and keeps the entry's address in local
 * `entryLocal`. `pushAddress` pushes the i64 address (it may compute it and tee it to a local);
 * `pushAgain` pushes the same address a second time. `fetchTlbPointer` is the absolute address
 * of the hart's S_FETCH_TLB word (the current fetch TLB table).
 */
export function emitFetchTagCompare(
  c: Code,
  fetchTlbPointer: number,
  pushAddress: () => void,
  pushAgain: () => void,
  entryLocal: number,
  compare: Op.i64_eq | Op.i64_ne,
): void {
  c.i32Const(0);
  c.mem(Op.i32_load, fetchTlbPointer);
  pushAddress();
  emitTlbEntryOffset(c);
  c.op(Op.i32_add);
  c.tee(entryLocal);
  c.mem(Op.i64_load, L.TLB_TAG_X);
  pushAgain();
  c.i64Const(L.PAGE_SHIFT);
  c.op(Op.i64_shr_u);
  c.op(compare);
}
