// The ledger in Prometheus text format: the registry behind GET /metrics of the API socket and the
// standalone server of `parley run --metrics-port` (127.0.0.1 only).
// GET /metrics on 127.0.0.1 collects the ledger of the running machine at scrape time and
// renders it through prom-client. Local only: the counters describe the guest's activity and
// are nobody else's business, so the server never binds to other interfaces.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Registry } from "prom-client";
import type { Ledger } from "../machine/ledger.ts";

type Labels = Record<string, string>;
interface Sample {
  labels: Labels;
  value: number;
}
interface MetricSpec {
  name: string;
  help: string;
  type: "counter" | "gauge";
  labelNames: string[];
  samples(ledger: Ledger): Sample[];
}

const one = (value: number): Sample[] => [{ labels: {}, value }];
/** A translator counter; no sample when the translator is off. */
const translatorSample = (l: Ledger, pick: (t: NonNullable<Ledger["translator"]>) => number): Sample[] => (l.translator ? one(pick(l.translator)) : []);

/** "TIME.set_timer" -> extension TIME, function set_timer; "unknown" -> both unknown. */
function splitSbiFunction(key: string): Labels {
  const dot = key.indexOf(".");
  return dot < 0 ? { extension: key, function: key } : { extension: key.slice(0, dot), function: key.slice(dot + 1) };
}

