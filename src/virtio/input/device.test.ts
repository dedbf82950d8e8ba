// The keyboard behind the real virtio-mmio transport and queues, driven like Linux's
// drivers/virtio/virtio_input.c: virtinput_probe()'s configuration queries, virtinput_fill_evt()'s
// 8-byte event buffers, virtinput_recv_events() taking them back, virtinput_send_status() for LEDs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioMmioTransport } from "../transport/mmio.ts";
import { VirtioMmioRegister as R, DEVICE_NEEDS_RESET, VIRTIO_ID_INPUT, featureBit, VIRTIO_F_EVENT_IDX, VIRTIO_F_RING_PACKED } from "../constants.ts";
import { FakeRam, SplitDriver, linuxProbe, mmioRead, mmioWrite, takeInterrupt, type PackedDriver } from "../testing/fake-driver.ts";
import { irqLine } from "../../testing/fakes.ts";
import { SnapshotError } from "../../platform/persist.ts";
import { VirtioKeyboard, bitmapOf, chordEvents, PARLEY_INPUT_VENDOR } from "./device.ts";
import {
  BUS_VIRTUAL,
  EV_KEY,
  EV_LED,
  EV_REP,
  EV_SYN,
  KEY_DELETE,
  KEY_LEFTALT,
  KEY_LEFTCTRL,
  LED_CAPSL,
  LED_NUML,
  SYN_REPORT,
  VIRTIO_INPUT_CFG_ABS_INFO,
  VIRTIO_INPUT_CFG_EV_BITS,
  VIRTIO_INPUT_CFG_ID_DEVIDS,
  VIRTIO_INPUT_CFG_ID_NAME,
  VIRTIO_INPUT_CFG_ID_SERIAL,
  VIRTIO_INPUT_CFG_PROP_BITS,
  VIRTIO_INPUT_CFG_UNSET,
  VirtioInputConfigOffset as C,
  decodeInputEvent,
  encodeInputEvent,
  type VirtioInputEvent,
} from "./spec.ts";

const EV_REL = 0x02;
const EV_ABS = 0x03;
const EV_MSC = 0x04;
const EV_SW = 0x05;
const EV_SND = 0x12;

const CTRL_ALT_DEL: VirtioInputEvent[] = [
  { type: EV_KEY, code: KEY_LEFTCTRL, value: 1 },
  { type: EV_KEY, code: KEY_LEFTALT, value: 1 },
  { type: EV_KEY, code: KEY_DELETE, value: 1 },
  { type: EV_SYN, code: SYN_REPORT, value: 0 },
  { type: EV_KEY, code: KEY_DELETE, value: 0 },
  { type: EV_KEY, code: KEY_LEFTALT, value: 0 },
  { type: EV_KEY, code: KEY_LEFTCTRL, value: 0 },
  { type: EV_SYN, code: SYN_REPORT, value: 0 },
];

// ---- virtio_input.c's configuration accesses (virtio_cread8/virtio_cread_bytes: byte loads) ----
function readByte(t: VirtioMmioTransport, offset: number): number {
  const v = t.load(R.Config + offset, 1);
  if (typeof v !== "number") throw new Error(`config byte ${offset} faulted`);
  return v;
}
function writeByte(t: VirtioMmioTransport, offset: number, value: number): void {
  if (!t.store(R.Config + offset, 1, value)) throw new Error(`config write at ${offset} faulted`);
}
/** virtinput_cfg_select(): select, subsel, then the size. */
function cfgSelect(t: VirtioMmioTransport, select: number, subsel: number): number {
  writeByte(t, C.select, select);
  writeByte(t, C.subsel, subsel);
  return readByte(t, C.size);
}
function cfgBytes(t: VirtioMmioTransport, size: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => readByte(t, C.u + i));
}
function cfgString(t: VirtioMmioTransport, select: number): string {
  return new TextDecoder().decode(cfgBytes(t, cfgSelect(t, select, 0)));
}
function bitsOf(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  bitmap.forEach((byte, i) => {
    for (let b = 0; b < 8; b++) if (byte & (1 << b)) out.push(i * 8 + b);
  });
  return out;
}

