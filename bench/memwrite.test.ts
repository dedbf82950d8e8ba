// The memory-writing workload's output as the lifecycle benchmark reads it: heartbeats amid
// console noise, lines cut short, the achieved rate, and whether it went on after a migration.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_MEMWRITE, memwriteCommand, memwriteContinuation, memwriteTargetMiBs, parseMemwriteBeats, steadyRateMiBs } from "./memwrite.ts";

// The source's console: the shell's echo of the command line, the start line, heartbeats in CRLF,
// and a prompt redrawn in the middle (the shell answering Enter while the workload prints).
const SOURCE = [
  "root@parley:/# echo LCabcS; memwrite 64 40 250 & true; printf '\\nLCabcE%d\\n' $?",
  "memwrite start mib=64 pages_per_ms=40 heartbeat_ms=250",
  "memwrite beat=1 t_ms=251 pages=10040 mib_s=152.6 errors=0",
  "memwrite beat=2 t_ms=502 pages=20080 mib_s=156.2 errors=0",
  "root@parley:/# memwrite beat=3 t_ms=752 pages=30080 mib_s=156.2 errors=0",
  "memwrite beat=4 t_ms=1003 pages=40120 mib_s=150.0 errors=0",
  "memwrite beat=5 t_ms=12",
].join("\r\n");

// The destination's console after the move: the rest of the cut line first.
const DESTINATION = "53 pages=50120 mib_s=155.0 errors=0\r\nmemwrite beat=6 t_ms=1504 pages=60160 mib_s=156.9 errors=0\r\nmemwrite beat=7 t_ms=1755 pages=70200 mib_s=156.2 errors=0\r\n";

test("memwrite: the command line and the rate it asks for", () => {
  assert.equal(memwriteCommand(DEFAULT_MEMWRITE), "memwrite 64 40 250 > /tmp/memwrite.log &");
  assert.equal(memwriteTargetMiBs({ mib: 64, pagesPerMs: 40, heartbeatMs: 250 }), 156.25);
});

test("memwrite: heartbeats amid console noise; a line cut short is left out", () => {
  const beats = parseMemwriteBeats(SOURCE);
  assert.deepEqual(beats.map((b) => b.beat), [1, 2, 3, 4]);
  assert.deepEqual(beats[2], { beat: 3, tMs: 752, pages: 30080, mibS: 156.2, errors: 0 });
  assert.deepEqual(parseMemwriteBeats("memwrite beat=9 t_ms=1 pages=2 mib_s=x errors=0\n"), [], "a field that is not a number");
  assert.deepEqual(parseMemwriteBeats("memwrite beat=9 t_ms=1 pages=2 errors=0\n"), [], "a missing field");
});

test("memwrite: the steady rate leaves out the first heartbeat", () => {
  const beats = parseMemwriteBeats(SOURCE);
  assert.equal(steadyRateMiBs(beats), 156.2);
  assert.equal(steadyRateMiBs(beats.slice(0, 1)), 152.6);
  assert.ok(Number.isNaN(steadyRateMiBs([])));
});

test("memwrite: continuation after a migration", () => {
  assert.deepEqual(memwriteContinuation(SOURCE, DESTINATION), { continued: true, lastBeforeBeat: 4, firstAfterBeat: 6, errorsAfter: 0 });
  // Nothing new at the destination: the workload did not go on.
  assert.equal(memwriteContinuation(SOURCE, "root@parley:/# ").continued, false);
  // Stale pages found after the move are reported.
  const stale = memwriteContinuation(SOURCE, "memwrite beat=5 t_ms=1253 pages=50120 mib_s=155.0 errors=17\n");
  assert.deepEqual(stale, { continued: true, lastBeforeBeat: 4, firstAfterBeat: 5, errorsAfter: 17 });
  // A source that never printed a heartbeat cannot be continued.
  assert.equal(memwriteContinuation("", DESTINATION).continued, false);
});
