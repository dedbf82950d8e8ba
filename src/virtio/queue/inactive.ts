// A queue the driver did not set up (QueueReady never 1): the device sees an empty queue.
import type { DescriptorChain, Virtqueue, VirtqueueCounters } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import { newVirtqueueCounters } from "./split.ts";

export class InactiveVirtqueue implements Virtqueue {
  readonly size = 0;
  readonly counters: VirtqueueCounters = newVirtqueueCounters();
  constructor(readonly index: number) {}
  pop(): DescriptorChain | undefined {
    return undefined;
  }
  pushUsed(_chain: DescriptorChain, _written: number): void {
    throw new VirtqueueError(`queue ${this.index} is not set up`);
  }
  shouldInterrupt(): boolean {
    return false;
  }
  setNotifications(_enabled: boolean): void {}
  unpop(_chain: DescriptorChain): void {
    throw new VirtqueueError(`queue ${this.index} is not set up`);
  }
}
