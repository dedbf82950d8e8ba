// The wasm linear-memory layout shared by the execution engine (AssemblyScript, src/cpu/wasm)
// and the TypeScript host side (src/cpu/cpu.ts). This file must stay valid in both languages:
// untyped integer constants below 2^31 only.
//
// Everything the core keeps lives at fixed offsets from its hart's base so that the hot path
// addresses it with constant displacements, and so that the host can read registers and
// counters without a call.

// ---- A hart's region -------------------------------------------------------------------
// Every hart has a region of its own (its state, TLB, decoded-code pool and translator
// bookkeeping); guest RAM, shared by all harts, follows the regions. Where each region and the
// RAM start is decided per machine at run time (src/cpu/core-layout.ts): the engine imports its
// hart's base and the RAM's wasm offset, and addresses everything below at a constant offset
// from them. The offsets are fixed so that the hot paths keep constant displacements.
/** Wasm addresses below the first hart's region hold the engine's static data. */
export const HARTS_BASE = 0x0010_0000;
/** Hart regions (and so guest RAM) start at multiples of this (a wasm page). */
export const HART_REGION_ALIGN = 0x0001_0000;
/** Guest RAM starts at a multiple of this in wasm memory (so hosts can give back whole huge pages). */
export const RAM_WASM_ALIGN = 0x0020_0000;

/** Hart state block: registers, pc, CSRs, exit mailbox, counters. */
export const HART_STATE = 0x0000_0000;
export const STATE_SIZE = 0x0001_0000;
/** Software TLB: TLB_CONTEXTS contexts x TLB_ENTRIES entries x TLB_ENTRY_SIZE bytes. */
export const HART_TLB = 0x0001_0000;
export const TLB_ENTRIES = 1024;
export const TLB_ENTRY_SIZE = 32;
export const TLB_CONTEXTS = 4;
/** log2(TLB_ENTRY_SIZE): an entry's address is its table's plus its index shifted by this. */
export const TLB_ENTRY_SHIFT = 5;
/**
 * A TLB entry's fields (src/cpu/wasm/mmu.ts fills them; the interpreter, the translated code and
 * the chaining function read them inline). One tag per access kind: the virtual page number
 * (va >>> 12) the entry maps when that kind of access is allowed, else -1 (no page has that
 * number), so a permission check is a single compare. Entry index = (va >>> 12) & (TLB_ENTRIES - 1).
 */
export const TLB_TAG_R = 0; // i64: tag for loads
export const TLB_TAG_W = 8; // i64: tag for stores (set only once the PTE's D bit is, the page holds no decoded code and, while dirty logging, the page is marked dirty)
export const TLB_TAG_X = 16; // i64: tag for instruction fetch
export const TLB_ADDEND = 24; // i64: wasm address minus virtual address of the page (its low 32 bits suffice)
/** Bits of a page offset (4 KiB pages, privileged ISA 12.3). */
export const PAGE_SHIFT = 12;
/** Per pool page: the guest-RAM page number it caches, or -1. */
export const HART_POOL_OWNER = 0x0003_0000;
/** Translator bookkeeping, one i32 per pool page each (see src/cpu/wasm/jit.ts). */
export const HART_JIT_HOT = 0x0003_4000; // countdown of taken branches until a translation request
export const HART_JIT_FUNC = 0x0003_8000; // 1 when the page has a translation installed
export const HART_JIT_GEN = 0x0003_c000; // bumped whenever the pool page changes owner or is dropped
export const HART_JIT_TRIES = 0x0004_0000; // translation requests made for the current owner
/** Scratch for the translator: a whole page decoded (2048 slots x 8 bytes), and install lists. */
export const HART_JIT_DECODE = 0x0004_4000;
export const HART_JIT_INSTALL = 0x0004_8000; // per entry: u32 page offset, u32 table index
/**
 * Per pool page, a bit per parcel: control arrived there from elsewhere (another page, or an exit
 * from translated code) although it is no block entry yet. Translations make these entries.
 */
export const HART_JIT_WANT = 0x0005_0000;
export const JIT_WANT_BYTES = 256;
/**
 * Pages whose decoded code this hart must drop because other harts (or DMA through another Cpu)
 * wrote them: a ring of RAM page numbers + 1 that any thread may append to, drained by this hart
 * on FENCE.I and at the start of every run() (src/cpu/wasm/mmu.ts, "Code written by other harts").
 */
