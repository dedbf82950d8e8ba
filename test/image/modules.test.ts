// Kernel-module bookkeeping: names, .modinfo, modules.dep in and out, load order, closure.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  formatModulesDep,
  modinfoDepends,
  modinfoSoftdepPre,
  moduleName,
  orderModules,
  parseModinfo,
  parseModulesBuiltin,
  parseModulesDep,
  resolveModuleClosure,
  resolveSoftdep,
  uncompressedModulePath,
} from "../../src/image/modules.ts";

// Excerpt in depmod's format (as /lib/modules/$(uname -r)/modules.dep on an installed trixie system).
const MODULES_DEP = `kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/net/core/failover.ko.xz:
kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko.xz kernel/net/vmw_vsock/vsock.ko.xz
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko.xz: kernel/net/vmw_vsock/vsock.ko.xz
kernel/net/vmw_vsock/vsock.ko.xz:
kernel/drivers/virtio/virtio_mmio.ko.xz:
`;

test("module names from paths", () => {
  assert.equal(moduleName("kernel/drivers/char/hw_random/virtio-rng.ko.xz"), "virtio_rng");
  assert.equal(moduleName("rtc-goldfish"), "rtc_goldfish");
  assert.equal(moduleName("kernel/fs/ext4/ext4.ko"), "ext4");
  assert.equal(uncompressedModulePath("kernel/fs/ext4/ext4.ko.zst"), "kernel/fs/ext4/ext4.ko");
  assert.deepEqual([...parseModulesBuiltin("kernel/drivers/rtc/rtc-goldfish.ko\nkernel/drivers/tty/serial/8250/8250_of.ko\n")], ["rtc_goldfish", "8250_of"]);
});

test("modules.dep: every module after its dependencies, wanted order otherwise kept", () => {
  const deps = parseModulesDep(MODULES_DEP);
  assert.equal(deps.size, 11);
  const order = orderModules(deps, [
    "kernel/drivers/virtio/virtio_mmio.ko.xz",
    "kernel/fs/ext4/ext4.ko.xz",
    "kernel/drivers/net/virtio_net.ko.xz",
    "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz",
  ]).map(moduleName);
  assert.deepEqual(order, [
    "virtio_mmio",
    "crc16", "mbcache", "jbd2", "ext4",
    "failover", "net_failover", "virtio_net",
    "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
  ]);
  for (const [path, ds] of deps) for (const d of ds) if (order.includes(moduleName(path))) assert.ok(order.indexOf(moduleName(d)) < order.indexOf(moduleName(path)));
});

test("load order: cycles and unknown modules are errors", () => {
  assert.throws(() => orderModules(new Map([["a.ko", ["b.ko"]], ["b.ko", ["a.ko"]]]), ["a.ko"]), /cycle: a.ko -> b.ko -> a.ko/);
  assert.throws(() => orderModules(new Map([["a.ko", ["c.ko"]]]), ["a.ko"]), /c.ko is not in modules.dep \(needed by a.ko\)/);
});

test("modules.dep written in depmod's convention round-trips", () => {
  const direct = new Map([
    ["kernel/fs/ext4/ext4.ko", ["kernel/fs/jbd2/jbd2.ko", "kernel/fs/mbcache.ko"]],
    ["kernel/fs/jbd2/jbd2.ko", []],
    ["kernel/fs/mbcache.ko", []],
    ["kernel/a.ko", ["kernel/b.ko"]],
    ["kernel/b.ko", ["kernel/c.ko"]],
    ["kernel/c.ko", []],
  ]);
  const text = formatModulesDep(direct);
  assert.match(text, /^kernel\/fs\/ext4\/ext4.ko: kernel\/fs\/mbcache.ko kernel\/fs\/jbd2\/jbd2.ko$/m);
  // Transitive dependencies are listed, the one to load first last.
  assert.match(text, /^kernel\/a.ko: kernel\/b.ko kernel\/c.ko$/m);
  assert.match(text, /^kernel\/c.ko:$/m);
  const back = parseModulesDep(text);
  assert.deepEqual(orderModules(back, ["kernel/a.ko"]), ["kernel/c.ko", "kernel/b.ko", "kernel/a.ko"]);
});

