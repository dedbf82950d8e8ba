// Entry of test/cpu/atomics-worker.ts's threads: a worker does not get the test process's
// TypeScript loader (tsx) from execArgv in time for its entry module, so register it here first.
import { register } from "tsx/esm/api";

register();
await import("./atomics-worker.ts");
