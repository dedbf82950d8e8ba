import { test } from "node:test";
import assert from "node:assert/strict";
import { EscapeFilter } from "./console-escape.ts";

test("plain input, Ctrl-C included, passes through", () => {
  const f = new EscapeFilter();
  const r = f.feed(new Uint8Array([0x6c, 0x73, 0x0d, 0x03]));
  assert.deepEqual([...r.forward], [0x6c, 0x73, 0x0d, 0x03]);
  assert.deepEqual(r.commands, []);
});

test("Ctrl-A x quits, also when split across reads", () => {
  const f = new EscapeFilter();
  assert.deepEqual(f.feed(new Uint8Array([0x61, 0x01])).commands, []);
  const r = f.feed(new Uint8Array([0x78, 0x62]));
  assert.deepEqual(r.commands, ["quit"]);
  assert.deepEqual([...r.forward], [0x62]);
});

test("Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A h asks for help", () => {
  const f = new EscapeFilter();
  const r = f.feed(new Uint8Array([0x01, 0x01, 0x01, 0x68]));
  assert.deepEqual([...r.forward], [0x01]);
  assert.deepEqual(r.commands, ["help"]);
});
