import { test } from "node:test";
import assert from "node:assert/strict";
import { call, RAM_BASE, RAM_SIZE, setup } from "./testing/fake-host.ts";
import {
  SBI_EXT_STA,
  SBI_EXT_STA_STEAL_TIME_SET_SHMEM,
  STA_PREEMPTED,
  STA_SEQUENCE,
  STA_SHMEM_SIZE,
  STA_STEAL,
  StealTimeRecorder,
  decodeStealTimeShmem,
  ramRecordMemory,
  readStealRecord,
  writeStealRecord,
  type StealRecordMemory,
} from "./sta.ts";
import { ULONG_MAX } from "./params.ts";
import { SBI_ERR_INVALID_ADDRESS, SBI_ERR_INVALID_PARAM, SBI_ERR_NOT_SUPPORTED, SBI_SUCCESS, type SbiErrorCode } from "./types.ts";

const setShmem = (lo: bigint, hi: bigint = 0n, flags: bigint = 0n, hartId = 0) =>
  call(SBI_EXT_STA, SBI_EXT_STA_STEAL_TIME_SET_SHMEM, [lo, hi, flags], hartId);
const RAM_END = RAM_BASE + BigInt(RAM_SIZE);
const RECORD = RAM_BASE + 0x1000n;
const base = Number(RAM_BASE);

/** Guest RAM of the tests as the record writer sees it. */
function ram(size = 0x1000): { bytes: Uint8Array; memory: StealRecordMemory } {
  const bytes = new Uint8Array(size);
  return { bytes, memory: ramRecordMemory(bytes, base) };
}

test("set_shmem zeroes the whole 64-byte record and registers it for the calling hart (§16.1)", () => {
  const { host, sbi } = setup();
  host.ram.fill(0xa5, 0x1000, 0x1000 + 2 * STA_SHMEM_SIZE);
  assert.deepEqual(sbi.handle(setShmem(RECORD, 0n, 0n, 2)), { error: SBI_SUCCESS, value: 0n });
  assert.deepEqual([...host.ram.subarray(0x1000, 0x1040)], new Array(64).fill(0));
  assert.equal(host.ram[0x1040], 0xa5, "nothing past the record");
  assert.deepEqual(host.stealShmem, [undefined, undefined, RECORD, undefined]);
  // Moving the record: the new one is zeroed and replaces the old.
  assert.equal(sbi.handle(setShmem(RECORD + 0x40n, 0n, 0n, 2)).error, SBI_SUCCESS);
  assert.deepEqual([...host.ram.subarray(0x1040, 0x1080)], new Array(64).fill(0));
  assert.equal(host.stealShmem[2], RECORD + 0x40n);
  // The last 64 bytes of RAM are a valid record.
  assert.equal(sbi.handle(setShmem(RAM_END - 64n)).error, SBI_SUCCESS);
  assert.equal(host.stealShmem[0], RAM_END - 64n);
});

test("set_shmem with lo and hi all ones disables the calling hart's reports", () => {
  const { host, sbi } = setup();
  assert.equal(sbi.handle(setShmem(RECORD, 0n, 0n, 1)).error, SBI_SUCCESS);
  assert.equal(sbi.handle(setShmem(RECORD + 64n, 0n, 0n, 3)).error, SBI_SUCCESS);
  host.ram.fill(0x77, 0x1000, 0x1040);
  assert.deepEqual(sbi.handle(setShmem(ULONG_MAX, ULONG_MAX, 0n, 1)), { error: SBI_SUCCESS, value: 0n });
  assert.deepEqual(host.stealShmem, [undefined, undefined, undefined, RECORD + 64n]);
  assert.equal(host.ram[0x1000], 0x77, "disabling leaves the memory alone");
  // Disabling a hart that never registered is fine too.
  assert.equal(sbi.handle(setShmem(ULONG_MAX, ULONG_MAX, 0n, 0)).error, SBI_SUCCESS);
});

