// Live migration: pre-copy of guest RAM while the guest runs, with dirty-page logging
// (VirtMachine.startDirtyLog/takeDirtyPages: pages written by any hart or by device DMA), in rounds
// until what is left to send fits the downtime goal, then a short stop-and-copy of the last dirty
// pages and of the machine's state. Disks are shared files, as with QEMU without block migration:
// the source drains its disk requests when it pauses, the destination opens the same files.
//
// The source only commits to the destination once the destination says the guest runs there
// (DONE). Until then any failure — the connection breaks, the destination dies or refuses, a
// timeout — stops dirty logging and resumes the source as it was: the guest never runs twice and is
// never lost.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { existsSync, rmSync } from "node:fs";
import type { VirtMachine } from "../machine/virt.ts";
import { nonZeroPageRuns, zeroPageTester } from "../host/node/memory-file.ts";
import {
  applyPages,
  bitmapPages,
  decodeJson,
  encodeFrame,
  encodeJsonFrame,
  encodePages,
  FRAME_DONE,
  FRAME_ERROR,
  FRAME_HELLO,
  FRAME_PAGES,
  FRAME_READY,
  FRAME_STATE,
  FrameReader,
  frameName,
  MIGRATION_PROTOCOL,
  MIGRATION_VERSION,
  MigrationProtocolError,
  PAGE_SIZE,
  type Frame,
  type MigrationEndpoint,
} from "./migration-protocol.ts";

export { parseMigrationEndpoint, type MigrationEndpoint } from "./migration-protocol.ts";

export class MigrationError extends Error {
  override name = "MigrationError";
}

export interface MigrationOptions {
  /** Stop-and-copy once the pages left would take about this long to send (default 20 ms). */
  downtimeTargetMs?: number;
  /** Pre-copy rounds at most before stop-and-copy, converged or not (default 30). */
  maxRounds?: number;
  /** How long to wait for the destination's answers (default 30 s). */
  timeoutMs?: number;
  /** Called after each round (for progress output). */
  onRound?: (round: MigrationRound) => void;
}

export interface MigrationRound {
  round: number;
  pages: number;
  bytes: number;
  ms: number;
}

export interface MigrationReport {
  /** From the start of the migration to the destination running the guest, ms. */
  totalMs: number;
  /** From pausing the source to the destination running the guest, ms. */
  downtimeMs: number;
  /** Pre-copy rounds (round 0 sends every non-zero page), not counting the stop-and-copy. */
  rounds: number;
  /** Every round's pages and bytes, the stop-and-copy last. */
  perRound: MigrationRound[];
  bytesSent: number;
  pagesSent: number;
  /** Pages sent in the stop-and-copy, and the state's bytes. */
  finalPages: number;
  stateBytes: number;
  /** What the destination reported: ms from receiving the state to the guest running. */
  destinationRestoreMs: number;
}

/** Minimal surface of the dirty log the migration needs (VirtMachine's). */
interface DirtyLog {
  startDirtyLog(): Promise<void>;
  takeDirtyPages(): Promise<Uint32Array>;
  stopDirtyLog(): void;
}

/** Pages per PAGES frame: 1 MiB of data at most. */
const PAGES_PER_FRAME = 256;

