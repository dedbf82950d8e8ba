import { test } from "node:test";
import assert from "node:assert/strict";
import { SysconTest, decodeFinisher, FINISHER_FAIL, FINISHER_PASS, FINISHER_RESET, type FinisherEvent } from "./syscon-test.ts";

function setup() {
  const events: FinisherEvent[] = [];
  const dev = new SysconTest((e) => events.push(e));
  return { dev, events };
}

test("syscon-poweroff: a read-modify-write of 0x5555 powers off with code 0", () => {
  const { dev, events } = setup();
  assert.equal(dev.load(0, 4), 0); // regmap_update_bits reads first
  assert.equal(dev.store(0, 4, FINISHER_PASS), true);
  assert.deepEqual(events, [{ kind: "poweroff", code: 0 }]);
});

test("FINISHER_FAIL carries the exit code in bits 31:16", () => {
  const { dev, events } = setup();
  dev.store(0, 4, FINISHER_FAIL | (42 << 16));
  dev.store(0, 4, FINISHER_FAIL);
  dev.store(0, 4, (FINISHER_FAIL | (0xffff << 16)) >>> 0);
  assert.deepEqual(events, [
    { kind: "poweroff", code: 42 },
    { kind: "poweroff", code: 1 },
    { kind: "poweroff", code: 0xffff },
  ]);
});

test("syscon-reboot: 0x7777 reboots", () => {
  const { dev, events } = setup();
  dev.store(0, 4, FINISHER_RESET);
  assert.deepEqual(events, [{ kind: "reboot" }]);
});

test("other values, offsets and widths", () => {
  const { dev, events } = setup();
  assert.equal(dev.store(0, 4, 0x1234), true);
  assert.equal(dev.store(4, 4, FINISHER_PASS), true);
  assert.equal(dev.counters.ignored, 2);
  assert.equal(dev.store(0, 2, FINISHER_RESET), true, "16-bit writes are accepted");
  assert.equal(dev.store(0, 1, FINISHER_PASS), false);
  assert.equal(dev.store(0, 8, BigInt(FINISHER_PASS)), false);
  assert.equal(dev.store(2, 4, FINISHER_PASS), false);
  assert.equal(dev.load(0, 1), undefined);
  assert.deepEqual(events, [{ kind: "reboot" }]);
  assert.deepEqual(decodeFinisher(0xabcd_5555), { kind: "poweroff", code: 0 }, "PASS ignores the upper half");
  assert.equal(decodeFinisher(0), undefined);
});
