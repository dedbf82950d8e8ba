// `--stats-json FILE`: the ledger of a run, written as JSON when the machine stops.
import { accessSync, constants, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { UsageError } from "./options.ts";
import type { Ledger } from "../machine/ledger.ts";

/**
 * Checks before the run that FILE can be written, so that a typo costs nothing rather than the
 * statistics of a long run: its directory exists and is writable, and FILE is not a directory.
 */
export function checkStatsJsonPath(path: string): void {
  const full = resolve(path);
  const dir = dirname(full);
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new UsageError(`--stats-json ${path}: directory ${dir} does not exist`);
  }
  if (!isDir) throw new UsageError(`--stats-json ${path}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`--stats-json ${path}: directory ${dir} is not writable`);
  }
  try {
    if (statSync(full).isDirectory()) throw new UsageError(`--stats-json ${path}: is a directory`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // Not there yet: it will be created.
  }
}

/** Writes the ledger as indented JSON; through a temporary file so readers never see half of it. */
export function writeLedgerJson(path: string, ledger: Ledger): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(ledger, null, 2) + "\n");
  renameSync(tmp, path);
}
