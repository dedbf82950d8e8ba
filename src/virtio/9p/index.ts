// virtio-9p: shared folders over the 9P2000.L protocol (device.ts, server.ts, codec.ts).
export { VirtioNinep, type VirtioNinepOptions, type VirtioNinepCounters, type VirtioNinepState } from "./device.ts";
export { NinepServer, P9_MIN_MSIZE, P9_DEFAULT_MAX_MSIZE, checkName, type NinepCounters, type NinepServerOptions } from "./server.ts";
export type { ShareBackend, ShareStat, ShareDirEntry, ShareStatfs, ShareOpenMode, ShareHandle, ShareFileType } from "./backend.ts";
export * from "./spec.ts";
