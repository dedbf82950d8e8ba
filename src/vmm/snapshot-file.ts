// A snapshot's state file: one header line, then the body as JSON.
//
//   {"format":"parley-snapshot","version":1,"bytes":N,"sha256":"…"}\n
//   {"id":"…","createdAt":"…","config":{…},"machine":{…},"memory":{"ramSize":…,"runs":[[…]]}}
//
// The header's length and SHA-256 cover the body's exact bytes, so a truncated or corrupted file is
// refused before anything is parsed or built; the body's parts are then checked by their owners
// (the VM config by its schema, the machine state by each component's restoreState, the memory
// runs here). The memory file carries the same id (memory-file.ts), so the two cannot be mixed up.
import { createHash, randomBytes } from "node:crypto";
import { checkPageRuns, type PageRuns } from "../host/node/memory-file.ts";

export const SNAPSHOT_FORMAT = "parley-snapshot";
export const SNAPSHOT_VERSION = 1;

export class SnapshotFileError extends Error {
  override name = "SnapshotFileError";
}

export interface SnapshotBody {
  /** 32 hex digits, also in the memory file's header. */
  id: string;
  createdAt: string;
  /** The VM description the machine was built from (src/vmm/schema.ts), to build the same one. */
  config: unknown;
  /** VirtMachine.saveState() (and the VMM's own parts): checked by the components on restore. */
  machine: unknown;
  memory: { ramSize: number; runs: PageRuns };
}

export function newSnapshotId(): string {
  return randomBytes(16).toString("hex");
}

export function encodeSnapshotFile(body: SnapshotBody): Uint8Array {
  const bodyBytes = new TextEncoder().encode(JSON.stringify(body));
  const sha256 = createHash("sha256").update(bodyBytes).digest("hex");
  const head = new TextEncoder().encode(JSON.stringify({ format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, bytes: bodyBytes.length, sha256 }) + "\n");
  const out = new Uint8Array(head.length + bodyBytes.length);
  out.set(head);
  out.set(bodyBytes, head.length);
  return out;
}

/** Parses and checks a state file's bytes; throws SnapshotFileError saying what is wrong. Pure. */
export function decodeSnapshotFile(bytes: Uint8Array, name = "snapshot"): SnapshotBody {
  const newline = bytes.indexOf(0x0a);
  if (newline < 0 || newline > 4096) throw new SnapshotFileError(`${name}: not a Parley snapshot state file (no header line)`);
  let head: { format?: unknown; version?: unknown; bytes?: unknown; sha256?: unknown };
  try {
    head = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, newline)));
  } catch {
    throw new SnapshotFileError(`${name}: not a Parley snapshot state file (the header line is not JSON)`);
  }
  if (typeof head !== "object" || head === null || head.format !== SNAPSHOT_FORMAT) throw new SnapshotFileError(`${name}: not a Parley snapshot state file`);
  if (head.version !== SNAPSHOT_VERSION) {
    throw new SnapshotFileError(`${name}: snapshot format version ${JSON.stringify(head.version)}; this Parley reads version ${SNAPSHOT_VERSION}`);
  }
  const body = bytes.subarray(newline + 1);
  if (typeof head.bytes !== "number" || typeof head.sha256 !== "string") throw new SnapshotFileError(`${name}: the header line lacks the body's length or checksum`);
  if (body.length !== head.bytes) throw new SnapshotFileError(`${name}: the body has ${body.length} bytes, the header says ${head.bytes} (truncated?)`);
  const sha256 = createHash("sha256").update(body).digest("hex");
  if (sha256 !== head.sha256) throw new SnapshotFileError(`${name}: checksum mismatch: the file is corrupted`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new SnapshotFileError(`${name}: the body is not JSON`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new SnapshotFileError(`${name}: the body is not an object`);
  const record = parsed as Record<string, unknown>;
  if (typeof record.id !== "string" || !/^[0-9a-f]{32}$/.test(record.id)) throw new SnapshotFileError(`${name}: id: expected 32 hex digits`);
  if (typeof record.createdAt !== "string") throw new SnapshotFileError(`${name}: createdAt: expected a date`);
  if (record.config === undefined) throw new SnapshotFileError(`${name}: config: missing`);
  if (record.machine === undefined) throw new SnapshotFileError(`${name}: machine: missing`);
  const memory = record.memory as Record<string, unknown> | undefined;
  if (typeof memory !== "object" || memory === null) throw new SnapshotFileError(`${name}: memory: missing`);
  const ramSize = memory.ramSize;
  if (typeof ramSize !== "number" || !Number.isSafeInteger(ramSize) || ramSize <= 0 || ramSize % 4096 !== 0) throw new SnapshotFileError(`${name}: memory.ramSize: expected a whole number of pages`);
  let runs: PageRuns;
  try {
    runs = checkPageRuns(memory.runs, ramSize, "memory.runs");
  } catch (err) {
    throw new SnapshotFileError(`${name}: ${(err as Error).message}`);
  }
  return { id: record.id, createdAt: record.createdAt, config: record.config, machine: record.machine, memory: { ramSize, runs } };
}
