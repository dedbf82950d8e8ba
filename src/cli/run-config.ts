// `parley run`'s flags and its --config file, made into one VM description (src/vmm/schema.ts).
// The file comes first; flags given on the command line override its fields, and --disk and
// --net add drives and interfaces after the file's (and --share shares). Without a file, the flags' defaults apply.
import { existsSync, readFileSync } from "node:fs";
import { coreLayout } from "../cpu/core-layout.ts";
import { DEFAULT_MEM_SIZE_MIB, parseWith, VmConfig, type VmConfigInput } from "../vmm/schema.ts";
import { parseCpuCount, parseHostThreads, parsePauseLoop, parsePort, parseSize, UsageError } from "./options.ts";
import { parseBalloonOption, parseDiskOption, parseNetOption, parseRngOption, parseShareOption, parseVsockOption } from "./device-options.ts";
import { DEFAULT_PAUSE_LOOP_WINDOW } from "../machine/virt.ts";

export interface RunFlags {
  config?: string;
  memory?: string;
  cpus?: string;
  hostThreads?: string;
  zawrs?: string;
  ple?: string;
  idleStates?: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  firmware?: string;
  console?: string;
  sstc?: string;
  metricsPort?: string;
  disk?: string[];
  /** Boot from the first --disk (or the config's first drive): root=... on the kernel command line. */
  root?: boolean;
  rng?: string | true;
  net?: string[];
  balloon?: string | true;
  vsock?: string;
  share?: string[];
  keyboard?: string;
  jit?: string;
}

/** Reads a --config file: JSON, checked against the schema on its own so errors name the file. */
export function readConfigFile(path: string): VmConfigInput {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`--config ${path}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--config ${path}: not valid JSON: ${(err as Error).message}`);
  }
  toUsageError(() => parseWith(VmConfig, json, `--config ${path}`));
  return json as VmConfigInput;
}

function toUsageError<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof Error && err.name === "ConfigError") throw new UsageError(err.message);
    throw err;
  }
}

function onOff(value: string, flag: string): boolean {
  if (value !== "on" && value !== "off") throw new UsageError(`${flag} ${value}: use on or off`);
  return value === "on";
}

const MIB = 1 << 20;

function existingFile(path: string, flag: string): string {
  if (!existsSync(path)) throw new UsageError(`${flag} ${path}: no such file`);
  return path;
}

/** Every hart has a region of its own beside guest RAM in one wasm32 memory (src/cpu/core-layout.ts). */
function checkHartsFit(cpus: number, mib: number): void {
  if (cpus === 1) return;
  try {
    coreLayout({ harts: cpus, ramSize: mib * MIB });
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(`--cpus ${cpus} with --memory ${mib}M: ${err.message}`);
    throw err;
  }
}

/**
 * The validated description for `parley run`: `file` (already read) overlaid with the flags.
 * `given(name)` tells whether a flag was typed on the command line; flags left at their defaults
 * apply only when there is no file, so a file's settings are not overridden by defaults.
 */
export function runConfig(flags: RunFlags, given: (flag: keyof RunFlags) => boolean, file?: VmConfigInput): VmConfig {
  const use = (flag: keyof RunFlags) => flags[flag] !== undefined && (file === undefined || given(flag));
  const base = file ?? {};
  const machine: Record<string, unknown> = { ...base["machine-config"] };
  const source: Record<string, unknown> = { ...base["boot-source"] };
  if (use("memory")) {
    const bytes = parseSize(flags.memory!, "--memory");
    if (bytes % MIB !== 0) throw new UsageError(`--memory: "${flags.memory}" must be a whole number of MiB`);
    machine.mem_size_mib = bytes / MIB;
  }
  if (use("cpus")) machine.vcpu_count = parseCpuCount(flags.cpus!, "--cpus");
  const cpus = (machine.vcpu_count as number | undefined) ?? 1;
  if (use("hostThreads")) machine.host_threads = parseHostThreads(flags.hostThreads!, cpus);
  if (use("zawrs")) machine.zawrs = onOff(flags.zawrs!, "--zawrs");
  if (use("keyboard")) machine.keyboard = onOff(flags.keyboard!, "--keyboard");
  if (use("idleStates")) machine.idle_states = onOff(flags.idleStates!, "--idle-states");
  if (use("ple")) {
    const window = parsePauseLoop(flags.ple!, DEFAULT_PAUSE_LOOP_WINDOW);
    if (flags.ple === "on") delete machine.pause_loop_window;
    else machine.pause_loop_window = window;
  }
  if (use("console")) {
    if (flags.console !== "uart" && flags.console !== "hvc") throw new UsageError(`--console ${flags.console}: use uart or hvc`);
    machine.console = flags.console;
  }
  if (use("sstc")) machine.sstc = onOff(flags.sstc!, "--sstc");
  if (use("jit")) {
    if (flags.jit !== "on" && flags.jit !== "off" && flags.jit !== "eager") throw new UsageError(`--jit ${flags.jit}: use on or off`);
    machine.jit = flags.jit;
  }
  // Files named by flags are checked here, so the message names the flag rather than the field.
  if (use("kernel")) source.kernel_image_path = existingFile(flags.kernel!, "--kernel");
  if (use("initrd")) source.initrd_path = existingFile(flags.initrd!, "--initrd");
  if (use("append")) source.boot_args = flags.append;
  if (use("firmware")) source.firmware = flags.firmware === "none" || flags.firmware === "opensbi" ? flags.firmware : existingFile(flags.firmware!, "--firmware");
  if (use("cpus") || use("memory")) checkHartsFit(cpus, (machine.mem_size_mib as number | undefined) ?? DEFAULT_MEM_SIZE_MIB);
  const drives = [...(base.drives ?? [])];
  (flags.disk ?? []).forEach((spec) => drives.push(parseDiskOption(spec, drives.length)));
  if (flags.root) {
    if (drives.length === 0) throw new UsageError("--root boots from a disk: add --disk path=FILE (e.g. the image from parley image build --rootfs --output FILE)");
    if (!drives.some((d) => d.is_root_device)) drives[0] = { ...drives[0], is_root_device: true };
  }
  const nets = [...(base["network-interfaces"] ?? [])];
  (flags.net ?? []).forEach((spec) => nets.push(parseNetOption(spec, nets.length)));
  const shares = [...(base.shares ?? []), ...(flags.share ?? []).map(parseShareOption)];
  const input: VmConfigInput = {
    ...base,
    "machine-config": machine,
    "boot-source": source,
    drives,
    "network-interfaces": nets,
    ...(shares.length > 0 ? { shares } : {}),
    ...(flags.rng !== undefined ? { entropy: parseRngOption(flags.rng) } : {}),
    ...(flags.balloon !== undefined ? { balloon: parseBalloonOption(flags.balloon) } : {}),
    ...(flags.vsock !== undefined ? { vsock: parseVsockOption(flags.vsock) } : {}),
    ...(use("metricsPort") ? { metrics: { port: parsePort(flags.metricsPort!, "--metrics-port") } } : {}),
  };
  return toUsageError(() => parseWith(VmConfig, input));
}
