import { test } from "node:test";
import assert from "node:assert/strict";
import { buildVsockHeader, parseVsockHeader, replyTo, vsockHeader, writeVsockHeader } from "./header.ts";
import { fitsOurBuffer, peerFree, VSOCK_TRANSITIONS, vsockTransition, type VsockState } from "./connection.ts";
import {
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_INVALID,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_TYPE_SEQPACKET,
  VIRTIO_VSOCK_TYPE_STREAM,
} from "./spec.ts";

test("struct virtio_vsock_hdr is 44 packed little-endian bytes in spec order (5.10.6)", () => {
  assert.equal(VIRTIO_VSOCK_HDR_SIZE, 44);
  const h = {
    src_cid: 0x0102_0304,
    dst_cid: 2,
    src_port: 0x1122_3344,
    dst_port: 0x5566_7788,
    len: 0x99aa_bbcc,
    type: VIRTIO_VSOCK_TYPE_STREAM,
    op: VIRTIO_VSOCK_OP_RW,
    flags: 0xdead_beef,
    buf_alloc: 0x0004_0000,
    fwd_cnt: 0xffff_fffe,
  };
  const b = buildVsockHeader(h);
  assert.deepEqual(
    [...b],
    [
      0x04, 0x03, 0x02, 0x01, 0, 0, 0, 0, // src_cid le64
      2, 0, 0, 0, 0, 0, 0, 0, // dst_cid le64
      0x44, 0x33, 0x22, 0x11, // src_port
      0x88, 0x77, 0x66, 0x55, // dst_port
      0xcc, 0xbb, 0xaa, 0x99, // len
      1, 0, // type
      5, 0, // op
      0xef, 0xbe, 0xad, 0xde, // flags
      0, 0, 4, 0, // buf_alloc
      0xfe, 0xff, 0xff, 0xff, // fwd_cnt
    ],
  );
  assert.deepEqual(parseVsockHeader(b), h);
});

test("parse: short input is undefined; extra bytes and offsets are fine; reserved CID bits never match a CID", () => {
  assert.equal(parseVsockHeader(new Uint8Array(43)), undefined);
  const big = new Uint8Array(100);
  writeVsockHeader(big, vsockHeader({ src_cid: 7, op: VIRTIO_VSOCK_OP_REQUEST }), 10);
  assert.equal(parseVsockHeader(big.subarray(10))!.src_cid, 7);
  assert.equal(parseVsockHeader(big.subarray(10))!.op, VIRTIO_VSOCK_OP_REQUEST);
  const b = buildVsockHeader(vsockHeader({ src_cid: 3 }));
  b[4] = 1; // upper half of src_cid
  const h = parseVsockHeader(b)!;
  assert.equal(h.src_cid, 3 + 2 ** 32);
  assert.notEqual(h.src_cid, 3);
  b.fill(0xff, 0, 8);
  assert.ok(parseVsockHeader(b)!.src_cid > 0xffff_ffff);
  assert.throws(() => writeVsockHeader(new Uint8Array(50), vsockHeader({}), 7), RangeError);
});

test("replyTo swaps the addresses", () => {
  const h = vsockHeader({ src_cid: 3, dst_cid: 2, src_port: 1000, dst_port: 22, type: VIRTIO_VSOCK_TYPE_SEQPACKET, op: VIRTIO_VSOCK_OP_REQUEST });
  assert.deepEqual(replyTo(h, { op: VIRTIO_VSOCK_OP_RST }), vsockHeader({ src_cid: 2, dst_cid: 3, src_port: 22, dst_port: 1000, type: VIRTIO_VSOCK_TYPE_SEQPACKET, op: VIRTIO_VSOCK_OP_RST }));
});

test("the connection state table (5.10.6.4)", () => {
  const ops = [
    VIRTIO_VSOCK_OP_INVALID,
    VIRTIO_VSOCK_OP_REQUEST,
    VIRTIO_VSOCK_OP_RESPONSE,
    VIRTIO_VSOCK_OP_RST,
    VIRTIO_VSOCK_OP_SHUTDOWN,
    VIRTIO_VSOCK_OP_RW,
    VIRTIO_VSOCK_OP_CREDIT_UPDATE,
    VIRTIO_VSOCK_OP_CREDIT_REQUEST,
    8,
    0xffff,
  ];
  const expected: Record<VsockState, string[]> = {
    //                 INVALID  REQUEST    RESPONSE    RST       SHUTDOWN    RW       C_UPDATE  C_REQUEST         8        0xffff
    none: ["reset", "connect", "reset", "ignore", "reset", "reset", "reset", "reset", "reset", "reset"],
    "guest-connecting": ["reset", "reset", "reset", "closed", "reset", "reset", "credit", "ignore", "reset", "reset"],
    "host-connecting": ["reset", "reset", "accepted", "closed", "reset", "reset", "reset", "reset", "reset", "reset"],
    established: ["reset", "reset", "reset", "closed", "shutdown", "data", "credit", "credit-request", "reset", "reset"],
    closing: ["reset", "reset", "reset", "closed", "finish", "ignore", "ignore", "ignore", "reset", "reset"],
  };
  for (const state of Object.keys(VSOCK_TRANSITIONS) as VsockState[]) {
    assert.deepEqual(
      ops.map((op) => vsockTransition(state, op)),
      expected[state],
      state,
    );
  }
  // An RST is never answered with an RST.
  for (const state of Object.keys(VSOCK_TRANSITIONS) as VsockState[]) assert.notEqual(vsockTransition(state, VIRTIO_VSOCK_OP_RST), "reset");
});

test("credit arithmetic wraps like u32 (5.10.6.3)", () => {
  assert.equal(peerFree(1000, 0, 0), 1000);
  assert.equal(peerFree(1000, 600, 100), 500);
  assert.equal(peerFree(1000, 1000, 0), 0);
  assert.equal(peerFree(1000, 5, 0xffff_fff0), 979); // tx_cnt wrapped past 2^32
  assert.equal(peerFree(1000, 2000, 0), 0, "nonsense counters give no credit");
  assert.equal(peerFree(1000, 0, 10), 0, "fwd_cnt ahead of tx_cnt is nonsense too");
  assert.equal(peerFree(0xffff_ffff, 0, 0), 0xffff_ffff);
  assert.equal(fitsOurBuffer(100, 50, 0, 50), true);
  assert.equal(fitsOurBuffer(100, 50, 0, 51), false);
  assert.equal(fitsOurBuffer(100, 10, 0xffff_fff0, 74), true); // rx_cnt wrapped: 26 outstanding
  assert.equal(fitsOurBuffer(100, 10, 0xffff_fff0, 75), false);
  assert.equal(fitsOurBuffer(100, 0, 0, 0xffff_ffff), false);
});
