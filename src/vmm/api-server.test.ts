// The REST API against its published OpenAPI document (docs/openapi.json): every route's request
// and response validated with ajv; errors in Firecracker's shape; and fuzzing: malformed JSON,
// random values, huge bodies are always a 400 with a fault message that leaves the state as it
// was, never a 500 or a crash.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { connect, createServer as createNetServer } from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { startApiServer, MAX_BODY_BYTES, API_ROUTES, matchPath, type ApiServer } from "./api-server.ts";
import { FakeVmmController } from "../testing/fake-vmm-controller.ts";
import { REPO_ROOT } from "../host/node/paths.ts";

const doc = JSON.parse(readFileSync(join(REPO_ROOT, "docs/openapi.json"), "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(doc, "openapi.json");

function validatorFor(schema: { $ref?: string; type?: string }) {
  if (schema.$ref) return ajv.getSchema(`openapi.json${schema.$ref}`)!;
  return ajv.compile(schema);
}

/** The documented operation for a concrete request path. */
function operation(method: string, path: string): any {
  for (const [pattern, ops] of Object.entries<any>(doc.paths)) {
    if (matchPath(pattern, path) && ops[method.toLowerCase()]) return { pattern, op: ops[method.toLowerCase()] };
  }
  return undefined;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json?: any;
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "parley-api-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function call(sock: string, method: string, path: string, body?: string | object, headers: Record<string, string> = {}): Promise<Answer> {
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { socketPath: sock, method, path, headers: { ...(payload !== undefined ? { "content-type": "application/json" } : {}), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          if (/json/.test(String(res.headers["content-type"]))) json = JSON.parse(text);
          resolve({ status: res.statusCode!, headers: res.headers, text, json });
        });
      },
    );
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

const exercised = new Set<string>();

/** A request the document says is valid; its answer checked against the document. */
async function documented(sock: string, method: string, path: string, body?: object): Promise<Answer> {
  const found = operation(method, path);
  assert.ok(found, `${method} ${path} is in docs/openapi.json`);
  exercised.add(`${method} ${found.pattern}`);
  if (body !== undefined) {
    const validate = validatorFor(found.op.requestBody.content["application/json"].schema);
    assert.ok(validate(body), `${method} ${path}: the sample body is valid by the document: ${JSON.stringify(validate.errors)}`);
  }
  const answer = await call(sock, method, path, body);
  checkAgainstDocument(method, path, answer);
  return answer;
}

function checkAgainstDocument(method: string, path: string, answer: Answer): void {
  const { op } = operation(method, path);
  const spec = op.responses[String(answer.status)] ?? op.responses.default;
  assert.ok(spec, `${method} ${path}: status ${answer.status} is documented`);
  if (!spec.content) {
    assert.equal(answer.text, "", `${method} ${path}: ${answer.status} has no body`);
    return;
  }
  const [type, media] = Object.entries<any>(spec.content)[0];
  assert.match(String(answer.headers["content-type"]), new RegExp(type.replace("/", "\\/")));
  if (type === "application/json") {
    const validate = validatorFor(media.schema);
    assert.ok(validate(answer.json), `${method} ${path}: response ${answer.text} matches the document: ${JSON.stringify(validate.errors)}`);
  }
}

async function withServer<T>(f: (sock: string, fake: FakeVmmController, server: ApiServer) => Promise<T>): Promise<T> {
  const sock = join(dir, `api-${Math.random().toString(36).slice(2)}.sock`);
  const fake = new FakeVmmController();
  const server = await startApiServer({ path: sock, controller: fake });
  try {
    return await f(sock, fake, server);
  } finally {
    await server.close();
  }
}

const drive = { drive_id: "rootfs", path_on_host: "/images/rootfs.img", is_read_only: false, coalescing: { max_completions: 16, max_delay_us: 200 } };
const nic = { iface_id: "eth0", host_dev_name: "tap0", guest_mac: "52:54:00:12:34:56" };

test("every route of the document, before and after InstanceStart, answers as documented", async () => {
  await withServer(async (sock, fake) => {
    const info = await documented(sock, "GET", "/");
    assert.deepEqual(info.json, { id: "fake-instance", state: "Not started", vmm_version: "0.1.0", app_name: "parley" });
    assert.equal((await documented(sock, "PUT", "/boot-source", { kernel_image_path: "/k/Image", boot_args: "console=ttyS0" })).status, 204);
    assert.equal((await documented(sock, "PUT", "/machine-config", { vcpu_count: 2, mem_size_mib: 256 })).status, 204);
    assert.equal((await documented(sock, "PATCH", "/machine-config", { sstc: false })).status, 204);
    const machine = await documented(sock, "GET", "/machine-config");
    assert.equal(machine.json.vcpu_count, 2);
    assert.equal(machine.json.sstc, false);
    assert.equal((await documented(sock, "PUT", "/drives/rootfs", drive)).status, 204);
    assert.equal((await documented(sock, "PUT", "/network-interfaces/eth0", nic)).status, 204);
    assert.equal((await documented(sock, "PUT", "/vsock", { guest_cid: 3, uds_path: "/tmp/v.sock" })).status, 204);
    assert.equal((await documented(sock, "PUT", "/shares/data", { path_on_host: "/srv/data", mount_tag: "data", is_read_only: true })).status, 204);
    assert.equal((await documented(sock, "PUT", "/shares/data", { path_on_host: "/srv/data2", mount_tag: "data" })).status, 204);
    const mismatch = await call(sock, "PUT", "/shares/data", { path_on_host: "/srv/x", mount_tag: "other" });
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.json.fault_message, /mount_tag: "other" does not match the path's "data"/);
    assert.equal((await documented(sock, "PUT", "/entropy", { rate_limiter: { bandwidth: { size: 4096, refill_time: 100 } } })).status, 204);
    assert.equal((await documented(sock, "PUT", "/metrics", { port: 9100 })).status, 204);
    assert.equal((await documented(sock, "PUT", "/balloon", { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1 })).status, 204);
    assert.equal((await documented(sock, "PATCH", "/balloon", { amount_mib: 64 })).status, 204);
    assert.equal((await documented(sock, "PATCH", "/balloon/statistics", { stats_polling_interval_s: 2 })).status, 204);
    assert.deepEqual((await documented(sock, "GET", "/balloon")).json, { amount_mib: 64, deflate_on_oom: true, stats_polling_interval_s: 2 });
    const config = await documented(sock, "GET", "/vm/config");
    assert.equal(config.json.drives[0].path_on_host, "/images/rootfs.img");
    assert.deepEqual(config.json.shares, [{ path_on_host: "/srv/data2", mount_tag: "data", is_read_only: false }], "a PUT of the same tag replaces the share");
    assert.equal(fake.calls.length, 0, "nothing reaches the machine before InstanceStart");

    assert.equal((await documented(sock, "PUT", "/actions", { action_type: "InstanceStart" })).status, 204);
    assert.equal(fake.calls[0].method, "start");
    assert.deepEqual(fake.calls[0].args[0], config.json, "the machine starts with the description the API collected");
    assert.equal((await documented(sock, "GET", "/")).json.state, "Running");

    const late = await documented(sock, "PUT", "/drives/data", { drive_id: "data", path_on_host: "/x" });
    assert.equal(late.status, 400);
    assert.match(late.json.fault_message, /not supported after starting/);
    assert.equal((await documented(sock, "PATCH", "/drives/rootfs", { drive_id: "rootfs", rate_limiter: { ops: { size: 100, refill_time: 1000 } } })).status, 204);
    assert.equal((await documented(sock, "PATCH", "/network-interfaces/eth0", { iface_id: "eth0", link_up: false, coalescing: { max_completions: 4, max_delay_us: 50 } })).status, 204);
    assert.deepEqual(fake.calls.at(-1), { method: "updateNetworkInterface", args: ["eth0", { link_up: false, coalescing: { max_completions: 4, max_delay_us: 50 } }] });
    assert.equal((await documented(sock, "PATCH", "/balloon", { amount_mib: 32 })).status, 204);
    assert.deepEqual(fake.calls.at(-1), { method: "setBalloonTarget", args: [32] });
    const stats = await documented(sock, "GET", "/balloon/statistics");
    assert.equal(stats.json.target_mib, 32);
    assert.equal((await documented(sock, "PATCH", "/balloon/statistics", { stats_polling_interval_s: 5 })).status, 204);
    assert.equal((await documented(sock, "PATCH", "/vm", { state: "Paused" })).status, 204);
    assert.equal((await documented(sock, "GET", "/")).json.state, "Paused");
    assert.equal((await documented(sock, "PUT", "/snapshot/create", { snapshot_path: "/s/state", mem_file_path: "/s/mem" })).status, 200);
    assert.deepEqual(fake.calls.at(-1), { method: "createSnapshot", args: [{ snapshot_path: "/s/state", mem_file_path: "/s/mem", snapshot_type: "Full" }] });
    assert.equal((await documented(sock, "PATCH", "/vm", { state: "Resumed" })).status, 204);
    assert.equal((await documented(sock, "PUT", "/actions", { action_type: "FlushMetrics" })).status, 204);
    const ctrlAltDel = await documented(sock, "PUT", "/actions", { action_type: "SendCtrlAltDel" });
    assert.equal(ctrlAltDel.status, 400);
    assert.match(ctrlAltDel.json.fault_message, /no keyboard device/);
    const metrics = await documented(sock, "GET", "/metrics");
    assert.match(metrics.text, /^parley_instructions_retired_total 42$/m);
    assert.equal((await documented(sock, "PUT", "/migrate", { destination: "/tmp/incoming.sock" })).status, 200);
    const loadLate = await documented(sock, "PUT", "/snapshot/load", { snapshot_path: "/s/state", mem_file_path: "/s/mem" });
    assert.equal(loadLate.status, 400);
  });
  await withServer(async (sock, fake) => {
    assert.equal((await documented(sock, "PUT", "/snapshot/load", { snapshot_path: "/s/state", mem_file_path: "/s/mem", resume_vm: false })).status, 204);
    assert.deepEqual(fake.calls[0], { method: "loadSnapshot", args: [{ snapshot_path: "/s/state", mem_file_path: "/s/mem", resume_vm: false }] });
    assert.equal((await documented(sock, "GET", "/")).json.state, "Paused");
  });
  const documentedRoutes = Object.entries<any>(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  assert.deepEqual(documentedRoutes.filter((r) => !exercised.has(r)), [], "every documented route was exercised");
  assert.equal(documentedRoutes.length, API_ROUTES.length);
});

test("refusals: the field is named, Firecracker's error body, and nothing changes", async () => {
  await withServer(async (sock, fake) => {
    await call(sock, "PUT", "/drives/rootfs", drive);
    const before = (await call(sock, "GET", "/vm/config")).json;
    const cases: [string, string, string | object, RegExp, Record<string, string>?][] = [
      ["PUT", "/machine-config", { vcpu_count: 33 }, /^vcpu_count: must be at most 32$/],
      ["PUT", "/machine-config", { vcpu_count: 2, mem_size_mib: 0 }, /^mem_size_mib: must be at least 1$/],
      ["PUT", "/drives/rootfs", { ...drive, is_read_only: "yes" }, /^is_read_only: must be a boolean, not string$/],
      ["PUT", "/drives/rootfs", { ...drive, cache_type: "Unsafe" }, /^cache_type: unknown field$/],
      ["PUT", "/drives/other", drive, /drive_id: "rootfs" does not match the path's "other"/],
      ["PUT", "/drives/rootfs", { ...drive, rate_limiter: { bandwidth: { size: -1, refill_time: 10 } } }, /^rate_limiter\.bandwidth\.size: must be at least 0$/],
      ["PUT", "/drives/rootfs", { ...drive, coalescing: { max_completions: 8, max_delay_us: 0 } }, /^coalescing\.max_delay_us: more than one completion/],
      ["PUT", "/network-interfaces/eth0", { iface_id: "eth0" }, /needs exactly one backend/],
      ["PUT", "/network-interfaces/eth0", { ...nic, guest_mac: "01:00:5e:00:00:01" }, /^guest_mac: is a multicast address/],
      ["PUT", "/vsock", { guest_cid: 2, uds_path: "/v" }, /^guest_cid: must be at least 3$/],
      ["PUT", "/balloon", { amount_mib: 1024, deflate_on_oom: true }, /^balloon\.amount_mib: must be at most mem_size_mib \(512\)$/],
      ["PUT", "/actions", { action_type: "Reboot" }, /^action_type: must be "InstanceStart"/],
      ["PATCH", "/vm", { state: "Stopped" }, /^state: must be "Paused" or "Resumed"$/],
      ["PUT", "/boot-source", "{not json", /not valid JSON/],
      ["PUT", "/boot-source", "", /needs a JSON body/],
      ["PUT", "/boot-source", "[1,2]", /must be an object, not an array/],
      ["PUT", "/boot-source", "kernel_image_path=/k", /content-type must be application\/json/, { "content-type": "application/x-www-form-urlencoded" }],
      ["PATCH", "/balloon", { amount_mib: 1 }, /no balloon device/],
      ["GET", "/balloon", "", /no balloon device/],
      ["PATCH", "/vm", { state: "Paused" }, /not been started/],
    ];
    for (const [method, path, body, message, headers] of cases) {
      const answer = await call(sock, method, path, method === "GET" ? undefined : body, headers);
      assert.equal(answer.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${answer.text}`);
      assert.match(answer.json.fault_message, message, `${method} ${path} ${JSON.stringify(body)}`);
      checkAgainstDocument(method, path, answer);
    }
    assert.deepEqual((await call(sock, "GET", "/vm/config")).json, before, "no refused request changed the description");
    assert.equal(fake.calls.length, 0);

    const missing = await call(sock, "GET", "/nothing-here");
    assert.equal(missing.status, 404);
    assert.match(missing.json.fault_message, /no such resource/);
    const wrongMethod = await call(sock, "DELETE", "/balloon");
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, "PUT, GET, PATCH");
    assert.match(wrongMethod.json.fault_message, /DELETE is not allowed/);

    const huge = await call(sock, "PUT", "/boot-source", JSON.stringify({ boot_args: "x".repeat(MAX_BODY_BYTES) }));
    assert.equal(huge.status, 400);
    assert.match(huge.json.fault_message, /larger than 51200 bytes/);

    fake.failNext = true;
    const startFailed = await call(sock, "PUT", "/actions", { action_type: "InstanceStart" });
    assert.equal(startFailed.status, 500);
    assert.equal((await call(sock, "GET", "/")).json.state, "Not started", "the server serves on after a controller failure");
    assert.equal((await call(sock, "PUT", "/actions", { action_type: "InstanceStart" })).status, 204);
    fake.failNext = true;
    const internal = await call(sock, "PATCH", "/vm", { state: "Paused" });
    assert.equal(internal.status, 500);
    assert.match(internal.json.fault_message, /internal error: pause failed/);
  });
});

// ---- fuzzing ---------------------------------------------------------------------------------

/** A small deterministic generator (xorshift32), so that a failure can be replayed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return { next, int, pick };
}

const JUNK: unknown[] = [null, -1, 0, 1.5, 2 ** 53, -(2 ** 60), 1e308, "", "x".repeat(300), "🦀", [], [1], {}, { a: 1 }, true, false, "on", "Paused", "../../etc/passwd", "52:54:00:zz:00:00"];

function mutate(value: unknown, r: ReturnType<typeof rng>): unknown {
  if (value === null || typeof value !== "object") return r.pick(JUNK);
  const copy: any = Array.isArray(value) ? [...value] : { ...value };
  const keys = Object.keys(copy);
  const choice = r.int(4);
  if (choice === 0 || keys.length === 0) copy[r.pick(["bogus", "__proto__", "constructor", "drive_idx", ""])] = r.pick(JUNK);
  else if (choice === 1) delete copy[r.pick(keys)];
  else {
    const key = r.pick(keys);
    copy[key] = mutate(copy[key], r);
  }
  return copy;
}

const SAMPLES: Record<string, object> = {
  "PUT /boot-source": { kernel_image_path: "/k", initrd_path: "/i", boot_args: "quiet", firmware: "none" },
  "PUT /machine-config": { vcpu_count: 2, mem_size_mib: 256, host_threads: 1, zawrs: true, pause_loop_window: 100, idle_states: true, sstc: true, console: "hvc", jit: "off" },
  "PATCH /machine-config": { vcpu_count: 4 },
  "PUT /drives/rootfs": { ...drive, rate_limiter: { bandwidth: { size: 1, one_time_burst: 2, refill_time: 3 }, ops: { size: 1, refill_time: 1 } } },
  "PUT /network-interfaces/eth0": { ...nic, rx_rate_limiter: { bandwidth: { size: 1, refill_time: 1 } }, coalescing: { max_completions: 2, max_delay_us: 10 } },
  "PUT /vsock": { guest_cid: 3, uds_path: "/v" },
  "PUT /entropy": { rate_limiter: { bandwidth: { size: 1, refill_time: 1 } } },
  "PUT /balloon": { amount_mib: 1, deflate_on_oom: false, stats_polling_interval_s: 1, free_page_reporting: true },
  "PATCH /balloon": { amount_mib: 1 },
  "PATCH /balloon/statistics": { stats_polling_interval_s: 1 },
  "PUT /actions": { action_type: "FlushMetrics" },
  "PATCH /vm": { state: "Paused" },
  "PUT /snapshot/create": { snapshot_path: "/s", mem_file_path: "/m" },
  "PUT /migrate": { destination: "/d" },
  "PATCH /drives/rootfs": { drive_id: "rootfs", coalescing: { max_completions: 1, max_delay_us: 0 } },
  "PATCH /network-interfaces/eth0": { iface_id: "eth0", link_up: true },
};

function corruptText(text: string, r: ReturnType<typeof rng>): string {
  switch (r.int(4)) {
    case 0:
      return text.slice(0, r.int(text.length));
    case 1:
      return text.slice(0, r.int(text.length)) + r.pick(["}", "{", '"', ",", "\u0000", "\\u", "]]", "NaN", "1e999"]) + text.slice(r.int(text.length));
    case 2:
      return Array.from({ length: r.int(64) }, () => String.fromCharCode(r.int(256))).join("");
    default:
      return JSON.stringify(r.pick(JUNK));
  }
}

async function fuzzRounds(sock: string, fake: FakeVmmController, seed: number, rounds: number): Promise<void> {
  const r = rng(seed);
  const routes = Object.keys(SAMPLES);
  for (let i = 0; i < rounds; i++) {
    const [method, path] = r.pick(routes).split(" ");
    const sample = SAMPLES[`${method} ${path}`];
    const body = r.int(3) === 0 ? corruptText(JSON.stringify(sample), r) : JSON.stringify(mutate(sample, r));
    const before = { config: (await call(sock, "GET", "/vm/config")).text, calls: fake.calls.length, state: fake.state(), running: JSON.stringify(fake.running) };
    const answer = await call(sock, method, path, body);
    const what = `seed ${seed} round ${i}: ${method} ${path} ${body.slice(0, 200)} -> ${answer.status} ${answer.text.slice(0, 200)}`;
    assert.ok([200, 204, 400].includes(answer.status), what);
    checkAgainstDocument(method, path, answer);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = undefined;
    }
    const { op } = operation(method, path);
    const validByDocument = parsed !== undefined && validatorFor(op.requestBody.content["application/json"].schema)(parsed);
    if (!validByDocument) assert.equal(answer.status, 400, `the document refuses it, so must the server: ${what}`);
    if (answer.status === 400) {
      assert.ok(answer.json.fault_message.length > 0, what);
      const after = { config: (await call(sock, "GET", "/vm/config")).text, state: fake.state(), running: JSON.stringify(fake.running) };
      assert.deepEqual(after, { config: before.config, state: before.state, running: before.running }, `a refused request changed nothing: ${what}`);
    }
  }
}

test("fuzzing: malformed and out-of-range bodies are 400s that change nothing, before and after start", async () => {
  await withServer(async (sock, fake) => {
    await call(sock, "PUT", "/drives/rootfs", drive);
    await call(sock, "PUT", "/network-interfaces/eth0", nic);
    await fuzzRounds(sock, fake, 0x5eed, 300);
  });
  await withServer(async (sock, fake) => {
    await call(sock, "PUT", "/drives/rootfs", drive);
    await call(sock, "PUT", "/network-interfaces/eth0", nic);
    await call(sock, "PUT", "/balloon", { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1 });
    await call(sock, "PUT", "/actions", { action_type: "InstanceStart" });
    await fuzzRounds(sock, fake, 0xbeef, 300);
  });
});

test("fuzzing: huge bodies and broken HTTP leave the server serving", async () => {
  await withServer(async (sock) => {
    for (const size of [MAX_BODY_BYTES + 1, 1 << 20, 8 << 20]) {
      const answer = await call(sock, "PUT", "/machine-config", "{" + " ".repeat(size));
      assert.equal(answer.status, 400);
      assert.match(answer.json.fault_message, /larger than/);
    }
    // Chunked, without a length: refused as it arrives.
    const chunked = await call(sock, "PUT", "/machine-config", "[" + "1,".repeat(MAX_BODY_BYTES), { "transfer-encoding": "chunked" });
    assert.equal(chunked.status, 400);
    for (const garbage of ["GARBAGE\r\n\r\n", "PUT / HTTP/9.9\r\ncontent-length: -5\r\n\r\n", "\u0000\u0001\u0002"]) {
      const reply = await new Promise<string>((resolve) => {
        const socket = connect(sock);
        let text = "";
        socket.on("data", (d) => (text += d));
        socket.on("close", () => resolve(text));
        socket.on("error", () => resolve(text));
        socket.end(garbage);
      });
      if (reply) assert.match(reply, /^HTTP\/1\.1 400/);
    }
    assert.equal((await call(sock, "GET", "/")).status, 200, "still serving");
  });
});

test("the socket path: a live instance's is refused, a stale one replaced, a file kept", async () => {
  const live = join(dir, "live.sock");
  const other = createNetServer().listen(live);
  await new Promise((resolve) => other.once("listening", resolve));
  await assert.rejects(startApiServer({ path: live, controller: new FakeVmmController() }), /in use by a running instance/);
  other.close();

  const file = join(dir, "not-a-socket");
  writeFileSync(file, "keep me");
  await assert.rejects(startApiServer({ path: file, controller: new FakeVmmController() }), /exists and is not a socket/);
  assert.equal(readFileSync(file, "utf8"), "keep me");

  // A socket file nobody listens on (a crashed instance's) is removed and replaced.
  const stale = join(dir, "stale.sock");
  const crashed = createNetServer().listen(stale);
  await new Promise((resolve) => crashed.once("listening", resolve));
  // Closing removes the file; simulate a crash by keeping it: listen again elsewhere is not needed.
  await new Promise<void>((resolve) => crashed.close(() => resolve()));
  if (!existsSync(stale)) {
    // Node removed it on close; make a stale socket file by hand.
    const { execFileSync } = await import("node:child_process");
    execFileSync("python3", ["-c", `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(stale)})`]);
  }
  const server = await startApiServer({ path: stale, controller: new FakeVmmController() });
  assert.equal((await call(stale, "GET", "/")).status, 200);
  await server.close();
});
