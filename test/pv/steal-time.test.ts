// SBI Steal-time Accounting (STA) end to end, from the guest's side: a tiny S-mode "kernel" on two
// round-robin harts. Hart 0 probes STA, tries the spec's bad arguments, registers a record and
// then reads it over and over with the spec's read protocol while hart 1 spins, so that hart 0
// waits for the thread between its slices; then it disables the record and checks that the
// reports stop. Results come out on the SBI debug console, one line per check, and SRST ends the
// run. A second test checks that a hart on a thread of its own writes its record too (its steal
// is 0 until the hart scheduler measures it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtMachine, type HartThreadHost } from "../../src/machine/virt.ts";
import { loadCoreModule } from "../../src/host/node/core-module.ts";
import { nodeHartThreads } from "../../src/host/node/hart-threads.ts";
import { aluImm, aluReg, bType, fenceRaw, jal, jalr, load, shiftImm, store, uType, OP } from "../diff/encode.ts";
import { kernelImage, liSigned } from "../support/guest-kernel.ts";

const ZERO = 0, RA = 1, T0 = 5, T1 = 6, T2 = 7, S0 = 8, S1 = 9, A0 = 10, A1 = 11, A2 = 12, A6 = 16, A7 = 17;
const S2 = 18, S3 = 19, S4 = 20, S5 = 21, S6 = 22, T3 = 28, T4 = 29, T5 = 30;
const ECALL = 0x00000073;
const EID_BASE = 0x10, EID_HSM = 0x48534d, EID_SRST = 0x53525354, EID_DBCN = 0x4442434e, EID_STA = 0x535441;
const ERR_INVALID_PARAM = -3, ERR_INVALID_ADDRESS = -5;
/** The record: 1 MiB into RAM, below the kernel (nothing else lives there in a paravirtual boot). */
const RECORD = 0x8010_0000n;
/** fence r,r (pred and succ bits: i=8 o=4 r=2 w=1), as Linux's virt_rmb(). */
const FENCE_R_R = fenceRaw(0, 2, 2);

// ---- a little assembler: instruction words, labels, and branches/jumps to labels -------------
type Item = number | { label: string } | { branch: "beq" | "bne" | "bltu" | "bgeu"; rs1: number; rs2: number; to: string } | { jal: number; to: string } | { la: number; to: string };
const BRANCH_F3 = { beq: 0, bne: 1, bltu: 6, bgeu: 7 } as const;

class Program {
  readonly items: Item[] = [];
  private labels = 0;
  emit(...items: Item[]): this {
    this.items.push(...items);
    return this;
  }
  fresh(name: string): string {
    return `${name}#${this.labels++}`;
  }
  label(name: string): this {
    return this.emit({ label: name });
  }
  /** li of a 64-bit constant whose value fits liSigned, or RECORD-like zero-extended 32-bit ones. */
  li(rd: number, value: bigint): this {
    if (value >= -(1n << 31n) && value < 1n << 31n) return this.emit(...liSigned(rd, Number(value)));
    if (value > 0n && value < 1n << 32n) {
      // Zero-extended: the top bit, then the rest added.
      this.emit(...liSigned(rd, 1), shiftImm("slli", rd, rd, 31));
      const rest = Number(value - (1n << 31n));
      return rest ? this.emit(...liSigned(T5, rest), aluReg("add", rd, rd, T5)) : this;
    }
    throw new RangeError(`li ${value}`);
  }
  putc(ch: string): this {
    return this.emit(...liSigned(A0, ch.charCodeAt(0)), { jal: RA, to: "putc" });
  }
  print(text: string): this {
    for (const ch of text) this.putc(ch);
    return this;
  }
  /** Prints "<name> ok\n" when register `reg` == value, else "<name> FAIL\n". */
  check(name: string, reg: number, value: bigint, compare: "beq" | "bgeu" = "beq"): this {
    const good = this.fresh("good"), done = this.fresh("done");
    this.li(T1, value).emit({ branch: compare, rs1: reg, rs2: T1, to: good });
    this.print(`${name} FAIL\n`).emit({ jal: ZERO, to: done });
    this.label(good).print(`${name} ok\n`).label(done);
    return this;
  }
  sbi(eid: number, fid: number, ...args: bigint[]): this {
    args.forEach((value, i) => this.li(A0 + i, value));
    return this.emit(...liSigned(A7, eid), ...liSigned(A6, fid), ECALL);
  }
  /** Busy loop of about 2 * n instructions (spends hart 0's slices). */
  delay(n: number): this {
    const loop = this.fresh("delay");
    return this.li(T4, BigInt(n)).label(loop).emit(aluImm("addi", T4, T4, -1), { branch: "bne", rs1: T4, rs2: ZERO, to: loop });
  }
  assemble(): number[] {
    const at = new Map<string, number>();
    let pc = 0;
    for (const item of this.items) {
      if (typeof item === "object" && "label" in item) at.set(item.label, pc);
      else pc += typeof item === "object" && "la" in item ? 8 : 4;
    }
    const words: number[] = [];
    const target = (name: string) => {
      const addr = at.get(name);
      if (addr === undefined) throw new Error(`no label ${name}`);
      return addr - 4 * words.length;
    };
    for (const item of this.items) {
      if (typeof item === "number") words.push(item);
      else if ("label" in item) continue;
      else if ("branch" in item) words.push(bType(BRANCH_F3[item.branch], item.rs1, item.rs2, target(item.to)));
      else if ("jal" in item) words.push(jal(item.jal, target(item.to)));
      else {
        const offset = target(item.to);
        const hi = (offset + 0x800) >> 12;
        words.push(uType(OP.AUIPC, item.la, hi & 0xfffff), aluImm("addi", item.la, item.la, offset - (hi << 12)));
      }
    }
    return words;
  }
}

