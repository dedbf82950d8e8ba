import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioVsock, VSOCK_HOST_PORT_BASE, VSOCK_RST_QUEUE_LIMIT } from "./device.ts";
import { buildVsockHeader, vsockHeader } from "./header.ts";
import {
  featureBit,
  VIRTIO_ID_VSOCK,
  VIRTIO_VSOCK_F_NO_IMPLIED_STREAM,
  VIRTIO_VSOCK_F_STREAM,
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_SHUTDOWN_MASK,
  VIRTIO_VSOCK_SHUTDOWN_RCV,
  VIRTIO_VSOCK_SHUTDOWN_SEND,
  VIRTIO_VSOCK_TYPE_SEQPACKET,
  VMADDR_CID_HOST,
  VSOCK_QUEUE_RX,
  VSOCK_QUEUE_TX,
} from "./spec.ts";
import { FakeBackend, FakeStream, GuestDriver, makeVsock, type Packet } from "../testing/vsock.ts";
import { FakeClock } from "../../testing/fakes.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const ops = (ps: Packet[]) => ps.map((p) => p.header.op);

/** Guest connects from guestPort to host port; backend accepts with a FakeStream. */
function guestConnect(guest: GuestDriver, backend: FakeBackend, guestPort: number, hostPort: number, stream = new FakeStream()) {
  guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: guestPort, dst_port: hostPort });
  const req = backend.requests.at(-1)!;
  assert.equal(req.hostPort, hostPort);
  assert.equal(req.guestPort, guestPort);
  stream.connection = req.accept(stream);
  assert.ok(stream.connection);
  guest.collect();
  const [resp] = guest.take((p) => p.header.dst_port === guestPort && p.header.op === VIRTIO_VSOCK_OP_RESPONSE);
  assert.ok(resp, "RESPONSE");
  return { stream, conn: stream.connection! };
}

test("identity, features and config: guest_cid is a read-only le64 (5.10.1-5.10.4)", () => {
  const backend = new FakeBackend();
  const dev = new VirtioVsock({ guestCid: 0x1234_5678, backend });
  assert.equal(dev.deviceId, VIRTIO_ID_VSOCK);
  assert.equal(dev.deviceId, 19);
  assert.deepEqual(dev.queueSizes.length, 3);
  assert.equal(dev.deviceFeatures, featureBit(VIRTIO_VSOCK_F_STREAM) | featureBit(VIRTIO_VSOCK_F_NO_IMPLIED_STREAM));
  assert.equal(dev.readConfig(0, 4), 0x1234_5678);
  assert.equal(dev.readConfig(4, 4), 0);
  assert.equal(dev.readConfig(0, 2), 0x5678);
  assert.equal(dev.readConfig(3, 1), 0x12);
  assert.equal(dev.readConfig(8, 1), undefined);
  assert.equal(dev.readConfig(0, 8), undefined);
  assert.equal(dev.writeConfig(0, 4, 9), false);
  assert.equal(dev.readConfig(0, 4), 0x1234_5678);
  for (const cid of [0, 1, 2, 0xffff_ffff, 2 ** 32, -1, 3.5, Number.NaN]) assert.throws(() => new VirtioVsock({ guestCid: cid, backend }), RangeError, String(cid));
  assert.ok(backend.device, "the device attached itself to the backend");
});

