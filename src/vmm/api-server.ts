// The REST API on a Unix socket (`parley run --api-sock PATH`), modelled on Firecracker's:
// the same routes, field names and error body ({"fault_message": "..."}). Before InstanceStart
// the server collects the VM description piece by piece (PUT /boot-source, /drives/{id}, ...),
// each piece checked with the whole description it would make; InstanceStart hands the result
// to the controller. Afterwards the pre-boot routes are refused and the controller takes the
// hot changes, the lifecycle actions and the snapshot and migration requests.
//
// Every request is checked completely before anything changes: malformed JSON, another content
// type, unknown fields or values out of range are a 400 naming the field, and leave the machine
// as it was. Requests are served one at a time, in order, as Firecracker does.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { lstatSync, unlinkSync } from "node:fs";
import { z } from "zod";
import type { VmmController } from "./controller.ts";
import {
  ApiError,
  Balloon,
  BalloonStats,
  BalloonStatsUpdate,
  BalloonUpdate,
  BootSource,
  ConfigError,
  parseWith,
  Drive,
  Entropy,
  InstanceActionInfo,
  InstanceInfo,
  MachineConfig,
  Metrics,
  MigrateParams,
  NetworkInterface,
  PartialDrive,
  PartialMachineConfig,
  PartialNetworkInterface,
  RequestError,
  SnapshotCreateParams,
  SnapshotLoadParams,
  SnapshotCreateReport,
  MigrationReportBody,
  VmConfig,
  VmState,
  Vsock,
  Share,
  type VmConfigInput,
} from "./schema.ts";

/** Firecracker's default limit on a request's payload (--http-api-max-payload-size). */
export const MAX_BODY_BYTES = 51_200;
export const VMM_VERSION = "0.1.0";
const NOT_AFTER_START = "The requested operation is not supported after starting the microVM.";

type Method = "GET" | "PUT" | "PATCH";

/** One route: its documentation for the OpenAPI document, and what the server does with it. */
export interface ApiRoute {
  method: Method;
  /** With {parameters} as in OpenAPI. */
  path: string;
  summary: string;
  body?: z.ZodType;
  /** 204 (no body), 200 with a JSON schema, or 200 with Prometheus text. */
  response: { status: 204 } | { status: 200; schema: z.ZodType } | { status: 200; text: true };
  /** Only before InstanceStart (Firecracker's pre-boot routes). */
  preBoot?: boolean;
}

export const API_ROUTES: readonly ApiRoute[] = [
  { method: "GET", path: "/", summary: "Instance information: id, state, version.", response: { status: 200, schema: InstanceInfo } },
  { method: "PUT", path: "/actions", summary: "InstanceStart, SendCtrlAltDel (to the guest's keyboard) or FlushMetrics.", body: InstanceActionInfo, response: { status: 204 } },
  { method: "PUT", path: "/boot-source", summary: "Kernel, initrd, command line and firmware (pre-boot).", body: BootSource, response: { status: 204 }, preBoot: true },
  { method: "GET", path: "/machine-config", summary: "The machine configuration.", response: { status: 200, schema: MachineConfig } },
  { method: "PUT", path: "/machine-config", summary: "Harts, memory and Parley's machine settings (pre-boot).", body: MachineConfig, response: { status: 204 }, preBoot: true },
  { method: "PATCH", path: "/machine-config", summary: "Changes some machine settings (pre-boot).", body: PartialMachineConfig, response: { status: 204 }, preBoot: true },
  { method: "PUT", path: "/drives/{drive_id}", summary: "Adds or replaces a virtio-blk drive (pre-boot).", body: Drive, response: { status: 204 }, preBoot: true },
  { method: "PATCH", path: "/drives/{drive_id}", summary: "Changes a drive's rate limiter or interrupt coalescing while the guest runs.", body: PartialDrive, response: { status: 204 } },
  { method: "PUT", path: "/network-interfaces/{iface_id}", summary: "Adds or replaces a virtio-net interface (pre-boot).", body: NetworkInterface, response: { status: 204 }, preBoot: true },
  {
    method: "PATCH",
    path: "/network-interfaces/{iface_id}",
    summary: "Changes an interface's rate limiters, interrupt coalescing or link state while the guest runs.",
    body: PartialNetworkInterface,
    response: { status: 204 },
  },
  { method: "PUT", path: "/shares/{mount_tag}", summary: "Parley's: adds or replaces a shared folder (virtio-9p) (pre-boot).", body: Share, response: { status: 204 }, preBoot: true },
  { method: "PUT", path: "/vsock", summary: "The virtio-vsock device on a Unix socket (pre-boot).", body: Vsock, response: { status: 204 }, preBoot: true },
  { method: "PUT", path: "/entropy", summary: "The virtio-rng device (pre-boot).", body: Entropy, response: { status: 204 }, preBoot: true },
  { method: "PUT", path: "/metrics", summary: "Where the Prometheus endpoint listens (pre-boot).", body: Metrics, response: { status: 204 }, preBoot: true },
  { method: "GET", path: "/metrics", summary: "The ledger in Prometheus text format.", response: { status: 200, text: true } },
  { method: "PUT", path: "/balloon", summary: "The virtio-balloon device (pre-boot).", body: Balloon, response: { status: 204 }, preBoot: true },
  { method: "GET", path: "/balloon", summary: "The balloon's configuration.", response: { status: 200, schema: Balloon } },
  { method: "PATCH", path: "/balloon", summary: "The balloon's target, before or after start.", body: BalloonUpdate, response: { status: 204 } },
  { method: "GET", path: "/balloon/statistics", summary: "The balloon's size and the guest's memory statistics.", response: { status: 200, schema: BalloonStats } },
  { method: "PATCH", path: "/balloon/statistics", summary: "How often the guest is asked for statistics.", body: BalloonStatsUpdate, response: { status: 204 } },
  { method: "PATCH", path: "/vm", summary: "Pauses or resumes the machine.", body: VmState, response: { status: 204 } },
  { method: "GET", path: "/vm/config", summary: "The whole VM description.", response: { status: 200, schema: VmConfig } },
  { method: "PUT", path: "/snapshot/create", summary: "Writes a snapshot of the paused machine.", body: SnapshotCreateParams, response: { status: 200, schema: SnapshotCreateReport } },
  { method: "PUT", path: "/snapshot/load", summary: "Loads a snapshot (before start only).", body: SnapshotLoadParams, response: { status: 204 } },
  { method: "PUT", path: "/migrate", summary: "Parley's: migrates the running machine to a Parley receiving at destination.", body: MigrateParams, response: { status: 200, schema: MigrationReportBody } },
];

