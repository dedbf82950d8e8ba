// `parley image build`: assembles the guest's boot files from Debian trixie riscv64 packages —
// the stock kernel (as an uncompressed RISC-V Image), Debian's OpenSBI firmware, and an initramfs
// (busybox, an /init script, the virtio/vsock/ext4 modules, optional extra packages) written by
// Parley's own cpio writer. Results are cached in cache/image/<key>/, keyed by the package
// versions, the --add list and the build's own inputs, so a rebuild happens only when one changes.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { gunzipSync, gzip } from "node:zlib";
import { CACHE_DIR, REPO_ROOT } from "../host/node/paths.ts";
import { ARCH, ImageBuildError, PrivateApt, SUITE, packageRef, type PackageRef } from "./apt.ts";
import { SKIPPED_PACKAGES, packageClosure, type PackageStanza } from "./apt-parse.ts";
import { withParentDirs, writeCpio, type CpioEntry } from "./cpio.ts";
import { INIT_SCRIPT, PROFILE, REQUIRED_APPLETS, appletLinks, busyboxApplets, canonicalPackagePath, collectTree, mergeLayers, skeletonEntries } from "./initramfs.ts";
import { classifyKernel, findLinuxBanner, parseRiscvImageHeader } from "./kernel.ts";
import { formatModulesDep, modinfoDepends, modinfoSoftdepPre, moduleName, parseModinfo, parseModulesBuiltin, resolveModuleClosure, uncompressedModulePath } from "./modules.ts";
import { Reporter, formatBytes } from "./progress.ts";

const execFileP = promisify(execFile);

export interface GuestImage {
  /** Uncompressed RISC-V Linux Image (header magic "RISCV\0\0\0" at 0x30, "RSC\x05" at 0x38). */
  kernel: string;
  /** gzip-compressed newc cpio. */
  initrd: string;
  /** `uname -r` of the kernel, e.g. "6.12.43+deb13-riscv64". */
  kernelVersion: string;
  /** Names of the kernel modules in the initramfs, in the order /init loads them. */
  modulesIncluded: string[];
  /** Debian's OpenSBI for the generic platform: raw images (load at the start of RAM) and ELF files. */
  opensbi: { fwJump?: string; fwDynamic?: string; fwJumpElf?: string; fwDynamicElf?: string };
  /** Every Debian package used: name -> version. */
  packages: Record<string, string>;
  /** Requested modules that the kernel has built in (no file needed). */
  modulesBuiltin: string[];
  /** The kernel's build configuration (/boot/config-VERSION). */
  config: string;
  /** The cache directory holding all of the above. */
  dir: string;
}

export interface BuildImageOptions {
  /** Further Debian riscv64 packages to put into the initramfs, with their dependencies. */
  add?: string[];
  /** Refresh the package lists and rebuild even if a cached image matches. */
  force?: boolean;
  /** Show a spinner and download bars on stderr (when it is a terminal). */
  progress?: boolean;
  /** Receives one line per step; defaults to stderr when progress is on, else silence. */
  log?: (line: string) => void;
}

/**
 * Modules the guest's devices need, by kernel module name. Those built into Debian's kernel are
 * reported, not copied; the rest are copied with their dependencies and loaded by /init.
 */
export const GUEST_MODULES = [
  "virtio", "virtio_ring", "virtio_pci", "virtio_mmio",
  "virtio_blk", "virtio_net", "net_failover", "failover",
  "virtio_console", "virtio_rng", "virtio_balloon", "virtio_input",
  "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
  "rtc_goldfish",
  // Shared folders (parley run --share): Linux's virtio-9p client and the 9P filesystem.
  "9pnet", "9pnet_virtio", "9p",
  "ext4", "jbd2", "mbcache", "crc16", "crc32c_generic",
  "8250", "8250_of",
];

const KERNEL_META = "linux-image-riscv64";
/**
 * busybox-static needs no libraries, but its shell always prefers its own applets to programs on
 * PATH (Debian builds it with FEATURE_SH_STANDALONE). With --add packages, whose programs (ip,
 * mount, ls ...) must win, Debian's dynamically linked busybox is used instead: it honours PATH,
 * and the libc it needs comes along with practically every added package anyway.
 */
