// The Machine before it boots: the description is validated and its host files opened, errors
// name the field, and the hot-change methods check everything before they change the
// description. (Booting a guest through Machine is covered by the guest-boot suites.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Machine, withRootDevice } from "./machine.ts";
import { ConfigError, RequestError } from "./schema.ts";
import { newQcow2Image } from "../virtio/blk/qcow2/header.ts";

let dir: string;
let kernel: string;
let disk: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "parley-machine-"));
  kernel = join(dir, "Image");
  disk = join(dir, "disk.img");
  writeFileSync(kernel, new Uint8Array(4096));
  writeFileSync(disk, new Uint8Array(1 << 20));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const describe = () => ({
  "boot-source": { kernel_image_path: kernel },
  drives: [{ drive_id: "rootfs", path_on_host: disk }],
  balloon: { amount_mib: 0, stats_polling_interval_s: 0 },
});

test("create: the description's errors and the host's name the field", async () => {
  await assert.rejects(Machine.create({ "machine-config": { mem_size_mib: "lots" } } as never), (err: Error) => err instanceof ConfigError && err.message === "machine-config.mem_size_mib: must be a number, not string");
  await assert.rejects(Machine.create({ ...describe(), drives: [{ drive_id: "d", path_on_host: join(dir, "none.img") }] }), /^ConfigError: drives\[0\]\.path_on_host: .*none\.img/);
  await assert.rejects(Machine.create({ "boot-source": { kernel_image_path: join(dir, "no-kernel") } }), /boot-source\.kernel_image_path: .*no-kernel: no such file/);
  await assert.rejects(Machine.create({ ...describe(), "boot-source": { kernel_image_path: kernel, firmware: join(dir, "no-fw") } }), /boot-source\.firmware: .*no-fw: no such file/);
  await assert.rejects(Machine.create({ ...describe(), shares: [{ path_on_host: join(dir, "no-folder"), mount_tag: "s" }] }), /^ConfigError: shares\[0\]\.path_on_host: .*no-folder/);
  await assert.rejects(Machine.create({ ...describe(), shares: [{ path_on_host: disk, mount_tag: "s" }] }), /^ConfigError: shares\[0\]\.path_on_host: .*disk\.img: not a directory/);
});

test("before boot: the lifecycle table refuses, hot changes are checked and kept in the description", async () => {
  const machine = await Machine.create(describe(), { id: "m1" });
  try {
    assert.equal(machine.id, "m1");
    assert.equal(machine.state, "Not started");
    await assert.rejects(machine.pause(), (err: Error) => err instanceof RequestError && /cannot pause a machine that is not started/.test(err.message));
    await assert.rejects(machine.resume(), /cannot resume a machine that is not started/);
    assert.throws(() => machine.sendCtrlAltDel(), /the machine is not started/);

    machine.setBalloonTarget(64);
    assert.equal(machine.config.balloon!.amount_mib, 64);
    assert.throws(() => machine.setBalloonTarget(513), /amount_mib: must be a whole number from 0 to mem_size_mib \(512\)/);
    assert.throws(() => machine.setBalloonTarget(1.5), /amount_mib/);
    assert.throws(() => machine.balloonStatistics(), /statistics are not enabled/);
    machine.setBalloonStatsInterval(2);
    assert.equal(machine.balloonStatistics().target_mib, 64);

    machine.updateDrive("rootfs", { coalescing: { max_completions: 8, max_delay_us: 100 } });
    assert.deepEqual(machine.config.drives[0].coalescing, { max_completions: 8, max_delay_us: 100 });
    const before = machine.config;
    assert.throws(() => machine.updateDrive("nope", {}), /drive_id: there is no drive "nope"/);
    assert.throws(() => machine.updateDrive("rootfs", { coalescing: { max_completions: 8, max_delay_us: 0 } }), /coalescing\.max_delay_us: more than one completion/);
    assert.throws(() => machine.updateDrive("rootfs", { cache: "none" } as object), /cache: unknown field/);
    assert.throws(() => machine.updateNetworkInterface("eth0", { link_up: false }), /iface_id: there is no network interface "eth0"/);
    assert.deepEqual(machine.config, before, "refused changes changed nothing");

    const copy = machine.config;
    copy.drives[0].path_on_host = "/elsewhere";
    assert.equal(machine.config.drives[0].path_on_host, disk, "config is a copy");
    assert.equal(machine.metrics(), undefined, "no ledger before the first boot");
    await assert.rejects(machine.exited, /has not been started/);
  } finally {
    await machine.close();
  }
});

test("drives: qcow2 and snapshot=on open through the disk image opener; such machines do not migrate", async () => {
  const qcow2 = join(dir, "disk.qcow2");
  writeFileSync(qcow2, newQcow2Image(1 << 20));
  await assert.rejects(
    Machine.create({ ...describe(), drives: [{ drive_id: "d", path_on_host: disk, format: "qcow2" }] }),
    /^ConfigError: drives\[0\]\.path_on_host: .*disk\.img: not a qcow2 image/,
  );
  for (const drive of [{ drive_id: "d", path_on_host: qcow2 }, { drive_id: "d", path_on_host: disk, snapshot: true }]) {
    const machine = await Machine.create({ ...describe(), drives: [drive] });
    try {
      await assert.rejects(machine.migrate({ destination: "/tmp/nowhere.sock" }), (err: Error) => err instanceof RequestError && /drives\[0\] is a qcow2 image or snapshot=on, which cannot be migrated/.test(err.message));
    } finally {
      await machine.close();
    }
  }
});

test("a machine without a balloon says so", async () => {
  const machine = await Machine.create({ "boot-source": { kernel_image_path: kernel } });
  try {
    assert.throws(() => machine.setBalloonTarget(1), (err: Error) => err instanceof RequestError && err.message === "balloon: there is no balloon device");
    assert.throws(() => machine.balloonStatistics(), /no balloon device/);
  } finally {
    await machine.close();
  }
});

test("the root device's kernel arguments name the disk by its serial, read-only when it is", () => {
  const disk = (id: string, root: boolean, ro = false) => ({ drive_id: id, is_read_only: ro, is_root_device: root });
  assert.equal(withRootDevice("console=ttyS0", [disk("data", false), disk("debian", true)]), "console=ttyS0 root=/dev/disk/by-id/virtio-debian rw");
  assert.equal(withRootDevice("console=ttyS0", [disk("debian", true, true)]), "console=ttyS0 root=/dev/disk/by-id/virtio-debian ro");
  assert.equal(withRootDevice("console=ttyS0", [disk("data", false)]), "console=ttyS0", "no root device: unchanged");
  assert.equal(withRootDevice("root=/dev/vdb console=ttyS0", [disk("debian", true)]), "root=/dev/vdb console=ttyS0", "boot arguments that name a root win");
});
