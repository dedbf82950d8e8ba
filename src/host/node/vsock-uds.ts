// The virtio-vsock backend for Node: Firecracker's "hybrid vsock" convention over Unix sockets.
//
// - Host to guest: Parley listens on the Unix socket `uds`. A host program connects and sends
//   "CONNECT <port>\n"; Parley asks the guest for a connection to its AF_VSOCK port <port>, and
//   once the guest accepted, answers "OK <host_port>\n" (host_port: the port Parley picked for
//   the host end). From then on bytes flow both ways. If the guest refuses, or the line is not a
//   valid CONNECT, the Unix connection is closed without a reply.
// - Guest to host: a guest connection to CID 2 port P is a Unix connection to `<uds>_<P>`; RST
//   to the guest when nobody listens there.
//
// Both directions keep Unix half-close semantics (allowHalfOpen): a host program's shutdown(SHUT_WR)
// reaches the guest as SHUTDOWN(SEND), and the guest's as end of stream.
import { existsSync, lstatSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { VsockBackend, VsockCloseReason, VsockConnection, VsockConnectRequest, VsockDeviceApi, VsockHostStream } from "../../virtio/vsock/backend.ts";

export interface UdsVsockOptions {
  /** Path of the listening Unix socket; guest connections to port P go to `${uds}_${P}`. */
  uds: string;
  /** Diagnostics (connection refused, bad CONNECT line...). */
  log?: (message: string) => void;
  /** Host programs must send their CONNECT line within this. Default 5 s. */
  handshakeTimeoutMs?: number;
  /** Host programs waiting for the guest (CONNECT sent, no OK yet), at most. Default 256. */
  maxPending?: number;
}

/** Longest accepted CONNECT line ("CONNECT 4294967295\r\n" is 20 bytes). */
const MAX_CONNECT_LINE = 64;
const CONNECT_LINE = /^CONNECT ([0-9]{1,10})\r?$/;

/** Adapts a Unix socket to VsockHostStream. */
class SocketStream implements VsockHostStream {
  connection: VsockConnection | undefined;
  private done = false;
  constructor(
    private readonly socket: Socket,
    private readonly onConnected?: (hostPort: number) => void,
  ) {}

  /** Wires socket events to the connection (after the handshake, if any). */
  attach(connection: VsockConnection): void {
    this.connection = connection;
    const socket = this.socket;
    socket.on("data", (chunk: Buffer) => {
      if (this.done) return; // closed by the device: drain and discard
      if (!connection.send(chunk)) socket.pause();
    });
    socket.on("end", () => {
      if (!this.done) connection.end();
    });
    socket.on("close", (hadError: boolean) => {
      if (this.done) return;
      this.done = true;
      if (hadError) connection.reset();
      else connection.close();
    });
  }

  write(data: Uint8Array): void {
    if (this.done) return;
    const n = data.length;
    this.socket.write(data, (err) => {
      if (!err) this.connection?.consumed(n);
    });
  }
  end(): void {
    if (!this.done) this.socket.end();
  }
  close(reason: VsockCloseReason): void {
    if (this.done) return;
    this.done = true;
    if (reason === "reset") {
      this.socket.destroy();
      return;
    }
    // Orderly: flush what the guest sent, then close (data already queued to the peer stays
    // readable after close on a Unix socket). Keep reading so the peer never blocks on us.
    this.socket.resume();
    this.socket.end(() => this.socket.destroy());
  }
  setFlowing(flowing: boolean): void {
    if (this.done) return;
    if (flowing) this.socket.resume();
    else this.socket.pause();
  }
  connected(hostPort: number): void {
    this.onConnected?.(hostPort);
  }
}

export class UdsVsockBackend implements VsockBackend {
  readonly uds: string;
  private device: VsockDeviceApi | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly log: (message: string) => void;
  private readonly handshakeTimeoutMs: number;
  private readonly maxPending: number;
  private pending = 0;

  constructor(options: UdsVsockOptions) {
    if (!options.uds) throw new Error("vsock: a Unix socket path (uds=...) is required");
    this.uds = options.uds;
    this.log = options.log ?? (() => {});
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5000;
    this.maxPending = options.maxPending ?? 256;
  }

  attach(device: VsockDeviceApi): void {
    this.device = device;
  }

  /** Open Unix connections (both directions). */
  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Starts listening on `uds` (a stale socket file there is replaced; any other file is an error). */
  async listen(): Promise<void> {
    if (this.server) return;
    if (existsSync(this.uds)) {
      if (!lstatSync(this.uds).isSocket()) throw new Error(`vsock: ${this.uds} exists and is not a socket`);
      unlinkSync(this.uds);
    }
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.onHostConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.uds, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (e) => this.log(`vsock: ${this.uds}: ${e.message}`));
    this.server = server;
  }

  /** Stops listening, drops every connection and removes the socket file. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      if (existsSync(this.uds) && lstatSync(this.uds).isSocket()) unlinkSync(this.uds);
    } catch {
      // already gone
    }
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => {}); // reported through 'close' (hadError)
  }

  // ---- host -> guest ----------------------------------------------------------------------

  private onHostConnection(socket: Socket): void {
    this.track(socket);
    if (this.pending >= this.maxPending) {
      this.log(`vsock: too many host connections waiting for the guest`);
      socket.destroy();
      return;
    }
    this.pending++;
    let waiting = true;
    const settle = () => {
      if (waiting) {
        waiting = false;
        this.pending--;
      }
    };
    socket.once("close", settle);
    let line = Buffer.alloc(0);
    const timer = setTimeout(() => {
      this.log("vsock: no CONNECT line in time");
      socket.destroy();
    }, this.handshakeTimeoutMs);
    timer.unref();
    const onData = (chunk: Buffer) => {
      const nl = chunk.indexOf(0x0a);
      if (nl < 0) {
        line = Buffer.concat([line, chunk]);
        if (line.length > MAX_CONNECT_LINE) {
          this.log("vsock: CONNECT line too long");
          clearTimeout(timer);
          socket.destroy();
        }
        return;
      }
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      const text = Buffer.concat([line, chunk.subarray(0, nl)]).toString("latin1");
      const rest = chunk.subarray(nl + 1);
      const m = CONNECT_LINE.exec(text);
      const port = m ? Number(m[1]) : NaN;
      if (!m || port > 0xffff_ffff) {
        this.log(`vsock: bad handshake ${JSON.stringify(text.slice(0, MAX_CONNECT_LINE))}`);
        socket.destroy();
        return;
      }
      this.connectToGuest(socket, port, rest, settle);
    };
    socket.on("data", onData);
    socket.resume();
  }

  private connectToGuest(socket: Socket, port: number, rest: Buffer, settle: () => void): void {
    const stream = new SocketStream(socket, (hostPort) => {
      settle();
      socket.write(`OK ${hostPort}\n`);
    });
    const connection = this.device?.connectToGuest(port, stream);
    if (!connection) {
      this.log(`vsock: guest port ${port}: refused (device not ready or connection limit)`);
      socket.destroy();
      return;
    }
    // Bytes the host program sends before the guest accepted (including any after the CONNECT
    // line) wait in the device, within its backlog limits; its half-close waits too. A program
    // that went away is noticed when the OK line cannot be written (or at the connect timeout).
    if (rest.length > 0) connection.send(rest);
    stream.attach(connection);
    socket.resume();
  }

  // ---- guest -> host ----------------------------------------------------------------------

  connect(request: VsockConnectRequest): void {
    const path = `${this.uds}_${request.hostPort}`;
    let socket: Socket;
    try {
      socket = createConnection({ path, allowHalfOpen: true });
    } catch (e) {
      this.log(`vsock: ${path}: ${e instanceof Error ? e.message : String(e)}`);
      request.refuse();
      return;
    }
    this.track(socket);
    let connected = false;
    socket.once("connect", () => {
      connected = true;
      const stream = new SocketStream(socket);
      const connection = request.accept(stream);
      if (!connection) {
        socket.destroy(); // the guest gave up meanwhile
        return;
      }
      stream.attach(connection);
    });
    socket.once("close", () => {
      if (!connected) {
        this.log(`vsock: guest connection to host port ${request.hostPort}: nobody listens on ${path}`);
        request.refuse();
      }
    });
  }
}
