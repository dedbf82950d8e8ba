// The TAP backend against a real TAP interface, inside a network namespace this test creates
// (`ip netns add parley-test-PID`) and deletes: the host's own interfaces are never touched. The
// TAP part runs in a child process started with `ip netns exec`, which is this same file with
// PARLEY_NET_TAP_CHILD set. Skipped, saying why, when not root or when ip / /dev/net/tun is missing.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { hostGate, missingHostTools } from "../../../test/support/host-tools.ts";
import { IFF_NO_PI, IFF_TAP, TUNSETIFF, buildTunSetIffRequest, ifreqName, openTapBackend, tapNameProblem } from "./net-tap.ts";
import { VirtioNet } from "../../virtio/net/device.ts";
import { FakeNetDriver } from "../../virtio/testing/net.ts";

const CHILD_ENV = "PARLEY_NET_TAP_CHILD";
const RESULT = "PARLEY-TAP-RESULT ";
const TAP = "ptap0";
const GUEST_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
// Addresses exist only inside the private namespace.
const HOST_IP = [10, 201, 0, 1];
const GUEST_IP = [10, 201, 0, 2];

// ---- frames the "guest" sends (pure helpers) ----

function ipChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function arpRequest(srcMac: Uint8Array, srcIp: number[], targetIp: number[]): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xff, 0, 6); // broadcast
  f.set(srcMac, 6);
  f.set([0x08, 0x06], 12); // ARP
  f.set([0, 1, 0x08, 0x00, 6, 4, 0, 1], 14); // Ethernet/IPv4, request
  f.set(srcMac, 22);
  f.set(srcIp, 28);
  f.set(targetIp, 38);
  return f;
}

function icmpEcho(srcMac: Uint8Array, dstMac: Uint8Array, srcIp: number[], dstIp: number[], id: number, payload: Uint8Array): Uint8Array {
  const ipLen = 20 + 8 + payload.length;
  const f = new Uint8Array(14 + ipLen);
  f.set(dstMac, 0);
  f.set(srcMac, 6);
  f.set([0x08, 0x00], 12);
  const ip = f.subarray(14);
  ip.set([0x45, 0, ipLen >> 8, ipLen & 0xff, 0, 1, 0x40, 0, 64, 1, 0, 0], 0);
  ip.set(srcIp, 12);
  ip.set(dstIp, 16);
  const ipSum = ipChecksum(ip.subarray(0, 20));
  ip[10] = ipSum >> 8;
  ip[11] = ipSum & 0xff;
  const icmp = ip.subarray(20);
  icmp.set([8, 0, 0, 0, id >> 8, id & 0xff, 0, 1], 0);
  icmp.set(payload, 8);
  const icmpSum = ipChecksum(icmp);
  icmp[2] = icmpSum >> 8;
  icmp[3] = icmpSum & 0xff;
  return f;
}

const isChild = process.env[CHILD_ENV] !== undefined;

test("struct ifreq for TUNSETIFF, interface names", { skip: isChild }, () => {
  assert.equal(TUNSETIFF, 0x400454ca);
  const ifr = buildTunSetIffRequest("tap%d");
  assert.equal(ifr.length, 40);
  assert.equal(ifreqName(ifr), "tap%d");
  assert.equal(ifr[16] | (ifr[17] << 8), IFF_TAP | IFF_NO_PI);
  assert.equal(tapNameProblem("tap0"), undefined);
  assert.equal(tapNameProblem("a".repeat(15)), undefined);
  assert.match(tapNameProblem("a".repeat(16))!, /longer than 15/);
  assert.match(tapNameProblem("")!, /empty/);
  assert.match(tapNameProblem("a/b")!, /not a valid/);
  assert.match(tapNameProblem("a b")!, /not a valid/);
});

test("openTapBackend rejects bad names before touching the system", { skip: isChild }, async () => {
  await assert.rejects(openTapBackend("this-name-is-too-long"), /longer than 15 bytes/);
});

// ---- the part that runs inside the namespace ----

