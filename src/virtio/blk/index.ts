// virtio-blk (virtio spec 1.3, 5.2): the device model, its backend contract and helpers.
export { VirtioBlk, BLK_IO_CHUNK, BLK_DEFAULT_QUEUE_SIZE } from "./device.ts";
export type { VirtioBlkOptions, VirtioBlkSnapshot } from "./device.ts";
export { MemoryBlockBackend, encodeBlockId, validateBlockId } from "./backend.ts";
export type { BlockBackend, MemoryBlockBackendOptions } from "./backend.ts";
export { parseRequest } from "./request.ts";
export type { BlkParseResult, BlkRequest, BlkRequestLimits } from "./request.ts";
export type { VirtioBlkCounters, VirtioBlkState } from "./state.ts";
export { VIRTIO_ID_BLOCK } from "./spec.ts";
// qcow2 images over an injected file (the host opens files and backing chains).
export { Qcow2Image, readQcow2Header } from "./qcow2/image.ts";
export type { Qcow2Counters, Qcow2OpenOptions } from "./qcow2/image.ts";
export { Qcow2FormatError, parseQcow2Header, newQcow2Image } from "./qcow2/header.ts";
export type { Qcow2Header } from "./qcow2/header.ts";
export type { ImageReader, RandomAccessFile } from "./qcow2/file.ts";
