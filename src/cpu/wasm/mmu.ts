// Address translation (Sv39/Sv48/Sv57), the software TLB, the slow memory paths (TLB misses,
// page-crossing and MMIO accesses) and the decoded-code pool with its write protection.
//
// The TLB is direct-mapped, one table per translation context: U, S with SUM clear, S with SUM
// set, and M (bare). Switching privilege or toggling SUM selects another table instead of
// flushing, which matters because Linux toggles SUM around every user copy. Each entry keeps a
// separate tag per access kind (read, write, execute) so a permission check on the fast path is a
// single compare; tags are filled only when the access kind is allowed, write tags only once the
// PTE's D bit is set, no hart of the machine holds decoded code of the page and, while dirty
// logging is on, the page's dirty bit is set.
import * as L from "../layout";
import * as R from "./regions";
import {
  stateBase, getState, setState, bumpCounter,
  PRIV_M, PRIV_S, PRIV_U,
  MSTATUS_MPRV, MSTATUS_MPP, MSTATUS_MPP_SHIFT, MSTATUS_SUM, MSTATUS_MXR,
  ACCESS_FETCH, ACCESS_LOAD, ACCESS_STORE,
  CAUSE_FETCH_ACCESS, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS,
  CAUSE_FETCH_PAGE_FAULT, CAUSE_LOAD_PAGE_FAULT, CAUSE_STORE_PAGE_FAULT,
  CAUSE_MISALIGNED_LOAD,
} from "./state";
import * as D from "../decoded";
import { decode16, decode32, decodedImm, decodedWord, decodedOp } from "./decode";
import { OP_CROSSPAGE, OP_TRANSLATED } from "./ops";
import { PARALLEL_HARTS } from "./atomics";

@external("env", "mmioRead") declare function hostMmioRead(paddr: f64, size: i32): i32;
@external("env", "mmioWrite") declare function hostMmioWrite(paddr: f64, size: i32): i32;
/** A code page got hot: the host may translate pool page `poolIndex` (pc: where it happened). */
@external("env", "jitRequest") declare function hostJitRequest(poolIndex: u32, pc: f64): void;
/** The translation of pool page `poolIndex` is no longer reachable (its page changed or the pool page is reused). */
@external("env", "jitDropped") declare function hostJitDropped(poolIndex: u32): void;

export const TLB_MASK: u32 = <u32>R.TLB_ENTRIES - 1;
const TLB_CONTEXT_BYTES: usize = R.TLB_ENTRIES * R.TLB_ENTRY_SIZE;
const TAG_INVALID: i64 = -1; // no va >>> 12 has all 64 bits set

const CTX_U: u32 = 0;
const CTX_S: u32 = 1;
const CTX_S_SUM: u32 = 2;
const CTX_M: u32 = 3;

/** TLB table used by loads and stores (follows MPRV/MPP and SUM). */
export let dataTlb: usize = 0; // set by updateContexts(), which init() calls
/** TLB table used by instruction fetch (follows the current privilege). */
export let fetchTlb: usize = 0;
let superpagesCached = false;

/** Set by a slow path that raised an exception; trapCause/trapTval say which. */
export let memFault = false;
export let trapCause: i64 = 0;
export let trapTval: i64 = 0;
/**
 * The executor's inner loop runs while its instruction count is below runLimit. Anything that
 * may make an interrupt deliverable or end the run (MMIO exits, CSR writes, xRET, hypercalls)
 * sets it to 0 so that the outer loop looks at interrupts, stop requests and WFI.
 */
export let runLimit: i32 = 0;
/** The raw bits of the last instruction decoded across a page boundary (for illegal-instruction tval). */
export let crossPageRaw: u32 = 0;

/**
 * Forgets the current code page. The executor keeps it in locals, so this also ends its inner
 * loop (runLimit = 0) to make it reload them.
 */
export function invalidateFetch(): void {
  fetchTag = -1;
  runLimit = 0;
}

/** Current code page: virtual page base being executed, the pool page caching it, and its RAM. */
export let fetchTag: i64 = -1;
export let fetchBase: usize = 0;
export let fetchRam: usize = 0;
/** A decode slot outside the pool for an instruction that straddles two pages. */
@inline export function crossPageSlot(): usize { return stateBase() + 0x7f0; }
/** A decode slot outside the pool for a block entry the interpreter runs itself (armBounce). */
@inline function bounceSlot(): usize { return stateBase() + 0x7e0; }
/** The pc whose next fetch bypasses a translated block entry (see armBounce). */
let bouncePc: i64 = -1;

/**
 * Translated code stopped in front of the instruction at pc and left it to the interpreter
 * (it faults, needs the budget the translation lacks, or is a system instruction). If pc is a
 * block entry, its pool slot holds OP_TRANSLATED, so the next fetch of pc must decode the
 * original instruction instead; forcing the slow fetch path arranges that.
 */
export function armBounce(pc: i64): void {
  bouncePc = pc;
  fetchTag = -1;
}

export let ramBase: i64 = 0x8000_0000;
export let ramSize: i64 = 0;
let watchLo: i64 = 0;
let watchHi: i64 = 0;
let poolNext: u32 = 0;

export function configureMemory(): void {
  ramBase = getState(L.S_RAM_PHYS_BASE);
  ramSize = getState(L.S_RAM_SIZE);
  watchLo = getState(L.S_WATCH_LO);
  watchHi = getState(L.S_WATCH_HI);
}

export function resetCodeCache(): void {
  memory.fill(R.pagemapBase(), 0, <usize>((ramSize >>> 12) << 2));
  const pages = <u32>(ramSize >>> 12);
  for (let page: u32 = 0; page < pages; page++) {
    if ((loadShared(holdersEntry(page)) & MY_HOLDER_BIT) != 0) clearHolder(page);
  }
  const queue = R.codeQueueBase();
  storeShared(queue + L.CODE_QUEUE_OVERFLOW, 0);
  memory.fill(queue + L.CODE_QUEUE_RING, 0, <usize>L.CODE_QUEUE_ENTRIES << 2);
  store<u32>(queue + L.CODE_QUEUE_HEAD, loadShared(queue + L.CODE_QUEUE_TAIL));
  memory.fill(R.codeQueuedMemoBase(), 0xff, <usize>L.CODE_QUEUED_MEMO_ENTRIES * 12);
  for (let i: u32 = 0; i < <u32>R.POOL_PAGES; i++) {
    store<i32>(R.poolOwnerBase() + (<usize>i << 2), -1);
    setCodeChunks(i, 0);
  }
  poolNext = 0;
  setState(L.S_SUSPECT_COUNT, 0);
  invalidateFetch();
}

@inline export function isRam(paddr: i64): bool {
  return <u64>(paddr - ramBase) < <u64>ramSize;
}
@inline function ramWasmAddr(paddr: i64): usize {
  return <usize>(paddr - ramBase) + R.RAM_WASM_BASE;
}

// ---- TLB maintenance -----------------------------------------------------------------------

