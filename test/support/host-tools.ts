// What a test needs from the host, and the Debian package that provides it.
//
// Outside CI a test whose tool is missing is skipped, and the skip says which package brings it.
// Under CI=true the same test fails with that message instead: a broken install must never look
// green by skipping quietly (this is how a missing libc6-dev-riscv64-cross once hid in CI).
import { existsSync } from "node:fs";
import { findOnPath } from "../../src/image/apt.ts";

/** A host requirement: a program on PATH or a file, and the Debian package that installs it. */
interface Requirement {
  readonly package: string;
  readonly command?: string;
  readonly file?: string;
}

export const HOST_REQUIREMENTS = {
  "riscv64-unknown-elf-gcc": { package: "gcc-riscv64-unknown-elf", command: "riscv64-unknown-elf-gcc" },
  picolibc: { package: "picolibc-riscv64-unknown-elf", file: "/usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs" },
  "riscv64-linux-gnu-gcc": { package: "gcc-riscv64-linux-gnu", command: "riscv64-linux-gnu-gcc" },
  "riscv64-linux-gnu-as": { package: "binutils-riscv64-linux-gnu", command: "riscv64-linux-gnu-as" },
  "riscv64-linux-gnu libc": { package: "libc6-dev-riscv64-cross", file: "/usr/riscv64-linux-gnu/include/stdio.h" },
  "qemu-riscv64": { package: "qemu-user", command: "qemu-riscv64" },
  "qemu-system-riscv64": { package: "qemu-system-misc", command: "qemu-system-riscv64" },
  dtc: { package: "device-tree-compiler", command: "dtc" },
  cpio: { package: "cpio", command: "cpio" },
  debugfs: { package: "e2fsprogs", command: "debugfs" },
  ip: { package: "iproute2", command: "ip" },
  ping: { package: "iputils-ping", command: "ping" },
  passt: { package: "passt", command: "passt" },
  xz: { package: "xz-utils", command: "xz" },
  "mkfs.ext4": { package: "e2fsprogs", command: "mkfs.ext4" },
  "qemu-img": { package: "qemu-utils", command: "qemu-img" },
  // The browser the page tests drive through Playwright: Debian's build, never one Playwright downloads.
  chromium: { package: "chromium", file: "/usr/bin/chromium" },
  // The Debian root disk: its first stage, and the host's side of SSH into the guest.
  debootstrap: { package: "debootstrap", file: "/usr/sbin/debootstrap" },
  ssh: { package: "openssh-client", command: "ssh" },
} as const satisfies Record<string, Requirement>;

export type HostRequirement = keyof typeof HOST_REQUIREMENTS;

/** The bare-metal and Linux cross toolchains, each with the C library it links against. */
export const BAREMETAL_TOOLCHAIN: HostRequirement[] = ["riscv64-unknown-elf-gcc", "picolibc"];
export const LINUX_TOOLCHAIN: HostRequirement[] = ["riscv64-linux-gnu-gcc", "riscv64-linux-gnu libc"];

function present(req: Requirement): boolean {
  if (req.command && !findOnPath(req.command)) return false;
  if (req.file && !existsSync(req.file)) return false;
  return true;
}

/** Why the requirements are not met (naming packages and the install command), or undefined. */
export function missingHostTools(names: readonly HostRequirement[]): string | undefined {
  const missing = names.filter((n) => !present(HOST_REQUIREMENTS[n]));
  if (missing.length === 0) return undefined;
  const packages = [...new Set(missing.map((n) => HOST_REQUIREMENTS[n].package))];
  return `${missing.join(", ")} missing: install Debian package${packages.length > 1 ? "s" : ""} ${packages.join(" ")} with \`npm run setup\` (or \`apt-get install ${packages.join(" ")}\`)`;
}

export const IN_CI = /^(1|true|yes)$/i.test(process.env.CI ?? "");

/**
 * A gate for tests that need host tools: `skip` goes into the test's options and `check()` is
 * the first line of its body (or of a `before` hook). Outside CI a missing tool skips with the
 * reason; under CI the test runs and `check()` fails it with the same reason.
 */
export function needsHostTools(...names: HostRequirement[]): HostGate {
  return hostGate(missingHostTools(names));
}

export interface HostGate {
  readonly skip: string | false;
  check(): void;
}

/** The same gate for any host condition (root, /dev/net/tun...): `why` is undefined when it holds. */
export function hostGate(why: string | undefined, inCi = IN_CI): HostGate {
  return {
    skip: why && !inCi ? why : false,
    check() {
      if (why) throw new Error(`${why} (CI=true: a missing host requirement fails instead of skipping)`);
    },
  };
}
