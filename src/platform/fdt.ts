// Flattened device tree (DTB) writer and reader, per the Devicetree Specification v0.4,
// chapter 5 ("Flattened Devicetree (DTB) Format"). Pure functions over plain data: a tree of
// nodes whose property values are already-encoded big-endian byte strings, and the blob.
//
// Blob layout produced by buildFdt (section 5.1 recommends this order):
//   header (40 bytes) | memory reservation block (8-aligned) | structure block (4-aligned) |
//   strings block (no alignment)

import { concatBytes } from "./bytes.ts";

export class FdtError extends Error {
  override name = "FdtError";
}

/** Section 5.2: header fields, all big-endian u32. */
export const FDT_MAGIC = 0xd00d_feed;
export const FDT_HEADER_SIZE = 40;
/** Version 17 is the current format; it is backward compatible with readers of version 16. */
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;

/** Section 5.4.1: structure block tokens. */
export const FDT_BEGIN_NODE = 0x1;
export const FDT_END_NODE = 0x2;
export const FDT_PROP = 0x3;
export const FDT_NOP = 0x4;
export const FDT_END = 0x9;

/** Section 2.2.1 / 2.2.4: names are 1..31 characters from these sets. */
const NODE_NAME_CHARS = /^[0-9a-zA-Z,._+-]+$/;
const PROPERTY_NAME_CHARS = /^[0-9a-zA-Z,._+?#-]+$/;
const MAX_NAME_LENGTH = 31;

export interface FdtProperty {
  name: string;
  /** The encoded value: big-endian cells, NUL-terminated strings, or raw bytes. */
  value: Uint8Array;
}

export interface FdtNode {
  /** "node-name@unit-address"; the root node's name is "". */
  name: string;
  properties: FdtProperty[];
  children: FdtNode[];
}

/** Section 5.3: one memory reservation entry. */
export interface FdtReservation {
  address: bigint;
  size: bigint;
}

export interface Fdt {
  root: FdtNode;
  reservations: FdtReservation[];
  /** Header field boot_cpuid_phys: the physical id (reg) of the boot CPU. */
  bootCpuId: number;
}

export interface ParsedFdt extends Fdt {
  version: number;
  lastCompVersion: number;
  /** The header's totalsize (the blob may sit in a larger buffer). */
  totalSize: number;
}

// ---------------------------------------------------------------------------------------------
// Property value encoders (section 2.2.4, table 2.3 "Property values")

const textEncoder = new TextEncoder();

function cellsFrom(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0xffff_ffff) throw new FdtError(`cell value ${v} does not fit in 32 bits`);
    view.setUint32(i * 4, v >>> 0);
  });
  return out;
}

function encodeString(s: string): Uint8Array {
  if (s.includes("\0")) throw new FdtError(`string ${JSON.stringify(s)} contains a NUL character`);
  const bytes = textEncoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

export const prop = {
  /** <empty>: a boolean property such as `interrupt-controller`. */
  empty: (): Uint8Array => new Uint8Array(0),
  /** <u32> or <prop-encoded-array> of 32-bit cells (negative numbers are taken as two's complement). */
  u32: (...cells: number[]): Uint8Array => cellsFrom(cells),
  /** <u64>: each value becomes two cells, most significant first. */
  u64: (...values: (number | bigint)[]): Uint8Array => {
    const cells: number[] = [];
    for (const v of values) {
      const big = BigInt(v);
      if (big < 0n || big > 0xffff_ffff_ffff_ffffn) throw new FdtError(`value ${v} does not fit in 64 bits`);
      cells.push(Number(big >> 32n), Number(big & 0xffff_ffffn));
    }
    return cellsFrom(cells);
  },
  /** <phandle>: a u32 naming another node through its `phandle` property. */
  phandle: (handle: number): Uint8Array => cellsFrom([handle]),
  /** <string>: NUL-terminated. */
  string: (s: string): Uint8Array => encodeString(s),
  /** <stringlist>: concatenated NUL-terminated strings. */
  strings: (list: readonly string[]): Uint8Array => concatBytes(list.map(encodeString)),
  /** Raw bytes, copied. */
  bytes: (b: Uint8Array): Uint8Array => b.slice(),
  /** Concatenates already-encoded pieces, e.g. phandle + cells pairs in `interrupts-extended`. */
  concat: (...parts: Uint8Array[]): Uint8Array => concatBytes(parts),
};

/**
 * Convenience constructor. Properties whose value is undefined are left out, so optional ones
 * can be written inline. Properties are emitted in the object's key order (which JavaScript keeps
 * for every key that is not an array index; no devicetree property name is one).
 */
export function fdtNode(name: string, properties: Record<string, Uint8Array | undefined> = {}, children: FdtNode[] = []): FdtNode {
  const list: FdtProperty[] = [];
  for (const [key, value] of Object.entries(properties)) if (value !== undefined) list.push({ name: key, value });
  return { name, properties: list, children };
}

// ---------------------------------------------------------------------------------------------
// Writer

function checkNodeName(name: string, isRoot: boolean): void {
  if (isRoot) {
    if (name !== "") throw new FdtError(`the root node's name must be empty, not ${JSON.stringify(name)}`);
    return;
  }
  const at = name.indexOf("@");
  const base = at < 0 ? name : name.slice(0, at);
  const unit = at < 0 ? undefined : name.slice(at + 1);
  if (base.length === 0 || base.length > MAX_NAME_LENGTH || !NODE_NAME_CHARS.test(base)) {
    throw new FdtError(`invalid node name ${JSON.stringify(name)} (DTSpec 2.2.1: 1-31 characters of [0-9a-zA-Z,._+-])`);
  }
  if (unit !== undefined && (unit.length === 0 || !NODE_NAME_CHARS.test(unit))) {
    throw new FdtError(`invalid unit address in node name ${JSON.stringify(name)}`);
  }
}

function checkPropertyName(name: string, node: string): void {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || !PROPERTY_NAME_CHARS.test(name)) {
    throw new FdtError(`invalid property name ${JSON.stringify(name)} in node ${JSON.stringify(node)} (DTSpec 2.2.4.1)`);
  }
}

