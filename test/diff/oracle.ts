// The QEMU side of the differential tests: builds oracle.c into a static riscv64 program (cached
// under cache/diff by content hash) and runs batches of cases in one qemu-riscv64 process each.
// See oracle.c for the batch format.
import { spawn, execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CACHE_DIR } from "../../src/image/toolchain.ts";
import * as L from "./layout.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCES = ["oracle.c", "oracle-entry.S"].map((f) => join(HERE, f));
const HEADER = join(HERE, "oracle-layout.h");
const COMPILER = "riscv64-linux-gnu-gcc";
/** --no-relax: no gp-relative addressing, since the signal handler runs with the code's gp. */
const FLAGS = ["-O2", "-static", "-Wall", "-Wextra", "-Werror", "-march=rv64gc", "-mabi=lp64d", "-Wl,--no-relax"];
const QEMU = "qemu-riscv64";

const MAGIC_IN = 0x31494450;
const MAGIC_OUT = 0x314f4450;
const STATE_BYTES = 8 * 65;
const RESULT_BYTES = 24 + STATE_BYTES + L.SCRATCH_SIZE;

export interface OracleCase {
  code: Uint8Array;
  init: L.MachineState;
}

export type RunResult =
  | { kind: "ok"; state: L.MachineState }
  | { kind: "trap"; detail: string };

/** Fails loudly when layout.ts and oracle-layout.h disagree (they describe the same addresses). */
function checkLayoutHeader(): void {
  const text = readFileSync(HEADER, "utf8");
  const defs = new Map<string, number>();
  for (const m of text.matchAll(/^#define\s+(\w+)\s+(0x[0-9a-fA-F]+|\d+)\s*$/gm)) defs.set(m[1], Number(m[2]));
  const expect: Record<string, number> = {
    CODE_BASE: L.CODE_BASE,
    CODE_MAX: L.CODE_MAX,
    SCRATCH: L.SCRATCH,
    SCRATCH_SIZE: L.SCRATCH_SIZE,
    SCRATCH_BASE_REG_VALUE: L.SCRATCH_BASE_REG_VALUE,
  };
  for (const [name, value] of Object.entries(expect)) {
    if (defs.get(name) !== value) throw new Error(`oracle-layout.h ${name} does not match layout.ts`);
  }
}

/** Builds the oracle if needed and returns the path of the static riscv64 executable. */
export async function buildOracle(): Promise<string> {
  checkLayoutHeader();
  const hash = createHash("sha256").update(COMPILER + "\0" + FLAGS.join("\0"));
  for (const file of [...SOURCES, HEADER]) hash.update(file.slice(HERE.length) + "\0").update(readFileSync(file));
  const outDir = join(CACHE_DIR, "diff");
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `oracle-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    await promisify(execFile)(COMPILER, [...FLAGS, `-I${HERE}`, ...SOURCES, "-o", tmp]);
  } catch (err: any) {
    if (err?.code === "ENOENT") throw new Error(`${COMPILER} not found: run \`npm run setup\``);
    throw new Error(`building the differential-test oracle failed:\n${err?.stderr ?? err}`);
  }
  renameSync(tmp, out);
  return out;
}

function writeState(dv: DataView, at: number, s: L.MachineState): number {
  for (let i = 0; i < 32; i++) dv.setBigUint64(at + i * 8, i === 0 ? 0n : s.x[i], true);
  for (let i = 0; i < 32; i++) dv.setBigUint64(at + 256 + i * 8, s.f[i], true);
  dv.setBigUint64(at + 512, BigInt(s.fcsr), true);
  return at + STATE_BYTES;
}

/** Serialises a batch (see oracle.c). */
export function encodeBatch(cases: readonly OracleCase[]): Uint8Array {
  let size = 8;
  for (const c of cases) size += 8 + c.code.length + STATE_BYTES + L.SCRATCH_SIZE;
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, MAGIC_IN, true);
  dv.setUint32(4, cases.length, true);
  let at = 8;
  for (const c of cases) {
    dv.setUint32(at, c.code.length, true);
    dv.setUint32(at + 4, 0, true);
    buf.set(c.code, at + 8);
    at = writeState(dv, at + 8 + c.code.length, c.init);
    buf.set(c.init.mem, at);
    at += L.SCRATCH_SIZE;
  }
  return buf;
}

const SIGNALS: Record<number, string> = { 4: "SIGILL", 5: "SIGTRAP", 7: "SIGBUS", 8: "SIGFPE", 11: "SIGSEGV" };

/** Parses the oracle's output for `count` cases. */
export function decodeResults(out: Uint8Array, count: number): RunResult[] {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (out.length !== 8 + count * RESULT_BYTES || dv.getUint32(0, true) !== MAGIC_OUT || dv.getUint32(4, true) !== count) {
    throw new Error(`oracle output malformed (${out.length} bytes for ${count} cases)`);
  }
  const results: RunResult[] = [];
  for (let i = 0, at = 8; i < count; i++, at += RESULT_BYTES) {
    if (dv.getUint32(at, true) !== 0) {
      const sig = dv.getUint32(at + 4, true);
      const pc = dv.getBigUint64(at + 8, true);
      const addr = dv.getBigUint64(at + 16, true);
      results.push({ kind: "trap", detail: `${SIGNALS[sig] ?? `signal ${sig}`} at pc 0x${pc.toString(16)}, addr 0x${addr.toString(16)}` });
      continue;
    }
    const s = at + 24;
    const x = Array.from({ length: 32 }, (_, r) => dv.getBigUint64(s + r * 8, true));
    const f = Array.from({ length: 32 }, (_, r) => dv.getBigUint64(s + 256 + r * 8, true));
    const fcsr = Number(dv.getBigUint64(s + 512, true));
    const mem = out.slice(s + STATE_BYTES, s + STATE_BYTES + L.SCRATCH_SIZE);
    results.push({ kind: "ok", state: { x, f, fcsr, mem } });
  }
  return results;
}

/** Runs a batch in one qemu-riscv64 process. */
export async function runOracle(binary: string, cases: readonly OracleCase[], timeoutMs = 60_000): Promise<RunResult[]> {
  if (cases.length === 0) return [];
  const input = encodeBatch(cases);
  const child = spawn(QEMU, [binary], { stdio: ["pipe", "pipe", "pipe"] });
  const chunks: Buffer[] = [];
  const errChunks: Buffer[] = [];
  child.stdout.on("data", (d: Buffer) => chunks.push(d));
  child.stderr.on("data", (d: Buffer) => errChunks.push(d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const exit = new Promise<number | null>((resolve, reject) => {
    child.on("error", (err: any) => reject(err?.code === "ENOENT" ? new Error(`${QEMU} not found: run \`npm run setup\``) : err));
    child.on("close", (code) => resolve(code));
  });
  child.stdin.on("error", () => {}); // a crashing oracle closes stdin early; the exit code reports it
  child.stdin.end(input);
  const code = await exit.finally(() => clearTimeout(timer));
  if (code !== 0) {
    throw new Error(`oracle exited with ${code ?? "a signal (timeout?)"}: ${Buffer.concat(errChunks).toString().trim()}`);
  }
  return decodeResults(new Uint8Array(Buffer.concat(chunks)), cases.length);
}
