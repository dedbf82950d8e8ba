// virtio-vsock (virtio spec 1.3, 5.10): the device model, its backend interface and pure helpers.
export { VirtioVsock, VSOCK_MAX_PKT_PAYLOAD, VSOCK_HOST_PORT_BASE, type VirtioVsockOptions, type VsockCounters } from "./device.ts";
export type { VsockBackend, VsockConnection, VsockConnectRequest, VsockDeviceApi, VsockHostStream, VsockCloseReason } from "./backend.ts";
export { parseVsockHeader, buildVsockHeader, writeVsockHeader, vsockHeader, replyTo, type VsockHeader } from "./header.ts";
export { vsockTransition, VSOCK_TRANSITIONS, peerFree, fitsOurBuffer, type VsockState, type VsockAction } from "./connection.ts";
export * from "./spec.ts";
