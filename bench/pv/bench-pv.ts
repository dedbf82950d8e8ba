// `npm run bench -- pv`: each paravirtual path of Parley measured against its emulated
// counterpart, Linux doing the same work two ways, with every counter the machine keeps.
//
//   console   1 MiB written to ttyS0 (16550, trap-and-emulate) and to hvc0 (virtio-console) by
//             one guest; and the kernel's boot log through the 16550 early console against
//             earlycon=sbi (SBI debug console hypercalls)            (console.ts)
//   timer     SBI set_timer hypercalls against Sstc (the guest writes stimecmp, no exit), idle
//             and busy, with cyclictest-style timer lateness measured in the guest (timer.ts)
//   boot      the hypervisor as SBI implementation against OpenSBI in emulated M-mode (boot.ts)
//   plic      PLIC claim/complete exits per virtio interrupt (virtio-blk reads)   (plic.ts)
//   coalesce  interrupt coalescing on virtio-blk and virtio-net, from the lowest-latency setting
//             to the highest-throughput one                         (coalesce.ts; io.ts runs
//             the guest plic and coalesce share)
//   contention  lock contention with more harts than host threads: Zawrs + pause-loop exiting
//             against plain spinning, and QEMU; idle host CPU; WRS wake latency (contention.ts;
//             whole `parley run` processes, not in-process guests)
//
// Guests are VirtMachines driven from this process (guest.ts, session.ts), so counters can be read
// between commands and attributed to one phase. Guest-side times come from guest/pv/pvbench.c
// (clock_gettime through the vDSO, nanoseconds). Results: a table per comparison on stdout
// (tables.ts), charts (SVG and PNG, charts.ts) and JSON in cache/bench/pv/ (pv-quick/ for
// --quick), and with --out DIR the charts and a Markdown section (pv-results.md, markdown.ts) in DIR.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, relative, sep } from "node:path";
import { CACHE_DIR, REPO_ROOT } from "../../src/host/node/paths.ts";
import { buildGuestImage } from "../../src/image/index.ts";
import { writeChart } from "../charts.ts";
import { bootComparison } from "./boot.ts";
import { buildCharts } from "./charts.ts";
import { consoleComparison } from "./console.ts";
import { contentionComparison } from "./contention.ts";
import { ioComparison } from "./io.ts";
import { formatMarkdown } from "./markdown.ts";
import { COMPARISONS, type Comparison, type PvResults } from "./results.ts";
import { prepareImage, type Log } from "./session.ts";
import { formatTables } from "./tables.ts";
import { timerSide } from "./timer.ts";
import { COALESCE_SETTINGS, workloadSizes } from "./workloads.ts";

export interface BenchPvOptions {
  /** Every comparison at reduced size (CI): one repetition, smaller transfers, shorter phases. */
  quick?: boolean;
  /** Also write the charts and pv-results.md here (e.g. docs/). */
  out?: string;
  /** Also write the results as JSON here. */
  json?: string;
  /** A subset of the comparisons (default: all). plic and coalesce share one guest. */
  only?: Comparison[];
  /** Boots per boot-time measurement and passes per measurement elsewhere (default 3, quick 1); medians are reported. */
  reps?: number;
  /** Re-draw tables, charts and the Markdown section from a results file instead of measuring. */
  render?: string;
  /** Progress lines (default: stderr). */
  log?: Log;
}

/** How the results were measured, as recorded with them and quoted in pv-results.md. */
const COMMAND = "npm run bench -- pv";

export async function benchPv(options: BenchPvOptions = {}): Promise<PvResults> {
  const log = options.log ?? ((line: string) => process.stderr.write(`bench pv: ${line}\n`));
  const results = options.render ? (JSON.parse(readFileSync(options.render, "utf8")) as PvResults) : await measure(options, log);
  const tables = formatTables(results);
  for (const [name, t] of Object.entries(tables)) process.stdout.write(`\n${name}\n${t}\n`);
  const cacheDir = join(CACHE_DIR, "bench", results.quick ? "pv-quick" : "pv");
  const dirs = [...(options.render ? [] : [cacheDir]), ...(options.out ? [options.out] : [])];
  // The command that measured these results (re-rendering keeps it).
  const command = results.command ?? `${COMMAND}${results.quick ? " --quick" : ""}${options.out ? ` --out ${options.out}` : ""}`;
  const charts = buildCharts(results);
  // Results of a subset of the comparisons get files of their own (pv-results-contention.json and
  // .md), so that they do not replace those of a full run.
  const measured = COMPARISONS.filter((c) => results[c] !== undefined);
  const stored = measured.length < COMPARISONS.length ? `pv-results-${measured.join("+")}` : "pv-results";
  for (const dir of dirs) {
    mkdirSync(dir, { recursive: true });
    for (const [name, svg] of Object.entries(charts)) await writeChart(svg, join(dir, name));
    writeFileSync(join(dir, `${stored}.md`), formatMarkdown(results, tables, chartLinkDir(dir, cacheDir), command));
  }
  if (!options.render) writeFileSync(join(cacheDir, `${stored}.json`), JSON.stringify(results, null, 2) + "\n");
  if (options.json) writeFileSync(options.json, JSON.stringify(results, null, 2) + "\n");
  if (dirs.length) log(`charts and ${stored}.md in ${dirs.map((d) => relative(REPO_ROOT, d) || ".").join(" and ")}`);
  return results;
}

/**
 * Where pv-results.md finds the charts: relative to the repository root when the section lands in
 * the repository (it is meant for the README), else next to the Markdown file.
 */
function chartLinkDir(dir: string, cacheDir: string): string {
  const rel = relative(REPO_ROOT, dir);
  return dir !== cacheDir && rel && !rel.startsWith("..") ? `${rel.split(sep).join("/")}/` : "";
}

async function measure(options: BenchPvOptions, log: Log): Promise<PvResults> {
  const quick = options.quick ?? false;
  const size = workloadSizes(quick);
  const reps = options.reps ?? size.reps;
  const only = new Set<Comparison>(options.only ?? COMPARISONS);
  // The contention comparison runs whole `parley run` processes on its own image.
  const img = [...only].some((c) => c !== "contention") ? await prepareImage(log) : undefined;
  const results: PvResults = {
    quick,
    date: new Date().toISOString(),
    command:
      `${COMMAND}${quick ? " --quick" : ""}${options.only ? ` --only ${[...only].join(",")}` : ""}` +
      `${options.reps ? ` --reps ${options.reps}` : ""}${options.out ? ` --out ${options.out}` : ""}`,
    kernel: img?.image.kernelVersion ?? "",
    host: { node: process.versions.node, cpus: cpus().length, loadStart: loadavg()[0] },
  };
  if (img && only.has("console")) results.console = await consoleComparison(img, size, reps, log);
  if (only.has("timer")) {
    const sbi = await timerSide(img!, false, size, log);
    const sstc = await timerSide(img!, true, size, log);
    results.timer = { sbi, sstc };
  }
  if (only.has("boot")) results.boot = await bootComparison(img!, reps, log);
  if (only.has("plic") || only.has("coalesce")) {
    const io = await ioComparison(img!, size, only.has("coalesce") ? COALESCE_SETTINGS : [COALESCE_SETTINGS[0]], reps, log);
    if (only.has("plic")) results.plic = io.plic;
    if (only.has("coalesce")) results.coalesce = io.coalesce;
  }
  if (only.has("contention")) {
    results.contention = await contentionComparison(quick, log);
    if (!results.kernel) results.kernel = (await buildGuestImage({ progress: false })).kernelVersion;
  }
  results.host.loadEnd = loadavg()[0];
  return results;
}
