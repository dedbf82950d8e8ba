// The A extension's memory operations and FENCE, shared by the interpreter (exec.ts) and the
// translator's helper (jitAmo in jit.ts). Callers have already translated and checked the
// address: `p` is the wasm address of a naturally aligned location in guest RAM.
//
// Two builds of this file (scripts/build.mjs). On a shared memory (build/cpu-shared.wasm, the
// threads feature on) harts run in parallel threads, so every read-modify-write is one wasm
// atomic instruction. Those are sequentially consistent, which is at least what any aq/rl
// combination asks for, so the aq and rl bits need no code of their own. On a memory of its own
// (build/cpu.wasm) only one thread ever touches the memory, and a plain load and store cannot be
// interleaved with anything: the build keeps the plain instructions, which cost nothing extra.
//
// LR/SC is emulated with compare-and-swap, as QEMU does: LR records the reserved physical address
// and the value it loaded; SC succeeds only if this hart still holds a reservation for that
// address AND an atomic compare-and-swap from the recorded value to the new one succeeds. What
// this guarantees: an SC never overwrites a value that differs from what its LR read, so every
// LR/SC read-modify-write built on it is atomic with respect to AMOs, SCs and plain stores of
// other harts; and a constrained LR/SC loop makes progress, since SC fails only when the memory
// changed (or a trap, an xRET or another SC intervened). What it does not: the architecture's
// rule that an SC must fail after another hart stored to the reservation set. A store of the very
// value that LR read (or a change and a change back, ABA) between the LR and the SC goes unseen
// and the SC succeeds.
// Lock-free algorithms that rely on LR/SC detecting ABA (rather than on the value) are not
// protected; Linux and the usual C runtimes use LR/SC as compare-and-swap, for which it is exact.
import * as L from "../layout";
import * as O from "./ops";
import { getState, setState } from "./state";

/** True in the shared-memory build: harts of this memory run in other threads at the same time. */
export const PARALLEL_HARTS: bool = ASC_FEATURE_THREADS;

/**
 * Sign-extends a word that was loaded atomically, as arithmetic on purpose: Binaryen's optimizer
 * folds i64.extend_i32_s of an i32.atomic.load into one i64.atomic.load32, and atomic loads have
 * no sign-extending form, so it emits the zero-extending one: LR.W of a negative word read it as
 * positive (seen with binaryen 131; Linux then found every file "busy" in deny_write_access).
 */
@inline function signExtendWord(raw: u32): i64 {
  return (<i64>raw ^ 0x8000_0000) - 0x8000_0000;
}

/** The location's value for LR (sign-extended for .W); records the reservation. */
export function loadReserved(p: usize, physical: i64, size: i32): i64 {
  let value: i64;
  if (PARALLEL_HARTS) value = size == 4 ? signExtendWord(atomic.load<u32>(p)) : atomic.load<i64>(p);
  else value = size == 4 ? <i64>load<i32>(p) : load<i64>(p);
  setState(L.S_RESERVATION, physical);
  setState(L.S_RESERVATION_VALUE, value);
  setState(L.S_RESERVATION_SIZE, size);
  return value;
}

/** SC: stores `value` if the reservation holds (see above); returns rd's value, 0 on success, 1 on failure. */
export function storeConditional(p: usize, physical: i64, size: i32, value: i64): i64 {
  const reserved = getState(L.S_RESERVATION) == physical;
  setState(L.S_RESERVATION, -1);
  if (!reserved) return 1;
  const expected = getState(L.S_RESERVATION_VALUE);
  if (size == 4) {
    if (PARALLEL_HARTS) return atomic.cmpxchg<i32>(p, <i32>expected, <i32>value) == <i32>expected ? 0 : 1;
    if (load<i32>(p) != <i32>expected) return 1;
    store<i32>(p, <i32>value);
    return 0;
  }
  if (PARALLEL_HARTS) return atomic.cmpxchg<i64>(p, expected, value) == expected ? 0 : 1;
  if (load<i64>(p) != expected) return 1;
  store<i64>(p, value);
  return 0;
}

