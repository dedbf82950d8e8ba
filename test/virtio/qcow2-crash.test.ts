// Crash consistency of the qcow2 backend: a child process writes through it and is killed with
// SIGKILL at a random moment; then `qemu-img check` must find no corruption (leaked clusters are
// allowed: exit status 3 means "leaks only", which QEMU itself repairs harmlessly), and every byte
// written before the last flush the writer saw complete must be there. Small clusters make
// allocations of L2 tables, refcount blocks and refcount table growths frequent, so kills land
// in the middle of all of them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { needsHostTools } from "../support/host-tools.ts";
import { prng } from "../../src/testing/fakes.ts";
import { opsFor, OPS } from "./qcow2-crash-ops.ts";

const tools = needsHostTools("qemu-img");
const SIZE = 16 * 1024 * 1024;
const ITERATIONS = Number(process.env.QCOW2_CRASH_ITERATIONS ?? 8);
const CHILD = join(import.meta.dirname, "qcow2-crash-child.ts");

/** Runs the writer until it reported `flushes` completed flushes, then kills it after `delayMs`. */
function runAndKill(path: string, seed: number, flushes: number, delayMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, path, String(seed), String(SIZE)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let killing = false;
    child.stderr.on("data", (d) => (err += d));
    child.stdout.on("data", (d) => {
      out += d;
      const seen = out.split("\n").filter((l) => l.startsWith("flushed ")).length;
      if (!killing && (seen >= flushes || out.includes("done"))) {
        killing = true;
        setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal !== "SIGKILL") return reject(new Error(`writer ended with ${code ?? signal}: ${err}`));
      const last = out.split("\n").filter((l) => l.startsWith("flushed ")).pop();
      resolve(last ? Number(last.slice("flushed ".length)) : 0);
    });
  });
}

test("a qcow2 writer killed with SIGKILL leaves an image qemu-img check accepts, with every flushed write intact", { skip: tools.skip, timeout: 600_000 }, async (t) => {
  tools.check();
  const dir = await mkdtemp(join(tmpdir(), "parley-qcow2-crash-"));
  try {
    const random = prng(0xc0a5);
    const base = new Uint8Array(SIZE);
    for (let i = 0; i < SIZE; i += 4096) base.fill((i / 4096) & 0xff, i, i + 4096);
    await writeFile(join(dir, "base.raw"), base);
    for (let iteration = 0; iteration < ITERATIONS; iteration++) {
      const path = join(dir, `crash${iteration}.qcow2`);
      const withBacking = iteration % 2 === 1;
      const clusterSize = [512, 4096, 65536][iteration % 3];
      execFileSync("qemu-img", [
        "create", "-q", "-f", "qcow2", "-o", `cluster_size=${clusterSize}`,
        ...(withBacking ? ["-b", "base.raw", "-F", "raw"] : []),
        path, String(SIZE),
      ]);
      const seed = 1000 + iteration;
      const flushed = await runAndKill(path, seed, 1 + Math.floor(random() * 60), Math.floor(random() * 40));
      const check = spawnSync("qemu-img", ["check", "--output=json", path], { encoding: "utf8" });
      const report = JSON.parse(check.stdout) as { corruptions?: number; leaks?: number };
      assert.ok(check.status === 0 || check.status === 3, `iteration ${iteration}: qemu-img check exit ${check.status}\n${check.stdout}${check.stderr}`);
      assert.equal(report.corruptions ?? 0, 0, `iteration ${iteration}: ${check.stdout}`);
      t.diagnostic(`iteration ${iteration}: ${clusterSize}-byte clusters${withBacking ? ", raw backing file" : ""}, killed after ${flushed}/${OPS} operations flushed, ${report.leaks ?? 0} leaked clusters`);

      // The model: every operation up to the last reported flush; bytes a later one may have
      // touched are unknown.
      const model = withBacking ? base.slice() : new Uint8Array(SIZE);
      const known = new Uint8Array(SIZE).fill(1);
      for (const [i, op] of opsFor(seed, SIZE).entries()) {
        if (i < flushed) model.fill(op.kind === "write" ? op.fill : 0, op.offset, op.offset + op.length);
        else known.fill(0, op.offset, op.offset + op.length);
      }
      const raw = join(dir, `crash${iteration}.raw`);
      execFileSync("qemu-img", ["convert", "-O", "raw", path, raw]);
      const actual = new Uint8Array(await readFile(raw));
      for (let b = 0; b < SIZE; b++) {
        if (known[b] && actual[b] !== model[b]) assert.fail(`iteration ${iteration} (${flushed}/${OPS} operations flushed): byte ${b} is ${actual[b]}, expected ${model[b]}`);
      }
      await rm(raw);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
