// Shared-folder (virtio-9p) benchmark, inside the booted guest: `dd` writes a file of --mib MiB
// (1 MiB blocks) into a folder of the host mounted with Linux's 9p client (trans=virtio,
// version=9p2000.L, the default msize and cache mode), then reads it back after dropping the
// guest's caches; on Parley (`parley run --share`) and on qemu-system-riscv64 -M virt with its
// virtio-9p-device over `-fsdev local,security_model=none` (the same transport, virtio-mmio), same
// kernel and initramfs, in the same run. Guest-side timing uses busybox `time -p` (0.01 s).
// Options: --mib N (default 64), --reps N (default 3).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { buildGuestImage } from "../src/image/index.ts";
import { REPO_ROOT } from "../src/host/node/paths.ts";
import { capture, median, timings } from "./harness.ts";
import { benchRunInfo, formatRunHeader, wholeNumber, writeBenchJson } from "./report.ts";

const program = new Command("ninep")
  .description("virtio-9p shared folder: in-guest dd write and read MB/s on Parley and QEMU")
  .option("--mib <n>", "size of the file written and read, MiB", wholeNumber(1), 64)
  .option("--reps <n>", "repetitions (the median is reported)", wholeNumber(1), 3)
  .parse(["node", "ninep", ...process.argv.slice(2)]);
const { mib: MIB, reps: REPS } = program.opts<{ mib: number; reps: number }>();
const TAG = "benchshare";


async function main() {
  const info = benchRunInfo(`npm run bench -- ninep --mib ${MIB} --reps ${REPS}`);
  console.log(formatRunHeader("ninep", info));
  const image = await buildGuestImage();
  const command =
    `mkdir -p /mnt/s && mount -t 9p -o trans=virtio,version=9p2000.L ${TAG} /mnt/s && ` +
    `echo MARK write; time -p dd if=/dev/zero of=/mnt/s/file bs=1M count=${MIB}; ` +
    `sync; echo 3 > /proc/sys/vm/drop_caches; ` +
    `echo MARK read; time -p dd if=/mnt/s/file of=/dev/null bs=1M; umount /mnt/s`;
  const append = `console=ttyS0 quiet parley_cmd="${command}"`;
  const results: Record<string, { write: number[]; read: number[] }> = { parley: { write: [], read: [] }, qemu: { write: [], read: [] } };
  for (let r = 0; r < REPS; r++) {
    for (const name of ["parley", "qemu"] as const) {
      const dir = mkdtempSync(join(tmpdir(), "parley-bench-9p-"));
      try {
        const argv =
          name === "parley"
            ? [join(REPO_ROOT, "dist/parley.mjs"), "run", "--share", `path=${dir},tag=${TAG}`, "--append", append]
            : [
                "-M", "virt", "-m", "512M", "-smp", "1", "-nographic", "-no-reboot", "-bios", image.opensbi.fwDynamic!,
                "-kernel", image.kernel, "-initrd", image.initrd, "-append", append,
                "-fsdev", `local,id=fs0,path=${dir},security_model=none`, "-device", `virtio-9p-device,fsdev=fs0,mount_tag=${TAG}`,
              ];
        const t = timings(await capture(name === "parley" ? process.execPath : "qemu-system-riscv64", argv));
        results[name].write.push(MIB / t.get("write")!);
        results[name].read.push(MIB / t.get("read")!);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    console.log(`  run ${r + 1}: Parley write ${results.parley.write[r].toFixed(1)} MB/s read ${results.parley.read[r].toFixed(1)} MB/s; ` +
      `QEMU write ${results.qemu.write[r].toFixed(1)} MB/s read ${results.qemu.read[r].toFixed(1)} MB/s`);
  }
  const row = (label: string, parley: number, qemu: number) => console.log(`| ${label} | ${parley.toFixed(1)} | ${qemu.toFixed(1)} | ${(parley / qemu).toFixed(2)} |`);
  console.log(`\nvirtio-9p benchmark: ${MIB} MiB file, 1 MiB dd blocks, default msize and cache mode; medians of ${REPS}`);
  console.log("| workload (MB/s) | Parley | QEMU | Parley / QEMU |");
  console.log("|---|---:|---:|---:|");
  row("9p sequential write", median(results.parley.write), median(results.qemu.write));
  row("9p sequential read", median(results.parley.read), median(results.qemu.read));
  console.log(`results: ${writeBenchJson("ninep", info, { mib: MIB, reps: REPS, results })}`);
}

await main();
