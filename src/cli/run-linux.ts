// Boots Linux on the virt machine from Node: finds or builds the guest image, attaches the
// console to the terminal, and turns the machine's end into a process exit code.
import { existsSync, readFileSync } from "node:fs";
import { VirtMachine, type MachineExit } from "../machine/virt.ts";
import { nodeClock } from "../host/node/clock.ts";
import { loadCoreModule } from "../host/node/core-module.ts";
import { nodeHartThreads } from "../host/node/hart-threads.ts";
import { jitFromEnvironment } from "../host/node/jit-environment.ts";
import { attachConsole } from "../host/node/console.ts";
import { buildGuestImage, cachedGuestImage, type GuestImage } from "../image/index.ts";
import { UsageError } from "./options.ts";
import { formatLedger } from "./stats.ts";
import { startMetricsServer, type MetricsServer } from "./metrics-server.ts";
import { checkStatsJsonPath, writeLedgerJson } from "./stats-file.ts";
import type { DiskConfig, NetConfig, RngConfig, VsockConfig } from "./device-options.ts";
import type { VirtioDevice } from "../virtio/types.ts";
import type { VirtioCoalesce } from "../virtio/transport/mmio.ts";
import { VirtioBlk } from "../virtio/blk/device.ts";
import type { BlockBackend } from "../virtio/blk/backend.ts";
import { VirtioRngDevice } from "../virtio/rng/device.ts";
import { openBlockFile } from "../host/node/block-file.ts";
import { VirtioNet } from "../virtio/net/device.ts";
import type { NetBackend } from "../virtio/net/backend.ts";
import { randomMac } from "../virtio/net/mac.ts";
import { connectSocketBackend, listenSocketBackend } from "../host/node/net-socket.ts";
import { openTapBackend } from "../host/node/net-tap.ts";
import { VirtioBalloon } from "../virtio/balloon/index.ts";
import { memoryReleaser } from "../host/node/memory-release.ts";
import { VirtioVsock } from "../virtio/vsock/index.ts";
import { VirtioKeyboard } from "../virtio/input/index.ts";
import { UdsVsockBackend } from "../host/node/vsock-uds.ts";
import { randomFillSync } from "node:crypto";

export const DEFAULT_MEMORY = 512 << 20;
export const DEFAULT_APPEND = "console=ttyS0 earlycon=sbi";
export const DEFAULT_APPEND_HVC = "console=hvc0 earlycon=sbi";

export interface RunLinuxOptions {
  memory: number;
  /** Harts (1..32, default 1). */
  cpus?: number;
  /** Host threads for the harts (default: one per hart, at most the host's cores). */
  hostThreads?: number;
  /** Offer Zawrs to the guest (default on). */
  zawrs?: boolean;
  /** SBI idle states in the device tree (default: VirtMachine's, on for paravirtual boot). */
  idleStates?: boolean;
  /** Pause-loop exiting window in instructions, 0 = off (default: VirtMachine's). */
  pauseLoopWindow?: number;
  kernel?: string;
  initrd?: string;
  append?: string;
  /** "none": the hypervisor is the SBI implementation; "opensbi": Debian's OpenSBI; or a fw_dynamic binary path. */
  firmware: string;
  console: "uart" | "hvc";
  sstc: boolean;
  stats: boolean;
  /** Write the ledger (src/machine/ledger.ts) as JSON to this file when the machine stops. */
  statsJson?: string;
  /** Serve the ledger in Prometheus text format on 127.0.0.1:PORT/metrics while the guest runs. */
  metricsPort?: number;
  reboot: boolean;
  disks?: DiskConfig[];
  rng?: RngConfig;
  nets?: NetConfig[];
  /** Present: add a virtio-balloon; targetBytes is its initial target (default 0: no inflation). */
  balloon?: { targetBytes: number };
  vsock?: VsockConfig;
  /** Add a virtio-input keyboard, through which the host sends Ctrl-Alt-Del (default on). */
  keyboard?: boolean;
  /** The RISC-V -> wasm translator (default: PARLEY_JIT, else on); see CpuOptions.jit. */
  jit?: "on" | "off" | "eager";
}

