// Test support for virtio-blk: a small "driver" that lays requests out in guest memory the way a
// driver may (header, data and status split over buffers at will), to feed the device through
// the common FakeContext (fake-queue.ts) or parseRequest directly.
import type { DescriptorChain, GuestBuffer } from "../types.ts";
import type { BlockBackend } from "../blk/backend.ts";
import { VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE, VIRTIO_BLK_REQ_HEADER_SIZE } from "../blk/spec.ts";
import type { FakeGuestMemory } from "../../testing/fakes.ts";
import { makeChain } from "./fake-queue.ts";

export interface RequestSpec {
  type: number;
  sector?: number | bigint;
  reserved?: number;
  /** Device-readable data after the header. */
  out?: Uint8Array;
  /** Device-writable data bytes before the status byte. */
  inLen?: number;
  /** Whether the status byte exists (default true). */
  status?: boolean;
  /** Split every part into buffers of at most this many bytes (default: one buffer per part). */
  split?: number;
  /** Put the status byte in the same buffer as the data (default false). */
  statusWithData?: boolean;
}

/** Lays requests out in fake guest RAM as a driver would. */
export class FakeDriver {
  private next: number;
  private nextId = 0;

  constructor(readonly memory: FakeGuestMemory) {
    this.next = memory.base + 0x1000;
  }

  alloc(len: number): number {
    const addr = this.next;
    this.next += Math.max(len, 1) + 16; // a gap between buffers catches overruns
    if (this.next > this.memory.base + this.memory.size) throw new RangeError("fake RAM exhausted");
    return addr;
  }

  /** Buffers holding `len` bytes at consecutive (gapped) addresses, at most `split` bytes each. */
  private buffers(len: number, split: number | undefined): GuestBuffer[] {
    if (len === 0) return [];
    const out: GuestBuffer[] = [];
    const piece = split ?? len;
    for (let done = 0; done < len; ) {
      const n = Math.min(piece, len - done);
      out.push({ addr: this.alloc(n), len: n });
      done += n;
    }
    return out;
  }

  private fill(buffers: GuestBuffer[], bytes: Uint8Array): void {
    let done = 0;
    for (const b of buffers) {
      this.memory.view(b.addr, b.len)!.set(bytes.subarray(done, done + b.len));
      done += b.len;
    }
  }

  request(spec: RequestSpec): { chain: DescriptorChain; status: () => number; data: () => Uint8Array } {
    const out = spec.out ?? new Uint8Array(0);
    const header = new Uint8Array(VIRTIO_BLK_REQ_HEADER_SIZE);
    const hv = new DataView(header.buffer);
    hv.setUint32(0, spec.type >>> 0, true);
    hv.setUint32(4, spec.reserved ?? 0, true);
    hv.setBigUint64(8, BigInt.asUintN(64, BigInt(spec.sector ?? 0)), true);
    const readableBytes = new Uint8Array(header.length + out.length);
    readableBytes.set(header);
    readableBytes.set(out, header.length);
    const readable = this.buffers(readableBytes.length, spec.split);
    this.fill(readable, readableBytes);

    const inLen = spec.inLen ?? 0;
    const hasStatus = spec.status ?? true;
    let writable: GuestBuffer[];
    let statusAddr = -1;
    if (spec.statusWithData && hasStatus) {
      writable = this.buffers(inLen + 1, spec.split);
    } else {
      writable = this.buffers(inLen, spec.split);
      if (hasStatus) writable.push({ addr: this.alloc(1), len: 1 });
    }
    if (hasStatus) {
      const last = writable[writable.length - 1];
      statusAddr = last.addr + last.len - 1;
      this.memory.view(statusAddr, 1)![0] = 0xee; // "not written yet"
    }
    const data = writable.slice();
    const chain = makeChain(this.nextId++, readable, writable);
    return {
      chain,
      status: () => this.memory.view(statusAddr, 1)![0],
      data: () => {
        const bytes = new Uint8Array(inLen);
        let done = 0;
        for (const b of data) {
          const n = Math.min(b.len, inLen - done);
          if (n <= 0) break;
          bytes.set(this.memory.view(b.addr, n)!, done);
          done += n;
        }
        return bytes;
      },
    };
  }
}

/** struct virtio_blk_discard_write_zeroes[] as bytes. */
export function segments(...segs: { sector: number | bigint; numSectors: number; flags?: number }[]): Uint8Array {
  const bytes = new Uint8Array(segs.length * VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE);
  const v = new DataView(bytes.buffer);
  segs.forEach((s, i) => {
    const base = i * VIRTIO_BLK_DISCARD_WRITE_ZEROES_SIZE;
    v.setBigUint64(base, BigInt.asUintN(64, BigInt(s.sector)), true);
    v.setUint32(base + 8, s.numSectors >>> 0, true);
    v.setUint32(base + 12, (s.flags ?? 0) >>> 0, true);
  });
  return bytes;
}

/**
 * The same disk as a backend without readInto / writeFrom (as qcow2 is), so that the device takes
 * its bounce-buffer path.
 */
export function bounceOnly(backend: BlockBackend): BlockBackend {
  return {
    size: backend.size,
    readOnly: backend.readOnly,
    id: backend.id,
    writeZeroesMayUnmap: backend.writeZeroesMayUnmap,
    read: (offset, into) => backend.read(offset, into),
    write: (offset, data) => backend.write(offset, data),
    flush: () => backend.flush(),
    discard: (offset, length) => backend.discard(offset, length),
    writeZeroes: (offset, length, unmap) => backend.writeZeroes(offset, length, unmap),
    close: () => backend.close(),
  };
}
