// The Linux machine with several harts, below the guest kernel: SBI HSM, IPI, RFENCE and TIME
// as the host serves them per hart (with the spec's errors for bad hart ids), PLIC routing per
// hart, and the round-robin run loop starting a STOPPED hart that a tiny S-mode "kernel" asks for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtMachine } from "./virt.ts";
import { loadCoreModule } from "../host/node/core-module.ts";
import { aluImm, csr, jal, uType, OP, wfi } from "../../test/diff/encode.ts";
import { nodeHartThreads } from "../host/node/hart-threads.ts";
import type { HartThreadHost } from "./virt.ts";
import * as MAP from "../platform/memory-map.ts";
import * as L from "../cpu/layout.ts";
import { MIP_SEIP, MIP_SSIP, MIP_STIP } from "../cpu/interrupts.ts";
import { CSR_MIP, CSR_SATP } from "../cpu/csr-numbers.ts";
import { PRIV_S } from "../cpu/cpu.ts";
import {
  SBI_ERR_ALREADY_AVAILABLE,
  SBI_ERR_INVALID_PARAM,
  SBI_EXT_HSM,
  SBI_EXT_IPI,
  SBI_EXT_RFENCE,
  SBI_EXT_TIME,
  SBI_SUCCESS,
} from "../sbi/index.ts";
import { PLIC_CONTEXT_BASE, PLIC_CONTEXT_STRIDE, PLIC_ENABLE_BASE, PLIC_ENABLE_STRIDE } from "../devices/plic.ts";
import { kernelImage, liSigned } from "../../test/support/guest-kernel.ts";

const A0 = 10, A1 = 11, A2 = 12, A6 = 16, A7 = 17, T0 = 5;
const ECALL = 0x00000073;
const EID_DBCN = 0x4442434e, EID_SRST = 0x53525354;
const HSM_STATE = { started: 0n, stopped: 1n, startPending: 2n } as const;

function machine(harts: number, body: number[] = [jal(0, 0)], output: (text: string) => void = () => {}, hartThreads?: HartThreadHost, sstc?: boolean) {
  return new VirtMachine({
    sstc,
    module: loadCoreModule({ shared: hartThreads !== undefined }),
    hartThreads,
    harts,
    ramSize: 16 << 20,
    kernel: kernelImage(body),
    bootargs: "",
    output: (bytes) => output(new TextDecoder().decode(bytes)),
  });
}

/** One SBI call from `hart` as the machine serves it, through registers of a fake caller. */
function sbi(m: VirtMachine, hart: number, eid: number, fid: number, ...args: bigint[]) {
  const regs = new Map<number, bigint>([[17, BigInt(eid)], [16, BigInt(fid)]]);
  args.forEach((value, i) => regs.set(10 + i, BigInt.asUintN(64, value)));
  return m.sbi!.handleCpuEcall({ x: (i) => regs.get(i) ?? 0n, setX: (i, v) => regs.set(i, v) }, hart);
}

const hartStatus = (m: VirtMachine, hart: number) => sbi(m, 0, SBI_EXT_HSM, 2, BigInt(hart));
const ssip = (m: VirtMachine, hart: number) => (m.cpus[hart].getState(L.S_MIP) & BigInt(MIP_SSIP)) !== 0n;

test("hart 0 starts, the others are STOPPED; the device tree and the SBI see every hart", () => {
  const m = machine(4);
  assert.equal(m.cpus.length, 4);
  assert.equal(m.hartCount, 4);
  assert.deepEqual([0, 1, 2, 3].map((h) => hartStatus(m, h).value), [HSM_STATE.started, HSM_STATE.stopped, HSM_STATE.stopped, HSM_STATE.stopped]);
  assert.equal(m.cpus[2].readCsr(0xf14), 2n, "mhartid");
  const cpuNodes = new TextDecoder("latin1").decode(m.deviceTree).match(/cpu@\d/g) ?? [];
  assert.deepEqual([...new Set(cpuNodes)], ["cpu@0", "cpu@1", "cpu@2", "cpu@3"]);
  assert.throws(() => machine(0), /harts must be 1\.\.32/);
  assert.throws(() => machine(33), /harts must be 1\.\.32/);
});

