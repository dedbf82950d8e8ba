import { test } from "node:test";
import assert from "node:assert/strict";
import { irqLine } from "../testing/fakes.ts";
import {
  GoldfishRtc,
  TIMER_TIME_LOW,
  TIMER_TIME_HIGH,
  TIMER_ALARM_LOW,
  TIMER_ALARM_HIGH,
  TIMER_IRQ_ENABLED,
  TIMER_CLEAR_ALARM,
  TIMER_ALARM_STATUS,
  TIMER_CLEAR_INTERRUPT,
} from "./goldfish-rtc.ts";

const NSEC_PER_SEC = 1_000_000_000n;

function setup(start = 1_700_000_000n * NSEC_PER_SEC) {
  const clock = { ns: start };
  const irq = irqLine();
  const rtc = new GoldfishRtc({ now: () => clock.ns, irq: irq.set });
  const r = (off: number) => rtc.load(off, 4) as number;
  const w = (off: number, v: number) => assert.equal(rtc.store(off, 4, v), true);
  // goldfish_rtc_read_time(): low then high.
  const readTime = () => {
    const low = BigInt(r(TIMER_TIME_LOW));
    return (BigInt(r(TIMER_TIME_HIGH)) << 32n) | low;
  };
  return { rtc, clock, irq, r, w, readTime };
}

test("reading TIME_LOW latches TIME_HIGH", () => {
  const { clock, r, readTime } = setup(0x1_ffff_fff0n);
  assert.equal(readTime(), 0x1_ffff_fff0n);
  clock.ns = 0x2_0000_0010n; // the high half changes after the low read...
  const low = r(TIMER_TIME_LOW);
  clock.ns = 0x3_0000_0000n; // ...but TIME_HIGH reports the value from that read
  assert.equal(low, 0x10);
  assert.equal(r(TIMER_TIME_HIGH), 2);
});

test("setting the time as goldfish_rtc_set_time does (HIGH then LOW) offsets the host clock", () => {
  const { clock, w, readTime, rtc } = setup();
  const wanted = 946_684_800n * NSEC_PER_SEC; // 2000-01-01
  w(TIMER_TIME_HIGH, Number(wanted >> 32n));
  w(TIMER_TIME_LOW, Number(wanted & 0xffff_ffffn));
  assert.equal(readTime(), wanted);
  clock.ns += 5n * NSEC_PER_SEC;
  assert.equal(readTime(), wanted + 5n * NSEC_PER_SEC);
  assert.equal(rtc.counters.writes.TIME_LOW, 1);
});

test("alarm: arms on ALARM_LOW, fires on poll, interrupt gated by IRQ_ENABLED, cleared by CLEAR_INTERRUPT", () => {
  const { clock, irq, r, w, rtc } = setup();
  const at = clock.ns + 3n * NSEC_PER_SEC;
  // goldfish_rtc_set_alarm(): ALARM_HIGH, ALARM_LOW, then IRQ_ENABLED = 1.
  w(TIMER_ALARM_HIGH, Number(at >> 32n));
  assert.equal(r(TIMER_ALARM_STATUS), 0, "ALARM_HIGH alone does not arm");
  w(TIMER_ALARM_LOW, Number(at & 0xffff_ffffn));
  w(TIMER_IRQ_ENABLED, 1);
  assert.equal(r(TIMER_ALARM_STATUS), 1);
  assert.equal((BigInt(r(TIMER_ALARM_HIGH)) << 32n) | BigInt(r(TIMER_ALARM_LOW)), at);
  assert.equal(rtc.nextDeadline(), at);
  assert.equal(rtc.nsUntilAlarm(), 3n * NSEC_PER_SEC);
  clock.ns = at - 1n;
  rtc.poll();
  assert.equal(irq.level, false);
  clock.ns = at;
  rtc.poll();
  assert.equal(irq.level, true);
  assert.equal(r(TIMER_ALARM_STATUS), 0, "a fired alarm is no longer armed");
  assert.equal(rtc.nextDeadline(), undefined);
  assert.equal(rtc.nsUntilAlarm(), undefined);
  w(TIMER_IRQ_ENABLED, 0);
  assert.equal(irq.level, false, "IRQ_ENABLED masks the line");
  w(TIMER_IRQ_ENABLED, 1);
  assert.equal(irq.level, true, "the interrupt stays pending until cleared");
  w(TIMER_CLEAR_INTERRUPT, 1);
  assert.equal(irq.level, false);
  assert.equal(rtc.counters.alarmsFired, 1);
  assert.equal(rtc.counters.interrupts, 2);
});

test("an alarm in the past fires at once; CLEAR_ALARM cancels an armed one", () => {
  const { clock, irq, r, w } = setup();
  w(TIMER_IRQ_ENABLED, 1);
  w(TIMER_ALARM_HIGH, 0);
  w(TIMER_ALARM_LOW, 1);
  assert.equal(irq.level, true);
  w(TIMER_CLEAR_INTERRUPT, 1);
  const later = clock.ns + NSEC_PER_SEC;
  w(TIMER_ALARM_HIGH, Number(later >> 32n));
  w(TIMER_ALARM_LOW, Number(later & 0xffff_ffffn));
  assert.equal(r(TIMER_ALARM_STATUS), 1);
  w(TIMER_CLEAR_ALARM, 1);
  assert.equal(r(TIMER_ALARM_STATUS), 0);
  clock.ns = later + 1n;
  r(TIMER_TIME_LOW);
  assert.equal(irq.level, false);
});

