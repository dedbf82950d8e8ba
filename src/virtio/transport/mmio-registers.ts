// Names of the virtio-mmio registers (virtio spec 4.2.2) by offset, for the exit ledger. Kept
// apart from the transport: the bus is told to use it when the transport is mapped.
import { VirtioMmioRegister } from "../constants.ts";

const NAMES = new Map<number, string>(Object.entries(VirtioMmioRegister).map(([name, offset]) => [offset, name]));

/**
 * "QueueNotify", "InterruptACK", ...; device configuration space as "config+0x<offset>".
 * Undefined for reserved offsets. Registers are 32 bits wide: an access inside one (only
 * possible in error) is named after the register.
 */
export function virtioMmioRegisterName(offset: number): string | undefined {
  if (!Number.isInteger(offset) || offset < 0) return undefined;
  if (offset >= VirtioMmioRegister.Config) return `config+0x${(offset - VirtioMmioRegister.Config).toString(16)}`;
  return NAMES.get(offset & ~3);
}
