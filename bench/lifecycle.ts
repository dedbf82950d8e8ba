// VM lifecycle benchmark (`npm run bench -- lifecycle`): snapshot and live migration of a booted
// Debian guest, Parley against qemu-system-riscv64 -M virt (TCG), same kernel and initramfs, one
// hart, in one run.
//
//   - Snapshot create: a guest at its idle shell is saved to files. Parley: VirtMachine.pause() +
//     writeSnapshotFiles(); QEMU: QMP `migrate` to `exec:cat > FILE` (QEMU 7.2 has no file: URI),
//     from the command until query-migrate says completed (the VM is then stopped).
//   - Snapshot restore: from starting to read the files to the guest running. Parley: reading both
//     files, building the VirtMachine (fromSnapshot), restoreIntoMachine(), run() and resume();
//     QEMU (started with -incoming defer beforehand): QMP `migrate-incoming` from `exec:cat FILE`
//     until query-status says running; also from QEMU's process start, for a like-for-like view.
//     Either way the guest must then answer on its console (Enter, a fresh prompt).
//     Sizes on disk are allocated blocks (what du counts).
//   - Live migration, idle and with guest/bench/memwrite.c rewriting memory at a fixed rate:
//     Parley: migrateOut() to listenForMigration() in this same process over TCP on 127.0.0.1;
//     QEMU: a source and a destination process (-incoming tcp:127.0.0.1:PORT), QMP `migrate`,
//     its own total-time and downtime. Both with the same downtime goal (--downtime-ms, QEMU's
//     downtime-limit) and QEMU without its default 32 MiB/s bandwidth cap. The workload's
//     heartbeats go to a file in the guest's tmpfs (read with `cat` over the console), so that the
//     console is as quiet during the move as when idle. After the move the destination's shell must
//     answer and the workload must go on with every page holding the data it last wrote; a
//     destination whose console stays silent is recorded as such (its figures still count).
//
// Options: `npm run bench -- lifecycle --help` lists them (--reps, --memory, --only, --downtime-ms,
// --settle-s, --memwrite, --dir).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGuestImage } from "../src/image/index.ts";
import { buildMemwrite, initrdWithPrograms } from "../src/image/guest-programs.ts";
import { CACHE_DIR } from "../src/host/node/paths.ts";
import { openSnapshotFiles, restoreIntoMachine, writeSnapshotFiles } from "../src/vmm/snapshot-io.ts";
import { listenForMigration, migrateOut, type MigrationReport } from "../src/vmm/migration.ts";
import { COLORS, barChartSvg, writeChart, type BarPanel } from "./charts.ts";
import { fmt, median } from "./guest-workloads.ts";
import {
  ParleyGuest, QemuGuest, parleyConfig, readGuestFiles, runInGuest, shellAnswers, waitForShell, type GuestConsole, type GuestFiles,
} from "./lifecycle-guests.ts";
import { DEFAULT_MEMWRITE, MEMWRITE_LOG, memwriteCommand, memwriteContinuation, memwriteTargetMiBs, parseMemwriteBeats, steadyRateMiBs, type MemwriteSettings } from "./memwrite.ts";
import type { QmpClient } from "./qmp.ts";
import { Command, InvalidArgumentError, Option } from "commander";
import { benchRunInfo, formatRunHeader, wholeNumber, writeBenchJson } from "./report.ts";

const BOOT_TIMEOUT_MS = 300_000;
const ANSWER_TIMEOUT_MS = 30_000;
/** Seconds at the idle shell before a snapshot or migration, for the boot's last work to settle. */
const IDLE_SETTLE_S = 2;
/** QEMU's migration bandwidth cap for every measurement (its default is 32 MiB/s), bytes/s. */
const QEMU_MAX_BANDWIDTH = 64 * 1024 ** 3;
const QMP_POLL_MS = 2;
const PARTS = ["snapshot", "migrate"] as const;
type Part = (typeof PARTS)[number];

