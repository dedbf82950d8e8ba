// Builds guest programs (bare-metal RV64 ELFs, static riscv64 Linux programs) with Debian's
// cross toolchains, caching each result under cache/guest keyed by the hash of its inputs.
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { CACHE_DIR, REPO_ROOT } from "../host/node/paths.ts";

const run = promisify(execFile);

export { CACHE_DIR, REPO_ROOT };

export type GuestTarget = "baremetal" | "linux-static";

const COMPILER: Record<GuestTarget, string> = {
  baremetal: "riscv64-unknown-elf-gcc",
  "linux-static": "riscv64-linux-gnu-gcc",
};

const SETUP_HINT = "run `npm run setup` (or bash scripts/setup-host.sh) to install the cross toolchains";

export interface GuestBuild {
  /** Short name used for the cached file. */
  name: string;
  target: GuestTarget;
  /** Source files (C, .S), paths relative to the repository root or absolute. */
  sources: string[];
  /** Extra files whose content affects the build (headers, linker scripts). */
  dependencies?: string[];
  /** Arguments placed before the sources (flags, -T script, --specs ...). */
  args?: string[];
}

/** Compiles and links a guest program, returning the ELF path; reuses the cached result when inputs are unchanged. */
export async function buildGuest(build: GuestBuild): Promise<string> {
  const compiler = COMPILER[build.target];
  const sources = build.sources.map((s) => resolve(REPO_ROOT, s));
  const deps = (build.dependencies ?? []).map((s) => resolve(REPO_ROOT, s));
  const hash = createHash("sha256");
  hash.update(compiler + "\0" + (build.args ?? []).join("\0"));
  for (const file of [...sources, ...deps]) {
    if (!existsSync(file)) throw new Error(`guest build ${build.name}: missing source ${file}`);
    hash.update(file + "\0").update(readFileSync(file));
  }
  const outDir = join(CACHE_DIR, "guest");
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `${build.name}-${hash.digest("hex").slice(0, 16)}.elf`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    await run(compiler, [...(build.args ?? []), ...sources, "-o", tmp], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
  } catch (err: any) {
    if (err?.code === "ENOENT") throw new Error(`${compiler} not found: ${SETUP_HINT}`);
    throw new Error(`guest build ${build.name} failed:\n${err?.stderr ?? err}`);
  }
  renameSync(tmp, out);
  return out;
}
