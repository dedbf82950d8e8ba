import { test } from "node:test";
import assert from "node:assert/strict";
import {
  VIRTIO_F_VERSION_1,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_TCPV4,
  buildNetHeader,
  buildReceiveHeader,
  checkFrameLength,
  checkTransmitHeader,
  featureBit,
  maxFrameLength,
  netHeaderSize,
  parseNetHeader,
} from "./header.ts";
import { formatMac, macProblem, randomMac } from "./mac.ts";

test("virtio_net_hdr: 12-byte little-endian layout (5.1.6)", () => {
  const bytes = buildNetHeader({ flags: 1, gsoType: 4, hdrLen: 0x1234, gsoSize: 0x5678, csumStart: 0x9abc, csumOffset: 0xdef0, numBuffers: 0x0102 });
  assert.deepEqual([...bytes], [1, 4, 0x34, 0x12, 0x78, 0x56, 0xbc, 0x9a, 0xf0, 0xde, 0x02, 0x01]);
  assert.deepEqual(parseNetHeader(bytes), { flags: 1, gsoType: 4, hdrLen: 0x1234, gsoSize: 0x5678, csumStart: 0x9abc, csumOffset: 0xdef0, numBuffers: 0x0102 });
});

test("virtio_net_hdr: legacy 10-byte form, offsets, short input", () => {
  const legacy = buildNetHeader({ hdrLen: 7, numBuffers: 9 }, 10);
  assert.equal(legacy.length, 10);
  assert.equal(parseNetHeader(legacy, 0, 10)?.numBuffers, 0);
  assert.equal(parseNetHeader(legacy, 0, 10)?.hdrLen, 7);
  assert.equal(parseNetHeader(legacy, 0, 12), undefined);
  const padded = new Uint8Array(20);
  padded.set(buildReceiveHeader(3), 5);
  assert.equal(parseNetHeader(padded, 5)?.numBuffers, 3);
  assert.equal(parseNetHeader(padded, 9), undefined);
  assert.equal(parseNetHeader(padded, -1), undefined);
  assert.equal(parseNetHeader(padded, 0.5), undefined);
  assert.equal(parseNetHeader(padded, 0, 11), undefined);
  assert.throws(() => buildNetHeader({}, 8), RangeError);
});

test("virtio_net_hdr: fields are truncated to their widths", () => {
  const h = parseNetHeader(buildNetHeader({ flags: 0x1ff, gsoType: -1, hdrLen: 0x12345, numBuffers: -1 }))!;
  assert.equal(h.flags, 0xff);
  assert.equal(h.gsoType, 0xff);
  assert.equal(h.hdrLen, 0x2345);
  assert.equal(h.numBuffers, 0xffff);
});

test("virtio_net_hdr: fuzzed round trip never throws", () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed);
  for (let i = 0; i < 2000; i++) {
    const len = rand() % 24;
    const bytes = Uint8Array.from({ length: len }, () => rand() & 0xff);
    const offset = rand() % 16;
    for (const size of [10, 12]) {
      const h = parseNetHeader(bytes, offset, size);
      if (offset + size > len) {
        assert.equal(h, undefined);
        continue;
      }
      assert.ok(h);
      assert.deepEqual(buildNetHeader(h, size), bytes.subarray(offset, offset + size));
      checkTransmitHeader(h);
    }
  }
});

test("header size follows VERSION_1 / MRG_RXBUF (5.1.6, 5.1.6.1)", () => {
  assert.equal(netHeaderSize(featureBit(VIRTIO_F_VERSION_1)), 12);
  assert.equal(netHeaderSize(featureBit(VIRTIO_NET_F_MRG_RXBUF)), 12);
  assert.equal(netHeaderSize(0n), 10);
});

test("transmit header checks: offloads refused, unknown flags ignored (5.1.6.2)", () => {
  const base = parseNetHeader(buildNetHeader({}))!;
  assert.equal(checkTransmitHeader(base), undefined);
  assert.equal(checkTransmitHeader({ ...base, flags: VIRTIO_NET_HDR_F_DATA_VALID | 0x80 }), undefined);
  assert.equal(checkTransmitHeader({ ...base, numBuffers: 7, hdrLen: 99, csumStart: 3 }), undefined);
  assert.equal(checkTransmitHeader({ ...base, flags: VIRTIO_NET_HDR_F_NEEDS_CSUM }), "needs-csum");
  assert.equal(checkTransmitHeader({ ...base, gsoType: VIRTIO_NET_HDR_GSO_TCPV4 }), "gso");
  assert.equal(checkTransmitHeader({ ...base, gsoType: VIRTIO_NET_HDR_GSO_ECN }), "gso");
});

test("frame length limits: 14 .. mtu + 18", () => {
  assert.equal(maxFrameLength(1500), 1518);
  assert.equal(checkFrameLength(13, 1500), "runt");
  assert.equal(checkFrameLength(14, 1500), undefined);
  assert.equal(checkFrameLength(1518, 1500), undefined);
  assert.equal(checkFrameLength(1519, 1500), "oversize");
  assert.equal(checkFrameLength(65535 + 18, 65535), undefined);
});

test("MAC addresses", () => {
  assert.equal(formatMac(Uint8Array.of(0x52, 0x54, 0, 1, 2, 0xff)), "52:54:00:01:02:ff");
  assert.equal(macProblem(Uint8Array.of(0x52, 0x54, 0, 1, 2, 3)), undefined);
  assert.match(macProblem(Uint8Array.of(1, 0, 0x5e, 0, 0, 1))!, /multicast/);
  assert.ok(macProblem(new Uint8Array(6)));
  assert.ok(macProblem(new Uint8Array(5)));
  const r = randomMac();
  assert.equal(r.length, 6);
  assert.deepEqual([...r.subarray(0, 3)], [0x52, 0x54, 0]);
  assert.equal(macProblem(r), undefined);
  assert.deepEqual(randomMac((b) => b.fill(7)), Uint8Array.of(0x52, 0x54, 0, 7, 7, 7));
});
