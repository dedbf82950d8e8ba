// docs/openapi.json is what the generator makes from the schemas today (never stale), and a
// valid OpenAPI 3.1 document whose schemas compile.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { buildOpenApiDocument } from "./openapi.ts";
import { REPO_ROOT } from "../host/node/paths.ts";

test("the committed docs/openapi.json equals the generator's output (run scripts/openapi.ts after changing the API)", () => {
  const committed = JSON.parse(readFileSync(join(REPO_ROOT, "docs/openapi.json"), "utf8"));
  assert.deepEqual(committed, buildOpenApiDocument());
});

test("every component schema compiles, and the document uses Firecracker's field names", () => {
  const doc = buildOpenApiDocument() as any;
  assert.equal(doc.openapi, "3.1.0");
  const ajv = new Ajv2020({ strict: false });
  for (const [name, schema] of Object.entries(doc.components.schemas)) assert.doesNotThrow(() => ajv.compile(schema as object), name);
  const props = (name: string) => Object.keys(doc.components.schemas[name].properties);
  assert.deepEqual(props("SnapshotCreateParams"), ["snapshot_path", "mem_file_path", "snapshot_type"]);
  assert.deepEqual(props("Vm"), ["state"]);
  assert.ok(props("Drive").includes("path_on_host") && props("Drive").includes("is_read_only"));
  assert.ok(props("MachineConfig").includes("vcpu_count") && props("MachineConfig").includes("mem_size_mib"));
  assert.deepEqual(doc.components.schemas.Vm.properties.state.enum, ["Paused", "Resumed"]);
});