function setup(options: { packed?: boolean; eventIdx?: boolean; keyboard?: VirtioKeyboard } = {}) {
  const keyboard = options.keyboard ?? new VirtioKeyboard();
  const ram = new FakeRam(4 << 20);
  const irq = irqLine();
  const t = new VirtioMmioTransport({ device: keyboard, memory: ram.memory, irq: irq.set });
  const accept = (offered: bigint) => {
    let features = offered;
    if (!options.packed) features &= ~featureBit(VIRTIO_F_RING_PACKED);
    if (options.eventIdx === false) features &= ~featureBit(VIRTIO_F_EVENT_IDX);
    return features;
  };
  const probe = linuxProbe(t, ram, accept);
  assert.ok(probe.featuresOk);
  const [events, status] = probe.drivers as [SplitDriver | PackedDriver, SplitDriver | PackedDriver];
  return { keyboard, ram, irq, t, events, status };
}

/** virtinput_recv_events(): the events in the used buffers, in order. */
function received(ram: FakeRam, driver: SplitDriver | PackedDriver, addrById: Map<number, number>): VirtioInputEvent[] {
  return driver.used().map((u) => {
    assert.equal(u.len, 8);
    return decodeInputEvent(ram.get(addrById.get(u.id)!, 8));
  });
}

/** virtinput_fill_evt() without its kick: n 8-byte event buffers, remembering where each one's bytes are. */
function post(driver: SplitDriver | PackedDriver, n: number, addrById: Map<number, number>): void {
  for (let i = 0; i < n; i++) {
    const { id, inAddrs } = driver.add([], [8]);
    addrById.set(id, inAddrs[0]);
  }
}

test("virtinput_probe()'s configuration queries: name, serial, IDs, no properties, keys, repeat and LEDs", () => {
  const { t, keyboard } = setup();
  assert.equal(mmioRead(t, R.DeviceID), VIRTIO_ID_INPUT);
  assert.equal(keyboard.deviceFeatures, 0n);
  assert.equal(cfgString(t, VIRTIO_INPUT_CFG_ID_NAME), "Parley keyboard");
  assert.equal(cfgString(t, VIRTIO_INPUT_CFG_ID_SERIAL), "parley-kbd0");
  assert.equal(cfgSelect(t, VIRTIO_INPUT_CFG_ID_DEVIDS, 0), 8);
  const ids = new DataView(cfgBytes(t, 8).buffer);
  assert.deepEqual([ids.getUint16(0, true), ids.getUint16(2, true), ids.getUint16(4, true), ids.getUint16(6, true)], [BUS_VIRTUAL, PARLEY_INPUT_VENDOR, 1, 1]);
  // virtio_cread_le() of a u16 field is one 16-bit load.
  assert.equal(t.load(R.Config + C.u, 2), BUS_VIRTUAL);
  assert.equal(cfgSelect(t, VIRTIO_INPUT_CFG_PROP_BITS, 0), 0, "a keyboard has no input properties");
  assert.ok(cfgSelect(t, VIRTIO_INPUT_CFG_EV_BITS, EV_REP) > 0, "EV_REP: the input core repeats held keys");
  const keys = bitsOf(cfgBytes(t, cfgSelect(t, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY)));
  for (const k of [KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE, 1 /* Esc */, 28 /* Enter */, 30 /* A */, 57 /* Space */, 103 /* Up */]) assert.ok(keys.includes(k), `key ${k}`);
  assert.ok(!keys.includes(0), "KEY_RESERVED is no key");
  assert.ok(Math.max(...keys) < 128);
  for (const type of [EV_REL, EV_ABS, EV_MSC, EV_SW, EV_SND]) assert.equal(cfgSelect(t, VIRTIO_INPUT_CFG_EV_BITS, type), 0, `event type ${type}`);
  assert.deepEqual(bitsOf(cfgBytes(t, cfgSelect(t, VIRTIO_INPUT_CFG_EV_BITS, EV_LED))), [0, 1, 2]);
  assert.deepEqual(bitsOf(cfgBytes(t, cfgSelect(t, VIRTIO_INPUT_CFG_EV_BITS, EV_SYN))), [SYN_REPORT]);
  assert.equal(cfgSelect(t, VIRTIO_INPUT_CFG_ABS_INFO, 0), 0, "no axes");
  assert.equal(cfgSelect(t, VIRTIO_INPUT_CFG_UNSET, 0), 0);
  assert.equal(cfgSelect(t, 0x7f, 3), 0, "unknown select: size 0");
  assert.equal(cfgSelect(t, VIRTIO_INPUT_CFG_ID_NAME, 1), 0, "ID_NAME has only subsel 0");
  // select and subsel read back; the union beyond the answer reads 0.
  cfgSelect(t, VIRTIO_INPUT_CFG_ID_NAME, 0);
  assert.equal(t.load(R.Config, 2), VIRTIO_INPUT_CFG_ID_NAME);
  assert.equal(readByte(t, C.u + 100), 0);
});

