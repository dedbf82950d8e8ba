// User-mode networking benchmark: TCP throughput from the guest to a server on the host's
// 127.0.0.1, on Parley with `--net user` (passt) and on qemu-system-riscv64 -M virt with its own
// user networking (`-netdev user`, libslirp) and virtio-net, same kernel, initramfs and guest
// command, in one run. Each guest gets its address by DHCP (busybox udhcpc), then sends
// `dd if=/dev/zero | nc GATEWAY PORT` --reps times; both user networks map the gateway's address
// to the host's loopback. The host's sink times each connection from accept to the guest's end of
// stream and checks the byte count.
// Options: --mib N (per transfer, default 64), --reps N (transfers per guest, default 3).
import { createServer, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { Command } from "commander";
import { buildGuestImage } from "../src/image/index.ts";
import { REPO_ROOT } from "../src/host/node/paths.ts";
import { runTimed } from "./harness.ts";
import { benchRunInfo, formatRunHeader, wholeNumber, writeBenchJson } from "./report.ts";
import { fmt, median } from "./guest-workloads.ts";

const TIMEOUT_MS = 900_000;

interface Transfer {
  bytes: number;
  seconds: number;
  mbPerS: number;
}

/** A TCP sink on 127.0.0.1: counts and times every connection, one after another. */
async function startSink(): Promise<{ port: number; transfers: Transfer[]; close: () => void }> {
  const transfers: Transfer[] = [];
  const server = createServer((socket: Socket) => {
    const started = performance.now();
    let bytes = 0;
    socket.on("data", (d) => (bytes += d.length));
    socket.on("error", () => {});
    socket.on("end", () => {
      const seconds = (performance.now() - started) / 1000;
      transfers.push({ bytes, seconds, mbPerS: bytes / (1 << 20) / seconds });
      socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, transfers, close: () => server.close() };
}

/**
 * The guest's command (run by the image's init from parley_cmd): DHCP with a lease script that
 * configures eth0 and remembers the gateway, then the transfers.
 */
function guestCommand(port: number, mib: number, reps: number): string {
  const script = "#!/bin/sh\\n[ $1 = bound ] || exit 0\\nip addr add $ip/$mask dev $interface\\nip route add default via $router\\necho $router > /tmp/router\\n";
  return (
    `printf '${script}' > /tmp/lease.sh; chmod +x /tmp/lease.sh; ip link set eth0 up; ` +
    "udhcpc -i eth0 -s /tmp/lease.sh -q -n -t 10 >/dev/null; " +
    `for r in $(seq ${reps}); do dd if=/dev/zero bs=64k count=${mib * 16} 2>/dev/null | nc $(cat /tmp/router) ${port}; done`
  );
}

async function main() {
  const argv = process.argv.slice(2);
  const program = new Command("npm run bench -- user-net")
    .option("--mib <n>", "MiB per transfer", wholeNumber(1), 64)
    .option("--reps <n>", "transfers per guest (medians are reported)", wholeNumber(1), 3)
    .parse(argv, { from: "user" });
  const opts = program.opts<{ mib: number; reps: number }>();
  const image = await buildGuestImage({ progress: false });
  const info = benchRunInfo(["npm run bench -- user-net", ...argv].join(" "));
  console.log(formatRunHeader("user-net", info));
  console.log(`user-net benchmark: TCP guest -> host 127.0.0.1, ${opts.mib} MiB per transfer, ${opts.reps} transfers per guest, medians`);

  const systems = [
    {
      name: "Parley --net user (passt)",
      run: (append: string) => [process.execPath, [join(REPO_ROOT, "dist/parley.mjs"), "run", "--memory", "512M", "--net", "user", "--append", append]] as const,
    },
    {
      name: "qemu-system-riscv64 -M virt (TCG), -netdev user (slirp)",
      run: (append: string) =>
        [
          "qemu-system-riscv64",
          ["-M", "virt", "-m", "512M", "-smp", "1", "-nographic", "-no-reboot", "-bios", image.opensbi.fwDynamic!,
            "-kernel", image.kernel, "-initrd", image.initrd, "-append", append,
            "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"],
        ] as const,
    },
  ];
  const results: Record<string, { medianMbPerS: number; transfers: Transfer[] }> = {};
  for (const system of systems) {
    const sink = await startSink();
    try {
      const append = `console=ttyS0 quiet parley_cmd="${guestCommand(sink.port, opts.mib, opts.reps)}"`;
      const [command, args] = system.run(append);
      const run = await runTimed(command, [...args], { timeoutMs: TIMEOUT_MS });
      if (!/command exited with status 0/.test(run.output)) throw new Error(`${system.name}: the guest's command failed; output tail:\n${run.output.slice(-2000)}`);
      const expected = opts.mib << 20;
      const short = sink.transfers.find((t) => t.bytes !== expected);
      if (sink.transfers.length !== opts.reps || short) {
        throw new Error(`${system.name}: ${sink.transfers.length} transfers of ${sink.transfers.map((t) => t.bytes).join(", ")} bytes, expected ${opts.reps} of ${expected}`);
      }
      results[system.name] = { medianMbPerS: median(sink.transfers.map((t) => t.mbPerS)), transfers: sink.transfers };
      console.log(`  ${system.name}: ${sink.transfers.map((t) => fmt(t.mbPerS, 1)).join(", ")} MB/s`);
    } finally {
      sink.close();
    }
  }
  const [parley, qemu] = systems.map((s) => results[s.name].medianMbPerS);
  console.log("\n| TCP guest -> host 127.0.0.1 (MB/s) | Parley `--net user` (passt) | QEMU `-netdev user` (slirp) | Parley / QEMU |");
  console.log("|---|---:|---:|---:|");
  console.log(`| ${opts.mib} MiB, \`dd | nc\` to the gateway | ${fmt(parley, 1)} | ${fmt(qemu, 1)} | ${fmt(parley / qemu, 2)} |`);
  const outFile = writeBenchJson("user-net", info, { mib: opts.mib, reps: opts.reps, kernel: image.kernelVersion, results });
  console.log(`user-net: wrote ${outFile}`);
}

await main();
