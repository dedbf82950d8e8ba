// The API's OpenAPI document, generated from the same zod schemas and route table the server
// uses (scripts/openapi.ts writes it to docs/openapi.json; a test keeps the two equal).
import { z } from "zod";
import * as schema from "./schema.ts";
import { API_ROUTES, VMM_VERSION } from "./api-server.ts";

/** Every schema the document names, by name; anything else is inlined where it is used. */
const COMPONENTS: Record<string, z.ZodType> = {
  Error: schema.ApiError,
  InstanceInfo: schema.InstanceInfo,
  InstanceActionInfo: schema.InstanceActionInfo,
  VmConfig: schema.VmConfig,
  BootSource: schema.BootSource,
  MachineConfig: schema.MachineConfig,
  PartialMachineConfig: schema.PartialMachineConfig,
  Drive: schema.Drive,
  PartialDrive: schema.PartialDrive,
  NetworkInterface: schema.NetworkInterface,
  PartialNetworkInterface: schema.PartialNetworkInterface,
  Vsock: schema.Vsock,
  Share: schema.Share,
  Balloon: schema.Balloon,
  BalloonUpdate: schema.BalloonUpdate,
  BalloonStats: schema.BalloonStats,
  BalloonStatsUpdate: schema.BalloonStatsUpdate,
  Entropy: schema.Entropy,
  Metrics: schema.Metrics,
  Vm: schema.VmState,
  SnapshotCreateParams: schema.SnapshotCreateParams,
  SnapshotLoadParams: schema.SnapshotLoadParams,
  MigrateParams: schema.MigrateParams,
  SnapshotCreateReport: schema.SnapshotCreateReport,
  MigrationReport: schema.MigrationReportBody,
  RateLimiter: schema.RateLimiter,
  TokenBucket: schema.TokenBucket,
  Coalescing: schema.Coalescing,
};

function nameOf(s: z.ZodType): string {
  const entry = Object.entries(COMPONENTS).find(([, c]) => c === s);
  if (!entry) throw new Error("a route's schema has no component name in src/vmm/openapi.ts");
  return entry[0];
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/**
 * JSON Schema 2020-12 (OpenAPI 3.1's dialect) of what a client may send: defaults make fields
 * optional. Responses are always such values too, with the defaults filled in.
 */
function jsonSchema(s: z.ZodType): Record<string, unknown> {
  const { $schema: _, ...out } = z.toJSONSchema(s, { target: "draft-2020-12", io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return out;
}

/** "PATCH", "/balloon/statistics" -> "patchBalloonStatistics"; parameters are left out. */
function operationId(method: string, path: string): string {
  const words = path.split(/[/-]/).filter((w) => w !== "" && !w.startsWith("{"));
  return method.toLowerCase() + (words.map((w) => w[0].toUpperCase() + w.slice(1)).join("") || "Root");
}

const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: ref("Error") } } });

export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of API_ROUTES) {
    const parameters = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    const responses: Record<string, unknown> =
      route.response.status === 204
        ? { "204": { description: "Done." } }
        : "text" in route.response
          ? { "200": { description: "Prometheus text format.", content: { "text/plain": { schema: { type: "string" } } } } }
          : { "200": { description: "OK.", content: { "application/json": { schema: ref(nameOf(route.response.schema)) } } } };
    responses["400"] = errorResponse("Refused: the fault message names the field or says why; nothing changed.");
    responses["default"] = errorResponse("Another error (404: no such resource, 405: another method, 500: Parley's own failure).");
    paths[route.path] ??= {};
    paths[route.path][route.method.toLowerCase()] = {
      summary: route.summary,
      operationId: operationId(route.method, route.path),
      ...(parameters.length ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: true, content: { "application/json": { schema: ref(nameOf(route.body)) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Parley",
      version: VMM_VERSION,
      description:
        "Parley's REST API on a Unix socket (`parley run --api-sock PATH`), modelled on Firecracker's: the same routes and field names where Parley has the same thing. Generated from src/vmm/schema.ts by scripts/openapi.ts.",
    },
    paths,
    components: { schemas: Object.fromEntries(Object.entries(COMPONENTS).map(([name, s]) => [name, jsonSchema(s)])) },
  };
}
