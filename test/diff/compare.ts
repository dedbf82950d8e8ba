// Comparing QEMU's and Parley's final states, shrinking a failing case, and printing a
// reproducer a human can act on (seed, initial state, disassembly of the shrunk code).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assemble, type Item, type TestCase } from "./generate.ts";
import { CODE_BASE, SCRATCH_BASE_REG_VALUE, SCRATCH_LO, type MachineState } from "./layout.ts";
import type { RunResult } from "./oracle.ts";

const hex = (v: bigint | number, width = 16) => "0x" + v.toString(16).padStart(width, "0");

/** ABI names, to make register dumps readable next to objdump's output. */
const X_ABI = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
  "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"];
const F_ABI = ["ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2", "fa3", "fa4", "fa5",
  "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11", "ft8", "ft9", "ft10", "ft11"];
export const xName = (i: number) => `x${i}(${X_ABI[i]})`;
export const fName = (i: number) => `f${i}(${F_ABI[i]})`;

function fcsrText(v: number): string {
  return `${hex(v, 2)} (frm ${(v >> 5) & 7}, fflags ${hex(v & 31, 2)}${v >> 8 ? `, upper bits ${hex(v >> 8, 1)}` : ""})`;
}

/** Differences between the final states, as lines "what: qemu ... parley ..." (empty when equal). */
export function diffStates(qemu: MachineState, parley: MachineState): string[] {
  const out: string[] = [];
  for (let i = 1; i < 32; i++) {
    if (qemu.x[i] !== parley.x[i]) out.push(`${xName(i)}: qemu ${hex(qemu.x[i])} parley ${hex(parley.x[i])}`);
  }
  for (let i = 0; i < 32; i++) {
    if (qemu.f[i] !== parley.f[i]) out.push(`${fName(i)}: qemu ${hex(qemu.f[i])} parley ${hex(parley.f[i])}`);
  }
  if (qemu.fcsr !== parley.fcsr) out.push(`fcsr: qemu ${fcsrText(qemu.fcsr)} parley ${fcsrText(parley.fcsr)}`);
  for (const off of differingWords(qemu.mem, parley.mem)) {
    out.push(`mem[x31${signed(off + SCRATCH_LO)}]: qemu ${word(qemu.mem, off)} parley ${word(parley.mem, off)}`);
  }
  return out;
}

/** Offsets of the 8-byte-aligned words in which two buffers differ. */
function differingWords(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let off = 0; off < a.length; off += 8) {
    for (let i = off; i < off + 8; i++) {
      if (a[i] !== b[i]) {
        out.push(off);
        break;
      }
    }
  }
  return out;
}

/** The 8 bytes at off as a little-endian hex value. */
function word(mem: Uint8Array, off: number): string {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(mem[off + i]);
  return hex(v);
}

function signed(n: number): string {
  return n < 0 ? `-${-n}` : `+${n}`;
}

/** Why two runs disagree (empty when they agree). A trap on both sides is a generator bug. */
export function compareRuns(qemu: RunResult, parley: RunResult): string[] {
  if (qemu.kind === "trap" && parley.kind === "trap") {
    return [`both trapped (generator bug?): qemu ${qemu.detail}; parley ${parley.detail}`];
  }
  if (qemu.kind === "trap") return [`qemu trapped (${qemu.detail}) but parley completed`];
  if (parley.kind === "trap") return [`parley did not complete: ${parley.detail}`];
  return diffStates(qemu.state, parley.state);
}

// ---- shrinking ------------------------------------------------------------------------------

/** Runs candidate item lists from the case's initial state; true where they still mismatch. */
export type FailureCheck = (candidates: Item[][]) => Promise<boolean[]>;

/**
 * Deletes items while the mismatch persists (delta debugging: chunks of halving size; every
 * candidate of one chunk size runs in one batch, so one QEMU process per step).
 */
