// Instruction sequences as the generator builds them: items of one to a few instructions whose
// encodings may depend on where they end up (pc-relative forms), assembled into code bytes.
import * as E from "./encode.ts";

/** Where an instruction ends up, for encoders that depend on it (pc-relative forms). */
export interface PartContext {
  /** Offset of this instruction from the start of the code. */
  pc: number;
  /** Offset of the first instruction of the item. */
  itemPc: number;
  /** Offset of the item's branch target (the end of the code when the target is gone). */
  target: number;
}

export interface Part {
  size: 2 | 4;
  encode: (ctx: PartContext) => number;
}

/** An atomic run of instructions; shrinking deletes whole items. */
export interface Item {
  /** Increasing in sequence order; branch targets refer to ids. */
  id: number;
  kind: string;
  parts: Part[];
  /** Id of the item a branch/jump goes to; ids past the last item mean the end. */
  target?: number;
  /** Registers the item mentions, to print their initial values in a reproducer. */
  xs: number[];
  fs: number[];
  /** Scratch bytes it may access, as [offset from x31, size]. */
  mem: Array<[number, number]>;
}

/** Offsets of every item and the total size, resolving nothing yet. */
function itemOffsets(items: readonly Item[]): { offsets: number[]; end: number } {
  const offsets: number[] = [];
  let pc = 0;
  for (const item of items) {
    offsets.push(pc);
    for (const p of item.parts) pc += p.size;
  }
  return { offsets, end: pc };
}

/** The offset an item's target resolves to: the first remaining item at or after it, else the end. */
function resolveTarget(items: readonly Item[], offsets: readonly number[], end: number, target: number): number {
  for (let i = 0; i < items.length; i++) if (items[i].id >= target) return offsets[i];
  return end;
}

/** Encodes a sequence of items into little-endian code bytes. */
export function assemble(items: readonly Item[]): Uint8Array {
  const { offsets, end } = itemOffsets(items);
  const words: number[] = [];
  items.forEach((item, i) => {
    const target = item.target === undefined ? end : resolveTarget(items, offsets, end, item.target);
    let pc = offsets[i];
    for (const part of item.parts) {
      const w = part.encode({ pc, itemPc: offsets[i], target });
      if (E.insnSize(w) !== part.size) throw new Error(`item ${item.kind}: size mismatch`);
      words.push(w);
      pc += part.size;
    }
  });
  return E.toBytes(words);
}

/** Sign-extends the low 12 bits. */
function sext12(v: bigint): bigint {
  return BigInt.asIntN(12, v);
}

/** The instruction words of the usual `li rd, v` expansion (lui/addiw, then slli/addi steps). */
export function liSequence(rd: number, v: bigint): number[] {
  v = BigInt.asIntN(64, v);
  if (v >= -(1n << 31n) && v < 1n << 31n) {
    const lo = sext12(v);
    const hi = Number(BigInt.asUintN(20, (v - lo) >> 12n));
    if (hi === 0) return [E.aluImm("addi", rd, 0, Number(lo))];
    return lo === 0n ? [E.lui(rd, hi)] : [E.lui(rd, hi), E.addiw(rd, rd, Number(lo))];
  }
  const lo = sext12(v);
  let rest = (v - lo) >> 12n;
  let shift = 12;
  while ((rest & 1n) === 0n) {
    rest >>= 1n;
    shift++;
  }
  const out = [...liSequence(rd, rest), E.shiftImm("slli", rd, rd, shift)];
  if (lo !== 0n) out.push(E.aluImm("addi", rd, rd, Number(lo)));
  return out;
}
