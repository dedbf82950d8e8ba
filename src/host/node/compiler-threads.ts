// Runs the `parley` command again in a Node.js whose V8 keeps as many background compiler threads
// as the host has cores left over after the harts' threads.
//
// Why: V8 compiles the translator's WebAssembly modules (and hot JavaScript) on a pool of
// background threads, four by default whatever the host. On a host with few cores those threads
// take turns with the vCPU threads: on 2 cores a Debian boot to init spends as much time again in
// them (docs/PERFORMANCE.md, "The boot regression"). The pool's size is fixed when Node starts
// (--v8-pool-size), so the command starts itself again with the flag, as its own child:
//
//   - the terminal (standard input, output and error) is the child's, inherited;
//   - the launcher forwards the termination signals it gets, and ends as the child ends (the same
//     exit status, or the same signal);
//   - an IPC channel ties the child to the launcher: if the launcher dies without a chance to
//     forward anything (SIGKILL), the channel closes and the child stops too, so no orphan keeps a
//     guest running.
//
// A user who sets the pool size (node --v8-pool-size=N, or NODE_OPTIONS) gets no relaunch.
import { spawn } from "node:child_process";
import { constants } from "node:os";

const POOL_FLAG = "--v8-pool-size";

/** Set in the child's environment by the launcher, so that the child ties itself to it. */
const LAUNCHED_ENV = "PARLEY_LAUNCHED";

/** The signals a user or a supervisor sends to stop or interrupt a command: they go to the child. */
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR2"];

/** The child's exit status when its launcher died under it, as for a hang-up (128 + SIGHUP). */
const EXIT_LAUNCHER_GONE = 129;

/**
 * V8's background compiler threads for a host of `hostCores` cores running `hartThreads` threads of
 * harts: the cores the harts leave, and at least one, so that compilation never waits for the
 * vCPU thread (a pool of 0 would ask V8 to pick its own size).
 */
export function compilerThreadsFor(hostCores: number, hartThreads: number): number {
  return Math.max(1, hostCores - hartThreads);
}

/** True when Node was started with a pool size of the user's: on its command line or in NODE_OPTIONS. */
export function poolSizeChosen(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const words = [...execArgv, ...(nodeOptions ?? "").split(/\s+/)];
  // Node takes its options with dashes or underscores alike (--v8_pool_size).
  return words.some((word) => {
    const name = word.split("=")[0].replace(/_/g, "-");
    return name === POOL_FLAG;
  });
}

/** The child's command line: the same script and arguments, the same Node options, and the pool size. */
export function relaunchArguments(execArgv: readonly string[], argv: readonly string[], poolSize: number): string[] {
  return [...execArgv, `${POOL_FLAG}=${poolSize}`, ...argv.slice(1)];
}

export interface ChildOutcome {
  /** The child's exit status, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs this process's command again with `poolSize` compiler threads and waits for it to end,
 * forwarding termination signals meanwhile. The child owns the terminal; this process does nothing
 * else until it returns.
 */
export function runWithCompilerThreads(poolSize: number): Promise<ChildOutcome> {
  const child = spawn(process.execPath, relaunchArguments(process.execArgv, process.argv, poolSize), {
    stdio: ["inherit", "inherit", "inherit", "ipc"],
    env: { ...process.env, [LAUNCHED_ENV]: "1" },
  });
  const forward = (signal: NodeJS.Signals) => {
    try {
      child.kill(signal);
    } catch {
      // Already gone: its exit is on its way.
    }
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  const stopForwarding = () => {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
  };
  return new Promise((resolve, reject) => {
    child.once("error", (err) => {
      stopForwarding();
      reject(err);
    });
    child.once("exit", (code, signal) => {
      stopForwarding();
      resolve({ code, signal });
    });
  });
}

/**
 * Ends this process the way the child ended: its exit status, or its signal (raised again here,
 * with the forwarding handlers gone, so that a shell sees the same 128 + N).
 */
export function endAsChild(outcome: ChildOutcome): void {
  if (outcome.signal !== null) {
    process.kill(process.pid, outcome.signal);
    // Signals whose default is not to terminate (none forwarded, but a child may die of any):
    // fall back to the shell's convention.
    process.exitCode = 128 + (constants.signals[outcome.signal] ?? 0);
    return;
  }
  process.exitCode = outcome.code ?? 1;
}

/**
 * In a child that the launcher started: stop when the launcher's channel closes, that is when the
 * launcher is gone. Call once, first thing. Does nothing in a process started otherwise.
 */
export function followLauncher(): void {
  if (process.env[LAUNCHED_ENV] !== "1") return;
  // Not for the programs this one starts (passt, the compilers of `image build`).
  delete process.env[LAUNCHED_ENV];
  if (process.channel === undefined) return;
  process.once("disconnect", () => process.exit(EXIT_LAUNCHER_GONE));
  // The channel must not keep this process alive once its own work is done; listening for
  // 'disconnect' counts as a reference, so drop it after adding the listener.
  process.channel.unref();
}
