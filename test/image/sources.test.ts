// The host apt sources parser: both formats, and picking Debian's main archive as the mirror.
import { test } from "node:test";
import assert from "node:assert/strict";
import { findDebianMirror, isDebianArchiveUri, isDebianSuite, parseAptSources, parseDeb822Sources, parseOneLineSources } from "../../src/image/sources.ts";
import { chooseMirror } from "../../src/image/apt.ts";

// As on a Debian 12 cloud image (comments carry snapshot URLs that must not be picked up).
const DEB822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

test("deb822: stanzas, fields, comments", () => {
  const s = parseDeb822Sources(DEB822, "debian.sources");
  assert.equal(s.length, 2);
  assert.deepEqual(s[0], {
    type: "deb",
    uri: "http://deb.debian.org/debian",
    suites: ["bookworm", "bookworm-updates"],
    components: ["main"],
    options: { "signed-by": "/usr/share/keyrings/debian-archive-keyring.gpg" },
    file: "debian.sources",
  });
  assert.equal(s[1].uri, "http://deb.debian.org/debian-security");
});

test("deb822: Enabled: no, several types and URIs, multi-line Signed-By", () => {
  const text = `Types: deb deb-src
URIs: http://mirror.example/debian/ https://other.example/debian
Suites: trixie
Components: main contrib
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 abc
 -----END PGP PUBLIC KEY BLOCK-----

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: trixie
Components: main
`;
  const s = parseDeb822Sources(text);
  assert.deepEqual(s.map((e) => `${e.type} ${e.uri}`), [
    "deb http://mirror.example/debian/",
    "deb https://other.example/debian",
    "deb-src http://mirror.example/debian/",
    "deb-src https://other.example/debian",
  ]);
  assert.match(s[0].options["signed-by"], /BEGIN PGP/);
});

test("one-line: options, comments, deb-src, malformed lines", () => {
  const text = `# comment
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://ftp.example/debian/ bookworm main contrib # trailing
deb-src http://ftp.example/debian bookworm main
deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main
this is not a source line
deb cdrom:[Debian GNU/Linux 12]/ bookworm main
`;
  const s = parseOneLineSources(text, "sources.list");
  assert.equal(s.length, 4);
  assert.deepEqual(s[0], {
    type: "deb",
    uri: "http://ftp.example/debian/",
    suites: ["bookworm"],
    components: ["main", "contrib"],
    options: { arch: "amd64", "signed-by": "/usr/share/keyrings/x.gpg" },
    file: "sources.list",
  });
  assert.equal(s[1].type, "deb-src");
});

test("suite and URI classification", () => {
  for (const s of ["bookworm", "trixie-updates", "bullseye-backports", "sid", "stable", "Testing"]) assert.ok(isDebianSuite(s), s);
  for (const s of ["jammy", "nodistro", "cloud-sdk-bookworm", "focal-security"]) assert.ok(!isDebianSuite(s), s);
  assert.ok(isDebianArchiveUri("http://deb.debian.org/debian"));
  assert.ok(isDebianArchiveUri("https://mirror.example/pub/linux/debian/"));
  assert.ok(isDebianArchiveUri("file:/srv/mirror/debian"));
  assert.ok(!isDebianArchiveUri("http://deb.debian.org/debian-security"));
  assert.ok(!isDebianArchiveUri("http://deb.debian.org/debian-ports"));
  assert.ok(!isDebianArchiveUri("cdrom:[Debian]/"));
  assert.ok(!isDebianArchiveUri("mirror+file:/etc/apt/mirrors.txt"));
});

test("mirror: first Debian archive entry across files, formats mixed", () => {
  const files = [
    { name: "/etc/apt/sources.list", text: "deb http://archive.ubuntu.com/ubuntu jammy main\n" },
    { name: "/etc/apt/sources.list.d/debian.sources", text: DEB822 },
    { name: "/etc/apt/sources.list.d/nodesource.sources", text: "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n" },
  ];
  assert.equal(findDebianMirror(parseAptSources(files)), "http://deb.debian.org/debian");
  // The security archive alone is not a mirror of the main archive.
  assert.equal(findDebianMirror(parseAptSources([{ name: "a.list", text: "deb http://deb.debian.org/debian-security bookworm-security main\n" }])), undefined);
  // deb-src entries are skipped; a trailing slash is dropped.
  assert.equal(
    findDebianMirror(parseOneLineSources("deb-src http://a.example/debian sid main\ndeb http://b.example/debian/ sid main\n")),
    "http://b.example/debian",
  );
});

test("mirror: PARLEY_DEBIAN_MIRROR wins; a clear error when there is none", () => {
  const files = [{ name: "x.sources", text: DEB822 }];
  assert.deepEqual(chooseMirror({ PARLEY_DEBIAN_MIRROR: "http://local.example/debian/" }, files), { uri: "http://local.example/debian", from: "PARLEY_DEBIAN_MIRROR" });
  assert.deepEqual(chooseMirror({}, files), { uri: "http://deb.debian.org/debian", from: "x.sources" });
  assert.throws(() => chooseMirror({}, []), /PARLEY_DEBIAN_MIRROR/);
});
