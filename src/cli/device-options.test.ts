// The device flags become the VM description's own objects (src/vmm/schema.ts), with errors
// that name the flag and the key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseBalloonOption, parseCoalesce, parseDiskOption, parseHostForward, parseNetOption, parseRngOption, parseShareOption, parseVsockOption, parseKeyValues } from "./device-options.ts";
import { UsageError } from "./options.ts";
import { parseMac, Drive, NetworkInterface, Entropy, Vsock, Balloon, Share, VmConfig } from "../vmm/schema.ts";

test("disks become drives", () => {
  assert.deepEqual(parseDiskOption("path=a.img", 0), { drive_id: "disk0", path_on_host: "a.img", is_read_only: false, is_root_device: false });
  assert.deepEqual(parseDiskOption("path=/x/b.img,readonly=on,id=data", 1), { drive_id: "data", path_on_host: "/x/b.img", is_read_only: true, is_root_device: false });
  assert.equal(parseDiskOption("path=debian.img,root=on", 0).is_root_device, true);
  assert.throws(() => parseDiskOption("path=a,root=yes", 0), /root: must be on or off/);
  assert.throws(() => parseDiskOption("readonly=on", 0), /--disk readonly=on: path: is required \(path=FILE\)/);
  assert.throws(() => parseDiskOption("path=a,readonly=yes", 0), /readonly: must be on or off/);
  assert.throws(() => parseDiskOption("path=a,cache=none", 0), /cache: unknown field/);
  assert.throws(() => parseDiskOption("path=a,id=this-id-is-far-too-long-for-virtio", 0), /1-20 letters/);
  assert.throws(() => parseDiskOption("path=a,path=b", 0), /given twice/);
  assert.equal(parseDiskOption("path=x,,y.img,readonly=on", 0).path_on_host, "x,y.img", "',,' is a literal comma");
  assert.ok(Drive.safeParse(parseDiskOption("path=a,coalesce=8/1ms", 0)).success, "the schema accepts what the flag makes");
});

test("disk formats and snapshot=on", () => {
  assert.deepEqual(parseDiskOption("path=vm1.qcow2,format=qcow2", 0), { drive_id: "disk0", path_on_host: "vm1.qcow2", is_read_only: false, is_root_device: false, format: "qcow2" });
  assert.deepEqual(parseDiskOption("path=debian.img,format=raw,snapshot=on", 0), {
    drive_id: "disk0",
    path_on_host: "debian.img",
    is_read_only: false,
    is_root_device: false,
    format: "raw",
    snapshot: true,
  });
  assert.equal(parseDiskOption("path=a,snapshot=off", 0).snapshot, false);
  assert.throws(() => parseDiskOption("path=a,format=vmdk", 0), /--disk path=a,format=vmdk: format: must be raw or qcow2/);
  assert.throws(() => parseDiskOption("path=a,snapshot=yes", 0), /snapshot: must be on or off/);
  assert.ok(Drive.safeParse(parseDiskOption("path=a,format=qcow2,snapshot=on", 0)).success, "the schema accepts what the flag makes");
});

test("networks become network interfaces", () => {
  assert.deepEqual(parseNetOption("tap=tap0", 0), { iface_id: "net0", host_dev_name: "tap0" });
  const n = parseNetOption("socket=listen:/tmp/n.sock,mac=52:54:00:12:34:56", 1);
  assert.deepEqual(n, { iface_id: "net1", guest_mac: "52:54:00:12:34:56", socket: { socket_path: "/tmp/n.sock", mode: "listen" } });
  assert.deepEqual(parseNetOption("socket=connect:/tmp/a:b.sock,id=uplink", 0).socket, { socket_path: "/tmp/a:b.sock", mode: "connect" });
  assert.equal(parseNetOption("tap=t0,id=uplink", 0).iface_id, "uplink");
  assert.throws(() => parseNetOption("mac=52:54:00:12:34:56", 0), /exactly one backend/);
  assert.throws(() => parseNetOption("tap=t0,socket=listen:/x", 0), /exactly one backend/);
  assert.throws(() => parseNetOption("socket=serve:/x", 0), /listen:PATH or connect:PATH/);
  assert.throws(() => parseNetOption("tap=t0,mac=01:00:5e:00:00:01", 0), /mac: is a multicast/);
  assert.throws(() => parseNetOption("tap=t0,mac=zz", 0), /must look like/);
  assert.ok(NetworkInterface.safeParse(n).success);
});

