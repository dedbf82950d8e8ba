// Runs every *.test.ts under src/ and test/ with Node's test runner (TypeScript through tsx).
// --unit limits the run to src/ (fast, no guest toolchain needed). A whole run then runs the
// guest suites (boot, virtio) a second time with 4 harts.
//
// The runner's output goes to the terminal as usual; a second reporter tallies the results, and
// the closing line says how many tests passed, failed and were skipped. The exit code is non-zero
// on any failure and when no test ran at all (a run that tests nothing is not a pass).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
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
if (!unitOnly) files.push(...find(join(root, "test")), ...find(join(root, "bench")));
if (filters.length) files = files.filter((f) => filters.some((flt) => f.includes(flt)));
files.sort();
// The longest file starts first (the runner starts files in list order, two at a time): the Debian
// root disk's test builds the disk, minutes of one busy hart, while the other slot works through
// the rest. Last in line, it would hold the whole run up by its own length.
const LONG_FIRST = ["test/rootfs/"];
files = [...files.filter((f) => LONG_FIRST.some((p) => f.startsWith(p))), ...files.filter((f) => !LONG_FIRST.some((p) => f.startsWith(p)))];
if (files.length === 0) {
  console.error(`run-tests: no test file matches ${filters.join(" ") || "(all)"}`);
  process.exit(1);
}

/**
 * One pass of Node's test runner over `testFiles` with `env` added; returns its tally (passed,
 * failed, skipped, todo, failures) or undefined when the runner ended without one.
 */
function runPass(testFiles, env = {}) {
  const tallyDir = mkdtempSync(join(tmpdir(), "parley-tests-"));
  const tallyFile = join(tallyDir, "tally.json");
  const result = spawnSync(
    process.execPath,
    [
      "--import", "tsx", "--test", "--test-concurrency=2",
      "--test-reporter=spec", "--test-reporter-destination=stdout",
      `--test-reporter=${join(root, "scripts/test-tally.mjs")}`, `--test-reporter-destination=${tallyFile}`,
      ...testFiles,
    ],
    { cwd: root, stdio: "inherit", env: { ...process.env, ...env } },
  );
  try {
    return { ...JSON.parse(readFileSync(tallyFile, "utf8")), status: result.status };
  } catch {
    console.error(`run-tests: the test runner ended (status ${result.status ?? result.signal}) without a tally`);
    return undefined;
  } finally {
    rmSync(tallyDir, { recursive: true, force: true });
  }
}

const passes = [runPass(files)];
// The guest suites (boot, virtio) again with 4 harts, each on a thread of its own: every device
// and boot path must also work with several harts. Part of the whole run, not of filtered ones.
const SMP_SUITES = ["test/boot/boot.test.ts", "test/virtio/"];
if (!unitOnly && filters.length === 0) {
  const smpFiles = files.filter((f) => SMP_SUITES.some((suite) => f.startsWith(suite)));
  console.log(`run-tests: again with 4 harts (PARLEY_TEST_CPUS=4): ${smpFiles.join(" ")}`);
  passes.push(runPass(smpFiles, { PARLEY_TEST_CPUS: "4" }));
}
if (passes.some((tally) => tally === undefined)) process.exit(1);
const tally = { passed: 0, failed: 0, skipped: 0, todo: 0, failures: [] };
for (const [i, pass] of passes.entries()) {
  tally.passed += pass.passed;
  tally.failed += pass.failed;
  tally.skipped += pass.skipped;
  tally.todo += pass.todo ?? 0;
  tally.failures.push(...pass.failures.map((f) => (i === 0 ? f : `${f} (4 harts)`)));
}
for (const f of tally.failures) console.log(`failed: ${f}`);
const todo = tally.todo ? `, ${tally.todo} todo` : "";
console.log(`tests: ${tally.passed} passed, ${tally.failed} failed, ${tally.skipped} skipped${todo}`);
if (tally.passed === 0) console.error("run-tests: no test ran");
process.exit(tally.failed > 0 || tally.passed === 0 || passes.some((pass) => pass.status !== 0) ? 1 : 0);
