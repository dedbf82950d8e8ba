// `parley web`: serves the web page (dist/web, `npm run build:web`) and the guest image it boots
// (image/Image, image/initrd, image/disk.img) on a local HTTP server, with the headers that make
// the page cross-origin isolated (SharedArrayBuffer for hart workers) and range requests for the
// data disk, which the page reads on demand.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { extname, join, normalize, resolve, sep } from "node:path";
import { buildGuestImage, cachedGuestImage } from "../image/index.ts";
import { CACHE_DIR, REPO_ROOT } from "../host/node/paths.ts";
import { UsageError } from "./options.ts";

/** Cross-origin isolation (SharedArrayBuffer, Atomics.wait in workers) and same-origin resources. */
export const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
} as const;

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".map": "application/json",
  ".json": "application/json",
};

export const WEB_DISK_BYTES = 64 * 2 ** 20;

/** The byte range a Range header asks for, in a resource of `size` bytes (RFC 9110 14.1.2). */
export type RangeRequest = { kind: "whole" } | { kind: "range"; start: number; end: number } | { kind: "unsatisfiable" };

/**
 * A single "bytes=" range: first-last, first-, or -suffix. Other units are ignored (the whole
 * resource, as RFC 9110 allows); a malformed or unsatisfiable bytes range, or several ranges,
 * are refused (416): the page only ever asks for one well-formed range.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: "whole" };
  const m = /^\s*([A-Za-z]+)\s*=\s*(.*)$/.exec(header);
  if (!m || m[1].toLowerCase() !== "bytes") return { kind: "whole" };
  const spec = /^(\d*)-(\d*)\s*$/.exec(m[2]);
  if (!spec || (spec[1] === "" && spec[2] === "")) return { kind: "unsatisfiable" };
  if (spec[1] === "") {
    const suffix = Number(spec[2]);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "range", start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(spec[1]);
  const last = spec[2] === "" ? size - 1 : Number(spec[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last) || start > last || start >= size) return { kind: "unsatisfiable" };
  return { kind: "range", start, end: Math.min(last, size - 1) };
}

export interface WebServerOptions {
  /** The built page (dist/web). */
  root: string;
  /** Files served under /image/ by name (Image, initrd, disk.img): absolute paths. */
  images: Record<string, string>;
  /**
   * Send the cross-origin-isolation headers (default true). False serves the page as a plain
   * static host does, which the page must survive on one hart (its test does that).
   */
  isolation?: boolean;
}

function isolationHeaders(options: WebServerOptions): Record<string, string> {
  return options.isolation === false ? {} : ISOLATION_HEADERS;
}

/** Where a request path leads: a file under root or an image file, or nothing. */
export function resolveRequestPath(urlPath: string, options: WebServerOptions): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(urlPath.split("?")[0]);
  } catch {
    return undefined;
  }
  if (path.includes("\0")) return undefined;
  if (path.startsWith("/image/")) return Object.hasOwn(options.images, path.slice(7)) ? options.images[path.slice(7)] : undefined;
  if (path.endsWith("/")) path += "index.html";
  const root = resolve(options.root);
  const file = resolve(root, "." + normalize(path));
  if (file !== root && !file.startsWith(root + sep)) return undefined;
  return file;
}

function send(response: ServerResponse, status: number, message: string, headers: Record<string, string>): void {
  response.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", ...headers });
  response.end(message + "\n");
}

