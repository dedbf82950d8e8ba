// The `parley` command's entry (dist/parley.mjs). Before the command's modules load (a third of a
// second of them), it decides whether to start the command again in a Node.js whose V8 has
// compiler threads sized for the harts (src/host/node/compiler-threads.ts), so that the modules
// load once, in the process that runs the machine.
import { availableParallelism } from "node:os";
import { readFileSync } from "node:fs";
import { compilerThreadsFor, endAsChild, followLauncher, poolSizeChosen, runWithCompilerThreads } from "../host/node/compiler-threads.ts";
import { hartThreadsOfCommand } from "./launch-plan.ts";

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

const hostCores = availableParallelism();
const hartThreads = hartThreadsOfCommand(process.argv.slice(2), hostCores, readIfPresent);
if (hartThreads !== undefined && !poolSizeChosen(process.execArgv, process.env.NODE_OPTIONS)) {
  endAsChild(await runWithCompilerThreads(compilerThreadsFor(hostCores, hartThreads)));
} else {
  followLauncher();
  // From the sources (tsx), the command is main.ts beside this file; bundled, parley-main.mjs.
  await import(import.meta.url.endsWith(".ts") ? "./main.ts" : "./parley-main.mjs");
}