/** The reader of §16.1: s2 <- steal; counts retries in s5 and odd sequences seen in s6. Ends at `done`. */
function readRecord(p: Program): void {
  const retry = p.fresh("retry"), again = p.fresh("again"), done = p.fresh("read");
  p.label(retry)
    .emit(load("lwu", T0, S0, 0), FENCE_R_R, load("ld", T2, S0, 8), FENCE_R_R, load("lwu", T3, S0, 0))
    .emit(aluImm("andi", T1, T0, 1), { branch: "bne", rs1: T1, rs2: ZERO, to: again }, { branch: "bne", rs1: T0, rs2: T3, to: again })
    .emit({ jal: ZERO, to: done })
    .label(again)
    .emit(aluImm("addi", S5, S5, 1))
    .emit(aluImm("andi", T1, T0, 1), { branch: "beq", rs1: T1, rs2: ZERO, to: retry }, aluImm("addi", S6, S6, 1), { jal: ZERO, to: retry })
    .label(done);
}

const READS = 400;
const ADVANCES_WANTED = 4;

function roundRobinKernel(): number[] {
  const p = new Program();
  p.emit({ jal: ZERO, to: "main" });
  // putc(a0): DBCN console_write_byte; clobbers a0, a1, a6, a7.
  p.label("putc").emit(...liSigned(A7, EID_DBCN), ...liSigned(A6, 2), ECALL, jalr(ZERO, RA, 0));
  // Hart 1: spins for ever, taking its whole slice every time.
  p.label("spin").emit(jal(ZERO, 0));
  p.label("main");
  // BASE probe_extension(STA) = 1.
  p.sbi(EID_BASE, 3, BigInt(EID_STA)).emit(aluImm("addi", S1, A1, 0)).check("probe", A0, 0n).check("probe value", S1, 1n);
  // The record, scribbled over: the errors must not touch it, the successful call zeroes it.
  p.li(S0, RECORD).li(T2, -1n);
  for (const off of [0, 8, 16, 24, 32, 40, 48, 56]) p.emit(store("sd", S0, T2, off));
  p.emit(aluImm("addi", A0, S0, 0)).emit(...liSigned(A1, 0), ...liSigned(A2, 1), ...liSigned(A7, EID_STA), ...liSigned(A6, 0), ECALL);
  p.check("flags", A0, BigInt(ERR_INVALID_PARAM));
  p.emit(aluImm("addi", A0, S0, 8)).emit(...liSigned(A1, 0), ...liSigned(A2, 0), ...liSigned(A7, EID_STA), ...liSigned(A6, 0), ECALL);
  p.check("misaligned", A0, BigInt(ERR_INVALID_PARAM));
  p.sbi(EID_STA, 0, 0x1000n, 0n, 0n).check("outside ram", A0, BigInt(ERR_INVALID_ADDRESS));
  p.emit(aluImm("addi", A0, S0, 0)).emit(...liSigned(A1, 1), ...liSigned(A2, 0), ...liSigned(A7, EID_STA), ...liSigned(A6, 0), ECALL);
  p.check("above 2^64", A0, BigInt(ERR_INVALID_ADDRESS));
  p.emit(load("ld", T0, S0, 0)).check("untouched", T0, -1n);
  // Register: success, every byte zero.
  p.emit(aluImm("addi", A0, S0, 0)).emit(...liSigned(A1, 0), ...liSigned(A2, 0), ...liSigned(A7, EID_STA), ...liSigned(A6, 0), ECALL);
  p.check("register", A0, 0n);
  p.li(T0, 0n);
  for (const off of [0, 8, 16, 24, 32, 40, 48, 56]) p.emit(load("ld", T2, S0, off), aluReg("or", T0, T0, T2));
  p.check("zeroed", T0, 0n);
  // Start hart 1 spinning.
  p.emit({ la: A1, to: "spin" }).emit(...liSigned(A0, 1), ...liSigned(A2, 0), ...liSigned(A7, EID_HSM), ...liSigned(A6, 0), ECALL);
  p.check("hart 1", A0, 0n);
  // Read the record READS times, a slice's worth of work apart: s2 = last steal, s3 = advances,
  // s4 = went backwards, s5 = retries, s6 = odd sequences seen, s1 = reads left.
  p.li(S1, BigInt(READS)).li(S2, 0n).li(S3, 0n).li(S4, 0n).li(S5, 0n).li(S6, 0n);
  p.label("loop");
  readRecord(p);
  const same = p.fresh("same"), forward = p.fresh("forward"), next = p.fresh("next");
  p.emit({ branch: "bgeu", rs1: T2, rs2: S2, to: forward }, aluImm("addi", S4, S4, 1)).label(forward);
  p.emit({ branch: "beq", rs1: T2, rs2: S2, to: same }, aluImm("addi", S3, S3, 1)).label(same);
  p.emit(aluImm("addi", S2, T2, 0));
  // preempted reads 0 whenever this hart runs.
  p.emit(load("lbu", T0, S0, 16), aluReg("or", S4, S4, T0));
  p.delay(20_000);
  p.emit(aluImm("addi", S1, S1, -1), { branch: "beq", rs1: S1, rs2: ZERO, to: next });
  p.li(T1, BigInt(ADVANCES_WANTED)).emit({ branch: "bltu", rs1: S3, rs2: T1, to: "loop" });
  p.label(next);
  p.check("steal advances", S3, BigInt(ADVANCES_WANTED), "bgeu");
  p.check("steal monotonic, not preempted", S4, 0n);
  p.check("sequence never odd", S6, 0n);
  p.emit(load("lwu", T0, S0, 0), aluImm("andi", T1, T0, 1)).check("sequence even", T1, 0n);
  p.check("sequence moved", T0, 2n * BigInt(ADVANCES_WANTED), "bgeu");
  // Disable: the record stays as it is from now on.
  p.sbi(EID_STA, 0, -1n, -1n, 0n).check("disable", A0, 0n);
  p.emit(load("ld", S2, S0, 8), load("lwu", S3, S0, 0));
  p.delay(200_000);
  p.emit(load("ld", T0, S0, 8), aluReg("sub", T0, T0, S2)).check("steal frozen", T0, 0n);
  p.emit(load("lwu", T0, S0, 0), aluReg("sub", T0, T0, S3)).check("sequence frozen", T0, 0n);
  p.print("done\n");
  p.sbi(EID_SRST, 0, 0n, 0n);
  p.emit(jal(ZERO, 0));
  return p.assemble();
}

