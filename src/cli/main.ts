// The `parley` command.
import { availableParallelism } from "node:os";
import { Command, CommanderError } from "commander";
import { existsSync } from "node:fs";
import { ElfError } from "../platform/elf.ts";
import { runElfFile } from "./run-elf.ts";
import { runLinux, serveApi } from "./run-linux.ts";
import { DEFAULT_APPEND } from "../vmm/machine.ts";
import { ConfigError, DEFAULT_MEM_SIZE_MIB } from "../vmm/schema.ts";
import { readConfigFile, runConfig, type RunFlags } from "./run-config.ts";
import { ApiRefusal, apiRequest, snapshotInstance } from "./api-client.ts";
import { buildDemo } from "../image/guest-programs.ts";
import { buildGuestImage, ImageBuildError } from "../image/index.ts";
import { copySparse } from "../image/rootfs.ts";
import { buildRootDisk } from "../vmm/root-disk.ts";
import { BootImageError } from "../platform/boot-image.ts";
import { DEFAULT_PAUSE_LOOP_WINDOW } from "../machine/virt.ts";
import { MAX_CPUS, parsePositiveInteger, parseSize, UsageError } from "./options.ts";
import { formatLedger, formatStats } from "./stats.ts";
import { serveWeb } from "./web-server.ts";
import { jitCacheFromFlag } from "../host/node/jit-cache.ts";
import type { TranslationCache } from "../cpu/cpu.ts";
import { startCpus } from "./launch-plan.ts";

/** Exit code for bad input from the user (file, option), distinct from a guest's own exit codes. */
const EXIT_USAGE = 2;

const JIT_HELP = "the RISC-V to WebAssembly translator: on or off (default: $PARLEY_JIT, else on); eager translates all code at once (testing)";

type JitSetting = "on" | "off" | "eager";

function parseJitFlag(value: string | undefined): JitSetting | undefined {
  if (value === undefined) return undefined;
  if (value !== "on" && value !== "off" && value !== "eager") throw new UsageError(`--jit ${value}: use on or off`);
  return value;
}

const program = new Command();
program
  .name("parley")
  .description("A paravirtualizing RISC-V (RV64GC) hypervisor in TypeScript and WebAssembly")
  .version("0.1.0")
  .showHelpAfterError("(run `parley --help` for usage)")
  .exitOverride();

program
  .command("run-elf")
  .description("run a bare-metal RV64 ELF program in M-mode; HTIF tohost/fromhost serve console and exit")
  .argument("<file>", "ELF executable (RV64, little-endian, loaded at its physical addresses)")
  .option("--max-insns <n>", "stop after about N instructions (exit code 124 if the program has not exited)")
  .option("--memory <size>", "guest RAM size, e.g. 128M", "128M")
  .option("--stats", "print the ledger (instructions, exits by device and register, traps, bytes moved) to stderr at exit")
  .option("--stats-json <file>", "write the ledger as JSON to FILE at exit")
  .option("--jit <on|off>", JIT_HELP)
  .action(async (file: string, opts: { maxInsns?: string; memory: string; stats?: boolean; statsJson?: string; jit?: string }) => {
    const jit = parseJitFlag(opts.jit);
    const maxInsns = opts.maxInsns === undefined ? undefined : parsePositiveInteger(opts.maxInsns, "--max-insns");
    const ramSize = parseSize(opts.memory, "--memory");
    if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
    const result = await runElfFile(file, { maxInsns, ramSize, jit, statsJson: opts.statsJson, onOutput: (text) => process.stdout.write(text) });
    if (opts.stats) process.stderr.write(formatLedger(result.ledger) + "\n");
    if (result.stopReason === "instruction-limit") {
      process.stderr.write(`parley: stopped after ${result.instret} instructions (--max-insns) before the program exited\n`);
      process.exitCode = 124;
    } else {
      process.exitCode = result.exitCode;
    }
  });

