// The contract between Parley's virtio core (queues, transport) and its device models.
// Terms and section numbers follow the Virtual I/O Device (VIRTIO) specification, version 1.3
// ("virtio spec"). Nothing here imports Node or the DOM; backends that touch the host are
// injected into device models from src/host/*.
//
// The guest is untrusted: everything read from guest memory (rings, descriptors, request headers)
// is validated by the core or by the device's pure parsing functions before it is used.
import type { VersionedState } from "../platform/persist.ts";

/** Guest physical memory as devices see it (DMA). Every access is bounds-checked against RAM. */
export interface GuestMemory {
  /** True when [paddr, paddr + length) lies entirely inside guest RAM. */
  contains(paddr: number, length: number): boolean;
  /**
   * A view of guest RAM (no copy), or undefined when the range is not entirely RAM. Writing
   * through the view must be followed by written() so cached decoded code is dropped.
   */
  view(paddr: number, length: number): Uint8Array | undefined;
  /** Copies bytes into guest RAM; false (and nothing written) when not entirely RAM. */
  write(paddr: number, bytes: Uint8Array): boolean;
  /** Reports a write made through view(). */
  written(paddr: number, length: number): void;
}

/** One guest buffer of a descriptor chain, already checked to lie inside guest RAM. */
export interface GuestBuffer {
  addr: number;
  len: number;
}

/**
 * A request taken from a virtqueue: the chain's device-readable buffers (driver to device,
 * "out") followed by its device-writable ones (device to driver, "in"), virtio spec 2.7.4.2.
 */
export interface DescriptorChain {
  /** What the device returns in the used ring: the head index (split) or buffer id (packed). */
  readonly id: number;
  readonly readable: readonly GuestBuffer[];
  readonly writable: readonly GuestBuffer[];
  readonly readableLength: number;
  readonly writableLength: number;
  /** Number of descriptors the chain used (packed rings advance by this much). */
  readonly descriptorCount: number;
}

/** A malformed ring or chain: the device must stop using the queue and ask for a reset. */
export class VirtqueueError extends Error {
  override name = "VirtqueueError";
}

export interface VirtqueueCounters {
  /** Chains taken from the available ring. */
  popped: number;
  /** Chains returned through the used ring. */
  used: number;
  /** Notifications (kicks) the driver sent for this queue. */
  notificationsReceived: number;
  /** Used-buffer interrupts the device asked for / did not need (driver suppression, EVENT_IDX). */
  interruptsSent: number;
  interruptsSuppressed: number;
  /** Chains consumed but rejected as malformed. */
  rejected: number;
}

/** A split (spec 2.7) or packed (spec 2.8) virtqueue after the driver set it up. */
export interface Virtqueue {
  readonly index: number;
  readonly size: number;
  readonly counters: VirtqueueCounters;
  /**
   * The next available chain, or undefined when the driver has made none available. Throws
   * VirtqueueError for a malformed ring or chain; the rejected chain is consumed first (returned
   * used with length 0 when possible) so that a device never spins on the same bad entry.
   */
  pop(): DescriptorChain | undefined;
  /** Returns a chain to the driver with `written` bytes written into its writable buffers. */
  pushUsed(chain: DescriptorChain, written: number): void;
  /**
   * After one or more pushUsed calls: whether the driver wants a used-buffer notification now
   * (VIRTQ_AVAIL_F_NO_INTERRUPT / used_event for split, event suppression for packed). Counts
   * the decision in counters.
   */
  shouldInterrupt(): boolean;
  /**
   * Asks the driver to send (true) or not to send (false) notifications for new buffers
   * (VIRTQ_USED_F_NO_NOTIFY / avail_event for split, event suppression for packed).
   */
  setNotifications(enabled: boolean): void;
  /**
   * Gives back the most recently popped chain that is still outstanding, untouched: the queue's
   * read position moves back over it, so the next pop() returns the same chain again. For a device
   * that took a chain it cannot finish now (a request waiting for rate-limiter tokens, receive
   * buffers held for a frame) when it pauses for a snapshot: the chain is then simply popped again
   * after resume or restore, and no device needs to save descriptor heads. Chains must be given
   * back newest first and nothing may have been written into them. Throws VirtqueueError otherwise.
   */
  unpop(chain: DescriptorChain): void;
}

/** What an activated device model uses to reach the driver. */
export interface VirtioDeviceContext {
  readonly memory: GuestMemory;
  /** The queues, index = virtqueue number. */
  readonly queues: readonly Virtqueue[];
  /** The features the driver accepted (FEATURES_OK). */
  readonly features: bigint;
  /** Signals used buffers on a queue: raises the interrupt if the queue's shouldInterrupt() says so. */
  notifyUsed(queueIndex: number): void;
  /** Raises a configuration-change interrupt (spec 2.5.2 / 4.2.2). */
  notifyConfigChange(): void;
  /**
   * An unrecoverable guest error: sets DEVICE_NEEDS_RESET and raises a configuration interrupt
   * (spec 2.1.2). The device processes nothing further until the driver resets it.
   */
  needsReset(reason: string): void;
}

/** A virtio device model (spec chapter 5), independent of the transport that carries it. */
export interface VirtioDevice {
  /** Device ID (spec 5: 1 net, 2 block, 3 console, 4 entropy, 5 balloon, 19 vsock, ...). */
  readonly deviceId: number;
  /** Short name for counters and logs, e.g. "virtio-blk0". */
  readonly name: string;
  /** Maximum size of each virtqueue; the length is the number of queues. */
  readonly queueSizes: readonly number[];
  /** Device-specific feature bits offered (bits 0-23 and others); the transport adds the generic ones. */
  readonly deviceFeatures: bigint;
  /** Device configuration space (spec 4.2.2: MMIO offset 0x100 onward); undefined faults the access. */
  readConfig(offset: number, size: number): number | undefined;
  /** Driver write to configuration space; false faults the access. */
  writeConfig(offset: number, size: number, value: number): boolean;
  /** DRIVER_OK: the queues are live. */
  activate(context: VirtioDeviceContext): void;
  /** The driver notified (kicked) a queue. Must return promptly: slow work completes later. */
  queueNotify(queueIndex: number): void;
  /** Device reset (status written 0, or after NEEDS_RESET): drop in-flight state. */
  reset(): void;
  /**
   * Pause for a snapshot or a stopped machine (VirtioMmioTransport.pause()). When the promise
   * resolves the device has no host I/O in flight (started work has completed and its used
   * buffers are published), holds no popped chain (those it could not finish are given back with
   * Virtqueue.unpop), runs no timer, and until unquiesce() it writes no guest memory, uses no
   * buffer and asks for no interrupt. Input from host backends arriving meanwhile is held (in the
   * device, bounded and counted when dropped, or left in the backend). Idempotent.
   */
  quiesce?(): Promise<void>;
  /** Ends quiesce(): timers restart and held input and pending queue work are processed. */
  unquiesce?(): void;
  /**
   * The device's part of a snapshot (src/platform/persist.ts), taken while quiesced. Restored onto
   * a freshly constructed device of the same configuration before the transport activates it.
   */
  saveState?(): VersionedState;
  restoreState?(state: unknown): void;
}
