// A small WebAssembly binary writer: just what the translator needs (one memory import, function
// imports, functions with locals, exports) and a code buffer that tracks the structured control
// stack so branches can name their targets instead of counting nesting depths by hand.
//
// Everything appends to growable byte buffers; emitting an instruction allocates nothing, which
// keeps translation cheap next to the engine's own compile time.

export const enum Op {
  unreachable = 0x00,
  nop = 0x01,
  block = 0x02,
  loop = 0x03,
  if = 0x04,
  else = 0x05,
  end = 0x0b,
  br = 0x0c,
  br_if = 0x0d,
  br_table = 0x0e,
  return = 0x0f,
  call = 0x10,
  call_indirect = 0x11,
  return_call = 0x12,
  return_call_indirect = 0x13,
  drop = 0x1a,
  select = 0x1b,
  local_get = 0x20,
  local_set = 0x21,
  local_tee = 0x22,
  i32_load = 0x28,
  i64_load = 0x29,
  f64_load = 0x2b,
  i32_load8_s = 0x2c,
  i32_load8_u = 0x2d,
  i32_load16_s = 0x2e,
  i32_load16_u = 0x2f,
  i64_load8_s = 0x30,
  i64_load8_u = 0x31,
  i64_load16_s = 0x32,
  i64_load16_u = 0x33,
  i64_load32_s = 0x34,
  i64_load32_u = 0x35,
  i32_store = 0x36,
  i64_store = 0x37,
  f64_store = 0x39,
  i32_store8 = 0x3a,
  i32_store16 = 0x3b,
  i64_store8 = 0x3c,
  i64_store16 = 0x3d,
  i64_store32 = 0x3e,
  i32_const = 0x41,
  i64_const = 0x42,
  i32_eqz = 0x45,
  i32_eq = 0x46,
  i32_ne = 0x47,
  i32_lt_s = 0x48,
  i32_lt_u = 0x49,
  i32_gt_s = 0x4a,
  i32_gt_u = 0x4b,
  i32_le_s = 0x4c,
  i32_le_u = 0x4d,
  i32_ge_s = 0x4e,
  i32_ge_u = 0x4f,
  i64_eqz = 0x50,
  i64_eq = 0x51,
  i64_ne = 0x52,
  i64_lt_s = 0x53,
  i64_lt_u = 0x54,
  i64_gt_s = 0x55,
  i64_gt_u = 0x56,
  i64_le_s = 0x57,
  i64_le_u = 0x58,
  i64_ge_s = 0x59,
  i64_ge_u = 0x5a,
  f64_eq = 0x61,
  f64_ne = 0x62,
  f64_lt = 0x63,
  f64_gt = 0x64,
  f64_le = 0x65,
  f64_ge = 0x66,
  i32_add = 0x6a,
  i32_sub = 0x6b,
  i32_mul = 0x6c,
  i32_div_s = 0x6d,
  i32_div_u = 0x6e,
  i32_rem_s = 0x6f,
  i32_rem_u = 0x70,
  i32_and = 0x71,
  i32_or = 0x72,
  i32_xor = 0x73,
  i32_shl = 0x74,
  i32_shr_s = 0x75,
  i32_shr_u = 0x76,
  i64_add = 0x7c,
  i64_sub = 0x7d,
  i64_mul = 0x7e,
  i64_div_s = 0x7f,
  i64_div_u = 0x80,
  i64_rem_s = 0x81,
  i64_rem_u = 0x82,
  i64_and = 0x83,
  i64_or = 0x84,
  i64_xor = 0x85,
  i64_shl = 0x86,
  i64_shr_s = 0x87,
  i64_shr_u = 0x88,
  i32_wrap_i64 = 0xa7,
  i64_extend_i32_s = 0xac,
  i64_extend_i32_u = 0xad,
  f64_convert_i32_s = 0xb7,
  f64_convert_i32_u = 0xb8,
  f64_convert_i64_s = 0xb9,
  f64_convert_i64_u = 0xba,
  i32_extend8_s = 0xc0,
  i32_extend16_s = 0xc1,
  i64_extend8_s = 0xc2,
  i64_extend16_s = 0xc3,
  i64_extend32_s = 0xc4,
}

