// Legacy extensions (EIDs 0x00-0x08, the SBI v0.1 calls), SBI spec v2.0 chapter 5.
//
// Why Parley still serves them: Linux learnt DBCN only in 6.8, so Debian 12's 6.1 kernel
// (built with CONFIG_RISCV_SBI_V01) prints through console_putchar (0x01) and polls
// console_getchar (0x02) for earlycon=sbi and hvc_riscv_sbi whatever the spec version; and a
// kernel that finds no TIME/sPI/RFNC falls back to 0x00 and 0x04..0x07.
//
// Calling convention (§5): the function is the EID (a6 is ignored), nothing is returned in a1,
// and a0 carries a call-specific value, 0 or a negative error for most. In SbiResult terms the
// a0 value travels in `error`, and the dispatcher writes only a0 for extensions marked legacy.
import { allHarts, ULONG_MAX, type HartListResult } from "./params.ts";
import { decodeFenceRange } from "./rfence.ts";
import { SBI_SRST_RESET_REASON_NONE, SBI_SRST_RESET_TYPE_SHUTDOWN } from "./srst.ts";
import {
  SBI_ERR_INVALID_ADDRESS,
  SBI_ERR_INVALID_PARAM,
  type RemoteFence,
  type SbiCall,
  type SbiExtension,
  type SbiFunction,
  type SbiHost,
  type SbiResult,
} from "./types.ts";

export const SBI_EXT_0_1_SET_TIMER = 0x00;
export const SBI_EXT_0_1_CONSOLE_PUTCHAR = 0x01;
export const SBI_EXT_0_1_CONSOLE_GETCHAR = 0x02;
export const SBI_EXT_0_1_CLEAR_IPI = 0x03;
export const SBI_EXT_0_1_SEND_IPI = 0x04;
export const SBI_EXT_0_1_REMOTE_FENCE_I = 0x05;
export const SBI_EXT_0_1_REMOTE_SFENCE_VMA = 0x06;
export const SBI_EXT_0_1_REMOTE_SFENCE_VMA_ASID = 0x07;
export const SBI_EXT_0_1_SHUTDOWN = 0x08;
// 0x09-0x0F are reserved (§5, function listing): not part of the extension, so they probe as 0
// and are SBI_ERR_NOT_SUPPORTED like any unknown EID.

/** The legacy calls' a0 result: 0 for success, or an error code / value. */
function legacyReturn(a0: bigint): SbiResult {
  return { error: a0, value: 0n };
}

/**
 * §5.5: hart_mask is a *virtual* address of a bit vector of ceil(harts / XLEN) unsigned longs.
 * NULL means all harts, as in OpenSBI (Linux never passes NULL). Reading it needs the hart's
 * S-mode translation, which only the host can do (loadSupervisorUlong). Where the spec wants a
 * fault while reading redirected to the supervisor (§5, preamble), Parley instead returns
 * SBI_ERR_INVALID_ADDRESS in a0 -- the calls return "an implementation specific negative error
 * code" on failure. Bits for harts that do not exist are SBI_ERR_INVALID_PARAM, as in §3.1.
 */
function legacyHartMask(call: SbiCall, host: SbiHost): HartListResult {
  const pointer = call.args[0];
  if (pointer === 0n) return { harts: allHarts(host.hartCount) };
  if (host.loadSupervisorUlong === undefined) return { error: SBI_ERR_INVALID_ADDRESS };
  const harts: number[] = [];
  const words = Math.ceil(host.hartCount / 64);
  for (let w = 0; w < words; w++) {
    const word = host.loadSupervisorUlong(call.hartId, (pointer + BigInt(w * 8)) & ULONG_MAX);
    if (word === undefined) return { error: SBI_ERR_INVALID_ADDRESS };
    for (let bit = 0; bit < 64; bit++) {
      if (((word >> BigInt(bit)) & 1n) === 0n) continue;
      const hart = w * 64 + bit;
      if (hart >= host.hartCount) return { error: SBI_ERR_INVALID_PARAM };
      harts.push(hart);
    }
  }
  return { harts };
}

