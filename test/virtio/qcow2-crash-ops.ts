// The operations the crash test's writer performs, the same for the writer and the checker.
import { prng } from "../../src/testing/fakes.ts";

export const FLUSH_EVERY = 4;
export const OPS = 600;

export interface CrashOp {
  kind: "write" | "zeroes";
  offset: number;
  length: number;
  fill: number;
}

export function opsFor(seed: number, size: number): CrashOp[] {
  const random = prng(seed);
  const sectors = size / 512;
  const ops: CrashOp[] = [];
  for (let i = 0; i < OPS; i++) {
    const length = (1 + Math.floor(random() * 48)) * 512;
    const offset = Math.floor(random() * (sectors - length / 512)) * 512;
    ops.push({ kind: random() < 0.9 ? "write" : "zeroes", offset, length, fill: 1 + (i % 250) });
  }
  return ops;
}