test("hart_start: bad hart ids, started harts, and the entry state of SBI spec §9.1", () => {
  const m = machine(2);
  assert.equal(sbi(m, 0, SBI_EXT_HSM, 0, 2n, BigInt(MAP.RAM_BASE), 0n).error, SBI_ERR_INVALID_PARAM);
  assert.equal(sbi(m, 0, SBI_EXT_HSM, 0, 0n, BigInt(MAP.RAM_BASE), 0n).error, SBI_ERR_ALREADY_AVAILABLE);
  assert.equal(hartStatus(m, 2).error, SBI_ERR_INVALID_PARAM);
  m.cpus[1].writeCsr(CSR_SATP, 8n << 60n);
  const entry = BigInt(MAP.RAM_BASE + 0x1000);
  assert.equal(sbi(m, 0, SBI_EXT_HSM, 0, 1n, entry, 0xabcdn).error, SBI_SUCCESS);
  assert.equal(hartStatus(m, 1).value, HSM_STATE.startPending);
  assert.equal(sbi(m, 0, SBI_EXT_HSM, 0, 1n, entry, 0n).error, SBI_ERR_ALREADY_AVAILABLE);
  const hart1 = m.cpus[1];
  assert.equal(hart1.pc, entry);
  assert.equal(hart1.x(A0), 1n);
  assert.equal(hart1.x(A1), 0xabcdn);
  assert.equal(hart1.priv, PRIV_S);
  assert.equal(hart1.readCsr(CSR_SATP), 0n);
  assert.equal(hart1.readCsr(0x100) & 2n, 0n, "sstatus.SIE = 0");
});

test("IPIs set SSIP on their targets only; absent targets are INVALID_PARAM and nothing is sent", () => {
  const m = machine(3);
  assert.equal(sbi(m, 0, SBI_EXT_IPI, 0, 0b100n, 0n).error, SBI_SUCCESS);
  assert.deepEqual([0, 1, 2].map((h) => ssip(m, h)), [false, false, true]);
  assert.equal(sbi(m, 0, SBI_EXT_IPI, 0, 0b1010n, 0n).error, SBI_ERR_INVALID_PARAM, "hart 3 does not exist");
  assert.equal(ssip(m, 1), false);
  assert.equal(sbi(m, 2, SBI_EXT_IPI, 0, 1n, 1n).error, SBI_SUCCESS, "mask base 1: hart 1");
  assert.deepEqual(m.hartCounters.map((c) => c.ipisReceived), [0, 1, 1]);
  assert.deepEqual(m.hartCounters.map((c) => c.sbiCalls), [0, 0, 0], "fake callers bypass the ECALL exit");
});

test("remote fences reach their targets; absent targets are INVALID_PARAM", () => {
  const m = machine(2);
  assert.equal(sbi(m, 0, SBI_EXT_RFENCE, 1, 0b11n, 0n, 0n, 0n).error, SBI_SUCCESS);
  assert.equal(sbi(m, 0, SBI_EXT_RFENCE, 0, 0b10n, 0n).error, SBI_SUCCESS);
  assert.equal(sbi(m, 0, SBI_EXT_RFENCE, 1, 0b100n, 0n, 0n, 0n).error, SBI_ERR_INVALID_PARAM);
  assert.deepEqual(m.hartCounters.map((c) => c.remoteFences), [1, 2]);
});

test("set_timer programs the calling hart's timer only: stimecmp with Sstc, the SBI deadline without", () => {
  for (const sstc of [true, false]) {
    const m = machine(2, undefined, undefined, undefined, sstc);
    // mip as the hart sees it: with Sstc (menvcfg.STCE) STIP follows time >= stimecmp.
    const stip = (h: number) => (m.cpus[h].readCsr(CSR_MIP) & BigInt(MIP_STIP)) !== 0n;
    sbi(m, 1, SBI_EXT_TIME, 0, 0n); // already due
    sbi(m, 0, SBI_EXT_TIME, 0, -1n); // never
    assert.deepEqual([stip(0), stip(1)], [false, true], `sstc ${sstc}`);
    assert.deepEqual([m.cpus[0].getState(L.S_STIMECMP), m.cpus[1].getState(L.S_STIMECMP)], sstc ? [2n ** 64n - 1n, 0n] : [0n, 0n], "stimecmp (untouched at reset without Sstc)");
    sbi(m, 1, SBI_EXT_TIME, 0, BigInt(m.cpu.readTime()) + 10_000_000n); // far in the future: clears STIP
    assert.equal(stip(1), false, `sstc ${sstc}: a later deadline clears the pending bit (SBI spec §6.1)`);
    sbi(m, 1, 0x00, 0, 0n); // legacy set_timer
    assert.equal(stip(1), true, `sstc ${sstc}: legacy set_timer`);
  }
});