/** A framed, promise-based face of a socket. */
class Channel {
  private readonly reader = new FrameReader();
  private readonly queue: Frame[] = [];
  private waiting: { resolve: (frame: Frame) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;
  bytesSent = 0;

  constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      try {
        for (const frame of this.reader.feed(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length))) this.deliver(frame);
      } catch (err) {
        this.fail(err as Error);
        socket.destroy();
      }
    });
    socket.on("error", (err) => this.fail(new MigrationError(`the migration connection failed: ${err.message}`)));
    socket.on("close", () => this.fail(new MigrationError("the migration connection closed")));
  }

  private deliver(frame: Frame): void {
    if (frame.type === FRAME_ERROR) {
      const message = String(decodeJson(frame).message ?? "unknown error");
      this.fail(new MigrationError(`the other side gave up: ${message}`));
      return;
    }
    if (this.waiting) {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting.resolve(frame);
    } else {
      this.queue.push(frame);
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(this.failure);
  }

  async send(bytes: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    this.bytesSent += bytes.length;
    if (this.socket.write(bytes)) return;
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        this.socket.off("close", onClose);
        resolve();
      };
      const onClose = () => {
        this.socket.off("drain", onDrain);
        reject(this.failure ?? new MigrationError("the migration connection closed"));
      };
      this.socket.once("drain", onDrain);
      this.socket.once("close", onClose);
    });
  }

  /** The next frame, which must be of one of `types`; rejects on error, close or timeout. */
  next(types: number | readonly number[], timeoutMs: number): Promise<Frame> {
    if (this.failure) return Promise.reject(this.failure);
    const allowed = typeof types === "number" ? [types] : types;
    const queued = this.queue.shift();
    const check = (frame: Frame): Frame => {
      if (!allowed.includes(frame.type)) throw new MigrationProtocolError(`expected ${allowed.map(frameName).join(" or ")}, got ${frameName(frame.type)}`);
      return frame;
    };
    if (queued) return Promise.resolve().then(() => check(queued));
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new MigrationError(`no ${allowed.map(frameName).join(" or ")} from the other side within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = {
        resolve: (frame) => {
          clearTimeout(timer);
          try {
            resolve(check(frame));
          } catch (err) {
            reject(err as Error);
          }
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  /** Tells the other side why we stop (best effort) and closes. */
  abort(message: string): void {
    if (!this.socket.destroyed) this.socket.end(encodeJsonFrame(FRAME_ERROR, { message }));
  }
}

function connect(endpoint: MigrationEndpoint, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = endpoint.kind === "unix" ? createConnection(endpoint.path) : createConnection(endpoint.port, endpoint.host);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new MigrationError(`could not reach the destination within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(new MigrationError(`could not reach the destination: ${err.message}`));
    });
  });
}

/**
 * Migrates a running machine to `destination`. On success the source machine is left paused (the
 * caller ends it: the guest now runs at the destination); on failure it runs on as before and the
 * error says why.
 */
