// A VmmController without a machine, for tests of the API server and the CLI that talks to it:
// it keeps the state the real one would, and records every call.
import type { VmmController } from "../vmm/controller.ts";
import { RequestError, type BalloonStats, type InstanceState, type VmConfig, type SnapshotCreateReport, type MigrationReportBody } from "../vmm/schema.ts";

export class FakeVmmController implements VmmController {
  readonly id = "fake-instance";
  calls: { method: string; args: unknown[] }[] = [];
  current: InstanceState = "Not started";
  running: VmConfig | undefined;
  /** Makes the next call throw a plain Error (Parley's own failure, HTTP 500). */
  failNext = false;

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args: structuredClone(args) });
    if (this.failNext) {
      this.failNext = false;
      throw new Error(`${method} failed`);
    }
  }

  private needRunning(): VmConfig {
    if (!this.running) throw new RequestError("the machine has not been started");
    return this.running;
  }

  state(): InstanceState {
    return this.current;
  }
  config(): VmConfig | undefined {
    return this.running && structuredClone(this.running);
  }
  async start(config: VmConfig): Promise<void> {
    this.record("start", config);
    this.running = structuredClone(config);
    this.current = "Running";
  }
  async pause(): Promise<void> {
    this.record("pause");
    if (this.current !== "Running") throw new RequestError(`cannot pause a machine that is ${this.current.toLowerCase()}`);
    this.current = "Paused";
  }
  async resume(): Promise<void> {
    this.record("resume");
    if (this.current !== "Paused") throw new RequestError(`cannot resume a machine that is ${this.current.toLowerCase()}`);
    this.current = "Running";
  }
  sendCtrlAltDel(): void {
    this.record("sendCtrlAltDel");
    throw new RequestError("SendCtrlAltDel: no keyboard device");
  }
  flushMetrics(): void {
    this.record("flushMetrics");
  }
  setBalloonTarget(amountMib: number): void {
    this.record("setBalloonTarget", amountMib);
    const config = this.needRunning();
    if (!config.balloon) throw new RequestError("balloon: there is no balloon device");
    config.balloon.amount_mib = amountMib;
  }
  setBalloonStatsInterval(seconds: number): void {
    this.record("setBalloonStatsInterval", seconds);
    const config = this.needRunning();
    if (!config.balloon) throw new RequestError("balloon: there is no balloon device");
    config.balloon.stats_polling_interval_s = seconds;
  }
  balloonStatistics(): BalloonStats {
    this.record("balloonStatistics");
    const balloon = this.needRunning().balloon;
    if (!balloon) throw new RequestError("balloon: there is no balloon device");
    const pages = balloon.amount_mib * 256;
    return { target_pages: pages, actual_pages: pages, target_mib: balloon.amount_mib, actual_mib: balloon.amount_mib, free_memory: 1 << 20, total_memory: 1 << 29 };
  }
  updateDrive(driveId: string, patch: object): void {
    this.record("updateDrive", driveId, patch);
    const drive = this.needRunning().drives.find((d) => d.drive_id === driveId);
    if (!drive) throw new RequestError(`drive_id: there is no drive "${driveId}"`);
    Object.assign(drive, patch);
  }
  updateNetworkInterface(ifaceId: string, patch: object): void {
    this.record("updateNetworkInterface", ifaceId, patch);
    const net = this.needRunning()["network-interfaces"].find((n) => n.iface_id === ifaceId);
    if (!net) throw new RequestError(`iface_id: there is no network interface "${ifaceId}"`);
    const { link_up: _, ...settings } = patch as { link_up?: boolean };
    Object.assign(net, settings);
  }
  async metricsText(): Promise<string> {
    return "# HELP parley_instructions_retired_total Guest instructions retired (minstret).\n# TYPE parley_instructions_retired_total counter\nparley_instructions_retired_total 42\n";
  }
  async createSnapshot(request: { snapshot_path: string; mem_file_path: string }): Promise<SnapshotCreateReport> {
    this.record("createSnapshot", request);
    if (this.current !== "Paused") throw new RequestError("snapshot/create: pause the machine first");
    return { ...request, state_bytes: 1000, memory_bytes: 4096, pages_written: 1, pages_skipped: 1023, state_ms: 1, memory_ms: 2 };
  }
  async loadSnapshot(request: object): Promise<void> {
    this.record("loadSnapshot", request);
    this.running = { "boot-source": { firmware: "none" }, "machine-config": { vcpu_count: 1, mem_size_mib: 512, zawrs: true, sstc: true, console: "uart", keyboard: true }, drives: [], "network-interfaces": [] };
    this.current = "Paused";
  }
  async migrate(request: object): Promise<MigrationReportBody> {
    this.record("migrate", request);
    this.needRunning();
    return { total_ms: 100, downtime_ms: 10, rounds: 2, bytes_sent: 1 << 20, pages_sent: 256, final_pages: 3, destination_restore_ms: 5 };
  }
}
