// Parsers for apt's output, the --add closure, and the private apt configuration text.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isSkippedPackage, packageClosure, parseDependsField, parseDlStatus, parsePackageStanzas, parseSimulatedInstalls } from "../../src/image/apt-parse.ts";
import { aptConfText, aptPaths, checkHostTools, debFileName, findOnPath, listFilePrefix, packageRef, proxyConfLines, sourcesListText } from "../../src/image/apt.ts";

test("apt-get -s install: Inst lines give the closure with versions", () => {
  const out = `Reading package lists...
Building dependency tree...
The following NEW packages will be installed:
  gcc-14-base libc6 libgcc-s1 strace
Inst gcc-14-base (14.2.0-19 Debian:13.7/stable [riscv64])
Inst libgcc-s1 (14.2.0-19 Debian:13.7/stable [riscv64]) []
Inst libc6 (2.41-12+deb13u4 Debian:13.7/stable [riscv64])
Inst opensbi (1.6-1 Debian:13.7/stable [all])
Inst busybox-static [1:1.36.1-9] (1:1.37.0-6+b9 Debian:13.7/stable [riscv64])
Conf libc6 (2.41-12+deb13u4 Debian:13.7/stable [riscv64])
`;
  assert.deepEqual(parseSimulatedInstalls(out), [
    { name: "gcc-14-base", version: "14.2.0-19", arch: "riscv64" },
    { name: "libgcc-s1", version: "14.2.0-19", arch: "riscv64" },
    { name: "libc6", version: "2.41-12+deb13u4", arch: "riscv64" },
    { name: "opensbi", version: "1.6-1", arch: "all" },
    { name: "busybox-static", version: "1:1.37.0-6+b9", arch: "riscv64" },
  ]);
});

test("APT::Status-Fd download lines", () => {
  assert.deepEqual(parseDlStatus("dlstatus:2:46.7949:Retrieving file 2 of 3"), { percent: 46.7949, message: "Retrieving file 2 of 3" });
  assert.deepEqual(parseDlStatus("dlstatus:3:100.0000:Retrieving file 3 of 3\n"), { percent: 100, message: "Retrieving file 3 of 3" });
  assert.equal(parseDlStatus("pmstatus:dpkg:10:Installing"), undefined);
});

test("Depends fields: versions, arch qualifiers, alternatives", () => {
  assert.deepEqual(parseDependsField("libc6 (>= 2.38), debconf (>= 0.5) | debconf-2.0, perl:any, libfoo [amd64] <!nocheck>"), [
    ["libc6"],
    ["debconf", "debconf-2.0"],
    ["perl"],
    ["libfoo"],
  ]);
  assert.deepEqual(parseDependsField(undefined), []);
  assert.deepEqual(parseDependsField("linux-image-6.12.107+deb13-riscv64 (= 6.12.107-1)"), [["linux-image-6.12.107+deb13-riscv64"]]);
});

const STANZAS = `Package: foo
Version: 1.0-1
Architecture: riscv64
Depends: libc6 (>= 2.38), debconf (>= 0.5) | debconf-2.0, awk
Pre-Depends: init-system-helpers (>= 1.54~)
Size: 1234
SHA256: ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789

Package: libc6
Version: 2.41-12
Architecture: riscv64
Depends: libgcc-s1

Package: libgcc-s1
Version: 14.2.0-19
Architecture: riscv64
Depends: gcc-14-base (= 14.2.0-19), libc6 (>= 2.35)

Package: gcc-14-base
Version: 14.2.0-19
Architecture: riscv64

Package: debconf
Version: 1.5.91
Architecture: all
Pre-Depends: perl-base (>= 5.20.1-3~)
Provides: debconf-2.0

Package: perl-base
Version: 5.40.1-6
Architecture: riscv64
Essential: yes

Package: init-system-helpers
Version: 1.68
Architecture: all
Depends: perl-base

Package: mawk
Version: 1.3.4
Architecture: riscv64
Provides: awk
`;

