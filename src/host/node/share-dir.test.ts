// The shared-folder backend on its own: it never follows a symbolic link, whatever the path.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, existsSync, readdirSync, statSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openShareDir } from "./share-dir.ts";

const bases: string[] = [];
after(() => bases.forEach((base) => rmSync(base, { recursive: true, force: true })));

function layout() {
  const base = mkdtempSync(join(tmpdir(), "parley-share-dir-"));
  bases.push(base);
  const share = join(base, "share");
  const outside = join(base, "outside");
  mkdirSync(join(share, "sub"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, "secret"), "secret");
  writeFileSync(join(share, "sub", "file"), "inside");
  symlinkSync(outside, join(share, "out"));
  symlinkSync(join(outside, "secret"), join(share, "secret-link"));
  symlinkSync(join(outside, "new-file"), join(share, "dangling"));
  return { base, share, outside };
}

const code = (expected: string) => (err: unknown) => (err as { code?: string; errno9p?: number; message: string }).code === expected || (err as Error).message.startsWith(`${expected}:`);

test("paths through a symbolic link are refused, for every kind of operation", async () => {
  const { share, outside } = layout();
  const dir = await openShareDir(share);
  await assert.rejects(dir.lstat(["out", "secret"]), code("ENOTDIR"));
  await assert.rejects(dir.open(["out", "secret"], { read: true, write: false, truncate: false, append: false }), code("ENOTDIR"));
  await assert.rejects(dir.readdir(["out"]), code("ENOTDIR"));
  await assert.rejects(dir.mkdir(["out", "d"], 0o755), code("ENOTDIR"));
  await assert.rejects(dir.symlink(["out", "l"], "x"), code("ENOTDIR"));
  await assert.rejects(dir.unlink(["out", "secret"], false), code("ENOTDIR"));
  await assert.rejects(dir.rename(["sub", "file"], ["out", "moved"]), code("ENOTDIR"));
  await assert.rejects(dir.link(["sub", "file"], ["out", "hard"]), code("ENOTDIR"));
  await assert.rejects(dir.link(["out", "secret"], ["hard"]), code("ENOTDIR"));
  await assert.rejects(dir.truncate(["out", "secret"], 0), code("ENOTDIR"));
  await assert.rejects(dir.chmod(["out", "secret"], 0o777), code("ENOTDIR"));
  assert.deepEqual(readdirSync(outside), ["secret"]);
  assert.equal(statSync(join(outside, "secret")).size, 6);
});

test("the last name is never followed: open, create through a dangling link, truncate, chmod", async () => {
  const { share, outside } = layout();
  const dir = await openShareDir(share);
  const read = { read: true, write: false, truncate: false, append: false };
  await assert.rejects(dir.open(["secret-link"], read), code("ELOOP"));
  await assert.rejects(dir.open(["dangling"], { ...read, write: true, create: { mode: 0o644, exclusive: false } }), code("ELOOP"));
  assert.equal(existsSync(join(outside, "new-file")), false);
  await assert.rejects(dir.truncate(["secret-link"], 0), code("ELOOP"));
  await assert.rejects(dir.chmod(["secret-link"], 0o777), code("EOPNOTSUPP"));
  assert.equal((await dir.lstat(["secret-link"])).type, "symlink");
  assert.equal(await dir.readlink(["secret-link"]), join(outside, "secret"));
  // A hard link of a link is a link (link(2) does not follow).
  await dir.link(["secret-link"], ["copy"]);
  assert.equal((await dir.lstat(["copy"])).type, "symlink");
  assert.equal(statSync(join(outside, "secret")).nlink, 1);
});

test("a share given through a symbolic link is its real directory; read-only refuses writes", async () => {
  const { base, share } = layout();
  symlinkSync(share, join(base, "alias"));
  const dir = await openShareDir(join(base, "alias"), { readOnly: true });
  assert.equal(dir.root, share);
  const h = await dir.open(["sub", "file"], { read: true, write: false, truncate: false, append: false });
  assert.equal(new TextDecoder().decode(await dir.read(h, 0, 100)), "inside");
  assert.equal((await dir.fstat(h)).size, 6);
  await dir.close(h);
  await assert.rejects(dir.open(["sub", "file"], { read: true, write: true, truncate: false, append: false }), code("EROFS"));
  await assert.rejects(openShareDir(join(base, "missing")), code("ENOENT"));
  await assert.rejects(openShareDir(join(share, "sub", "file")), /not a directory/);
});

test("a share of / itself: opened files are inside it", async () => {
  const { share } = layout();
  const dir = await openShareDir("/");
  const h = await dir.open([...realpathSync(share).split("/").filter(Boolean), "sub", "file"], { read: true, write: false, truncate: false, append: false });
  assert.equal(new TextDecoder().decode(await dir.read(h, 0, 100)), "inside");
  await dir.close(h);
});
