// Power loss, simulated: the qcow2 backend writes to a file that remembers what a sync made
// durable. At random moments - between operations and in the middle of them, metadata
// write-back and refcount table growth included - a "crash image" is taken: the durable bytes
// plus a random subset of the 512-byte sectors written since the last sync (a disk may persist
// any of them, in any order). Each crash image must pass `qemu-img check` without corruption,
// and hold every byte written before the last completed flush. This checks the ordering of
// writes and syncs itself, which a process kill (test/virtio/qcow2-crash.test.ts) cannot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RawImageReader, type RandomAccessFile } from "../../virtio/blk/qcow2/file.ts";
import { MemoryImageFile } from "../../virtio/testing/memory-image-file.ts";
import { Qcow2Image, readQcow2Header } from "../../virtio/blk/qcow2/image.ts";
import { prng } from "../../testing/fakes.ts";
import { needsHostTools } from "../../../test/support/host-tools.ts";

const tools = needsHostTools("qemu-img");
const SECTOR = 512;
/** Crash images checked per variant (each costs a qemu-img check and convert). */
const MAX_CRASH_IMAGES = 25;

interface CrashImage {
  bytes: Uint8Array;
  /** Operations 0..flushed-1 had completed and been flushed when it was taken. */
  flushed: number;
}

class PowerLossFile implements RandomAccessFile {
  readonly live: MemoryImageFile;
  private durable: MemoryImageFile;
  private pending: { offset: number; data: Uint8Array }[] = [];
  readonly crashes: CrashImage[] = [];
  flushedOps = 0;

  constructor(
    initial: Uint8Array,
    private readonly random: () => number,
    private readonly crashChance: number,
  ) {
    this.live = new MemoryImageFile(initial);
    this.durable = new MemoryImageFile(initial);
  }
  get size(): number {
    return this.live.size;
  }
  read(offset: number, into: Uint8Array): Promise<number> {
    return this.live.read(offset, into);
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.maybeCrash();
    await this.live.write(offset, data);
    this.pending.push({ offset, data: data.slice() });
  }
  async sync(): Promise<void> {
    this.maybeCrash();
    for (const { offset, data } of this.pending) await this.durable.write(offset, data);
    this.pending = [];
  }
  async close(): Promise<void> {}

  maybeCrash(): void {
    if (this.crashes.length < MAX_CRASH_IMAGES && this.random() < this.crashChance) this.crash();
  }

  /** The durable bytes plus a random subset of the sectors written since the last sync. */
  crash(): void {
    const image = new MemoryImageFile(this.durable.contents());
    const apply = (offset: number, piece: Uint8Array) => {
      // MemoryImageFile.write is synchronous underneath; the promise only wraps it.
      void image.write(offset, piece);
    };
    for (const { offset, data } of this.pending) {
      for (let start = 0; start < data.length; ) {
        const end = Math.min(data.length, (Math.floor((offset + start) / SECTOR) + 1) * SECTOR - offset);
        if (this.random() < 0.5) apply(offset + start, data.subarray(start, end));
        start = end;
      }
    }
    this.crashes.push({ bytes: image.contents().slice(), flushed: this.flushedOps });
  }
}

interface Variant {
  /** The chance of a crash image at each write, sync and operation. */
  crashChance: number;
  clusterSize: number;
  backing: boolean;
  compat?: string;
}

const VARIANTS: Variant[] = [
  { clusterSize: 512, backing: false, crashChance: 0.0005 },
  { clusterSize: 512, backing: true, crashChance: 0.0005 },
  { clusterSize: 4096, backing: false, compat: "0.10", crashChance: 0.005 },
  { clusterSize: 65536, backing: true, crashChance: 0.03 },
];

