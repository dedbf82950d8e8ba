// The persistent translation cache (src/cpu/jit/translation-cache.ts, src/host/node/jit-cache.ts):
// entries round-trip; a second run of the same program installs translations from the cache and
// ends exactly as a run without it (and as the interpreter); entries that are truncated, corrupt,
// stored by another translator version or filed under another key are ignored and rewritten; a
// page whose bytes changed misses; bad --jit-cache values are refused with a clear message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, renameSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cpu, ExitReason, type CpuOptions } from "../../src/cpu/cpu.ts";
import { decodeTranslation, encodeTranslation, translationKey, type TranslationContext } from "../../src/cpu/jit/translation-cache.ts";
import { DirectoryTranslationCache, jitCacheFromFlag } from "../../src/host/node/jit-cache.ts";
import { ValType, writePaddedU32 } from "../../src/cpu/jit/wasm-emitter.ts";
import { FIRST_PAGE_FUNCTION } from "../../src/cpu/jit/frame.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { CSR_MSTATUS } from "../../src/cpu/csr-numbers.ts";
import { REPO_ROOT } from "../../src/host/node/paths.ts";
import { withTempDir } from "../support/temp-dir.ts";
import { SCRATCH, loadProgram, randomProgram } from "./programs.ts";

const SEED = 3;
const CONTEXT: TranslationContext = { hartBase: 0x10000, ramWasmBase: 0x100000, parallelHarts: false, memoryPages: 80, functionSize: 64, eager: false };

/** One run of random program `seed` to WFI; its end state and the translator's counters. */
function run(jit: CpuOptions["jit"], program = randomProgram(SEED)) {
  const cpu = new Cpu({ module: loadCoreModule(), ramSize: 4 << 20, jit });
  cpu.writeCsr(CSR_MSTATUS, 3n << 13n); // FS = Dirty: FP instructions allowed
  loadProgram(cpu, program, SEED);
  let reason: ExitReason | undefined;
  for (let i = 0; i < 100 && reason !== ExitReason.Wfi; i++) reason = cpu.run(1_000_000);
  assert.equal(reason, ExitReason.Wfi, "the program reaches WFI");
  const end = {
    pc: cpu.pc,
    instret: cpu.instret,
    x: Array.from({ length: 32 }, (_, i) => cpu.x(i)),
    f: Array.from({ length: 32 }, (_, i) => cpu.f(i)),
    scratch: cpu.readRam(SCRATCH, 8192),
  };
  for (const cache of flushAfterRun.splice(0)) cache.flush();
  return { end, counters: cpu.translatorCounters() };
}

const withCache = (cache: DirectoryTranslationCache) => {
  // Entries are written in the background; the next cache opened on the directory must see them.
  flushAfterRun.push(cache);
  return { threshold: 1, cache };
};
const flushAfterRun: DirectoryTranslationCache[] = [];
const entryFiles = (dir: string) => readdirSync(dir).filter((name) => name.endsWith(".pjc"));

test("a stored translation and a directory entry round-trip", async () => {
  // A call to the page's second function (index FIRST_PAGE_FUNCTION + 1) at body offset 1.
  const body = new Uint8Array([0x12, 0, 0, 0, 0, 0, 0x0b]);
  writePaddedU32(body, 1, FIRST_PAGE_FUNCTION + 1);
  const translation = {
    instructions: 7,
    covered: [0, 2, 6, 10],
    functions: [
      { entries: [0, 6, 0xffe], locals: [{ count: 3, type: ValType.i32 }], body, relocations: [1] },
      { entries: [], locals: [], body: new Uint8Array([1, 2, 3]), relocations: [] },
    ],
  };
  const encoded = encodeTranslation(translation);
  assert.deepEqual(decodeTranslation(encoded), translation);
  assert.equal(decodeTranslation(encoded.subarray(0, 30)), undefined, "truncated");
  const badCall = structuredClone(translation);
  writePaddedU32(badCall.functions[0].body, 1, FIRST_PAGE_FUNCTION + 2);
  assert.equal(decodeTranslation(encodeTranslation(badCall)), undefined, "a call outside the page's functions");
  await withTempDir("parley-jit-cache-", async (dir) => {
    const page = new Uint8Array(4096).fill(0x13);
    const key = translationKey("v1", CONTEXT, page);
    const cache = new DirectoryTranslationCache(dir, { version: "v1" });
    assert.equal(cache.get(key), undefined);
    assert.equal(cache.put(key, new Uint8Array([1, 2, 3])), 0);
    assert.deepEqual(cache.get(key), new Uint8Array([1, 2, 3]), "while queued");
    cache.flush();
    assert.deepEqual(cache.get(key), new Uint8Array([1, 2, 3]), "written");
    assert.deepEqual(new DirectoryTranslationCache(dir, { version: "v1" }).get(key), new Uint8Array([1, 2, 3]), "seen by a cache opened later");
    // Whatever the key depends on changes it: the page's bytes, the hart, the version.
    const other = (k: Uint8Array) => assert.equal(new DirectoryTranslationCache(dir, { version: "v1" }).get(k), undefined);
    other(translationKey("v1", CONTEXT, page.slice().fill(0x14, 100, 101)));
    other(translationKey("v1", { ...CONTEXT, hartBase: CONTEXT.hartBase + 0x40000 }, page));
    other(translationKey("v2", CONTEXT, page));
  });
});

