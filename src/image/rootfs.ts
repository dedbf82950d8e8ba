// `parley image build --rootfs`: a Debian trixie riscv64 root disk (ext4) with systemd, apt and
// openssh-server, built with Debian's own debootstrap in two stages:
//
// 1. On the host, `debootstrap --foreign` downloads and unpacks the packages (no riscv64 code runs),
//    Parley adds its configuration script, the kernel's modules and its guest programs, and
//    `mke2fs -d` turns the tree into an ext4 image.
// 2. Inside Parley itself: the guest image's kernel and initramfs boot with the new disk as root and
//    the script as init; it runs `debootstrap --second-stage` (the maintainer scripts, which are
//    riscv64 programs), configures the system and powers off.
//
// Why a second stage inside Parley rather than qemu-user through binfmt_misc: registering a binfmt
// handler needs root and a kernel that allows it (containers often do not), while Parley is already
// a riscv64 machine that runs as any user. The cost is time: the second stage takes minutes.
//
// The result is cached in cache/rootfs/<kernel version>-<hash>/, keyed by the exact package files
// debootstrap chose (so a new package version in the archive means a new image) and by everything
// of Parley's that goes into the image.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { CACHE_DIR } from "../host/node/paths.ts";
import { ARCH, DEFAULT_KEYRING, ImageBuildError, SUITE, aptPaths, chooseMirror, findOnPath } from "./apt.ts";
import { buildGuestImage, readJson, shown, withLock, type GuestImage } from "./build.ts";
import { buildMemwrite, buildSmpPrograms } from "./guest-programs.ts";
import { Reporter, formatBytes } from "./progress.ts";

const execFileP = promisify(execFile);

/**
 * What the root disk holds beyond debootstrap's minbase variant (Priority: required, plus apt).
 * Recommends are not installed (debootstrap never does), so each wanted tool is named.
 */
export const ROOTFS_PACKAGES = [
  "systemd", "systemd-sysv", "systemd-resolved", "dbus", "udev", "kmod",
  "openssh-server", "openssh-sftp-server",
  "iproute2", "iputils-ping", "procps", "less", "vim-tiny", "sudo", "netbase", "ca-certificates",
  "bash-completion", "file", "e2fsprogs",
] as const;

/** The guest's login: a user in the sudo group (password-less sudo), its password, the host name. */
export const ROOTFS_USER = "parley";
export const ROOTFS_PASSWORD = "parley";
export const ROOTFS_HOSTNAME = "parley";
/** The file system label: /etc/fstab and `root=LABEL=...` find the root by it. */
export const ROOTFS_LABEL = "parley-root";
/** Default disk size: sparse, so only what is written takes space on the host. */
export const ROOTFS_DEFAULT_SIZE = 8 * 1024 ** 3;
/** The second stage's script, at the root of the disk; it deletes itself when done. */
export const SECOND_STAGE_PATH = "/parley-second-stage";
/** Printed by the second stage when everything succeeded (the build checks for it). */
export const SECOND_STAGE_DONE = "parley-rootfs: second stage complete";
/** Bump when the disk's layout changes in a way the hashed inputs do not capture. */
const ROOTFS_FORMAT = 1;
/** How long a finished build is trusted without asking the archive for newer packages. */
const ROOTFS_MAX_AGE_MS = 24 * 3600 * 1000;

const ROOTFS_ROOT = () => join(CACHE_DIR, "rootfs");
const CURRENT = () => join(ROOTFS_ROOT(), "current.json");
/** debootstrap's download cache, kept across builds so that a rebuild fetches only what changed. */
const DEBS_DIR = () => join(ROOTFS_ROOT(), "debs");
const SSH_DIR = () => join(ROOTFS_ROOT(), "ssh");

