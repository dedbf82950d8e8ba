import { test } from "node:test";
import assert from "node:assert/strict";
import { configHarts, hartThreadsOfCommand, optionValue, startCpus } from "./launch-plan.ts";

const noFiles = () => undefined;

test("commands that run no machine here are not relaunched", () => {
  for (const args of [[], ["--version"], ["--help"], ["image", "build"], ["web"], ["pause", "--api-sock", "s"], ["snapshot", "--api-sock", "s"], ["run", "--help"], ["start", "-h"]]) {
    assert.equal(hartThreadsOfCommand(args, 8, noFiles), undefined, args.join(" "));
  }
});

test("commands whose harts are known later count one", () => {
  for (const args of [["run-elf", "x.elf"], ["demo"], ["restore", "--snapshot", "s", "--mem", "m"], ["serve", "--api-sock", "s"], ["run", "--incoming", "unix:/tmp/m", "--cpus", "4"]]) {
    assert.equal(hartThreadsOfCommand(args, 8, noFiles), 1, args.join(" "));
  }
});

test("run and start: one thread for one hart, a thread per hart up to the cores, or --host-threads", () => {
  assert.equal(hartThreadsOfCommand(["run"], 8, noFiles), 1);
  assert.equal(hartThreadsOfCommand(["run", "--cpus", "4"], 8, noFiles), 4);
  assert.equal(hartThreadsOfCommand(["run", "--cpus=4"], 2, noFiles), 2);
  assert.equal(hartThreadsOfCommand(["run", "--cpus", "4", "--host-threads", "3"], 8, noFiles), 3);
  assert.equal(hartThreadsOfCommand(["run", "--cpus", "2", "--cpus", "6"], 8, noFiles), 6, "the last --cpus wins");
  assert.equal(hartThreadsOfCommand(["start"], 8, noFiles), startCpus(8));
  assert.equal(hartThreadsOfCommand(["start"], 2, noFiles), 2);
  assert.equal(hartThreadsOfCommand(["start", "--cpus", "1"], 8, noFiles), 1);
});

test("values the command will refuse count as one hart", () => {
  for (const cpus of ["0", "two", "-3", "1.5", ""]) assert.equal(hartThreadsOfCommand(["run", "--cpus", cpus], 8, noFiles), 1, cpus);
  assert.equal(hartThreadsOfCommand(["run", "--cpus"], 8, noFiles), 1);
});

test("a VM description's machine-config counts unless flags override it", () => {
  const files: Record<string, string> = {
    "four.json": JSON.stringify({ "machine-config": { vcpu_count: 4, host_threads: 2, mem_size_mib: 256 } }),
    "none.json": JSON.stringify({ "boot-source": {} }),
    "bad.json": "{ not json",
    "odd.json": JSON.stringify({ "machine-config": { vcpu_count: "four" } }),
  };
  const read = (path: string) => files[path];
  assert.equal(hartThreadsOfCommand(["run", "--config", "four.json"], 8, read), 2);
  assert.equal(hartThreadsOfCommand(["run", "--config", "four.json", "--host-threads", "4"], 8, read), 4);
  assert.equal(hartThreadsOfCommand(["run", "--config", "four.json", "--cpus", "1"], 8, read), 1);
  // With a description, start's default (a hart per core) gives way to the description's default.
  assert.equal(hartThreadsOfCommand(["start", "--config", "none.json"], 8, read), 1);
  assert.equal(hartThreadsOfCommand(["run", "--config", "bad.json"], 8, read), 1);
  assert.equal(hartThreadsOfCommand(["run", "--config", "odd.json"], 8, read), 1);
  assert.equal(hartThreadsOfCommand(["run", "--config", "missing.json"], 8, read), 1);
});

test("optionValue reads both spellings and keeps the last", () => {
  assert.equal(optionValue(["--a", "1", "--a=2"], "--a"), "2");
  assert.equal(optionValue(["--ab", "1"], "--a"), undefined);
  assert.equal(optionValue(["--a"], "--a"), undefined);
});

test("configHarts ignores everything but machine-config's positive whole numbers", () => {
  assert.deepEqual(configHarts(JSON.stringify({ "machine-config": { vcpu_count: 3, host_threads: 0 } })), { vcpu_count: 3, host_threads: undefined });
  assert.deepEqual(configHarts("null"), {});
  assert.equal(configHarts("]"), undefined);
  assert.equal(configHarts(undefined), undefined);
});