export const HART_CODE_QUEUE = 0x0015_0000;
export const CODE_QUEUE_HEAD = 0; // u32: entries taken so far (written by this hart only)
export const CODE_QUEUE_TAIL = 4; // u32: entries reserved so far (any hart, compare-and-swap)
export const CODE_QUEUE_OVERFLOW = 8; // u32: non-zero when an entry did not fit: drop all decoded code
export const CODE_QUEUE_DRAINS = 12; // u32: drains that took something, so writers know an entry was consumed
export const CODE_QUEUE_RING = 0x40;
export const CODE_QUEUE_ENTRIES = 4096;
/** What this hart queued for others lately (page, hart, that hart's drain count), so repeated stores queue once. */
export const HART_CODE_QUEUED_MEMO = 0x0015_8000;
export const CODE_QUEUED_MEMO_ENTRIES = 64;
/**
 * Per pool page: a u64 bit mask of the page's 64-byte chunks (CODE_CHUNK_SHIFT) holding code this
 * hart decoded or translated. A store into the page drops that code only when it touches one of
 * those chunks, so data sharing a page with code can be written without losing the code
 * (src/cpu/wasm/mmu.ts, "Code chunks"). Other harts read it to decide whether to queue a page.
 */
export const HART_CODE_CHUNKS = 0x0016_0000;
/** log2 of a code chunk's size: 64 chunks of 64 bytes per 4 KiB page, one bit each in a u64. */
export const CODE_CHUNK_SHIFT = 6;
/** Taken off a page's hot countdown each time control misses an entry there (see HART_JIT_WANT). */
export const JIT_MISS_PENALTY = 16;
/** Decoded-instruction pool: POOL_PAGES pages of 2048 slots (one per 2-byte parcel) x 8 bytes. */
export const HART_POOL = 0x0020_0000;
export const POOL_PAGES = 4096;
export const POOL_PAGE_SIZE = 0x4000;
/**
 * Per guest-RAM page: index+1 of the decoded-code pool page caching it, 0 when none. Last in the
 * region: its size (4 bytes per RAM page) is the only one that depends on the machine.
 */
export const HART_PAGEMAP = 0x0420_0000;

// ---- State block offsets (bytes from the hart's base + HART_STATE); every slot is 8 bytes ------------------
export const S_X = 0x000; // x0..x31
export const S_F = 0x100; // f0..f31 (raw 64-bit, single precision NaN-boxed)
export const S_PC = 0x200;
export const S_PRIV = 0x208; // 0 = U, 1 = S, 3 = M
export const S_MSTATUS = 0x210;
export const S_MISA = 0x218;
export const S_MEDELEG = 0x220;
export const S_MIDELEG = 0x228;
export const S_MIE = 0x230;
export const S_MIP = 0x238;
export const S_MTVEC = 0x240;
export const S_MSCRATCH = 0x248;
export const S_MEPC = 0x250;
export const S_MCAUSE = 0x258;
export const S_MTVAL = 0x260;
export const S_STVEC = 0x268;
export const S_SSCRATCH = 0x270;
export const S_SEPC = 0x278;
export const S_SCAUSE = 0x280;
export const S_STVAL = 0x288;
export const S_SATP = 0x290;
export const S_MCOUNTEREN = 0x298;
export const S_SCOUNTEREN = 0x2a0;
export const S_MENVCFG = 0x2a8;
export const S_SENVCFG = 0x2b0;
export const S_STIMECMP = 0x2b8;
export const S_FCSR = 0x2c0; // fflags in bits 4:0, frm in bits 7:5
export const S_MINSTRET = 0x2c8; // instructions retired (exact)
export const S_MCYCLE_OFFSET = 0x2d0; // mcycle = minstret + offset (writes to mcycle adjust it)
export const S_MCOUNTINHIBIT = 0x2d8;
export const S_MHARTID = 0x2e0;
export const S_RESERVATION = 0x2e8; // LR reservation physical address, -1 when none
export const S_RESERVATION_VALUE = 0x2f0; // the value LR loaded (sign-extended for LR.W); SC compares against it
export const S_TIME = 0x2f8; // last mtime value read from the host (ticks)
export const S_PMPCFG = 0x300; // pmpcfg0, pmpcfg2, ... pmpcfg14 (8 slots)
export const S_PMPADDR = 0x340; // pmpaddr0..63 (64 slots)
export const S_TSELECT = 0x540;

// Configuration, written by the host before init().
export const S_RAM_PHYS_BASE = 0x600; // guest physical address of RAM
export const S_RAM_SIZE = 0x608; // bytes, multiple of 4096
export const S_FLAGS = 0x610; // CONFIG_* bits below
export const S_WATCH_LO = 0x618; // guest physical [lo, hi): stores here leave the core as MMIO
export const S_WATCH_HI = 0x620;
export const S_SLICE_INSNS = 0x628;
export const S_JIT_THRESHOLD = 0x630; // taken branches in a code page before it is translated; 0 = translator off
export const S_JIT_FLAGS = 0x638; // JIT_FLAG_* bits below
/**
 * Pause-loop exiting: run() returns EXIT_PAUSE once PAUSEs that follow each other within
 * PLE_GAP instructions have spanned this many instructions; 0 = off.
 */
export const S_PLE_WINDOW = 0x640;

// Shared with translated code (src/cpu/jit): read at every entry or after every slow path.
export const S_DATA_TLB = 0x680; // wasm address of the TLB table loads and stores use (i32)
export const S_JIT_STATUS = 0x688; // set by the jit* slow-path helpers: JIT_STATUS_* below (i32)
export const S_FETCH_TLB = 0x690; // wasm address of the TLB table instruction fetch uses (i32)