interface Options {
  reps: number;
  memoryMiB: number;
  only: Part[];
  downtimeMs: number;
  settleS: number;
  memwrite: MemwriteSettings;
  dir: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const positive = wholeNumber(1);
  const parts = (value: string): Part[] => {
    const names = value.split(",");
    for (const n of names) if (!(PARTS as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown part ${n} (${PARTS.join(", ")})`);
    return names as Part[];
  };
  const memwrite = (value: string): MemwriteSettings => {
    const [mib, rate] = value.split(",").map(positive);
    if (rate === undefined) throw new InvalidArgumentError("expected MIB,PAGES_PER_MS (e.g. 64,40)");
    return { ...DEFAULT_MEMWRITE, mib, pagesPerMs: rate };
  };
  const program = new Command("npm run bench -- lifecycle")
    .option("--reps <n>", "runs of each measurement (medians are reported)", positive, 1)
    .option("--memory <MiB>", "guest memory", wholeNumber(1, /M$/i), 512)
    .addOption(new Option("--only <parts>", `comma-separated, of ${PARTS.join(", ")}`).argParser(parts).default([...PARTS], PARTS.join(",")))
    .option("--downtime-ms <ms>", "the downtime goal given to both hypervisors", positive, 20)
    .option("--settle-s <s>", "seconds between starting the workload and migrating", positive, 3)
    .addOption(
      new Option("--memwrite <MIB,PAGES_PER_MS>", "the memory writer's working set and rate (64,40: 156 MiB/s of 4 KiB pages)")
        .argParser(memwrite)
        .default({ ...DEFAULT_MEMWRITE }, `${DEFAULT_MEMWRITE.mib},${DEFAULT_MEMWRITE.pagesPerMs}`),
    )
    .option("--dir <path>", "where the snapshot files go (default: the system's temporary directory)")
    .parse(argv, { from: "user" });
  const o = program.opts<{ reps: number; memory: number; only: Part[]; downtimeMs: number; settleS: number; memwrite: MemwriteSettings; dir?: string }>();
  return { reps: o.reps, memoryMiB: o.memory, only: o.only, downtimeMs: o.downtimeMs, settleS: o.settleS, memwrite: o.memwrite, dir: o.dir };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bytes of disk the files take (allocated blocks, as du counts), and their apparent size. */
function diskUsage(paths: string[]): { allocatedBytes: number; apparentBytes: number } {
  let allocatedBytes = 0;
  let apparentBytes = 0;
  for (const p of paths) {
    const s = statSync(p);
    allocatedBytes += s.blocks * 512;
    apparentBytes += s.size;
  }
  return { allocatedBytes, apparentBytes };
}

/** The initramfs of the default image with /usr/bin/memwrite added, written once per content. */
async function prepareFiles(): Promise<{ files: GuestFiles; kernelVersion: string }> {
  const image = await buildGuestImage({ progress: false });
  const memwrite = await buildMemwrite();
  if (!image.opensbi.fwDynamic) throw new Error("the guest image has no OpenSBI fw_dynamic; rebuild it with `parley image build --force`");
  // Named after its inputs (both carry a content hash in their paths), as bench/smp.ts does.
  const key = createHash("sha256").update(`${image.initrd}\0${memwrite}`).digest("hex").slice(0, 16);
  const dir = join(CACHE_DIR, "bench/lifecycle");
  const initrd = join(dir, `initrd-${key}.img`);
  if (!existsSync(initrd)) {
    const bytes = initrdWithPrograms(new Uint8Array(readFileSync(image.initrd)), { memwrite: new Uint8Array(readFileSync(memwrite)) });
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${initrd}.${process.pid}.tmp`, bytes);
    renameSync(`${initrd}.${process.pid}.tmp`, initrd);
  }
  return { files: readGuestFiles({ kernel: image.kernel, initrd, firmware: image.opensbi.fwDynamic }), kernelVersion: image.kernelVersion };
}

// ---- snapshot -----------------------------------------------------------------------------------

interface SnapshotSample {
  createMs: number;
  /** To a running guest (Parley: from reading the files; QEMU: from migrate-incoming). */
  restoreMs: number;
  /** QEMU only: from spawning the process to the guest running. */
  restoreFromProcessStartMs?: number;
  /** From the start of the restore to the shell answering Enter. */
  restoreToAnswerMs: number;
  allocatedBytes: number;
  apparentBytes: number;
  /** What each system reports of its own timing. */
  detail: Record<string, number>;
}

async function parleySnapshot(files: GuestFiles, ramSize: number, dir: string): Promise<SnapshotSample> {
  const paths = { snapshotPath: join(dir, "parley.state"), memFilePath: join(dir, "parley.mem") };
  const source = new ParleyGuest(files, ramSize);
  source.start();
  let restored: ParleyGuest | undefined;
  try {
    await waitForShell(source, BOOT_TIMEOUT_MS);
    await sleep(IDLE_SETTLE_S * 1000);
    const t0 = performance.now();
    await source.vm.pause();
    const report = writeSnapshotFiles(source.vm, parleyConfig(ramSize), paths);
    const createMs = performance.now() - t0;
    await source.stop();
    const usage = diskUsage([paths.snapshotPath, paths.memFilePath]);

    const r0 = performance.now();
    const loaded = openSnapshotFiles(paths);
    restored = new ParleyGuest(files, ramSize, { fromSnapshot: true });
    const restore = restoreIntoMachine(restored.vm, loaded);
    loaded.memory.close();
    restored.start();
    await restored.vm.resume();
    const restoreMs = performance.now() - r0;
    await shellAnswers(restored, ANSWER_TIMEOUT_MS);
    const restoreToAnswerMs = performance.now() - r0;
    return {
      createMs, restoreMs, restoreToAnswerMs, ...usage,
      detail: { stateMs: report.stateMs, memoryWriteMs: report.memoryMs, pagesWritten: report.pagesWritten, memoryReadMs: restore.memoryMs, stateRestoreMs: restore.stateMs },
    };
  } finally {
    await source.stop();
    await restored?.stop();
    rmSync(paths.snapshotPath, { force: true });
    rmSync(paths.memFilePath, { force: true });
  }
}

/** Polls query-migrate until the migration completes; throws when it fails. */
async function waitForMigration(qmp: QmpClient, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const info = await qmp.execute<Record<string, unknown>>("query-migrate");
    if (info.status === "completed") return info;
    if (info.status === "failed" || info.status === "cancelled") throw new Error(`QEMU migration ${info.status}: ${String(info["error-desc"] ?? "")}`);
    if (performance.now() > deadline) throw new Error(`QEMU migration not completed within ${timeoutMs / 1000} s (status ${String(info.status)})`);
    await sleep(QMP_POLL_MS);
  }
}

