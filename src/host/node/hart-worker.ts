// A hart thread's entry (see hart-threads.ts): runs one hart of a machine until it ends.
import { parentPort, workerData } from "node:worker_threads";
import { runHartThread, type HartThreadInit } from "../../machine/hart-thread.ts";
import { nodeTimebase } from "./clock.ts";
import { openJitCache, type JitCacheSpec } from "./jit-cache.ts";
import { withTranslationCache } from "../../cpu/cpu.ts";

const { init, originNs, jitCache } = workerData as { init: HartThreadInit; originNs: bigint; jitCache?: JitCacheSpec };
runHartThread(jitCache ? { ...init, jit: withTranslationCache(init.jit, openJitCache(jitCache)) } : init, nodeTimebase(originNs));
parentPort!.postMessage("finished");
