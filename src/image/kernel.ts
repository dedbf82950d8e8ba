// Recognises the formats a Debian riscv64 kernel file can come in and checks the RISC-V Linux
// "Image" header (Documentation/arch/riscv/boot-image-header.rst) that Parley's loader relies on.
// Pure functions over bytes; decompression that needs host tools lives in build.ts.

export interface RiscvImageHeader {
  /** Where the image wants to be placed relative to the start of RAM (2 MiB for rv64). */
  textOffset: bigint;
  /** Bytes the kernel occupies once running (including .bss), from the load address. */
  imageSize: bigint;
  /** Bit 0: endianness (0 = little). */
  flags: bigint;
  /** Header version, major << 16 | minor. */
  version: number;
  /** True when the image also starts with the EFI "MZ" stub (bootable by EFI firmware). */
  efiStub: boolean;
}

const IMAGE_MAGIC = "RISCV\0\0\0"; // offset 0x30, deprecated but still written
const IMAGE_MAGIC2 = "RSC\x05"; // offset 0x38

/** Parses and validates the 64-byte RISC-V Image header; throws a descriptive error if absent. */
export function parseRiscvImageHeader(bytes: Uint8Array): RiscvImageHeader {
  if (bytes.length < 64) throw new Error(`not a RISC-V Linux Image: only ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ascii = (off: number, len: number) => String.fromCharCode(...bytes.subarray(off, off + len));
  if (ascii(0x38, 4) !== IMAGE_MAGIC2) throw new Error(`not a RISC-V Linux Image: magic at 0x38 is ${JSON.stringify(ascii(0x38, 4))}, expected "RSC\\x05"`);
  if (ascii(0x30, 8) !== IMAGE_MAGIC) throw new Error(`not a RISC-V Linux Image: magic at 0x30 is ${JSON.stringify(ascii(0x30, 8))}`);
  return {
    textOffset: view.getBigUint64(0x08, true),
    imageSize: view.getBigUint64(0x10, true),
    flags: view.getBigUint64(0x18, true),
    version: view.getUint32(0x20, true),
    efiStub: bytes[0] === 0x4d && bytes[1] === 0x5a,
  };
}

export type KernelFormat =
  | { kind: "image" }
  | { kind: "gzip" | "zstd" | "xz" }
  /** EFI "zboot": a PE stub wrapping a compressed Image at payloadOffset. */
  | { kind: "zboot"; compression: string; payloadOffset: number; payloadSize: number }
  | { kind: "elf" }
  | { kind: "unknown" };

/** Identifies a kernel file by its magic numbers. */
export function classifyKernel(bytes: Uint8Array): KernelFormat {
  const has = (off: number, magic: number[]) => magic.every((b, i) => bytes[off + i] === b);
  if (bytes.length >= 64) {
    try {
      parseRiscvImageHeader(bytes);
      return { kind: "image" };
    } catch {
      // not an uncompressed Image: try the other formats
    }
  }
  if (has(0, [0x4d, 0x5a]) && has(4, [0x7a, 0x69, 0x6d, 0x67])) {
    // linux/drivers/firmware/efi/libstub/zboot-header.S: "MZ", pad, "zimg", u32 payload offset,
    // u32 payload size, 8 bytes reserved, then the NUL-padded compression type name.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const name = String.fromCharCode(...bytes.subarray(0x18, 0x20)).replace(/\0.*$/, "");
    return { kind: "zboot", compression: name, payloadOffset: view.getUint32(8, true), payloadSize: view.getUint32(12, true) };
  }
  if (has(0, [0x1f, 0x8b])) return { kind: "gzip" };
  if (has(0, [0x28, 0xb5, 0x2f, 0xfd])) return { kind: "zstd" };
  if (has(0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return { kind: "xz" };
  if (has(0, [0x7f, 0x45, 0x4c, 0x46])) return { kind: "elf" };
  return { kind: "unknown" };
}

/**
 * Finds the kernel's `linux_banner` ("Linux version 6.12.x+deb13-riscv64 (...) #1 SMP ...") in
 * an uncompressed Image and returns the release (the `uname -r` string), or undefined.
 */
export function findLinuxBanner(bytes: Uint8Array): { release: string; banner: string } | undefined {
  const needle = Buffer.from("Linux version ");
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let from = 0;
  for (;;) {
    const at = buf.indexOf(needle, from);
    if (at < 0) return undefined;
    let end = at;
    while (end < buf.length && end - at < 512 && buf[end] !== 0 && buf[end] !== 0x0a) end++;
    const banner = buf.subarray(at, end).toString("latin1");
    // The real banner continues with "(builder@host)"; format strings such as "Linux version %s" do not.
    const m = /^Linux version (\S+) \(/.exec(banner);
    if (m && !m[1].includes("%")) return { release: m[1], banner };
    from = at + 1;
  }
}