async function child(): Promise<void> {
  const results: Record<string, unknown> = {};
  const sh = (...args: string[]) => execFileSync(args[0], args.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();

  if (process.env[CHILD_ENV] === "exit-without-close") {
    // A receive poll(2) is pending on the threadpool; exit must not wait for it.
    await openTapBackend(TAP);
    await new Promise((r) => setTimeout(r, 100));
    process.stdout.write(`${RESULT}{}\n`);
    process.exit(0);
  }

  if (process.env[CHILD_ENV] === "no-cap") {
    // Same namespace, CAP_NET_ADMIN dropped by setpriv: TUNSETIFF must fail with a clear message.
    try {
      const b = await openTapBackend(TAP);
      await b.close();
      results.noCapError = null;
    } catch (e) {
      results.noCapError = (e as Error).message;
    }
    process.stdout.write(`${RESULT}${JSON.stringify(results)}\n`);
    return;
  }

  const backend = await openTapBackend(TAP, { log: () => {} });
  results.name = backend.name;
  // A second open of a TAP that is attached is refused with EBUSY.
  try {
    const again = await openTapBackend(TAP, { log: () => {} });
    await again.close();
    results.busyError = null;
  } catch (e) {
    results.busyError = (e as Error).message;
  }

  // Writes before the interface is up fail with EIO, counted.
  const device = new VirtioNet({ backend, mac: GUEST_MAC, hostQueueFrames: 4 });
  const guest = new FakeNetDriver(device).activate();
  guest.transmit(arpRequest(GUEST_MAC, GUEST_IP, HOST_IP));
  results.dropsWhileDown = backend.counters.sendDrops["interface-down"] ?? 0;

  sh("ip", "link", "set", "lo", "up");
  sh("sysctl", "-q", "-w", `net.ipv6.conf.all.disable_ipv6=1`);
  sh("ip", "addr", "add", `${HOST_IP.join(".")}/24`, "dev", TAP);
  sh("ip", "link", "set", TAP, "up");
  guest.postReceiveBuffers(64, 1530);

  const received: Uint8Array[] = [];
  const waitFor = async (pred: (f: Uint8Array) => boolean, what: string): Promise<Uint8Array> => {
    const end = Date.now() + 5000;
    for (;;) {
      received.push(...guest.takeReceived().map((p) => p.frame));
      const hit = received.find(pred);
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      if (guest.rxq.available.length < 16) guest.postReceiveBuffers(32, 1530);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  // Guest -> host: ARP who-has HOST_IP; host -> guest: the reply.
  guest.transmit(arpRequest(GUEST_MAC, GUEST_IP, HOST_IP));
  const reply = await waitFor((f) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2, "ARP reply");
  results.arpReplyTo = Array.from(reply.subarray(0, 6));
  results.arpSenderIp = Array.from(reply.subarray(28, 32));
  const hostMac = reply.subarray(22, 28);

  // ICMP echo through the host's IP stack (checksums verified by the kernel).
  sh("ip", "neigh", "replace", GUEST_IP.join("."), "lladdr", Array.from(GUEST_MAC, (b) => b.toString(16).padStart(2, "0")).join(":"), "dev", TAP);
  const payload = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  guest.transmit(icmpEcho(GUEST_MAC, hostMac, GUEST_IP, HOST_IP, 0x4242, payload));
  const echo = await waitFor((f) => f[12] === 0x08 && f[13] === 0x00 && f[23] === 1 && f[34] === 0, "ICMP echo reply");
  results.echoLength = echo.length;
  results.echoPayloadOk = echo.subarray(42).every((b, i) => b === (i & 0xff));

  // A full-MTU frame from the host side reaches the guest: a 1472-byte UDP datagram sent from the
  // namespace to the guest's address (1472 + 8 + 20 + 14 = 1514 bytes on the wire).
  const udp = createSocket("udp4");
  await new Promise<void>((resolve, reject) => udp.send(new Uint8Array(1472).fill(0xab), 9, GUEST_IP.join("."), (e) => (e ? reject(e) : resolve())));
  udp.close();
  const big = await waitFor((f) => f[12] === 0x08 && f[13] === 0x00 && f[23] === 17, "UDP datagram from the host");
  results.bigFrameLength = big.length;

  // Backpressure: with no receive buffers the device queues a frame and pauses the backend, which
  // stops reading; the rest wait in the kernel's TAP queue and arrive once buffers are posted.
  guest.takeReceived();
  guest.rxq.available.length = 0; // the guest has no buffers posted
  const sender = createSocket("udp4");
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve, reject) => sender.send(Uint8Array.of(i, 0x5a), 7777, GUEST_IP.join("."), (e) => (e ? reject(e) : resolve())));
  }
  sender.close();
  const pauseEnd = Date.now() + 5000;
  while (device.counters.rxQueued < 1 && Date.now() < pauseEnd) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));
  results.queuedWhilePaused = device.counters.rxQueued;
  results.pauses = device.counters.rxPauses;
  results.readWhilePaused = backend.counters.framesReceived;
  const datagrams: number[] = [];
  const isOurs = (f: Uint8Array) => f[12] === 0x08 && f[13] === 0x00 && f[23] === 17 && f[36] === 7777 >> 8 && f[37] === (7777 & 0xff);
  const drainEnd = Date.now() + 5000;
  while (datagrams.length < 20 && Date.now() < drainEnd) {
    if (guest.rxq.available.length < 2) guest.postReceiveBuffers(2, 1530);
    for (const p of guest.takeReceived()) if (isOurs(p.frame)) datagrams.push(p.frame[42]);
    await new Promise((r) => setTimeout(r, 5));
  }
  results.datagrams = datagrams;
  results.queueFullDrops = device.counters.rxDrops.queueFull;

  results.deviceCounters = { tx: device.counters.txFrames, rx: device.counters.rxFrames };
  results.backendCounters = backend.counters;

  const t0 = Date.now();
  await backend.close();
  results.closeMs = Date.now() - t0;
  results.gone = spawnSync("ip", ["link", "show", TAP]).status !== 0;
  process.stdout.write(`${RESULT}${JSON.stringify(results)}\n`);
}

