// The physical address map outside RAM: routes the CPU's MMIO exits to device models and
// counts them per device and per register offset (the "exits" of the paravirtualization ledger).
import type { AccessSize, PhysicalBus } from "../cpu/cpu.ts";
import type { MmioAccess, MmioDevice, RegisterNamer } from "../devices/mmio-device.ts";

export type { MmioAccess, MmioDevice, RegisterNamer };

/** The exits of one mapped device (or watched RAM range). */
export interface DeviceExits {
  readonly name: string;
  /** Guest physical base of the mapping. */
  readonly base: number;
  loads: number;
  stores: number;
  /**
   * offset * 2 + (store ? 1 : 0) -> accesses. A number key keeps the cost per exit at one Map
   * update; names are only made when the ledger is collected (registerName).
   */
  readonly byOffset: Map<number, number>;
  /** The register name for an offset: the device's own, or "+0x<offset>" where it has none. */
  registerName(offset: number, access: MmioAccess): string;
}

export interface ExitCounts {
  /** device name -> its exits, in mapping order. */
  byDevice: Map<string, DeviceExits>;
  /** Accesses that hit no device (they raise access faults in the guest). */
  unmapped: number;
}

interface Mapping {
  base: number;
  size: number;
  device: MmioDevice;
  exits: DeviceExits;
}

interface Watcher {
  lo: number;
  hi: number;
  store: (paddr: number, size: AccessSize, value: number | bigint) => boolean;
  exits: DeviceExits;
}

/** Decodes a DeviceExits.byOffset key. */
export function exitKey(key: number): { offset: number; access: MmioAccess } {
  return { offset: Math.floor(key / 2), access: key % 2 === 1 ? "store" : "load" };
}

function newDeviceExits(name: string, base: number, namer: RegisterNamer | undefined): DeviceExits {
  return {
    name,
    base,
    loads: 0,
    stores: 0,
    byOffset: new Map(),
    registerName: (offset, access) => namer?.(offset, access) ?? `+0x${offset.toString(16)}`,
  };
}

export class Bus implements PhysicalBus {
  private readonly mappings: Mapping[] = [];
  readonly exits: ExitCounts = { byDevice: new Map(), unmapped: 0 };
  /** Stores to watched RAM (HTIF tohost) arrive here too; handlers see guest physical addresses. */
  private readonly watchers: Watcher[] = [];

  /**
   * Maps `device` at [base, base + size). `registerName` overrides the device's own naming, for
   * device models that do not name their registers themselves.
   */
  map(base: number, size: number, device: MmioDevice, options: { registerName?: RegisterNamer } = {}): void {
    for (const m of this.mappings) {
      if (base < m.base + m.size && m.base < base + size) {
        throw new Error(`device ${device.name} at 0x${base.toString(16)} overlaps ${m.device.name} at 0x${m.base.toString(16)}`);
      }
    }
    // Counters are keyed by name: two devices of one name would merge into one ledger line.
    if (this.exits.byDevice.has(device.name)) throw new Error(`a device named ${device.name} is already mapped`);
    const namer = options.registerName ?? device.registerName?.bind(device);
    const exits = newDeviceExits(device.name, base, namer);
    this.mappings.push({ base, size, device, exits });
    this.exits.byDevice.set(device.name, exits);
  }

  /**
   * Stores to the RAM range [lo, hi) go to `store` instead of RAM (the core must be told too:
   * Cpu.watchStores). They are exits like MMIO ones and are counted under `name`.
   */
  watch(
    lo: number,
    hi: number,
    store: (paddr: number, size: AccessSize, value: number | bigint) => boolean,
    naming: { name: string; registerName?: RegisterNamer },
  ): void {
    if (this.exits.byDevice.has(naming.name)) throw new Error(`a device named ${naming.name} is already mapped`);
    const exits = newDeviceExits(naming.name, lo, naming.registerName);
    this.watchers.push({ lo, hi, store, exits });
    this.exits.byDevice.set(naming.name, exits);
  }

  private find(paddr: number): Mapping | undefined {
    for (const m of this.mappings) if (paddr >= m.base && paddr < m.base + m.size) return m;
    return undefined;
  }

  load(paddr: number, size: AccessSize): number | bigint | undefined {
    const m = this.find(paddr);
    if (!m || paddr + size > m.base + m.size) {
      this.exits.unmapped++;
      return undefined;
    }
    const offset = paddr - m.base;
    const exits = m.exits;
    exits.loads++;
    const key = offset * 2;
    exits.byOffset.set(key, (exits.byOffset.get(key) ?? 0) + 1);
    return m.device.load(offset, size);
  }

  store(paddr: number, size: AccessSize, value: number | bigint): boolean {
    for (const w of this.watchers) {
      if (paddr >= w.lo && paddr < w.hi) {
        w.exits.stores++;
        const key = (paddr - w.lo) * 2 + 1;
        w.exits.byOffset.set(key, (w.exits.byOffset.get(key) ?? 0) + 1);
        return w.store(paddr, size, value);
      }
    }
    const m = this.find(paddr);
    if (!m || paddr + size > m.base + m.size) {
      this.exits.unmapped++;
      return false;
    }
    const offset = paddr - m.base;
    const exits = m.exits;
    exits.stores++;
    const key = offset * 2 + 1;
    exits.byOffset.set(key, (exits.byOffset.get(key) ?? 0) + 1);
    return m.device.store(offset, size, value);
  }
}