const BUSYBOX_STATIC = "busybox-static";
const BUSYBOX_DYNAMIC = "busybox";
const OPENSBI = "opensbi";
/** Bump when the output layout changes in a way the hashed inputs below do not capture. */
const BUILD_FORMAT = 1;

const IMAGE_ROOT = () => join(CACHE_DIR, "image");

/** A path for log lines: relative to the working directory when below it, else absolute. */
export function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith("..") ? rel : path;
}

/** Files in src/image that build guest programs or the root disk, not the image: changing them keeps the cached image. */
const NOT_IMAGE_SOURCES = new Set(["toolchain.ts", "guest-programs.ts", "rootfs.ts"]);

/** Hash of everything in Parley that shapes the image: the init script, module list, build code. */
export function buildInputsHash(): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ BUILD_FORMAT, INIT_SCRIPT, PROFILE, GUEST_MODULES, skip: SKIPPED_PACKAGES.map(String), SUITE, ARCH }));
  const srcDir = join(REPO_ROOT, "src/image");
  if (existsSync(srcDir)) {
    for (const f of readdirSync(srcDir).sort()) {
      if (f.endsWith(".ts") && !f.endsWith(".test.ts") && !NOT_IMAGE_SOURCES.has(f)) h.update(f + "\0").update(readFileSync(join(srcDir, f)));
    }
  }
  return h.digest("hex").slice(0, 16);
}

export function normalizeAddList(add: string[] | undefined): string[] {
  const names = [...new Set((add ?? []).flatMap((a) => a.split(/[\s,]+/)).filter(Boolean))].sort();
  for (const n of names) if (!/^[a-z0-9][a-z0-9+.-]+$/.test(n)) throw new ImageBuildError(`--add ${n}: not a Debian package name`);
  return names;
}

const addKey = (add: string[]) => (add.length ? createHash("sha256").update(add.join("\n")).digest("hex").slice(0, 12) : "default");
const pointerPath = (add: string[]) => join(IMAGE_ROOT(), `current-${addKey(add)}.json`);

interface Pointer {
  key: string;
  inputs: string;
  listsStamp?: number;
  debs: string[];
  add: string[];
}

/** A JSON file's content, or undefined when it is missing or not JSON. */
export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** Loads a finished image directory (image.json with file names relative to it). */
export function readGuestImage(dir: string): GuestImage | undefined {
  const meta = readJson<GuestImage>(join(dir, "image.json"));
  if (!meta) return undefined;
  const abs = (f: string | undefined) => (f === undefined ? undefined : join(dir, f));
  const image: GuestImage = {
    ...meta,
    kernel: abs(meta.kernel)!,
    initrd: abs(meta.initrd)!,
    config: abs(meta.config)!,
    opensbi: Object.fromEntries(Object.entries(meta.opensbi).map(([k, v]) => [k, abs(v)])),
    dir,
  };
  const files = [image.kernel, image.initrd, ...Object.values(image.opensbi)];
  return files.every((f) => f && existsSync(f)) ? image : undefined;
}

/** The image last built (for these --add packages), without touching the network; undefined if none or stale. */
export async function cachedGuestImage(opts: { add?: string[] } = {}): Promise<GuestImage | undefined> {
  const add = normalizeAddList(opts.add);
  const ptr = readJson<Pointer>(pointerPath(add));
  if (!ptr || ptr.inputs !== buildInputsHash()) return undefined;
  return readGuestImage(join(IMAGE_ROOT(), ptr.key));
}

