// The library's machine: `import { Machine } from "parley"`. It takes a VM description
// (src/vmm/schema.ts), validates it, opens the host side of every device (disk files, network
// sockets or TAP devices, the vsock socket), loads the boot files, and runs the guest on a
// VirtMachine, boot after boot if the guest reboots and the owner wants that. While it runs,
// the owner changes what a running machine can change: the balloon's target, rate limits,
// interrupt coalescing, network links; and pauses, resumes, snapshots or migrates it.
//
// `parley run` is a user of this class, and so is the REST API (src/vmm/api-server.ts).
import { availableParallelism } from "node:os";
import { existsSync, readFileSync } from "node:fs";
import { randomFillSync, randomUUID } from "node:crypto";
import { DEFAULT_PAUSE_LOOP_WINDOW, VirtMachine, type MachineExit } from "../machine/virt.ts";
import type { Ledger } from "../machine/ledger.ts";
import type { VirtioDevice } from "../virtio/types.ts";
import type { VirtioCoalesce, VirtioMmioTransport } from "../virtio/transport/mmio.ts";
import { VirtioBlk } from "../virtio/blk/device.ts";
import type { BlockBackend } from "../virtio/blk/backend.ts";
import { VirtioRngDevice } from "../virtio/rng/device.ts";
import { VirtioNet } from "../virtio/net/device.ts";
import type { NetBackend } from "../virtio/net/backend.ts";
import { randomMac } from "../virtio/net/mac.ts";
import { VirtioBalloon } from "../virtio/balloon/index.ts";
import type { BalloonStatName } from "../virtio/balloon/spec.ts";
import { VirtioVsock } from "../virtio/vsock/index.ts";
import { nodeClock } from "../host/node/clock.ts";
import { loadCoreModule } from "../host/node/core-module.ts";
import { nodeHartThreads } from "../host/node/hart-threads.ts";
import { hartThreadCount } from "./host-threads.ts";
import { jitFromEnvironment } from "../host/node/jit-environment.ts";
import { withTranslationCache, type TranslationCache } from "../cpu/cpu.ts";
import { openDiskImage } from "../host/node/disk-image.ts";
import { Qcow2Image } from "../virtio/blk/qcow2/image.ts";
import { connectSocketBackend, listenSocketBackend } from "../host/node/net-socket.ts";
import { openTapBackend } from "../host/node/net-tap.ts";
import { startPasstBackend, type PasstForward } from "../host/node/net-passt.ts";
import { memoryReleaser } from "../host/node/memory-release.ts";
import { UdsVsockBackend } from "../host/node/vsock-uds.ts";
import { openShareDir, type ShareDir } from "../host/node/share-dir.ts";
import { VirtioNinep } from "../virtio/9p/index.ts";
import { buildGuestImage, cachedGuestImage, type GuestImage } from "../image/index.ts";
import {
  ConfigError,
  type HostForward,
  parseMac,
  parseVmConfig,
  parseWith,
  PartialDrive,
  PartialNetworkInterface,
  RequestError,
  type BalloonStats,
  type Coalescing,
  type Drive,
  type InstanceState,
  type MigrateParams,
  type RateLimiter,
  type SnapshotCreateParams,
  type SnapshotLoadParams,
  type VmConfig,
  type VmConfigInput,
} from "./schema.ts";
import { openSnapshotFiles, restoreIntoMachine, writeSnapshotFiles, type RestoreReport, type SnapshotReport } from "./snapshot-io.ts";
import { listenForMigration, migrateOut, MigrationError, parseMigrationEndpoint, type MigrationReport } from "./migration.ts";
import { VirtioKeyboard } from "../virtio/input/index.ts";
import { SnapshotError } from "../platform/persist.ts";
import { SnapshotFileError } from "./snapshot-file.ts";
import { MemoryFileError } from "../host/node/memory-file.ts";
import type { RateLimiterConfig } from "../virtio/rate-limiter.ts";

import { DEFAULT_APPEND, DEFAULT_APPEND_HVC } from "../machine/kernel-command-line.ts";

export { DEFAULT_APPEND, DEFAULT_APPEND_HVC };
/** Balloon pages are 4 KiB (virtio spec 5.5.6): 256 to the MiB. */
const PAGES_PER_MIB = 256;

