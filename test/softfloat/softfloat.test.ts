// Differential test of src/cpu/wasm/softfloat.ts against real RISC-V floating point.
//
// The reference is test/softfloat/oracle.c, a static riscv64 Linux program run under
// qemu-riscv64 (QEMU's softfloat, which nobody here wrote). Seeded random vectors, biased
// towards special values and rounding edge cases, go through one oracle process (batched over
// stdin) and through the AssemblyScript module compiled by asc (harness.ts); results and
// fflags must match bit for bit.
//
// Besides the random vectors (spread over all 49 instructions by weight, each with a random
// rounding mode) every run includes fixed grids: all pairs of special values for the
// two-operand instructions, all triples of a smaller pool for fmadd, and a sweep of addend
// alignments around products with long zero runs (sticky-bit paths of fused multiply-add).
//
//   SOFTFLOAT_VECTORS=200000   number of random vectors (default 30000: CI sized, a few seconds)
//   SOFTFLOAT_SEED=1234        PRNG seed (default fixed, so failures reproduce)
//   SOFTFLOAT_STATS=1          print how often each flag was raised per instruction (coverage)
// The oracle binary is cached in cache/softfloat/oracle-<hash of source and flags>.elf.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { LINUX_TOOLCHAIN, needsHostTools } from "../support/host-tools.ts";

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CACHE_DIR = join(process.env.PARLEY_CACHE ?? join(ROOT, "cache"), "softfloat");
const ORACLE_SOURCE = join(ROOT, "test/softfloat/oracle.c");
const HARNESS_SOURCE = join(ROOT, "test/softfloat/harness.ts");
const COMPILER = "riscv64-linux-gnu-gcc";
const COMPILER_ARGS = ["-O2", "-static"];
const QEMU = "qemu-riscv64";

const VECTORS = Number(process.env.SOFTFLOAT_VECTORS ?? 30000);
const SEED = Number(process.env.SOFTFLOAT_SEED ?? 0x5eed1e55);

/** The module's public API; the test checks every name is exported. */
const API = [
  "sfTakeFlags",
  ...["f32", "f64"].flatMap((p) => [
    ...["add", "sub", "mul", "div", "sqrt", "mulAdd", "eq", "lt", "le", "min", "max", "classify"].map((n) => `${p}_${n}`),
    ...["i32", "u32", "i64", "u64"].flatMap((i) => [`${p}_to_${i}`, `${i}_to_${p}`]),
  ]),
  "f32_to_f64",
  "f64_to_f32",
];

// ---------------------------------------------------------------------------------------------
// Building the oracle and the harness

/** Compiles oracle.c into cache/softfloat, keyed by a hash of its source and flags. */
async function buildOracle(): Promise<string> {
  const hash = createHash("sha256")
    .update([COMPILER, ...COMPILER_ARGS].join("\0"))
    .update(readFileSync(ORACLE_SOURCE))
    .digest("hex")
    .slice(0, 16);
  mkdirSync(CACHE_DIR, { recursive: true });
  const out = join(CACHE_DIR, `oracle-${hash}.elf`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  await run(COMPILER, [...COMPILER_ARGS, "-o", tmp, ORACLE_SOURCE]);
  renameSync(tmp, out); // atomic, so a concurrent run never sees a partial file
  return out;
}

type Exports = Record<string, any>;

async function buildHarness(): Promise<Exports> {
  const dir = mkdtempSync(join(tmpdir(), "parley-softfloat-"));
  try {
    const wasmPath = join(dir, "harness.wasm");
    await run(
      process.execPath,
      [
        join(ROOT, "node_modules/assemblyscript/bin/asc.js"),
        HARNESS_SOURCE,
        "--outFile", wasmPath,
        "--runtime", "stub",
        "--optimizeLevel", "3",
        "--shrinkLevel", "0",
        "--noAssert",
      ],
      { cwd: ROOT, maxBuffer: 16 << 20 },
    );
    const module = await WebAssembly.compile(readFileSync(wasmPath));
    const instance = await WebAssembly.instantiate(module, {
      env: {
        abort() {
          throw new Error("softfloat harness aborted");
        },
      },
    });
    return instance.exports as Exports;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs all vectors through one qemu-riscv64 process; returns [result, flags] per vector. */
function runOracle(oracle: string, lines: string[]): Promise<Array<[bigint, number]>> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(QEMU, [oracle], { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`oracle exited with ${code}: ${Buffer.concat(err).toString()}`));
      const text = Buffer.concat(out).toString().trim();
      const rows = text === "" ? [] : text.split("\n");
      if (rows.length !== lines.length) {
        return reject(new Error(`oracle answered ${rows.length} of ${lines.length} vectors`));
      }
      const results: Array<[bigint, number]> = [];
      for (let i = 0; i < rows.length; i++) {
        const [r, f] = rows[i].split(" ");
        if (r === "error") return reject(new Error(`oracle rejected: ${lines[i]}`));
        results.push([BigInt("0x" + r), parseInt(f, 16)]);
      }
      resolvePromise(results);
    });
    child.stdin.end(lines.join("\n") + "\n");
  });
}

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (sfc32) and value generators

