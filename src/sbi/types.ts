// Shared vocabulary of Parley's SBI implementation: calls, results, error codes, the extension
// table shape and the host interface the machine implements.
//
// Spec references are to the RISC-V Supervisor Binary Interface Specification v2.0
// ("SBI spec"). Parley is the SBI implementation (the SEE) itself, as KVM is for its guests:
// an ECALL from S-mode leaves the core and is served here, never by guest firmware.
// Pure TypeScript: nothing here touches Node, the DOM or the CPU core.

// ---- error codes (SBI spec §3, table "Standard SBI Errors") ----------------------------------
// Kept as bigint because they travel in a0 as signed XLEN-bit values; the dispatcher writes them
// to the register as 64-bit two's complement.
export type SbiErrorCode = bigint;

export const SBI_SUCCESS: SbiErrorCode = 0n;
export const SBI_ERR_FAILED: SbiErrorCode = -1n;
export const SBI_ERR_NOT_SUPPORTED: SbiErrorCode = -2n;
export const SBI_ERR_INVALID_PARAM: SbiErrorCode = -3n;
export const SBI_ERR_DENIED: SbiErrorCode = -4n;
export const SBI_ERR_INVALID_ADDRESS: SbiErrorCode = -5n;
export const SBI_ERR_ALREADY_AVAILABLE: SbiErrorCode = -6n;
export const SBI_ERR_ALREADY_STARTED: SbiErrorCode = -7n;
export const SBI_ERR_ALREADY_STOPPED: SbiErrorCode = -8n;
export const SBI_ERR_NO_SHMEM: SbiErrorCode = -9n;
export const SBI_ERR_INVALID_STATE: SbiErrorCode = -10n;
export const SBI_ERR_BAD_RANGE: SbiErrorCode = -11n;
// The two below are not in v2.0's table; they were added by the v3.0 drafts. Defined so that
// names exist for every code Linux's sbi_err_map_linux_errno() knows; Parley returns neither.
export const SBI_ERR_TIMEOUT: SbiErrorCode = -12n;
export const SBI_ERR_IO: SbiErrorCode = -13n;

/** Error names by code, for counters and logs. */
export const SBI_ERROR_NAMES: ReadonlyMap<SbiErrorCode, string> = new Map([
  [SBI_SUCCESS, "SBI_SUCCESS"],
  [SBI_ERR_FAILED, "SBI_ERR_FAILED"],
  [SBI_ERR_NOT_SUPPORTED, "SBI_ERR_NOT_SUPPORTED"],
  [SBI_ERR_INVALID_PARAM, "SBI_ERR_INVALID_PARAM"],
  [SBI_ERR_DENIED, "SBI_ERR_DENIED"],
  [SBI_ERR_INVALID_ADDRESS, "SBI_ERR_INVALID_ADDRESS"],
  [SBI_ERR_ALREADY_AVAILABLE, "SBI_ERR_ALREADY_AVAILABLE"],
  [SBI_ERR_ALREADY_STARTED, "SBI_ERR_ALREADY_STARTED"],
  [SBI_ERR_ALREADY_STOPPED, "SBI_ERR_ALREADY_STOPPED"],
  [SBI_ERR_NO_SHMEM, "SBI_ERR_NO_SHMEM"],
  [SBI_ERR_INVALID_STATE, "SBI_ERR_INVALID_STATE"],
  [SBI_ERR_BAD_RANGE, "SBI_ERR_BAD_RANGE"],
  [SBI_ERR_TIMEOUT, "SBI_ERR_TIMEOUT"],
  [SBI_ERR_IO, "SBI_ERR_IO"],
]);

export function sbiErrorName(code: SbiErrorCode): string {
  return SBI_ERROR_NAMES.get(code) ?? `SBI error ${code}`;
}

// ---- calls and results ---------------------------------------------------------------------

