// virtio-9p: device ID 9, one virtqueue ("requests"), feature VIRTIO_9P_MOUNT_TAG and a
// configuration space holding the mount tag (struct virtio_9p_config: le16 tag_len, then the tag's
// bytes, not NUL-terminated). Each chain the driver makes available is one request: its readable
// part a T-message, its writable part room for the R-message (Linux's net/9p/trans_virtio.c, which
// for large reads and writes puts the data in pages of their own after an 11-byte header: the
// chain reader sees one byte stream either way). Requests are served concurrently and completed in
// whatever order the host finishes them; the tag matches replies to requests.
//
// A T-message is read into host memory only after its size field was checked against the
// negotiated msize and the chain's readable length, so one request holds at most msize bytes.
import type { DescriptorChain, VirtioDevice, VirtioDeviceContext } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import { VIRTIO_ID_9P, featureBit } from "../constants.ts";
import { readExactly, writeToChain } from "../queue/chain.ts";
import { stateInt, stateObject, stateRecord, type VersionedState } from "../../platform/persist.ts";
import { MOUNT_TAG_PATTERN, P9_HEADER_SIZE, VIRTIO_9P_CONFIG_TAG_OFFSET, VIRTIO_9P_MOUNT_TAG, VIRTIO_9P_REQUESTQ } from "./spec.ts";
import { parseHeader } from "./codec.ts";
import { NinepServer, type NinepCounters, type NinepServerOptions, type NinepServerState } from "./server.ts";
import type { ShareBackend } from "./backend.ts";

export interface VirtioNinepOptions extends NinepServerOptions {
  backend: ShareBackend;
  tag: string;
  /** Default "virtio-9p0". */
  name?: string;
  /** QueueNumMax (default 128, Linux's VIRTQUEUE_NUM for 9p). */
  queueSize?: number;
}

export interface VirtioNinepCounters extends NinepCounters {
  /** Chains whose T-message could not even be framed (answered with a zero-length reply). */
  malformedChains: number;
  inFlight: number;
  inFlightMax: number;
  /** Completions dropped because the device was reset while they ran. */
  droppedAfterReset: number;
}

export interface VirtioNinepState extends VersionedState {
  version: 1;
  server: NinepServerState;
  counters: { malformedChains: number; errors: number; bytesRead: number; bytesWritten: number; requests: Record<string, number> };
}

