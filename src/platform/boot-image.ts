// The RISC-V Linux kernel `Image` format and where a loader places kernel, initrd and device
// tree in guest RAM (Linux Documentation/arch/riscv/boot-image-header.rst and boot.rst).

/** "RISCV\0\0\0" at offset 48 and "RSC\x05" at offset 56 identify an Image (header version >= 0.2). */
const RISCV_IMAGE_MAGIC = 0x5643534952n;
const RISCV_IMAGE_MAGIC2 = 0x05435352;
const IMAGE_HEADER_SIZE = 64;
/** RV64 kernels must sit on a 2 MiB boundary (one PMD) so the linear map can use huge pages. */
const RV64_KERNEL_ALIGN = 2 << 20;
const FDT_ALIGN = 8;
/** The device tree gets the last 2 MiB of RAM to itself (room for firmware to grow it in place). */
export const FDT_REGION_SIZE = 2 << 20;

export class BootImageError extends Error {
  override name = "BootImageError";
}

export interface KernelImageHeader {
  textOffset: number;
  imageSize: number;
  flags: bigint;
  version: { major: number; minor: number };
  /** True when code0 holds "MZ", i.e. the Image doubles as an EFI PE binary (ignored here). */
  hasEfiStub: boolean;
}

/** Reads and checks the 64-byte Image header. */
export function parseKernelImage(bytes: Uint8Array): KernelImageHeader {
  if (bytes.length < IMAGE_HEADER_SIZE) throw new BootImageError(`kernel file is ${bytes.length} bytes, too small for a RISC-V Image`);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    throw new BootImageError("kernel is gzip-compressed: decompress it (e.g. `zcat vmlinuz > Image`) and pass the Image");
  }
  if (bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
    throw new BootImageError("kernel is an ELF file (vmlinux); pass the RISC-V Image (arch/riscv/boot/Image) instead");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getBigUint64(48, true);
  const magic2 = view.getUint32(56, true);
  if (magic !== RISCV_IMAGE_MAGIC || magic2 !== RISCV_IMAGE_MAGIC2) {
    throw new BootImageError("kernel has no RISC-V Image header (magic \"RISCV\" at offset 48 is missing)");
  }
  const textOffset = Number(view.getBigUint64(8, true));
  const imageSize = Number(view.getBigUint64(16, true));
  const version = view.getUint32(32, true);
  if (imageSize === 0 || imageSize < bytes.length - 4096) {
    // image_size covers text, data and bss; a smaller value than the file means a corrupt header.
    throw new BootImageError(`kernel header says image size ${imageSize} for a ${bytes.length}-byte file`);
  }
  return {
    textOffset,
    imageSize,
    flags: view.getBigUint64(24, true),
    version: { major: version >>> 16, minor: version & 0xffff },
    hasEfiStub: bytes[0] === 0x4d && bytes[1] === 0x5a,
  };
}

export interface BootLayout {
  kernel: number;
  kernelEnd: number;
  initrd?: { start: number; end: number };
  fdt: number;
}

/**
 * Places kernel, initrd and device tree in RAM: kernel at ramBase + text_offset (2 MiB aligned),
 * device tree in the last 2 MiB of RAM, initrd right below it. Throws when they do not fit.
 */
export function planBootLayout(opts: { ramBase: number; ramSize: number; kernel: KernelImageHeader; initrdSize?: number; fdtSize: number }): BootLayout {
  const { ramBase, ramSize, kernel } = opts;
  const kernelAddr = alignUp(ramBase + (kernel.textOffset || RV64_KERNEL_ALIGN), RV64_KERNEL_ALIGN);
  const kernelEnd = kernelAddr + kernel.imageSize;
  if (opts.fdtSize > FDT_REGION_SIZE) throw new BootImageError(`device tree of ${opts.fdtSize} bytes exceeds ${FDT_REGION_SIZE}`);
  const ramEnd = ramBase + ramSize;
  const fdt = alignDown(ramEnd - FDT_REGION_SIZE, RV64_KERNEL_ALIGN);
  let initrd: BootLayout["initrd"];
  if (opts.initrdSize !== undefined) {
    const start = alignDown(fdt - opts.initrdSize, 4096);
    initrd = { start, end: start + opts.initrdSize };
    if (start < kernelEnd + (16 << 20)) {
      // Leave the kernel room for its early allocations right after its image.
      throw new BootImageError(
        `not enough RAM: kernel (${mib(kernel.imageSize)}), initrd (${mib(opts.initrdSize)}) and device tree need more than ` +
          `${mib(ramSize)}; raise --memory`,
      );
    }
  } else if (fdt < kernelEnd) {
    throw new BootImageError(`not enough RAM for a ${mib(kernel.imageSize)} kernel in ${mib(ramSize)}; raise --memory`);
  }
  return { kernel: kernelAddr, kernelEnd, initrd, fdt: alignUp(fdt, FDT_ALIGN) };
}

function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}
function alignDown(value: number, align: number): number {
  return Math.floor(value / align) * align;
}
function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}
