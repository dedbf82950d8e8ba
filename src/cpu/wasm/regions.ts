// The layout's region addresses and TLB entry fields as pointer-typed constants for the engine (layout.ts itself
// must stay plain numbers so that TypeScript can share it).
import * as L from "../layout";

export const TLB_BASE: usize = L.TLB_BASE;
export const TLB_ENTRIES: usize = L.TLB_ENTRIES;
export const TLB_ENTRY_SIZE: usize = L.TLB_ENTRY_SIZE;
export const TLB_CONTEXTS: usize = L.TLB_CONTEXTS;
export const TLB_ENTRY_SHIFT: usize = L.TLB_ENTRY_SHIFT;
export const TLB_TAG_R: usize = L.TLB_TAG_R;
export const TLB_TAG_W: usize = L.TLB_TAG_W;
export const TLB_TAG_X: usize = L.TLB_TAG_X;
export const TLB_ADDEND: usize = L.TLB_ADDEND;
export const PAGEMAP_BASE: usize = L.PAGEMAP_BASE;
export const POOL_OWNER_BASE: usize = L.POOL_OWNER_BASE;
export const POOL_BASE: usize = L.POOL_BASE;
export const POOL_PAGES: usize = L.POOL_PAGES;
export const POOL_PAGE_SIZE: usize = L.POOL_PAGE_SIZE;
export const RAM_WASM_BASE: usize = L.RAM_WASM_BASE;
export const JIT_HOT_BASE: usize = L.JIT_HOT_BASE;
export const JIT_FUNC_BASE: usize = L.JIT_FUNC_BASE;
export const JIT_GEN_BASE: usize = L.JIT_GEN_BASE;
export const JIT_TRIES_BASE: usize = L.JIT_TRIES_BASE;
export const JIT_DECODE_BASE: usize = L.JIT_DECODE_BASE;
export const JIT_INSTALL_BASE: usize = L.JIT_INSTALL_BASE;
export const JIT_WANT_BASE: usize = L.JIT_WANT_BASE;