test("the directory stays within its size bound, least recently used out first", async () => {
  await withTempDir("parley-jit-cache-", async (dir) => {
    const cache = new DirectoryTranslationCache(dir, { version: "v1", maxBytes: 50_000 });
    const keyOf = (i: number) => translationKey("v1", CONTEXT, new Uint8Array(4096).fill(i));
    let evicted = 0;
    for (let i = 0; i < 10; i++) {
      evicted += cache.put(keyOf(i), new Uint8Array(5000));
      cache.flush();
    }
    assert.ok(evicted > 0 && cache.evictions === evicted);
    assert.ok(entryFiles(dir).reduce((total, name) => total + readFileSync(join(dir, name)).length, 0) <= 50_000);
    assert.equal(cache.get(keyOf(0)), undefined, "the oldest went first");
    assert.ok(cache.get(keyOf(9)), "the newest stays");
  });
});

test("a warm run installs translations from the cache and ends as a cold run and the interpreter do", async () => {
  await withTempDir("parley-jit-cache-", async (dir) => {
    const reference = run(false);
    const cold = run(withCache(new DirectoryTranslationCache(dir)));
    assert.deepEqual(cold.end, reference.end);
    assert.equal(cold.counters!.cacheHits, 0);
    assert.ok(cold.counters!.cacheStores > 0, "the cold run stores its translations");
    const warm = run(withCache(new DirectoryTranslationCache(dir)));
    assert.deepEqual(warm.end, reference.end);
    assert.ok(warm.counters!.cacheHits > 0, "the warm run installs from the cache");
    assert.equal(warm.counters!.cacheRejected, 0);
    assert.ok(warm.counters!.pagesTranslated < cold.counters!.pagesTranslated, "and translates less");
  });
});

test("truncated, corrupt and foreign entries are ignored, and rewritten", async () => {
  await withTempDir("parley-jit-cache-", async (dir) => {
    const reference = run(false);
    run(withCache(new DirectoryTranslationCache(dir)));
    const files = entryFiles(dir);
    assert.ok(files.length >= 2);
    // One entry cut short, the others with a flipped byte in their module.
    truncateSync(join(dir, files[0]), 100);
    for (const name of files.slice(1)) {
      const bytes = readFileSync(join(dir, name));
      bytes[bytes.length - 40] ^= 0xff;
      writeFileSync(join(dir, name), bytes);
    }
    const cache = new DirectoryTranslationCache(dir);
    const damaged = run(withCache(cache));
    assert.deepEqual(damaged.end, reference.end);
    assert.equal(damaged.counters!.cacheHits, 0);
    assert.equal(cache.rejected, files.length, "every damaged entry refused");
    assert.ok(damaged.counters!.cacheStores > 0, "and stored again");
    assert.ok(run(withCache(new DirectoryTranslationCache(dir))).counters!.cacheHits > 0, "the rewritten entries are used");

    // Another translator's entries are never found, even filed under this translator's names.
    const foreign = new DirectoryTranslationCache(dir, { version: "another translator" });
    const other = run(withCache(foreign));
    assert.deepEqual(other.end, reference.end);
    assert.equal(other.counters!.cacheHits, 0);
    for (const name of entryFiles(dir)) renameSync(join(dir, name), join(dir, `${name}.moved`));
    const moved = readdirSync(dir).filter((name) => name.endsWith(".moved"));
    // Each entry now sits under another entry's name.
    moved.forEach((name, i) => renameSync(join(dir, name), join(dir, moved[(i + 1) % moved.length].replace(/\.moved$/, ""))));
    const shuffled = new DirectoryTranslationCache(dir);
    const misfiled = run(withCache(shuffled));
    assert.deepEqual(misfiled.end, reference.end);
    assert.equal(misfiled.counters!.cacheHits, 0);
    assert.ok(shuffled.rejected > 0);
  });
});

test("a page whose bytes changed misses the cache", async () => {
  await withTempDir("parley-jit-cache-", async (dir) => {
    const program = randomProgram(SEED);
    run(withCache(new DirectoryTranslationCache(dir)), program);
    // Another program (other bytes in every code page): nothing of the first one's may be used.
    const changed = randomProgram(SEED + 1);
    const warm = run(withCache(new DirectoryTranslationCache(dir)), changed);
    assert.equal(warm.counters!.cacheHits, 0);
    assert.ok(warm.counters!.cacheMisses > 0);
    assert.deepEqual(warm.end, run(false, changed).end);
  });
});

test("--jit-cache refuses what is not a usable directory, with the value in the message", async () => {
  assert.throws(() => jitCacheFromFlag(""), /--jit-cache: give a directory, or off/);
  assert.equal(jitCacheFromFlag("off"), undefined);
  await withTempDir("parley-jit-cache-", async (dir) => {
    const file = join(dir, "a-file");
    writeFileSync(file, "");
    assert.throws(() => jitCacheFromFlag(file), new RegExp(`--jit-cache ${file}: cannot keep translations there \\(not a directory\\)`));
    assert.throws(() => jitCacheFromFlag(join(file, "below")), /--jit-cache .*below: cannot keep translations there/);
    assert.ok(jitCacheFromFlag(join(dir, "new")) instanceof DirectoryTranslationCache, "a missing directory is created");
    // On the command line: a usage error (exit code 2) before anything boots.
    const cli = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), "run", "--jit-cache", file], { encoding: "utf8", cwd: REPO_ROOT });
    assert.equal(cli.status, 2, cli.stderr);
    assert.match(cli.stderr, /--jit-cache .*a-file: cannot keep translations there/);
  });
});
