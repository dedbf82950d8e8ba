// Drives a booted guest's console from a test: send a command, wait for its output and status.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { VirtMachine, type MachineExit } from "../../src/machine/virt.ts";
import { nodeClock } from "../../src/host/node/clock.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { nodeHartThreads } from "../../src/host/node/hart-threads.ts";
import { jitFromEnvironment } from "../../src/host/node/jit-environment.ts";
import type { GuestImage } from "../../src/image/index.ts";
import type { VirtioDevice } from "../../src/virtio/types.ts";
import { DEFAULT_APPEND, DEFAULT_APPEND_HVC } from "../../src/machine/kernel-command-line.ts";

/**
 * Harts for sessions that do not ask for a number: PARLEY_TEST_CPUS (CI runs the boot and virtio
 * suites a second time with 4), else 1.
 */
export function testHarts(): number {
  const value = process.env.PARLEY_TEST_CPUS;
  if (value === undefined || value === "") return 1;
  const harts = Number(value);
  if (!Number.isInteger(harts) || harts < 1 || harts > 32) throw new Error(`PARLEY_TEST_CPUS=${value}: use a whole number of harts, 1 to 32`);
  return harts;
}

export class GuestSession {
  readonly machine: VirtMachine;
  output = "";
  finished!: Promise<MachineExit>;

  constructor(
    image: GuestImage,
    opts: {
      firmware?: boolean;
      append?: string;
      sstc?: boolean;
      memory?: number;
      /** Harts (default 1). */
      harts?: number;
      /** Harts on host threads (default: when there are several harts, as `parley run --cpus`). */
      threads?: boolean;
      /** Host threads for the harts (default: one per hart, at most the host's cores, as `parley run`); fewer overcommit them. */
      hostThreads?: number;
      /** Pause-loop exiting window (VirtMachineOptions.pauseLoopWindow) and Zawrs, for comparisons. */
      pauseLoopWindow?: number;
      zawrs?: boolean;
      /** The initramfs to boot instead of the image's own (e.g. the image's with programs added). */
      initrd?: Uint8Array;
      virtio?: VirtioDevice[];
      console?: "uart" | "hvc";
      /** The translator: "on", "off" (the interpreter alone) or "eager"; default as CpuOptions.jit. */
      jit?: "on" | "off" | "eager";
      /**
       * Restore instead of boot: the machine is built `fromSnapshot`, this fills it (RAM and state,
       * e.g. restoreIntoMachine), and it is resumed once running.
       */
      restore?: (machine: VirtMachine) => void;
      /** An incoming migration: built `fromSnapshot`, started later by start() (the migration restores it). */
      incoming?: boolean;
    } = {},
  ) {
    const decoder = new TextDecoder();
    const harts = opts.harts ?? testHarts();
    const threads = opts.threads ?? harts > 1;
    this.machine = new VirtMachine({
      module: loadCoreModule({ shared: threads }),
      hartThreads: threads ? nodeHartThreads() : undefined,
      // As `parley run --cpus N` does: one host thread per hart, at most the host's cores.
      hostThreads: threads ? (opts.hostThreads ?? Math.min(harts, availableParallelism())) : undefined,
      pauseLoopWindow: opts.pauseLoopWindow,
      zawrs: opts.zawrs,
      harts,
      ramSize: opts.memory ?? 512 << 20,
      fromSnapshot: opts.restore !== undefined || opts.incoming === true,
      kernel: opts.restore || opts.incoming ? undefined : new Uint8Array(readFileSync(image.kernel)),
      initrd: opts.restore || opts.incoming ? undefined : (opts.initrd ?? new Uint8Array(readFileSync(image.initrd))),
      firmware: opts.firmware ? new Uint8Array(readFileSync(image.opensbi.fwDynamic!)) : undefined,
      bootargs: opts.append ?? (opts.console === "hvc" ? DEFAULT_APPEND_HVC : DEFAULT_APPEND),
      sstc: opts.sstc,
      virtio: opts.virtio,
      console: opts.console,
      jit: jitFromEnvironment(process.env, opts.jit),
      clock: nodeClock,
      output: (bytes) => {
        this.output += decoder.decode(bytes, { stream: true });
      },
    });
    if (opts.incoming) return;
    opts.restore?.(this.machine);
    this.start();
    if (opts.restore) void this.machine.resume();
  }

  /** Runs the machine (done by the constructor unless `incoming`). */
  start(): void {
    this.finished = this.machine.run();
  }

  /** Resolves once `pattern` appears in the output after position `from`; rejects on timeout or machine exit. */
  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    this.finished.then(() => (exited = true));
    for (;;) {
      const match = pattern.exec(this.output.slice(from));
      if (match) return match;
      if (exited) throw new Error(`guest stopped before ${pattern} appeared; output tail:\n${this.output.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; output tail:\n${this.output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Waits for the shell prompt, then keeps kernel messages off the console (dmesg -n 1) so that
   * they cannot interleave with command output; the kernel log stays readable with dmesg.
   */
  async shell(timeoutMs: number): Promise<void> {
    await this.waitFor(/root@parley:[^\n]*# /, timeoutMs);
    const quiet = await this.run("dmesg -n 1");
    if (quiet.status !== 0) throw new Error(`dmesg -n 1 failed: ${quiet.text}`);
  }

  /**
   * Runs a shell command; returns its output and exit status. The output is taken between two
   * markers the command prints itself, so the shell's echo of the command line (which line
   * editing may wrap and redraw) never mixes in.
   */
  async run(command: string, timeoutMs = 60_000): Promise<{ text: string; status: number }> {
    const tag = `PARLEY${Math.random().toString(36).slice(2, 10)}`;
    const start = this.output.length;
    // The end marker starts a line of its own even when the output does not end with a newline;
    // that extra newline is not part of the command's output.
    this.machine.sendInput(new TextEncoder().encode(`echo ${tag}S; ${command}; printf '\\n${tag}E%d\\n' $?\n`));
    const end = await this.waitFor(new RegExp(`\\n${tag}E(\\d+)`), timeoutMs, start);
    const all = this.output.slice(start, start + end.index);
    const begin = new RegExp(`(?:^|\\n)${tag}S\\r?\\n`).exec(all);
    if (!begin) throw new Error(`start marker of ${JSON.stringify(command)} not found in:\n${all}`);
    return { text: all.slice(begin.index + begin[0].length).replace(/\r/g, ""), status: Number(end[1]) };
  }
}