class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bits(n: number): bigint {
    let v = 0n;
    for (let got = 0; got < n; got += 32) v = (v << 32n) | BigInt(this.u32());
    return BigInt.asUintN(n, v);
  }
}

interface Format {
  suffix: "s" | "d";
  width: number;
  expBits: number;
  fracBits: number;
  bias: number;
  expMax: number; // all-ones exponent
}
const F32: Format = { suffix: "s", width: 32, expBits: 8, fracBits: 23, bias: 127, expMax: 255 };
const F64: Format = { suffix: "d", width: 64, expBits: 11, fracBits: 52, bias: 1023, expMax: 2047 };

const mask = (n: number) => (1n << BigInt(n)) - 1n;
const signBit = (f: Format) => 1n << BigInt(f.width - 1);
const expOf = (f: Format, v: bigint) => Number((v >> BigInt(f.fracBits)) & mask(f.expBits));
const fracOf = (f: Format, v: bigint) => v & mask(f.fracBits);
const pack = (f: Format, sign: number, exp: number, frac: bigint) =>
  (BigInt(sign) << BigInt(f.width - 1)) | (BigInt(exp) << BigInt(f.fracBits)) | (frac & mask(f.fracBits));

const view = new DataView(new ArrayBuffer(8));
function toNumber(f: Format, v: bigint): number {
  if (f.width === 32) {
    view.setUint32(0, Number(v));
    return view.getFloat32(0);
  }
  view.setBigUint64(0, v);
  return view.getFloat64(0);
}
/** Bits of x in format f (binary32 rounds to nearest even, which is all the generators need). */
function fromNumber(f: Format, x: number): bigint {
  if (f.width === 32) {
    view.setFloat32(0, x);
    return BigInt(view.getUint32(0));
  }
  view.setFloat64(0, x);
  return view.getBigUint64(0);
}

function specials(f: Format): bigint[] {
  const s = signBit(f);
  const q = 1n << BigInt(f.fracBits - 1); // quiet bit
  const inf = pack(f, 0, f.expMax, 0n);
  const one = pack(f, 0, f.bias, 0n);
  const values = [
    0n, // +0
    inf,
    inf | q, // canonical quiet NaN
    inf | q | 0x12345n, // quiet NaN with payload
    inf | 1n, // signalling NaNs
    inf | (q >> 1n),
    1n, // smallest subnormal
    mask(f.fracBits), // largest subnormal
    1n << BigInt(f.fracBits), // smallest normal
    pack(f, 0, f.expMax - 1, mask(f.fracBits)), // largest finite
    one,
    one - 1n, // 1 - ulp
    one + 1n, // 1 + ulp
    pack(f, 0, f.bias + 1, 0n), // 2
    pack(f, 0, f.bias - 1, 0n), // 0.5
    pack(f, 0, f.bias, q), // 1.5
    pack(f, 0, f.bias + 1, q), // 3
  ];
  return [...values, ...values.map((v) => v | s)];
}
const SPECIALS = { s: specials(F32), d: specials(F64) };
/** Smaller pool for the fused multiply-add grid: zeros, infinities, NaNs, a few finite values. */
function fmaSpecials(f: Format): bigint[] {
  const s = signBit(f);
  const inf = pack(f, 0, f.expMax, 0n);
  const values = [0n, inf, pack(f, 0, f.bias, 0n), 1n, pack(f, 0, f.expMax - 1, mask(f.fracBits))];
  return [...values, ...values.map((v) => v | s), inf | (1n << BigInt(f.fracBits - 1)), inf | 1n];
}
const FMA_SPECIALS = { s: fmaSpecials(F32), d: fmaSpecials(F64) };