test("configuration space: only select and subsel are writable; nothing past the 136-byte struct", () => {
  const { t } = setup();
  const faults = t.counters.faultedAccesses;
  assert.equal(t.store(R.Config + C.size, 1, 5), false);
  assert.equal(t.store(R.Config + C.u, 4, 1), false);
  assert.equal(t.store(R.Config + C.select, 4, 1), false);
  assert.equal(t.load(R.Config + 136, 1), undefined);
  assert.equal(t.load(R.Config + 132, 4), 0, "the last word of the union is readable");
  assert.equal(t.counters.faultedAccesses, faults + 4);
  // Both at once, as a 16-bit write.
  assert.equal(t.store(R.Config + C.select, 2, VIRTIO_INPUT_CFG_EV_BITS | (EV_KEY << 8)), true);
  assert.ok(readByte(t, C.size) >= 14);
});

for (const ring of ["split", "packed"] as const) {
  test(`${ring} ring: Ctrl-Alt-Del reaches the driver as 8 events, one interrupt`, () => {
    const { keyboard, ram, t, irq, events } = setup({ packed: ring === "packed" });
    const addrs = new Map<number, number>();
    post(events, 64, addrs);
    mmioWrite(t, R.QueueNotify, 0);
    assert.equal(events.used().length, 0, "no events, no buffers used");
    assert.equal(irq.level, false);
    assert.equal(keyboard.sendCtrlAltDel(), true);
    assert.equal(irq.level, true);
    assert.equal(takeInterrupt(t), 1);
    assert.deepEqual(received(ram, events, addrs), CTRL_ALT_DEL);
    assert.equal(keyboard.counters.eventsSent, 8);
    assert.equal(keyboard.pendingEvents, 0);
  });
}

test("events wait for buffers; a kick with new buffers delivers them in order", () => {
  const { keyboard, ram, t, events } = setup();
  keyboard.pressKeys([30]); // A
  assert.equal(keyboard.pendingEvents, 4);
  const addrs = new Map<number, number>();
  post(events, 3, addrs);
  mmioWrite(t, R.QueueNotify, 0);
  assert.deepEqual(
    received(ram, events, addrs).map((e) => [e.type, e.code, e.value]),
    [
      [EV_KEY, 30, 1],
      [EV_SYN, SYN_REPORT, 0],
      [EV_KEY, 30, 0],
    ],
  );
  assert.equal(keyboard.pendingEvents, 1);
  post(events, 5, addrs);
  mmioWrite(t, R.QueueNotify, 0);
  assert.deepEqual(received(ram, events, addrs), [{ type: EV_SYN, code: SYN_REPORT, value: 0 }]);
  // The other four buffers stay with the driver... until the next key.
  keyboard.pressKeys([31]);
  assert.equal(received(ram, events, addrs).length, 4);
});

