// What the REST API server drives: an interface, so the server can be tested against a fake, and
// its implementation over a Machine. Every method throws ConfigError or RequestError (HTTP 400)
// for what the user got wrong, anything else for Parley's own failures (HTTP 500).
import type { Machine, MachineOptions } from "./machine.ts";
import { Machine as MachineClass } from "./machine.ts";
import { createLedgerRegistry } from "./metrics.ts";
import {
  RequestError,
  type BalloonStats,
  type InstanceState,
  type MigrateParams,
  type PartialDrive,
  type PartialNetworkInterface,
  type SnapshotCreateParams,
  type SnapshotLoadParams,
  type SnapshotCreateReport,
  type MigrationReportBody,
  type VmConfig,
} from "./schema.ts";

export interface VmmController {
  /** The instance's name, for GET /. */
  readonly id: string;
  state(): InstanceState;
  /** The description the machine runs with; undefined before InstanceStart (the server holds the pending one). */
  config(): VmConfig | undefined;
  /** InstanceStart: build the machine from a validated description and start it. */
  start(config: VmConfig): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  sendCtrlAltDel(): void;
  /** FlushMetrics: Parley's metrics are pulled (GET /metrics), so this only checks there is a machine. */
  flushMetrics(): void;
  setBalloonTarget(amountMib: number): void;
  setBalloonStatsInterval(seconds: number): void;
  balloonStatistics(): BalloonStats;
  updateDrive(driveId: string, patch: Omit<PartialDrive, "drive_id">): void;
  updateNetworkInterface(ifaceId: string, patch: Omit<PartialNetworkInterface, "iface_id">): void;
  /** The ledger in Prometheus text format. */
  metricsText(): Promise<string>;
  createSnapshot(request: SnapshotCreateParams): Promise<SnapshotCreateReport>;
  loadSnapshot(request: SnapshotLoadParams): Promise<void>;
  migrate(request: MigrateParams): Promise<MigrationReportBody>;
}

export interface MachineControllerOptions extends MachineOptions {
  /** Called with the machine made at InstanceStart or loaded from a snapshot. */
  onMachine?: (machine: Machine) => void;
}

/** The controller of a real machine: the one `parley run` made, or one made at InstanceStart. */
export class MachineController implements VmmController {
  readonly id: string;
  private readonly registry = createLedgerRegistry();

  constructor(
    private machine: Machine | undefined,
    private readonly options: MachineControllerOptions = {},
  ) {
    this.id = machine?.id ?? options.id ?? "parley";
  }

  private get live(): Machine {
    if (!this.machine) throw new RequestError("the machine has not been started (PUT /actions {\"action_type\": \"InstanceStart\"})");
    return this.machine;
  }

  state(): InstanceState {
    return this.machine?.state ?? "Not started";
  }

  config(): VmConfig | undefined {
    return this.machine?.config;
  }

  async start(config: VmConfig): Promise<void> {
    if (this.machine) throw new RequestError("InstanceStart: the machine has already been started");
    const machine = await MachineClass.create(config, { ...this.options, id: this.id });
    this.machine = machine;
    machine.start();
    this.options.onMachine?.(machine);
    // The run's end is reported through state(); a failure is the owner's to see in the logs.
    machine.exited.catch((err: unknown) => this.options.warn?.(`the machine failed: ${err instanceof Error ? err.message : String(err)}`));
  }

  pause(): Promise<void> {
    return this.live.pause();
  }

  async resume(): Promise<void> {
    this.live.resume();
  }

  sendCtrlAltDel(): void {
    this.live.sendCtrlAltDel();
  }

  flushMetrics(): void {
    void this.live;
  }

  setBalloonTarget(amountMib: number): void {
    this.live.setBalloonTarget(amountMib);
  }

  setBalloonStatsInterval(seconds: number): void {
    this.live.setBalloonStatsInterval(seconds);
  }

  balloonStatistics(): BalloonStats {
    return this.live.balloonStatistics();
  }

  updateDrive(driveId: string, patch: Omit<PartialDrive, "drive_id">): void {
    this.live.updateDrive(driveId, patch);
  }

  updateNetworkInterface(ifaceId: string, patch: Omit<PartialNetworkInterface, "iface_id">): void {
    this.live.updateNetworkInterface(ifaceId, patch);
  }

  metricsText(): Promise<string> {
    this.registry.update(this.machine?.metrics());
    return this.registry.registry.metrics();
  }

  async createSnapshot(request: SnapshotCreateParams): Promise<SnapshotCreateReport> {
    const r = await this.live.createSnapshot(request);
    return {
      snapshot_path: r.snapshotPath,
      mem_file_path: r.memFilePath,
      state_bytes: r.stateBytes,
      memory_bytes: r.memoryBytes,
      pages_written: r.pagesWritten,
      pages_skipped: r.pagesSkipped,
      state_ms: r.stateMs,
      memory_ms: r.memoryMs,
    };
  }

  async loadSnapshot(request: SnapshotLoadParams): Promise<void> {
    if (this.machine) throw new RequestError("snapshot/load: only before the machine starts");
    this.machine = await MachineClass.restore(request, { ...this.options, id: this.id });
    this.options.onMachine?.(this.machine);
  }

  async migrate(request: MigrateParams): Promise<MigrationReportBody> {
    const r = await this.live.migrate(request);
    return {
      total_ms: r.totalMs,
      downtime_ms: r.downtimeMs,
      rounds: r.rounds,
      bytes_sent: r.bytesSent,
      pages_sent: r.pagesSent,
      final_pages: r.finalPages,
      destination_restore_ms: Number.isFinite(r.destinationRestoreMs) ? r.destinationRestoreMs : null,
    };
  }
}
