// `parley run --net user,hostfwd=...` end to end, as a user runs it (dist/parley.mjs) and without
// any privilege of its own: passt gives the guest its address by DHCP (busybox udhcpc), the guest
// reaches a TCP server and a UDP (TFTP) server on the host's 127.0.0.1 through the gateway address,
// the host reaches a server in the guest through the forwarded port, and passt is gone once the
// guest powers off.
// All traffic stays on this machine: the host's side is 127.0.0.1 only. DNS is checked as far as
// it can be without traffic leaving the machine: the server the guest is told to use.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { createSocket } from "node:dgram";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { networkInterfaces } from "node:os";
import { buildGuestImage } from "../../src/image/index.ts";
import { CLI } from "../support/parley-cli.ts";
import { needsHostTools } from "../support/host-tools.ts";
import { ConsoleDriver } from "../support/console-driver.ts";
import { freeTcpPort } from "../support/free-port.ts";
import { testHarts } from "../boot/guest-session.ts";

const host = needsHostTools("passt");
const BOOT_MS = 300_000;
/** The guest's end of the forwarded port. */
const GUEST_PORT = 8000;
const BLOB_BYTES = 256 * 1024;

const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

/** PIDs of the passt processes whose command line mentions `needle`. */
function passtProcesses(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (/passt/.test(args[0]) && args.some((a) => a.includes(needle))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** The host's IPv4 nameservers that are not loopback ones: what passt hands the guest by default. */
function hostNameservers(): string[] {
  try {
    return [...readFileSync("/etc/resolv.conf", "utf8").matchAll(/^nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1]).filter((a) => !a.startsWith("127."));
  } catch {
    return [];
  }
}

// udhcpc runs a script with the lease in its environment; the image has no default one, so the
// test brings its own: configure the interface and the default route, write resolv.conf, and
// print what was offered.
const DHCP_SCRIPT = [
  "#!/bin/sh",
  'echo "DHCP $1 ip=$ip mask=$mask router=$router dns=$dns mtu=$mtu"',
  '[ "$1" = bound ] || exit 0',
  "ip addr add $ip/$mask dev $interface",
  "ip route add default via $router",
  'for s in $dns; do echo "nameserver $s"; done > /etc/resolv.conf',
].join("\n");

test("--net user: DHCP from passt, TCP and UDP from the guest to the host's 127.0.0.1 at the gateway, and from the host through hostfwd", { skip: host.skip, timeout: 2 * BOOT_MS }, async () => {
  host.check();
  await buildGuestImage();
  const forwardPort = await freeTcpPort();
  const download = new Uint8Array(randomBytes(BLOB_BYTES));
  const greeting = `HOST-GREETING-${randomBytes(6).toString("hex")}`;

  // The host's server on 127.0.0.1, which the guest reaches at the gateway's address.
  const received: Buffer[] = [];
  let uploadDone!: () => void;
  const uploaded = new Promise<void>((resolve) => (uploadDone = resolve));
  const server: Server = createServer((socket) => {
    socket.write(greeting);
    socket.on("data", (d) => received.push(d));
    socket.on("end", () => {
      socket.end();
      uploadDone();
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const serverPort = (server.address() as AddressInfo).port;

  // A TFTP server on the host's 127.0.0.1 (UDP, one file of one block): the guest's busybox has
  // no UDP netcat, but its tftp client makes a UDP exchange both ways. RFC 1350: RRQ (opcode 1)
  // filename NUL mode NUL; DATA (3) block number, up to 512 bytes (fewer: the last block); ACK (4).
  const tftpPayload = `UDP-FROM-HOST-${randomBytes(6).toString("hex")}\n`;
  const tftpRequests: string[] = [];
  let tftpAcked!: () => void;
  const tftpDone = new Promise<void>((resolve) => (tftpAcked = resolve));
  const udp = createSocket("udp4");
  udp.on("message", (message, from) => {
    const opcode = message.readUInt16BE(0);
    if (opcode === 1) {
      tftpRequests.push(message.subarray(2, message.indexOf(0, 2)).toString());
      const data = Buffer.concat([Buffer.from([0, 3, 0, 1]), Buffer.from(tftpPayload)]);
      udp.send(data, from.port, from.address);
    } else if (opcode === 4 && message.readUInt16BE(2) === 1) tftpAcked();
  });
  await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
  const udpPort = udp.address().port;

  const guest = new ConsoleDriver(process.execPath, [CLI, "run", "--cpus", String(testHarts()), "--net", `user,hostfwd=tcp:127.0.0.1:${forwardPort}-:${GUEST_PORT}`]);
  try {
    await guest.waitFor(/root@parley:[^\n]*# /, BOOT_MS, "the shell prompt");
    assert.equal((await guest.run("dmesg -n 1")).status, 0);
    assert.equal(passtProcesses(`127.0.0.1/${forwardPort}:${GUEST_PORT}`).length, 1, "one passt serves the guest");

    // DHCP: the guest gets passt's offer, which copies the host's own address and gateway.
    const script = await guest.run(`printf '%s\\n' '${DHCP_SCRIPT.replace(/'/g, "'\\''").split("\n").join("' '")}' > /tmp/dhcp.sh && chmod +x /tmp/dhcp.sh`);
    assert.equal(script.status, 0, script.output);
    const dhcp = await guest.run("ip link set eth0 up && udhcpc -i eth0 -s /tmp/dhcp.sh -n -q -t 10", 90_000);
    assert.equal(dhcp.status, 0, dhcp.output);
    const lease = /DHCP bound ip=(\S+) mask=(\d+) router=(\S+) dns=(.*?) mtu=(\d*)/.exec(dhcp.output);
    assert.ok(lease, dhcp.output);
    const [, address, , router, dns, mtu] = lease;
    const hostAddresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => a.family === "IPv4" && !a.internal).map((a) => a.address));
    assert.ok(hostAddresses.includes(address), `the guest's address ${address} is one of the host's (${hostAddresses.join(", ")})`);
    assert.equal(mtu, "1500", "the NIC's MTU");
    const expectedDns = hostNameservers();
    if (expectedDns.length > 0) assert.deepEqual(dns.trim().split(/\s+/), expectedDns, "the host's nameservers");
    assert.match((await guest.run("cat /etc/resolv.conf")).output, /^nameserver \S+/m);
    assert.match((await guest.run("ip route")).output, new RegExp(`^default via ${router.replace(/\./g, "\\.")} dev eth0`, "m"));

    // Guest -> host: the gateway's address stands for the host's loopback.
    const put = await guest.run(`dd if=/dev/urandom of=/tmp/up bs=1024 count=${BLOB_BYTES / 1024} 2>/dev/null && md5sum /tmp/up`);
    assert.equal(put.status, 0, put.output);
    const upHash = put.output.trim().split(/\s+/)[0];
    const sent = await guest.run(`nc -w 10 ${router} ${serverPort} < /tmp/up > /tmp/fromhost; cat /tmp/fromhost`, 120_000);
    assert.equal(sent.status, 0, sent.output);
    await uploaded;
    assert.equal(md5(Buffer.concat(received)), upHash, "the host received the guest's bytes");
    assert.match(sent.output, new RegExp(greeting), "the guest received the host's bytes");

    // Host -> guest through the forwarded port: a server in the guest (nc running a program on the
    // connection: it stores what arrives, then answers with its hash), the host connects to 127.0.0.1.
    // The guest answers only after the host's end of stream: Debian 12's passt sends no more host
    // data once the guest has half-closed (README, "Networking without root").
    const listen = await guest.run(
      `(nc -l -p ${GUEST_PORT} -e sh -c 'cat > /tmp/down; md5sum < /tmp/down'; echo LISTENER-DONE) & ` +
        `for i in $(seq 100); do netstat -ltn | grep -q ':${GUEST_PORT} ' && break; sleep 0.1; done; netstat -ltn | grep ':${GUEST_PORT} '`,
    );
    assert.equal(listen.status, 0, listen.output);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket: Socket = connect(forwardPort, "127.0.0.1");
      let text = "";
      socket.on("data", (d) => (text += d));
      socket.on("error", reject);
      socket.on("close", () => resolve(text));
      socket.end(download);
    });
    await guest.waitFor(/LISTENER-DONE/, 60_000, "the guest's listener to end");
    const got = await guest.run("wc -c < /tmp/down");
    assert.equal(Number(got.output.trim()), download.length, "the guest received all the host's bytes");
    assert.equal(answer.trim().split(/\s+/)[0], md5(download), "the guest's answer: the hash of what it received");

    // UDP both ways, to the host's 127.0.0.1 at the gateway's address: the guest's request names a
    // file, the host's answer carries it, the guest acknowledges it.
    const tftpName = `guest-${randomBytes(4).toString("hex")}`;
    const tftp = await guest.run(`tftp -g -r ${tftpName} -l /tmp/tftp ${router} ${udpPort} && cat /tmp/tftp`, 60_000);
    assert.equal(tftp.status, 0, tftp.output);
    // A request the guest sent again (its answer was late) is the same request.
    assert.ok(tftpRequests.length >= 1 && tftpRequests.every((name) => name === tftpName), `the host received the guest's datagram: ${tftpRequests.join(", ")}`);
    assert.equal(tftp.output, tftpPayload, "the guest received the host's datagram");
    await tftpDone;

    guest.send("poweroff");
    assert.equal(await guest.exited, 0, guest.tail(1500) + guest.stderr);
    assert.deepEqual(passtProcesses(`127.0.0.1/${forwardPort}:${GUEST_PORT}`), [], "passt ended with the guest");
  } finally {
    guest.kill();
    server.close();
    udp.close();
  }
});
