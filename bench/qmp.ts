// A small QEMU Machine Protocol client for the benchmarks that drive qemu-system-riscv64 (snapshot
// and migration in bench/lifecycle.ts): the greeting and capabilities negotiation, commands with
// their answers matched by id, and asynchronous events kept until someone waits for them.
//
// QMP (docs/interop/qmp-spec.rst in QEMU) sends one JSON object per line: the greeting
// {"QMP": {...}}, a command's success {"return": ..., "id": ...} or failure
// {"error": {"class": ..., "desc": ...}, "id": ...}, and events {"event": ..., "data": ...,
// "timestamp": {...}}. The parsing is pure (parseQmpLines, classifyQmpMessage) so that it can be
// tested on recorded traffic.
import { createConnection, type Socket } from "node:net";

export type QmpMessage =
  | { kind: "greeting"; version: string; capabilities: string[] }
  | { kind: "return"; id: string | undefined; value: unknown }
  | { kind: "error"; id: string | undefined; errorClass: string; description: string }
  | { kind: "event"; event: string; data: Record<string, unknown>; timestampS: number | undefined };

export class QmpError extends Error {
  override name = "QmpError";
}

/**
 * Splits what arrived so far into whole lines (QMP ends each message with CRLF or LF) and the
 * unfinished rest, which the next chunk continues. Blank lines are dropped.
 */
export function parseQmpLines(buffered: string): { lines: string[]; rest: string } {
  const parts = buffered.split("\n");
  const rest = parts.pop()!;
  return { lines: parts.map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== ""), rest };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** One line of QMP as a message; throws QmpError naming what is wrong with a line that is not one. */
export function classifyQmpMessage(line: string): QmpMessage {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new QmpError(`QMP: not JSON: ${line.slice(0, 200)}`);
  }
  if (!isObject(json)) throw new QmpError(`QMP: expected an object, got ${line.slice(0, 200)}`);
  const id = typeof json.id === "string" ? json.id : json.id === undefined ? undefined : String(json.id);
  if (isObject(json.QMP)) {
    const version = isObject(json.QMP.version) && isObject(json.QMP.version.qemu) ? json.QMP.version.qemu : undefined;
    const v = version ? `${version.major}.${version.minor}.${version.micro}` : "unknown";
    const capabilities = Array.isArray(json.QMP.capabilities) ? json.QMP.capabilities.map(String) : [];
    return { kind: "greeting", version: v, capabilities };
  }
  if ("return" in json) return { kind: "return", id, value: json.return };
  if (isObject(json.error)) {
    return { kind: "error", id, errorClass: String(json.error.class ?? "GenericError"), description: String(json.error.desc ?? "") };
  }
  if (typeof json.event === "string") {
    const ts = isObject(json.timestamp) ? Number(json.timestamp.seconds) + Number(json.timestamp.microseconds) / 1e6 : NaN;
    return { kind: "event", event: json.event, data: isObject(json.data) ? json.data : {}, timestampS: Number.isFinite(ts) ? ts : undefined };
  }
  throw new QmpError(`QMP: neither greeting, answer nor event: ${line.slice(0, 200)}`);
}

type EventMessage = Extract<QmpMessage, { kind: "event" }>;

/** A QMP connection past the capabilities negotiation. */
export class QmpClient {
  private rest = "";
  private nextId = 1;
  private readonly pending = new Map<string, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  private readonly events: EventMessage[] = [];
  private eventWaiters: { name: string; resolve: (event: EventMessage) => void }[] = [];
  private failure: Error | undefined;
  private greetingWaiter: ((message: QmpMessage) => void) | undefined;
  private greetingFailed: ((err: Error) => void) | undefined;
  /** The QEMU version from the greeting. */
  version = "unknown";

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("error", (err) => this.fail(new QmpError(`QMP connection: ${err.message}`)));
    socket.on("close", () => this.fail(new QmpError("QMP connection closed")));
  }

  /**
   * Connects to a QMP socket and negotiates. Retries until `timeoutMs` while QEMU has not created
   * the socket yet, refuses, or drops the connection before the negotiation is done (a connection
   * made while QEMU is still starting can be reset).
   */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let client: QmpClient | undefined;
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path);
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        });
        client = new QmpClient(socket);
        await client.negotiate(Math.max(1000, deadline - Date.now()));
        return client;
      } catch (err) {
        client?.close();
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private async negotiate(timeoutMs: number): Promise<void> {
    const greeting = await new Promise<QmpMessage>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const timer = setTimeout(() => reject(new QmpError(`no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
      this.greetingFailed = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      this.greetingWaiter = (message) => {
        clearTimeout(timer);
        resolve(message);
      };
    });
    if (greeting.kind !== "greeting") throw new QmpError(`QMP: expected the greeting first, got a ${greeting.kind}`);
    this.version = greeting.version;
    await this.execute("qmp_capabilities");
  }

  private onData(chunk: string): void {
    const { lines, rest } = parseQmpLines(this.rest + chunk);
    this.rest = rest;
    for (const line of lines) {
      let message: QmpMessage;
      try {
        message = classifyQmpMessage(line);
      } catch (err) {
        this.fail(err as Error);
        this.socket.destroy();
        return;
      }
      this.deliver(message);
    }
  }

  private deliver(message: QmpMessage): void {
    if (this.greetingWaiter) {
      const waiter = this.greetingWaiter;
      this.greetingWaiter = undefined;
      waiter(message);
      return;
    }
    if (message.kind === "event") {
      const at = this.eventWaiters.findIndex((w) => w.name === message.event);
      if (at >= 0) this.eventWaiters.splice(at, 1)[0].resolve(message);
      else this.events.push(message);
      return;
    }
    if (message.kind === "greeting") return;
    const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id!);
    if (message.kind === "return") waiter.resolve(message.value);
    else waiter.reject(new QmpError(`QMP ${message.errorClass}: ${message.description}`));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    if (this.greetingWaiter) {
      this.greetingWaiter = undefined;
      this.greetingFailed?.(this.failure);
    }
    for (const waiter of this.pending.values()) waiter.reject(this.failure);
    this.pending.clear();
  }

  /** Runs a command; resolves with its "return" value, rejects with its error. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = `c${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.socket.write(JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id }) + "\n");
    });
  }

  /** The next event called `name` (one that already arrived first); rejects after timeoutMs. */
  waitForEvent(name: string, timeoutMs: number): Promise<EventMessage> {
    const at = this.events.findIndex((e) => e.event === name);
    if (at >= 0) return Promise.resolve(this.events.splice(at, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = {
        name,
        resolve: (event: EventMessage) => {
          clearTimeout(timer);
          resolve(event);
        },
      };
      const timer = setTimeout(() => {
        this.eventWaiters = this.eventWaiters.filter((w) => w !== waiter);
        reject(new QmpError(`no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.eventWaiters.push(waiter);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
