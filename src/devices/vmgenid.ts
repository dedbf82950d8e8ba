// Virtual Machine Generation ID ("microsoft,vmgenid"): a 128-bit identifier that changes whenever
// the machine is cloned or restored from a snapshot, so the guest can tell that its memory may
// now be running in more than one place. Linux's drivers/virt/vmgenid.c (CONFIG_VMGENID) binds to
// the device-tree node (Documentation/devicetree/bindings/rng/microsoft,vmgenid.yaml: compatible,
// a `reg` holding the 16-byte ID, one `interrupts`), copies the ID at probe
// (add_device_randomness), and on each interrupt copies it again; when it differs from the last
// one it calls add_vmfork_randomness(), which reseeds the kernel's RNG at once (so the
// /dev/urandom streams of two clones diverge) and runs the vmfork notifiers (WireGuard drops its
// session keys). The DT-capable driver (Linux 6.10 on) sends no uevent: the "NEW_VMGENID=1"
// uevent of its first version was removed before DT support came.
//
// Where the 16 bytes live: an MMIO page served by this device rather than reserved RAM. The DT
// path of the driver maps the region with devm_platform_get_and_ioremap_resource() (the ACPI path
// uses devm_memremap(MEMREMAP_WB) on an address from the ACPI table) and then reads it with a
// plain memcpy() of 16 bytes. ioremap needs a region that is not System RAM, which an MMIO page
// is; our MMU sends every access to a non-RAM physical address to the bus whatever the page's
// attributes, so the memcpy's loads (byte loads, or doubleword loads when aligned, per
// arch/riscv/lib/memcpy.S) reach load() below. Keeping the ID out of guest RAM also means the
// host changes it without touching guest memory (no decoded-code invalidation, no race with a
// hart's thread), and the guest cannot overwrite it: writes are refused (access fault).
//
// The interrupt is edge-like: the driver's handler acknowledges nothing on the device, so a
// level held high would interrupt forever. regenerate() raises the line and drops it again; the
// PLIC's gateway has latched a pending request by then (plic.ts: a request cannot be retracted),
// which the guest claims once.
import type { MmioDevice } from "./mmio-device.ts";
import { bytesToHex, stateBytes, stateObject, type VersionedState } from "../platform/persist.ts";

/** Size of the generation ID in bytes (VMGENID_SIZE in the driver). */
export const VMGENID_SIZE = 16;

export interface VmGenIdCounters {
  /** Guest loads of the ID (each access, whatever its width). */
  reads: number;
  /** Accesses outside the 16 bytes, of a width the device does not serve, or stores. */
  refused: number;
  /** New IDs taken by regenerate(). */
  regenerations: number;
}

export interface VmGenIdState extends VersionedState {
  version: 1;
  /** The current generation ID, 16 bytes as hex. */
  generationId: string;
}

const STATE_VERSIONS = [1] as const;

export interface VmGenIdOptions {
  /** Fills the array with unpredictable bytes (e.g. globalThis.crypto.getRandomValues). */
  entropy: (bytes: Uint8Array) => void;
  /** The interrupt output (the PLIC source's level). */
  irq: (asserted: boolean) => void;
}

export class VmGenId implements MmioDevice {
  readonly name = "vmgenid";
  readonly counters: VmGenIdCounters = { reads: 0, refused: 0, regenerations: 0 };
  private id: Uint8Array;
  private readonly entropy: (bytes: Uint8Array) => void;
  private readonly irq: (asserted: boolean) => void;

  constructor(options: VmGenIdOptions) {
    this.entropy = options.entropy;
    this.irq = options.irq;
    this.id = this.freshId();
  }

  /** A copy of the current generation ID. */
  get generationId(): Uint8Array {
    return this.id.slice();
  }

  /**
   * Takes a new random ID and tells the guest (interrupt pulse). For a machine that was cloned or
   * restored from a snapshot: call it once the machine is about to run as the new copy.
   */
  regenerate(): void {
    let next = this.freshId();
    // An entropy source that repeats itself would make the guest ignore the change (the driver
    // compares with the last ID); a differing ID is the whole point, so insist on one.
    for (let tries = 0; sameBytes(next, this.id) && tries < 3; tries++) next = this.freshId();
    if (sameBytes(next, this.id)) throw new Error("vmgenid: the entropy source keeps returning the same generation ID");
    this.id = next;
    this.counters.regenerations++;
    this.irq(true);
    this.irq(false);
  }

  private freshId(): Uint8Array {
    const bytes = new Uint8Array(VMGENID_SIZE);
    this.entropy(bytes);
    return bytes;
  }

  registerName(offset: number): string | undefined {
    return offset >= 0 && offset < VMGENID_SIZE ? "GENERATION_ID" : undefined;
  }

  /** Naturally aligned loads of 1, 2, 4 or 8 bytes within the ID, little-endian; others fault. */
  load(offset: number, size: number): number | bigint | undefined {
    if (!(size === 1 || size === 2 || size === 4 || size === 8) || offset % size !== 0 || offset < 0 || offset + size > VMGENID_SIZE) {
      this.counters.refused++;
      return undefined;
    }
    this.counters.reads++;
    let value = 0n;
    for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.id[offset + i]);
    return size === 8 ? value : Number(value);
  }

  /** The ID is read-only: stores fault. */
  store(): boolean {
    this.counters.refused++;
    return false;
  }

  saveState(): VmGenIdState {
    return { version: 1, generationId: bytesToHex(this.id) };
  }

  /** Keeps the saved ID: whoever restores decides whether the machine is a new copy (regenerate()). */
  restoreState(state: unknown): void {
    const record = stateObject(state, "vmgenid", STATE_VERSIONS);
    const id = stateBytes(record.generationId, "vmgenid.generationId", VMGENID_SIZE);
    this.id = id;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
