// A small static HTTP server for the page tests and the web bench: it serves dist/web and the
// guest image files the page fetches (image/Image, image/initrd, image/disk.img), with byte
// ranges (the disk is read by range requests) and, when asked, the two headers that make the
// page cross-origin isolated. Without them the page must still run, on one hart, and say why.
// It stands in for a plain static host; the ranges are parsed as `parley web` parses them.
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, sep } from "node:path";
import { parseRange } from "../../src/cli/web-server.ts";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

export interface StaticServerOptions {
  /** The directory served at / (dist/web). */
  root: string;
  /** Extra files by URL path ("image/initrd" -> a file on disk); they win over files under root. */
  files?: Record<string, string>;
  /** Send Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp. */
  crossOriginIsolation: boolean;
}

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** The file a URL path names under `root` (never outside it), or an extra file. */
function resolvePath(options: StaticServerOptions, urlPath: string): string | undefined {
  const path = decodeURIComponent(urlPath).replace(/^\/+/, "") || "index.html";
  if (options.files?.[path]) return options.files[path];
  const full = normalize(join(options.root, path));
  if (full !== options.root && !full.startsWith(options.root.endsWith(sep) ? options.root : options.root + sep)) return undefined;
  return full;
}

export async function startStaticServer(options: StaticServerOptions): Promise<StaticServer> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const file = resolvePath(options, url.pathname);
    if (options.crossOriginIsolation) {
      res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
      res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    }
    res.setHeader("Cache-Control", "no-store");
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    const size = statSync(file).size;
    res.setHeader("Content-Type", CONTENT_TYPES[extname(file)] ?? "application/octet-stream");
    res.setHeader("Accept-Ranges", "bytes");
    const range = parseRange(req.headers.range, size);
    if (range.kind === "unsatisfiable") {
      res.writeHead(416, { "Content-Range": `bytes */${size}` }).end();
      return;
    }
    if (range.kind === "range") {
      res.writeHead(206, { "Content-Range": `bytes ${range.start}-${range.end}/${size}`, "Content-Length": range.end - range.start + 1 });
      if (req.method === "HEAD") res.end();
      else createReadStream(file, { start: range.start, end: range.end }).pipe(res);
      return;
    }
    res.writeHead(200, { "Content-Length": size });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
