// Google goldfish real-time clock ("google,goldfish-rtc"), the RTC of QEMU's riscv virt machine.
// Register semantics follow the driver that defines the device's contract in practice, Linux's
// drivers/rtc/rtc-goldfish.c, and the Android emulator's goldfish documentation
// (GOLDFISH-VIRTUAL-HARDWARE.TXT, "Goldfish timer/RTC"):
//   time is a 64-bit count of nanoseconds since the Unix epoch, read low half first (the read
//   latches the high half); the alarm compares against the same clock and, once it passes,
//   raises the interrupt until the guest writes CLEAR_INTERRUPT.
// The clock is the host's wall clock (injected `now()`), plus an offset the guest may set.
import type { MmioDevice } from "./mmio-device.ts";
import { hex64, stateBool, stateInt, stateObject, stateU64, type VersionedState } from "../platform/persist.ts";

export const TIMER_TIME_LOW = 0x00; // R: current time, low 32 bits; latches TIME_HIGH. W: set low half.
export const TIMER_TIME_HIGH = 0x04; // R: high 32 bits latched by the last TIME_LOW read. W: set high half.
export const TIMER_ALARM_LOW = 0x08; // W: alarm low 32 bits, and arm the alarm. R: alarm low half.
export const TIMER_ALARM_HIGH = 0x0c; // W: alarm high 32 bits (does not arm). R: alarm high half.
export const TIMER_IRQ_ENABLED = 0x10; // RW: bit 0 gates the interrupt line
export const TIMER_CLEAR_ALARM = 0x14; // W: disarm a pending alarm
export const TIMER_ALARM_STATUS = 0x18; // R: 1 while an alarm is armed and has not fired
export const TIMER_CLEAR_INTERRUPT = 0x1c; // W: acknowledge (lower) the interrupt

const U64 = (1n << 64n) - 1n;
const LOW32 = 0xffff_ffffn;

type RegisterName = "TIME_LOW" | "TIME_HIGH" | "ALARM_LOW" | "ALARM_HIGH" | "IRQ_ENABLED" | "CLEAR_ALARM" | "ALARM_STATUS" | "CLEAR_INTERRUPT";
const REGISTER_NAMES: Record<number, RegisterName> = {
  [TIMER_TIME_LOW]: "TIME_LOW",
  [TIMER_TIME_HIGH]: "TIME_HIGH",
  [TIMER_ALARM_LOW]: "ALARM_LOW",
  [TIMER_ALARM_HIGH]: "ALARM_HIGH",
  [TIMER_IRQ_ENABLED]: "IRQ_ENABLED",
  [TIMER_CLEAR_ALARM]: "CLEAR_ALARM",
  [TIMER_ALARM_STATUS]: "ALARM_STATUS",
  [TIMER_CLEAR_INTERRUPT]: "CLEAR_INTERRUPT",
};

export interface GoldfishRtcCounters {
  reads: Record<string, number>;
  writes: Record<string, number>;
  alarmsFired: number;
  /** Rising edges of the interrupt line. */
  interrupts: number;
}

/** Replaces bits [32*half, 32*half+31] of a 64-bit value. */
function deposit32(value: bigint, half: 0 | 1, word: number): bigint {
  const shift = BigInt(32 * half);
  return (value & ~(LOW32 << shift) & U64) | (BigInt(word >>> 0) << shift);
}

/**
 * The RTC's state. The clock itself is not saved: a restored machine's RTC reads the host's wall
 * clock again (plus the guest's own adjustment, `offset`), as a laptop's RTC does after it slept,
 * so the guest sees the time that passed while the snapshot lay on disk as a jump (its clock
 * readings, CLOCK_REALTIME after the next RTC sync, catch up; CLOCK_MONOTONIC does not, since it
 * comes from the timebase). An armed alarm keeps its RTC time: if that has passed meanwhile, it
 * fires at once on restore, as an alarm set for a time the machine slept through does.
 */
export interface GoldfishRtcState extends VersionedState {
  version: 1;
  /** Guest clock minus host wall clock, ns modulo 2^64, as hex64: what the guest's "set time" changed. */
  offset: string;
  /** TIME_HIGH as latched by the last TIME_LOW read. */
  latchedHigh: number;
  /** Alarm time in the RTC's clock (ns since the epoch), hex64. */
  alarm: string;
  alarmArmed: boolean;
  irqEnabled: boolean;
  /** Fired and not yet cleared by CLEAR_INTERRUPT. */
  irqPending: boolean;
}

const RTC_STATE_VERSIONS = [1] as const;

export class GoldfishRtc implements MmioDevice {
  readonly name = "rtc";
  readonly counters: GoldfishRtcCounters = { reads: {}, writes: {}, alarmsFired: 0, interrupts: 0 };
  /** Guest time minus host time, modulo 2^64: what the guest's "set time" changed. */
  private offset = 0n;
  private latchedHigh = 0;
  /** Alarm time in guest-clock nanoseconds. */
  private alarm = 0n;
  private alarmArmed = false;
  private irqEnabled = false;
  private irqPending = false;
  private irqLine = false;
  private readonly now: () => bigint;
  private readonly irq: (asserted: boolean) => void;

  constructor(options: { now: () => bigint; irq: (asserted: boolean) => void }) {
    this.now = options.now;
    this.irq = options.irq;
  }

