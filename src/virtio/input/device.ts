// virtio-input (virtio spec 5.8) as a keyboard: device ID 18, two virtqueues (eventq, statusq), no
// feature bits. It exists so that the host can press keys in the guest, above all Ctrl-Alt-Delete
// (Firecracker's SendCtrlAltDel): Linux's virtio_input driver registers an input device, the VT
// keyboard handler turns Ctrl+Alt+Delete into ctrl_alt_del(), and once init has disabled the
// kernel's own C-A-D reboot (busybox init does, reboot(RB_DISABLE_CAD)) the kernel sends SIGINT to
// init, which runs its inittab's ctrlaltdel action.
//
// Configuration space (5.8.4): the driver writes select and subsel, then reads size and the union
// u; Linux's virtinput_probe() asks for ID_NAME, ID_SERIAL, ID_DEVIDS, PROP_BITS, EV_BITS for
// EV_REP, EV_KEY, EV_REL, EV_ABS, EV_MSC, EV_SW, EV_LED and EV_SND, before DRIVER_OK.
//
// Events: the host's key presses are queued (bounded) and each one is written into one buffer the
// driver made available on the eventq. The eventq is only looked at while events wait, so the
// driver's buffers stay in the ring, not in the device. A whole chord (presses, SYN_REPORT,
// releases, SYN_REPORT) is queued or dropped as one (spec 5.8.6.2: a device SHOULD buffer or drop
// an entire sequence). Queued events outlive a device reset: a key pressed before the guest's
// driver has probed (the virtio core resets the device first) reaches the driver that comes.
//
// Status: the driver sends EV_LED events (caps lock ...) on the statusq; they are consumed, counted
// and their LED state kept for inspection.
import type { VirtioDevice, VirtioDeviceContext } from "../types.ts";
import { VirtqueueError } from "../types.ts";
import { VIRTIO_ID_INPUT } from "../constants.ts";
import { readExactly, writeToChain } from "../queue/chain.ts";
import {
  BUS_VIRTUAL,
  EV_KEY,
  EV_LED,
  EV_REP,
  EV_SYN,
  KEY_COMPOSE,
  KEY_DELETE,
  KEY_ESC,
  KEY_F11,
  KEY_F12,
  KEY_HOME,
  KEY_KPDOT,
  KEY_KPENTER,
  KEY_LEFTALT,
  KEY_LEFTCTRL,
  KEY_LEFTMETA,
  KEY_PRESSED,
  KEY_RELEASED,
  KEY_REPEATED,
  KEY_RIGHTALT,
  LED_CAPSL,
  LED_CNT,
  LED_NUML,
  LED_SCROLLL,
  REP_DELAY,
  REP_PERIOD,
  SYN_REPORT,
  VIRTIO_INPUT_CFG_EV_BITS,
  VIRTIO_INPUT_CFG_ID_DEVIDS,
  VIRTIO_INPUT_CFG_ID_NAME,
  VIRTIO_INPUT_CFG_ID_SERIAL,
  VIRTIO_INPUT_CONFIG_SIZE,
  VIRTIO_INPUT_CONFIG_UNION_SIZE,
  VIRTIO_INPUT_EVENTQ,
  VIRTIO_INPUT_EVENT_SIZE,
  VIRTIO_INPUT_STATUSQ,
  VirtioInputConfigOffset,
  decodeInputEvent,
  encodeInputEvent,
  type VirtioInputEvent,
} from "./spec.ts";
import { SnapshotError, stateArray, stateInt, stateObject, stateRecord, type Persistent } from "../../platform/persist.ts";

/** The keys this keyboard has: a PC keyboard's (main block, function keys, keypad, navigation, modifiers). */
const KEY_RANGES: readonly (readonly [number, number])[] = [
  [KEY_ESC, KEY_KPDOT], // Esc, digits, letters, punctuation, Ctrl/Shift/Alt, F1-F10, locks, keypad
  [KEY_F11, KEY_F12],
  [KEY_KPENTER, KEY_RIGHTALT], // keypad Enter, right Ctrl, keypad /, SysRq, right Alt
  [KEY_HOME, KEY_DELETE], // Home, arrows, Page Up/Down, End, Insert, Delete
  [KEY_LEFTMETA, KEY_COMPOSE],
];

