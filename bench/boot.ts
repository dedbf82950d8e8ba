// Boot benchmark: wall time from process start to Linux starting init ("Run /init as init
// process") and to the init script's banner, for Parley on both boot paths and for
// qemu-system-riscv64 -M virt (TCG) on the same kernel, initramfs and command line, in one run.
// The paravirtual path runs three ways: without the translation cache, as a first boot (an empty
// cache directory) and as a warm boot (the directory the first boot of the same round filled).
// Options: --reps N (default 3), --memory SIZE (default 512M).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { buildGuestImage } from "../src/image/index.ts";
import { CACHE_DIR, REPO_ROOT } from "../src/host/node/paths.ts";
import { median, runTimed } from "./harness.ts";

const INIT_MARKER = /Run \/init as init process/;
const SHELL_MARKER = /Parley guest: Linux/;
const APPEND = "console=ttyS0";
const TIMEOUT_MS = 300_000;

interface BootTiming {
  toInitS: number;
  toShellS: number;
}

/** Times the first appearance of each marker on a command's output; kills it at the shell banner. */
async function timeBoot(command: string, args: string[]): Promise<BootTiming> {
  const run = await runTimed(command, args, {
    markers: { init: INIT_MARKER, shell: SHELL_MARKER },
    stopAt: SHELL_MARKER,
    timeoutMs: TIMEOUT_MS,
    // An open stdin that stays silent, like an idle terminal, as in every measurement so far.
    stdin: "pipe",
  });
  const { init, shell } = run.markers;
  if (init === undefined || shell === undefined) throw new Error(`${command} did not reach the shell; output tail:\n${run.output.slice(-1500)}`);
  return { toInitS: init, toShellS: shell };
}

async function main() {
  const args = process.argv.slice(2);
  const reps = args.includes("--reps") ? Number(args[args.indexOf("--reps") + 1]) : 3;
  const memory = args.includes("--memory") ? args[args.indexOf("--memory") + 1] : "512M";
  const image = await buildGuestImage({ progress: false });
  const firmware = image.opensbi.fwDynamic!;
  const parley = (extra: string[]) => [
    join(REPO_ROOT, "dist/parley.mjs"), "run", "--kernel", image.kernel, "--initrd", image.initrd, "--append", APPEND, "--memory", memory, ...extra,
  ];
  // Each round's first boot gets an empty cache directory, which its warm boot then reuses.
  const cacheDir = join(mkdtempSync(join(tmpdir(), "parley-boot-bench-")), "jit");
  const systems: { name: string; command: string; args: string[]; before?: () => void }[] = [
    { name: "Parley, paravirtual (SBI in the hypervisor), no translation cache", command: process.execPath, args: parley(["--jit-cache", "off"]) },
    {
      name: "Parley, paravirtual, first boot (empty translation cache)",
      command: process.execPath,
      args: parley(["--jit-cache", cacheDir]),
      before: () => rmSync(cacheDir, { recursive: true, force: true }),
    },
    { name: "Parley, paravirtual, warm boot (cache of the first boot)", command: process.execPath, args: parley(["--jit-cache", cacheDir]) },
    { name: "Parley, OpenSBI firmware in M-mode, no translation cache", command: process.execPath, args: parley(["--firmware", firmware, "--jit-cache", "off"]) },
    {
      name: "qemu-system-riscv64 -M virt (TCG), same OpenSBI",
      command: "qemu-system-riscv64",
      args: ["-M", "virt", "-m", memory, "-smp", "1", "-nographic", "-no-reboot", "-bios", firmware,
        "-kernel", image.kernel, "-initrd", image.initrd, "-append", APPEND],
    },
  ];
  console.log(`boot benchmark: Debian ${image.kernelVersion}, ${memory} RAM, ${reps} boots each, medians; kernel command line "${APPEND}"`);
  const results: Record<string, { toInit: number; toShell: number; runs: BootTiming[] }> = {};
  // Interleave the systems so that drifting machine load hits them alike.
  const runs: Record<string, BootTiming[]> = Object.fromEntries(systems.map((s) => [s.name, []]));
  for (let r = 0; r < reps; r++) {
    for (const system of systems) {
      system.before?.();
      const timing = await timeBoot(system.command, system.args);
      runs[system.name].push(timing);
      console.log(`  ${system.name}: init ${timing.toInitS.toFixed(2)} s, shell ${timing.toShellS.toFixed(2)} s`);
    }
  }
  for (const system of systems) {
    const t = runs[system.name];
    results[system.name] = { toInit: median(t.map((x) => x.toInitS)), toShell: median(t.map((x) => x.toShellS)), runs: t };
  }
  rmSync(dirname(cacheDir), { recursive: true, force: true });
  const qemu = results[systems[systems.length - 1].name];
  console.log("\n| system | boot to init (s) | to shell (s) | init time vs QEMU |");
  console.log("|---|---:|---:|---:|");
  for (const system of systems) {
    const r = results[system.name];
    console.log(`| ${system.name} | ${r.toInit.toFixed(2)} | ${r.toShell.toFixed(2)} | ${(r.toInit / qemu.toInit).toFixed(2)}x |`);
  }
  mkdirSync(join(CACHE_DIR, "bench"), { recursive: true });
  writeFileSync(join(CACHE_DIR, "bench/boot.json"), JSON.stringify({ kernel: image.kernelVersion, memory, reps, results }, null, 2));
}

await main();