/** Polls query-status until the guest runs. */
async function waitForRunning(qmp: QmpClient, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const status = await qmp.execute<{ running: boolean; status: string }>("query-status");
    if (status.running) return;
    if (status.status === "internal-error" || status.status === "shutdown") throw new Error(`QEMU destination: ${status.status}`);
    if (performance.now() > deadline) throw new Error(`QEMU destination not running within ${timeoutMs / 1000} s (status ${status.status})`);
    await sleep(QMP_POLL_MS);
  }
}

/** The migration parameters every QEMU measurement uses. */
async function setQemuMigrationParameters(qmp: QmpClient, downtimeMs: number): Promise<void> {
  await qmp.execute("migrate-set-parameters", { "max-bandwidth": QEMU_MAX_BANDWIDTH, "downtime-limit": downtimeMs });
}

const numberAt = (info: Record<string, unknown>, ...path: string[]): number => {
  let v: unknown = info;
  for (const key of path) v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  return typeof v === "number" ? v : NaN;
};

/** Runs `body`; a failure says which QEMU step failed and what the QEMU processes printed last. */
async function qemuSteps<T>(body: (step: (name: string) => void) => Promise<T>, guests: () => (QemuGuest | undefined)[]): Promise<T> {
  let current = "start";
  try {
    return await body((name) => (current = name));
  } catch (err) {
    const tails = guests()
      .filter((g): g is QemuGuest => g !== undefined)
      .map((g) => `--- ${g.name} (exit ${g.process.exitCode ?? g.process.signalCode ?? "running"}):\n${g.log.text.slice(-800)}`);
    throw new Error(`${current}: ${(err as Error).message}\n${tails.join("\n")}`);
  }
}