for (const [v, variant] of VARIANTS.entries()) {
  const name = `${variant.clusterSize}-byte clusters${variant.backing ? ", raw backing file" : ""}${variant.compat ? ", version 2" : ""}`;
  test(`qcow2 power loss (${name}): every crash image passes qemu-img check and keeps the flushed data`, { skip: tools.skip, timeout: 600_000 }, async (t) => {
    tools.check();
    const dir = await mkdtemp(join(tmpdir(), "parley-qcow2-power-"));
    try {
      const size = 16 * 1024 * 1024;
      const random = prng(77 + v);
      const base = new Uint8Array(size);
      for (let i = 0; i < size; i += SECTOR) base.fill(((i / SECTOR) * 7) & 0xff, i, i + SECTOR);
      await writeFile(join(dir, "base.raw"), base);
      const path = join(dir, "disk.qcow2");
      const options = `cluster_size=${variant.clusterSize}${variant.compat ? `,compat=${variant.compat}` : ""}`;
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-o", options, ...(variant.backing ? ["-b", "base.raw", "-F", "raw"] : []), path, String(size)]);
      const file = new PowerLossFile(new Uint8Array(await readFile(path)), random, variant.crashChance);
      const backing = variant.backing ? new RawImageReader(new MemoryImageFile(base)) : undefined;
      const image = await Qcow2Image.open(file, await readQcow2Header(file), { backing, name: path });

      const ops: { offset: number; length: number; fill: number; zero: boolean }[] = [];
      for (let i = 0; i < 500; i++) {
        const length = (1 + Math.floor(random() * 128)) * SECTOR;
        const offset = Math.floor(random() * ((size - length) / SECTOR)) * SECTOR;
        ops.push({ offset, length, fill: 1 + (i % 250), zero: random() < 0.1 });
      }
      for (const [i, op] of ops.entries()) {
        if (op.zero) await image.writeZeroes(op.offset, op.length, false);
        else await image.write(op.offset, new Uint8Array(op.length).fill(op.fill));
        if (random() < 0.1) {
          await image.flush();
          file.flushedOps = i + 1;
        }
        file.maybeCrash();
      }
      assert.ok(image.counters.clustersAllocated > 0);
      if (variant.clusterSize === 512) assert.ok(image.counters.refcountTableGrowths > 0, "crashes can hit a refcount table growth");

      let leaks = 0;
      for (const [c, crash] of file.crashes.entries()) {
        const crashPath = join(dir, `crash${c}.qcow2`);
        await writeFile(crashPath, crash.bytes);
        const check = spawnSync("qemu-img", ["check", "--output=json", crashPath], { encoding: "utf8" });
        const report = JSON.parse(check.stdout || "{}") as { corruptions?: number; leaks?: number };
        assert.ok(check.status === 0 || check.status === 3, `crash image ${c}: qemu-img check exit ${check.status}\n${check.stdout}${check.stderr}`);
        assert.equal(report.corruptions ?? 0, 0, `crash image ${c}: ${check.stdout}`);
        leaks += report.leaks ?? 0;
        const model = variant.backing ? base.slice() : new Uint8Array(size);
        const known = new Uint8Array(size).fill(1);
        for (const [i, op] of ops.entries()) {
          if (i < crash.flushed) model.fill(op.zero ? 0 : op.fill, op.offset, op.offset + op.length);
          else known.fill(0, op.offset, op.offset + op.length);
        }
        const rawPath = join(dir, `crash${c}.raw`);
        execFileSync("qemu-img", ["convert", "-O", "raw", crashPath, rawPath]);
        const actual = new Uint8Array(await readFile(rawPath));
        for (let b = 0; b < size; b++) {
          if (known[b] && actual[b] !== model[b]) assert.fail(`crash image ${c} (${crash.flushed} operations flushed): byte ${b} is ${actual[b]}, expected ${model[b]}`);
        }
        await rm(crashPath);
        await rm(rawPath);
      }
      assert.ok(file.crashes.length >= 8, `${file.crashes.length} crash images taken`);
      t.diagnostic(`${file.crashes.length} crash images, ${leaks} leaked clusters in all, ${image.counters.metadataFlushes} metadata flushes`);
      await image.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
