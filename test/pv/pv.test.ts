// `npm run bench -- pv --quick`: every comparison at reduced size, through the benchmark's entry, checking
// that each produces sane numbers and that the paravirtual side exits less wherever it must:
// a virtio-console write costs a notification per buffer where the 16550 traps on every byte;
// with Sstc the guest programs its timer without leaving the core.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/host/node/paths.ts";
import { LINUX_TOOLCHAIN, needsHostTools } from "../support/host-tools.ts";
import type { PvResults } from "../../bench/pv/results.ts";

// Generous: the quick comparisons take 3-5 minutes alone and run beside another suite in CI.
const TIMEOUT_MS = 540_000;

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS - 10_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

// The comparisons run a small static guest program built with the Linux cross toolchain.
const tools = needsHostTools(...LINUX_TOOLCHAIN);

const positive = (value: number, what: string) => assert.ok(Number.isFinite(value) && value > 0, `${what} = ${value}`);

test("npm run bench -- pv --quick: every comparison, sane numbers, fewer exits on the paravirtual side", { timeout: TIMEOUT_MS, skip: tools.skip }, async () => {
  tools.check();
  const out = mkdtempSync(join(tmpdir(), "parley-pv-"));
  const json = join(out, "results.json");
  const { code, output } = await run(["pv", "--quick", "--out", out, "--json", json]);
  assert.equal(code, 0, output.slice(-4000));
  const r = JSON.parse(readFileSync(json, "utf8")) as PvResults;
  assert.equal(r.quick, true);

  // Console: both ttys moved the payload; hvc0 exits far less per KiB than the 16550.
  const c = r.console!;
  for (const side of [c.ttyS0, c.hvc0]) {
    positive(side.mibPerSecond, "console MiB/s");
    positive(side.exitsPerKiB, "console exits/KiB");
    positive(side.instructionsPerByte, "console instructions/byte");
    positive(side.deviceInterrupts, "console interrupts");
  }
  assert.ok(c.hvc0.exitsPerKiB < c.ttyS0.exitsPerKiB, `hvc0 ${c.hvc0.exitsPerKiB} vs ttyS0 ${c.ttyS0.exitsPerKiB} exits/KiB`);
  // The 16550 traps at least once per byte written (THR) and more for the status it polls.
  assert.ok(c.ttyS0.exitsPerKiB >= 1024, `ttyS0: ${c.ttyS0.exitsPerKiB} exits/KiB`);
  for (const early of [c.earlyUart, c.earlySbi]) {
    positive(early.seconds, "early console boot seconds");
    positive(early.instructions, "early console boot instructions");
    assert.ok(early.logBytes > 1000, `boot log of ${early.logBytes} bytes`);
  }
  positive(c.earlySbi.hypercalls, "SBI console hypercalls");
  assert.ok(c.earlySbi.exits < c.earlyUart.exits, `earlycon: sbi ${c.earlySbi.exits} vs uart ${c.earlyUart.exits} exits`);

  // Timer: Linux without Sstc calls set_timer all the time; with Sstc it never does.
  const t = r.timer!;
  positive(t.sbi.idle.hypercallsPerSecond, "SBI timer hypercalls/s (idle)");
  positive(t.sbi.busy.hypercallsPerSecond, "SBI timer hypercalls/s (busy)");
  assert.equal(t.sstc.idle.hypercallsPerSecond, 0);
  assert.equal(t.sstc.busy.hypercallsPerSecond, 0);
  assert.ok(t.sstc.idle.exitsPerSecond < t.sbi.idle.exitsPerSecond, `idle: Sstc ${t.sstc.idle.exitsPerSecond} vs SBI ${t.sbi.idle.exitsPerSecond} exits/s`);
  assert.ok(t.sstc.busy.exitsPerSecond < t.sbi.busy.exitsPerSecond, `busy: Sstc ${t.sstc.busy.exitsPerSecond} vs SBI ${t.sbi.busy.exitsPerSecond} exits/s`);
  for (const side of [t.sbi, t.sstc]) {
    positive(side.busy.timerInterruptsPerSecond, "timer interrupts/s");
    for (const lat of [side.latencyIdle, side.latencyBusy]) {
      assert.ok(lat.count > 0 && lat.avgUs >= 0 && lat.p99Us >= lat.p50Us, JSON.stringify(lat));
    }
  }

  // Boot: both paths reach init; only the firmware path takes SBI calls as traps into M-mode.
  for (const pair of [r.boot!.sstc, r.boot!.noSstc]) {
    positive(pair.firmware.instructions, "firmware boot instructions");
    positive(pair.paravirtual.instructions, "paravirtual boot instructions");
    positive(pair.firmware.seconds, "firmware boot seconds");
    assert.equal(pair.firmware.hypercalls, 0);
    positive(pair.firmware.ecallTraps, "ECALLs trapped into OpenSBI");
    assert.equal(pair.paravirtual.ecallTraps, 0);
    positive(pair.paravirtual.hypercalls, "hypercalls");
  }

  // PLIC: each virtio interrupt costs claim and complete accesses.
  for (const p of r.plic!) {
    positive(p.virtioInterrupts, "virtio interrupts");
    assert.ok(p.plicExitsPerInterrupt >= 2, `PLIC exits per interrupt: ${p.plicExitsPerInterrupt}`);
  }

  // Coalescing: every setting measured; gathering completions means fewer interrupts per completion.
  const points = r.coalesce!;
  assert.equal(points.length, 4);
  for (const p of points) {
    positive(p.blkLatency.avgUs, `${p.label} blk latency`);
    positive(p.blkStream.mbPerSecond, `${p.label} blk MB/s`);
    positive(p.netLatency.avgUs, `${p.label} net RTT`);
    positive(p.netStream.mbPerSecond, `${p.label} net MB/s`);
    positive(p.blkStream.completions, `${p.label} blk completions`);
  }
  const off = points[0];
  const most = points[points.length - 1];
  assert.ok(most.blkStream.interruptsPerCompletion < off.blkStream.interruptsPerCompletion, "blk: fewer interrupts per completion when coalescing");
  assert.ok(most.netStream.interruptsPerCompletion < off.netStream.interruptsPerCompletion, "net: fewer interrupts per completion when coalescing");

  // Charts and the Markdown section.
  for (const name of ["pv-console", "pv-earlycon", "pv-timer", "pv-boot", "pv-plic", "pv-coalesce"]) {
    for (const ext of ["svg", "png"]) {
      const file = join(out, `${name}.${ext}`);
      assert.ok(existsSync(file) && statSync(file).size > 1000, `${file} written`);
    }
  }
  const md = readFileSync(join(out, "pv-results.md"), "utf8");
  assert.match(md, /\| exits per KiB \|/);
  assert.match(md, /!\[pv-coalesce\]\(pv-coalesce\.png\)/);
});
