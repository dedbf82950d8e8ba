// Timer extension (EID 0x54494D45 "TIME"), SBI spec v2.0 chapter 6.
import { sbiOk, type SbiExtension, type SbiFunction } from "./types.ts";

export const SBI_EXT_TIME = 0x5449_4d45;
export const SBI_EXT_TIME_SET_TIMER = 0;

/**
 * §6.1 sbi_set_timer(uint64_t stime_value): stime_value is absolute time; the call "must clear
 * the pending timer interrupt bit as well". Every 64-bit value is valid, so there are no errors.
 * Linux (drivers/clocksource/timer-riscv.c) arms the next event with time + delta and disarms
 * with (uint64_t)-1, which the spec names as the way to say "no timer event".
 */
const functions = new Map<number, SbiFunction>([
  [
    SBI_EXT_TIME_SET_TIMER,
    {
      name: "set_timer",
      handler: (call, host) => {
        host.setTimer(call.hartId, call.args[0]);
        return sbiOk();
      },
    },
  ],
]);

export const timeExtension: SbiExtension = { eid: SBI_EXT_TIME, name: "TIME", functions };
