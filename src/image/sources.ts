// Parses the host's apt sources (both the one-line `.list` format and the deb822 `.sources`
// format) to find the Debian mirror the host already uses. Parley downloads the guest's riscv64
// packages from that mirror so that it works wherever the host's own `apt-get` works (local
// mirrors, caching proxies, firewalled networks), without hard-coding a host name.
// Everything here is pure: the caller reads the files.

export interface AptSource {
  /** "deb" or "deb-src". */
  type: string;
  uri: string;
  suites: string[];
  components: string[];
  /** Options from `[key=value ...]` (one-line) or the extra deb822 fields, keys lower-cased. */
  options: Record<string, string>;
  /** File the entry came from (for messages). */
  file: string;
}

export interface SourceFile {
  /** Path or name, used to pick the format (".sources" is deb822, anything else one-line). */
  name: string;
  text: string;
}

/** Parses one-line entries: `deb [opt=val ...] URI SUITE [COMPONENT...]`. */
export function parseOneLineSources(text: string, file = "sources.list"): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) continue;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue; // malformed lines are apt's problem, not ours: skip them
    const options: Record<string, string> = {};
    for (const opt of (m[2] ?? "").trim().split(/\s+/).filter(Boolean)) {
      const eq = opt.indexOf("=");
      if (eq > 0) options[opt.slice(0, eq).toLowerCase()] = opt.slice(eq + 1);
    }
    out.push({
      type: m[1],
      uri: m[3],
      suites: [m[4]],
      components: m[5].split(/\s+/).filter(Boolean),
      options,
      file,
    });
  }
  return out;
}

/** Parses deb822 stanzas (`Types:`, `URIs:`, `Suites:`, `Components:`), honouring `Enabled: no`. */
export function parseDeb822Sources(text: string, file = "debian.sources"): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of parseDeb822(text)) {
    const field = (k: string) => stanza.get(k.toLowerCase()) ?? "";
    if (field("Enabled").trim().toLowerCase() === "no") continue;
    const types = field("Types").split(/\s+/).filter(Boolean);
    const uris = field("URIs").split(/\s+/).filter(Boolean);
    const suites = field("Suites").split(/\s+/).filter(Boolean);
    const components = field("Components").split(/\s+/).filter(Boolean);
    const options: Record<string, string> = {};
    for (const [k, v] of stanza) {
      if (!["types", "uris", "suites", "components", "enabled"].includes(k)) options[k] = v.trim();
    }
    for (const type of types) {
      for (const uri of uris) out.push({ type, uri, suites, components, options, file });
    }
  }
  return out;
}

/**
 * Splits deb822 text into stanzas of lower-cased field -> value. Continuation lines (leading
 * whitespace) are joined with newlines; "#" comment lines are dropped, as apt does.
 */
export function parseDeb822(text: string): Map<string, string>[] {
  const stanzas: Map<string, string>[] = [];
  let current: Map<string, string> | undefined;
  let lastKey: string | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    if (line.trim() === "") {
      current = undefined;
      lastKey = undefined;
      continue;
    }
    if (/^\s/.test(line)) {
      if (current && lastKey) current.set(lastKey, current.get(lastKey) + "\n" + line.trim());
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    if (!current) {
      current = new Map();
      stanzas.push(current);
    }
    lastKey = line.slice(0, colon).trim().toLowerCase();
    current.set(lastKey, line.slice(colon + 1).trim());
  }
  return stanzas;
}

/** Parses each file in the format its name implies. */
export function parseAptSources(files: SourceFile[]): AptSource[] {
  return files.flatMap((f) => (f.name.endsWith(".sources") ? parseDeb822Sources(f.text, f.name) : parseOneLineSources(f.text, f.name)));
}

/**
 * Debian release names and aliases. A suite is a Debian release when its base (the part before a
 * "-updates"/"-backports"/"-proposed-updates" suffix) is one of these. Ubuntu's, Raspbian's or a
 * third party's suites never match, so their mirrors are not mistaken for Debian's.
 */
const DEBIAN_RELEASES = new Set([
  "stable", "testing", "unstable", "oldstable", "oldoldstable", "experimental", "sid",
  "buzz", "rex", "bo", "hamm", "slink", "potato", "woody", "sarge", "etch", "lenny", "squeeze",
  "wheezy", "jessie", "stretch", "buster", "bullseye", "bookworm", "trixie", "forky", "duke",
]);

export function isDebianSuite(suite: string): boolean {
  return DEBIAN_RELEASES.has(suite.split("-")[0].toLowerCase());
}

/** True for URIs apt can fetch a plain archive from and whose path ends in "/debian". */
export function isDebianArchiveUri(uri: string): boolean {
  const m = /^(https?|ftp|file):(?:\/\/[^/]*)?(\/[^?#]*)?/i.exec(uri);
  if (!m) return false;
  const path = (m[2] ?? "").replace(/\/+$/, "");
  return path.endsWith("/debian");
}

/**
 * The first binary ("deb") entry that is Debian's main archive: its path ends in /debian (so not
 * debian-security, debian-ports or a PPA) and one of its suites is a Debian release. Returns the URI
 * without a trailing slash, or undefined when the host has none (then PARLEY_DEBIAN_MIRROR is needed).
 */
export function findDebianMirror(sources: AptSource[]): string | undefined {
  for (const s of sources) {
    if (s.type !== "deb") continue;
    if (!isDebianArchiveUri(s.uri)) continue;
    if (!s.suites.some(isDebianSuite)) continue;
    return s.uri.replace(/\/+$/, "");
  }
  return undefined;
}
