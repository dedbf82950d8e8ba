// RFENCE extension (EID 0x52464E43 "RFNC"), SBI spec v2.0 chapter 8.
import { decodeHartMask, ULONG_MAX } from "./params.ts";
import {
  SBI_ERR_INVALID_ADDRESS,
  SBI_ERR_NOT_SUPPORTED,
  sbiFail,
  sbiOk,
  type RemoteFence,
  type SbiCall,
  type SbiExtension,
  type SbiFunction,
  type SbiHost,
  type SbiResult,
  type VirtualRange,
} from "./types.ts";

export const SBI_EXT_RFENCE = 0x5246_4e43;
export const SBI_EXT_RFENCE_REMOTE_FENCE_I = 0;
export const SBI_EXT_RFENCE_REMOTE_SFENCE_VMA = 1;
export const SBI_EXT_RFENCE_REMOTE_SFENCE_VMA_ASID = 2;
export const SBI_EXT_RFENCE_REMOTE_HFENCE_GVMA_VMID = 3;
export const SBI_EXT_RFENCE_REMOTE_HFENCE_GVMA = 4;
export const SBI_EXT_RFENCE_REMOTE_HFENCE_VVMA_ASID = 5;
export const SBI_EXT_RFENCE_REMOTE_HFENCE_VVMA = 6;

/**
 * The (start_addr, size) rule of chapter 8: the fence covers the entire address space when
 * start and size are both 0 or size = 2^XLEN-1 (Linux's flush-all uses size = -1). Otherwise
 * the range must not run past 2^64; such a range is the spec's "start_addr or size is not
 * valid" (SBI_ERR_INVALID_ADDRESS). undefined means invalid.
 */
export function decodeFenceRange(start: bigint, size: bigint): VirtualRange | undefined {
  if ((start === 0n && size === 0n) || size === ULONG_MAX) return "all";
  if (start + size > ULONG_MAX + 1n) return undefined;
  return { start, size };
}

/** Shared path of FIDs 0..2: hart list (§3.1) first, then the range, then the fence. */
function remoteFence(call: SbiCall, host: SbiHost, fence: RemoteFence | undefined): SbiResult {
  const list = decodeHartMask(call.args[0], call.args[1], host.hartCount);
  if ("error" in list) return sbiFail(list.error);
  if (fence === undefined) return sbiFail(SBI_ERR_INVALID_ADDRESS);
  if (list.harts.length > 0) host.remoteFence(list.harts, fence);
  return sbiOk();
}

function withRange(call: SbiCall, make: (range: VirtualRange) => RemoteFence): RemoteFence | undefined {
  const range = decodeFenceRange(call.args[2], call.args[3]);
  return range === undefined ? undefined : make(range);
}

/**
 * §8.4-8.7: the HFENCE functions are "only valid for harts implementing hypervisor extension";
 * Parley's harts have no H extension, so they are SBI_ERR_NOT_SUPPORTED. They are listed (not
 * left unknown) so the counters name them. Linux only calls them from KVM, which needs H.
 */
const notSupported = (): SbiResult => sbiFail(SBI_ERR_NOT_SUPPORTED);

const functions = new Map<number, SbiFunction>([
  [
    SBI_EXT_RFENCE_REMOTE_FENCE_I,
    { name: "remote_fence_i", handler: (call, host) => remoteFence(call, host, { kind: "fence.i" }) },
  ],
  [
    SBI_EXT_RFENCE_REMOTE_SFENCE_VMA,
    {
      name: "remote_sfence_vma",
      handler: (call, host) => remoteFence(call, host, withRange(call, (range) => ({ kind: "sfence.vma", range }))),
    },
  ],
  [
    SBI_EXT_RFENCE_REMOTE_SFENCE_VMA_ASID,
    {
      name: "remote_sfence_vma_asid",
      handler: (call, host) =>
        remoteFence(call, host, withRange(call, (range) => ({ kind: "sfence.vma.asid", range, asid: call.args[4] }))),
    },
  ],
  [SBI_EXT_RFENCE_REMOTE_HFENCE_GVMA_VMID, { name: "remote_hfence_gvma_vmid", handler: notSupported }],
  [SBI_EXT_RFENCE_REMOTE_HFENCE_GVMA, { name: "remote_hfence_gvma", handler: notSupported }],
  [SBI_EXT_RFENCE_REMOTE_HFENCE_VVMA_ASID, { name: "remote_hfence_vvma_asid", handler: notSupported }],
  [SBI_EXT_RFENCE_REMOTE_HFENCE_VVMA, { name: "remote_hfence_vvma", handler: notSupported }],
]);

export const rfenceExtension: SbiExtension = { eid: SBI_EXT_RFENCE, name: "RFENCE", functions };