/** Every metric and how it reads the ledger. Names follow Prometheus conventions (_total for counters). */
export const LEDGER_METRICS: readonly MetricSpec[] = [
  {
    name: "parley_wall_seconds",
    help: "Wall time since the current machine was made (to the end of its run once it stopped).",
    type: "gauge",
    labelNames: [],
    samples: (l) => one(l.wallSeconds),
  },
  {
    name: "parley_instructions_retired_total",
    help: "Guest instructions retired (minstret).",
    type: "counter",
    labelNames: [],
    samples: (l) => one(l.instructions),
  },
  {
    name: "parley_translated_instructions_retired_total",
    help: "Guest instructions retired by translated code (RISC-V -> wasm); absent with the translator off.",
    type: "counter",
    labelNames: [],
    samples: (l) => translatorSample(l, (t) => t.instructionsTranslatedRetired),
  },
  {
    name: "parley_translated_pages_total",
    help: "Guest code pages translated to WebAssembly.",
    type: "counter",
    labelNames: [],
    samples: (l) => translatorSample(l, (t) => t.pagesTranslated),
  },
  {
    name: "parley_translations_dropped_total",
    help: "Translations dropped because their code was written (or its page reused).",
    type: "counter",
    labelNames: [],
    samples: (l) => translatorSample(l, (t) => t.drops),
  },
  {
    name: "parley_translation_cache_hits_total",
    help: "Code pages whose translation came from the persistent translation cache at their first execution.",
    type: "counter",
    labelNames: [],
    samples: (l) => translatorSample(l, (t) => t.cacheHits),
  },
  {
    name: "parley_translation_cache_misses_total",
    help: "Code pages the persistent translation cache had no translation for at their first execution.",
    type: "counter",
    labelNames: [],
    samples: (l) => translatorSample(l, (t) => t.cacheMisses),
  },
  {
    name: "parley_mmio_exits_total",
    help: "Loads and stores that left the CPU core for a device model, by register.",
    type: "counter",
    labelNames: ["device", "register"],
    samples: (l) =>
      Object.entries(l.exits.byDevice).flatMap(([device, d]) => Object.entries(d.byRegister).map(([register, value]) => ({ labels: { device, register }, value }))),
  },
  {
    name: "parley_mmio_device_exits_total",
    help: "Loads and stores that left the CPU core for a device model, by device and direction.",
    type: "counter",
    labelNames: ["device", "access"],
    samples: (l) =>
      Object.entries(l.exits.byDevice).flatMap(([device, d]) => [
        { labels: { device, access: "load" }, value: d.loads },
        { labels: { device, access: "store" }, value: d.stores },
      ]),
  },
  {
    name: "parley_mmio_unmapped_exits_total",
    help: "Loads and stores to addresses no device answers (access faults in the guest).",
    type: "counter",
    labelNames: [],
    samples: (l) => one(l.exits.unmapped),
  },
  {
    name: "parley_sbi_calls_total",
    help: "SBI calls (hypercalls) served, by extension and function.",
    type: "counter",
    labelNames: ["extension", "function"],
    samples: (l) => Object.entries(l.sbi.byFunction).map(([key, value]) => ({ labels: splitSbiFunction(key), value })),
  },
  {
    name: "parley_sbi_errors_total",
    help: "SBI calls that returned an error, by error.",
    type: "counter",
    labelNames: ["error"],
    samples: (l) => Object.entries(l.sbi.errors).map(([error, value]) => ({ labels: { error }, value })),
  },
  {
    name: "parley_interrupts_taken_total",
    help: "Interrupt traps the hart took, by cause.",
    type: "counter",
    labelNames: ["cause"],
    samples: (l) => Object.entries(l.interrupts.byCause).map(([cause, value]) => ({ labels: { cause }, value })),
  },
  {
    name: "parley_interrupt_requests_total",
    help: "Interrupt requests forwarded by the PLIC, by source device.",
    type: "counter",
    labelNames: ["source"],
    samples: (l) => Object.entries(l.interrupts.bySource).map(([source, value]) => ({ labels: { source }, value })),
  },
  {
    name: "parley_exceptions_taken_total",
    help: "Exception traps the hart took, by cause.",
    type: "counter",
    labelNames: ["cause"],
    samples: (l) => Object.entries(l.exceptions.byCause).map(([cause, value]) => ({ labels: { cause }, value })),
  },
  {
    name: "parley_virtio_notifications_total",
    help: "Virtqueue notifications (QueueNotify kicks) received.",
    type: "counter",
    labelNames: ["device", "queue"],
    samples: (l) => perQueue(l, (q) => q.notificationsReceived),
  },
  {
    name: "parley_virtio_notifications_suppressed_total",
    help: "Virtqueue kicks avoided: chains popped minus kicks received (EVENT_IDX, NO_NOTIFY, batching).",
    type: "counter",
    labelNames: ["device", "queue"],
    samples: (l) => perQueue(l, (q) => q.notificationsSuppressed),
  },
  {
    name: "parley_virtio_chains_popped_total",
    help: "Descriptor chains the device took from the available ring.",
    type: "counter",
    labelNames: ["device", "queue"],
    samples: (l) => perQueue(l, (q) => q.chainsPopped),
  },
  {
    name: "parley_virtio_chains_used_total",
    help: "Descriptor chains the device returned through the used ring.",
    type: "counter",
    labelNames: ["device", "queue"],
    samples: (l) => perQueue(l, (q) => q.chainsUsed),
  },
  {
    name: "parley_virtio_used_interrupts_total",
    help: "Used-buffer interrupts raised.",
    type: "counter",
    labelNames: ["device"],
    samples: (l) => perDevice(l, (v) => v.usedInterruptsSent),
  },
  {
    name: "parley_virtio_used_interrupts_suppressed_total",
    help: "Used-buffer interrupts not needed because of the driver's suppression (EVENT_IDX, NO_INTERRUPT).",
    type: "counter",
    labelNames: ["device"],
    samples: (l) => perDevice(l, (v) => v.usedInterruptsSuppressed),
  },
  {
    name: "parley_virtio_coalesced_completions_total",
    help: "Completions gathered into used-buffer interrupt coalescing batches.",
    type: "counter",
    labelNames: ["device"],
    samples: (l) => perDevice(l, (v) => v.coalescedCompletions),
  },
  {
    name: "parley_virtio_coalesce_batches_total",
    help: "Coalescing batches ended, by what ended them: maxCompletions reached (count) or the maxDelayUs timer (timer).",
    type: "counter",
    labelNames: ["device", "end"],
    samples: (l) =>
      Object.entries(l.virtio).flatMap(([device, v]) => [
        { labels: { device, end: "count" }, value: v.coalesceBatchesByCount },
        { labels: { device, end: "timer" }, value: v.coalesceBatchesByTimer },
      ]),
  },
  {
    name: "parley_virtio_config_interrupts_total",
    help: "Configuration-change interrupts raised.",
    type: "counter",
    labelNames: ["device"],
    samples: (l) => perDevice(l, (v) => v.configInterrupts),
  },
  {
    name: "parley_device_bytes_total",
    help: "Bytes moved by a device: direction in = into the guest, out = out of it.",
    type: "counter",
    labelNames: ["device", "direction"],
    samples: (l) =>
      Object.entries(l.bytes).flatMap(([device, b]) => [
        { labels: { device, direction: "in" }, value: b.in },
        { labels: { device, direction: "out" }, value: b.out },
      ]),
  },
  {
    name: "parley_pauses_total",
    help: "Times the machine was paused (PATCH /vm, snapshots, migration's stop-and-copy).",
    type: "counter",
    labelNames: [],
    samples: (l) => (l.lifecycle ? one(l.lifecycle.pauses) : []),
  },
  {
    name: "parley_paused_seconds_total",
    help: "Host time the machine spent paused (guest time stood still meanwhile).",
    type: "counter",
    labelNames: [],
    samples: (l) => (l.lifecycle ? one(l.lifecycle.pausedMs / 1000) : []),
  },
  {
    name: "parley_dirty_pages_harvested_total",
    help: "Guest pages the dirty-page log reported written (live migration's pre-copy rounds).",
    type: "counter",
    labelNames: [],
    samples: (l) => (l.lifecycle ? one(l.lifecycle.dirtyPagesHarvested) : []),
  },
  {
    name: "parley_dirty_page_faults_total",
    help: "Guest stores that took the slow path to mark their page in the dirty-page log.",
    type: "counter",
    labelNames: [],
    samples: (l) => (l.lifecycle ? one(l.lifecycle.dirtyPageFaults) : []),
  },
];