test("guest-initiated stream: REQUEST, RESPONSE, data both ways, orderly close", () => {
  const { backend, guest, device } = makeVsock({ guestCid: 42 });
  const { stream, conn } = guestConnect(guest, backend, 50000, 1234);
  assert.equal(device.connectionCount, 1);
  // The RESPONSE carried our addressing and credit.
  const resp = guest.log.find((p) => p.header.op === VIRTIO_VSOCK_OP_RESPONSE)!.header;
  assert.deepEqual(
    { src_cid: resp.src_cid, dst_cid: resp.dst_cid, src_port: resp.src_port, dst_port: resp.dst_port, type: resp.type, buf_alloc: resp.buf_alloc, fwd_cnt: resp.fwd_cnt },
    { src_cid: VMADDR_CID_HOST, dst_cid: 42, src_port: 1234, dst_port: 50000, type: 1, buf_alloc: 256 * 1024, fwd_cnt: 0 },
  );
  // Guest -> host.
  guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: 50000, dst_port: 1234 }, enc("hello "));
  guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: 50000, dst_port: 1234 }, enc("host"));
  assert.equal(stream.text, "hello host");
  // Host -> guest.
  assert.equal(conn.send(enc("hi guest")), true);
  const [rw] = guest.take((p) => p.header.op === VIRTIO_VSOCK_OP_RW);
  assert.equal(dec(rw.payload), "hi guest");
  assert.equal(rw.header.len, 8);
  assert.equal(rw.header.dst_port, 50000);
  assert.equal(rw.header.fwd_cnt, 10, "fwd_cnt reports what the host consumed");
  // Half close from the guest, then full.
  guest.send({ op: VIRTIO_VSOCK_OP_SHUTDOWN, src_port: 50000, dst_port: 1234, flags: VIRTIO_VSOCK_SHUTDOWN_SEND });
  assert.equal(stream.ended, true);
  assert.equal(stream.closed, undefined);
  assert.equal(conn.send(enc("still talking")), true);
  assert.equal(dec(guest.take((p) => p.header.op === VIRTIO_VSOCK_OP_RW)[0].payload), "still talking");
  guest.send({ op: VIRTIO_VSOCK_OP_SHUTDOWN, src_port: 50000, dst_port: 1234, flags: VIRTIO_VSOCK_SHUTDOWN_RCV });
  assert.equal(stream.closed, "closed");
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RST], "clean disconnect ends with RST from the device");
  assert.equal(device.connectionCount, 0);
  assert.equal(conn.open, false);
  assert.equal(conn.send(enc("x")), false);
});

test("guest-initiated: the backend refuses (nobody listens) -> RST; accepting late is refused", () => {
  const { backend, guest, device } = makeVsock();
  guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 7, dst_port: 9999 });
  assert.deepEqual(guest.take(), [], "nothing until the backend answers");
  backend.requests[0].refuse();
  const [rst] = guest.take();
  assert.equal(rst.header.op, VIRTIO_VSOCK_OP_RST);
  assert.equal(rst.header.src_port, 9999);
  assert.equal(rst.header.dst_port, 7);
  assert.equal(device.connectionCount, 0);
  assert.equal(backend.requests[0].accept(new FakeStream()), undefined);
  // The guest gives up (RST) before the backend answers.
  guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 8, dst_port: 9999 });
  guest.send({ op: VIRTIO_VSOCK_OP_RST, src_port: 8, dst_port: 9999 });
  assert.equal(device.connectionCount, 0);
  assert.equal(backend.requests[1].accept(new FakeStream()), undefined);
  assert.deepEqual(guest.take(), []);
});

test("host-initiated stream: REQUEST to the guest, RESPONSE, data, host close -> SHUTDOWN, guest RST", () => {
  const { backend, guest, device } = makeVsock();
  const stream = new FakeStream();
  const conn = backend.device.connectToGuest(5000, stream)!;
  assert.ok(conn);
  assert.equal(conn.hostPort, VSOCK_HOST_PORT_BASE);
  assert.equal(conn.guestPort, 5000);
  stream.connection = conn;
  const [req] = guest.take();
  assert.equal(req.header.op, VIRTIO_VSOCK_OP_REQUEST);
  assert.equal(req.header.src_cid, VMADDR_CID_HOST);
  assert.equal(req.header.dst_port, 5000);
  // Data the host sends before the guest accepted waits.
  conn.send(enc("early"));
  assert.deepEqual(guest.take(), []);
  guest.send({ op: VIRTIO_VSOCK_OP_RESPONSE, src_port: 5000, dst_port: conn.hostPort });
  assert.equal(stream.connectedPort, conn.hostPort);
  assert.equal(dec(guest.take()[0].payload), "early");
  guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: 5000, dst_port: conn.hostPort }, enc("reply"));
  assert.equal(stream.text, "reply");
  conn.send(enc("bye"));
  conn.close();
  const out = guest.take();
  assert.deepEqual(ops(out), [VIRTIO_VSOCK_OP_RW, VIRTIO_VSOCK_OP_SHUTDOWN], "data first, then SHUTDOWN");
  assert.equal(out[1].header.flags, VIRTIO_VSOCK_SHUTDOWN_MASK);
  assert.equal(device.connectionCount, 1, "waits for the guest's RST");
  guest.send({ op: VIRTIO_VSOCK_OP_RST, src_port: 5000, dst_port: conn.hostPort });
  assert.equal(device.connectionCount, 0);
  assert.deepEqual(guest.take(), [], "no RST for an RST");
  assert.equal(stream.closed, undefined, "the backend closed it itself: no call back");
  // A second host connection gets the next port.
  assert.equal(backend.device.connectToGuest(5000, new FakeStream())!.hostPort, VSOCK_HOST_PORT_BASE + 1);
});