export async function shrinkItems(items: Item[], stillFails: FailureCheck): Promise<Item[]> {
  let current = items;
  let chunk = Math.max(1, current.length >> 1);
  for (;;) {
    const candidates: Item[][] = [];
    for (let at = 0; at < current.length; at += chunk) {
      candidates.push([...current.slice(0, at), ...current.slice(at + chunk)]);
    }
    const fails = candidates.length ? await stillFails(candidates) : [];
    const first = fails.indexOf(true);
    if (first >= 0) {
      current = candidates[first];
      chunk = Math.min(chunk, Math.max(1, current.length >> 1));
    } else if (chunk > 1) {
      chunk >>= 1;
    } else {
      return current;
    }
  }
}

// ---- reporting ------------------------------------------------------------------------------

/** objdump's disassembly of code placed at CODE_BASE, one line per instruction. */
export function disassemble(code: Uint8Array): string[] {
  if (code.length === 0) return ["(empty)"];
  const dir = mkdtempSync(join(tmpdir(), "parley-diff-"));
  try {
    const file = join(dir, "code.bin");
    writeFileSync(file, code);
    const text = execFileSync(
      "riscv64-linux-gnu-objdump",
      ["-D", "-b", "binary", "-m", "riscv:rv64", "-M", "numeric,no-aliases", `--adjust-vma=${hex(CODE_BASE, 1)}`, file],
      { encoding: "utf8" },
    );
    return text
      .split("\n")
      .filter((l) => /^\s*[0-9a-f]+:\t/.test(l))
      .map((l) => l.trim().replace(/\t/g, "  "));
  } catch {
    // Without objdump the raw bytes below still identify the code.
    return ["(riscv64-linux-gnu-objdump unavailable)"];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The initial values a reproducer needs: registers and scratch words the items mention. */
function describeInit(init: MachineState, items: readonly Item[]): string[] {
  const xs = new Set<number>();
  const fs = new Set<number>();
  const words = new Set<number>();
  for (const item of items) {
    item.xs.forEach((r) => xs.add(r));
    item.fs.forEach((r) => fs.add(r));
    for (const [off, size] of item.mem) {
      for (let a = off; a < off + size; a++) words.add(Math.floor((a - SCRATCH_LO) / 8) * 8);
    }
  }
  const lines: string[] = [];
  for (const r of [...xs].sort((a, b) => a - b)) {
    if (r !== 0) lines.push(`  ${xName(r).padEnd(9)} = ${hex(init.x[r])}${r === 31 ? " (scratch base)" : ""}`);
  }
  for (const r of [...fs].sort((a, b) => a - b)) lines.push(`  ${fName(r).padEnd(9)} = ${hex(init.f[r])}`);
  lines.push(`  fcsr      = ${fcsrText(init.fcsr)}`);
  for (const off of [...words].sort((a, b) => a - b)) {
    const addr = SCRATCH_BASE_REG_VALUE + off + SCRATCH_LO;
    lines.push(`  mem[${hex(addr, 8)}] (x31${signed(off + SCRATCH_LO)}) = ${word(init.mem, off)}`);
  }
  return lines;
}

export interface Reproducer {
  items: Item[];
  diffs: string[];
  text: string;
}

/** Formats a shrunk failing case. */
export function formatReproducer(tc: TestCase, originalCount: number, items: Item[], diffs: string[]): string {
  const code = assemble(items);
  const bytes = [...code].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  return [
    `MISMATCH group=${tc.group} seed=${tc.seed} case=${tc.index}`,
    `  replay: node --import tsx test/diff/explore.ts --seed ${tc.seed} --replay ${tc.group}:${tc.index}`,
    `shrunk from ${originalCount} to ${items.length} item(s), ${code.length} bytes at ${hex(CODE_BASE, 8)}:`,
    ...disassemble(code).map((l) => "  " + l),
    `code bytes: ${bytes}`,
    "initial state (what the code mentions; other registers are irrelevant):",
    ...describeInit(tc.init, items),
    "differences:",
    ...diffs.map((d) => "  " + d),
  ].join("\n");
}
