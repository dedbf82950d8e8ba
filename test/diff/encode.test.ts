// Checks the differential tests' encoder against GNU as: each case pairs an encoder call with the
// assembly text that must produce the same bytes. A wrong encoder would make both emulators run an
// instruction the generator did not mean, hiding the coverage it claims.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { needsHostTools } from "../support/host-tools.ts";
import * as E from "./encode.ts";

const CASES: Array<[number, string]> = [
  [E.lui(5, 0xfffff), "lui t0, 0xfffff"],
  [E.auipc(31, 0x12345), "auipc t6, 0x12345"],
  [E.jal(1, 2046), "jal ra, .+2046"],
  [E.jal(0, -1048576), "jal zero, .-1048576"],
  [E.jalr(3, 7, -2048), "jalr gp, -2048(t2)"],
  [E.branch("bgeu", 9, 30, -4096), "bgeu s1, t5, .-4096"],
  [E.branch("blt", 1, 2, 4094), "blt ra, sp, .+4094"],
  [E.load("lwu", 10, 31, 2047), "lwu a0, 2047(t6)"],
  [E.store("sh", 31, 17, -1), "sh a7, -1(t6)"],
  [E.aluImm("sltiu", 12, 13, -1), "sltiu a2, a3, -1"],
  [E.shiftImm("srai", 4, 5, 63), "srai tp, t0, 63"],
  [E.shiftImmW("srli", 4, 5, 31), "srliw tp, t0, 31"],
  [E.addiw(6, 7, 100), "addiw t1, t2, 100"],
  [E.aluReg("mulhsu", 8, 9, 10), "mulhsu s0, s1, a0"],
  [E.aluReg("sra", 8, 9, 10), "sra s0, s1, a0"],
  [E.aluRegW("remuw", 11, 12, 13), "remuw a1, a2, a3"],
  [E.aluRegW("subw", 11, 12, 13), "subw a1, a2, a3"],
  [E.fence(), "fence iorw, iorw"],
  [E.fenceI(), "fence.i"],
  [E.csr("csrrw", 5, E.CSR_FRM, 6), "csrrw t0, frm, t1"],
  [E.csr("csrrci", 0, E.CSR_FFLAGS, 31), "csrrci zero, fflags, 31"],
  [E.csr("csrrs", 7, E.CSR_FCSR, 0), "csrrs t2, fcsr, zero"],
  [E.amo("lr", 8, 5, 6, 0, true, false), "lr.d.aq t0, (t1)"],
  [E.amo("sc", 4, 5, 6, 7, false, true), "sc.w.rl t0, t2, (t1)"],
  [E.amo("amomaxu", 8, 5, 6, 7, true, true), "amomaxu.d.aqrl t0, t2, (t1)"],
  [E.amo("amoxor", 4, 0, 6, 7, false, false), "amoxor.w zero, t2, (t1)"],
  [E.flw(1, 31, -8), "flw ft1, -8(t6)"],
  [E.fsd(31, 30, 16), "fsd ft10, 16(t6)"],
  [E.fpArith("fdiv", 1, 7, 1, 2, 3), "fdiv.d ft1, ft2, ft3, dyn"],
  [E.fpArith("fsub", 0, 1, 1, 2, 3), "fsub.s ft1, ft2, ft3, rtz"],
  [E.fsqrt(0, 4, 1, 2), "fsqrt.s ft1, ft2, rmm"],
  [E.fsgnj("fsgnjx", 1, 4, 5, 6), "fsgnjx.d ft4, ft5, ft6"],
  [E.fminmax(true, 0, 4, 5, 6), "fmax.s ft4, ft5, ft6"],
  [E.fcmp("flt", 1, 10, 5, 6), "flt.d a0, ft5, ft6"],
  [E.fclass(0, 10, 5), "fclass.s a0, ft5"],
  [E.fmvXF(0, 10, 5), "fmv.x.w a0, ft5"],
  [E.fmvXF(1, 10, 5), "fmv.x.d a0, ft5"],
  [E.fmvFX(0, 5, 10), "fmv.w.x ft5, a0"],
  [E.fcvtIntFromFp(3, 1, 2, 10, 5), "fcvt.lu.d a0, ft5, rdn"],
  [E.fcvtIntFromFp(0, 0, 3, 10, 5), "fcvt.w.s a0, ft5, rup"],
  [E.fcvtFpFromInt(1, 0, 0, 5, 10), "fcvt.s.wu ft5, a0, rne"],
  [E.fcvtFpFromInt(2, 1, 7, 5, 10), "fcvt.d.l ft5, a0, dyn"],
  [E.fcvtFpFp(0, 1, 5, 6), "fcvt.s.d ft5, ft6, rtz"],
  [E.fcvtFpFp(1, 0, 5, 6), "fcvt.d.s ft5, ft6"],
  [E.fma("fnmadd", 1, 2, 1, 2, 3, 4), "fnmadd.d ft1, ft2, ft3, ft4, rdn"],
  [E.fma("fmsub", 0, 7, 31, 30, 29, 28), "fmsub.s ft11, ft10, ft9, ft8, dyn"],
  [E.cAddi4spn(8, 1020), "c.addi4spn s0, sp, 1020"],
  [E.cAddi4spn(15, 4), "c.addi4spn a5, sp, 4"],
  [E.cFld(9, 10, 248), "c.fld fs1, 248(a0)"],
  [E.cLw(11, 12, 124), "c.lw a1, 124(a2)"],
  [E.cLw(11, 12, 68), "c.lw a1, 68(a2)"],
  [E.cLd(13, 14, 136), "c.ld a3, 136(a4)"],
  [E.cFsd(15, 8, 8), "c.fsd fs0, 8(a5)"],
  [E.cSw(8, 9, 4), "c.sw s1, 4(s0)"],
  [E.cSd(8, 9, 192), "c.sd s1, 192(s0)"],
  [E.cNop(), "c.nop"],
  [E.cAddi(5, -32), "c.addi t0, -32"],
  [E.cAddiw(5, 31), "c.addiw t0, 31"],
  [E.cLi(30, -1), "c.li t5, -1"],
  [E.cAddi16sp(-512), "c.addi16sp sp, -512"],
  [E.cAddi16sp(496), "c.addi16sp sp, 496"],
  [E.cAddi16sp(80), "c.addi16sp sp, 80"],
  [E.cLui(5, -1), "c.lui t0, 0xfffff"],
  [E.cLui(5, 17), "c.lui t0, 17"],
  [E.cSrli(9, 63), "c.srli s1, 63"],
  [E.cSrai(9, 1), "c.srai s1, 1"],
  [E.cAndi(9, -21), "c.andi s1, -21"],
  [E.cArith("c.subw", 10, 11), "c.subw a0, a1"],
  [E.cArith("c.or", 10, 11), "c.or a0, a1"],
  [E.cJ(2046), "c.j .+2046"],
  [E.cJ(-1366), "c.j .-1366"],
  [E.cBranch(false, 8, 254), "c.beqz s0, .+254"],
  [E.cBranch(true, 15, -170), "c.bnez a5, .-170"],
  [E.cSlli(31, 33), "c.slli t6, 33"],
  [E.cFldsp(3, 504), "c.fldsp ft3, 504(sp)"],
  [E.cLdsp(3, 328), "c.ldsp gp, 328(sp)"],
  [E.cLwsp(3, 252), "c.lwsp gp, 252(sp)"],
  [E.cLwsp(3, 132), "c.lwsp gp, 132(sp)"],
  [E.cJr(7), "c.jr t2"],
  [E.cJalr(7), "c.jalr t2"],
  [E.cMv(7, 8), "c.mv t2, s0"],
  [E.cAdd(7, 8), "c.add t2, s0"],
  [E.cFsdsp(7, 456), "c.fsdsp ft7, 456(sp)"],
  [E.cSdsp(7, 8), "c.sdsp t2, 8(sp)"],
  [E.cSwsp(7, 196), "c.swsp t2, 196(sp)"],
];