test("set_shmem errors: non-zero flags and misaligned addresses are INVALID_PARAM, non-RAM INVALID_ADDRESS", () => {
  const { host, sbi } = setup();
  assert.equal(sbi.handle(setShmem(RECORD)).error, SBI_SUCCESS);
  host.ram.fill(0x11);
  const cases: [bigint, bigint, bigint, SbiErrorCode][] = [
    [RECORD, 0n, 1n, SBI_ERR_INVALID_PARAM], // flags reserved
    [RECORD, 0n, 1n << 63n, SBI_ERR_INVALID_PARAM],
    [ULONG_MAX, ULONG_MAX, 1n, SBI_ERR_INVALID_PARAM], // even to disable
    [RECORD + 8n, 0n, 0n, SBI_ERR_INVALID_PARAM], // 8- but not 64-byte aligned
    [RECORD + 32n, 0n, 0n, SBI_ERR_INVALID_PARAM],
    [RECORD + 1n, 0n, 0n, SBI_ERR_INVALID_PARAM],
    [ULONG_MAX, 0n, 0n, SBI_ERR_INVALID_PARAM], // lo all ones alone is just misaligned
    [0x1000n, 0n, 0n, SBI_ERR_INVALID_ADDRESS], // below RAM
    [RAM_END, 0n, 0n, SBI_ERR_INVALID_ADDRESS], // just past RAM
    [RAM_BASE - 64n, 0n, 0n, SBI_ERR_INVALID_ADDRESS], // just below RAM
    [ULONG_MAX - 63n, 0n, 0n, SBI_ERR_INVALID_ADDRESS], // the last record below 2^64
    [RECORD, 1n, 0n, SBI_ERR_INVALID_ADDRESS], // above 2^64
    [0n, ULONG_MAX, 0n, SBI_ERR_INVALID_ADDRESS],
  ];
  for (const [lo, hi, flags, error] of cases) {
    assert.deepEqual(sbi.handle(setShmem(lo, hi, flags)), { error, value: 0n }, `lo ${lo} hi ${hi} flags ${flags}`);
  }
  assert.equal(host.stealShmem[0], RECORD, "a failed call leaves the registration as it was");
  assert.ok(host.ram.every((b) => b === 0x11), "a failed call writes nothing");
  assert.equal(sbi.handle(call(SBI_EXT_STA, 1, [RECORD])).error, SBI_ERR_NOT_SUPPORTED);
});

/** The spec's decoding, written out independently of decodeStealTimeShmem, for the fuzz below. */
function model(lo: bigint, hi: bigint, flags: bigint): "disable" | bigint | SbiErrorCode {
  if (flags !== 0n) return SBI_ERR_INVALID_PARAM;
  if (lo === ULONG_MAX && hi === ULONG_MAX) return "disable";
  if ((lo & 63n) !== 0n) return SBI_ERR_INVALID_PARAM;
  if (hi !== 0n || lo < RAM_BASE || lo + 64n > RAM_END) return SBI_ERR_INVALID_ADDRESS;
  return lo;
}

/** xorshift64*: a deterministic stream of 64-bit values. */
function rng(seed: bigint): () => bigint {
  let s = seed;
  return () => {
    s ^= s >> 12n;
    s ^= BigInt.asUintN(64, s << 25n);
    s ^= s >> 27n;
    return BigInt.asUintN(64, s * 0x2545f4914f6cdd1dn);
  };
}