test("a key pressed before the driver probes (the virtio core resets first) reaches it", () => {
  const keyboard = new VirtioKeyboard();
  assert.equal(keyboard.sendCtrlAltDel(), true);
  assert.equal(keyboard.pendingEvents, 8);
  const { ram, t, events } = setup({ keyboard });
  const addrs = new Map<number, number>();
  post(events, 64, addrs);
  mmioWrite(t, R.QueueNotify, 0);
  assert.deepEqual(received(ram, events, addrs), CTRL_ALT_DEL);
});

test("the pending queue is bounded: a chord that does not fit is dropped whole and counted", () => {
  const keyboard = new VirtioKeyboard({ maxPendingEvents: 16 });
  assert.equal(keyboard.sendCtrlAltDel(), true);
  assert.equal(keyboard.pressKeys([KEY_LEFTCTRL, 46]), true); // 6 events: 14 waiting
  assert.equal(keyboard.pressKeys([30]), false); // 4 more would make 18
  assert.equal(keyboard.pendingEvents, 14);
  assert.equal(keyboard.counters.eventsDropped, 4);
  assert.throws(() => new VirtioKeyboard({ maxPendingEvents: 4 }), /maxPendingEvents 4/);
});

test("pressKeys refuses keys the keyboard lacks, repeats and empty chords, changing nothing", () => {
  const keyboard = new VirtioKeyboard();
  assert.throws(() => keyboard.pressKeys([KEY_LEFTCTRL, 0x110 /* BTN_LEFT */]), /codes\[1\] 272 is not a key/);
  assert.throws(() => keyboard.pressKeys([30, 30]), /codes\[1\] 30 is pressed twice/);
  assert.throws(() => keyboard.pressKeys([]), /no keys/);
  assert.throws(() => keyboard.pressKeys([1.5]), /codes\[0\] 1.5/);
  assert.equal(keyboard.pendingEvents, 0);
  assert.deepEqual(chordEvents([1, 2]).map((e) => e.value), [1, 1, 0, 0, 0, 0]);
});

test("the driver's interrupt suppression is honoured (VIRTQ_AVAIL_F_NO_INTERRUPT)", () => {
  const { keyboard, t, irq, events } = setup({ eventIdx: false });
  const split = events as SplitDriver;
  post(split, 16, new Map());
  split.setNoInterrupt(true);
  mmioWrite(t, R.QueueNotify, 0);
  keyboard.sendCtrlAltDel();
  assert.equal(split.used().length, 8);
  assert.equal(irq.level, false);
  split.setNoInterrupt(false);
  post(split, 8, new Map());
  keyboard.pressKeys([30]);
  assert.equal(irq.level, true);
});

test("statusq: LED events are consumed, counted and tracked; short ones are returned unused", () => {
  const { keyboard, t, irq, status } = setup();
  status.add([encodeInputEvent({ type: EV_LED, code: LED_CAPSL, value: 1 })], []);
  status.add([encodeInputEvent({ type: EV_LED, code: LED_NUML, value: 1 })], []);
  status.add([encodeInputEvent({ type: EV_SYN, code: SYN_REPORT, value: 0 })], []);
  status.add([Uint8Array.of(0x11, 0, 1, 0)], []);
  mmioWrite(t, R.QueueNotify, 1);
  assert.deepEqual(
    status.used().map((u) => u.len),
    [0, 0, 0, 0],
  );
  assert.equal(irq.level, true);
  assert.equal(keyboard.leds, (1 << LED_CAPSL) | (1 << LED_NUML));
  assert.equal(keyboard.counters.statusEvents, 3);
  assert.equal(keyboard.counters.shortBuffers, 1);
  status.add([encodeInputEvent({ type: EV_LED, code: LED_CAPSL, value: 0 })], []);
  mmioWrite(t, R.QueueNotify, 1);
  assert.equal(keyboard.leds, 1 << LED_NUML);
  // A status event split over two buffers is read whole (Linux uses one, but any framing is allowed).
  const e = encodeInputEvent({ type: EV_LED, code: LED_CAPSL, value: 1 });
  status.add([e.subarray(0, 3), e.subarray(3)], []);
  mmioWrite(t, R.QueueNotify, 1);
  assert.equal(keyboard.leds, (1 << LED_NUML) | (1 << LED_CAPSL));
});

