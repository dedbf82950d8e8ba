// `parley pause|resume|snapshot|migrate --api-sock PATH` against an API server over a fake
// machine, `parley restore`'s checks, and `parley run --config` refusals (exit code 2, the field
// named). The command runs as users run it: a child process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startApiServer, type ApiServer } from "../../src/vmm/api-server.ts";
import { FakeVmmController } from "../../src/testing/fake-vmm-controller.ts";
import { REPO_ROOT } from "../../src/host/node/paths.ts";
import { parseVmConfig } from "../../src/vmm/schema.ts";

function parley(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), ...args], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

let dir: string;
let sock: string;
let server: ApiServer;
const fake = new FakeVmmController();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "parley-cli-api-"));
  sock = join(dir, "api.sock");
  server = await startApiServer({ path: sock, controller: fake });
  await fake.start(parseVmConfig({}));
  fake.calls = [];
});
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test("pause and resume", async () => {
  assert.deepEqual(await parley(["pause", "--api-sock", sock]), { code: 0, stderr: "" });
  assert.equal(fake.state(), "Paused");
  const again = await parley(["pause", "--api-sock", sock]);
  assert.equal(again.code, 1, "the instance's refusal is a failure");
  assert.match(again.stderr, /^parley: PATCH \/vm: cannot pause a machine that is paused\n$/);
  assert.deepEqual(await parley(["resume", "--api-sock", sock]), { code: 0, stderr: "" });
  assert.equal(fake.state(), "Running");
});

test("snapshot pauses a running instance, writes, and resumes it", async () => {
  fake.calls = [];
  const result = await parley(["snapshot", "--api-sock", sock, "--snapshot", "/s/state", "--mem", "/s/mem"]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(
    fake.calls.map((c) => c.method),
    ["pause", "createSnapshot", "resume"],
  );
  assert.deepEqual(fake.calls[1].args, [{ snapshot_path: "/s/state", mem_file_path: "/s/mem", snapshot_type: "Full" }]);
  fake.calls = [];
  assert.equal((await parley(["snapshot", "--api-sock", sock, "--snapshot", "/s/a", "--mem", "/s/b", "--leave-paused"])).code, 0);
  assert.deepEqual(
    fake.calls.map((c) => c.method),
    ["pause", "createSnapshot"],
  );
  assert.equal(fake.state(), "Paused");
  await fake.resume();
});

test("migrate sends the destination", async () => {
  fake.calls = [];
  assert.equal((await parley(["migrate", "--api-sock", sock, "--to", "tcp:10.0.0.2:4000"])).code, 0);
  assert.deepEqual(fake.calls, [{ method: "migrate", args: [{ destination: "tcp:10.0.0.2:4000" }] }]);
});

test("a socket nobody serves, and missing options, are usage errors (exit 2)", async () => {
  const none = await parley(["pause", "--api-sock", join(dir, "nobody.sock")]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--api-sock .*nobody\.sock: no such socket/);
  assert.equal((await parley(["migrate", "--api-sock", sock])).code, 2, "--to is required");
  const restore = await parley(["restore", "--snapshot", join(dir, "missing-state"), "--mem", join(dir, "missing-mem")]);
  assert.equal(restore.code, 2);
  assert.match(restore.stderr, /--snapshot .*missing-state: no such file/);
});

test("parley run --config: refusals exit 2 and name the field", async () => {
  const file = join(dir, "vm.json");
  writeFileSync(file, JSON.stringify({ "machine-config": { vcpu_count: 2, mem_size_mib: 256 }, drives: [{ drive_id: "root", path_on_host: "/x", is_read_only: "no" }] }));
  const bad = await parley(["run", "--config", file]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, `parley: --config ${file}: drives[0].is_read_only: must be a boolean, not string\n`);
  writeFileSync(file, JSON.stringify({ drives: [{ drive_id: "root", path_on_host: join(dir, "no-disk.img") }], "boot-source": { kernel_image_path: join(dir, "no-kernel") } }));
  const missingDisk = await parley(["run", "--config", file]);
  assert.equal(missingDisk.code, 2);
  assert.match(missingDisk.stderr, /^parley: drives\[0\]\.path_on_host: .*no-disk\.img/);
  writeFileSync(file, JSON.stringify({ "boot-source": { kernel_image_path: join(dir, "no-kernel") } }));
  const missingKernel = await parley(["run", "--config", file, "--cpus", "40"]);
  assert.equal(missingKernel.code, 2);
  assert.match(missingKernel.stderr, /--cpus: "40" is not a number of harts/, "a typed flag is checked too");
});

test("parley serve: the API first, the machine at InstanceStart; a description that cannot start is a 400", async () => {
  const sockPath = join(dir, "serve.sock");
  const file = join(dir, "serve.json");
  writeFileSync(file, JSON.stringify({ "machine-config": { vcpu_count: 2, mem_size_mib: 256 }, "boot-source": { kernel_image_path: join(dir, "no-kernel") } }));
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), "serve", "--api-sock", sockPath, "--config", file], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  try {
    for (let i = 0; i < 200 && !/waiting for InstanceStart/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(stderr, /API on .*serve\.sock; waiting for InstanceStart/);
    const { apiRequest, ApiRefusal } = await import("../../src/cli/api-client.ts");
    assert.deepEqual(((await apiRequest(sockPath, "GET", "/")).json as { state: string }).state, "Not started");
    assert.equal(((await apiRequest(sockPath, "GET", "/machine-config")).json as { vcpu_count: number }).vcpu_count, 2, "the --config file is the starting point");
    await assert.rejects(apiRequest(sockPath, "PUT", "/machine-config", { vcpu_count: 99 }), (err: Error) => err instanceof ApiRefusal && /vcpu_count: must be at most 32/.test(err.message));
    await assert.rejects(apiRequest(sockPath, "PUT", "/actions", { action_type: "InstanceStart" }), /boot-source\.kernel_image_path: .*no-kernel: no such file/);
    assert.equal(((await apiRequest(sockPath, "GET", "/")).json as { state: string }).state, "Not started", "a failed start leaves the instance waiting");
  } finally {
    child.kill();
  }
});
