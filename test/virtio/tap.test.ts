// virtio-net over a real TAP interface: guest <-> host traffic. Runs Parley inside a network
// namespace this test creates and deletes, so no interface of the machine itself is touched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/host/node/paths.ts";
import { buildGuestImage } from "../../src/image/index.ts";
import { hostGate, missingHostTools } from "../support/host-tools.ts";

const isRoot = process.getuid?.() === 0;
const host = hostGate(!isRoot ? "needs root (network namespace and TAP interface)" : !existsSync("/dev/net/tun") ? "/dev/net/tun is missing" : missingHostTools(["ip", "ping"]));
const NS = `parley-tap-${process.pid}`;
const TAP = "ptap1";

function inNamespace(...args: string[]): string {
  return execFileSync("ip", ["netns", "exec", NS, ...args], { encoding: "utf8" });
}

test("virtio-net over TAP: guest and host reach each other", { skip: host.skip, timeout: 420_000 }, async () => {
  host.check();
  await buildGuestImage();
  execFileSync("ip", ["netns", "add", NS]);
  const child = spawn("ip", ["netns", "exec", NS, process.execPath, join(REPO_ROOT, "dist/parley.mjs"), "run", "--net", `tap=${TAP},mac=52:54:00:00:00:21`], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const waitFor = async (pattern: RegExp, ms: number) => {
    const until = Date.now() + ms;
    while (!pattern.test(output)) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${pattern}; output tail:\n${output.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    await waitFor(/root@parley:[^\n]*# /, 300_000);
    inNamespace("ip", "addr", "add", "10.202.0.1/24", "dev", TAP);
    inNamespace("ip", "link", "set", TAP, "up");
    child.stdin.write("dmesg -n 1; ip addr add 10.202.0.2/24 dev eth0 && ip link set eth0 up && ping -c 3 -W 5 10.202.0.1 && echo GUEST-PING-OK\n");
    await waitFor(/GUEST-PING-OK/, 90_000);
    const hostPing = inNamespace("ping", "-c", "2", "-W", "5", "10.202.0.2");
    assert.match(hostPing, /2 packets transmitted, 2 received/);
    child.stdin.write("poweroff\n");
    const code = await new Promise<number | null>((r) => child.on("close", r));
    assert.equal(code, 0, output.slice(-1000));
  } finally {
    child.kill("SIGKILL");
    execFileSync("ip", ["netns", "del", NS]);
  }
});
