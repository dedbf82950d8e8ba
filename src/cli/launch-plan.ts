// What the `parley` command's launcher (src/cli/launch.ts) needs to know of a command line before
// the command's own modules load: whether it runs a machine in this process, and on how many host
// threads its harts will run, so that V8's compiler threads get the cores left over
// (src/host/node/compiler-threads.ts). It reads the few options that decide the harts and nothing
// else: the command itself checks every option afterwards, and refuses bad ones. A value it will
// refuse counts as one hart here.
import { hartThreadCount } from "../vmm/host-threads.ts";

/** The subcommands that run a machine in their own process. */
const MACHINE_COMMANDS = new Set(["run", "start", "run-elf", "demo", "restore", "serve"]);

/** `parley start` (npm start): a hart per host core, up to 4. */
export function startCpus(hostCores: number): number {
  return Math.min(hostCores, 4);
}

/** The value of `--name VALUE` or `--name=VALUE`; the last one given wins, as in the command. */
export function optionValue(args: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name && i + 1 < args.length) value = args[++i];
    else if (args[i].startsWith(name + "=")) value = args[i].slice(name.length + 1);
  }
  return value;
}

function wholeNumber(text: string | undefined): number | undefined {
  return text !== undefined && /^[1-9]\d{0,5}$/.test(text) ? Number(text) : undefined;
}

interface ConfigHarts {
  vcpu_count?: number;
  host_threads?: number;
}

/** machine-config's harts from a VM description's text, or nothing when it is not one. */
export function configHarts(text: string | undefined): ConfigHarts | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const machine = (parsed as { "machine-config"?: unknown } | null)?.["machine-config"];
  if (typeof machine !== "object" || machine === null) return {};
  const pick = (value: unknown) => (Number.isInteger(value) && (value as number) > 0 ? (value as number) : undefined);
  const fields = machine as Record<string, unknown>;
  return { vcpu_count: pick(fields.vcpu_count), host_threads: pick(fields.host_threads) };
}

/**
 * The host threads the harts of `parley ARGS` will run on, or undefined when the command runs no
 * machine in this process (image, web, the API clients, help and version). Commands whose harts
 * are known only later (restore, serve, --incoming, run-elf, demo) count one.
 */
export function hartThreadsOfCommand(args: readonly string[], hostCores: number, readFile: (path: string) => string | undefined): number | undefined {
  const command = args.find((arg) => !arg.startsWith("-"));
  if (command === undefined || !MACHINE_COMMANDS.has(command)) return undefined;
  if (args.includes("--help") || args.includes("-h")) return undefined;
  if ((command !== "run" && command !== "start") || optionValue(args, "--incoming") !== undefined) return 1;
  const configPath = optionValue(args, "--config");
  const config = configPath === undefined ? undefined : (configHarts(readFile(configPath)) ?? {});
  // As in the command: flags on the command line override the description; without one, the
  // command's defaults apply.
  const defaultCpus = config !== undefined ? 1 : command === "start" ? startCpus(hostCores) : 1;
  const cpus = wholeNumber(optionValue(args, "--cpus")) ?? config?.vcpu_count ?? defaultCpus;
  const hostThreads = wholeNumber(optionValue(args, "--host-threads")) ?? config?.host_threads;
  return hartThreadCount(cpus, hostThreads, hostCores);
}
