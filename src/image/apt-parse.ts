// Pure parsers for what apt prints, and the dependency-closure computation for `--add` packages.
// Kept free of I/O so that each can be unit-tested from captured apt output.
import { parseDeb822 } from "./sources.ts";

export interface SimulatedInstall {
  name: string;
  version: string;
  arch: string;
}

/**
 * Parses the `Inst` lines of `apt-get -s install ...`, e.g.
 * `Inst libc6 (2.41-12+deb13u4 Debian:13.7/stable [riscv64])`; an upgrade has `[old]` before the
 * parenthesis. With Parley's empty dpkg status this is the full dependency closure.
 */
export function parseSimulatedInstalls(text: string): SimulatedInstall[] {
  const out: SimulatedInstall[] = [];
  for (const line of text.split("\n")) {
    const m = /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+)(?: [^[]*)?(?:\[([^\]]+)\])?/.exec(line);
    if (m) out.push({ name: m[1].replace(/:[a-z0-9]+$/, ""), version: m[2], arch: m[3] ?? "" });
  }
  return out;
}

export interface DlStatus {
  percent: number;
  message: string;
}

/** Parses apt's `APT::Status-Fd` download lines: `dlstatus:ITEM:PERCENT:MESSAGE`. */
export function parseDlStatus(line: string): DlStatus | undefined {
  const m = /^dlstatus:[^:]*:([0-9.]+):(.*)$/.exec(line.trim());
  if (!m) return undefined;
  return { percent: Math.min(100, Math.max(0, Number(m[1]))), message: m[2] };
}

/**
 * Parses a Depends/Pre-Depends value into AND-groups of OR-alternatives, keeping only package
 * names: "libc6 (>= 2.38), debconf (>= 0.5) | debconf-2.0, foo:any" -> [["libc6"], ["debconf",
 * "debconf-2.0"], ["foo"]].
 */
export function parseDependsField(value: string | undefined): string[][] {
  if (!value) return [];
  return value
    .split(",")
    .map((group) =>
      group
        .split("|")
        .map((alt) => alt.trim().replace(/\s*\(.*?\)/g, "").replace(/\s*\[.*?\]/g, "").replace(/\s*<.*?>/g, "").replace(/:\S+$/, "").trim())
        .filter(Boolean),
    )
    .filter((g) => g.length > 0);
}

export interface PackageStanza {
  name: string;
  version: string;
  depends: string[][];
  provides: string[];
  essential: boolean;
  /** The remaining fields, lower-cased keys. */
  fields: Map<string, string>;
}

/** Parses `apt-cache show` / Packages-file output into stanzas. */
export function parsePackageStanzas(text: string): PackageStanza[] {
  return parseDeb822(text)
    .filter((s) => s.has("package"))
    .map((s) => ({
      name: s.get("package")!,
      version: s.get("version") ?? "",
      depends: [...parseDependsField(s.get("pre-depends")), ...parseDependsField(s.get("depends"))],
      provides: parseDependsField(s.get("provides")).flat(),
      essential: (s.get("essential") ?? "").toLowerCase() === "yes",
      fields: s,
    }));
}

/**
 * Packages an initramfs never needs although apt's closure contains them: they only serve dpkg's
 * maintainer scripts (debconf and its perl, dpkg itself, init-system helpers), which Parley does
 * not run, or they are documentation. Their dependencies are dropped too unless something else
 * needs them.
 */
export const SKIPPED_PACKAGES: readonly (string | RegExp)[] = [
  "debconf",
  "cdebconf",
  "debconf-2.0",
  "dpkg",
  "install-info",
  "init-system-helpers",
  "usr-is-merged",
  "sensible-utils",
  /-doc$/,
];

export function isSkippedPackage(name: string, skip: readonly (string | RegExp)[] = SKIPPED_PACKAGES): boolean {
  return skip.some((s) => (typeof s === "string" ? s === name : s.test(name)));
}

/**
 * The packages reachable from `roots` over (Pre-)Depends within `available` (apt's chosen set),
 * without entering skipped packages. For an OR-group the first alternative apt chose (or a package
 * providing it) is followed. Returns names in a stable, sorted order.
 */
export function packageClosure(available: PackageStanza[], roots: string[], skip: readonly (string | RegExp)[] = SKIPPED_PACKAGES): string[] {
  const byName = new Map(available.map((p) => [p.name, p]));
  const providers = new Map<string, string[]>();
  for (const p of available) {
    for (const v of p.provides) providers.set(v, [...(providers.get(v) ?? []), p.name]);
  }
  const resolve = (name: string): string | undefined => (byName.has(name) ? name : providers.get(name)?.[0]);
  const keep = new Set<string>();
  const queue = [...roots];
  while (queue.length) {
    const name = resolve(queue.shift()!);
    if (!name || keep.has(name)) continue;
    keep.add(name);
    for (const group of byName.get(name)!.depends) {
      // The first alternative apt installed wins; when it is a skipped package (e.g. "debconf |
      // debconf-2.0") the whole group is considered satisfied and nothing is followed.
      const chosen = group.map(resolve).find((n) => n !== undefined);
      if (chosen && !isSkippedPackage(chosen, skip)) queue.push(chosen);
    }
  }
  return [...keep].sort();
}
