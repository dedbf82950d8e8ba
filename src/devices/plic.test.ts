import { test } from "node:test";
import assert from "node:assert/strict";
import { Plic, MIP_MEIP, MIP_SEIP } from "./plic.ts";

function makeHart() {
  const hart = {
    mip: 0,
    calls: 0,
    setPendingInterrupt(mask: number, on: boolean) {
      hart.calls++;
      hart.mip = on ? hart.mip | mask : hart.mip & ~mask;
    },
  };
  return hart;
}

const priority = (src: number) => 4 * src;
const enable = (ctx: number, word = 0) => 0x2000 + 0x80 * ctx + 4 * word;
const threshold = (ctx: number) => 0x20_0000 + 0x1000 * ctx;
const claim = (ctx: number) => threshold(ctx) + 4;

function setup(harts = 1) {
  const hs = Array.from({ length: harts }, makeHart);
  const plic = new Plic(hs);
  return { plic, hs };
}

test("claim returns the pending source and complete finishes it", () => {
  const { plic, hs } = setup();
  plic.store(priority(10), 4, 1);
  plic.store(enable(1), 4, 1 << 10); // S-mode context of hart 0
  plic.setLevel(10, true);
  assert.equal(hs[0].mip, MIP_SEIP);
  assert.equal(plic.load(0x1000, 4), 1 << 10);
  assert.equal(plic.load(claim(1), 4), 10);
  assert.equal(plic.load(0x1000, 4), 0, "claim clears the pending bit");
  assert.equal(hs[0].mip, 0);
  assert.equal(plic.load(claim(1), 4), 0, "nothing left to claim");
  plic.setLevel(10, false); // the driver serviced the device
  plic.store(claim(1), 4, 10);
  assert.equal(hs[0].mip, 0);
  assert.equal(plic.counters.claims[1], 1);
  assert.equal(plic.counters.emptyClaims[1], 1);
  assert.equal(plic.counters.completes[1], 1);
  assert.equal(plic.counters.raised[10], 1);
});

test("a level source still asserted at completion becomes pending again", () => {
  const { plic, hs } = setup();
  plic.store(priority(5), 4, 3);
  plic.store(enable(0), 4, 1 << 5); // M-mode context
  plic.setLevel(5, true);
  assert.equal(hs[0].mip, MIP_MEIP);
  assert.equal(plic.load(claim(0), 4), 5);
  plic.setLevel(5, true); // re-assertion while in flight: the gateway holds it
  assert.equal(plic.load(0x1000, 4), 0);
  assert.equal(hs[0].mip, 0);
  plic.store(claim(0), 4, 5);
  assert.equal(plic.load(0x1000, 4), 1 << 5);
  assert.equal(hs[0].mip, MIP_MEIP);
  assert.equal(plic.counters.raised[5], 2);
});

test("a request is not retracted when the level drops before the claim", () => {
  const { plic } = setup();
  plic.store(priority(7), 4, 1);
  plic.store(enable(1), 4, 1 << 7);
  plic.setLevel(7, true);
  plic.setLevel(7, false);
  assert.equal(plic.load(claim(1), 4), 7);
  assert.equal(plic.counters.staleClaims, 1);
  plic.store(claim(1), 4, 7);
  assert.equal(plic.load(claim(1), 4), 0);
});

test("priorities pick the winner, ties go to the lowest ID, priority 0 never interrupts", () => {
  const { plic, hs } = setup();
  plic.store(enable(1), 4, 0xffff_fffe);
  plic.store(enable(1, 1), 4, 0xffff_ffff);
  for (const s of [3, 4, 9, 40]) plic.setLevel(s, true);
  assert.equal(hs[0].mip, 0, "all priorities are 0 after reset");
  assert.equal(plic.load(claim(1), 4), 0);
  plic.store(priority(3), 4, 2);
  plic.store(priority(4), 4, 5);
  plic.store(priority(9), 4, 5);
  plic.store(priority(40), 4, 7);
  assert.equal(plic.load(claim(1), 4), 40);
  assert.equal(plic.load(claim(1), 4), 4);
  assert.equal(plic.load(claim(1), 4), 9);
  assert.equal(plic.load(claim(1), 4), 3);
  assert.equal(plic.load(claim(1), 4), 0);
});