export interface RootDisk {
  /** The ext4 image (sparse). Boot a copy, an overlay or `snapshot=on` of it: writes change it. */
  image: string;
  /** The private key whose public half is authorised for the user (ssh -i KEY parley@...). */
  sshKey: string;
  /** `uname -r` of the kernel whose modules are on the disk (the guest image's kernel). */
  kernelVersion: string;
  /** Every Debian package on the disk: name -> version. */
  packages: Record<string, string>;
  /** Size of the disk in bytes. */
  sizeBytes: number;
  /** How long the build took, in seconds (first stage, second stage). */
  buildSeconds: { firstStage: number; secondStage: number };
  dir: string;
}

/** Runs the second stage: boots `kernel`/`initrd` with `disk` as root and `bootArgs`, console to `onOutput`, until it powers off. */
export type SecondStageRunner = (run: { kernel: string; initrd: string; disk: string; bootArgs: string; onOutput: (text: string) => void }) => Promise<void>;

export interface BuildRootfsOptions {
  /** Boots the machine for the second stage (src/vmm/root-disk.ts: a Parley machine). */
  runSecondStage: SecondStageRunner;
  /** Ask the archive again and rebuild even if the cache matches. */
  force?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
  /** Disk size in bytes (multiple of 1 MiB, at least 2 GiB); default 8 GiB. */
  sizeBytes?: number;
}

interface Pointer {
  key: string;
  inputs: string;
  builtAt: number;
}

/**
 * Parses debootstrap's `debootstrap/debpaths` (one "PACKAGE /path/to/PACKAGE_VERSION_ARCH.deb"
 * per line) into package -> version. Pure; lines that do not fit are ignored.
 */
export function parseDebpaths(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+\S*\/([^/\s]+)\.deb$/.exec(line.trim());
    if (!m) continue;
    const parts = m[2].split("_");
    if (parts.length !== 3 || parts[0] !== m[1]) continue;
    // Debian file names encode the epoch's colon as %3a.
    out[m[1]] = decodeURIComponent(parts[1]);
  }
  return out;
}

/** The security archive beside a Debian mirror (…/debian -> …/debian-security), or undefined. */
export function securityMirrorFor(mirror: string): string | undefined {
  const trimmed = mirror.replace(/\/+$/, "");
  return /\/debian$/.test(trimmed) ? `${trimmed}-security` : undefined;
}

/** The guest's apt sources (deb822), pointing at the mirror the image was built from. */
export function aptSourcesText(mirror: string): string {
  const security = securityMirrorFor(mirror);
  let text = `Types: deb\nURIs: ${mirror}\nSuites: ${SUITE} ${SUITE}-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`;
  if (security) text += `\nTypes: deb\nURIs: ${security}\nSuites: ${SUITE}-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`;
  return text;
}

/**
 * Progress through the second stage from debootstrap's log lines: each package is unpacked, then
 * configured, so the fraction done is (unpacked + configured) / (2 * packages). Pure.
 */
export function secondStageProgress(log: string, packages: number): number {
  return packages <= 0 ? 0 : Math.min(1, secondStageSteps(log) / (2 * packages));
}

/** How many packages `log` (any part of the second stage's output, whole lines) unpacks or configures. Pure. */
export function secondStageSteps(log: string): number {
  return (log.match(/^I: (?:Unpacking|Configuring) (?!required|the base)\S+\.\.\.$/gm) ?? []).length;
}

/** The kernel command line of the second stage: the disk as root, the script as init. */
export function secondStageBootArgs(): string {
  // quiet keeps the kernel's messages out of the log that the progress is read from; the
  // script's own output goes to the console.
  return `console=ttyS0 earlycon=sbi root=/dev/vda rw init=${SECOND_STAGE_PATH} quiet`;
}

/**
 * The second stage, run as PID 1 on the new root: debootstrap's second stage, then Parley's
 * configuration. On any failure it says so and powers off, so the build never waits for a
 * timeout. `kernelVersion` names the module tree for depmod.
 */
