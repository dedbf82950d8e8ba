import { test } from "node:test";
import assert from "node:assert/strict";
import type { Ledger, LedgerHart, LedgerVirtio } from "../machine/ledger.ts";
import { HISTORY_POINTS, LedgerHistory, chartSources, coalescingByDevice, counterRates, describeCoalescing, formatRate, parseCoalescingInput } from "./ledger-series.ts";

function hart(instructions: number, runningNs: number, stealNs: number): LedgerHart {
  return {
    instructions, interrupts: 0, exceptions: 0, sbiCalls: 0, ipisReceived: 0, remoteFences: 0, mmioExits: 0,
    runningNs, stealNs, haltedNs: 0, suspendedNs: 0, parkedNs: 0, wrsParks: 0, wrsTimeouts: 0, wrsWaitNs: 0, pauseExits: 0, directedYields: 0, suspends: 0,
  };
}

function virtio(kicks: number, kicksSuppressed: number, interrupts: number, interruptsSuppressed: number, coalesce: LedgerVirtio["coalesce"] = null): LedgerVirtio {
  return {
    notificationsReceived: kicks, notificationsIgnored: 0, notificationsSuppressed: kicksSuppressed,
    usedInterruptsSent: interrupts, usedInterruptsSuppressed: interruptsSuppressed, configInterrupts: 0, irqAssertions: interrupts, coalesce,
    coalescedCompletions: 0, coalesceBatchesByCount: 0, coalesceBatchesByTimer: 0, perQueue: [],
  };
}

/** A ledger `n` seconds into a steady run: every counter grows linearly with n. */
function ledgerAt(n: number, extra: Partial<Ledger> = {}): Ledger {
  return {
    version: 1,
    wallSeconds: n,
    instructions: 3_000_000 * n,
    exits: {
      total: 150 * n,
      unmapped: 0,
      byDevice: {
        "virtio-blk0": { loads: 40 * n, stores: 60 * n, byRegister: {} },
        plic: { loads: 25 * n, stores: 25 * n, byRegister: {} },
        rtc: { loads: 0, stores: 0, byRegister: {} },
      },
    },
    sbi: { total: 12 * n, byExtension: { TIME: 10 * n, IPI: 2 * n }, byFunction: {}, errors: {} },
    interrupts: { total: 0, byCause: {}, bySource: { "virtio-blk0": 20 * n, uart0: 0 } },
    exceptions: { total: 0, byCause: {} },
    virtio: { "virtio-blk0": virtio(30 * n, 10 * n, 20 * n, 5 * n, { maxCompletions: 8, maxDelayUs: 200 }), "virtio-rng0": virtio(0, 0, 0, 0) },
    bytes: {},
    perHart: [hart(1_000_000 * n, 0.5e9 * n, 0.25e9 * n), hart(2_000_000 * n, 0.75e9 * n, 0)],
    ...extra,
  };
}

test("counterRates: deltas per second; absent before counts 0; a counter that went back is a gap; ns as % of wall time", () => {
  assert.deepEqual(counterRates({ a: 10, b: 5 }, { a: 30, b: 5, c: 4 }, 2, "per second"), { a: 10, b: 0, c: 2 });
  assert.deepEqual(counterRates({ a: 10 }, { a: 3 }, 1, "per second"), { a: null });
  assert.deepEqual(counterRates({ steal: 1e9 }, { steal: 1.5e9 }, 2, "% of wall time"), { steal: 25 });
});

test("chartSources: exits by device with the total, SBI by extension, interrupts by source, per-hart figures, a chart per virtio device", () => {
  const sources = chartSources(ledgerAt(1));
  const byId = new Map(sources.map((s) => [s.id, s]));
  assert.deepEqual([...byId.keys()], ["exits", "sbi", "interrupts", "instructions", "hart-time", "virtio:virtio-blk0", "virtio:virtio-rng0"]);
  assert.deepEqual(byId.get("exits")!.counters, { total: 150, "virtio-blk0": 100, plic: 50, rtc: 0 });
  assert.deepEqual(byId.get("sbi")!.counters, { TIME: 10, IPI: 2 });
  assert.deepEqual(byId.get("instructions")!.counters, { "hart 0": 1_000_000, "hart 1": 2_000_000 });
  assert.deepEqual(byId.get("virtio:virtio-blk0")!.counters, { "notifications sent": 30, "notifications suppressed": 10, "interrupts sent": 20, "interrupts suppressed": 5 });
  // One hart: no perHart in the ledger; its instructions are the total, and there is no scheduler chart.
  const single = chartSources(ledgerAt(2, { perHart: undefined }));
  assert.deepEqual(single.find((s) => s.id === "instructions")!.counters, { "hart 0": 6_000_000 });
  assert.equal(single.some((s) => s.id === "hart-time"), false);
});