test("thresholds mask priorities at or below them", () => {
  const { plic, hs } = setup();
  plic.store(priority(2), 4, 3);
  plic.store(enable(1), 4, 1 << 2);
  plic.store(threshold(1), 4, 3);
  plic.setLevel(2, true);
  assert.equal(hs[0].mip, 0);
  assert.equal(plic.load(claim(1), 4), 0, "claims respect the threshold");
  plic.store(threshold(1), 4, 2);
  assert.equal(hs[0].mip, MIP_SEIP);
  plic.store(priority(2), 4, 2);
  assert.equal(hs[0].mip, 0, "lowering the priority drops EIP");
  assert.equal(plic.load(threshold(1), 4), 2);
});

test("WARL: priority and threshold keep 3 bits; enable bit 0 and bits past the last source are 0", () => {
  const { plic } = setup();
  plic.store(priority(1), 4, 0xff);
  assert.equal(plic.load(priority(1), 4), 7);
  plic.store(threshold(0), 4, 0x1f);
  assert.equal(plic.load(threshold(0), 4), 7);
  plic.store(priority(0), 4, 5);
  assert.equal(plic.load(priority(0), 4), 0);
  plic.store(enable(0), 4, 0xffff_ffff);
  assert.equal(plic.load(enable(0), 4), 0xffff_fffe);
  plic.store(enable(0, 2), 4, 0xffff_ffff); // sources 64..95
  assert.equal(plic.load(enable(0, 2), 4), 0xffff_ffff);
  const small = new Plic([makeHart()], { sources: 40 });
  small.store(enable(0, 1), 4, 0xffff_ffff); // sources 32..63, only 32..40 exist
  assert.equal(small.load(enable(0, 1), 4), 0x1ff);
});

test("enables are per context; a source claimed by one context is gone for the others", () => {
  const { plic, hs } = setup(2);
  plic.store(priority(1), 4, 1);
  plic.store(enable(1), 4, 1 << 1); // hart 0 S
  plic.store(enable(3), 4, 1 << 1); // hart 1 S
  plic.store(enable(2), 4, 1 << 1); // hart 1 M
  plic.setLevel(1, true);
  assert.equal(hs[0].mip, MIP_SEIP);
  assert.equal(hs[1].mip, MIP_SEIP | MIP_MEIP);
  assert.equal(plic.load(claim(3), 4), 1);
  assert.equal(hs[0].mip, 0);
  assert.equal(hs[1].mip, 0);
  assert.equal(plic.load(claim(1), 4), 0);
  // Completion from a context that does not enable the source is ignored (spec).
  plic.store(enable(0), 4, 0);
  plic.store(claim(0), 4, 1);
  assert.equal(plic.counters.completes[0], 0);
  plic.store(claim(3), 4, 1);
  assert.equal(plic.counters.completes[3], 1);
  assert.equal(hs[1].mip, MIP_SEIP | MIP_MEIP, "still asserted: pending again");
});

test("targets hear only about changes", () => {
  const { plic, hs } = setup();
  plic.store(priority(1), 4, 1);
  plic.store(priority(2), 4, 1);
  plic.store(enable(1), 4, 0b110);
  plic.setLevel(1, true);
  plic.setLevel(2, true);
  plic.setLevel(1, true);
  assert.equal(hs[0].calls, 1);
});

test("bad accesses fault or are ignored, never throw", () => {
  const { plic } = setup();
  assert.equal(plic.load(priority(1), 1), undefined);
  assert.equal(plic.load(priority(1), 8), undefined);
  assert.equal(plic.load(priority(1) + 2, 4), undefined);
  assert.equal(plic.store(priority(1), 2, 1), false);
  assert.equal(plic.store(priority(1), 8, 1n), false);
  // Contexts that do not exist (one hart has contexts 0 and 1) and reserved words read as zero.
  assert.equal(plic.load(claim(2), 4), 0);
  assert.equal(plic.store(threshold(5), 4, 1), true);
  assert.equal(plic.load(enable(1, 31), 4), 0);
  assert.equal(plic.load(threshold(0) + 8, 4), 0);
  assert.equal(plic.load(priority(500), 4), 0);
  assert.equal(plic.load(0x1000 + 4 * 20, 4), 0);
  // The pending array is read-only.
  plic.store(0x1000, 4, 0xffff_ffff);
  assert.equal(plic.load(0x1000, 4), 0);
  // Completing nonsense IDs is ignored.
  plic.store(claim(1), 4, 0);
  plic.store(claim(1), 4, 0xffff_ffff);
  plic.store(claim(1), 4, 2n ** 40n);
  assert.ok(plic.counters.reservedAccesses > 0);
  assert.throws(() => plic.setLevel(0, true), RangeError);
  assert.throws(() => plic.setLevel(96, true), RangeError);
});