export interface MachineOptions {
  /** The instance's name (GET / on the API); default a random UUID. */
  id?: string;
  /** Guest console output; default: dropped. */
  output?: (bytes: Uint8Array) => void;
  /** Warnings that are no reason to fail (e.g. the balloon cannot give memory back here). */
  warn?: (message: string) => void;
  /** At the end of each boot: return true to boot the guest again (after a reboot). Default: never. */
  bootEnded?: (exit: MachineExit, ledger: Ledger) => boolean;
  /**
   * How a restore fills guest RAM: "map" (default: the memory file is mapped copy-on-write, pages
   * read when first touched) or "copy" (every non-zero page read before the guest runs).
   */
  restoreMemory?: "map" | "copy";
  /**
   * Where compiled translations persist between boots (src/host/node/jit-cache.ts for a
   * directory); default: none, every boot translates afresh. `parley run` passes cache/jit/.
   */
  jitCache?: TranslationCache;
  /** The guest image, for a description without kernel_image_path; default: the cache, built on first use. */
  guestImage?: () => Promise<GuestImage>;
}

/** Every NIC's MTU (virtio-net config space); passt offers the same by DHCP. */
const NIC_MTU = 1500;

/** The host side of every device: disk files, network backends, the vsock socket. Kept across reboots. */
interface HostBackends {
  disks: BlockBackend[];
  nets: { backend: NetBackend; mac: Uint8Array }[];
  vsock: UdsVsockBackend | undefined;
  /** The shared folders (virtio-9p), in the description's order. */
  shares: ShareDir[];
}

interface BootFiles {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  firmware?: Uint8Array;
}

/** The lifecycle as a table: which operation is allowed in which state, and where it leads. */
const TRANSITIONS: Record<"start" | "restore" | "pause" | "resume" | "finish", Partial<Record<InstanceState, InstanceState>>> = {
  start: { "Not started": "Running" },
  /** A snapshot loaded or a migration received: the machine exists, paused, until resumed. */
  restore: { "Not started": "Paused" },
  pause: { Running: "Paused" },
  resume: { Paused: "Running" },
  finish: { Running: "Stopped", Paused: "Stopped", "Not started": "Stopped" },
};

/**
 * The kernel command line with the root device's arguments: root= names the disk by its serial
 * (the drive ID, which virtio-blk reports through GET_ID and Linux lists in /sys/block/vdX/serial),
 * so the order of the disks does not matter. Boot arguments that name a root already win.
 */
export function withRootDevice(bootArgs: string, drives: readonly Pick<Drive, "drive_id" | "is_read_only" | "is_root_device">[]): string {
  const root = drives.find((d) => d.is_root_device);
  if (!root || /(^|\s)root=/.test(bootArgs)) return bootArgs;
  return `${bootArgs} root=/dev/disk/by-id/virtio-${root.drive_id} ${root.is_read_only ? "ro" : "rw"}`;
}

export class Machine {
  readonly id: string;
  private currentState: InstanceState = "Not started";
  private vm: VirtMachine | undefined;
  private devices: DeviceSet;
  private finished: Promise<MachineExit> | undefined;
  private closed = false;
  /** What the last restore (snapshot load or incoming migration) did, for reports. */
  lastRestore: (RestoreReport & { totalMs: number }) | undefined;

  private constructor(
    private readonly description: VmConfig,
    private readonly backends: HostBackends,
    /** Boot files: loaded by create(); a restored machine loads them only if the guest reboots. */
    private boot: BootFiles | undefined,
    private readonly options: MachineOptions,
  ) {
    this.id = options.id ?? randomUUID();
    this.devices = new DeviceSet(description, backends, options);
  }

  /**
   * Validates the description (a ConfigError names the field), opens the host backends and loads
   * the boot files. Nothing runs until start() or run().
   */
  static async create(input: VmConfigInput, options: MachineOptions = {}): Promise<Machine> {
    const config = parseVmConfig(input);
    // The user's files and sockets first: a typo there should not wait for an image download.
    const backends = await openBackends(config);
    try {
      const boot = await loadBootFiles(config, options.guestImage ?? defaultGuestImage(options));
      return new Machine(config, backends, boot, options);
    } catch (err) {
      await closeBackends(backends);
      throw err;
    }
  }

  /**
   * A machine from a snapshot (PUT /snapshot/load, `parley restore`): both files are read and
   * checked (format, checksum, the memory file's identity and size) and the snapshot's VM
   * description validated before anything is built; the host backends it names (disk files,
   * sockets) are opened again. The machine is Paused, or Running with `resume_vm`. Every restore
   * is a new VM generation (VMGenID), so clones reseed their RNGs.
   */
  static async restore(request: SnapshotLoadParams, options: MachineOptions = {}): Promise<Machine> {
    try {
      return await Machine.restoreFrom(request, options);
    } catch (err) {
      // A snapshot is user input: what is wrong with it is the user's to fix (API: 400; CLI: exit 2).
      if (err instanceof SnapshotFileError || err instanceof MemoryFileError || err instanceof SnapshotError) throw new ConfigError(err.message);
      throw err;
    }
  }

