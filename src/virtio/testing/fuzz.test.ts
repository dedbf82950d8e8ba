// Seeded fuzzing of everything the guest can write: descriptor tables and rings fed to the pure
// parsers, to the queue classes, and register writes fed to the MMIO transport with real device
// models behind it. Invariants: no exception other than VirtqueueError escapes a queue, none at
// all escapes the transport, every accepted buffer lies inside RAM, the queues write only to their
// device-owned areas, every loop terminates.
//
// VIRTIO_FUZZ_SEED=<n> picks another seed (the default is fixed so runs are reproducible);
// VIRTIO_FUZZ_SCALE=<x> multiplies the number of cases.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readSplitChain, SplitVirtqueue, splitUsedSize, type VirtqueueConfig } from "../queue/split.ts";
import { readPackedChain, PackedVirtqueue } from "../queue/packed.ts";
import { isChainError } from "../queue/chain.ts";
import { VirtqueueError, type DescriptorChain, type GuestMemory } from "../types.ts";
import { ramGuestMemory } from "../memory.ts";
import { VirtioMmioTransport } from "../transport/mmio.ts";
import { VirtioConsoleDevice } from "../console/device.ts";
import { VirtioRngDevice } from "../rng/device.ts";
import {
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_MAX_CHAIN_BYTES,
  VirtioMmioRegister as R,
} from "../constants.ts";
import { FakeClock, prng } from "../../testing/fakes.ts";

const SEED = Number(process.env.VIRTIO_FUZZ_SEED ?? 0x5eed_c0de) >>> 0;
const SCALE = Number(process.env.VIRTIO_FUZZ_SCALE ?? 1);
const BASE = 0x8000_0000;
const RAM_SIZE = 1 << 16;

class Fuzz {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** A guest address: mostly inside RAM, sometimes at its edges, sometimes anywhere. */
  address(): bigint {
    switch (this.int(6)) {
      case 0:
        return BigInt(this.int(2 ** 32)) << BigInt(this.int(33));
      case 1:
        return BigInt(BASE + RAM_SIZE - this.int(64));
      case 2:
        return BigInt(BASE - this.int(64));
      default:
        return BigInt(BASE + this.int(RAM_SIZE));
    }
  }
  length(): number {
    switch (this.int(6)) {
      case 0:
        return this.int(2 ** 32);
      case 1:
        return this.pick([0, 1, 16, 0xffff_ffff, 0xffff_fff0, RAM_SIZE]);
      default:
        return this.int(256);
    }
  }
}

function fuzzRam(f: Fuzz) {
  const bytes = new Uint8Array(RAM_SIZE);
  for (let i = 0; i < bytes.length; i += 4) {
    const v = f.int(2 ** 32);
    bytes[i] = v;
    bytes[i + 1] = v >>> 8;
    bytes[i + 2] = v >>> 16;
    bytes[i + 3] = v >>> 24;
  }
  const writes: [number, number][] = [];
  const memory = ramGuestMemory(bytes, BASE, (p, n) => writes.push([p, n]));
  const view = new DataView(bytes.buffer);
  return { bytes, view, memory, writes };
}

/**
 * Writes a plausible descriptor (addresses near RAM, small lengths, meaningful flags); with
 * probability `hostile` its address and length are drawn from the nasty cases instead.
 */
function plantDescriptor(f: Fuzz, view: DataView, at: number, size: number, packedWrap?: boolean, hostile = 1) {
  const off = at - BASE;
  if (off < 0 || off + 16 > RAM_SIZE) return;
  const nasty = f.chance(hostile);
  view.setBigUint64(off, BigInt.asUintN(64, nasty ? f.address() : BigInt(BASE + f.int(RAM_SIZE - 256))), true);
  view.setUint32(off + 8, nasty ? f.length() : f.int(256), true);
  let flags = f.int(8) & (f.chance(nasty ? 0.8 : 0.95) ? ~VIRTQ_DESC_F_INDIRECT : 0xffff);
  if (!nasty && f.chance(0.5)) flags &= ~VIRTQ_DESC_F_NEXT;
  if (packedWrap !== undefined) {
    const wrap = f.chance(0.9) ? packedWrap : !packedWrap;
    flags |= (wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED) | (f.chance(0.05) ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0);
    view.setUint16(off + 12, f.int(size + 2), true); // id
  } else {
    view.setUint16(off + 14, f.int(size + 2), true); // next
  }
  view.setUint16(off + 14 - (packedWrap !== undefined ? 0 : 2), flags, true);
}

