import { test } from "node:test";
import assert from "node:assert/strict";
import { PanicDetector } from "./panic-detector.ts";

const enc = (s: string) => new TextEncoder().encode(s);

test("finds the panic line, also split across chunks", () => {
  const d = new PanicDetector();
  assert.equal(d.feed(enc("[    1.0] Kernel pan")), false);
  assert.equal(d.feed(enc("ic - not syncing: VFS: Unable to mount root fs")), true);
  assert.equal(d.feed(enc("more")), true);
});

test("ordinary boot text is not a panic", () => {
  const d = new PanicDetector();
  assert.equal(d.feed(enc("Kernel command line: console=ttyS0\nKernel panic is configured\n")), false);
  assert.equal(d.feed(enc("KKernel panic - not syncing")), true);
});
