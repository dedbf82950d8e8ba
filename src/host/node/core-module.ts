// Loads the compiled execution engine from build/cpu.wasm, or build/cpu-shared.wasm for a
// shared memory (built by `npm run build`).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.ts";

const cached = new Map<string, WebAssembly.Module>();

/** With `shared`, the engine imports a shared memory (one machine's harts on several threads). */
export function loadCoreModule(options: { shared?: boolean } = {}): WebAssembly.Module {
  const file = options.shared ? "build/cpu-shared.wasm" : "build/cpu.wasm";
  let module = cached.get(file);
  if (module) return module;
  const path = join(REPO_ROOT, file);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` first`);
  module = new WebAssembly.Module(readFileSync(path));
  cached.set(file, module);
  return module;
}
