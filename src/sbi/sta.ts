// Steal-time Accounting extension (EID 0x535441 "STA"), SBI spec v2.0 chapter 16.
//
// A hart tells the SBI implementation where its 64-byte steal-time record lives; the host then
// keeps the record's `steal` field at the time the hart was runnable but kept from running, in
// nanoseconds, and its `preempted` flag. Linux (CONFIG_PARAVIRT, arch/riscv/kernel/paravirt.c)
// registers one record per CPU and reads it as its steal clock.
//
// Two halves, both pure:
// - the call: decodeStealTimeShmem() turns (shmem_phys_lo, shmem_phys_hi, flags) into a decision
//   or the spec's error, and the handler zeroes the record before telling the host (§16.1);
// - the record: writeStealRecord()/readStealRecord() over a StealRecordMemory, and
//   StealTimeRecorder, the per-hart state a hart's runner keeps between slices.
import { sharedMemoryInRam, ULONG_MAX } from "./params.ts";
import { hex64, stateObject, stateU64, type VersionedState } from "../platform/persist.ts";
import {
  SBI_ERR_FAILED,
  SBI_ERR_INVALID_ADDRESS,
  SBI_ERR_INVALID_PARAM,
  sbiFail,
  sbiOk,
  type PhysicalRange,
  type SbiCall,
  type SbiErrorCode,
  type SbiExtension,
  type SbiFunction,
  type SbiHost,
  type SbiResult,
} from "./types.ts";

export const SBI_EXT_STA = 0x53_5441;
export const SBI_EXT_STA_STEAL_TIME_SET_SHMEM = 0;

// ---- the record (§16.1, table "STA Shared Memory Structure") ----------------------------------
/** Size and required alignment of the record. */
export const STA_SHMEM_SIZE = 64;
/** Byte offsets of the record's fields; everything is little-endian, the rest is padding. */
export const STA_SEQUENCE = 0; // u32
export const STA_FLAGS = 4; // u32, always zero
export const STA_STEAL = 8; // u64, nanoseconds
export const STA_PREEMPTED = 16; // u8

/**
 * The guest memory a record is written through, by guest physical address. The record's writer
 * runs on one thread while the guest may read the record on others (harts on threads of their
 * own), so each store must become visible to other threads in program order, after every store
 * before it: sequentially consistent stores (Atomics) give exactly that. Addresses passed in are
 * inside RAM and aligned to the access.
 */
export interface StealRecordMemory {
  /** The little-endian u32 at `paddr`. */
  load32(paddr: number): number;
  /** Stores a little-endian u32 at `paddr`, ordered after every earlier store. */
  store32(paddr: number, value: number): void;
  /** Stores a byte at `paddr`, ordered after every earlier store. */
  store8(paddr: number, value: number): void;
}

/** Whether this host's typed arrays are little-endian, as guest memory always is. */
const HOST_LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

function byteSwap32(value: number): number {
  return (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24)) >>> 0;
}

/**
 * A StealRecordMemory over guest RAM as the host sees it (`ram` starts at guest physical
 * `ramBase`; a wasm memory's buffer, shared between threads or not). Stores are Atomics, so a
 * hart reading the record from another thread (plain loads ordered by FENCE, which the shared
 * engine performs as a full barrier) never sees them out of order.
 */