if (isChild) {
  child().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
} else {
  test("TAP backend in a private network namespace: ARP, ICMP, UDP, backpressure, errors", async (t) => {
    const host = hostGate(skipReason());
    if (host.skip) {
      t.skip(host.skip);
      return;
    }
    host.check();
    const ns = `parley-test-${process.pid}`;
    const self = fileURLToPath(import.meta.url);
    execFileSync("ip", ["netns", "add", ns]);
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: "1" };
      delete env.NODE_TEST_CONTEXT; // the child is a plain script, not a test-runner subprocess
      const run = (mode: string, prefix: string[] = []) =>
        spawnSync("ip", ["netns", "exec", ns, ...prefix, process.execPath, "--import", "tsx", self], {
          env: { ...env, [CHILD_ENV]: mode },
          encoding: "utf8",
          timeout: 60_000,
        });
      const result = (out: string) => {
        const line = out.split("\n").find((l) => l.startsWith(RESULT));
        assert.ok(line, `no result from the child:\n${out}`);
        return JSON.parse(line.slice(RESULT.length));
      };
      const r = run("1");
      assert.equal(r.status, 0, `child failed:\n${r.stderr}\n${r.stdout}`);
      const res = result(r.stdout);
      assert.equal(res.name, TAP);
      assert.match(res.busyError, /busy/);
      assert.equal(res.dropsWhileDown, 1);
      assert.deepEqual(res.arpReplyTo, Array.from(GUEST_MAC));
      assert.deepEqual(res.arpSenderIp, HOST_IP);
      assert.equal(res.echoLength, 14 + 20 + 8 + 1000);
      assert.equal(res.echoPayloadOk, true);
      assert.equal(res.bigFrameLength, 1514);
      assert.ok(res.queuedWhilePaused >= 1 && res.queuedWhilePaused <= 4, `queued ${res.queuedWhilePaused}`);
      assert.ok(res.pauses >= 1);
      assert.ok(res.readWhilePaused < 3 + 20, "the backend stopped reading while paused");
      assert.deepEqual(res.datagrams, Array.from({ length: 20 }, (_, i) => i));
      assert.equal(res.queueFullDrops, 0);
      assert.ok(res.closeMs < 1000, `close took ${res.closeMs} ms`);
      assert.equal(res.gone, true, "the TAP interface disappears on close");

      const t0 = Date.now();
      const exited = run("exit-without-close");
      assert.equal(exited.status, 0, exited.stderr);
      assert.ok(Date.now() - t0 < 10_000, "process.exit with an open TAP does not hang");

      if (existsSync("/usr/bin/setpriv") || existsSync("/bin/setpriv")) {
        const noCap = run("no-cap", ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", "--"]);
        assert.equal(noCap.status, 0, noCap.stderr);
        const msg = result(noCap.stdout).noCapError;
        assert.match(msg, /not permitted.*root.*CAP_NET_ADMIN.*ip tuntap add dev ptap0/);
      }
    } finally {
      spawnSync("ip", ["netns", "del", ns]);
    }
  });
}

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "TAP needs Linux";
  if (process.getuid?.() !== 0) return "needs root to create a network namespace and a TAP interface";
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun is missing";
  return missingHostTools(["ip"]);
}
