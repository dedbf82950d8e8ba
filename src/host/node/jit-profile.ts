// The translator's profiling aids for Node hosts, from the environment (developers' tools, see
// docs/PERFORMANCE.md):
//
//   PARLEY_JIT_PROFILE=1     translated code reports its exits to the interpreter and its
//                            transitions (src/cpu/jit/frame.ts, Note); a table by kind and the
//                            busiest guest pcs of each kind go to stderr when the process exits
//   PARLEY_JIT_DUMP=DIR      every translation module's bytes go to DIR/jit-N.wasm (with a name
//                            section: functions are named after their RAM page and first entry)
//
// Profiling slows translated code down (an import call per event); counts, not times, are what
// it is for. Only translators created in this thread are observed (one hart, or hart 0's thread).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { observeTranslations, type JitObserver } from "../../cpu/jit/jit.ts";
import { NOTE_NAMES } from "../../cpu/jit/frame.ts";
import type { Environment } from "./jit-environment.ts";

let installed = false;

/** Installs the observer the environment asks for, once per process. */
export function observeTranslationsFromEnvironment(env: Environment): void {
  if (installed) return;
  const profile = env.PARLEY_JIT_PROFILE === "1";
  const dumpDir = env.PARLEY_JIT_DUMP || undefined;
  if (!profile && !dumpDir) return;
  installed = true;
  const observer: JitObserver = {};
  if (dumpDir) {
    mkdirSync(dumpDir, { recursive: true });
    let next = 0;
    observer.module = (bytes) => writeFileSync(join(dumpDir, `jit-${next++}.wasm`), bytes);
  }
  if (profile) {
    const counts = new Float64Array(NOTE_NAMES.length);
    const byPc = NOTE_NAMES.map(() => new Map<bigint, number>());
    observer.note = (note, pc) => {
      counts[note]++;
      const sites = byPc[note];
      sites.set(pc, (sites.get(pc) ?? 0) + 1);
    };
    process.on("exit", () => process.stderr.write(profileReport(counts, byPc)));
  }
  observeTranslations(observer);
}

function profileReport(counts: Float64Array, byPc: Map<bigint, number>[]): string {
  const lines = ["Translation profile (PARLEY_JIT_PROFILE)", "  event              count   busiest pcs (count)"];
  for (let k = 0; k < NOTE_NAMES.length; k++) {
    const top = [...byPc[k].entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);
    const sites = top.map(([pc, n]) => `${pc.toString(16)} (${n})`).join(", ");
    lines.push(`  ${NOTE_NAMES[k].padEnd(14)} ${String(counts[k]).padStart(11)}   ${sites}`);
  }
  return lines.join("\n") + "\n";
}
