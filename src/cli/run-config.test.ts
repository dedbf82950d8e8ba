// `parley run`'s flags and --config file end in the same validated VmConfig.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readConfigFile, runConfig, type RunFlags } from "./run-config.ts";
import { parseVmConfig } from "../vmm/schema.ts";
import { UsageError } from "./options.ts";

/** The flags commander gives `parley run` when none is typed. */
const DEFAULTS: RunFlags = { memory: "512M", cpus: "1", zawrs: "on", ple: "on", firmware: "none", console: "uart", sstc: "on", disk: [], net: [] };
const typed = (...names: (keyof RunFlags)[]) => (flag: keyof RunFlags) => names.includes(flag);

test("flags alone make the same description as the equivalent file", () => {
  const flags: RunFlags = {
    ...DEFAULTS,
    memory: "1G",
    cpus: "2",
    hostThreads: "1",
    ple: "100",
    console: "hvc",
    sstc: "off",
    kernel: "/etc/hostname",
    append: "quiet",
    disk: ["path=/a.img,readonly=on", "path=/b.img,id=data,coalesce=16/200us", "path=/c.qcow2,format=qcow2,snapshot=on"],
    net: ["tap=tap0,mac=52:54:00:12:34:56", "socket=connect:/tmp/n.sock"],
    rng: "rate=1024,burst=4096",
    balloon: "target=128M",
    vsock: "cid=3,uds=/tmp/v.sock",
    metricsPort: "9100",
    jit: "off",
  };
  const fromFlags = runConfig(flags, () => true);
  const file = {
    "boot-source": { kernel_image_path: "/etc/hostname", boot_args: "quiet", firmware: "none" },
    "machine-config": { vcpu_count: 2, mem_size_mib: 1024, host_threads: 1, pause_loop_window: 100, zawrs: true, sstc: false, console: "hvc", jit: "off" },
    drives: [
      { drive_id: "disk0", path_on_host: "/a.img", is_read_only: true, is_root_device: false },
      { drive_id: "data", path_on_host: "/b.img", is_read_only: false, is_root_device: false, coalescing: { max_completions: 16, max_delay_us: 200 } },
      { drive_id: "disk2", path_on_host: "/c.qcow2", is_read_only: false, is_root_device: false, format: "qcow2", snapshot: true },
    ],
    "network-interfaces": [
      { iface_id: "net0", host_dev_name: "tap0", guest_mac: "52:54:00:12:34:56" },
      { iface_id: "net1", socket: { socket_path: "/tmp/n.sock", mode: "connect" } },
    ],
    entropy: { rate_limiter: { bandwidth: { size: 4096, refill_time: 4000 } } },
    balloon: { amount_mib: 128, deflate_on_oom: true, stats_polling_interval_s: 5 },
    vsock: { guest_cid: 3, uds_path: "/tmp/v.sock" },
    metrics: { port: 9100 },
  };
  assert.deepEqual(fromFlags, parseVmConfig(file));
  assert.deepEqual(runConfig(DEFAULTS, () => false), parseVmConfig({}), "the flags' defaults are the schema's defaults");
});

test("typed flags override a file's fields; --disk and --net extend its lists; defaults do not override", () => {
  const file = {
    "machine-config": { vcpu_count: 4, mem_size_mib: 1024, console: "hvc" as const },
    drives: [{ drive_id: "disk0", path_on_host: "/root.img" }],
    "network-interfaces": [{ iface_id: "net0", host_dev_name: "tap0" }],
  };
  const config = runConfig({ ...DEFAULTS, memory: "2G", disk: ["path=/extra.img"], net: ["tap=tap1"] }, typed("memory"), file);
  assert.equal(config["machine-config"].mem_size_mib, 2048, "typed --memory wins");
  assert.equal(config["machine-config"].vcpu_count, 4, "--cpus left at its default keeps the file's");
  assert.equal(config["machine-config"].console, "hvc");
  assert.deepEqual(
    config.drives.map((d) => d.drive_id),
    ["disk0", "disk1"],
    "a flag's drive comes after the file's, numbered after them",
  );
  assert.deepEqual(
    config["network-interfaces"].map((n) => n.iface_id),
    ["net0", "net1"],
  );
});

test("errors name the flag, the file, or the field", () => {
  assert.throws(() => runConfig({ ...DEFAULTS, memory: "1000K" }, () => true), /--memory: "1000K" must be a whole number of MiB/);
  assert.throws(() => runConfig({ ...DEFAULTS, cpus: "40" }, () => true), /--cpus: "40" is not a number of harts/);
  assert.throws(() => runConfig({ ...DEFAULTS, zawrs: "maybe" }, () => true), /--zawrs maybe: use on or off/);
  assert.throws(() => runConfig({ ...DEFAULTS, kernel: "/no/Image" }, () => true), /^UsageError: --kernel \/no\/Image: no such file$/);
  assert.throws(() => runConfig({ ...DEFAULTS, cpus: "32", memory: "3G" }, () => true), /--cpus 32 with --memory 3072M: .*do not fit/);
  assert.throws(() => runConfig({ ...DEFAULTS, disk: ["path=/a,id=x", "path=/b,id=x"] }, () => true), /drives\[1\]\.drive_id: "x" is used by an earlier drive/);
  const dir = mkdtempSync(join(tmpdir(), "parley-config-"));
  try {
    const bad = join(dir, "vm.json");
    writeFileSync(bad, JSON.stringify({ "machine-config": { vcpu_count: 64 } }));
    assert.throws(() => readConfigFile(bad), (err: Error) => err instanceof UsageError && err.message === `--config ${bad}: machine-config.vcpu_count: must be at most 32`);
    writeFileSync(bad, "{ nope");
    assert.throws(() => readConfigFile(bad), /not valid JSON/);
    assert.throws(() => readConfigFile(join(dir, "missing.json")), /missing\.json: no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--root boots from the first disk unless a drive is the root already; without a disk it says what to add", () => {
  const config = runConfig({ ...DEFAULTS, disk: ["path=/debian.img", "path=/data.img"], root: true }, () => true);
  assert.deepEqual(config.drives.map((d) => d.is_root_device), [true, false]);
  const chosen = runConfig({ ...DEFAULTS, disk: ["path=/data.img", "path=/debian.img,root=on"], root: true }, () => true);
  assert.deepEqual(chosen.drives.map((d) => d.is_root_device), [false, true], "root=on on a disk wins over --root's first disk");
  assert.throws(() => runConfig({ ...DEFAULTS, root: true }, () => true), (err: Error) => err instanceof UsageError && /--root boots from a disk: add --disk path=FILE/.test(err.message));
  assert.throws(() => runConfig({ ...DEFAULTS, disk: ["path=/a.img,root=on", "path=/b.img,root=on"] }, () => true), /drives\[1\]\.is_root_device: only one drive can be the root device; drives\[0\] already is/);
});
