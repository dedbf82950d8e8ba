// Writes docs/openapi.json from the API's schemas and routes (src/vmm/openapi.ts).
// Run: node --import tsx scripts/openapi.ts
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildOpenApiDocument } from "../src/vmm/openapi.ts";
import { REPO_ROOT } from "../src/host/node/paths.ts";

const out = join(REPO_ROOT, "docs/openapi.json");
writeFileSync(out, JSON.stringify(buildOpenApiDocument(), null, 2) + "\n");
console.log(`openapi: wrote ${out}`);
