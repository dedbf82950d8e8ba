// The Prometheus endpoint: parseable text format with the ledger's counters, local only, and
// option errors (bad port, port in use, unwritable --stats-json) that exit 2 and say why.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { startMetricsServer } from "../../src/vmm/metrics.ts";
import { REPO_ROOT } from "../../src/host/node/paths.ts";
import { Bus } from "../../src/machine/bus.ts";
import { collectLedger, type Ledger } from "../../src/machine/ledger.ts";
import { Uart16550 } from "../../src/devices/uart16550.ts";
import { SbiCounters } from "../../src/sbi/dispatcher.ts";

/** A ledger with known counts: 37 THR stores, 2 set_timer calls, 3 timer interrupts. */
function knownLedger(): Ledger {
  const bus = new Bus();
  const uart = new Uart16550({ output: () => {}, irq: () => {} });
  bus.map(0x1000_0000, 0x100, uart);
  for (let i = 0; i < 37; i++) bus.store(0x1000_0000, 1, 0x41);
  bus.load(0x1000_0005, 1);
  const sbi = new SbiCounters();
  sbi.record("TIME", "TIME.set_timer", 0n);
  sbi.record("TIME", "TIME.set_timer", 0n);
  sbi.record("unknown", "unknown", -2n);
  const traps = new Array<bigint>(64).fill(0n);
  traps[32 + 5] = 3n;
  return collectLedger(
    {
      cpu: { instret: 123_456n, trapCounts: () => traps },
      bus,
      startedAt: 0,
      stoppedAt: 2000,
      sbi: { counters: sbi },
      plic: { counters: { raised: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4] } },
      interruptSources: new Map([[10, "uart0"]]),
      uart,
    },
    0,
  );
}

interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format (version 0.0.4): HELP/TYPE comments and `name{labels} value` lines. */
function parsePrometheus(text: string): { samples: PromSample[]; types: Map<string, string> } {
  const samples: PromSample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1], type[2]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
      let at = 0;
      while (at < m[2].length) {
        labelRe.lastIndex = at;
        const l = labelRe.exec(m[2]);
        assert.ok(l, `bad labels in ${JSON.stringify(line)}`);
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
        at = labelRe.lastIndex;
      }
    }
    const value = Number(m[3]);
    assert.ok(!Number.isNaN(value), `bad value in ${JSON.stringify(line)}`);
    samples.push({ name: m[1], labels, value });
  }
  return { samples, types };
}

function find(samples: PromSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length)?.value;
}

test("GET /metrics serves the ledger in Prometheus text format on 127.0.0.1", async () => {
  let current: Ledger | undefined;
  let scrapes = 0;
  const server = await startMetricsServer({
    port: 0,
    ledger: () => {
      scrapes++;
      return current;
    },
  });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    // Before a machine exists: a valid, empty exposition.
    const empty = await fetch(server.url);
    assert.equal(empty.status, 200);
    assert.equal(find(parsePrometheus(await empty.text()).samples, "parley_mmio_exits_total", { device: "uart0", register: "THR" }), undefined);

    current = knownLedger();
    const response = await fetch(server.url);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parsePrometheus(await response.text());
    assert.equal(find(samples, "parley_mmio_exits_total", { device: "uart0", register: "THR" }), 37);
    assert.equal(find(samples, "parley_mmio_exits_total", { device: "uart0", register: "LSR" }), 1);
    assert.equal(find(samples, "parley_mmio_device_exits_total", { device: "uart0", access: "store" }), 37);
    assert.equal(find(samples, "parley_instructions_retired_total"), 123_456);
    assert.equal(find(samples, "parley_wall_seconds"), 2);
    assert.equal(find(samples, "parley_sbi_calls_total", { extension: "TIME", function: "set_timer" }), 2);
    assert.equal(find(samples, "parley_sbi_calls_total", { extension: "unknown", function: "unknown" }), 1);
    assert.equal(find(samples, "parley_sbi_errors_total", { error: "SBI_ERR_NOT_SUPPORTED" }), 1);
    assert.equal(find(samples, "parley_interrupts_taken_total", { cause: "supervisor timer" }), 3);
    assert.equal(find(samples, "parley_interrupt_requests_total", { source: "uart0" }), 4);
    assert.equal(find(samples, "parley_device_bytes_total", { device: "uart0", direction: "out" }), 37);
    assert.equal(types.get("parley_mmio_exits_total"), "counter");
    assert.equal(types.get("parley_wall_seconds"), "gauge");

    // Collected per scrape: later counts show up, nothing accumulates across scrapes.
    current = { ...current, instructions: 200_000 };
    const again = parsePrometheus(await (await fetch(server.url)).text()).samples;
    assert.equal(find(again, "parley_instructions_retired_total"), 200_000);
    assert.equal(find(again, "parley_mmio_exits_total", { device: "uart0", register: "THR" }), 37);
    assert.equal(scrapes, 3);

    assert.equal((await fetch(server.url.replace("/metrics", "/"))).status, 404);
    assert.equal((await fetch(server.url, { method: "POST" })).status, 405);
  } finally {
    await server.close();
  }
});

test("a port in use is refused with a message that says so", async () => {
  const first = await startMetricsServer({ port: 0, ledger: () => undefined });
  try {
    await assert.rejects(startMetricsServer({ port: first.port, ledger: () => undefined }), /127\.0\.0\.1:\d+ is already in use/);
  } finally {
    await first.close();
  }
});

function cli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), ...args], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

test("parley run: bad --metrics-port and --stats-json values exit 2 and say what to fix", async () => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const port = (busy.address() as { port: number }).port;
  try {
    const cases: [string[], RegExp][] = [
      [["run", "--metrics-port", "http"], /--metrics-port: "http" is not a TCP port number \(1-65535\)/],
      [["run", "--metrics-port", "70000"], /--metrics-port: "70000" is not a TCP port number/],
      [["run", "--metrics-port", String(port)], new RegExp(`--metrics-port ${port}: 127\\.0\\.0\\.1:${port} is already in use`)],
      [["run", "--stats-json", "/nonexistent-dir/ledger.json"], /--stats-json \/nonexistent-dir\/ledger.json: directory \/nonexistent-dir does not exist/],
      [["run-elf", "--stats-json", "/nonexistent-dir/x.json", "/etc/hostname"], /--stats-json \/nonexistent-dir\/x.json: directory \/nonexistent-dir does not exist/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      assert.equal(run.code, 2, `parley ${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
  } finally {
    busy.close();
  }
});