export function secondStageScript(opts: { kernelVersion: string; mirror: string }): string {
  const { kernelVersion, mirror } = opts;
  return `#!/bin/sh
# Generated by Parley (src/image/rootfs.ts): the root disk's second stage, run once as init.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C DEBIAN_FRONTEND=noninteractive HOME=/root

mount_api() {
  [ -e /proc/self ] || mount -t proc proc /proc
  [ -e /sys/kernel ] || mount -t sysfs sysfs /sys
}
finish() {
  sync
  # Power off without an init system: remount read-only (sysrq u), then off (sysrq o). PID 1
  # must not exit meanwhile (the kernel would panic), so it waits.
  mount_api
  echo u > /proc/sysrq-trigger
  echo o > /proc/sysrq-trigger
  while :; do sleep 60; done
}
fail() {
  echo "parley-rootfs: second stage FAILED: $*"
  [ -f /debootstrap/debootstrap.log ] && tail -n 40 /debootstrap/debootstrap.log
  finish
}

mount_api
echo "parley-rootfs: debootstrap second stage"
/debootstrap/debootstrap --second-stage || fail "debootstrap --second-stage"
# debootstrap unmounts /proc and /sys when it ends; the configuration needs them again.
mount_api

echo "parley-rootfs: configuring"
set -e
trap 'fail "configuration step at line $LINENO"' EXIT

echo ${ROOTFS_HOSTNAME} > /etc/hostname
cat > /etc/hosts <<'HOSTS'
127.0.0.1	localhost
127.0.1.1	${ROOTFS_HOSTNAME}
::1		localhost ip6-localhost ip6-loopback
HOSTS
printf 'LABEL=${ROOTFS_LABEL}\\t/\\text4\\tdefaults,errors=remount-ro\\t0\\t1\\n' > /etc/fstab
ln -sf /usr/share/zoneinfo/Etc/UTC /etc/localtime
echo Etc/UTC > /etc/timezone

# An empty machine-id: every copy of the disk makes its own on first boot (systemd commits it).
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
# Nobody is at the console to answer systemd-firstboot's questions; the answers are above.
systemctl mask systemd-firstboot.service

# The user: password login on the console, key-only over SSH, sudo without a password.
useradd --create-home --shell /bin/bash --groups sudo ${ROOTFS_USER}
echo '${ROOTFS_USER}:${ROOTFS_PASSWORD}' | chpasswd
echo '${ROOTFS_USER} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/${ROOTFS_USER}
chmod 0440 /etc/sudoers.d/${ROOTFS_USER}
install -d -m 0700 -o ${ROOTFS_USER} -g ${ROOTFS_USER} /home/${ROOTFS_USER}/.ssh
install -m 0600 -o ${ROOTFS_USER} -g ${ROOTFS_USER} /parley-setup/authorized_keys /home/${ROOTFS_USER}/.ssh/authorized_keys

# SSH: host keys are made on each copy's first boot (ed25519 only: RSA key generation takes
# long on an emulated CPU), so copies of one image do not share them.
rm -f /etc/ssh/ssh_host_*
cat > /etc/ssh/sshd_config.d/parley.conf <<'SSHD'
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
SSHD
cat > /etc/systemd/system/parley-ssh-host-key.service <<'UNIT'
[Unit]
Description=Generate this machine's SSH host key
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service ssh.socket

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=multi-user.target ssh.service
UNIT
systemctl enable parley-ssh-host-key.service

# Network: DHCP on every Ethernet interface (passt, TAP or a socket peer), DNS through resolved.
cat > /etc/systemd/network/20-ethernet.network <<'NETWORK'
[Match]
Type=ether

[Network]
DHCP=yes
NETWORK
systemctl enable systemd-networkd.service systemd-resolved.service
# A DHCP-less network (no --net, or a peer without DHCP) must not hold boot up for two minutes.
systemctl disable systemd-networkd-wait-online.service || true
ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf

cat > /etc/apt/sources.list.d/debian.sources <<'SOURCES'
${aptSourcesText(mirror).trimEnd()}
SOURCES
rm -f /etc/apt/sources.list
# apt's daily timers would start a package-list download in the background at boot, which on an
# emulated CPU competes with the user's own apt-get (and holds its lock); run apt by hand.
systemctl disable apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true

# The kernel's modules (the guest image's kernel, which boots this disk).
depmod -a ${kernelVersion}
# 9p shared folders and vsock load on demand (udev); nothing to list here.

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /parley-setup ${SECOND_STAGE_PATH}
trap - EXIT
echo "${SECOND_STAGE_DONE}"
finish
`;
}