test("fuzz: argument decoding matches the spec's rules and a failed call changes nothing", () => {
  const next = rng(0x5354_41n);
  const interesting = [0n, 1n, 63n, 64n, RAM_BASE, RAM_BASE + 64n, RAM_END - 64n, RAM_END, ULONG_MAX, ULONG_MAX - 63n, 1n << 63n];
  const pick = (): bigint => {
    const r = next();
    switch (Number(r & 3n)) {
      case 0:
        return interesting[Number((r >> 8n) % BigInt(interesting.length))];
      case 1: // somewhere in or near RAM, any alignment
        return RAM_BASE - 256n + ((r >> 8n) % BigInt(RAM_SIZE + 512));
      case 2: // aligned, in or near RAM
        return (RAM_BASE - 256n + ((r >> 8n) % BigInt(RAM_SIZE + 512))) & ~63n;
      default:
        return r;
    }
  };
  const regions = [{ base: RAM_BASE, size: BigInt(RAM_SIZE) }];
  const { host, sbi } = setup();
  let registered: bigint | undefined;
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const lo = pick();
    const hi = Number(next() & 7n) === 0 ? pick() : next() & 1n ? 0n : ULONG_MAX;
    const flags = Number(next() & 7n) === 0 ? next() : 0n;
    const expected = model(lo, hi, flags);
    const decoded = decodeStealTimeShmem(lo, hi, flags, regions);
    const got = decoded.kind === "error" ? decoded.error : decoded.kind === "disable" ? "disable" : decoded.addr;
    assert.equal(got, expected, `lo ${lo} hi ${hi} flags ${flags}`);
    const result = sbi.handle(setShmem(lo, hi, flags));
    if (typeof expected === "bigint" && expected < 0n) {
      assert.deepEqual(result, { error: expected, value: 0n });
    } else {
      assert.deepEqual(result, { error: SBI_SUCCESS, value: 0n });
      registered = expected === "disable" ? undefined : expected;
    }
    assert.equal(host.stealShmem[0], registered);
    const key = typeof expected === "bigint" && expected >= 0n ? "enable" : String(expected);
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
  // Every outcome was exercised, not just errors.
  for (const key of ["enable", "disable", String(SBI_ERR_INVALID_PARAM), String(SBI_ERR_INVALID_ADDRESS)]) {
    assert.ok((outcomes.get(key) ?? 0) > 100, `${key}: ${outcomes.get(key)}`);
  }
});

test("writeStealRecord: little-endian steal and preempted, an even sequence, nothing else touched", () => {
  const { bytes, memory } = ram();
  const view = new DataView(bytes.buffer);
  bytes.fill(0xcc, 17, 64); // padding, as a guest might have scribbled it
  writeStealRecord(memory, base, 0x0123_4567_89ab_cdefn, true);
  assert.equal(view.getUint32(STA_SEQUENCE, true), 2);
  assert.equal(view.getUint32(4, true), 0, "flags stay zero");
  assert.equal(view.getBigUint64(STA_STEAL, true), 0x0123_4567_89ab_cdefn);
  assert.deepEqual([...bytes.subarray(8, 16)], [0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01]);
  assert.equal(bytes[STA_PREEMPTED], 1);
  assert.ok(bytes.subarray(17, 64).every((b) => b === 0xcc), "padding untouched");
  writeStealRecord(memory, base, 5n, false);
  assert.equal(view.getUint32(STA_SEQUENCE, true), 4);
  assert.equal(view.getBigUint64(STA_STEAL, true), 5n);
  assert.equal(bytes[STA_PREEMPTED], 0);
  assert.deepEqual(readStealRecord(memory, base), { sequence: 4, flags: 0, steal: 5n, preempted: 0 });
  // A record elsewhere in RAM; the one at the base is left alone.
  writeStealRecord(memory, base + 0x40, 9n, false);
  assert.deepEqual(readStealRecord(memory, base + 0x40), { sequence: 2, flags: 0, steal: 9n, preempted: 0 });
  assert.equal(readStealRecord(memory, base).steal, 5n);
});

