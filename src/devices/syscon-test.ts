// The SiFive "test" finisher ("sifive,test0"/"sifive,test1") at TEST_BASE: one 32-bit register at
// offset 0 through which software ends the simulation. Bits 15:0 are a status code, bits 31:16 an
// exit code for FINISHER_FAIL. Linux reaches it through syscon-poweroff / syscon-reboot (regmap
// writes of the DT `value`), OpenSBI through its sifive_test reset driver. The codes are those of
// SiFive's test finisher as QEMU's hw/misc/sifive_test.c implements it; other values are ignored.
import type { MmioDevice } from "./mmio-device.ts";

export const FINISHER_FAIL = 0x3333;
export const FINISHER_PASS = 0x5555;
export const FINISHER_RESET = 0x7777;
const FINISHER_REGISTER = 0x0;

export type FinisherEvent = { kind: "poweroff"; code: number } | { kind: "reboot" };

/** Decodes a value written to the finisher register: a pure function, undefined for non-commands. */
export function decodeFinisher(value: number): FinisherEvent | undefined {
  const status = value & 0xffff;
  const code = (value >>> 16) & 0xffff;
  switch (status) {
    case FINISHER_PASS:
      return { kind: "poweroff", code: 0 };
    case FINISHER_FAIL:
      // A failure with code 0 would read as success to whoever looks at the exit code.
      return { kind: "poweroff", code: code === 0 ? 1 : code };
    case FINISHER_RESET:
      return { kind: "reboot" };
    default:
      return undefined;
  }
}

export class SysconTest implements MmioDevice {
  readonly name = "test";
  readonly counters = { writes: 0, ignored: 0, events: 0 };

  constructor(private readonly onEvent: (event: FinisherEvent) => void) {}

  /** For the exit ledger: the one register, as QEMU's sifive_test calls it. */
  registerName(offset: number): string | undefined {
    return offset >= FINISHER_REGISTER && offset < FINISHER_REGISTER + 4 ? "FINISHER" : undefined;
  }

  /**
   * Reads return 0: syscon regmap_update_bits() reads the register before writing it. Accesses
   * are 16 or 32 bits wide (QEMU accepts the same); anything else faults.
   */
  load(offset: number, size: number): number | bigint | undefined {
    if ((size !== 2 && size !== 4) || (offset & (size - 1)) !== 0) return undefined;
    return 0;
  }

  store(offset: number, size: number, value: number | bigint): boolean {
    if ((size !== 2 && size !== 4) || (offset & (size - 1)) !== 0) return false;
    this.counters.writes++;
    const event = offset === FINISHER_REGISTER ? decodeFinisher(Number(BigInt.asUintN(size * 8, BigInt(value)))) : undefined;
    if (event === undefined) {
      this.counters.ignored++;
      return true;
    }
    this.counters.events++;
    this.onEvent(event);
    return true;
  }
}
