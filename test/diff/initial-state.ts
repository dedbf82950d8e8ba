// The random machine state a generated sequence starts from: integer and FP registers biased
// towards interesting values, and the scratch memory buffer.
import { BASE_REG, SCRATCH_BASE_REG_VALUE, SCRATCH_HI, SCRATCH_LO, SCRATCH_SIZE, type MachineState } from "./layout.ts";
import { INTERESTING_F32, INTERESTING_F64, INTERESTING_X, boxed, u64 } from "./values.ts";
import type { Rng } from "./rng.ts";

function initialX(rng: Rng): bigint {
  switch (rng.below(5)) {
    case 0:
    case 1:
      return rng.pick(INTERESTING_X);
    case 2:
      return u64(BigInt(rng.range(-64, 64)));
    case 3:
      return u64(BigInt.asIntN(32, rng.u64()));
    default:
      return rng.u64();
  }
}

/** Random double with a moderate exponent, so arithmetic stays mostly in range. */
function moderateDouble(rng: Rng): bigint {
  const exp = BigInt(1023 + rng.range(-40, 40));
  return (BigInt(rng.below(2)) << 63n) | (exp << 52n) | (rng.u64() & ((1n << 52n) - 1n));
}

function moderateSingle(rng: Rng): number {
  const exp = 127 + rng.range(-20, 20);
  return ((rng.below(2) << 31) | (exp << 23) | (rng.u32() & 0x7fffff)) >>> 0;
}

function initialF(rng: Rng): bigint {
  switch (rng.below(10)) {
    case 0:
    case 1:
    case 2:
      return rng.pick(INTERESTING_F64);
    case 3:
    case 4:
      return boxed(rng.pick(INTERESTING_F32));
    case 5: {
      // An improperly boxed single: single-precision reads must see the canonical NaN.
      const upper = rng.pick([0n, 0xffff_fffen, 0x7fff_ffffn, BigInt(rng.u32())]);
      return (upper << 32n) | BigInt(rng.chance(0.5) ? rng.pick(INTERESTING_F32) : moderateSingle(rng));
    }
    case 6:
      return moderateDouble(rng);
    case 7:
      return boxed(moderateSingle(rng));
    default:
      return rng.u64();
  }
}

function initialMemory(rng: Rng): Uint8Array {
  const mem = new Uint8Array(SCRATCH_SIZE);
  for (let i = 0; i < SCRATCH_SIZE; i += 4) {
    const w = rng.u32();
    mem[i] = w & 0xff;
    mem[i + 1] = (w >>> 8) & 0xff;
    mem[i + 2] = (w >>> 16) & 0xff;
    mem[i + 3] = w >>> 24;
  }
  // Sprinkle boundary values (integer and FP) at aligned slots.
  const dv = new DataView(mem.buffer);
  for (let n = 0; n < 128; n++) {
    const slot = rng.below(SCRATCH_SIZE / 8) * 8;
    const kind = rng.below(3);
    if (kind === 0) dv.setBigUint64(slot, rng.pick(INTERESTING_X), true);
    else if (kind === 1) dv.setBigUint64(slot, rng.pick(INTERESTING_F64), true);
    else dv.setUint32(slot + rng.below(2) * 4, rng.pick(INTERESTING_F32), true);
  }
  return mem;
}

export function initialState(rng: Rng): MachineState {
  const x = [0n];
  for (let i = 1; i < 31; i++) x.push(initialX(rng));
  x.push(BigInt(SCRATCH_BASE_REG_VALUE));
  const f: bigint[] = [];
  for (let i = 0; i < 32; i++) f.push(initialF(rng));
  const fcsr = (rng.range(0, 4) << 5) | (rng.chance(0.5) ? 0 : rng.range(0, 31));
  return { x, f, fcsr, mem: initialMemory(rng) };
}