const EXPECTED = [
  "probe", "probe value", "flags", "misaligned", "outside ram", "above 2^64", "untouched", "register", "zeroed", "hart 1",
  "steal advances", "steal monotonic, not preempted", "sequence never odd", "sequence even", "sequence moved",
  "disable", "steal frozen", "sequence frozen",
].map((name) => `${name} ok\n`).join("") + "done\n";

function machine(kernel: number[], output: (text: string) => void, hartThreads?: HartThreadHost, hostThreads?: number): VirtMachine {
  return new VirtMachine({
    module: loadCoreModule({ shared: hartThreads !== undefined }),
    hartThreads,
    hostThreads,
    harts: 2,
    ramSize: 16 << 20,
    kernel: kernelImage(kernel),
    bootargs: "",
    output: (bytes) => output(new TextDecoder().decode(bytes)),
  });
}

for (const engine of ["round robin", "2 harts on 1 host thread"] as const)
test(`a starved hart reads its steal time advancing through SBI STA, with the spec's protocol and errors (${engine})`, async () => {
  let output = "";
  const m = engine === "round robin" ? machine(roundRobinKernel(), (text) => (output += text)) : machine(roundRobinKernel(), (text) => (output += text), nodeHartThreads(), 1);
  const exit = await m.run();
  assert.equal(output, EXPECTED);
  assert.deepEqual(exit, { reason: "poweroff", code: 0 });
  // The host's accounting agrees: both harts waited for each other; the record (frozen when it
  // was disabled) reports no more than hart 0's total since it was registered.
  const ledger = m.ledger();
  const steal = ledger.perHart!.map((h) => h.stealNs);
  assert.ok(steal[0] > 0 && steal[1] > 0, `steal ns ${steal}`);
  const record = new DataView(m.cpu.readRam(Number(RECORD), 64).buffer);
  const reported = Number(record.getBigUint64(8, true));
  assert.ok(reported > 0 && reported <= steal[0], `record ${reported} ns, hart 0 ${steal[0]} ns`);
  assert.equal(record.getUint32(0, true) % 2, 0);
  assert.deepEqual(ledger.sbi.byFunction["STA.steal_time_set_shmem"], 6);
  assert.deepEqual(ledger.sbi.errors, { SBI_ERR_INVALID_PARAM: 2, SBI_ERR_INVALID_ADDRESS: 2 });
});