export function isKeyboardKey(code: number): boolean {
  return KEY_RANGES.some(([first, last]) => code >= first && code <= last);
}

/** Bit n set for every n in `codes`, in as few bytes as the highest one needs (the virtio bitmap layout). Pure. */
export function bitmapOf(codes: readonly number[]): Uint8Array {
  const top = Math.max(-1, ...codes);
  const bitmap = new Uint8Array(top < 0 ? 0 : (top >> 3) + 1);
  for (const c of codes) bitmap[c >> 3] |= 1 << (c & 7);
  return bitmap;
}

function keyCodes(): number[] {
  return KEY_RANGES.flatMap(([first, last]) => Array.from({ length: last - first + 1 }, (_, i) => first + i));
}

/** Vendor ID reported in ID_DEVIDS: "PR" read as a little-endian word, like the MMIO vendor "PRLY". */
export const PARLEY_INPUT_VENDOR = 0x5250;
export const PARLEY_KEYBOARD_PRODUCT = 0x0001;
export const PARLEY_KEYBOARD_VERSION = 0x0001;
export const PARLEY_KEYBOARD_NAME = "Parley keyboard";

export interface VirtioKeyboardOptions {
  /** Default "virtio-input0". */
  name?: string;
  /** ID_SERIAL (the input device's "uniq"); default "parley-kbd0". At most 128 bytes of ASCII. */
  serial?: string;
  /** QueueNumMax of both queues (default 64: Linux keeps at most 64 event buffers posted). */
  queueSize?: number;
  /** Events that may wait for eventq buffers (default 128); a chord that does not fit is dropped. */
  maxPendingEvents?: number;
}

export interface VirtioKeyboardCounters {
  /** Events written into eventq buffers. */
  eventsSent: number;
  /** Events dropped because the pending queue was full (whole chords at a time). */
  eventsDropped: number;
  /** Events the driver sent on the statusq (LED changes and the like). */
  statusEvents: number;
  /** Buffers shorter than struct virtio_input_event (returned unused; spec 5.8.6.1 forbids them). */
  shortBuffers: number;
}

export interface VirtioKeyboardState {
  version: 1;
  select: number;
  subsel: number;
  /** Events waiting for eventq buffers, oldest first, as [type, code, value]. */
  pending: [number, number, number][];
  /** LED state from the statusq: bit n = LED code n on. */
  leds: number;
  counters: VirtioKeyboardCounters;
}

interface Identity {
  name: Uint8Array;
  serial: Uint8Array;
  devids: Uint8Array;
  /** EV_BITS answers by event type. */
  evBits: ReadonlyMap<number, Uint8Array>;
}

/** What (select, subsel) reports for this identity; an empty payload means "not supported" (size 0, 5.8.4). Pure. */
export function configAnswer(identity: Identity, select: number, subsel: number): Uint8Array {
  switch (select) {
    case VIRTIO_INPUT_CFG_ID_NAME:
      return subsel === 0 ? identity.name : new Uint8Array(0);
    case VIRTIO_INPUT_CFG_ID_SERIAL:
      return subsel === 0 ? identity.serial : new Uint8Array(0);
    case VIRTIO_INPUT_CFG_ID_DEVIDS:
      return subsel === 0 ? identity.devids : new Uint8Array(0);
    case VIRTIO_INPUT_CFG_EV_BITS:
      return identity.evBits.get(subsel) ?? new Uint8Array(0);
    default:
      // UNSET, PROP_BITS (a keyboard has no input properties), ABS_INFO (no axes), unknown selects.
      return new Uint8Array(0);
  }
}

