import { test } from "node:test";
import assert from "node:assert/strict";
import {
  buildFdt,
  parseFdt,
  fdtNode,
  prop,
  findNode,
  getProperty,
  decodeU32Cells,
  decodeU64,
  decodeString,
  decodeStrings,
  FdtError,
  FDT_MAGIC,
  FDT_HEADER_SIZE,
} from "./fdt.ts";

function sampleTree() {
  return fdtNode("", { "#address-cells": prop.u32(2), "#size-cells": prop.u32(2), compatible: prop.strings(["a,b", "c"]) }, [
    fdtNode("chosen", { bootargs: prop.string("console=ttyS0 quiet"), "linux,initrd-start": prop.u64(0x8800_0000) }),
    fdtNode("memory@80000000", { device_type: prop.string("memory"), reg: prop.u64(0x8000_0000, 0x1000_0000) }),
    fdtNode("soc", { "#address-cells": prop.u32(2), ranges: prop.empty(), odd: prop.bytes(new Uint8Array([1, 2, 3])) }, [
      fdtNode("intc@0", { "interrupt-controller": prop.empty(), phandle: prop.phandle(7) }),
    ]),
  ]);
}

test("round-trips nodes, properties and reservations", () => {
  const root = sampleTree();
  const reservations = [{ address: 0x8000_0000n, size: 0x20_0000n }];
  const blob = buildFdt({ root, reservations, bootCpuId: 3 });
  const parsed = parseFdt(blob);
  assert.deepEqual(parsed.root, root);
  assert.deepEqual(parsed.reservations, reservations);
  assert.equal(parsed.bootCpuId, 3);
  assert.equal(parsed.version, 17);
  assert.equal(parsed.lastCompVersion, 16);
  assert.equal(parsed.totalSize, blob.length);
});

test("header and block alignment follow DTSpec chapter 5", () => {
  const blob = buildFdt({ root: sampleTree() });
  const v = new DataView(blob.buffer);
  assert.equal(v.getUint32(0), FDT_MAGIC);
  assert.equal(v.getUint32(4), blob.length);
  const offStruct = v.getUint32(8), offStrings = v.getUint32(12), offRsv = v.getUint32(16);
  assert.equal(offRsv % 8, 0);
  assert.equal(offRsv, FDT_HEADER_SIZE);
  assert.equal(offStruct % 4, 0);
  assert.equal(v.getUint32(36) % 4, 0, "struct size is a multiple of 4");
  assert.equal(offStruct + v.getUint32(36), offStrings);
  assert.equal(offStrings + v.getUint32(32), blob.length);
  // Empty reservation map: just the (0, 0) terminator.
  assert.equal(v.getBigUint64(offRsv), 0n);
  assert.equal(offStruct - offRsv, 16);
  // First token is FDT_BEGIN_NODE with the empty root name padded to 4 bytes, then FDT_PROP.
  assert.equal(v.getUint32(offStruct), 1);
  assert.equal(v.getUint32(offStruct + 8), 3);
  // Last token is FDT_END.
  assert.equal(v.getUint32(offStrings - 4), 9);
});

test("property names are stored once in the strings block", () => {
  const root = fdtNode("", { "#address-cells": prop.u32(1) }, [
    fdtNode("a", { "#address-cells": prop.u32(1), compatible: prop.string("x") }),
    fdtNode("b", { "#address-cells": prop.u32(1), compatible: prop.string("y") }),
  ]);
  const blob = buildFdt({ root });
  const v = new DataView(blob.buffer);
  const strings = new TextDecoder().decode(blob.subarray(v.getUint32(12), v.getUint32(12) + v.getUint32(32)));
  assert.equal(strings, "#address-cells\0compatible\0");
});

test("value encoders and decoders", () => {
  assert.deepEqual([...prop.u32(1, 0xffff_ffff, -1)], [0, 0, 0, 1, 255, 255, 255, 255, 255, 255, 255, 255]);
  assert.deepEqual(decodeU32Cells(prop.u64(0x1_0000_0002n)), [1, 2]);
  assert.equal(decodeU64(prop.u64(0x1234_5678_9abc_def0n)), 0x1234_5678_9abc_def0n);
  assert.equal(decodeString(prop.string("hello")), "hello");
  assert.deepEqual(decodeStrings(prop.strings(["a", "", "bc"])), ["a", "", "bc"]);
  assert.deepEqual([...prop.concat(prop.phandle(2), prop.u32(9))], [0, 0, 0, 2, 0, 0, 0, 9]);
  assert.throws(() => prop.u32(0x1_0000_0000), FdtError);
  assert.throws(() => prop.u32(1.5), FdtError);
  assert.throws(() => prop.u64(-1), FdtError);
  assert.throws(() => prop.string("a\0b"), FdtError);
  assert.throws(() => decodeU32Cells(new Uint8Array(3)), FdtError);
  assert.throws(() => decodeString(new Uint8Array([0x61])), FdtError);
});

test("findNode and getProperty", () => {
  const root = sampleTree();
  assert.equal(findNode(root, "/"), root);
  assert.equal(findNode(root, "/soc/intc@0")?.name, "intc@0");
  assert.equal(findNode(root, "/soc/intc")?.name, "intc@0");
  assert.equal(findNode(root, "/memory")?.name, "memory@80000000");
  assert.equal(findNode(root, "/nope"), undefined);
  assert.equal(findNode(root, "soc"), undefined);
  assert.deepEqual(decodeU32Cells(getProperty(findNode(root, "/soc/intc")!, "phandle")!), [7]);
});

