import { test } from "node:test";
import assert from "node:assert/strict";
import { irqLine } from "../testing/fakes.ts";
import {
  Uart16550,
  UART_RX,
  UART_TX,
  UART_IER,
  UART_IIR,
  UART_FCR,
  UART_LCR,
  UART_MCR,
  UART_LSR,
  UART_MSR,
  UART_SCR,
  UART_DLL,
  UART_DLM,
  UART_LCR_DLAB,
  UART_MCR_LOOP,
  UART_MCR_OUT2,
  UART_MCR_RTS,
  UART_MSR_CTS,
  UART_MSR_DCD,
  UART_IER_RDI,
  UART_IER_THRI,
  UART_IER_RLSI,
  UART_IER_MSI,
  UART_FCR_ENABLE_FIFO,
  UART_FCR_CLEAR_RCVR,
  UART_FCR_CLEAR_XMIT,
  UART_LSR_DR,
  UART_LSR_OE,
  UART_LSR_THRE,
  UART_LSR_TEMT,
  UART_IIR_NO_INT,
  IIR_PRIORITY_TABLE,
  identifyInterrupt,
  activeInterruptConditions,
} from "./uart16550.ts";

/** EFR shares offset 2 with IIR/FCR on enhanced parts; a 16550A has none. */
const UART_EFR_OFFSET = 2;

function setup(hostQueueLimit?: number) {
  const out: number[] = [];
  const irq = irqLine();
  const uart = new Uart16550({ output: (b) => out.push(...b), irq: irq.set, hostQueueLimit });
  const r = (off: number) => uart.load(off, 1) as number;
  const w = (off: number, v: number) => assert.equal(uart.store(off, 1, v), true);
  return { uart, out, irq, r, w };
}

