// The full Debian system, booted as a user would: `parley image build --rootfs`, a qcow2 overlay
// on it (so the cached disk stays as built), and `parley run --root` with user networking, a port
// forward for SSH and two shared folders. One boot serves every check, in the order a person
// would try them: log in, systemd's state, apt from Debian's archive, SSH in from the host, files
// through 9p, and a clean power-off that leaves an overlay qemu-img accepts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildRootDisk } from "../../src/vmm/root-disk.ts";
import type { RootDisk } from "../../src/image/rootfs.ts";
import { CLI } from "../support/parley-cli.ts";
import { ConsoleDriver } from "../support/console-driver.ts";
import { freeTcpPort } from "../support/free-port.ts";
import { needsHostTools } from "../support/host-tools.ts";

const gate = needsHostTools("debootstrap", "ssh", "qemu-img", "passt", "mkfs.ext4");
const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

let disk: RootDisk;
let dir: string;
let overlay: string;
let shared: string;
let readonlyShare: string;
let sshPort: number;
let guest: ConsoleDriver;
let bootSeconds: { login: number };

/** What ssh and scp share: Parley's key, no questions, no host key kept (each guest makes its own). */
function sshOptions(): string[] {
  return ["-i", disk.sshKey, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"];
}

function ssh(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    "ssh",
    [...sshOptions(), "-p", String(sshPort), "-o", "ConnectTimeout=60", "parley@127.0.0.1", ...args],
    { input, encoding: "utf8", timeout: 180_000 },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function scp(from: string, to: string): void {
  execFileSync("scp", [...sshOptions(), "-P", String(sshPort), from, to], { timeout: 180_000 });
}

before(async () => {
  if (gate.skip) return;
  gate.check();
  disk = await buildRootDisk({ log: (line) => process.stderr.write(`rootfs: ${line}\n`) });
  dir = mkdtempSync(join(tmpdir(), "parley-debian-"));
  overlay = join(dir, "vm.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", disk.image, "-F", "raw", overlay]);
  shared = join(dir, "shared");
  readonlyShare = join(dir, "readonly");
  execFileSync("mkdir", ["-p", shared, readonlyShare]);
  writeFileSync(join(readonlyShare, "motd"), "read me, do not write me\n");
  sshPort = await freeTcpPort();
  const started = Date.now();
  guest = new ConsoleDriver(process.execPath, [
    CLI, "run", "--cpus", "2", "--memory", "1G", "--rng",
    "--disk", `path=${overlay}`, "--root",
    "--net", `user,hostfwd=tcp:127.0.0.1:${sshPort}-:22`,
    "--share", `path=${shared},tag=hostshare`,
    "--share", `path=${readonlyShare},tag=hostro,readonly=on`,
  ]);
  await guest.waitFor(/parley login: ?$/m, 600_000, "the login prompt");
  bootSeconds = { login: (Date.now() - started) / 1000 };
  guest.send("parley");
  await guest.waitFor(/Password: ?$/m, 60_000, "the password prompt");
  guest.send("parley");
  await guest.waitFor(/parley@parley:~\$ ?$/m, 120_000, "the shell prompt");
  // A plain prompt and no terminal tricks: the driver reads the output between markers.
  guest.send("export PS1='$ ' TERM=dumb; stty -echo cols 500");
});

after(async () => {
  guest?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the root disk boots under systemd to multi-user.target with no failed units", { skip: gate.skip, timeout: 900_000 }, async () => {
  assert.match(guest.output, /Parley guest: root \/dev\/vd[a-z] \(rw\), starting \/sbin\/init/);
  assert.equal((await guest.check("cat /proc/1/comm")).trim(), "systemd");
  const state = await guest.run("systemctl is-system-running --wait", 600_000);
  const failed = (await guest.check("systemctl --failed --no-legend --plain")).trim();
  assert.equal(failed, "", `failed units:\n${failed}`);
  assert.equal(state.output.trim(), "running", `system state ${state.output.trim()}`);
  assert.equal((await guest.check("systemctl is-active multi-user.target")).trim(), "active");
  assert.equal((await guest.check("hostname")).trim(), "parley");
  process.stderr.write(`debian: login prompt after ${bootSeconds.login.toFixed(1)} s\n`);
});

test("apt-get update and apt-get install hello from Debian's archive over --net user", { skip: gate.skip, timeout: 1_500_000 }, async () => {
  await guest.check("sudo apt-get update -q 2>&1 | tail -n 3", 900_000);
  await guest.check("sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q hello 2>&1 | tail -n 3", 600_000);
  assert.equal((await guest.check("hello")).trim(), "Hello, world!");
});

test("ssh through the port forward runs a command and copies files both ways", { skip: gate.skip, timeout: 600_000 }, async () => {
  // sshd may still be making its host key on the first boot: wait until it listens.
  await guest.check("for i in $(seq 1 120); do systemctl is-active -q ssh && break; sleep 1; done; systemctl is-active ssh", 180_000);
  const uname = ssh(["uname", "-m"]);
  assert.equal(uname.status, 0, uname.stderr);
  assert.equal(uname.stdout.trim(), "riscv64");
  const payload = randomBytes(256 * 1024);
  const up = join(dir, "up.bin");
  writeFileSync(up, payload);
  scp(up, `parley@127.0.0.1:/home/parley/up.bin`);
  assert.equal((await guest.check("sha256sum /home/parley/up.bin")).split(/\s+/)[0], sha256(payload));
  await guest.check("head -c 300000 /dev/urandom > /home/parley/down.bin");
  const down = join(dir, "down.bin");
  scp(`parley@127.0.0.1:/home/parley/down.bin`, down);
  assert.equal(sha256(readFileSync(down)), (await guest.check("sha256sum /home/parley/down.bin")).split(/\s+/)[0]);
});

test("9p shares: both sides see each other's files; a read-only share refuses writes", { skip: gate.skip, timeout: 600_000 }, async () => {
  await guest.check("sudo mkdir -p /mnt/host /mnt/ro && sudo mount -t 9p -o trans=virtio,version=9p2000.L hostshare /mnt/host && sudo mount -t 9p -o trans=virtio,version=9p2000.L hostro /mnt/ro");
  const fromHost = randomBytes(1 << 20);
  writeFileSync(join(shared, "from-host.bin"), fromHost);
  assert.equal((await guest.check("sha256sum /mnt/host/from-host.bin")).split(/\s+/)[0], sha256(fromHost));
  const guestSum = (await guest.check("head -c 700000 /dev/urandom | sudo tee /mnt/host/from-guest.bin | sha256sum")).split(/\s+/)[0];
  await guest.check("sync");
  assert.ok(existsSync(join(shared, "from-guest.bin")));
  assert.equal(sha256(readFileSync(join(shared, "from-guest.bin"))), guestSum);
  assert.equal((await guest.check("cat /mnt/ro/motd")).trim(), "read me, do not write me");
  const write = await guest.run("echo no | sudo tee /mnt/ro/motd");
  assert.notEqual(write.status, 0);
  assert.match(write.output, /Read-only file system/);
  assert.equal(readFileSync(join(readonlyShare, "motd"), "utf8"), "read me, do not write me\n");
  // Escapes: the share's parent is out of reach, and a link pointing out leads nowhere outside.
  writeFileSync(join(dir, "secret"), "outside\n");
  assert.equal((await guest.check("ls -a /mnt/host/.. | grep -c secret || true")).trim(), "0");
  await guest.check("sudo ln -s ../secret /mnt/host/up-link; sudo ln -s /etc/hostname /mnt/host/abs-link");
  const viaLink = await guest.run("cat /mnt/host/up-link");
  assert.notEqual(viaLink.status, 0, "a guest-made link to the share's parent must not reach the host's file");
  assert.equal((await guest.check("cat /mnt/host/abs-link")).trim(), "parley", "an absolute link resolves inside the guest, not on the host");
});

test("poweroff ends Parley cleanly and the overlay passes qemu-img check", { skip: gate.skip, timeout: 600_000 }, async () => {
  guest.send("sudo poweroff");
  const code = await Promise.race([guest.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 300_000))]);
  assert.equal(code, 0, `parley ended with ${code}; console tail:\n${guest.tail()}`);
  assert.match(guest.output, /reboot: Power down/);
  const check = spawnSync("qemu-img", ["check", overlay], { encoding: "utf8" });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /No errors were found on the image/);
});
