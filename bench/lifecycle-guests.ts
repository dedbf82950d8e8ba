// The guests of `npm run bench -- lifecycle`: a Parley VirtMachine in this process (so that its
// snapshot and migration calls can be timed directly) and a qemu-system-riscv64 child process with
// a QMP socket, both on the same kernel and initramfs, each with a console that the benchmark types
// into and reads from.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { VirtMachine, type MachineExit } from "../src/machine/virt.ts";
import { nodeClock } from "../src/host/node/clock.ts";
import { loadCoreModule } from "../src/host/node/core-module.ts";
import { jitFromEnvironment } from "../src/host/node/jit-environment.ts";
import { QmpClient } from "./qmp.ts";

export const PROMPT = /root@parley:[^\n]*# /;
/** The kernel command line of both systems. */
export const APPEND = "console=ttyS0";

/** What a guest printed, and waiting for a pattern in it. */
export class ConsoleLog {
  text = "";
  private ended: string | undefined;

  append(chunk: string): void {
    this.text += chunk;
  }

  /** No more output will come (the machine or process ended): waits fail at once. */
  end(why: string): void {
    this.ended ??= why;
  }

  /** Resolves once `pattern` matches the output from index `from` on; the match's index is into the whole output. */
  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.text.slice(from));
      if (m) {
        m.index += from;
        return m;
      }
      if (this.ended !== undefined) throw new Error(`the guest ended (${this.ended}) before ${pattern} appeared; output tail:\n${this.text.slice(-1500)}`);
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${pattern}; output tail:\n${this.text.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** A guest console: what it printed, and typing into it. */
export interface GuestConsole {
  readonly log: ConsoleLog;
  type(text: string): void;
}

/**
 * Runs a shell command on a guest's console; returns its output and exit status. The output is
 * taken between markers the command line prints itself, so the shell's echo never mixes in.
 */
export async function runInGuest(guest: GuestConsole, command: string, timeoutMs = 60_000): Promise<{ text: string; status: number }> {
  const tag = `LC${Math.random().toString(36).slice(2, 10)}`;
  const start = guest.log.text.length;
  guest.type(`echo ${tag}S; ${command}; printf '\\n${tag}E%d\\n' $?\n`);
  const end = await guest.log.waitFor(new RegExp(`\\n${tag}E(\\d+)`), timeoutMs, start);
  const all = guest.log.text.slice(start, end.index);
  const begin = new RegExp(`(?:^|\\n)${tag}S\\r?\\n`).exec(all);
  if (!begin) throw new Error(`start marker of ${JSON.stringify(command)} not found in:\n${all.slice(0, 2000)}`);
  return { text: all.slice(begin.index + begin[0].length).replace(/\r/g, ""), status: Number(end[1]) };
}

/** Waits for the first shell prompt, then keeps kernel messages off the console (dmesg -n 1). */
export async function waitForShell(guest: GuestConsole, timeoutMs: number): Promise<void> {
  await guest.log.waitFor(PROMPT, timeoutMs);
  const quiet = await runInGuest(guest, "dmesg -n 1");
  if (quiet.status !== 0) throw new Error(`dmesg -n 1 failed: ${quiet.text}`);
}

/** Presses Enter and waits for a fresh prompt: the guest's shell answers. */
export async function shellAnswers(guest: GuestConsole, timeoutMs: number): Promise<void> {
  const mark = guest.log.text.length;
  guest.type("\n");
  await guest.log.waitFor(PROMPT, timeoutMs, mark);
}

export interface GuestFiles {
  kernel: Uint8Array;
  initrd: Uint8Array;
  /** Paths of the same files, and of OpenSBI, for QEMU. */
  kernelPath: string;
  initrdPath: string;
  firmwarePath: string;
}

/** A Parley machine in this process: booted, or built `fromSnapshot` for a restore or an incoming migration. */
export class ParleyGuest implements GuestConsole {
  readonly log = new ConsoleLog();
  readonly vm: VirtMachine;
  finished: Promise<MachineExit> | undefined;

  constructor(files: GuestFiles, ramSize: number, options: { fromSnapshot?: boolean } = {}) {
    const decoder = new TextDecoder("latin1");
    this.vm = new VirtMachine({
      module: loadCoreModule(),
      harts: 1,
      ramSize,
      fromSnapshot: options.fromSnapshot,
      kernel: options.fromSnapshot ? undefined : files.kernel,
      initrd: options.fromSnapshot ? undefined : files.initrd,
      bootargs: APPEND,
      jit: jitFromEnvironment(process.env, "on"),
      clock: nodeClock,
      output: (bytes) => this.log.append(decoder.decode(bytes, { stream: true })),
    });
  }

  /** Starts the machine's run loop (a restored machine stays paused until resume()). */
  start(): void {
    this.finished = this.vm.run().then((exit) => {
      this.log.end(exit.reason);
      return exit;
    });
  }

  type(text: string): void {
    this.vm.sendInput(new TextEncoder().encode(text));
  }

  async stop(): Promise<void> {
    this.vm.stop();
    await this.finished;
  }
}

/** The machine configuration Parley records in its snapshots and migration stream. */
export const parleyConfig = (ramSize: number) => ({ harts: 1, memory: ramSize, append: APPEND });

/** qemu-system-riscv64 -M virt (TCG), one hart, its console on stdio and QMP on a Unix socket. */
export class QemuGuest implements GuestConsole {
  readonly log = new ConsoleLog();
  readonly process: ChildProcess;
  readonly exited: Promise<number>;
  readonly qmpPath: string;
  /** performance.now() when the process was spawned. */
  readonly spawnedAt: number;

  constructor(files: GuestFiles, memory: string, dir: string, readonly name: string, extraArgs: string[] = []) {
    this.qmpPath = join(dir, `${name}.qmp`);
    const args = [
      "-M", "virt", "-m", memory, "-smp", "1", "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
      "-bios", files.firmwarePath, "-kernel", files.kernelPath, "-initrd", files.initrdPath, "-append", APPEND,
      "-qmp", `unix:${this.qmpPath},server=on,wait=off`, ...extraArgs,
    ];
    this.spawnedAt = performance.now();
    this.process = spawn("qemu-system-riscv64", args, { stdio: ["pipe", "pipe", "pipe"] });
    const onData = (chunk: Buffer) => this.log.append(chunk.toString("latin1"));
    this.process.stdout!.on("data", onData);
    this.process.stderr!.on("data", onData);
    this.exited = new Promise((resolve) => {
      this.process.on("error", (err) => {
        this.log.end(err.message);
        resolve(-1);
      });
      this.process.on("close", (code) => {
        this.log.end(`qemu exited with ${code}`);
        resolve(code ?? 128);
      });
    });
  }

  type(text: string): void {
    this.process.stdin!.write(text);
  }

  qmp(timeoutMs = 10_000): Promise<QmpClient> {
    return QmpClient.connect(this.qmpPath, timeoutMs);
  }

  async stop(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill("SIGKILL");
    await this.exited;
  }
}

/** The guest files, read once. */
export function readGuestFiles(paths: { kernel: string; initrd: string; firmware: string }): GuestFiles {
  return {
    kernel: new Uint8Array(readFileSync(paths.kernel)),
    initrd: new Uint8Array(readFileSync(paths.initrd)),
    kernelPath: paths.kernel,
    initrdPath: paths.initrd,
    firmwarePath: paths.firmware,
  };
}