test("host-initiated: the guest refuses with RST; host half-close sends SHUTDOWN(SEND)", () => {
  const { backend, guest } = makeVsock();
  const s1 = new FakeStream();
  const c1 = backend.device.connectToGuest(1, s1)!;
  guest.take();
  guest.send({ op: VIRTIO_VSOCK_OP_RST, src_port: 1, dst_port: c1.hostPort });
  assert.equal(s1.closed, "reset");
  assert.equal(c1.open, false);

  const s2 = new FakeStream();
  const c2 = backend.device.connectToGuest(2, s2)!;
  s2.connection = c2;
  guest.take();
  guest.send({ op: VIRTIO_VSOCK_OP_RESPONSE, src_port: 2, dst_port: c2.hostPort });
  c2.send(enc("last words"));
  c2.end();
  const out = guest.take();
  assert.deepEqual(ops(out), [VIRTIO_VSOCK_OP_RW, VIRTIO_VSOCK_OP_SHUTDOWN]);
  assert.equal(out[1].header.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
  assert.equal(c2.send(enc("more")), false, "nothing after end()");
  // The guest still sends, then closes: SHUTDOWN both -> RST, stream closed in order.
  guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: 2, dst_port: c2.hostPort }, enc("ok"));
  guest.send({ op: VIRTIO_VSOCK_OP_SHUTDOWN, src_port: 2, dst_port: c2.hostPort, flags: VIRTIO_VSOCK_SHUTDOWN_MASK });
  assert.equal(s2.text, "ok");
  assert.equal(s2.closed, "closed");
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RST]);
});

test("RST for packets that match no connection, unknown types and other CIDs; wrong source CID is dropped", () => {
  const { guest, backend, device } = makeVsock();
  const cases: [string, Parameters<GuestDriver["send"]>[0], boolean][] = [
    ["RW without connection", { op: VIRTIO_VSOCK_OP_RW, src_port: 1, dst_port: 2 }, true],
    ["SHUTDOWN without connection", { op: VIRTIO_VSOCK_OP_SHUTDOWN, src_port: 1, dst_port: 2 }, true],
    ["RESPONSE without connection", { op: VIRTIO_VSOCK_OP_RESPONSE, src_port: 1, dst_port: 2 }, true],
    ["CREDIT_REQUEST without connection", { op: VIRTIO_VSOCK_OP_CREDIT_REQUEST, src_port: 1, dst_port: 2 }, true],
    ["unknown op", { op: 99, src_port: 1, dst_port: 2 }, true],
    ["seqpacket REQUEST", { op: VIRTIO_VSOCK_OP_REQUEST, type: VIRTIO_VSOCK_TYPE_SEQPACKET, src_port: 1, dst_port: 2 }, true],
    ["REQUEST to another CID", { op: VIRTIO_VSOCK_OP_REQUEST, dst_cid: 7, src_port: 1, dst_port: 2 }, true],
    ["RST without connection", { op: VIRTIO_VSOCK_OP_RST, src_port: 1, dst_port: 2 }, false],
    ["RST of unknown type", { op: VIRTIO_VSOCK_OP_RST, type: 9, src_port: 1, dst_port: 2 }, false],
    ["spoofed source CID", { op: VIRTIO_VSOCK_OP_REQUEST, src_cid: 4, src_port: 1, dst_port: 2 }, false],
  ];
  for (const [what, fields, rst] of cases) {
    guest.send(fields);
    const out = guest.take();
    if (rst) {
      assert.deepEqual(ops(out), [VIRTIO_VSOCK_OP_RST], what);
      assert.equal(out[0].header.dst_port, 1, what);
      assert.equal(out[0].header.src_port, 2, what);
      assert.equal(out[0].header.dst_cid, 3, what);
    } else assert.deepEqual(out, [], what);
  }
  // The upper half of src_cid is reserved (5.10.6): 3 + 2^32 is not CID 3.
  const raw = buildVsockHeader(vsockHeader({ op: VIRTIO_VSOCK_OP_REQUEST, src_cid: 3, dst_cid: 2, src_port: 1, dst_port: 2 }));
  raw[4] = 1;
  guest.context.queues[VSOCK_QUEUE_TX].add([guest.memory.out(raw)]);
  guest.kick();
  assert.deepEqual(guest.take(), []);
  assert.equal(backend.requests.length, 0);
  assert.equal(device.connectionCount, 0);
  assert.equal(device.counters.dropped, 2);
});