program
  .command("demo")
  .description("build (with the riscv64 cross compiler) and run the bare-metal demo program: a quick self-check of the CPU")
  .option("--stats", "print instructions retired, traps by cause and MIPS to stderr at exit")
  .option("--jit <on|off>", JIT_HELP)
  .action(async (opts: { stats?: boolean; jit?: string }) => {
    const jit = parseJitFlag(opts.jit);
    const elf = await buildDemo();
    process.stderr.write(`parley: running ${elf}\n`);
    const result = await runElfFile(elf, { jit, onOutput: (text) => process.stdout.write(text) });
    if (opts.stats) {
      process.stderr.write(
        formatStats({ instructions: result.instret, seconds: result.seconds, trapCounts: result.trapCounts, mmioExits: result.mmioExits }) + "\n",
      );
    }
    process.exitCode = result.exitCode;
  });

/** `parley run`'s own settings beside the VM description's (src/cli/run-config.ts). */
interface RunCommandFlags extends RunFlags {
  stats?: boolean;
  statsJson?: string;
  reboot: boolean;
  apiSock?: string;
  incoming?: string;
  jitCache?: string;
}

function addMachineOptions(command: Command, defaultCpus = 1): Command {
  return command
    .option("--config <file>", "the VM description as JSON (docs/openapi.json's VmConfig: Firecracker's field names); flags given as well override or extend it")
    .option("--api-sock <path>", "serve the REST API (docs/openapi.json) on this Unix socket while the guest runs")
    .option("--memory <size>", "guest RAM, e.g. 512M or 2G", `${DEFAULT_MEM_SIZE_MIB}M`)
    .option("--cpus <n>", `harts (1-${MAX_CPUS}); with more than one, they run on host threads`, String(defaultCpus))
    .option("--host-threads <m>", "host threads for the harts (1 to --cpus; default: one per hart, at most the host's cores); fewer threads than harts overcommit them")
    .option("--zawrs <on|off>", "offer Zawrs (WRS.NTO/STO), so that a hart waiting on a lock yields its host thread", "on")
    .option("--idle-states <on|off>", "describe SBI suspend idle states in the device tree for Linux's cpuidle (default: on without firmware)")
    .option("--ple <on|off|N>", `pause-loop exiting: a hart spinning on PAUSE for N instructions yields its host thread (on = ${DEFAULT_PAUSE_LOOP_WINDOW})`, "on")
    .option("--kernel <file>", "RISC-V Linux Image to boot instead of the Debian kernel from the guest image")
    .option("--initrd <file>", "initramfs (cpio, optionally gzipped) instead of the guest image's")
    .option("--append <cmdline>", `kernel command line (default "${DEFAULT_APPEND}")`)
    .option("--firmware <fw>", "none: Parley is the SBI implementation; opensbi: Debian's OpenSBI in emulated M-mode; or a fw_dynamic binary", "none")
    .option("--console <kind>", "uart (ttyS0, 16550) or hvc (virtio-console)", "uart")
    .option("--sstc <on|off>", "offer the Sstc extension (stimecmp) to the guest", "on")
    .option("--no-reboot", "exit when the guest reboots instead of starting it again")
    .option("--disk <spec>", "virtio-blk disk: path=FILE[,format=raw|qcow2][,snapshot=on][,readonly=on][,root=on][,id=NAME][,coalesce=N/Tus] (repeatable; the guest sees /dev/vda, /dev/vdb, ...)", collect, [])
    .option("--root", "boot the operating system on the first --disk (root=on on it): e.g. the Debian root disk of parley image build --rootfs")
    .option("--rng [spec]", "virtio-rng from the host's CSPRNG: [rate=BYTES_PER_S][,burst=BYTES]")
    .option("--net <spec>", "virtio-net: user[,hostfwd=tcp:127.0.0.1:2222-:22 ...] (passt, no root) | tap=NAME | socket=listen:PATH | socket=connect:PATH, [,mac=52:54:00:..][,coalesce=N/Tus] (repeatable)", collect, [])
    .option("--balloon [spec]", "virtio-balloon (statistics, free page reporting; memory goes back to the host): [target=SIZE]")
    .option("--share <spec>", "share a host folder over virtio-9p: path=DIR,tag=NAME[,readonly=on] (repeatable; in the guest: mount -t 9p -o trans=virtio,version=9p2000.L NAME /mnt)", collect, [])
    .option("--vsock <spec>", "virtio-vsock to Unix sockets (Firecracker's convention): cid=N,uds=PATH")
    .option("--keyboard <on|off>", "virtio-input keyboard, through which the host sends Ctrl-Alt-Del (the guest powers off gracefully); off frees its virtio slot", "on")
    .option("--incoming <src>", "receive a live migration at unix:PATH or tcp:HOST:PORT (parley migrate --to) instead of booting: the machine is the sender's")
    .option("--stats", "print the ledger at exit: instructions, exits, hypercalls, interrupts, virtio notifications, bytes moved")
    .option("--stats-json <file>", "write the ledger as JSON to FILE at exit")
    .option("--metrics-port <port>", "serve the ledger in Prometheus text format at http://127.0.0.1:PORT/metrics")
    .option("--jit <on|off>", JIT_HELP)
    .option("--jit-cache <dir|off>", "keep compiled translations in DIR and reuse them on later boots of the same code, or off (default: cache/jit in Parley's directory)");
}