test("the PLIC routes a source to the hart whose S-mode context enables it", () => {
  const m = machine(2);
  const seip = (h: number) => (m.cpus[h].getState(L.S_MIP) & BigInt(MIP_SEIP)) !== 0n;
  const hart1S = 3; // context 2N+1
  m.plic.store(4 * MAP.UART0_IRQ, 4, 1); // priority
  m.plic.store(PLIC_ENABLE_BASE + hart1S * PLIC_ENABLE_STRIDE, 4, 1 << MAP.UART0_IRQ);
  m.plic.store(PLIC_CONTEXT_BASE + hart1S * PLIC_CONTEXT_STRIDE, 4, 0); // threshold
  m.plic.setLevel(MAP.UART0_IRQ, true);
  assert.deepEqual([seip(0), seip(1)], [false, true]);
});

for (const threads of [false, true]) {
test(`the run loop starts a STOPPED hart at hart_start and lets hart 0 idle in WFI meanwhile (${threads ? "a thread per hart" : "round robin"})`, async () => {
  // Hart 0: hart_start(1, entry, 'A'), then WFI forever. Hart 1 at entry: prints '0' + a0 and
  // then a1 through the debug console, and shuts the machine down.
  const hart0 = [
    ...liSigned(A7, SBI_EXT_HSM), ...liSigned(A6, 0), ...liSigned(A0, 1),
    uType(OP.AUIPC, A1, 0), aluImm("addi", A1, A1, 0), // patched below: a1 = entry
    ...liSigned(A2, 0x41), ECALL,
    wfi(), jal(0, -4),
  ];
  const auipcAt = hart0.findIndex((insn) => insn === uType(OP.AUIPC, A1, 0));
  hart0[auipcAt + 1] = aluImm("addi", A1, A1, 4 * (hart0.length - auipcAt));
  const hart1 = [
    aluImm("addi", T0, A1, 0),
    ...liSigned(A7, EID_DBCN), ...liSigned(A6, 2),
    aluImm("addi", A0, A0, 0x30), ECALL,
    aluImm("addi", A0, T0, 0), ECALL,
    ...liSigned(A7, EID_SRST), ...liSigned(A6, 0), ...liSigned(A0, 0), ...liSigned(A1, 0), ECALL,
    jal(0, 0),
  ];
  let output = "";
  const m = machine(2, [...hart0, ...hart1], (text) => (output += text), threads ? nodeHartThreads() : undefined);
  const exit = await m.run();
  assert.deepEqual(exit, { reason: "poweroff", code: 0 });
  assert.equal(output, "1A");
  const ledger = m.ledger();
  assert.equal(ledger.perHart?.length, 2);
  assert.deepEqual(ledger.perHart!.map((h) => h.sbiCalls), [1, 3]);
  assert.equal(ledger.sbi.total, 4);
  assert.equal(ledger.instructions, ledger.perHart![0].instructions + ledger.perHart![1].instructions);
});
}

const CSR_SSTATUS = 0x100, CSR_SIE = 0x104, CSR_STVEC = 0x105;
const T1 = 6;

/**
 * Hart 0 starts hart 1, which enables its software interrupt and then spins (`j .`, never WFI).
 * Hart 0 asks it for a remote SFENCE.VMA, prints 'F' once that returned, sends it an IPI and
 * spins too. Hart 1's trap handler prints 'I' and shuts the machine down. Both harts are busy
 * on their own threads: the fence's acknowledgement and the IPI must reach a running hart.
 */
