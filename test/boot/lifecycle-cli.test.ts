// The lifecycle as a user drives it from the command line (the README's commands): `parley run
// --api-sock`, `parley pause|resume|snapshot`, `parley restore`, `parley run --incoming` with
// `parley migrate`, hot changes through the REST API (network link down and up, a disk's rate
// limiter), and a damaged snapshot refused with exit code 2 before anything runs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { request } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, runParley } from "../support/parley-cli.ts";
import { buildGuestImage } from "../../src/image/index.ts";

const BOOT_MS = 240_000;
const PROMPT = /root@parley:[^\n]*# /;

/** A running `parley` process with its console. */
class Instance {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.on("data", (d) => (this.stdout += d));
    this.child.stderr.on("data", (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on("close", resolve));
  }

  async waitFor(pattern: RegExp, timeoutMs: number, from = 0, stream: "stdout" | "stderr" = "stdout"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this[stream].slice(from))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; ${stream} tail:\n${this[stream].slice(-1500)}\nstderr:\n${this.stderr.slice(-800)}`);
      if (this.child.exitCode !== null) throw new Error(`parley exited (${this.child.exitCode}) before ${pattern}; stderr:\n${this.stderr.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Types a command and waits for the next prompt; returns what the command printed. */
  async run(command: string, timeoutMs = 60_000): Promise<string> {
    const tag = `T${Math.random().toString(36).slice(2, 8)}`;
    const from = this.stdout.length;
    this.child.stdin.write(`echo ${tag}B; ${command}; echo ${tag}E\n`);
    await this.waitFor(new RegExp(`\\n${tag}E`), timeoutMs, from);
    const text = this.stdout.slice(from).replace(/\r/g, "");
    return text.slice(text.indexOf(`\n${tag}B\n`) + tag.length + 3, text.lastIndexOf(`\n${tag}E`));
  }

  async prompt(): Promise<void> {
    const from = this.stdout.length;
    this.child.stdin.write("\n");
    await this.waitFor(PROMPT, 30_000, from);
  }
}

function parley(args: string[], timeoutMs = 120_000) {
  return runParley(args, { timeoutMs });
}

function api(socketPath: string, method: string, path: string, body?: object): Promise<{ status: number; json: unknown }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {} }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