function checkChain(memory: GuestMemory, chain: DescriptorChain, size: number) {
  assert.ok(chain.descriptorCount >= 1 && chain.descriptorCount <= size);
  assert.ok(chain.readable.length + chain.writable.length <= size);
  let r = 0;
  let w = 0;
  for (const b of chain.readable) {
    assert.ok(b.len > 0 && memory.contains(b.addr, b.len));
    r += b.len;
  }
  for (const b of chain.writable) {
    assert.ok(b.len > 0 && memory.contains(b.addr, b.len));
    w += b.len;
  }
  assert.equal(r, chain.readableLength);
  assert.equal(w, chain.writableLength);
  assert.ok(r + w <= VIRTQ_MAX_CHAIN_BYTES);
}

test(`pure parsers on random descriptor tables (seed ${SEED})`, (t) => {
  const f = new Fuzz(SEED);
  const { view, memory } = fuzzRam(f);
  const cases = Math.round(20_000 * SCALE);
  let chains = 0;
  let errors = 0;
  for (let c = 0; c < cases; c++) {
    const size = f.chance(0.8) ? 1 << f.int(7) : 1 + f.int(100);
    const table = f.chance(0.9) ? BASE + 16 * f.int(RAM_SIZE / 16) : Number(f.address());
    const packed = f.chance(0.5);
    const wrap = f.chance(0.5);
    // Plant a few plausible descriptors in the table and in random places (indirect tables).
    for (let i = 0, n = f.int(12); i < n; i++) {
      const at = f.chance(0.7) ? table + 16 * f.int(size) : BASE + 16 * f.int(RAM_SIZE / 16);
      plantDescriptor(f, view, at, size, packed ? wrap : undefined);
    }
    const head = f.chance(0.9) ? f.int(size) : f.int(0x10000);
    const result = packed
      ? readPackedChain(memory, table, size, head, wrap, f.chance(0.7))
      : readSplitChain(memory, table, size, head, f.chance(0.7));
    if (result === undefined) continue;
    if (isChainError(result)) {
      errors++;
      assert.equal(typeof result.error, "string");
      assert.ok(result.descriptorCount >= 0 && result.descriptorCount <= size);
    } else {
      chains++;
      checkChain(memory, result, size);
    }
  }
  t.diagnostic(`${cases} cases: ${chains} chains, ${errors} rejected`);
  assert.ok(chains > cases / 50, `some chains are valid (${chains})`);
  assert.ok(errors > cases / 50, `some chains are rejected (${errors})`);
});

