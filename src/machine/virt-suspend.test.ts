// SBI HSM hart_suspend (SBI v2.0 §9.4) as the machine serves it, in both hart engines (round robin
// on one thread; a thread per hart): the errors for reserved suspend types and for a
// non-retentive resume address outside RAM, a retentive suspend woken by the Sstc timer
// (stimecmp), a non-retentive one that resumes at its address with a0 = hartid and a1 = opaque,
// a suspend ended by another hart's IPI and one ended by a device interrupt the host raises, a
// suspended hart costing the host no CPU meanwhile, and the ledger's suspend entries per hart.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtMachine } from "./virt.ts";
import { loadCoreModule } from "../host/node/core-module.ts";
import { nodeHartThreads } from "../host/node/hart-threads.ts";
import { aluImm, aluReg, auipc, branch, csr, jal, store } from "../../test/diff/encode.ts";
import { kernelImage, liSigned } from "../../test/support/guest-kernel.ts";
import * as MAP from "../platform/memory-map.ts";
import { findNode, getProperty, parseFdt } from "../platform/fdt.ts";
import { PLIC_CONTEXT_BASE, PLIC_CONTEXT_STRIDE, PLIC_ENABLE_BASE, PLIC_ENABLE_STRIDE } from "../devices/plic.ts";
import {
  SBI_ERR_INVALID_ADDRESS,
  SBI_ERR_INVALID_PARAM,
  SBI_EXT_HSM,
  SBI_EXT_IPI,
  SBI_HSM_STATE_STOPPED,
  SBI_HSM_STATE_SUSPENDED,
  SBI_SUCCESS,
} from "../sbi/index.ts";

const T0 = 5, T1 = 6, T2 = 7, S0 = 8, A0 = 10, A1 = 11, A2 = 12, A6 = 16, A7 = 17;
const ECALL = 0x00000073;
const EID_SRST = 0x53525354;
const CSR_SSTATUS = 0x100, CSR_SIE = 0x104, CSR_SIP = 0x144, CSR_STIMECMP = 0x14d, CSR_TIME = 0xc01;
const HSM_HART_START = 0, HSM_HART_STOP = 1, HSM_GET_STATUS = 2, HSM_HART_SUSPEND = 3;
/** sie bits: supervisor software, timer, external. */
const SSIE = 1 << 1, STIE = 1 << 5, SEIE = 1 << 9;
/** 200 µs of the 10 MHz timebase: the timer wakes come soon. */
const TIMER_TICKS = 2000;
/** Where the kernel Image is placed (planBootLayout: RAM + its text_offset) and its code starts. */
const KERNEL_CODE = MAP.RAM_BASE + 0x20_0000 + 64;

/** A word, or one that depends on where it sits and where the labels are; or a label. */
type Item = number | ((at: number, label: (name: string) => number) => number) | { label: string };

/** Two passes over items: labels get byte offsets from the start of the code, then words resolve. */
function assemble(items: Item[]): { words: number[]; labels: Map<string, number> } {
  const labels = new Map<string, number>();
  let at = 0;
  for (const item of items) {
    if (typeof item === "object") labels.set(item.label, at);
    else at += 4;
  }
  const label = (name: string) => {
    const offset = labels.get(name);
    if (offset === undefined) throw new Error(`no label ${name}`);
    return offset;
  };
  const words: number[] = [];
  for (const item of items) {
    if (typeof item === "object") continue;
    words.push(typeof item === "number" ? item : item(4 * words.length, label));
  }
  return { words, labels };
}

/** la rd, label (auipc + addi; the code is small enough for a 12-bit offset). */
const la = (rd: number, name: string): Item[] => [auipc(rd, 0), (at, label) => aluImm("addi", rd, rd, label(name) - (at - 4))];
const j = (name: string): Item => (at, label) => jal(0, label(name) - at);
const bne = (rs1: number, rs2: number, name: string): Item => (at, label) => branch("bne", rs1, rs2, label(name) - at);
const sbiCall = (eid: number, fid: number): Item[] => [...liSigned(A7, eid), ...liSigned(A6, fid), ECALL];
const suspend = (type: number, a1: Item[], opaque = 0): Item[] => [
  ...liSigned(A0, type | 0), // 0x80000000 arrives sign-extended, as from C's (long)(u32)
  ...a1,
  ...liSigned(A2, opaque),
  ...sbiCall(SBI_EXT_HSM, HSM_HART_SUSPEND),
];
const save = (rs: number, slot: number): Item => store("sd", S0, rs, 8 * slot);

