// Drives a booted guest's console from a test: send a command, wait for its output and status.
import { readFileSync } from "node:fs";
import { VirtMachine, type MachineExit } from "../../src/machine/virt.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import type { GuestImage } from "../../src/host/node/image/index.ts";

export class GuestSession {
  readonly machine: VirtMachine;
  output = "";
  readonly finished: Promise<MachineExit>;

  constructor(image: GuestImage, opts: { firmware?: boolean; append?: string; sstc?: boolean; memory?: number } = {}) {
    const decoder = new TextDecoder();
    this.machine = new VirtMachine({
      module: loadCoreModule(),
      ramSize: opts.memory ?? 512 << 20,
      kernel: new Uint8Array(readFileSync(image.kernel)),
      initrd: new Uint8Array(readFileSync(image.initrd)),
      firmware: opts.firmware ? new Uint8Array(readFileSync(image.opensbi.fwDynamic!)) : undefined,
      bootargs: opts.append ?? "console=ttyS0 earlycon=sbi",
      sstc: opts.sstc,
      output: (bytes) => {
        this.output += decoder.decode(bytes, { stream: true });
      },
    });
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

  /** Runs a shell command; returns its output (without the echoed command) and exit status. */
  async run(command: string, timeoutMs = 60_000): Promise<{ text: string; status: number }> {
    const tag = `__PARLEY_${Math.random().toString(36).slice(2, 10)}__`;
    const start = this.output.length;
    this.machine.sendInput(new TextEncoder().encode(`${command}; echo ${tag}$?\n`));
    const match = await this.waitFor(new RegExp(`\\n${tag}(\\d+)`), timeoutMs, start);
    const all = this.output.slice(start);
    const body = all.slice(0, match.index);
    const firstNewline = body.indexOf("\n"); // drop the echoed command line
    return { text: body.slice(firstNewline + 1).replace(/\r/g, ""), status: Number(match[1]) };
  }
}
