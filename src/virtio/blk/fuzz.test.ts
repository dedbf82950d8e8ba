// Seeded fuzzing of the request parser and of the whole device with random chains. Deterministic by
// default; set BLK_FUZZ_SEED to explore other seeds (and BLK_FUZZ_CASES for more cases).

import { test } from "node:test";
import assert from "node:assert/strict";
import type { DescriptorChain, GuestBuffer } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import { MemoryBlockBackend } from "./backend.ts";
import { VirtioBlk } from "./device.ts";
import { parseRequest } from "./request.ts";
import type { BlkRequestLimits } from "./request.ts";
import {
  featureBit,
  SECTOR_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_GET_LIFETIME,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_SECURE_ERASE,
  VIRTIO_BLK_T_WRITE_ZEROES,
} from "./spec.ts";
import { FakeContext, makeChain } from "../testing/fake-queue.ts";
import { FAKE_RAM_BASE as RAM_BASE, FakeGuestMemory, prng as rng } from "../../testing/fakes.ts";

const SEED = Number(process.env.BLK_FUZZ_SEED ?? 0x5eed_b10c) >>> 0;
const CASES = Number(process.env.BLK_FUZZ_CASES ?? 20000);
const RAM_SIZE = 64 * 1024;
const CAPACITY = 256; // sectors

const LIMITS: BlkRequestLimits = {
  capacitySectors: CAPACITY,
  readOnly: false,
  discard: true,
  writeZeroes: true,
  maxDiscardSectors: 64,
  maxDiscardSeg: 4,
  maxWriteZeroesSectors: 64,
  maxWriteZeroesSeg: 4,
};

const TYPES = [
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_GET_LIFETIME,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_T_SECURE_ERASE,
];

class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  u32(): number {
    return this.pick([0, 1, 7, 8, 255, 256, 512, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, this.int(2 ** 32), this.int(64)]);
  }
  sector(): bigint {
    return this.pick([
      0n,
      1n,
      BigInt(CAPACITY - 1),
      BigInt(CAPACITY),
      BigInt(CAPACITY + 1),
      BigInt(this.int(CAPACITY)),
      0xffff_ffffn,
      0x1_0000_0000n,
      0x20_0000_0000_0000n,
      0xffff_ffff_ffff_ffffn,
      0x8000_0000_0000_0000n - 1n,
      BigInt(this.int(2 ** 32)) << 32n,
    ]);
  }
  length(): number {
    return this.pick([0, 1, 2, 15, 16, 17, 20, 21, 32, 48, 64, 511, 512, 513, 1024, 4096, this.int(8192), 2 ** 32 - 1, RAM_SIZE]);
  }
  /** A buffer that usually lies in RAM, sometimes straddles its end or lies outside. */
  buffer(): GuestBuffer {
    const len = this.length();
    const where = this.int(20);
    if (where === 0) return { addr: this.pick([0, 0x1000, RAM_BASE - 8, RAM_BASE + RAM_SIZE]), len };
    if (where === 1) return { addr: RAM_BASE + RAM_SIZE - this.int(32), len };
    const room = Math.max(0, RAM_SIZE - Math.min(len, RAM_SIZE));
    return { addr: RAM_BASE + this.int(room + 1), len };
  }
  buffers(): GuestBuffer[] {
    const n = this.pick([0, 1, 1, 2, 2, 3, 4, 8]);
    return Array.from({ length: n }, () => this.buffer());
  }
}

/** Writes a plausible request header (and maybe segments) into the chain's readable buffers. */
function plant(memory: FakeGuestMemory, g: Gen, readable: GuestBuffer[]): void {
  const bytes = new Uint8Array(16 + 16 * g.int(6));
  const v = new DataView(bytes.buffer);
  v.setUint32(0, g.chance(0.9) ? g.pick(TYPES) : g.u32(), true);
  v.setUint32(4, g.u32(), true);
  v.setBigUint64(8, g.sector(), true);
  for (let off = 16; off < bytes.length; off += 16) {
    v.setBigUint64(off, g.sector(), true);
    v.setUint32(off + 8, g.chance(0.7) ? g.int(80) : g.u32(), true);
    v.setUint32(off + 12, g.chance(0.7) ? g.int(2) : g.u32(), true);
  }
  let done = 0;
  for (const b of readable) {
    const n = Math.min(b.len, bytes.length - done);
    if (n <= 0) break;
    const view = memory.view(b.addr, n);
    if (view) view.set(bytes.subarray(done, done + n));
    done += n;
  }
}

/** Splits `len` bytes into 1..4 random buffers inside RAM (sometimes with an empty buffer). */
function split(g: Gen, len: number): GuestBuffer[] {
  const out: GuestBuffer[] = [];
  let left = len;
  const pieces = 1 + g.int(4);
  for (let i = 0; i < pieces && left > 0; i++) {
    const n = i === pieces - 1 ? left : 1 + g.int(left);
    out.push({ addr: RAM_BASE + g.int(RAM_SIZE - n + 1), len: n });
    left -= n;
  }
  if (left > 0) out.push({ addr: RAM_BASE + g.int(RAM_SIZE - left + 1), len: left });
  if (g.chance(0.1)) out.splice(g.int(out.length + 1), 0, { addr: RAM_BASE, len: 0 });
  return out;
}

