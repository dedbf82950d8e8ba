// CSR numbers and privilege levels, shared by the execution engine (AssemblyScript, src/cpu/wasm),
// the translator and the host side (machines, tests). Like layout.ts, this file must stay valid
// in both languages: untyped integer constants below 2^31 only.

// Privilege levels (privileged ISA 1.2); also the encoding of S_PRIV and of a CSR number's
// bits 9:8, the lowest level that may access it (privileged ISA 2.1).
export const PRIV_U = 0;
export const PRIV_S = 1;
export const PRIV_M = 3;

// Floating-point CSRs (unprivileged ISA 13.2, "Floating-Point Control and Status Register").
export const CSR_FFLAGS = 0x001;
export const CSR_FRM = 0x002;
export const CSR_FCSR = 0x003;

// Unprivileged counters (unprivileged ISA 8.1, Zicntr).
export const CSR_CYCLE = 0xc00;
export const CSR_TIME = 0xc01;
export const CSR_INSTRET = 0xc02;
export const CSR_HPMCOUNTER3 = 0xc03;
export const CSR_HPMCOUNTER31 = 0xc1f;

// Supervisor-level CSRs (privileged ISA table 2.3; stimecmp: Sstc).
export const CSR_SSTATUS = 0x100;
export const CSR_SIE = 0x104;
export const CSR_STVEC = 0x105;
export const CSR_SCOUNTEREN = 0x106;
export const CSR_SENVCFG = 0x10a;
export const CSR_SSCRATCH = 0x140;
export const CSR_SEPC = 0x141;
export const CSR_SCAUSE = 0x142;
export const CSR_STVAL = 0x143;
export const CSR_SIP = 0x144;
export const CSR_STIMECMP = 0x14d;
export const CSR_SATP = 0x180;

// Machine-level CSRs (privileged ISA tables 2.4-2.5).
export const CSR_MVENDORID = 0xf11;
export const CSR_MARCHID = 0xf12;
export const CSR_MIMPID = 0xf13;
export const CSR_MHARTID = 0xf14;
export const CSR_MCONFIGPTR = 0xf15;
export const CSR_MSTATUS = 0x300;
export const CSR_MISA = 0x301;
export const CSR_MEDELEG = 0x302;
export const CSR_MIDELEG = 0x303;
export const CSR_MIE = 0x304;
export const CSR_MTVEC = 0x305;
export const CSR_MCOUNTEREN = 0x306;
export const CSR_MENVCFG = 0x30a;
/** menvcfg.STCE, bit 63 (Sstc: stimecmp drives STIP); a bit number, since the mask needs 64 bits. */
export const MENVCFG_STCE_BIT = 63;
export const CSR_MCOUNTINHIBIT = 0x320;
export const CSR_MHPMEVENT3 = 0x323;
export const CSR_MHPMEVENT31 = 0x33f;
export const CSR_MSCRATCH = 0x340;
export const CSR_MEPC = 0x341;
export const CSR_MCAUSE = 0x342;
export const CSR_MTVAL = 0x343;
export const CSR_MIP = 0x344;
export const CSR_PMPCFG0 = 0x3a0;
export const CSR_PMPCFG15 = 0x3af;
export const CSR_PMPADDR0 = 0x3b0;
export const CSR_PMPADDR63 = 0x3ef;
export const CSR_MCYCLE = 0xb00;
export const CSR_MINSTRET = 0xb02;
export const CSR_MHPMCOUNTER3 = 0xb03;
export const CSR_MHPMCOUNTER31 = 0xb1f;

// mstatus fields that fit below bit 31 (privileged ISA 3.1.6); the engine's full set with SD,
// UXL and SXL is in src/cpu/wasm/state.ts.
export const MSTATUS_FS = 3 << 13;
export const MSTATUS_FS_INITIAL = 1 << 13;
export const MSTATUS_FS_DIRTY = 3 << 13;

// fcsr fields (unprivileged ISA 13.2): fflags in bits 4:0, frm in bits 7:5.
export const FCSR_FFLAGS_MASK = 0x1f;
export const FCSR_FRM_SHIFT = 5;
export const FCSR_FRM_MASK = 7;
/** Rounding-mode field values 5 and 6 are reserved; 7 in an instruction means "use frm" (13.2). */
export const RM_MAX_VALID = 4;
export const RM_DYNAMIC = 7;
