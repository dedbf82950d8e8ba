// Runs a bare-metal RV64 ELF file on Parley from Node (used by `parley run-elf`, tests and benchmarks).
import { readFileSync } from "node:fs";
import { parseElf } from "../platform/elf.ts";
import { BareMetalMachine } from "../machine/bare-metal.ts";
import { nodeClock } from "../host/node/clock.ts";
import { loadCoreModule } from "../host/node/core-module.ts";
import { jitFromEnvironment } from "../host/node/jit-environment.ts";
import type { Ledger } from "../machine/ledger.ts";
import { checkStatsJsonPath, writeLedgerJson } from "./stats-file.ts";

export interface RunElfOptions {
  maxInsns?: number;
  ramSize?: number;
  onOutput?: (text: string) => void;
  /** Write the ledger as JSON to this file when the program stops (`--stats-json`). */
  statsJson?: string;
  /** The RISC-V -> wasm translator (default: PARLEY_JIT, else on); see CpuOptions.jit. */
  jit?: "on" | "off" | "eager";
}

export interface RunElfResult {
  /** HTIF exit code; -1 when the instruction limit stopped the program first. */
  exitCode: number;
  stopReason: "exit" | "instruction-limit";
  output: string;
  instret: bigint;
  seconds: number;
  trapCounts: bigint[];
  mmioExits: number;
  /** The paravirtualization ledger of the run (src/machine/ledger.ts). */
  ledger: Ledger;
}

export async function runElfFile(path: string, options: RunElfOptions = {}): Promise<RunElfResult> {
  if (options.statsJson !== undefined) checkStatsJsonPath(options.statsJson);
  const elf = parseElf(new Uint8Array(readFileSync(path)));
  let output = "";
  const decoder = new TextDecoder();
  const machine = new BareMetalMachine({
    module: loadCoreModule(),
    elf,
    ramSize: options.ramSize,
    maxInstructions: options.maxInsns,
    jit: jitFromEnvironment(process.env, options.jit),
    clock: nodeClock,
    onOutput: (bytes) => {
      const text = decoder.decode(bytes, { stream: true });
      output += text;
      options.onOutput?.(text);
    },
  });
  const result = await machine.run();
  const ledger = machine.ledger();
  if (options.statsJson !== undefined) writeLedgerJson(options.statsJson, ledger);
  return {
    exitCode: result.exitCode ?? -1,
    stopReason: result.stopReason,
    output,
    instret: result.instructions,
    seconds: result.seconds,
    trapCounts: result.trapCounts,
    mmioExits: ledger.exits.total,
    ledger,
  };
}