/** What the program stores in its data area, by slot. */
const SLOT = {
  reserved: 0, // a0 of hart_suspend(0x00000001)
  badResume: 1, // a0 of hart_suspend(0x80000000, 0x1000)
  retentive: 2, // a0 of the retentive suspend that the timer ends
  lateBy: 3, // time after that wake minus the deadline (>= 0)
  fellThrough: 4, // 0xbad if a non-retentive suspend returned like a call
  resumeA0: 5,
  resumeA1: 6,
  resumeSstatus: 7,
  ipiWake: 8, // a0 of the suspend that hart 1's IPI ends
  ipiSip: 9, // sip right after it
  deviceWake: 10, // a0 of the suspend that the PLIC line ends
  deviceSip: 11,
} as const;

function suspendProgram(): { kernel: Uint8Array; data: number } {
  const { words, labels } = assemble([
    ...la(S0, "data"),
    // hart_suspend(reserved type) and a non-retentive suspend whose resume address is no RAM.
    ...suspend(0x0000_0001, liSigned(A1, 0)),
    save(A0, SLOT.reserved),
    ...suspend(0x8000_0000, liSigned(A1, 0x1000)),
    save(A0, SLOT.badResume),
    // Retentive, woken by stimecmp; interrupts off in sstatus (as Linux's idle loop has them),
    // enabled in sie: the interrupt ends the suspension without a trap.
    ...liSigned(T0, STIE), csr("csrrw", 0, CSR_SIE, T0),
    csr("csrrs", T1, CSR_TIME, 0), aluImm("addi", T1, T1, TIMER_TICKS), csr("csrrw", 0, CSR_STIMECMP, T1),
    ...suspend(0x0000_0000, liSigned(A1, 0)),
    save(A0, SLOT.retentive),
    csr("csrrs", T2, CSR_TIME, 0), aluReg("sub", T2, T2, T1), save(T2, SLOT.lateBy),
    ...liSigned(T0, -1), csr("csrrw", 0, CSR_STIMECMP, T0),
    // Non-retentive, woken by stimecmp: resumes at "resume", never after the ECALL.
    csr("csrrs", T1, CSR_TIME, 0), aluImm("addi", T1, T1, TIMER_TICKS), csr("csrrw", 0, CSR_STIMECMP, T1),
    ...suspend(0x8000_0000, la(A1, "resume"), 0x5a5),
    ...liSigned(T0, 0xbad), save(T0, SLOT.fellThrough),
    { label: "resume" },
    ...la(S0, "data"),
    save(A0, SLOT.resumeA0), save(A1, SLOT.resumeA1),
    csr("csrrs", T0, CSR_SSTATUS, 0), save(T0, SLOT.resumeSstatus),
    ...liSigned(T0, -1), csr("csrrw", 0, CSR_STIMECMP, T0),
    // Retentive, woken by an IPI from hart 1, which waits until this hart is SUSPENDED.
    ...liSigned(T0, SSIE), csr("csrrw", 0, CSR_SIE, T0),
    ...liSigned(A0, 1), ...la(A1, "hart1"), ...liSigned(A2, 0), ...sbiCall(SBI_EXT_HSM, HSM_HART_START),
    ...suspend(0x0000_0000, liSigned(A1, 0)),
    save(A0, SLOT.ipiWake),
    csr("csrrs", T0, CSR_SIP, 0), save(T0, SLOT.ipiSip),
    csr("csrrci", 0, CSR_SIP, SSIE),
    // Retentive, woken by a device interrupt the host raises through the PLIC.
    ...liSigned(T0, SEIE), csr("csrrw", 0, CSR_SIE, T0),
    ...suspend(0x0000_0000, liSigned(A1, 0)),
    save(A0, SLOT.deviceWake),
    csr("csrrs", T0, CSR_SIP, 0), save(T0, SLOT.deviceSip),
    ...liSigned(A0, 0), ...liSigned(A1, 0), ...sbiCall(EID_SRST, 0),
    { label: "halt" },
    j("halt"),
    // Hart 1: wait for hart 0 to be SUSPENDED, send it an IPI, stop.
    { label: "hart1" },
    ...liSigned(A0, 0), ...sbiCall(SBI_EXT_HSM, HSM_GET_STATUS),
    ...liSigned(T0, SBI_HSM_STATE_SUSPENDED), bne(A1, T0, "hart1"),
    ...liSigned(A0, 1), ...liSigned(A1, 0), ...sbiCall(SBI_EXT_IPI, 0),
    ...sbiCall(SBI_EXT_HSM, HSM_HART_STOP),
    j("halt"),
    { label: "data" },
    ...new Array<number>(Object.keys(SLOT).length).fill(0),
  ]);
  return { kernel: kernelImage(words), data: KERNEL_CODE + labels.get("data")! };
}

const hartState = (m: VirtMachine, hart: number) => m.hartState(hart);

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

