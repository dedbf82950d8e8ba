// Virtio benchmark, inside the booted Debian guest:
//   - virtio-blk sequential write and read with direct I/O (dd oflag/iflag=direct, 1 MiB blocks),
//     on Parley and on qemu-system-riscv64 -M virt with its virtio-blk, same kernel, initramfs
//     and disk size, in the same run;
//   - console output throughput: 1 MiB written to ttyS0 (16550, trap-and-emulate) and to hvc0
//     (virtio-console) by the same Parley guest.
// Guest-side timing uses busybox `time -p` (0.01 s resolution), so sizes are chosen to run seconds.
// The console payload is staged in tmpfs first and both ttys are put in raw output mode
// (stty -opost), so the guest's line discipline does not rewrite every byte and what is timed is
// the path from the tty driver to the host.
// Options: --mib N (disk transfer size, default 256), --reps N (default 3).
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGuestImage } from "../src/image/index.ts";
import { CACHE_DIR, REPO_ROOT } from "../src/host/node/paths.ts";
import { capture, median, timings } from "./harness.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const MIB = option("--mib", 256);
const REPS = option("--reps", 3);
const CONSOLE_BYTES = 1 << 20;


async function main() {
  const image = await buildGuestImage();
  const dir = mkdtempSync(join(tmpdir(), "parley-bench-"));
  const disk = join(dir, "disk.img");
  const blkCommand =
    `echo MARK write; time -p dd if=/dev/zero of=/dev/vda bs=1M count=${MIB} oflag=direct; ` +
    `echo MARK read; time -p dd if=/dev/vda of=/dev/null bs=1M count=${MIB} iflag=direct`;
  const append = (cmd: string, console = "ttyS0") => `console=${console} quiet parley_cmd="${cmd}"`;

  const results: Record<string, { write: number[]; read: number[] }> = { parley: { write: [], read: [] }, qemu: { write: [], read: [] } };
  for (let r = 0; r < REPS; r++) {
    writeFileSync(disk, new Uint8Array(0));
    await capture("truncate", ["-s", `${MIB + 16}M`, disk]).catch(() => undefined);
    const parley = timings(
      await capture(process.execPath, [join(REPO_ROOT, "dist/parley.mjs"), "run", "--disk", `path=${disk}`, "--append", append(blkCommand)]),
    );
    const qemu = timings(
      await capture("qemu-system-riscv64", [
        "-M", "virt", "-m", "512M", "-smp", "1", "-nographic", "-no-reboot", "-bios", image.opensbi.fwDynamic!,
        "-kernel", image.kernel, "-initrd", image.initrd, "-append", append(blkCommand),
        "-drive", `file=${disk},format=raw,if=none,id=d0,cache=none`, "-device", "virtio-blk-device,drive=d0",
      ]),
    );
    for (const [name, t] of [["parley", parley], ["qemu", qemu]] as const) {
      results[name].write.push(MIB / t.get("write")!);
      results[name].read.push(MIB / t.get("read")!);
    }
    console.log(`  run ${r + 1}: Parley write ${results.parley.write[r].toFixed(1)} MB/s read ${results.parley.read[r].toFixed(1)} MB/s; ` +
      `QEMU write ${results.qemu.write[r].toFixed(1)} MB/s read ${results.qemu.read[r].toFixed(1)} MB/s`);
  }

  const consoleCommand =
    `yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c ${CONSOLE_BYTES} > /tmp/payload; ` +
    "stty -opost < /dev/ttyS0; stty -opost < /dev/hvc0; " +
    "echo MARK ttyS0; time -p cat /tmp/payload > /dev/ttyS0; echo MARK hvc0; time -p cat /tmp/payload > /dev/hvc0";
  const consoleRuns: { ttyS0: number[]; hvc0: number[] } = { ttyS0: [], hvc0: [] };
  for (let r = 0; r < REPS; r++) {
    const t = timings(await capture(process.execPath, [join(REPO_ROOT, "dist/parley.mjs"), "run", "--console", "hvc", "--append", append(consoleCommand, "hvc0")]));
    consoleRuns.ttyS0.push(CONSOLE_BYTES / (1 << 20) / t.get("ttyS0")!);
    consoleRuns.hvc0.push(CONSOLE_BYTES / (1 << 20) / t.get("hvc0")!);
  }

  const row = (name: string, parley: number, qemu?: number) =>
    console.log(`| ${name} | ${parley.toFixed(1)} | ${qemu === undefined ? "" : qemu.toFixed(1)} | ${qemu === undefined ? "" : (parley / qemu).toFixed(2)} |`);
  console.log(`\nvirtio benchmark: ${MIB} MiB direct I/O, 1 MiB blocks; 1 MiB console output; medians of ${REPS}`);
  console.log("| workload (MB/s) | Parley | QEMU | Parley / QEMU |");
  console.log("|---|---:|---:|---:|");
  row("virtio-blk sequential write", median(results.parley.write), median(results.qemu.write));
  row("virtio-blk sequential read", median(results.parley.read), median(results.qemu.read));
  row("console output, ttyS0 (16550)", median(consoleRuns.ttyS0));
  row("console output, hvc0 (virtio-console)", median(consoleRuns.hvc0));
  mkdirSync(join(CACHE_DIR, "bench"), { recursive: true });
  writeFileSync(join(CACHE_DIR, "bench/virtio.json"), JSON.stringify({ mib: MIB, reps: REPS, blk: results, console: consoleRuns }, null, 2));
}

await main();