test(`queue classes driven by a random guest (seed ${SEED})`, (t) => {
  const f = new Fuzz(SEED ^ 0x1234_5678);
  const cases = Math.round(1500 * SCALE);
  let popped = 0;
  let rejected = 0;
  let layoutRefused = 0;
  for (let c = 0; c < cases; c++) {
    const { view, memory, writes, bytes } = fuzzRam(f);
    if (f.chance(0.5)) bytes.fill(0, 0, 0x4000); // zeroed rings, as a driver allocates them
    const packed = f.chance(0.5);
    const size = packed ? 1 + f.int(32) : 1 << f.int(6);
    const desc = BASE + 16 * f.int(256);
    const drv = BASE + 0x2000 + 4 * f.int(256);
    const dev = BASE + 0x3000 + 4 * f.int(256);
    const config: VirtqueueConfig = {
      memory,
      index: 0,
      size,
      descAddr: f.chance(0.05) ? Number(f.address()) : desc,
      driverAddr: drv,
      deviceAddr: f.chance(0.05) ? dev + 2 : dev,
      eventIdx: f.chance(0.5),
      indirect: f.chance(0.7),
    };
    let vq: SplitVirtqueue | PackedVirtqueue;
    try {
      vq = packed ? new PackedVirtqueue(config) : new SplitVirtqueue(config);
    } catch (e) {
      assert.ok(e instanceof VirtqueueError);
      layoutRefused++;
      continue;
    }
    // The device may write only its own areas: the used ring / device area, and (packed) the ring.
    const own: [number, number][] = packed
      ? [
          [config.descAddr, 16 * size],
          [config.deviceAddr, 4],
        ]
      : [[config.deviceAddr, splitUsedSize(size)]];
    writes.length = 0;
    const held: DescriptorChain[] = [];
    let wrap = true;
    let availIdx = 0;
    for (let step = 0; step < 60; step++) {
      const op = f.int(10);
      if (op < 3) {
        // The guest scribbles: a plausible descriptor, a ring entry, an index, event fields.
        if (packed) {
          const slot = f.int(size);
          plantDescriptor(f, view, config.descAddr + 16 * slot, size, wrap, 0.2);
          if (slot === size - 1 && f.chance(0.5)) wrap = !wrap;
          if (f.chance(0.2)) view.setUint32(config.driverAddr - BASE, f.int(2 ** 32), true);
        } else {
          plantDescriptor(f, view, config.descAddr + 16 * f.int(size), size, undefined, 0.2);
          view.setUint16(config.driverAddr - BASE + 4 + 2 * f.int(size), f.int(size + 1), true);
          availIdx = (availIdx + (f.chance(0.95) ? f.int(3) : f.int(0x10000))) & 0xffff;
          view.setUint16(config.driverAddr - BASE + 2, availIdx, true);
          if (f.chance(0.2)) view.setUint32(config.driverAddr - BASE, f.int(2 ** 32), true);
        }
      } else if (op < 7) {
        try {
          const chain = vq.pop();
          if (chain) {
            popped++;
            checkChain(memory, chain, size);
            held.push(chain);
          }
        } catch (e) {
          assert.ok(e instanceof VirtqueueError, String(e));
          rejected++;
        }
      } else if (op < 9 && held.length) {
        const chain = held.splice(f.int(held.length), 1)[0];
        vq.pushUsed(chain, f.int(2 ** 32));
      } else if (f.chance(0.5)) {
        vq.shouldInterrupt();
      } else {
        vq.setNotifications(f.chance(0.5));
      }
    }
    for (const [p, n] of writes) {
      assert.ok(
        own.some(([a, len]) => p >= a && p + n <= a + len),
        `write 0x${p.toString(16)}+${n} outside the device-owned areas`,
      );
    }
  }
  t.diagnostic(`${cases} queues: ${popped} chains popped, ${rejected} rejected, ${layoutRefused} layouts refused`);
  assert.ok(popped > 100, `chains were popped (${popped})`);
  assert.ok(rejected > 100, `chains were rejected (${rejected})`);
  assert.ok(layoutRefused > 0);
});