test("protocol errors on a live connection reset it", () => {
  const { guest, backend, device } = makeVsock();
  const errors: [string, Parameters<GuestDriver["send"]>[0]][] = [
    ["second REQUEST", { op: VIRTIO_VSOCK_OP_REQUEST }],
    ["RESPONSE", { op: VIRTIO_VSOCK_OP_RESPONSE }],
    ["unknown op", { op: 42 }],
  ];
  let port = 100;
  for (const [what, fields] of errors) {
    const { stream } = guestConnect(guest, backend, port, 80);
    guest.send({ src_port: port, dst_port: 80, ...fields });
    assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RST], what);
    assert.equal(stream.closed, "reset", what);
    port++;
  }
  // RW after the guest said it sends no more.
  const { stream } = guestConnect(guest, backend, port, 80);
  guest.send({ op: VIRTIO_VSOCK_OP_SHUTDOWN, src_port: port, dst_port: 80, flags: VIRTIO_VSOCK_SHUTDOWN_SEND });
  guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: port, dst_port: 80 }, enc("x"));
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RST]);
  assert.equal(stream.closed, "reset");
  assert.equal(stream.bytes, 0);
  assert.equal(device.connectionCount, 0);
});

test("connection limit: REQUEST beyond it gets RST, host connects are refused, a freed slot is reusable", () => {
  const { guest, backend, device } = makeVsock({ maxConnections: 4 });
  backend.onConnect = (r) => {
    const s = new FakeStream();
    s.connection = r.accept(s);
  };
  for (let p = 1; p <= 3; p++) guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: p, dst_port: 80 });
  assert.ok(backend.device.connectToGuest(9, new FakeStream()));
  assert.equal(device.connectionCount, 4);
  guest.take();
  guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 5, dst_port: 80 });
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RST]);
  assert.equal(backend.requests.length, 3, "the backend never heard of it");
  assert.equal(backend.device.connectToGuest(10, new FakeStream()), undefined);
  assert.equal(device.counters.refusedLimit, 2);
  guest.send({ op: VIRTIO_VSOCK_OP_RST, src_port: 1, dst_port: 80 });
  guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 5, dst_port: 80 });
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RESPONSE]);
  assert.equal(device.connectionCount, 4);
});

test("flow control to the guest: never more than its buf_alloc in flight; CREDIT_UPDATE releases more", () => {
  const { guest, backend } = makeVsock({ hostBacklogBytes: 64 * 1024 });
  guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 1, dst_port: 80, buf_alloc: 10_000 });
  const stream = new FakeStream();
  const conn = backend.requests[0].accept(stream)!;
  guest.take();
  const data = new Uint8Array(50_000).map((_, i) => i * 7);
  let accepted = true;
  for (let at = 0; at < data.length; at += 5000) accepted = conn.send(data.subarray(at, at + 5000));
  assert.equal(accepted, true, "50 KB is below the 64 KiB high-water mark");
  let got = guest.take().flatMap((p) => [...p.payload]);
  assert.equal(got.length, 10_000, "exactly the guest's buf_alloc");
  let fwd = 10_000;
  while (got.length < data.length) {
    guest.creditUpdate(1, 80, fwd, 10_000);
    const more = guest.take().flatMap((p) => [...p.payload]);
    assert.ok(more.length <= 10_000 && more.length > 0);
    fwd += more.length;
    got = got.concat(more);
  }
  assert.deepEqual(Uint8Array.from(got), data);
  // Packets fit the 4 KiB rx buffers.
  assert.ok(guest.log.every((p) => p.header.len <= 4096 - 44));
});

