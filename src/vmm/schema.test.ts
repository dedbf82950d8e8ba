// The VM description's schema: defaults, and for every field a refused value whose error names
// the field by its JSON path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, describeZodError, formatPath, parseVmConfig, VmConfig } from "./schema.ts";

const drive = { drive_id: "rootfs", path_on_host: "/r.img" };
const nic = { iface_id: "eth0", host_dev_name: "tap0" };

function refusal(input: unknown): string {
  try {
    parseVmConfig(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail(`accepted ${JSON.stringify(input)}`);
}

test("an empty description is a whole machine with Parley's defaults", () => {
  assert.deepEqual(parseVmConfig({}), {
    "boot-source": { firmware: "none" },
    "machine-config": { vcpu_count: 1, mem_size_mib: 512, zawrs: true, sstc: true, console: "uart", keyboard: true },
    drives: [],
    "network-interfaces": [],
  });
  const full = parseVmConfig({ drives: [drive], balloon: { amount_mib: 0 } });
  assert.deepEqual(full.drives[0], { ...drive, is_read_only: false, is_root_device: false });
  const qcow2 = parseVmConfig({ drives: [{ ...drive, format: "qcow2", snapshot: true }] });
  assert.deepEqual(qcow2.drives[0], { ...drive, is_read_only: false, is_root_device: false, format: "qcow2", snapshot: true });
  assert.deepEqual(full.balloon, { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 0 });
  assert.deepEqual(parseVmConfig(JSON.parse(JSON.stringify(full))), full, "JSON-safe: a round trip through JSON is the same description");
});

test("a user-network interface: forwarded ports with or without a host address, none by default", () => {
  const config = parseVmConfig({
    "network-interfaces": [
      { iface_id: "eth0", user: { host_forwards: [{ protocol: "tcp", host_address: "127.0.0.1", host_port: 2222, guest_port: 22 }, { protocol: "udp", host_address: "::1", host_port: 2222, guest_port: 22 }] } },
      { iface_id: "eth1", host_dev_name: "tap0" },
    ],
  });
  assert.equal(config["network-interfaces"][0].user!.host_forwards.length, 2, "the same port number over TCP and UDP is two forwards");
  assert.deepEqual(parseVmConfig({ "network-interfaces": [{ iface_id: "eth0", user: {} }] })["network-interfaces"][0].user, { host_forwards: [] });
  assert.deepEqual(parseVmConfig(JSON.parse(JSON.stringify(config))), config, "JSON-safe");
});

test("every field's range error names its JSON path", () => {
  const cases: [unknown, RegExp][] = [
    [{ "boot-source": { kernel_image_path: "" } }, /^boot-source\.kernel_image_path: must name a file$/],
    [{ "boot-source": { initrd_path: 5 } }, /^boot-source\.initrd_path: must be a string, not number$/],
    [{ "boot-source": { boot_args: "x".repeat(4097) } }, /^boot-source\.boot_args: must be at most 4096 characters$/],
    [{ "boot-source": { firmware: "" } }, /^boot-source\.firmware: must be "none", "opensbi" or a file$/],
    [{ "machine-config": { vcpu_count: 0 } }, /^machine-config\.vcpu_count: must be at least 1$/],
    [{ "machine-config": { vcpu_count: 33 } }, /^machine-config\.vcpu_count: must be at most 32$/],
    [{ "machine-config": { vcpu_count: 1.5 } }, /^machine-config\.vcpu_count: must be a whole number$/],
    [{ "machine-config": { mem_size_mib: 4097 } }, /^machine-config\.mem_size_mib: must be at most 4096$/],
    [{ "machine-config": { vcpu_count: 32, mem_size_mib: 4096 } }, /^machine-config\.mem_size_mib: 4096 MiB with 32 harts: .*do not fit/],
    [{ "machine-config": { vcpu_count: 2, host_threads: 3 } }, /^machine-config\.host_threads: must be at most vcpu_count \(2\)$/],
    [{ "machine-config": { zawrs: "on" } }, /^machine-config\.zawrs: must be a boolean, not string$/],
    [{ "machine-config": { pause_loop_window: -1 } }, /^machine-config\.pause_loop_window: must be at least 0$/],
    [{ "machine-config": { pause_loop_window: 2e9 } }, /^machine-config\.pause_loop_window: must be at most 1000000000$/],
    [{ "machine-config": { idle_states: null } }, /^machine-config\.idle_states: must be a boolean, not null$/],
    [{ "machine-config": { sstc: 1 } }, /^machine-config\.sstc: must be a boolean, not number$/],
    [{ "machine-config": { console: "vga" } }, /^machine-config\.console: must be "uart" or "hvc"$/],
    [{ "machine-config": { jit: true } }, /^machine-config\.jit: must be "on", "off" or "eager"$/],
    [{ "machine-config": { smt: true } }, /^machine-config\.smt: unknown field$/],
    [{ drives: [{ path_on_host: "/x" }] }, /^drives\[0\]\.drive_id: is required$/],
    [{ drives: [{ drive_id: "a/b", path_on_host: "/x" }] }, /^drives\[0\]\.drive_id: must be 1-20 letters/],
    [{ drives: [drive, { drive_id: "d", path_on_host: "" }] }, /^drives\[1\]\.path_on_host: must name a file$/],
    [{ drives: [{ ...drive, is_read_only: "yes" }] }, /^drives\[0\]\.is_read_only: must be a boolean, not string$/],
    [{ drives: [{ ...drive, format: "vmdk" }] }, /^drives\[0\]\.format: must be "raw" or "qcow2"$/],
    [{ drives: [{ ...drive, snapshot: "on" }] }, /^drives\[0\]\.snapshot: must be a boolean, not string$/],
    [{ drives: [drive, drive] }, /^drives\[1\]\.drive_id: "rootfs" is used by an earlier drive$/],
    [{ drives: [{ ...drive, is_root_device: true }, { drive_id: "b", path_on_host: "/b", is_root_device: true }] }, /^drives\[1\]\.is_root_device: only one drive can be the root device; drives\[0\] already is$/],
    [{ drives: [{ ...drive, rate_limiter: { bandwidth: { size: 1 } } }] }, /^drives\[0\]\.rate_limiter\.bandwidth\.refill_time: is required$/],
    [{ drives: [{ ...drive, rate_limiter: { ops: { size: 1, refill_time: -1 } } }] }, /^drives\[0\]\.rate_limiter\.ops\.refill_time: must be at least 0$/],
    [{ drives: [{ ...drive, rate_limiter: { ops: { size: 1, refill_time: 1, one_time_burst: 0.5 } } }] }, /^drives\[0\]\.rate_limiter\.ops\.one_time_burst: must be a whole number$/],
    [{ drives: [{ ...drive, rate_limiter: { iops: {} } }] }, /^drives\[0\]\.rate_limiter\.iops: unknown field$/],
    [{ drives: [{ ...drive, coalescing: { max_completions: 0, max_delay_us: 1 } }] }, /^drives\[0\]\.coalescing\.max_completions: must be at least 1$/],
    [{ drives: [{ ...drive, coalescing: { max_completions: 2, max_delay_us: 10_000_001 } }] }, /^drives\[0\]\.coalescing\.max_delay_us: must be at most 10000000$/],
    [{ drives: [{ ...drive, coalescing: { max_completions: 2, max_delay_us: 0 } }] }, /^drives\[0\]\.coalescing\.max_delay_us: more than one completion/],
    [{ drives: Array.from({ length: 17 }, (_, i) => ({ drive_id: `d${i}`, path_on_host: "/x" })) }, /^drives: at most 16 drives$/],
    [{ "network-interfaces": [{ iface_id: "eth0" }] }, /^network-interfaces\[0\]: needs exactly one backend/],
    [{ "network-interfaces": [{ ...nic, socket: { socket_path: "/s", mode: "listen" } }] }, /^network-interfaces\[0\]: needs exactly one backend/],
    [{ "network-interfaces": [{ iface_id: "eth0", host_dev_name: "a-name-longer-than-15" }] }, /^network-interfaces\[0\]\.host_dev_name: must be an interface name/],
    [{ "network-interfaces": [{ iface_id: "eth0", socket: { socket_path: "/s", mode: "bind" } }] }, /^network-interfaces\[0\]\.socket\.mode: must be "listen" or "connect"$/],
    [{ "network-interfaces": [{ iface_id: "eth0", socket: { socket_path: "", mode: "listen" } }] }, /^network-interfaces\[0\]\.socket\.socket_path: must name a Unix socket path$/],
    [{ "network-interfaces": [{ ...nic, guest_mac: "03:00:00:00:00:01" }] }, /^network-interfaces\[0\]\.guest_mac: is a multicast address/],
    [{ "network-interfaces": [{ ...nic, guest_mac: "52-54-00-00-00-01" }] }, /^network-interfaces\[0\]\.guest_mac: must look like 52:54:00:12:34:56$/],
    [{ "network-interfaces": [{ ...nic, tx_rate_limiter: { bandwidth: { size: -5, refill_time: 1 } } }] }, /^network-interfaces\[0\]\.tx_rate_limiter\.bandwidth\.size: must be at least 0$/],
    [{ "network-interfaces": [{ ...nic, rx_rate_limiter: [] }] }, /^network-interfaces\[0\]\.rx_rate_limiter: must be an object, not an array$/],
    [{ "network-interfaces": [nic, nic] }, /^network-interfaces\[1\]\.iface_id: "eth0" is used by an earlier interface$/],
    [{ "network-interfaces": [{ ...nic, user: {} }] }, /^network-interfaces\[0\]: needs exactly one backend: host_dev_name \(a TAP device\), socket \{socket_path, mode\} or user \{host_forwards\}$/],
    [{ "network-interfaces": [{ iface_id: "eth0", user: { host_forwards: [{ protocol: "sctp", host_port: 1, guest_port: 1 }] } }] }, /^network-interfaces\[0\]\.user\.host_forwards\[0\]\.protocol: must be "tcp" or "udp"$/],
    [{ "network-interfaces": [{ iface_id: "eth0", user: { host_forwards: [{ protocol: "tcp", host_port: 0, guest_port: 22 }] } }] }, /^network-interfaces\[0\]\.user\.host_forwards\[0\]\.host_port: must be at least 1$/],
    [{ "network-interfaces": [{ iface_id: "eth0", user: { host_forwards: [{ protocol: "tcp", host_port: 2222, guest_port: 65536 }] } }] }, /^network-interfaces\[0\]\.user\.host_forwards\[0\]\.guest_port: must be at most 65535$/],
    [{ "network-interfaces": [{ iface_id: "eth0", user: { host_forwards: [{ protocol: "tcp", host_address: "localhost", host_port: 2222, guest_port: 22 }] } }] }, /^network-interfaces\[0\]\.user\.host_forwards\[0\]\.host_address: must be an IPv4 or IPv6 address such as 127\.0\.0\.1$/],
    [{ "network-interfaces": [{ iface_id: "eth0", user: { host_forwards: [{ protocol: "tcp", host_port: 2222 }] } }] }, /^network-interfaces\[0\]\.user\.host_forwards\[0\]\.guest_port: is required$/],
    [
      { "network-interfaces": [{ iface_id: "eth0", user: { host_forwards: [{ protocol: "udp", host_address: "::1", host_port: 53, guest_port: 53 }, { protocol: "udp", host_address: "::1", host_port: 53, guest_port: 5353 }] } }] },
      /^network-interfaces\[0\]\.user\.host_forwards\[1\]\.host_port: udp port 53 is already forwarded by host_forwards\[0\]$/,
    ],
    [{ "network-interfaces": [{ iface_id: "a", user: {} }, { iface_id: "b", user: {} }] }, /^network-interfaces\[1\]\.user: only one interface may use the user backend \(network-interfaces\[0\] does\)/],
    [{ vsock: { guest_cid: 2, uds_path: "/v" } }, /^vsock\.guest_cid: must be at least 3$/],
    [{ vsock: { guest_cid: 2 ** 32, uds_path: "/v" } }, /^vsock\.guest_cid: must be at most 4294967295$/],
    [{ vsock: { guest_cid: 3 } }, /^vsock\.uds_path: is required$/],
    [{ balloon: { amount_mib: -1 } }, /^balloon\.amount_mib: must be at least 0$/],
    [{ balloon: { amount_mib: 600 } }, /^balloon\.amount_mib: must be at most mem_size_mib \(512\)$/],
    [{ balloon: { amount_mib: 1, deflate_on_oom: "yes" } }, /^balloon\.deflate_on_oom: must be a boolean, not string$/],
    [{ balloon: { amount_mib: 1, stats_polling_interval_s: 86_401 } }, /^balloon\.stats_polling_interval_s: must be at most 86400$/],
    [{ entropy: { rate_limiter: { ops: { size: 1, refill_time: 1 } } } }, /^entropy\.rate_limiter\.ops: unknown field$/],
    [{ metrics: { port: 0 } }, /^metrics\.port: must be at least 1$/],
    [{ metrics: { port: 65536 } }, /^metrics\.port: must be at most 65535$/],
    [{ logger: {} }, /^logger: unknown field$/],
    [[], /^must be an object, not an array$/],
  ];
  for (const [input, message] of cases) assert.match(refusal(input), message, JSON.stringify(input));
});

test("paths and messages", () => {
  assert.equal(formatPath(["drives", 0, "rate_limiter", "bandwidth"]), "drives[0].rate_limiter.bandwidth");
  assert.equal(formatPath([]), "");
  const result = VmConfig.safeParse({ a: 1, b: 2 });
  assert.equal(result.success, false);
  assert.equal(describeZodError(result.error!), 'unknown fields "a", "b"');
});
