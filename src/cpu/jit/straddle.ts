// Instructions that straddle the end of a code page (a 32-bit instruction at offset 0xffe).
// The interpreter decodes one on every execution, from both pages; left to it, a hot loop that
// crosses a page end would leave translated code on every iteration. The translator instead
// decodes it with the parcel found at translation time on the page that follows in the guest's
// address space, and the translated code checks at every execution, as the interpreter's fetch
// would, that the fetch TLB maps that page executable and that the parcel there is unchanged;
// otherwise it leaves the instruction to the interpreter (which faults or decodes it afresh).
import * as L from "../layout.ts";
import { Op } from "./wasm-emitter.ts";
import { L_E, L_T, L_VBASE, Note, type Emitter } from "./frame.ts";
import { emitFetchTagCompare } from "./fetch-tlb.ts";

/** The page offset of an instruction that straddles the page end. */
export const STRADDLE_OFFSET = 0xffe;

/**
 * The first parcel of the page after virtual page `vbase`, through the fetch TLB as it is now in
 * memory (`view` over the core's memory, the hart's state block at `stateBase`); undefined when
 * the TLB does not map that page for execution.
 */
export function parcelAfterPage(view: DataView, stateBase: number, vbase: bigint): number | undefined {
  const next = BigInt.asUintN(64, vbase + 4096n);
  const vpn = next >> BigInt(L.PAGE_SHIFT);
  const table = view.getUint32(stateBase + L.S_FETCH_TLB, true);
  const entry = table + ((Number(vpn & BigInt(L.TLB_ENTRIES - 1))) << L.TLB_ENTRY_SHIFT);
  if (view.getBigUint64(entry + L.TLB_TAG_X, true) !== vpn) return undefined;
  const wasmAddress = (Number(next & 0xffff_ffffn) + view.getUint32(entry + L.TLB_ADDEND, true)) >>> 0;
  if (wasmAddress + 2 > view.byteLength) return undefined;
  return view.getUint16(wasmAddress, true);
}

/**
 * In front of the straddling instruction decoded with `high`: leaves for the interpreter unless
 * the page after this one is still mapped executable with `high` as its first parcel.
 */
export function checkStraddle(e: Emitter, high: number, unretired: number): void {
  const c = e.c;
  // $t = vbase + 4096; $e = its fetch TLB entry
  const nextPage = () => {
    c.get(L_VBASE);
    c.i64Const(4096);
    c.op(Op.i64_add);
    c.tee(L_T);
  };
  emitFetchTagCompare(c, e.state + L.S_FETCH_TLB, nextPage, () => c.get(L_T), L_E, Op.i64_ne);
  c.if();
  e.exitTo(STRADDLE_OFFSET, unretired, true, Note.ExitSystem);
  c.end();
  c.get(L_T);
  c.op(Op.i32_wrap_i64);
  c.get(L_E);
  c.mem(Op.i32_load, L.TLB_ADDEND);
  c.op(Op.i32_add);
  c.mem(Op.i32_load16_u, 0);
  c.i32Const(high);
  c.op(Op.i32_ne);
  c.if();
  e.exitTo(STRADDLE_OFFSET, unretired, true, Note.ExitSystem);
  c.end();
}