export async function migrateOut(vm: VirtMachine, config: unknown, destination: MigrationEndpoint, options: MigrationOptions = {}): Promise<MigrationReport> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const downtimeTargetMs = options.downtimeTargetMs ?? 20;
  const maxRounds = options.maxRounds ?? 30;
  if (vm.paused) throw new MigrationError("the machine is paused: resume it before migrating (a paused guest is better saved with a snapshot)");
  const log = vm as unknown as DirtyLog;
  const started = performance.now();
  const channel = new Channel(await connect(destination, timeoutMs));
  const ram = vm.hostRam;
  const ramBytes = new Uint8Array(ram.memory.buffer, ram.ramWasmBase, ram.ramSize);
  const isZeroPage = zeroPageTester(ramBytes);
  const perRound: MigrationRound[] = [];
  let pagesSent = 0;
  let pausedHere = false;
  let logging = false;
  let pausedAt = 0;

  const sendPages = async (pages: readonly number[]): Promise<number> => {
    let bytes = 0;
    for (let i = 0; i < pages.length; i += PAGES_PER_FRAME) {
      const { payload } = encodePages(ramBytes, isZeroPage, pages.slice(i, i + PAGES_PER_FRAME));
      const frame = encodeFrame(FRAME_PAGES, payload);
      await channel.send(frame);
      bytes += frame.length;
    }
    pagesSent += pages.length;
    return bytes;
  };

  try {
    await channel.send(encodeJsonFrame(FRAME_HELLO, { protocol: MIGRATION_PROTOCOL, version: MIGRATION_VERSION, config, ramSize: ram.ramSize, harts: vm.hartCount }));
    await channel.next(FRAME_READY, timeoutMs);
    await log.startDirtyLog();
    logging = true;
    // Round 0: every page that is not zero (the destination's RAM starts zero).
    let roundStart = performance.now();
    const nonZero = nonZeroPageRuns(ramBytes).flatMap(([first, count]) => Array.from({ length: count }, (_, i) => first + i));
    let bytes = await sendPages(nonZero);
    perRound.push({ round: 0, pages: nonZero.length, bytes, ms: performance.now() - roundStart });
    options.onRound?.(perRound[0]);
    // Pre-copy rounds: what the guest dirtied meanwhile, until the rest is small enough.
    let dirty = bitmapPages(await log.takeDirtyPages());
    for (let round = 1; round <= maxRounds; round++) {
      const last = perRound[perRound.length - 1];
      const bytesPerMs = last.ms > 0 ? last.bytes / last.ms : Infinity;
      const estimateMs = (dirty.length * (PAGE_SIZE + 5)) / bytesPerMs;
      if (estimateMs <= downtimeTargetMs || dirty.length <= 16) break;
      roundStart = performance.now();
      bytes = await sendPages(dirty);
      perRound.push({ round, pages: dirty.length, bytes, ms: performance.now() - roundStart });
      options.onRound?.(perRound[perRound.length - 1]);
      dirty = bitmapPages(await log.takeDirtyPages());
    }
    const rounds = perRound.length;
    // Stop and copy: the harts stop, the devices drain; the last dirty pages and the state go.
    pausedAt = performance.now();
    await vm.pause();
    pausedHere = true;
    const finalPages = [...new Set([...dirty, ...bitmapPages(await log.takeDirtyPages())])].sort((a, b) => a - b);
    roundStart = performance.now();
    bytes = await sendPages(finalPages);
    const stateFrame = encodeJsonFrame(FRAME_STATE, { machine: vm.saveState() });
    await channel.send(stateFrame);
    perRound.push({ round: rounds, pages: finalPages.length, bytes: bytes + stateFrame.length, ms: performance.now() - roundStart });
    const done = decodeJson(await channel.next(FRAME_DONE, timeoutMs));
    const finished = performance.now();
    log.stopDirtyLog();
    logging = false;
    channel.socket.end();
    return {
      totalMs: finished - started,
      downtimeMs: finished - pausedAt,
      rounds,
      perRound,
      bytesSent: channel.bytesSent,
      pagesSent,
      finalPages: finalPages.length,
      stateBytes: stateFrame.length,
      destinationRestoreMs: typeof done.restoreMs === "number" ? done.restoreMs : NaN,
    };
  } catch (err) {
    channel.abort((err as Error).message);
    channel.socket.destroy();
    if (logging) log.stopDirtyLog();
    if (pausedHere) await vm.resume();
    throw err instanceof MigrationError ? err : new MigrationError(err instanceof MigrationProtocolError ? `the destination broke the protocol: ${err.message}` : `migration failed: ${(err as Error).message}`);
  }
}


/** What the destination learns from HELLO: the VM description to build the machine from. */
export interface IncomingHello {
  config: unknown;
  ramSize: number;
  harts: number;
}

export interface IncomingResult<T> {
  /** What `build` returned, now restored and resumed. */
  machine: T;
  /** The VirtMachine inside it, running the guest. */
  vm: VirtMachine;
  pagesReceived: number;
  bytesReceived: number;
  restoreMs: number;
}

/** A listening destination: `accept()` serves the first source that connects. */
export interface IncomingListener {
  /** Where it listens (the resolved TCP port, for tcp:HOST:0). */
  readonly endpoint: MigrationEndpoint;
  accept<T>(build: (hello: IncomingHello) => Promise<{ machine: T; vm: VirtMachine; start: () => void }>, options?: { timeoutMs?: number }): Promise<IncomingResult<T>>;
  close(): void;
}