/** Registers a record and waits (boundedly) until the hart's own thread has written it twice. */
function threadedKernel(): number[] {
  const p = new Program();
  p.emit({ jal: ZERO, to: "main" });
  p.label("putc").emit(...liSigned(A7, EID_DBCN), ...liSigned(A6, 2), ECALL, jalr(ZERO, RA, 0));
  p.label("main");
  p.li(S0, RECORD);
  p.emit(aluImm("addi", A0, S0, 0)).emit(...liSigned(A1, 0), ...liSigned(A2, 0), ...liSigned(A7, EID_STA), ...liSigned(A6, 0), ECALL);
  p.check("register", A0, 0n);
  p.li(S1, 2000n);
  p.label("wait");
  p.delay(200_000);
  p.emit(load("lwu", T0, S0, 0), aluImm("addi", S1, S1, -1), { branch: "beq", rs1: S1, rs2: ZERO, to: "out" });
  p.li(T1, 4n).emit({ branch: "bltu", rs1: T0, rs2: T1, to: "wait" });
  p.label("out");
  p.check("written", T0, 4n, "bgeu");
  p.emit(aluImm("andi", T1, T0, 1)).check("even", T1, 0n);
  p.emit(load("ld", T0, S0, 8)).check("steal 0 alone", T0, 0n);
  p.sbi(EID_SRST, 0, 0n, 0n);
  p.emit(jal(ZERO, 0));
  return p.assemble();
}

test("a hart alone on its host thread writes its STA record before its slices, with no steal", async () => {
  let output = "";
  const m = machine(threadedKernel(), (text) => (output += text), nodeHartThreads());
  const exit = await m.run();
  assert.equal(output, "register ok\nwritten ok\neven ok\nsteal 0 alone ok\n");
  assert.deepEqual(exit, { reason: "poweroff", code: 0 });
  assert.deepEqual(m.ledger().perHart!.map((h) => h.stealNs), [0, 0]);
});
