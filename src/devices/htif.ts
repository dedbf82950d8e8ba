// HTIF, the Berkeley host-target interface used by Spike and QEMU's spike machine: the program
// writes commands to its `tohost` doubleword and the host answers through `fromhost`.
// Only what bare-metal test programs use: console output, exit, and the write/exit syscalls.
import type { AccessSize } from "../cpu/cpu.ts";
import { stateInt, stateObject, type VersionedState } from "../platform/persist.ts";

/** tohost fields: device in bits 63:56, command in 55:48, payload in 47:0. */
const DEVICE_SYSCALL = 0;
const DEVICE_CONSOLE = 1;
const CONSOLE_WRITE = 1;
/** Syscall numbers of the RISC-V proxy kernel ABI (same as Linux's generic table). */
const SYS_WRITE = 64;
const SYS_EXIT = 93;
const MAX_SYSCALL_WRITE = 1 << 20;

export interface HtifMemory {
  readRam(paddr: number, length: number): Uint8Array;
  writeRam(paddr: number, bytes: Uint8Array): void;
  isRam(paddr: number, length: number): boolean;
}

/**
 * HTIF's state between stores: the low half of a tohost written in two halves, and the exit code
 * once the program asked to exit (null before). The command counter is a statistic, not state.
 */
export interface HtifState extends VersionedState {
  version: 1;
  pendingLow: number | null;
  exitCode: number | null;
}

const HTIF_STATE_VERSIONS = [1] as const;

export class Htif {
  private pendingLow: number | undefined;
  /** Exit code once the program has asked to exit. */
  exitCode: number | undefined;
  commands = 0;

  constructor(
    private readonly memory: HtifMemory,
    readonly tohost: number,
    readonly fromhost: number | undefined,
    private readonly output: (bytes: Uint8Array) => void,
    private readonly onExit: (code: number) => void,
  ) {}

  /** A store into tohost's doubleword. 32-bit programs may write it in two halves, low first. */
  store(paddr: number, size: AccessSize, value: number | bigint): boolean {
    const offset = paddr - this.tohost;
    if (size === 8 && offset === 0) {
      this.command(BigInt(value));
    } else if (size === 4 && offset === 0) {
      this.pendingLow = Number(value) >>> 0;
    } else if (size === 4 && offset === 4) {
      const low = BigInt(this.pendingLow ?? 0);
      this.pendingLow = undefined;
      this.command((BigInt(Number(value) >>> 0) << 32n) | low);
    }
    // Other widths are ignored: tohost is a doubleword register.
    return true;
  }

  saveState(): HtifState {
    return { version: 1, pendingLow: this.pendingLow ?? null, exitCode: this.exitCode ?? null };
  }

  /** Restores the halves and the exit code; an exit already taken is not taken again (onExit is not called). */
  restoreState(state: unknown): void {
    const s = stateObject(state, "htif", HTIF_STATE_VERSIONS);
    const pendingLow = s.pendingLow === null ? undefined : stateInt(s.pendingLow, "htif.pendingLow", 0, 0xffff_ffff);
    const exitCode = s.exitCode === null ? undefined : stateInt(s.exitCode, "htif.exitCode", 0, Number.MAX_SAFE_INTEGER);
    this.pendingLow = pendingLow;
    this.exitCode = exitCode;
  }

  private command(value: bigint): void {
    if (value === 0n) return;
    this.commands++;
    const device = Number(value >> 56n);
    const command = Number((value >> 48n) & 0xffn);
    const payload = value & 0xffff_ffff_ffffn;
    if (device === DEVICE_CONSOLE && command === CONSOLE_WRITE) {
      this.output(new Uint8Array([Number(payload & 0xffn)]));
      this.reply((BigInt(DEVICE_CONSOLE) << 56n) | (BigInt(CONSOLE_WRITE) << 48n));
      return;
    }
    if (device === DEVICE_SYSCALL && command === 0) {
      if ((payload & 1n) === 1n) {
        this.exit(Number(payload >> 1n));
        return;
      }
      this.syscall(Number(payload));
    }
  }

  private syscall(magicMem: number): void {
    if (!this.memory.isRam(magicMem, 64)) return;
    const words = new DataView(this.memory.readRam(magicMem, 64).buffer);
    const number = Number(words.getBigUint64(0, true));
    const arg = (i: number) => words.getBigUint64(8 + i * 8, true);
    let result = -38n; // -ENOSYS
    if (number === SYS_WRITE) {
      const length = Math.min(Number(arg(2) & 0xffff_ffffn), MAX_SYSCALL_WRITE);
      const buffer = Number(arg(1));
      if (this.memory.isRam(buffer, length)) {
        this.output(this.memory.readRam(buffer, length));
        result = BigInt(length);
      } else result = -14n; // -EFAULT
    } else if (number === SYS_EXIT) {
      this.exit(Number(arg(0) & 0xffn));
      return;
    }
    const reply = new Uint8Array(8);
    new DataView(reply.buffer).setBigInt64(0, result, true);
    this.memory.writeRam(magicMem, reply);
    this.reply(1n);
  }

  private reply(value: bigint): void {
    if (this.fromhost === undefined) return;
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, value, true);
    this.memory.writeRam(this.fromhost, bytes);
  }

  private exit(code: number): void {
    this.exitCode = code;
    this.onExit(code);
  }
}