export function ramRecordMemory(ram: Uint8Array, ramBase: number): StealRecordMemory {
  if (ram.byteOffset % 4 !== 0) throw new RangeError("guest RAM must start 4-byte aligned in its buffer");
  const words = new Int32Array(ram.buffer, ram.byteOffset, ram.byteLength >>> 2);
  const bytes = new Uint8Array(ram.buffer, ram.byteOffset, ram.byteLength);
  const offset = (paddr: number, size: number): number => {
    const off = paddr - ramBase;
    if (!Number.isInteger(off) || off < 0 || off + size > ram.byteLength || off % size !== 0) {
      throw new RangeError(`steal-time record access at 0x${paddr.toString(16)} is not aligned RAM`);
    }
    return off;
  };
  const toLe = (value: number) => (HOST_LITTLE_ENDIAN ? value >>> 0 : byteSwap32(value >>> 0));
  return {
    load32: (paddr) => toLe(Atomics.load(words, offset(paddr, 4) >>> 2)),
    store32: (paddr, value) => void Atomics.store(words, offset(paddr, 4) >>> 2, toLe(value) | 0),
    store8: (paddr, value) => void Atomics.store(bytes, offset(paddr, 1), value & 0xff),
  };
}

/** A consistent-or-not snapshot of a record's fields (one pass, no retry). */
export interface StealRecord {
  sequence: number;
  flags: number;
  steal: bigint;
  preempted: number;
}

/** Reads the record at `paddr` once, field by field (the host's view; a guest follows §16.1's retry rule). */
export function readStealRecord(memory: StealRecordMemory, paddr: number): StealRecord {
  const lo = BigInt(memory.load32(paddr + STA_STEAL));
  const hi = BigInt(memory.load32(paddr + STA_STEAL + 4));
  return {
    sequence: memory.load32(paddr + STA_SEQUENCE),
    flags: memory.load32(paddr + STA_FLAGS),
    steal: (hi << 32n) | lo,
    preempted: memory.load32(paddr + STA_PREEMPTED) & 0xff,
  };
}

/**
 * Publishes `stealNs` and `preempted` in the record at `paddr` with §16.1's protocol: sequence
 * goes to an odd value, then steal (two 32-bit halves, low first) and preempted are written,
 * then sequence goes to the next, even, value -- each store ordered after the one before, so a
 * reader that sees an even sequence twice, unchanged, around its read of steal has a consistent
 * value (the same shape as KVM's record update, with the ordering made explicit for threads).
 * A sequence a misbehaving guest left odd still ends even. All arithmetic is modulo 2^32 / 2^64.
 */
export function writeStealRecord(memory: StealRecordMemory, paddr: number, stealNs: bigint, preempted: boolean): void {
  const before = memory.load32(paddr + STA_SEQUENCE);
  const updating = ((before + 1) | 1) >>> 0; // odd: an update is in progress
  const steal = BigInt.asUintN(64, stealNs);
  memory.store32(paddr + STA_SEQUENCE, updating);
  memory.store32(paddr + STA_STEAL, Number(steal & 0xffff_ffffn));
  memory.store32(paddr + STA_STEAL + 4, Number(steal >> 32n));
  memory.store8(paddr + STA_PREEMPTED, preempted ? 1 : 0);
  memory.store32(paddr + STA_SEQUENCE, (updating + 1) >>> 0); // even: consistent again
}

/**
 * One hart's steal-time reporting between slices. The runner passes the hart's steal time so far
 * (a running total since the machine started, from whatever clock it keeps) before each slice;
 * the record gains what was stolen since the previous update, so it counts from its registration
 * (the call zeroed it) and a record registered again, or moved, starts over from zero -- as KVM
 * keeps its last_steal. Time stolen while no record was registered is never reported.
 */
/**
 * A recorder's state: the hart's steal total (ns) at its last update. That total is the runner's
 * own running count (VirtMachine's per-hart stealNs), not a host time, so restore it together with
 * that count: a count restarting from zero would report no steal until it passed the saved value.
 * Which record is registered (the hart's shmem address) is the machine's state, not the recorder's.
 */
export interface StealTimeRecorderState extends VersionedState {
  version: 1;
  /** hex64 */
  lastStealNs: string;
}

const STEAL_RECORDER_STATE_VERSIONS = [1] as const;

export class StealTimeRecorder {
  private lastNs = 0n;

  saveState(): StealTimeRecorderState {
    return { version: 1, lastStealNs: hex64(this.lastNs) };
  }

