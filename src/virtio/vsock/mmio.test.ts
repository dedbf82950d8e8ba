// virtio-vsock behind the real virtio-mmio transport and queues, driven like Linux's
// virtio_transport.c (split and packed rings).
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioMmioTransport } from "../transport/mmio.ts";
import { FakeRam, linuxProbe, mmioRead, mmioWrite, takeInterrupt, type Added } from "../testing/fake-driver.ts";
import { VirtioMmioRegister as R } from "../constants.ts";
import { VirtioVsock } from "./device.ts";
import { buildVsockHeader, parseVsockHeader, vsockHeader } from "./header.ts";
import { VIRTIO_VSOCK_OP_REQUEST, VIRTIO_VSOCK_OP_RESPONSE, VIRTIO_VSOCK_OP_RW, VSOCK_QUEUE_RX, VSOCK_QUEUE_TX } from "./spec.ts";
import { FakeBackend, FakeStream } from "../testing/vsock.ts";

const PACKED = 1n << 34n;

for (const ring of ["split", "packed"] as const) {
  test(`${ring} ring: guest_cid, connect, data both ways`, () => {
    const ram = new FakeRam(8 << 20);
    const backend = new FakeBackend();
    const dev = new VirtioVsock({ guestCid: 77, backend });
    const t = new VirtioMmioTransport({ device: dev, memory: ram.memory, irq: () => {} });
    const { drivers, featuresOk } = linuxProbe(t, ram, (o) => (ring === "packed" ? o : o & ~PACKED), [128, 128, 8]);
    assert.ok(featuresOk);
    assert.equal(mmioRead(t, R.Config), 77);
    assert.equal(mmioRead(t, R.Config + 4), 0);
    const [rx, tx, ev] = drivers;
    for (let i = 0; i < 8; i++) ev.add([], [4]);
    const rxBufs = new Map<number, Added>();
    for (let i = 0; i < 64; i++) {
      const a = rx.add([], [4096]);
      rxBufs.set(a.id, a);
    }
    mmioWrite(t, R.QueueNotify, VSOCK_QUEUE_RX);
    const receive = () => {
      takeInterrupt(t);
      return rx.used().map((u) => {
        const bytes = ram.get(rxBufs.get(u.id)!.inAddrs[0], u.len);
        const a = rx.add([], [4096]);
        rxBufs.set(a.id, a);
        return { header: parseVsockHeader(bytes)!, payload: bytes.subarray(44) };
      });
    };
    const send = (fields: Parameters<typeof vsockHeader>[0], payload?: Uint8Array) => {
      const h = buildVsockHeader(vsockHeader({ src_cid: 77, dst_cid: 2, buf_alloc: 65536, len: payload?.length ?? 0, ...fields }));
      tx.add(payload ? [h, payload] : [h], []);
      mmioWrite(t, R.QueueNotify, VSOCK_QUEUE_TX);
      tx.used();
    };
    const stream = new FakeStream();
    backend.onConnect = (r) => (stream.connection = r.accept(stream));
    send({ op: VIRTIO_VSOCK_OP_REQUEST, src_port: 1234, dst_port: 80 });
    const [resp] = receive();
    assert.equal(resp.header.op, VIRTIO_VSOCK_OP_RESPONSE);
    assert.equal(resp.header.dst_cid, 77);
    send({ op: VIRTIO_VSOCK_OP_RW, src_port: 1234, dst_port: 80 }, new TextEncoder().encode("GET /"));
    assert.equal(stream.text, "GET /");
    stream.connection!.send(new Uint8Array(10_000).fill(0x41));
    const data = receive();
    assert.ok(data.every((p) => p.header.op === VIRTIO_VSOCK_OP_RW && p.header.len <= 4096 - 44));
    assert.equal(data.reduce((n, p) => n + p.payload.length, 0), 10_000);
    assert.equal(t.counters.needsReset, 0);
  });
}
