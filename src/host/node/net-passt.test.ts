// The passt backend: its command line as a pure function, and the real passt (Debian package
// passt) started, answering an ARP request through the stream, refusing a port already in use,
// and gone once the backend is closed. No frame leaves passt: ARP is answered by passt itself,
// and the forwarded ports are bound on 127.0.0.1 only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createServer, type Server } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { needsHostTools } from "../../../test/support/host-tools.ts";
import { freeTcpPort } from "../../../test/support/free-port.ts";
import { formatHostForward, passtArguments, passtMessages, passtPortSpec, startPasstBackend, type PasstForward } from "./net-passt.ts";

const passt = needsHostTools("passt");

test("forwards become passt's port specifications", () => {
  assert.equal(passtPortSpec({ protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 2222, guestPort: 22 }), "127.0.0.1/2222:22");
  assert.equal(passtPortSpec({ protocol: "tcp", hostPort: 8080, guestPort: 8080 }), "8080");
  assert.equal(passtPortSpec({ protocol: "udp", hostAddress: "::1", hostPort: 5353, guestPort: 53 }), "::1/5353:53");
  assert.equal(formatHostForward({ protocol: "udp", hostAddress: "::1", hostPort: 5353, guestPort: 53 }), "udp:[::1]:5353-:53");
  assert.equal(formatHostForward({ protocol: "tcp", hostPort: 80, guestPort: 8080 }), "tcp::80-:8080");
});

test("passt's command line: foreground, the stream descriptor, the PID file, the forwards", () => {
  const base = ["--foreground", "--quiet", "--fd", "3", "--pid", "/run/p/passt.pid"];
  assert.deepEqual(passtArguments({ forwards: [], fd: 3, pidFile: "/run/p/passt.pid" }), base);
  const forwards: PasstForward[] = [
    { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 2222, guestPort: 22 },
    { protocol: "tcp", hostPort: 8080, guestPort: 80 },
  ];
  // Only TCP asked for: UDP is turned off explicitly, or passt would mirror the TCP ports.
  assert.deepEqual(passtArguments({ forwards, fd: 3, pidFile: "/run/p/passt.pid", runAs: "65534:65534", mtu: 1500 }), [
    ...base,
    "--runas",
    "65534:65534",
    "--mtu",
    "1500",
    "--tcp-ports",
    "127.0.0.1/2222:22",
    "--tcp-ports",
    "8080:80",
    "--udp-ports",
    "none",
  ]);
  assert.deepEqual(passtArguments({ forwards: [...forwards.slice(0, 1), { protocol: "udp", hostPort: 5353, guestPort: 53 }], fd: 5, pidFile: "/p" }), [
    "--foreground",
    "--quiet",
    "--fd",
    "5",
    "--pid",
    "/p",
    "--tcp-ports",
    "127.0.0.1/2222:22",
    "--udp-ports",
    "5353:53",
  ]);
});

test("passt's messages without its complaints about a missing system logger", () => {
  assert.deepEqual(passtMessages("Failed to send 31 bytes to syslog\nFailed to bind any port for '-t 127.0.0.1/1:1', exiting\n\n"), ["Failed to bind any port for '-t 127.0.0.1/1:1', exiting"]);
});

test("a missing passt is named with the Debian package to install", async () => {
  await assert.rejects(startPasstBackend({ command: "/nonexistent/passt" }), /\/nonexistent\/passt is not installed .*install Debian package passt/);
});

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

function bindUdp(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.once("error", (err) => {
      socket.close();
      reject(err);
    });
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve()));
  });
}

const GUEST_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/** TEST-NET-2 (RFC 5737): an address no host here has, so passt answers for it. */
const ASKED_IP = [198, 51, 100, 1];

/** An ARP probe (RFC 5227: sender address 0.0.0.0) asking who has ASKED_IP. */
function arpRequest(): Uint8Array {
  return Uint8Array.from([
    ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], ...GUEST_MAC, 0x08, 0x06, // Ethernet: broadcast, ARP
    0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet/IPv4, request
    ...GUEST_MAC, 0, 0, 0, 0, // sender
    0, 0, 0, 0, 0, 0, ...ASKED_IP, // target
  ]);
}

