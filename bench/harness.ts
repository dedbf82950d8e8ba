// Running and timing a child process for the benchmarks that compare whole programs (Parley's
// command line, QEMU, native tools): everything the child prints, the seconds from spawn to the
// first appearance of each marker on its output, and an early stop once the interesting part is
// over, so a guest need not be shut down to be timed.
import { spawn } from "node:child_process";

export interface TimedRunOptions<Marker extends string> {
  /** Markers whose first appearance on stdout or stderr is timed, by name. */
  markers?: Record<Marker, RegExp>;
  /** Kill the child as soon as this appears (checked after the markers, on the same output). */
  stopAt?: RegExp;
  /** Kill the child and reject after this long (default: no limit). */
  timeoutMs?: number;
  /** The child's stdin (default "ignore"). */
  stdin?: "ignore" | "pipe";
  /**
   * Once `at` appears (checked after stopAt), runs `task` with the child's process id while the
   * child keeps running, then kills the child; the run ends as stopped (e.g. to sample the host
   * CPU time of a guest that sits at its shell). A task that fails fails the run.
   */
  whileRunning?: { at: RegExp; task: (pid: number) => Promise<void> };
}

export interface TimedRun<Marker extends string> {
  /** stdout and stderr interleaved as they arrived, decoded as Latin-1 (guest output may be any bytes). */
  output: string;
  /** Seconds from spawn to each marker's first appearance; absent when it never appeared. */
  markers: Partial<Record<Marker, number>>;
  /** Seconds from spawn to the end of the child (or to stopAt). */
  seconds: number;
  /** Whether stopAt matched and the child was killed for it. */
  stopped: boolean;
  /** The exit code; 128 when a signal ended the child. */
  exitCode: number;
}

/** Runs `command` to its end (or until `stopAt`), timing the markers on its output. */
export function runTimed<Marker extends string = never>(command: string, args: string[], options: TimedRunOptions<Marker> = {}): Promise<TimedRun<Marker>> {
  const markers = Object.entries(options.markers ?? {}) as [Marker, RegExp][];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    const child = spawn(command, args, { stdio: [options.stdin ?? "ignore", "pipe", "pipe"] });
    let output = "";
    const seen: Partial<Record<Marker, number>> = {};
    let taskStarted = false;
    // Settles at most once. A stopped or timed-out child is not waited for: whatever it started
    // may hold its output open after it is killed.
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill("SIGKILL");
            settle(() => reject(new Error(`${command} did not finish within ${options.timeoutMs! / 1000} s; output tail:\n${output.slice(-2000)}`)));
          }, options.timeoutMs);
    const onData = (chunk: Buffer) => {
      if (settled) return;
      output += chunk.toString("latin1");
      const now = elapsed();
      for (const [name, pattern] of markers) if (seen[name] === undefined && pattern.test(output)) seen[name] = now;
      if (options.stopAt?.test(output)) {
        child.kill("SIGKILL");
        settle(() => resolve({ output, markers: seen, seconds: now, stopped: true, exitCode: 128 }));
      } else if (!taskStarted && options.whileRunning?.at.test(output)) {
        taskStarted = true;
        options.whileRunning.task(child.pid!).then(
          () => {
            child.kill("SIGKILL");
            settle(() => resolve({ output, markers: seen, seconds: elapsed(), stopped: true, exitCode: 128 }));
          },
          (err) => {
            child.kill("SIGKILL");
            settle(() => reject(err));
          },
        );
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("error", (err: NodeJS.ErrnoException) =>
      settle(() => reject(err.code === "ENOENT" ? new Error(`${command} not found: run \`npm run setup\``) : err)),
    );
    child.on("close", (code, signal) => settle(() => resolve({ output, markers: seen, seconds: elapsed(), stopped: false, exitCode: code ?? (signal ? 128 : 1) })));
  });
}

/**
 * Runs a guest's command line to the guest's end; returns everything it printed, if the guest's
 * command succeeded (the initramfs prints "command exited with status N").
 */
export async function capture(command: string, argv: string[], timeoutMs = 900_000): Promise<string> {
  const run = await runTimed(command, argv, { timeoutMs });
  if (!/command exited with status 0/.test(run.output)) throw new Error(`${command} failed (${run.exitCode}); output tail:\n${run.output.slice(-2000)}`);
  return run.output;
}

/** The `real` seconds of each `time -p` report labelled with `MARK <label>` before it. */
export function timings(output: string): Map<string, number> {
  const result = new Map<string, number>();
  const re = /MARK (\S+)[\s\S]*?real (\d+\.\d+)/g;
  for (let m = re.exec(output); m; m = re.exec(output)) result.set(m[1], Number(m[2]));
  return result;
}

/** The middle value (the upper one of an even count). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
