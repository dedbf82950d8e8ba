import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDiskOption, parseNetOption, parseRngOption, parseVsockOption, parseKeyValues, parseMac } from "./device-options.ts";
import { UsageError } from "./options.ts";

test("disks", () => {
  assert.deepEqual(parseDiskOption("path=a.img", 0), { path: "a.img", readOnly: false, id: "disk0" });
  assert.deepEqual(parseDiskOption("path=/x/b.img,readonly=on,id=data", 1), { path: "/x/b.img", readOnly: true, id: "data" });
  assert.throws(() => parseDiskOption("readonly=on", 0), /--disk readonly=on: path is required \(path=FILE\)/);
  assert.throws(() => parseDiskOption("path=a,readonly=yes", 0), /readonly must be on or off/);
  assert.throws(() => parseDiskOption("path=a,cache=none", 0), /unknown key "cache"/);
  assert.throws(() => parseDiskOption("path=a,id=this-id-is-far-too-long-for-virtio", 0), /1-20 letters/);
  assert.throws(() => parseDiskOption("path=a,path=b", 0), /given twice/);
  assert.equal(parseDiskOption("path=x,,y.img,readonly=on", 0).path, "x,y.img", "',,' is a literal comma");
});

test("networks", () => {
  assert.deepEqual(parseNetOption("tap=tap0"), { kind: "tap", ifname: "tap0", mac: undefined });
  const n = parseNetOption("socket=listen:/tmp/n.sock,mac=52:54:00:12:34:56");
  assert.equal(n.kind, "socket-listen");
  assert.deepEqual([...n.mac!], [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
  assert.equal(parseNetOption("socket=connect:/tmp/a:b.sock").kind, "socket-connect");
  assert.throws(() => parseNetOption("mac=52:54:00:12:34:56"), /exactly one backend/);
  assert.throws(() => parseNetOption("tap=t0,socket=listen:/x"), /exactly one backend/);
  assert.throws(() => parseNetOption("socket=serve:/x"), /listen:PATH or connect:PATH/);
  assert.throws(() => parseNetOption("tap=t0,mac=01:00:5e:00:00:01"), /multicast/);
  assert.throws(() => parseNetOption("tap=t0,mac=zz"), /must look like/);
});

test("rng and vsock", () => {
  assert.deepEqual(parseRngOption(true), {});
  assert.deepEqual(parseRngOption("rate=1024,burst=4096"), { rate: 1024, burst: 4096 });
  assert.throws(() => parseRngOption("rate=fast"), /rate must be a whole number of bytes per second/);
  assert.deepEqual(parseVsockOption("cid=3,uds=/tmp/v.sock"), { cid: 3, uds: "/tmp/v.sock" });
  assert.throws(() => parseVsockOption("cid=2,uds=/tmp/v"), /0-2 are reserved/);
  assert.throws(() => parseVsockOption("cid=3"), /uds is required/);
});

test("key=value lists", () => {
  assert.deepEqual(parseKeyValues("a=1, b = 2", "--x"), { a: "1", b: "2" });
  assert.throws(() => parseKeyValues("=1", "--x"), UsageError);
  assert.equal(parseMac("02:00:00:00:00:01")[5], 1);
});

test("balloon", async () => {
  const { parseBalloonOption } = await import("./device-options.ts");
  assert.deepEqual(parseBalloonOption(true), { targetBytes: 0 });
  assert.deepEqual(parseBalloonOption("target=256M"), { targetBytes: 256 << 20 });
  assert.throws(() => parseBalloonOption("target=lots"), /target must be a size such as 256M/);
  assert.throws(() => parseBalloonOption("size=1G"), /unknown key "size"/);
});

test("interrupt coalescing on disks and networks", async () => {
  const { parseCoalesce } = await import("./device-options.ts");
  assert.deepEqual(parseDiskOption("path=a.img,coalesce=16/200us", 0).coalesce, { maxCompletions: 16, maxDelayUs: 200 });
  assert.deepEqual(parseDiskOption("path=a.img,coalesce=64/1ms", 0).coalesce, { maxCompletions: 64, maxDelayUs: 1000 });
  assert.deepEqual(parseNetOption("tap=t0,coalesce=4/50us").coalesce, { maxCompletions: 4, maxDelayUs: 50 });
  assert.deepEqual(parseCoalesce("off"), { maxCompletions: 1, maxDelayUs: 0 });
  assert.equal("coalesce" in parseDiskOption("path=a.img", 0), false, "absent unless given");
  assert.throws(() => parseDiskOption("path=a,coalesce=16", 0), /--disk path=a,coalesce=16: coalesce must be N\/Tus or N\/Tms/);
  assert.throws(() => parseDiskOption("path=a,coalesce=16/200", 0), /e\.g\. 16\/200us/);
  assert.throws(() => parseDiskOption("path=a,coalesce=0/10us", 0), /coalesce N must be a whole number of at least 1, not 0/);
  assert.throws(() => parseNetOption("tap=t0,coalesce=8/0us"), /8 completions need a delay bound \(T > 0\)/);
  assert.throws(() => parseDiskOption("path=a,coalesce=4/20000ms", 0), /T must be at most 10000000us/);
});
