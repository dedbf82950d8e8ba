// The messages between the page (main.ts) and the machine worker (machine-worker.ts): plain
// objects through postMessage, as the shared plan for the web page lists them.
import type { Ledger } from "../machine/ledger.ts";

export type PageState = "loading" | "running" | "paused" | "stopped" | "failed";

export interface Coalesce {
  maxCompletions: number;
  maxDelayUs: number;
}

export type ToWorker =
  | { type: "start"; cpus: number; memoryMiB: number; baseUrl: string; cols: number; rows: number }
  | { type: "input"; bytes: Uint8Array }
  | { type: "resize"; cols: number; rows: number }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "reset" }
  | { type: "poweroff" }
  | { type: "set-coalescing"; device: string; coalesce: Coalesce | undefined }
  | { type: "snapshot" }
  | { type: "restore"; file: ArrayBuffer }
  | { type: "discard-disk" };

export type FromWorker =
  | { type: "progress"; what: string; loaded: number; total: number }
  | { type: "output"; bytes: Uint8Array }
  | { type: "ledger"; ledger: Ledger }
  /** harts: the running machine's (a restored snapshot brings its own count). */
  | { type: "state"; state: PageState; harts?: number }
  | { type: "snapshot"; blob: ArrayBuffer }
  | { type: "error"; message: string };
