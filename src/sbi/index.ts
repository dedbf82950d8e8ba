// Parley's SBI implementation: the extension table and the public surface of src/sbi/.
import { baseExtension } from "./base.ts";
import { dbcnExtension } from "./dbcn.ts";
import { hsmExtension } from "./hsm.ts";
import { ipiExtension } from "./ipi.ts";
import { legacyExtension } from "./legacy.ts";
import { rfenceExtension } from "./rfence.ts";
import { srstExtension } from "./srst.ts";
import { staExtension } from "./sta.ts";
import { timeExtension } from "./time.ts";
import type { SbiExtension } from "./types.ts";

/**
 * Every extension Parley implements (SBI spec v2.0 chapters 4-10, 12 and 16). Not offered: PMU
 * (ch. 11; Linux then uses no SBI counters), SUSP (ch. 13), CPPC (ch. 14) and NACL (ch. 15, needs
 * H) -- they probe as 0 and their calls return SBI_ERR_NOT_SUPPORTED.
 */
export function standardExtensions(): SbiExtension[] {
  return [
    baseExtension,
    legacyExtension,
    timeExtension,
    ipiExtension,
    rfenceExtension,
    hsmExtension,
    srstExtension,
    dbcnExtension,
    staExtension,
  ];
}

export * from "./types.ts";
export { SbiDispatcher, SbiCounters, type EcallRegisters } from "./dispatcher.ts";
export { decodeSbiId, decodeHartMask, rangeInRam, SBI_HART_MASK_BASE_ALL } from "./params.ts";
export { SBI_EXT_BASE, SBI_SPEC_VERSION, PARLEY_SBI_IMPL_ID, PARLEY_SBI_IMPL_VERSION } from "./base.ts";
export { SBI_EXT_TIME } from "./time.ts";
export { SBI_EXT_IPI } from "./ipi.ts";
export { SBI_EXT_RFENCE } from "./rfence.ts";
export {
  SBI_EXT_HSM,
  SBI_HSM_SUSPEND_RET_DEFAULT,
  SBI_HSM_SUSPEND_NON_RET_DEFAULT,
  HSM_TRANSITIONS,
  HSM_STATE_NAMES,
  hsmTransition,
  type HsmEvent,
} from "./hsm.ts";
export {
  SBI_EXT_SRST,
  SBI_SRST_RESET_TYPE_SHUTDOWN,
  SBI_SRST_RESET_TYPE_COLD_REBOOT,
  SBI_SRST_RESET_TYPE_WARM_REBOOT,
  SBI_SRST_RESET_REASON_NONE,
  SBI_SRST_RESET_REASON_SYSFAIL,
} from "./srst.ts";
export { SBI_EXT_DBCN, DBCN_MAX_CHUNK } from "./dbcn.ts";
export {
  SBI_EXT_STA,
  SBI_EXT_STA_STEAL_TIME_SET_SHMEM,
  STA_SHMEM_SIZE,
  STA_SEQUENCE,
  STA_FLAGS,
  STA_STEAL,
  STA_PREEMPTED,
  StealTimeRecorder,
  decodeStealTimeShmem,
  ramRecordMemory,
  readStealRecord,
  writeStealRecord,
  type StealRecord,
  type StealRecordMemory,
  type StealTimeShmemRequest,
} from "./sta.ts";