  private static async restoreFrom(request: SnapshotLoadParams, options: MachineOptions): Promise<Machine> {
    const started = performance.now();
    const loaded = openSnapshotFiles({ snapshotPath: request.snapshot_path, memFilePath: request.mem_file_path });
    try {
      let config: VmConfig;
      try {
        config = parseVmConfig(loaded.body.config);
      } catch (err) {
        throw new ConfigError(`snapshot ${request.snapshot_path}: its VM description: ${(err as Error).message}`);
      }
      const backends = await openBackends(config);
      const machine = new Machine(config, backends, undefined, options);
      try {
        const vm = machine.prepareRestore();
        const report = restoreIntoMachine(vm, loaded, { memory: options.restoreMemory });
        machine.startRestored(vm);
        if (request.resume_vm) await machine.resume();
        machine.lastRestore = { ...report, totalMs: performance.now() - started };
        return machine;
      } catch (err) {
        machine.vm?.stop();
        await machine.close();
        throw err;
      }
    } finally {
      loaded.memory.close();
    }
  }

  /**
   * The receiving end of a live migration (`parley run --incoming`): listens at `source`
   * ("unix:PATH" or "tcp:HOST:PORT"), builds the machine the sender describes, takes its memory
   * and state, and returns it Running. `onListening` is told where it listens.
   */
  static async incoming(source: string, options: MachineOptions & { onListening?: (where: string) => void; timeoutMs?: number } = {}): Promise<Machine> {
    let endpoint;
    try {
      endpoint = parseMigrationEndpoint(source);
    } catch (err) {
      throw new ConfigError(`incoming: ${(err as Error).message}`);
    }
    const listener = await listenForMigration(endpoint);
    const where = listener.endpoint.kind === "unix" ? `unix:${listener.endpoint.path}` : `tcp:${listener.endpoint.host}:${listener.endpoint.port}`;
    options.onListening?.(where);
    try {
      const result = await listener.accept(
        async (hello) => {
          let config: VmConfig;
          try {
            config = parseVmConfig(hello.config);
          } catch (err) {
            throw new ConfigError(`the incoming machine's VM description: ${(err as Error).message}`);
          }
          const machine = new Machine(config, await openBackends(config), undefined, options);
          const vm = machine.prepareRestore();
          return { machine, vm, start: () => machine.startRestored(vm) };
        },
        { timeoutMs: options.timeoutMs },
      );
      result.machine.currentState = TRANSITIONS.resume.Paused!;
      result.machine.lastRestore = { memory: "copy", mapUnavailable: undefined, memoryBytes: result.bytesReceived, memoryMs: 0, stateMs: result.restoreMs, totalMs: result.restoreMs };
      return result.machine;
    } finally {
      listener.close();
    }
  }

  /** The validated description, with the hot changes made so far: JSON-safe, a deep copy. */
  get config(): VmConfig {
    return structuredClone(this.description);
  }

  get state(): InstanceState {
    return this.currentState;
  }

  /** The VirtMachine of the current boot (for the lifecycle internals: snapshots, migration). */
  get current(): VirtMachine | undefined {
    return this.vm;
  }

  /** Starts the guest in the background; run() or exited waits for its end. */
  start(): void {
    this.transition("start");
    this.finished = this.bootLoop();
  }

  /** Starts the guest if it has not started, and returns how it ended. */
  run(): Promise<MachineExit> {
    if (this.currentState === "Not started") this.start();
    return this.exited;
  }

  /** How the machine ended; rejects if it was never started. */
  get exited(): Promise<MachineExit> {
    return this.finished ?? Promise.reject(new RequestError("the machine has not been started"));
  }

  /** Console input for the guest (the UART, or hvc0 with console "hvc"). */
  sendInput(bytes: Uint8Array): void {
    this.vm?.sendInput(bytes);
  }

  /**
   * Stops the harts and quiesces the devices (VirtMachine.pause): guest time stops too, and the
   * pause is not steal time. PATCH /vm {"state": "Paused"}.
   */
  async pause(): Promise<void> {
    const vm = this.runningMachine("pause");
    await vm.pause();
    this.transition("pause");
    // A qcow2 image caches metadata until a flush: write it back, so that the disk files are
    // complete while the machine is paused (and can be copied beside a snapshot).
    await Promise.all(this.backends.disks.filter((d) => d instanceof Qcow2Image).map((d) => d.flush()));
  }

  async resume(): Promise<void> {
    const vm = this.runningMachine("resume");
    await vm.resume();
    this.transition("resume");
  }

  /** Ctrl-Alt-Del on the guest's virtio keyboard: Parley's guest image powers off gracefully. */
  sendCtrlAltDel(): void {
    this.runningMachine();
    const keyboard = this.devices.keyboard;
    if (!keyboard) throw new RequestError("SendCtrlAltDel: no keyboard device (machine-config.keyboard is false)");
    if (!keyboard.sendCtrlAltDel()) throw new RequestError("SendCtrlAltDel: the guest is not reading its keyboard (too many keys waiting)");
  }

