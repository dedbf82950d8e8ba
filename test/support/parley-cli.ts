// Runs the built `parley` command (dist/parley.mjs) as a user would, for the CLI tests.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/host/node/paths.ts";

export const CLI = join(REPO_ROOT, "dist/parley.mjs");

export interface ParleyRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `parley ARGS` to its end. `input`, when given, is all of standard input, then its end (the
 * guest must keep running until it powers off); without it standard input stays open and unused.
 * Rejects, killing the process, after `timeoutMs`.
 */
export function runParley(args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<ParleyRun> {
  const timeoutMs = options.timeoutMs ?? 300_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`parley ${args.join(" ")} did not exit within ${timeoutMs} ms; stdout tail:\n${stdout.slice(-1500)}`));
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin.end(options.input);
  });
}