export const enum ValType {
  i32 = 0x7f,
  i64 = 0x7e,
  f32 = 0x7d,
  f64 = 0x7c,
}
/** Block type of a structured instruction without results. */
export const VOID = 0x40;

/** An append-only byte buffer with LEB128 writers. */
export class ByteWriter {
  bytes: Uint8Array<ArrayBuffer> = new Uint8Array(256);
  length = 0;

  protected reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }
  u8(b: number): void {
    this.reserve(1);
    this.bytes[this.length++] = b;
  }
  u32(value: number): void {
    this.reserve(5);
    let v = value >>> 0;
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      this.bytes[this.length++] = b;
    } while (v !== 0);
  }
  /** Signed LEB128 of a 32-bit integer (i32.const, and i64.const of values that fit). */
  s32(value: number): void {
    this.reserve(5);
    let v = value | 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
        this.bytes[this.length++] = b;
        return;
      }
      this.bytes[this.length++] = b | 0x80;
    }
  }
  /** Signed LEB128 of a 64-bit integer given as a bigint. */
  s64(value: bigint): void {
    this.reserve(10);
    let v = BigInt.asIntN(64, value);
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
        this.bytes[this.length++] = b;
        return;
      }
      this.bytes[this.length++] = b | 0x80;
    }
  }
  append(other: Uint8Array): void {
    this.reserve(other.length);
    this.bytes.set(other, this.length);
    this.length += other.length;
  }
  name(text: string): void {
    const encoded = new TextEncoder().encode(text);
    this.u32(encoded.length);
    this.append(encoded);
  }
  finish(): Uint8Array<ArrayBuffer> {
    return this.bytes.slice(0, this.length);
  }
  reset(): void {
    this.length = 0;
  }
}

/** Writes `value` at `at` as a 5-byte (padded) LEB128, the form relocatable indices take. */
export function writePaddedU32(bytes: Uint8Array, at: number, value: number): void {
  for (let i = 0; i < 4; i++) bytes[at + i] = ((value >>> (7 * i)) & 0x7f) | 0x80;
  bytes[at + 4] = (value >>> 28) & 0x0f;
}

/** Reads a 5-byte LEB128 written by writePaddedU32; -1 when the bytes are not one. */
export function readPaddedU32(bytes: Uint8Array, at: number): number {
  if (at < 0 || at + 5 > bytes.length) return -1;
  let value = 0;
  for (let i = 0; i < 4; i++) {
    if ((bytes[at + i] & 0x80) === 0) return -1;
    value |= (bytes[at + i] & 0x7f) << (7 * i);
  }
  if (bytes[at + 4] > 0x0f) return -1;
  return (value >>> 0) + bytes[at + 4] * 2 ** 28;
}

/** A branch target: created by block/loop/if, valid until its end. */
export type Label = number;

/**
 * A function body under construction. Structured instructions return labels; br/br_if take a
 * label and compute the relative depth from the control stack.
 */
export class Code extends ByteWriter {
  private readonly stack: number[] = [];
  /** Per label: its index in the control stack while open. */
  private readonly stackIndex: number[] = [];
  private nextLabel = 1;
  /**
   * Calls to functions from this index on get their index as a 5-byte LEB128, whose body offset
   * goes to `relocations`: the translation cache renumbers a stored page's functions when it
   * puts many pages into one module (src/cpu/jit/translation-cache.ts).
   */
  relocateCallsFrom = Infinity;
  readonly relocations: number[] = [];

  /** Current nesting depth (number of open blocks, loops and ifs). */
  get depth(): number {
    return this.stack.length;
  }

