// The parsers behind `npm run bench -- guest-cpu` and `-- smp`, on recorded guest output (7-Zip's
// benchmark at one and two threads, the ipiping result line, /proc/PID/stat), and the harness's
// whileRunning hook on a real child. No timing is asserted: only that the numbers are read right.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { readCpio } from "../src/image/cpio.ts";
import { appendToInitrd } from "../src/image/guest-programs.ts";
import { runTimed } from "./harness.ts";
import {
  parse7z, parseIpiping, parseProcStatCpuSeconds, parseSysbench, processCpuSeconds, sevenZipCommand,
} from "./guest-workloads.ts";

// 7z b 1 -mmt2 -md18 in a 2-hart Parley guest (console output, CRLF line ends as the UART delivers them).
const SEVEN_ZIP_MMT2 = [
  "7-Zip 25.01 (riscv64) : Copyright (c) 1999-2025 Igor Pavlov : 2025-08-03",
  " 64-bit locale=C UTF8=- Threads:2 OPEN_MAX:1024",
  "",
  " mt2 d18",
  "Compiler:  ver:14.2.0 GCC 14.2.0",
  "Linux : 6.12.117+deb13-riscv64 : #1 SMP Debian 6.12.117-1 (2026-11-12) : riscv64",
  "PageSize:4KB THP:never hwcap:112D",
  "riscv64",
  "",
  "1T CPU Freq (MHz):  1383  2383  2365  2364  2292  2375  2370",
  "1T CPU Freq (MHz): 100% 2321    99% 2313  ",
  "2T CPU Freq (MHz): 200% 1136   199% 1063  ",
  "",
  "RAM size:     439 MB,  # CPU hardware threads:   2",
  "RAM usage:     14 MB,  # Benchmark threads:      2",
  "",
  "                       Compressing  |                  Decompressing",
  "Dict     Speed Usage    R/U Rating  |      Speed Usage    R/U Rating",
  "         KiB/s     %   MIPS   MIPS  |      KiB/s     %   MIPS   MIPS",
  "",
  "18:       1021   130    700    910  |      11843   200    479    958",
  "----------------------------------  | ------------------------------",
  "Avr:      1021   130    700    910  |      11843   200    479    958",
  "Tot:             165    589    934",
].join("\r\n");

// The table of `7z b 1 -mmt1 -md18` on QEMU -smp 1 (header lines as above), with a kernel message
// the console interleaved, and what the guest printed around the benchmark.
const SEVEN_ZIP_MMT1 = `BENCH-NPROC 1
BENCH-7Z

7-Zip 25.01 (riscv64) : Copyright (c) 1999-2025 Igor Pavlov : 2025-08-03
 64-bit locale=C UTF8=- Threads:1 OPEN_MAX:1024

 mt1 d18
RAM size:     439 MB,  # CPU hardware threads:   1
RAM usage:     14 MB,  # Benchmark threads:      1

                       Compressing  |                  Decompressing
Dict     Speed Usage    R/U Rating  |      Speed Usage    R/U Rating
         KiB/s     %   MIPS   MIPS  |      KiB/s     %   MIPS   MIPS

[   50.349730] hrtimer: interrupt took 24480900 ns
18:       1787   100   1391   1391  |      15373   100   1246   1246
----------------------------------  | ------------------------------
Avr:      1787   100   1391   1391  |      15373   100   1246   1246
Tot:             100   1318   1318
BENCH-DONE
`;

// guest/smp/ipiping.c's result line, amid the guest's other output.
const IPIPING = `BENCH-IPI\r
ipiping n=2000 warmup=200 cpu_a=0 cpu_b=1 min_us=15.0 avg_us=104.9 p50_us=24.2 p99_us=2327.2 max_us=3949.2\r
BENCH-DONE\r
`;

test("7-Zip: the -mmtN command line", () => {
  assert.equal(sevenZipCommand(1), "7z b 1 -mmt1 -md18");
  assert.equal(sevenZipCommand(2), "7z b 1 -mmt2 -md18");
});

