// The decoded form of an instruction, as the engine's decoder (src/cpu/wasm/decode.ts) writes it
// into the decoded-code pool and the translator (src/cpu/jit) reads it back. Shared by both
// languages like layout.ts: untyped integer constants below 2^31 only.
//
// A slot is 8 bytes: a 32-bit word and a 32-bit immediate. The word packs
//   op[7:0] rd[12:8] rs1[17:13] rs2[22:18] rs3[27:23] rm[30:28] compressed[31]
// Register fields hold architectural numbers (x or f by op); op is one of src/cpu/opcodes.ts.
export const DECODED_SLOT_SIZE = 8;
/** The immediate follows the word in a slot. */
export const DECODED_IMM_OFFSET = 4;
/** One slot per 2-byte parcel: a slot's address is the parcel's page offset times this. */
export const DECODED_SLOT_SHIFT = 2;

export const DECODED_OP_MASK = 0xff;
export const DECODED_RD_SHIFT = 8;
export const DECODED_RS1_SHIFT = 13;
export const DECODED_RS2_SHIFT = 18;
export const DECODED_RS3_SHIFT = 23;
/** Register fields are 5 bits wide. */
export const DECODED_REG_MASK = 31;
/** The FP rounding-mode field (3 bits; see RM_DYNAMIC in csr-numbers.ts). */
export const DECODED_RM_SHIFT = 28;
export const DECODED_RM_MASK = 7;
/** Set for a compressed (2-byte) encoding. */
export const DECODED_COMPRESSED_SHIFT = 31;