export function handleWebRequest(request: IncomingMessage, response: ServerResponse, options: WebServerOptions): void {
  if (request.method !== "GET" && request.method !== "HEAD") {
    send(response, 405, "only GET and HEAD", { ...isolationHeaders(options), Allow: "GET, HEAD" });
    return;
  }
  const file = resolveRequestPath(request.url ?? "/", options);
  let size: number;
  try {
    if (!file) throw new Error("outside");
    const stat = statSync(file);
    if (!stat.isFile()) throw new Error("not a file");
    size = stat.size;
  } catch {
    send(response, 404, `${request.url}: not found`, isolationHeaders(options));
    return;
  }
  const range = parseRange(request.headers.range, size);
  const headers: Record<string, string> = {
    ...isolationHeaders(options),
    "Content-Type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
    "Accept-Ranges": "bytes",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
  };
  if (range.kind === "unsatisfiable") {
    send(response, 416, `${request.headers.range}: not a satisfiable byte range of ${size} bytes`, { ...isolationHeaders(options), "Content-Range": `bytes */${size}` });
    return;
  }
  const [status, start, end] = range.kind === "range" ? [206, range.start, range.end] : [200, 0, size - 1];
  if (range.kind === "range") headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  headers["Content-Length"] = String(end - start + 1);
  response.writeHead(status, headers);
  if (request.method === "HEAD" || size === 0) {
    response.end();
    return;
  }
  const stream = createReadStream(file, { start, end });
  stream.on("error", () => response.destroy());
  stream.pipe(response);
}

/** Listens on host:port; a port in use or not ours to take is a UsageError naming --port/--host. */
export async function startWebServer(options: WebServerOptions & { host: string; port: number }): Promise<Server> {
  const server = createServer((request, response) => handleWebRequest(request, response, options));
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") reject(new UsageError(`--port ${options.port}: the port is in use on ${options.host}; choose another with --port`));
      else if (error.code === "EACCES") reject(new UsageError(`--port ${options.port}: not allowed to listen on it here; choose a port above 1023`));
      else if (error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND") reject(new UsageError(`--host ${options.host}: not an address of this host`));
      else reject(error);
    });
    server.listen(options.port, options.host, () => resolveListen());
  });
  return server;
}

/** mkfs.ext4 from e2fsprogs: in sbin, which a user's PATH may lack. */
function findMkfsExt4(): string {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"]) {
    const candidate = join(dir, "mkfs.ext4");
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error("mkfs.ext4 not found: install e2fsprogs (scripts/setup-host.sh does) to create the web page's data disk");
}

/** The page's data disk (an empty ext4 file system), created on first use. */
export function ensureWebDisk(path = join(CACHE_DIR, "web", "disk.img")): string {
  if (existsSync(path)) return path;
  mkdirSync(join(path, ".."), { recursive: true });
  const partial = `${path}.partial`;
  try {
    writeFileSync(partial, "");
    truncateSync(partial, WEB_DISK_BYTES);
    execFileSync(findMkfsExt4(), ["-q", "-F", "-L", "parley-data", "-E", "root_owner=0:0", partial], { stdio: ["ignore", "ignore", "pipe"] });
    renameSync(partial, path);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
  return path;
}

/** The built page, or a UsageError saying how to build it. */
export function webRoot(root = join(REPO_ROOT, "dist", "web")): string {
  for (const file of ["index.html", "main.js", "machine-worker.js", "hart-worker.js", "cpu.wasm", "cpu-shared.wasm"]) {
    if (!existsSync(join(root, file))) throw new UsageError(`${join(root, file)} is missing: run \`npm run build\` (or \`npm run build:web\`) first`);
  }
  return root;
}

/** `parley web`: the guest image from the cache (built on first use), the data disk, the server. */
export async function serveWeb(options: { host: string; port: number; cpus?: number; memoryMiB?: number; log: (line: string) => void }): Promise<Server> {
  const root = webRoot();
  // The port first: one in use is said at once, not after an image build.
  const images: Record<string, string> = {};
  const server = await startWebServer({ root, images, host: options.host, port: options.port });
  try {
    let image = await cachedGuestImage();
    if (!image) {
      options.log("no guest image in the cache yet; building it from Debian's trixie riscv64 archive");
      image = await buildGuestImage({ progress: true });
    }
    Object.assign(images, { Image: image.kernel, initrd: image.initrd, "disk.img": ensureWebDisk() });
  } catch (error) {
    server.close();
    throw error;
  }
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  const params = new URLSearchParams();
  if (options.cpus !== undefined) params.set("cpus", String(options.cpus));
  if (options.memoryMiB !== undefined) params.set("memory", String(options.memoryMiB));
  const query = params.size ? `?${params}` : "";
  options.log(`parley web: serving Debian on http://${host}:${port}/${query} (Ctrl-C to stop)`);
  return server;
}