  /** The guest-visible clock, in nanoseconds. */
  time(): bigint {
    return (this.now() + this.offset) & U64;
  }

  /** Fires the alarm if its time has come; the machine calls this from its event loop. */
  poll(): void {
    if (this.alarmArmed && this.time() >= this.alarm) {
      this.alarmArmed = false;
      this.irqPending = true;
      this.counters.alarmsFired++;
    }
    this.updateIrq();
  }

  /**
   * When an armed alarm fires, in the RTC's own clock (the same clock as time(), so
   * `nextDeadline() - time()` is the wait), or undefined when no alarm is armed.
   */
  nextDeadline(): bigint | undefined {
    return this.alarmArmed ? this.alarm : undefined;
  }

  /** Nanoseconds until an armed alarm fires (0 if overdue), or undefined: for scheduling poll(). */
  nsUntilAlarm(): bigint | undefined {
    if (!this.alarmArmed) return undefined;
    const t = this.time();
    return this.alarm > t ? this.alarm - t : 0n;
  }

  private updateIrq(): void {
    const asserted = this.irqPending && this.irqEnabled;
    if (asserted === this.irqLine) return;
    this.irqLine = asserted;
    if (asserted) this.counters.interrupts++;
    this.irq(asserted);
  }

  private count(table: Record<string, number>, offset: number): void {
    const name = REGISTER_NAMES[offset] ?? "reserved";
    table[name] = (table[name] ?? 0) + 1;
  }

  /** For the exit ledger: the names of the goldfish documentation ("TIME_LOW"). */
  registerName(offset: number): string | undefined {
    return REGISTER_NAMES[offset];
  }

  saveState(): GoldfishRtcState {
    return {
      version: 1,
      offset: hex64(this.offset),
      latchedHigh: this.latchedHigh,
      alarm: hex64(this.alarm),
      alarmArmed: this.alarmArmed,
      irqEnabled: this.irqEnabled,
      irqPending: this.irqPending,
    };
  }

  /** Checks the whole state, applies it, drives the interrupt line to match and fires an overdue alarm. */
  restoreState(state: unknown): void {
    const s = stateObject(state, "rtc", RTC_STATE_VERSIONS);
    const offset = stateU64(s.offset, "rtc.offset");
    const latchedHigh = stateInt(s.latchedHigh, "rtc.latchedHigh", 0, 0xffff_ffff);
    const alarm = stateU64(s.alarm, "rtc.alarm");
    const alarmArmed = stateBool(s.alarmArmed, "rtc.alarmArmed");
    const irqEnabled = stateBool(s.irqEnabled, "rtc.irqEnabled");
    const irqPending = stateBool(s.irqPending, "rtc.irqPending");
    this.offset = offset;
    this.latchedHigh = latchedHigh;
    this.alarm = alarm;
    this.alarmArmed = alarmArmed;
    this.irqEnabled = irqEnabled;
    this.irqPending = irqPending;
    this.irqLine = irqPending && irqEnabled;
    this.irq(this.irqLine);
    this.poll();
  }

  /** 32-bit, aligned accesses only (the driver uses readl/writel); others fault. */
  load(offset: number, size: number): number | bigint | undefined {
    if (size !== 4 || (offset & 3) !== 0) return undefined;
    this.count(this.counters.reads, offset);
    this.poll();
    switch (offset) {
      case TIMER_TIME_LOW: {
        const t = this.time();
        this.latchedHigh = Number(t >> 32n);
        return Number(t & LOW32);
      }
      case TIMER_TIME_HIGH:
        return this.latchedHigh;
      case TIMER_ALARM_LOW:
        return Number(this.alarm & LOW32);
      case TIMER_ALARM_HIGH:
        return Number(this.alarm >> 32n);
      case TIMER_IRQ_ENABLED:
        return this.irqEnabled ? 1 : 0;
      case TIMER_ALARM_STATUS:
        return this.alarmArmed ? 1 : 0;
      default:
        return 0; // write-only and reserved registers read as zero
    }
  }

  store(offset: number, size: number, value: number | bigint): boolean {
    if (size !== 4 || (offset & 3) !== 0) return false;
    this.count(this.counters.writes, offset);
    const v = Number(BigInt.asUintN(32, BigInt(value)));
    switch (offset) {
      case TIMER_TIME_LOW:
      case TIMER_TIME_HIGH: {
        // Setting one half keeps the other half of the current time (the driver writes HIGH, then LOW).
        const current = this.time();
        const wanted = deposit32(current, offset === TIMER_TIME_LOW ? 0 : 1, v);
        this.offset = (this.offset + wanted - current) & U64;
        break;
      }
      case TIMER_ALARM_LOW:
        this.alarm = deposit32(this.alarm, 0, v);
        this.alarmArmed = true; // an alarm already in the past fires at once (poll below)
        break;
      case TIMER_ALARM_HIGH:
        this.alarm = deposit32(this.alarm, 1, v);
        break;
      case TIMER_IRQ_ENABLED:
        this.irqEnabled = (v & 1) !== 0;
        break;
      case TIMER_CLEAR_ALARM:
        this.alarmArmed = false;
        break;
      case TIMER_CLEAR_INTERRUPT:
        this.irqPending = false;
        break;
      default:
        break; // read-only and reserved registers ignore writes
    }
    this.poll();
    return true;
  }
}
