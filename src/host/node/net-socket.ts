// A virtio-net backend that links two Parley processes over a Unix domain stream socket, like
// QEMU's `-netdev stream` (and the older `-netdev socket`): each Ethernet frame travels as a
// 4-byte big-endian length followed by the frame. The same framing is spoken by QEMU
// (`-netdev stream,server=off,addr.type=unix,addr.path=PATH`) and passt, so either end may be one
// of those.
//
// listenSocketBackend(path) is the server: it accepts one peer at a time (a second connection is
// refused while one is up; after the peer leaves, the next may connect); frames sent while no peer
// is connected are dropped and counted. connectSocketBackend(path) is the client: it retries until
// a listener exists or a timeout passes.

import { existsSync, lstatSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import net from "node:net";
import { countDrop, newNetBackendCounters, type NetBackend, type NetBackendCounters } from "../../virtio/net/backend.ts";

/** Bytes of the big-endian length in front of each frame. */
export const STREAM_LENGTH_BYTES = 4;
/**
 * The largest frame accepted from a peer: QEMU's NET_BUFSIZE (4096 + 65536). A longer length is a
 * protocol error (the stream cannot be resynchronized), so the connection is dropped. Frames
 * longer than the device's MTU but within this limit are dropped by the device and counted.
 */
export const DEFAULT_MAX_STREAM_FRAME = 4096 + 65536;

/** Encodes one frame for the stream: 4-byte big-endian length, then the frame. */
export function encodeStreamFrame(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(STREAM_LENGTH_BYTES + frame.length);
  new DataView(out.buffer).setUint32(0, frame.length, false);
  out.set(frame, STREAM_LENGTH_BYTES);
  return out;
}

export interface StreamDecodeResult {
  /** Complete frames, each a fresh array the caller may keep. */
  frames: Uint8Array[];
  /** Set when the stream announced a frame over the limit; the decoder then accepts nothing more. */
  error?: string;
}

/**
 * Incremental parser for the length-prefixed stream. It depends only on the bytes pushed (no I/O,
 * no timers), so any chunking of a stream gives the same frames. Work is linear in the bytes; the
 * only allocation is each frame's own buffer, whose size is checked against the limit first.
 */
export class StreamFrameDecoder {
  private readonly lengthBytes = new Uint8Array(STREAM_LENGTH_BYTES);
  private lengthFill = 0;
  private frame: Uint8Array | undefined;
  private frameFill = 0;
  private failure: string | undefined;

  constructor(readonly maxFrameLength: number = DEFAULT_MAX_STREAM_FRAME) {
    if (!Number.isInteger(maxFrameLength) || maxFrameLength < 0 || maxFrameLength > 0xffff_ffff) {
      throw new RangeError(`bad maximum frame length ${maxFrameLength}`);
    }
  }

  /** Bytes received that belong to a frame not yet complete (length prefix included). */
  get pendingBytes(): number {
    return this.frame ? STREAM_LENGTH_BYTES + this.frameFill : this.lengthFill;
  }

  get error(): string | undefined {
    return this.failure;
  }

  push(chunk: Uint8Array): StreamDecodeResult {
    const frames: Uint8Array[] = [];
    if (this.failure) return { frames, error: this.failure };
    let pos = 0;
    while (pos < chunk.length) {
      if (!this.frame) {
        const take = Math.min(STREAM_LENGTH_BYTES - this.lengthFill, chunk.length - pos);
        this.lengthBytes.set(chunk.subarray(pos, pos + take), this.lengthFill);
        this.lengthFill += take;
        pos += take;
        if (this.lengthFill < STREAM_LENGTH_BYTES) break;
        this.lengthFill = 0;
        const b = this.lengthBytes;
        const length = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
        if (length > this.maxFrameLength) {
          this.failure = `peer sent a frame length of ${length} bytes (the limit is ${this.maxFrameLength}); not a Parley/QEMU stream?`;
          return { frames, error: this.failure };
        }
        if (length === 0) {
          frames.push(new Uint8Array(0));
          continue;
        }
        this.frame = new Uint8Array(length);
        this.frameFill = 0;
      } else {
        const take = Math.min(this.frame.length - this.frameFill, chunk.length - pos);
        this.frame.set(chunk.subarray(pos, pos + take), this.frameFill);
        this.frameFill += take;
        pos += take;
        if (this.frameFill === this.frame.length) {
          frames.push(this.frame);
          this.frame = undefined;
        }
      }
    }
    return { frames };
  }
}

/** Decodes a whole byte string at once: the frames, the bytes left over, and any error. Pure. */
export function decodeStreamFrames(bytes: Uint8Array, maxFrameLength: number = DEFAULT_MAX_STREAM_FRAME): StreamDecodeResult & { pendingBytes: number } {
  const decoder = new StreamFrameDecoder(maxFrameLength);
  const result = decoder.push(bytes);
  return { ...result, pendingBytes: decoder.pendingBytes };
}

export interface SocketBackendOptions {
  /** Largest frame accepted from the peer; default DEFAULT_MAX_STREAM_FRAME. */
  maxFrameLength?: number;
  /** send() drops frames while this many bytes already wait to be written; default 1 MiB. */
  maxBufferedBytes?: number;
  /** connectSocketBackend: how long to wait for a listener; default 10 000 ms. */
  connectTimeoutMs?: number;
  /** connectSocketBackend: delay between attempts; default 100 ms. */
  retryIntervalMs?: number;
  /** Where connection events and errors go; default stderr with a "parley: " prefix. */
  log?: (message: string) => void;
}

const defaultLog = (message: string) => {
  process.stderr.write(`parley: ${message}\n`);
};

/** sun_path holds 108 bytes including the terminating NUL on Linux. */
const MAX_UNIX_PATH_BYTES = 107;

function checkPath(path: string): void {
  if (path.length === 0) throw new Error("net socket: the socket path is empty");
  if (Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) {
    throw new Error(`net socket: the path ${path} is longer than the ${MAX_UNIX_PATH_BYTES} bytes a Unix socket address allows; use a shorter path`);
  }
}

/** The NetBackend over one stream socket (either side). */
export class SocketNetBackend implements NetBackend {
  readonly counters: NetBackendCounters = newNetBackendCounters();
  private socket: net.Socket | undefined;
  private server: net.Server | undefined;
  private handler: ((frame: Uint8Array) => void) | undefined;
  private linkHandler: ((up: boolean) => void) | undefined;
  private paused = false;
  private closed = false;
  /** Frames that arrived in a chunk after the device asked for a pause (at most one chunk's worth). */
  private backlog: Uint8Array[] = [];
  private drainScheduled = false;
  private readonly maxFrame: number;
  private readonly maxBuffered: number;
  readonly log: (message: string) => void;

  /** Use listenSocketBackend / connectSocketBackend. */
  constructor(
    readonly mode: "listen" | "connect",
    readonly path: string,
    options: SocketBackendOptions = {},
  ) {
    this.maxFrame = options.maxFrameLength ?? DEFAULT_MAX_STREAM_FRAME;
    this.maxBuffered = options.maxBufferedBytes ?? 1 << 20;
    this.log = options.log ?? defaultLog;
  }

  get description(): string {
    const state = this.closed ? "closed" : this.socket ? "connected" : this.mode === "listen" ? "waiting for a peer" : "disconnected";
    return `socket ${this.mode}:${this.path} (${state})`;
  }

  get linkUp(): boolean {
    return this.socket !== undefined;
  }

  send(frame: Uint8Array): void {
    const socket = this.socket;
    if (!socket || this.closed || !socket.writable) {
      countDrop(this.counters.sendDrops, "no-peer");
      return;
    }
    if (socket.writableLength > this.maxBuffered) {
      countDrop(this.counters.sendDrops, "congested");
      return;
    }
    socket.write(encodeStreamFrame(frame));
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
  }

  onReceive(handler: (frame: Uint8Array) => void): void {
    this.handler = handler;
  }

  onLinkChange(handler: (up: boolean) => void): void {
    this.linkHandler = handler;
  }

  pauseReceive(): void {
    this.paused = true;
    this.socket?.pause();
  }

  resumeReceive(): void {
    this.paused = false;
    if (this.backlog.length > 0) this.scheduleDrain();
    else this.socket?.resume();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.backlog = [];
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
    const server = this.server;
    this.server = undefined;
    // Closing the server also removes its socket file (libuv unlinks it).
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** @internal Takes over a connected socket. */
  attach(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.socket = socket;
    const decoder = new StreamFrameDecoder(this.maxFrame);
    socket.on("data", (chunk: Buffer) => {
      if (this.socket !== socket) return;
      const { frames, error } = decoder.push(chunk);
      for (const f of frames) this.deliver(f);
      if (error) {
        countDrop(this.counters.receiveDrops, "protocol-error");
        this.log(`net ${this.description}: ${error}; dropping the connection`);
        socket.destroy();
      }
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      if (!this.closed && e.code !== "EPIPE" && e.code !== "ECONNRESET") this.log(`net socket ${this.path}: ${e.message}`);
    });
    socket.on("close", () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (!this.closed) {
        this.log(`net socket ${this.path}: peer disconnected${this.mode === "listen" ? "; waiting for the next one" : ""}`);
        this.linkHandler?.(false);
      }
    });
    if (this.paused) socket.pause();
    this.linkHandler?.(true);
  }

  /** @internal The listening server (listen mode). */
  setServer(server: net.Server): void {
    this.server = server;
    server.on("connection", (socket) => {
      if (this.socket || this.closed) {
        this.log(`net socket ${this.path}: refusing a second peer (one is already connected)`);
        socket.destroy();
        return;
      }
      this.log(`net socket ${this.path}: peer connected`);
      this.attach(socket);
    });
    server.on("error", (e) => this.log(`net socket ${this.path}: ${e.message}`));
  }

  private deliver(frame: Uint8Array): void {
    this.counters.framesReceived++;
    this.counters.bytesReceived += frame.length;
    if (this.paused || this.backlog.length > 0) {
      this.backlog.push(frame);
      return;
    }
    if (this.handler) this.handler(frame);
    else countDrop(this.counters.receiveDrops, "no-receiver");
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      while (!this.paused && this.backlog.length > 0) {
        const frame = this.backlog.shift()!;
        if (this.handler) this.handler(frame);
        else countDrop(this.counters.receiveDrops, "no-receiver");
      }
      if (!this.paused) this.socket?.resume();
    });
  }
}

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