/** The authorised keys: Parley's own key (for tests and scripts) and the user's, when present. */
function authorizedKeys(ownPublicKey: string): string {
  const lines = [ownPublicKey.trim()];
  const sshHome = join(homedir(), ".ssh");
  for (const name of ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"]) {
    const path = join(sshHome, name);
    if (existsSync(path)) lines.push(readFileSync(path, "utf8").trim());
  }
  return lines.filter(Boolean).join("\n") + "\n";
}

/** Parley's SSH key pair for the guest user (made once, kept in the cache). */
async function ensureSshKey(): Promise<{ key: string; publicKey: string }> {
  const key = join(SSH_DIR(), "id_ed25519");
  if (!existsSync(key) || !existsSync(`${key}.pub`)) {
    if (!findOnPath("ssh-keygen")) throw new ImageBuildError("ssh-keygen not found: install the Debian package openssh-client");
    mkdirSync(SSH_DIR(), { recursive: true, mode: 0o700 });
    rmSync(key, { force: true });
    rmSync(`${key}.pub`, { force: true });
    await execFileP("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "parley-guest", "-f", key]);
  }
  chmodSync(key, 0o600);
  return { key, publicKey: readFileSync(`${key}.pub`, "utf8") };
}

/** Runs a host command, feeding each output line to `onLine`; rejects with its tail on failure. */
function runLogged(command: string, args: string[], onLine: (line: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    let pending = "";
    const take = (d: Buffer) => {
      pending += d.toString();
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        tail.push(line);
        if (tail.length > 30) tail.shift();
        onLine(line);
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new ImageBuildError(`${command} ${args.slice(0, 3).join(" ")} ... failed (exit ${code}):\n${tail.join("\n")}`));
    });
  });
}

/** Checks the host programs the build runs; names the Debian package of each missing one. */
function checkRootfsTools(asRoot: boolean): void {
  const tools: [string, string][] = [["debootstrap", "debootstrap"], ["mke2fs", "e2fsprogs"], ["e2fsck", "e2fsprogs"], ["ssh-keygen", "openssh-client"]];
  if (!asRoot) tools.push(["fakeroot", "fakeroot"]);
  const missing = tools.filter(([tool]) => !findOnPath(tool) && !existsSync(`/usr/sbin/${tool}`) && !existsSync(`/sbin/${tool}`));
  if (missing.length) {
    const pkgs = [...new Set(missing.map(([, p]) => p))];
    throw new ImageBuildError(`${missing.map(([t]) => t).join(", ")} not found: install the Debian package${pkgs.length > 1 ? "s" : ""} ${pkgs.join(" ")} (npm run setup does)`);
  }
}

/** Hash of what Parley puts into the disk besides the packages. */
function inputsHash(parts: { script: string; authorizedKeys: string; programs: Record<string, string>; sizeBytes: number }): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ ROOTFS_FORMAT, ROOTFS_PACKAGES, SUITE, ARCH, script: parts.script, keys: parts.authorizedKeys, size: parts.sizeBytes }));
  for (const [name, path] of Object.entries(parts.programs).sort()) h.update(name + "\0").update(readFileSync(path));
  return h.digest("hex").slice(0, 16);
}

/** The extracted kernel package of the guest image (its /usr/lib/modules tree goes onto the disk). */
function kernelModulesDir(kernelVersion: string): string {
  const extract = aptPaths(CACHE_DIR).extract;
  const dir = existsSync(extract)
    ? readdirSync(extract).find((f) => f.startsWith(`linux-image-${kernelVersion}_`) && !/\.complete$|\.tmp-\d+$/.test(f))
    : undefined;
  const modules = dir ? join(extract, dir, "usr/lib/modules", kernelVersion) : undefined;
  if (!modules || !existsSync(modules)) throw new ImageBuildError(`the modules of Linux ${kernelVersion} are not in the cache: run parley image build --force`);
  return modules;
}