test("backpressure to the host: send() says stop above the high-water mark, setFlowing(true) after draining", () => {
  const { guest, backend, device } = makeVsock({ hostBacklogBytes: 8192 });
  guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 1, dst_port: 80, buf_alloc: 0 });
  const stream = new FakeStream();
  const conn = backend.requests[0].accept(stream)!;
  guest.take();
  assert.equal(conn.send(new Uint8Array(4096)), true);
  assert.equal(conn.send(new Uint8Array(4096)), false, "at the mark");
  assert.equal(stream.flowing, false);
  assert.equal(guest.take().length, 0, "the guest has no credit");
  guest.creditUpdate(1, 80, 0, 256 * 1024);
  assert.equal(guest.take().reduce((a, p) => a + p.payload.length, 0), 8192);
  assert.equal(stream.flowing, true);
  // A backend that ignores the signal is cut off at the hard cap.
  guest.send({ op: VIRTIO_VSOCK_OP_CREDIT_UPDATE, src_port: 1, dst_port: 80, buf_alloc: 0, fwd_cnt: 8192 });
  for (let i = 0; i < 100 && conn.open; i++) conn.send(new Uint8Array(4096));
  assert.equal(conn.open, false);
  assert.equal(stream.closed, "reset");
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RST]);
  assert.equal(device.connectionCount, 0);
});

test("flow control from the guest: past our buf_alloc is a reset; consumption is advertised with CREDIT_UPDATE", () => {
  const { guest, backend, device } = makeVsock({ bufAlloc: 8192 });
  const stream = new FakeStream();
  stream.autoConsume = false;
  const { conn } = guestConnect(guest, backend, 1, 80, stream);
  guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: 1, dst_port: 80 }, new Uint8Array(8000));
  assert.equal(guest.take().length, 0);
  conn.consumed(100);
  const [upd] = guest.take();
  assert.equal(upd.header.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE, "the guest knew of < 64 KiB free: tell it at once");
  assert.equal(upd.header.fwd_cnt, 100);
  assert.equal(upd.header.buf_alloc, 8192);
  guest.send({ op: VIRTIO_VSOCK_OP_CREDIT_REQUEST, src_port: 1, dst_port: 80 });
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_CREDIT_UPDATE]);
  conn.consumed(1e9); // more than outstanding: clamped
  assert.equal(guest.take()[0].header.fwd_cnt, 8000);
  guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: 1, dst_port: 80 }, new Uint8Array(8192));
  assert.equal(stream.bytes, 16192);
  assert.equal(stream.closed, undefined);
  guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: 1, dst_port: 80 }, new Uint8Array(1));
  assert.equal(stream.closed, "reset", "one byte past the credit");
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RST]);
  assert.equal(device.counters.creditViolations, 1);
});

test("guest SHUTDOWN(RECEIVE) drops the backlog and lets the host keep going", () => {
  const { guest, backend } = makeVsock({ hostBacklogBytes: 4096 });
  guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 1, dst_port: 80, buf_alloc: 0 });
  const stream = new FakeStream();
  const conn = backend.requests[0].accept(stream)!;
  guest.take();
  assert.equal(conn.send(new Uint8Array(5000)), false);
  guest.send({ op: VIRTIO_VSOCK_OP_SHUTDOWN, src_port: 1, dst_port: 80, flags: VIRTIO_VSOCK_SHUTDOWN_RCV });
  assert.equal(stream.flowing, true);
  assert.equal(conn.send(new Uint8Array(5000)), true, "discarded");
  conn.end();
  const out = guest.take();
  assert.deepEqual(ops(out), [VIRTIO_VSOCK_OP_SHUTDOWN]);
});

