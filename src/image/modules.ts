// Kernel-module bookkeeping for the initramfs: module names, the `.modinfo` section of a .ko,
// modules.dep (read and written in depmod's format) and the load order. Debian's package does not
// ship modules.dep (its postinst runs depmod), so Parley reads each needed module's own
// "depends=" and "softdep=" fields instead and writes a modules.dep for the subset it copies.

/** "kernel/drivers/char/hw_random/virtio-rng.ko.xz" -> "virtio_rng" (the kernel treats - and _ alike). */
export function moduleName(pathOrName: string): string {
  const base = pathOrName.slice(pathOrName.lastIndexOf("/") + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, "").replace(/-/g, "_");
}

/** Strips the compression suffix: the path a module has once decompressed. */
export function uncompressedModulePath(path: string): string {
  return path.replace(/\.ko\.(xz|zst|gz)$/, ".ko");
}

/**
 * Reads the NUL-separated "key=value" strings of the `.modinfo` section of a (decompressed)
 * little-endian ELF64 module. Repeated keys (alias, firmware, ...) accumulate.
 */
export function parseModinfo(elf: Uint8Array): Map<string, string[]> {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.length < 64 || view.getUint32(0, false) !== 0x7f454c46) throw new Error("module is not an ELF file (still compressed?)");
  if (elf[4] !== 2 || elf[5] !== 1) throw new Error("module is not a little-endian ELF64 file");
  const shoff = Number(view.getBigUint64(0x28, true));
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  const shstrndx = view.getUint16(0x3e, true);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return { name: view.getUint32(at, true), offset: Number(view.getBigUint64(at + 24, true)), size: Number(view.getBigUint64(at + 32, true)) };
  };
  const names = section(shstrndx);
  const cstr = (off: number) => {
    let end = off;
    while (end < elf.length && elf[end] !== 0) end++;
    return Buffer.from(elf.subarray(off, end)).toString("latin1");
  };
  const out = new Map<string, string[]>();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (cstr(names.offset + s.name) !== ".modinfo") continue;
    const text = Buffer.from(elf.subarray(s.offset, s.offset + s.size)).toString("latin1");
    for (const item of text.split("\0")) {
      const eq = item.indexOf("=");
      if (eq <= 0) continue;
      const key = item.slice(0, eq);
      out.set(key, [...(out.get(key) ?? []), item.slice(eq + 1)]);
    }
  }
  return out;
}

/** Hard dependencies from modinfo's "depends=a,b" (empty string means none). */
export function modinfoDepends(info: Map<string, string[]>): string[] {
  return (info.get("depends") ?? []).flatMap((d) => d.split(",")).map((d) => d.trim()).filter(Boolean).map(moduleName);
}

/** The "pre:" part of modinfo's "softdep=pre: a b post: c" entries (modules to load first). */
export function modinfoSoftdepPre(info: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const spec of info.get("softdep") ?? []) {
    let mode = "";
    for (const word of spec.split(/\s+/).filter(Boolean)) {
      if (word === "pre:" || word === "post:") mode = word;
      else if (mode === "pre:") out.push(word);
    }
  }
  return out;
}

/** Parses depmod's modules.dep: "kernel/a.ko: kernel/b.ko kernel/c.ko" -> path -> dependency paths. */
export function parseModulesDep(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0 || line.startsWith("#")) continue;
    out.set(line.slice(0, colon).trim(), line.slice(colon + 1).split(/\s+/).filter(Boolean));
  }
  return out;
}

/**
 * Writes modules.dep in depmod's convention: each line lists the module's transitive dependencies,
 * the ones to load first last (modprobe walks the list backwards). `deps` maps path -> direct deps.
 */
export function formatModulesDep(deps: Map<string, string[]>): string {
  let text = "";
  for (const path of deps.keys()) {
    const order = orderModules(deps, [path]).filter((p) => p !== path);
    text += `${path}:${order.length ? " " + order.reverse().join(" ") : ""}\n`;
  }
  return text;
}

/**
 * Load order for `wanted` (paths as used in `deps`): every module after all of its dependencies,
 * otherwise in the order wanted. Throws on a dependency cycle or an unknown dependency.
 */
