import { test } from "node:test";
import assert from "node:assert/strict";
import { parseElf, ElfError } from "./elf.ts";

/** Builds a minimal ELF64 RISC-V executable with one PT_LOAD segment and an optional symbol table. */
function makeElf(opts: { machine?: number; cls?: number; segmentAddr?: number; code?: number[]; symbols?: Record<string, number> } = {}): Uint8Array {
  const code = new Uint8Array(opts.code ?? [0x13, 0, 0, 0]);
  const symbols = Object.entries(opts.symbols ?? {});
  const strtab = [0];
  const nameOffsets: number[] = [];
  for (const [name] of symbols) {
    nameOffsets.push(strtab.length);
    strtab.push(...new TextEncoder().encode(name), 0);
  }
  const ehdr = 64, phdr = 56;
  const codeOff = ehdr + phdr;
  const symOff = codeOff + code.length;
  const symSize = 24 * (symbols.length + 1);
  const strOff = symOff + symSize;
  const shOff = (strOff + strtab.length + 7) & ~7;
  const total = shOff + 3 * 64;
  const buf = new Uint8Array(total);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, opts.cls ?? 2, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, opts.machine ?? 243, true);
  v.setUint32(20, 1, true);
  const addr = BigInt(opts.segmentAddr ?? 0x8000_0000);
  v.setBigUint64(24, addr, true); // entry
  v.setBigUint64(32, BigInt(ehdr), true); // phoff
  v.setBigUint64(40, BigInt(shOff), true); // shoff
  v.setUint16(52, ehdr, true);
  v.setUint16(54, phdr, true);
  v.setUint16(56, 1, true);
  v.setUint16(58, 64, true);
  v.setUint16(60, 3, true);
  // PT_LOAD
  v.setUint32(ehdr, 1, true);
  v.setBigUint64(ehdr + 8, BigInt(codeOff), true);
  v.setBigUint64(ehdr + 16, addr, true);
  v.setBigUint64(ehdr + 24, addr, true);
  v.setBigUint64(ehdr + 32, BigInt(code.length), true);
  v.setBigUint64(ehdr + 40, BigInt(code.length + 16), true);
  buf.set(code, codeOff);
  symbols.forEach(([, value], i) => {
    const s = symOff + 24 * (i + 1);
    v.setUint32(s, nameOffsets[i], true);
    v.setBigUint64(s + 8, BigInt(value), true);
  });
  buf.set(strtab, strOff);
  // section 1: SHT_SYMTAB linking to section 2 (SHT_STRTAB)
  const sh1 = shOff + 64;
  v.setUint32(sh1 + 4, 2, true);
  v.setBigUint64(sh1 + 24, BigInt(symOff), true);
  v.setBigUint64(sh1 + 32, BigInt(symSize), true);
  v.setUint32(sh1 + 40, 2, true);
  const sh2 = shOff + 128;
  v.setUint32(sh2 + 4, 3, true);
  v.setBigUint64(sh2 + 24, BigInt(strOff), true);
  v.setBigUint64(sh2 + 32, BigInt(strtab.length), true);
  return buf;
}

test("parses segments, entry and symbols", () => {
  const elf = parseElf(makeElf({ symbols: { tohost: 0x8000_1000, fromhost: 0x8000_1040 } }));
  assert.equal(elf.entry, 0x8000_0000);
  assert.equal(elf.segments.length, 1);
  assert.equal(elf.segments[0].paddr, 0x8000_0000);
  assert.equal(elf.segments[0].memsz, 20);
  assert.deepEqual([...elf.segments[0].data], [0x13, 0, 0, 0]);
  assert.equal(elf.symbols.get("tohost"), 0x8000_1000);
  assert.equal(elf.symbols.get("fromhost"), 0x8000_1040);
});

test("rejects non-ELF input, wrong class and wrong machine with a reason", () => {
  assert.throws(() => parseElf(new TextEncoder().encode("#!/bin/sh\necho hi\n".padEnd(80))), /not an ELF file/);
  assert.throws(() => parseElf(new Uint8Array(10)), ElfError);
  assert.throws(() => parseElf(makeElf({ cls: 1 })), /not ELFCLASS64/);
  assert.throws(() => parseElf(makeElf({ machine: 62 })), /not RISC-V/);
});

test("rejects truncated files and out-of-range tables instead of reading past the end", () => {
  const good = makeElf();
  for (const cut of [64, 100, 120, good.length - 10]) {
    assert.throws(() => parseElf(good.subarray(0, cut)), ElfError, `cut at ${cut}`);
  }
  const hostile = makeElf();
  new DataView(hostile.buffer).setBigUint64(64 + 32, 1n << 40n, true); // filesz beyond the file
  assert.throws(() => parseElf(hostile), ElfError);
});

test("random corruption never escapes as anything but ElfError", () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8);
  const base = makeElf({ symbols: { tohost: 0x8000_1000 } });
  for (let i = 0; i < 3000; i++) {
    const bytes = base.slice();
    const flips = 1 + (rand() % 8);
    for (let f = 0; f < flips; f++) bytes[rand() % bytes.length] = rand() & 0xff;
    try {
      parseElf(bytes);
    } catch (err) {
      assert.ok(err instanceof ElfError, `case ${i}: ${err}`);
    }
  }
});
