// The ledger of the Linux machine (VirtMachine, paravirtual boot) is exact on a tiny S-mode
// "kernel" whose every instruction is known: SBI calls of several extensions (one unknown),
// debug-console bytes, UART writes, and an SBI shutdown that ends the run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtMachine } from "../../src/machine/virt.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { jal, load, lui, store } from "../diff/encode.ts";
import { kernelImage, liSigned } from "../support/guest-kernel.ts";

const A0 = 10, A1 = 11, A6 = 16, A7 = 17, T0 = 5, T1 = 6;
const ECALL = 0x00000073;
const EID_BASE = 0x10, EID_TIME = 0x54494d45, EID_DBCN = 0x4442434e, EID_SRST = 0x53525354, EID_UNKNOWN = 0x12345678;

const CONSOLE_BYTES = 5;
const UART_BYTES = 7;

function program(): number[] {
  const p: number[] = [];
  p.push(...liSigned(A7, EID_BASE), ...liSigned(A6, 0), ECALL); // BASE.get_spec_version
  p.push(...liSigned(A6, 3), ...liSigned(A0, EID_TIME), ECALL); // BASE.probe_extension(TIME)
  p.push(...liSigned(A7, EID_DBCN), ...liSigned(A6, 2));
  for (let i = 0; i < CONSOLE_BYTES; i++) p.push(...liSigned(A0, 0x78), ECALL); // DBCN.console_write_byte('x')
  p.push(...liSigned(A7, EID_TIME), ...liSigned(A6, 0), ...liSigned(A0, -1), ECALL); // TIME.set_timer(never)
  p.push(...liSigned(A7, EID_UNKNOWN), ECALL); // no such extension: SBI_ERR_NOT_SUPPORTED
  p.push(lui(T0, 0x10000), ...liSigned(T1, 0x75)); // t0 = UART base, t1 = 'u'
  for (let i = 0; i < UART_BYTES; i++) p.push(store("sb", T0, T1, 0)); // THR
  p.push(load("lbu", T1, T0, 5)); // LSR
  p.push(...liSigned(A7, EID_SRST), ...liSigned(A6, 0), ...liSigned(A0, 0), ...liSigned(A1, 0), ECALL); // SRST.system_reset(shutdown)
  p.push(jal(0, 0)); // not reached
  return p;
}

test("the paravirtual machine's ledger counts every SBI call, exit and byte of a known program", async () => {
  const body = program();
  let output = "";
  const machine = new VirtMachine({
    module: loadCoreModule(),
    ramSize: 16 << 20,
    kernel: kernelImage(body),
    bootargs: "",
    output: (bytes) => (output += new TextDecoder().decode(bytes)),
  });
  const exit = await machine.run();
  assert.deepEqual(exit, { reason: "poweroff", code: 0 });
  assert.equal(output, "x".repeat(CONSOLE_BYTES) + "u".repeat(UART_BYTES));

  const ledger = machine.ledger();
  // The header's jump, then the whole body but its last instruction (after the shutdown ECALL,
  // which retires like any other: the hypervisor serves it without a trap in the guest).
  assert.equal(ledger.instructions, 1 + (body.length - 1));
  assert.deepEqual(ledger.sbi, {
    total: CONSOLE_BYTES + 5,
    byExtension: { DBCN: CONSOLE_BYTES, BASE: 2, SRST: 1, TIME: 1, unknown: 1 },
    byFunction: {
      "DBCN.console_write_byte": CONSOLE_BYTES,
      "BASE.get_spec_version": 1,
      "BASE.probe_extension": 1,
      "SRST.system_reset": 1,
      "TIME.set_timer": 1,
      unknown: 1,
    },
    errors: { SBI_ERR_NOT_SUPPORTED: 1 },
  });
  assert.deepEqual(ledger.exits.byDevice.uart0, { loads: 1, stores: UART_BYTES, byRegister: { THR: UART_BYTES, LSR: 1 } });
  for (const device of ["plic", "rtc", "test"]) assert.deepEqual(ledger.exits.byDevice[device], { loads: 0, stores: 0, byRegister: {} });
  assert.equal(ledger.exits.total, UART_BYTES + 1);
  assert.deepEqual(ledger.bytes, { uart0: { in: 0, out: UART_BYTES }, "sbi-console": { in: 0, out: CONSOLE_BYTES } });
  assert.deepEqual(ledger.interrupts, { total: 0, byCause: {}, bySource: { uart0: 0, rtc: 0, vmgenid: 0 } });
  // SBI calls leave the core without trapping in the guest.
  assert.deepEqual(ledger.exceptions, { total: 0, byCause: {} });
  assert.deepEqual(JSON.parse(JSON.stringify(ledger)), ledger);
});