export class VirtioNinep implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_9P;
  readonly name: string;
  readonly queueSizes: readonly number[];
  readonly deviceFeatures = featureBit(VIRTIO_9P_MOUNT_TAG);
  readonly tag: string;
  readonly server: NinepServer;
  private readonly config: Uint8Array;
  private context: VirtioDeviceContext | undefined;
  private quiesced = false;
  /** Bumped at reset: completions of an older generation are dropped. */
  private generation = 0;
  private inFlight = 0;
  private inFlightMax = 0;
  private malformedChains = 0;
  private droppedAfterReset = 0;
  private drainWaiters: (() => void)[] = [];

  constructor(options: VirtioNinepOptions) {
    if (!MOUNT_TAG_PATTERN.test(options.tag)) throw new RangeError(`mount tag "${options.tag}" must be 1-31 letters, digits, '_', '.' or '-'`);
    this.name = options.name ?? "virtio-9p0";
    this.tag = options.tag;
    this.queueSizes = [options.queueSize ?? 128];
    this.server = new NinepServer(options.backend, options);
    const tagBytes = new TextEncoder().encode(options.tag);
    this.config = new Uint8Array(VIRTIO_9P_CONFIG_TAG_OFFSET + tagBytes.length);
    this.config[0] = tagBytes.length & 0xff;
    this.config[1] = tagBytes.length >> 8;
    this.config.set(tagBytes, VIRTIO_9P_CONFIG_TAG_OFFSET);
  }

  get counters(): VirtioNinepCounters {
    return {
      ...this.server.counters,
      requests: { ...this.server.counters.requests },
      malformedChains: this.malformedChains,
      inFlight: this.inFlight,
      inFlightMax: this.inFlightMax,
      droppedAfterReset: this.droppedAfterReset,
    };
  }

  readConfig(offset: number, size: number): number | undefined {
    if ((size !== 1 && size !== 2 && size !== 4) || !Number.isInteger(offset) || offset < 0 || offset + size > this.config.length) return undefined;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.config[offset + i];
    return v;
  }

  writeConfig(): boolean {
    return false; // the tag is read-only
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
    this.service();
  }

  queueNotify(queueIndex: number): void {
    if (queueIndex === VIRTIO_9P_REQUESTQ) this.service();
  }

  reset(): void {
    this.context = undefined;
    this.generation++;
    void this.server.reset();
  }

  async quiesce(): Promise<void> {
    this.quiesced = true;
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  unquiesce(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.service();
  }

  saveState(): VirtioNinepState {
    if (this.inFlight !== 0) throw new Error(`${this.name}: ${this.inFlight} requests in flight; quiesce() before saveState()`);
    const c = this.server.counters;
    return {
      version: 1,
      server: this.server.saveState(),
      counters: { malformedChains: this.malformedChains, errors: c.errors, bytesRead: c.bytesRead, bytesWritten: c.bytesWritten, requests: { ...c.requests } },
    };
  }

  restoreState(value: unknown): void {
    const where = this.name;
    const s = stateObject(value, where, [1]);
    const c = stateRecord(s.counters, `${where}.counters`);
    const requests = stateRecord(c.requests, `${where}.counters.requests`);
    const counted: Record<string, number> = {};
    for (const [kind, n] of Object.entries(requests)) counted[kind] = stateInt(n, `${where}.counters.requests.${kind}`);
    const malformedChains = stateInt(c.malformedChains, `${where}.counters.malformedChains`);
    const errors = stateInt(c.errors, `${where}.counters.errors`);
    const bytesRead = stateInt(c.bytesRead, `${where}.counters.bytesRead`);
    const bytesWritten = stateInt(c.bytesWritten, `${where}.counters.bytesWritten`);
    this.server.restoreState(s.server, `${where}.server`);
    Object.assign(this.server.counters, { requests: counted, errors, bytesRead, bytesWritten });
    this.malformedChains = malformedChains;
  }

  /** Takes every available request and starts serving it. */
  private service(): void {
    const context = this.context;
    if (!context || this.quiesced) return;
    const queue = context.queues[VIRTIO_9P_REQUESTQ];
    let rejected = 0;
    try {
      for (;;) {
        const chain = queue.pop();
        if (!chain) break;
        const message = this.frame(context, chain);
        if (!message) {
          this.malformedChains++;
          queue.pushUsed(chain, 0);
          rejected++;
          continue;
        }
        this.start(context, chain, message);
      }
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      if (rejected > 0) context.notifyUsed(VIRTIO_9P_REQUESTQ);
      context.needsReset(e.message);
      return;
    }
    if (rejected > 0) context.notifyUsed(VIRTIO_9P_REQUESTQ);
  }

  /** The chain's T-message, when its size field is sane (at least a header, within msize and the chain). */
  private frame(context: VirtioDeviceContext, chain: DescriptorChain): Uint8Array | undefined {
    const head = readExactly(context.memory, chain.readable, 0, P9_HEADER_SIZE);
    const header = head && parseHeader(head);
    if (!header || header.size < P9_HEADER_SIZE || header.size > this.server.msize || header.size > chain.readableLength) return undefined;
    return readExactly(context.memory, chain.readable, 0, header.size);
  }

  private start(context: VirtioDeviceContext, chain: DescriptorChain, message: Uint8Array): void {
    const generation = this.generation;
    this.inFlight++;
    if (this.inFlight > this.inFlightMax) this.inFlightMax = this.inFlight;
    void this.server
      .handle(message, chain.writableLength)
      .catch(() => undefined)
      .then((reply) => {
        this.inFlight--;
        if (generation !== this.generation || this.context !== context) this.droppedAfterReset++;
        else {
          const written = reply ? writeToChain(context.memory, chain, 0, reply) : 0;
          try {
            context.queues[VIRTIO_9P_REQUESTQ].pushUsed(chain, written);
            context.notifyUsed(VIRTIO_9P_REQUESTQ);
          } catch (e) {
            if (!(e instanceof VirtqueueError)) throw e;
            context.needsReset(e.message);
          }
        }
        if (this.inFlight === 0) for (const wake of this.drainWaiters.splice(0)) wake();
      });
  }
}