test("the alarm follows the guest clock after a time change", () => {
  const { clock, irq, w, rtc } = setup(100n * NSEC_PER_SEC);
  w(TIMER_IRQ_ENABLED, 1);
  w(TIMER_ALARM_HIGH, Number((200n * NSEC_PER_SEC) >> 32n));
  w(TIMER_ALARM_LOW, Number(200n * NSEC_PER_SEC & 0xffff_ffffn));
  assert.equal(irq.level, false);
  // Guest moves its clock forward by 50 s: the alarm (guest time 200 s) is now 50 s away on the host.
  w(TIMER_TIME_HIGH, Number((150n * NSEC_PER_SEC) >> 32n));
  w(TIMER_TIME_LOW, Number((150n * NSEC_PER_SEC) & 0xffff_ffffn));
  assert.equal(rtc.nextDeadline(), 200n * NSEC_PER_SEC, "in the guest's clock");
  assert.equal(rtc.nsUntilAlarm(), 50n * NSEC_PER_SEC);
  clock.ns = 150n * NSEC_PER_SEC;
  rtc.poll();
  assert.equal(irq.level, true);
});

test("bad accesses fault; reserved and write-only registers read as zero", () => {
  const { rtc } = setup();
  assert.equal(rtc.load(TIMER_TIME_LOW, 8), undefined);
  assert.equal(rtc.load(TIMER_TIME_LOW, 1), undefined);
  assert.equal(rtc.load(2, 4), undefined);
  assert.equal(rtc.store(TIMER_ALARM_LOW, 2, 1), false);
  assert.equal(rtc.load(TIMER_CLEAR_INTERRUPT, 4), 0);
  assert.equal(rtc.load(0x100, 4), 0);
  assert.equal(rtc.store(0x100, 4, 1), true);
  assert.equal(rtc.counters.reads.reserved, 1);
});

/** Arms an alarm at RTC time `at` (the driver writes ALARM_HIGH, then ALARM_LOW, which arms it). */
function arm(w: (off: number, v: number) => void, at: bigint): void {
  w(TIMER_IRQ_ENABLED, 1);
  w(TIMER_ALARM_HIGH, Number(at >> 32n));
  w(TIMER_ALARM_LOW, Number(at & 0xffff_ffffn));
}

test("snapshot: the guest's time adjustment and an armed alarm survive; the clock reads the host's wall clock", () => {
  const a = setup();
  const setTo = 1_800_000_000n * NSEC_PER_SEC; // the guest sets the clock ahead
  a.w(TIMER_TIME_HIGH, Number(setTo >> 32n));
  a.w(TIMER_TIME_LOW, Number(setTo & 0xffff_ffffn));
  arm(a.w, setTo + 60n * NSEC_PER_SEC);
  const saved = JSON.parse(JSON.stringify(a.rtc.saveState()));

  // Restored an hour later (host wall clock): the guest's clock moved on by that hour.
  const b = setup(a.clock.ns + 3600n * NSEC_PER_SEC);
  b.rtc.restoreState(saved);
  assert.equal(b.rtc.saveState().offset, saved.offset);
  assert.equal(b.readTime(), setTo + 3600n * NSEC_PER_SEC);
  // The alarm was due 59 minutes ago: it fired at restore, as one a sleeping laptop missed.
  assert.equal(b.irq.level, true);
  assert.equal(b.r(TIMER_ALARM_STATUS), 0);
  assert.equal(b.rtc.counters.alarmsFired, 1);
  b.w(TIMER_CLEAR_INTERRUPT, 1);
  assert.equal(b.irq.level, false);
});

test("snapshot: an alarm still in the future fires at its RTC time after restore", () => {
  const a = setup();
  const at = a.clock.ns + 10n * NSEC_PER_SEC;
  arm(a.w, at);
  const b = setup(a.clock.ns + 1n * NSEC_PER_SEC);
  b.rtc.restoreState(JSON.parse(JSON.stringify(a.rtc.saveState())));
  assert.deepEqual(b.rtc.saveState(), a.rtc.saveState());
  assert.equal(b.irq.level, false);
  assert.equal(b.rtc.nextDeadline(), at);
  assert.equal(b.rtc.nsUntilAlarm(), 9n * NSEC_PER_SEC);
  b.clock.ns = at;
  b.rtc.poll();
  assert.equal(b.irq.level, true);
});

test("snapshot: a raised interrupt is driven at restore", () => {
  const a = setup();
  arm(a.w, a.clock.ns);
  assert.equal(a.irq.level, true);
  const b = setup();
  b.rtc.restoreState(JSON.parse(JSON.stringify(a.rtc.saveState())));
  assert.equal(b.irq.level, true);
  assert.equal(b.r(TIMER_IRQ_ENABLED), 1);
});

test("snapshot: bad states are refused and change nothing", () => {
  const a = setup();
  arm(a.w, a.clock.ns + 5n * NSEC_PER_SEC);
  const good = a.rtc.saveState();
  const variant = (patch: Record<string, unknown>) => ({ ...good, ...patch });
  const bad: [unknown, RegExp][] = [
    [42, /rtc: expected an object/],
    [variant({ version: 3 }), /rtc\.version/],
    [variant({ offset: "12" }), /rtc\.offset/],
    [variant({ alarm: 1 }), /rtc\.alarm/],
    [variant({ latchedHigh: 2 ** 32 }), /rtc\.latchedHigh/],
    [variant({ alarmArmed: 1 }), /rtc\.alarmArmed/],
    [variant({ irqEnabled: null }), /rtc\.irqEnabled/],
    [variant({ irqPending: "false" }), /rtc\.irqPending/],
  ];
  for (const [state, message] of bad) assert.throws(() => a.rtc.restoreState(state), message);
  assert.deepEqual(a.rtc.saveState(), good);
  assert.equal(a.irq.edges, 0);
});
