import { test } from "node:test";
import assert from "node:assert/strict";
import { webClock, webTimebase, messageChannelTasks, type BrowserTimers } from "./clock.ts";

/** Timers under the test's control: time moves only when the test says so. */
function fakeTimers() {
  let now = 0;
  const timeouts: { at: number; fire: () => void; id: number }[] = [];
  const tasks: (() => void)[] = [];
  let nextId = 1;
  const timers: BrowserTimers = {
    now: () => now,
    setTimeout(fire, ms) {
      const id = nextId++;
      timeouts.push({ at: now + Math.max(4, Math.ceil(ms)), fire, id });
      return id;
    },
    clearTimeout(handle) {
      const i = timeouts.findIndex((t) => t.id === handle);
      if (i >= 0) timeouts.splice(i, 1);
    },
    postTask: (fire) => void tasks.push(fire),
  };
  return {
    timers,
    tasks,
    timeouts,
    /** Advances to `to` ms, running due timeouts and queued tasks (each task once per turn). */
    advance(to: number, step = 0.01) {
      while (now < to) {
        now = Math.min(to, now + step);
        for (const t of timeouts.filter((t) => t.at <= now)) {
          timeouts.splice(timeouts.indexOf(t), 1);
          t.fire();
        }
        for (const task of tasks.splice(0)) task();
      }
    },
  };
}

test("webClock: a sub-millisecond timer fires on time, through tasks rather than a clamped setTimeout", () => {
  const fake = fakeTimers();
  const clock = webClock(fake.timers);
  let firedAt: number | undefined;
  clock.setTimer(0.05, () => (firedAt = fake.timers.now()));
  assert.equal(fake.timeouts.length, 0);
  fake.advance(1);
  assert.ok(firedAt !== undefined && firedAt >= 0.05 && firedAt < 0.07, String(firedAt));
});

test("webClock: a long timer sleeps in setTimeout, then finishes by the clock; never early", () => {
  const fake = fakeTimers();
  const clock = webClock(fake.timers);
  let firedAt: number | undefined;
  clock.setTimer(20.5, () => (firedAt = fake.timers.now()));
  assert.equal(fake.timeouts.length, 1);
  assert.equal(fake.tasks.length, 0);
  fake.advance(30);
  assert.ok(firedAt !== undefined && firedAt >= 20.5 && firedAt < 20.6, String(firedAt));
});

test("webClock: a cancelled timer never fires, in either phase", () => {
  const fake = fakeTimers();
  const clock = webClock(fake.timers);
  let fired = 0;
  clock.setTimer(20, () => fired++)();
  const cancelLater = clock.setTimer(10, () => fired++);
  fake.advance(8);
  cancelLater();
  clock.setTimer(0.5, () => fired++)();
  fake.advance(40);
  assert.equal(fired, 0);
  assert.equal(fake.timeouts.length, 0);
});

test("webClock: yieldToHost resolves on the next task", async () => {
  const fake = fakeTimers();
  const clock = webClock(fake.timers);
  let done = false;
  const yielded = clock.yieldToHost().then(() => (done = true));
  await Promise.resolve();
  assert.equal(done, false);
  fake.advance(0.01);
  await yielded;
  assert.equal(done, true);
});

test("messageChannelTasks: tasks run in order, after the current one", async () => {
  const post = messageChannelTasks();
  const order: number[] = [];
  // The channel's ports do not keep Node's event loop alive (unref'd, as a machine that ended must
  // not hold its process open); a timer does, for as long as the test waits on them.
  const keepAlive = setTimeout(() => {}, 10_000);
  try {
    await new Promise<void>((resolve) => {
      post(() => order.push(1));
      post(() => order.push(2));
      post(() => resolve());
      order.push(0);
    });
  } finally {
    clearTimeout(keepAlive);
  }
  assert.deepEqual(order, [0, 1, 2]);
});

test("webTimebase: 10 MHz ticks since the origin, the same for every reader of one absolute clock", () => {
  let ms = 1_700_000_000_000;
  const origin = ms;
  const a = webTimebase(origin, () => ms);
  const b = webTimebase(origin, () => ms);
  assert.equal(a(), 0);
  ms += 1.5;
  assert.equal(a(), 15_000);
  assert.equal(b(), a());
});
