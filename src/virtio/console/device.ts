// virtio-console (virtio spec 5.3), device ID 3, with a single port and no VIRTIO_CONSOLE_F_MULTIPORT:
// queue 0 is receiveq (port 0, device to driver), queue 1 is transmitq (port 0, driver to device)
// (5.3.2). Linux binds it with drivers/char/virtio_console.c and registers port 0 as the hvc
// console `hvc0` (console=hvc0). Its hvc put_chars() path makes a transmit buffer available and
// then spins until the device returns it, so transmit buffers are completed inside queueNotify().
//
// Input from the host is kept in a bounded FIFO on the host side and copied into receive buffers
// as the driver makes them available (5.3.5: the driver populates the receiveq); bytes
// typed before the driver is ready are therefore not lost, and receive() tells the caller how many
// bytes it took so that the rest can be offered again later.
import type { DescriptorChain, VirtioDevice, VirtioDeviceContext } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import { VIRTIO_ID_CONSOLE, featureBit } from "../constants.ts";
import { readFromChain, writeToChain } from "../queue/chain.ts";
import { bytesToHex, SnapshotError, stateBytes, stateInt, stateObject, stateRecord } from "../../platform/persist.ts";

/**
 * A console's snapshot: the console size, counters and the host input not yet delivered (at most
 * maxPendingInput bytes). The device holds no chain between calls, so nothing else is needed:
 * receive buffers the driver posted are in the ring, in guest RAM.
 */
export interface VirtioConsoleState {
  version: 1;
  cols: number;
  rows: number;
  pendingInput: string;
  counters: VirtioConsoleCounters;
}

/** Spec 5.3.3 feature bits. */
export const VIRTIO_CONSOLE_F_SIZE = 0;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;
/** Spec 5.3.2 virtqueues without VIRTIO_CONSOLE_F_MULTIPORT. */
export const VIRTIO_CONSOLE_RECEIVEQ = 0;
export const VIRTIO_CONSOLE_TRANSMITQ = 1;
/**
 * Spec 5.3.4: struct virtio_console_config, 12 bytes. Linux (include/uapi/linux/virtio_console.h,
 * read by config_work_handler()), QEMU and crosvm all place cols at offset 0 and rows at 2; some
 * revisions of the spec's struct list rows first. Parley follows the driver that reads it.
 */
export const VIRTIO_CONSOLE_CONFIG_COLS = 0;
export const VIRTIO_CONSOLE_CONFIG_ROWS = 2;
export const VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS = 4;
export const VIRTIO_CONSOLE_CONFIG_EMERG_WR = 8;
const CONFIG_SIZE = 12;

export interface VirtioConsoleOptions {
  /** Bytes the guest wrote to the console (a copy the callee may keep). */
  output: (bytes: Uint8Array) => void;
  /** Default "virtio-console0". */
  name?: string;
  /** QueueNumMax of both queues (default 64). */
  queueSize?: number;
  /** Console size (each 1..0xffff): offers VIRTIO_CONSOLE_F_SIZE when given (change it with setSize()). */
  size?: { cols: number; rows: number };
  /** Offer VIRTIO_CONSOLE_F_EMERG_WRITE: single bytes written to emerg_wr are output (default true). */
  emergencyWrite?: boolean;
  /** Host input kept while the guest has no receive buffer (default 64 KiB). */
  maxPendingInput?: number;
  /** Output taken from one transmit buffer at most; the rest is dropped and counted (default 64 KiB). */
  maxOutputPerBuffer?: number;
}

export interface VirtioConsoleCounters {
  /** Bytes delivered to the guest. */
  bytesIn: number;
  /** Bytes the guest wrote (transmitq and emerg_wr). */
  bytesOut: number;
  /** Receive buffers filled and returned. */
  chainsIn: number;
  /** Transmit buffers consumed. */
  chainsOut: number;
  /** Host input refused by receive() because the pending FIFO was full. */
  inputRefused: number;
  /** Bytes of oversized transmit buffers that were not output. */
  outputDropped: number;
  /** Bytes written through emerg_wr. */
  emergencyBytes: number;
  /** Configuration writes to read-only fields (ignored). */
  configWritesIgnored: number;
}