/** One SBI call as decoded from the calling hart's registers (SBI spec §3). */
export interface SbiCall {
  /** a7, as the signed 32-bit EID (see decodeSbiId); a value no extension can have if malformed. */
  eid: number;
  /** a6, as the signed 32-bit FID; ignored by legacy extensions (SBI spec §5). */
  fid: number;
  /** a0..a5 as unsigned 64-bit values. */
  args: readonly bigint[];
  /** The calling hart. */
  hartId: number;
}

/** struct sbiret (SBI spec §3): a0 = error, a1 = value. Legacy calls return only a0 = error. */
export interface SbiResult {
  error: SbiErrorCode;
  value: bigint;
}

export function sbiOk(value: bigint = 0n): SbiResult {
  return { error: SBI_SUCCESS, value };
}

export function sbiFail(error: SbiErrorCode): SbiResult {
  return { error, value: 0n };
}

// ---- the extension table -------------------------------------------------------------------

export interface SbiFunction {
  /** Spec name without the sbi_ prefix, e.g. "set_timer"; used in counters as "TIME.set_timer". */
  name: string;
  /**
   * Serves the call. Validates every argument itself: guest input never makes it throw, so a
   * throw means a Parley bug and is left to propagate.
   */
  handler(call: SbiCall, host: SbiHost, registry: SbiRegistry): SbiResult;
}

export interface SbiExtension {
  /** The EID, or an inclusive EID range (legacy extensions, SBI spec §5). */
  eid: number | readonly [number, number];
  /** Short name used by counters, e.g. "TIME". */
  name: string;
  /**
   * Legacy calling convention (SBI spec §5): a6 is ignored, functions are keyed by EID instead
   * of FID, and only a0 is written back (a1 is preserved).
   */
  legacy?: boolean;
  /** Functions by FID (by EID for legacy extensions). */
  functions: ReadonlyMap<number, SbiFunction>;
  /** Value returned by probe_extension (SBI spec §4.4); 1 when absent. Must be non-zero. */
  probe?(host: SbiHost): bigint;
}

/** What a handler may ask about the other extensions (the base extension's probe). */
export interface SbiRegistry {
  findExtension(eid: number): SbiExtension | undefined;
}

// ---- HSM states (SBI spec §9, table "HSM Hart States") -------------------------------------
export const SBI_HSM_STATE_STARTED = 0;
export const SBI_HSM_STATE_STOPPED = 1;
export const SBI_HSM_STATE_START_PENDING = 2;
export const SBI_HSM_STATE_STOP_PENDING = 3;
export const SBI_HSM_STATE_SUSPENDED = 4;
export const SBI_HSM_STATE_SUSPEND_PENDING = 5;
export const SBI_HSM_STATE_RESUME_PENDING = 6;
export type HsmState = 0 | 1 | 2 | 3 | 4 | 5 | 6;

// ---- the host ------------------------------------------------------------------------------

/** A span of guest physical addresses. */
export interface PhysicalRange {
  base: bigint;
  size: bigint;
}

/** A remote fence request (SBI spec §8), already validated and normalised. */
export type RemoteFence =
  | { kind: "fence.i" }
  | { kind: "sfence.vma"; range: VirtualRange }
  | { kind: "sfence.vma.asid"; range: VirtualRange; asid: bigint };

/**
 * Virtual addresses to flush: "all" when the spec says the fence covers the whole address space
 * (start and size both 0, or size = 2^XLEN-1; SBI spec §8), else [start, start+size), which the
 * RFENCE extension has checked does not wrap past 2^64.
 */
export type VirtualRange = "all" | { start: bigint; size: bigint };

/**
 * Everything the SBI layer needs from the machine. Hart ids passed in are always valid
 * (0 <= id < hartCount) and guest addresses/lengths are already checked against ramRegions,
 * so implementations need not re-validate guest input.
 */
