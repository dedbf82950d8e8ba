import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VirtioVsock, type VirtioVsockOptions } from "../../virtio/vsock/device.ts";
import { VIRTIO_VSOCK_OP_RST, VIRTIO_VSOCK_SHUTDOWN_MASK, VIRTIO_VSOCK_SHUTDOWN_SEND } from "../../virtio/vsock/spec.ts";
import { GuestDriver, GuestStack, type GuestSocket } from "../../virtio/testing/vsock.ts";
import { UdsVsockBackend } from "./vsock-uds.ts";

async function setup(t: { after: (fn: () => unknown) => void }, options: Partial<VirtioVsockOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "parley-vsock-"));
  const uds = join(dir, "v.sock");
  const logs: string[] = [];
  const backend = new UdsVsockBackend({ uds, log: (m) => logs.push(m) });
  await backend.listen();
  const device = new VirtioVsock({ guestCid: 3, backend, ...options });
  const driver = new GuestDriver(device, { rxBuffers: 256, memorySize: 64 << 20 });
  const guest = new GuestStack(driver);
  // The guest "runs": it handles interrupts every millisecond.
  const run = { paused: false };
  const timer = setInterval(() => run.paused || guest.poll(), 1);
  const servers: Server[] = [];
  t.after(async () => {
    clearInterval(timer);
    device.reset();
    for (const s of servers) s.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });
  /** A host service for guest connections to CID 2 port `port`. */
  const serve = async (port: number, onSocket: (s: Socket) => void) => {
    const server = createServer({ allowHalfOpen: true }, onSocket);
    servers.push(server);
    await new Promise<void>((r) => server.listen(`${uds}_${port}`, r));
    return server;
  };
  /** A host program connecting into the guest. */
  const dial = (port: number) => {
    const socket = createConnection({ path: uds, allowHalfOpen: true });
    socket.write(`CONNECT ${port}\n`);
    return socket;
  };
  return { uds, backend, device, driver, guest, serve, dial, logs, run };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function collect(socket: Socket) {
  const state = { data: Buffer.alloc(0), ended: false, closed: false };
  socket.on("data", (c: Buffer) => (state.data = Buffer.concat([state.data, c])));
  socket.on("end", () => (state.ended = true));
  socket.on("close", () => (state.closed = true));
  socket.on("error", () => {});
  return state;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

test("host -> guest: CONNECT <port>, OK <host_port>, bytes both ways, half-close, clean close", async (t) => {
  const { guest, dial, device } = await setup(t);
  guest.listen(5000);
  const socket = dial(5000);
  const host = collect(socket);
  await until("OK line", () => host.data.includes("\n"));
  assert.match(host.data.toString(), /^OK 1073741824\n$/);
  const g = guest.accepted[0];
  assert.equal(g.port, 5000);
  socket.write("ping");
  await until("ping in the guest", () => g.text === "ping");
  g.write(new TextEncoder().encode("pong"));
  await until("pong on the host", () => host.data.toString().endsWith("pong"));
  socket.end(); // host shutdown(SHUT_WR)
  await until("SHUTDOWN(SEND) in the guest", () => g.peerShutdown === VIRTIO_VSOCK_SHUTDOWN_SEND);
  g.write(new TextEncoder().encode(" still here"));
  await until("data after the host's half-close", () => host.data.toString().endsWith("still here"));
  g.shutdown(VIRTIO_VSOCK_SHUTDOWN_MASK); // guest close()
  await until("host socket closed", () => host.ended && host.closed);
  await until("connection gone", () => device.connectionCount === 0);
});

test("host -> guest: a refused port closes the Unix connection without OK; so does a bad CONNECT line", async (t) => {
  const { dial, uds, logs, device } = await setup(t);
  const refused = collect(dial(6000)); // nobody listens in the guest: the guest stack answers RST
  await until("end of stream", () => refused.ended);
  assert.equal(refused.data.length, 0);
  for (const line of ["HELLO\n", "CONNECT\n", "CONNECT 99999999999\n", "CONNECT -1\n", "x".repeat(100)]) {
    const s = createConnection({ path: uds });
    const st = collect(s);
    s.write(line);
    await until(`closed after ${JSON.stringify(line.slice(0, 20))}`, () => st.closed);
    assert.equal(st.data.length, 0);
  }
  assert.ok(logs.some((l) => l.includes("bad handshake")));
  assert.ok(logs.some((l) => l.includes("too long")));
  assert.equal(device.connectionCount, 0);
});

test("guest -> host: connects to <uds>_<port>, echo, guest closes; RST when nobody listens", async (t) => {
  const { guest, serve, device } = await setup(t);
  const hostSide: ReturnType<typeof collect>[] = [];
  await serve(7000, (s) => {
    hostSide.push(collect(s));
    s.pipe(s); // echo, and end when the guest ends
  });
  const g = guest.connect(40000, 7000);
  await until("connected", () => g.state === "connected");
  g.write(new TextEncoder().encode("hello host"));
  await until("echo", () => g.text === "hello host");
  g.shutdown(VIRTIO_VSOCK_SHUTDOWN_SEND);
  await until("host saw end of stream", () => hostSide[0].ended);
  await until("echo server's end reaches the guest", () => (g.peerShutdown & VIRTIO_VSOCK_SHUTDOWN_SEND) !== 0);
  g.shutdown(VIRTIO_VSOCK_SHUTDOWN_MASK);
  await until("closed", () => hostSide[0].closed && device.connectionCount === 0);

  const nobody = guest.connect(40001, 7001);
  await until("refused", () => nobody.state === "refused");
  assert.ok(nobody.wasReset);
  assert.ok(guest.driver.log.some((p) => p.header.op === VIRTIO_VSOCK_OP_RST && p.header.dst_port === 40001));
});

test("guest -> host: the host service closing first sends SHUTDOWN to the guest, which answers RST", async (t) => {
  const { guest, serve, device } = await setup(t);
  await serve(7100, (s) => {
    s.on("error", () => {});
    s.end("bye\n");
  });
  const g = guest.connect(40000, 7100);
  await until("data and SHUTDOWN", () => g.text === "bye\n" && (g.peerShutdown & VIRTIO_VSOCK_SHUTDOWN_SEND) !== 0);
  g.shutdown(VIRTIO_VSOCK_SHUTDOWN_MASK);
  await until("connection gone", () => device.connectionCount === 0);
});

test("many connections at once, both directions, with flow control: every byte arrives in order", async (t) => {
  const { guest, serve, dial, device, backend } = await setup(t, { bufAlloc: 64 * 1024, hostBacklogBytes: 64 * 1024 });
  const N = 20;
  const SIZE = 300_000; // several times every buffer on the way
  // Guest -> host: N connections to an echo service.
  await serve(8000, (s) => s.pipe(s));
  const outgoing: { g: GuestSocket; data: Buffer }[] = [];
  for (let i = 0; i < N; i++) {
    const g = guest.connect(30000 + i, 8000);
    const data = pattern(SIZE, i + 1);
    outgoing.push({ g, data });
  }
  // Host -> guest: N host programs, each sends SIZE bytes and reads the guest's SIZE bytes.
  guest.listen(9000);
  const incoming: { socket: Socket; st: ReturnType<typeof collect>; data: Buffer }[] = [];
  for (let i = 0; i < N; i++) {
    const socket = dial(9000);
    incoming.push({ socket, st: collect(socket), data: pattern(SIZE, 1000 + i) });
  }
  await until("all connected", () => outgoing.every(({ g }) => g.state === "connected") && guest.accepted.length === N, 10_000);
  assert.ok(device.connectionCount >= 2 * N);
  for (const { g, data } of outgoing) g.write(data);
  await until("OK lines", () => incoming.every(({ st }) => st.data.includes("\n")), 10_000);
  const okLen = incoming.map(({ st }) => st.data.indexOf("\n") + 1);
  for (const { socket, data } of incoming) socket.write(data);
  // Each accepted guest socket matches a host program by its host port (from the OK line).
  const byHostPort = new Map(guest.accepted.map((g) => [g.peerPort, g]));
  incoming.forEach(({ st }, i) => {
    const port = Number(/^OK (\d+)\n/.exec(st.data.toString("latin1"))![1]);
    byHostPort.get(port)!.write(pattern(SIZE, 5000 + i));
  });
  await until(
    "all data",
    () => outgoing.every(({ g }) => g.received.length >= SIZE) && incoming.every(({ st }, i) => st.data.length >= okLen[i] + SIZE) && guest.accepted.every((g) => g.received.length >= SIZE),
    60_000,
  );
  for (const { g, data } of outgoing) assert.ok(g.received.equals(data), "echo intact");
  incoming.forEach(({ st }, i) => assert.ok(st.data.subarray(okLen[i]).equals(pattern(SIZE, 5000 + i)), `host program ${i} got the guest's bytes`));
  for (const g of guest.accepted) {
    const i = incoming.findIndex(({ st }) => Number(/^OK (\d+)\n/.exec(st.data.toString("latin1"))![1]) === g.peerPort);
    assert.ok(g.received.equals(incoming[i].data), `guest socket ${i} got the host program's bytes`);
  }
  assert.equal(device.counters.creditViolations, 0);
  for (const { socket } of incoming) socket.destroy();
  for (const g of [...outgoing.map((o) => o.g), ...guest.accepted]) g.shutdown(VIRTIO_VSOCK_SHUTDOWN_MASK);
  await until("everything closed", () => device.connectionCount === 0 && backend.connectionCount === 0, 10_000);
});

test("connection limit: host programs beyond it are closed without OK", async (t) => {
  const { guest, dial, device } = await setup(t, { maxConnections: 3 });
  guest.listen(5000);
  const ok = [0, 1, 2].map(() => collect(dial(5000)));
  await until("three OK", () => ok.every((s) => s.data.includes("\n")));
  const over = collect(dial(5000));
  await until("refused", () => over.ended);
  assert.equal(over.data.length, 0);
  assert.equal(device.connectionCount, 3);
  assert.ok(ok.every((s) => !s.closed));
});

test("listen() replaces a stale socket file but refuses to clobber a regular file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "parley-vsock-"));
  try {
    const uds = join(dir, "v.sock");
    const a = new UdsVsockBackend({ uds });
    await a.listen();
    // Simulate a crash: the file stays.
    const b = new UdsVsockBackend({ uds });
    await b.listen();
    await b.close();
    await a.close();
    const file = join(dir, "plain");
    writeFileSync(file, "x");
    await assert.rejects(new UdsVsockBackend({ uds: file }).listen(), /not a socket/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("host -> guest: bytes in the same write as the CONNECT line arrive after the guest accepted; a host program that leaves early resets", async (t) => {
  const { guest, uds, device, run } = await setup(t);
  guest.listen(5000);
  const socket = createConnection({ path: uds, allowHalfOpen: true });
  const host = collect(socket);
  socket.write("CONNECT 5000\r\nearly bytes");
  await until("early bytes in the guest", () => guest.accepted[0]?.text === "early bytes");
  await until("OK line", () => host.data.includes("\n"));
  assert.match(host.data.toString(), /^OK \d+\n$/);
  // The guest is busy (does not answer), and the host program leaves; when the guest accepts,
  // the OK line cannot be delivered and the connection is reset.
  guest.listen(5001);
  run.paused = true;
  const quitter = createConnection({ path: uds });
  quitter.on("error", () => {});
  quitter.write("CONNECT 5001\n");
  await until("request pending", () => device.connectionCount === 2);
  quitter.destroy();
  await new Promise((r) => setTimeout(r, 20));
  run.paused = false;
  await until("reset", () => device.connectionCount === 1 && guest.accepted[1]?.state === "closed");
  assert.ok(guest.accepted[1].wasReset);
  socket.destroy();
});