/** Matches "/drives/{drive_id}" against "/drives/rootfs": the parameters, or undefined. */
export function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split("/");
  const got = path.split("/");
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const m = /^\{(\w+)\}$/.exec(want[i]);
    if (m) {
      if (got[i] === "") return undefined;
      try {
        params[m[1]] = decodeURIComponent(got[i]);
      } catch {
        return undefined;
      }
    } else if (want[i] !== got[i]) return undefined;
  }
  return params;
}

/** An answer to a request: status and JSON body, text, or nothing. */
type Reply = { status: number; json?: unknown; text?: string; headers?: Record<string, string> };

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const fault = (status: number, message: string, headers?: Record<string, string>): Reply => ({ status, json: { fault_message: message }, headers });

/**
 * The API's state and logic, apart from HTTP: the pending description before start, and the
 * routes. `handle` never throws: every failure is a reply.
 */
export class ApiHandler {
  /** The description collected before InstanceStart. */
  private pending: VmConfigInput = {};

  constructor(
    private readonly controller: VmmController,
    initial: VmConfigInput = {},
  ) {
    this.pending = structuredClone(initial);
  }

  async handle(method: string, url: string, body: string | undefined, contentType: string | undefined): Promise<Reply> {
    try {
      return await this.route(method, url, body, contentType);
    } catch (err) {
      if (err instanceof HttpError) return fault(err.status, err.message, err.headers);
      if (err instanceof ConfigError || err instanceof RequestError) return fault(400, err.message);
      return fault(500, `internal error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async route(method: string, url: string, body: string | undefined, contentType: string | undefined): Promise<Reply> {
    const path = url.split("?")[0];
    const matches = API_ROUTES.map((route) => ({ route, params: matchPath(route.path, path) })).filter((m) => m.params !== undefined);
    if (matches.length === 0) throw new HttpError(404, `no such resource: ${path}`);
    const found = matches.find((m) => m.route.method === method);
    if (!found) {
      const allow = matches.map((m) => m.route.method).join(", ");
      throw new HttpError(405, `${method} is not allowed on ${path} (allowed: ${allow})`, { allow });
    }
    const { route, params } = found;
    let input: unknown;
    if (route.body) input = parseBody(route.body, body, contentType);
    // A PATCH changes only the fields it names: its defaults must not fill in the others.
    if (route.method === "PATCH" && route.path === "/machine-config") input = JSON.parse(body!);
    if (route.preBoot && this.controller.state() !== "Not started") throw new RequestError(NOT_AFTER_START);
    return this.serve(route, params!, input);
  }

  private started(): boolean {
    return this.controller.state() !== "Not started";
  }

  /** The description as it stands: the machine's once started, else the pending one with defaults. */
  private currentConfig(): VmConfig {
    const running = this.started() ? this.controller.config() : undefined;
    if (running) return running;
    const result = VmConfig.safeParse(this.pending);
    if (result.success) return result.data;
    // The pending description is checked at every change, so this holds only without any.
    return VmConfig.parse({});
  }

  /** Replaces the pending description if the whole of it is still valid; otherwise nothing changes. */
  private propose(change: (draft: Record<string, unknown>) => void): Reply {
    const draft = structuredClone(this.pending) as Record<string, unknown>;
    change(draft);
    parseWith(VmConfig, draft);
    this.pending = draft as VmConfigInput;
    return { status: 204 };
  }

  private async serve(route: ApiRoute, params: Record<string, string>, input: any): Promise<Reply> {
    const c = this.controller;
    switch (`${route.method} ${route.path}`) {
      case "GET /":
        return { status: 200, json: { id: c.id, state: c.state(), vmm_version: VMM_VERSION, app_name: "parley" } };
      case "PUT /actions":
        return this.action(input.action_type);
      case "PUT /boot-source":
        return this.propose((d) => (d["boot-source"] = input));
      case "GET /machine-config":
        return { status: 200, json: this.currentConfig()["machine-config"] };
      case "PUT /machine-config":
        return this.propose((d) => (d["machine-config"] = input));
      case "PATCH /machine-config":
        return this.propose((d) => (d["machine-config"] = { ...(d["machine-config"] as object), ...input }));
      case "PUT /drives/{drive_id}":
        return this.putListItem("drives", "drive_id", params.drive_id, input);
      case "PUT /network-interfaces/{iface_id}":
        return this.putListItem("network-interfaces", "iface_id", params.iface_id, input);
      case "PATCH /drives/{drive_id}": {
        checkIdMatches("drive_id", params.drive_id, input.drive_id);
        if (!this.started()) throw new RequestError("PATCH /drives: only after InstanceStart (use PUT before)");
        const { drive_id: _, ...patch } = input;
        c.updateDrive(params.drive_id, patch);
        return { status: 204 };
      }
      case "PATCH /network-interfaces/{iface_id}": {
        checkIdMatches("iface_id", params.iface_id, input.iface_id);
        if (!this.started()) throw new RequestError("PATCH /network-interfaces: only after InstanceStart (use PUT before)");
        const { iface_id: _, ...patch } = input;
        c.updateNetworkInterface(params.iface_id, patch);
        return { status: 204 };
      }
      case "PUT /shares/{mount_tag}":
        return this.putListItem("shares", "mount_tag", params.mount_tag, input);
      case "PUT /vsock":
        return this.propose((d) => (d.vsock = input));
      case "PUT /entropy":
        return this.propose((d) => (d.entropy = input));
      case "PUT /metrics":
        return this.propose((d) => (d.metrics = input));
      case "GET /metrics":
        return { status: 200, text: await c.metricsText(), headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } };
      case "PUT /balloon":
        return this.propose((d) => (d.balloon = input));
      case "GET /balloon": {
        const balloon = this.currentConfig().balloon;
        if (!balloon) throw new RequestError("there is no balloon device");
        return { status: 200, json: balloon };
      }
      case "PATCH /balloon":
        if (this.started()) {
          c.setBalloonTarget(input.amount_mib);
          return { status: 204 };
        }
        return this.patchPendingBalloon({ amount_mib: input.amount_mib });
      case "GET /balloon/statistics":
        if (!this.started()) throw new RequestError("balloon statistics: only after InstanceStart");
        return { status: 200, json: c.balloonStatistics() };
      case "PATCH /balloon/statistics":
        if (this.started()) {
          c.setBalloonStatsInterval(input.stats_polling_interval_s);
          return { status: 204 };
        }
        return this.patchPendingBalloon({ stats_polling_interval_s: input.stats_polling_interval_s });
      case "PATCH /vm":
        if (!this.started()) throw new RequestError("the machine has not been started");
        if (input.state === "Paused") await c.pause();
        else await c.resume();
        return { status: 204 };
      case "GET /vm/config":
        return { status: 200, json: this.currentConfig() };
      case "PUT /snapshot/create":
        return { status: 200, json: await c.createSnapshot(input) };
      case "PUT /snapshot/load":
        if (this.started()) throw new RequestError("snapshot/load: " + NOT_AFTER_START);
        await c.loadSnapshot(input);
        return { status: 204 };
      case "PUT /migrate":
        return { status: 200, json: await c.migrate(input) };
    }
    throw new HttpError(500, `route ${route.method} ${route.path} has no handler`);
  }

  private async action(type: "InstanceStart" | "SendCtrlAltDel" | "FlushMetrics"): Promise<Reply> {
    switch (type) {
      case "InstanceStart": {
        if (this.started()) throw new RequestError("InstanceStart: the machine has already been started");
        await this.controller.start(parseWith(VmConfig, this.pending));
        return { status: 204 };
      }
      case "SendCtrlAltDel":
        if (!this.started()) throw new RequestError("SendCtrlAltDel: the machine has not been started");
        this.controller.sendCtrlAltDel();
        return { status: 204 };
      case "FlushMetrics":
        if (!this.started()) throw new RequestError("FlushMetrics: the machine has not been started");
        this.controller.flushMetrics();
        return { status: 204 };
    }
  }

  private patchPendingBalloon(change: Record<string, number>): Reply {
    if (!this.pending.balloon) throw new RequestError("there is no balloon device (PUT /balloon first)");
    return this.propose((d) => (d.balloon = { ...(d.balloon as object), ...change }));
  }

  private putListItem(list: "drives" | "network-interfaces" | "shares", idField: string, id: string, item: Record<string, unknown>): Reply {
    checkIdMatches(idField, id, item[idField] as string);
    return this.propose((d) => {
      const items = [...((d[list] as Record<string, unknown>[] | undefined) ?? [])];
      const at = items.findIndex((x) => x[idField] === id);
      if (at >= 0) items[at] = item;
      else items.push(item);
      d[list] = items;
    });
  }
}

function checkIdMatches(field: string, fromPath: string, fromBody: string): void {
  if (fromBody !== fromPath) throw new RequestError(`${field}: "${fromBody}" does not match the path's "${fromPath}"`);
}

/** The body as the route's schema: JSON only, every field checked, defaults filled in. */
function parseBody(schema: z.ZodType, body: string | undefined, contentType: string | undefined): unknown {
  if (contentType !== undefined && !/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new RequestError(`content-type must be application/json, not ${contentType}`);
  }
  if (body === undefined || body.trim() === "") throw new RequestError("the request needs a JSON body");
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    throw new RequestError(`the body is not valid JSON: ${(err as Error).message}`);
  }
  return parseWith(schema, json);
}

// ---- HTTP on a Unix socket -------------------------------------------------------------------

export interface ApiServer {
  readonly path: string;
  close(): Promise<void>;
}

export interface ApiServerOptions {
  path: string;
  controller: VmmController;
  /** The description to start from before InstanceStart (e.g. from --config). */
  initial?: VmConfigInput;
  maxBodyBytes?: number;
}

/** Whether something answers on the Unix socket at `path`. */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Refuses a path that another live instance serves or that is no socket; removes a stale socket. */
async function claimSocketPath(path: string): Promise<void> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket`);
  if (await socketIsLive(path)) throw new Error(`${path} is in use by a running instance`);
  unlinkSync(path);
}

/** Reads the body up to `limit` bytes; longer is a 400 (Firecracker's answer to an oversize payload). */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(400, `the request body is larger than ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    req.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) {
        reject(new HttpError(400, `the request body is larger than ${limit} bytes`));
        req.removeAllListeners("data");
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, reply: Reply, close = false): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string> = { ...reply.headers, ...(close ? { connection: "close" } : {}) };
  if (reply.json !== undefined) {
    res.writeHead(reply.status, { "content-type": "application/json", ...headers }).end(JSON.stringify(reply.json));
  } else if (reply.text !== undefined) {
    res.writeHead(reply.status, { "content-type": "text/plain; charset=utf-8", ...headers }).end(reply.text);
  } else {
    res.writeHead(reply.status, headers).end();
  }
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const handler = new ApiHandler(options.controller, options.initial);
  const limit = options.maxBodyBytes ?? MAX_BODY_BYTES;
  // One request at a time, in arrival order.
  let queue: Promise<void> = Promise.resolve();
  const server: Server = createServer((req, res) => {
    const done = readBody(req, limit).then(
      (body) => ({ body }),
      (err: unknown) => ({ error: err instanceof HttpError ? fault(err.status, err.message) : fault(400, `cannot read the request: ${String(err)}`) }),
    );
    queue = queue.then(async () => {
      const read = await done;
      if ("error" in read) {
        send(res, read.error, true);
        return;
      }
      const reply = await handler.handle(req.method ?? "GET", req.url ?? "/", read.body, req.headers["content-type"]);
      send(res, reply);
    });
  });
  server.on("clientError", (_err, socket) => {
    const body = JSON.stringify({ fault_message: "malformed HTTP request" });
    if (socket.writable) socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    else socket.destroy();
  });
  await claimSocketPath(options.path);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.path, () => resolve());
  });
  return {
    path: options.path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The error body's schema, for the OpenAPI document. */
export { ApiError };
