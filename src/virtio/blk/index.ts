// virtio-blk (virtio spec 1.3, 5.2): the device model, its backend contract and helpers.
export { VirtioBlk, BLK_IO_CHUNK, BLK_DEFAULT_QUEUE_SIZE } from "./device.ts";
export type { VirtioBlkOptions, VirtioBlkSnapshot } from "./device.ts";
export { MemoryBlockBackend, encodeBlockId, validateBlockId } from "./backend.ts";
export type { BlockBackend, MemoryBlockBackendOptions } from "./backend.ts";
export { parseRequest } from "./request.ts";
export type { BlkParseResult, BlkRequest, BlkRequestLimits } from "./request.ts";
export type { VirtioBlkCounters, VirtioBlkState } from "./state.ts";
export { VIRTIO_ID_BLOCK } from "./spec.ts";
