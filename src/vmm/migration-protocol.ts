// The live-migration stream between two Parley processes: framed messages over one byte stream
// (a Unix or TCP socket). Pure encoding and parsing, so the parser can be fuzzed; migration.ts
// drives it.
//
//   frame   = type u8, payload length u32 (little-endian), payload
//   HELLO   source -> destination: JSON { protocol, version, config, ramSize, harts }
//   READY   destination -> source: JSON {} once it has built a machine for that description
//   PAGES   source -> destination: records of page u32, kind u8 (0 zero page, 1 data), 4096 bytes if data
//   STATE   source -> destination: JSON { machine } (VirtMachine.saveState) after the last pages
//   DONE    destination -> source: JSON { restoreMs } once the guest runs there
//   ERROR   either way: JSON { message }; the stream ends

import { concatBytes } from "../platform/bytes.ts";

export const MIGRATION_PROTOCOL = "parley-migration";
export const MIGRATION_VERSION = 1;
export const PAGE_SIZE = 4096;

export const FRAME_HELLO = 1;
export const FRAME_READY = 2;
export const FRAME_PAGES = 3;
export const FRAME_STATE = 4;
export const FRAME_DONE = 5;
export const FRAME_ERROR = 6;

const FRAME_NAMES: Record<number, string> = { 1: "HELLO", 2: "READY", 3: "PAGES", 4: "STATE", 5: "DONE", 6: "ERROR" };
export const FRAME_HEADER = 5;
/** The largest payload a receiver accepts: a PAGES frame of 256 data pages, or a big state. */
export const MAX_FRAME_PAYLOAD = 64 << 20;
export const PAGE_RECORD_ZERO = 0;
export const PAGE_RECORD_DATA = 1;

export class MigrationProtocolError extends Error {
  override name = "MigrationProtocolError";
}

export interface Frame {
  type: number;
  payload: Uint8Array;
}

export function frameName(type: number): string {
  return FRAME_NAMES[type] ?? `frame type ${type}`;
}

export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length, true);
  out.set(payload, FRAME_HEADER);
  return out;
}

export function encodeJsonFrame(type: number, value: unknown): Uint8Array {
  return encodeFrame(type, new TextEncoder().encode(JSON.stringify(value)));
}

export function decodeJson(frame: Frame): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(frame.payload));
  } catch {
    throw new MigrationProtocolError(`${frameName(frame.type)}: the payload is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new MigrationProtocolError(`${frameName(frame.type)}: the payload is not an object`);
  return value as Record<string, unknown>;
}

/** Splits a byte stream into frames; feed() takes chunks as they arrive. */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  feed(chunk: Uint8Array): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < FRAME_HEADER) break;
      const head = this.peek(FRAME_HEADER);
      const type = head[0];
      const length = new DataView(head.buffer, head.byteOffset, FRAME_HEADER).getUint32(1, true);
      if (!(type in FRAME_NAMES)) throw new MigrationProtocolError(`unknown frame type ${type}: not a Parley migration stream`);
      if (length > MAX_FRAME_PAYLOAD) throw new MigrationProtocolError(`${frameName(type)} of ${length} bytes exceeds the ${MAX_FRAME_PAYLOAD}-byte limit`);
      if (this.buffered < FRAME_HEADER + length) break;
      const whole = this.take(FRAME_HEADER + length);
      frames.push({ type, payload: whole.subarray(FRAME_HEADER) });
    }
    return frames;
  }

  private peek(n: number): Uint8Array {
    if (this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    this.chunks = [concatBytes(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  private take(n: number): Uint8Array {
    if (this.chunks[0].length < n) this.chunks = [concatBytes(this.chunks)];
    const first = this.chunks[0];
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

/** A PAGES payload for `pages` of `ram` (zero pages as records without data); `isZeroPage` tests a page of `ram`. */
export function encodePages(ram: Uint8Array, isZeroPage: (page: number) => boolean, pages: readonly number[]): { payload: Uint8Array; dataPages: number } {
  let dataPages = 0;
  const zero = pages.map((page) => isZeroPage(page));
  for (const z of zero) if (!z) dataPages++;
  const payload = new Uint8Array(pages.length * 5 + dataPages * PAGE_SIZE);
  const view = new DataView(payload.buffer);
  let offset = 0;
  pages.forEach((page, i) => {
    view.setUint32(offset, page, true);
    if (zero[i]) {
      payload[offset + 4] = PAGE_RECORD_ZERO;
      offset += 5;
    } else {
      payload[offset + 4] = PAGE_RECORD_DATA;
      payload.set(ram.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE), offset + 5);
      offset += 5 + PAGE_SIZE;
    }
  });
  return { payload, dataPages };
}

/** Applies a PAGES payload to `ram`; refuses records outside RAM or cut short. Returns the pages. */
export function applyPages(ram: Uint8Array, payload: Uint8Array): number {
  const pages = ram.length / PAGE_SIZE;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  let offset = 0;
  let count = 0;
  while (offset < payload.length) {
    if (offset + 5 > payload.length) throw new MigrationProtocolError("PAGES: a record is cut short");
    const page = view.getUint32(offset, true);
    const kind = payload[offset + 4];
    if (page >= pages) throw new MigrationProtocolError(`PAGES: page ${page} is beyond ${pages} pages of RAM`);
    if (kind === PAGE_RECORD_ZERO) {
      ram.fill(0, page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
      offset += 5;
    } else if (kind === PAGE_RECORD_DATA) {
      if (offset + 5 + PAGE_SIZE > payload.length) throw new MigrationProtocolError("PAGES: a page's data is cut short");
      ram.set(payload.subarray(offset + 5, offset + 5 + PAGE_SIZE), page * PAGE_SIZE);
      offset += 5 + PAGE_SIZE;
    } else {
      throw new MigrationProtocolError(`PAGES: unknown record kind ${kind}`);
    }
    count++;
  }
  return count;
}

/** The set bits of a dirty bitmap (bit i of word w = page w*32+i), as page numbers. */
export function bitmapPages(bitmap: Uint32Array): number[] {
  const pages: number[] = [];
  for (let w = 0; w < bitmap.length; w++) {
    let bits = bitmap[w];
    while (bits !== 0) {
      const bit = 31 - Math.clz32(bits & -bits);
      pages.push(w * 32 + bit);
      bits &= bits - 1;
    }
  }
  return pages;
}

export type MigrationEndpoint = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** "unix:PATH" or "tcp:HOST:PORT" (QEMU's spelling); throws a RangeError naming what is wrong. */
export function parseMigrationEndpoint(text: string): MigrationEndpoint {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (path === "") throw new RangeError(`${text}: unix: needs a socket path`);
    return { kind: "unix", path };
  }
  if (text.startsWith("tcp:")) {
    const rest = text.slice(4);
    const colon = rest.lastIndexOf(":");
    if (colon < 0) throw new RangeError(`${text}: use tcp:HOST:PORT`);
    const host = rest.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    const port = Number(rest.slice(colon + 1));
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`${text}: the port must be 1..65535`);
    return { kind: "tcp", host: host || "127.0.0.1", port };
  }
  throw new RangeError(`${text}: use unix:PATH or tcp:HOST:PORT`);
}