function readRootDisk(dir: string): RootDisk | undefined {
  const meta = readJson<Omit<RootDisk, "dir" | "image" | "sshKey">>(join(dir, "rootfs.json"));
  const image = join(dir, "debian.img");
  const sshKey = join(SSH_DIR(), "id_ed25519");
  if (!meta || !existsSync(image) || !existsSync(sshKey)) return undefined;
  return { ...meta, image, sshKey, dir };
}

/** The root disk last built, without touching the network; undefined if none. */
export function cachedRootDisk(): RootDisk | undefined {
  const ptr = readJson<Pointer>(CURRENT());
  return ptr ? readRootDisk(join(ROOTFS_ROOT(), ptr.key)) : undefined;
}

/** Copies a sparse image keeping it sparse (Node's copyFile writes every zero). */
export async function copySparse(from: string, to: string): Promise<void> {
  mkdirSync(dirname(to), { recursive: true });
  const tmp = `${to}.tmp-${process.pid}`;
  try {
    await execFileP("cp", ["--sparse=always", from, tmp]);
    renameSync(tmp, to);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new ImageBuildError(`cannot copy ${from} to ${to}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Builds (or returns the cached) root disk. */
export async function buildRootfs(opts: BuildRootfsOptions): Promise<RootDisk> {
  const reporter = new Reporter(opts);
  const sizeBytes = opts.sizeBytes ?? ROOTFS_DEFAULT_SIZE;
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes % (1 << 20) !== 0 || sizeBytes < 2 * 1024 ** 3) {
    throw new ImageBuildError(`root disk size ${sizeBytes}: use a whole number of MiB, at least 2G`);
  }
  const asRoot = process.getuid?.() === 0;
  checkRootfsTools(asRoot);
  const guest: GuestImage = await buildGuestImage({ progress: opts.progress, log: opts.log });
  mkdirSync(ROOTFS_ROOT(), { recursive: true });
  return withLock(join(ROOTFS_ROOT(), ".lock"), reporter, async () => {
    const mirror = chooseMirror().uri;
    const ssh = await ensureSshKey();
    const keys = authorizedKeys(ssh.publicKey);
    const [smp, memwrite] = await reporter.step("building Parley's guest programs", () => Promise.all([buildSmpPrograms(), buildMemwrite()]));
    const programs: Record<string, string> = { ...smp, memwrite };
    const script = secondStageScript({ kernelVersion: guest.kernelVersion, mirror });
    const inputs = inputsHash({ script, authorizedKeys: keys, programs, sizeBytes });

    const ptr = readJson<Pointer>(CURRENT());
    if (!opts.force && ptr && ptr.inputs === inputs && Date.now() - ptr.builtAt < ROOTFS_MAX_AGE_MS) {
      const disk = readRootDisk(join(ROOTFS_ROOT(), ptr.key));
      if (disk) {
        reporter.log(`root disk up to date: Debian ${SUITE} ${ARCH}, Linux ${disk.kernelVersion} (${shown(disk.image)})`);
        return disk;
      }
    }

    const work = join(ROOTFS_ROOT(), `work-${process.pid}`);
    const target = join(work, "root");
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    mkdirSync(DEBS_DIR(), { recursive: true });
    // Not root: fakeroot records the owners and device nodes debootstrap makes, and mke2fs -d
    // (run in the same fakeroot state) writes them into the file system.
    const fakerootState = join(work, "fakeroot.state");
    const asOwner = (cmd: string, args: string[], first = false): [string, string[]] =>
      asRoot ? [cmd, args] : ["fakeroot", [...(first ? ["-s", fakerootState] : ["-i", fakerootState, "-s", fakerootState]), "--", cmd, ...args]];
    try {
      const firstStart = Date.now();
      const keyring = process.env.PARLEY_DEBIAN_KEYRING?.trim() || DEFAULT_KEYRING;
      let fetched = 0;
      await reporter.step(`debootstrap --foreign: Debian ${SUITE} ${ARCH} (minbase + ${ROOTFS_PACKAGES.length} packages) from ${mirror}`, () =>
        runLogged(
          ...asOwner(
            "debootstrap",
            [
              "--foreign",
              `--arch=${ARCH}`,
              "--variant=minbase",
              `--include=${ROOTFS_PACKAGES.join(",")}`,
              `--keyring=${keyring}`,
              `--cache-dir=${DEBS_DIR()}`,
              SUITE,
              target,
              mirror,
            ],
            true,
          ),
          (line) => {
            if (/^I: Retrieving \S+ \d/.test(line)) fetched++;
            else if (/^[EW]:/.test(line)) reporter.log(`  ${line}`);
          },
          { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` },
        ),
      );
      const packages = parseDebpaths(readFileSync(join(target, "debootstrap/debpaths"), "utf8"));
      const count = Object.keys(packages).length;
      if (fetched) reporter.log(`  downloaded ${fetched} packages`);
      const key = `${guest.kernelVersion}-${createHash("sha256").update(JSON.stringify({ packages, inputs })).digest("hex").slice(0, 12)}`;
      const outDir = join(ROOTFS_ROOT(), key);
      if (!opts.force) {
        const cached = readRootDisk(outDir);
        if (cached) {
          writeFileSync(CURRENT(), JSON.stringify({ key, inputs, builtAt: Date.now() } satisfies Pointer, null, 2) + "\n");
          reporter.log(`root disk up to date: ${count} packages unchanged (${shown(cached.image)})`);
          return cached;
        }
      }

      // Parley's part of the tree: the second stage, the keys, the kernel's modules, the programs.
      writeFileSync(join(target, SECOND_STAGE_PATH.slice(1)), script, { mode: 0o755 });
      mkdirSync(join(target, "parley-setup"), { recursive: true });
      writeFileSync(join(target, "parley-setup/authorized_keys"), keys);
      const modulesTarget = join(target, "usr/lib/modules", guest.kernelVersion);
      await reporter.step(`adding the modules of Linux ${guest.kernelVersion}`, async () => {
        mkdirSync(dirname(modulesTarget), { recursive: true });
        cpSync(kernelModulesDir(guest.kernelVersion), modulesTarget, { recursive: true, verbatimSymlinks: true });
      });
      mkdirSync(join(target, "usr/local/bin"), { recursive: true });
      for (const [name, path] of Object.entries(programs)) copyFileSync(path, join(target, "usr/local/bin", name));
      for (const name of Object.keys(programs)) chmodSync(join(target, "usr/local/bin", name), 0o755);

      const image = join(work, "debian.img");
      await reporter.step(`mke2fs: ${formatBytes(sizeBytes)} ext4 image (sparse)`, () =>
        runLogged(
          ...asOwner("mke2fs", ["-q", "-F", "-t", "ext4", "-L", ROOTFS_LABEL, "-d", target, image, `${sizeBytes / 1024}k`]),
          () => {},
          { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` },
        ),
      );
      rmSync(target, { recursive: true, force: true });
      const firstStage = (Date.now() - firstStart) / 1000;

      const secondStart = Date.now();
      let consoleLog = "";
      // The console arrives in pieces: whole lines are counted once each as they complete.
      let counted = 0;
      let steps = 0;
      let loggedDecile = 0;
      const bar = reporter.bar("second stage");
      const liveLog = join(work, "second-stage.log");
      writeFileSync(liveLog, "");
      reporter.log(`second stage inside Parley: configuring ${count} packages (takes minutes on an emulated CPU; console in ${shown(liveLog)})`);
      try {
        await opts.runSecondStage({
          kernel: guest.kernel,
          initrd: guest.initrd,
          disk: image,
          bootArgs: secondStageBootArgs(),
          onOutput: (text) => {
            consoleLog += text;
            appendFileSync(liveLog, text);
            const lineEnd = consoleLog.lastIndexOf("\n") + 1;
            if (lineEnd <= counted) return;
            steps += secondStageSteps(consoleLog.slice(counted, lineEnd));
            counted = lineEnd;
            const done = Math.min(1, steps / (2 * count));
            bar.update(100 * done, `${((Date.now() - secondStart) / 1000).toFixed(0)} s`);
            // Without a terminal there is no bar: a line for every tenth shows it is alive.
            const decile = Math.floor(done * 10);
            if (!process.stderr.isTTY && decile > loggedDecile) {
              loggedDecile = decile;
              reporter.log(`  ${decile * 10}% of the packages unpacked and configured`);
            }
          },
        });
      } catch (err) {
        throw secondStageFailure(err instanceof Error ? err.message : String(err), liveLog, consoleLog);
      } finally {
        bar.stop();
      }
      if (!consoleLog.includes(SECOND_STAGE_DONE)) {
        throw secondStageFailure(/parley-rootfs: second stage FAILED[^\n]*/.exec(consoleLog)?.[0] ?? "the second stage did not finish", liveLog, consoleLog);
      }
      const secondStage = (Date.now() - secondStart) / 1000;
      // The guest remounted read-only before powering off; a check here proves the result clean.
      await reporter.step("e2fsck: checking the file system", async () => {
        try {
          await execFileP("e2fsck", ["-f", "-y", image], { env: { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` } });
        } catch (err) {
          // Exit 1 means errors were corrected, which a clean power-off should not leave, but the
          // result is consistent; anything above is a failure.
          if ((err as { code?: number }).code !== 1) throw new ImageBuildError(`e2fsck found errors it could not correct in the new root disk: ${(err as Error).message}`);
        }
      });

      const meta = { kernelVersion: guest.kernelVersion, packages, sizeBytes, buildSeconds: { firstStage, secondStage } };
      const tmpOut = `${outDir}.tmp-${process.pid}`;
      rmSync(tmpOut, { recursive: true, force: true });
      mkdirSync(tmpOut, { recursive: true });
      renameSync(image, join(tmpOut, "debian.img"));
      renameSync(join(work, "second-stage.log"), join(tmpOut, "second-stage.log"));
      writeFileSync(join(tmpOut, "rootfs.json"), JSON.stringify(meta, null, 2) + "\n");
      rmSync(outDir, { recursive: true, force: true });
      renameSync(tmpOut, outDir);
      writeFileSync(CURRENT(), JSON.stringify({ key, inputs, builtAt: Date.now() } satisfies Pointer, null, 2) + "\n");
      pruneRootDisks(key);
      const disk = readRootDisk(outDir)!;
      reporter.log(`root disk ready in ${(firstStage + secondStage).toFixed(0)} s (first stage ${firstStage.toFixed(0)} s, second stage ${secondStage.toFixed(0)} s): ${shown(disk.image)}`);
      return disk;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}

/** The error for a failed second stage: its console log is kept (the work folder is not) and its tail shown. */
function secondStageFailure(reason: string, liveLog: string, consoleLog: string): ImageBuildError {
  const kept = join(ROOTFS_ROOT(), "failed-second-stage.log");
  copyFileSync(liveLog, kept);
  return new ImageBuildError(`${reason}; its console log is in ${shown(kept)}:\n${consoleLog.split("\n").slice(-25).join("\n")}`);
}

/** Removes older root disks (each is gigabytes of sparse file) and left-over work folders. */
function pruneRootDisks(keep: string): void {
  for (const name of readdirSync(ROOTFS_ROOT())) {
    const path = join(ROOTFS_ROOT(), name);
    if (name === keep || name === "debs" || name === "ssh" || name.startsWith(".") || !statSync(path).isDirectory()) continue;
    const pid = /^work-(\d+)$/.exec(name)?.[1];
    if (pid && isAlive(Number(pid))) continue;
    rmSync(path, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
