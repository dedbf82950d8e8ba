// A hart thread's entry (see hart-threads.ts): runs one hart of a machine until it ends.
import { parentPort, workerData } from "node:worker_threads";
import { runHartThread, type HartThreadInit } from "../../machine/hart-thread.ts";
import { nodeTimebase } from "./clock.ts";

const { init, originNs } = workerData as { init: HartThreadInit; originNs: bigint };
runHartThread(init, nodeTimebase(originNs));
parentPort!.postMessage("finished");
