// Test support for virtio-9p: T-message builders, an R-message reader, and a guest driver that
// sends each T-message through the device's virtqueue (the fake split ring) and waits for the reply,
// as Linux's net/9p/trans_virtio.c does. Not part of Parley's runtime.
import { VirtioMmioTransport } from "../transport/mmio.ts";
import { VirtioMmioRegister as R } from "../constants.ts";
import { FakeRam, SplitDriver, linuxProbe, mmioWrite } from "./fake-driver.ts";
import { P9Reader, P9Writer, type Qid } from "../9p/codec.ts";
import { P9, P9_NOFID, P9_NOTAG, P9_PROTO_2000L } from "../9p/spec.ts";
import { VirtioNinep, type VirtioNinepOptions } from "../9p/device.ts";

/** One T-message: `fill` writes the body. */
export function tmsg(type: number, tag: number, fill: (w: P9Writer) => void = () => {}): Uint8Array {
  const w = new P9Writer(type, tag);
  fill(w);
  return w.finish();
}

/** A reply: its type and tag, and a reader positioned at its body. */
export interface Reply {
  type: number;
  tag: number;
  body: P9Reader;
  bytes: Uint8Array;
}

export function readReply(bytes: Uint8Array): Reply {
  const r = new P9Reader(bytes);
  const size = r.u32();
  if (size !== bytes.length) throw new Error(`reply size ${size} but ${bytes.length} bytes used`);
  return { type: r.u8(), tag: r.u16(), body: r, bytes };
}

export function readQid(r: P9Reader): Qid {
  return { type: r.u8(), version: r.u32(), path: r.u64() };
}

/** Rlerror's errno, or undefined when the reply is not an Rlerror. */
export function errnoOfReply(reply: Reply): number | undefined {
  return reply.type === P9.RLERROR ? new P9Reader(reply.bytes, 7).u32() : undefined;
}

/** Waits for promises the device's backend started (host file I/O takes several event-loop turns). */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A virtio-9p device on a fake split ring, driven like Linux's client. */
export class NinepGuest {
  readonly device: VirtioNinep;
  readonly transport: VirtioMmioTransport;
  readonly ram: FakeRam;
  readonly driver: SplitDriver;
  private nextTag = 1;
  nextFid = 1;

  constructor(options: VirtioNinepOptions, ramSize = 8 << 20) {
    this.device = new VirtioNinep(options);
    this.ram = new FakeRam(ramSize);
    this.transport = new VirtioMmioTransport({ device: this.device, memory: this.ram.memory, irq: () => {} });
    const probe = linuxProbe(this.transport, this.ram, (offered) => offered & ~(1n << 34n));
    this.driver = probe.drivers[0] as SplitDriver;
  }

  /** Sends raw chain contents (`out` readable buffers, writable buffers of `inLens`) and returns the bytes the device wrote. */
  async raw(out: Uint8Array[], inLens: number[]): Promise<Uint8Array> {
    const { id, inAddrs } = this.driver.add(out, inLens);
    mmioWrite(this.transport, R.QueueNotify, 0);
    for (let spins = 0; ; spins++) {
      const used = this.driver.used();
      const mine = used.find((u) => u.id === id);
      if (used.length > 0 && !mine) throw new Error("a different chain completed");
      if (mine) {
        const bytes = new Uint8Array(mine.len);
        let at = 0;
        for (const [i, addr] of inAddrs.entries()) {
          if (at >= mine.len) break;
          // A zero-length buffer in the middle holds nothing; the reply goes on in the next one.
          const n = Math.min(inLens[i], mine.len - at);
          if (n <= 0) continue;
          bytes.set(this.ram.get(addr, n), at);
          at += n;
        }
        return bytes;
      }
      if (spins > 100_000) throw new Error("no reply");
      await turn();
    }
  }

  /** Sends one T-message with `replyRoom` bytes of writable space (split over `pieces` buffers). */
  async rpc(type: number, fill: (w: P9Writer) => void = () => {}, replyRoom = 8192, pieces = 1): Promise<Reply> {
    // Tversion carries NOTAG (intro(5)); other tags cycle below it.
    const tag = type === P9.TVERSION ? P9_NOTAG : this.nextTag++ % P9_NOTAG;
    const message = tmsg(type, tag, fill);
    const each = Math.ceil(replyRoom / pieces);
    const inLens = Array.from({ length: pieces }, (_, i) => Math.min(each, replyRoom - i * each)).filter((n) => n > 0);
    const reply = readReply(await this.raw([message], inLens));
    if (reply.tag !== tag) throw new Error(`reply tag ${reply.tag} for request ${tag}`);
    return reply;
  }

  /** Tversion + Tattach of fid 0. */
  async mount(msize = 65536): Promise<Reply> {
    await this.rpc(P9.TVERSION, (w) => w.u32(msize).str(P9_PROTO_2000L));
    return this.rpc(P9.TATTACH, (w) => w.u32(0).u32(P9_NOFID).str("root").str("").u32(0));
  }

  /** Twalk from `fid` to a new fid; returns it or the errno. */
  async walk(names: string[], fid = 0): Promise<{ fid: number; reply: Reply }> {
    const newfid = this.nextFid++;
    const reply = await this.rpc(P9.TWALK, (w) => {
      w.u32(fid).u32(newfid).u16(names.length);
      for (const n of names) w.str(n);
    });
    return { fid: newfid, reply };
  }
}
