// System Reset extension (EID 0x53525354 "SRST"), SBI spec v2.0 chapter 10.
import { u32Param } from "./params.ts";
import { SBI_ERR_INVALID_PARAM, sbiFail, sbiOk, type SbiExtension, type SbiFunction } from "./types.ts";

export const SBI_EXT_SRST = 0x5352_5354;
export const SBI_EXT_SRST_RESET = 0;

// §10.1, table "SRST System Reset Types"
export const SBI_SRST_RESET_TYPE_SHUTDOWN = 0x0000_0000;
export const SBI_SRST_RESET_TYPE_COLD_REBOOT = 0x0000_0001;
export const SBI_SRST_RESET_TYPE_WARM_REBOOT = 0x0000_0002;
// §10.1, table "SRST System Reset Reasons"
export const SBI_SRST_RESET_REASON_NONE = 0x0000_0000;
export const SBI_SRST_RESET_REASON_SYSFAIL = 0x0000_0001;

/**
 * The values Parley implements. Everything else is either "reserved for future use"
 * (types 0x3..0xEFFFFFFF, reasons 0x2..0xDFFFFFFF) or implementation/vendor specific
 * (types 0xF0000000.., reasons 0xE0000000..) of which Parley defines none; §10.1 makes both
 * SBI_ERR_INVALID_PARAM ("reserved or is platform-specific and unimplemented").
 */
const RESET_TYPES: ReadonlySet<number> = new Set([
  SBI_SRST_RESET_TYPE_SHUTDOWN,
  SBI_SRST_RESET_TYPE_COLD_REBOOT,
  SBI_SRST_RESET_TYPE_WARM_REBOOT,
]);
const RESET_REASONS: ReadonlySet<number> = new Set([SBI_SRST_RESET_REASON_NONE, SBI_SRST_RESET_REASON_SYSFAIL]);

/**
 * §10.1 sbi_system_reset(uint32_t reset_type, uint32_t reset_reason): synchronous, and "does
 * not return if it succeeds" -- the host stops every hart, so the SBI_SUCCESS written back is
 * never seen. Linux registers it as pm_power_off (shutdown) and as a restart handler (cold
 * reboot, or warm for reboot=warm/soft), and prints "sbi_srst_reset: type=.. failed" if the
 * call does return.
 */
const functions = new Map<number, SbiFunction>([
  [
    SBI_EXT_SRST_RESET,
    {
      name: "system_reset",
      handler: (call, host) => {
        const resetType = u32Param(call.args[0]);
        const resetReason = u32Param(call.args[1]);
        if (!RESET_TYPES.has(resetType) || !RESET_REASONS.has(resetReason)) return sbiFail(SBI_ERR_INVALID_PARAM);
        host.systemReset(resetType, resetReason);
        return sbiOk();
      },
    },
  ],
]);

export const srstExtension: SbiExtension = { eid: SBI_EXT_SRST, name: "SRST", functions };