export interface SbiHost {
  /** Harts are numbered 0..hartCount-1. */
  readonly hartCount: number;
  /** Guest RAM; DBCN buffers and HSM start/resume addresses must lie inside one region. */
  readonly ramRegions: readonly PhysicalRange[];
  /** Values for the base extension's get_mvendorid/marchid/mimpid (SBI spec §4.5-4.7). */
  readonly mvendorid: bigint;
  readonly marchid: bigint;
  readonly mimpid: bigint;

  /** Current HSM state of a hart (SBI spec §9). */
  hartState(hartId: number): HsmState;
  /**
   * Programs the hart's supervisor timer to fire when time >= stimeValue (absolute, in timebase
   * ticks) and clears its pending STIP now (SBI spec §6.1). 2^64-1 means "never".
   */
  setTimer(hartId: number, stimeValue: bigint): void;
  /** Sets SSIP on each target (SBI spec §7.1), waking it if it waits in WFI or is suspended. */
  sendIpi(targets: readonly number[]): void;
  /** Clears SSIP on a hart; returns whether it was pending (legacy clear_ipi, SBI spec §5.4). */
  clearIpi(hartId: number): boolean;
  /** Performs the fence on each target before the calling hart resumes (SBI spec §8). */
  remoteFence(targets: readonly number[], fence: RemoteFence): void;
  /**
   * STOPPED -> START_PENDING: arrange for the hart to start in S-mode at startAddr with
   * a0 = hartId, a1 = opaque, satp = 0, sstatus.SIE = 0 (SBI spec §9.1). The SBI layer has
   * checked the state and the address. Returns SBI_SUCCESS or an error code to pass on.
   */
  hartStart(hartId: number, startAddr: bigint, opaque: bigint): SbiErrorCode;
  /** STARTED -> STOP_PENDING for the calling hart (SBI spec §9.2); it must not run again until started. */
  hartStop(hartId: number): SbiErrorCode;
  /**
   * STARTED -> SUSPEND_PENDING for the calling hart (SBI spec §9.4). suspendType is either
   * SBI_HSM_SUSPEND_RET_DEFAULT (wake by resuming after the ECALL with a0 = SBI_SUCCESS) or
   * SBI_HSM_SUSPEND_NON_RET_DEFAULT (wake at resumeAddr with a0 = hartId, a1 = opaque,
   * satp = 0, sstatus.SIE = 0).
   */
  hartSuspend(hartId: number, suspendType: number, resumeAddr: bigint, opaque: bigint): SbiErrorCode;
  /** Shuts down or reboots the whole machine (SBI spec §10.1); type and reason are validated. */
  systemReset(resetType: number, resetReason: number): void;
  /** Writes to the console without blocking; returns how many bytes were accepted. */
  consoleWrite(bytes: Uint8Array): number;
  /** Returns at most max bytes that are already available, without blocking (may be empty). */
  consoleRead(max: number): Uint8Array;
  /** Copies guest RAM out; undefined when the range is not entirely RAM. */
  readGuest(paddr: bigint, length: number): Uint8Array | undefined;
  /** Copies into guest RAM (invalidating cached code); false when not entirely RAM. */
  writeGuest(paddr: bigint, bytes: Uint8Array): boolean;
  /**
   * Loads an unsigned long the way the hart's S-mode would (current satp, SUM/MXR), for the
   * legacy hart_mask pointer (SBI spec §5.5). undefined when the load would fault. Optional:
   * without it the legacy IPI/fence calls accept only a NULL (all harts) pointer.
   */
  loadSupervisorUlong?(hartId: number, vaddr: bigint): bigint | undefined;
  /**
   * Where the hart's steal-time record lives (SBI spec §16.1), or undefined to stop reporting.
   * The STA extension has checked the address (64-byte aligned, 64 bytes of RAM) and zeroed the
   * record; from now on the host keeps it up to date before each of the hart's slices.
   */
  setStealTimeShmem(hartId: number, addr: bigint | undefined): void;
}