test("malformed event buffers: too short or read-only ones are returned unused and the event waits", () => {
  const { keyboard, ram, t, events } = setup();
  const addrs = new Map<number, number>();
  events.add([], [4]);
  events.add([new Uint8Array(8)], []);
  post(events, 4, addrs);
  mmioWrite(t, R.QueueNotify, 0);
  keyboard.pressKeys([30]);
  const used = events.used();
  assert.deepEqual(
    used.map((u) => u.len),
    [0, 0, 8, 8, 8, 8],
  );
  assert.equal(keyboard.counters.shortBuffers, 2);
  assert.equal(keyboard.counters.eventsSent, 4);
  assert.deepEqual(decodeInputEvent(ram.get(addrs.get(used[2].id)!, 8)), { type: EV_KEY, code: 30, value: 1 });
  // An event split over two writable buffers is written whole.
  const split = events.add([], [3, 5]);
  keyboard.pressKeys([31]);
  const [first] = events.used();
  assert.equal(first.id, split.id);
  assert.equal(first.len, 8);
  const bytes = new Uint8Array([...ram.get(split.inAddrs[0], 3), ...ram.get(split.inAddrs[1], 5)]);
  assert.deepEqual(decodeInputEvent(bytes), { type: EV_KEY, code: 31, value: 1 });
});

test("a malformed ring ends in NEEDS_RESET, not an exception; the events survive for the next driver", () => {
  const { keyboard, t, events } = setup();
  const s = events as SplitDriver;
  s.writeDesc(s.descAddr, 0, 0x10, 8, 2, 0); // below guest RAM
  s.pushAvail(0);
  mmioWrite(t, R.QueueNotify, 0);
  keyboard.sendCtrlAltDel();
  assert.ok(mmioRead(t, R.Status) & DEVICE_NEEDS_RESET);
  assert.equal(keyboard.pendingEvents, 8);
  const { ram, t: t2, events: again } = setup({ keyboard });
  const addrs = new Map<number, number>();
  post(again, 8, addrs);
  mmioWrite(t2, R.QueueNotify, 0);
  assert.deepEqual(received(ram, again, addrs), CTRL_ALT_DEL);
});

test("reset forgets the LED state and the selection", () => {
  const { keyboard, t, status } = setup();
  status.add([encodeInputEvent({ type: EV_LED, code: LED_CAPSL, value: 1 })], []);
  mmioWrite(t, R.QueueNotify, 1);
  cfgSelect(t, VIRTIO_INPUT_CFG_ID_NAME, 0);
  mmioWrite(t, R.Status, 0);
  assert.equal(keyboard.leds, 0);
  assert.equal(readByte(t, C.size), 0);
});

test("bitmapOf: the virtio bitmap layout (byte n holds bits 8n..8n+7)", () => {
  assert.deepEqual([...bitmapOf([0, 9, 15])], [0x01, 0x82]);
  assert.deepEqual([...bitmapOf([])], []);
});

// ---- snapshot -----------------------------------------------------------------------------------

