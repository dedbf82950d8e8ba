// The library as a user gets it: `import { Machine } from "parley"` through package.json's
// "exports" (dist/index.mjs, built by scripts/build.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/host/node/paths.ts";

test('import { Machine } from "parley" validates a description and names the field', { skip: !existsSync(join(REPO_ROOT, "dist/index.mjs")) && "run `npm run build` first" }, async () => {
  const parley = await import("parley");
  assert.equal(typeof parley.Machine.create, "function");
  assert.equal(typeof parley.startApiServer, "function");
  await assert.rejects(parley.Machine.create({ "machine-config": { vcpu_count: 0 } }), (err: Error) => err.name === "ConfigError" && err.message === "machine-config.vcpu_count: must be at least 1");
  await assert.rejects(parley.Machine.create({ drives: [{ drive_id: "d", path_on_host: "/no/such/disk.img" }], "boot-source": { kernel_image_path: "/no/kernel" } }), /^ConfigError|drives\[0\]\.path_on_host: \/no\/such\/disk\.img/);
  assert.deepEqual(parley.parseVmConfig({})["machine-config"].vcpu_count, 1);
});
