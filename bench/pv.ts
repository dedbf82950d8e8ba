// `npm run bench -- pv [COMPARISON...] [--quick] [--out docs/] [--only LIST] [--reps N] [--json FILE] [--render FILE]`
// (or `node --import tsx bench/run.ts pv ...`): the paravirtual-against-emulated comparisons,
// run from the sources. Option errors exit with 2, as the `parley` command's do.
import { Command, CommanderError } from "commander";
import { existsSync } from "node:fs";
import { parsePositiveInteger, UsageError } from "../src/cli/options.ts";
import { benchPv } from "./pv/bench-pv.ts";
import { parseComparisons } from "./pv/results.ts";

const EXIT_USAGE = 2;

interface PvFlags {
  quick?: boolean;
  out?: string;
  only?: string;
  reps?: string;
  json?: string;
  render?: string;
}

async function runFromFlags(names: string[], opts: PvFlags): Promise<void> {
  let only;
  try {
    // Comparisons may also be named as arguments: `npm run bench -- pv contention`.
    const list = [...(opts.only === undefined ? [] : [opts.only]), ...names].join(",");
    only = list === "" ? undefined : parseComparisons(list);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const reps = opts.reps === undefined ? undefined : parsePositiveInteger(opts.reps, "--reps");
  if (opts.render !== undefined && !existsSync(opts.render)) throw new UsageError(`--render ${opts.render}: no such file`);
  await benchPv({ quick: opts.quick, out: opts.out, only, reps, json: opts.json, render: opts.render });
}

const program = new Command()
  .name("npm run bench -- pv")
  .description("each paravirtual path against its emulated counterpart: console, timer, boot, PLIC, interrupt coalescing, lock contention under overcommit")
  .argument("[comparisons...]", "comparisons to run (as --only), e.g. contention")
  .option("--quick", "every comparison at reduced size (a few minutes)")
  .option("--out <dir>", "also write the charts (SVG, PNG) and pv-results.md to DIR, e.g. docs/")
  .option("--only <list>", "comma-separated subset: console,timer,boot,plic,coalesce,contention")
  .option("--reps <n>", "repetitions (boots per boot measurement, passes elsewhere; default 3, --quick 1); medians are reported")
  .option("--json <file>", "also write the results as JSON to FILE")
  .option("--render <file>", "re-draw tables, charts and pv-results.md from a results file (pv-results.json) instead of measuring")
  .showHelpAfterError("(run `npm run bench -- pv --help` for usage)")
  .exitOverride()
  .action(runFromFlags);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else if (err instanceof UsageError) {
    process.stderr.write(`bench pv: ${err.message}\n`);
    process.exitCode = EXIT_USAGE;
  } else {
    throw err;
  }
}