function listenOnce(server: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      server.off("listening", onListening);
      reject(e);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(path);
  });
}

/** Resolves true when something accepts a connection on `path`, false when refused / absent. */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Listens on a Unix socket at `path` for one peer (another Parley with socket=connect:PATH, or
 * QEMU's `-netdev stream,server=off`). Resolves once listening; frames sent before a peer
 * connects are dropped (counted as "no-peer"). A stale socket file left by a dead process is
 * replaced; a live one is an error.
 */
export async function listenSocketBackend(path: string, options: SocketBackendOptions = {}): Promise<SocketNetBackend> {
  checkPath(path);
  const backend = new SocketNetBackend("listen", path, options);
  const server = net.createServer();
  try {
    await listenOnce(server, path);
  } catch (e) {
    const code = errorCode(e);
    if (code !== "EADDRINUSE") throw listenError(path, e);
    let isSocket = false;
    try {
      isSocket = lstatSync(path).isSocket();
    } catch {
      // vanished meanwhile: just retry
      isSocket = true;
    }
    if (!isSocket) throw new Error(`net socket: ${path} exists and is not a socket; remove it or choose another path`);
    if (await probe(path)) throw new Error(`net socket: ${path} is already in use by a listening process`);
    try {
      unlinkSync(path);
    } catch (e2) {
      if (errorCode(e2) !== "ENOENT") throw listenError(path, e2);
    }
    try {
      await listenOnce(server, path);
    } catch (e3) {
      throw listenError(path, e3);
    }
  }
  backend.setServer(server);
  return backend;
}

function listenError(path: string, e: unknown): Error {
  const code = errorCode(e);
  // Node reports a missing directory as EACCES when binding a Unix socket.
  const why =
    code === "ENOENT" || ((code === "EACCES" || code === "EPERM") && !existsSync(dirname(path)))
      ? "its directory does not exist"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : code === "EADDRINUSE"
          ? "the address is in use"
          : (e as Error)?.message ?? String(e);
  return new Error(`net socket: cannot listen on ${path}: ${why}`);
}

function connectOnce(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    const onError = (e: Error) => {
      s.destroy();
      reject(e);
    };
    s.once("error", onError);
    s.once("connect", () => {
      s.off("error", onError);
      resolve(s);
    });
  });
}

