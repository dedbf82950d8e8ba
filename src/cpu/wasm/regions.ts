// Where this instance's hart region and the machine's guest RAM are: imported, immutable, so
// that the engine can compute every address as base + constant offset (layout.ts) and one
// compiled module serves every hart of a machine (src/cpu/core-layout.ts decides the bases).
// The offsets are re-exported pointer-typed (layout.ts itself must stay plain numbers so that
// TypeScript can share it).
import * as L from "../layout";

/** Wasm address of this hart's region. */
@external("env", "hartBase") export declare const HART_BASE: usize;
/** Wasm address of guest RAM (guest physical RAM_PHYS_BASE). */
@external("env", "ramWasmBase") export declare const RAM_WASM_BASE: usize;

/** This hart's index in the machine, the number of harts, and the bytes from one hart's region to the next. */
@external("env", "hartIndex") export declare const HART_INDEX: u32;
@external("env", "hartCount") export declare const HART_COUNT: u32;
@external("env", "hartStride") export declare const HART_STRIDE: usize;
/** Wasm address of the machine's code-holder map (src/cpu/core-layout.ts). */
@external("env", "codeHoldersBase") export declare const CODE_HOLDERS_BASE: usize;
/** Wasm address of the machine's dirty-page log (its on/off word, then the bitmap; layout.ts). */
@external("env", "dirtyLogBase") export declare const DIRTY_LOG_BASE: usize;

export const TLB_ENTRIES: usize = L.TLB_ENTRIES;
export const TLB_ENTRY_SIZE: usize = L.TLB_ENTRY_SIZE;
export const TLB_CONTEXTS: usize = L.TLB_CONTEXTS;
export const TLB_ENTRY_SHIFT: usize = L.TLB_ENTRY_SHIFT;
export const TLB_TAG_R: usize = L.TLB_TAG_R;
export const TLB_TAG_W: usize = L.TLB_TAG_W;
export const TLB_TAG_X: usize = L.TLB_TAG_X;
export const TLB_ADDEND: usize = L.TLB_ADDEND;
export const POOL_PAGES: usize = L.POOL_PAGES;
export const POOL_PAGE_SIZE: usize = L.POOL_PAGE_SIZE;

// This hart's regions (see layout.ts).
@inline export function tlbBase(): usize { return HART_BASE + <usize>L.HART_TLB; }
@inline export function pagemapBase(): usize { return HART_BASE + <usize>L.HART_PAGEMAP; }
@inline export function poolOwnerBase(): usize { return HART_BASE + <usize>L.HART_POOL_OWNER; }
@inline export function poolBase(): usize { return HART_BASE + <usize>L.HART_POOL; }
@inline export function jitHotBase(): usize { return HART_BASE + <usize>L.HART_JIT_HOT; }
@inline export function jitFuncBase(): usize { return HART_BASE + <usize>L.HART_JIT_FUNC; }
@inline export function jitGenBase(): usize { return HART_BASE + <usize>L.HART_JIT_GEN; }
@inline export function jitTriesBase(): usize { return HART_BASE + <usize>L.HART_JIT_TRIES; }
@inline export function jitDecodeBase(): usize { return HART_BASE + <usize>L.HART_JIT_DECODE; }
@inline export function jitInstallBase(): usize { return HART_BASE + <usize>L.HART_JIT_INSTALL; }
@inline export function jitWantBase(): usize { return HART_BASE + <usize>L.HART_JIT_WANT; }
@inline export function codeQueueBase(): usize { return HART_BASE + <usize>L.HART_CODE_QUEUE; }
@inline export function codeChunksBase(): usize { return HART_BASE + <usize>L.HART_CODE_CHUNKS; }
@inline export function codeQueuedMemoBase(): usize { return HART_BASE + <usize>L.HART_CODE_QUEUED_MEMO; }
/** Wasm address of hart `hart`'s region (any hart of the machine). */
@inline export function hartBaseOf(hart: u32): usize { return HART_BASE - <usize>HART_INDEX * HART_STRIDE + <usize>hart * HART_STRIDE; }
