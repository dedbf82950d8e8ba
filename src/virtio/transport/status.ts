// The virtio device-status state machine (virtio spec 2.1, 3.1.1 "Driver Requirements: Device
// Initialization") as an explicit table, and the feature-negotiation rule FEATURES_OK applies.
// Pure; the MMIO transport (mmio.ts) consults both for every Status write.
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, FAILED, FEATURES_OK, VIRTIO_F_VERSION_1, hasFeature } from "../constants.ts";

export type StatusAction = "acknowledge" | "driver" | "featuresOk" | "driverOk" | "failed" | "reset";

/** The states the driver walks through (values of the status field without DEVICE_NEEDS_RESET). */
export const STATUS_RESET = 0;
export const STATUS_ACKNOWLEDGED = ACKNOWLEDGE;
export const STATUS_DRIVER = ACKNOWLEDGE | DRIVER;
export const STATUS_FEATURES_OK = ACKNOWLEDGE | DRIVER | FEATURES_OK;
export const STATUS_LIVE = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;
/** Matches any current state in STATUS_TRANSITIONS. */
export const ANY_STATUS = -1;

/**
 * Every status write the device accepts. Anything else is ignored and counted; writing the
 * current value again is not a transition. DEVICE_NEEDS_RESET is the device's bit: it is masked
 * out of what the driver writes (Linux writes back get_status() | bit).
 */
export const STATUS_TRANSITIONS: readonly { readonly from: number; readonly to: number; readonly action: StatusAction }[] = [
  // Spec 3.1.1 steps 1-2, 3, 5 and 8.
  { from: STATUS_RESET, to: STATUS_ACKNOWLEDGED, action: "acknowledge" },
  { from: STATUS_ACKNOWLEDGED, to: STATUS_DRIVER, action: "driver" },
  // Guarded: refused (the bit stays clear, spec 2.2.2) when the features are not acceptable.
  { from: STATUS_DRIVER, to: STATUS_FEATURES_OK, action: "featuresOk" },
  { from: STATUS_FEATURES_OK, to: STATUS_LIVE, action: "driverOk" },
  // Spec 2.1: FAILED, "the guest has given up on the device", may be added at any stage.
  { from: STATUS_RESET, to: FAILED, action: "failed" },
  { from: STATUS_ACKNOWLEDGED, to: STATUS_ACKNOWLEDGED | FAILED, action: "failed" },
  { from: STATUS_DRIVER, to: STATUS_DRIVER | FAILED, action: "failed" },
  { from: STATUS_FEATURES_OK, to: STATUS_FEATURES_OK | FAILED, action: "failed" },
  { from: STATUS_LIVE, to: STATUS_LIVE | FAILED, action: "failed" },
  // Spec 2.4 / 4.2.2 Status: writing zero resets the device, from any state.
  { from: ANY_STATUS, to: STATUS_RESET, action: "reset" },
];

const transitionIndex = new Map<number, StatusAction>();
for (const t of STATUS_TRANSITIONS) transitionIndex.set(t.from * 256 + t.to, t.action);

/** The action of writing `to` in state `from`, or undefined when the write is not allowed. Pure. */
export function statusTransition(from: number, to: number): StatusAction | undefined {
  if (!Number.isInteger(to) || to < 0 || to > 0xff) return undefined;
  return transitionIndex.get(from * 256 + to) ?? transitionIndex.get(ANY_STATUS * 256 + to);
}

/** Spec 2.2: device-type bits are 0-23 and 50-127; 24-49 belong to the transport and queues. */
export const DEVICE_FEATURE_MASK = (1n << 24n) - 1n | (((1n << 64n) - 1n) ^ ((1n << 50n) - 1n));

/**
 * Spec 2.2.1 / 2.2.2: whether the device accepts the driver's feature set: nothing that was not
 * offered, and VIRTIO_F_VERSION_1 (a version 2 MMIO device has no legacy interface). Pure.
 */
export function featuresAcceptable(offered: bigint, accepted: bigint): string | undefined {
  if ((accepted & ~offered) !== 0n) return `driver accepted features 0x${(accepted & ~offered).toString(16)} that were not offered`;
  if (!hasFeature(accepted, VIRTIO_F_VERSION_1)) return "driver did not accept VIRTIO_F_VERSION_1";
  return undefined;
}