  /**
   * Asks the guest to shut down: Ctrl-Alt-Del on its keyboard when there is one (the guest's
   * init then powers off through SBI SRST and run() ends with "poweroff"); without a keyboard,
   * the machine is stopped at the next slice boundary ("stopped"), as Ctrl-A x does.
   */
  shutdown(): "ctrl-alt-del" | "stopped" {
    if (this.vm && this.devices.keyboard && this.currentState === "Running" && this.devices.keyboard.sendCtrlAltDel()) return "ctrl-alt-del";
    this.stop();
    return "stopped";
  }

  /** Ends the run at the next slice boundary (a paused machine ends too). */
  stop(): void {
    const vm = this.vm;
    if (!vm) return;
    this.devices.stopping = true;
    vm.stop();
  }

  // ---- hot changes ---------------------------------------------------------------------------

  setBalloonTarget(amountMib: number): void {
    const balloon = this.description.balloon;
    if (!balloon) throw new RequestError("balloon: there is no balloon device");
    const mem = this.description["machine-config"].mem_size_mib;
    if (!Number.isSafeInteger(amountMib) || amountMib < 0 || amountMib > mem) throw new RequestError(`amount_mib: must be a whole number from 0 to mem_size_mib (${mem})`);
    this.devices.balloon?.setTarget(amountMib * PAGES_PER_MIB);
    balloon.amount_mib = amountMib;
  }

