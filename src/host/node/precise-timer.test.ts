import { test } from "node:test";
import assert from "node:assert/strict";
import { preciseTimer } from "./precise-timer.ts";

const wait = (delayUs: number) =>
  new Promise<number>((resolve) => {
    const t0 = performance.now();
    preciseTimer(delayUs, () => resolve((performance.now() - t0) * 1000));
  });

test("fires no sooner than asked, and well below setTimeout's millisecond for short delays", async () => {
  const short = await wait(200);
  assert.ok(short >= 200, `fired after ${short} us`);
  // Generous: a loaded CI host may delay the event loop, but not to setTimeout's 1 ms floor every time.
  const samples = [await wait(200), await wait(200), await wait(200)];
  assert.ok(Math.min(...samples) < 1000, `200 us delays took ${samples.map((s) => s.toFixed(0)).join(", ")} us`);
  const long = await wait(5000);
  assert.ok(long >= 5000 && long < 50_000, `5 ms delay took ${long} us`);
});

test("a cancelled timer never fires", async () => {
  let fired = 0;
  preciseTimer(100, () => fired++)();
  preciseTimer(4000, () => fired++)();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(fired, 0);
});
