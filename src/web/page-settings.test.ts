import { test } from "node:test";
import assert from "node:assert/strict";
import { pageSettings } from "./page-settings.ts";

const isolated = { isolated: true, hardwareConcurrency: 8 };

test("pageSettings: defaults, parameters, and one hart without isolation", () => {
  assert.deepEqual(pageSettings(new URLSearchParams(""), isolated), { cpus: 4, memoryMiB: 512, problems: [] });
  assert.deepEqual(pageSettings(new URLSearchParams(""), { isolated: true, hardwareConcurrency: 2 }), { cpus: 2, memoryMiB: 512, problems: [] });
  assert.deepEqual(pageSettings(new URLSearchParams("cpus=8&memory=1024"), isolated), { cpus: 8, memoryMiB: 1024, problems: [] });
  const plain = pageSettings(new URLSearchParams("cpus=4"), { isolated: false, hardwareConcurrency: 8 });
  assert.equal(plain.cpus, 1);
  assert.match(plain.problems[0], /not cross-origin isolated/);
  assert.equal(pageSettings(new URLSearchParams(""), { isolated: false, hardwareConcurrency: 8 }).problems.length, 0);
});

test("pageSettings: bad parameters are named and the defaults kept", () => {
  for (const bad of ["cpus=0", "cpus=33", "cpus=2.5", "cpus=x", "cpus="]) {
    const s = pageSettings(new URLSearchParams(bad), isolated);
    assert.equal(s.cpus, 4, bad);
    assert.match(s.problems[0], /^cpus=/, bad);
  }
  for (const bad of ["memory=8", "memory=4096", "memory=1e3", "memory=-1"]) {
    const s = pageSettings(new URLSearchParams(bad), isolated);
    assert.equal(s.memoryMiB, 512, bad);
    assert.match(s.problems[0], /^memory=/, bad);
  }
});