/** Re-selects the TLB tables after a change of privilege, MPRV/MPP or SUM. */
export function updateContexts(): void {
  const mstatus = getState(L.S_MSTATUS);
  const priv = <i32>getState(L.S_PRIV);
  let effective = priv;
  if (priv == PRIV_M && (mstatus & MSTATUS_MPRV) != 0) effective = <i32>((mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
  let dataCtx = CTX_M;
  if (effective == PRIV_S) dataCtx = (mstatus & MSTATUS_SUM) != 0 ? CTX_S_SUM : CTX_S;
  else if (effective == PRIV_U) dataCtx = CTX_U;
  const fetchCtx = priv == PRIV_M ? CTX_M : priv == PRIV_S ? CTX_S : CTX_U;
  dataTlb = R.tlbBase() + <usize>dataCtx * TLB_CONTEXT_BYTES;
  fetchTlb = R.tlbBase() + <usize>fetchCtx * TLB_CONTEXT_BYTES;
  // Translated code reads the table from here on entry (contexts only change outside it).
  store<i32>(stateBase() + L.S_DATA_TLB, <i32>dataTlb);
  store<i32>(stateBase() + L.S_FETCH_TLB, <i32>fetchTlb);
  invalidateFetch();
}

/** Drops every translation (all contexts). */
export function flushAll(): void {
  memory.fill(R.tlbBase(), 0xff, TLB_CONTEXT_BYTES * R.TLB_CONTEXTS);
  superpagesCached = false;
  invalidateFetch();
}

/** Drops the translated contexts (U and S); M-mode bare mappings never change. */
export function flushTranslated(): void {
  memory.fill(R.tlbBase(), 0xff, TLB_CONTEXT_BYTES * 3);
  superpagesCached = false;
  invalidateFetch();
}

/** SFENCE.VMA with a virtual address: drops that page, or everything when superpages are cached. */
export function flushPage(va: i64): void {
  if (superpagesCached) { flushTranslated(); return; }
  const vpn = va >>> 12;
  const index = (<usize>vpn & TLB_MASK) * R.TLB_ENTRY_SIZE;
  for (let ctx: usize = 0; ctx < 3; ctx++) {
    const e = R.tlbBase() + ctx * TLB_CONTEXT_BYTES + index;
    store<i64>(e + R.TLB_TAG_R, TAG_INVALID);
    store<i64>(e + R.TLB_TAG_W, TAG_INVALID);
    store<i64>(e + R.TLB_TAG_X, TAG_INVALID);
  }
  invalidateFetch();
}

/**
 * Removes write permission from every cached translation of one RAM page in every hart's TLB (it
 * now holds decoded code). Other harts may be filling their entries at the same time: a fill
 * that grants a write tag re-checks the code-holder map afterwards (fillTlb), so either it sees
 * the page's new holder or this scan sees its tag. Stripping a tag that was just replaced by
 * another page's only costs that page a slow store.
 */
function stripWriteTagsEverywhere(pageWasmAddr: usize): bool {
  let strippedOther = false;
  for (let hart: u32 = 0; hart < R.HART_COUNT; hart++) {
    const tlb = R.hartBaseOf(hart) + <usize>L.HART_TLB;
    const end = tlb + TLB_CONTEXT_BYTES * R.TLB_CONTEXTS;
    for (let e: usize = tlb; e < end; e += R.TLB_ENTRY_SIZE) {
      const tag = PARALLEL_HARTS ? atomic.load<i64>(e + R.TLB_TAG_W) : load<i64>(e + R.TLB_TAG_W);
      if (tag != TAG_INVALID && <usize>((tag << 12) + load<i64>(e + R.TLB_ADDEND)) == pageWasmAddr) {
        if (PARALLEL_HARTS) atomic.store<i64>(e + R.TLB_TAG_W, TAG_INVALID);
        else store<i64>(e + R.TLB_TAG_W, TAG_INVALID);
        if (hart != R.HART_INDEX) strippedOther = true;
      }
    }
  }
  return strippedOther;
}

// ---- Suspect pages (shared build) ---------------------------------------------------------------
// A hart in another thread may be in the middle of a store through the write tag that
// stripWriteTagsEverywhere just removed: its store can land after this hart read the page to
// decode it, and is not queued (it took the fast path). Such a page is suspect: this hart keeps
// it on a short list and drops its decoded code again at its next FENCE.I (local, or a remote
// one from SBI RFENCE), which the writer's program orders after its store. More suspects than
// the list holds: the next FENCE.I drops every decoded page.

function recordSuspect(ramPage: u32): void {
  const count = <u32>getState(L.S_SUSPECT_COUNT);
  if (count < <u32>L.SUSPECT_PAGES_MAX) store<u32>(R.HART_BASE + <usize>L.HART_STATE + <usize>L.S_SUSPECT_PAGES + (<usize>count << 2), ramPage);
  setState(L.S_SUSPECT_COUNT, <i64>count + 1);
}

/** FENCE.I's part for suspect pages: drops their decoded code (all decoded code after an overflow). */
export function dropSuspects(): void {
  const count = <u32>getState(L.S_SUSPECT_COUNT);
  if (count == 0) return;
  setState(L.S_SUSPECT_COUNT, 0);
  if (count > <u32>L.SUSPECT_PAGES_MAX) {
    dropAllCode();
    return;
  }
  const pages = <u32>(ramSize >>> 12);
  for (let i: u32 = 0; i < count; i++) {
    const page = load<u32>(R.HART_BASE + <usize>L.HART_STATE + <usize>L.S_SUSPECT_PAGES + (<usize>i << 2));
    if (page >= pages) continue;
    const entry = R.pagemapBase() + (<usize>page << 2);
    if (load<u32>(entry) != 0) dropCodePage(entry);
  }
}

function dropAllCode(): void {
  for (let i: u32 = 0; i < <u32>R.POOL_PAGES; i++) {
    const owner = load<i32>(R.poolOwnerBase() + (<usize>i << 2));
    if (owner >= 0) dropCodePage(R.pagemapBase() + (<usize>owner << 2));
  }
}

function fillTlb(tlb: usize, va: i64, paddr: i64, readable: bool, writable: bool, executable: bool): void {
  const vpn = va >>> 12;
  const e = tlb + (<usize>vpn & TLB_MASK) * R.TLB_ENTRY_SIZE;
  const pageWasm = ramWasmAddr(paddr & ~0xfff);
  const sameEntry = load<i64>(e + R.TLB_TAG_R) == vpn || load<i64>(e + R.TLB_TAG_W) == vpn || load<i64>(e + R.TLB_TAG_X) == vpn;
  if (!sameEntry) {
    store<i64>(e + R.TLB_TAG_R, TAG_INVALID);
    store<i64>(e + R.TLB_TAG_W, TAG_INVALID);
    store<i64>(e + R.TLB_TAG_X, TAG_INVALID);
  }
  store<i64>(e + R.TLB_ADDEND, <i64>pageWasm - (vpn << 12));
  if (readable) store<i64>(e + R.TLB_TAG_R, vpn);
  if (writable && !isWatchedPage(paddr) && load<u32>(pageMapEntry(paddr)) == 0 && writeTagAllowedByDirtyLog(<u32>((paddr - ramBase) >>> 12))) {
    const holders = holdersEntry(<u32>((paddr - ramBase) >>> 12));
    if (loadShared(holders) == 0) {
      if (PARALLEL_HARTS) {
        // A hart in another thread may start decoding the page right now (codePageFor): publish
        // the tag, then look again; either this sees its holder bit or its scan sees the tag.
        atomic.store<i64>(e + R.TLB_TAG_W, vpn);
        if (atomic.load<u32>(holders) != 0) atomic.store<i64>(e + R.TLB_TAG_W, TAG_INVALID);
      } else {
        store<i64>(e + R.TLB_TAG_W, vpn);
      }
    }
  }
  if (executable) store<i64>(e + R.TLB_TAG_X, vpn);
}

@inline function isWatchedPage(paddr: i64): bool {
  const page = paddr & ~0xfff;
  return watchHi > watchLo && page < watchHi && page + 0x1000 > watchLo;
}
@inline function pageMapEntry(paddr: i64): usize {
  return R.pagemapBase() + (<usize>((paddr - ramBase) >>> 12) << 2);
}

// ---- Translation -----------------------------------------------------------------------------

// Results of the last successful translation, for the TLB fill.
let leafReadable = false;
let leafWritable = false;
let leafExecutable = false;

const PTE_V: i64 = 1 << 0;
const PTE_R: i64 = 1 << 1;
const PTE_W: i64 = 1 << 2;
const PTE_X: i64 = 1 << 3;
const PTE_U: i64 = 1 << 4;
const PTE_A: i64 = 1 << 6;
const PTE_D: i64 = 1 << 7;
/** PTE bits 63:54: N (Svnapot), PBMT (Svpbmt) and reserved; none of those extensions is implemented. */
const PTE_RESERVED: i64 = 0x3ff << 54;
const PPN_MASK: i64 = (1 << 44) - 1;

const SATP_MODE_BARE: i64 = 0;
const SATP_MODE_SV39: i64 = 8;
const SATP_MODE_SV48: i64 = 9;
const SATP_MODE_SV57: i64 = 10;

function fault(access: i32, va: i64, pageFault: bool): i64 {
  if (pageFault) trapCause = access == ACCESS_FETCH ? CAUSE_FETCH_PAGE_FAULT : access == ACCESS_LOAD ? CAUSE_LOAD_PAGE_FAULT : CAUSE_STORE_PAGE_FAULT;
  else trapCause = access == ACCESS_FETCH ? CAUSE_FETCH_ACCESS : access == ACCESS_LOAD ? CAUSE_LOAD_ACCESS : CAUSE_STORE_ACCESS;
  trapTval = va;
  memFault = true;
  return -1;
}

/**
 * Translates va for an access of the given kind by the given effective privilege.
 * Returns the physical address, or -1 with memFault/trapCause/trapTval set.
 */
export function translate(va: i64, access: i32, effectivePriv: i32): i64 {
  leafReadable = true; leafWritable = true; leafExecutable = true;
  if (effectivePriv == PRIV_M) return va;
  const satp = getState(L.S_SATP);
  const mode = satp >>> 60;
  if (mode == SATP_MODE_BARE) return va;
  const levels: i32 = mode == SATP_MODE_SV39 ? 3 : mode == SATP_MODE_SV48 ? 4 : 5;
  const vaBits = 12 + 9 * levels;
  // The address must be the sign extension of its low vaBits bits (privileged ISA 10.3.2).
  if (((va << (64 - vaBits)) >> (64 - vaBits)) != va) return fault(access, va, true);
  const mstatus = getState(L.S_MSTATUS);
  let table = (satp & PPN_MASK) << 12;
  for (let level = levels - 1; level >= 0; level--) {
    const shift = 12 + 9 * level;
    const pteAddr = table + (((va >>> shift) & 0x1ff) << 3);
    if (!isRam(pteAddr)) return fault(access, va, false);
    const ptePtr = ramWasmAddr(pteAddr);
    let pte = load<i64>(ptePtr);
    if ((pte & PTE_V) == 0 || ((pte & PTE_R) == 0 && (pte & PTE_W) != 0) || (pte & PTE_RESERVED) != 0) {
      return fault(access, va, true);
    }
    if ((pte & (PTE_R | PTE_X)) == 0) { // pointer to the next level
      if (level == 0) return fault(access, va, true);
      table = ((pte >>> 10) & PPN_MASK) << 12;
      continue;
    }
    // Leaf: permission checks (privileged ISA 10.3.2 step 5).
    const isUserPage = (pte & PTE_U) != 0;
    if (effectivePriv == PRIV_U && !isUserPage) return fault(access, va, true);
    if (effectivePriv == PRIV_S && isUserPage && (access == ACCESS_FETCH || (mstatus & MSTATUS_SUM) == 0)) return fault(access, va, true);
    const readable = (pte & PTE_R) != 0 || ((mstatus & MSTATUS_MXR) != 0 && (pte & PTE_X) != 0);
    const writable = (pte & PTE_W) != 0;
    const executable = (pte & PTE_X) != 0;
    if (access == ACCESS_FETCH && !executable) return fault(access, va, true);
    if (access == ACCESS_LOAD && !readable) return fault(access, va, true);
    if (access == ACCESS_STORE && !writable) return fault(access, va, true);
    const ppn = (pte >>> 10) & PPN_MASK;
    const lowMask: i64 = (<i64>1 << (9 * level)) - 1;
    if ((ppn & lowMask) != 0) return fault(access, va, true); // misaligned superpage
    // Hardware A/D update (Svadu behaviour, as QEMU and Spike do).
    let wanted = PTE_A;
    if (access == ACCESS_STORE) wanted |= PTE_D;
    if ((pte & wanted) != wanted) {
      pte |= wanted;
      markDirtyPage(<u32>((pteAddr - ramBase) >>> 12));
      store<i64>(ptePtr, pte);
    }
    leafReadable = readable;
    leafWritable = writable && (pte & PTE_D) != 0;
    leafExecutable = executable;
    if (level > 0) superpagesCached = true;
    return (ppn << 12) | (va & ((<i64>1 << shift) - 1));
  }
  return fault(access, va, true);
}

@inline function currentPriv(): i32 { return <i32>getState(L.S_PRIV); }

/** The privilege loads and stores are checked against (MPRV, privileged ISA 3.1.6.3). */
export function dataPriv(): i32 {
  const priv = currentPriv();
  if (priv == PRIV_M) {
    const mstatus = getState(L.S_MSTATUS);
    if ((mstatus & MSTATUS_MPRV) != 0) return <i32>((mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
  }
  return priv;
}

// ---- Slow paths --------------------------------------------------------------------------------

function readRam(ptr: usize, size: i32): i64 {
  if (size == 8) return load<i64>(ptr);
  if (size == 4) return <i64>load<u32>(ptr);
  if (size == 2) return <i64>load<u16>(ptr);
  return <i64>load<u8>(ptr);
}
function writeRam(ptr: usize, size: i32, value: i64): void {
  if (size == 8) store<i64>(ptr, value);
  else if (size == 4) store<u32>(ptr, <u32>value);
  else if (size == 2) store<u16>(ptr, <u16>value);
  else store<u8>(ptr, <u8>value);
}

/** A physical load outside the fast path; value zero-extended. */
function loadPhysical(paddr: i64, size: i32, va: i64): i64 {
  if (isRam(paddr) && isRam(paddr + size - 1)) return readRam(ramWasmAddr(paddr), size);
  if ((paddr & (size - 1)) != 0) { fault(ACCESS_LOAD, va, false); return 0; }
  bumpCounter(L.S_MMIO_EXITS);
  runLimit = 0;
  if (hostMmioRead(<f64>paddr, size) != 0) { fault(ACCESS_LOAD, va, false); return 0; }
  const v = getState(L.S_MMIO_DATA);
  return size == 8 ? v : v & ((<i64>1 << (size * 8)) - 1);
}

function storePhysical(paddr: i64, size: i32, value: i64, va: i64): void {
  const watched = watchHi > watchLo && paddr < watchHi && paddr + size > watchLo;
  // A watched RAM page is marked too: whoever serves the MMIO exit may write it.
  if (isRam(paddr)) markDirtyPage(<u32>((paddr - ramBase) >>> 12));
  if (!watched && isRam(paddr) && isRam(paddr + size - 1)) {
    invalidateCodeAt(paddr, size);
    // The page still holds code: the write went to its data.
    if (load<u32>(pageMapEntry(paddr)) != 0) bumpCounter(L.S_CODE_PAGE_DATA_WRITES);
    writeRam(ramWasmAddr(paddr), size, value);
    notifyCodeHolders(paddr, size);
    return;
  }
  if ((paddr & (size - 1)) != 0) { fault(ACCESS_STORE, va, false); return; }
  bumpCounter(L.S_MMIO_EXITS);
  runLimit = 0;
  setState(L.S_MMIO_DATA, value);
  if (hostMmioWrite(<f64>paddr, size) != 0) fault(ACCESS_STORE, va, false);
}

/** Load of `size` bytes at va after a TLB miss; returns the zero-extended value or sets memFault. */
export function loadSlow(va: i64, size: i32): i64 {
  if ((<u32>va & 0xfff) + <u32>size > 0x1000) return loadCrossPage(va, size);
  const priv = dataPriv();
  const paddr = translate(va, ACCESS_LOAD, priv);
  if (paddr == -1 && memFault) return 0;
  bumpCounter(L.S_TLB_MISSES);
  if (isRam(paddr)) fillTlb(dataTlb, va, paddr, leafReadable, leafWritable, leafExecutable);
  return loadPhysical(paddr, size, va);
}

function loadCrossPage(va: i64, size: i32): i64 {
  let value: i64 = 0;
  for (let i = 0; i < size; i++) {
    const byte = loadSlow(va + i, 1);
    if (memFault) return 0;
    value |= byte << (i * 8);
  }
  return value;
}

/** Store of `size` bytes at va after a TLB miss; sets memFault on an exception. */
export function storeSlow(va: i64, size: i32, value: i64): void {
  const priv = dataPriv();
  if ((<u32>va & 0xfff) + <u32>size > 0x1000) {
    // Translate both pages before writing anything, so a fault on the second leaves memory untouched.
    const first = translate(va, ACCESS_STORE, priv);
    if (first == -1 && memFault) return;
    const secondVa = (va + size - 1) & ~0xfff;
    const second = translate(secondVa, ACCESS_STORE, priv);
    if (second == -1 && memFault) return;
    for (let i = 0; i < size; i++) {
      const byteVa = va + i;
      const paddr = byteVa < secondVa ? first + i : second + (byteVa - secondVa);
      storePhysical(paddr, 1, value >>> (i * 8), byteVa);
      if (memFault) return;
    }
    return;
  }
  const paddr = translate(va, ACCESS_STORE, priv);
  if (paddr == -1 && memFault) return;
  bumpCounter(L.S_TLB_MISSES);
  if (isRam(paddr)) {
    invalidateCodeAt(paddr, size);
    // Marked before the fill, so that the fill may grant the write tag at once.
    markDirtyPage(<u32>((paddr - ramBase) >>> 12));
    fillTlb(dataTlb, va, paddr, leafReadable, leafWritable, leafExecutable);
  }
  storePhysical(paddr, size, value, va);
}

/**
 * storeSlow for translated code: a store of `size` bytes at va within one page to RAM outside the
 * MMIO watch window. Returns false, having changed nothing the interpreter would not do the same
 * way (the walk's A/D bits), for anything else: a fault, MMIO, a page crossing.
 */
export function storeRamSlow(va: i64, size: i32, value: i64): bool {
  if ((<u32>va & 0xfff) + <u32>size > 0x1000) return false;
  const paddr = translate(va, ACCESS_STORE, dataPriv());
  if (paddr == -1 && memFault) {
    memFault = false;
    return false;
  }
  if (!isRam(paddr) || !isRam(paddr + size - 1) || (watchHi > watchLo && paddr < watchHi && paddr + size > watchLo)) return false;
  bumpCounter(L.S_TLB_MISSES);
  invalidateCodeAt(paddr, size);
  markDirtyPage(<u32>((paddr - ramBase) >>> 12));
  fillTlb(dataTlb, va, paddr, leafReadable, leafWritable, leafExecutable);
  storePhysical(paddr, size, value, va);
  return true;
}

/** Set by loadRamSlow when it did not perform the load (see there). */
export let ramLoadRefused = false;

/**
 * loadSlow for translated code: a load of `size` bytes at va within one page from RAM; returns
 * the zero-extended value and fills the TLB as loadSlow does. For anything else (a fault, MMIO, a
 * page crossing) it sets ramLoadRefused and changes nothing the interpreter would not do the same
 * way (the walk's A bit): the interpreter then performs the load, or takes the trap.
 */
export function loadRamSlow(va: i64, size: i32): i64 {
  ramLoadRefused = true;
  if ((<u32>va & 0xfff) + <u32>size > 0x1000) return 0;
  const paddr = translate(va, ACCESS_LOAD, dataPriv());
  if (paddr == -1 && memFault) {
    memFault = false;
    return 0;
  }
  if (!isRam(paddr) || !isRam(paddr + size - 1)) return 0;
  ramLoadRefused = false;
  bumpCounter(L.S_TLB_MISSES);
  fillTlb(dataTlb, va, paddr, leafReadable, leafWritable, leafExecutable);
  return readRam(ramWasmAddr(paddr), size);
}

/**
 * Translates va for an atomic read-modify-write (AMO, LR, SC) and returns the wasm address of
 * the location, or 0 with memFault set. Atomics need natural alignment and RAM.
 */
export function atomicAddress(va: i64, size: i32, isLoadReserved: bool): usize {
  if ((va & (size - 1)) != 0) {
    trapCause = isLoadReserved ? CAUSE_MISALIGNED_LOAD : 6; // store/AMO address misaligned
    trapTval = va;
    memFault = true;
    return 0;
  }
  const access = isLoadReserved ? ACCESS_LOAD : ACCESS_STORE;
  const paddr = translate(va, access, dataPriv());
  if (paddr == -1 && memFault) return 0;
  if (!isRam(paddr) || isWatchedPage(paddr)) { fault(access, va, false); return 0; }
  if (!isLoadReserved) {
    // AMOs and SCs (even one that fails: the set may only be larger than the pages written).
    markDirtyPage(<u32>((paddr - ramBase) >>> 12));
    invalidateCodeAt(paddr, size);
    if (load<u32>(pageMapEntry(paddr)) != 0) bumpCounter(L.S_CODE_PAGE_DATA_WRITES);
    // Before the write, unlike plain stores: see "Code written by other harts".
    notifyCodeHolders(paddr, size);
  }
  fillTlb(dataTlb, va, paddr, leafReadable, leafWritable, leafExecutable);
  return ramWasmAddr(paddr);
}

/** Physical address of an atomic's location (for the LR/SC reservation). */
export function wasmToPhysical(ptr: usize): i64 {
  return <i64>(ptr - R.RAM_WASM_BASE) + ramBase;
}

// ---- Decoded-code pool -------------------------------------------------------------------------

/**
 * A write of `size` bytes at paddr (within one page) is about to happen: drops the decoded code of
 * its RAM page if the write touches a chunk of it holding code (self-modifying code).
 */
@inline function invalidateCodeAt(paddr: i64, size: i32): void {
  const entry = pageMapEntry(paddr);
  const pool = load<u32>(entry);
  if (pool != 0) invalidateCodeChunks(entry, pool - 1, chunksOf(<u32>paddr & 0xfff, <u32>size));
}

function invalidateCodeChunks(entry: usize, poolIndex: u32, written: u64): void {
  if ((codeChunks(poolIndex) & written) != 0) dropCodePage(entry);
}

function dropCodePage(entry: usize): void {
  const poolIndex = load<u32>(entry) - 1;
  store<u32>(entry, 0);
  setCodeChunks(poolIndex, 0);
  clearHolder(<u32>((entry - R.pagemapBase()) >>> 2));
  store<i32>(R.poolOwnerBase() + (<usize>poolIndex << 2), -1);
  dropTranslation(poolIndex);
  bumpCounter(L.S_CODE_INVALIDATIONS);
  if (fetchBase == R.poolBase() + <usize>poolIndex * R.POOL_PAGE_SIZE) invalidateFetch();
}

/** Invalidates decoded code for RAM offsets [offset, offset + length) (host writes into RAM). */
export function invalidateRange(offset: u32, length: u32): void {
  invalidatePages(offset, length, true);
}

/**
 * Another thread (the host's I/O thread: DMA, loaders) wrote RAM offsets [offset, offset + length):
 * queues the pages for every hart holding code of them, touching nothing of this instance's own
 * hart (which may be running on another thread). The harts drop the code at their next run() or
 * FENCE.I, as for a store by another hart.
 */
export function queueHostWrite(offset: u32, length: u32): void {
  invalidatePages(offset, length, false);
}

/** Drops this hart's decoded code of the pages (when `own`) and queues them for the other holders. */
function invalidatePages(offset: u32, length: u32, own: bool): void {
  if (length == 0) return;
  markDirtyRange(offset, length);
  const first = offset >>> 12;
  const last = <u32>((<u64>offset + <u64>length - 1) >>> 12);
  const pages = <u32>(ramSize >>> 12);
  // The host wrote before calling: order that before reading who holds code (see notifyCodeHolders).
  if (PARALLEL_HARTS) atomic.fence();
  for (let page = first; page <= last && page < pages; page++) {
    // The bytes of [offset, offset + length) in this page.
    const start = page == first ? offset & 0xfff : 0;
    const end = page == last ? <u32>((<u64>offset + <u64>length - 1) & 0xfff) + 1 : 0x1000;
    const written = chunksOf(start, end - start);
    let holders: u32 = ~0;
    if (own) {
      const entry = R.pagemapBase() + (<usize>page << 2);
      const pool = load<u32>(entry);
      if (pool != 0) invalidateCodeChunks(entry, pool - 1, written);
      holders = ~MY_HOLDER_BIT;
    }
    holders = holdersOfWrittenCode(page, written, holders & loadShared(holdersEntry(page)));
    if (holders != 0) queueForHarts(page, holders, false);
  }
}

/** The pool page caching decoded instructions of a RAM page, allocated (and the page write-protected) on first use. */
function codePageFor(pageWasm: usize): usize {
  const ramPage = <u32>((pageWasm - R.RAM_WASM_BASE) >>> 12);
  const entry = R.pagemapBase() + (<usize>ramPage << 2);
  const existing = load<u32>(entry);
  if (existing != 0) return R.poolBase() + <usize>(existing - 1) * R.POOL_PAGE_SIZE;
  const index = poolNext;
  poolNext = (poolNext + 1) & (<u32>R.POOL_PAGES - 1);
  const ownerSlot = R.poolOwnerBase() + (<usize>index << 2);
  const previousOwner = load<i32>(ownerSlot);
  if (previousOwner >= 0) {
    store<u32>(R.pagemapBase() + (<usize>previousOwner << 2), 0);
    clearHolder(<u32>previousOwner);
  }
  dropTranslation(index);
  memory.fill(R.jitWantBase() + <usize>index * L.JIT_WANT_BYTES, 0, L.JIT_WANT_BYTES);
  const threshold = <i32>getState(L.S_JIT_THRESHOLD);
  store<i32>(R.jitHotBase() + (<usize>index << 2), threshold > 0 ? threshold : i32.MAX_VALUE);
  store<u32>(R.jitTriesBase() + (<usize>index << 2), 0);
  store<i32>(ownerSlot, ramPage);
  setCodeChunks(index, 0);
  store<u32>(entry, index + 1);
  const pool = R.poolBase() + <usize>index * R.POOL_PAGE_SIZE;
  memory.fill(pool, 0, R.POOL_PAGE_SIZE); // slot value 0 = OP_DECODE
  // Mark the page before decoding anything from it (decoding reads RAM lazily, later). When no
  // hart had code there, any hart (this one included) may hold a write tag for it; otherwise
  // none does, since write tags are granted only to pages without holders.
  if (setHolder(ramPage) == 0 && stripWriteTagsEverywhere(pageWasm) && PARALLEL_HARTS) recordSuspect(ramPage);
  bumpCounter(L.S_CODE_PAGES_DECODED);
  return pool;
}

/**
 * Instruction fetch after leaving the current code page: translates pc, selects the pool page
 * and returns the decode slot for pc, or 0 with memFault set. An instruction that straddles two
 * pages is decoded into crossPageSlot() on every execution instead of being cached.
 */
export function fetchSlow(pc: i64): usize {
  const vpn = pc >>> 12;
  const e = fetchTlb + (<usize>vpn & TLB_MASK) * R.TLB_ENTRY_SIZE;
  let pageWasm: usize;
  if (load<i64>(e + R.TLB_TAG_X) == vpn) {
    pageWasm = <usize>((vpn << 12) + load<i64>(e + R.TLB_ADDEND));
  } else {
    const paddr = translate(pc, ACCESS_FETCH, currentPriv());
    if (paddr == -1 && memFault) return 0;
    if (!isRam(paddr)) { fault(ACCESS_FETCH, pc, false); return 0; }
    fillTlb(fetchTlb, pc, paddr, leafReadable, leafWritable, true);
    pageWasm = ramWasmAddr(paddr & ~0xfff);
  }
  const pool = codePageFor(pageWasm);
  const offset = <usize>(pc & 0xfff);
  fetchTag = pc & ~0xfff;
  fetchBase = pool;
  fetchRam = pageWasm;
  const poolIndex = <u32>((pool - R.poolBase()) / R.POOL_PAGE_SIZE);
  // Control arrives in this page from elsewhere: a translation of it should have an entry here.
  const want = R.jitWantBase() + <usize>poolIndex * L.JIT_WANT_BYTES + (offset >> 4);
  store<u8>(want, <u8>(<u32>load<u8>(want) | (<u32>1 << <u32>((offset >> 1) & 7))));
  if ((getState(L.S_JIT_FLAGS) & L.JIT_FLAG_EAGER) != 0 && load<u32>(R.jitTriesBase() + (<usize>poolIndex << 2)) == 0) {
    requestTranslation(poolIndex, pc); // the host translates at once and installs before this returns
  }
  if (pc == bouncePc) {
    // The translated code stopped here for the interpreter: run the original instruction once.
    // At the page's last parcel too: a compressed instruction there is a block entry like any
    // other (a return point after a C.JALR at 0xffc, say), and without the bounce the fetch
    // would call its translation again, which would stop again, retiring nothing, forever. (An
    // instruction straddling the page end is decoded below on every execution, never translated.)
    bouncePc = -1;
    if (decodedOp(load<u32>(pool + (offset << D.DECODED_SLOT_SHIFT))) == OP_TRANSLATED && !straddlesPageEnd(pageWasm, offset)) {
      decodeIntoSlot(bounceSlot(), pc);
      bumpCounter(L.S_JIT_BOUNCES);
      return bounceSlot();
    }
  }
  if (straddlesPageEnd(pageWasm, offset)) {
    const nextVa = pc + 2;
    const nextPaddr = translate(nextVa, ACCESS_FETCH, currentPriv());
    if (nextPaddr == -1 && memFault) return 0;
    if (!isRam(nextPaddr)) { fault(ACCESS_FETCH, nextVa, false); return 0; }
    const high = <u32>load<u16>(ramWasmAddr(nextPaddr));
    crossPageRaw = <u32>load<u16>(pageWasm + 0xffe) | (high << 16);
    decode32(crossPageRaw);
    store<u32>(crossPageSlot(), decodedWord);
    store<i32>(crossPageSlot() + D.DECODED_IMM_OFFSET, decodedImm);
    fetchTag = -1; // the next instruction goes through here again
    return crossPageSlot();
  }
  return pool + (offset << D.DECODED_SLOT_SHIFT);
}

/** Whether the instruction at `offset` of the page at wasm address `pageWasm` continues on the next page. */
@inline function straddlesPageEnd(pageWasm: usize, offset: usize): bool {
  return offset == 0xffe && (<u32>load<u16>(pageWasm + 0xffe) & 3) == 3;
}

/** Decodes the instruction at pc of the current code page into its pool slot. */
export function decodeIntoSlot(slot: usize, pc: i64): void {
  const offset = <usize>(pc & 0xfff);
  // Marked before reading the bytes (see "Code chunks"); 4 bytes even when it turns out compressed.
  markCodeChunks(<u32>((fetchBase - R.poolBase()) / R.POOL_PAGE_SIZE), <u32>offset, 4);
  const low = <u32>load<u16>(fetchRam + offset);
  if ((low & 3) != 3) {
    decode16(low);
  } else if (offset == 0xffe) {
    decodedWord = OP_CROSSPAGE; // straddles the page end: fetchSlow decodes it on every execution
    decodedImm = 0;
  } else {
    decode32(low | (<u32>load<u16>(fetchRam + offset + 2) << 16));
  }
  store<u32>(slot, decodedWord);
  store<i32>(slot + D.DECODED_IMM_OFFSET, decodedImm);
}

export function setRunLimit(limit: i32): void { runLimit = limit; }
export function clearMemFault(): void { memFault = false; }


// ---- Translator bookkeeping ---------------------------------------------------------------------
//
// Per pool page: a countdown of taken branches (JIT_HOT) that asks the host for a translation when
// it reaches zero, the table index of the installed translation (JIT_FUNC), a generation number
// that changes whenever the pool page's content becomes invalid (JIT_GEN: translations compiled
// from an older generation are discarded at install), and the number of requests made (JIT_TRIES).

const MAX_REQUESTS: u32 = 16;

/** The page's decoded code is gone: so is its translation (which may be running right now). */
function dropTranslation(poolIndex: u32): void {
  const genSlot = R.jitGenBase() + (<usize>poolIndex << 2);
  store<u32>(genSlot, load<u32>(genSlot) + 1);
  const fnSlot = R.jitFuncBase() + (<usize>poolIndex << 2);
  if (load<u32>(fnSlot) == 0) return;
  store<u32>(fnSlot, 0);
  bumpCounter(L.S_JIT_DROPS);
  // Translated code that wrote its own page must not go on: it checks runLimit after slow paths.
  runLimit = 0;
  hostJitDropped(poolIndex);
}

/**
 * The hot countdown of a pool page ran out (or eager mode saw its first fetch): ask the host to
 * translate it. Later requests for the same page (paths the translation did not cover keep the
 * interpreter busy there) need exponentially more taken branches, and stop after MAX_REQUESTS.
 */
export function requestTranslation(poolIndex: u32, pc: i64): void {
  const hot = R.jitHotBase() + (<usize>poolIndex << 2);
  const threshold = <i32>getState(L.S_JIT_THRESHOLD);
  const triesSlot = R.jitTriesBase() + (<usize>poolIndex << 2);
  const tries = load<u32>(triesSlot) + 1;
  if (threshold <= 0 || tries > MAX_REQUESTS) {
    store<i32>(hot, i32.MAX_VALUE);
    return;
  }
  store<u32>(triesSlot, tries);
  // No further request until the host has dealt with this one (jitRearm).
  store<i32>(hot, i32.MAX_VALUE);
  bumpCounter(L.S_JIT_REQUESTS);
  hostJitRequest(poolIndex, <f64>pc);
}

/**
 * The host installed (or gave up on) a translation of the page: count down again, longer after
 * every request, so that code paths the translation does not cover yet get translated too.
 */
export function rearmTranslation(poolIndex: u32): void {
  const threshold = <i32>getState(L.S_JIT_THRESHOLD);
  const tries = load<u32>(R.jitTriesBase() + (<usize>poolIndex << 2));
  const next = <i64>threshold << <i64>tries;
  const hot = R.jitHotBase() + (<usize>poolIndex << 2);
  store<i32>(hot, threshold <= 0 || tries >= MAX_REQUESTS || next > <i64>i32.MAX_VALUE ? i32.MAX_VALUE : <i32>next);
}


// ---- Code chunks ----------------------------------------------------------------------------------
//
// A page may hold code and data side by side (firmware, bare-metal programs, older binaries). So
// that stores to the data do not throw away the code, each pool page records which 64-byte chunks
// of its RAM page hold code that this hart decoded (decodeIntoSlot, jitPredecode) or translated
// (jitMarkCode, for every instruction a translation covers, before it is compiled): a u64 mask in
// the hart's region (HART_CODE_CHUNKS), cleared when the pool page is dropped or reused. A store
// into the page drops its code (decoded slots and translation, as before) only when it touches a
// marked chunk; else it only counts (S_CODE_PAGE_DATA_WRITES). Such pages still get no write tag:
// their stores take the slow path, which checks the chunks. Instructions are marked as 4 bytes
// from their start even when compressed (a chunk too many costs a drop, never a missed write); an
// instruction straddling the page end is never cached (fetchSlow decodes it on every execution).
//
// Other harts and host writes (DMA) read the holder's mask too (holdersOfWrittenCode) and queue
// the page only for holders with code in the chunks written. Shared build: a hart marks a chunk
// (atomic OR) before it reads its bytes, and a writer reads the mask after its write and a full
// fence, so either the writer sees the mark or the decoder sees the new bytes, as for the holder
// bit. A mask read while its pool page changes owner belongs to a page the holder no longer holds
// code of, which needs no queueing either.

/** The chunks of a page that bytes [start, start + length) cover (length >= 1, within the page). */
@inline function chunksOf(start: u32, length: u32): u64 {
  const first = start >>> L.CODE_CHUNK_SHIFT;
  const count = ((start + length - 1) >>> L.CODE_CHUNK_SHIFT) - first + 1;
  const bits: u64 = count >= 64 ? ~(<u64>0) : (<u64>1 << <u64>count) - 1;
  return bits << <u64>first;
}

@inline function chunksSlot(hartBase: usize, poolIndex: u32): usize {
  return hartBase + <usize>L.HART_CODE_CHUNKS + (<usize>poolIndex << 3);
}

@inline function codeChunks(poolIndex: u32): u64 {
  return load<u64>(chunksSlot(R.HART_BASE, poolIndex));
}

@inline function setCodeChunks(poolIndex: u32, chunks: u64): void {
  if (PARALLEL_HARTS) atomic.store<u64>(chunksSlot(R.HART_BASE, poolIndex), chunks);
  else store<u64>(chunksSlot(R.HART_BASE, poolIndex), chunks);
}

/** Records that bytes [offset, offset + length) of pool page `poolIndex` hold code (clipped to the page). */
export function markCodeChunks(poolIndex: u32, offset: u32, length: u32): void {
  if (offset + length > 0x1000) length = 0x1000 - offset;
  const chunks = chunksOf(offset, length);
  const slot = chunksSlot(R.HART_BASE, poolIndex);
  if ((load<u64>(slot) & chunks) == chunks) return;
  if (PARALLEL_HARTS) atomic.or<u64>(slot, chunks);
  else store<u64>(slot, load<u64>(slot) | chunks);
}

/** Of `harts` (holders of RAM page `page`), those whose code there lies in the `written` chunks. */
function holdersOfWrittenCode(page: u32, written: u64, harts: u32): u32 {
  let result: u32 = 0;
  while (harts != 0) {
    const hart = <u32>ctz(harts);
    harts &= harts - 1;
    const base = R.hartBaseOf(hart);
    const entry = loadShared(base + <usize>L.HART_PAGEMAP + (<usize>page << 2));
    // No pool page (being dropped or not yet set): its code is gone or will be decoded afresh.
    if (entry == 0) continue;
    const slot = chunksSlot(base, entry - 1);
    const chunks = PARALLEL_HARTS ? atomic.load<u64>(slot) : load<u64>(slot);
    if ((chunks & written) != 0) result |= <u32>1 << hart;
  }
  return result;
}


// ---- Code written by other harts ------------------------------------------------------------------
//
// Each hart decodes and translates into a pool of its own, so a store by one hart (or DMA through
// one Cpu) must reach the code of the others. The code-holder map (shared, one u32 per RAM page,
// src/cpu/core-layout.ts) has bit h set while hart h has decoded code of the page; hart h alone
// sets and clears its bit, together with its own page map entry. Write tags are granted only to
// pages without holders, so a store to a page that any hart holds code of takes the slow path,
// and there, after writing, queues the page for every other holder (HART_CODE_QUEUE in that
// hart's region). A hart drains its queue, dropping those pages' decoded code and translations,
// on FENCE.I and at the start of every run(): so after a store and a FENCE.I ordered after it
// (through any synchronisation), the fencing hart decodes the page again and sees the store.
//
// Ordering between threads (shared build): a writer stores, then (full fence) reads the holder
// map; a hart starting to decode a page sets its bit (atomic read-modify-write), then reads RAM.
// Either the writer sees the bit and queues the page, or the decoder reads the new bytes.
// Known gaps: a store through a write tag that was read just before another hart stripped it
// (one instruction in flight at the moment another thread first decodes the page) goes
// unqueued; AMOs queue before they write, not after.
//
// Repeated stores to a held page (say, a whole page being cleared) would queue it again and
// again until the holder drains: a writer remembers what it queued, with the holder's count of
// completed drains read before queueing, and queues again only once that count moved. A queue
// that is full sets the holder's overflow flag instead: it then drops all its decoded code.

const MY_HOLDER_BIT: u32 = <u32>1 << R.HART_INDEX;
const CODE_QUEUE_MASK: u32 = <u32>L.CODE_QUEUE_ENTRIES - 1;

@inline function loadShared(p: usize): u32 { return PARALLEL_HARTS ? atomic.load<u32>(p) : load<u32>(p); }
@inline function storeShared(p: usize, v: u32): void {
  if (PARALLEL_HARTS) atomic.store<u32>(p, v);
  else store<u32>(p, v);
}
@inline function holdersEntry(ramPage: u32): usize { return R.CODE_HOLDERS_BASE + (<usize>ramPage << 2); }

/** Marks this hart as holding code of the page; returns the holders before. */
function setHolder(ramPage: u32): u32 {
  const p = holdersEntry(ramPage);
  if (PARALLEL_HARTS) return atomic.or<u32>(p, MY_HOLDER_BIT);
  const before = load<u32>(p);
  store<u32>(p, before | MY_HOLDER_BIT);
  return before;
}

function clearHolder(ramPage: u32): void {
  const p = holdersEntry(ramPage);
  if (PARALLEL_HARTS) atomic.and<u32>(p, ~MY_HOLDER_BIT);
  else store<u32>(p, load<u32>(p) & ~MY_HOLDER_BIT);
}

/** After this hart wrote `size` bytes of RAM at paddr: queues the page for the other harts holding code there. */
@inline function notifyCodeHolders(paddr: i64, size: i32): void {
  // The store above must be visible before the holder map is read (see above).
  if (PARALLEL_HARTS) atomic.fence();
  const page = <u32>((paddr - ramBase) >>> 12);
  const others = loadShared(holdersEntry(page)) & ~MY_HOLDER_BIT;
  if (others != 0) {
    const holders = holdersOfWrittenCode(page, chunksOf(<u32>paddr & 0xfff, <u32>size), others);
    if (holders != 0) queueForHarts(page, holders, true);
  }
}

function queueForHarts(page: u32, harts: u32, remember: bool): void {
  while (harts != 0) {
    const hart = <u32>ctz(harts);
    harts &= harts - 1;
    const queue = R.hartBaseOf(hart) + <usize>L.HART_CODE_QUEUE;
    const drains = loadShared(queue + L.CODE_QUEUE_DRAINS);
    const memo = R.codeQueuedMemoBase() + <usize>((page ^ (hart << 5)) & (<u32>L.CODE_QUEUED_MEMO_ENTRIES - 1)) * 12;
    if (remember && load<u32>(memo) == page && load<u32>(memo + 4) == hart && load<u32>(memo + 8) == drains) continue;
    pushCodeQueue(queue, page);
    if (remember) {
      store<u32>(memo, page);
      store<u32>(memo + 4, hart);
      store<u32>(memo + 8, drains);
    }
  }
}

function pushCodeQueue(queue: usize, page: u32): void {
  while (true) {
    const tail = loadShared(queue + L.CODE_QUEUE_TAIL);
    const head = loadShared(queue + L.CODE_QUEUE_HEAD);
    if (tail - head >= <u32>L.CODE_QUEUE_ENTRIES) {
      storeShared(queue + L.CODE_QUEUE_OVERFLOW, 1);
      return;
    }
    if (PARALLEL_HARTS) {
      if (atomic.cmpxchg<u32>(queue + L.CODE_QUEUE_TAIL, tail, tail + 1) != tail) continue;
    } else {
      store<u32>(queue + L.CODE_QUEUE_TAIL, tail + 1);
    }
    // A slot reads 0 until written: the drain stops there and takes it next time.
    storeShared(queue + L.CODE_QUEUE_RING + (<usize>(tail & CODE_QUEUE_MASK) << 2), page + 1);
    return;
  }
}

/** FENCE.I, and the start of run(): drops the code other harts (or DMA) wrote since. */
@inline export function drainCodeQueue(): void {
  const queue = R.codeQueueBase();
  if (loadShared(queue + L.CODE_QUEUE_TAIL) != load<u32>(queue + L.CODE_QUEUE_HEAD) || loadShared(queue + L.CODE_QUEUE_OVERFLOW) != 0) {
    drainCodeQueueEntries(queue);
  }
}

function drainCodeQueueEntries(queue: usize): void {
  let took = false;
  if (loadShared(queue + L.CODE_QUEUE_OVERFLOW) != 0) {
    storeShared(queue + L.CODE_QUEUE_OVERFLOW, 0);
    dropAllCode();
    took = true;
  }
  const pages = <u32>(ramSize >>> 12);
  let head = load<u32>(queue + L.CODE_QUEUE_HEAD);
  const tail = loadShared(queue + L.CODE_QUEUE_TAIL);
  while (head != tail) {
    const slot = queue + L.CODE_QUEUE_RING + (<usize>(head & CODE_QUEUE_MASK) << 2);
    const entry = loadShared(slot);
    if (entry == 0) break; // reserved, not yet written
    storeShared(slot, 0);
    head++;
    storeShared(queue + L.CODE_QUEUE_HEAD, head);
    const page = entry - 1;
    if (page < pages) {
      const mapEntry = R.pagemapBase() + (<usize>page << 2);
      if (load<u32>(mapEntry) != 0) dropCodePage(mapEntry);
    }
    took = true;
  }
  // Counted once the pages are dropped: a writer that saw the old count knows its entry was not
  // consumed before its store (see queueForHarts).
  if (took) {
    if (PARALLEL_HARTS) atomic.add<u32>(queue + L.CODE_QUEUE_DRAINS, 1);
    else store<u32>(queue + L.CODE_QUEUE_DRAINS, load<u32>(queue + L.CODE_QUEUE_DRAINS) + 1);
  }
}


// ---- Dirty-page log ---------------------------------------------------------------------------------
//
// Live migration copies RAM while the guest runs, then again the pages written since, as KVM's
// dirty log: a bitmap with a bit per RAM page and an on/off word, shared by the machine's harts
// (src/cpu/core-layout.ts). While logging is on, fillTlb grants a write tag for a RAM page only
// if its dirty bit is already set; every RAM write that does not go through a write tag (slow-path
// stores, AMOs and SCs, the page-table walker's A/D updates) sets the page's bit BEFORE it writes,
// and host writes (DMA, loaders, steal-time records, balloon releases) set the bits of what they
// wrote when they report it (invalidatePages), that is after writing.
//
// The harvest (Cpu.exchangeDirtyBitmap, VirtMachine.takeDirtyPages) exchanges each bitmap word
// with 0, then makes every hart of the machine drop its write tags and waits until each hart that
// may be running acknowledged (a hart drops them between instructions, so no store through an old
// tag is in flight after its acknowledgement); the caller copies the harvested pages only after
// that. Why no write is lost:
// - a write tag was granted while the page's bit was set (fillTlb read it set), so the first
//   exchange after the grant reports the page, and that harvest's flush removes the tag: every
//   write through the tag happened before the acknowledgement, hence before that round's copy;
// - a write without a tag sets the bit before writing, and completes before its hart
//   acknowledges: either the exchange saw the bit (the page is copied after the write) or the
//   bit was set after the exchange (the page is in the next harvest);
// - a host write sets the bits after writing: an exchange that missed them precedes the marking,
//   and the page is in the next harvest, copied again then;
// - starting: the on word is set, then every hart drops its write tags (same wait), so tags
//   granted before logging (without a bit) are gone before the first copy of all of RAM ends.
// So after the guest stops, a final harvest and copy make the copy equal guest RAM. Stopping
// turns the word off: tags are granted freely again.

@inline function dirtyLogOn(): bool {
  return loadShared(R.DIRTY_LOG_BASE + <usize>L.DIRTY_LOG_ON) != 0;
}

/** fillTlb: while logging, only a page already marked dirty may get a write tag. */
@inline function writeTagAllowedByDirtyLog(ramPage: u32): bool {
  if (!dirtyLogOn()) return true;
  const word = R.DIRTY_LOG_BASE + <usize>L.DIRTY_LOG_BITMAP + (<usize>(ramPage >>> 5) << 2);
  return (loadShared(word) & (<u32>1 << (ramPage & 31))) != 0;
}

/**
 * Marks a RAM page dirty while logging is on (before a write that goes around write tags). A
 * hart's own marks count as dirty-page faults (S_DIRTY_FAULTS); the host's do not (its thread
 * does not own the hart's counters).
 */
function markDirtyPage(ramPage: u32, countFault: bool = true): void {
  if (!dirtyLogOn()) return;
  const word = R.DIRTY_LOG_BASE + <usize>L.DIRTY_LOG_BITMAP + (<usize>(ramPage >>> 5) << 2);
  const bit = <u32>1 << (ramPage & 31);
  if ((loadShared(word) & bit) != 0) return;
  let before: u32;
  if (PARALLEL_HARTS) before = atomic.or<u32>(word, bit);
  else {
    before = load<u32>(word);
    store<u32>(word, before | bit);
  }
  if (countFault && (before & bit) == 0) bumpCounter(L.S_DIRTY_FAULTS);
}

/** Marks the RAM pages of offsets [offset, offset + length) dirty while logging is on (host writes, after writing). */
export function markDirtyRange(offset: u32, length: u32): void {
  if (length == 0 || !dirtyLogOn()) return;
  const first = offset >>> 12;
  const last = <u32>((<u64>offset + <u64>length - 1) >>> 12);
  const pages = <u32>(ramSize >>> 12);
  for (let page = first; page <= last && page < pages; page++) markDirtyPage(page, false);
}

/** Drops every write tag of this hart's TLB (all contexts): the next store to each page takes the slow path. */
export function dropWriteTags(): void {
  const end = R.tlbBase() + TLB_CONTEXT_BYTES * R.TLB_CONTEXTS;
  for (let e = R.tlbBase(); e < end; e += R.TLB_ENTRY_SIZE) {
    if (PARALLEL_HARTS) atomic.store<i64>(e + R.TLB_TAG_W, TAG_INVALID);
    else store<i64>(e + R.TLB_TAG_W, TAG_INVALID);
  }
}