/** Builds (or returns the cached) guest kernel, initramfs and firmware. */
export async function buildGuestImage(opts: BuildImageOptions = {}): Promise<GuestImage> {
  const reporter = new Reporter(opts);
  const started = Date.now();
  const add = normalizeAddList(opts.add);
  const inputs = buildInputsHash();
  mkdirSync(IMAGE_ROOT(), { recursive: true });
  return withLock(join(IMAGE_ROOT(), ".lock"), reporter, async () => {
    const apt = await PrivateApt.open(CACHE_DIR, reporter);
    const ptr = readJson<Pointer>(pointerPath(add));
    // Fast path: nothing can have changed if the lists are the ones the last build resolved against.
    if (!opts.force && ptr && ptr.inputs === inputs && apt.listsFresh() && ptr.listsStamp === apt.listsStamp()) {
      const image = readGuestImage(join(IMAGE_ROOT(), ptr.key));
      if (image) {
        reporter.log(`guest image up to date: Linux ${image.kernelVersion} (${shown(image.dir)})`);
        return image;
      }
    }
    await apt.update(opts.force);

    const resolved = await resolvePackages(apt, add, reporter);
    const { kernelVersion, core, extra, sortedPackages } = resolved;
    const key = `${kernelVersion}-${createHash("sha256").update(JSON.stringify({ packages: sortedPackages, add, inputs })).digest("hex").slice(0, 12)}`;
    const outDir = join(IMAGE_ROOT(), key);

    const debs = await apt.download([...core, ...extra]);
    const debNames = debs.map((d) => d.slice(d.lastIndexOf("/") + 1));
    const pointer: Pointer = { key, inputs, listsStamp: apt.listsStamp(), debs: debNames, add };
    if (!opts.force) {
      const cached = readGuestImage(outDir);
      if (cached) {
        writeFileSync(pointerPath(add), JSON.stringify(pointer, null, 2) + "\n");
        reporter.log(`guest image up to date: Linux ${kernelVersion} (${shown(outDir)})`);
        return cached;
      }
    }

    const tmp = `${outDir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      await assembleImage(tmp, { apt, debs, ...resolved }, reporter);
      rmSync(outDir, { recursive: true, force: true });
      renameSync(tmp, outDir);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
    writeFileSync(pointerPath(add), JSON.stringify(pointer, null, 2) + "\n");
    prune(apt.paths.debs, apt.paths.extract, inputs, reporter);
    const image = readGuestImage(outDir)!;
    reporter.log(`guest image ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${shown(outDir)}`);
    return image;
  });
}

/** What the image is built from: the kernel behind the metapackage, busybox, OpenSBI, --add closure. */
async function resolvePackages(apt: PrivateApt, add: string[], reporter: Reporter) {
  const busyboxName = add.length ? BUSYBOX_DYNAMIC : BUSYBOX_STATIC;
  const wanted = [KERNEL_META, OPENSBI, busyboxName];
  const offered = await apt.show(wanted);
  const [meta, opensbi, busybox] = wanted.map((n) => offered.find((p) => p.name === n));
  if (!meta || !busybox || !opensbi) throw new ImageBuildError(`Debian ${SUITE} ${ARCH} lacks ${wanted.filter((n) => !offered.some((p) => p.name === n)).join(", ")}`);
  const kernelPkgName = meta.depends.flat().find((d) => /^linux-image-\d/.test(d));
  if (!kernelPkgName) throw new ImageBuildError(`${KERNEL_META} ${meta.version} depends on no versioned linux-image package (Depends: ${meta.fields.get("depends")})`);
  const [kernelPkg] = await apt.show([kernelPkgName]);
  const kernelVersion = kernelPkgName.replace(/^linux-image-/, "").replace(/-unsigned$/, "");
  reporter.log(`Debian ${SUITE} ${ARCH}: ${KERNEL_META} ${meta.version} -> ${kernelPkg.name} ${kernelPkg.version}; ${busyboxName} ${busybox.version}; ${OPENSBI} ${opensbi.version}`);

  // The dynamic busybox joins the --add closure (for its libc); busybox-static stands alone.
  const core: PackageRef[] = [kernelPkg, opensbi, ...(add.length ? [] : [busybox])].map(packageRef);
  let extra: PackageRef[] = [];
  if (add.length) {
    const roots = [...add, BUSYBOX_DYNAMIC];
    const sim = await apt.simulateInstall(roots);
    const stanzas = await apt.show(sim.map((s) => `${s.name}=${s.version}`));
    const keep = new Set(packageClosure(stanzas, roots));
    const skipped = sim.filter((s) => !keep.has(s.name)).map((s) => s.name);
    // A core package named in --add (say, opensbi) is already there: do not fetch it twice.
    extra = stanzas.filter((s) => keep.has(s.name) && !core.some((c) => c.name === s.name)).map(packageRef);
    reporter.log(`--add ${add.join(" ")}: ${extra.length} packages (${extra.map((p) => p.name).join(" ")})${skipped.length ? `; left out (maintainer-script/doc only): ${skipped.join(" ")}` : ""}`);
  }
  const packages: Record<string, string> = { [KERNEL_META]: meta.version };
  for (const p of [...core, ...extra]) packages[p.name] = p.version;
  const sortedPackages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => a.localeCompare(b)));
  return { kernelPkg, kernelVersion, opensbi, busybox, busyboxName, core, extra, sortedPackages };
}

interface ImageInputs {
  apt: PrivateApt;
  debs: string[];
  core: PackageRef[];
  extra: PackageRef[];
  kernelPkg: PackageStanza;
  kernelVersion: string;
  opensbi: PackageStanza;
  busybox: PackageStanza;
  busyboxName: string;
  sortedPackages: Record<string, string>;
}

/** Writes the image's files into `tmp`: kernel Image and config, OpenSBI, the initramfs, image.json. */
async function assembleImage(tmp: string, inputs: ImageInputs, reporter: Reporter): Promise<void> {
  const { apt, debs, core, extra, kernelPkg, kernelVersion, opensbi, busybox, busyboxName, sortedPackages } = inputs;
  // The kernel package dominates (xz-compressed data.tar, ~5 s); the others extract meanwhile.
  const trees = await reporter.step(`extracting ${debs.length} package${debs.length > 1 ? "s" : ""} with dpkg-deb`, () => mapLimit(debs, 4, (d) => apt.extract(d)));
  const treeOf = (name: string) => trees[[...core, ...extra].findIndex((p) => p.name === name)];
  const [kernelTree, opensbiTree, busyboxTree] = [kernelPkg.name, OPENSBI, busyboxName].map(treeOf);
  const extraTrees = trees.slice(core.length);

  const kernelInfo = await reporter.step(`kernel ${kernelVersion}: writing the uncompressed Image`, () => writeKernelImage(kernelTree, kernelVersion, join(tmp, "Image")));
  reporter.log(`kernel: ${kernelInfo.source} is ${kernelInfo.format}; Image ${formatBytes(kernelInfo.size)}, text_offset 0x${kernelInfo.textOffset.toString(16)}, ${kernelInfo.banner}`);
  copyFileSync(join(kernelTree, "boot", `config-${kernelVersion}`), join(tmp, "config"));

  const firmware = findOpensbi(listFiles(opensbiTree));
  const opensbiOut: GuestImage["opensbi"] = {};
  for (const [k, rel] of Object.entries(firmware) as [keyof GuestImage["opensbi"], string][]) {
    const name = rel.slice(rel.lastIndexOf("/") + 1);
    copyFileSync(join(opensbiTree, rel), join(tmp, name));
    opensbiOut[k] = name;
  }
  if (!opensbiOut.fwJump && !opensbiOut.fwDynamic) throw new ImageBuildError(`${OPENSBI} ${opensbi.version}: no generic-platform fw_jump/fw_dynamic for rv64 found`);
  reporter.log(`opensbi: ${Object.values(firmware).map((f) => "/" + f).join(", ")}`);

  const mods = await reporter.step(`kernel modules: resolving dependencies of ${GUEST_MODULES.length} requested modules`, () => collectModules(kernelTree, kernelVersion));
  reporter.log(`modules: ${mods.names.length} to load (${mods.names.join(" ")}); built in: ${mods.builtin.join(" ")}`);
  if (mods.missing.length) reporter.log(`warning: modules neither built in nor in ${kernelPkg.name}: ${mods.missing.join(" ")}`);
  for (const s of mods.unresolvedSoftdeps) reporter.log(`note: soft dependency not resolved: ${s}`);

  const initrd = await reporter.step("initramfs: writing the cpio archive", async () => {
    const busyboxBin = readFileSync(join(busyboxTree, existsSync(join(busyboxTree, "usr/bin/busybox")) ? "usr/bin/busybox" : "bin/busybox"));
    const applets = busyboxApplets(busyboxBin);
    const lacking = REQUIRED_APPLETS.filter((a) => !applets.includes(a));
    if (lacking.length) throw new ImageBuildError(`${busyboxName} ${busybox.version} lacks applets ${lacking.join(" ")} (found ${applets.length} applets)`);
    const skeleton = skeletonEntries();
    const own: CpioEntry[] = [
      ...skeleton.filter((e) => e.type !== "dir"),
      { path: "usr/bin/busybox", type: "file", mode: 0o755, data: busyboxBin },
      ...mods.entries,
    ];
    const layers = [skeleton, appletLinks(applets), ...extraTrees.map((t) => collectTree(t)), own];
    const entries = withParentDirs(mergeLayers(...layers));
    const cpio = writeCpio(entries);
    // Level 6: level 9 takes ~8x as long (seconds) for well under 1% smaller output.
    const gz = await promisify(gzip)(cpio, { level: 6 });
    writeFileSync(join(tmp, "initrd.img"), gz);
    return { entries: entries.length, raw: cpio.length, size: gz.length, applets: applets.length };
  });
  reporter.log(`initramfs: ${initrd.entries} entries, ${initrd.applets} busybox applets, ${formatBytes(initrd.raw)} -> ${formatBytes(initrd.size)} gzipped`);

  const image: GuestImage = {
    kernel: "Image",
    initrd: "initrd.img",
    kernelVersion,
    modulesIncluded: mods.names,
    opensbi: opensbiOut,
    packages: sortedPackages,
    modulesBuiltin: mods.builtin,
    config: "config",
    dir: "",
  };
  writeFileSync(join(tmp, "image.json"), JSON.stringify(image, null, 2) + "\n");
}

/** Like Promise.all(items.map(fn)) with at most `limit` calls in flight. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Relative paths of all regular files under root. */
function listFiles(root: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(root, p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * Picks OpenSBI's generic-platform firmware for rv64 from the package's file list. Debian installs
 * it under /usr/lib/riscv64-linux-gnu/opensbi/generic/ (older releases used
 * /usr/lib/riscv-firmware or /usr/share/opensbi/lp64/generic/firmware/); rv32 builds are skipped.
 */
export function findOpensbi(files: string[]): { fwJump?: string; fwDynamic?: string; fwJumpElf?: string; fwDynamicElf?: string } {
  const candidates = files.filter((f) => /(^|\/)generic\//.test(f) && !/riscv32|ilp32|\/lp32\//.test(f));
  const pick = (name: string) => candidates.filter((f) => f.endsWith("/" + name)).sort((a, b) => Number(/riscv64|lp64/.test(b)) - Number(/riscv64|lp64/.test(a)))[0];
  const out: ReturnType<typeof findOpensbi> = {};
  const jump = pick("fw_jump.bin"), dyn = pick("fw_dynamic.bin"), jumpElf = pick("fw_jump.elf"), dynElf = pick("fw_dynamic.elf");
  if (jump) out.fwJump = jump;
  if (dyn) out.fwDynamic = dyn;
  if (jumpElf) out.fwJumpElf = jumpElf;
  if (dynElf) out.fwDynamicElf = dynElf;
  return out;
}

/** Runs a host decompressor, explaining which Debian package provides it when it is missing. */
async function decompressWith(tool: "xz" | "zstd", path: string): Promise<Buffer> {
  try {
    const { stdout } = await execFileP(tool, ["-dc", path], { encoding: "buffer", maxBuffer: 1 << 30 });
    return stdout;
  } catch (err: any) {
    if (err?.code === "ENOENT") throw new ImageBuildError(`${tool} not found: install the Debian package ${tool === "xz" ? "xz-utils" : "zstd"} (needed to decompress ${path.slice(path.lastIndexOf("/") + 1)})`);
    throw new ImageBuildError(`${tool} -dc ${path} failed: ${err?.stderr?.toString() ?? err}`);
  }
}

async function decompressFile(path: string): Promise<Buffer> {
  if (path.endsWith(".xz")) return decompressWith("xz", path);
  if (path.endsWith(".zst")) return decompressWith("zstd", path);
  if (path.endsWith(".gz")) return gunzipSync(readFileSync(path));
  return readFileSync(path);
}

/** Finds /boot/vmlinu[xz]-VERSION, decompresses it if needed, checks the Image header, writes it. */
async function writeKernelImage(tree: string, version: string, out: string) {
  const boot = join(tree, "boot");
  const name = ["vmlinux", "vmlinuz", "Image"].map((n) => `${n}-${version}`).find((n) => existsSync(join(boot, n)));
  if (!name) throw new ImageBuildError(`no kernel in /boot of the kernel package (found: ${existsSync(boot) ? readdirSync(boot).join(", ") : "no /boot"})`);
  const raw = readFileSync(join(boot, name));
  const format = classifyKernel(raw);
  let image: Uint8Array;
  const tmpPayload = `${out}.payload`;
  const viaTool = async (tool: "xz" | "zstd", bytes: Uint8Array) => {
    writeFileSync(tmpPayload, bytes);
    try {
      return await decompressWith(tool, tmpPayload);
    } finally {
      rmSync(tmpPayload, { force: true });
    }
  };
  switch (format.kind) {
    case "image":
      image = raw;
      break;
    case "gzip":
      image = gunzipSync(raw);
      break;
    case "xz":
    case "zstd":
      image = await viaTool(format.kind, raw);
      break;
    case "zboot": {
      const payload = raw.subarray(format.payloadOffset, format.payloadOffset + format.payloadSize);
      if (format.compression === "gzip") image = gunzipSync(payload);
      else if (format.compression === "xz" || format.compression === "zstd22" || format.compression === "zstd") image = await viaTool(format.compression.startsWith("zstd") ? "zstd" : "xz", payload);
      else throw new ImageBuildError(`/boot/${name}: EFI zboot image compressed with unsupported ${format.compression}`);
      break;
    }
    default:
      throw new ImageBuildError(`/boot/${name}: unrecognised kernel format (${format.kind})`);
  }
  const header = parseRiscvImageHeader(image);
  const banner = findLinuxBanner(image);
  if (!banner) throw new ImageBuildError(`/boot/${name}: no "Linux version" banner in the Image`);
  if (banner.release !== version) throw new ImageBuildError(`/boot/${name}: banner says ${banner.release}, package says ${version}`);
  writeFileSync(out, image);
  const formatName = format.kind === "image" ? `an uncompressed Image${header.efiStub ? " with EFI stub (MZ)" : ""}` : format.kind === "zboot" ? `EFI zboot (${format.compression})` : `${format.kind}-compressed`;
  return { source: `/boot/${name}`, format: formatName, size: image.length, textOffset: header.textOffset, banner: banner.banner.replace(/ \(.*$/, "") };
}

/** Copies the guest modules (decompressed) with their dependencies, modules.dep and the load list. */
async function collectModules(tree: string, version: string) {
  const base = ["usr/lib/modules", "lib/modules"].map((d) => `${d}/${version}`).find((d) => existsSync(join(tree, d)));
  if (!base) throw new ImageBuildError(`kernel package has no /usr/lib/modules/${version}`);
  const modDir = join(tree, base);
  const index = new Map<string, string>();
  for (const f of listFiles(modDir)) if (/\.ko(\.(xz|zst|gz))?$/.test(f)) index.set(moduleName(f), f);
  const builtinFile = join(modDir, "modules.builtin");
  const builtinText = existsSync(builtinFile) ? readFileSync(builtinFile, "utf8") : "";
  const builtinSet = parseModulesBuiltin(builtinText);
  const bytes = new Map<string, Buffer>();
  const closure = await resolveModuleClosure(GUEST_MODULES, index, builtinSet, async (path) => {
    const data = await decompressFile(join(modDir, path));
    bytes.set(path, data);
    const info = parseModinfo(data);
    return { depends: modinfoDepends(info), softdepPre: modinfoSoftdepPre(info) };
  });
  const rel = (p: string) => uncompressedModulePath(p);
  const hard = new Map([...closure.hardDeps].map(([p, ds]) => [rel(p), ds.map(rel)]));
  const modRoot = canonicalPackagePath(`lib/modules/${version}`);
  const text = (path: string, content: string): CpioEntry => ({ path: `${modRoot}/${path}`, type: "file", mode: 0o644, data: Buffer.from(content) });
  const entries: CpioEntry[] = [
    ...closure.order.map((p): CpioEntry => ({ path: `${modRoot}/${rel(p)}`, type: "file", mode: 0o644, data: bytes.get(p)! })),
    // For busybox modprobe/lsmod/modinfo in the guest; /init itself uses the ordered list below.
    text("modules.dep", formatModulesDep(hard)),
    text("modules.builtin", builtinText),
    {
      path: "etc/modules-load.list",
      type: "file",
      mode: 0o644,
      data: Buffer.from(
        "# Modules /init loads with insmod, in dependency order (paths under /lib/modules/$(uname -r)).\n" +
          closure.order.map((p) => rel(p) + "\n").join(""),
      ),
    },
  ];
  return { names: closure.order.map(moduleName), builtin: closure.builtin, missing: closure.missing, unresolvedSoftdeps: closure.unresolvedSoftdeps, entries };
}

/**
 * Removes images, downloads and extracted trees that no current build refers to. Pointers made by
 * other versions of the build code are dropped first: their images can never be served again.
 */
function prune(debsDir: string, extractDir: string, inputs: string, reporter: Reporter): void {
  const root = IMAGE_ROOT();
  const pointers: Pointer[] = [];
  for (const f of readdirSync(root).filter((f) => /^current-.*\.json$/.test(f))) {
    const p = readJson<Pointer>(join(root, f));
    if (p && p.inputs === inputs) pointers.push(p);
    else rmSync(join(root, f), { force: true });
  }
  const keys = new Set(pointers.map((p) => p.key));
  const debs = new Set(pointers.flatMap((p) => p.debs));
  let freed = 0;
  const remove = (path: string) => {
    try {
      freed += statSync(path).isDirectory() ? 0 : statSync(path).size;
      rmSync(path, { recursive: true, force: true });
    } catch {
      // already gone
    }
  };
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (e.isDirectory() && !e.name.startsWith(".") && !keys.has(e.name)) remove(join(root, e.name));
  }
  for (const f of readdirSync(debsDir)) if (f.endsWith(".deb") && !debs.has(f)) remove(join(debsDir, f));
  const trees = new Set([...debs].map((d) => d.replace(/\.deb$/, "")));
  for (const f of readdirSync(extractDir)) {
    const tree = f.replace(/\.complete$/, "").replace(/\.tmp-\d+$/, "");
    if (!trees.has(tree) || /\.tmp-\d+$/.test(f)) remove(join(extractDir, f));
  }
  if (freed) reporter.log(`cache: removed ${formatBytes(freed)} of packages no longer used`);
}

/**
 * Serialises builds (concurrent test files, two terminals) with a lock directory: apt's own locks
 * would make the second apt-get fail rather than wait. A lock left by a dead process is taken over.
 */
export async function withLock<T>(path: string, reporter: Reporter, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20 * 60 * 1000;
  let announced = false;
  for (;;) {
    try {
      mkdirSync(path);
      writeFileSync(join(path, "pid"), String(process.pid));
      break;
    } catch (err: any) {
      if (err?.code !== "EEXIST") throw err;
      const pid = Number(readJson<number>(join(path, "pid")) ?? 0);
      let stale = false;
      if (pid > 0) {
        try {
          process.kill(pid, 0);
        } catch (e: any) {
          stale = e?.code === "ESRCH";
        }
      } else {
        // Created but no pid yet: stale only if that state has lasted (the owner died in between).
        try {
          stale = Date.now() - statSync(path).mtimeMs > 30_000;
        } catch {
          continue;
        }
      }
      if (stale) {
        rmSync(path, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new ImageBuildError(`timed out waiting for another image build (pid ${pid}, lock ${path})`);
      if (!announced) reporter.log(`waiting for another image build (pid ${pid || "?"}) to finish`);
      announced = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