  setBalloonStatsInterval(seconds: number): void {
    const balloon = this.description.balloon;
    if (!balloon) throw new RequestError("balloon: there is no balloon device");
    if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > 86_400) throw new RequestError("stats_polling_interval_s: must be a whole number from 0 to 86400");
    this.devices.balloon?.setStatsInterval(seconds * 1000);
    balloon.stats_polling_interval_s = seconds;
  }

  /** Firecracker's BalloonStats: the target and actual size, and the guest's last statistics. */
  balloonStatistics(): BalloonStats {
    const balloon = this.description.balloon;
    if (!balloon) throw new RequestError("balloon: there is no balloon device");
    if (balloon.stats_polling_interval_s === 0) throw new RequestError("balloon statistics are not enabled (stats_polling_interval_s is 0)");
    const device = this.devices.balloon;
    const target = device?.targetPages ?? balloon.amount_mib * PAGES_PER_MIB;
    const actual = device?.actualPages ?? 0;
    return {
      target_pages: target,
      actual_pages: actual,
      target_mib: Math.floor(target / PAGES_PER_MIB),
      actual_mib: Math.floor(actual / PAGES_PER_MIB),
      ...guestStatistics(device?.stats() ?? {}),
    };
  }

  /** PATCH /drives/{id}: rate limiter and interrupt coalescing, checked whole before anything changes. */
  updateDrive(driveId: string, patch: Omit<PartialDrive, "drive_id">): void {
    const change = parseWith(PartialDrive, { drive_id: driveId, ...patch });
    const index = this.description.drives.findIndex((d) => d.drive_id === driveId);
    if (index < 0) throw new RequestError(`drive_id: there is no drive "${driveId}"`);
    const device = this.devices.disks[index] as VirtioBlk | undefined;
    if (change.rate_limiter) device?.updateRateLimiter(rateLimiterConfig(change.rate_limiter));
    if (change.coalescing) this.setCoalescing(device, change.coalescing);
    const drive = this.description.drives[index];
    if (change.rate_limiter) drive.rate_limiter = change.rate_limiter;
    if (change.coalescing) drive.coalescing = change.coalescing;
  }

  /** PATCH /network-interfaces/{id}: rate limiters, coalescing and the link, checked whole first. */
  updateNetworkInterface(ifaceId: string, patch: Omit<PartialNetworkInterface, "iface_id">): void {
    const change = parseWith(PartialNetworkInterface, { iface_id: ifaceId, ...patch });
    const nets = this.description["network-interfaces"];
    const index = nets.findIndex((n) => n.iface_id === ifaceId);
    if (index < 0) throw new RequestError(`iface_id: there is no network interface "${ifaceId}"`);
    const device = this.devices.nics[index] as VirtioNet | undefined;
    if (change.rx_rate_limiter || change.tx_rate_limiter) {
      device?.updateRateLimiter({
        rx: change.rx_rate_limiter ? rateLimiterConfig(change.rx_rate_limiter) : undefined,
        tx: change.tx_rate_limiter ? rateLimiterConfig(change.tx_rate_limiter) : undefined,
      });
    }
    if (change.link_up !== undefined) {
      device?.setLinkUp(change.link_up);
      this.devices.linkUp[index] = change.link_up;
    }
    if (change.coalescing) this.setCoalescing(device, change.coalescing);
    const net = nets[index];
    if (change.rx_rate_limiter) net.rx_rate_limiter = change.rx_rate_limiter;
    if (change.tx_rate_limiter) net.tx_rate_limiter = change.tx_rate_limiter;
    if (change.coalescing) net.coalescing = change.coalescing;
  }

  private setCoalescing(device: VirtioDevice | undefined, coalescing: Coalescing): void {
    if (!device) return;
    this.transportOf(device)?.setCoalesce(toVirtioCoalesce(coalescing));
    this.devices.transportOptions.set(device, { coalesce: toVirtioCoalesce(coalescing) });
  }

  private transportOf(device: VirtioDevice): VirtioMmioTransport | undefined {
    return this.vm?.virtio.find((t) => t.device === device);
  }

  /** The current boot's ledger (undefined before the first boot). */
  metrics(): Ledger | undefined {
    return this.vm?.ledger();
  }

  // ---- snapshots and migration (src/vmm/snapshot.ts, migration.ts) ---------------------------

  /**
   * Writes a snapshot of the paused machine: the state file (the VM description, every
   * component's state) and the memory file (zero pages skipped). The disks are not copied: take a
   * copy (or reflink) of each disk file while the machine is paused if the guest goes on after.
   */
  async createSnapshot(request: SnapshotCreateParams): Promise<SnapshotReport> {
    if (this.currentState !== "Paused") throw new RequestError("snapshot/create: pause the machine first (PATCH /vm {\"state\": \"Paused\"})");
    try {
      return writeSnapshotFiles(this.vm!, this.config, { snapshotPath: request.snapshot_path, memFilePath: request.mem_file_path });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "EACCES" || code === "EISDIR" || code === "ENOSPC") throw new RequestError(`snapshot/create: ${(err as Error).message}`);
      throw err;
    }
  }

  /**
   * Live migration to a Parley listening at `destination` (`parley run --incoming`): pre-copy with
   * the dirty log, then a short stop-and-copy. On success the guest runs there and this machine
   * ends with { reason: "migrated" }; on failure it runs on here, unchanged.
   */
  async migrate(request: MigrateParams): Promise<MigrationReport> {
    const cached = this.config.drives.findIndex((_, i) => this.backends.disks[i] instanceof Qcow2Image);
    if (cached >= 0) {
      // The destination opens the image before the source's last writes and would keep stale
      // metadata; only raw disks (on storage both hosts share) migrate.
      throw new RequestError(`migrate: drives[${cached}] is a qcow2 image or snapshot=on, which cannot be migrated`);
    }
    const vm = this.runningMachine();
    let endpoint;
    try {
      endpoint = parseMigrationEndpoint(request.destination.includes(":") ? request.destination : `unix:${request.destination}`);
    } catch (err) {
      throw new RequestError(`destination: ${(err as Error).message}`);
    }
    let report: MigrationReport;
    try {
      report = await migrateOut(vm, this.config, endpoint);
    } catch (err) {
      // The guest runs on here; the caller learns why the migration did not happen.
      if (err instanceof MigrationError) throw new RequestError(`migrate: ${err.message}; the machine runs on here`);
      throw err;
    }
    this.devices.stopping = true;
    vm.stop("migrated");
    return report;
  }

  /** Closes the host backends; the machine cannot run again. Called by run()'s end itself. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeBackends(this.backends);
  }

  // ---- internals -----------------------------------------------------------------------------

  private transition(operation: keyof typeof TRANSITIONS): void {
    const next = TRANSITIONS[operation][this.currentState];
    if (next === undefined) throw new RequestError(`cannot ${operation} a machine that is ${this.currentState.toLowerCase()}`);
    this.currentState = next;
  }

  private runningMachine(operation?: keyof typeof TRANSITIONS): VirtMachine {
    if (operation) {
      if (TRANSITIONS[operation][this.currentState] === undefined) throw new RequestError(`cannot ${operation} a machine that is ${this.currentState.toLowerCase()}`);
    } else if (this.currentState !== "Running") {
      throw new RequestError(`the machine is ${this.currentState.toLowerCase()}`);
    }
    if (!this.vm) throw new RequestError("the machine has not booted yet");
    return this.vm;
  }

  /** A VirtMachine for a restore (snapshot or migration): built without boot images, paused. */
  private prepareRestore(): VirtMachine {
    const vm = this.newVirtMachine(undefined);
    this.vm = vm;
    this.devices.attach(vm);
    return vm;
  }

  /** Runs a restored VirtMachine (paused until resume()). */
  private startRestored(vm: VirtMachine): void {
    this.transition("restore");
    this.finished = this.bootLoop(vm);
  }

  /** This boot's VirtMachine; with `boot` undefined, one to restore into (fromSnapshot). */
  private newVirtMachine(boot: BootFiles | undefined): VirtMachine {
    const { description, options } = this;
    const machine = description["machine-config"];
    const source = description["boot-source"];
    const virtio = this.devices.forNewBoot();
    // One hart runs on this thread; several run each on a thread of their own, over a shared memory.
    const threads = machine.vcpu_count > 1;
    return new VirtMachine({
          module: loadCoreModule({ shared: threads }),
          hartThreads: threads ? nodeHartThreads() : undefined,
          harts: machine.vcpu_count,
          hostThreads: threads ? hartThreadCount(machine.vcpu_count, machine.host_threads, availableParallelism()) : undefined,
          zawrs: machine.zawrs,
          idleStates: machine.idle_states,
          pauseLoopWindow: threads ? (machine.pause_loop_window ?? DEFAULT_PAUSE_LOOP_WINDOW) : 0,
          ramSize: machine.mem_size_mib * 2 ** 20,
          fromSnapshot: boot === undefined,
          kernel: boot?.kernel,
          initrd: boot?.initrd,
          firmware: boot?.firmware,
          // A restored machine has no boot files: its boot path comes from the description.
          bootPath: source.firmware === "none" ? "paravirtual" : "firmware",
          bootargs: withRootDevice(source.boot_args ?? (machine.console === "hvc" ? DEFAULT_APPEND_HVC : DEFAULT_APPEND), description.drives),
          sstc: machine.sstc,
          console: machine.console,
          virtio,
          virtioTransport: this.devices.transportOptions,
          output: options.output ?? (() => {}),
          jit: withTranslationCache(jitFromEnvironment(process.env, machine.jit), this.options.jitCache),
          clock: nodeClock,
        });
  }

  /** Boot after boot until the guest ends for good; `restored` is a first machine already filled from a snapshot. */
  private async bootLoop(restored?: VirtMachine): Promise<MachineExit> {
    const { options } = this;
    try {
      for (;;) {
        let vm = restored;
        restored = undefined;
        if (!vm) {
          this.boot ??= await loadBootFiles(this.description, options.guestImage ?? defaultGuestImage(options));
          vm = this.newVirtMachine(this.boot);
          this.vm = vm;
          this.devices.attach(vm);
        }
        const exit = await vm.run();
        this.devices.vsock?.reset(); // the old guest's host connections end with it
        await this.devices.closeSharedFiles(); // and so do the files it had open in its shares
        const again = options.bootEnded?.(exit, vm.ledger()) ?? false;
        if (exit.reason === "reboot" && again && !this.devices.stopping) continue;
        return exit;
      }
    } finally {
      this.currentState = TRANSITIONS.finish[this.currentState] ?? this.currentState;
      // The guest flushed what it wanted durable; closing does not add an fsync of its own.
      await this.close();
    }
  }
}

