// The client side of the API socket, for `parley pause|resume|snapshot|migrate --api-sock PATH`.
import { request } from "node:http";
import { UsageError } from "./options.ts";

/** The instance answered with an error: its fault_message, and the request it refused. */
export class ApiRefusal extends Error {
  override name = "ApiRefusal";
}

export interface ApiAnswer {
  status: number;
  json?: unknown;
}

/** One request to the instance at `socketPath`; a 2xx answer, or ApiRefusal with the instance's fault message. */
export function apiRequest(socketPath: string, method: string, path: string, body?: object): Promise<ApiAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method, path, headers: payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve({ status, json });
            return;
          }
          const fault = (json as { fault_message?: unknown } | undefined)?.fault_message;
          reject(new ApiRefusal(`${method} ${path}: ${typeof fault === "string" ? fault : `HTTP ${status}`}`));
        });
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "ENOENT" ? "no such socket" : err.code === "ECONNREFUSED" ? "no Parley instance answers there" : err.message;
      reject(new UsageError(`--api-sock ${socketPath}: ${why}`));
    });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** `parley snapshot`: pauses a running instance, writes the snapshot, and resumes it unless asked not to. */
export async function snapshotInstance(socketPath: string, request: { snapshot_path: string; mem_file_path: string }, leavePaused: boolean): Promise<unknown> {
  const info = (await apiRequest(socketPath, "GET", "/")).json as { state?: string };
  const pausedHere = info.state === "Running";
  if (pausedHere) await apiRequest(socketPath, "PATCH", "/vm", { state: "Paused" });
  try {
    return (await apiRequest(socketPath, "PUT", "/snapshot/create", request)).json;
  } finally {
    if (pausedHere && !leavePaused) await apiRequest(socketPath, "PATCH", "/vm", { state: "Resumed" });
  }
}