function randomFraction(rng: Rng, f: Format): bigint {
  switch (rng.int(7)) {
    case 0:
      return 0n;
    case 1:
      return mask(f.fracBits);
    case 2: {
      // a few set bits: exact results, ties, sticky bits in specific places
      let v = 0n;
      for (let i = rng.int(4); i >= 0; i--) v |= 1n << BigInt(rng.int(f.fracBits));
      return v;
    }
    case 3:
      // short significand (high bits only): products and quotients that are exact or tie
      return rng.bits(f.fracBits) & ~mask(f.fracBits - rng.int(f.fracBits + 1));
    case 4:
      // long runs of ones below a random point
      return (rng.bits(f.fracBits) | mask(rng.int(f.fracBits + 1))) & mask(f.fracBits);
    default:
      return rng.bits(f.fracBits);
  }
}

function randomExponent(rng: Rng, f: Format): number {
  const m = f.expMax;
  switch (rng.int(6)) {
    case 0:
      return rng.pick([0, 0, 1, 2, m - 1, m - 2, m, f.bias - 1, f.bias, f.bias + 1]);
    case 1: // near the bottom of the range (subnormal results)
      return rng.int(f.fracBits + 4);
    case 2: // near the top
      return m - 1 - rng.int(f.fracBits + 4);
    case 3: // around 1
      return f.bias - 8 + rng.int(17);
    default:
      return 1 + rng.int(m - 1);
  }
}

function randomFloat(rng: Rng, f: Format): bigint {
  const r = rng.int(10);
  if (r < 2) return rng.pick(SPECIALS[f.suffix]);
  if (r < 3) return rng.bits(f.width);
  let exp = randomExponent(rng, f);
  if (exp === f.expMax && rng.chance(0.7)) exp -= 1; // keep NaN/inf frequency moderate
  return pack(f, rng.int(2), exp, randomFraction(rng, f));
}

/** A value with exponent exp (clamped to the finite range) and a random fraction/sign. */
function withExponent(rng: Rng, f: Format, exp: number): bigint {
  exp = Math.max(0, Math.min(f.expMax - 1, exp));
  return pack(f, rng.int(2), exp, randomFraction(rng, f));
}

/** v moved by a few ulps (as an integer on the bit pattern), staying in the format. */
function nudge(rng: Rng, f: Format, v: bigint): bigint {
  return BigInt.asUintN(f.width, v + BigInt(rng.int(7) - 3));
}

/**
 * Operands whose exact result sits just at a rounding carry: a has an all-ones significand
 * and the other operand pushes the result to within a few ulps of the next power of two, so
 * rounding may carry into a new binade, into overflow (top binade) or out of tininess (the
 * subnormal/normal boundary, where tininess after rounding differs from before).
 */
