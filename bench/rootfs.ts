// Boot of the Debian root disk (parley image build --rootfs) to systemd's multi-user.target and to
// the console's login prompt, on Parley and on qemu-system-riscv64 -M virt (TCG) in the same run:
// the same kernel, initramfs and disk, each boot on a fresh qcow2 overlay of the disk (so each is a
// first boot, as a new VM's is), user networking in both (passt for Parley, QEMU's slirp).
// Options: --reps N (default 1), --cpus N (default 1), --memory MiB (default 1024).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { buildGuestImage } from "../src/image/index.ts";
import { REPO_ROOT } from "../src/host/node/paths.ts";
import { buildRootDisk } from "../src/vmm/root-disk.ts";
import { median, runTimed } from "./harness.ts";
import { benchRunInfo, formatRunHeader, wholeNumber, writeBenchJson } from "./report.ts";

/** systemd's status line once multi-user.target is reached, and getty's prompt. */
const MULTI_USER = /Reached target .*Multi-User System/;
const LOGIN = /parley login:/;
const TIMEOUT_MS = 900_000;

interface RootBoot {
  multiUserS: number;
  loginS: number;
}

async function main(): Promise<void> {
  const program = new Command("npm run bench -- rootfs")
    .option("--reps <n>", "boots of each system (medians are reported)", wholeNumber(1), 1)
    .option("--cpus <n>", "harts of each guest", wholeNumber(1), 1)
    .option("--memory <MiB>", "guest memory", wholeNumber(256, /M$/i), 1024)
    .parse(process.argv.slice(2), { from: "user" });
  const o = program.opts<{ reps: number; cpus: number; memory: number }>();
  const info = benchRunInfo(`npm run bench -- rootfs --reps ${o.reps} --cpus ${o.cpus} --memory ${o.memory}`);
  const image = await buildGuestImage({ progress: false });
  const disk = await buildRootDisk({ progress: false });
  console.log(formatRunHeader("rootfs", info));
  console.log(`  Debian ${image.kernelVersion} root disk, ${o.cpus} hart(s), ${o.memory} MiB, ${o.reps} boot(s) each on a fresh qcow2 overlay`);
  const dir = mkdtempSync(join(tmpdir(), "parley-bench-rootfs-"));
  const systems: { name: string; args: (overlay: string) => [string, string[]] }[] = [
    {
      name: "Parley (--net user: passt)",
      args: (overlay) => [process.execPath, [join(REPO_ROOT, "dist/parley.mjs"), "run", "--cpus", String(o.cpus), "--memory", `${o.memory}M`, "--rng", "--disk", `path=${overlay}`, "--root", "--net", "user"]],
    },
    {
      name: "qemu-system-riscv64 -M virt (TCG, slirp)",
      args: (overlay) => [
        "qemu-system-riscv64",
        [
          "-M", "virt", "-m", String(o.memory), "-smp", String(o.cpus), "-nographic", "-no-reboot",
          "-bios", image.opensbi.fwDynamic!, "-kernel", image.kernel, "-initrd", image.initrd,
          "-append", "console=ttyS0 root=/dev/vda rw",
          "-drive", `file=${overlay},format=qcow2,if=none,id=hd0`, "-device", "virtio-blk-device,drive=hd0",
          "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0",
          "-object", "rng-random,filename=/dev/urandom,id=rng0", "-device", "virtio-rng-device,rng=rng0",
        ],
      ],
    },
  ];
  const runs: Record<string, RootBoot[]> = Object.fromEntries(systems.map((s) => [s.name, []]));
  try {
    // Interleaved, so that drifting host load hits both alike.
    for (let rep = 0; rep < o.reps; rep++) {
      for (const system of systems) {
        const overlay = join(dir, `boot-${rep}.qcow2`);
        execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", disk.image, "-F", "raw", overlay]);
        const [command, args] = system.args(overlay);
        const run = await runTimed(command, args, { markers: { multiUser: MULTI_USER, login: LOGIN }, stopAt: LOGIN, timeoutMs: TIMEOUT_MS, stdin: "pipe" });
        rmSync(overlay, { force: true });
        const { multiUser, login } = run.markers;
        if (multiUser === undefined || login === undefined) throw new Error(`${system.name} did not reach the login prompt; output tail:\n${run.output.slice(-2000)}`);
        runs[system.name].push({ multiUserS: multiUser, loginS: login });
        console.log(`  ${system.name}: multi-user.target ${multiUser.toFixed(1)} s, login prompt ${login.toFixed(1)} s`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const results = Object.fromEntries(systems.map((s) => [s.name, { multiUserS: median(runs[s.name].map((r) => r.multiUserS)), loginS: median(runs[s.name].map((r) => r.loginS)), runs: runs[s.name] }]));
  const qemu = results[systems[1].name];
  console.log("\n| system | to multi-user.target (s) | to login prompt (s) | login time vs QEMU |");
  console.log("|---|---:|---:|---:|");
  for (const s of systems) {
    const r = results[s.name];
    console.log(`| ${s.name} | ${r.multiUserS.toFixed(1)} | ${r.loginS.toFixed(1)} | ${(r.loginS / qemu.loginS).toFixed(2)}x |`);
  }
  writeBenchJson("rootfs", info, { kernel: image.kernelVersion, cpus: o.cpus, memoryMiB: o.memory, reps: o.reps, packages: Object.keys(disk.packages).length, results });
}

await main();