test("writeStealRecord: the sequence is odd exactly while steal is being written, then even (wraps at 2^32)", () => {
  for (const start of [0, 2, 1, 0xffff_fffe, 0xffff_ffff, 0x7fff_ffff]) {
    const { memory } = ram();
    memory.store32(base, start);
    const stores: { at: number; value: number; sequence: number }[] = [];
    const spy: StealRecordMemory = {
      load32: (p) => memory.load32(p),
      store32: (p, v) => {
        memory.store32(p, v);
        stores.push({ at: p - base, value: v >>> 0, sequence: memory.load32(base) });
      },
      store8: (p, v) => {
        memory.store8(p, v);
        stores.push({ at: p - base, value: v, sequence: memory.load32(base) });
      },
    };
    writeStealRecord(spy, base, 0xdead_beef_0000_0001n, false);
    assert.deepEqual(stores.map((s) => s.at), [STA_SEQUENCE, STA_STEAL, STA_STEAL + 4, STA_PREEMPTED, STA_SEQUENCE], "order of the stores");
    for (const s of stores.slice(0, -1)) assert.equal(s.sequence & 1, 1, `odd during the update (start ${start})`);
    const end = memory.load32(base);
    assert.equal(end & 1, 0, `even after (start ${start})`);
    assert.equal(end, (((start + 1) | 1) + 1) >>> 0);
    assert.notEqual(end, start >>> 0, "the sequence moved");
  }
});

/** The guest's read (§16.1, as Linux's pv_time_steal_clock does it): undefined when it must retry. */
function guestRead(memory: StealRecordMemory, p: number, between: () => void): bigint | undefined {
  const before = memory.load32(p + STA_SEQUENCE);
  between();
  const steal = readStealRecord(memory, p).steal;
  between();
  const after = memory.load32(p + STA_SEQUENCE);
  return before % 2 === 0 && before === after ? steal : undefined;
}

test("fuzz: a reader interleaved anywhere with the writer never accepts a torn or wrong steal", () => {
  const next = rng(0xfeedn);
  for (let round = 0; round < 500; round++) {
    const { memory } = ram();
    let current = next();
    writeStealRecord(memory, base, current, false);
    const target = next() & (next() & 1n ? 0xffff_ffff_ffff_ffffn : 0xffffn);
    // Replay the writer's stores one at a time; the reader's two gaps fall between chosen stores.
    const pending: (() => void)[] = [];
    const deferred: StealRecordMemory = {
      load32: (p) => memory.load32(p),
      store32: (p, v) => void pending.push(() => memory.store32(p, v)),
      store8: (p, v) => void pending.push(() => memory.store8(p, v)),
    };
    // The writer reads the sequence before its first store, so deferring the stores is faithful.
    writeStealRecord(deferred, base, target, Boolean(next() & 1n));
    const cuts = [Number(next() % 6n), Number(next() % 6n), Number(next() % 6n)].sort((a, b) => a - b);
    let done = 0;
    const advance = (to: number) => {
      while (done < to) pending[done++]();
    };
    advance(cuts[0]);
    let gap = 1;
    const seen = guestRead(memory, base, () => advance(cuts[gap++]));
    advance(pending.length);
    if (seen !== undefined) assert.ok(seen === current || seen === target, `round ${round}: read ${seen}, old ${current}, new ${target}`);
    if (cuts[0] === 0 && cuts[2] === 0) assert.equal(seen, current, "no store in between: the old value");
    if (cuts[0] === 5) assert.equal(seen, target, "after the whole update: the new value");
    current = target;
    assert.equal(readStealRecord(memory, base).steal, current);
    assert.equal(memory.load32(base) % 2, 0);
  }
});

