// What every memory-mapped device model offers the bus: loads and stores at offsets from its
// base, and (for the ledger) the names of its registers. Devices and virtio transports implement
// it; the machine's bus (src/machine/bus.ts) routes the CPU's MMIO exits to them.
import type { AccessSize } from "../cpu/cpu.ts";

export type MmioAccess = "load" | "store";

export interface MmioDevice {
  readonly name: string;
  /** offset is relative to the device's base; undefined raises an access fault. */
  load(offset: number, size: AccessSize): number | bigint | undefined;
  store(offset: number, size: AccessSize, value: number | bigint): boolean;
  /**
   * The register at `offset` as the ledger names it ("THR", "claim[hart0.S]"), or undefined for
   * reserved space. Called only when statistics are collected, never per access. The direction
   * is given because some offsets hold two registers (16550 RBR/THR, PLIC claim/complete).
   */
  registerName?(offset: number, access: MmioAccess): string | undefined;
}

/** Names registers for the ledger; see MmioDevice.registerName. */
export type RegisterNamer = (offset: number, access: MmioAccess) => string | undefined;