/** A chain shaped like a real request of a random type, with mostly plausible fields. */
function shapedChain(memory: FakeGuestMemory, g: Gen): [GuestBuffer[], GuestBuffer[]] {
  const type = g.chance(0.9) ? g.pick(TYPES) : g.u32();
  const sectors = g.pick([0, 1, 2, 8, g.int(16)]);
  const nseg = g.pick([1, 1, 2, 4, 5, 0]);
  let outLen = 0;
  let inLen = 0;
  if (type === VIRTIO_BLK_T_IN) inLen = 512 * sectors + (g.chance(0.1) ? g.int(3) : 0);
  else if (type === VIRTIO_BLK_T_OUT) outLen = 512 * sectors + (g.chance(0.1) ? g.int(3) : 0);
  else if (type === VIRTIO_BLK_T_GET_ID) inLen = g.chance(0.9) ? 20 : g.int(40);
  else if (type === VIRTIO_BLK_T_DISCARD || type === VIRTIO_BLK_T_WRITE_ZEROES) outLen = 16 * nseg + (g.chance(0.05) ? 8 : 0);
  const header = new Uint8Array(16 + outLen);
  const v = new DataView(header.buffer);
  v.setUint32(0, type >>> 0, true);
  v.setBigUint64(8, g.chance(0.8) ? BigInt(g.int(CAPACITY + 2)) : g.sector(), true);
  for (let off = 16; off + 16 <= header.length; off += 16) {
    if (type !== VIRTIO_BLK_T_DISCARD && type !== VIRTIO_BLK_T_WRITE_ZEROES) break;
    v.setBigUint64(off, g.chance(0.8) ? BigInt(g.int(CAPACITY)) : g.sector(), true);
    v.setUint32(off + 8, g.chance(0.9) ? g.int(70) : g.u32(), true);
    v.setUint32(off + 12, g.chance(0.8) ? (type === VIRTIO_BLK_T_DISCARD ? 0 : g.int(2)) : g.u32(), true);
  }
  const readable = split(g, header.length);
  const writable = split(g, inLen + 1);
  let done = 0;
  for (const b of readable) {
    memory.view(b.addr, b.len)!.set(header.subarray(done, done + b.len));
    done += b.len;
  }
  return [readable, writable];
}

function randomChain(memory: FakeGuestMemory, g: Gen, id: number): DescriptorChain {
  let readable: GuestBuffer[];
  let writable: GuestBuffer[];
  if (g.chance(0.5)) {
    [readable, writable] = shapedChain(memory, g);
  } else {
    readable = g.buffers();
    writable = g.buffers();
    if (g.chance(0.8)) plant(memory, g, readable);
  }
  const chain = makeChain(id, readable, writable);
  if (g.chance(0.03)) return { ...chain, readableLength: chain.readableLength + 1 };
  return chain;
}

function within(inner: GuestBuffer, outers: readonly GuestBuffer[]): boolean {
  return outers.some((o) => inner.addr >= o.addr && inner.addr + inner.len <= o.addr + o.len);
}

