// Drives a guest's serial console through `parley run` as a person at a terminal would: wait for
// text, type a line, run a command and read its output and exit status.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

export interface CommandResult {
  status: number;
  output: string;
}

let nextMarker = 0;

export class ConsoleDriver {
  private readonly child: ChildProcessWithoutNullStreams;
  /** Everything the guest printed so far. */
  output = "";
  stderr = "";
  /** Where the next waitFor starts looking (text before it was consumed). */
  private cursor = 0;
  readonly exited: Promise<number | null>;
  private waiter: (() => void) | undefined;

  constructor(command: string, args: string[]) {
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.on("data", (d: Buffer) => {
      this.output += d.toString("latin1");
      this.waiter?.();
    });
    this.child.stderr.on("data", (d: Buffer) => {
      this.stderr += d.toString();
      this.waiter?.();
    });
    this.exited = new Promise((resolve) => this.child.on("close", (code) => resolve(code)));
    void this.exited.then(() => this.waiter?.());
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Waits until `pattern` appears after the cursor; moves the cursor past it; returns the match. */
  async waitFor(pattern: RegExp, timeoutMs: number, what = String(pattern)): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    const global = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g");
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      global.lastIndex = this.cursor;
      const m = global.exec(this.output);
      if (m) {
        this.cursor = m.index + m[0].length;
        return m;
      }
      if (exited) throw new Error(`parley exited while waiting for ${what}; console tail:\n${this.tail()}\nstderr:\n${this.stderr.slice(-2000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; console tail:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** Types a line (with Enter). */
  send(line: string): void {
    this.child.stdin.write(line + "\r");
  }

  /**
   * Runs a shell command at the prompt; returns its output (between two markers that its echo
   * cannot match: the quotes split them) and its exit status.
   */
  async run(command: string, timeoutMs = 120_000): Promise<CommandResult> {
    const id = ++nextMarker;
    this.send(`echo @@B""EGIN${id}; ${command}; echo @@E""ND${id} $?`);
    await this.waitFor(new RegExp(`@@BEGIN${id}\\r?\\n`), timeoutMs, `the start of: ${command}`);
    const start = this.cursor;
    const end = await this.waitFor(new RegExp(`@@END${id} (\\d+)`), timeoutMs, `the end of: ${command}`);
    const output = this.output.slice(start, this.cursor - end[0].length).replace(/\r/g, "");
    return { status: Number(end[1]), output };
  }

  /** run(), failing with the output unless the status is 0. */
  async check(command: string, timeoutMs = 120_000): Promise<string> {
    const result = await this.run(command, timeoutMs);
    if (result.status !== 0) throw new Error(`guest command failed with status ${result.status}: ${command}\n${result.output}`);
    return result.output;
  }

  tail(chars = 3000): string {
    return this.output.slice(-chars);
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}