async function qemuSnapshot(files: GuestFiles, memory: string, dir: string, downtimeMs: number): Promise<SnapshotSample> {
  const file = join(dir, "qemu.snapshot");
  const source = new QemuGuest(files, memory, dir, "qemu-snapshot-source");
  let restored: QemuGuest | undefined;
  const clients: QmpClient[] = [];
  try {
    return await qemuSteps(async (step) => {
      step("QMP connect");
      const qmp = await source.qmp();
      clients.push(qmp);
      step("boot to the shell");
      await waitForShell(source, BOOT_TIMEOUT_MS);
      await sleep(IDLE_SETTLE_S * 1000);
      step("migrate to a file");
      await setQemuMigrationParameters(qmp, downtimeMs);
      const t0 = performance.now();
      await qmp.execute("migrate", { uri: `exec:cat > ${file}` });
      const info = await waitForMigration(qmp, 300_000);
      const createMs = performance.now() - t0;
      qmp.close();
      await source.stop();
      const usage = diskUsage([file]);

      step("restore: QMP connect");
      restored = new QemuGuest(files, memory, dir, "qemu-snapshot-restore", ["-incoming", "defer"]);
      const qmpIn = await restored.qmp();
      clients.push(qmpIn);
      step("restore: migrate-incoming");
      const r0 = performance.now();
      await qmpIn.execute("migrate-incoming", { uri: `exec:cat ${file}` });
      await waitForRunning(qmpIn, 300_000);
      const running = performance.now();
      step("restore: the shell answers");
      await shellAnswers(restored, ANSWER_TIMEOUT_MS);
      const restoreToAnswerMs = performance.now() - r0;
      const incoming = await qmpIn.execute<Record<string, unknown>>("query-migrate");
      return {
        createMs,
        restoreMs: running - r0,
        restoreFromProcessStartMs: running - restored.spawnedAt,
        restoreToAnswerMs,
        ...usage,
        detail: {
          totalTimeMs: numberAt(info, "total-time"),
          downtimeMs: numberAt(info, "downtime"),
          ramTransferredBytes: numberAt(info, "ram", "transferred"),
          incomingTotalTimeMs: numberAt(incoming, "total-time"),
        },
      };
    }, () => [source, restored]);
  } finally {
    for (const c of clients) c.close();
    await source.stop();
    await restored?.stop();
    rmSync(file, { force: true });
  }
}

// ---- live migration -----------------------------------------------------------------------------

interface MigrationSample extends DestinationCheck {
  /** The workload's dirtying rate on the source before the move (MiB/s), when it ran. */
  dirtyRateMiBs?: number;
  totalMs: number;
  downtimeMs: number;
  /** From the guest stopping at the source to it running at the destination (Parley's downtime is that already). */
  stopToResumeMs: number;
  rounds: number;
  bytes: number;
  detail: Record<string, unknown>;
}

/** What the destination showed after the move. */
interface DestinationCheck {
  /** The shell answered Enter on the destination's console. */
  destinationAnswered: boolean;
  /** The workload printed heartbeats on from the source's last (unknown when the console stayed silent). */
  workloadContinued?: boolean;
  /** Pages the workload found holding stale data, by its last heartbeat. */
  workloadErrors?: number;
}

/**
 * Lets the idle guest settle, then starts the workload (when asked) and lets it run `settleS`.
 * Its heartbeats go to a file in the guest's tmpfs, so that the console is as quiet during the
 * move as in the idle case.
 */
async function startWorkload(guest: GuestConsole, memwrite: MemwriteSettings | undefined, settleS: number): Promise<void> {
  await sleep(IDLE_SETTLE_S * 1000);
  if (!memwrite) return;
  // `CMD &` ends a command by itself: `true` completes the line runInGuest adds `;` after.
  const started = await runInGuest(guest, `${memwriteCommand(memwrite)} true`);
  if (started.status !== 0) throw new Error(`memwrite did not start: ${started.text}`);
  const deadline = performance.now() + 30_000;
  while (parseMemwriteBeats(await readHeartbeats(guest)).length === 0) {
    if (performance.now() > deadline) throw new Error(`memwrite printed no heartbeat in 30 s: ${await readHeartbeats(guest)}`);
    await sleep(250);
  }
  await sleep(settleS * 1000);
}