function perDevice(l: Ledger, value: (v: Ledger["virtio"][string]) => number): Sample[] {
  return Object.entries(l.virtio).map(([device, v]) => ({ labels: { device }, value: value(v) }));
}

function perQueue(l: Ledger, value: (q: Ledger["virtio"][string]["perQueue"][number]) => number): Sample[] {
  return Object.entries(l.virtio).flatMap(([device, v]) => v.perQueue.map((q) => ({ labels: { device, queue: String(q.queue) }, value: value(q) })));
}

/**
 * A prom-client registry holding the ledger's metrics, and update(), which replaces every value
 * with the given ledger's (undefined: no machine yet, so no labelled samples).
 */
export function createLedgerRegistry(): { registry: Registry; update(ledger: Ledger | undefined): void } {
  const registry = new Registry();
  const metrics = LEDGER_METRICS.map((spec) => {
    const config = { name: spec.name, help: spec.help, labelNames: spec.labelNames, registers: [registry] };
    return { spec, metric: spec.type === "counter" ? new Counter(config) : new Gauge(config) };
  });
  return {
    registry,
    update(ledger) {
      for (const { spec, metric } of metrics) {
        // The ledger holds totals, not increments: start from zero and add the total.
        metric.reset();
        if (!ledger) continue;
        for (const { labels, value } of spec.samples(ledger)) {
          if (metric instanceof Counter) metric.inc(labels, value);
          else metric.set(labels, value);
        }
      }
    },
  };
}

export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export const METRICS_HOST = "127.0.0.1";

/** Why listening failed, in words a user can act on. */
function listenError(err: NodeJS.ErrnoException, port: number): Error {
  const where = `${METRICS_HOST}:${port}`;
  switch (err.code) {
    case "EADDRINUSE":
      return new Error(`${where} is already in use; choose another port`);
    case "EACCES":
      return new Error(`not allowed to listen on ${where} (ports below 1024 need privileges)`);
    default:
      return new Error(`cannot listen on ${where}: ${err.message}`);
  }
}

/**
 * Listens on 127.0.0.1:`port` (0: any free port) and serves GET /metrics from `ledger()`, called
 * once per scrape. The server does not keep the process alive on its own.
 */
export async function startMetricsServer(options: { port: number; ledger: () => Ledger | undefined }): Promise<MetricsServer> {
  const { port } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`metrics port ${port} is not a TCP port number`);
  const { registry, update } = createLedgerRegistry();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("parley serves its metrics at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    let body: Promise<string>;
    try {
      update(options.ledger());
      body = registry.metrics();
    } catch (err) {
      body = Promise.reject(err);
    }
    body.then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(req.method === "HEAD" ? undefined : text),
      (err: unknown) => res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(listenError(err, port)));
    server.listen(port, METRICS_HOST, () => resolve());
  });
  server.unref();
  const actualPort = (server.address() as AddressInfo).port;
  return {
    port: actualPort,
    url: `http://${METRICS_HOST}:${actualPort}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