function asciiField(value: string, what: string): Uint8Array {
  if (!/^[\x20-\x7e]*$/.test(value) || value.length > VIRTIO_INPUT_CONFIG_UNION_SIZE) {
    throw new RangeError(`${what} ${JSON.stringify(value)}: use at most ${VIRTIO_INPUT_CONFIG_UNION_SIZE} printable ASCII characters`);
  }
  return new TextEncoder().encode(value);
}

function keyboardIdentity(serial: string): Identity {
  const devids = new Uint8Array(8);
  const view = new DataView(devids.buffer);
  view.setUint16(0, BUS_VIRTUAL, true);
  view.setUint16(2, PARLEY_INPUT_VENDOR, true);
  view.setUint16(4, PARLEY_KEYBOARD_PRODUCT, true);
  view.setUint16(6, PARLEY_KEYBOARD_VERSION, true);
  return {
    name: asciiField(PARLEY_KEYBOARD_NAME, "name"),
    serial: asciiField(serial, "serial"),
    devids,
    evBits: new Map([
      [EV_SYN, bitmapOf([SYN_REPORT])],
      [EV_KEY, bitmapOf(keyCodes())],
      // Size non-zero is all Linux looks at: the input core then repeats held keys in software.
      [EV_REP, bitmapOf([REP_DELAY, REP_PERIOD])],
      [EV_LED, bitmapOf([LED_NUML, LED_CAPSL, LED_SCROLLL])],
    ]),
  };
}

/** The events of one chord: presses in order, SYN_REPORT, releases in reverse order, SYN_REPORT. Pure. */
export function chordEvents(codes: readonly number[]): VirtioInputEvent[] {
  const syn: VirtioInputEvent = { type: EV_SYN, code: SYN_REPORT, value: 0 };
  return [
    ...codes.map((code) => ({ type: EV_KEY, code, value: KEY_PRESSED })),
    syn,
    ...[...codes].reverse().map((code) => ({ type: EV_KEY, code, value: KEY_RELEASED })),
    { ...syn },
  ];
}

export class VirtioKeyboard implements VirtioDevice, Persistent<VirtioKeyboardState> {
  readonly deviceId = VIRTIO_ID_INPUT;
  readonly name: string;
  readonly queueSizes: readonly number[];
  /** Spec 5.8.3: no feature bits. */
  readonly deviceFeatures = 0n;
  readonly counters: VirtioKeyboardCounters = { eventsSent: 0, eventsDropped: 0, statusEvents: 0, shortBuffers: 0 };
  readonly maxPendingEvents: number;
  private readonly identity: Identity;
  private context: VirtioDeviceContext | undefined;
  private select = 0;
  private subsel = 0;
  /** The configuration space as the current (select, subsel) makes it. */
  private config = new Uint8Array(VIRTIO_INPUT_CONFIG_SIZE);
  private pending: VirtioInputEvent[] = [];
  private ledState = 0;

  constructor(options: VirtioKeyboardOptions = {}) {
    this.name = options.name ?? "virtio-input0";
    const queueSize = options.queueSize ?? 64;
    this.queueSizes = [queueSize, queueSize];
    const max = options.maxPendingEvents ?? 128;
    if (!Number.isInteger(max) || max < 8 || max > 4096) throw new RangeError(`maxPendingEvents ${max} is outside 8..4096`);
    this.maxPendingEvents = max;
    this.identity = keyboardIdentity(options.serial ?? "parley-kbd0");
    this.selectConfig(0, 0);
  }

  /** LED state the driver last reported (bit n = LED code n, e.g. 1 << LED_CAPSL). */
  get leds(): number {
    return this.ledState;
  }

  /** Events waiting for eventq buffers. */
  get pendingEvents(): number {
    return this.pending.length;
  }

