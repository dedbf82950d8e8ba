// Random packets from a hostile guest, random host behaviour: the device never throws, never
// breaks its promises to the backend (no call after close, one close), and its state stays bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../testing/fakes.ts";
import type { VsockConnectRequest } from "./backend.ts";
import { buildVsockHeader, parseVsockHeader, vsockHeader } from "./header.ts";
import { VIRTIO_VSOCK_HDR_SIZE, VSOCK_QUEUE_RX, VSOCK_QUEUE_TX } from "./spec.ts";
import { FakeStream, GuestDriver, makeVsock } from "../testing/vsock.ts";
import { prngInt } from "../../testing/fakes.ts";


test("pure header parsing accepts any bytes", () => {
  const r = prngInt(7);
  for (let i = 0; i < 20_000; i++) {
    const b = new Uint8Array(r(60));
    for (let k = 0; k < b.length; k++) b[k] = r(256);
    const h = parseVsockHeader(b);
    if (b.length < VIRTIO_VSOCK_HDR_SIZE) assert.equal(h, undefined);
    else {
      assert.ok(h);
      // Every field but the CIDs' reserved halves survives a round trip.
      const again = parseVsockHeader(buildVsockHeader(h));
      assert.deepEqual({ ...again, src_cid: 0, dst_cid: 0 }, { ...h, src_cid: 0, dst_cid: 0 });
    }
  }
});

test("fuzz: random packets and host actions never throw and keep state bounded", () => {
  const totals = { fromGuest: 0, toGuest: 0, opened: 0 };
  for (let seed = 1; seed <= 40; seed++) {
    const r = prngInt(seed);
    const clock = new FakeClock();
    const maxConnections = 1 + r(8);
    const bufAlloc = 1 + r(20_000);
    const { guest, backend, device } = makeVsock({ maxConnections, bufAlloc, hostBacklogBytes: 1 + r(10_000), clock, connectTimeoutMs: 100, closeTimeoutMs: 100 }, { rxBuffers: r(8) });
    guest.autoRefill = r(2) === 0;
    const streams: FakeStream[] = [];
    const pending: VsockConnectRequest[] = [];
    backend.onConnect = (req) => {
      const choice = r(3);
      if (choice === 0) pending.push(req);
      else if (choice === 1) req.refuse();
      else {
        const s = new FakeStream();
        s.autoConsume = r(2) === 0;
        streams.push(s);
        s.connection = req.accept(s);
      }
    };
    // Mostly plausible addressing, so that connections open and data flows; sometimes junk.
    const guestPorts = [1, 2, 3, 0xffff_ffff];
    const hostPorts = [80, 81, 0];
    const pick = <T>(xs: readonly T[]) => xs[r(xs.length)];
    let resets = 0;
    let g: GuestDriver = guest;
    for (let step = 0; step < 600; step++) {
      const what = r(20);
      if (what < 9) {
        const len = pick([0, 0, 1, 10, 100, 1000, 5000, 70_000]);
        const odd = r(12) === 0;
        const h = vsockHeader({
          src_cid: odd ? pick([2, 4, 0xffff_ffff]) : g.cid,
          dst_cid: odd ? pick([3, 0, 0xffff_ffff]) : 2,
          src_port: pick(guestPorts),
          dst_port: pick(hostPorts),
          type: odd ? pick([2, 0, 77]) : 1,
          op: pick([1, 1, 2, 3, 4, 5, 5, 5, 5, 6, 6, 7, 0, 8]),
          flags: r(4),
          buf_alloc: pick([0, 1, 4096, 1 << 20, 0xffff_ffff]),
          fwd_cnt: pick([0, 1, 4096, 0xffff_ffff]),
          len,
        });
        const payload = new Uint8Array(len);
        const bufs = [g.memory.out(buildVsockHeader(h))];
        if (payload.length > 0 && r(60) > 0) bufs.push(g.memory.out(payload));
        g.context.queues[VSOCK_QUEUE_TX].add(bufs, r(200) === 0 ? [g.memory.in(4)] : []);
        if (r(3) === 0) g.kick();
      } else if (what < 11) {
        g.addRx(r(8), r(100) === 0 ? 10 : pick([4096, 4096, 4096, 64, 44, 45]));
      } else if (what < 14 && streams.length > 0) {
        const s = pick(streams);
        const c = s.connection;
        const act = r(6);
        if (c && !s.closed) {
          if (act === 0) c.send(new Uint8Array(r(9000)));
          else if (act === 1) c.consumed(r(10_000));
          else if (act === 2) c.end();
          else if (act === 3) c.close();
          else if (act === 4) c.reset();
          else c.send(new Uint8Array(0));
        }
      } else if (what < 15) {
        const s = new FakeStream();
        streams.push(s);
        s.connection = backend.device.connectToGuest(pick(guestPorts), s);
        if (s.connection) hostPorts.push(s.connection.hostPort);
      } else if (what < 16 && pending.length > 0) {
        const req = pending.splice(r(pending.length), 1)[0];
        if (r(2) === 0) req.refuse();
        else {
          const s = new FakeStream();
          streams.push(s);
          s.connection = req.accept(s);
        }
      } else if (what < 17) {
        clock.advance(r(150));
      } else if (what < 18 && r(50) === 0) {
        g.context.queues[r(3)].nextError = "fuzzed ring error";
        g.kick();
      } else if (what < 19) {
        g.kick();
      } else if (g.context.resetReasons.length > 0 || r(30) === 0) {
        device.reset();
        resets++;
        g = new GuestDriver(device, { rxBuffers: r(16) });
      }
      g.collect();
      assert.ok(device.connectionCount <= maxConnections, `seed ${seed}: ${device.connectionCount} > ${maxConnections}`);
      for (const s of streams) {
        if (!s.autoConsume && !s.closed) assert.ok(s.bytes <= bufAlloc, `seed ${seed}: a stream holds ${s.bytes} > buf_alloc ${bufAlloc}`);
      }
      // RST replies waiting on rx are bounded: tx stops taking chains instead.
      assert.ok(g.context.queues[VSOCK_QUEUE_RX].used.length === 0 || !g.autoRefill);
    }
    // Give the guest plenty of buffers: everything pending drains and tx empties.
    g.autoRefill = true;
    g.addRx(4096);
    g.kick();
    if (g.context.resetReasons.length === 0) assert.equal(g.context.queues[VSOCK_QUEUE_TX].available.length, 0, `seed ${seed}: tx drained`);
    device.reset();
    assert.equal(device.connectionCount, 0);
    assert.ok(streams.every((s) => s.closed !== undefined || s.connection === undefined || !s.connection.open));
    totals.fromGuest += device.counters.bytesFromGuest;
    totals.toGuest += device.counters.bytesToGuest;
    totals.opened += device.counters.connectionsOpened;
    void resets;
  }
  // The fuzzer reaches the interesting states: connections open and data flows both ways.
  assert.ok(totals.opened > 100 && totals.fromGuest > 0 && totals.toGuest > 0, JSON.stringify(totals));
});
