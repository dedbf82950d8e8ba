// Builds the execution engine (AssemblyScript -> build/cpu.wasm) and the `parley` command
// (TypeScript -> dist/parley.mjs). Skips each step when its output is newer than its inputs.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const force = process.argv.includes("--force");

function newestMtime(dir, filter) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p, filter));
    else if (filter(p)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}
function upToDate(output, inputsMtime) {
  return !force && existsSync(output) && statSync(output).mtimeMs >= inputsMtime;
}

const isSource = (p) => p.endsWith(".ts") && !p.endsWith(".test.ts");
mkdirSync(join(root, "build"), { recursive: true });

const wasmInputs = Math.max(
  newestMtime(join(root, "src/cpu/wasm"), isSource),
  // Shared with the TypeScript side (untyped constants), compiled into the engine too.
  ...["layout.ts", "opcodes.ts", "decoded.ts", "csr-numbers.ts", "interrupts.ts"].map((f) => statSync(join(root, "src/cpu", f)).mtimeMs),
);
// Two builds of one source: the engine on a memory of its own (build/cpu.wasm), and on a shared
// memory that the harts of one machine, each on its own thread, use together
// (build/cpu-shared.wasm). A memory import matches only a memory of the same sharedness.
const engines = [
  { out: "build/cpu.wasm", wat: "build/cpu.wat", flags: [] },
  {
    out: "build/cpu-shared.wasm",
    wat: "build/cpu-shared.wat",
    // wasm32's whole 4 GiB: a machine's memory (src/cpu/core-layout.ts) may be any size up to it.
    flags: ["--sharedMemory", "--maximumMemory", "65536", "--enable", "threads"],
  },
];
for (const engine of engines) {
  const wasmOut = join(root, engine.out);
  if (upToDate(wasmOut, wasmInputs)) continue;
  console.log(`build: src/cpu/wasm -> ${engine.out} (AssemblyScript)`);
  execFileSync(
    process.execPath,
    [
      join(root, "scripts/asc.mjs"),
      "src/cpu/wasm/index.ts",
      "--outFile", engine.out,
      "--textFile", engine.wat,
      "--optimizeLevel", "3",
      "--shrinkLevel", "0",
      "--runtime", "stub",
      "--importMemory",
      // Translated code (src/cpu/jit) is called through this table (call_indirect in exec.ts).
      "--importTable",
      "--noAssert",
      "--memoryBase", "4096",
      "--enable", "bulk-memory",
      ...engine.flags,
    ],
    { cwd: root, stdio: "inherit" },
  );
  // The hot paths address the hart's state as base + small constant. Folding the constant into
  // the access's offset field saves V8 an add per access (about 2% of the interpreter's time);
  // Binaryen may do so only when addresses below 1 KiB are never used, which holds here: static
  // data starts at --memoryBase and the harts' regions at HARTS_BASE.
  execFileSync(
    join(root, "node_modules/binaryen/bin/wasm-opt"),
    [
      engine.out, "-o", engine.out,
      "--enable-bulk-memory", "--enable-sign-ext", "--enable-mutable-globals", "--enable-nontrapping-float-to-int",
      ...(engine.flags.includes("threads") ? ["--enable-threads"] : []),
      "--low-memory-unused", "--optimize-added-constants-propagate", "-O3",
    ],
    { cwd: root, stdio: "inherit" },
  );
  // The engine runs on AssemblyScript's stub runtime, whose allocator never frees: any
  // allocation in the engine would eventually grow into the first hart's region at HARTS_BASE.
  // Refuse it.
  const wat = readFileSync(join(root, engine.wat), "utf8");
  const allocations = [...new Set(wat.match(/call \$~lib\/rt\/[\w/]+/g) ?? [])];
  if (allocations.length) {
    rmSync(wasmOut);
    console.error(`build: the engine must not allocate at run time, but it calls ${allocations.join(", ")}`);
    console.error("build: hoist array literals to module level (static data) or use fixed memory regions");
    process.exit(1);
  }
}

// The command, the library, and the entry of the threads that run a machine's harts (one per hart, --cpus),
// which the command starts from beside itself (src/host/node/hart-threads.ts).
const bundles = [
  // `parley` is a small launcher that loads the command (parley-main.mjs) or starts it again with
  // V8's compiler threads sized for the harts (src/cli/launch.ts).
  { entry: "src/cli/launch.ts", out: "dist/parley.mjs", banner: { js: "#!/usr/bin/env node" }, external: ["./parley-main.mjs", "./main.ts"] },
  { entry: "src/cli/main.ts", out: "dist/parley-main.mjs" },
  { entry: "src/host/node/hart-worker.ts", out: "dist/hart-worker.mjs" },
  // The library: `import { Machine } from "parley"` (package.json "exports").
  { entry: "src/index.ts", out: "dist/index.mjs" },
];
const cliInputs = newestMtime(join(root, "src"), isSource);
for (const bundle of bundles) {
  const out = join(root, bundle.out);
  if (upToDate(out, cliInputs)) continue;
  console.log(`build: ${bundle.entry} -> ${bundle.out} (esbuild)`);
  const esbuild = await import("esbuild");
  await esbuild.build({
    entryPoints: [join(root, bundle.entry)],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    external: bundle.external,
    banner: bundle.banner,
    sourcemap: true,
    logLevel: "warning",
  });
}

// The web page (dist/web): `parley web` serves it, and a fresh clone's `npm ci` builds it too.
await import("./build-web.mjs");
