// Interrupt numbers and their bits in mip/mie, shared by the execution engine (AssemblyScript,
// src/cpu/wasm) and the host side (devices raising interrupt lines, machines, the SBI). Like
// layout.ts, this file must stay valid in both languages: untyped integer constants only.

// Interrupt exception codes (privileged ISA 3.1.15, table 3.6), which are also the bit numbers
// of mip and mie (privileged ISA 3.1.9).
export const IRQ_SSI = 1; // supervisor software interrupt
export const IRQ_MSI = 3; // machine software interrupt
export const IRQ_STI = 5; // supervisor timer interrupt
export const IRQ_MTI = 7; // machine timer interrupt
export const IRQ_SEI = 9; // supervisor external interrupt
export const IRQ_MEI = 11; // machine external interrupt

// The pending bits in mip (and enable bits in mie), privileged ISA 3.1.9.
export const MIP_SSIP = 1 << IRQ_SSI;
export const MIP_MSIP = 1 << IRQ_MSI;
export const MIP_STIP = 1 << IRQ_STI;
export const MIP_MTIP = 1 << IRQ_MTI;
export const MIP_SEIP = 1 << IRQ_SEI;
export const MIP_MEIP = 1 << IRQ_MEI;
