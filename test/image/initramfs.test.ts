// Initramfs contents: the /init script, skeleton, merged-/usr paths, busybox applets, layering,
// and locating OpenSBI's files in Debian's package.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  INIT_SCRIPT,
  appletLinks,
  busyboxApplets,
  canonicalPackagePath,
  isDroppedPath,
  mergeLayers,
  skeletonEntries,
} from "../../src/image/initramfs.ts";
import { findOpensbi, normalizeAddList } from "../../src/image/build.ts";
import { readCpio, withParentDirs, writeCpio, type CpioEntry } from "../../src/image/cpio.ts";
import { initrdWithPrograms } from "../../src/image/guest-programs.ts";
import { gunzipSync, gzipSync } from "node:zlib";

test("/init is valid POSIX sh (checked with the host's sh -n) and hands over to busybox init, which powers off after the session", () => {
  const r = spawnSync("sh", ["-n"], { input: INIT_SCRIPT, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(INIT_SCRIPT, /^#!\/bin\/sh\n/);
  for (const needle of ["mount -t proc", "mount -t sysfs", "mount -t devtmpfs", "/etc/modules-load.list", "insmod", "setsid cttyhack sh"]) {
    assert.ok(INIT_SCRIPT.includes(needle), needle);
  }
  // PID 1 must be busybox init so that `poweroff`/`reboot` typed in the shell (signals to PID 1) work.
  assert.match(INIT_SCRIPT, /exec \/bin\/busybox init\n`?$/m);
  assert.match(INIT_SCRIPT, /::once:\/etc\/parley\/console/);
  assert.match(INIT_SCRIPT, /\n::ctrlaltdel:\/bin\/poweroff\n/, "Ctrl-Alt-Del from the host powers the guest off");
  assert.match(INIT_SCRIPT, /\npoweroff\nSESSION\n/, "the console session powers off when it ends");
});

test("skeleton: merged /usr, console device, /etc files, executable /init; writable as a cpio", () => {
  const s = skeletonEntries();
  const by = new Map(s.map((e) => [e.path, e]));
  assert.equal(by.get("bin")!.target, "usr/bin");
  assert.equal(by.get("lib")!.target, "usr/lib");
  assert.deepEqual([by.get("dev/console")!.type, by.get("dev/console")!.rdevMajor, by.get("dev/console")!.rdevMinor], ["char", 5, 1]);
  assert.equal(by.get("init")!.mode, 0o755);
  assert.match(new TextDecoder().decode(by.get("etc/passwd")!.data), /^root::0:0:root:\/root:\/bin\/sh$/m);
  assert.equal(by.get("tmp")!.mode, 0o1777);
  assert.ok(writeCpio(withParentDirs(s)).length > 0);
});

test("package paths land in the merged-/usr tree; documentation is dropped", () => {
  assert.equal(canonicalPackagePath("./bin/sh"), "usr/bin/sh");
  assert.equal(canonicalPackagePath("lib/riscv64-linux-gnu/libc.so.6"), "usr/lib/riscv64-linux-gnu/libc.so.6");
  assert.equal(canonicalPackagePath("sbin"), "usr/sbin");
  assert.equal(canonicalPackagePath("library/x"), "library/x");
  assert.equal(canonicalPackagePath("usr/lib/x"), "usr/lib/x");
  assert.ok(isDroppedPath("usr/share/doc/libc6/copyright"));
  assert.ok(isDroppedPath("usr/share/man"));
  assert.ok(isDroppedPath("usr/share/locale/de/LC_MESSAGES/x.mo"));
  assert.ok(!isDroppedPath("usr/share/docs-but-not-doc"));
  assert.ok(!isDroppedPath("usr/lib/riscv64-linux-gnu/libc.so.6"));
});

test("busybox applet table is read from the binary", () => {
  const blob = Buffer.concat([
    Buffer.from([0x13, 0x00, 0x20]),
    Buffer.from("[\0[[\0acpid\0ash\0cat\0cttyhack\0sh\0zcat\0\0/var/log/wtmp\0-/bin/sh\0", "latin1"),
  ]);
  assert.deepEqual(busyboxApplets(blob), ["[", "[[", "acpid", "ash", "cat", "cttyhack", "sh", "zcat"]);
  assert.deepEqual(busyboxApplets(Buffer.from("no table here")), []);
  const links = appletLinks(["busybox", "sh"]);
  assert.deepEqual(links, [{ path: "usr/bin/sh", type: "symlink", mode: 0o777, target: "busybox" }]);
});

test("layers: packages replace applet links, Parley's files win, directories keep the first entry", () => {
  const file = (path: string, content: string): CpioEntry => ({ path, type: "file", mode: 0o644, data: Buffer.from(content) });
  const merged = mergeLayers(
    [{ path: "tmp", type: "dir", mode: 0o1777 }, file("etc/passwd", "skeleton")],
    appletLinks(["ls", "mount"]),
    [{ path: "tmp", type: "dir", mode: 0o755 }, file("usr/bin/ls", "coreutils"), file("etc/passwd", "package")],
    [file("etc/passwd", "parley")],
  );
  const by = new Map(merged.map((e) => [e.path, e]));
  assert.equal(by.get("tmp")!.mode, 0o1777);
  assert.equal(by.get("usr/bin/ls")!.type, "file");
  assert.equal(by.get("usr/bin/mount")!.type, "symlink");
  assert.equal(Buffer.from(by.get("etc/passwd")!.data!).toString(), "parley");
  assert.equal(merged.length, new Set(merged.map((e) => e.path)).size);
});

test("OpenSBI: generic rv64 firmware from the package's file list", () => {
  const trixie = [
    "usr/share/doc/opensbi/docs/firmware/fw_jump.md",
    "usr/lib/riscv32-linux-gnu/opensbi/generic/fw_jump.bin",
    "usr/lib/riscv32-linux-gnu/opensbi/generic/fw_dynamic.elf",
    "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.elf",
    "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf",
    "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin",
    "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin",
  ];
  assert.deepEqual(findOpensbi(trixie), {
    fwJump: "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin",
    fwDynamic: "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin",
    fwJumpElf: "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf",
    fwDynamicElf: "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.elf",
  });
  // Older layout (bullseye/bookworm).
  assert.deepEqual(findOpensbi(["usr/lib/riscv-firmware/lp64/generic/fw_jump.bin", "usr/share/opensbi/lp64/generic/firmware/fw_dynamic.elf"]), {
    fwJump: "usr/lib/riscv-firmware/lp64/generic/fw_jump.bin",
    fwDynamicElf: "usr/share/opensbi/lp64/generic/firmware/fw_dynamic.elf",
  });
});

test("--add list: split, de-duplicated, sorted, validated", () => {
  assert.deepEqual(normalizeAddList(["strace", "e2fsprogs,strace", " kmod  util-linux"]), ["e2fsprogs", "kmod", "strace", "util-linux"]);
  assert.deepEqual(normalizeAddList(undefined), []);
  assert.throws(() => normalizeAddList(["../etc"]), /not a Debian package name/);
  assert.throws(() => normalizeAddList(["Foo"]), /not a Debian package name/);
});

test("initrdWithPrograms: the base archive unchanged, then a second gzip archive on a 4-byte boundary with /usr/bin/NAME", () => {
  const base = new Uint8Array(gzipSync(writeCpio(withParentDirs([{ path: "usr/bin/busybox", type: "file", mode: 0o755, data: new Uint8Array([1, 2, 3]) }]))));
  const program = new TextEncoder().encode("\x7fELF program");
  const out = initrdWithPrograms(base, { "smp-litmus": program });
  assert.deepEqual(out.subarray(0, base.length), base);
  const second = (base.length + 3) & ~3;
  assert.ok(out.subarray(base.length, second).every((b) => b === 0), "padding is zeros");
  const added = readCpio(gunzipSync(out.subarray(second)));
  const file = added.find((e) => e.path === "usr/bin/smp-litmus");
  assert.ok(file && file.type === "file" && file.mode === 0o755);
  assert.deepEqual(new Uint8Array(file.data!), program);
  assert.ok(added.some((e) => e.path === "usr/bin" && e.type === "dir"), "parent directories come first");
  assert.throws(() => initrdWithPrograms(base, { "../evil": program }), /bad program name/);
});