test("snapshot: a claimed interrupt completes after restore, and a pending one is delivered", () => {
  const { plic, hs } = setup(2);
  plic.store(priority(10), 4, 3);
  plic.store(priority(11), 4, 2);
  plic.store(enable(1), 4, (1 << 10) | (1 << 11)); // hart 0, S-mode
  plic.store(enable(3), 4, 1 << 11); // hart 1, S-mode
  plic.store(threshold(3), 4, 1);
  plic.setLevel(10, true);
  plic.setLevel(11, true);
  assert.equal(plic.load(claim(1), 4), 10); // hart 0 takes 10; 11 stays pending
  const saved = JSON.parse(JSON.stringify(plic.saveState()));

  const fresh = [makeHart(), makeHart()];
  fresh[0].mip = MIP_MEIP; // stale: restore must drive every line to the PLIC's view
  const restored = new Plic(fresh);
  restored.restoreState(saved);
  assert.deepEqual(restored.saveState(), plic.saveState());
  assert.equal(fresh[0].mip, MIP_SEIP, "hart 0: source 11 pending for S-mode, no M-mode interrupt");
  assert.equal(fresh[1].mip, MIP_SEIP);

  // Source 10 is still claimed: its gateway holds it until the completion, which is accepted.
  assert.equal(restored.load(claim(3), 4), 11);
  assert.equal(restored.load(claim(1), 4), 0, "11 went to hart 1, 10 is in flight");
  restored.store(claim(1), 4, 10);
  assert.equal(restored.load(claim(1), 4), 10, "level still high: completing re-requests it");
  restored.setLevel(10, false);
  restored.store(claim(1), 4, 10);
  assert.equal(restored.load(claim(1), 4), 0);
  assert.equal(restored.counters.completes[1], 2);
});

test("snapshot: bad states are refused and change nothing", () => {
  const { plic, hs } = setup(1);
  plic.store(priority(5), 4, 1);
  plic.store(enable(1), 4, 1 << 5);
  plic.setLevel(5, true);
  const good = plic.saveState();
  const calls = hs[0].calls;
  const variant = (patch: Record<string, unknown>) => ({ ...JSON.parse(JSON.stringify(good)), ...patch });
  const bad: [unknown, RegExp][] = [
    ["plic", /plic: expected an object/],
    [variant({ version: 0 }), /plic\.version/],
    [variant({ sources: 31 }), /plic\.sources/],
    [variant({ contexts: 4 }), /plic\.contexts/],
    [variant({ priority: good.priority.slice(1) }), /plic\.priority: expected an array of 96/],
    [variant({ priority: good.priority.map((p, i) => (i === 3 ? 8 : p)) }), /plic\.priority\[3\]/],
    [variant({ priority: good.priority.map((p, i) => (i === 0 ? 1 : p)) }), /plic\.priority\[0\]/],
    [variant({ level: good.level.map((l, i) => (i === 0 ? true : l)) }), /plic\.level\[0\]/],
    [variant({ level: good.level.map((l, i) => (i === 2 ? 1 : l)) }), /plic\.level\[2\]/],
    [variant({ pending: [1, 0, 0] }), /plic\.pending\[0\]/],
    [variant({ pending: [0, 0, 0x1_0000_0000] }), /plic\.pending\[2\]/],
    [variant({ inFlight: [0, 0] }), /plic\.inFlight/],
    [variant({ enable: [[0, 0, 0], [0, 0, -1]] }), /plic\.enable\[1\]\[2\]/],
    [variant({ threshold: [0] }), /plic\.threshold/],
    [variant({ threshold: [0, "1"] }), /plic\.threshold\[1\]/],
  ];
  for (const [state, message] of bad) assert.throws(() => plic.restoreState(state), message);
  assert.deepEqual(plic.saveState(), good);
  assert.equal(hs[0].calls, calls, "no line was touched");
  // A PLIC with 40 sources has no source 41..63.
  const small = new Plic([makeHart()], { sources: 40 });
  const smallState = small.saveState();
  assert.throws(() => small.restoreState({ ...smallState, pending: [0, 1 << 10] }), /plic\.pending\[1\]: 0x400 sets bits of sources/);
});
