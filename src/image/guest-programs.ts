// Build recipes for the C programs under guest/: the bare-metal runtime shared by every bare-metal
// guest, the `npm start` demo, the CPU benchmark and the multiprocessor programs for the Linux
// guest. Everything goes through buildGuest, so results are cached under cache/guest and rebuilt
// only when an input changes.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { withParentDirs, writeCpio, type CpioEntry } from "./cpio.ts";
import { parseElf } from "../platform/elf.ts";
import { buildGuest, REPO_ROOT, type GuestTarget } from "./toolchain.ts";

/** Files making up the bare-metal runtime (start-up code, HTIF console/exit, linker script). */
export const BAREMETAL_RUNTIME_FILES = [
  "guest/baremetal/crt0.S",
  "guest/baremetal/htif.c",
  "guest/baremetal/htif.h",
  "guest/baremetal/link.ld",
] as const;

/** Code-generation flags every guest uses, on either target. */
export const GUEST_ARCH_FLAGS = ["-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany"] as const;

let runtimeDigest: string | undefined;

// buildGuest keys its cache on arguments plus listed sources; folding the runtime's content into an
// argument means programs built with baremetalArgs() alone are rebuilt when the runtime changes.
function baremetalRuntimeDigest(): string {
  if (runtimeDigest === undefined) {
    const hash = createHash("sha256");
    for (const file of BAREMETAL_RUNTIME_FILES) hash.update(file + "\0").update(readFileSync(join(REPO_ROOT, file)));
    runtimeDigest = hash.digest("hex").slice(0, 16);
  }
  return runtimeDigest;
}

/**
 * Compiler/linker arguments for a bare-metal guest using Parley's runtime (crt0 + HTIF stdio, picolibc).
 * They include the runtime's own sources, so a program needs only its own files:
 *   buildGuest({ name, target: "baremetal", sources: ["my.c"], args: [...baremetalArgs(), "-O3"] })
 * Later arguments override earlier ones (e.g. a different -O level).
 */
export function baremetalArgs(): string[] {
  return [
    ...GUEST_ARCH_FLAGS,
    "-O2",
    "-static",
    // picolibc's specs would otherwise add its own crt0, which neither sets up HTIF nor the FPU.
    "-nostartfiles",
    "--specs=picolibc.specs",
    "-T",
    "guest/baremetal/link.ld",
    "-Iguest/baremetal",
    `-DPARLEY_BAREMETAL_RUNTIME=0x${baremetalRuntimeDigest()}`,
    "guest/baremetal/crt0.S",
    "guest/baremetal/htif.c",
  ];
}

/** The `npm start` demo: bare metal, prints a few self-checked computations, exits 0 on success. */
export function buildDemo(): Promise<string> {
  return buildGuest({
    name: "demo",
    target: "baremetal",
    sources: ["guest/demo/demo.c"],
    dependencies: [...BAREMETAL_RUNTIME_FILES],
    args: [...baremetalArgs(), "-Wall", "-Wextra"],
  });
}

/** Kernel selection masks understood by guest/bench (BENCH_K_* in guest/bench/kernels.h). */
export const CPU_BENCH_KERNELS = {
  all: 0x3f,
  alu: 0x01,
  matmul: 0x02,
  sort: 0x04,
  chase: 0x08,
  interp: 0x10,
  text: 0x20,
} as const;
export type CpuBenchKernel = keyof typeof CPU_BENCH_KERNELS;

// Identical code generation on both targets is what makes instruction counts transferable between
// them (bench/cpu.ts relies on it):
// - -fno-pie: Debian's Linux compiler defaults to PIE, which changes address materialisation;
// - -mno-relax: linker relaxation depends on the final layout, which differs between the targets;
// - -fno-tree-loop-distribute-patterns: keeps loops from becoming memset/memcpy calls, which would
//   run picolibc's code on one target and glibc's on the other.
const CPU_BENCH_CODEGEN = [
  ...GUEST_ARCH_FLAGS,
  "-O2",
  "-fno-pie",
  "-mno-relax",
  "-fno-tree-loop-distribute-patterns",
  "-Wall",
  "-Wextra",
];

const CPU_BENCH_SOURCES = ["guest/bench/cpubench.c", "guest/bench/kernels.c"];

