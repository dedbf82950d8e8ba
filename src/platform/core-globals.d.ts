// The host globals the machine core may use: the WebAssembly API, text codecs, console,
// structuredClone and queueMicrotask — what every JavaScript host offers (Node, browsers,
// workers). Only tsconfig.core.json reads this file; it compiles the core with no Node and no
// DOM types, so `process`, `setImmediate`, `Buffer` or `document` in the core are compile errors.
// Time and timers come from an injected HostClock (src/platform/clock.ts), not from globals.

declare namespace WebAssembly {
  type ImportValue = Function | Global | Memory | Table | number | bigint;
  type Imports = Record<string, Record<string, ImportValue>>;
  type Exports = Record<string, Function | Global | Memory | Table>;
  type ValueType = "i32" | "i64" | "f32" | "f64" | "anyfunc" | "externref";
  class Module {
    constructor(bytes: BufferSource);
  }
  class Instance {
    constructor(module: Module, imports?: Imports);
    readonly exports: Exports;
  }
  class Memory {
    constructor(descriptor: { initial: number; maximum?: number; shared?: boolean });
    readonly buffer: ArrayBuffer;
    grow(delta: number): number;
  }
  class Table {
    constructor(descriptor: { element: "anyfunc" | "externref"; initial: number; maximum?: number });
    readonly length: number;
    get(index: number): any;
    set(index: number, value?: any): void;
    grow(delta: number, value?: any): number;
  }
  class Global {
    constructor(descriptor: { value: ValueType; mutable?: boolean }, value?: number | bigint);
    value: any;
  }
  class CompileError extends Error {}
  class LinkError extends Error {}
  class RuntimeError extends Error {}
  function compile(bytes: BufferSource): Promise<Module>;
  function validate(bytes: BufferSource): boolean;
  // Bytes first: Module has no members, so any argument would match a Module overload listed first.
  function instantiate(bytes: BufferSource, imports?: Imports): Promise<{ module: Module; instance: Instance }>;
  function instantiate(module: Module, imports?: Imports): Promise<Instance>;
}

type BufferSource = ArrayBufferView | ArrayBuffer;

declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: ArrayBufferView | ArrayBuffer, options?: { stream?: boolean }): string;
}

declare var console: {
  log(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
};

declare function structuredClone<T>(value: T): T;
declare function queueMicrotask(callback: () => void): void;
