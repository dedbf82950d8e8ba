// Runs large differential campaigns outside the test runner, or replays one case.
//
//   node --import tsx test/diff/explore.ts --cases 100000 --seed 7 [--groups float,double] [--reports 5]
//   node --import tsx test/diff/explore.ts --seed 7 --replay float:1234     (shrink + print one case)
//   node --import tsx test/diff/explore.ts --seed 7 --replay-range float:1000-1234
//                                      (cases 1000..1234 in order on one core; diffs of the last)
//   node --import tsx test/diff/explore.ts --cases 5000 --qemu-only         (checks the generator:
//                                                         no generated case may trap under QEMU)
import { parseArgs } from "node:util";
import { GROUPS, assemble, generateCase, type Group, type TestCase } from "./generate.ts";
import { buildOracle, runOracle } from "./oracle.ts";
import { SafeParley, replayRange, reproduce, runCampaign, summarize } from "./run.ts";
import { compareRuns, formatReproducer } from "./compare.ts";
import { jitFromEnvironment } from "../../src/host/node/jit-environment.ts";

const { values } = parseArgs({
  options: {
    cases: { type: "string", default: "10000" },
    seed: { type: "string", default: "1" },
    groups: { type: "string", default: GROUPS.join(",") },
    reports: { type: "string", default: "5" },
    replay: { type: "string" },
    "replay-range": { type: "string" },
    "qemu-only": { type: "boolean", default: false },
  },
});

const seed = Number(values.seed);
/** The engine as PARLEY_JIT and its tuning knobs say (the translator by default). */
const jit = jitFromEnvironment();
const groups = values.groups!.split(",").map((g) => {
  if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`unknown group ${g} (groups: ${GROUPS.join(", ")})`);
  return g as Group;
});

async function replay(spec: string): Promise<void> {
  const [group, index] = spec.split(":");
  if (!(GROUPS as readonly string[]).includes(group)) throw new Error(`unknown group ${group}`);
  const tc = generateCase(seed, group as Group, Number(index));
  const oracle = await buildOracle();
  const code = assemble(tc.items);
  const [qemu] = await runOracle(oracle, [{ code, init: tc.init }]);
  const diffs = compareRuns(qemu, new SafeParley(jit).run(code, tc.init));
  if (diffs.length === 0) {
    console.log(formatReproducer(tc, tc.items.length, tc.items, ["(none: QEMU and Parley agree)"]));
    return;
  }
  console.log((await reproduce(oracle, tc, undefined, jit)).text);
}

/** Runs only the QEMU side: a trap there means the generator produced an invalid sequence. */
async function qemuOnly(count: number): Promise<number> {
  const oracle = await buildOracle();
  let bad = 0;
  for (const group of groups) {
    for (let start = 0; start < count; start += 500) {
      const cases: TestCase[] = [];
      for (let i = start; i < Math.min(count, start + 500); i++) cases.push(generateCase(seed, group, i));
      const results = await runOracle(oracle, cases.map((tc) => ({ code: assemble(tc.items), init: tc.init })));
      results.forEach((r, i) => {
        if (r.kind === "trap") {
          bad++;
          if (bad <= 5) console.log(formatReproducer(cases[i], cases[i].items.length, cases[i].items, [`qemu: ${r.detail}`]));
        }
      });
    }
    console.log(`${group}: ${count} cases run under QEMU`);
  }
  return bad;
}

async function main(): Promise<number> {
  if (values["replay-range"]) {
    const [group, range] = values["replay-range"].split(":");
    const [from, to] = range.split("-").map(Number);
    if (!(GROUPS as readonly string[]).includes(group)) throw new Error(`unknown group ${group}`);
    const diffs = await replayRange(seed, group as Group, from, to, jit);
    console.log(diffs.length ? diffs.join("\n") : `case ${to} agrees after cases ${from}..${to - 1}`);
    return diffs.length ? 1 : 0;
  }
  if (values.replay) {
    await replay(values.replay);
    return 0;
  }
  const total = Number(values.cases);
  const perGroup = Math.ceil(total / groups.length);
  if (values["qemu-only"]) {
    const bad = await qemuOnly(perGroup);
    console.log(bad ? `${bad} generated case(s) trapped under QEMU` : "no generated case trapped under QEMU");
    return bad ? 1 : 0;
  }
  console.log(`differential campaign: seed ${seed}, ${perGroup} cases per group, groups ${groups.join(", ")}`);
  const all = [];
  let reportsLeft = Number(values.reports);
  const started = Date.now();
  for (const group of groups) {
    const t0 = Date.now();
    const res = await runCampaign({ seed, group, count: perGroup, maxReports: Math.max(0, reportsLeft), jit, log: (t) => console.log(t + "\n") });
    reportsLeft -= Math.min(reportsLeft, res.mismatches.length);
    all.push(...res.mismatches);
    console.log(`${group}: ${res.mismatches.length} mismatch(es) in ${perGroup} cases (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  console.log(`\n${all.length} mismatch(es) in ${perGroup * groups.length} cases, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const line of summarize(all)) console.log(line);
  return all.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
