import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCpuCount, parseHostThreads, parsePauseLoop, parseSize, parsePositiveInteger, UsageError } from "./options.ts";

test("sizes accept binary suffixes", () => {
  assert.equal(parseSize("512M", "--memory"), 512 << 20);
  assert.equal(parseSize("2G", "--memory"), 2 * 1024 ** 3);
  assert.equal(parseSize("64k", "--memory"), 65536);
  assert.equal(parseSize("1MiB", "--memory"), 1 << 20);
  assert.equal(parseSize("4096", "--memory"), 4096);
});

test("bad sizes say what to fix", () => {
  assert.throws(() => parseSize("12X", "--memory"), (e: Error) => e instanceof UsageError && /--memory: "12X" is not a size/.test(e.message));
  assert.throws(() => parseSize("0", "--memory"), /must be a positive size/);
  assert.throws(() => parseSize("-5M", "--memory"), UsageError);
});

test("instruction counts", () => {
  assert.equal(parsePositiveInteger("1_000_000", "--max-insns"), 1_000_000);
  assert.equal(parsePositiveInteger("1e6", "--max-insns"), 1_000_000);
  assert.throws(() => parsePositiveInteger("lots", "--max-insns"), /--max-insns: "lots" must be a positive whole number/);
  assert.throws(() => parsePositiveInteger("1.5", "--max-insns"), UsageError);
});

test("hart counts are 1..32", () => {
  assert.equal(parseCpuCount("1", "--cpus"), 1);
  assert.equal(parseCpuCount("4", "--cpus"), 4);
  assert.equal(parseCpuCount("32", "--cpus"), 32);
  for (const bad of ["0", "33", "two", "1.5", "-1", ""]) {
    assert.throws(() => parseCpuCount(bad, "--cpus"), (e: Error) => e instanceof UsageError && e.message.includes("(1-32)") && e.message.startsWith("--cpus"));
  }
});

test("--host-threads: 1 to the number of harts, else an error naming the range", () => {
  assert.equal(parseHostThreads("1", 4), 1);
  assert.equal(parseHostThreads("4", 4), 4);
  for (const bad of ["0", "5", "-1", "two", "", "1.5"]) {
    assert.throws(() => parseHostThreads(bad, 4), (e: Error) => e instanceof UsageError && e.message.startsWith("--host-threads") && e.message.includes("(1-4)"));
  }
});

test("--ple: on, off or a window in instructions", () => {
  assert.equal(parsePauseLoop("off", 4096), 0);
  assert.equal(parsePauseLoop("on", 4096), 4096);
  assert.equal(parsePauseLoop("1000", 4096), 1000);
  for (const bad of ["0", "yes", "", "-5", "2000000000"]) {
    assert.throws(() => parsePauseLoop(bad, 4096), (e: Error) => e instanceof UsageError && e.message.startsWith("--ple"));
  }
});