const readHeartbeats = async (guest: GuestConsole) => (await runInGuest(guest, `cat ${MEMWRITE_LOG}`)).text;

/**
 * After the move: the shell answers, and the workload goes on where it was with its data intact.
 * A console that stays silent is recorded, not thrown: the migration's own figures still stand,
 * but nothing can be said about the guest.
 */
async function checkDestination(destination: GuestConsole, memwrite: MemwriteSettings | undefined, before: string): Promise<DestinationCheck> {
  try {
    await shellAnswers(destination, ANSWER_TIMEOUT_MS);
  } catch {
    return { destinationAnswered: false };
  }
  if (!memwrite) return { destinationAnswered: true };
  // Two heartbeats after the source's last: the program runs on, not just a line left in a buffer.
  const lastBefore = parseMemwriteBeats(before).at(-1)?.beat ?? 0;
  const deadline = performance.now() + ANSWER_TIMEOUT_MS;
  let after = await readHeartbeats(destination);
  while ((parseMemwriteBeats(after).at(-1)?.beat ?? 0) < lastBefore + 2 && performance.now() < deadline) {
    await sleep(250);
    after = await readHeartbeats(destination);
  }
  const continuation = memwriteContinuation(before, after);
  return {
    destinationAnswered: true,
    workloadContinued: continuation.continued && (continuation.firstAfterBeat ?? 0) >= lastBefore + 1 && (parseMemwriteBeats(after).at(-1)?.beat ?? 0) >= lastBefore + 2,
    workloadErrors: continuation.errorsAfter,
  };
}

