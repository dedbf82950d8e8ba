// The physical address map outside RAM: routes the CPU's MMIO exits to device models and
// counts them per device and per register offset (the "exits" of the paravirtualization ledger).
import type { AccessSize, PhysicalBus } from "../cpu/cpu.ts";

export interface MmioDevice {
  readonly name: string;
  /** offset is relative to the device's base; undefined raises an access fault. */
  load(offset: number, size: AccessSize): number | bigint | undefined;
  store(offset: number, size: AccessSize, value: number | bigint): boolean;
}

interface Mapping {
  base: number;
  size: number;
  device: MmioDevice;
}

export interface ExitCounts {
  /** device name -> number of loads and stores that left the CPU for it */
  byDevice: Map<string, { loads: number; stores: number }>;
  /** "device+0xoffset" -> accesses */
  byRegister: Map<string, number>;
  unmapped: number;
}

export class Bus implements PhysicalBus {
  private readonly mappings: Mapping[] = [];
  readonly exits: ExitCounts = { byDevice: new Map(), byRegister: new Map(), unmapped: 0 };
  /** Stores to watched RAM (HTIF tohost) arrive here too; handlers see guest physical addresses. */
  private readonly watchers: { lo: number; hi: number; store: (paddr: number, size: AccessSize, value: number | bigint) => boolean }[] = [];

  map(base: number, size: number, device: MmioDevice): void {
    for (const m of this.mappings) {
      if (base < m.base + m.size && m.base < base + size) {
        throw new Error(`device ${device.name} at 0x${base.toString(16)} overlaps ${m.device.name} at 0x${m.base.toString(16)}`);
      }
    }
    this.mappings.push({ base, size, device });
    this.exits.byDevice.set(device.name, { loads: 0, stores: 0 });
  }

  watch(lo: number, hi: number, store: (paddr: number, size: AccessSize, value: number | bigint) => boolean): void {
    this.watchers.push({ lo, hi, store });
  }

  private find(paddr: number): Mapping | undefined {
    for (const m of this.mappings) if (paddr >= m.base && paddr < m.base + m.size) return m;
    return undefined;
  }

  private count(m: Mapping, offset: number, isStore: boolean): void {
    const perDevice = this.exits.byDevice.get(m.device.name)!;
    if (isStore) perDevice.stores++;
    else perDevice.loads++;
    const key = `${m.device.name}+0x${offset.toString(16)}`;
    this.exits.byRegister.set(key, (this.exits.byRegister.get(key) ?? 0) + 1);
  }

  load(paddr: number, size: AccessSize): number | bigint | undefined {
    const m = this.find(paddr);
    if (!m || paddr + size > m.base + m.size) {
      this.exits.unmapped++;
      return undefined;
    }
    this.count(m, paddr - m.base, false);
    return m.device.load(paddr - m.base, size);
  }

  store(paddr: number, size: AccessSize, value: number | bigint): boolean {
    for (const w of this.watchers) if (paddr >= w.lo && paddr < w.hi) return w.store(paddr, size, value);
    const m = this.find(paddr);
    if (!m || paddr + size > m.base + m.size) {
      this.exits.unmapped++;
      return false;
    }
    this.count(m, paddr - m.base, true);
    return m.device.store(paddr - m.base, size, value);
  }
}
