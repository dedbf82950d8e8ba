// Builds the web page (`npm run build:web`): src/web -> dist/web, a static site that any host can
// serve (with the cross-origin-isolation headers for several harts, see README):
//   index.html, style.css (xterm.js's stylesheet and the page's), main.js (the page),
//   machine-worker.js (the machine's I/O thread), hart-worker.js (a hart thread),
//   cpu.wasm and cpu-shared.wasm (the engine, from build/ — run `npm run build` first).
// Skips the bundles when they are newer than their inputs.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist/web");
const force = process.argv.includes("--force");

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (!entry.name.endsWith(".test.ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

mkdirSync(out, { recursive: true });
for (const engine of ["cpu.wasm", "cpu-shared.wasm"]) {
  const from = join(root, "build", engine);
  if (!existsSync(from)) {
    console.error(`build:web: ${from} is missing: run \`npm run build\` first`);
    process.exit(1);
  }
  copyFileSync(from, join(out, engine));
}

const inputs = Math.max(newestMtime(join(root, "src")), statSync(join(root, "package-lock.json")).mtimeMs, statSync(fileURLToPath(import.meta.url)).mtimeMs);
const entries = [
  { entry: "src/web/main.ts", out: "main.js" },
  { entry: "src/web/machine-worker.ts", out: "machine-worker.js" },
  { entry: "src/web/hart-worker.ts", out: "hart-worker.js" },
];
const stale = entries.filter((e) => force || !existsSync(join(out, e.out)) || statSync(join(out, e.out)).mtimeMs < inputs);
if (stale.length) {
  console.log(`build: src/web -> dist/web (${stale.map((e) => e.out).join(", ")}; esbuild)`);
  const esbuild = await import("esbuild");
  for (const bundle of stale) {
    await esbuild.build({
      entryPoints: [join(root, bundle.entry)],
      outfile: join(out, bundle.out),
      bundle: true,
      platform: "browser",
      format: "esm",
      target: "es2022",
      // Minified: the page's boot waits for these to load and parse (the source maps keep names).
      minify: true,
      sourcemap: true,
      logLevel: "warning",
    });
  }
}
copyFileSync(join(root, "src/web/index.html"), join(out, "index.html"));
// One stylesheet: the libraries' own (those installed), then the page's fragments, style.css last.
const vendorCss = ["node_modules/@xterm/xterm/css/xterm.css", "node_modules/uplot/dist/uPlot.min.css"].filter((f) => existsSync(join(root, f)));
const pageCss = readdirSync(join(root, "src/web"))
  .filter((f) => f.endsWith(".css") && f !== "style.css")
  .sort()
  .map((f) => `src/web/${f}`)
  .concat("src/web/style.css");
writeFileSync(join(out, "style.css"), [...vendorCss, ...pageCss].map((f) => `/* ${f} */\n${readFileSync(join(root, f), "utf8")}`).join("\n"));
