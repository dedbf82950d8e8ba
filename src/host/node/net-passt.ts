// A virtio-net backend without privileges: user-mode networking through passt (Debian package
// `passt`), the way QEMU's `-netdev stream` uses it. passt terminates the guest's Layer 2 in a
// process of its own and carries the guest's TCP and UDP over ordinary host sockets; it
// answers the guest's ARP, DHCP, NDP and DHCPv6, and binds the host ports forwarded to the guest.
//
// passt speaks the stream framing of Parley's socket backend (a 4-byte big-endian length before
// each frame, src/host/node/net-socket.ts), so the frames go through a SocketNetBackend. The
// stream is one end of a socket pair that Parley hands passt as a descriptor (`--fd`, which
// implies `--one-off`: passt quits once the other end closes). That ties passt's life to
// Parley's without a socket file: whether Parley closes the backend, exits, or is killed, the
// kernel closes its end and passt ends by itself. Node makes exactly such a pair for a child's
// extra "pipe" stdio entry (libuv creates it with socketpair(AF_UNIX, SOCK_STREAM)).
//
// Readiness: passt writes its PID file (`--pid`) once it is set up, its forwarded host ports
// bound, just before it starts serving; a port it cannot bind makes it exit with a message
// instead. Parley waits, bounded, for one or the other. The PID file lives in a private temporary
// directory that is removed as soon as it has been read. Started as root, passt switches to an
// unprivileged user by itself (nobody); Parley names that user (`--runas 65534:65534`) and gives
// it the directory, so that passt can still write the file after the switch.
//
// Only options that Debian 12's passt (2023-03) and later ones share are used.

import { spawn, type ChildProcess } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NetBackend, NetBackendCounters } from "../../virtio/net/backend.ts";
import { SocketNetBackend } from "./net-socket.ts";

/** A host port forwarded to the guest (QEMU's hostfwd). */
export interface PasstForward {
  protocol: "tcp" | "udp";
  /** The host address to bind; undefined: every address. */
  hostAddress?: string;
  hostPort: number;
  guestPort: number;
}

/** The descriptor number under which passt finds its end of the socket pair (stdin, stdout, stderr come first). */
export const PASST_STREAM_FD = 3;
/**
 * The user passt runs as when Parley is root: nobody/nogroup, the account passt itself would
 * switch to, named by number so that Parley can give it the PID file's directory.
 */
export const PASST_ROOT_RUNAS = { uid: 65534, gid: 65534 } as const;

/** A forward as passt's port specification: `[ADDRESS/]HOSTPORT[:GUESTPORT]`, e.g. `127.0.0.1/2222:22`. */
export function passtPortSpec(forward: PasstForward): string {
  const address = forward.hostAddress === undefined ? "" : `${forward.hostAddress}/`;
  const target = forward.guestPort === forward.hostPort ? "" : `:${forward.guestPort}`;
  return `${address}${forward.hostPort}${target}`;
}

/** A forward in QEMU's hostfwd syntax, for messages: `tcp:127.0.0.1:2222-:22`. */
export function formatHostForward(forward: PasstForward): string {
  const address = forward.hostAddress === undefined ? "" : forward.hostAddress.includes(":") ? `[${forward.hostAddress}]` : forward.hostAddress;
  return `${forward.protocol}:${address}:${forward.hostPort}-:${forward.guestPort}`;
}

export interface PasstArgumentsOptions {
  forwards: readonly PasstForward[];
  /** passt's descriptor of the stream to Parley. */
  fd: number;
  /** Where passt writes its PID once it is ready. */
  pidFile: string;
  /** `UID:GID` to switch to (needed when started as root). */
  runAs?: string;
  /** The MTU passt offers by DHCP and NDP: the guest NIC's. */
  mtu?: number;
}

/** The command line for passt (without the program name). Pure. */
export function passtArguments(options: PasstArgumentsOptions): string[] {
  const args = ["--foreground", "--quiet", "--fd", String(options.fd), "--pid", options.pidFile];
  if (options.runAs !== undefined) args.push("--runas", options.runAs);
  if (options.mtu !== undefined) args.push("--mtu", String(options.mtu));
  const tcp = options.forwards.filter((f) => f.protocol === "tcp");
  const udp = options.forwards.filter((f) => f.protocol === "udp");
  for (const f of tcp) args.push("--tcp-ports", passtPortSpec(f));
  for (const f of udp) args.push("--udp-ports", passtPortSpec(f));
  // Without UDP forwards of its own, passt would also forward the UDP ports numbered as the TCP
  // ones: forward exactly what was asked, as QEMU does.
  if (tcp.length > 0 && udp.length === 0) args.push("--udp-ports", "none");
  return args;
}

export interface PasstBackendOptions {
  forwards?: readonly PasstForward[];
  /** The MTU offered to the guest (its NIC's). */
  mtu?: number;
  /** The passt program; default "passt" on PATH. */
  command?: string;
  /** How long passt may take to get ready; default 10 000 ms. */
  startTimeoutMs?: number;
  /** Where passt's messages and link events go; default stderr with a "parley: " prefix. */
  log?: (message: string) => void;
}

const defaultLog = (message: string) => {
  process.stderr.write(`parley: ${message}\n`);
};

/** Lines passt writes that say nothing: its failed attempts to reach a system logger that is not there. */
const NOISE = /^Failed to send \d+ bytes to syslog/;
/** How much of passt's output is kept for an error message. */
const OUTPUT_LIMIT = 8192;

/** passt's messages worth showing, one line each. */
export function passtMessages(output: string): string[] {
  return output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !NOISE.test(line));
}

/** The NetBackend over a passt child process. */
export class PasstNetBackend implements NetBackend {
  private closed = false;
  private exited: Promise<void>;

