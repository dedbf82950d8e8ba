// virtio-balloon (virtio spec 1.3, 5.5): the device model and its pure helpers.
export { VirtioBalloon, BALLOON_MAX_PFNS_PER_REQUEST, type VirtioBalloonOptions, type BalloonCounters } from "./device.ts";
export { decodePfns, decodeBalloonStats, namedBalloonStats, alignRangeInward, type BalloonStats, type PageRun } from "./parse.ts";
export * from "./spec.ts";