for (const threads of [false, true]) {
  test(`hart_suspend: errors, timer / IPI / device wakes, no host CPU while suspended (${threads ? "a thread per hart" : "round robin"})`, { timeout: 60_000 }, async () => {
    const { kernel, data } = suspendProgram();
    const m = new VirtMachine({
      module: loadCoreModule({ shared: threads }),
      hartThreads: threads ? nodeHartThreads() : undefined,
      harts: 2,
      ramSize: 16 << 20,
      kernel,
      bootargs: "",
      output: () => {},
    });
    const finished = m.run();
    // Hart 0 ends up suspended waiting for a device interrupt, hart 1 stopped: the host sleeps.
    await until("hart 0 waits for the device", () => hartState(m, 0) === SBI_HSM_STATE_SUSPENDED && hartState(m, 1) === SBI_HSM_STATE_STOPPED && m.hartCounters[0].suspends === 4);
    const instructions = m.ledger().instructions;
    const cpuBefore = process.cpuUsage();
    const wallBefore = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 400));
    const cpu = process.cpuUsage(cpuBefore);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const wallMs = performance.now() - wallBefore;
    // Every thread of this process counts (the I/O thread's timers, the hart threads' sleeps):
    // a spinning hart would use about all of the wall time.
    assert.ok(cpuMs < wallMs * 0.25, `a suspended hart costs no host CPU: ${cpuMs.toFixed(1)} ms of CPU in ${wallMs.toFixed(0)} ms`);
    assert.equal(m.ledger().instructions, instructions, "no instruction ran while suspended");
    assert.equal(hartState(m, 0), SBI_HSM_STATE_SUSPENDED);
    // The device interrupt: UART source enabled for hart 0's S-mode context (1), then raised.
    m.plic.store(4 * MAP.UART0_IRQ, 4, 1);
    m.plic.store(PLIC_ENABLE_BASE + 1 * PLIC_ENABLE_STRIDE, 4, 1 << MAP.UART0_IRQ);
    m.plic.store(PLIC_CONTEXT_BASE + 1 * PLIC_CONTEXT_STRIDE, 4, 0);
    m.plic.setLevel(MAP.UART0_IRQ, true);
    assert.deepEqual(await finished, { reason: "poweroff", code: 0 });

    const bytes = m.readGuest(BigInt(data), 8 * Object.keys(SLOT).length)!;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const slot = (i: number) => view.getBigUint64(8 * i, true);
    const signed = (i: number) => BigInt.asIntN(64, slot(i));
    assert.equal(signed(SLOT.reserved), SBI_ERR_INVALID_PARAM, "reserved suspend type");
    assert.equal(signed(SLOT.badResume), SBI_ERR_INVALID_ADDRESS, "non-retentive resume address outside RAM");
    assert.equal(signed(SLOT.retentive), SBI_SUCCESS, "retentive suspend returns SBI_SUCCESS");
    assert.ok(signed(SLOT.lateBy) >= 0n, `woke at or after the stimecmp deadline (${signed(SLOT.lateBy)} ticks)`);
    assert.equal(slot(SLOT.fellThrough), 0n, "a non-retentive suspend does not return to its caller");
    assert.equal(slot(SLOT.resumeA0), 0n, "resume: a0 = hartid");
    assert.equal(slot(SLOT.resumeA1), 0x5a5n, "resume: a1 = opaque");
    assert.equal(slot(SLOT.resumeSstatus) & 2n, 0n, "resume: sstatus.SIE = 0");
    assert.equal(signed(SLOT.ipiWake), SBI_SUCCESS);
    assert.notEqual(slot(SLOT.ipiSip) & BigInt(SSIE), 0n, "the IPI is still pending after the wake");
    assert.equal(signed(SLOT.deviceWake), SBI_SUCCESS);
    assert.notEqual(slot(SLOT.deviceSip) & BigInt(SEIE), 0n, "the device interrupt is still pending after the wake");

    const ledger = m.ledger();
    assert.deepEqual(ledger.perHart!.map((hart) => hart.suspends), [4, 0], "accepted suspends only; errors are not entries");
    assert.equal(ledger.sbi.byFunction["HSM.hart_suspend"], 6);
  });
}

test("idle states in the device tree: by default in paravirtual boot only; the option overrides", () => {
  const hasIdleStates = (options: { firmware?: boolean; idleStates?: boolean }) => {
    const m = new VirtMachine({
      module: loadCoreModule(),
      harts: 2,
      ramSize: 16 << 20,
      kernel: kernelImage([jal(0, 0)]),
      bootargs: "",
      output: () => {},
      // Any bytes do for the firmware here: nothing runs.
      firmware: options.firmware ? new Uint8Array(64) : undefined,
      idleStates: options.idleStates,
    });
    const { root } = parseFdt(m.deviceTree);
    const present = findNode(root, "/cpus/idle-states") !== undefined;
    assert.equal(getProperty(findNode(root, "/cpus/cpu@1")!, "cpu-idle-states") !== undefined, present);
    return present;
  };
  assert.equal(hasIdleStates({}), true);
  assert.equal(hasIdleStates({ idleStates: false }), false);
  assert.equal(hasIdleStates({ firmware: true }), false);
  assert.equal(hasIdleStates({ firmware: true, idleStates: true }), true);
});