/** Listens at `endpoint` for one incoming migration (`parley run --incoming`). */
export async function listenForMigration(endpoint: MigrationEndpoint): Promise<IncomingListener> {
  if (endpoint.kind === "unix" && existsSync(endpoint.path)) rmSync(endpoint.path);
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new MigrationError(`cannot listen at ${describe(endpoint)}: ${err.message}`)));
    if (endpoint.kind === "unix") server.listen(endpoint.path, resolve);
    else server.listen(endpoint.port, endpoint.host, resolve);
  });
  const address = server.address();
  const bound: MigrationEndpoint = endpoint.kind === "tcp" && address && typeof address === "object" ? { ...endpoint, port: address.port } : endpoint;
  const close = () => {
    server.close();
    if (endpoint.kind === "unix") rmSync(endpoint.path, { force: true });
  };
  return {
    endpoint: bound,
    close,
    accept: async (build, options = {}) => {
      const socket = await new Promise<Socket>((resolve) => server.once("connection", resolve));
      server.close();
      socket.setNoDelay(true);
      try {
        return await receive(new Channel(socket), build, options.timeoutMs ?? 60_000);
      } finally {
        if (endpoint.kind === "unix") rmSync(endpoint.path, { force: true });
      }
    },
  };
}

function describe(endpoint: MigrationEndpoint): string {
  return endpoint.kind === "unix" ? `unix:${endpoint.path}` : `tcp:${endpoint.host}:${endpoint.port}`;
}

async function receive<T>(
  channel: Channel,
  build: (hello: IncomingHello) => Promise<{ machine: T; vm: VirtMachine; start: () => void }>,
  timeoutMs: number,
): Promise<IncomingResult<T>> {
  let built: { machine: T; vm: VirtMachine; start: () => void } | undefined;
  try {
    const hello = decodeJson(await channel.next(FRAME_HELLO, timeoutMs));
    if (hello.protocol !== MIGRATION_PROTOCOL || hello.version !== MIGRATION_VERSION) {
      throw new MigrationProtocolError(`the source speaks ${String(hello.protocol)} version ${String(hello.version)}; this Parley speaks ${MIGRATION_PROTOCOL} version ${MIGRATION_VERSION}`);
    }
    if (typeof hello.ramSize !== "number" || typeof hello.harts !== "number") throw new MigrationProtocolError("HELLO: ramSize and harts are required");
    built = await build({ config: hello.config, ramSize: hello.ramSize, harts: hello.harts });
    const vm = built.vm;
    const ram = vm.hostRam;
    if (ram.ramSize !== hello.ramSize) throw new MigrationError(`the destination machine has ${ram.ramSize} bytes of RAM, the source ${hello.ramSize}`);
    const ramBytes = new Uint8Array(ram.memory.buffer, ram.ramWasmBase, ram.ramSize);
    // Running already (paused until the state arrives): starting hart threads is not downtime.
    built.start();
    await channel.send(encodeJsonFrame(FRAME_READY, {}));
    let pagesReceived = 0;
    let bytesReceived = 0;
    for (;;) {
      const frame = await channel.next([FRAME_PAGES, FRAME_STATE], timeoutMs);
      bytesReceived += frame.payload.length;
      if (frame.type === FRAME_PAGES) {
        pagesReceived += applyPages(ramBytes, frame.payload);
        continue;
      }
      const stateReceived = performance.now();
      const body = decodeJson(frame);
      // The hart threads started early must have stopped before hart state is written.
      await vm.hartThreadsStopped();
      // Migration moves the same VM: its generation ID stays (a snapshot restore is a clone instead).
      vm.restoreState(body.machine);
      await vm.resume();
      const restoreMs = performance.now() - stateReceived;
      await channel.send(encodeJsonFrame(FRAME_DONE, { restoreMs }));
      channel.socket.end();
      return { machine: built.machine, vm, pagesReceived, bytesReceived, restoreMs };
    }
  } catch (err) {
    channel.abort((err as Error).message);
    channel.socket.destroy();
    if (built) built.vm.stop();
    throw err instanceof MigrationError ? err : new MigrationError(`incoming migration failed: ${(err as Error).message}`);
  }
}