test("--net user with hostfwd= in QEMU's syntax (repeatable)", () => {
  assert.deepEqual(parseNetOption("user", 0), { iface_id: "net0", user: { host_forwards: [] } });
  assert.deepEqual(parseNetOption("user,hostfwd=tcp:127.0.0.1:2222-:22,mac=52:54:00:00:00:01,hostfwd=udp::5353-:53", 0), {
    iface_id: "net0",
    guest_mac: "52:54:00:00:00:01",
    user: {
      host_forwards: [
        { protocol: "tcp", host_address: "127.0.0.1", host_port: 2222, guest_port: 22 },
        { protocol: "udp", host_port: 5353, guest_port: 53 },
      ],
    },
  });
  assert.ok(NetworkInterface.safeParse(parseNetOption("user,hostfwd=::8080-:80", 0)).success, "the schema accepts what the flag makes");
  assert.throws(() => parseNetOption("user,tap=t0", 0), /--net user,tap=t0: needs exactly one backend: user, tap=NAME or socket=/);
  assert.throws(() => parseNetOption("usr", 0), /unknown word; the user backend is written "user"/);
  assert.throws(() => parseNetOption("tap=t0,hostfwd=tcp::2222-:22", 0), /hostfwd= belongs to the user backend/);
  assert.throws(() => parseNetOption("user,hostfwd=tcp::2222-:22,hostfwd=::2222-:23", 0), /hostfwd: tcp port 2222 is already forwarded by hostfwd number 1$/);
  assert.throws(() => parseNetOption("user,hostfwd=tcp::2222", 0), (err: Error) => err instanceof UsageError && /hostfwd: "tcp::2222" must be \[tcp\|udp\]:\[HOSTADDR\]:HOSTPORT-\[GUESTADDR\]:GUESTPORT/.test(err.message));
});

test("hostfwd: every part checked, with what to write instead", () => {
  assert.deepEqual(parseHostForward("tcp:127.0.0.1:2222-:22"), { protocol: "tcp", host_address: "127.0.0.1", host_port: 2222, guest_port: 22 });
  assert.deepEqual(parseHostForward("::2222-:22"), { protocol: "tcp", host_port: 2222, guest_port: 22 }, "tcp and every host address by default");
  assert.deepEqual(parseHostForward("udp:[::1]:5353-:53"), { protocol: "udp", host_address: "::1", host_port: 5353, guest_port: 53 });
  const refused: [string, RegExp][] = [
    ["tcp:127.0.0.1:2222-10.0.2.15:22", /the guest address cannot be chosen .*leave it out: \.\.\.-:22$/],
    ["sctp::2222-:22", /the protocol must be tcp or udp, not "sctp"/],
    ["tcp:localhost:2222-:22", /the host address must be an IPv4 or IPv6 address such as 127\.0\.0\.1/],
    ["tcp:1.2.3:2222-:22", /the host address must be an IPv4 or IPv6 address/],
    ["tcp::0-:22", /the host port must be a number from 1 to 65535, not "0"/],
    ["tcp::2222-:65536", /the guest port must be a number from 1 to 65535, not "65536"/],
    ["tcp::ssh-:22", /the host port must be a number/],
    ["tcp:2222:22", /must be \[tcp\|udp\]:/],
    ["", /must be \[tcp\|udp\]:/],
  ];
  for (const [text, message] of refused) assert.throws(() => parseHostForward(text), message, text);
});

test("rng becomes an entropy device with a token bucket; vsock keeps Firecracker's names", () => {
  assert.deepEqual(parseRngOption(true), {});
  // 4096 bytes refilled every 4 s: 1024 bytes per second.
  assert.deepEqual(parseRngOption("rate=1024,burst=4096"), { rate_limiter: { bandwidth: { size: 4096, refill_time: 4000 } } });
  assert.ok(Entropy.safeParse(parseRngOption("rate=1000000")).success);
  assert.throws(() => parseRngOption("rate=fast"), /rate: must be a whole number of bytes per second/);
  assert.deepEqual(parseVsockOption("cid=3,uds=/tmp/v.sock"), { guest_cid: 3, uds_path: "/tmp/v.sock" });
  assert.ok(Vsock.safeParse(parseVsockOption("cid=3,uds=/tmp/v.sock")).success);
  assert.throws(() => parseVsockOption("cid=2,uds=/tmp/v"), /0-2 are reserved/);
  assert.throws(() => parseVsockOption("cid=3"), /uds: is required/);
});