test("passt answers ARP through the stream, binds the forwarded port, and ends with the backend", { skip: passt.skip, timeout: 30_000 }, async () => {
  passt.check();
  const port = await freeTcpPort();
  const udpPort = await freeTcpPort();
  const backend = await startPasstBackend({
    forwards: [
      { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: port, guestPort: 22 },
      { protocol: "udp", hostAddress: "127.0.0.1", hostPort: udpPort, guestPort: 53 },
    ],
    mtu: 1500,
    log: () => {},
  });
  const pid = backend.pid!;
  try {
    assert.match(backend.description, new RegExp(`^user \\(passt pid ${pid}, hostfwd tcp:127\\.0\\.0\\.1:${port}-:22 udp:127\\.0\\.0\\.1:${udpPort}-:53; running\\)$`));
    // The PID file's directory served its purpose and is gone while passt runs.
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    assert.equal(existsSync(dirname(args[args.indexOf("--pid") + 1])), false);
    await assert.rejects(listenOn(port), /EADDRINUSE/);
    await assert.rejects(bindUdp(udpPort), /EADDRINUSE/);

    const reply = new Promise<Uint8Array>((resolve) => backend.onReceive((frame) => frame[12] === 0x08 && frame[13] === 0x06 && resolve(frame)));
    backend.send(arpRequest());
    const frame = await reply;
    assert.deepEqual([...frame.subarray(0, 6)], GUEST_MAC, "to the asker");
    assert.deepEqual([...frame.subarray(20, 22)], [0x00, 0x02], "an ARP reply");
    assert.deepEqual([...frame.subarray(28, 32)], ASKED_IP, "for the address asked");
    assert.equal(backend.counters.framesSent, 1);
    assert.ok(backend.counters.framesReceived >= 1);
  } finally {
    await backend.close();
  }
  assert.throws(() => process.kill(pid, 0), /ESRCH/, "passt has exited");
  assert.match(backend.description, /; closed\)$/);
  (await listenOn(port)).close();
  await bindUdp(udpPort);
});

test("a forwarded port already in use is refused with passt's reason", { skip: passt.skip, timeout: 30_000 }, async () => {
  passt.check();
  const port = await freeTcpPort();
  const busy = await listenOn(port);
  try {
    await assert.rejects(
      startPasstBackend({ forwards: [{ protocol: "tcp", hostAddress: "127.0.0.1", hostPort: port, guestPort: 22 }], log: () => {} }),
      new RegExp(`passt exited while starting \\(exit code 1\\): .*${port}.*already in use`),
    );
  } finally {
    busy.close();
  }
});

/** Whether `pid` has ended: gone, or a zombie that nobody has reaped yet (its parent was killed). */
function ended(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").startsWith("Z");
  } catch {
    return true;
  }
}

test("passt ends by itself when the process that started it is killed", { skip: passt.skip, timeout: 60_000 }, async () => {
  passt.check();
  const module = fileURLToPath(new URL("./net-passt.ts", import.meta.url));
  const script = `const { startPasstBackend } = await import(${JSON.stringify(module)}); const b = await startPasstBackend({ log: () => {} }); console.log("PASST-PID", b.pid); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  const pid = await new Promise<number>((resolve, reject) => {
    child.stdout.on("data", (d) => {
      output += d;
      const m = /PASST-PID (\d+)/.exec(output);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`the child exited (${code}) before starting passt: ${output}`)));
  });
  assert.equal(ended(pid), false, "passt runs");
  child.kill("SIGKILL");
  // No cleanup ran in the killed process: passt sees its end of the socket pair close.
  while (!ended(pid)) await new Promise((r) => setTimeout(r, 20));
});

test("a passt that cannot make its sandbox's user namespace (as in a chroot) is refused with the reason", async () => {
  const dir = mkdtempSync(join(tmpdir(), "parley-passt-userns-"));
  const fake = join(dir, "passt");
  writeFileSync(fake, `#!/bin/sh\necho "Couldn't create user namespace: Operation not permitted" >&2\nexit 1\n`, { mode: 0o755 });
  try {
    await assert.rejects(startPasstBackend({ command: fake, log: () => {} }), /passt exited while starting \(exit code 1\): Couldn't create user namespace: Operation not permitted \(passt sandboxes itself in a user namespace, which the kernel refuses inside a chroot/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