test("malformed chains set NEEDS_RESET, close every stream, and reset() recovers", () => {
  const cases: [string, (g: GuestDriver) => void][] = [
    ["tx chain shorter than a header", (g) => g.context.queues[VSOCK_QUEUE_TX].add([g.memory.out(new Uint8Array(43))])],
    ["len beyond the buffers", (g) => g.context.queues[VSOCK_QUEUE_TX].add([g.memory.out(buildVsockHeader(vsockHeader({ src_cid: 3, dst_cid: 2, op: VIRTIO_VSOCK_OP_RW, len: 10 }))), g.memory.out(new Uint8Array(9))])],
    ["writable buffer on tx", (g) => g.context.queues[VSOCK_QUEUE_TX].add([g.memory.out(buildVsockHeader(vsockHeader({ src_cid: 3, dst_cid: 2 })))], [g.memory.in(8)])],
    ["ring error", (g) => void (g.context.queues[VSOCK_QUEUE_TX].nextError = "avail index jumped")],
  ];
  for (const [what, inject] of cases) {
    const { guest, backend, device } = makeVsock();
    const { stream } = guestConnect(guest, backend, 1, 80);
    inject(guest);
    guest.kick();
    assert.equal(guest.context.resetReasons.length, 1, what);
    assert.equal(stream.closed, "reset", what);
    assert.equal(device.connectionCount, 0, what);
    assert.equal(backend.device.connectToGuest(1, new FakeStream()), undefined, `${what}: refused while broken`);
    guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 2, dst_port: 80 });
    assert.equal(backend.requests.length, 1, `${what}: nothing processed while broken`);
    device.reset();
    const again = new GuestDriver(device);
    again.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 2, dst_port: 80 });
    assert.equal(backend.requests.length, 2, `${what}: works after reset`);
  }
  // An rx buffer too small for a header.
  const { guest, backend } = makeVsock({}, { rxBuffers: 0 });
  guest.addRx(1, 16);
  guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: 1, dst_port: 2 });
  assert.equal(guest.context.resetReasons.length, 1);
  assert.equal(backend.requests.length, 0);
});

test("no rx buffers: RST replies are bounded and tx waits (5.10.6.1), then everything drains", () => {
  const { guest, device } = makeVsock({}, { rxBuffers: 0 });
  guest.autoRefill = false;
  for (let i = 0; i < 1000; i++) guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: i, dst_port: 2 }, undefined, false);
  guest.kick();
  const tx = guest.context.queues[VSOCK_QUEUE_TX];
  assert.equal(tx.counters.popped, VSOCK_RST_QUEUE_LIMIT, "tx stops when the reply queue is full");
  assert.equal(tx.available.length, 1000 - VSOCK_RST_QUEUE_LIMIT);
  guest.kick();
  assert.equal(tx.counters.popped, VSOCK_RST_QUEUE_LIMIT, "and stays stopped");
  guest.addRx(2000);
  assert.equal(tx.available.length, 0);
  const rsts = guest.take();
  assert.equal(rsts.length, 1000);
  assert.ok(rsts.every((p) => p.header.op === VIRTIO_VSOCK_OP_RST));
  assert.deepEqual(new Set(rsts.map((p) => p.header.dst_port)).size, 1000);
  assert.equal(device.counters.resetsSent, 1000);
});

test("timeouts: an unanswered connect and a close the guest never finishes", () => {
  const clock = new FakeClock();
  const { guest, backend, device } = makeVsock({ clock, connectTimeoutMs: 1000, closeTimeoutMs: 500 });
  guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 1, dst_port: 80 });
  clock.advance(999);
  assert.equal(device.connectionCount, 1);
  clock.advance(1);
  guest.collect();
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RST]);
  assert.equal(device.connectionCount, 0);
  assert.equal(backend.requests[0].accept(new FakeStream()), undefined);
  // Host-initiated, guest silent.
  const s = new FakeStream();
  backend.device.connectToGuest(7, s);
  guest.take();
  clock.advance(1000);
  guest.collect();
  assert.equal(s.closed, "reset");
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RST]);
  // Host closes, guest never answers the SHUTDOWN.
  const { conn } = guestConnect(guest, backend, 2, 80);
  conn.close();
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_SHUTDOWN]);
  clock.advance(500);
  guest.collect();
  assert.deepEqual(ops(guest.take()), [VIRTIO_VSOCK_OP_RST]);
  assert.equal(device.connectionCount, 0);
  assert.equal(device.counters.timeouts, 3);
  assert.equal(clock.pending, 0);
});

