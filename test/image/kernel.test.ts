// Kernel file recognition, the RISC-V Image header check and the version banner.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { classifyKernel, findLinuxBanner, parseRiscvImageHeader } from "../../src/image/kernel.ts";

/** The first 64 bytes of a riscv64 Image as Debian's kernel has them (EFI stub "MZ" in code0). */
function imageHeader(): Buffer {
  const h = Buffer.alloc(4096);
  h.write("MZ", 0, "latin1");
  h.writeBigUInt64LE(0x200000n, 0x08); // text_offset
  h.writeBigUInt64LE(0x1e6b000n, 0x10); // image_size
  h.writeBigUInt64LE(0n, 0x18); // flags: little-endian
  h.writeUInt32LE(2, 0x20); // header version 0.2
  h.write("RISCV\0\0\0", 0x30, "latin1");
  h.write("RSC\x05", 0x38, "latin1");
  h.write("PE\0\0", 0x40, "latin1");
  return h;
}

test("Image header: fields and both magics", () => {
  assert.deepEqual(parseRiscvImageHeader(imageHeader()), { textOffset: 0x200000n, imageSize: 0x1e6b000n, flags: 0n, version: 2, efiStub: true });
  const noMagic2 = imageHeader();
  noMagic2.write("XXXX", 0x38, "latin1");
  assert.throws(() => parseRiscvImageHeader(noMagic2), /magic at 0x38/);
  const noMagic = imageHeader();
  noMagic.write("ARM\x64", 0x30, "latin1");
  assert.throws(() => parseRiscvImageHeader(noMagic), /magic at 0x30/);
  assert.throws(() => parseRiscvImageHeader(new Uint8Array(10)), /only 10 bytes/);
});

test("kernel formats by magic number", () => {
  assert.deepEqual(classifyKernel(imageHeader()), { kind: "image" });
  assert.deepEqual(classifyKernel(gzipSync(imageHeader())), { kind: "gzip" });
  assert.deepEqual(classifyKernel(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0])), { kind: "zstd" });
  assert.deepEqual(classifyKernel(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0])), { kind: "xz" });
  assert.deepEqual(classifyKernel(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0])), { kind: "elf" });
  const zboot = Buffer.alloc(128);
  zboot.write("MZ", 0, "latin1");
  zboot.write("zimg", 4, "latin1");
  zboot.writeUInt32LE(0x1000, 8);
  zboot.writeUInt32LE(0x123456, 12);
  zboot.write("gzip", 0x18, "latin1");
  assert.deepEqual(classifyKernel(zboot), { kind: "zboot", compression: "gzip", payloadOffset: 0x1000, payloadSize: 0x123456 });
  assert.deepEqual(classifyKernel(Buffer.alloc(100)), { kind: "unknown" });
});

test("version banner: the real one, not format strings", () => {
  const img = imageHeader();
  img.write("Linux version %s (%s)\0", 0x100, "latin1");
  img.write("Linux version 6.12.43+deb13-riscv64 (debian-kernel@lists.debian.org) (riscv64-linux-gnu-gcc-14) #1 SMP Debian 6.12.43-1 (2025-08-27)\n\0", 0x200, "latin1");
  const b = findLinuxBanner(img)!;
  assert.equal(b.release, "6.12.43+deb13-riscv64");
  assert.match(b.banner, /^Linux version 6\.12\.43\+deb13-riscv64 \(debian-kernel@lists\.debian\.org\).*2025-08-27\)$/);
  assert.equal(findLinuxBanner(imageHeader()), undefined);
});