  /** `where` names the recorder in errors ("hart[2].stealTime"). */
  restoreState(state: unknown, where = "stealTime"): void {
    const s = stateObject(state, where, STEAL_RECORDER_STATE_VERSIONS);
    this.lastNs = stateU64(s.lastStealNs, `${where}.lastStealNs`);
  }

  /** The steal total at the last update (for tests and the ledger). */
  get lastStealNs(): bigint {
    return this.lastNs;
  }

  /**
   * Updates the record at `paddr` (undefined: none registered) for a hart about to run (`preempted`
   * false, as §16.1 requires before the hart runs again) or one just descheduled (true). Returns
   * whether the record was written.
   */
  update(memory: StealRecordMemory, paddr: number | undefined, stealNs: bigint, preempted: boolean): boolean {
    const delta = stealNs > this.lastNs ? stealNs - this.lastNs : 0n;
    if (stealNs > this.lastNs) this.lastNs = stealNs;
    if (paddr === undefined) return false;
    writeStealRecord(memory, paddr, readStealRecord(memory, paddr).steal + delta, preempted);
    return true;
  }
}

// ---- the call (§16.1 sbi_steal_time_set_shmem) -------------------------------------------------

/** What a set_shmem call asks for, after the spec's checks. */
export type StealTimeShmemRequest = { kind: "disable" } | { kind: "enable"; addr: bigint } | { kind: "error"; error: SbiErrorCode };

/**
 * Decodes (shmem_phys_lo, shmem_phys_hi, flags) as §16.1 defines them, in the order KVM checks
 * them: flags are reserved and must be zero (whole register) -> SBI_ERR_INVALID_PARAM; lo and hi
 * both all-ones -> disable; lo not 64-byte aligned -> SBI_ERR_INVALID_PARAM; the 64 bytes not
 * entirely writable RAM (§3.2; on RV64 any non-zero hi is above the physical address space) ->
 * SBI_ERR_INVALID_ADDRESS.
 */
export function decodeStealTimeShmem(lo: bigint, hi: bigint, flags: bigint, ramRegions: readonly PhysicalRange[]): StealTimeShmemRequest {
  if (flags !== 0n) return { kind: "error", error: SBI_ERR_INVALID_PARAM };
  if (lo === ULONG_MAX && hi === ULONG_MAX) return { kind: "disable" };
  if (lo % BigInt(STA_SHMEM_SIZE) !== 0n) return { kind: "error", error: SBI_ERR_INVALID_PARAM };
  if (!sharedMemoryInRam(ramRegions, BigInt(STA_SHMEM_SIZE), lo, hi)) return { kind: "error", error: SBI_ERR_INVALID_ADDRESS };
  return { kind: "enable", addr: lo };
}

/**
 * §16.1: on success every byte of the record is zero before the call returns (sequence even,
 * steal 0, not preempted), and the host reports for the calling hart from then on; disabling
 * stops the reports. A record the host cannot write after all is the spec's SBI_ERR_FAILED.
 */
function setShmem(call: SbiCall, host: SbiHost): SbiResult {
  const request = decodeStealTimeShmem(call.args[0], call.args[1], call.args[2], host.ramRegions);
  switch (request.kind) {
    case "error":
      return sbiFail(request.error);
    case "disable":
      host.setStealTimeShmem(call.hartId, undefined);
      return sbiOk(0n);
    case "enable":
      if (!host.writeGuest(request.addr, new Uint8Array(STA_SHMEM_SIZE))) return sbiFail(SBI_ERR_FAILED);
      host.setStealTimeShmem(call.hartId, request.addr);
      return sbiOk(0n);
  }
}

const functions = new Map<number, SbiFunction>([[SBI_EXT_STA_STEAL_TIME_SET_SHMEM, { name: "steal_time_set_shmem", handler: setShmem }]]);

export const staExtension: SbiExtension = { eid: SBI_EXT_STA, name: "STA", functions };