/** A fixed-capacity byte FIFO (no allocation after construction). */
class ByteFifo {
  private readonly buf: Uint8Array;
  private head = 0;
  length = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }
  get free(): number {
    return this.buf.length - this.length;
  }
  push(bytes: Uint8Array): number {
    const n = Math.min(bytes.length, this.free);
    for (let i = 0; i < n; ) {
      const tail = (this.head + this.length) % this.buf.length;
      const k = Math.min(n - i, this.buf.length - tail);
      this.buf.set(bytes.subarray(i, i + k), tail);
      this.length += k;
      i += k;
    }
    return n;
  }
  /** The oldest contiguous bytes (up to `max`), without removing them. */
  peek(max: number): Uint8Array {
    const k = Math.min(max, this.length, this.buf.length - this.head);
    return this.buf.subarray(this.head, this.head + k);
  }
  drop(n: number): void {
    this.head = (this.head + n) % this.buf.length;
    this.length -= n;
  }
  get capacity(): number {
    return this.buf.length;
  }
  /** Every byte held, oldest first (a copy). */
  contents(): Uint8Array {
    const out = new Uint8Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.buf[(this.head + i) % this.buf.length];
    return out;
  }
  clear(): void {
    this.head = 0;
    this.length = 0;
  }
}

/** Spec 5.3.4: cols and rows are le16; a console of 0 columns or rows is no console. */
export const VIRTIO_CONSOLE_MAX_DIMENSION = 0xffff;

/** Throws a RangeError naming the field unless both are whole numbers in 1..0xffff. */
export function checkConsoleSize(cols: number, rows: number): void {
  for (const [field, value] of [["cols", cols], ["rows", rows]] as const) {
    if (!Number.isInteger(value) || value < 1 || value > VIRTIO_CONSOLE_MAX_DIMENSION) {
      throw new RangeError(`virtio-console size: ${field} must be a whole number from 1 to ${VIRTIO_CONSOLE_MAX_DIMENSION}, not ${value}`);
    }
  }
}