/** Firecracker's RateLimiter (the API's) as the devices' rate-limiter settings: the same fields. */
function rateLimiterConfig(limiter: RateLimiter): RateLimiterConfig {
  const bucket = (b: RateLimiter["bandwidth"]) => b && { size: b.size, one_time_burst: b.one_time_burst, refill_time: b.refill_time };
  return { bandwidth: bucket(limiter.bandwidth), ops: bucket(limiter.ops) };
}

function toVirtioCoalesce(c: Coalescing): VirtioCoalesce {
  return { maxCompletions: c.max_completions, maxDelayUs: c.max_delay_us };
}

/** The balloon's statistics under Firecracker's names (virtio spec 5.5.6.4 tags). */
const STAT_FIELDS: Record<BalloonStatName, keyof BalloonStats> = {
  SWAP_IN: "swap_in",
  SWAP_OUT: "swap_out",
  MAJFLT: "major_faults",
  MINFLT: "minor_faults",
  MEMFREE: "free_memory",
  MEMTOT: "total_memory",
  AVAIL: "available_memory",
  CACHES: "disk_caches",
  HTLB_PGALLOC: "hugetlb_allocations",
  HTLB_PGFAIL: "hugetlb_failures",
};

function guestStatistics(stats: Partial<Record<BalloonStatName, bigint>>): Partial<BalloonStats> {
  const out: Partial<BalloonStats> = {};
  for (const [name, value] of Object.entries(stats) as [BalloonStatName, bigint][]) {
    // The guest's numbers: clamp to what JSON carries exactly.
    out[STAT_FIELDS[name]] = Number(value > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : value);
  }
  return out;
}

function defaultGuestImage(options: MachineOptions): () => Promise<GuestImage> {
  return async () => {
    const cached = await cachedGuestImage();
    if (cached) return cached;
    options.warn?.("no guest image in the cache yet; building it from Debian's trixie riscv64 archive");
    return buildGuestImage({ progress: true });
  };
}