function readInput(path: string, what: string): Uint8Array {
  if (!existsSync(path)) throw new UsageError(`${what} ${path}: no such file`);
  return new Uint8Array(readFileSync(path));
}

async function guestImage(): Promise<GuestImage> {
  const cached = await cachedGuestImage();
  if (cached) return cached;
  process.stderr.write("parley: no guest image in the cache yet; building it from Debian's trixie riscv64 archive\n");
  return buildGuestImage({ progress: true });
}

/** Runs until the guest powers off (or the user quits); returns the exit code for the process. */
/** Opens every --disk image; a file that cannot be used is a UsageError naming the option. */
async function openDisks(disks: DiskConfig[]): Promise<BlockBackend[]> {
  const backends: BlockBackend[] = [];
  try {
    for (const disk of disks) {
      try {
        backends.push(await openBlockFile(disk.path, { readOnly: disk.readOnly, id: disk.id }));
      } catch (err) {
        throw new UsageError(`--disk path=${disk.path}: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    await Promise.all(backends.map((b) => b.close()));
    throw err;
  }
  return backends;
}

/** Opens the network backends; the MAC of each NIC is fixed for the whole run (reboots included). */
async function openNets(nets: NetConfig[]): Promise<{ backend: NetBackend; mac: Uint8Array }[]> {
  const opened: { backend: NetBackend; mac: Uint8Array }[] = [];
  try {
    for (const net of nets) {
      const what = net.kind === "tap" ? `tap=${net.ifname}` : `socket=${net.kind === "socket-listen" ? "listen" : "connect"}:${net.path}`;
      try {
        const backend =
          net.kind === "tap" ? await openTapBackend(net.ifname) : net.kind === "socket-listen" ? await listenSocketBackend(net.path) : await connectSocketBackend(net.path);
        opened.push({ backend, mac: net.mac ?? randomMac() });
      } catch (err) {
        throw new UsageError(`--net ${what}: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    await Promise.all(opened.map((n) => n.backend.close()));
    throw err;
  }
  return opened;
}

export async function runLinux(options: RunLinuxOptions): Promise<number> {
  // Checked first, like the other user-named files and sockets: cheap, and nothing to undo.
  if (options.statsJson !== undefined) checkStatsJsonPath(options.statsJson);
  // The machine of the current boot, for scrapes of the metrics endpoint.
  const live: { machine?: VirtMachine } = {};
  let metrics: MetricsServer | undefined;
  if (options.metricsPort !== undefined) {
    try {
      metrics = await startMetricsServer({ port: options.metricsPort, ledger: () => live.machine?.ledger() });
    } catch (err) {
      throw new UsageError(`--metrics-port ${options.metricsPort}: ${(err as Error).message}`);
    }
    process.stderr.write(`parley: metrics at ${metrics.url}\n`);
  }
  try {
    return await boot(options, live);
  } finally {
    await metrics?.close();
  }
}

async function boot(options: RunLinuxOptions, live: { machine?: VirtMachine }): Promise<number> {
  // The user's files and sockets first: a typo there should not wait for an image download.
  const backends = await openBackends(options);
  const { kernel, initrd, firmware } = await loadBootFiles(options);
  const devices = new DeviceSet(options, backends);
  const terminal = consoleWriter();
  let machine: VirtMachine | undefined;
  const consoleAttachment = attachConsole({
    onInput: (bytes) => machine?.sendInput(bytes),
    onQuit: () => machine?.stop(),
  });
  try {
    for (;;) {
      const virtio = devices.forNewBoot();
      // One hart runs on this thread; several run each on a thread of their own, over a shared memory.
      const threads = (options.cpus ?? 1) > 1;
      machine = new VirtMachine({
        module: loadCoreModule({ shared: threads }),
        hartThreads: threads ? nodeHartThreads() : undefined,
        harts: options.cpus,
        hostThreads: threads ? options.hostThreads : undefined,
        zawrs: options.zawrs,
        idleStates: options.idleStates,
        pauseLoopWindow: options.pauseLoopWindow,
        ramSize: options.memory,
        kernel,
        initrd,
        firmware,
        bootargs: options.append ?? (options.console === "hvc" ? DEFAULT_APPEND_HVC : DEFAULT_APPEND),
        sstc: options.sstc,
        console: options.console,
        virtio,
        virtioTransport: devices.transportOptions,
        output: terminal.write,
        jit: jitFromEnvironment(process.env, options.jit),
        clock: nodeClock,
      });
      live.machine = machine;
      devices.attach(machine);
      const exit = await machine.run();
      terminal.flush();
      devices.vsock?.reset(); // the old guest's host connections end with it
      const ledger = machine.ledger();
      if (options.stats) process.stderr.write("\n" + formatLedger(ledger) + "\n");
      // Rewritten at every boot's end: after reboots the file holds the last boot's ledger.
      if (options.statsJson !== undefined) writeLedgerJson(options.statsJson, ledger);
      if (exit.reason === "reboot" && options.reboot) {
        process.stderr.write("\r\nparley: guest rebooted; starting it again (--no-reboot to exit instead)\r\n");
        continue;
      }
      return exitCode(exit);
    }
  } finally {
    consoleAttachment.detach();
    // The guest flushed what it wanted durable; closing does not add an fsync of its own.
    await Promise.all(backends.disks.map((b) => b.close()));
    await Promise.all(backends.nets.map((n) => n.backend.close()));
    await backends.vsock?.close();
  }
}

/** The host side of every device: disk files, network backends, the vsock socket. Kept across reboots. */
interface HostBackends {
  disks: BlockBackend[];
  nets: { backend: NetBackend; mac: Uint8Array }[];
  vsock: UdsVsockBackend | undefined;
}

async function openBackends(options: RunLinuxOptions): Promise<HostBackends> {
  const disks = await openDisks(options.disks ?? []);
  const nets = await openNets(options.nets ?? []);
  let vsock: UdsVsockBackend | undefined;
  if (options.vsock) {
    vsock = new UdsVsockBackend({ uds: options.vsock.uds });
    try {
      await vsock.listen();
    } catch (err) {
      throw new UsageError(`--vsock uds=${options.vsock.uds}: ${(err as Error).message}`);
    }
  }
  return { disks, nets, vsock };
}

/** Kernel, initrd and firmware: the user's files, or the guest image's (built on first use). */
async function loadBootFiles(options: RunLinuxOptions): Promise<{ kernel: Uint8Array; initrd?: Uint8Array; firmware?: Uint8Array }> {
  const needsImage = options.kernel === undefined || options.firmware === "opensbi";
  const image = needsImage ? await guestImage() : undefined;
  let kernel: Uint8Array;
  let initrd: Uint8Array | undefined;
  if (options.kernel !== undefined) {
    kernel = readInput(options.kernel, "--kernel");
    initrd = options.initrd === undefined ? undefined : readInput(options.initrd, "--initrd");
  } else {
    kernel = readInput(image!.kernel, "kernel");
    initrd = readInput(options.initrd ?? image!.initrd, options.initrd ? "--initrd" : "initrd");
  }
  let firmware: Uint8Array | undefined;
  if (options.firmware === "opensbi") {
    const path = image!.opensbi.fwDynamic;
    if (!path) throw new UsageError("the guest image has no OpenSBI fw_dynamic firmware; rebuild it with `parley image build --force`");
    firmware = readInput(path, "firmware");
  } else if (options.firmware !== "none") {
    firmware = readInput(options.firmware, "--firmware");
  }
  return { kernel, initrd, firmware };
}

/**
 * The virtio devices of a boot. Rebuilt for every boot, so that a reboot gets fresh device state,
 * over the same backends, which stay connected.
 */
class DeviceSet {
  /** Transport settings (interrupt coalescing) of the devices of the current boot. */
  transportOptions = new Map<VirtioDevice, { coalesce?: VirtioCoalesce }>();
  balloon: VirtioBalloon | undefined;
  vsock: VirtioVsock | undefined;
  keyboard: VirtioKeyboard | undefined;
  /** Where the balloon's freed pages go: the current machine's memory releaser. */
  private release = (_paddr: number, _length: number): void => {};

  constructor(
    private readonly options: RunLinuxOptions,
    private readonly backends: HostBackends,
  ) {}

  forNewBoot(): VirtioDevice[] {
    const { options, backends } = this;
    this.transportOptions = new Map();
    const devices: VirtioDevice[] = backends.disks.map((backend, i) => {
      const disk = new VirtioBlk({ backend, name: `virtio-blk${i}` });
      this.transportOptions.set(disk, { coalesce: options.disks![i].coalesce });
      return disk;
    });
    if (options.rng) {
      devices.push(
        new VirtioRngDevice({
          entropy: (bytes) => randomFillSync(bytes),
          bytesPerSecond: options.rng.rate ?? Infinity,
          burstBytes: options.rng.burst,
        }),
      );
    }
    backends.nets.forEach(({ backend, mac }, i) => {
      const nic = new VirtioNet({ backend, mac, name: `virtio-net${i}` });
      this.transportOptions.set(nic, { coalesce: options.nets![i].coalesce });
      devices.push(nic);
    });
    this.balloon = undefined;
    if (options.balloon) {
      this.balloon = new VirtioBalloon({ release: (paddr, length) => this.release(paddr, length), clock: nodeClock });
      this.balloon.setTarget(Math.floor(options.balloon.targetBytes / 4096));
      devices.push(this.balloon);
    }
    this.vsock = backends.vsock ? new VirtioVsock({ guestCid: options.vsock!.cid, backend: backends.vsock, clock: nodeClock }) : undefined;
    if (this.vsock) devices.push(this.vsock);
    // Last, so that it takes no earlier device's virtio slot (and name) from it.
    this.keyboard = (options.keyboard ?? true) ? new VirtioKeyboard() : undefined;
    if (this.keyboard) devices.push(this.keyboard);
    return devices;
  }

  /**
   * Ctrl-Alt-Del on the guest's keyboard: the guest's init runs its ctrlaltdel action (in
   * Parley's image, a graceful poweroff). False when there is no keyboard or too many keys wait.
   */
  sendCtrlAltDel(): boolean {
    return this.keyboard?.sendCtrlAltDel() ?? false;
  }

  /** Connects the devices that need the machine itself (the balloon gives its RAM back). */
  attach(machine: VirtMachine): void {
    if (!this.balloon) return;
    const releaser = memoryReleaser(machine.hostRam);
    if (!releaser.supported) process.stderr.write(`parley: --balloon cannot return memory to the host here: ${releaser.reason}\n`);
    this.release = releaser;
  }
}

/**
 * The UART hands over output a byte at a time; one write to the terminal per slice instead of
 * per byte keeps the host's share of console output small.
 */
function consoleWriter(): { write: (bytes: Uint8Array) => void; flush: () => void } {
  const pending: Uint8Array[] = [];
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    if (pending.length === 0) return;
    // A copy: devices may reuse the buffers they handed over once this returns.
    process.stdout.write(Buffer.concat(pending.splice(0)));
  };
  const write = (bytes: Uint8Array) => {
    pending.push(bytes);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };
  return { write, flush };
}

function exitCode(exit: MachineExit): number {
  switch (exit.reason) {
    case "poweroff":
      return exit.code;
    case "reboot":
    case "stopped":
      return 0;
    case "panic":
      process.stderr.write("\r\nparley: the guest kernel panicked\r\n");
      return 1;
    case "halted":
    case "failed":
      process.stderr.write(`\r\nparley: ${exit.message}\r\n`);
      return 1;
  }
}