test("snapshot: save, restore into a fresh keyboard, and the guest gets the same events", () => {
  const { keyboard, t, status } = setup();
  status.add([encodeInputEvent({ type: EV_LED, code: LED_CAPSL, value: 1 })], []);
  mmioWrite(t, R.QueueNotify, 1);
  keyboard.sendCtrlAltDel();
  keyboard.pressKeys([30]);
  cfgSelect(t, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY);
  const saved = JSON.parse(JSON.stringify(keyboard.saveState()));
  const fresh = new VirtioKeyboard();
  fresh.restoreState(saved);
  assert.deepEqual(fresh.saveState(), keyboard.saveState());
  assert.equal(fresh.leds, 1 << LED_CAPSL);
  assert.equal(fresh.readConfig(C.size, 1), keyboard.readConfig(C.size, 1));
  assert.equal(fresh.readConfig(C.u, 4), keyboard.readConfig(C.u, 4));
  // Both continue identically: the same 12 events once buffers come.
  const outputs = [keyboard, fresh].map((k) => {
    const keyboardAgain = setup({ keyboard: k });
    const addrs = new Map<number, number>();
    post(keyboardAgain.events, 16, addrs);
    mmioWrite(keyboardAgain.t, R.QueueNotify, 0);
    return received(keyboardAgain.ram, keyboardAgain.events, addrs);
  });
  assert.equal(outputs[0].length, 12);
  assert.deepEqual(outputs[1], outputs[0]);
  assert.deepEqual(outputs[0].slice(0, 8), CTRL_ALT_DEL);
  assert.deepEqual(fresh.saveState(), keyboard.saveState());
});

test("snapshot: bad states are refused with the field named, and change nothing", () => {
  const keyboard = new VirtioKeyboard({ maxPendingEvents: 16 });
  keyboard.pressKeys([30]);
  const good = keyboard.saveState();
  const before = JSON.stringify(good);
  const target = new VirtioKeyboard({ maxPendingEvents: 16 });
  target.sendCtrlAltDel();
  const targetBefore = JSON.stringify(target.saveState());
  const cases: [unknown, RegExp][] = [
    [null, /virtio-input0: expected an object/],
    [{ ...good, version: 2 }, /virtio-input0\.version: 2 is not a version/],
    [{ ...good, select: 256 }, /virtio-input0\.select: expected a whole number in 0\.\.255/],
    [{ ...good, subsel: "1" }, /virtio-input0\.subsel/],
    [{ ...good, pending: {} }, /virtio-input0\.pending: expected an array/],
    [{ ...good, pending: Array(17).fill([0, 0, 0]) }, /virtio-input0\.pending: 17 events, more than this keyboard queues \(16\)/],
    [{ ...good, pending: [[EV_KEY, 30]] }, /virtio-input0\.pending\[0\]: expected an array of 3/],
    [{ ...good, pending: [[EV_KEY, 30, 1], [EV_LED, 1, 1]] }, /virtio-input0\.pending\[1\]\[0\]: event type 17 is neither EV_SYN nor EV_KEY/],
    [{ ...good, pending: [[EV_KEY, 0x110, 1]] }, /virtio-input0\.pending\[0\]\[1\]: 272 is not a key/],
    [{ ...good, pending: [[EV_KEY, 30, 3]] }, /virtio-input0\.pending\[0\]\[2\]: expected a whole number in 0\.\.2/],
    [{ ...good, pending: [[EV_SYN, 1, 0]] }, /virtio-input0\.pending\[0\]\[1\]/],
    [{ ...good, leds: 1 << 16 }, /virtio-input0\.leds/],
    [{ ...good, counters: { ...good.counters, eventsSent: -1 } }, /virtio-input0\.counters\.eventsSent/],
    [{ ...good, counters: undefined }, /virtio-input0\.counters: expected an object/],
  ];
  for (const [state, message] of cases) {
    assert.throws(
      () => target.restoreState(state),
      (err: unknown) => err instanceof SnapshotError && message.test(err.message),
      String(message),
    );
    assert.equal(JSON.stringify(target.saveState()), targetBefore);
  }
  assert.equal(JSON.stringify(keyboard.saveState()), before);
});
