// Hart State Management extension (EID 0x48534D "HSM"), SBI spec v2.0 chapter 9.
//
// The host owns each hart's state; this file owns the rules. The state machine of §9
// ("SBI HSM State Machine") is the explicit table HSM_TRANSITIONS, which the handlers consult
// before asking the host to act and which the host should use (hsmTransition) for the
// completion edges it performs itself: *_PENDING -> settled state, SUSPENDED -> RESUME_PENDING.
import { rangeInRam, u32Param } from "./params.ts";
import {
  SBI_ERR_ALREADY_AVAILABLE,
  SBI_ERR_FAILED,
  SBI_ERR_INVALID_ADDRESS,
  SBI_ERR_INVALID_PARAM,
  SBI_HSM_STATE_RESUME_PENDING,
  SBI_HSM_STATE_STARTED,
  SBI_HSM_STATE_START_PENDING,
  SBI_HSM_STATE_STOPPED,
  SBI_HSM_STATE_STOP_PENDING,
  SBI_HSM_STATE_SUSPENDED,
  SBI_HSM_STATE_SUSPEND_PENDING,
  SBI_SUCCESS,
  sbiFail,
  sbiOk,
  type HsmState,
  type SbiErrorCode,
  type SbiExtension,
  type SbiFunction,
  type SbiHost,
  type SbiResult,
} from "./types.ts";

export const SBI_EXT_HSM = 0x48_534d;
export const SBI_EXT_HSM_HART_START = 0;
export const SBI_EXT_HSM_HART_STOP = 1;
export const SBI_EXT_HSM_HART_GET_STATUS = 2;
export const SBI_EXT_HSM_HART_SUSPEND = 3;

export const HSM_STATE_NAMES: Readonly<Record<HsmState, string>> = {
  [SBI_HSM_STATE_STARTED]: "STARTED",
  [SBI_HSM_STATE_STOPPED]: "STOPPED",
  [SBI_HSM_STATE_START_PENDING]: "START_PENDING",
  [SBI_HSM_STATE_STOP_PENDING]: "STOP_PENDING",
  [SBI_HSM_STATE_SUSPENDED]: "SUSPENDED",
  [SBI_HSM_STATE_SUSPEND_PENDING]: "SUSPEND_PENDING",
  [SBI_HSM_STATE_RESUME_PENDING]: "RESUME_PENDING",
};

// ---- the state machine (§9, figure "SBI HSM State Machine") ----------------------------------

/**
 * What moves a hart between states. The first of each pair is a supervisor request served by
 * this extension; the second is the SBI implementation (the host) finishing the job.
 */
export type HsmEvent =
  | "start" // sbi_hart_start() from another hart
  | "start-done" // the hart begins executing at start_addr
  | "stop" // sbi_hart_stop() by the hart itself
  | "stop-done" // the hart no longer executes
  | "suspend" // sbi_hart_suspend() by the hart itself
  | "suspend-done" // the hart sleeps
  | "wake" // an interrupt or platform event ends the suspension
  | "resume-done"; // the hart executes again (after the ECALL, or at resume_addr)

export const HSM_TRANSITIONS: Readonly<Record<HsmState, Readonly<Partial<Record<HsmEvent, HsmState>>>>> = {
  [SBI_HSM_STATE_STOPPED]: { start: SBI_HSM_STATE_START_PENDING },
  [SBI_HSM_STATE_START_PENDING]: { "start-done": SBI_HSM_STATE_STARTED },
  [SBI_HSM_STATE_STARTED]: { stop: SBI_HSM_STATE_STOP_PENDING, suspend: SBI_HSM_STATE_SUSPEND_PENDING },
  [SBI_HSM_STATE_STOP_PENDING]: { "stop-done": SBI_HSM_STATE_STOPPED },
  [SBI_HSM_STATE_SUSPEND_PENDING]: { "suspend-done": SBI_HSM_STATE_SUSPENDED },
  [SBI_HSM_STATE_SUSPENDED]: { wake: SBI_HSM_STATE_RESUME_PENDING },
  [SBI_HSM_STATE_RESUME_PENDING]: { "resume-done": SBI_HSM_STATE_STARTED },
};

/** The state after `event`, or undefined when the state machine has no such edge. */
export function hsmTransition(state: HsmState, event: HsmEvent): HsmState | undefined {
  return HSM_TRANSITIONS[state][event];
}

/**
 * sbi_hart_start() on a hart that is not STOPPED (§9.1 lists SBI_ERR_ALREADY_AVAILABLE for "the
 * given hartid is already started"). A hart that is starting, suspended or resuming is -- or
 * is about to be -- available to the supervisor, which is what the error says (KVM answers the
 * same for any non-stopped vCPU). A hart in STOP_PENDING is neither available nor startable
 * yet: that is the generic SBI_ERR_FAILED, and the caller may retry once it reads STOPPED.
 */
const HART_START_REFUSALS: Readonly<Record<HsmState, SbiErrorCode>> = {
  [SBI_HSM_STATE_STOPPED]: SBI_SUCCESS, // not a refusal: the edge exists
  [SBI_HSM_STATE_STARTED]: SBI_ERR_ALREADY_AVAILABLE,
  [SBI_HSM_STATE_START_PENDING]: SBI_ERR_ALREADY_AVAILABLE,
  [SBI_HSM_STATE_SUSPENDED]: SBI_ERR_ALREADY_AVAILABLE,
  [SBI_HSM_STATE_SUSPEND_PENDING]: SBI_ERR_ALREADY_AVAILABLE,
  [SBI_HSM_STATE_RESUME_PENDING]: SBI_ERR_ALREADY_AVAILABLE,
  [SBI_HSM_STATE_STOP_PENDING]: SBI_ERR_FAILED,
};

