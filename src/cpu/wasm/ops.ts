// Operation ids of decoded instructions: the shared list in src/cpu/opcodes.ts (the translator
// in src/cpu/jit uses the same numbers).
export * from "../opcodes";