  private open(opcode: number, blockType: number): Label {
    this.u8(opcode);
    this.u8(blockType);
    const label = this.nextLabel++;
    this.stackIndex[label] = this.stack.length;
    this.stack.push(label);
    return label;
  }
  block(blockType: number = VOID): Label {
    return this.open(Op.block, blockType);
  }
  loop(blockType: number = VOID): Label {
    return this.open(Op.loop, blockType);
  }
  if(blockType: number = VOID): Label {
    return this.open(Op.if, blockType);
  }
  else(): void {
    this.u8(Op.else);
  }
  end(): void {
    this.u8(Op.end);
    this.stack.pop();
  }
  /** Relative depth of an open label. */
  depthOf(label: Label): number {
    const i = this.stackIndex[label];
    if (i === undefined || this.stack[i] !== label) throw new Error(`wasm emitter: label ${label} is not open`);
    return this.stack.length - 1 - i;
  }
  /** The innermost open label. */
  get innermost(): Label {
    return this.stack[this.stack.length - 1];
  }
  br(label: Label): void {
    this.u8(Op.br);
    this.u32(this.depthOf(label));
  }
  brIf(label: Label): void {
    this.u8(Op.br_if);
    this.u32(this.depthOf(label));
  }
  brTable(labels: Label[], fallback: Label): void {
    this.u8(Op.br_table);
    this.u32(labels.length);
    for (const l of labels) this.u32(this.depthOf(l));
    this.u32(this.depthOf(fallback));
  }
  op(opcode: Op): void {
    this.u8(opcode);
  }
  i32Const(v: number): void {
    this.u8(Op.i32_const);
    this.s32(v);
  }
  /** i64.const of a safe integer (|v| < 2^53) or a bigint. */
  i64Const(v: number | bigint): void {
    this.u8(Op.i64_const);
    if (typeof v === "number" && v >= -0x8000_0000 && v <= 0x7fff_ffff) this.s32(v);
    else this.s64(BigInt(v));
  }
  get(local: number): void {
    this.u8(Op.local_get);
    this.u32(local);
  }
  set(local: number): void {
    this.u8(Op.local_set);
    this.u32(local);
  }
  tee(local: number): void {
    this.u8(Op.local_tee);
    this.u32(local);
  }
  call(func: number): void {
    this.u8(Op.call);
    this.funcIndex(func);
  }
  returnCall(func: number): void {
    this.u8(Op.return_call);
    this.funcIndex(func);
  }
  private funcIndex(func: number): void {
    if (func < this.relocateCallsFrom) {
      this.u32(func);
      return;
    }
    this.relocations.push(this.length);
    this.reserve(5);
    writePaddedU32(this.bytes, this.length, func);
    this.length += 5;
  }
  returnCallIndirect(typeIndex: number, tableIndex: number): void {
    this.u8(Op.return_call_indirect);
    this.u32(typeIndex);
    this.u32(tableIndex);
  }
  /** atomic.fence (threads proposal: prefix 0xfe, opcode 0x03, reserved 0x00), a full barrier. */
  atomicFence(): void {
    this.u8(0xfe);
    this.u8(0x03);
    this.u8(0x00);
  }
  /** A load or store with the given static offset (alignment hint 0: guest addresses may be unaligned). */
  mem(opcode: Op, offset: number): void {
    this.u8(opcode);
    this.u8(0);
    this.u32(offset);
  }
  resetCode(): void {
    this.reset();
    this.relocations.length = 0;
    this.stack.length = 0;
    this.stackIndex.length = 0;
    this.nextLabel = 1;
  }
}

export interface FuncType {
  params: ValType[];
  results: ValType[];
}

interface FuncDef {
  type: number;
  /** Local declarations after the parameters: runs of one type. */
  locals: { count: number; type: ValType }[];
  body: Uint8Array;
  exportName?: string;
  /** For profiles and disassembly (the name section). */
  name?: string;
}

/** Builds a module: a memory import, function imports, then defined functions. */
export class ModuleBuilder {
  private readonly types: FuncType[] = [];
  private readonly typeKeys = new Map<string, number>();
  private readonly imports: { module: string; name: string; type: number }[] = [];
  private memoryImport: { module: string; name: string; minPages: number; shared: boolean } | undefined;
  private tableImport: { module: string; name: string; minSize: number } | undefined;
  private readonly funcs: FuncDef[] = [];