function carryVector(rng: Rng, f: Format, op: string): Vector {
  const sign = rng.int(2);
  const ea = rng.pick([f.expMax - 1, f.expMax - 1, f.expMax - 2, 0, 1, 1, 2, randomExponent(rng, f)]);
  const ones = mask(f.fracBits) - BigInt(rng.int(3));
  const a = pack(f, sign, Math.min(ea, f.expMax - 1), ones);
  const small = () => (rng.chance(0.5) ? 0n : BigInt(rng.int(4)) << BigInt(rng.int(f.fracBits)));
  // a value around half an ulp of a (exponent fracBits + 1 below a's)
  const halfUlp = (s: number) => pack(f, s, Math.max(0, Math.max(ea, 1) - f.fracBits - 2 + rng.int(3)), small());
  switch (op) {
    case "fadd":
      return [a, halfUlp(sign), 0n];
    case "fsub":
      return [a, halfUlp(sign ^ 1), 0n];
    case "fmul": // a * (1 + k ulp) or a * (1 - k ulp / 2), scaled by a power of two
      return [a, pack(f, rng.int(2), f.bias + rng.int(3) - 1, small()), 0n];
    case "fdiv":
      return [a, pack(f, rng.int(2), f.bias + rng.int(3) - 1, rng.chance(0.5) ? small() : mask(f.fracBits) - small()), 0n];
    default: // fused: a * 1 + half ulp (or a * (1 + small) + small)
      return [a, pack(f, 0, f.bias, rng.chance(0.5) ? 0n : small()), halfUlp(rng.chance(0.8) ? sign : sign ^ 1)];
  }
}

/** Second operand for a two-operand arithmetic op, related to a in ways that hit edge cases. */
function partner(rng: Rng, f: Format, a: bigint, op: string): bigint {
  const ea = expOf(f, a);
  switch (rng.int(10)) {
    case 0:
      return a;
    case 1:
      return a ^ signBit(f); // exact cancellation / equal magnitude
    case 2:
      return nudge(rng, f, rng.chance(0.5) ? a : a ^ signBit(f));
    case 3: {
      // exponent close to a's: alignment shifts around the precision, half-ulp ties
      const d = rng.int(f.fracBits + 4);
      if (rng.chance(0.3)) return pack(f, rng.int(2), Math.max(0, ea - d), 0n); // power of two
      return withExponent(rng, f, ea - d);
    }
    case 4: {
      // product/quotient near the overflow or underflow threshold
      const target = rng.chance(0.5)
        ? f.expMax - 1 + rng.int(5) - 2
        : rng.int(f.fracBits + 6) - f.fracBits - 2;
      const eb = op === "fdiv" ? ea - target + f.bias : target - ea + f.bias;
      return withExponent(rng, f, eb);
    }
    default:
      return randomFloat(rng, f);
  }
}

/**
 * Significand pairs (A, B) whose exact product is 1 + h * 2^M: a lone lowest bit, then M - 1
 * zeros. When fused multiply-add aligns such a product far enough right, that lowest bit
 * survives only as a sticky bit while everything near the rounding position is zero, so the
 * sticky bit alone decides exactness and directed rounding; random operands essentially never
 * get there. B is the inverse of A modulo 2^M, which fits the precision for about one A in
 * 2^(M - precision); M = 42 (binary32) and 74 (binary64) leave a zero run covering the
 * product's alignment window and the rounding bits. Found offline with Python:
 *   a = random odd p-bit integer; b = pow(a, -1, 2**M); keep if b < 2**p
 */
const GAP_PAIRS: Record<"s" | "d", Array<[bigint, bigint]>> = {
  s: [
    [0xcf75d1n, 0x990331n],
    [0xf4bfcbn, 0xe1ede3n],
    [0xab19adn, 0x77b225n],
    [0xa02805n, 0x664cdn],
  ],
  d: [
    [0x1a41825d8575afn, 0xf620f3915014fn],
    [0x14a9961fee1713n, 0x102bbc697b4b1bn],
    [0x1318ccde26f4c1n, 0x17061cc5ab9b41n],
    [0x1f8bca30bea53dn, 0x6cd5bc9a95a15n],
  ],
};

/** A finite value with significand sig (any width up to the precision) and a random sign. */
function fromSignificand(rng: Rng, f: Format, sig: bigint, exp: number): bigint {
  while (sig < 1n << BigInt(f.fracBits)) sig <<= 1n;
  return pack(f, rng.int(2), exp, sig);
}

