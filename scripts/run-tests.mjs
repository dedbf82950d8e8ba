// Runs every *.test.ts under src/ and test/ with Node's test runner (TypeScript through tsx).
// --unit limits the run to src/ (fast, no guest toolchain needed).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const unitOnly = process.argv.includes("--unit");
const filters = process.argv.slice(2).filter((a) => !a.startsWith("--"));

function find(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules") continue;
    const p = join(dir, entry.name);
    if (entry.isDirectory()) find(p, out);
    else if (entry.name.endsWith(".test.ts")) out.push(relative(root, p));
  }
  return out;
}
let files = find(join(root, "src"));
if (!unitOnly) files.push(...find(join(root, "test")));
if (filters.length) files = files.filter((f) => filters.some((flt) => f.includes(flt)));
files.sort();
const result = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...files], {
  cwd: root,
  stdio: "inherit",
});
process.exit(result.status ?? 1);
