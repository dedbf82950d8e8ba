// IPI extension (EID 0x735049 "sPI: s-mode IPI"), SBI spec v2.0 chapter 7.
import { decodeHartMask } from "./params.ts";
import { sbiFail, sbiOk, type SbiExtension, type SbiFunction } from "./types.ts";

export const SBI_EXT_IPI = 0x73_5049;
export const SBI_EXT_IPI_SEND_IPI = 0;

/**
 * §7.1 sbi_send_ipi(hart_mask, hart_mask_base): IPIs "manifest at the receiving harts as
 * Supervisor Software Interrupts" (SSIP). The hart list follows §3.1, including its
 * SBI_ERR_INVALID_PARAM for hart ids that do not exist; nothing is sent when any is invalid.
 * Linux reports a failure as "__sbi_send_ipi_v02: hbase = [..] hmask = [..] failed".
 */
const functions = new Map<number, SbiFunction>([
  [
    SBI_EXT_IPI_SEND_IPI,
    {
      name: "send_ipi",
      handler: (call, host) => {
        const list = decodeHartMask(call.args[0], call.args[1], host.hartCount);
        if ("error" in list) return sbiFail(list.error);
        if (list.harts.length > 0) host.sendIpi(list.harts);
        return sbiOk();
      },
    },
  ],
]);

export const ipiExtension: SbiExtension = { eid: SBI_EXT_IPI, name: "IPI", functions };
