// The real build: downloads Debian trixie riscv64 packages (about 115 MB on the first run, cached
// in cache/apt afterwards) and checks the kernel Image, the initramfs and the firmware; when the
// host has qemu-system-riscv64, also boots the result as a reference check of /init and the modules.
// Set PARLEY_SKIP_NETWORK_TESTS=1 to skip on machines without access to a Debian mirror.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { buildGuestImage, cachedGuestImage, type GuestImage } from "../../src/image/index.ts";
import { readCpio } from "../../src/image/cpio.ts";
import { findLinuxBanner, parseRiscvImageHeader } from "../../src/image/kernel.ts";
import { moduleName } from "../../src/image/modules.ts";
import { needsHostTools } from "../support/host-tools.ts";

const skip = process.env.PARLEY_SKIP_NETWORK_TESTS ? "PARLEY_SKIP_NETWORK_TESTS is set" : false;
let image: GuestImage | undefined;
const log: string[] = [];

test("build: kernel Image, initramfs with /init, busybox and modules, OpenSBI", { skip, timeout: 10 * 60_000 }, async () => {
  image = await buildGuestImage({ log: (l) => log.push(l) });
  const img = image;

  const kernel = readFileSync(img.kernel);
  const header = parseRiscvImageHeader(kernel); // throws unless "RISCV\0\0\0" at 0x30 and "RSC\x05" at 0x38
  assert.equal(header.textOffset, 0x200000n);
  assert.equal(findLinuxBanner(kernel)?.release, img.kernelVersion);
  assert.match(img.kernelVersion, /^\d+\.\d+\.\d+\+deb13-riscv64$/);
  assert.match(readFileSync(img.config, "utf8"), /^CONFIG_RISCV=y$/m);

  const entries = readCpio(gunzipSync(readFileSync(img.initrd)));
  const by = new Map(entries.map((e) => [e.path, e]));
  assert.equal(by.get("init")?.type, "file");
  assert.equal(by.get("init")?.mode, 0o755);
  assert.match(Buffer.from(by.get("init")!.data!).toString(), /^#!\/bin\/sh/);
  const busybox = by.get("usr/bin/busybox");
  assert.equal(busybox?.type, "file");
  assert.deepEqual([...busybox!.data!.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  assert.equal(busybox!.data![18], 243, "busybox is a RISC-V binary (EM_RISCV)");
  for (const applet of ["sh", "mount", "insmod", "poweroff", "cttyhack", "setsid"]) assert.equal(by.get(`usr/bin/${applet}`)?.target, "busybox", applet);
  assert.equal(by.get("bin")?.target, "usr/bin");
  assert.equal(by.get("dev/console")?.type, "char");

  // Every module is there, decompressed, and /init's list names them in the same (dependency) order.
  const modDir = `usr/lib/modules/${img.kernelVersion}`;
  const list = Buffer.from(by.get("etc/modules-load.list")!.data!).toString().split("\n").filter((l) => l && !l.startsWith("#"));
  assert.deepEqual(list.map(moduleName), img.modulesIncluded);
  for (const rel of list) {
    const e = by.get(`${modDir}/${rel}`);
    assert.ok(e?.type === "file", `${rel} in the initramfs`);
    assert.deepEqual([...e!.data!.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${rel} is decompressed`);
  }
  assert.ok(by.has(`${modDir}/modules.dep`));
  const available = new Set([...img.modulesIncluded, ...img.modulesBuiltin]);
  for (const m of ["virtio_mmio", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng", "virtio_balloon", "vmw_vsock_virtio_transport", "rtc_goldfish", "ext4"]) {
    assert.ok(available.has(m), `${m} is built in or included`);
  }
  assert.ok(img.modulesIncluded.indexOf("jbd2") < img.modulesIncluded.indexOf("ext4") || !img.modulesIncluded.includes("ext4"));

  assert.ok(img.opensbi.fwJump || img.opensbi.fwDynamic);
  for (const elf of [img.opensbi.fwJumpElf, img.opensbi.fwDynamicElf].filter(Boolean)) assert.equal(readFileSync(elf!).subarray(0, 4).toString("latin1"), "\x7fELF");
  for (const p of ["linux-image-riscv64", `linux-image-${img.kernelVersion}`, "busybox-static", "opensbi"]) assert.ok(img.packages[p], p);
});

test("build: a second call is served from the cache", { skip, timeout: 10 * 60_000 }, async () => {
  const t0 = Date.now();
  const again = await buildGuestImage();
  assert.ok(Date.now() - t0 < 10_000, `cached build took ${Date.now() - t0} ms`);
  assert.equal(again.dir, image?.dir);
  assert.deepEqual(await cachedGuestImage(), again);
});

const qemu = needsHostTools("qemu-system-riscv64");
test("boot under qemu-system-riscv64: /init loads every module and runs a command", { skip: skip || qemu.skip, timeout: 5 * 60_000 }, async () => {
  qemu.check();
  const img = image ?? (await buildGuestImage());
  const args = [
    "-M", "virt", "-m", "512M", "-smp", "1", "-nographic", "-no-reboot",
    "-bios", img.opensbi.fwJump!,
    "-kernel", img.kernel,
    "-initrd", img.initrd,
    "-append", 'console=ttyS0 quiet parley_cmd="cat /proc/modules; ls -1 /dev/vda /dev/rtc0"',
    "-drive", "file=/dev/null,if=none,format=raw,id=d0", "-device", "virtio-blk-device,drive=d0",
  ];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn("qemu-system-riscv64", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`guest did not power off in time:\n${out}`));
    }, 240_000);
    child.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
  assert.match(output, new RegExp(`Parley guest: Linux ${img.kernelVersion.replace(/[+.]/g, "\\$&")} on riscv64, ${img.modulesIncluded.length} modules loaded\\r?\\n`));
  for (const m of img.modulesIncluded) assert.match(output, new RegExp(`^${m} \\d+ `, "m"), `${m} loaded`);
  assert.match(output, /^\/dev\/vda\r?$/m);
  assert.match(output, /^\/dev\/rtc0\r?$/m);
  assert.match(output, /parley: command exited with status 0/);
  assert.match(output, /reboot: Power down/);
});