  typeIndex(type: FuncType): number {
    const key = `${type.params.join(",")}:${type.results.join(",")}`;
    let index = this.typeKeys.get(key);
    if (index === undefined) {
      index = this.types.length;
      this.types.push(type);
      this.typeKeys.set(key, index);
    }
    return index;
  }
  /** Shared memory imports declare wasm32's whole range as their maximum, so any shared memory matches. */
  importMemory(module: string, name: string, minPages: number, shared = false): void {
    this.memoryImport = { module, name, minPages, shared };
  }
  /** A funcref table (table index 0). */
  importTable(module: string, name: string, minSize: number): void {
    this.tableImport = { module, name, minSize };
  }
  /** Function imports must all come before the first defined function; returns the function index. */
  importFunction(module: string, name: string, type: FuncType): number {
    if (this.funcs.length) throw new Error("wasm emitter: imports must precede functions");
    this.imports.push({ module, name, type: this.typeIndex(type) });
    return this.imports.length - 1;
  }
  /** Adds a function; returns its index. */
  addFunction(type: FuncType, locals: { count: number; type: ValType }[], body: Uint8Array, exportName?: string, name?: string): number {
    this.funcs.push({ type: this.typeIndex(type), locals, body, exportName, name });
    return this.imports.length + this.funcs.length - 1;
  }
  get functionCount(): number {
    return this.funcs.length;
  }

  toBytes(): Uint8Array<ArrayBuffer> {
    const out = new ByteWriter();
    out.append(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
    const section = (id: number, write: (w: ByteWriter) => void) => {
      const w = new ByteWriter();
      write(w);
      out.u8(id);
      out.u32(w.length);
      out.append(w.bytes.subarray(0, w.length));
    };
    section(1, (w) => {
      w.u32(this.types.length);
      for (const t of this.types) {
        w.u8(0x60);
        w.u32(t.params.length);
        for (const p of t.params) w.u8(p);
        w.u32(t.results.length);
        for (const r of t.results) w.u8(r);
      }
    });
    section(2, (w) => {
      w.u32(this.imports.length + (this.memoryImport ? 1 : 0) + (this.tableImport ? 1 : 0));
      if (this.tableImport) {
        w.name(this.tableImport.module);
        w.name(this.tableImport.name);
        w.u8(0x01); // table
        w.u8(0x70); // funcref
        w.u8(0x00); // limits: min only
        w.u32(this.tableImport.minSize);
      }
      if (this.memoryImport) {
        w.name(this.memoryImport.module);
        w.name(this.memoryImport.name);
        w.u8(0x02); // memory
        if (this.memoryImport.shared) {
          w.u8(0x03); // limits: min and max, shared
          w.u32(this.memoryImport.minPages);
          w.u32(65536);
        } else {
          w.u8(0x00); // limits: min only
          w.u32(this.memoryImport.minPages);
        }
      }
      for (const imp of this.imports) {
        w.name(imp.module);
        w.name(imp.name);
        w.u8(0x00); // function
        w.u32(imp.type);
      }
    });
    section(3, (w) => {
      w.u32(this.funcs.length);
      for (const f of this.funcs) w.u32(f.type);
    });
    const exported = this.funcs.map((f, i) => ({ f, index: this.imports.length + i })).filter((e) => e.f.exportName !== undefined);
    section(7, (w) => {
      w.u32(exported.length);
      for (const e of exported) {
        w.name(e.f.exportName!);
        w.u8(0x00);
        w.u32(e.index);
      }
    });
    section(10, (w) => {
      w.u32(this.funcs.length);
      for (const f of this.funcs) {
        const head = new ByteWriter();
        head.u32(f.locals.length);
        for (const l of f.locals) {
          head.u32(l.count);
          head.u8(l.type);
        }
        w.u32(head.length + f.body.length + 1);
        w.append(head.bytes.subarray(0, head.length));
        w.append(f.body);
        w.u8(Op.end);
      }
    });
    const named = this.funcs.map((f, i) => ({ name: f.name, index: this.imports.length + i })).filter((f) => f.name !== undefined);
    if (named.length) {
      section(0, (w) => {
        w.name("name");
        const functionNames = new ByteWriter();
        functionNames.u32(named.length);
        for (const f of named) {
          functionNames.u32(f.index);
          functionNames.name(f.name!);
        }
        w.u8(1); // subsection: function names
        w.u32(functionNames.length);
        w.append(functionNames.bytes.subarray(0, functionNames.length));
      });
    }
    return out.finish();
  }
}
