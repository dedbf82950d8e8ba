import { test } from "node:test";
import assert from "node:assert/strict";
import { compilerThreadsFor, poolSizeChosen, relaunchArguments } from "./compiler-threads.ts";

test("compiler threads get the cores the harts leave, and at least one", () => {
  assert.equal(compilerThreadsFor(2, 1), 1);
  assert.equal(compilerThreadsFor(2, 2), 1);
  assert.equal(compilerThreadsFor(8, 1), 7);
  assert.equal(compilerThreadsFor(8, 4), 4);
  assert.equal(compilerThreadsFor(4, 32), 1);
  assert.equal(compilerThreadsFor(1, 1), 1);
});

test("a pool size of the user's, on Node's command line or in NODE_OPTIONS, is kept", () => {
  assert.equal(poolSizeChosen([], undefined), false);
  assert.equal(poolSizeChosen(["--import", "tsx"], "--max-old-space-size=4096"), false);
  assert.equal(poolSizeChosen(["--v8-pool-size=2"], undefined), true);
  assert.equal(poolSizeChosen(["--v8-pool-size", "2"], undefined), true);
  assert.equal(poolSizeChosen(["--v8_pool_size=2"], undefined), true);
  assert.equal(poolSizeChosen([], "--trace-warnings --v8-pool-size=3"), true);
  assert.equal(poolSizeChosen(["--v8-pool-sizes=2"], undefined), false);
});

test("the child runs the same script and arguments with the same Node options and the pool size", () => {
  assert.deepEqual(relaunchArguments(["--import", "tsx"], ["/usr/bin/node", "/p/dist/parley.mjs", "run", "--cpus", "2"], 1), [
    "--import",
    "tsx",
    "--v8-pool-size=1",
    "/p/dist/parley.mjs",
    "run",
    "--cpus",
    "2",
  ]);
});