/** A minimal little-endian ELF64 relocatable file with a .modinfo section. */
function fakeModule(modinfo: string[]): Uint8Array {
  const info = Buffer.from(modinfo.map((s) => s + "\0").join(""), "latin1");
  const shstr = Buffer.from("\0.modinfo\0.shstrtab\0", "latin1");
  const infoOff = 64, shstrOff = infoOff + info.length, shoff = (shstrOff + shstr.length + 7) & ~7;
  const buf = Buffer.alloc(shoff + 3 * 64);
  buf.writeUInt32BE(0x7f454c46, 0);
  buf[4] = 2; // ELFCLASS64
  buf[5] = 1; // little-endian
  buf[6] = 1;
  buf.writeUInt16LE(1, 16); // ET_REL
  buf.writeUInt16LE(243, 18); // EM_RISCV
  buf.writeBigUInt64LE(BigInt(shoff), 0x28);
  buf.writeUInt16LE(64, 0x34);
  buf.writeUInt16LE(64, 0x3a);
  buf.writeUInt16LE(3, 0x3c);
  buf.writeUInt16LE(2, 0x3e);
  info.copy(buf, infoOff);
  shstr.copy(buf, shstrOff);
  const sh = (i: number, name: number, type: number, off: number, size: number) => {
    const at = shoff + i * 64;
    buf.writeUInt32LE(name, at);
    buf.writeUInt32LE(type, at + 4);
    buf.writeBigUInt64LE(BigInt(off), at + 24);
    buf.writeBigUInt64LE(BigInt(size), at + 32);
  };
  sh(1, 1, 1, infoOff, info.length);
  sh(2, 10, 3, shstrOff, shstr.length);
  return new Uint8Array(buf);
}

test(".modinfo: depends and soft dependencies", () => {
  const info = parseModinfo(fakeModule(["softdep=pre: crypto-crc32c", "license=GPL", "depends=jbd2,mbcache,crc16", "alias=fs-ext4", "alias=ext3", "name=ext4"]));
  assert.deepEqual(modinfoDepends(info), ["jbd2", "mbcache", "crc16"]);
  assert.deepEqual(modinfoSoftdepPre(info), ["crypto-crc32c"]);
  assert.deepEqual(info.get("alias"), ["fs-ext4", "ext3"]);
  assert.deepEqual(modinfoDepends(parseModinfo(fakeModule(["depends=", "name=virtio_mmio"]))), []);
  assert.deepEqual(modinfoSoftdepPre(parseModinfo(fakeModule(["softdep=pre: a b post: c"]))), ["a", "b"]);
  assert.throws(() => parseModinfo(new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, ...new Array(64).fill(0)])), /not an ELF/);
});

test("soft dependencies resolve crypto aliases by the crypto API's naming convention", () => {
  const modules = new Map([["crc32c_generic", "kernel/crypto/crc32c_generic.ko.xz"], ["crc16", "kernel/lib/crc16.ko.xz"]]);
  assert.equal(resolveSoftdep("crypto-crc32c", modules, new Set()), "crc32c_generic");
  assert.equal(resolveSoftdep("crc16", modules, new Set()), "crc16");
  assert.equal(resolveSoftdep("crypto-sha256", modules, new Set(["sha256_generic"])), "builtin");
  assert.equal(resolveSoftdep("crypto-nothing", modules, new Set()), undefined);
});

test("closure: built-in vs loadable vs missing, dependencies pulled in and ordered", async () => {
  const files: Record<string, string[]> = {
    "kernel/fs/ext4/ext4.ko.xz": ["depends=jbd2,mbcache,crc16", "softdep=pre: crypto-crc32c"],
    "kernel/fs/jbd2/jbd2.ko.xz": ["depends=", "softdep=pre: crypto-crc32c"],
    "kernel/fs/mbcache.ko.xz": ["depends="],
    "kernel/lib/crc16.ko.xz": ["depends="],
    "kernel/crypto/crc32c_generic.ko.xz": ["depends="],
    "kernel/drivers/net/virtio_net.ko.xz": ["depends=net_failover", "softdep=pre: crypto-unknownthing"],
    "kernel/drivers/net/net_failover.ko.xz": ["depends=failover"],
    "kernel/net/core/failover.ko.xz": ["depends="],
  };
  const index = new Map(Object.keys(files).map((p) => [moduleName(p), p]));
  const read: string[] = [];
  const closure = await resolveModuleClosure(["virtio_net", "ext4", "rtc-goldfish", "virtio_mmio", "nonexistent"], index, new Set(["rtc_goldfish", "virtio_mmio"]), async (p) => {
    read.push(p);
    const info = parseModinfo(fakeModule(files[p]));
    return { depends: modinfoDepends(info), softdepPre: modinfoSoftdepPre(info) };
  });
  assert.deepEqual(closure.order.map(moduleName), ["failover", "net_failover", "virtio_net", "crc32c_generic", "jbd2", "mbcache", "crc16", "ext4"]);
  assert.deepEqual(closure.builtin, ["rtc_goldfish", "virtio_mmio"]);
  assert.deepEqual(closure.missing, ["nonexistent"]);
  assert.deepEqual(closure.unresolvedSoftdeps, ["virtio_net: crypto-unknownthing"]);
  assert.equal(new Set(read).size, read.length, "each module is read once");
  // Hard dependencies only for modules.dep; soft ones only influence the order.
  assert.deepEqual(closure.hardDeps.get("kernel/fs/jbd2/jbd2.ko.xz"), []);
  await assert.rejects(
    resolveModuleClosure(["a"], new Map([["a", "a.ko"]]), new Set(), async () => ({ depends: ["zzz"], softdepPre: [] })),
    /depends on zzz, which is not in the kernel package/,
  );
});
