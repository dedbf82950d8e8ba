import { test } from "node:test";
import assert from "node:assert/strict";
import * as L from "./layout.ts";
import { coreLayout, maxRamSize, WASM32_MEMORY_BYTES } from "./core-layout.ts";

test("one hart: its region at HARTS_BASE, then RAM, as before but without the old padding", () => {
  const l = coreLayout({ harts: 1, ramSize: 256 << 20 });
  assert.deepEqual(l.hartBases, [L.HARTS_BASE]);
  assert.ok(l.ramWasmBase >= L.HARTS_BASE + L.HART_PAGEMAP + (256 << 20) / 1024);
  assert.equal(l.ramWasmBase % L.RAM_WASM_ALIGN, 0);
  assert.equal(l.memoryBytes, l.ramWasmBase + (256 << 20));
  assert.equal(l.memoryPages * 65536, l.memoryBytes);
});

test("harts' regions do not overlap each other or the RAM, and the page map fits in each", () => {
  const ramSize = 1 << 30;
  const l = coreLayout({ harts: 8, ramSize });
  assert.equal(l.hartBases.length, 8);
  for (let i = 0; i < 8; i++) {
    const base = l.hartBases[i];
    assert.equal(base % L.HART_REGION_ALIGN, 0);
    const end = base + L.HART_PAGEMAP + (ramSize / 4096) * 4;
    assert.ok(end <= (i < 7 ? l.hartBases[i + 1] : l.ramWasmBase), `hart ${i} overlaps what follows`);
  }
  assert.ok(l.memoryBytes <= WASM32_MEMORY_BYTES);
});

test("the pool leaves room: 8 harts with 1 GiB fit, so do 8 with 2 GiB", () => {
  assert.doesNotThrow(() => coreLayout({ harts: 8, ramSize: 2 * 2 ** 30 }));
});

test("a machine that does not fit in 4 GiB is refused with the reason", () => {
  assert.throws(() => coreLayout({ harts: 64, ramSize: 1 << 30 }), /64 harts and 1024 MiB of RAM do not fit in wasm32's 4 GiB/);
  assert.throws(() => coreLayout({ harts: 1, ramSize: 4 * 2 ** 30 }), /do not fit/);
});

test("maxRamSize is the largest RAM that fits", () => {
  for (const harts of [1, 2, 8]) {
    const max = maxRamSize(harts);
    assert.doesNotThrow(() => coreLayout({ harts, ramSize: max }));
    assert.throws(() => coreLayout({ harts, ramSize: max + 0x10_0000 }), /do not fit/);
  }
});

test("bad arguments", () => {
  assert.throws(() => coreLayout({ harts: 0, ramSize: 4096 }), /hart count/);
  assert.throws(() => coreLayout({ harts: 1, ramSize: 1000 }), /multiple of 4 KiB/);
});
