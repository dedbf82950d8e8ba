// Differential test of Parley's CPU against QEMU user mode (qemu-riscv64): random RV64GC
// sequences must leave identical registers, fcsr and scratch memory on both.
//
// Deterministic by default (seed 1, 3,000 cases over all groups) so CI failures reproduce;
// DIFF_SEED and DIFF_CASES explore further. test/diff/explore.ts runs bigger campaigns.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/image/toolchain.ts";
import { LINUX_TOOLCHAIN, needsHostTools } from "../support/host-tools.ts";
import { shrinkItems } from "./compare.ts";
import { GROUPS, assemble, generateCase, type Item } from "./generate.ts";
import { buildOracle, runOracle } from "./oracle.ts";
import { runCampaign, summarize } from "./run.ts";

const SEED = Number(process.env.DIFF_SEED ?? 1);
const CASES = Number(process.env.DIFF_CASES ?? 3000);
const PER_GROUP = Math.ceil(CASES / GROUPS.length);
/** Reproducers printed per group; each costs a few QEMU runs to shrink. */
const REPORTS = Number(process.env.DIFF_REPORTS ?? 2);

const tools = needsHostTools("qemu-riscv64", ...LINUX_TOOLCHAIN);

describe("differential testing against qemu-riscv64", { skip: tools.skip }, () => {
  let oracle = "";
  before(async () => {
    tools.check();
    console.log(`diff: seed ${SEED} (DIFF_SEED), ${PER_GROUP} cases per group (DIFF_CASES=${CASES})`);
    oracle = await buildOracle();
  });

  test("shrinking keeps only the items the failure needs", async () => {
    const tc = generateCase(SEED, "mixed", 0);
    const culprit = tc.items[Math.floor(tc.items.length / 2)];
    const stillFails = async (cands: Item[][]) => cands.map((items) => items.includes(culprit));
    assert.deepEqual(await shrinkItems(tc.items, stillFails), [culprit]);
  });

  test("generated sequences run to the end under QEMU (no traps)", async () => {
    // A trap here is a generator bug: the sequence would not test anything useful.
    const cases = GROUPS.flatMap((g) => Array.from({ length: 20 }, (_, i) => generateCase(SEED, g, i)));
    const results = await runOracle(oracle, cases.map((tc) => ({ code: assemble(tc.items), init: tc.init })));
    const traps = results.flatMap((r, i) => (r.kind === "trap" ? [`${cases[i].group}:${cases[i].index}: ${r.detail}`] : []));
    assert.deepEqual(traps, []);
  });

  // Every sequence on both engines: the interpreter, and the translator translating each
  // sequence before its first instruction runs (eager), so that it runs translated code.
  for (const [engine, jit] of [["interpreter", "off"], ["translator", "eager"]] as const) {
    for (const group of GROUPS) {
      test(`${group}: ${PER_GROUP} sequences match (${engine})`, async () => {
        assert.ok(existsSync(join(REPO_ROOT, "build/cpu.wasm")), "build/cpu.wasm is missing: run `npm run build`");
        const result = await runCampaign({ seed: SEED, group, count: PER_GROUP, maxReports: REPORTS, jit, log: (t) => console.log(t) });
        const n = result.mismatches.length;
        if (n) {
          const reports = result.mismatches.flatMap((m) => (m.report ? [m.report] : []));
          assert.fail(`${n} of ${PER_GROUP} ${group} sequences differ (${engine}):\n${summarize(result.mismatches).join("\n")}\n\n${reports.join("\n\n")}`);
        }
        if (jit === "off") assert.equal(result.translated, 0n, "the interpreter alone ran");
        // What the translation leaves to the interpreter runs interpreted: system instructions,
        // the first access to each data page (a TLB miss), and the straight-line rest of the
        // sequence after such a bounce, up to the next entry. Still, a large share must be
        // translated for this to test the translator (about 45-90% per group).
        else assert.ok(result.translated * 3n > result.retired, `translated code retired only ${result.translated} of ${result.retired}`);
      });
    }
  }
});