/**
 * Fused multiply-add vectors around each gap product, with the addend's exponent swept from
 * well above to well below the product (every alignment shift) and its lowest significand
 * bit clear, so that nothing but the product's lone low bit lands below the rounding point.
 */
function gapVectors(rng: Rng, f: Format): Vector[] {
  const vectors: Vector[] = [];
  for (const [sa, sb] of GAP_PAIRS[f.suffix]) {
    for (let offset = -f.fracBits - 8; offset <= 2 * f.fracBits + 40; offset++) {
      // addend significand: random, or all ones (so the sum carries into a new binade)
      for (const frac of [rng.chance(0.3) ? 0n : rng.bits(f.fracBits) & ~1n, mask(f.fracBits) - 1n]) {
        const ea = f.bias - 2 + rng.int(5);
        const eb = f.bias - 2 + rng.int(5);
        const c = pack(f, rng.int(2), ea + eb - f.bias + offset, frac);
        vectors.push([fromSignificand(rng, f, sa, ea), fromSignificand(rng, f, sb, eb), c]);
      }
    }
  }
  return vectors;
}

/** Addend for fused multiply-add: often cancels the product, partially or completely. */
function addend(rng: Rng, f: Format, a: bigint, b: bigint): bigint {
  const p = toNumber(f, a) * toNumber(f, b); // exact for binary32, RNE-rounded for binary64
  switch (rng.int(8)) {
    case 0:
    case 1: {
      if (!Number.isFinite(p)) break;
      const c = fromNumber(f, -p);
      return rng.chance(0.5) ? c : nudge(rng, f, c);
    }
    case 2: {
      if (!Number.isFinite(p) || p === 0) break;
      // far below the product (sticky bit) or around half an ulp of it
      const ep = expOf(f, fromNumber(f, p));
      return withExponent(rng, f, ep - f.fracBits - 3 + rng.int(6));
    }
    case 3: {
      if (!Number.isFinite(p) || p === 0) break;
      const ep = expOf(f, fromNumber(f, p));
      return withExponent(rng, f, ep + rng.int(f.fracBits + 4) - 2);
    }
    default:
      break;
  }
  return randomFloat(rng, f);
}

/** Floats near integer-conversion boundaries. */
function nearIntegerBoundary(rng: Rng, f: Format): bigint {
  if (rng.chance(0.2)) return randomFloat(rng, f);
  if (rng.chance(0.25)) {
    // random magnitude with an exponent around the integer range limits
    const e = f.bias + rng.pick([-2, -1, 0, 1, 22, 23, 24, 30, 31, 32, 33, 51, 52, 53, 62, 63, 64, 65]);
    return pack(f, rng.int(2), Math.min(e, f.expMax - 1), randomFraction(rng, f));
  }
  const base = rng.pick([0, 1, 2, 3, 2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64, 2 ** 24, 2 ** 53]);
  const offset = rng.pick([0, 0.5, -0.5, 0.25, -0.25, 0.75, -0.75, 1, -1, 1.5, -1.5, 2.5, 1e-9, -1e-9]);
  let x = base + offset;
  if (rng.chance(0.5)) x = -x;
  let v = fromNumber(f, x);
  if (rng.chance(0.4)) v = nudge(rng, f, v);
  return v;
}

/** Integers for int->float conversions: all widths, with bits around the rounding point. */
function randomInteger(rng: Rng, width: number, signed: boolean, f: Format): bigint {
  if (rng.chance(0.15)) {
    const edges = [0n, 1n, mask(width), mask(width) - 1n, 1n << BigInt(width - 1), mask(width - 1), mask(width - 1) + 2n];
    return rng.pick(edges);
  }
  const length = 1 + rng.int(width);
  let v = rng.bits(length) | (1n << BigInt(length - 1));
  const precision = f.fracBits + 1;
  if (length > precision && rng.chance(0.6)) {
    // set the bits below the rounding point to a tie, just below or just above it
    const low = length - precision;
    const tail = rng.pick([1n << BigInt(low - 1), (1n << BigInt(low - 1)) - 1n, (1n << BigInt(low - 1)) + 1n, 0n]);
    v = ((v >> BigInt(low)) << BigInt(low)) | (tail & mask(low));
  }
  if (signed && rng.chance(0.5)) v = BigInt.asUintN(width, -v);
  return v;
}