function readInput(path: string, field: string): Uint8Array {
  if (!existsSync(path)) throw new ConfigError(`${field}: ${path}: no such file`);
  return new Uint8Array(readFileSync(path));
}

/** Kernel, initrd and firmware: the user's files, or the guest image's (built on first use). */
async function loadBootFiles(config: VmConfig, guestImage: () => Promise<GuestImage>): Promise<BootFiles> {
  const source = config["boot-source"];
  if (source.kernel_image_path === undefined && source.initrd_path !== undefined && !existsSync(source.initrd_path)) {
    throw new ConfigError(`boot-source.initrd_path: ${source.initrd_path}: no such file`);
  }
  const needsImage = source.kernel_image_path === undefined || source.firmware === "opensbi";
  const image = needsImage ? await guestImage() : undefined;
  let kernel: Uint8Array;
  let initrd: Uint8Array | undefined;
  if (source.kernel_image_path !== undefined) {
    kernel = readInput(source.kernel_image_path, "boot-source.kernel_image_path");
    initrd = source.initrd_path === undefined ? undefined : readInput(source.initrd_path, "boot-source.initrd_path");
  } else {
    kernel = readInput(image!.kernel, "the guest image's kernel");
    initrd = readInput(source.initrd_path ?? image!.initrd, source.initrd_path ? "boot-source.initrd_path" : "the guest image's initrd");
  }
  let firmware: Uint8Array | undefined;
  if (source.firmware === "opensbi") {
    const path = image!.opensbi.fwDynamic;
    if (!path) throw new ConfigError("boot-source.firmware: the guest image has no OpenSBI fw_dynamic firmware; rebuild it with `parley image build --force`");
    firmware = readInput(path, "the guest image's firmware");
  } else if (source.firmware !== "none") {
    firmware = readInput(source.firmware, "boot-source.firmware");
  }
  return { kernel, initrd, firmware };
}

