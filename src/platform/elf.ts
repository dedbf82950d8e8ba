// ELF64 parsing for bare-metal RISC-V programs: loadable segments and the symbol table.
// A pure function over bytes, so that it can be fuzzed; every offset read is bounds-checked.

/** ELF constants (System V ABI, "ELF header" and "Program header" chapters; RISC-V psABI for EM_RISCV). */
const ELFMAG = [0x7f, 0x45, 0x4c, 0x46];
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const ET_DYN = 3;
const EM_RISCV = 243;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;
const ELF64_EHDR_SIZE = 64;
const ELF64_PHDR_SIZE = 56;
const ELF64_SHDR_SIZE = 64;
const ELF64_SYM_SIZE = 24;

export class ElfError extends Error {
  override name = "ElfError";
}

export interface ElfSegment {
  /** Physical load address (p_paddr): where a bare-metal loader places the bytes. */
  paddr: number;
  vaddr: number;
  /** File bytes (p_filesz); the remaining memsz - data.length bytes are zero. */
  data: Uint8Array;
  memsz: number;
}

export interface ElfImage {
  entry: number;
  segments: ElfSegment[];
  symbols: Map<string, number>;
}

function u64(view: DataView, offset: number, what: string): number {
  const value = view.getBigUint64(offset, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${what} 0x${value.toString(16)} is too large`);
  return Number(value);
}

function checkRange(total: number, offset: number, length: number, what: string): void {
  if (offset < 0 || length < 0 || offset + length > total) {
    throw new ElfError(`${what} (offset ${offset}, ${length} bytes) lies outside the ${total}-byte file`);
  }
}

/** Parses a little-endian ELF64 RISC-V executable. Throws ElfError with a reason on anything else. */
export function parseElf(bytes: Uint8Array): ElfImage {
  if (bytes.length < ELF64_EHDR_SIZE || ELFMAG.some((b, i) => bytes[i] !== b)) {
    throw new ElfError("not an ELF file (bad magic number)");
  }
  if (bytes[4] !== ELFCLASS64) throw new ElfError(`ELF class ${bytes[4]} is not ELFCLASS64: Parley runs RV64 programs`);
  if (bytes[5] !== ELFDATA2LSB) throw new ElfError("ELF file is not little-endian");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint16(16, true);
  const machine = view.getUint16(18, true);
  if (machine !== EM_RISCV) throw new ElfError(`ELF machine ${machine} is not RISC-V (${EM_RISCV})`);
  if (type !== ET_EXEC && type !== ET_DYN) throw new ElfError(`ELF type ${type} is not an executable`);
  const entry = u64(view, 24, "entry point");
  const phoff = u64(view, 32, "program header offset");
  const shoff = u64(view, 40, "section header offset");
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  const shentsize = view.getUint16(58, true);
  const shnum = view.getUint16(60, true);

  const segments: ElfSegment[] = [];
  if (phnum > 0) {
    if (phentsize < ELF64_PHDR_SIZE) throw new ElfError(`program header size ${phentsize} is too small`);
    checkRange(bytes.length, phoff, phnum * phentsize, "program header table");
    for (let i = 0; i < phnum; i++) {
      const ph = phoff + i * phentsize;
      if (view.getUint32(ph, true) !== PT_LOAD) continue;
      const offset = u64(view, ph + 8, "segment offset");
      const vaddr = u64(view, ph + 16, "segment address");
      const paddr = u64(view, ph + 24, "segment physical address");
      const filesz = u64(view, ph + 32, "segment file size");
      const memsz = u64(view, ph + 40, "segment memory size");
      if (filesz > memsz) throw new ElfError(`segment ${i}: file size ${filesz} exceeds memory size ${memsz}`);
      checkRange(bytes.length, offset, filesz, `segment ${i}`);
      if (memsz === 0) continue;
      segments.push({ paddr, vaddr, memsz, data: bytes.subarray(offset, offset + filesz) });
    }
  }
  if (segments.length === 0) throw new ElfError("ELF file has no loadable segments");

  const symbols = new Map<string, number>();
  if (shnum > 0 && shoff > 0 && shentsize >= ELF64_SHDR_SIZE) {
    checkRange(bytes.length, shoff, shnum * shentsize, "section header table");
    for (let i = 0; i < shnum; i++) {
      const sh = shoff + i * shentsize;
      if (view.getUint32(sh + 4, true) !== SHT_SYMTAB) continue;
      const symOffset = u64(view, sh + 24, "symbol table offset");
      const symSize = u64(view, sh + 32, "symbol table size");
      const link = view.getUint32(sh + 40, true);
      if (link >= shnum) throw new ElfError(`symbol table links to missing section ${link}`);
      const strSh = shoff + link * shentsize;
      const strOffset = u64(view, strSh + 24, "string table offset");
      const strSize = u64(view, strSh + 32, "string table size");
      checkRange(bytes.length, symOffset, symSize, "symbol table");
      checkRange(bytes.length, strOffset, strSize, "string table");
      for (let s = symOffset; s + ELF64_SYM_SIZE <= symOffset + symSize; s += ELF64_SYM_SIZE) {
        const nameOffset = view.getUint32(s, true);
        if (nameOffset === 0 || nameOffset >= strSize) continue;
        let end = strOffset + nameOffset;
        while (end < strOffset + strSize && bytes[end] !== 0) end++;
        const name = new TextDecoder().decode(bytes.subarray(strOffset + nameOffset, end));
        const value = view.getBigUint64(s + 8, true);
        if (value <= BigInt(Number.MAX_SAFE_INTEGER) && !symbols.has(name)) symbols.set(name, Number(value));
      }
    }
  }
  return { entry, segments, symbols };
}