function fenceThenIpiKernel(): number[] {
  const hart0 = [
    ...liSigned(A7, SBI_EXT_HSM), ...liSigned(A6, 0), ...liSigned(A0, 1),
    uType(OP.AUIPC, A1, 0), aluImm("addi", A1, A1, 0), // patched: a1 = hart 1's entry
    aluImm("addi", A2, 0, 0), ECALL,
    ...liSigned(A7, SBI_EXT_RFENCE), ...liSigned(A6, 1), ...liSigned(A0, 0b10), ...liSigned(A1, 0),
    ...liSigned(A2, 0), aluImm("addi", 13, 0, 0), ECALL, // remote_sfence_vma(mask 0b10, base 0, all)
    ...liSigned(A7, EID_DBCN), ...liSigned(A6, 2), ...liSigned(A0, 0x46), ECALL, // 'F'
    ...liSigned(A7, SBI_EXT_IPI), ...liSigned(A6, 0), ...liSigned(A0, 0b10), ...liSigned(A1, 0), ECALL,
    jal(0, 0),
  ];
  const hart1 = [
    uType(OP.AUIPC, T0, 0), aluImm("addi", T0, T0, 0), // patched: t0 = handler
    csr("csrrw", 0, CSR_STVEC, T0),
    aluImm("addi", T1, 0, 2),
    csr("csrrs", 0, CSR_SIE, T1), // SSIE
    csr("csrrs", 0, CSR_SSTATUS, T1), // SIE
    jal(0, 0),
  ];
  const handler = [
    ...liSigned(A7, EID_DBCN), ...liSigned(A6, 2), ...liSigned(A0, 0x49), ECALL, // 'I'
    ...liSigned(A7, EID_SRST), ...liSigned(A6, 0), ...liSigned(A0, 0), ...liSigned(A1, 0), ECALL,
    jal(0, 0),
  ];
  const auipc0 = hart0.indexOf(uType(OP.AUIPC, A1, 0));
  hart0[auipc0 + 1] = aluImm("addi", A1, A1, 4 * (hart0.length - auipc0));
  hart1[1] = aluImm("addi", T0, T0, 4 * hart1.length);
  return [...hart0, ...hart1, ...handler];
}

for (const jit of ["off", "eager"] as const) {
  test(`harts on threads: a remote fence and an IPI reach a hart that is busy on its own thread (translator ${jit})`, async () => {
    let output = "";
    const m = new VirtMachine({
      module: loadCoreModule({ shared: true }),
      hartThreads: nodeHartThreads(),
      harts: 2,
      ramSize: 16 << 20,
      kernel: kernelImage(fenceThenIpiKernel()),
      bootargs: "",
      jit,
      output: (bytes) => (output += new TextDecoder().decode(bytes)),
    });
    assert.deepEqual(await m.run(), { reason: "poweroff", code: 0 });
    assert.equal(output, "FI");
    const ledger = m.ledger();
    assert.deepEqual(ledger.perHart!.map((h) => h.remoteFences), [0, 1]);
    assert.deepEqual(ledger.perHart!.map((h) => h.ipisReceived), [0, 1]);
    assert.equal(ledger.interrupts.total, 1, "hart 1 took the software interrupt");
  });
}

test("harts on threads: a hart thread that fails ends the machine with its message", async () => {
  const failing: HartThreadHost = {
    readTime: () => 0,
    start: (init) => ({
      finished: init.hartIndices.includes(1) ? Promise.reject(new Error("out of host memory")) : new Promise<void>(() => {}),
      terminate: () => {},
    }),
  };
  const m = machine(2, [jal(0, 0)], () => {}, failing);
  assert.deepEqual(await m.run(), { reason: "failed", message: "hart 1's thread failed: out of host memory" });
});

test("harts on threads: an exception in a real hart thread ends the machine, naming the hart", async () => {
  const real = nodeHartThreads();
  const broken: HartThreadHost = { readTime: () => real.readTime(), start: (init) => real.start({ ...init, hartIndices: init.hartIndices.map((hart) => (hart === 1 ? 99 : hart)) }) };
  const exit = await machine(2, [jal(0, 0)], () => {}, broken).run();
  assert.equal(exit.reason, "failed");
  assert.match((exit as { message: string }).message, /^hart 1's thread failed: hart index 99 is outside the layout's 2 hart\(s\)/);
});

test("harts on threads need the shared-memory engine", () => {
  assert.throws(
    () => new VirtMachine({ module: loadCoreModule(), hartThreads: nodeHartThreads(), harts: 2, ramSize: 16 << 20, kernel: kernelImage([jal(0, 0)]), bootargs: "", output: () => {} }),
    /shared-memory engine \(build\/cpu-shared\.wasm\)/,
  );
});
