import { test } from "node:test";
import assert from "node:assert/strict";
import { jitFromEnvironment } from "./jit-environment.ts";
import { resolveJitOptions } from "../../cpu/cpu.ts";

test("an empty environment leaves the Cpu's default: the translator on", () => {
  assert.equal(jitFromEnvironment({}), undefined);
  assert.equal(jitFromEnvironment({ PARLEY_JIT: "" }), undefined);
  assert.deepEqual(resolveJitOptions(jitFromEnvironment({})), {});
});

test("PARLEY_JIT chooses the mode", () => {
  assert.equal(jitFromEnvironment({ PARLEY_JIT: "off" }), "off");
  assert.equal(jitFromEnvironment({ PARLEY_JIT: "on" }), "on");
  assert.equal(jitFromEnvironment({ PARLEY_JIT: "eager" }), "eager");
  assert.equal(resolveJitOptions(jitFromEnvironment({ PARLEY_JIT: "off" })), undefined);
  assert.throws(() => jitFromEnvironment({ PARLEY_JIT: "fast" }), /PARLEY_JIT=fast: use on, off or eager/);
});

test("a command-line mode wins over PARLEY_JIT, which is then not even checked", () => {
  assert.equal(jitFromEnvironment({ PARLEY_JIT: "on" }, "off"), "off");
  assert.equal(jitFromEnvironment({ PARLEY_JIT: "off" }, "on"), "on");
  assert.equal(jitFromEnvironment({ PARLEY_JIT: "bogus" }, "eager"), "eager");
});

test("the tuning knobs apply whichever chose the mode, but not when the translator is off", () => {
  const env = { PARLEY_JIT_THRESHOLD: "7", PARLEY_JIT_FUNCTION_SIZE: "32", PARLEY_JIT_ASYNC: "1" };
  assert.deepEqual(jitFromEnvironment(env), { threshold: 7, functionSize: 32, async: true });
  assert.deepEqual(jitFromEnvironment({ ...env, PARLEY_JIT: "eager" }), { eager: true, threshold: 7, functionSize: 32, async: true });
  assert.deepEqual(jitFromEnvironment(env, "on"), { threshold: 7, functionSize: 32, async: true });
  assert.equal(jitFromEnvironment({ ...env, PARLEY_JIT_THRESHOLD: "nonsense" }, "off"), "off");
  assert.deepEqual(jitFromEnvironment({ PARLEY_JIT_ASYNC: "0" }), undefined);
});

test("a knob that is no positive whole number is refused by name", () => {
  assert.throws(() => jitFromEnvironment({ PARLEY_JIT_THRESHOLD: "0" }), /PARLEY_JIT_THRESHOLD=0: use a positive whole number/);
  assert.throws(() => jitFromEnvironment({ PARLEY_JIT_FUNCTION_SIZE: "1.5" }), /PARLEY_JIT_FUNCTION_SIZE=1.5: use a positive whole number/);
});
