// Node's threads for a machine's harts (VirtMachine's hartThreads): a worker_threads Worker per
// hart running hart-worker.ts, and the machine's one timebase, shared by every thread.
import { Worker } from "node:worker_threads";
import type { HartThreadHandle, HartThreadHost } from "../../machine/virt.ts";
import type { HartThreadInit } from "../../machine/hart-thread.ts";
import { nodeTimebase } from "./clock.ts";
import { DirectoryTranslationCache, type JitCacheSpec } from "./jit-cache.ts";

/**
 * A Worker running the TypeScript module `entry` from source (tests, benchmarks): tsx is
 * registered in the worker first, since a worker does not inherit the main thread's loader hooks.
 */
export function startTypeScriptWorker(entry: URL, options: { workerData?: unknown; name?: string } = {}): Worker {
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry.href)});`;
  return new Worker(bootstrap, { eval: true, ...options, execArgv: [] });
}

/** A Worker running hart-worker beside this file: the bundle's .mjs in dist/, or the .ts from source. */
function startWorker(workerData: unknown, name: string): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./hart-worker.mjs", import.meta.url), { workerData, name });
  return startTypeScriptWorker(new URL("./hart-worker.ts", import.meta.url), { workerData, name });
}

/** A host for one machine's hart threads; its timebase starts now (the machine's time 0). */
export function nodeHartThreads(): HartThreadHost {
  const originNs = process.hrtime.bigint();
  const readTime = nodeTimebase(originNs);
  return {
    readTime,
    start(init: HartThreadInit): HartThreadHandle {
      // A translation cache is an object with methods, which cannot cross to the thread: the
      // thread opens the same directory itself (hart-worker.ts).
      let jitCache: JitCacheSpec | undefined;
      let jit = init.jit;
      if (typeof jit === "object" && jit.cache) {
        if (!(jit.cache instanceof DirectoryTranslationCache)) throw new Error("hart threads: only a directory translation cache can be shared with hart threads");
        jitCache = jit.cache.spec;
        jit = { ...jit, cache: undefined };
      }
      const worker = startWorker({ init: { ...init, jit }, originNs, jitCache }, `harts ${init.hartIndices.join(",")}`);
      const finished = new Promise<void>((resolve, reject) => {
        worker.once("message", () => resolve());
        worker.once("error", reject);
        worker.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`the thread exited with code ${code}`))));
      });
      return { finished, terminate: () => void worker.terminate() };
    },
  };
}
