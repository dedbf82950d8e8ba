// Locates the package root whether running from src/ (tsx) or from the bundled dist/parley.mjs.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        if (JSON.parse(readFileSync(manifest, "utf8")).name === "parley") return dir;
      } catch {
        // not a readable manifest: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find Parley's package root above ${start}`);
    dir = parent;
  }
}

export const REPO_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
export const CACHE_DIR = process.env.PARLEY_CACHE ?? join(REPO_ROOT, "cache");
