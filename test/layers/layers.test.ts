// The layer rules are enforced, not a habit: the machine core compiles without Node or DOM types
// (tsconfig.core.json), and scripts/check-layers.mjs refuses imports against the direction of the
// layers. Each test plants a deliberate violation and expects it to be refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/host/node/paths.ts";
// @ts-expect-error: a plain JavaScript module without type declarations
import { checkFile } from "../../scripts/check-layers.mjs";

const TSC = join(REPO_ROOT, "node_modules/typescript/bin/tsc");

/** Type-checks `source` as a file of the machine core; returns tsc's output and status. */
function compileAsCore(source: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), "parley-layers-"));
  try {
    writeFileSync(join(dir, "probe.ts"), source);
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: join(REPO_ROOT, "tsconfig.core.json"),
        include: [],
        files: [join(REPO_ROOT, "src/platform/core-globals.d.ts"), join(dir, "probe.ts")],
      }),
    );
    const r = spawnSync(process.execPath, [TSC, "--noEmit", "-p", join(dir, "tsconfig.json")], { encoding: "utf8" });
    return { status: r.status, output: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the core's compiler settings refuse Node: process, setImmediate, Buffer, node:fs", { timeout: 120_000 }, () => {
  const { status, output } = compileAsCore(
    [
      'import { readFileSync } from "node:fs";',
      "export const home = process.env.HOME;",
      "setImmediate(() => {});",
      'export const bytes = Buffer.from("x");',
      "export const file = readFileSync;",
    ].join("\n"),
  );
  assert.notEqual(status, 0, output);
  for (const name of ["node:fs", "process", "setImmediate", "Buffer"]) assert.match(output, new RegExp(`'${name}'`), output);
});

test("the core's compiler settings refuse the DOM", { timeout: 120_000 }, () => {
  const { status, output } = compileAsCore("export const title = document.title;\nexport const w = window;\n");
  assert.notEqual(status, 0, output);
  assert.match(output, /'document'/);
});

test("what every JavaScript host has compiles in the core: WebAssembly, text codecs, console", { timeout: 120_000 }, () => {
  const { status, output } = compileAsCore(
    [
      "export const memory = new WebAssembly.Memory({ initial: 1 });",
      'export const bytes = new TextEncoder().encode("riscv");',
      "export const text = new TextDecoder().decode(bytes);",
      'console.warn("ok");',
    ].join("\n"),
  );
  assert.equal(status, 0, output);
});

test("imports against the layers are refused", () => {
  const cases: [string, string, RegExp][] = [
    ["src/cpu/cpu.ts", 'import { readFileSync } from "node:fs";', /machine core imports "node:fs"/],
    ["src/virtio/blk/device.ts", 'import { x } from "../../host/node/block-file.ts";', /virtio\/ may not import host\/node\//],
    ["src/devices/plic.ts", 'import type { Bus } from "../machine/bus.ts";', /devices\/ may not import machine\//],
    ["src/machine/virt.ts", 'import { run } from "../cli/run-linux.ts";', /machine\/ may not import cli\//],
    ["src/host/node/console.ts", 'import { UsageError } from "../../cli/options.ts";', /host\/node\/ may not import cli\//],
    ["src/cli/main.ts", 'import { runPv } from "../../bench/pv.ts";', /cli\/ may not import bench\//],
    ["src/sbi/hsm.ts", 'import { fake } from "../testing/fakes.ts";', /imports test code/],
    ["src/web/main.ts", 'import { nodeClock } from "../host/node/clock.ts";', /web\/ may not import host\/node\//],
    ["src/web/machine-worker.ts", 'import { Machine } from "../vmm/machine.ts";', /web\/ may not import vmm\//],
    ["src/host/web/clock.ts", 'import { createDashboard } from "../../web/dashboard.ts";', /host\/web\/ may not import web\//],
  ];
  for (const [path, source, expected] of cases) {
    const problems: string[] = checkFile(path, source);
    assert.equal(problems.length, 1, `${path}: ${source} -> ${problems.join("; ")}`);
    assert.match(problems[0], expected);
  }
});

test("imports along the layers pass", () => {
  const cases: [string, string][] = [
    ["src/machine/virt.ts", 'import { Cpu } from "../cpu/cpu.ts";'],
    ["src/virtio/transport/mmio.ts", 'import type { MmioDevice } from "../../devices/mmio-device.ts";'],
    ["src/host/node/block-file.ts", 'import type { BlockBackend } from "../../virtio/blk/backend.ts";'],
    ["src/cli/run-linux.ts", 'import { nodeClock } from "../host/node/clock.ts";\nimport { readFileSync } from "node:fs";'],
    ["bench/pv.ts", 'import { runLinux } from "../src/cli/run-linux.ts";'],
    ["src/web/machine-worker.ts", 'import { VirtMachine } from "../machine/virt.ts";\nimport { webClock } from "../host/web/clock.ts";\nimport { Terminal } from "@xterm/xterm";'],
    ["src/virtio/blk/device.test.ts", 'import { readFileSync } from "node:fs";\nimport { x } from "../../host/node/block-file.ts";'],
  ];
  for (const [path, source] of cases) assert.deepEqual(checkFile(path, source), [], `${path}: ${source}`);
});