/** AMO*.W: the old value (rd gets it sign-extended). */
export function amoWord(op: u32, p: usize, b: i32): i32 {
  if (!PARALLEL_HARTS) {
    const a = load<i32>(p);
    store<i32>(p, amo32(op, a, b));
    return a;
  }
  switch (op) {
    case O.OP_AMOSWAP_W: return atomic.xchg<i32>(p, b);
    case O.OP_AMOADD_W: return atomic.add<i32>(p, b);
    case O.OP_AMOXOR_W: return atomic.xor<i32>(p, b);
    case O.OP_AMOAND_W: return atomic.and<i32>(p, b);
    case O.OP_AMOOR_W: return atomic.or<i32>(p, b);
    default: {
      // MIN/MAX[U] have no wasm instruction: compare-and-swap until no other hart got in between.
      // The AMO always writes (even an unchanged value), as the architecture's AMO does.
      let a = atomic.load<i32>(p);
      while (true) {
        const seen = atomic.cmpxchg<i32>(p, a, amo32(op, a, b));
        if (seen == a) return a;
        a = seen;
      }
    }
  }
}

/** AMO*.D: the old value. */
export function amoDouble(op: u32, p: usize, b: i64): i64 {
  if (!PARALLEL_HARTS) {
    const a = load<i64>(p);
    store<i64>(p, amo64(op, a, b));
    return a;
  }
  switch (op) {
    case O.OP_AMOSWAP_D: return atomic.xchg<i64>(p, b);
    case O.OP_AMOADD_D: return atomic.add<i64>(p, b);
    case O.OP_AMOXOR_D: return atomic.xor<i64>(p, b);
    case O.OP_AMOAND_D: return atomic.and<i64>(p, b);
    case O.OP_AMOOR_D: return atomic.or<i64>(p, b);
    default: {
      let a = atomic.load<i64>(p);
      while (true) {
        const seen = atomic.cmpxchg<i64>(p, a, amo64(op, a, b));
        if (seen == a) return a;
        a = seen;
      }
    }
  }
}

/**
 * FENCE whose predecessor and successor sets both name memory (decode.ts sets the immediate to
 * 1 then). Guest loads and stores are plain wasm accesses, which the wasm memory model leaves
 * unordered between threads; atomic.fence is a full barrier (V8: mfence on x64, dmb ish on
 * arm64), the only one wasm has, so every such FENCE becomes one. Needed in the shared build
 * only: one thread alone always sees its own accesses in program order.
 */
@inline export function fence(ordersMemory: i64): void {
  if (PARALLEL_HARTS) {
    if (ordersMemory != 0) atomic.fence();
  }
}

export function amo32(op: u32, a: i32, b: i32): i32 {
  switch (op) {
    case O.OP_AMOSWAP_W: return b;
    case O.OP_AMOADD_W: return a + b;
    case O.OP_AMOXOR_W: return a ^ b;
    case O.OP_AMOAND_W: return a & b;
    case O.OP_AMOOR_W: return a | b;
    case O.OP_AMOMIN_W: return a < b ? a : b;
    case O.OP_AMOMAX_W: return a > b ? a : b;
    case O.OP_AMOMINU_W: return <u32>a < <u32>b ? a : b;
    default: return <u32>a > <u32>b ? a : b; // AMOMAXU.W
  }
}
export function amo64(op: u32, a: i64, b: i64): i64 {
  switch (op) {
    case O.OP_AMOSWAP_D: return b;
    case O.OP_AMOADD_D: return a + b;
    case O.OP_AMOXOR_D: return a ^ b;
    case O.OP_AMOAND_D: return a & b;
    case O.OP_AMOOR_D: return a | b;
    case O.OP_AMOMIN_D: return a < b ? a : b;
    case O.OP_AMOMAX_D: return a > b ? a : b;
    case O.OP_AMOMINU_D: return <u64>a < <u64>b ? a : b;
    default: return <u64>a > <u64>b ? a : b; // AMOMAXU.D
  }
}