test(`parser fuzz: ${CASES} random chains (seed 0x${SEED.toString(16)})`, () => {
  const g = new Gen(rng(SEED));
  const memory = new FakeGuestMemory(RAM_SIZE);
  const kinds = { request: 0, reject: 0, malformed: 0 };
  for (let i = 0; i < CASES; i++) {
    if (i % 500 === 0) for (let j = 0; j < RAM_SIZE; j += 4) memory.bytes[j] = g.int(256);
    const chain = randomChain(memory, g, i);
    const limits = g.chance(0.2)
      ? { ...LIMITS, readOnly: g.chance(0.5), discard: g.chance(0.5), writeZeroes: g.chance(0.5) }
      : LIMITS;
    const before = i % 97 === 0 ? memory.bytes.slice() : undefined;
    const ctx = `case ${i} (seed 0x${SEED.toString(16)}): ${JSON.stringify(chain)}`;
    const result = parseRequest(chain, memory, limits); // must not throw
    if (before) assert.deepEqual(memory.bytes, before, `parser wrote guest memory: ${ctx}`);
    kinds[result.kind]++;
    if (result.kind === "malformed") {
      assert.ok(result.reason.length > 0);
      continue;
    }
    // The status byte is the last writable byte, inside RAM.
    const lastNonEmpty = [...chain.writable].reverse().find((b) => b.len > 0)!;
    assert.equal(result.statusAddr, lastNonEmpty.addr + lastNonEmpty.len - 1, ctx);
    assert.ok(memory.contains(result.statusAddr, 1), ctx);
    assert.ok(chain.readableLength >= 16, ctx);
    if (result.kind === "reject") {
      assert.ok(result.status === 1 || result.status === 2, ctx);
      continue;
    }
    const req = result.request;
    const capacityBytes = limits.capacitySectors * SECTOR_SIZE;
    switch (req.type) {
      case VIRTIO_BLK_T_IN:
      case VIRTIO_BLK_T_OUT: {
        assert.equal(req.length % SECTOR_SIZE, 0, ctx);
        assert.equal(req.offset, req.sector * SECTOR_SIZE, ctx);
        assert.ok(req.offset + req.length <= capacityBytes, ctx);
        assert.equal(req.data.reduce((s, b) => s + b.len, 0), req.length, ctx);
        const outers = req.type === VIRTIO_BLK_T_IN ? chain.writable : chain.readable;
        for (const b of req.data) assert.ok(within(b, outers), ctx);
        if (req.type === VIRTIO_BLK_T_IN) {
          assert.equal(req.length, chain.writableLength - 1, ctx);
        } else {
          assert.ok(!limits.readOnly, ctx);
        }
        break;
      }
      case VIRTIO_BLK_T_GET_ID:
        assert.equal(req.data.reduce((s, b) => s + b.len, 0), 20, ctx);
        for (const b of req.data) assert.ok(within(b, chain.writable), ctx);
        break;
      case VIRTIO_BLK_T_FLUSH:
        break;
      case VIRTIO_BLK_T_DISCARD:
      case VIRTIO_BLK_T_WRITE_ZEROES: {
        const discard = req.type === VIRTIO_BLK_T_DISCARD;
        assert.ok(discard ? limits.discard : limits.writeZeroes, ctx);
        assert.ok(!limits.readOnly, ctx);
        assert.ok(req.ranges.length >= 1 && req.ranges.length <= (discard ? limits.maxDiscardSeg : limits.maxWriteZeroesSeg), ctx);
        for (const r of req.ranges) {
          assert.ok(r.offset % SECTOR_SIZE === 0 && r.length % SECTOR_SIZE === 0, ctx);
          assert.ok(r.offset + r.length <= capacityBytes, ctx);
          assert.ok(r.length <= (discard ? limits.maxDiscardSectors : limits.maxWriteZeroesSectors) * SECTOR_SIZE, ctx);
        }
        break;
      }
      default:
        assert.fail(`unexpected request type: ${ctx}`);
    }
  }
  // The generator must exercise every outcome.
  assert.ok(kinds.request > CASES / 50, JSON.stringify(kinds));
  assert.ok(kinds.reject > CASES / 50, JSON.stringify(kinds));
  assert.ok(kinds.malformed > CASES / 50, JSON.stringify(kinds));
});

test(`device fuzz: random chains through VirtioBlk (seed 0x${SEED.toString(16)})`, async () => {
  const g = new Gen(rng(SEED ^ 0xdead_beef));
  const rounds = Math.max(1, Math.floor(CASES / 100));
  let completed = 0;
  let resets = 0;
  for (let round = 0; round < rounds; round++) {
    const memory = new FakeGuestMemory(RAM_SIZE);
    for (let j = 0; j < RAM_SIZE; j += 3) memory.bytes[j] = g.int(256);
    const backend = new MemoryBlockBackend({ size: CAPACITY * SECTOR_SIZE, readOnly: g.chance(0.1) });
    const device = new VirtioBlk({ backend, queueSize: 8 });
    const features = g.chance(0.5)
      ? device.deviceFeatures
      : device.deviceFeatures & ~(featureBit(VIRTIO_BLK_F_FLUSH) | featureBit(VIRTIO_BLK_F_DISCARD) | featureBit(VIRTIO_BLK_F_WRITE_ZEROES));
    const context = new FakeContext(memory, features);
    device.activate(context);
    const chains: DescriptorChain[] = [];
    for (let i = 0; i < 20; i++) {
      if (g.chance(0.01)) {
        context.queue.push(new VirtqueueError("fuzz: bad ring"));
        continue;
      }
      const chain = randomChain(memory, g, i);
      chains.push(chain);
      context.queue.push(chain);
    }
    const before = memory.writes.length;
    for (let kick = 0; kick < 3; kick++) device.queueNotify(0); // must not throw
    await device.drain();
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(device.inFlight, 0);
    // Every chain came back at most once; none came back after the device asked for a reset.
    const usedIds = context.queue.used.map((u) => u.chain.id);
    assert.equal(new Set(usedIds).size, usedIds.length, "a chain was returned twice");
    if (context.resetReasons.length === 0) {
      assert.equal(context.queue.available.length, 0);
      assert.equal(usedIds.length, chains.length);
    } else {
      resets++;
    }
    completed += usedIds.length;
    // The device wrote guest memory only inside device-writable buffers of the chains.
    for (const w of memory.writes.slice(before)) {
      assert.ok(
        chains.some((c) => within(w, c.writable)),
        `write outside device-writable buffers at 0x${w.addr.toString(16)}+${w.len}`,
      );
    }
    for (const u of context.queue.used) assert.equal(u.written, u.chain.writableLength);
  }
  assert.ok(completed > 0 && resets > 0, `completed ${completed}, resets ${resets}`);
});