test("apt-cache show stanzas", () => {
  const s = parsePackageStanzas(STANZAS);
  assert.equal(s.length, 8);
  assert.deepEqual(s[0].depends, [["init-system-helpers"], ["libc6"], ["debconf", "debconf-2.0"], ["awk"]]);
  assert.equal(s[5].essential, true);
  assert.deepEqual(s[4].provides, ["debconf-2.0"]);
  assert.deepEqual(packageRef(s[0]), { name: "foo", version: "1.0-1", arch: "riscv64", size: 1234, sha256: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789" });
});

test("--add closure follows dependencies and virtual packages but not maintainer-script helpers", () => {
  const s = parsePackageStanzas(STANZAS);
  // debconf, init-system-helpers and (only through them) perl-base are left out; awk -> mawk.
  assert.deepEqual(packageClosure(s, ["foo"]), ["foo", "gcc-14-base", "libc6", "libgcc-s1", "mawk"]);
  // A package asked for explicitly is kept even if it is on the skip list.
  assert.deepEqual(packageClosure(s, ["debconf"]), ["debconf", "perl-base"]);
  assert.ok(isSkippedPackage("glibc-doc"));
  assert.ok(!isSkippedPackage("libc6"));
});

test("file names apt-get download saves under", () => {
  assert.equal(debFileName({ name: "busybox-static", version: "1:1.37.0-6+b9", arch: "riscv64" }), "busybox-static_1%3a1.37.0-6+b9_riscv64.deb");
  assert.equal(debFileName({ name: "opensbi", version: "1.6-1", arch: "all" }), "opensbi_1.6-1_all.deb");
});

test("private apt configuration: own directories, riscv64 only, trixie with Debian's keyring", () => {
  const paths = aptPaths("/c");
  const conf = aptConfText(paths, { asRoot: true, extra: ['Acquire::http::Proxy "http://proxy:3128";'] });
  for (const line of [
    'Dir::Etc "/c/apt/etc";',
    'Dir::State "/c/apt/state";',
    'Dir::State::status "/c/apt/state/status";',
    'Dir::Cache "/c/apt/cache";',
    'APT::Architecture "riscv64";',
    'APT::Architectures { "riscv64"; };',
    'APT::Sandbox::User "root";',
    'Acquire::http::Proxy "http://proxy:3128";',
  ]) {
    assert.ok(conf.includes(line), line);
  }
  assert.ok(!aptConfText(paths, { asRoot: false }).includes("Sandbox"));
  assert.throws(() => aptConfText(aptPaths('/we"ird'), { asRoot: false }));
  assert.equal(
    sourcesListText("http://m.example/debian", "/usr/share/keyrings/debian-archive-keyring.gpg").split("\n").filter((l) => l.startsWith("deb ")).join("\n"),
    "deb [arch=riscv64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m.example/debian trixie main",
  );
});

test("only proxy settings are taken from the host's apt configuration", () => {
  const dump = `APT "";
APT::Architecture "amd64";
Acquire::http::Proxy "http://proxy.example:3128/";
Acquire::http::Proxy::deb.example "DIRECT";
Acquire::https::Proxy "http://proxy.example:3128/";
Dir::Cache "var/cache/apt/";
`;
  assert.deepEqual(proxyConfLines(dump), [
    'Acquire::http::Proxy "http://proxy.example:3128/";',
    'Acquire::http::Proxy::deb.example "DIRECT";',
    'Acquire::https::Proxy "http://proxy.example:3128/";',
  ]);
});

test("list file names apt uses for a mirror", () => {
  assert.equal(listFilePrefix("http://deb.debian.org/debian", "trixie"), "deb.debian.org_debian_dists_trixie_");
  assert.equal(listFilePrefix("https://user:pw@m.example:8080/pub/debian/", "trixie"), "m.example:8080_pub_debian_dists_trixie_");
  assert.equal(listFilePrefix("http://m.example/~me/debian", "sid"), "m.example_%7eme_debian_dists_sid_");
});

test("missing host programs are named with their Debian packages", () => {
  assert.throws(() => checkHostTools("/nonexistent"), /apt-get, apt-cache, apt-config, dpkg-deb not found.*apt-get install apt dpkg/);
  assert.equal(findOnPath("sh", "/nonexistent:/bin:/usr/bin") !== undefined, true);
});
