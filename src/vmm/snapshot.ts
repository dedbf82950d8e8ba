// Snapshots of a whole machine: PUT /snapshot/create writes the machine's state (devices, harts,
// the validated VM description) to snapshot_path and guest memory to mem_file_path;
// PUT /snapshot/load and `parley restore` rebuild the same machine from them.
import type { Machine, MachineOptions } from "./machine.ts";
import type { SnapshotCreateParams, SnapshotLoadParams } from "./schema.ts";

/** Writes a paused machine's snapshot. */
export async function writeSnapshot(_machine: Machine, _request: SnapshotCreateParams): Promise<void> {
  throw new Error("not implemented yet");
}

/** A machine rebuilt from a snapshot, paused unless request.resume_vm. */
export async function restoreMachine(_request: SnapshotLoadParams, _options: MachineOptions = {}): Promise<Machine> {
  throw new Error("not implemented yet");
}