export interface CpuBenchOptions {
  /** Restricts the run to one kernel (default: all of them). */
  kernel?: CpuBenchKernel;
  /**
   * Bare metal only: print the minstret delta around the kernel loop. Meaningful on machines that count
   * instructions exactly (Parley, or `qemu-system-riscv64 -icount shift=0`).
   */
  reportInstret?: boolean;
}

/**
 * The CPU benchmark for either target. `iterations` overrides the compile-time default
 * (BENCH_ITERATIONS in guest/bench/cpubench.c).
 */
export function buildCpuBench(target: GuestTarget, iterations?: number, options: CpuBenchOptions = {}): Promise<string> {
  const kernel = options.kernel ?? "all";
  const defines = ["-Iguest/bench", `-DBENCH_KERNELS=${CPU_BENCH_KERNELS[kernel]}`];
  if (iterations !== undefined) {
    if (!Number.isSafeInteger(iterations) || iterations < 0) throw new Error(`bad iteration count ${iterations}`);
    defines.push(`-DBENCH_ITERATIONS=${iterations}`);
  }
  let name = `cpubench-${target === "baremetal" ? "bm" : "linux"}-${kernel}`;
  if (iterations !== undefined) name += `-${iterations}`;
  if (options.reportInstret) {
    if (target !== "baremetal") throw new Error("reportInstret needs the bare-metal target (minstret is a machine-mode CSR)");
    defines.push("-DBENCH_REPORT_INSTRET");
    name += "-instret";
  }
  if (target === "baremetal") {
    return buildGuest({
      name,
      target,
      sources: CPU_BENCH_SOURCES,
      dependencies: ["guest/bench/kernels.h", ...BAREMETAL_RUNTIME_FILES],
      // The runtime's own flags come first so the benchmark's code generation wins where they overlap.
      args: [...baremetalArgs(), ...CPU_BENCH_CODEGEN, ...defines],
    });
  }
  return buildGuest({
    name,
    target,
    sources: CPU_BENCH_SOURCES,
    dependencies: ["guest/bench/kernels.h"],
    args: [...CPU_BENCH_CODEGEN, "-static", "-no-pie", ...defines],
  });
}

/**
 * guest/bench/codepage.c: a hot loop that shares its 4 KiB page with the data it writes (the
 * "Code and data on one page" workload of bench/cpu.ts and test/cpu/code-page.test.ts), for bare
 * metal (Parley) or Linux (qemu-riscv64).
 */
export function buildCodePage(target: GuestTarget, iterations?: number): Promise<string> {
  const defines: string[] = [];
  if (iterations !== undefined) {
    if (!Number.isSafeInteger(iterations) || iterations < 1) throw new Error(`bad iteration count ${iterations}`);
    defines.push(`-DCODEPAGE_ITERATIONS=${iterations}`);
  }
  const name = `codepage-${target === "baremetal" ? "bm" : "linux"}${iterations === undefined ? "" : `-${iterations}`}`;
  if (target === "baremetal") {
    return buildGuest({
      name,
      target,
      sources: ["guest/bench/codepage.c"],
      dependencies: [...BAREMETAL_RUNTIME_FILES],
      args: [...baremetalArgs(), ...CPU_BENCH_CODEGEN, ...defines],
    });
  }
  return buildGuest({ name, target, sources: ["guest/bench/codepage.c"], args: [...CPU_BENCH_CODEGEN, "-static", "-no-pie", ...defines] });
}

/** The multiprocessor correctness programs for the Linux guest (guest/smp), by command name. */
export const SMP_PROGRAMS = ["smp-counters", "smp-litmus", "smp-xmodify"] as const;
export type SmpProgram = (typeof SMP_PROGRAMS)[number];

/**
 * Builds the guest/smp programs as static riscv64 Linux executables (glibc, POSIX threads);
 * returns each ELF's path by command name.
 */
export async function buildSmpPrograms(): Promise<Record<SmpProgram, string>> {
  const paths = await Promise.all(
    SMP_PROGRAMS.map((name) =>
      buildGuest({
        name,
        target: "linux-static",
        sources: [`guest/smp/${name}.c`],
        dependencies: ["guest/smp/smp.h"],
        args: [...GUEST_ARCH_FLAGS, "-O2", "-static", "-pthread", "-Wall", "-Wextra", "-Werror"],
      }),
    ),
  );
  return Object.fromEntries(SMP_PROGRAMS.map((name, i) => [name, paths[i]])) as Record<SmpProgram, string>;
}

/**
 * guest/bench/memwrite.c, the memory-writing workload of the live-migration benchmark, as a
 * static riscv64 Linux executable; returns the ELF's path.
 */
