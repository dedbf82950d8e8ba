// ACLINT-compatible core-local interruptor: MSWI (msip) and MTIMER (mtime, mtimecmp), at the
// layout of SiFive's CLINT that QEMU's virt and spike machines also use
// (RISC-V ACLINT spec, sections 2 and 3).
import type { MmioDevice } from "./mmio-device.ts";
import { MIP_MSIP, MIP_MTIP } from "../cpu/interrupts.ts";
import { hex64, stateArray, stateInt, stateObject, stateU64, type VersionedState } from "../platform/persist.ts";

export const CLINT_BASE = 0x0200_0000;
export const CLINT_SIZE = 0x1_0000;
const MSIP_OFFSET = 0x0000; // 4 bytes per hart
const MTIMECMP_OFFSET = 0x4000; // 8 bytes per hart
const MTIME_OFFSET = 0xbff8;

export interface InterruptTarget {
  setPendingInterrupt(mask: number, asserted: boolean): void;
}

/**
 * Per hart, msip and mtimecmp. mtimecmp is a guest-time value (timebase ticks, the clock mtime
 * reads), so a timer fires at the same guest time after a restore. mtime itself is the machine's
 * guest clock, which the machine restores, not the CLINT.
 */
export interface ClintState extends VersionedState {
  version: 1;
  msip: number[];
  /** "0x…" hex64 per hart. */
  mtimecmp: string[];
}

const CLINT_STATE_VERSIONS = [1] as const;

export class Clint implements MmioDevice {
  readonly name = "clint";
  private readonly msip: number[];
  private readonly mtimecmp: bigint[];

  constructor(
    private readonly harts: InterruptTarget[],
    private readonly now: () => number,
  ) {
    this.msip = harts.map(() => 0);
    // Reset value of mtimecmp is unspecified; all ones keeps MTIP clear until software programs it.
    this.mtimecmp = harts.map(() => 0xffff_ffff_ffff_ffffn);
  }

  /** Re-evaluates MTIP for every hart against the current time; call before running a hart. */
  update(): void {
    const time = BigInt(this.now());
    this.harts.forEach((hart, i) => hart.setPendingInterrupt(MIP_MTIP, time >= this.mtimecmp[i]));
  }

  /** The earliest mtimecmp in the future, in ticks, or undefined when no timer is armed. */
  nextDeadline(): number | undefined {
    let best: bigint | undefined;
    for (const cmp of this.mtimecmp) if (cmp !== 0xffff_ffff_ffff_ffffn && (best === undefined || cmp < best)) best = cmp;
    return best === undefined ? undefined : Number(best);
  }

  /** For the exit ledger: msip[hart], mtimecmp[hart] and mtime; reserved space is unnamed. */
  registerName(offset: number): string | undefined {
    if (offset >= MTIME_OFFSET && offset < MTIME_OFFSET + 8) return "mtime";
    if (offset >= MTIMECMP_OFFSET && offset < MTIMECMP_OFFSET + 8 * this.harts.length) return `mtimecmp[${(offset - MTIMECMP_OFFSET) >> 3}]`;
    if (offset >= MSIP_OFFSET && offset < MSIP_OFFSET + 4 * this.harts.length) return `msip[${offset >> 2}]`;
    return undefined;
  }

  load(offset: number, size: number): number | bigint | undefined {
    if (offset >= MTIME_OFFSET && offset + size <= MTIME_OFFSET + 8) {
      return sliceValue(BigInt(this.now()), offset - MTIME_OFFSET, size);
    }
    if (offset >= MTIMECMP_OFFSET && offset < MTIMECMP_OFFSET + 8 * this.harts.length) {
      const hart = (offset - MTIMECMP_OFFSET) >> 3;
      if (((offset & 7) + size) > 8) return undefined;
      return sliceValue(this.mtimecmp[hart], offset & 7, size);
    }
    if (offset >= MSIP_OFFSET && offset < MSIP_OFFSET + 4 * this.harts.length) {
      if (size !== 4 || (offset & 3) !== 0) return undefined;
      return this.msip[offset >> 2];
    }
    return 0; // reserved space reads as zero
  }

  store(offset: number, size: number, value: number | bigint): boolean {
    if (offset >= MTIMECMP_OFFSET && offset < MTIMECMP_OFFSET + 8 * this.harts.length) {
      const hart = (offset - MTIMECMP_OFFSET) >> 3;
      const byte = offset & 7;
      if (byte + size > 8) return false;
      this.mtimecmp[hart] = mergeValue(this.mtimecmp[hart], byte, size, BigInt(value));
      this.harts[hart].setPendingInterrupt(MIP_MTIP, BigInt(this.now()) >= this.mtimecmp[hart]);
      return true;
    }
    if (offset >= MSIP_OFFSET && offset < MSIP_OFFSET + 4 * this.harts.length) {
      if (size !== 4 || (offset & 3) !== 0) return false;
      const hart = offset >> 2;
      this.msip[hart] = Number(value) & 1; // only bit 0 is writable
      this.harts[hart].setPendingInterrupt(MIP_MSIP, this.msip[hart] !== 0);
      return true;
    }
    // mtime is read-only here: the machine's clock is the host's.
    return true;
  }

  saveState(): ClintState {
    return { version: 1, msip: [...this.msip], mtimecmp: this.mtimecmp.map(hex64) };
  }

  /**
   * Checks everything, applies it, then drives each hart's MSIP and MTIP to match (MTIP against
   * the current guest time: restore the machine's clock first).
   */
  restoreState(state: unknown): void {
    const s = stateObject(state, "clint", CLINT_STATE_VERSIONS);
    const harts = this.harts.length;
    const msip = stateArray(s.msip, "clint.msip", harts).map((v, i) => stateInt(v, `clint.msip[${i}]`, 0, 1));
    const mtimecmp = stateArray(s.mtimecmp, "clint.mtimecmp", harts).map((v, i) => stateU64(v, `clint.mtimecmp[${i}]`));
    msip.forEach((v, i) => (this.msip[i] = v));
    mtimecmp.forEach((v, i) => (this.mtimecmp[i] = v));
    this.harts.forEach((hart, i) => hart.setPendingInterrupt(MIP_MSIP, this.msip[i] !== 0));
    this.update();
  }
}

function sliceValue(value: bigint, byteOffset: number, size: number): number | bigint {
  const v = (value >> BigInt(byteOffset * 8)) & ((1n << BigInt(size * 8)) - 1n);
  return size === 8 ? v : Number(v);
}

function mergeValue(old: bigint, byteOffset: number, size: number, value: bigint): bigint {
  const shift = BigInt(byteOffset * 8);
  const mask = ((1n << BigInt(size * 8)) - 1n) << shift;
  return (old & ~mask) | ((value << shift) & mask);
}
