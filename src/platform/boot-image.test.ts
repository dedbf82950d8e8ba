import { test } from "node:test";
import assert from "node:assert/strict";
import { parseKernelImage, planBootLayout, BootImageError } from "./boot-image.ts";

function fakeImage(size = 8192, imageSize = 20 << 20): Uint8Array {
  const bytes = new Uint8Array(size);
  const v = new DataView(bytes.buffer);
  bytes[0] = 0x4d; bytes[1] = 0x5a; // "MZ": EFI stub
  v.setBigUint64(8, 0x200000n, true);
  v.setBigUint64(16, BigInt(imageSize), true);
  v.setUint32(32, 2, true);
  v.setBigUint64(48, 0x5643534952n, true);
  v.setUint32(56, 0x05435352, true);
  return bytes;
}

test("parses the Image header", () => {
  const h = parseKernelImage(fakeImage());
  assert.equal(h.textOffset, 0x200000);
  assert.equal(h.imageSize, 20 << 20);
  assert.equal(h.hasEfiStub, true);
  assert.deepEqual(h.version, { major: 0, minor: 2 });
});

test("explains wrong kernel formats", () => {
  assert.throws(() => parseKernelImage(new Uint8Array([0x1f, 0x8b, ...new Array(100).fill(0)])), /gzip-compressed/);
  assert.throws(() => parseKernelImage(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, ...new Array(100).fill(0)])), /ELF/);
  assert.throws(() => parseKernelImage(new Uint8Array(100)), /no RISC-V Image header/);
  assert.throws(() => parseKernelImage(new Uint8Array(10)), BootImageError);
});

test("layout: kernel 2 MiB in, device tree at the top, initrd below it", () => {
  const layout = planBootLayout({ ramBase: 0x8000_0000, ramSize: 256 << 20, kernel: parseKernelImage(fakeImage()), initrdSize: 30 << 20, fdtSize: 4096 });
  assert.equal(layout.kernel, 0x8020_0000);
  assert.equal(layout.fdt, 0x8000_0000 + (254 << 20));
  assert.ok(layout.initrd!.end <= layout.fdt);
  assert.ok(layout.initrd!.start > layout.kernelEnd);
  assert.equal(layout.initrd!.start % 4096, 0);
});

test("layout refuses RAM that is too small, saying what to change", () => {
  assert.throws(
    () => planBootLayout({ ramBase: 0x8000_0000, ramSize: 48 << 20, kernel: parseKernelImage(fakeImage()), initrdSize: 30 << 20, fdtSize: 4096 }),
    /raise --memory/,
  );
});