  /**
   * Presses the keys in order, then releases them in reverse order (a chord). Throws RangeError,
   * changing nothing, when a code is not a key of this keyboard or repeats. Returns false when the
   * chord was dropped because too many events already wait for the guest.
   */
  pressKeys(codes: readonly number[]): boolean {
    if (codes.length === 0) throw new RangeError("pressKeys: no keys given");
    codes.forEach((code, i) => {
      if (!Number.isInteger(code) || !isKeyboardKey(code)) throw new RangeError(`pressKeys: codes[${i}] ${code} is not a key of this keyboard`);
      if (codes.indexOf(code) !== i) throw new RangeError(`pressKeys: codes[${i}] ${code} is pressed twice`);
    });
    const events = chordEvents(codes);
    if (this.pending.length + events.length > this.maxPendingEvents) {
      this.counters.eventsDropped += events.length;
      return false;
    }
    this.pending.push(...events);
    this.deliverEvents();
    return true;
  }

  /** Ctrl-Alt-Delete: left Ctrl, left Alt and Delete pressed together, then released. */
  sendCtrlAltDel(): boolean {
    return this.pressKeys([KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE]);
  }

  // ---- configuration space (spec 5.8.4) -----------------------------------------------------
  readConfig(offset: number, size: number): number | undefined {
    if (offset < 0 || offset + size > VIRTIO_INPUT_CONFIG_SIZE) return undefined;
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + this.config[offset + i];
    return value;
  }

  /** Only select and subsel are the driver's to write (one byte each, or both in one 16-bit write). */
  writeConfig(offset: number, size: number, value: number): boolean {
    if (offset === VirtioInputConfigOffset.select && size === 1) this.selectConfig(value & 0xff, this.subsel);
    else if (offset === VirtioInputConfigOffset.subsel && size === 1) this.selectConfig(this.select, value & 0xff);
    else if (offset === VirtioInputConfigOffset.select && size === 2) this.selectConfig(value & 0xff, (value >>> 8) & 0xff);
    else return false;
    return true;
  }

  private selectConfig(select: number, subsel: number): void {
    this.select = select;
    this.subsel = subsel;
    const payload = configAnswer(this.identity, select, subsel);
    const config = new Uint8Array(VIRTIO_INPUT_CONFIG_SIZE);
    config[VirtioInputConfigOffset.select] = select;
    config[VirtioInputConfigOffset.subsel] = subsel;
    config[VirtioInputConfigOffset.size] = payload.length;
    config.set(payload, VirtioInputConfigOffset.u);
    this.config = config;
  }

  // ---- queues ----------------------------------------------------------------------------------
  activate(context: VirtioDeviceContext): void {
    this.context = context;
    // Buffers made available before DRIVER_OK were not announced: look now.
    this.deliverEvents();
    this.consumeStatus();
  }

  queueNotify(queueIndex: number): void {
    if (queueIndex === VIRTIO_INPUT_EVENTQ) this.deliverEvents();
    else if (queueIndex === VIRTIO_INPUT_STATUSQ) this.consumeStatus();
  }

  reset(): void {
    this.context = undefined;
    this.ledState = 0;
    this.selectConfig(0, 0);
  }

  /** Writes waiting events into eventq buffers, one event per buffer, while both last. */
  private deliverEvents(): void {
    const context = this.context;
    if (!context || this.pending.length === 0) return;
    const queue = context.queues[VIRTIO_INPUT_EVENTQ];
    let used = 0;
    let error: string | undefined;
    try {
      while (this.pending.length > 0) {
        const chain = queue.pop();
        if (!chain) break;
        used++;
        if (chain.writableLength < VIRTIO_INPUT_EVENT_SIZE) {
          this.counters.shortBuffers++;
          queue.pushUsed(chain, 0);
          continue;
        }
        const written = writeToChain(context.memory, chain, 0, encodeInputEvent(this.pending[0]));
        queue.pushUsed(chain, written);
        if (written !== VIRTIO_INPUT_EVENT_SIZE) continue; // not RAM after all: the event waits for another buffer
        this.pending.shift();
        this.counters.eventsSent++;
      }
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      error = e.message;
    }
    if (used > 0) context.notifyUsed(VIRTIO_INPUT_EVENTQ);
    if (error !== undefined) context.needsReset(error);
  }