// Exit mailbox, shared with the imported host functions.
export const S_MMIO_DATA = 0x700; // value for mmioWrite, result of mmioRead
export const S_STOP_REQUEST = 0x708; // host sets non-zero inside an import to end run()
export const S_EXIT_REASON = 0x710;
export const S_LAST_TRAP_CAUSE = 0x718;

// Pages this hart started decoding while another hart held a write tag for them (see mmu.ts,
// "suspect pages"): dropped again at this hart's next FENCE.I. A u32 count, then u32 RAM pages.
export const S_SUSPECT_COUNT = 0x720;
export const S_SUSPECT_PAGES = 0x740;
export const SUSPECT_PAGES_MAX = 16;
/** The size (4 or 8) of the access the reservation (S_RESERVATION) was made by. */
export const S_RESERVATION_SIZE = 0x728;
/** The last WRS that parked the hart: 0 = WRS.NTO, 1 = WRS.STO. */
export const S_WRS_KIND = 0x730;

// Statistics, kept by the core.
export const S_TRAP_COUNTS = 0x800; // 64 slots: exception causes 0..31, interrupts 32..63
export const S_TLB_MISSES = 0xa00;
export const S_CODE_PAGES_DECODED = 0xa08;
export const S_CODE_INVALIDATIONS = 0xa10;
export const S_MMIO_EXITS = 0xa18;
export const S_ECALL_EXITS = 0xa20;
export const S_JIT_ENTRIES = 0xa28; // calls into translated code
export const S_JIT_REQUESTS = 0xa30; // translation requests made to the host
export const S_JIT_INSTALLS = 0xa38; // translations installed
export const S_JIT_DROPS = 0xa40; // translations dropped (code written, pool page reused)
export const S_JIT_BOUNCES = 0xa48; // block entries interpreted instead (budget, fault, system instruction)
export const S_JIT_RETIRED = 0xa50; // instructions retired by translated code
export const S_DIRTY_FAULTS = 0xa58; // stores that set a page's dirty bit while dirty logging was on
export const S_CODE_PAGE_DATA_WRITES = 0xa60; // writes into a page holding decoded code that missed its code chunks (nothing dropped)
export const S_JIT_CSR_ACCESSES = 0xa68; // CSR instructions translated code executed (through jitCsr)
export const S_JIT_CSR_EXITS = 0xa70; // ... after which it left for the interpreter (interrupt deliverable, satp or mstatus changed)

// ---- Dirty-page log (machine-wide, after the code-holder map: src/cpu/core-layout.ts) ----------
// For live migration, as KVM's dirty log: while the word at DIRTY_LOG_ON is non-zero, a write
// tag is granted only to RAM pages whose dirty bit is already set, and every RAM write that does
// not go through a write tag sets its page's bit first (src/cpu/wasm/mmu.ts, "Dirty-page log").
/** u32: non-zero while dirty logging is on. */
export const DIRTY_LOG_ON = 0;
/** The bitmap: a u32 per 32 RAM pages, bit (page & 31) of word (page >>> 5). */
export const DIRTY_LOG_BITMAP = 0x40;

// ---- Configuration flags (S_FLAGS) ------------------------------------------------------
/** Sstc: stimecmp exists and drives STIP when menvcfg.STCE is set. */
export const CONFIG_SSTC = 1;
/** ECALL from S-mode is served by the host (paravirtual SBI): calls the sbiCall import. */
export const CONFIG_SBI_IN_HOST = 2;

// ---- Translator (S_JIT_FLAGS, S_JIT_STATUS, translated-code return value) -----------------
/** Request a translation of every code page on its first execution (stress testing). */
export const JIT_FLAG_EAGER = 1;
/** Slow-path status: the access raised an exception; nothing was done. */
export const JIT_STATUS_FAULT = 1;
/** Slow-path status: the access was done but the core must regain control (MMIO, code written). */
export const JIT_STATUS_EXIT = 2;
/**
 * A translated function returns the number of instructions it retired, ORed with this flag
 * when it stopped in front of an instruction the interpreter must execute itself (even if that
 * instruction is a block entry of translated code).
 */
export const JIT_RET_INTERPRET = 0x4000_0000;

// ---- run() exit reasons ---------------------------------------------------------------
export const EXIT_BUDGET = 0; // the instruction budget ran out
export const EXIT_WFI = 1; // WFI with no interrupt pending: the hart is idle
export const EXIT_STOP = 2; // the host set S_STOP_REQUEST from an import
export const EXIT_WRS = 3; // WRS.NTO/STO with a valid reservation and no interrupt pending: wait on it
export const EXIT_PAUSE = 4; // a pause loop (see S_PLE_WINDOW): let another hart run

/** PAUSEs this many instructions apart or closer count as one spin loop (Intel's ple_gap, in instructions). */
export const PLE_GAP = 128;