test("StealTimeRecorder: the record counts steal since its registration, not before, and restarts when zeroed", () => {
  const { bytes, memory } = ram();
  const recorder = new StealTimeRecorder();
  assert.equal(recorder.update(memory, undefined, 1_000n, false), false, "no record: nothing written");
  assert.ok(bytes.every((b) => b === 0));
  // Registered now (the call zeroed the record): the 1000 ns before are not reported.
  assert.equal(recorder.update(memory, base, 1_500n, false), true);
  assert.deepEqual(readStealRecord(memory, base), { sequence: 2, flags: 0, steal: 500n, preempted: 0 });
  recorder.update(memory, base, 1_500n, true);
  assert.deepEqual(readStealRecord(memory, base), { sequence: 4, flags: 0, steal: 500n, preempted: 1 });
  recorder.update(memory, base, 4_000n, false);
  assert.equal(readStealRecord(memory, base).steal, 3_000n);
  // A total that goes backwards (a scheduler's reset) never makes the record go backwards.
  recorder.update(memory, base, 3_000n, false);
  assert.equal(readStealRecord(memory, base).steal, 3_000n);
  assert.equal(recorder.lastStealNs, 4_000n);
  // Registered again: the SBI call zeroed the record; counting starts over.
  bytes.fill(0, 0, 64);
  recorder.update(memory, base, 4_250n, false);
  assert.deepEqual(readStealRecord(memory, base), { sequence: 2, flags: 0, steal: 250n, preempted: 0 });
  // Disabled: later steal is not written anywhere.
  recorder.update(memory, undefined, 9_000n, false);
  assert.equal(readStealRecord(memory, base).steal, 250n);
});

test("ramRecordMemory: works on shared memory, little-endian, and refuses addresses outside RAM or misaligned", () => {
  const shared = new Uint8Array(new SharedArrayBuffer(0x2000), 0x1000, 0x1000);
  const memory = ramRecordMemory(shared, base);
  writeStealRecord(memory, base + 0x80, 0x1_0000_0002n, true);
  const view = new DataView(shared.buffer, shared.byteOffset);
  assert.equal(view.getUint32(0x80, true), 2);
  assert.equal(view.getBigUint64(0x88, true), 0x1_0000_0002n);
  assert.equal(shared[0x90], 1);
  assert.equal(new Uint8Array(shared.buffer)[0x1088], 2, "at the view's offset in the buffer");
  assert.throws(() => memory.load32(base - 4), RangeError);
  assert.throws(() => memory.store32(base + 0x1000, 0), RangeError);
  assert.throws(() => memory.store32(base + 2, 0), RangeError);
  assert.throws(() => memory.store8(base + 0x1000, 0), RangeError);
  assert.throws(() => ramRecordMemory(new Uint8Array(new ArrayBuffer(16), 2, 8), base), RangeError);
});

test("StealTimeRecorder snapshot: a restored recorder reports only the steal after the saved total", () => {
  const { memory } = ram();
  const recorder = new StealTimeRecorder();
  recorder.update(memory, base, 0n, false);
  recorder.update(memory, base, 2_000n, false);
  const saved = JSON.parse(JSON.stringify(recorder.saveState()));
  assert.deepEqual(saved, { version: 1, lastStealNs: "0x7d0" });

  const restored = new StealTimeRecorder();
  restored.restoreState(saved);
  assert.deepEqual(restored.saveState(), recorder.saveState());
  restored.update(memory, base, 2_700n, false);
  assert.equal(readStealRecord(memory, base).steal, 2_700n, "the record (in restored RAM) gains 700 ns, not 2700");
});

test("StealTimeRecorder snapshot: bad states are refused and change nothing", () => {
  const recorder = new StealTimeRecorder();
  recorder.restoreState({ version: 1, lastStealNs: "0x10" });
  for (const [state, message] of [
    [undefined, /hart\[1\]\.sta: expected an object/],
    [{ version: 2, lastStealNs: "0x0" }, /hart\[1\]\.sta\.version/],
    [{ version: 1, lastStealNs: 16 }, /hart\[1\]\.sta\.lastStealNs/],
    [{ version: 1 }, /hart\[1\]\.sta\.lastStealNs/],
  ] as [unknown, RegExp][]) {
    assert.throws(() => recorder.restoreState(state, "hart[1].sta"), message);
  }
  assert.equal(recorder.lastStealNs, 16n);
});
