// The parsers of the lock-contention comparison (`npm run bench -- pv contention`, bench/pv/contention.ts)
// on recorded output: a 4-hart Parley guest's console (contend pipe and file, sysbench threads, CRLF
// line ends as the UART delivers them), a wrsping result line and a --stats-json ledger's perHart
// entries. No timing is asserted: only that the numbers are read right.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseContend, parseLedgerHarts, parseSysbenchRun, parseWrsPing } from "./pv/contention-parse.ts";
import { contentionWorkload } from "./pv/contention.ts";

// Parley --cpus 4 --host-threads 2 --zawrs on --ple on, the workload of contentionWorkload(5).
const GUEST_OUTPUT = [
  "BENCH-NPROC 4",
  "BENCH-PIPE",
  "contend mode=pipe threads=4 seconds=5.01 ops=9382 ops_per_s=1873.1 avg_us=2134.67 p50_us=303.20 p99_us=24425.20 max_us=249925.20",
  "BENCH-FILE",
  "contend mode=file threads=4 seconds=5.28 ops=32481 ops_per_s=6155.3 avg_us=649.24 p50_us=33.10 p99_us=10911.80 max_us=350939.20",
  "BENCH-SYSBENCH",
  "sysbench 1.0.20 (using system LuaJIT 2.1.1723681758)",
  "",
  "Running the test with following options:",
  "Number of threads: 4",
  "Initializing random number generator from current time",
  "",
  "",
  "Initializing worker threads...",
  "",
  "Threads started!",
  "",
  "",
  "General statistics:",
  "    total time:                          5.0113s",
  "    total number of events:              2162",
  "",
  "Latency (ms):",
  "         min:                                    0.50",
  "         avg:                                    9.20",
  "         max:                                  644.27",
  "         99th percentile:                       86.00",
  "         sum:                                19881.27",
  "",
  "Threads fairness:",
  "    events (avg/stddev):           540.5000/93.69",
  "    execution time (avg/stddev):   4.9703/0.00",
  "",
  "BENCH-DONE",
].join("\r\n");

// wrsping 2000 100 in a 2-hart guest on 2 host threads.
const WRSPING_LINE = "wrsping n=2000 warmup=100 parked=2000 timebase_hz=10000000 min_us=0.70 avg_us=73.24 p50_us=49.30 p99_us=349.70 max_us=8428.90\r";

// Two harts of the same run's --stats-json ledger.
const LEDGER = JSON.stringify({ version: 1, wallSeconds: 31.2, perHart: [{"instructions": 2625085678, "interrupts": 5239, "exceptions": 43292, "sbiCalls": 4034, "ipisReceived": 1597, "remoteFences": 4715, "mmioExits": 1791, "runningNs": 12877470400, "stealNs": 4113234400, "haltedNs": 1680664300, "suspendedNs": 7091996700, "parkedNs": 4693299800, "wrsParks": 20095, "wrsTimeouts": 981, "wrsWaitNs": 4729606200, "pauseExits": 1, "directedYields": 3515, "suspends": 1772}, {"instructions": 2548469029, "interrupts": 4907, "exceptions": 48324, "sbiCalls": 3456, "ipisReceived": 1337, "remoteFences": 4770, "mmioExits": 1172, "runningNs": 11804129200, "stealNs": 4197659800, "haltedNs": 3211557600, "suspendedNs": 6356053700, "parkedNs": 4595689100, "wrsParks": 18896, "wrsTimeouts": 1068, "wrsWaitNs": 4662439100, "pauseExits": 2, "directedYields": 3791, "suspends": 1699}] });

test("contend: the pipe and the file lines, by mode", () => {
  const pipe = parseContend(GUEST_OUTPUT, "pipe");
  assert.deepEqual(pipe, { mode: "pipe", threads: 4, seconds: 5.01, ops: 9382, opsPerS: 1873.1, avgUs: 2134.67, p50Us: 303.2, p99Us: 24425.2, maxUs: 249925.2 });
  const file = parseContend(GUEST_OUTPUT, "file");
  assert.equal(file?.ops, 32481);
  assert.equal(file?.opsPerS, 6155.3);
  assert.equal(file?.p99Us, 10911.8);
  assert.equal(parseContend(GUEST_OUTPUT, "socket"), undefined);
});

test("contend: a missing field or no operations is a failure", () => {
  assert.equal(parseContend("contend mode=pipe threads=4 seconds=5.00 ops=10 ops_per_s=2.0 avg_us=1 p50_us=1 max_us=3", "pipe"), undefined);
  assert.equal(parseContend("contend mode=pipe threads=4 seconds=5.00 ops=0 ops_per_s=0.0 avg_us=0 p50_us=0 p99_us=0 max_us=0", "pipe"), undefined);
  assert.equal(parseContend("", "pipe"), undefined);
});

test("sysbench threads: events per second from total events and time, and the 99th percentile", () => {
  const s = parseSysbenchRun(GUEST_OUTPUT.slice(GUEST_OUTPUT.indexOf("BENCH-SYSBENCH")));
  assert.ok(s);
  assert.equal(s.seconds, 5.0113);
  assert.equal(s.events, 2162);
  assert.ok(Math.abs(s.eventsPerS - 2162 / 5.0113) < 1e-9);
  assert.equal(s.avgMs, 9.2);
  assert.equal(s.percentile, 99);
  assert.equal(s.percentileMs, 86);
  assert.equal(s.maxMs, 644.27);
  assert.equal(parseSysbenchRun("General statistics:\n    total time: 5.0s\n"), undefined);
});

test("wrsping: the result line", () => {
  const w = parseWrsPing(WRSPING_LINE);
  assert.ok(w);
  assert.equal(w.n, 2000);
  assert.equal(w.warmup, 100);
  assert.equal(w.timebaseHz, 10_000_000);
  assert.equal(w.parked, 2000);
  assert.equal(w.p50Us, 49.3);
  assert.equal(w.p99Us, 349.7);
  assert.equal(w.maxUs, 8428.9);
  assert.equal(parseWrsPing("wrsping n=0 warmup=100 parked=0"), undefined);
});

test("ledger: per-hart steal, parks, pause exits and directed yields, in seconds and counts", () => {
  const harts = parseLedgerHarts(LEDGER);
  assert.ok(harts);
  assert.equal(harts.length, 2);
  assert.equal(harts[0].stealS, 4113234400 / 1e9);
  assert.equal(harts[0].wrsParks, 20095);
  assert.equal(harts[0].directedYields, 3515);
  assert.equal(harts[1].pauseExits, 2);
  assert.equal(parseLedgerHarts(JSON.stringify({ version: 1 })), undefined);
});

test("the guest command line quotes no double quote (it sits inside parley_cmd=\"...\")", () => {
  assert.ok(!contentionWorkload(5).includes('"'));
  assert.match(contentionWorkload(5), /contend pipe \$\(nproc\) 5; .*contend file \$\(nproc\) 5; .*sysbench threads .*--time=5 /);
});
