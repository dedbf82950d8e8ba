// VirtioBlk over the real split virtqueue (src/virtio/queue/split.ts) and guest memory
// (src/virtio/memory.ts), with a minimal driver that fills the descriptor table and rings as
// Linux's virtio_blk does: header (readable), data, status (writable), one descriptor each.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ramGuestMemory } from "../memory.ts";
import { SplitVirtqueue } from "../queue/split.ts";
import type { GuestMemory, VirtioDeviceContext } from "../types.ts";
import { MemoryBlockBackend } from "./backend.ts";
import { VirtioBlk } from "./device.ts";
import { VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from "./spec.ts";

const BASE = 0x8000_0000;
const SIZE = 16;
const DESC = BASE;
const AVAIL = BASE + 0x1000;
const USED = BASE + 0x2000;
const DATA = BASE + 0x10000;
const F_NEXT = 1;
const F_WRITE = 2;

class RingDriver {
  private nextDesc = 0;
  private availIdx = 0;
  private usedSeen = 0;
  private nextData = DATA;
  readonly view: DataView;

  constructor(
    readonly ram: Uint8Array,
    readonly memory: GuestMemory,
  ) {
    this.view = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  }

  private alloc(len: number): number {
    const addr = this.nextData;
    this.nextData += (len + 15) & ~15;
    return addr;
  }

  /** Posts header / data / status; returns the status address and the data address. */
  post(type: number, sector: number, data: { out?: Uint8Array; inLen?: number }): { status: number; data: number } {
    const header = this.alloc(16);
    this.view.setUint32(header - BASE, type, true);
    this.view.setBigUint64(header - BASE + 8, BigInt(sector), true);
    const parts: [number, number, number][] = [[header, 16, 0]];
    let dataAddr = 0;
    if (data.out) {
      dataAddr = this.alloc(data.out.length);
      this.ram.set(data.out, dataAddr - BASE);
      parts.push([dataAddr, data.out.length, 0]);
    }
    if (data.inLen) {
      dataAddr = this.alloc(data.inLen);
      parts.push([dataAddr, data.inLen, F_WRITE]);
    }
    const status = this.alloc(1);
    this.ram[status - BASE] = 0xee;
    parts.push([status, 1, F_WRITE]);
    const head = this.nextDesc;
    parts.forEach(([addr, len, flags], i) => {
      const index = (head + i) % SIZE;
      const at = DESC - BASE + 16 * index;
      const last = i === parts.length - 1;
      this.view.setBigUint64(at, BigInt(addr), true);
      this.view.setUint32(at + 8, len, true);
      this.view.setUint16(at + 12, flags | (last ? 0 : F_NEXT), true);
      this.view.setUint16(at + 14, (index + 1) % SIZE, true);
    });
    this.nextDesc = (head + parts.length) % SIZE;
    this.view.setUint16(AVAIL - BASE + 4 + 2 * (this.availIdx % SIZE), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.view.setUint16(AVAIL - BASE + 2, this.availIdx, true);
    return { status, data: dataAddr };
  }

  /** Used entries not seen yet. */
  reap(): { id: number; len: number }[] {
    const out: { id: number; len: number }[] = [];
    const usedIdx = this.view.getUint16(USED - BASE + 2, true);
    while (this.usedSeen !== usedIdx) {
      const at = USED - BASE + 4 + 8 * (this.usedSeen % SIZE);
      out.push({ id: this.view.getUint32(at, true), len: this.view.getUint32(at + 4, true) });
      this.usedSeen = (this.usedSeen + 1) & 0xffff;
    }
    return out;
  }
}

test("VirtioBlk over a real split virtqueue: write, read back, flush, bad request", async () => {
  const ram = new Uint8Array(1 << 20);
  const written: [number, number][] = [];
  const memory = ramGuestMemory(ram, BASE, (p, n) => written.push([p, n]));
  const queue = new SplitVirtqueue({ memory, index: 0, size: SIZE, descAddr: DESC, driverAddr: AVAIL, deviceAddr: USED, eventIdx: false, indirect: false });
  const backend = new MemoryBlockBackend({ size: 64 * 1024 });
  const device = new VirtioBlk({ backend, queueSize: SIZE });
  let interrupts = 0;
  const resets: string[] = [];
  const context: VirtioDeviceContext = {
    memory,
    queues: [queue],
    features: device.deviceFeatures,
    notifyUsed: () => {
      if (queue.shouldInterrupt()) interrupts++;
    },
    notifyConfigChange: () => {},
    needsReset: (reason) => resets.push(reason),
  };
  device.activate(context);
  const driver = new RingDriver(ram, memory);

  const payload = new Uint8Array(2048).map((_, i) => (i * 7) & 0xff);
  const w = driver.post(VIRTIO_BLK_T_OUT, 10, { out: payload });
  device.queueNotify(0);
  await device.drain();
  const f = driver.post(VIRTIO_BLK_T_FLUSH, 0, {});
  const r = driver.post(VIRTIO_BLK_T_IN, 10, { inLen: 2048 });
  const bad = driver.post(VIRTIO_BLK_T_IN, 1000, { inLen: 512 });
  device.queueNotify(0);
  await device.drain();
  await new Promise((resolve) => setTimeout(resolve, 0));

  assert.deepEqual(resets, []);
  assert.equal(ram[w.status - BASE], VIRTIO_BLK_S_OK);
  assert.equal(ram[f.status - BASE], VIRTIO_BLK_S_OK);
  assert.equal(ram[r.status - BASE], VIRTIO_BLK_S_OK);
  assert.equal(ram[bad.status - BASE], VIRTIO_BLK_S_IOERR);
  assert.deepEqual(ram.subarray(r.data - BASE, r.data - BASE + 2048), payload);
  assert.deepEqual(backend.data.subarray(10 * 512, 10 * 512 + 2048), payload);
  const used = driver.reap();
  assert.equal(used.length, 4);
  assert.deepEqual(
    used.map((u) => u.len).sort((a, b) => a - b),
    [1, 1, 1 + 512, 1 + 2048],
  );
  assert.ok(interrupts >= 2);
  // Every guest write the device made was reported (data and status bytes included).
  assert.ok(written.some(([p, n]) => p === r.data && n === 2048));
  assert.ok(written.some(([p, n]) => p === r.status && n === 1));
});
