import { test } from "node:test";
import assert from "node:assert/strict";
import { nodeClock } from "./clock.ts";

/** Milliseconds from setTimer(ms) to the timer firing, by performance.now(). */
const wait = (ms: number) =>
  new Promise<number>((resolve) => {
    const t0 = performance.now();
    nodeClock.setTimer(ms, () => resolve(performance.now() - t0));
  });

test("fires no sooner than asked, and well below setTimeout's millisecond for short delays", async () => {
  const short = await wait(0.2);
  assert.ok(short >= 0.2, `fired after ${short} ms`);
  // Generous: a loaded CI host may delay the event loop, but not to setTimeout's 1 ms floor every time.
  const samples = [await wait(0.2), await wait(0.2), await wait(0.2)];
  assert.ok(Math.min(...samples) < 1, `0.2 ms delays took ${samples.map((s) => s.toFixed(3)).join(", ")} ms`);
  const long = await wait(5);
  assert.ok(long >= 5 && long < 50, `5 ms delay took ${long} ms`);
});

test("a cancelled timer never fires", async () => {
  let fired = 0;
  nodeClock.setTimer(0.1, () => fired++)();
  nodeClock.setTimer(4, () => fired++)();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(fired, 0);
});
