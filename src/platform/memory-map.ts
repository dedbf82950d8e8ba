// The guest-physical memory map of Parley's "virt" platform. It is deliberately the layout of
// QEMU's riscv `virt` machine (hw/riscv/virt.c), so that OpenSBI's generic platform, U-Boot and
// Linux find every device where they already expect it, and so that DTBs and boot logs can be
// compared with QEMU's side by side. The device tree (device-tree.ts) is generated from these
// constants; nothing else should hard-code an address.

/** SiFive "test" finisher / syscon (compatible "sifive,test0"): poweroff and reboot. */
export const TEST_BASE = 0x0010_0000;
export const TEST_SIZE = 0x1000;

/** Google goldfish real-time clock. */
export const RTC_BASE = 0x0010_1000;
export const RTC_SIZE = 0x1000;

/**
 * Virtual Machine Generation ID ("microsoft,vmgenid"): the 16-byte ID at the start of its page.
 * QEMU's virt has no such node (its vmgenid goes through fw_cfg and ACPI); the page after the RTC
 * is free in QEMU's map as well, which keeps trees comparable.
 */
export const VMGENID_BASE = 0x0010_2000;
export const VMGENID_SIZE = 0x1000;

/** SiFive CLINT (ACLINT MSWI + MTIMER layout); only described to firmware that runs in M-mode. */
export const CLINT_BASE = 0x0200_0000;
export const CLINT_SIZE = 0x1_0000;

/**
 * Platform-Level Interrupt Controller. 0x60_0000 covers the context registers
 * (0x20_0000 + 0x1000 * context) of far more than the 2 * PLIC_MAX_HARTS contexts we use.
 */
export const PLIC_BASE = 0x0c00_0000;
export const PLIC_SIZE = 0x60_0000;
/** Each hart has two PLIC contexts: 2N is its M-mode external interrupt, 2N+1 its S-mode one. */
export const PLIC_CONTEXTS_PER_HART = 2;
export const PLIC_MAX_HARTS = 32;
/** Interrupt sources 1..95 (QEMU's VIRT_IRQCHIP_NUM_SOURCES is 96 counting the reserved source 0). */
export const PLIC_NUM_SOURCES = 95;

/** 16550A UART; registers are bytes at reg-shift 0. */
export const UART0_BASE = 0x1000_0000;
export const UART0_SIZE = 0x100;

/** virtio-mmio transports: slot i is at VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_STRIDE. */
export const VIRTIO_MMIO_BASE = 0x1000_1000;
export const VIRTIO_MMIO_STRIDE = 0x1000;
export const VIRTIO_MMIO_SIZE = 0x1000;
export const VIRTIO_MMIO_SLOTS = 8;

/** Start of RAM. */
export const RAM_BASE = 0x8000_0000;

/** PLIC interrupt source numbers (the `interrupts` property of each device node). */
export const UART0_IRQ = 10;
export const RTC_IRQ = 11;
/** Unused by QEMU's virt (its PCIe INTx are 32..35, the platform bus 64..95). */
export const VMGENID_IRQ = 12;
/** virtio-mmio slot i raises PLIC source VIRTIO_IRQ_BASE + i (sources 1..8). */
export const VIRTIO_IRQ_BASE = 1;

export function virtioMmioBase(slot: number): number {
  checkVirtioSlot(slot);
  return VIRTIO_MMIO_BASE + slot * VIRTIO_MMIO_STRIDE;
}

export function virtioIrq(slot: number): number {
  checkVirtioSlot(slot);
  return VIRTIO_IRQ_BASE + slot;
}

function checkVirtioSlot(slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= VIRTIO_MMIO_SLOTS) {
    throw new RangeError(`virtio-mmio slot ${slot} is outside 0..${VIRTIO_MMIO_SLOTS - 1}`);
  }
}