test("key=value lists", () => {
  assert.deepEqual(parseKeyValues("a=1, b = 2", "--x"), { a: "1", b: "2" });
  assert.throws(() => parseKeyValues("=1", "--x"), UsageError);
  assert.equal(parseMac("02:00:00:00:00:01")[5], 1);
});

test("balloon", () => {
  assert.deepEqual(parseBalloonOption(true), { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 5 });
  assert.equal(parseBalloonOption("target=256M").amount_mib, 256);
  assert.equal(parseBalloonOption("target=1G").amount_mib, 1024);
  assert.ok(Balloon.safeParse(parseBalloonOption("target=1G")).success);
  assert.throws(() => parseBalloonOption("target=lots"), /target: must be a size such as 256M/);
  assert.throws(() => parseBalloonOption("target=1000K"), /whole number of MiB/);
  assert.throws(() => parseBalloonOption("size=1G"), /size: unknown field/);
});

test("interrupt coalescing on disks and networks", () => {
  assert.deepEqual(parseDiskOption("path=a.img,coalesce=16/200us", 0).coalescing, { max_completions: 16, max_delay_us: 200 });
  assert.deepEqual(parseDiskOption("path=a.img,coalesce=64/1ms", 0).coalescing, { max_completions: 64, max_delay_us: 1000 });
  assert.deepEqual(parseNetOption("tap=t0,coalesce=4/50us", 0).coalescing, { max_completions: 4, max_delay_us: 50 });
  assert.deepEqual(parseCoalesce("off"), { max_completions: 1, max_delay_us: 0 });
  assert.equal("coalescing" in parseDiskOption("path=a.img", 0), false, "absent unless given");
  assert.throws(() => parseDiskOption("path=a,coalesce=16", 0), /--disk path=a,coalesce=16: coalesce: must be N\/Tus or N\/Tms/);
  assert.throws(() => parseDiskOption("path=a,coalesce=16/200", 0), /e\.g\. 16\/200us/);
  assert.throws(() => parseDiskOption("path=a,coalesce=0/10us", 0), /coalesce: N must be at least 1/);
  assert.throws(() => parseNetOption("tap=t0,coalesce=8/0us", 0), /T: more than one completion per interrupt needs a delay bound/);
  assert.throws(() => parseDiskOption("path=a,coalesce=4/20000ms", 0), /T must be at most 10000000us/);
});

test("shares become virtio-9p folders of the description; bad specs name the key", () => {
  assert.deepEqual(parseShareOption("path=/srv/data,tag=data"), { path_on_host: "/srv/data", mount_tag: "data", is_read_only: false });
  assert.deepEqual(parseShareOption("path=/srv/ro,tag=ro.1,readonly=on"), { path_on_host: "/srv/ro", mount_tag: "ro.1", is_read_only: true });
  assert.ok(Share.safeParse(parseShareOption("path=/x,tag=t")).success);
  assert.throws(() => parseShareOption("tag=t"), /path: is required/);
  assert.throws(() => parseShareOption("path=/x"), /tag: is required/);
  assert.throws(() => parseShareOption("path=/x,tag=a/b"), /tag: must be 1-31 letters/);
  assert.throws(() => parseShareOption("path=/x,tag=t,readonly=yes"), /readonly: must be on or off/);
  assert.throws(() => parseShareOption("path=/x,tag=t,cache=none"), /--share/);
});

test("the description refuses two shares with one tag, and more than 8", () => {
  const one = { path_on_host: "/x", mount_tag: "t", is_read_only: false };
  const twice = VmConfig.safeParse({ shares: [one, { ...one, path_on_host: "/y" }] });
  assert.equal(twice.success, false);
  assert.match(JSON.stringify(twice.error?.issues), /is used by an earlier share/);
  assert.equal(VmConfig.safeParse({ shares: Array.from({ length: 9 }, (_, i) => ({ ...one, mount_tag: `t${i}` })) }).success, false);
  assert.equal(VmConfig.safeParse({ shares: [{ path_on_host: "/x", mount_tag: "t" }] }).success, true, "is_read_only defaults to false");
});
