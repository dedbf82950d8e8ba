// Boots Linux on the virt machine from Node: a Machine (src/vmm/machine.ts) from the validated
// VM description, the console on the terminal, the ledger at each boot's end, the metrics and API
// servers beside it, and the machine's end as a process exit code.
import type { MachineExit } from "../machine/virt.ts";
import { attachConsole } from "../host/node/console.ts";
import { UsageError } from "./options.ts";
import { formatLedger } from "./stats.ts";
import { startMetricsServer, type MetricsServer } from "../vmm/metrics.ts";
import { checkStatsJsonPath, writeLedgerJson } from "./stats-file.ts";
import { Machine, type MachineOptions } from "../vmm/machine.ts";
import type { SnapshotLoadParams, VmConfig, VmConfigInput } from "../vmm/schema.ts";
import { startApiServer, type ApiServer } from "../vmm/api-server.ts";
import { MachineController } from "../vmm/controller.ts";
import type { TranslationCache } from "../cpu/cpu.ts";

/** The machine: a validated VM description (flags and --config file), or a snapshot to restore. */
type MachineSource =
  | { config: VmConfig; restore?: undefined; incoming?: undefined }
  | { restore: SnapshotLoadParams; config?: undefined; incoming?: undefined }
  /** Receive a live migration at this endpoint (unix:PATH or tcp:HOST:PORT). */
  | { incoming: string; config?: undefined; restore?: undefined };

export type RunLinuxOptions = MachineSource & {
  stats: boolean;
  /** Write the ledger (src/machine/ledger.ts) as JSON to this file when the machine stops. */
  statsJson?: string;
  /** Boot the guest again when it reboots. */
  reboot: boolean;
  /** Serve the REST API (src/vmm/api-server.ts) on this Unix socket while the guest runs. */
  apiSock?: string;
  /** Where translations persist between boots (--jit-cache); default: none. */
  jitCache?: TranslationCache;
};

/** What every boot of a command-line machine does: the console, the ledger at its end, reboots. */
function commandLineMachine(options: { stats: boolean; statsJson?: string; reboot: boolean; jitCache?: TranslationCache }, terminal: ReturnType<typeof consoleWriter>): MachineOptions {
  return {
    jitCache: options.jitCache,
    output: terminal.write,
    warn: (message) => process.stderr.write(`parley: ${message}\n`),
    bootEnded: (exit, ledger) => {
      terminal.flush();
      if (options.stats) process.stderr.write("\n" + formatLedger(ledger) + "\n");
      // Rewritten at every boot's end: after reboots the file holds the last boot's ledger.
      if (options.statsJson !== undefined) writeLedgerJson(options.statsJson, ledger);
      if (exit.reason === "reboot" && options.reboot) {
        process.stderr.write("\r\nparley: guest rebooted; starting it again (--no-reboot to exit instead)\r\n");
        return true;
      }
      return false;
    },
  };
}

/** The console on this terminal until the machine ends; its end as an exit code. */
async function attachUntilEnd(machine: Machine): Promise<number> {
  const consoleAttachment = attachConsole({
    onInput: (bytes) => machine.sendInput(bytes),
    onQuit: () => machine.stop(),
  });
  try {
    return exitCode(await machine.run());
  } finally {
    consoleAttachment.detach();
  }
}

/** Runs until the guest powers off (or the user quits); returns the exit code for the process. */
export async function runLinux(options: RunLinuxOptions): Promise<number> {
  // Checked first, like the other user-named files and sockets: cheap, and nothing to undo.
  if (options.statsJson !== undefined) checkStatsJsonPath(options.statsJson);
  const machineOptions = commandLineMachine(options, consoleWriter());
  const machine = options.restore
    ? await Machine.restore(options.restore, machineOptions)
    : options.incoming !== undefined
      ? await Machine.incoming(options.incoming, { ...machineOptions, onListening: (where) => process.stderr.write(`parley: waiting for a migration at ${where}\n`) })
      : await Machine.create(options.config, machineOptions);
  if (machine.lastRestore) {
    const r = machine.lastRestore;
    process.stderr.write(`parley: restored in ${r.totalMs.toFixed(1)} ms (guest memory by ${r.memory}${r.mapUnavailable ? `: ${r.mapUnavailable}` : ""})\n`);
  }
  let metrics: MetricsServer | undefined;
  let api: ApiServer | undefined;
  try {
    const port = machine.config.metrics?.port;
    if (port !== undefined) {
      try {
        metrics = await startMetricsServer({ port, ledger: () => machine.metrics() });
      } catch (err) {
        throw new UsageError(`--metrics-port ${port}: ${(err as Error).message}`);
      }
      process.stderr.write(`parley: metrics at ${metrics.url}\n`);
    }
    if (options.apiSock !== undefined) {
      try {
        api = await startApiServer({ path: options.apiSock, controller: new MachineController(machine) });
      } catch (err) {
        throw new UsageError(`--api-sock ${options.apiSock}: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    await metrics?.close();
    await machine.close();
    throw err;
  }
  try {
    return await attachUntilEnd(machine);
  } finally {
    await api?.close();
    await metrics?.close();
  }
}

/**
 * `parley serve`: the API socket first, the machine when a client has described it and sent
 * InstanceStart (or loaded a snapshot), as Firecracker starts. `initial` is a --config file's
 * description to start from.
 */
export async function serveApi(options: { apiSock: string; initial?: VmConfigInput; stats: boolean; statsJson?: string; reboot: boolean }): Promise<number> {
  if (options.statsJson !== undefined) checkStatsJsonPath(options.statsJson);
  const terminal = consoleWriter();
  let machineReady!: (machine: Machine) => void;
  const machine = new Promise<Machine>((resolve) => (machineReady = resolve));
  const controller = new MachineController(undefined, { ...commandLineMachine(options, terminal), onMachine: machineReady });
  let api: ApiServer;
  try {
    api = await startApiServer({ path: options.apiSock, controller, initial: options.initial });
  } catch (err) {
    throw new UsageError(`--api-sock ${options.apiSock}: ${(err as Error).message}`);
  }
  process.stderr.write(`parley: API on ${options.apiSock}; waiting for InstanceStart (docs/openapi.json)\n`);
  try {
    return await attachUntilEnd(await machine);
  } finally {
    await api.close();
  }
}

/**
 * The UART hands over output a byte at a time; one write to the terminal per slice instead of
 * per byte keeps the host's share of console output small.
 */
function consoleWriter(): { write: (bytes: Uint8Array) => void; flush: () => void } {
  const pending: Uint8Array[] = [];
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    if (pending.length === 0) return;
    // A copy: devices may reuse the buffers they handed over once this returns.
    process.stdout.write(Buffer.concat(pending.splice(0)));
  };
  const write = (bytes: Uint8Array) => {
    pending.push(bytes);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };
  return { write, flush };
}

function exitCode(exit: MachineExit): number {
  switch (exit.reason) {
    case "poweroff":
      return exit.code;
    case "reboot":
    case "stopped":
      return 0;
    case "migrated":
      process.stderr.write("\r\nparley: the guest was migrated and runs on at the destination\r\n");
      return 0;
    case "panic":
      process.stderr.write("\r\nparley: the guest kernel panicked\r\n");
      return 1;
    case "halted":
    case "failed":
      process.stderr.write(`\r\nparley: ${exit.message}\r\n`);
      return 1;
  }
}