test("pause, resume, snapshot, restore and hot changes from the command line and the API", { timeout: 2 * BOOT_MS + 240_000 }, async () => {
  await buildGuestImage();
  const dir = mkdtempSync(join(tmpdir(), "parley-cli-lifecycle-"));
  const sock = join(dir, "api.sock");
  const disk = join(dir, "disk.img");
  writeFileSync(disk, new Uint8Array(8 << 20));
  const state = join(dir, "vm.state");
  const mem = join(dir, "vm.mem");
  const vm = new Instance(["run", "--memory", "256M", "--cpus", "2", "--api-sock", sock, "--disk", `path=${disk},id=disk0`, "--net", `socket=listen:${join(dir, "net.sock")}`]);
  let restored: Instance | undefined;
  try {
    await vm.waitFor(PROMPT, BOOT_MS);
    assert.match(await vm.run("echo kept > /tmp/kept; cat /tmp/kept"), /kept/);
    // Pause and resume.
    assert.equal((await parley(["pause", "--api-sock", sock])).code, 0);
    assert.equal(((await api(sock, "GET", "/")).json as { state: string }).state, "Paused");
    assert.equal((await parley(["resume", "--api-sock", sock])).code, 0);
    assert.equal(((await api(sock, "GET", "/")).json as { state: string }).state, "Running");
    // Hot changes: the link goes down and up (the guest sees its carrier), a disk rate limiter.
    await vm.run("ip link set eth0 up");
    assert.equal((await api(sock, "PATCH", "/network-interfaces/net0", { iface_id: "net0", link_up: false })).status, 204);
    assert.match(await vm.run("sleep 1; cat /sys/class/net/eth0/carrier"), /^0$/m);
    assert.equal((await api(sock, "PATCH", "/network-interfaces/net0", { iface_id: "net0", link_up: true })).status, 204);
    assert.match(await vm.run("sleep 1; cat /sys/class/net/eth0/carrier"), /^1$/m);
    assert.equal((await api(sock, "PATCH", "/drives/disk0", { drive_id: "disk0", rate_limiter: { bandwidth: { size: 1 << 20, refill_time: 100 } } })).status, 204);
    assert.match(await vm.run("dd if=/dev/vda of=/dev/null bs=64k count=32 iflag=direct 2>&1"), /32\+0 records out/);
    const bad = await api(sock, "PATCH", "/drives/disk0", { drive_id: "disk0", rate_limiter: { bandwidth: { size: -1, refill_time: 100 } } });
    assert.equal(bad.status, 400);
    assert.match((bad.json as { fault_message: string }).fault_message, /size/);
    // Snapshot (pauses, writes, resumes), then the original goes on and powers off.
    const snap = await parley(["snapshot", "--api-sock", sock, "--snapshot", state, "--mem", mem]);
    assert.equal(snap.code, 0, snap.stderr);
    const report = JSON.parse(snap.stdout) as { pages_written: number; pages_skipped: number };
    assert.ok(report.pages_written > 0 && report.pages_skipped > 0, snap.stdout);
    assert.equal(((await api(sock, "GET", "/")).json as { state: string }).state, "Running");
    vm.child.stdin.write("poweroff\n");
    assert.equal(await vm.exited, 0, vm.stderr);

    // A damaged state file is refused before anything runs.
    const damaged = join(dir, "damaged.state");
    const bytes = readFileSync(state);
    bytes[bytes.length - 3] ^= 0x20;
    writeFileSync(damaged, bytes);
    const refused = await parley(["restore", "--snapshot", damaged, "--mem", mem]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /checksum mismatch/);
    const wrongMem = await parley(["restore", "--snapshot", state, "--mem", disk]);
    assert.equal(wrongMem.code, 2, wrongMem.stderr);
    assert.match(wrongMem.stderr, /memory file/);

    // Restore: the guest is where the snapshot left it.
    restored = new Instance(["restore", "--snapshot", state, "--mem", mem]);
    await restored.waitFor(/restored in [\d.]+ ms/, 60_000, 0, "stderr");
    await restored.prompt();
    assert.match(await restored.run("cat /tmp/kept"), /kept/);
    restored.child.stdin.write("poweroff\n");
    assert.equal(await restored.exited, 0, restored.stderr);
  } finally {
    vm.child.kill("SIGKILL");
    restored?.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

test("parley migrate moves a running guest to parley run --incoming", { timeout: BOOT_MS + 240_000 }, async () => {
  await buildGuestImage();
  const dir = mkdtempSync(join(tmpdir(), "parley-cli-migrate-"));
  const sock = join(dir, "api.sock");
  const incoming = `unix:${join(dir, "incoming.sock")}`;
  const source = new Instance(["run", "--memory", "256M", "--cpus", "2", "--api-sock", sock]);
  const destination = new Instance(["run", "--incoming", incoming]);
  try {
    await source.waitFor(PROMPT, BOOT_MS);
    await destination.waitFor(/waiting for a migration at unix:/, 60_000, 0, "stderr");
    await source.run("echo moved > /tmp/moved; (while :; do echo x > /dev/null; done) & echo started");
    const migrate = await parley(["migrate", "--api-sock", sock, "--to", incoming]);
    assert.equal(migrate.code, 0, migrate.stderr);
    console.log(migrate.stderr.trim());
    const report = JSON.parse(migrate.stdout) as { downtime_ms: number; rounds: number; total_ms: number };
    assert.ok(report.downtime_ms > 0 && report.total_ms >= report.downtime_ms, migrate.stdout);
    assert.equal(await source.exited, 0, source.stderr);
    assert.match(source.stderr, /migrated and runs on at the destination/);
    await destination.prompt();
    assert.match(await destination.run("cat /tmp/moved; jobs | grep -c Running"), /moved\n1/);
    destination.child.stdin.write("kill %1; poweroff\n");
    assert.equal(await destination.exited, 0, destination.stderr);
  } finally {
    source.child.kill("SIGKILL");
    destination.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});