test("the writer rejects what the format cannot carry", () => {
  assert.throws(() => buildFdt({ root: fdtNode("root") }), /root node's name/);
  assert.throws(() => buildFdt({ root: fdtNode("", {}, [fdtNode("")]) }), /invalid node name/);
  assert.throws(() => buildFdt({ root: fdtNode("", {}, [fdtNode("a/b")]) }), /invalid node name/);
  assert.throws(() => buildFdt({ root: fdtNode("", {}, [fdtNode("x".repeat(32))]) }), /invalid node name/);
  assert.throws(() => buildFdt({ root: fdtNode("", {}, [fdtNode("a@")]) }), /unit address/);
  assert.throws(() => buildFdt({ root: fdtNode("", {}, [fdtNode("a"), fdtNode("a")]) }), /two children/);
  assert.throws(() => buildFdt({ root: fdtNode("", { "bad name": prop.empty() }) }), /invalid property name/);
  const dup = { name: "", properties: [{ name: "p", value: prop.empty() }, { name: "p", value: prop.empty() }], children: [] };
  assert.throws(() => buildFdt({ root: dup }), /two properties/);
  assert.throws(() => buildFdt({ root: fdtNode(""), reservations: [{ address: -1n, size: 0n }] }), FdtError);
});

test("the reader rejects malformed blobs with FdtError", () => {
  const good = buildFdt({ root: sampleTree() });
  const mutate = (f: (v: DataView, b: Uint8Array) => void): Uint8Array => {
    const b = good.slice();
    f(new DataView(b.buffer), b);
    return b;
  };
  assert.throws(() => parseFdt(new Uint8Array(10)), /shorter than/);
  assert.throws(() => parseFdt(mutate((v) => v.setUint32(0, 0))), /bad magic/);
  assert.throws(() => parseFdt(mutate((v) => v.setUint32(4, good.length + 1))), /totalsize/);
  assert.throws(() => parseFdt(good.subarray(0, good.length - 1)), /totalsize/);
  assert.throws(() => parseFdt(mutate((v) => v.setUint32(8, 42))), /structure block/);
  assert.throws(() => parseFdt(mutate((v) => v.setUint32(16, 44))), /reservation block/);
  assert.throws(() => parseFdt(mutate((v) => v.setUint32(20, 15))), /version/);
  assert.throws(() => parseFdt(mutate((v) => v.setUint32(24, 18))), /reader of version/);
  const offStruct = new DataView(good.buffer).getUint32(8);
  assert.throws(() => parseFdt(mutate((v) => v.setUint32(offStruct, 0x77))), /unknown token/);
  assert.throws(() => parseFdt(mutate((v) => v.setUint32(offStruct, 2))), /unbalanced/);
  assert.throws(() => parseFdt(mutate((v) => v.setUint32(offStruct + 12, 0xffff))), /past the structure block/);
  assert.throws(() => parseFdt(mutate((v) => v.setUint32(offStruct + 16, 0xffff))), /name offset/);
  // A version-16 blob (no size_dt_struct) is still readable.
  assert.deepEqual(parseFdt(mutate((v) => { v.setUint32(20, 16); v.setUint32(36, 0); })).root, sampleTree());
});

/** xorshift32: deterministic so that a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

test("fuzz: randomly mutated blobs either parse or throw FdtError", () => {
  const good = buildFdt({ root: sampleTree(), reservations: [{ address: 1n, size: 2n }] });
  const next = rng(0x5eed);
  let parsed = 0;
  let rejected = 0;
  for (let iter = 0; iter < 20000; iter++) {
    let b: Uint8Array = good.slice();
    const edits = 1 + (next() % 4);
    for (let e = 0; e < edits; e++) {
      const kind = next() % 6;
      const at = next() % b.length;
      if (kind === 0) b[at] = next() & 0xff; // random byte
      else if (kind === 1) b[at] ^= 1 << (next() % 8); // bit flip
      else if (kind === 2) b = b.slice(0, at); // truncation
      else if (kind === 3) {
        // interesting 32-bit value at an aligned offset (tokens, lengths, offsets)
        const values = [0, 1, 2, 3, 4, 9, 0xffff_ffff, 0x7fff_ffff, b.length, b.length - 4];
        if (b.length >= 4) new DataView(b.buffer, b.byteOffset).setUint32(Math.min(at & ~3, (b.length - 4) & ~3), values[next() % values.length] >>> 0);
      } else if (kind === 4) {
        const ins = new Uint8Array(b.length + 4);
        ins.set(b.subarray(0, at));
        ins.set(b.subarray(at), at + 4);
        b = ins; // insertion shifts everything after it
      } else b.copyWithin(at, next() % b.length, (next() % b.length) + 1);
      if (b.length === 0) break;
    }
    // Keep the header valid some of the time so the walk gets exercised deeply.
    if (iter % 2 === 0 && b.length >= 40) {
      const v = new DataView(b.buffer, b.byteOffset);
      v.setUint32(0, FDT_MAGIC);
      v.setUint32(4, Math.min(v.getUint32(4), b.length));
    }
    try {
      parseFdt(b);
      parsed++;
    } catch (err) {
      if (!(err instanceof FdtError)) {
        throw new Error(`iteration ${iter}: parseFdt threw ${String(err)} instead of FdtError`);
      }
      rejected++;
    }
  }
  assert.ok(rejected > 0 && parsed > 0, `parsed ${parsed}, rejected ${rejected}`);
});
