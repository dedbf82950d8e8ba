// Tiny S-mode "kernels" for the Linux machine's tests: code words in a RISC-V Linux Image.
import { addiw, aluImm, jal, lui } from "../diff/encode.ts";

/** li for a signed 32-bit value: lui + addiw, or a single addi when it fits in 12 bits. */
export function liSigned(rd: number, value: number): number[] {
  if (value >= -2048 && value < 2048) return [aluImm("addi", rd, 0, value)];
  const hi = ((value + 0x800) >> 12) & 0xfffff;
  const lo = value - (((value + 0x800) >> 12) << 12);
  return [lui(rd, hi), addiw(rd, rd, lo)];
}

/** A RISC-V Linux Image (boot-image-header.rst): `j` over the 64-byte header, then `body`. */
export function kernelImage(body: number[]): Uint8Array {
  const bytes = new Uint8Array(64 + 4 * body.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, jal(0, 64), true); // code0: jump to the code after the header
  view.setBigUint64(8, 0x200000n, true); // text_offset
  view.setBigUint64(16, BigInt(bytes.length), true); // image_size
  view.setUint32(32, 2, true); // header version 0.2
  view.setBigUint64(48, 0x5643534952n, true); // "RISCV\0\0\0"
  view.setUint32(56, 0x05435352, true); // "RSC\x05"
  body.forEach((insn, i) => view.setUint32(64 + 4 * i, insn >>> 0, true));
  return bytes;
}
