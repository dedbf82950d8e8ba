// Loads the compiled execution engine from build/cpu.wasm (built by `npm run build`).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.ts";

let cached: WebAssembly.Module | undefined;

export function loadCoreModule(): WebAssembly.Module {
  if (cached) return cached;
  const path = join(REPO_ROOT, "build/cpu.wasm");
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` first`);
  cached = new WebAssembly.Module(readFileSync(path));
  return cached;
}
