// Test double for SbiHost and the ECALL register file, shared by the src/sbi tests. It records
// every request and keeps HSM states with the same transition table the real machine uses; its
// RAM is the common FakeGuestMemory (src/testing/fakes.ts).
import { FakeGuestMemory } from "../../testing/fakes.ts";
import { hsmTransition, type HsmEvent } from "../hsm.ts";
import { SbiDispatcher } from "../dispatcher.ts";
import { standardExtensions } from "../index.ts";
import {
  SBI_HSM_STATE_STARTED,
  SBI_HSM_STATE_STOPPED,
  SBI_SUCCESS,
  type HsmState,
  type PhysicalRange,
  type RemoteFence,
  type SbiCall,
  type SbiErrorCode,
  type SbiHost,
} from "../types.ts";

export const RAM_BASE = 0x8000_0000n;
export const RAM_SIZE = 0x1_0000; // 64 KiB is plenty for tests

export class FakeHost implements SbiHost {
  readonly hartCount: number;
  readonly ramRegions: readonly PhysicalRange[] = [{ base: RAM_BASE, size: BigInt(RAM_SIZE) }];
  mvendorid = 0n;
  marchid = 0n;
  mimpid = 0n;
  readonly memory = new FakeGuestMemory(RAM_SIZE, Number(RAM_BASE));
  readonly states: HsmState[];

  readonly timers: { hartId: number; value: bigint }[] = [];
  readonly ipis: number[][] = [];
  readonly ssip: boolean[];
  readonly fences: { targets: readonly number[]; fence: RemoteFence }[] = [];
  readonly starts: { hartId: number; startAddr: bigint; opaque: bigint }[] = [];
  readonly stops: number[] = [];
  readonly suspends: { hartId: number; type: number; resumeAddr: bigint; opaque: bigint }[] = [];
  readonly resets: { type: number; reason: number }[] = [];
  /** Each hart's registered steal-time record (SBI STA), undefined when none. */
  readonly stealShmem: (bigint | undefined)[];
  readonly output: number[] = [];
  input: number[] = [];
  /** Largest length ever passed to readGuest/consoleRead: proves nothing guest-sized was allocated. */
  largestRequest = 0;
  /** Bytes the console accepts per write (models a full console). */
  consoleCapacity = Infinity;
  /** When set, loadSupervisorUlong maps virtual = physical over RAM. */
  supportsVirtualLoads = true;
  /** Next result of hartStart/hartStop/hartSuspend. */
  nextHsmError: SbiErrorCode = SBI_SUCCESS;

  constructor(hartCount = 4) {
    this.hartCount = hartCount;
    this.states = Array.from({ length: hartCount }, (_, i) => (i === 0 ? SBI_HSM_STATE_STARTED : SBI_HSM_STATE_STOPPED));
    this.ssip = new Array<boolean>(hartCount).fill(false);
    this.stealShmem = new Array<bigint | undefined>(hartCount).fill(undefined);
  }

  /** Applies one HSM edge, as the machine would; throws on an edge the table lacks. */
  apply(hartId: number, event: HsmEvent): void {
    const next = hsmTransition(this.states[hartId], event);
    if (next === undefined) throw new Error(`no HSM edge ${event} from state ${this.states[hartId]}`);
    this.states[hartId] = next;
  }

  hartState(hartId: number): HsmState {
    return this.states[hartId];
  }
  setTimer(hartId: number, value: bigint): void {
    this.timers.push({ hartId, value });
  }
  sendIpi(targets: readonly number[]): void {
    this.ipis.push([...targets]);
    for (const t of targets) this.ssip[t] = true;
  }
  clearIpi(hartId: number): boolean {
    const was = this.ssip[hartId];
    this.ssip[hartId] = false;
    return was;
  }
  remoteFence(targets: readonly number[], fence: RemoteFence): void {
    this.fences.push({ targets: [...targets], fence });
  }
  hartStart(hartId: number, startAddr: bigint, opaque: bigint): SbiErrorCode {
    if (this.nextHsmError !== SBI_SUCCESS) return this.nextHsmError;
    this.apply(hartId, "start");
    this.starts.push({ hartId, startAddr, opaque });
    return SBI_SUCCESS;
  }
  hartStop(hartId: number): SbiErrorCode {
    if (this.nextHsmError !== SBI_SUCCESS) return this.nextHsmError;
    this.apply(hartId, "stop");
    this.stops.push(hartId);
    return SBI_SUCCESS;
  }
  hartSuspend(hartId: number, type: number, resumeAddr: bigint, opaque: bigint): SbiErrorCode {
    if (this.nextHsmError !== SBI_SUCCESS) return this.nextHsmError;
    this.apply(hartId, "suspend");
    this.suspends.push({ hartId, type, resumeAddr, opaque });
    return SBI_SUCCESS;
  }
  setStealTimeShmem(hartId: number, addr: bigint | undefined): void {
    this.stealShmem[hartId] = addr;
  }
  systemReset(type: number, reason: number): void {
    this.resets.push({ type, reason });
  }
  consoleWrite(bytes: Uint8Array): number {
    const n = Math.min(bytes.length, this.consoleCapacity);
    this.output.push(...bytes.subarray(0, n));
    return n;
  }
  consoleRead(max: number): Uint8Array {
    this.largestRequest = Math.max(this.largestRequest, max);
    const bytes = this.input.slice(0, max);
    this.input = this.input.slice(bytes.length);
    return Uint8Array.from(bytes);
  }
  /** Guest RAM's bytes (index 0 is RAM_BASE). */
  get ram(): Uint8Array {
    return this.memory.bytes;
  }
  /** A view of [paddr, paddr + length) when it lies entirely in RAM. */
  private range(paddr: bigint, length: number): Uint8Array | undefined {
    return this.memory.view(paddr >= 0n && paddr <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(paddr) : -1, length);
  }
  readGuest(paddr: bigint, length: number): Uint8Array | undefined {
    this.largestRequest = Math.max(this.largestRequest, length);
    return this.range(paddr, length)?.slice();
  }
  writeGuest(paddr: bigint, bytes: Uint8Array): boolean {
    const target = this.range(paddr, bytes.length);
    if (!target) return false;
    target.set(bytes);
    return true;
  }
  loadSupervisorUlong(_hartId: number, vaddr: bigint): bigint | undefined {
    if (!this.supportsVirtualLoads) return undefined;
    const bytes = this.range(vaddr, 8);
    if (!bytes) return undefined;
    return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  }
  /** Guest memory helper for tests. */
  poke(paddr: bigint, bytes: ArrayLike<number>): void {
    if (!this.writeGuest(paddr, Uint8Array.from(bytes))) throw new Error("poke outside RAM");
  }
}

/** A register file for handleCpuEcall. */
export class FakeRegisters {
  readonly regs = new Array<bigint>(32).fill(0n);
  x(i: number): bigint {
    return this.regs[i];
  }
  setX(i: number, value: bigint): void {
    if (i !== 0) this.regs[i] = BigInt.asUintN(64, value);
  }
}

/** A dispatcher over every standard extension and a fresh fake host. */
export function setup(hartCount = 4): { host: FakeHost; sbi: SbiDispatcher } {
  const host = new FakeHost(hartCount);
  return { host, sbi: new SbiDispatcher(standardExtensions(), host) };
}

/** Builds a call from hart 0 (by default) with unsigned 64-bit arguments. */
export function call(eid: number, fid: number, args: readonly (bigint | number)[] = [], hartId = 0): SbiCall {
  return { eid, fid, args: args.map((a) => BigInt.asUintN(64, BigInt(a))), hartId };
}
