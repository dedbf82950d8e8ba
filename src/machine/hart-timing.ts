// When a hart's own timers fire, and how long a slice may run before the next one: shared by the
// round-robin run loop (virt.ts) and the hart threads' scheduler (hart-thread.ts).
import { MENVCFG_STCE, type Cpu } from "../cpu/cpu.ts";
import * as L from "../cpu/layout.ts";

/** A timer deadline that never comes (all ones, as SBI set_timer's "no timer"). */
export const NEVER = 0xffff_ffff_ffff_ffffn;
/** A conservative guess of guest speed, used only to end a slice near the next timer deadline. */
export const INSTRUCTIONS_PER_TICK = 30;
/** The shortest slice a deadline cuts a run to. */
const MIN_SLICE = 1000;

/**
 * The next of the hart's supervisor timer events still ahead of `now` (ticks): its SBI timer
 * deadline, and stimecmp while Sstc is on for it (menvcfg.STCE); NEVER if none. A deadline that
 * passed already shows in the hart's STIP and can wake nothing later: counting it would keep a
 * loop from sleeping while that STIP stays masked (a stopped hart's stimecmp of 0).
 */
export function nextTimerEvent(cpu: Cpu, sbiDeadline: bigint, now: bigint): bigint {
  let next = sbiDeadline > now ? sbiDeadline : NEVER;
  if ((cpu.getState(L.S_MENVCFG) & MENVCFG_STCE) !== 0n) {
    const stimecmp = cpu.getState(L.S_STIMECMP);
    if (stimecmp > now && stimecmp < next) next = stimecmp;
  }
  return next;
}

/** A slice of at most `slice` instructions that ends near `deadline` (ticks; undefined: no cut). */
export function sliceUntil(slice: number, now: number, deadline: number | undefined): number {
  if (deadline === undefined || deadline <= now) return slice;
  return Math.max(MIN_SLICE, Math.min(slice, (deadline - now) * INSTRUCTIONS_PER_TICK));
}
