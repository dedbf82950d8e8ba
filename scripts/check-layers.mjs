// Checks the import rules between Parley's layers (docs/ARCHITECTURE.md), as part of
// `npm run typecheck`. The compiler already refuses Node and DOM APIs in the machine core
// (tsconfig.core.json has neither's types); this adds what it cannot see: which folder may
// import which. Test files and test support may import anything.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Layer of a repository-relative path, by folder. */
export function layerOf(path) {
  const m = /^src\/(cpu|sbi|devices|virtio|platform|machine|host\/node|host\/web|web|image|vmm|cli|testing)\//.exec(path);
  if (m) return m[1];
  if (path.startsWith("bench/")) return "bench";
  if (path.startsWith("test/")) return "test";
  return "other";
}

const CORE = ["platform", "cpu", "sbi", "devices", "virtio", "machine"];

/** Which layers each layer may import (itself always). */
export const ALLOWED = {
  platform: [],
  cpu: ["platform"],
  sbi: ["platform", "cpu"],
  devices: ["platform", "cpu"],
  virtio: ["platform", "cpu", "devices"],
  machine: ["platform", "cpu", "sbi", "devices", "virtio"],
  "host/node": [...CORE],
  "host/web": [...CORE],
  web: [...CORE, "host/web"],
  image: [...CORE, "host/node"],
  vmm: [...CORE, "host/node", "image"],
  cli: [...CORE, "host/node", "image", "vmm"],
  bench: [...CORE, "host/node", "image", "vmm", "cli"],
};

const isTestCode = (path) => /\.test\.ts$/.test(path) || path.startsWith("test/") || path.startsWith("src/testing/") || /\/testing\//.test(path);

/** Violations in one file's source: imports of a layer it may not use, or of Node/npm in the core. */
export function checkFile(path, source) {
  const from = layerOf(path);
  if (isTestCode(path) || !(from in ALLOWED)) return [];
  const problems = [];
  const specs = [...source.matchAll(/(?:^|\s)(?:import|export)\s[^;]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|^import\s*["']([^"']+)["']/gm)];
  for (const m of specs) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec.startsWith(".")) {
      if (CORE.includes(from)) problems.push(`${path}: the machine core imports "${spec}" (no Node, DOM or npm modules in ${from}/; inject a host interface)`);
      continue;
    }
    const target = relative(ROOT_FOR_RESOLVE, resolve(ROOT_FOR_RESOLVE, dirname(path), spec));
    const to = layerOf(target);
    if (to === from) continue;
    if (isTestCode(target)) {
      problems.push(`${path}: imports test code ${target}`);
      continue;
    }
    if (!ALLOWED[from].includes(to)) problems.push(`${path}: ${from}/ may not import ${to}/ (${target})`);
  }
  return problems;
}

const ROOT_FOR_RESOLVE = "/";

function walk(dir, root, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name === "wasm") continue;
    const p = join(dir, entry.name);
    if (entry.isDirectory()) walk(p, root, out);
    else if (/\.(ts|mjs)$/.test(entry.name)) out.push(relative(root, p));
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ? resolve(process.argv[2]) : join(dirname(fileURLToPath(import.meta.url)), "..");
  const files = [...walk(join(root, "src"), root, []), ...walk(join(root, "bench"), root, [])];
  const problems = files.flatMap((f) => checkFile(f, readFileSync(join(root, f), "utf8")));
  for (const p of problems) console.error(`layers: ${p}`);
  if (problems.length) process.exit(1);
  console.log(`layers: ${files.length} files follow the import rules`);
}