  /** Takes every status event the driver sent and returns its buffer. */
  private consumeStatus(): void {
    const context = this.context;
    if (!context) return;
    const queue = context.queues[VIRTIO_INPUT_STATUSQ];
    let used = 0;
    let error: string | undefined;
    try {
      for (;;) {
        const chain = queue.pop();
        if (!chain) break;
        used++;
        const bytes = readExactly(context.memory, chain.readable, 0, VIRTIO_INPUT_EVENT_SIZE);
        queue.pushUsed(chain, 0);
        if (!bytes) {
          this.counters.shortBuffers++;
          continue;
        }
        this.counters.statusEvents++;
        const event = decodeInputEvent(bytes);
        if (event.type === EV_LED && event.code < LED_CNT) {
          this.ledState = event.value !== 0 ? this.ledState | (1 << event.code) : this.ledState & ~(1 << event.code);
        }
      }
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      error = e.message;
    }
    if (used > 0) context.notifyUsed(VIRTIO_INPUT_STATUSQ);
    if (error !== undefined) context.needsReset(error);
  }

  // ---- snapshot (src/platform/persist.ts) --------------------------------------------------------
  saveState(): VirtioKeyboardState {
    return {
      version: 1,
      select: this.select,
      subsel: this.subsel,
      pending: this.pending.map((e) => [e.type, e.code, e.value]),
      leds: this.ledState,
      counters: { ...this.counters },
    };
  }

  restoreState(state: unknown): void {
    const where = this.name;
    const s = stateObject(state, where, [1]);
    const select = stateInt(s.select, `${where}.select`, 0, 0xff);
    const subsel = stateInt(s.subsel, `${where}.subsel`, 0, 0xff);
    const pendingList = stateArray(s.pending, `${where}.pending`);
    if (pendingList.length > this.maxPendingEvents) {
      throw new SnapshotError(`${where}.pending: ${pendingList.length} events, more than this keyboard queues (${this.maxPendingEvents})`);
    }
    const pending = pendingList.map((entry, i) => checkPendingEvent(entry, `${where}.pending[${i}]`));
    const leds = stateInt(s.leds, `${where}.leds`, 0, (1 << LED_CNT) - 1);
    const c = stateRecord(s.counters, `${where}.counters`);
    const counters: VirtioKeyboardCounters = {
      eventsSent: stateInt(c.eventsSent, `${where}.counters.eventsSent`),
      eventsDropped: stateInt(c.eventsDropped, `${where}.counters.eventsDropped`),
      statusEvents: stateInt(c.statusEvents, `${where}.counters.statusEvents`),
      shortBuffers: stateInt(c.shortBuffers, `${where}.counters.shortBuffers`),
    };
    // Everything checked: apply.
    this.selectConfig(select, subsel);
    this.pending = pending;
    this.ledState = leds;
    Object.assign(this.counters, counters);
  }
}

/** One saved pending event: only what this keyboard itself queues (key presses and SYN_REPORTs). */
function checkPendingEvent(entry: unknown, where: string): VirtioInputEvent {
  const [type, code, value] = stateArray(entry, where, 3);
  const t = stateInt(type, `${where}[0]`, 0, 0xffff);
  if (t === EV_SYN) {
    stateInt(code, `${where}[1]`, SYN_REPORT, SYN_REPORT);
    stateInt(value, `${where}[2]`, 0, 0);
    return { type: EV_SYN, code: SYN_REPORT, value: 0 };
  }
  if (t !== EV_KEY) throw new SnapshotError(`${where}[0]: event type ${t} is neither EV_SYN nor EV_KEY`);
  const k = stateInt(code, `${where}[1]`, 0, 0xffff);
  if (!isKeyboardKey(k)) throw new SnapshotError(`${where}[1]: ${k} is not a key of this keyboard`);
  const v = stateInt(value, `${where}[2]`, KEY_RELEASED, KEY_REPEATED);
  return { type: EV_KEY, code: k, value: v };
}
