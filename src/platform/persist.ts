// One pattern for every stateful component's snapshot: a versioned, JSON-safe plain-data state,
// with save and restore next to the component.
//
// - `saveState()` returns plain data only (numbers, strings, booleans, arrays, plain objects; no
//   bigint, typed arrays or class instances: 64-bit values and byte strings are hex strings), with
//   a `version` that the component bumps whenever the shape or meaning changes.
// - `restoreState(state)` takes what JSON.parse gave back, which may be anything (a snapshot file is
//   user input): it checks the whole state first, and throws a SnapshotError naming the field
//   (component path included) without changing the component when anything is wrong; only then
//   does it apply it. A component is restored onto a freshly constructed instance built from the
//   same configuration, so configuration (sizes, features offered, backends) is not part of the
//   state, but a state may record it to refuse a restore onto a different configuration.
//
// Caches (TLBs, decoded and translated code) are not state: restore drops them and they rebuild.

/** A snapshot (or a part of one) that cannot be restored: the message says which field and why. */
export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SnapshotError";
  }
}

export interface VersionedState {
  version: number;
}

export interface Persistent<S extends VersionedState = VersionedState> {
  saveState(): S;
  restoreState(state: unknown): void;
}

// ---- small checkers for restoreState: each returns the value or throws SnapshotError -----------

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value);
  if (typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
  return String(value);
}

/** The object at `where`, with `version` equal to one of `versions`. */
export function stateObject(value: unknown, where: string, versions: readonly number[]): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new SnapshotError(`${where}: expected an object, got ${describe(value)}`);
  const record = value as Record<string, unknown>;
  if (!versions.includes(record.version as number)) {
    throw new SnapshotError(`${where}.version: ${describe(record.version)} is not a version this Parley restores (${versions.join(", ")})`);
  }
  return record;
}

export function stateRecord(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new SnapshotError(`${where}: expected an object, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

/** An integer in [min, max]. */
export function stateInt(value: unknown, where: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new SnapshotError(`${where}: expected a whole number in ${min}..${max}, got ${describe(value)}`);
  }
  return value;
}

/** A finite number (counters that may be fractional, times in ms). */
export function stateNumber(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new SnapshotError(`${where}: expected a number, got ${describe(value)}`);
  return value;
}

export function stateBool(value: unknown, where: string): boolean {
  if (typeof value !== "boolean") throw new SnapshotError(`${where}: expected true or false, got ${describe(value)}`);
  return value;
}

export function stateString(value: unknown, where: string, pattern?: RegExp): string {
  if (typeof value !== "string" || (pattern && !pattern.test(value))) throw new SnapshotError(`${where}: expected ${pattern ? `a string matching ${pattern}` : "a string"}, got ${describe(value)}`);
  return value;
}

export function stateArray(value: unknown, where: string, length?: number): unknown[] {
  if (!Array.isArray(value) || (length !== undefined && value.length !== length)) {
    throw new SnapshotError(`${where}: expected an array${length !== undefined ? ` of ${length}` : ""}, got ${Array.isArray(value) ? `${value.length} entries` : describe(value)}`);
  }
  return value;
}

/** A 64-bit unsigned value saved as "0x…" hex (hex64). */
export function stateU64(value: unknown, where: string): bigint {
  if (typeof value !== "string" || !/^0x[0-9a-f]{1,16}$/.test(value)) throw new SnapshotError(`${where}: expected a 64-bit hex value "0x…", got ${describe(value)}`);
  return BigInt(value);
}

export function hex64(value: bigint): string {
  return "0x" + BigInt.asUintN(64, value).toString(16);
}

/** Bytes as a hex string, and back (stateBytes checks the length when given). */
export function bytesToHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

export function stateBytes(value: unknown, where: string, length?: number): Uint8Array {
  if (typeof value !== "string" || value.length % 2 !== 0 || !/^[0-9a-f]*$/.test(value) || (length !== undefined && value.length !== length * 2)) {
    throw new SnapshotError(`${where}: expected ${length !== undefined ? `${length} bytes` : "bytes"} as hex, got ${describe(value)}`);
  }
  const out = new Uint8Array(value.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(value.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** One of the given strings. */
export function stateEnum<T extends string>(value: unknown, where: string, allowed: readonly T[]): T {
  if (typeof value !== "string" || !allowed.includes(value as T)) throw new SnapshotError(`${where}: expected one of ${allowed.join(", ")}, got ${describe(value)}`);
  return value as T;
}
