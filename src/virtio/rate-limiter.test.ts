import { test } from "node:test";
import assert from "node:assert/strict";
import { RateLimiter, TokenBucket, checkRateLimiterConfig } from "./rate-limiter.ts";
import { FakeClock } from "../testing/fakes.ts";
import { SnapshotError } from "../platform/persist.ts";

test("TokenBucket: starts full, refills size tokens per refill_time, spends the one-time burst first", () => {
  const clock = new FakeClock();
  const b = new TokenBucket({ size: 1000, one_time_burst: 500, refill_time: 100 }, () => clock.now());
  assert.equal(b.available(), 1500);
  b.take(1200);
  assert.equal(b.available(), 300, "burst gone, bucket down by 700");
  assert.equal(b.canTake(301), false);
  assert.equal(b.msUntil(1000), 70, "700 tokens at 10 per ms");
  clock.advance(70);
  assert.equal(b.available(), 1000);
  clock.advance(1000);
  assert.equal(b.available(), 1000, "never above size once the burst is spent");
});

test("TokenBucket: a request larger than the bucket goes through once it is full, leaving debt", () => {
  const clock = new FakeClock();
  const b = new TokenBucket({ size: 100, refill_time: 100 }, () => clock.now());
  assert.equal(b.canTake(250), true);
  b.take(250);
  assert.equal(b.available(), 0);
  assert.equal(b.canTake(1), false);
  clock.advance(150);
  assert.equal(b.canTake(1), false, "150 tokens of debt repaid first");
  clock.advance(1);
  assert.equal(b.canTake(1), true);
  assert.equal(b.msUntil(250), 99, "the next over-size request waits for a full bucket");
});

test("RateLimiter: both buckets must allow; a refusal takes nothing and counts", () => {
  const clock = new FakeClock();
  const r = new RateLimiter(clock, { bandwidth: { size: 4096, refill_time: 1000 }, ops: { size: 2, refill_time: 1000 } });
  assert.equal(r.tryConsume(1024), true);
  assert.equal(r.tryConsume(1024), true);
  assert.equal(r.tryConsume(1), false, "ops exhausted");
  assert.equal(r.availableBytes(), 2048, "the refusal took no bandwidth");
  assert.equal(r.counters.throttled, 1);
  assert.equal(r.msUntil(1), 500);
  assert.equal(new RateLimiter(clock).tryConsume(1 << 30), true, "no buckets: no limit");
  assert.equal(new RateLimiter(clock, { bandwidth: { size: 0, refill_time: 10 } }).active, false, "size 0 does not limit");
});

test("RateLimiter: one retry timer at a time, cancelled by cancel(), fires when tokens are back", () => {
  const clock = new FakeClock();
  const r = new RateLimiter(clock, { ops: { size: 1, refill_time: 100 } });
  assert.equal(r.tryConsume(0), true);
  let fired = 0;
  r.retryWhenReady(0, 1, () => fired++);
  r.retryWhenReady(0, 1, () => fired++);
  assert.equal(clock.pending, 1);
  assert.equal(r.counters.timers, 1);
  clock.advance(99);
  assert.equal(fired, 0);
  clock.advance(1);
  assert.equal(fired, 1);
  assert.equal(r.tryConsume(0), true);
  r.retryWhenReady(0, 1, () => fired++);
  r.cancel();
  clock.advance(1000);
  assert.equal(fired, 1);
  assert.equal(clock.pending, 0);
});

test("RateLimiter.update: a bucket not given stays, one given replaces it, 0 removes it; a waiting retry runs at once", () => {
  const clock = new FakeClock();
  const r = new RateLimiter(clock, { bandwidth: { size: 100, refill_time: 1000 }, ops: { size: 10, refill_time: 1000 } });
  r.tryConsume(100, 1);
  let fired = 0;
  assert.equal(r.tryConsume(50, 1), false);
  r.retryWhenReady(50, 1, () => fired++);
  r.update({ ops: { size: 5, refill_time: 10 } });
  assert.deepEqual(r.config, { bandwidth: { size: 100, refill_time: 1000 }, ops: { size: 5, refill_time: 10 } });
  clock.advance(0);
  assert.equal(fired, 1, "retried under the new limits");
  assert.equal(r.tryConsume(50, 1), false, "bandwidth kept its state");
  r.update({ bandwidth: { size: 0, refill_time: 0 } });
  assert.equal(r.tryConsume(50, 1), true);
  assert.deepEqual(r.config, { ops: { size: 5, refill_time: 10 } });
  assert.throws(() => r.update({ ops: { size: -1, refill_time: 10 } }), /ops\.size/);
  assert.throws(() => checkRateLimiterConfig({ bandwidth: { size: 1, refill_time: Number.NaN } }), /bandwidth\.refill_time/);
  assert.deepEqual(r.config, { ops: { size: 5, refill_time: 10 } }, "a refused update changes nothing");
});

test("RateLimiter state: round trip, and bad input refused without change", () => {
  const clock = new FakeClock();
  const r = new RateLimiter(clock, { bandwidth: { size: 1000, one_time_burst: 10, refill_time: 100 } });
  r.tryConsume(600);
  r.tryConsume(600);
  const saved = JSON.parse(JSON.stringify(r.saveState()));
  const fresh = new RateLimiter(clock, { bandwidth: { size: 1000, one_time_burst: 10, refill_time: 100 } });
  fresh.prepareRestore(saved, "lim")();
  assert.deepEqual(fresh.saveState(), saved);
  assert.equal(fresh.tryConsume(411), false);
  assert.equal(fresh.tryConsume(410), true);
  const before = fresh.saveState();
  for (const spoil of [
    (s: any) => (s.version = 9),
    (s: any) => (s.bandwidth = null),
    (s: any) => (s.ops = { budget: 1, oneTimeBurst: 0 }),
    (s: any) => (s.bandwidth.budget = "x"),
    (s: any) => (s.bandwidth.oneTimeBurst = -1),
    (s: any) => (s.config.bandwidth.size = -5),
    (s: any) => delete s.counters.throttled,
  ]) {
    const s = structuredClone(saved);
    spoil(s);
    assert.throws(() => fresh.prepareRestore(s, "lim"), SnapshotError);
    assert.deepEqual(fresh.saveState(), before);
  }
});