export function orderModules(deps: Map<string, string[]>, wanted: string[]): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (path: string, chain: string[]) => {
    const s = state.get(path);
    if (s === "done") return;
    if (s === "visiting") throw new Error(`module dependency cycle: ${[...chain, path].join(" -> ")}`);
    const direct = deps.get(path);
    if (!direct) throw new Error(`module ${path} is not in modules.dep${chain.length ? ` (needed by ${chain[chain.length - 1]})` : ""}`);
    state.set(path, "visiting");
    for (const d of direct) visit(d, [...chain, path]);
    state.set(path, "done");
    order.push(path);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

/** Names of the built-in modules from modules.builtin (one "kernel/.../x.ko" path per line). */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(text.split("\n").map((l) => l.trim()).filter(Boolean).map(moduleName));
}

export interface ModuleInfo {
  depends: string[];
  softdepPre: string[];
}

export interface ModuleClosure {
  /** Paths (as in the index, possibly compressed) in load order. */
  order: string[];
  /** Direct dependencies (hard + soft "pre") by path, for modules.dep and ordering. */
  deps: Map<string, string[]>;
  /** Hard dependencies only, by path (what depmod would write). */
  hardDeps: Map<string, string[]>;
  /** Requested names that are compiled into the kernel. */
  builtin: string[];
  /** Requested names that are neither modules nor built in. */
  missing: string[];
  /** Soft dependencies that could not be resolved to a module (logged, not fatal). */
  unresolvedSoftdeps: string[];
}

/**
 * Resolves a soft dependency name to a module name. Soft dependencies often name a crypto alias
 * ("crypto-crc32c") rather than a module; resolving aliases in general needs every module's
 * aliases (i.e. decompressing all ~3000 of them), so the crypto API's naming convention is used:
 * "crypto-X" is provided by module X or X_generic.
 */
export function resolveSoftdep(name: string, modules: Map<string, string>, builtin: Set<string>): string | "builtin" | undefined {
  const base = moduleName(name.replace(/^crypto-/, ""));
  for (const candidate of [moduleName(name), base, `${base}_generic`]) {
    if (modules.has(candidate)) return candidate;
    if (builtin.has(candidate)) return "builtin";
  }
  return undefined;
}

/**
 * Computes which module files to copy and in which order to load them. `modules` maps module name
 * -> path; `readInfo` returns a module's dependencies (it decompresses and parses the file).
 */
export async function resolveModuleClosure(
  wanted: string[],
  modules: Map<string, string>,
  builtin: Set<string>,
  readInfo: (path: string) => Promise<ModuleInfo>,
): Promise<ModuleClosure> {
  const deps = new Map<string, string[]>();
  const hardDeps = new Map<string, string[]>();
  const result: ModuleClosure = { order: [], deps, hardDeps, builtin: [], missing: [], unresolvedSoftdeps: [] };
  const roots: string[] = [];
  for (const w of wanted.map(moduleName)) {
    if (modules.has(w)) roots.push(modules.get(w)!);
    else if (builtin.has(w)) result.builtin.push(w);
    else result.missing.push(w);
  }
  const queue = [...roots];
  while (queue.length) {
    const path = queue.shift()!;
    if (deps.has(path)) continue;
    const info = await readInfo(path);
    const hard: string[] = [];
    for (const d of info.depends) {
      const p = modules.get(moduleName(d));
      if (!p) throw new Error(`module ${moduleName(path)} depends on ${d}, which is not in the kernel package`);
      hard.push(p);
    }
    const soft: string[] = [];
    for (const s of info.softdepPre) {
      const r = resolveSoftdep(s, modules, builtin);
      if (r === undefined) result.unresolvedSoftdeps.push(`${moduleName(path)}: ${s}`);
      else if (r !== "builtin") soft.push(modules.get(r)!);
    }
    hardDeps.set(path, hard);
    deps.set(path, [...soft, ...hard]);
    queue.push(...soft, ...hard);
  }
  result.order = orderModules(deps, roots);
  return result;
}