/** binary64 values whose rounding to binary32 is interesting. */
function narrowingCandidate(rng: Rng): bigint {
  if (rng.chance(0.25)) return randomFloat(rng, F64);
  const e32 = rng.chance(0.5) ? rng.int(300) - 170 : rng.pick([-150, -149, -127, -126, -125, 126, 127, 128]);
  let frac = rng.chance(0.2) ? mask(52) : rng.bits(52); // all ones: rounding carries a binade
  const low = mask(29);
  frac = (frac & ~low) | rng.pick([0n, 1n << 28n, (1n << 28n) - 1n, (1n << 28n) + 1n, rng.bits(29)]);
  return pack(F64, rng.int(2), Math.max(1, e32 + 1023), frac);
}

// ---------------------------------------------------------------------------------------------
// Operation table: oracle mnemonic, vector generator and the harness call

type Vector = [bigint, bigint, bigint];
interface Op {
  name: string;
  weight: number;
  gen: (rng: Rng) => Vector;
  call: (x: Exports, a: bigint, b: bigint, c: bigint, rm: number) => bigint;
  /** operands from the special-value pool are also tried exhaustively (all pairs, or all
   * triples from a smaller pool for fused multiply-add) */
  specialsGrid?: Format;
  ternary?: boolean;
}

const n32 = (v: bigint) => Number(v & 0xffffffffn); // wasm i32 parameters wrap like ToInt32
const u32 = (v: number) => BigInt(v >>> 0);
const u64 = (v: bigint) => BigInt.asUintN(64, v);