test("LedgerHistory: rates from successive ledgers divided by their time stamps, series of used counters only", () => {
  const history = new LedgerHistory();
  history.push(ledgerAt(0), 1000);
  assert.deepEqual(history.charts(), [], "one ledger is no rate");
  history.push(ledgerAt(1), 2000);
  history.push(ledgerAt(3), 4000); // two seconds later: the same rates
  const charts = new Map(history.charts().map((c) => [c.id, c]));
  const exits = charts.get("exits")!;
  assert.deepEqual(exits.times, [-2, 0]);
  assert.deepEqual(
    exits.series.map((s) => [s.label, s.values]),
    [
      ["total", [150, 150]],
      ["virtio-blk0", [100, 100]],
      ["plic", [50, 50]],
    ],
    "rtc was never touched: not in the legend",
  );
  assert.deepEqual(charts.get("sbi")!.series.map((s) => s.label), ["TIME", "IPI"]);
  assert.deepEqual(charts.get("interrupts")!.series, [{ label: "virtio-blk0", values: [20, 20] }]);
  assert.deepEqual(charts.get("instructions")!.series.map((s) => s.values), [[1_000_000, 1_000_000], [2_000_000, 2_000_000]]);
  const time = charts.get("hart-time")!;
  assert.equal(time.unit, "% of wall time");
  assert.deepEqual(Object.fromEntries(time.series.map((s) => [s.label, s.values[1]])), { "hart 0 running": 50, "hart 0 steal": 25, "hart 1 running": 75, "hart 1 steal": 0 });
  assert.deepEqual(charts.get("virtio:virtio-blk0")!.series.map((s) => s.values[0]), [30, 10, 20, 5]);
  assert.deepEqual(charts.get("virtio:virtio-rng0")!.series.map((s) => s.values[0]), [0, 0, 0, 0], "an idle device still shows its four series");
});

test("LedgerHistory: a series that appears later is 0 before it, and keeps its place", () => {
  const history = new LedgerHistory();
  history.push(ledgerAt(0), 0);
  history.push(ledgerAt(1), 1000);
  const later = ledgerAt(2);
  later.sbi.byExtension = { TIME: 20, IPI: 4, HSM: 3 };
  history.push(later, 2000);
  const sbi = history.charts().find((c) => c.id === "sbi")!;
  assert.deepEqual(sbi.series, [
    { label: "TIME", values: [10, 10] },
    { label: "IPI", values: [2, 2] },
    { label: "HSM", values: [0, 3] },
  ]);
});

test("LedgerHistory keeps the last HISTORY_POINTS rates, and starts over when the ledger goes back (a new machine)", () => {
  const history = new LedgerHistory();
  for (let n = 0; n <= HISTORY_POINTS + 10; n++) history.push(ledgerAt(n), n * 1000);
  const exits = history.charts().find((c) => c.id === "exits")!;
  assert.equal(exits.times.length, HISTORY_POINTS);
  assert.equal(exits.times[0], -(HISTORY_POINTS - 1));
  assert.equal(exits.series[0].values.length, HISTORY_POINTS);

  history.push(ledgerAt(1), (HISTORY_POINTS + 11) * 1000);
  assert.deepEqual(history.charts(), [], "wallSeconds went back: the old counters are not a baseline");
  history.push(ledgerAt(2), (HISTORY_POINTS + 12) * 1000);
  assert.equal(history.charts().find((c) => c.id === "exits")!.times.length, 1);
  history.push(ledgerAt(3), (HISTORY_POINTS + 12) * 1000);
  assert.deepEqual(history.charts(), [], "no time between two ledgers: no rate can be made");
});

test("a counter that goes back within one machine is a gap, not a negative rate", () => {
  const history = new LedgerHistory();
  history.push(ledgerAt(5), 0);
  const reset = ledgerAt(6);
  reset.virtio["virtio-blk0"] = virtio(1, 0, 1, 0);
  history.push(reset, 1000);
  const blk = history.charts().find((c) => c.id === "virtio:virtio-blk0")!;
  assert.deepEqual(blk.series.map((s) => s.values[0]), [null, null, null, null]);
});

test("coalescing: each device's setting from the ledger, described, and the control's input parsed with the field named", () => {
  assert.deepEqual(coalescingByDevice(ledgerAt(1)), [
    { device: "virtio-blk0", coalesce: { maxCompletions: 8, maxDelayUs: 200 } },
    { device: "virtio-rng0", coalesce: null },
  ]);
  assert.match(describeCoalescing(null), /^off/);
  assert.equal(describeCoalescing({ maxCompletions: 8, maxDelayUs: 200 }), "8 completions or 200 µs, whichever first");

  assert.deepEqual(parseCoalescingInput(" 16 ", "500"), { coalesce: { maxCompletions: 16, maxDelayUs: 500 } });
  assert.deepEqual(parseCoalescingInput("", ""), { coalesce: undefined });
  assert.deepEqual(parseCoalescingInput("1", "0"), { coalesce: undefined }, "{ 1, 0 } is off");
  assert.deepEqual(parseCoalescingInput("1", "100"), { coalesce: undefined }, "one completion never waits");
  assert.deepEqual(parseCoalescingInput("8", ""), { error: 'maxDelayUs: expected a whole number, got ""' });
  assert.deepEqual(parseCoalescingInput("-3", "10"), { error: 'maxCompletions: expected a whole number, got "-3"' });
  assert.deepEqual(parseCoalescingInput("2.5", "10"), { error: 'maxCompletions: expected a whole number, got "2.5"' });
  assert.match((parseCoalescingInput("0", "10") as { error: string }).error, /maxCompletions must be a whole number of at least 1/);
  assert.match((parseCoalescingInput("8", "0") as { error: string }).error, /need a delay bound/);
  assert.match((parseCoalescingInput("8", "20000000") as { error: string }).error, /maxDelayUs must be between 0 and 10000000/);
});

test("formatRate: short axis labels", () => {
  assert.deepEqual([0, 0.25, 12, 999, 1500, 2_345_678, 3e9].map(formatRate), ["0", "0.25", "12", "999", "1.5k", "2.35M", "3G"]);
});