export function buildMemwrite(): Promise<string> {
  return buildGuest({
    name: "memwrite",
    target: "linux-static",
    sources: ["guest/bench/memwrite.c"],
    args: [...GUEST_ARCH_FLAGS, "-O2", "-static", "-Wall", "-Wextra", "-Werror"],
  });
}

/**
 * An initramfs with programs added as /usr/bin/NAME: the base archive (gzip-compressed, as the
 * image builder writes it) followed by a second archive holding the programs (appendToInitrd).
 */
export function initrdWithPrograms(base: Uint8Array, programs: Readonly<Record<string, Uint8Array>>): Uint8Array {
  const entries: CpioEntry[] = Object.entries(programs).map(([name, data]) => {
    if (!/^[\w.+-]+$/.test(name)) throw new Error(`bad program name ${JSON.stringify(name)}`);
    return { path: `usr/bin/${name}`, type: "file", mode: 0o755, data };
  });
  return appendToInitrd(base, withParentDirs(entries));
}

/**
 * An initramfs with a second (gzip-compressed) archive of `entries` appended: the kernel unpacks
 * concatenated archives in order, later files replacing earlier ones.
 */
export function appendToInitrd(base: Uint8Array, entries: CpioEntry[]): Uint8Array {
  const extra = gzipSync(writeCpio(entries));
  // An archive after a compressed one must start on a 4-byte boundary (init/initramfs.c).
  const padded = (base.length + 3) & ~3;
  const out = new Uint8Array(padded + extra.length);
  out.set(base, 0);
  out.set(extra, padded);
  return out;
}

/** The SBI conformance programs (guest/sbi): S-mode, one per group of extensions. */
export const SBI_CONFORMANCE_PROGRAMS = ["core", "harts"] as const;
export type SbiConformanceProgram = (typeof SBI_CONFORMANCE_PROGRAMS)[number];

const SBI_CONFORMANCE_FILES = ["guest/sbi/start.S", "guest/sbi/common.c", "guest/sbi/sbi-test.h", "guest/sbi/link.ld"];

/**
 * Builds the SBI conformance programs with the bare-metal cross compiler and returns each as a
 * RISC-V Linux Image (its header is in guest/sbi/start.S), ready for either boot path of the
 * `virt` machine. No C library, no floating point: the programs run before anything sets up FS.
 */
export async function buildSbiConformance(): Promise<Record<SbiConformanceProgram, Uint8Array>> {
  const images = await Promise.all(
    SBI_CONFORMANCE_PROGRAMS.map(async (name) => {
      const elf = await buildGuest({
        name: `sbi-${name}`,
        target: "baremetal",
        sources: ["guest/sbi/start.S", "guest/sbi/common.c", `guest/sbi/${name}.c`],
        dependencies: SBI_CONFORMANCE_FILES,
        args: [
          "-march=rv64imac_zicsr_zifencei",
          "-mabi=lp64",
          "-mcmodel=medany",
          "-O2",
          "-ffreestanding",
          "-fno-tree-loop-distribute-patterns",
          "-nostdlib",
          "-static",
          "-Wl,--no-relax",
          "-Wl,--no-warn-rwx-segments",
          "-Wall",
          "-Wextra",
          "-Werror",
          "-Iguest/sbi",
          "-T",
          "guest/sbi/link.ld",
        ],
      });
      return linuxImageFromElf(new Uint8Array(readFileSync(elf)));
    }),
  );
  return Object.fromEntries(SBI_CONFORMANCE_PROGRAMS.map((name, i) => [name, images[i]])) as Record<SbiConformanceProgram, Uint8Array>;
}

/** An ELF whose first loaded bytes are a Linux Image header, flattened to the Image (.bss as zeros). */
export function linuxImageFromElf(elfBytes: Uint8Array): Uint8Array {
  const { segments } = parseElf(elfBytes);
  if (segments.length === 0) throw new Error("ELF has no loadable segments");
  const base = Math.min(...segments.map((s) => s.paddr));
  const end = Math.max(...segments.map((s) => s.paddr + s.memsz));
  const image = new Uint8Array(end - base);
  for (const s of segments) image.set(s.data, s.paddr - base);
  if (new TextDecoder("latin1").decode(image.subarray(48, 53)) !== "RISCV") throw new Error("ELF does not start with a RISC-V Linux Image header");
  return image;
}