function legacyFence(call: SbiCall, host: SbiHost, fence: RemoteFence | undefined): SbiResult {
  const list = legacyHartMask(call, host);
  if ("error" in list) return legacyReturn(list.error);
  if (fence === undefined) return legacyReturn(SBI_ERR_INVALID_ADDRESS);
  if (list.harts.length > 0) host.remoteFence(list.harts, fence);
  return legacyReturn(0n);
}

/** The (start, size) pair of 0x06/0x07 has the same whole-address-space rule as RFENCE (§5.7, §5.8). */
function legacyRange(call: SbiCall) {
  return decodeFenceRange(call.args[1], call.args[2]);
}

const functions = new Map<number, SbiFunction>([
  [
    SBI_EXT_0_1_SET_TIMER,
    {
      // §5.1: same semantics as TIME.set_timer, including clearing the pending timer interrupt.
      name: "set_timer",
      handler: (call, host) => {
        host.setTimer(call.hartId, call.args[0]);
        return legacyReturn(0n);
      },
    },
  ],
  [
    SBI_EXT_0_1_CONSOLE_PUTCHAR,
    {
      // §5.2 sbi_console_putchar(int ch): the byte is the low 8 bits; "if the console doesn't
      // exist at all, then the character is thrown away", so this always returns 0.
      name: "console_putchar",
      handler: (call, host) => {
        host.consoleWrite(Uint8Array.of(Number(call.args[0] & 0xffn)));
        return legacyReturn(0n);
      },
    },
  ],
  [
    SBI_EXT_0_1_CONSOLE_GETCHAR,
    {
      // §5.3: "returns the byte on success, or -1 for failure" -- -1 also when nothing is
      // waiting, which is how Linux's hvc_sbi polling reads it.
      name: "console_getchar",
      handler: (_call, host) => {
        const input = host.consoleRead(1);
        return legacyReturn(input.length > 0 ? BigInt(input[0]) : -1n);
      },
    },
  ],
  [
    SBI_EXT_0_1_CLEAR_IPI,
    {
      // §5.4: clears SSIP on the calling hart only; 0 if none was pending, a positive value if one was.
      name: "clear_ipi",
      handler: (call, host) => legacyReturn(host.clearIpi(call.hartId) ? 1n : 0n),
    },
  ],
  [
    SBI_EXT_0_1_SEND_IPI,
    {
      name: "send_ipi",
      handler: (call, host) => {
        const list = legacyHartMask(call, host);
        if ("error" in list) return legacyReturn(list.error);
        if (list.harts.length > 0) host.sendIpi(list.harts);
        return legacyReturn(0n);
      },
    },
  ],
  [
    SBI_EXT_0_1_REMOTE_FENCE_I,
    { name: "remote_fence_i", handler: (call, host) => legacyFence(call, host, { kind: "fence.i" }) },
  ],
  [
    SBI_EXT_0_1_REMOTE_SFENCE_VMA,
    {
      name: "remote_sfence_vma",
      handler: (call, host) => {
        const range = legacyRange(call);
        return legacyFence(call, host, range === undefined ? undefined : { kind: "sfence.vma", range });
      },
    },
  ],
  [
    SBI_EXT_0_1_REMOTE_SFENCE_VMA_ASID,
    {
      name: "remote_sfence_vma_asid",
      handler: (call, host) => {
        const range = legacyRange(call);
        return legacyFence(call, host, range === undefined ? undefined : { kind: "sfence.vma.asid", range, asid: call.args[3] });
      },
    },
  ],
  [
    SBI_EXT_0_1_SHUTDOWN,
    {
      // §5.9: "doesn't return irrespective whether it succeeds or fails" -- the host always can.
      name: "shutdown",
      handler: (_call, host) => {
        host.systemReset(SBI_SRST_RESET_TYPE_SHUTDOWN, SBI_SRST_RESET_REASON_NONE);
        return legacyReturn(0n);
      },
    },
  ],
]);

export const legacyExtension: SbiExtension = {
  eid: [SBI_EXT_0_1_SET_TIMER, SBI_EXT_0_1_SHUTDOWN],
  name: "LEGACY",
  legacy: true,
  functions,
};
