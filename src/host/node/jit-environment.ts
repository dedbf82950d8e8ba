// The translator's settings from the process environment, for Node hosts. The machine core
// never reads the environment itself (it has none in a browser or worker); the Node front ends
// call this and pass the result as CpuOptions.jit.
//
//   PARLEY_JIT=on|off|eager      the translator's mode (a `--jit` command-line flag wins)
//   PARLEY_JIT_THRESHOLD=N       taken branches in a code page before it is translated
//   PARLEY_JIT_FUNCTION_SIZE=N   guest instructions per wasm function at most
//   PARLEY_JIT_ASYNC=1           compile translations off the critical path
//   PARLEY_JIT_PROFILE=1, PARLEY_JIT_DUMP=DIR   profiling aids (see jit-profile.ts)
import type { CpuOptions, JitOptions } from "../../cpu/cpu.ts";
import { observeTranslationsFromEnvironment } from "./jit-profile.ts";

export type JitMode = "on" | "off" | "eager";
export type Environment = Record<string, string | undefined>;

/**
 * The translator setting for a Cpu: `mode` (from the command line) when given, else PARLEY_JIT;
 * the tuning knobs apply whichever chose the mode. Undefined when the environment sets nothing,
 * which leaves the Cpu's default (on).
 */
export function jitFromEnvironment(env: Environment = process.env, mode?: JitMode): CpuOptions["jit"] | undefined {
  const read = (name: string) => (env[name] === "" ? undefined : env[name]);
  const chosen = mode ?? parseMode(read("PARLEY_JIT"));
  if (chosen === "off") return "off";
  observeTranslationsFromEnvironment(env);
  const number = (name: string) => {
    const text = read(name);
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name}=${text}: use a positive whole number`);
    return value;
  };
  const knobs: JitOptions = {};
  const threshold = number("PARLEY_JIT_THRESHOLD");
  const functionSize = number("PARLEY_JIT_FUNCTION_SIZE");
  if (threshold !== undefined) knobs.threshold = threshold;
  if (functionSize !== undefined) knobs.functionSize = functionSize;
  if (read("PARLEY_JIT_ASYNC") === "1") knobs.async = true;
  if (Object.keys(knobs).length === 0) return chosen;
  return chosen === "eager" ? { eager: true, ...knobs } : knobs;
}

function parseMode(value: string | undefined): JitMode | undefined {
  if (value === undefined || value === "on" || value === "off" || value === "eager") return value;
  throw new Error(`PARLEY_JIT=${value}: use on, off or eager`);
}
