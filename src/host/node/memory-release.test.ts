import { test } from "node:test";
import assert from "node:assert/strict";
import { Cpu } from "../../cpu/cpu.ts";
import { loadCoreModule } from "./core-module.ts";
import { coreLayout } from "../../cpu/core-layout.ts";
import { memoryReleaser, residentBytes } from "./memory-release.ts";

const MiB = 1 << 20;

function makeCpu(shared = false): Cpu {
  if (!shared) return new Cpu({ module: loadCoreModule(), ramSize: 256 * MiB });
  // Harts on threads: the machine's memory is a shared one (its buffer a SharedArrayBuffer).
  const layout = coreLayout({ harts: 2, ramSize: 256 * MiB });
  const memory = new WebAssembly.Memory({ initial: layout.memoryPages, maximum: layout.memoryPages, shared: true });
  return new Cpu({ module: loadCoreModule({ shared: true }), ramSize: 256 * MiB, layout, memory });
}

for (const shared of [false, true])
test(`releasing filled guest RAM returns it to the OS: RSS drops and the pages read as zero (${shared ? "shared" : "plain"} memory)`, () => {
  const cpu = makeCpu(shared);
  const release = memoryReleaser(cpu);
  assert.ok(release.supported, `madvise release unavailable: ${release.reason}`);
  const at = 32 * MiB;
  const size = 96 * MiB;
  cpu.ram.fill(0xa5, at - 4096, at + size + 4096);
  const filled = residentBytes();
  release(cpu.ramBase + at, size);
  const after = residentBytes();
  assert.ok(filled - after >= size * 0.75, `RSS fell by only ${((filled - after) / MiB).toFixed(1)} MiB of ${size / MiB} MiB`);
  assert.equal(release.stats.calls, 1);
  assert.equal(release.stats.bytes, size);
  for (const off of [at, at + 12345, at + size - 1]) assert.equal(cpu.ram[off], 0, `byte ${off} is zero after release`);
  assert.equal(cpu.ram[at - 1], 0xa5, "the page before the range is untouched");
  assert.equal(cpu.ram[at + size], 0xa5, "the page after the range is untouched");
  // Released pages are ordinary memory again once touched.
  cpu.writeRam(cpu.ramBase + at, Uint8Array.of(1, 2, 3));
  assert.deepEqual([...cpu.readRam(cpu.ramBase + at, 3)], [1, 2, 3]);
});

test("only whole host pages inside the range are released", () => {
  const cpu = makeCpu();
  const release = memoryReleaser(cpu);
  const page = release.hostPageSize;
  const at = 4 * MiB;
  cpu.ram.fill(0x5a, at, at + 4 * page);
  // From the middle of page 0 to the middle of page 3: pages 1 and 2 go.
  release(cpu.ramBase + at + page / 2, 3 * page);
  assert.equal(cpu.ram[at + page / 2], 0x5a);
  assert.equal(cpu.ram[at + page - 1], 0x5a);
  assert.equal(cpu.ram[at + page], 0);
  assert.equal(cpu.ram[at + 3 * page - 1], 0);
  assert.equal(cpu.ram[at + 3 * page], 0x5a);
  // Less than a page: nothing.
  release(cpu.ramBase + at + 1, page);
  assert.equal(cpu.ram[at + 1], 0x5a);
});

test("invalid requests are no-ops and never throw", () => {
  const cpu = makeCpu();
  const release = memoryReleaser(cpu);
  cpu.ram.fill(0x77, 0, MiB);
  cpu.ram.fill(0x77, cpu.ramSize - MiB);
  const end = cpu.ramBase + cpu.ramSize;
  const bad: [number, number][] = [
    [cpu.ramBase - 4096, 8192], // starts below RAM
    [0, 4096],
    [end - 4096, 8192], // runs past the end
    [end, 4096],
    [cpu.ramBase, -4096],
    [cpu.ramBase, 0],
    [Number.NaN, 4096],
    [cpu.ramBase, Number.POSITIVE_INFINITY],
    [cpu.ramBase + 0.5, 4096],
    [2 ** 60, 4096],
    [-(2 ** 40), 2 ** 41],
  ];
  for (const [a, l] of bad) assert.doesNotThrow(() => release(a, l));
  assert.equal(release.stats.calls, 0);
  assert.equal(release.stats.ignored, bad.length);
  assert.equal(cpu.ram[0], 0x77);
  assert.equal(cpu.ram[cpu.ramSize - 1], 0x77);
});

test("the wasm memory's host address is stable", async () => {
  const cpu = makeCpu();
  const release = memoryReleaser(cpu);
  cpu.ram.fill(1, 0, 8192);
  release(cpu.ramBase, 4096);
  // Garbage collection and time do not move the backing store: a later release hits the right page.
  await new Promise((r) => setTimeout(r, 10));
  (globalThis as { gc?: () => void }).gc?.();
  release(cpu.ramBase + 4096, 4096);
  assert.equal(cpu.ram[0], 0);
  assert.equal(cpu.ram[4096], 0);
  assert.equal(release.stats.calls, 2);
});
