// A hart thread's entry in the browser (src/host/web/hart-threads.ts starts one per host thread):
// runs its harts until the machine ends, then says so.
import { runHartThread } from "../machine/hart-thread.ts";
import { webTimebase } from "../host/web/clock.ts";
import type { HartWorkerDone, HartWorkerStart } from "../host/web/hart-threads.ts";

const scope = globalThis as unknown as { onmessage: ((event: MessageEvent<HartWorkerStart>) => void) | null; postMessage(message: HartWorkerDone): void };

scope.onmessage = (event) => {
  scope.onmessage = null;
  const { init, originMs } = event.data;
  try {
    runHartThread(init, webTimebase(originMs));
    scope.postMessage({ type: "finished" });
  } catch (error) {
    scope.postMessage({ type: "failed", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
};