function parseJitCacheFlag(value: string | undefined): TranslationCache | undefined {
  try {
    return jitCacheFromFlag(value);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function runFromFlags(flags: RunCommandFlags, command: Command): Promise<void> {
  const common = { stats: Boolean(flags.stats), statsJson: flags.statsJson, reboot: flags.reboot, apiSock: flags.apiSock, jitCache: parseJitCacheFlag(flags.jitCache) };
  if (flags.incoming !== undefined) {
    process.exitCode = await runLinux({ incoming: flags.incoming, ...common });
    return;
  }
  const file = flags.config === undefined ? undefined : readConfigFile(flags.config);
  const config = runConfig(flags, (name) => command.getOptionValueSource(name) === "cli", file);
  process.exitCode = await runLinux({ config, ...common });
}

addMachineOptions(
  program.command("run").description("boot Linux (by default Debian's riscv64 kernel and a busybox initramfs) with the console on this terminal"),
).action(runFromFlags);

/** `npm start`: a hart per host core, up to 4 (the harts run in parallel on threads of their own). */
const START_CPUS = startCpus(availableParallelism());
addMachineOptions(program.command("start").description("boot the default guest to a shell (what `npm start` runs)"), START_CPUS).action(runFromFlags);

program
  .command("serve")
  .description("serve the REST API and wait for a client to describe the machine and start it (PUT /actions InstanceStart), as Firecracker does")
  .requiredOption("--api-sock <path>", "the Unix socket to serve the API on")
  .option("--config <file>", "a VM description to start from; the API can change it before InstanceStart")
  .option("--stats", "print the ledger at exit")
  .option("--stats-json <file>", "write the ledger as JSON to FILE at exit")
  .option("--no-reboot", "exit when the guest reboots instead of starting it again")
  .action(async (opts: { apiSock: string; config?: string; stats?: boolean; statsJson?: string; reboot: boolean }) => {
    const initial = opts.config === undefined ? undefined : readConfigFile(opts.config);
    process.exitCode = await serveApi({ apiSock: opts.apiSock, initial, stats: Boolean(opts.stats), statsJson: opts.statsJson, reboot: opts.reboot });
  });

// The running instance's API socket, from the command line (the REST API is in docs/openapi.json).
const API_SOCK_HELP = "the running instance's API socket (parley run --api-sock PATH)";

program
  .command("pause")
  .description("pause a running instance (PATCH /vm {\"state\": \"Paused\"})")
  .requiredOption("--api-sock <path>", API_SOCK_HELP)
  .action(async (opts: { apiSock: string }) => {
    await apiRequest(opts.apiSock, "PATCH", "/vm", { state: "Paused" });
  });

program
  .command("resume")
  .description("resume a paused instance (PATCH /vm {\"state\": \"Resumed\"})")
  .requiredOption("--api-sock <path>", API_SOCK_HELP)
  .action(async (opts: { apiSock: string }) => {
    await apiRequest(opts.apiSock, "PATCH", "/vm", { state: "Resumed" });
  });

program
  .command("snapshot")
  .description("write a running instance's snapshot: pause, PUT /snapshot/create, resume")
  .requiredOption("--api-sock <path>", API_SOCK_HELP)
  .requiredOption("--snapshot <file>", "where the machine's state goes")
  .requiredOption("--mem <file>", "where guest memory goes")
  .option("--leave-paused", "do not resume the instance afterwards")
  .action(async (opts: { apiSock: string; snapshot: string; mem: string; leavePaused?: boolean }) => {
    const report = await snapshotInstance(opts.apiSock, { snapshot_path: opts.snapshot, mem_file_path: opts.mem }, Boolean(opts.leavePaused));
    process.stdout.write(JSON.stringify(report) + "\n");
    process.stderr.write(`parley: snapshot written to ${opts.snapshot} and ${opts.mem}\n`);
  });

program
  .command("migrate")
  .description("move a running instance to a Parley receiving at DEST (PUT /migrate)")
  .requiredOption("--api-sock <path>", API_SOCK_HELP)
  .requiredOption("--to <dest>", "the receiving end (parley run --incoming): unix:PATH (or a socket path) or tcp:HOST:PORT")
  .action(async (opts: { apiSock: string; to: string }) => {
    const answer = await apiRequest(opts.apiSock, "PUT", "/migrate", { destination: opts.to });
    const report = answer.json as { total_ms?: number; downtime_ms?: number; rounds?: number; bytes_sent?: number } | undefined;
    process.stdout.write(JSON.stringify(report) + "\n");
    if (report?.downtime_ms !== undefined) {
      process.stderr.write(
        `parley: migrated in ${report.total_ms?.toFixed(0)} ms, ${report.rounds} pre-copy rounds, ${((report.bytes_sent ?? 0) / 2 ** 20).toFixed(1)} MiB; downtime ${report.downtime_ms.toFixed(1)} ms\n`,
      );
    }
  });

program
  .command("restore")
  .description("run a machine from a snapshot (the command-line face of PUT /snapshot/load), console on this terminal")
  .requiredOption("--snapshot <file>", "the machine's state (parley snapshot --snapshot)")
  .requiredOption("--mem <file>", "guest memory (parley snapshot --mem)")
  .option("--api-sock <path>", "serve the REST API on this Unix socket while the guest runs")
  .option("--stats", "print the ledger at exit")
  .option("--stats-json <file>", "write the ledger as JSON to FILE at exit")
  .option("--no-reboot", "exit when the guest reboots instead of starting it again")
  .action(async (opts: { snapshot: string; mem: string; apiSock?: string; stats?: boolean; statsJson?: string; reboot: boolean }) => {
    if (!existsSync(opts.snapshot)) throw new UsageError(`--snapshot ${opts.snapshot}: no such file`);
    if (!existsSync(opts.mem)) throw new UsageError(`--mem ${opts.mem}: no such file`);
    process.exitCode = await runLinux({
      restore: { snapshot_path: opts.snapshot, mem_file_path: opts.mem, resume_vm: true },
      stats: Boolean(opts.stats),
      statsJson: opts.statsJson,
      reboot: opts.reboot,
      apiSock: opts.apiSock,
    });
  });

program
  .command("web")
  .description("serve a web page that boots the default guest in the browser (the page from `npm run build:web`)")
  .option("--port <port>", "the port to listen on", "8080")
  .option("--host <address>", "the address to listen on", "127.0.0.1")
  .option("--cpus <n>", "harts the page boots (its ?cpus=; default: the browser's cores, up to 4)")
  .option("--memory <size>", "guest RAM the page boots (its ?memory=; default 512M)")
  .action(async (opts: { port: string; host: string; cpus?: string; memory?: string }) => {
    const port = Number(opts.port);
    if (!/^\d+$/.test(opts.port) || port > 65535) throw new UsageError(`--port ${opts.port}: expected a port number from 0 to 65535`);
    const cpus = opts.cpus === undefined ? undefined : parsePositiveInteger(opts.cpus, "--cpus");
    if (cpus !== undefined && cpus > MAX_CPUS) throw new UsageError(`--cpus ${cpus}: at most ${MAX_CPUS}`);
    const memoryMiB = opts.memory === undefined ? undefined : parseSize(opts.memory, "--memory") / 2 ** 20;
    if (memoryMiB !== undefined && (!Number.isInteger(memoryMiB) || memoryMiB < 16)) throw new UsageError(`--memory ${opts.memory}: a whole number of MiB, at least 16M`);
    const server = await serveWeb({ host: opts.host, port, cpus, memoryMiB, log: (line) => process.stdout.write(line + "\n") });
    await new Promise<void>((resolveClosed) => {
      const close = () => {
        server.close(() => resolveClosed());
        server.closeAllConnections();
      };
      process.once("SIGINT", close);
      process.once("SIGTERM", close);
    });
  });

const image = program.command("image").description("the guest image: Debian trixie riscv64 kernel, modules, busybox initramfs, OpenSBI");
image
  .command("build")
  .description("download the packages from Debian's archive and build the image (cached by package versions)")
  .option("--add <packages...>", "further Debian riscv64 packages (with the libraries they need) to put into the initramfs")
  .option("--force", "refresh the package lists and rebuild even when the cache matches")
  .option("--rootfs", "build the Debian root disk instead: ext4 with systemd, apt and openssh-server (boot it with parley run --disk path=FILE --root)")
  .option("--size <size>", "with --rootfs: the disk's size (sparse), e.g. 8G", "8G")
  .option("--output <file>", "with --rootfs: copy the disk to FILE (the cached one must stay unchanged: boot a copy, a qcow2 overlay or snapshot=on)")
  .action(async (opts: { add?: string[]; force?: boolean; rootfs?: boolean; size: string; output?: string }, command: Command) => {
    if (!opts.rootfs) {
      for (const name of ["size", "output"]) {
        if (command.getOptionValueSource(name) === "cli") throw new UsageError(`--${name} is for --rootfs`);
      }
      const built = await buildGuestImage({ add: opts.add, force: opts.force, progress: true });
      process.stdout.write(`kernel  ${built.kernel}\ninitrd  ${built.initrd}\nversion ${built.kernelVersion}\n`);
      return;
    }
    if (opts.add) throw new UsageError("--add is for the initramfs; install packages on the root disk with apt-get inside the guest");
    const sizeBytes = parseSize(opts.size, "--size");
    if (opts.output !== undefined && existsSync(opts.output)) throw new UsageError(`--output ${opts.output} exists: remove it or name another file`);
    const disk = await buildRootDisk({ force: opts.force, progress: true, sizeBytes });
    let image = disk.image;
    if (opts.output !== undefined) {
      await copySparse(disk.image, opts.output);
      image = opts.output;
    }
    process.stdout.write(`disk    ${image}\nssh key ${disk.sshKey}\nlinux   ${disk.kernelVersion}\nuser    parley (password parley)\n`);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else if (err instanceof UsageError || err instanceof ConfigError || err instanceof ElfError || err instanceof BootImageError || err instanceof ImageBuildError) {
    process.stderr.write(`parley: ${err.message}\n`);
    process.exitCode = EXIT_USAGE;
  } else if (err instanceof ApiRefusal) {
    process.stderr.write(`parley: ${err.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`parley: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
