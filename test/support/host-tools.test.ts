import { test } from "node:test";
import assert from "node:assert/strict";
import { hostGate, missingHostTools, needsHostTools } from "./host-tools.ts";

function withPath<T>(path: string, body: () => T): T {
  const saved = process.env.PATH;
  process.env.PATH = path;
  try {
    return body();
  } finally {
    process.env.PATH = saved;
  }
}

test("a missing tool is reported with its Debian package and the command that installs it", () => {
  const why = withPath("/nonexistent", () => missingHostTools(["qemu-riscv64", "dtc", "riscv64-linux-gnu libc"]));
  assert.ok(why);
  assert.match(why, /qemu-riscv64, dtc/);
  assert.match(why, /apt-get install qemu-user device-tree-compiler/);
  assert.match(why, /npm run setup/);
});

test("a missing C library is found by its file even when the compiler is there", () => {
  // The file probe does not depend on PATH; only libc's own header decides.
  const why = withPath("/nonexistent", () => missingHostTools(["picolibc"]));
  assert.equal(why === undefined, missingHostTools(["picolibc"]) === undefined);
});

test("outside CI a missing tool skips with the reason; under CI it runs and fails with it", () => {
  const reason = "dtc missing: install Debian package device-tree-compiler";
  const local = hostGate(reason, false);
  assert.equal(local.skip, reason);
  const ci = hostGate(reason, true);
  assert.equal(ci.skip, false, "never skipped under CI");
  assert.throws(() => ci.check(), /device-tree-compiler.*CI=true/);
});

test("when everything is there the gate neither skips nor fails", () => {
  const gate = hostGate(undefined, true);
  assert.equal(gate.skip, false);
  gate.check();
  // `sh` is on every Debian machine; an empty requirement list is always met.
  assert.equal(needsHostTools().skip, false);
});