/**
 * Connects to a Parley (or QEMU `-netdev stream,server=on`) listening on the Unix socket `path`,
 * retrying while nothing listens there yet (no file, or connection refused) until
 * connectTimeoutMs passes. The connection is not re-established if the peer goes away later;
 * frames are then dropped (counted as "no-peer").
 */
export async function connectSocketBackend(path: string, options: SocketBackendOptions = {}): Promise<SocketNetBackend> {
  checkPath(path);
  const timeout = options.connectTimeoutMs ?? 10_000;
  const interval = Math.max(1, options.retryIntervalMs ?? 100);
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      const socket = await connectOnce(path);
      const backend = new SocketNetBackend("connect", path, options);
      backend.attach(socket);
      return backend;
    } catch (e) {
      const code = errorCode(e);
      if (code !== "ENOENT" && code !== "ECONNREFUSED" && code !== "EAGAIN") {
        const why = code === "EACCES" || code === "EPERM" ? "permission denied" : code === "ENOTSOCK" ? "it is not a socket" : (e as Error).message;
        throw new Error(`net socket: cannot connect to ${path}: ${why}`);
      }
      if (Date.now() + interval > deadline) {
        throw new Error(
          `net socket: nothing is listening on ${path} (waited ${(timeout / 1000).toFixed(1)} s); ` +
            `start the other side first with --net socket=listen:${path}`,
        );
      }
      await new Promise((r) => setTimeout(r, interval));
    }
  }
}
