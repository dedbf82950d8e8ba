// `parley` starts the command again as its own child, with V8's compiler threads sized for the
// harts (src/cli/launch.ts, src/host/node/compiler-threads.ts). What a user and a supervisor see
// must not change: the child gets the command line, the exit status and the signals come back, and
// killing the launcher, even with SIGKILL, leaves no machine running.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CLI } from "../support/parley-cli.ts";
import { withTempDir } from "../support/temp-dir.ts";
import { kernelImage } from "../support/guest-kernel.ts";
import { jal } from "../diff/encode.ts";

/** A guest that spins forever (`j .`) and an empty initramfs: a machine that runs until stopped. */
function spinningGuest(dir: string): string[] {
  const kernel = join(dir, "spin.Image");
  const initrd = join(dir, "empty.cpio");
  writeFileSync(kernel, kernelImage([jal(0, 0)]));
  writeFileSync(initrd, new Uint8Array(0));
  return ["run", "--kernel", kernel, "--initrd", initrd, "--jit", "off"];
}

function childrenOf(pid: number): number[] {
  const path = `/proc/${pid}/task/${pid}/children`;
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
}

function commandLineOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
}

/** A process that has exited and been reaped has no /proc entry; a zombie shows state Z. */
function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/** Starts `parley ARGS` and waits for the child that runs the machine; returns both. */
async function launch(args: string[], nodeOptions: string[] = []): Promise<{ launcher: ChildProcess; machine: number }> {
  const launcher = spawn(process.execPath, [...nodeOptions, CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  const machine = await waitFor("the machine's process", () => childrenOf(launcher.pid!).find((pid) => commandLineOf(pid).includes(CLI)));
  return { launcher, machine };
}

test("the machine runs in a child with the same command line and compiler threads for the cores the hart leaves", { timeout: 60_000 }, async () => {
  await withTempDir("parley-launch-", async (dir) => {
    const args = spinningGuest(dir);
    const { launcher, machine } = await launch(args);
    const line = commandLineOf(machine);
    const expected = Math.max(1, availableParallelism() - 1);
    assert.deepEqual(line.slice(1), [`--v8-pool-size=${expected}`, CLI, ...args]);
    const ended = exited(launcher);
    launcher.kill("SIGTERM");
    // The signal went to the child, which ended of it; the launcher ended the same way.
    assert.deepEqual(await ended, { code: null, signal: "SIGTERM" });
    await waitFor("the machine's process to end", () => (running(machine) ? undefined : true));
  });
});

test("killing the launcher with SIGKILL stops the machine too", { timeout: 60_000 }, async () => {
  await withTempDir("parley-launch-", async (dir) => {
    const { launcher, machine } = await launch(spinningGuest(dir));
    const ended = exited(launcher);
    launcher.kill("SIGKILL");
    await ended;
    // The launcher could forward nothing: the child sees its channel close and stops.
    await waitFor("the orphaned machine's process to end", () => (running(machine) ? undefined : true), 10_000);
  });
});

test("SIGINT reaches the machine and the launcher ends by it", { timeout: 60_000 }, async () => {
  await withTempDir("parley-launch-", async (dir) => {
    const { launcher, machine } = await launch(spinningGuest(dir));
    const ended = exited(launcher);
    launcher.kill("SIGINT");
    assert.deepEqual(await ended, { code: null, signal: "SIGINT" });
    await waitFor("the machine's process to end", () => (running(machine) ? undefined : true));
  });
});

test("the child's exit status and output come back through the launcher", { timeout: 60_000 }, async () => {
  const launcher = spawn(process.execPath, [CLI, "run", "--memory", "lots"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  launcher.stderr!.on("data", (d) => (stderr += d));
  const { code } = await exited(launcher);
  assert.equal(code, 2);
  assert.match(stderr, /--memory: "lots" is not a size/);
});

test("a pool size of the user's is kept: no child, the machine runs in the process started", { timeout: 60_000 }, async () => {
  await withTempDir("parley-launch-", async (dir) => {
    const launcher = spawn(process.execPath, ["--v8-pool-size=2", CLI, ...spinningGuest(dir)], { stdio: ["pipe", "pipe", "pipe"] });
    const ended = exited(launcher);
    // Long enough for the launcher to have started a child if it were going to.
    await sleep(2_000);
    assert.deepEqual(childrenOf(launcher.pid!), []);
    launcher.kill("SIGTERM");
    assert.deepEqual(await ended, { code: null, signal: "SIGTERM" });
  });
});

test("commands that run no machine are not relaunched", { timeout: 60_000 }, async () => {
  const launcher = spawn(process.execPath, [CLI, "--version"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  launcher.stdout!.on("data", (d) => (stdout += d));
  let sawChild = false;
  const poll = setInterval(() => (sawChild ||= childrenOf(launcher.pid!).length > 0), 5);
  const { code } = await exited(launcher);
  clearInterval(poll);
  assert.equal(code, 0);
  assert.match(stdout, /^\d+\.\d+\.\d+/);
  assert.equal(sawChild, false);
});