/** Assembles `lines` and returns the .text bytes; only explicit c.* mnemonics are compressed. */
function assemble(lines: string[]): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "parley-enc-"));
  try {
    const src = join(dir, "t.s");
    const body = lines.map((l) => (l.startsWith("c.") ? ".option rvc\n" : ".option norvc\n") + l);
    writeFileSync(src, [".text", ...body, ""].join("\n"));
    execFileSync("riscv64-linux-gnu-as", ["-march=rv64gc", "-o", join(dir, "t.o"), src]);
    execFileSync("riscv64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", join(dir, "t.o"), join(dir, "t.bin")]);
    return new Uint8Array(readFileSync(join(dir, "t.bin")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const gnuAs = needsHostTools("riscv64-linux-gnu-as");

test("encoder matches GNU as", { skip: gnuAs.skip }, () => {
  gnuAs.check();
  // One instruction per assembly so that a mismatch names the instruction.
  const expected = assemble(CASES.map(([, asm]) => asm));
  let off = 0;
  for (const [word, asm] of CASES) {
    const mine = E.toBytes([word]);
    const theirs = expected.slice(off, off + mine.length);
    assert.deepEqual([...mine], [...theirs], `${asm}: encoded ${word.toString(16)}`);
    off += mine.length;
  }
  assert.equal(off, expected.length);
});
