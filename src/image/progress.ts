// Progress reporting for the image build: plain log lines for every step (suitable for the CLI
// and for logs), plus, when asked for and stderr is a terminal, a spinner for running steps and a
// cli-progress bar for downloads. Without a terminal only the log lines appear.
import cliProgress from "cli-progress";

export interface ReporterOptions {
  progress?: boolean;
  log?: (line: string) => void;
}

export interface Bar {
  /** percent: 0..100; detail: a short text shown after the bar. */
  update(percent: number, detail?: string): void;
  stop(): void;
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export class Reporter {
  private readonly sink: (line: string) => void;
  private readonly interactive: boolean;
  private spinnerLabel: string | undefined;
  private spinnerTimer: NodeJS.Timeout | undefined;
  private spinnerStart = 0;
  private spinnerFrame = 0;

  constructor(opts: ReporterOptions = {}) {
    this.interactive = !!opts.progress && !!process.stderr.isTTY;
    this.sink = opts.log ?? (opts.progress ? (line) => process.stderr.write(line + "\n") : () => {});
  }

  /** Emits a log line, keeping an active spinner below it. */
  log(line: string): void {
    this.clearSpinner();
    this.sink(line);
    this.drawSpinner();
  }

  /** Runs one step: logs its label, animates a spinner meanwhile, and returns fn's result. */
  async step<T>(label: string, fn: () => Promise<T>): Promise<T> {
    this.log(label);
    if (!this.interactive || this.spinnerLabel !== undefined) return fn();
    this.spinnerLabel = label;
    this.spinnerStart = Date.now();
    this.spinnerTimer = setInterval(() => this.drawSpinner(), 100);
    try {
      return await fn();
    } finally {
      clearInterval(this.spinnerTimer);
      this.clearSpinner();
      this.spinnerLabel = undefined;
    }
  }

  /** A percentage bar for a download (cli-progress on a terminal; nothing otherwise). */
  bar(label: string): Bar {
    if (!this.interactive) return { update() {}, stop() {} };
    const pausedSpinner = this.spinnerLabel;
    if (pausedSpinner !== undefined) {
      clearInterval(this.spinnerTimer);
      this.clearSpinner();
      this.spinnerLabel = undefined;
    }
    const bar = new cliProgress.SingleBar(
      { format: `  ${label} [{bar}] {percentage}% {detail}`, hideCursor: true, clearOnComplete: true, barsize: 30, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    bar.start(100, 0, { detail: "" });
    return {
      update: (percent, detail) => bar.update(Math.round(percent * 10) / 10, { detail: detail ?? "" }),
      stop: () => {
        bar.stop();
        if (pausedSpinner !== undefined) {
          this.spinnerLabel = pausedSpinner;
          this.spinnerTimer = setInterval(() => this.drawSpinner(), 100);
        }
      },
    };
  }

  private drawSpinner(): void {
    if (this.spinnerLabel === undefined) return;
    const secs = ((Date.now() - this.spinnerStart) / 1000).toFixed(1);
    this.spinnerFrame = (this.spinnerFrame + 1) % SPINNER.length;
    process.stderr.write(`\r\x1b[K${SPINNER[this.spinnerFrame]} ${this.spinnerLabel} (${secs} s)`);
  }

  private clearSpinner(): void {
    if (this.spinnerLabel !== undefined) process.stderr.write("\r\x1b[K");
  }
}

/** "112.0 MB" style sizes for log lines. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}