test("8250 autoconfig: IER existence test, loopback test, FIFO type detection", () => {
  const { r, w } = setup();
  // autoconfig(): "Do a simple existence test first"
  const saved = r(UART_IER);
  w(UART_IER, 0);
  assert.equal(r(UART_IER) & 0x0f, 0);
  w(UART_IER, 0x0f);
  assert.equal(r(UART_IER) & 0x0f, 0x0f);
  w(UART_IER, saved);
  // Loopback test: MCR = LOOP | OUT2 | RTS must read back DCD | CTS in MSR[7:4].
  const savedMcr = r(UART_MCR);
  w(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
  assert.equal(r(UART_MSR) & 0xf0, UART_MSR_DCD | UART_MSR_CTS);
  w(UART_MCR, savedMcr);
  // EFR is zeroed through LCR=0xBF (a plain FCR write on a 16550A), then FIFOs are enabled and
  // IIR[7:6] tells the type: 3 = 16550A.
  w(UART_LCR, 0xbf);
  w(UART_FCR, 0);
  w(UART_LCR, 0);
  w(UART_FCR, UART_FCR_ENABLE_FIFO);
  assert.equal(r(UART_IIR) >> 6, 3);
  // autoconfig_16550a(): no EFR behind LCR=0x80 or 0xBF (offset 2 reads IIR, non-zero)...
  w(UART_LCR, 0x80);
  assert.notEqual(r(UART_EFR_OFFSET), 0);
  w(UART_LCR, 0xbf);
  assert.notEqual(r(UART_EFR_OFFSET), 0);
  // ...no 64-byte FIFO (IIR bit 5 stays clear with and without DLAB)...
  w(UART_LCR, 0);
  w(UART_FCR, UART_FCR_ENABLE_FIFO | 0x20);
  assert.equal(r(UART_IIR) & 0xe0, 0xc0);
  w(UART_LCR, 0x80);
  w(UART_FCR, UART_FCR_ENABLE_FIFO | 0x20);
  assert.equal(r(UART_IIR) & 0xe0, 0xc0);
  w(UART_LCR, 0);
  // ...and no XScale UUE bit in IER.
  w(UART_IER, 0x40);
  assert.equal(r(UART_IER) & 0x40, 0);
  // The 8250 scratch-register probe.
  for (const v of [0xa5, 0x5a]) {
    w(UART_SCR, v);
    assert.equal(r(UART_SCR), v);
  }
});
test("serial8250_do_startup THRE test: enabling THRI with THR empty raises THRE each time", () => {
  const { r, w, irq } = setup();
  w(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
  assert.ok(r(UART_LSR) & UART_LSR_THRE);
  w(UART_IER, UART_IER_THRI);
  assert.equal(irq.level, true);
  const iir1 = r(UART_IIR);
  assert.equal(iir1 & 0x0f, 0x02);
  assert.equal(irq.level, false, "reading IIR acknowledged THRE");
  assert.equal(r(UART_IIR) & UART_IIR_NO_INT, UART_IIR_NO_INT);
  w(UART_IER, 0);
  w(UART_IER, UART_IER_THRI);
  const iir = r(UART_IIR);
  assert.equal(iir & UART_IIR_NO_INT, 0, "THRE re-asserted: the driver does not set UART_BUG_THRE");
  w(UART_IER, 0);
});

test("TX path: bytes go to the host and THRE interrupts pace the driver", () => {
  const { uart, r, w, out, irq } = setup();
  w(UART_FCR, UART_FCR_ENABLE_FIFO);
  w(UART_IER, UART_IER_THRI);
  assert.equal(r(UART_IIR), 0xc2);
  for (const c of "hi\n") w(UART_TX, c.charCodeAt(0));
  assert.equal(String.fromCharCode(...out), "hi\n");
  assert.equal(irq.level, true, "THR emptied again after the write");
  assert.equal(r(UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE | UART_LSR_TEMT);
  w(UART_IER, 0); // the driver's __stop_tx
  assert.equal(irq.level, false);
  assert.equal(uart.counters.bytesOut, 3);
  assert.equal(uart.counters.writes.THR, 3);
  assert.ok(uart.counters.interrupts >= 2);
});

test("RX path: trigger level, character timeout, refill from the host queue", () => {
  const { uart, r, w, irq } = setup();
  w(UART_FCR, UART_FCR_ENABLE_FIFO | 0x80); // trigger level 8
  w(UART_IER, UART_IER_RDI);
  uart.receive(new TextEncoder().encode("abc"));
  assert.equal(irq.level, true);
  assert.equal(r(UART_IIR), 0xcc, "below the trigger level: character timeout");
  assert.equal(r(UART_LSR) & UART_LSR_DR, UART_LSR_DR);
  assert.equal(String.fromCharCode(r(UART_RX), r(UART_RX), r(UART_RX)), "abc");
  assert.equal(r(UART_LSR) & UART_LSR_DR, 0);
  assert.equal(irq.level, false);

  const text = "0123456789abcdefghijklmnop"; // 26 bytes: 16 in the FIFO, 10 waiting on the host side
  assert.equal(uart.receive(new TextEncoder().encode(text)), 26);
  assert.equal(uart.hostQueueLength, 10);
  assert.equal(r(UART_IIR), 0xc4, "at or above the trigger level: received data available");
  let got = "";
  while (r(UART_LSR) & UART_LSR_DR) got += String.fromCharCode(r(UART_RX));
  assert.equal(got, text);
  assert.equal(uart.counters.bytesIn, 29);
  assert.equal(uart.counters.reads.RBR, 29);
  assert.equal(r(UART_IIR), 0xc1);
});

test("16450 mode (FIFOs off): one holding register, IIR[7:6] = 0", () => {
  const { uart, r, w } = setup();
  w(UART_IER, UART_IER_RDI);
  uart.receive(Uint8Array.of(1, 2));
  assert.equal(r(UART_IIR), 0x04);
  assert.equal(uart.hostQueueLength, 1);
  assert.equal(r(UART_RX), 1);
  assert.equal(r(UART_RX), 2);
  assert.equal(r(UART_IIR), 0x01);
  assert.equal(r(UART_RX), 2, "an empty RBR keeps its last value");
});

test("host input is bounded and overflow is counted, never silently dropped", () => {
  const { uart, r, w } = setup(20);
  w(UART_IER, UART_IER_RDI);
  // FIFOs off: one byte moves into RBR at once, so 19 of the 20 accepted bytes stay queued.
  assert.equal(uart.receive(new Uint8Array(30).fill(0x41)), 20);
  assert.equal(uart.counters.hostOverflow, 10);
  assert.equal(uart.counters.hostBytesQueued, 20);
  assert.equal(uart.hostQueueLength, 19);
  assert.equal(uart.receive(Uint8Array.of(0x42, 0x43)), 1);
  assert.equal(uart.counters.hostOverflow, 11);
  r(UART_RX); // RBR refills from the queue, making room for one more host byte
  assert.equal(uart.hostQueueLength, 19);
  assert.equal(uart.receive(Uint8Array.of(0x44, 0x45)), 1);
  let got = 0;
  while (r(UART_LSR) & UART_LSR_DR) {
    r(UART_RX);
    got++;
  }
  assert.equal(got + 1, uart.counters.hostBytesQueued, "every accepted byte reaches the guest");
});

test("FCR clear receiver returns unread host input to the host queue, in order", () => {
  const { uart, r, w } = setup();
  w(UART_IER, UART_IER_RDI);
  w(UART_FCR, UART_FCR_ENABLE_FIFO);
  const sent = Uint8Array.from({ length: 20 }, (_, i) => 0x41 + i);
  uart.receive(sent);
  assert.equal(r(UART_RX), 0x41);
  w(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
  assert.equal(uart.counters.rxDiscarded, 0);
  const got: number[] = [];
  while (r(UART_LSR) & UART_LSR_DR) got.push(r(UART_RX));
  assert.deepEqual(got, [...sent.subarray(1)], "nothing lost, nothing reordered");
});

test("FCR clear receiver discards loopback characters, as the hardware does", () => {
  const { uart, r, w } = setup();
  w(UART_FCR, UART_FCR_ENABLE_FIFO);
  w(UART_MCR, UART_MCR_LOOP);
  for (const c of [1, 2, 3]) w(UART_TX, c);
  assert.equal(r(UART_LSR) & UART_LSR_DR, UART_LSR_DR);
  w(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
  assert.equal(uart.counters.rxDiscarded, 3);
  assert.equal(r(UART_LSR) & UART_LSR_DR, 0);
});

test("loopback: TX feeds RX, host input waits, overrun raises a line-status interrupt", () => {
  const { uart, r, w, out, irq } = setup();
  w(UART_FCR, UART_FCR_ENABLE_FIFO | 0xc0); // trigger 14
  w(UART_IER, UART_IER_RDI);
  uart.receive(Uint8Array.of(0x55)); // delivered before loopback
  assert.equal(r(UART_RX), 0x55);
  w(UART_MCR, UART_MCR_LOOP);
  uart.receive(Uint8Array.of(0x66)); // held on the host side while in loopback
  assert.equal(r(UART_LSR) & UART_LSR_DR, 0);
  w(UART_IER, UART_IER_RLSI | UART_IER_RDI);
  for (let i = 0; i < 17; i++) w(UART_TX, i);
  assert.deepEqual(out, [], "nothing reaches the host in loopback");
  assert.equal(irq.level, true);
  assert.equal(r(UART_IIR), 0xc6, "overrun: line status has the highest priority");
  assert.equal(r(UART_LSR) & UART_LSR_OE, UART_LSR_OE);
  assert.equal(r(UART_LSR) & UART_LSR_OE, 0, "reading LSR clears error bits");
  assert.equal(r(UART_IIR), 0xc4);
  for (let i = 0; i < 16; i++) assert.equal(r(UART_RX), i);
  assert.equal(uart.counters.overruns, 1);
  w(UART_MCR, 0);
  assert.equal(r(UART_RX), 0x66, "leaving loopback reconnects the host");
});

test("modem status interrupt from loopback modem lines", () => {
  const { r, w, irq } = setup();
  w(UART_MCR, UART_MCR_LOOP);
  r(UART_MSR); // clear the deltas from entering loopback
  w(UART_IER, UART_IER_MSI);
  assert.equal(irq.level, false);
  w(UART_MCR, UART_MCR_LOOP | UART_MCR_RTS);
  assert.equal(irq.level, true);
  assert.equal(r(UART_IIR), 0x00);
  assert.equal(r(UART_MSR), UART_MSR_CTS | 0x01);
  assert.equal(irq.level, false);
  w(UART_MCR, UART_MCR_LOOP | 0x04); // OUT1 -> RI on
  r(UART_MSR);
  w(UART_MCR, UART_MCR_LOOP); // RI off: trailing edge sets TERI
  assert.equal(r(UART_MSR) & 0x04, 0x04);
  w(UART_MCR, 0);
  assert.equal(r(UART_MSR) & 0xf0, 0xb0, "outside loopback the terminal is present: DCD, DSR, CTS");
});

test("divisor latch behind DLAB", () => {
  const { uart, r, w } = setup();
  w(UART_IER, 0x05);
  w(UART_LCR, UART_LCR_DLAB | 0x03);
  w(UART_DLL, 2);
  w(UART_DLM, 0);
  assert.equal(r(UART_DLL), 2);
  assert.equal(r(UART_DLM), 0);
  assert.equal(uart.baudRate(3_686_400), 115_200);
  w(UART_LCR, 0x03);
  assert.equal(r(UART_IER), 0x05, "IER untouched by DLM writes");
  assert.equal(uart.counters.writes.DLL, 1);
  assert.equal(uart.counters.writes.LCR, 2);
});

test("bad accesses fault", () => {
  const { uart } = setup();
  assert.equal(uart.load(0, 4), undefined);
  assert.equal(uart.load(8, 1), undefined);
  assert.equal(uart.store(0, 2, 0x41), false);
  assert.equal(uart.store(0x10, 1, 0x41), false);
  assert.equal(uart.store(UART_LSR, 1, 0), true, "writes to LSR are ignored");
});

test("IIR priority table: pure identification", () => {
  assert.deepEqual(IIR_PRIORITY_TABLE.map((r) => r.iir), [0x06, 0x04, 0x0c, 0x02, 0x00]);
  const all = activeInterruptConditions({ lsr: UART_LSR_OE, rxCount: 3, fifoEnabled: true, rxTrigger: 8, thrInterruptPending: true, msr: 0x01 });
  assert.equal(identifyInterrupt(all, 0x0f)?.interrupt, "line-status");
  assert.equal(identifyInterrupt(all, UART_IER_RDI | UART_IER_THRI | UART_IER_MSI)?.interrupt, "rx-timeout");
  assert.equal(identifyInterrupt(all, UART_IER_THRI | UART_IER_MSI)?.interrupt, "thr-empty");
  assert.equal(identifyInterrupt(all, UART_IER_MSI)?.interrupt, "modem-status");
  assert.equal(identifyInterrupt(all, 0), undefined);
});

test("host input typed before the driver opens the port survives its startup flush", () => {
  const { uart, r, w } = setup();
  const typed = new TextEncoder().encode("echo early-bird\n");
  assert.equal(uart.receive(typed), typed.length);
  // serial8250_do_startup: clear both FIFOs, read LSR/RX/IIR/MSR to flush, then enable interrupts.
  w(UART_FCR, UART_FCR_ENABLE_FIFO);
  w(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
  r(UART_LSR); r(UART_RX); r(UART_IIR); r(UART_MSR);
  assert.equal(r(UART_LSR) & UART_LSR_DR, 0, "nothing is presented before the receive interrupt is on");
  w(UART_IER, UART_IER_RDI);
  const got: number[] = [];
  while (r(UART_LSR) & UART_LSR_DR) got.push(r(UART_RX));
  assert.equal(new TextDecoder().decode(new Uint8Array(got)), "echo early-bird\n");
  assert.equal(uart.counters.rxDiscarded, 0);
});

/** A UART as Linux's 8250 driver leaves it: FIFOs on, trigger 8, receive interrupt enabled. */
function opened() {
  const s = setup();
  s.w(UART_LCR, UART_LCR_DLAB);
  s.w(UART_DLL, 1);
  s.w(UART_DLM, 0);
  s.w(UART_LCR, 0x03);
  s.w(UART_FCR, UART_FCR_ENABLE_FIFO | 0x80); // trigger level 8
  s.w(UART_MCR, UART_MCR_OUT2 | UART_MCR_RTS);
  s.w(UART_SCR, 0x5a);
  s.w(UART_IER, UART_IER_RDI);
  return s;
}

test("snapshot: registers, FIFO and pending host input survive, and the input is delivered after restore", () => {
  const a = opened();
  assert.equal(a.uart.receive(new TextEncoder().encode("hello, snapshot world")), 21);
  assert.equal(a.r(UART_RX), "h".charCodeAt(0));
  assert.equal(a.irq.level, true, "16 bytes in the FIFO, above the trigger");
  const saved = JSON.parse(JSON.stringify(a.uart.saveState()));
  assert.equal(saved.rxFifo.length, 16);
  assert.equal(saved.hostInput, Buffer.from("orld").toString("hex"), "reading one byte let one more in");

  const b = setup();
  b.uart.restoreState(saved);
  assert.deepEqual(b.uart.saveState(), a.uart.saveState());
  assert.equal(b.irq.level, true, "the IRQ line is driven at restore");
  assert.equal(b.r(UART_SCR), 0x5a);
  assert.equal(b.r(UART_IIR) & 0x0f, 0x04, "receive data available");
  assert.equal(b.uart.baudRate(1_843_200), 115_200);
  let text = "";
  while (b.r(UART_LSR) & UART_LSR_DR) text += String.fromCharCode(b.r(UART_RX));
  assert.equal(text, "ello, snapshot world");
  assert.equal(b.irq.level, false);
  assert.equal(b.uart.hostQueueLength, 0);
  // Transmit still works and raises THRE as before.
  b.w(UART_IER, UART_IER_RDI | UART_IER_THRI);
  b.w(UART_TX, 0x41);
  assert.deepEqual(b.out, [0x41]);
});

test("snapshot: loopback state and modem deltas, restored with the inputs loopback implies", () => {
  const a = opened();
  a.w(UART_MCR, UART_MCR_LOOP | UART_MCR_RTS);
  a.w(UART_TX, 0x33); // loops back into the FIFO
  const b = setup();
  b.uart.restoreState(JSON.parse(JSON.stringify(a.uart.saveState())));
  assert.equal(b.r(UART_MSR), a.r(UART_MSR), "same modem inputs and deltas");
  assert.equal(b.r(UART_RX), 0x33);
  // A FIFO reset discards loopback characters (not host ones): the flag survived the snapshot.
  assert.deepEqual(b.uart.saveState().rxFifo, []);
});

test("snapshot: bad states are refused and change nothing", () => {
  const a = opened();
  a.uart.receive(Uint8Array.of(1, 2, 3));
  const good = a.uart.saveState();
  const edges = a.irq.edges;
  const variant = (patch: Record<string, unknown>) => ({ ...JSON.parse(JSON.stringify(good)), ...patch });
  const bad: [unknown, RegExp][] = [
    [[], /uart0: expected an object/],
    [variant({ version: 2 }), /uart0\.version/],
    [variant({ ier: 0x10 }), /uart0\.ier: 0x10 sets bits/],
    [variant({ ier: 256 }), /uart0\.ier/],
    [variant({ mcr: 0x20 }), /uart0\.mcr/],
    [variant({ lsrErrors: UART_LSR_THRE }), /uart0\.lsrErrors/],
    [variant({ msrDeltas: 0x10 }), /uart0\.msrDeltas/],
    [variant({ rxTrigger: "2" }), /uart0\.rxTrigger/],
    [variant({ fifoEnabled: "yes" }), /uart0\.fifoEnabled/],
    [variant({ rxFifo: Array.from({ length: 17 }, () => ({ byte: 0, fromHost: true })) }), /uart0\.rxFifo: 17 entries/],
    [variant({ fifoEnabled: false }), /uart0\.rxFifo: 3 entries do not fit a receiver of 1/],
    [variant({ rxFifo: [{ byte: 300, fromHost: true }] }), /uart0\.rxFifo\[0\]\.byte/],
    [variant({ rxFifo: [{ byte: 3 }] }), /uart0\.rxFifo\[0\]\.fromHost/],
    [variant({ hostInput: "abc" }), /uart0\.hostInput/],
    [variant({ thrInterruptPending: undefined }), /uart0\.thrInterruptPending: expected true or false, got missing/],
  ];
  for (const [state, message] of bad) assert.throws(() => a.uart.restoreState(state), message);
  const small = setup(4);
  assert.throws(() => small.uart.restoreState({ ...good, hostInput: "0102030405" }), /uart0\.hostInput: 5 bytes exceed/);
  assert.deepEqual(a.uart.saveState(), good);
  assert.equal(a.irq.edges, edges);
});