/** Opens every backend; one that cannot be opened is a ConfigError naming its field, and closes the others. */
async function openBackends(config: VmConfig): Promise<HostBackends> {
  const backends: HostBackends = { disks: [], nets: [], vsock: undefined, shares: [] };
  try {
    for (const [i, drive] of config.drives.entries()) {
      try {
        backends.disks.push(
          await openDiskImage(drive.path_on_host, { readOnly: drive.is_read_only, id: drive.drive_id, format: drive.format, snapshot: drive.snapshot }),
        );
      } catch (err) {
        throw new ConfigError(`drives[${i}].path_on_host: ${drive.path_on_host}: ${(err as Error).message}`);
      }
    }
    for (const [i, net] of config["network-interfaces"].entries()) {
      const field = net.host_dev_name !== undefined ? "host_dev_name" : net.user !== undefined ? "user" : "socket.socket_path";
      try {
        const backend =
          net.host_dev_name !== undefined
            ? await openTapBackend(net.host_dev_name)
            : net.user !== undefined
              ? await startPasstBackend({ forwards: net.user.host_forwards.map(passtForward), mtu: NIC_MTU })
              : net.socket!.mode === "listen"
                ? await listenSocketBackend(net.socket!.socket_path)
                : await connectSocketBackend(net.socket!.socket_path);
        // The MAC of each NIC is fixed for the machine's life, reboots included; a chosen one is
        // written into the description, so that snapshots and migrations keep it too.
        const mac = net.guest_mac ? parseMac(net.guest_mac) : randomMac();
        net.guest_mac ??= Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":");
        backends.nets.push({ backend, mac });
      } catch (err) {
        throw new ConfigError(`network-interfaces[${i}].${field}: ${(err as Error).message}`);
      }
    }
    if (config.vsock) {
      const vsock = new UdsVsockBackend({ uds: config.vsock.uds_path });
      try {
        await vsock.listen();
      } catch (err) {
        throw new ConfigError(`vsock.uds_path: ${config.vsock.uds_path}: ${(err as Error).message}`);
      }
      backends.vsock = vsock;
    }
    for (const [i, share] of (config.shares ?? []).entries()) {
      try {
        backends.shares.push(await openShareDir(share.path_on_host, { readOnly: share.is_read_only }));
      } catch (err) {
        throw new ConfigError(`shares[${i}].path_on_host: ${share.path_on_host}: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    await closeBackends(backends);
    throw err;
  }
  return backends;
}

/** A host_forwards entry of the description as the passt adapter takes it. */
function passtForward(forward: HostForward): PasstForward {
  return { protocol: forward.protocol, hostAddress: forward.host_address, hostPort: forward.host_port, guestPort: forward.guest_port };
}

async function closeBackends(backends: HostBackends): Promise<void> {
  await Promise.all(backends.disks.map((b) => b.close()));
  await Promise.all(backends.nets.map((n) => n.backend.close()));
  await backends.vsock?.close();
  await Promise.all(backends.shares.map((s) => s.closeAll()));
}

/**
 * The virtio devices of a boot. Rebuilt for every boot, so that a reboot gets fresh device state,
 * over the same backends, which stay connected. Settings changed while running (coalescing,
 * rate limits, the balloon's target, link state) are in the description and carry over.
 */
class DeviceSet {
  /** Transport settings (interrupt coalescing) of the devices of the current boot. */
  transportOptions = new Map<VirtioDevice, { coalesce?: VirtioCoalesce }>();
  disks: VirtioBlk[] = [];
  nics: VirtioNet[] = [];
  balloon: VirtioBalloon | undefined;
  vsock: VirtioVsock | undefined;
  /** The virtio-input keyboard through which the host sends Ctrl-Alt-Del (machine-config.keyboard). */
  keyboard: VirtioKeyboard | undefined;
  /** Link state set through the API, by interface index; reapplied at every boot. */
  linkUp: boolean[] = [];
  /** Set by stop(): a reboot then ends the run instead of booting again. */
  stopping = false;
  /** Where the balloon's freed pages go: the current machine's memory releaser. */
  private release = (_paddr: number, _length: number): void => {};

  constructor(
    private readonly config: VmConfig,
    private readonly backends: HostBackends,
    private readonly options: MachineOptions,
  ) {}

  forNewBoot(): VirtioDevice[] {
    const { config, backends } = this;
    this.transportOptions = new Map();
    const coalescing = (c: Coalescing | undefined) => ({ coalesce: c ? toVirtioCoalesce(c) : undefined });
    this.disks = backends.disks.map((backend, i) => {
      const drive = config.drives[i];
      const disk = new VirtioBlk({ backend, name: `virtio-blk${i}`, clock: nodeClock, rateLimiter: drive.rate_limiter && rateLimiterConfig(drive.rate_limiter) });
      this.transportOptions.set(disk, coalescing(drive.coalescing));
      return disk;
    });
    const devices: VirtioDevice[] = [...this.disks];
    // Firecracker's bucket as the device's own (no bucket: no limit), one_time_burst included.
    if (config.entropy) devices.push(new VirtioRngDevice({ entropy: (bytes) => randomFillSync(bytes), rateLimiter: rateLimiterConfig(config.entropy.rate_limiter ?? {}) }));
    this.nics = backends.nets.map(({ backend, mac }, i) => {
      const net = config["network-interfaces"][i];
      const nic = new VirtioNet({
        backend,
        mac,
        name: `virtio-net${i}`,
        mtu: NIC_MTU,
        clock: nodeClock,
        rxRateLimiter: net.rx_rate_limiter && rateLimiterConfig(net.rx_rate_limiter),
        txRateLimiter: net.tx_rate_limiter && rateLimiterConfig(net.tx_rate_limiter),
      });
      if (this.linkUp[i] === false) nic.setLinkUp(false);
      this.transportOptions.set(nic, coalescing(net.coalescing));
      return nic;
    });
    devices.push(...this.nics);
    this.balloon = undefined;
    if (config.balloon) {
      this.balloon = new VirtioBalloon({
        release: (paddr, length) => this.release(paddr, length),
        clock: nodeClock,
        statsIntervalMs: config.balloon.stats_polling_interval_s * 1000,
      });
      this.balloon.setTarget(config.balloon.amount_mib * PAGES_PER_MIB);
      devices.push(this.balloon);
    }
    this.vsock = backends.vsock ? new VirtioVsock({ guestCid: config.vsock!.guest_cid, backend: backends.vsock, clock: nodeClock }) : undefined;
    if (this.vsock) devices.push(this.vsock);
    backends.shares.forEach((backend, i) => devices.push(new VirtioNinep({ backend, tag: config.shares![i].mount_tag, name: `virtio-9p${i}` })));
    // Last, so that it takes no earlier device's virtio slot (and name) from it.
    this.keyboard = config["machine-config"].keyboard ? new VirtioKeyboard() : undefined;
    if (this.keyboard) devices.push(this.keyboard);
    return devices;
  }

  /** Closes the host files the guest had open in its shared folders (the folders stay shared). */
  async closeSharedFiles(): Promise<void> {
    await Promise.all(this.backends.shares.map((share) => share.closeAll()));
  }

  /** Connects the devices that need the machine itself (the balloon gives its RAM back). */
  attach(machine: VirtMachine): void {
    if (!this.balloon) return;
    const releaser = memoryReleaser(machine.hostRam);
    if (!releaser.supported) this.options.warn?.(`the balloon cannot return memory to the host here: ${releaser.reason}`);
    this.release = releaser;
  }
}
