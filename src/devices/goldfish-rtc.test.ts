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