  /** Use startPasstBackend. */
  constructor(
    private readonly child: ChildProcess,
    private readonly link: SocketNetBackend,
    readonly forwards: readonly PasstForward[],
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get description(): string {
    const forwards = this.forwards.length ? `, hostfwd ${this.forwards.map(formatHostForward).join(" ")}` : "";
    const state = this.closed ? "closed" : this.link.linkUp ? "running" : "passt has exited";
    return `user (passt pid ${this.child.pid}${forwards}; ${state})`;
  }

  get counters(): NetBackendCounters {
    return this.link.counters;
  }

  get linkUp(): boolean {
    return this.link.linkUp;
  }

  send(frame: Uint8Array): void {
    this.link.send(frame);
  }

  onReceive(handler: (frame: Uint8Array) => void): void {
    this.link.onReceive(handler);
  }

  onLinkChange(handler: (up: boolean) => void): void {
    this.link.onLinkChange(handler);
  }

  pauseReceive(): void {
    this.link.pauseReceive();
  }

  resumeReceive(): void {
    this.link.resumeReceive();
  }

  /** Closes Parley's end of the stream, which ends passt; a passt still there after 2 s is killed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.link.close();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 2000);
    await this.exited;
    clearTimeout(timer);
  }

  /** @internal Whether close() was called (an exit before it is news). */
  get closing(): boolean {
    return this.closed;
  }
}

/**
 * Starts passt with `forwards` and resolves with the backend once passt is ready. A missing passt,
 * a port it cannot bind or a passt that does not get ready in time rejects with a message saying
 * what to do; nothing is left behind.
 */
export async function startPasstBackend(options: PasstBackendOptions = {}): Promise<PasstNetBackend> {
  const forwards = options.forwards ?? [];
  const log = options.log ?? defaultLog;
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const root = process.geteuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), "parley-passt-"));
  const pidFile = join(dir, "passt.pid");
  let child: ChildProcess | undefined;
  try {
    if (root) chownSync(dir, PASST_ROOT_RUNAS.uid, PASST_ROOT_RUNAS.gid);
    const args = passtArguments({ forwards, fd: PASST_STREAM_FD, pidFile, runAs: root ? `${PASST_ROOT_RUNAS.uid}:${PASST_ROOT_RUNAS.gid}` : undefined, mtu: options.mtu });
    const command = options.command ?? "passt";
    const started = spawn(command, args, { stdio: ["ignore", "pipe", "pipe", "pipe"] });
    child = started;
    let output = "";
    let ready = false;
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      if (!ready) output = (output + text).slice(-OUTPUT_LIMIT);
      else for (const line of passtMessages(text)) log(`passt (pid ${started.pid}): ${line}`);
    };
    started.stdout!.on("data", collect);
    started.stderr!.on("data", collect);
    // An exit is reported once its last words have been read.
    const outputDone = Promise.all([started.stdout!, started.stderr!].map((stream) => new Promise((resolve) => stream.once("close", resolve))));

    const outcome = await new Promise<{ pid: number } | { error: string }>((resolve) => {
      const finish = (result: { pid: number } | { error: string }) => {
        clearInterval(poll);
        clearTimeout(timer);
        started.off("error", onError);
        started.off("exit", onExit);
        resolve(result);
      };
      const onError = (err: NodeJS.ErrnoException) =>
        finish({
          error:
            err.code === "ENOENT"
              ? `${command} is not installed (or not on PATH): user networking needs it; install Debian package passt (apt-get install passt)`
              : `cannot start ${command}: ${err.message}`,
        });
      const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
        void outputDone.then(() => {
          const said = passtMessages(output);
          const why = said.length ? `: ${said.slice(-3).join("; ")}` : "";
          const hint = /bind/i.test(why)
            ? " (is a forwarded host port already in use, or below 1024 without the privilege to bind it?)"
            : /user namespace/i.test(why)
              ? " (passt sandboxes itself in a user namespace, which the kernel refuses inside a chroot and where a container forbids them: run Parley outside the chroot, or allow user namespaces)"
              : /PID file/i.test(why) && root
              ? ` (passt runs as user ${PASST_ROOT_RUNAS.uid}, which must reach ${dir}: set TMPDIR to a directory it can enter)`
              : "";
          finish({ error: `passt exited while starting (${signal ? `signal ${signal}` : `exit code ${code}`})${why}${hint}` });
        });
      const poll = setInterval(() => {
        let text = "";
        try {
          text = readFileSync(pidFile, "utf8");
        } catch {
          return; // not written yet
        }
        const pid = Number(text.trim());
        if (Number.isInteger(pid) && pid > 0) finish({ pid });
      }, 10);
      const timer = setTimeout(() => finish({ error: `passt did not get ready within ${(timeoutMs / 1000).toFixed(1)} s${output ? `: ${passtMessages(output).slice(-3).join("; ")}` : ""}` }), timeoutMs);
      started.once("error", onError);
      started.once("exit", onExit);
    });
    if ("error" in outcome) throw new Error(outcome.error);
    ready = true;
    for (const line of passtMessages(output)) log(`passt (pid ${started.pid}): ${line}`);

    const link = new SocketNetBackend("connect", `passt (pid ${started.pid})`, { log });
    link.attach(started.stdio[PASST_STREAM_FD] as net.Socket);
    const backend = new PasstNetBackend(started, link, forwards);
    started.once("exit", (code, signal) => {
      if (!backend.closing) log(`passt (pid ${started.pid}) exited (${signal ? `signal ${signal}` : `exit code ${code}`}); the guest's user network is down`);
    });
    child = undefined; // the backend owns it now
    return backend;
  } finally {
    if (child) {
      (child.stdio[PASST_STREAM_FD] as net.Socket | null)?.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