// ---- suspend types (§9.4, table "HSM Hart Suspend Types") ----------------------------------
export const SBI_HSM_SUSPEND_RET_DEFAULT = 0x0000_0000;
export const SBI_HSM_SUSPEND_NON_RET_DEFAULT = 0x8000_0000;

type SuspendKind = "retentive" | "non-retentive" | "reserved" | "platform";

/** suspend_type ranges of §9.4, in order; each range is inclusive. */
const SUSPEND_TYPE_RANGES: readonly { from: number; to: number; kind: SuspendKind }[] = [
  { from: 0x0000_0000, to: 0x0000_0000, kind: "retentive" },
  { from: 0x0000_0001, to: 0x0fff_ffff, kind: "reserved" },
  { from: 0x1000_0000, to: 0x7fff_ffff, kind: "platform" }, // platform-specific retentive
  { from: 0x8000_0000, to: 0x8000_0000, kind: "non-retentive" },
  { from: 0x8000_0001, to: 0x8fff_ffff, kind: "reserved" },
  { from: 0x9000_0000, to: 0xffff_ffff, kind: "platform" }, // platform-specific non-retentive
];

function suspendKind(suspendType: number): SuspendKind {
  return SUSPEND_TYPE_RANGES.find((r) => suspendType >= r.from && suspendType <= r.to)!.kind;
}

// ---- argument checks -----------------------------------------------------------------------

function validHart(host: SbiHost, hartId: bigint): number | undefined {
  return hartId < BigInt(host.hartCount) ? Number(hartId) : undefined;
}

/**
 * start_addr/resume_addr (§9.1, §9.4): SBI_ERR_INVALID_ADDRESS when "not a valid physical
 * address" or not executable by S-mode. For Parley that means it must be in RAM (there is no
 * executable ROM or MMIO) and 2-byte aligned: pc can never be odd (IALIGN = 16 with C), and a
 * hart that starts has no trap handler yet to receive a misaligned-fetch exception.
 */
function validEntry(host: SbiHost, addr: bigint): boolean {
  return (addr & 1n) === 0n && rangeInRam(host.ramRegions, addr, 2n);
}

// ---- functions -----------------------------------------------------------------------------

/** §9.1 sbi_hart_start(hartid, start_addr, opaque). */
function hartStart(args: readonly bigint[], host: SbiHost): SbiResult {
  const hartId = validHart(host, args[0]);
  if (hartId === undefined) return sbiFail(SBI_ERR_INVALID_PARAM);
  if (!validEntry(host, args[1])) return sbiFail(SBI_ERR_INVALID_ADDRESS);
  const state = host.hartState(hartId);
  if (hsmTransition(state, "start") === undefined) return sbiFail(HART_START_REFUSALS[state]);
  return result(host.hartStart(hartId, args[1], args[2]));
}

/**
 * §9.2 sbi_hart_stop(): the calling hart, which is STARTED since it is executing. The call
 * returns only on failure; on success the host stops scheduling the hart, so whatever the
 * dispatcher writes to a0/a1 is overwritten by the next hart_start (a0 = hartid, a1 = opaque).
 */
function hartStop(hartId: number, host: SbiHost): SbiResult {
  if (hsmTransition(host.hartState(hartId), "stop") === undefined) return sbiFail(SBI_ERR_FAILED);
  return result(host.hartStop(hartId));
}

/** §9.3 sbi_hart_get_status(hartid): the HSM state id in sbiret.value. */
function hartGetStatus(args: readonly bigint[], host: SbiHost): SbiResult {
  const hartId = validHart(host, args[0]);
  if (hartId === undefined) return sbiFail(SBI_ERR_INVALID_PARAM);
  return sbiOk(BigInt(host.hartState(hartId)));
}

/**
 * §9.4 sbi_hart_suspend(uint32_t suspend_type, resume_addr, opaque). Reserved types and
 * platform-specific ones (Parley defines none) are SBI_ERR_INVALID_PARAM, as the error table
 * says. resume_addr matters only for a non-retentive suspend.
 */
function hartSuspend(hartId: number, args: readonly bigint[], host: SbiHost): SbiResult {
  const suspendType = u32Param(args[0]);
  const kind = suspendKind(suspendType);
  if (kind !== "retentive" && kind !== "non-retentive") return sbiFail(SBI_ERR_INVALID_PARAM);
  if (kind === "non-retentive" && !validEntry(host, args[1])) return sbiFail(SBI_ERR_INVALID_ADDRESS);
  if (hsmTransition(host.hartState(hartId), "suspend") === undefined) return sbiFail(SBI_ERR_FAILED);
  return result(host.hartSuspend(hartId, suspendType, args[1], args[2]));
}

function result(error: SbiErrorCode): SbiResult {
  return error === SBI_SUCCESS ? sbiOk() : sbiFail(error);
}

const functions = new Map<number, SbiFunction>([
  [SBI_EXT_HSM_HART_START, { name: "hart_start", handler: (call, host) => hartStart(call.args, host) }],
  [SBI_EXT_HSM_HART_STOP, { name: "hart_stop", handler: (call, host) => hartStop(call.hartId, host) }],
  [SBI_EXT_HSM_HART_GET_STATUS, { name: "hart_get_status", handler: (call, host) => hartGetStatus(call.args, host) }],
  [SBI_EXT_HSM_HART_SUSPEND, { name: "hart_suspend", handler: (call, host) => hartSuspend(call.hartId, call.args, host) }],
]);

export const hsmExtension: SbiExtension = { eid: SBI_EXT_HSM, name: "HSM", functions };