test("many connections at once, both directions, interleaved: every stream intact", () => {
  const { guest, backend, device } = makeVsock({ maxConnections: 300 });
  const N = 100;
  // An echo service on host port 7 for guest-initiated connections.
  backend.onConnect = (r) => {
    const s = new FakeStream((data, st) => st.connection!.send(data));
    s.connection = r.accept(s);
  };
  for (let i = 0; i < N; i++) guest.send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 10_000 + i, dst_port: 7 }, undefined, false);
  guest.kick();
  // And N host-initiated connections to guest port 22.
  const hostSide: { s: FakeStream; port: number }[] = [];
  for (let i = 0; i < N; i++) {
    const s = new FakeStream();
    s.connection = backend.device.connectToGuest(22, s);
    hostSide.push({ s, port: s.connection!.hostPort });
  }
  guest.collect();
  for (const { port } of hostSide) guest.send({ op: VIRTIO_VSOCK_OP_RESPONSE, src_port: 22, dst_port: port }, undefined, false);
  guest.kick();
  assert.equal(device.connectionCount, 2 * N);
  assert.ok(hostSide.every(({ s }) => s.connectedPort !== undefined));
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < N; i++) {
      guest.send({ op: VIRTIO_VSOCK_OP_RW, src_port: 10_000 + i, dst_port: 7 }, enc(`c${i}r${round};`), false);
      hostSide[i].s.connection!.send(enc(`h${i}r${round};`));
    }
    guest.kick();
  }
  const echoed = new Map<number, string>();
  const fromHost = new Map<number, string>();
  for (const p of guest.take((p) => p.header.op === VIRTIO_VSOCK_OP_RW)) {
    const m = p.header.src_port === 7 ? echoed : fromHost;
    const k = p.header.src_port === 7 ? p.header.dst_port : p.header.src_port;
    m.set(k, (m.get(k) ?? "") + dec(p.payload));
  }
  const rounds = (prefix: string) => [0, 1, 2, 3, 4].map((r) => `${prefix}r${r};`).join("");
  for (let i = 0; i < N; i++) {
    assert.equal(echoed.get(10_000 + i), rounds(`c${i}`));
    assert.equal(fromHost.get(hostSide[i].port), rounds(`h${i}`));
  }
  device.reset();
  assert.equal(device.connectionCount, 0);
  assert.ok(hostSide.every(({ s }) => s.closed === "reset"));
});

test("activate picks up packets queued before DRIVER_OK; event queue buffers are left alone", () => {
  const backend = new FakeBackend();
  const device = new VirtioVsock({ guestCid: 3, backend });
  const guest = new GuestDriver(device, { rxBuffers: 8 });
  guest.context.queues[2].add([], [guest.memory.in(4)]);
  device.queueNotify(2);
  assert.equal(guest.context.queues[2].used.length, 0);
  assert.equal(guest.context.queues[VSOCK_QUEUE_RX].used.length, 0);
});

test("pause: host connections are refused and nothing moves until resume; snapshot refuses bad input", async () => {
  const { device, backend, guest } = makeVsock();
  guest.addRx(4);
  await device.quiesce();
  const stream = new FakeStream();
  assert.equal(backend.device!.connectToGuest(80, stream), undefined, "refused while paused");
  device.unquiesce();
  assert.notEqual(backend.device!.connectToGuest(80, stream), undefined);
  const good = JSON.parse(JSON.stringify(device.saveState()));
  const fresh = new VirtioVsock({ guestCid: 3, backend: new FakeBackend() });
  for (const spoil of [(x: any) => (x.version = 5), (x: any) => (x.counters.packetsToGuest = "1"), (x: any) => delete x.counters.timeouts]) {
    const bad = structuredClone(good);
    spoil(bad);
    assert.throws(() => fresh.restoreState(bad), /virtio-vsock/);
    assert.deepEqual(fresh.saveState().counters, new VirtioVsock({ guestCid: 3, backend: new FakeBackend() }).saveState().counters);
  }
  fresh.restoreState(good);
  assert.deepEqual(fresh.saveState(), good);
});