async function parleyMigration(files: GuestFiles, ramSize: number, memwrite: MemwriteSettings | undefined, opts: Options): Promise<MigrationSample> {
  const source = new ParleyGuest(files, ramSize);
  source.start();
  let destination: ParleyGuest | undefined;
  try {
    await waitForShell(source, BOOT_TIMEOUT_MS);
    await startWorkload(source, memwrite, opts.settleS);
    const before = memwrite ? await readHeartbeats(source) : "";
    const listener = await listenForMigration({ kind: "tcp", host: "127.0.0.1", port: 0 });
    const incoming = listener.accept(async () => {
      destination = new ParleyGuest(files, ramSize, { fromSnapshot: true });
      const d = destination;
      return { machine: d, vm: d.vm, start: () => d.start() };
    });
    incoming.catch(() => {}); // surfaces below, after the source's side
    let report: MigrationReport;
    try {
      report = await migrateOut(source.vm, parleyConfig(ramSize), listener.endpoint, { downtimeTargetMs: opts.downtimeMs });
    } finally {
      listener.close();
    }
    const arrived = await incoming;
    await source.stop();
    const checks = await checkDestination(arrived.machine, memwrite, before);
    return {
      totalMs: report.totalMs,
      downtimeMs: report.downtimeMs,
      stopToResumeMs: report.downtimeMs,
      rounds: report.rounds,
      bytes: report.bytesSent,
      ...checks,
      dirtyRateMiBs: memwrite ? steadyRateMiBs(parseMemwriteBeats(before)) : undefined,
      detail: { perRound: report.perRound, finalPages: report.finalPages, stateBytes: report.stateBytes, destinationRestoreMs: report.destinationRestoreMs },
    };
  } finally {
    await source.stop();
    await destination?.stop();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function qemuMigration(files: GuestFiles, memory: string, dir: string, memwrite: MemwriteSettings | undefined, opts: Options): Promise<MigrationSample> {
  const source = new QemuGuest(files, memory, dir, "qemu-migrate-source");
  let destination: QemuGuest | undefined;
  const clients: QmpClient[] = [];
  try {
    return await qemuSteps(async (step) => {
      step("QMP connect");
      const qmp = await source.qmp();
      clients.push(qmp);
      step("boot to the shell");
      await waitForShell(source, BOOT_TIMEOUT_MS);
      step("start the workload");
      await startWorkload(source, memwrite, opts.settleS);
      const before = memwrite ? await readHeartbeats(source) : "";
      step("start the destination");
      const port = await freePort();
      const d = new QemuGuest(files, memory, dir, "qemu-migrate-destination", ["-incoming", `tcp:127.0.0.1:${port}`]);
      destination = d;
      const qmpIn = await d.qmp();
      clients.push(qmpIn);
      step("migrate");
      await setQemuMigrationParameters(qmp, opts.downtimeMs);
      await qmp.execute("migrate", { uri: `tcp:127.0.0.1:${port}` });
      const info = await waitForMigration(qmp, 600_000);
      await waitForRunning(qmpIn, 60_000);
      // QEMU's own downtime ends when the source has sent the last data; the events' host
      // timestamps give the guest's whole gap, from stopping at the source to resuming at the
      // destination, as Parley's downtime counts it.
      const stopped = await qmp.waitForEvent("STOP", 5000);
      const resumed = await qmpIn.waitForEvent("RESUME", 5000);
      const observedDowntimeMs = ((resumed.timestampS ?? NaN) - (stopped.timestampS ?? NaN)) * 1000;
      qmp.close();
      await source.stop();
      step("check the destination");
      const checks = await checkDestination(d, memwrite, before);
      return {
        totalMs: numberAt(info, "total-time"),
        downtimeMs: numberAt(info, "downtime"),
        stopToResumeMs: observedDowntimeMs,
        rounds: numberAt(info, "ram", "dirty-sync-count"),
        bytes: numberAt(info, "ram", "transferred"),
        ...checks,
        dirtyRateMiBs: memwrite ? steadyRateMiBs(parseMemwriteBeats(before)) : undefined,
        detail: { setupTimeMs: numberAt(info, "setup-time"), ram: info.ram },
      };
    }, () => [source, destination]);
  } finally {
    for (const c of clients) c.close();
    await source.stop();
    await destination?.stop();
  }
}

// ---- report -------------------------------------------------------------------------------------

const MiB = 1024 * 1024;
const ratio = (p: number, q: number) => (Number.isFinite(p) && Number.isFinite(q) && q !== 0 ? `${(p / q).toFixed(2)}x` : "-");
const row = (label: string, p: number, q: number, digits = 1) => `| ${label} | ${fmt(p, digits)} | ${fmt(q, digits)} | ${ratio(p, q)} |`;
const medianOf = <T>(xs: T[], pick: (x: T) => number | undefined) => median(xs.map((x) => pick(x) ?? NaN));

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const info = benchRunInfo(`npm run bench -- lifecycle${process.argv.length > 2 ? " " + process.argv.slice(2).join(" ") : ""}`);
  console.log(formatRunHeader("lifecycle", info));
  const { files, kernelVersion } = await prepareFiles();
  const ramSize = opts.memoryMiB * MiB;
  const memory = `${opts.memoryMiB}M`;
  const dir = mkdtempSync(join(opts.dir ?? tmpdir(), "parley-lifecycle-"));
  console.log(
    `lifecycle: Debian ${kernelVersion}, ${memory} RAM, 1 hart, ${opts.reps} run(s) each; snapshots in ${dir}; downtime goal ${opts.downtimeMs} ms; ` +
      `workload \`${memwriteCommand(opts.memwrite)}\` (${fmt(memwriteTargetMiBs(opts.memwrite), 0)} MiB/s of pages dirtied)`,
  );
  const snapshots = { parley: [] as SnapshotSample[], qemu: [] as SnapshotSample[] };
  const migrations = { idle: { parley: [] as MigrationSample[], qemu: [] as MigrationSample[] }, memwrite: { parley: [] as MigrationSample[], qemu: [] as MigrationSample[] } };
  const failures: string[] = [];
  // A failure of one measurement is reported and the others still run.
  const attempt = async <T>(what: string, run: () => Promise<T>, into: T[]) => {
    try {
      const sample = await run();
      into.push(sample);
      console.log(`  ${what}: ${JSON.stringify(sample, (k, v) => (k === "detail" ? undefined : typeof v === "number" ? Number(v.toFixed(1)) : v))}`);
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
      console.error(`  ${what} failed: ${(err as Error).message}`);
      process.exitCode = 1;
    }
  };
  try {
    for (let r = 0; r < opts.reps; r++) {
      if (opts.only.includes("snapshot")) {
        await attempt("Parley snapshot", () => parleySnapshot(files, ramSize, dir), snapshots.parley);
        await attempt("QEMU snapshot", () => qemuSnapshot(files, memory, dir, opts.downtimeMs), snapshots.qemu);
      }
      if (opts.only.includes("migrate")) {
        for (const scenario of ["idle", "memwrite"] as const) {
          const workload = scenario === "memwrite" ? opts.memwrite : undefined;
          await attempt(`Parley migration, ${scenario}`, () => parleyMigration(files, ramSize, workload, opts), migrations[scenario].parley);
          await attempt(`QEMU migration, ${scenario}`, () => qemuMigration(files, memory, dir, workload, opts), migrations[scenario].qemu);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const lines: string[] = [];
  lines.push(`| ${opts.memoryMiB} MiB guest, 1 hart, idle at its shell unless said | Parley | QEMU | Parley / QEMU |`, "|---|---:|---:|---:|");
  if (opts.only.includes("snapshot")) {
    const p = snapshots.parley;
    const q = snapshots.qemu;
    lines.push(row("snapshot create (ms)", medianOf(p, (x) => x.createMs), medianOf(q, (x) => x.createMs)));
    lines.push(row("snapshot restore to a running guest (ms)", medianOf(p, (x) => x.restoreMs), medianOf(q, (x) => x.restoreMs)));
    lines.push(row("restore, QEMU counted from its process start (ms)", medianOf(p, (x) => x.restoreMs), medianOf(q, (x) => x.restoreFromProcessStartMs)));
    lines.push(row("restore to the shell answering Enter (ms)", medianOf(p, (x) => x.restoreToAnswerMs), medianOf(q, (x) => x.restoreToAnswerMs)));
    lines.push(row("snapshot on disk (MiB allocated)", medianOf(p, (x) => x.allocatedBytes / MiB), medianOf(q, (x) => x.allocatedBytes / MiB)));
  }
  if (opts.only.includes("migrate")) {
    for (const scenario of ["idle", "memwrite"] as const) {
      const p = migrations[scenario].parley;
      const q = migrations[scenario].qemu;
      const name = scenario === "idle" ? "live migration, idle" : `live migration, memwrite ${fmt(memwriteTargetMiBs(opts.memwrite), 0)} MiB/s`;
      lines.push(row(`${name}: total (ms)`, medianOf(p, (x) => x.totalMs), medianOf(q, (x) => x.totalMs)));
      lines.push(row(`${name}: downtime (ms)`, medianOf(p, (x) => x.downtimeMs), medianOf(q, (x) => x.downtimeMs)));
      lines.push(row(`${name}: guest stopped to running at the destination (ms)`, medianOf(p, (x) => x.stopToResumeMs), medianOf(q, (x) => x.stopToResumeMs)));
      lines.push(row(`${name}: sent (MiB)`, medianOf(p, (x) => x.bytes / MiB), medianOf(q, (x) => x.bytes / MiB)));
      lines.push(row(`${name}: pre-copy rounds`, medianOf(p, (x) => x.rounds), medianOf(q, (x) => x.rounds), 0));
      const answered = (xs: MigrationSample[]) => (xs.length ? `${xs.filter((x) => x.destinationAnswered).length}/${xs.length}` : "-");
      lines.push(`| ${name}: the destination's shell answered | ${answered(p)} | ${answered(q)} | |`);
      if (scenario === "memwrite") {
        lines.push(row(`${name}: rate achieved before the move (MiB/s)`, medianOf(p, (x) => x.dirtyRateMiBs), medianOf(q, (x) => x.dirtyRateMiBs), 0));
        const ok = (xs: MigrationSample[]) => {
          if (!xs.length) return "-";
          const silent = xs.filter((x) => !x.destinationAnswered).length;
          const bad = xs.filter((x) => x.destinationAnswered && !(x.workloadContinued && x.workloadErrors === 0)).length;
          const good = xs.length - silent - bad;
          return [good && `yes ${good}/${xs.length}`, bad && `NO ${bad}/${xs.length}`, silent && `console silent ${silent}/${xs.length}`].filter(Boolean).join(", ");
        };
        lines.push(`| ${name}: workload went on, no stale page | ${ok(p)} | ${ok(q)} | |`);
      }
    }
  }
  console.log(`\n${lines.join("\n")}`);
  console.log(
    "(lower is better; medians. Goals: restore to a running guest in under 100 ms of host time, downtime under 50 ms idle, both ahead of QEMU. " +
      "Parley's restore counts reading the files and building the machine; QEMU's counts `migrate-incoming` from a process already started with " +
      `-incoming defer (and, in the next row, from its process start). QEMU: no bandwidth cap, downtime-limit ${opts.downtimeMs} ms like Parley's goal. ` +
      "Downtime: QEMU's own figure ends when the source has sent its last data; Parley's, and the next row for both, end when the guest " +
      "runs at the destination (QEMU: its STOP and RESUME events' timestamps). Rounds: Parley's pre-copy rounds; QEMU's dirty-sync-count, " +
      "which also counts the final sync. Parley migrates between two machines in one process, QEMU between two processes. " +
      "QEMU 7.2 does not migrate the RISC-V timer events (the ACLINT mtimer's timers, the Sstc stimer; fixed upstream in October 2025, " +
      "not backported): a destination whose guest lost its timer interrupt in the move is the likely cause of a silent console.)",
  );
  for (const f of failures) console.log(`FAILED: ${f}`);
  const outFile = writeBenchJson("lifecycle", info, {
    kernel: kernelVersion,
    memoryMiB: opts.memoryMiB,
    reps: opts.reps,
    settings: { downtimeMs: opts.downtimeMs, settleS: opts.settleS, memwrite: opts.memwrite, qemuMaxBandwidth: QEMU_MAX_BANDWIDTH, idleSettleS: IDLE_SETTLE_S },
    snapshots,
    migrations,
    failures,
    table: lines.join("\n"),
  });
  console.log(`lifecycle: results written to ${outFile}`);
  const panels: BarPanel[] = [];
  const panel = (title: string, p: number, q: number) => {
    const bars = [
      { label: "Parley", value: p, color: COLORS.paravirtual },
      { label: "QEMU", value: q, color: COLORS.neutral },
    ].filter((b) => Number.isFinite(b.value));
    if (bars.length) panels.push({ title, unit: "ms (lower is better)", bars });
  };
  if (opts.only.includes("snapshot")) {
    panel("snapshot create", medianOf(snapshots.parley, (x) => x.createMs), medianOf(snapshots.qemu, (x) => x.createMs));
    panel("restore to a running guest", medianOf(snapshots.parley, (x) => x.restoreMs), medianOf(snapshots.qemu, (x) => x.restoreMs));
  }
  if (opts.only.includes("migrate")) {
    for (const scenario of ["idle", "memwrite"] as const) {
      const m = migrations[scenario];
      panel(`migration, ${scenario}: downtime`, medianOf(m.parley, (x) => x.stopToResumeMs), medianOf(m.qemu, (x) => x.stopToResumeMs));
      panel(`migration, ${scenario}: total`, medianOf(m.parley, (x) => x.totalMs), medianOf(m.qemu, (x) => x.totalMs));
    }
  }
  if (panels.length) {
    const chart = await writeChart(
      barChartSvg({ title: `Snapshot and live migration, ${opts.memoryMiB} MiB guest`, subtitle: `Debian ${kernelVersion}, 1 hart, medians of ${opts.reps}`, panels }),
      join(CACHE_DIR, "bench/lifecycle"),
    );
    console.log(`lifecycle: chart in ${chart.png}`);
  }
}

await main();
