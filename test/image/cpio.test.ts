// The newc cpio writer: exact header layout, round trip through our reader and, when the host has
// one, through GNU cpio or bsdtar.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { needsHostTools } from "../support/host-tools.ts";
import { normalizeCpioPath, readCpio, withParentDirs, writeCpio, type CpioEntry } from "../../src/image/cpio.ts";

const text = (s: string) => new TextEncoder().encode(s);

const SAMPLE: CpioEntry[] = [
  { path: "bin", type: "symlink", mode: 0o777, target: "usr/bin" },
  { path: "dev", type: "dir", mode: 0o755 },
  { path: "dev/console", type: "char", mode: 0o600, rdevMajor: 5, rdevMinor: 1 },
  { path: "init", type: "file", mode: 0o755, data: text("#!/bin/sh\necho hi\n") },
  { path: "tmp", type: "dir", mode: 0o1777 },
  { path: "usr", type: "dir", mode: 0o755 },
  { path: "usr/bin", type: "dir", mode: 0o755 },
  { path: "usr/bin/busybox", type: "file", mode: 0o755, data: new Uint8Array(1001).map((_, i) => i & 0xff) },
  { path: "usr/bin/sh", type: "symlink", mode: 0o777, target: "busybox" },
  { path: "etc", type: "dir", mode: 0o755 },
  { path: "etc/empty", type: "file", mode: 0o644, data: new Uint8Array(0) },
  { path: "etc/shadow", type: "file", mode: 0o600, uid: 0, gid: 42, mtime: 1700000000, data: text("root::0:0:99999:7:::\n") },
];

test("newc header layout and 4-byte alignment", () => {
  const bytes = writeCpio([{ path: "init", type: "file", mode: 0o755, data: text("abc") }]);
  const ascii = new TextDecoder().decode(bytes);
  // magic, ino 1, mode 0100755, uid, gid, nlink 1, mtime 0, size 3, dev 0/0, rdev 0/0, namesize 5, check 0
  assert.equal(ascii.slice(0, 110), "070701" + ["1", "81ed", "0", "0", "1", "0", "3", "0", "0", "0", "0", "5", "0"].map((f) => f.padStart(8, "0")).join(""));
  assert.equal(ascii.slice(110, 115), "init\0");
  // header + name = 115 -> padded to 116; data 3 -> padded to 4
  assert.equal(ascii.slice(116, 119), "abc");
  assert.equal(ascii.slice(120, 126), "070701");
  assert.ok(ascii.includes("TRAILER!!!\0"));
  assert.equal(bytes.length % 4, 0);
});

test("round trip through our reader", () => {
  const back = readCpio(writeCpio(SAMPLE));
  assert.equal(back.length, SAMPLE.length);
  for (const [i, e] of SAMPLE.entries()) {
    const b = back[i];
    assert.equal(b.path, e.path);
    assert.equal(b.type, e.type);
    assert.equal(b.mode, e.mode);
    assert.equal(b.uid, e.uid ?? 0);
    assert.equal(b.gid, e.gid ?? 0);
    assert.equal(b.mtime, e.mtime ?? 0);
    if (e.type === "file") assert.deepEqual([...b.data!], [...e.data!]);
    if (e.type === "symlink") assert.equal(b.target, e.target);
    if (e.type === "char") assert.deepEqual([b.rdevMajor, b.rdevMinor], [5, 1]);
  }
});

test("rejects duplicates, escapes and symlinks without targets", () => {
  assert.throws(() => writeCpio([{ path: "a", type: "dir", mode: 0o755 }, { path: "./a/", type: "dir", mode: 0o755 }]), /duplicate/);
  assert.throws(() => writeCpio([{ path: "../etc/passwd", type: "file", mode: 0o644 }]), /escapes/);
  assert.throws(() => writeCpio([{ path: "l", type: "symlink", mode: 0o777 }]), /no target/);
  assert.equal(normalizeCpioPath("/./usr//bin/"), "usr/bin");
});

test("withParentDirs adds missing directories ahead of their contents", () => {
  const out = withParentDirs([
    { path: "usr/lib/modules/x/kernel/a.ko", type: "file", mode: 0o644, data: text("a") },
    { path: "/init", type: "file", mode: 0o755, data: text("i") },
    { path: "usr", type: "dir", mode: 0o700 },
  ]);
  const paths = out.map((e) => e.path);
  for (const [i, p] of paths.entries()) {
    const parent = p.split("/").slice(0, -1).join("/");
    if (parent) assert.ok(paths.indexOf(parent) >= 0 && paths.indexOf(parent) < i, `${parent} before ${p}`);
  }
  assert.equal(out.find((e) => e.path === "usr")!.mode, 0o700); // an explicit entry is kept
  assert.equal(out.find((e) => e.path === "usr/lib/modules")!.mode, 0o755);
  assert.throws(() => withParentDirs([{ path: "bin", type: "symlink", mode: 0o777, target: "usr/bin" }, { path: "bin/sh", type: "file", mode: 0o755 }]), /not a directory/);
});

// GNU cpio is the reference reader (installed by the setup script).
const lister = { name: "cpio", args: ["-itv", "--quiet"] };
const cpio = needsHostTools("cpio");
test("round trip through the host's cpio", { skip: cpio.skip }, () => {
  cpio.check();
  const dir = mkdtempSync(join(tmpdir(), "parley-cpio-"));
  try {
    const file = join(dir, "initrd.gz");
    writeFileSync(file, gzipSync(writeCpio(SAMPLE)));
    const listing = execFileSync("sh", ["-c", `zcat "$1" | ${lister!.name} ${lister!.args.join(" ")}`, "sh", file], { encoding: "utf8" });
    const lines = listing.trim().split("\n");
    assert.equal(lines.length, SAMPLE.length, listing);
    for (const e of SAMPLE) assert.ok(lines.some((l) => l.includes(` ${e.path}`)), `${e.path} in\n${listing}`);
    assert.match(listing, /^crw-------.* dev\/console/m);
    assert.match(listing, /^lrwxrwxrwx.* usr\/bin\/sh -> busybox/m);
    assert.match(listing, /^-rwxr-xr-x.* 1001 .*usr\/bin\/busybox/m);
    assert.match(listing, /^drwxrwxrwt.* tmp/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
