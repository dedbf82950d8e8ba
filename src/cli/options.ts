// Parsing of command-line values into checked numbers, with messages that say what to fix.

export class UsageError extends Error {
  override name = "UsageError";
}

const SIZE_UNITS: Record<string, number> = { "": 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 };

/** "512M", "2G", "65536", "64K" (binary units, optional trailing B/iB) -> bytes. */
export function parseSize(text: string, what: string): number {
  const match = /^\s*(\d+)\s*([KMG]?)(?:i?B)?\s*$/i.exec(text);
  if (!match) throw new UsageError(`${what}: "${text}" is not a size; use a number with an optional K, M or G suffix, e.g. 512M`);
  const bytes = Number(match[1]) * SIZE_UNITS[match[2].toUpperCase()];
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`${what}: "${text}" must be a positive size`);
  return bytes;
}

/** A positive whole number, accepting 1_000_000, 1e6 style and plain digits. */
export function parsePositiveInteger(text: string, what: string): number {
  const value = Number(text.replace(/_/g, ""));
  if (!Number.isSafeInteger(value) || value <= 0) throw new UsageError(`${what}: "${text}" must be a positive whole number`);
  return value;
}

/** A TCP port to listen on: 1-65535. */
export function parsePort(text: string, what: string): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new UsageError(`${what}: "${text}" is not a TCP port number (1-65535)`);
  return value;
}

/** Harts a machine can have: the code-holder map has a bit per hart in a u32 (src/cpu/core-layout.ts). */
export const MAX_CPUS = 32;

/** --host-threads: threads for `cpus` harts, 1..cpus. */
export function parseHostThreads(text: string, cpus: number): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > cpus) {
    throw new UsageError(`--host-threads: "${text}" is not a number of host threads for ${cpus} hart${cpus === 1 ? "" : "s"} (1-${cpus})`);
  }
  return value;
}

/** --ple: "off", "on" (the default window) or a window in instructions (1..10^9). */
export function parsePauseLoop(text: string, defaultWindow: number): number {
  if (text === "off") return 0;
  if (text === "on") return defaultWindow;
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > 1e9) throw new UsageError(`--ple: "${text}" is not on, off or a window in instructions (1-1000000000)`);
  return value;
}

/** --cpus: a whole number of harts, 1..MAX_CPUS. */
export function parseCpuCount(text: string, what: string): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > MAX_CPUS) throw new UsageError(`${what}: "${text}" is not a number of harts (1-${MAX_CPUS})`);
  return value;
}