export class VirtioConsoleDevice implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_CONSOLE;
  readonly name: string;
  readonly queueSizes: readonly number[];
  readonly deviceFeatures: bigint;
  readonly counters: VirtioConsoleCounters = {
    bytesIn: 0,
    bytesOut: 0,
    chainsIn: 0,
    chainsOut: 0,
    inputRefused: 0,
    outputDropped: 0,
    emergencyBytes: 0,
    configWritesIgnored: 0,
  };
  private readonly output: (bytes: Uint8Array) => void;
  private readonly input: ByteFifo;
  private readonly maxOutput: number;
  private readonly sizeOffered: boolean;
  private readonly emergencyOffered: boolean;
  private cols: number;
  private rows: number;
  private context: VirtioDeviceContext | undefined;
  /** quiesce()d: input is kept in the FIFO and no queue is touched until unquiesce(). */
  private quiesced = false;

  constructor(options: VirtioConsoleOptions) {
    this.output = options.output;
    this.name = options.name ?? "virtio-console0";
    const q = options.queueSize ?? 64;
    this.queueSizes = [q, q];
    this.sizeOffered = options.size !== undefined;
    this.emergencyOffered = options.emergencyWrite ?? true;
    if (options.size) checkConsoleSize(options.size.cols, options.size.rows);
    // Without VIRTIO_CONSOLE_F_SIZE the fields read as 0 (the driver does not look at them).
    this.cols = options.size?.cols ?? 0;
    this.rows = options.size?.rows ?? 0;
    let features = 0n;
    if (this.sizeOffered) features |= featureBit(VIRTIO_CONSOLE_F_SIZE);
    if (this.emergencyOffered) features |= featureBit(VIRTIO_CONSOLE_F_EMERG_WRITE);
    this.deviceFeatures = features;
    this.input = new ByteFifo(Math.max(1, options.maxPendingInput ?? 64 << 10));
    this.maxOutput = Math.max(1, options.maxOutputPerBuffer ?? 64 << 10);
  }

  /** Host input bytes waiting for a receive buffer. */
  get pendingInput(): number {
    return this.input.length;
  }

  /**
   * Queues host input for the guest and delivers what the available receive buffers can take.
   * Returns how many bytes were accepted (the rest did not fit in the pending FIFO).
   */
  receive(bytes: Uint8Array): number {
    const accepted = this.input.push(bytes);
    this.counters.inputRefused += bytes.length - accepted;
    this.deliver();
    return accepted;
  }

  /** The console size the config space reports ({ 0, 0 } without VIRTIO_CONSOLE_F_SIZE). */
  get size(): { cols: number; rows: number } {
    return { cols: this.cols, rows: this.rows };
  }

  /**
   * Spec 5.3.4/5.3.6: a new console size, announced by a configuration change notification. Linux
   * (config_work_handler, non-multiport) then reads cols and rows and resizes hvc0, so the guest's
   * `stty size` follows. Throws a RangeError, changing nothing, for a size outside 1..0xffff or on
   * a console made without a size (VIRTIO_CONSOLE_F_SIZE was not offered, the driver would not look).
   */
  setSize(cols: number, rows: number): void {
    checkConsoleSize(cols, rows);
    if (!this.sizeOffered) throw new RangeError(`${this.name}: made without a size (VIRTIO_CONSOLE_F_SIZE not offered), so it cannot be resized`);
    if (cols === this.cols && rows === this.rows) return;
    this.cols = cols;
    this.rows = rows;
    // Before DRIVER_OK there is no one to tell: the driver reads the fields when it sets up.
    // While quiesced the transport holds the interrupt until it resumes.
    this.context?.notifyConfigChange();
  }

  // ---- pause and snapshot -----------------------------------------------------------------------
  /** Holds input in the FIFO (overflow counted in inputRefused) and touches no queue until unquiesce(). */
  async quiesce(): Promise<void> {
    this.quiesced = true;
  }

  unquiesce(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.transmit();
    this.deliver();
  }

  saveState(): VirtioConsoleState {
    return { version: 1, cols: this.cols, rows: this.rows, pendingInput: bytesToHex(this.input.contents()), counters: { ...this.counters } };
  }

  restoreState(value: unknown): void {
    const where = this.name;
    const r = stateObject(value, where, [1]);
    // A console made with a size has one in 1..0xffff; one made without reports 0 x 0.
    const [min, max] = this.sizeOffered ? [1, VIRTIO_CONSOLE_MAX_DIMENSION] : [0, 0];
    const cols = stateInt(r.cols, `${where}.cols`, min, max);
    const rows = stateInt(r.rows, `${where}.rows`, min, max);
    const input = stateBytes(r.pendingInput, `${where}.pendingInput`);
    if (input.length > this.input.capacity) {
      throw new SnapshotError(`${where}.pendingInput: ${input.length} bytes exceed this console's input buffer of ${this.input.capacity}`);
    }
    const c = stateRecord(r.counters, `${where}.counters`);
    const counters = { ...this.counters };
    for (const key of Object.keys(counters) as (keyof VirtioConsoleCounters)[]) counters[key] = stateInt(c[key], `${where}.counters.${key}`);
    this.cols = cols;
    this.rows = rows;
    this.input.clear();
    this.input.push(input);
    Object.assign(this.counters, counters);
  }

  // ---- VirtioDevice ----------------------------------------------------------------------------
  readConfig(offset: number, size: number): number | undefined {
    if (offset < 0 || offset + size > CONFIG_SIZE) return undefined;
    const config = new DataView(new ArrayBuffer(CONFIG_SIZE));
    config.setUint16(VIRTIO_CONSOLE_CONFIG_COLS, this.cols, true);
    config.setUint16(VIRTIO_CONSOLE_CONFIG_ROWS, this.rows, true);
    config.setUint32(VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS, 1, true);
    config.setUint32(VIRTIO_CONSOLE_CONFIG_EMERG_WR, 0, true);
    if (size === 1) return config.getUint8(offset);
    if (size === 2) return config.getUint16(offset, true);
    if (size === 4) return config.getUint32(offset, true);
    return undefined;
  }

  writeConfig(offset: number, size: number, value: number): boolean {
    if (offset < 0 || offset + size > CONFIG_SIZE) return false;
    if (offset === VIRTIO_CONSOLE_CONFIG_EMERG_WR && this.emergencyOffered) {
      // Spec 5.3.5.1: a write to emerg_wr is allowed even on an unconfigured device; its lower
      // byte goes to the output.
      this.output(Uint8Array.of(value & 0xff));
      this.counters.emergencyBytes++;
      this.counters.bytesOut++;
      return true;
    }
    this.counters.configWritesIgnored++;
    return true;
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
    // Buffers made available before DRIVER_OK were not announced to the device: look now.
    this.transmit();
    this.deliver();
  }

  queueNotify(queueIndex: number): void {
    if (queueIndex === VIRTIO_CONSOLE_TRANSMITQ) this.transmit();
    else if (queueIndex === VIRTIO_CONSOLE_RECEIVEQ) this.deliver();
  }

  reset(): void {
    // Host input stays queued for the next driver; guest state goes.
    this.context = undefined;
  }

  // ---- data path --------------------------------------------------------------------------------
  /** Spec 5.3.6: the driver-to-device direction: output every available transmit buffer. */
  private transmit(): void {
    const context = this.context;
    if (!context || this.quiesced) return;
    const queue = context.queues[VIRTIO_CONSOLE_TRANSMITQ];
    this.drain(context, VIRTIO_CONSOLE_TRANSMITQ, () => {
      const chain = queue.pop();
      if (!chain) return false;
      const n = Math.min(chain.readableLength, this.maxOutput);
      if (n > 0) {
        const bytes = new Uint8Array(n);
        readFromChain(context.memory, chain, 0, bytes);
        this.output(bytes);
      }
      this.counters.outputDropped += chain.readableLength - n;
      this.counters.bytesOut += n;
      this.counters.chainsOut++;
      queue.pushUsed(chain, 0);
      return true;
    });
  }

  /** Spec 5.3.6: the device-to-driver direction: fill receive buffers from the pending input. */
  private deliver(): void {
    const context = this.context;
    if (!context || this.quiesced || this.input.length === 0) return;
    const queue = context.queues[VIRTIO_CONSOLE_RECEIVEQ];
    this.drain(context, VIRTIO_CONSOLE_RECEIVEQ, () => {
      if (this.input.length === 0) return false;
      const chain = queue.pop();
      if (!chain) return false;
      const written = this.fillReceiveBuffer(context, chain);
      queue.pushUsed(chain, written);
      this.counters.bytesIn += written;
      this.counters.chainsIn++;
      return true;
    });
  }

  private fillReceiveBuffer(context: VirtioDeviceContext, chain: DescriptorChain): number {
    let written = 0;
    while (this.input.length > 0 && written < chain.writableLength) {
      const piece = this.input.peek(chain.writableLength - written);
      const n = writeToChain(context.memory, chain, written, piece);
      this.input.drop(n);
      written += n;
      if (n < piece.length) break;
    }
    return written;
  }

  /** Runs `step` until it returns false, then signals the queue; a malformed ring ends in a reset. */
  private drain(context: VirtioDeviceContext, queueIndex: number, step: () => boolean): void {
    let used = 0;
    let error: string | undefined;
    try {
      while (step()) used++;
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      error = e.message;
    }
    if (used > 0) context.notifyUsed(queueIndex);
    if (error !== undefined) context.needsReset(error);
  }
}
