// Snapshot create and load for a VirtMachine: the state file (snapshot-file.ts) and the memory file
// (src/host/node/memory-file.ts). The Machine object (machine.ts) adds the VM description and the
// host backends around these.
import { renameSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import type { VirtMachine } from "../machine/virt.ts";
import { nonZeroPageRuns, openMemoryFile, writeMemoryFile, type MemoryFile } from "../host/node/memory-file.ts";
import { decodeSnapshotFile, encodeSnapshotFile, newSnapshotId, SnapshotFileError, type SnapshotBody } from "./snapshot-file.ts";

export interface SnapshotPaths {
  snapshotPath: string;
  memFilePath: string;
}

export interface SnapshotReport {
  snapshotPath: string;
  memFilePath: string;
  /** Bytes of the state file, and of RAM written to the memory file (zero pages are skipped). */
  stateBytes: number;
  memoryBytes: number;
  /** RAM pages written, and pages skipped because they were all zero. */
  pagesWritten: number;
  pagesSkipped: number;
  /** Host time to save the state and to write the memory, in ms. */
  stateMs: number;
  memoryMs: number;
}

/**
 * Writes a snapshot of a paused machine. Both files are written beside their final names and
 * renamed into place once complete, so a failed snapshot never leaves a half-written file under
 * the names asked for (nor replaces an earlier snapshot there).
 */
export function writeSnapshotFiles(vm: VirtMachine, config: unknown, paths: SnapshotPaths): SnapshotReport {
  if (!vm.paused) throw new Error("snapshot: pause the machine first");
  const started = performance.now();
  const machine = vm.saveState();
  const stateDone = performance.now();
  const ram = vm.hostRam;
  const ramBytes = new Uint8Array(ram.memory.buffer, ram.ramWasmBase, ram.ramSize);
  const id = newSnapshotId();
  const runs = nonZeroPageRuns(ramBytes);
  const memTemp = `${paths.memFilePath}.partial`;
  const stateTemp = `${paths.snapshotPath}.partial`;
  try {
    const { bytesWritten } = writeMemoryFile(memTemp, ramBytes, id, runs);
    const memoryDone = performance.now();
    const body: SnapshotBody = { id, createdAt: new Date().toISOString(), config, machine, memory: { ramSize: ram.ramSize, runs } };
    const encoded = encodeSnapshotFile(body);
    writeFileSync(stateTemp, encoded);
    renameSync(memTemp, paths.memFilePath);
    renameSync(stateTemp, paths.snapshotPath);
    const pagesWritten = bytesWritten / 4096;
    return {
      ...paths,
      stateBytes: encoded.length,
      memoryBytes: bytesWritten,
      pagesWritten,
      pagesSkipped: ram.ramSize / 4096 - pagesWritten,
      stateMs: stateDone - started,
      memoryMs: memoryDone - stateDone,
    };
  } catch (err) {
    rmSync(memTemp, { force: true });
    rmSync(stateTemp, { force: true });
    throw err;
  }
}

/** A snapshot whose files were read and checked; nothing was built yet. close() when done. */
export interface LoadedSnapshot {
  body: SnapshotBody;
  memory: MemoryFile;
}

/** Reads and checks both files (format, checksum, id, sizes); throws SnapshotFileError/MemoryFileError. */
export function openSnapshotFiles(paths: SnapshotPaths): LoadedSnapshot {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(paths.snapshotPath));
  } catch (err) {
    throw new SnapshotFileError(`snapshot ${paths.snapshotPath}: ${(err as Error).message}`);
  }
  const body = decodeSnapshotFile(bytes, `snapshot ${paths.snapshotPath}`);
  const memory = openMemoryFile(paths.memFilePath, body.id, body.memory.ramSize);
  return { body, memory };
}

/**
 * Fills a machine built `fromSnapshot` (same configuration) with the snapshot: RAM first, then
 * every component's state. The machine stays paused; a new VM generation ID is taken (the guest
 * reseeds its RNG when it resumes: every restore is a new clone). Returns the RAM bytes read and ms.
 */
export function restoreIntoMachine(vm: VirtMachine, loaded: LoadedSnapshot, options: { memory?: RestoreMemoryMode } = {}): RestoreReport {
  const started = performance.now();
  const ram = vm.hostRam;
  if (ram.ramSize !== loaded.body.memory.ramSize) throw new SnapshotFileError(`snapshot: ${loaded.body.memory.ramSize} bytes of RAM, the machine has ${ram.ramSize}`);
  const ramBytes = new Uint8Array(ram.memory.buffer, ram.ramWasmBase, ram.ramSize);
  const mode = options.memory ?? "map";
  const mapped = mode === "map" && loaded.memory.map(ramBytes);
  const memoryBytes = mapped ? 0 : loaded.memory.read(ramBytes, loaded.body.memory.runs);
  const memoryDone = performance.now();
  vm.restoreState(loaded.body.machine);
  vm.vmgenid.regenerate();
  return {
    memory: mapped ? "map" : "copy",
    mapUnavailable: mode === "map" && !mapped ? loaded.memory.mapUnavailable : undefined,
    memoryBytes,
    memoryMs: memoryDone - started,
    stateMs: performance.now() - memoryDone,
  };
}

/**
 * How a restore fills guest RAM: "map" maps the memory file copy-on-write (lazy: pages are read
 * when the guest first touches them; falls back to "copy" where mapping is not possible), "copy"
 * reads every non-zero page before the guest runs.
 */
export type RestoreMemoryMode = "map" | "copy";

export interface RestoreReport {
  /** How RAM was filled, and why not by mapping when "map" was asked for and not possible. */
  memory: RestoreMemoryMode;
  mapUnavailable: string | undefined;
  /** RAM bytes read before the guest ran (0 when mapped). */
  memoryBytes: number;
  memoryMs: number;
  stateMs: number;
}