function formatOps(f: Format): Op[] {
  const s = f.suffix;
  const p = f.width === 32 ? "f32" : "f64";
  // operand in / result out for this format
  const arg = f.width === 32 ? (v: bigint): any => n32(v) : (v: bigint): any => v;
  const res = f.width === 32 ? (v: any) => u32(v) : (v: any) => u64(v);
  const ops: Op[] = [];
  for (const [mn, fn, weight] of [
    ["fadd", "add", 3],
    ["fsub", "sub", 2],
    ["fmul", "mul", 3],
    ["fdiv", "div", 3],
  ] as const) {
    ops.push({
      name: `${mn}.${s}`,
      weight,
      specialsGrid: f,
      gen: (rng) => {
        if (rng.chance(0.1)) return carryVector(rng, f, mn);
        const a = randomFloat(rng, f);
        return [a, partner(rng, f, a, mn), 0n];
      },
      call: (x, a, b, _c, rm) => res(x[`${p}_${fn}`](arg(a), arg(b), rm)),
    });
  }
  ops.push({
    name: `fsqrt.${s}`,
    weight: 2,
    gen: (rng) => {
      let a = randomFloat(rng, f);
      if (rng.chance(0.3)) {
        // exact squares and their neighbours
        const r = toNumber(f, pack(f, 0, randomExponent(rng, f), rng.bits(f.fracBits) & ~mask(f.fracBits - 10)));
        a = nudge(rng, f, fromNumber(f, r * r));
      }
      if (rng.chance(0.6)) a &= ~signBit(f);
      return [a, 0n, 0n];
    },
    call: (x, a, _b, _c, rm) => res(x[`${p}_sqrt`](arg(a), rm)),
  });
  for (const [mn, fn] of [
    ["fmadd", "mulAdd"],
    ["fmsub", "mulSub"],
    ["fnmsub", "negMulSub"],
    ["fnmadd", "negMulAdd"],
  ] as const) {
    ops.push({
      name: `${mn}.${s}`,
      weight: mn === "fmadd" ? 6 : 1,
      specialsGrid: mn === "fmadd" ? f : undefined,
      ternary: true,
      gen: (rng) => {
        if (rng.chance(0.1)) {
          const [a, b, c] = carryVector(rng, f, mn);
          return [a, b, mn === "fmsub" || mn === "fnmsub" ? c ^ signBit(f) : c];
        }
        const a = randomFloat(rng, f);
        const b = rng.chance(0.5) ? partner(rng, f, a, "fmul") : randomFloat(rng, f);
        let c = addend(rng, f, a, b);
        // the oracle instruction negates the addend (fmsub, fnmadd) or the product (fnmsub,
        // fnmadd); undo that in the generated addend so cancellations still happen
        if (mn === "fmsub" || mn === "fnmsub") c ^= signBit(f);
        return [a, b, c];
      },
      call: (x, a, b, c, rm) => res(x[`${p}_${fn}`](arg(a), arg(b), arg(c), rm)),
    });
  }
  for (const [mn, fn] of [
    ["feq", "eq"],
    ["flt", "lt"],
    ["fle", "le"],
    ["fmin", "min"],
    ["fmax", "max"],
  ] as const) {
    const narrow = fn === "eq" || fn === "lt" || fn === "le";
    ops.push({
      name: `${mn}.${s}`,
      weight: 1,
      specialsGrid: f,
      gen: (rng) => {
        const a = randomFloat(rng, f);
        return [a, partner(rng, f, a, mn), 0n];
      },
      call: (x, a, b) => (narrow ? u32(x[`${p}_${fn}`](arg(a), arg(b))) : res(x[`${p}_${fn}`](arg(a), arg(b)))),
    });
  }
  ops.push({
    name: `fclass.${s}`,
    weight: 1,
    gen: (rng) => [randomFloat(rng, f), 0n, 0n],
    call: (x, a) => u32(x[`${p}_classify`](arg(a))),
  });
  for (const [mn, int, wide] of [
    ["w", "i32", false],
    ["wu", "u32", false],
    ["l", "i64", true],
    ["lu", "u64", true],
  ] as const) {
    ops.push({
      name: `fcvt.${mn}.${s}`,
      weight: 2,
      gen: (rng) => [nearIntegerBoundary(rng, f), 0n, 0n],
      call: (x, a, _b, _c, rm) => (wide ? u64(x[`${p}_to_${int}`](arg(a), rm)) : u32(x[`${p}_to_${int}`](arg(a), rm))),
    });
    ops.push({
      name: `fcvt.${s}.${mn}`,
      weight: 2,
      gen: (rng) => [randomInteger(rng, wide ? 64 : 32, !mn.endsWith("u"), f), 0n, 0n],
      call: (x, a, _b, _c, rm) => res(x[`${int}_to_${p}`](wide ? a : n32(a), rm)),
    });
  }
  return ops;
}

const OPS: Op[] = [
  ...formatOps(F32),
  ...formatOps(F64),
  {
    name: "fcvt.d.s",
    weight: 1,
    gen: (rng) => [randomFloat(rng, F32), 0n, 0n],
    call: (x, a) => u64(x.f32_to_f64(n32(a))),
  },
  {
    name: "fcvt.s.d",
    weight: 3,
    gen: (rng) => [narrowingCandidate(rng), 0n, 0n],
    call: (x, a, _b, _c, rm) => u32(x.f64_to_f32(a, rm)),
  },
];

interface Case {
  op: Op;
  rm: number;
  a: bigint;
  b: bigint;
  c: bigint;
}