/** Growable big-endian byte sink for the structure block. */
class Sink {
  private buf = new Uint8Array(4096);
  length = 0;
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  u32(v: number): void {
    this.reserve(4);
    new DataView(this.buf.buffer).setUint32(this.length, v >>> 0);
    this.length += 4;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  /** Pads with zeros to a 4-byte boundary: every token is 32-bit aligned (section 5.4). */
  align4(): void {
    const pad = (4 - (this.length & 3)) & 3;
    this.reserve(pad);
    this.buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Serializes a tree into a version-17 DTB. Throws FdtError on names the format cannot carry. */
export function buildFdt(fdt: { root: FdtNode; reservations?: FdtReservation[]; bootCpuId?: number }): Uint8Array {
  const reservations = fdt.reservations ?? [];
  const struct = new Sink();
  // Strings block (section 5.5): each property name once, referenced by offset.
  const stringOffsets = new Map<string, number>();
  const strings: Uint8Array[] = [];
  let stringsSize = 0;
  const nameOffset = (name: string): number => {
    let off = stringOffsets.get(name);
    if (off === undefined) {
      off = stringsSize;
      const encoded = encodeString(name);
      strings.push(encoded);
      stringsSize += encoded.length;
      stringOffsets.set(name, off);
    }
    return off;
  };

  // Iterative walk so that a pathological tree cannot exhaust the JS stack.
  const stack: { node: FdtNode; next: number }[] = [];
  const open = (node: FdtNode): void => {
    checkNodeName(node.name, stack.length === 0);
    const seenProps = new Set<string>();
    const seenChildren = new Set<string>();
    for (const c of node.children) {
      if (seenChildren.has(c.name)) throw new FdtError(`node ${JSON.stringify(node.name)} has two children named ${JSON.stringify(c.name)}`);
      seenChildren.add(c.name);
    }
    struct.u32(FDT_BEGIN_NODE);
    struct.bytes(encodeString(node.name));
    struct.align4();
    // Section 5.4.2: all of a node's properties precede its subnodes.
    for (const p of node.properties) {
      checkPropertyName(p.name, node.name);
      if (seenProps.has(p.name)) throw new FdtError(`node ${JSON.stringify(node.name)} has two properties named ${JSON.stringify(p.name)}`);
      seenProps.add(p.name);
      struct.u32(FDT_PROP);
      struct.u32(p.value.length);
      struct.u32(nameOffset(p.name));
      struct.bytes(p.value);
      struct.align4();
    }
    stack.push({ node, next: 0 });
  };
  open(fdt.root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next < top.node.children.length) {
      open(top.node.children[top.next++]);
    } else {
      struct.u32(FDT_END_NODE);
      stack.pop();
    }
  }
  struct.u32(FDT_END);
  const structBytes = struct.result();

  const offMemRsvmap = FDT_HEADER_SIZE; // 40 is already 8-aligned (section 5.3: 8-byte alignment)
  const rsvmapSize = (reservations.length + 1) * 16;
  const offDtStruct = offMemRsvmap + rsvmapSize; // multiple of 8, so 4-aligned as section 5.4 needs
  const offDtStrings = offDtStruct + structBytes.length;
  const totalSize = offDtStrings + stringsSize;

  const out = new Uint8Array(totalSize);
  const view = new DataView(out.buffer);
  const header = [
    FDT_MAGIC,
    totalSize,
    offDtStruct,
    offDtStrings,
    offMemRsvmap,
    FDT_VERSION,
    FDT_LAST_COMP_VERSION,
    fdt.bootCpuId ?? 0,
    stringsSize,
    structBytes.length,
  ];
  header.forEach((v, i) => view.setUint32(i * 4, v >>> 0));
  reservations.forEach((r, i) => {
    if (r.address < 0n || r.size < 0n || r.address > 0xffff_ffff_ffff_ffffn || r.size > 0xffff_ffff_ffff_ffffn) {
      throw new FdtError(`reservation ${i} does not fit in 64 bits`);
    }
    view.setBigUint64(offMemRsvmap + i * 16, r.address);
    view.setBigUint64(offMemRsvmap + i * 16 + 8, r.size);
  });
  // The terminating (0, 0) entry is already zero.
  out.set(structBytes, offDtStruct);
  let at = offDtStrings;
  for (const s of strings) {
    out.set(s, at);
    at += s.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reader

const textDecoder = new TextDecoder("utf-8");

function need(cond: boolean, message: string): asserts cond {
  if (!cond) throw new FdtError(message);
}

/** Parses a DTB (version 16 or later). Every read is bounds-checked; malformed input throws FdtError. */
export function parseFdt(bytes: Uint8Array): ParsedFdt {
  need(bytes.length >= FDT_HEADER_SIZE, `blob is ${bytes.length} bytes, shorter than the ${FDT_HEADER_SIZE}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = (i: number): number => view.getUint32(i * 4);
  const magic = h(0);
  need(magic === FDT_MAGIC, `bad magic 0x${magic.toString(16)} (expected 0x${FDT_MAGIC.toString(16)})`);
  const totalSize = h(1);
  const offDtStruct = h(2);
  const offDtStrings = h(3);
  const offMemRsvmap = h(4);
  const version = h(5);
  const lastCompVersion = h(6);
  const bootCpuId = h(7);
  const sizeDtStrings = h(8);
  need(version >= 16, `version ${version} is older than 16, which this reader needs`);
  need(lastCompVersion <= FDT_VERSION, `blob needs a reader of version ${lastCompVersion}; this one reads ${FDT_VERSION}`);
  need(totalSize >= FDT_HEADER_SIZE && totalSize <= bytes.length, `totalsize ${totalSize} is outside ${FDT_HEADER_SIZE}..${bytes.length}`);
  // size_dt_struct only exists from version 17 on.
  const sizeDtStruct = version >= 17 ? h(9) : totalSize - offDtStruct;
  const inBlob = (off: number, len: number): boolean => off >= FDT_HEADER_SIZE && len >= 0 && off + len <= totalSize;
  need(inBlob(offDtStruct, sizeDtStruct) && offDtStruct % 4 === 0, `structure block (offset ${offDtStruct}, ${sizeDtStruct} bytes) is misplaced`);
  need(inBlob(offDtStrings, sizeDtStrings), `strings block (offset ${offDtStrings}, ${sizeDtStrings} bytes) is misplaced`);
  need(offMemRsvmap % 8 === 0 && inBlob(offMemRsvmap, 16), `memory reservation block offset ${offMemRsvmap} is misplaced`);

  const reservations: FdtReservation[] = [];
  for (let off = offMemRsvmap; ; off += 16) {
    need(off + 16 <= totalSize, "memory reservation block has no terminating entry");
    const address = view.getBigUint64(off);
    const size = view.getBigUint64(off + 8);
    if (address === 0n && size === 0n) break;
    reservations.push({ address, size });
  }

  const structEnd = offDtStruct + sizeDtStruct;
  const stringsEnd = offDtStrings + sizeDtStrings;
  const cString = (start: number, end: number, what: string): { text: string; next: number } => {
    let p = start;
    while (p < end && bytes[p] !== 0) p++;
    need(p < end, `${what} at offset ${start} is not NUL-terminated`);
    return { text: textDecoder.decode(bytes.subarray(start, p)), next: p + 1 };
  };

  let pos = offDtStruct;
  const token = (): number => {
    need(pos + 4 <= structEnd, `structure block ends inside a token at offset ${pos}`);
    const t = view.getUint32(pos);
    pos += 4;
    return t;
  };
  const align = (): void => {
    pos = (pos + 3) & ~3;
  };

  let root: FdtNode | undefined;
  const stack: FdtNode[] = [];
  for (;;) {
    const at = pos;
    const t = token();
    if (t === FDT_NOP) continue;
    if (t === FDT_BEGIN_NODE) {
      need(root === undefined || stack.length > 0, `second top-level node at offset ${at}`);
      const { text, next } = cString(pos, structEnd, "node name");
      pos = next;
      align();
      const node: FdtNode = { name: text, properties: [], children: [] };
      if (stack.length === 0) root = node;
      else {
        const parent = stack[stack.length - 1];
        need(!parent.children.some((c) => c.name === text), `duplicate node ${JSON.stringify(text)} at offset ${at}`);
        parent.children.push(node);
      }
      stack.push(node);
    } else if (t === FDT_PROP) {
      need(stack.length > 0, `property outside any node at offset ${at}`);
      const node = stack[stack.length - 1];
      need(node.children.length === 0, `property after a subnode in ${JSON.stringify(node.name)} at offset ${at}`);
      const len = token();
      const nameoff = token();
      need(len <= structEnd - pos, `property at offset ${at} claims ${len} bytes past the structure block`);
      need(nameoff < sizeDtStrings, `property name offset ${nameoff} lies outside the strings block`);
      const { text } = cString(offDtStrings + nameoff, stringsEnd, "property name");
      need(!node.properties.some((p) => p.name === text), `duplicate property ${JSON.stringify(text)} at offset ${at}`);
      // A copy as a plain Uint8Array (Buffer.prototype.slice would alias the input).
      node.properties.push({ name: text, value: new Uint8Array(bytes.subarray(pos, pos + len)) });
      pos += len;
      align();
    } else if (t === FDT_END_NODE) {
      need(stack.length > 0, `unbalanced FDT_END_NODE at offset ${at}`);
      stack.pop();
    } else if (t === FDT_END) {
      need(root !== undefined && stack.length === 0, `FDT_END at offset ${at} inside an open node or before the root`);
      break;
    } else {
      throw new FdtError(`unknown token 0x${t.toString(16)} at offset ${at}`);
    }
  }
  return { root: root!, reservations, bootCpuId, version, lastCompVersion, totalSize };
}

// ---------------------------------------------------------------------------------------------
// Lookup and value decoders for readers of a parsed tree

/**
 * Finds a node by absolute path ("/soc/serial@10000000"). A path component without "@" also
 * matches a node whose name has a unit address, as long as the base name is unique.
 */
export function findNode(root: FdtNode, path: string): FdtNode | undefined {
  if (!path.startsWith("/")) return undefined;
  let node: FdtNode | undefined = root;
  for (const part of path.split("/").filter((p) => p.length > 0)) {
    const exact: FdtNode | undefined = node.children.find((c) => c.name === part);
    if (exact) {
      node = exact;
      continue;
    }
    if (part.includes("@")) return undefined;
    const loose: FdtNode[] = node.children.filter((c) => c.name.split("@")[0] === part);
    if (loose.length !== 1) return undefined;
    node = loose[0];
  }
  return node;
}

export function getProperty(node: FdtNode, name: string): Uint8Array | undefined {
  return node.properties.find((p) => p.name === name)?.value;
}

export function decodeU32Cells(value: Uint8Array): number[] {
  need(value.length % 4 === 0, `value of ${value.length} bytes is not a whole number of cells`);
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const out: number[] = [];
  for (let i = 0; i < value.length; i += 4) out.push(view.getUint32(i));
  return out;
}

export function decodeU64(value: Uint8Array): bigint {
  need(value.length === 8, `value of ${value.length} bytes is not a u64`);
  return new DataView(value.buffer, value.byteOffset, value.byteLength).getBigUint64(0);
}

export function decodeStrings(value: Uint8Array): string[] {
  need(value.length > 0 && value[value.length - 1] === 0, "string value is not NUL-terminated");
  return textDecoder.decode(value.subarray(0, value.length - 1)).split("\0");
}

export function decodeString(value: Uint8Array): string {
  const list = decodeStrings(value);
  need(list.length === 1, `expected one string, found ${list.length}`);
  return list[0];
}
