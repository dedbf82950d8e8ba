// The browser's threads for a machine's harts (VirtMachine's hartThreads): a Web Worker per host
// thread running src/web/hart-worker.ts, all on the machine's shared WebAssembly.Memory, and one
// timebase from an absolute origin taken when the host is made (the machine's time 0).
import type { HartThreadHandle, HartThreadHost } from "../../machine/virt.ts";
import type { HartThreadInit } from "../../machine/hart-thread.ts";
import { absoluteMs, webTimebase } from "./clock.ts";

/** What the page sends a hart worker: the thread's init (module and memory clone) and the clock's origin. */
export interface HartWorkerStart {
  init: HartThreadInit;
  originMs: number;
}

/** What a hart worker answers when its runHartThread returned or threw. */
export type HartWorkerDone = { type: "finished" } | { type: "failed"; message: string };

/** `workerUrl`: the hart worker's script (dist/web/hart-worker.js beside the page). */
export function webHartThreads(options: { workerUrl: string | URL; name?: string }): HartThreadHost {
  const originMs = absoluteMs();
  return {
    readTime: webTimebase(originMs),
    start(init: HartThreadInit): HartThreadHandle {
      const worker = new Worker(options.workerUrl, { type: "module", name: `${options.name ?? "harts"} ${init.hartIndices.join(",")}` });
      const finished = new Promise<void>((resolve, reject) => {
        worker.onmessage = (event: MessageEvent<HartWorkerDone>) => {
          worker.terminate();
          if (event.data.type === "finished") resolve();
          else reject(new Error(event.data.message));
        };
        worker.onerror = (event) => {
          worker.terminate();
          reject(new Error(event.message || "the hart worker failed to load"));
        };
      });
      const start: HartWorkerStart = { init, originMs };
      worker.postMessage(start);
      return { finished, terminate: () => worker.terminate() };
    },
  };
}