test(`MMIO transport with console and entropy devices under random register writes (seed ${SEED})`, (t) => {
  const f = new Fuzz(SEED ^ 0x0bad_f00d);
  const offsets = Object.values(R).filter((o) => o < R.Config);
  const cases = Math.round(300 * SCALE);
  let live = 0;
  let needsReset = 0;
  let chains = 0;
  let work = 0;
  for (let c = 0; c < cases; c++) {
    const { view, memory, bytes } = fuzzRam(f);
    bytes.fill(0, 0, 0x8000); // the rings start zeroed, as a driver allocates them
    let outputBytes = 0;
    const device = f.chance(0.5)
      ? new VirtioConsoleDevice({ output: (b) => (outputBytes += b.length), size: { cols: 80, rows: 24 } })
      : new VirtioRngDevice({ bytesPerSecond: f.pick([Infinity, 100]), burstBytes: 64, clock: new FakeClock(c) });
    const packed = f.chance(0.5);
    const transport = new VirtioMmioTransport({ device, memory: memory, irq: () => {}, offerPacked: packed });
    // A mostly well-behaved probe, so that queues get set up and go live.
    const sequence: [number, number][] = [
      [R.Status, 0],
      [R.Status, 1],
      [R.Status, 3],
      [R.DriverFeaturesSel, 1],
      [R.DriverFeatures, f.chance(0.9) ? 1 | (packed ? 4 : 0) : f.int(2 ** 32)],
      [R.DriverFeaturesSel, 0],
      [R.DriverFeatures, f.chance(0.8) ? 3 << 28 : f.int(2 ** 32)],
      [R.Status, 11],
    ];
    for (let q = 0; q < 2; q++) {
      sequence.push(
        [R.QueueSel, q],
        [R.QueueNum, f.chance(0.8) ? 1 << f.int(7) : f.int(2 ** 32)],
        [R.QueueDescLow, BASE + 0x4000 * q + (f.chance(0.9) ? 0 : f.int(64))],
        [R.QueueDescHigh, f.chance(0.95) ? 0 : f.int(2 ** 32)],
        [R.QueueDriverLow, BASE + 0x4000 * q + 0x1000],
        [R.QueueDriverHigh, 0],
        [R.QueueDeviceLow, BASE + 0x4000 * q + 0x2000],
        [R.QueueDeviceHigh, 0],
        [R.QueueReady, 1],
      );
    }
    sequence.push([R.Status, 15]);
    for (let op = 0; op < 250; op++) {
      let offset: number;
      let value: number;
      const scripted = op < sequence.length && f.chance(0.97);
      if (scripted) [offset, value] = sequence[op];
      else if (f.chance(0.4)) [offset, value] = [R.QueueNotify, f.chance(0.9) ? f.int(2) : f.int(2 ** 32)];
      else [offset, value] = [f.chance(0.9) ? f.pick(offsets) : f.int(0x200), f.int(2 ** 32)];
      if (f.chance(0.3)) {
        // The guest works on its rings: plausible descriptors, new available entries, garbage.
        const area = BASE + 0x4000 * f.int(2);
        const avail = area + 0x1000 - BASE;
        switch (f.int(4)) {
          case 0:
            plantDescriptor(f, view, area + 16 * f.int(16), 16, packed ? f.chance(0.8) : undefined, 0.2);
            break;
          case 1:
            view.setUint16(avail + 4 + 2 * f.int(16), f.int(17), true);
            view.setUint16(avail + 2, view.getUint16(avail + 2, true) + 1, true);
            break;
          case 2:
            plantDescriptor(f, view, area + 16 * f.int(16), 16, packed ? f.chance(0.8) : undefined, 0.05);
            break;
          default:
            view.setUint16(f.int(0x8000) & ~1, f.int(0x10000), true);
        }
      }
      const size = scripted || f.chance(0.9) ? 4 : f.pick([1, 2, 8] as const);
      if (scripted || f.chance(0.7)) assert.doesNotThrow(() => transport.store(offset, size, size === 8 ? BigInt(value) : value));
      else {
        const v = transport.load(offset, size);
        assert.ok(v === undefined || (typeof v === "number" && v >= 0 && v <= 0xffff_ffff));
      }
      if (device instanceof VirtioConsoleDevice && f.chance(0.05)) device.receive(Uint8Array.of(f.int(256)));
    }
    if (transport.status & 4) live++;
    work += device instanceof VirtioConsoleDevice ? device.counters.chainsIn + device.counters.chainsOut : device.counters.requests;
    if (transport.status & 64) needsReset++;
    chains += transport.counters.notifications.reduce((a, b) => a + b, 0);
    assert.ok(outputBytes >= 0);
  }
  t.diagnostic(`${cases} devices: ${live} live at the end, ${needsReset} needing a reset, ${chains} notifications, ${work} chains served`);
  assert.ok(live > 0, `some devices went live (${live})`);
  assert.ok(work > 0, `some chains were served (${work})`);
  assert.ok(needsReset > 0, `some devices needed a reset (${needsReset})`);
});
