import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { ensureWebDisk, parseRange, resolveRequestPath, startWebServer, webRoot, ISOLATION_HEADERS, WEB_DISK_BYTES } from "./web-server.ts";
import { UsageError } from "./options.ts";

test("parseRange: single byte ranges, suffixes, open ends; other units ignored; bad ranges unsatisfiable", () => {
  assert.deepEqual(parseRange(undefined, 100), { kind: "whole" });
  assert.deepEqual(parseRange("bytes=0-9", 100), { kind: "range", start: 0, end: 9 });
  assert.deepEqual(parseRange("bytes=90-", 100), { kind: "range", start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=95-200", 100), { kind: "range", start: 95, end: 99 });
  assert.deepEqual(parseRange("bytes=-10", 100), { kind: "range", start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-1000", 100), { kind: "range", start: 0, end: 99 });
  assert.deepEqual(parseRange("items=0-1", 100), { kind: "whole" });
  for (const bad of ["bytes=100-", "bytes=5-2", "bytes=-0", "bytes=-", "bytes=a-b", "bytes=0-1,3-4", "bytes=1e3-"]) {
    assert.deepEqual(parseRange(bad, 100), { kind: "unsatisfiable" }, bad);
  }
  assert.deepEqual(parseRange("bytes=0-0", 0), { kind: "unsatisfiable" });
});

test("resolveRequestPath: files under the root and named image files only", () => {
  const options = { root: "/srv/web", images: { Image: "/cache/Image" } };
  assert.equal(resolveRequestPath("/", options), "/srv/web/index.html");
  assert.equal(resolveRequestPath("/main.js?x=1", options), "/srv/web/main.js");
  assert.equal(resolveRequestPath("/image/Image", options), "/cache/Image");
  assert.equal(resolveRequestPath("/image/other", options), undefined);
  assert.equal(resolveRequestPath("/image/constructor", options), undefined);
  assert.equal(resolveRequestPath("/../etc/passwd", options), "/srv/web/etc/passwd");
  assert.equal(resolveRequestPath("/%2e%2e/%2e%2e/etc/passwd", options), "/srv/web/etc/passwd");
  assert.equal(resolveRequestPath("/%E0%A4%A", options), undefined);
  assert.equal(resolveRequestPath("/a%00b", options), undefined);
});

function fixture(): { root: string; images: Record<string, string>; disk: Uint8Array; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "parley-web-"));
  const root = join(dir, "web");
  mkdirSync(root);
  writeFileSync(join(root, "index.html"), "<!doctype html><title>t</title>");
  writeFileSync(join(root, "cpu.wasm"), new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  writeFileSync(join(dir, "secret"), "no");
  const disk = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7) & 0xff);
  writeFileSync(join(dir, "disk.img"), disk);
  return { root, images: { "disk.img": join(dir, "disk.img") }, disk, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test("the server: isolation headers, types, ranges (206, 416), HEAD, 404s and 405", async (t) => {
  const f = fixture();
  const server = await startWebServer({ root: f.root, images: f.images, host: "127.0.0.1", port: 0 });
  t.after(() => {
    server.close();
    f.cleanup();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  for (const [name, value] of Object.entries(ISOLATION_HEADERS)) assert.equal(page.headers.get(name), value, name);
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  assert.match(await page.text(), /doctype/);

  const wasm = await fetch(`${base}/cpu.wasm`);
  assert.equal(wasm.headers.get("content-type"), "application/wasm");
  assert.equal((await wasm.arrayBuffer()).byteLength, 8);

  const whole = await fetch(`${base}/image/disk.img`);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get("accept-ranges"), "bytes");
  assert.deepEqual(new Uint8Array(await whole.arrayBuffer()), f.disk);

  const part = await fetch(`${base}/image/disk.img`, { headers: { Range: "bytes=4096-8191" } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get("content-range"), "bytes 4096-8191/10000");
  assert.equal(part.headers.get("content-length"), "4096");
  assert.deepEqual(new Uint8Array(await part.arrayBuffer()), f.disk.subarray(4096, 8192));

  const tail = await fetch(`${base}/image/disk.img`, { headers: { Range: "bytes=9000-" } });
  assert.equal(tail.status, 206);
  assert.deepEqual(new Uint8Array(await tail.arrayBuffer()), f.disk.subarray(9000));

  for (const bad of ["bytes=10000-", "bytes=20-10", "bytes=0-1,5-6"]) {
    const refused = await fetch(`${base}/image/disk.img`, { headers: { Range: bad } });
    assert.equal(refused.status, 416, bad);
    assert.equal(refused.headers.get("content-range"), "bytes */10000");
    await refused.arrayBuffer();
  }

  const head = await fetch(`${base}/image/disk.img`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), "10000");

  for (const missing of ["/nothing.js", "/image/Image", "/../secret", "/%2e%2e/secret", "/image/"]) {
    const response = await fetch(`${base}${missing}`);
    assert.equal(response.status, 404, missing);
    assert.equal(response.headers.get("cross-origin-embedder-policy"), "require-corp");
    await response.text();
  }

  const post = await fetch(`${base}/`, { method: "POST", body: "x" });
  assert.equal(post.status, 405);
  await post.text();
});

test("the server with isolation off: no isolation headers on any answer, ranges as before", async (t) => {
  const f = fixture();
  const server = await startWebServer({ root: f.root, images: f.images, isolation: false, host: "127.0.0.1", port: 0 });
  t.after(() => {
    server.closeAllConnections();
    server.close();
    f.cleanup();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const answers = [
    await fetch(`${base}/`),
    await fetch(`${base}/image/disk.img`, { headers: { Range: "bytes=10-19" } }),
    await fetch(`${base}/image/disk.img`, { headers: { Range: "bytes=99999-" } }),
    await fetch(`${base}/missing`),
  ];
  assert.deepEqual(answers.map((a) => a.status), [200, 206, 416, 404]);
  for (const answer of answers) {
    for (const name of Object.keys(ISOLATION_HEADERS)) assert.equal(answer.headers.get(name), null, `${answer.url} ${answer.status}: ${name}`);
  }
  assert.deepEqual(new Uint8Array(await answers[1].arrayBuffer()), f.disk.subarray(10, 20));
});

test("the server: a port in use is a UsageError naming --port", async (t) => {
  const f = fixture();
  const first = await startWebServer({ root: f.root, images: f.images, host: "127.0.0.1", port: 0 });
  t.after(() => {
    first.close();
    f.cleanup();
  });
  const port = (first.address() as AddressInfo).port;
  await assert.rejects(startWebServer({ root: f.root, images: f.images, host: "127.0.0.1", port }), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.match(error.message, new RegExp(`--port ${port}: the port is in use`));
    return true;
  });
});

test("ensureWebDisk: a 64 MiB ext4 file system, made once", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "parley-web-disk-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "web", "disk.img");
  assert.equal(ensureWebDisk(path), path);
  const image = readFileSync(path);
  assert.equal(image.length, WEB_DISK_BYTES);
  // The ext2/3/4 superblock at 1024: s_magic 0xEF53 at offset 56, the volume label at 120.
  assert.equal(image.readUInt16LE(1024 + 56), 0xef53);
  assert.equal(image.subarray(1024 + 120, 1024 + 131).toString(), "parley-data");
  writeFileSync(path, "kept");
  ensureWebDisk(path);
  assert.equal(readFileSync(path, "utf8"), "kept");
});

test("webRoot: a page not built yet is a UsageError saying how to build it", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "parley-web-root-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "index.html"), "");
  assert.throws(() => webRoot(dir), (error: unknown) => error instanceof UsageError && /main\.js is missing: run `npm run build`/.test(error.message));
});
