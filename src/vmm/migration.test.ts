// The migration stream's pure parts (framing, page records, endpoints, dirty bitmaps), fuzzed, and
// a whole migration of a small machine over TCP on the loopback: the guest counts on at the
// destination from where it was.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtMachine, type VirtMachineOptions } from "../machine/virt.ts";
import { loadCoreModule } from "../host/node/core-module.ts";
import { aluImm, jal, store, uType, OP, iType } from "../../test/diff/encode.ts";
import { kernelImage } from "../../test/support/guest-kernel.ts";
import {
  applyPages,
  bitmapPages,
  encodeFrame,
  encodePages,
  FRAME_PAGES,
  FrameReader,
  MAX_FRAME_PAYLOAD,
  MigrationProtocolError,
  parseMigrationEndpoint,
} from "./migration-protocol.ts";
import { listenForMigration, migrateOut } from "./migration.ts";
import { zeroPageTester } from "../host/node/memory-file.ts";

test("frames survive any chunking; unknown types and oversized frames are refused", () => {
  const frames = [encodeFrame(1, new TextEncoder().encode('{"a":1}')), encodeFrame(FRAME_PAGES, new Uint8Array(5000).fill(7)), encodeFrame(5, new Uint8Array(0))];
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let offset = 0;
  for (const f of frames) {
    stream.set(f, offset);
    offset += f.length;
  }
  for (const chunk of [1, 3, 7, 4096, stream.length]) {
    const reader = new FrameReader();
    const got = [];
    for (let i = 0; i < stream.length; i += chunk) got.push(...reader.feed(stream.slice(i, i + chunk)));
    assert.deepEqual(got.map((f) => [f.type, f.payload.length]), [[1, 7], [FRAME_PAGES, 5000], [5, 0]]);
  }
  assert.throws(() => new FrameReader().feed(Uint8Array.of(99, 0, 0, 0, 0)), MigrationProtocolError);
  const huge = new Uint8Array(5);
  huge[0] = FRAME_PAGES;
  new DataView(huge.buffer).setUint32(1, MAX_FRAME_PAYLOAD + 1, true);
  assert.throws(() => new FrameReader().feed(huge), /exceeds/);
});

test("page records round-trip and never write outside RAM", () => {
  const ram = new Uint8Array(16 * 4096);
  ram.fill(3, 4096, 8192);
  ram[5 * 4096 + 9] = 1;
  const { payload, dataPages } = encodePages(ram, zeroPageTester(ram), [0, 1, 5]);
  assert.equal(dataPages, 2);
  const copy = new Uint8Array(16 * 4096).fill(9);
  assert.equal(applyPages(copy, payload), 3);
  for (const page of [0, 1, 5]) assert.deepEqual(copy.subarray(page * 4096, (page + 1) * 4096), ram.subarray(page * 4096, (page + 1) * 4096), `page ${page}: zero pages are zeroed, data pages copied`);
  assert.equal(copy[2 * 4096], 9, "pages not sent are left alone");
  const outside = new Uint8Array(5);
  new DataView(outside.buffer).setUint32(0, 16, true);
  assert.throws(() => applyPages(copy, outside), /beyond 16 pages/);
  assert.throws(() => applyPages(copy, Uint8Array.of(0, 0, 0, 0, 1, 1, 2)), /cut short/);
  assert.throws(() => applyPages(copy, Uint8Array.of(0, 0, 0, 0, 7)), /unknown record kind/);
  // Fuzz: random payloads either apply within RAM or are refused with a protocol error.
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 500; i++) {
    const junk = Uint8Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256));
    try {
      applyPages(copy, junk);
    } catch (err) {
      assert.ok(err instanceof MigrationProtocolError, String(err));
    }
  }
});

test("endpoints and dirty bitmaps", () => {
  assert.deepEqual(parseMigrationEndpoint("unix:/tmp/m.sock"), { kind: "unix", path: "/tmp/m.sock" });
  assert.deepEqual(parseMigrationEndpoint("tcp:10.0.0.1:4444"), { kind: "tcp", host: "10.0.0.1", port: 4444 });
  assert.deepEqual(parseMigrationEndpoint("tcp:[::1]:4444"), { kind: "tcp", host: "::1", port: 4444 });
  for (const bad of ["unix:", "tcp:host", "tcp:host:0", "tcp:host:70000", "file:/x", "/tmp/x"]) assert.throws(() => parseMigrationEndpoint(bad), RangeError, bad);
  assert.deepEqual(bitmapPages(Uint32Array.of(0b1011, 0, 0x80000000)), [0, 1, 3, 95]);
});

const T0 = 5, T1 = 6;
function counterMachine(extra: Partial<VirtMachineOptions> = {}): VirtMachine {
  const kernel = kernelImage([uType(OP.AUIPC, T0, 0x100), iType(0x03, 3, T1, T0, 0), aluImm("addi", T1, T1, 1), store("sd", T0, T1, 0), jal(0, -12)]);
  return new VirtMachine({ module: loadCoreModule(), ramSize: 16 << 20, kernel, bootargs: "", output: () => {}, jit: false, ...extra });
}
const counter = (vm: VirtMachine) => new DataView(vm.cpu.ram.buffer, vm.cpu.ram.byteOffset + 0x200000 + 64 + 0x100000).getBigUint64(0, true);

test("a small machine migrates over TCP and counts on at the destination", async () => {
  const source = counterMachine();
  const sourceRun = source.run();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const listener = await listenForMigration({ kind: "tcp", host: "127.0.0.1", port: 0 });
  let destination: VirtMachine | undefined;
  let destinationRun: Promise<unknown> | undefined;
  const accepted = listener.accept(async (hello) => {
    assert.deepEqual(hello.config, { note: "the description travels" });
    destination = counterMachine({ fromSnapshot: true, kernel: undefined });
    return { machine: "dest", vm: destination, start: () => (destinationRun = destination!.run()) };
  });
  const report = await migrateOut(source, { note: "the description travels" }, listener.endpoint);
  const incoming = await accepted;
  assert.equal(incoming.machine, "dest");
  assert.ok(report.downtimeMs > 0 && report.pagesSent > 0);
  const atMigration = counter(source);
  assert.equal(source.paused, true);
  source.stop("migrated");
  assert.deepEqual(await sourceRun, { reason: "migrated" });
  assert.ok(counter(destination!) >= atMigration);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(counter(destination!) > atMigration, "the guest counts on at the destination");
  destination!.stop();
  await destinationRun;
});