function generate(): Case[] {
  const rng = new Rng(SEED);
  const cases: Case[] = [];
  // Every pair from the special-value pool for the two-operand ops, rounding modes cycling.
  for (const op of OPS) {
    if (!op.specialsGrid) continue;
    let i = 0;
    if (op.ternary) {
      const pool = FMA_SPECIALS[op.specialsGrid.suffix];
      for (const a of pool) for (const b of pool) for (const c of pool) cases.push({ op, rm: i++ % 5, a, b, c });
    } else {
      const pool = SPECIALS[op.specialsGrid.suffix];
      for (const a of pool) for (const b of pool) cases.push({ op, rm: i++ % 5, a, b, c: 0n });
    }
  }
  // Sticky-bit alignment cases for fused multiply-add (see gapVectors).
  for (const op of OPS) {
    if (op.name !== "fmadd.s" && op.name !== "fmadd.d") continue;
    for (const [a, b, c] of gapVectors(rng, op.name.endsWith("s") ? F32 : F64)) {
      cases.push({ op, rm: rng.int(5), a, b, c });
    }
  }
  const totalWeight = OPS.reduce((sum, op) => sum + op.weight, 0);
  for (const op of OPS) {
    const count = Math.max(20, Math.round((VECTORS * op.weight) / totalWeight));
    for (let i = 0; i < count; i++) {
      const [a, b, c] = op.gen(rng);
      cases.push({ op, rm: rng.int(5), a, b, c });
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------

const RM_NAMES = ["rne", "rtz", "rdn", "rup", "rmm"];
const FLAG_NAMES = ["NX", "UF", "OF", "DZ", "NV"];
const hex = (v: bigint) => "0x" + v.toString(16);
const flagText = (f: number) => FLAG_NAMES.filter((_, i) => f & (1 << i)).join("|") || "-";

const tools = needsHostTools(...LINUX_TOOLCHAIN, "qemu-riscv64");

test("softfloat matches RISC-V floating point (qemu-riscv64)", { timeout: 300_000, skip: tools.skip }, async (t) => {
  tools.check();
  const [oracle, x] = await Promise.all([buildOracle(), buildHarness()]);

  await t.test("exports the whole API", () => {
    for (const name of API) assert.equal(typeof x[name], "function", `${name} is not exported`);
  });

  const cases = generate();
  const lines = cases.map((k) => `${k.op.name} ${k.rm} ${k.a.toString(16)} ${k.b.toString(16)} ${k.c.toString(16)}`);
  const expected = await runOracle(oracle, lines);
  t.diagnostic(`${cases.length} vectors, seed ${SEED}`);

  if (process.env.SOFTFLOAT_STATS) {
    const stats = new Map<string, number[]>();
    cases.forEach((k, i) => {
      const row = stats.get(k.op.name) ?? [0, 0, 0, 0, 0, 0];
      stats.set(k.op.name, row);
      row[5]++;
      for (let b = 0; b < 5; b++) if (expected[i][1] & (1 << b)) row[b]++;
    });
    for (const [name, row] of stats) t.diagnostic(`${name.padEnd(10)} n=${row[5]} ${FLAG_NAMES.map((f, b) => `${f}=${row[b]}`).join(" ")}`);
  }
  const failures = new Map<string, string[]>();
  x.sfTakeFlags();
  for (let i = 0; i < cases.length; i++) {
    const k = cases[i];
    const result = k.op.call(x, k.a, k.b, k.c, k.rm);
    const flags = x.sfTakeFlags() >>> 0;
    const [want, wantFlags] = expected[i];
    if (result !== want || flags !== wantFlags) {
      const list = failures.get(k.op.name) ?? [];
      failures.set(k.op.name, list);
      list.push(
        `${k.op.name} ${RM_NAMES[k.rm]} a=${hex(k.a)} b=${hex(k.b)} c=${hex(k.c)}: ` +
          `qemu ${hex(want)} ${flagText(wantFlags)}, softfloat ${hex(result)} ${flagText(flags)}`,
      );
    }
  }

  for (const op of OPS) {
    await t.test(op.name, () => {
      const list = failures.get(op.name) ?? [];
      if (list.length) {
        assert.fail(
          `${list.length} mismatches (reproduce with SOFTFLOAT_SEED=${SEED} SOFTFLOAT_VECTORS=${VECTORS}):\n  ` +
            list.slice(0, 20).join("\n  "),
        );
      }
    });
  }
});