test("7-Zip: speeds and total rating of a two-thread run (CRLF output)", () => {
  assert.deepEqual(parse7z(SEVEN_ZIP_MMT2), { compressKiBs: 1021, decompressKiBs: 11843, rating: 934 });
});

test("7-Zip: a single-thread run with a kernel message inside the table", () => {
  assert.deepEqual(parse7z(SEVEN_ZIP_MMT1), { compressKiBs: 1787, decompressKiBs: 15373, rating: 1318 });
});

test("7-Zip: several dictionary sizes are averaged; only the first benchmark is read", () => {
  const two = SEVEN_ZIP_MMT1.replace("18:       1787", "17:       1000   100   1000   1000  |      10000   100   1000   1000\n18:       1787");
  assert.deepEqual(parse7z(two + "\n" + SEVEN_ZIP_MMT2), { compressKiBs: (1000 + 1787) / 2, decompressKiBs: (10000 + 15373) / 2, rating: 1318 });
});

test("7-Zip: an interrupted run (no Tot: line, or no table) parses as nothing", () => {
  assert.equal(parse7z(SEVEN_ZIP_MMT2.slice(0, SEVEN_ZIP_MMT2.indexOf("Tot:"))), undefined);
  assert.equal(parse7z("Tot:             100   1318   1318\n"), undefined);
  assert.equal(parse7z(""), undefined);
});

test("sysbench: events per second", () => {
  assert.equal(parseSysbench("CPU speed:\n    events per second:   413.07\n"), 413.07);
  assert.equal(parseSysbench("sysbench: error"), undefined);
});

test("ipiping: the round-trip statistics", () => {
  assert.deepEqual(parseIpiping(IPIPING), { n: 2000, warmup: 200, minUs: 15, avgUs: 104.9, p50Us: 24.2, p99Us: 2327.2, maxUs: 3949.2 });
});

test("ipiping: a missing field, no round trips or no result line parse as nothing", () => {
  assert.equal(parseIpiping(IPIPING.replace(" p99_us=2327.2", "")), undefined);
  assert.equal(parseIpiping(IPIPING.replace("n=2000", "n=0")), undefined);
  assert.equal(parseIpiping("ipiping: needs two online CPUs, found 1\n"), undefined);
});

test("/proc/PID/stat: utime + stime in seconds, whatever the command name holds", () => {
  // Fields 14 and 15 are 250 and 50 ticks.
  const stat = "4242 (node (a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 941488 3133440 360 18446744073709551615";
  assert.equal(parseProcStatCpuSeconds(stat, 100), 3);
  assert.throws(() => parseProcStatCpuSeconds("4242 (x) S 1", 100));
});

test("an initramfs with an archive appended: 4-byte aligned, the files readable", () => {
  const base = new Uint8Array([1, 2, 3, 4, 5]);
  const data = new TextEncoder().encode("hello");
  const out = appendToInitrd(base, [{ path: "usr/bin/x", type: "file", mode: 0o755, data }]);
  assert.deepEqual([...out.subarray(0, 5)], [1, 2, 3, 4, 5]);
  const entries = readCpio(gunzipSync(out.subarray(8)));
  const x = entries.find((e) => e.path === "usr/bin/x");
  assert.deepEqual(x?.data && [...x.data], [...data]);
});

test("harness: whileRunning runs its task with the child's pid once the marker appears, then stops the child", async () => {
  let cpu = NaN;
  const run = await runTimed("sh", ["-c", "echo ready; exec sleep 60"], {
    markers: { ready: /ready/ },
    timeoutMs: 30_000,
    whileRunning: {
      at: /ready/,
      task: async (pid) => {
        cpu = processCpuSeconds(pid, 100);
      },
    },
  });
  assert.equal(run.stopped, true);
  assert.ok(run.markers.ready !== undefined);
  assert.ok(Number.isFinite(cpu) && cpu >= 0, `cpu ${cpu}`);
});
