// Multiprocessor correctness inside the Debian guest: our own pthread programs (guest/smp), built
// with the riscv64 Linux cross compiler and added to the initramfs, run on 2 and 4 harts.
//   smp-counters N ITER  shared counters by amoadd.d, by an lr.d/sc.d loop and under a mutex
//   smp-litmus ITER      message passing (MP) with fence w,w / fence r,r: no forbidden outcome
//   smp-xmodify ROUNDS   code rewritten on one hart, made visible with __riscv_flush_icache
//                        (remote FENCE.I), called on another: always the new code
// Each program checks its own result and exits 0 only when it holds; the test also checks the
// figures it prints.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { buildSmpPrograms, initrdWithPrograms, SMP_PROGRAMS } from "../../src/image/guest-programs.ts";
import { LINUX_TOOLCHAIN, needsHostTools } from "../support/host-tools.ts";
import { GuestSession } from "./guest-session.ts";

const BOOT_TIMEOUT_MS = 240_000;
/** Per program run: generous, as the harts share one host thread today. */
const PROGRAM_TIMEOUT_MS = 600_000;
const MEMORY = 256 << 20;

const COUNTER_ITERATIONS = 1_000_000;
const LITMUS_ITERATIONS = 1_000_000;
const XMODIFY_ROUNDS = 10_000;

const tools = needsHostTools(...LINUX_TOOLCHAIN);

let guest: { image: GuestImage; initrd: Uint8Array } | undefined;
before(async () => {
  if (tools.skip) return;
  tools.check();
  const [image, programs] = await Promise.all([buildGuestImage({ log: (line) => console.log(`image: ${line}`) }), buildSmpPrograms()]);
  const elves = Object.fromEntries(SMP_PROGRAMS.map((name) => [name, new Uint8Array(readFileSync(programs[name]))]));
  guest = { image, initrd: initrdWithPrograms(new Uint8Array(readFileSync(image.initrd)), elves) };
});

async function withGuest(harts: number, body: (session: GuestSession) => Promise<void>, hostThreads?: number): Promise<void> {
  tools.check();
  const session = new GuestSession(guest!.image, { harts, hostThreads, memory: MEMORY, initrd: guest!.initrd });
  try {
    await session.shell(BOOT_TIMEOUT_MS);
    assert.equal((await session.run("nproc")).text.trim(), String(harts));
    await body(session);
    session.machine.sendInput(new TextEncoder().encode("poweroff\n"));
    assert.deepEqual(await session.finished, { reason: "poweroff", code: 0 });
  } finally {
    session.machine.stop();
    await session.finished;
  }
}

/** Runs a command, logs how long it took, and returns its output; fails unless it exits 0. */
async function runProgram(session: GuestSession, harts: number, command: string): Promise<string> {
  const started = performance.now();
  const { text, status } = await session.run(command, PROGRAM_TIMEOUT_MS);
  console.log(`${harts} harts: ${command}: ${((performance.now() - started) / 1000).toFixed(1)} s\n${text.trimEnd()}`);
  assert.equal(status, 0, `${command} exited with ${status}:\n${text}`);
  return text;
}

function field(text: string, name: string): number {
  const match = new RegExp(`(?:^|[\\s,])${name}=(-?\\d+)`).exec(text);
  assert.ok(match, `no ${name}= in:\n${text}`);
  return Number(match[1]);
}

function count(text: string, outcome: string): number {
  const match = new RegExp(`^${outcome}: (\\d+)`, "m").exec(text);
  assert.ok(match, `no ${outcome} count in:\n${text}`);
  return Number(match[1]);
}

for (const harts of [2, 4]) {
  test(`smp programs on ${harts} harts: atomic counters, MP litmus, cross-modified code`, { skip: tools.skip, timeout: BOOT_TIMEOUT_MS + 3 * PROGRAM_TIMEOUT_MS }, async () => {
    await withGuest(harts, async (session) => {
      const counters = await runProgram(session, harts, `smp-counters ${harts} ${COUNTER_ITERATIONS}`);
      const expected = harts * COUNTER_ITERATIONS;
      assert.equal(field(counters, "expected"), expected);
      assert.equal(field(counters, "amoadd"), expected, "amoadd.d total");
      assert.equal(field(counters, "lrsc"), expected, "lr.d/sc.d total");
      assert.equal(field(counters, "mutex"), expected, "mutex-protected total");
      assert.equal(field(counters, "cpus_used"), harts, "one thread pinned to each hart");
      assert.match(counters, /smp-counters: PASS/);

      const litmus = await runProgram(session, harts, `smp-litmus ${LITMUS_ITERATIONS}`);
      assert.equal(count(litmus, "flag=1,data=0"), 0, "forbidden MP outcome seen");
      assert.equal(field(litmus, "forbidden"), 0);
      const outcomes = ["flag=0,data=0", "flag=0,data=1", "flag=1,data=1"].reduce((sum, o) => sum + count(litmus, o), 0);
      assert.equal(outcomes, LITMUS_ITERATIONS, "every iteration's outcome counted");
      assert.equal(field(litmus, "writer_cpu"), 0);
      assert.equal(field(litmus, "reader_cpu"), 1);
      assert.match(litmus, /smp-litmus: PASS/);

      const xmodify = await runProgram(session, harts, `smp-xmodify ${XMODIFY_ROUNDS}`);
      assert.equal(field(xmodify, "rounds"), XMODIFY_ROUNDS);
      assert.equal(field(xmodify, "stale_after_publish"), 0, "a call after the flush ran the old code");
      assert.equal(field(xmodify, "wrong_while_waiting"), 0, "a call returned neither the old nor the new constant");
      assert.equal(field(xmodify, "modifier_cpu"), 0);
      assert.equal(field(xmodify, "caller_cpu"), 1);
      assert.match(xmodify, /smp-xmodify: PASS/);

      const dmesg = await session.run("dmesg");
      for (const bad of [/Oops/, /WARNING:/, /BUG:/, /Call Trace/, /rcu_.*stall/]) assert.doesNotMatch(dmesg.text, bad);
    });
  });
}

/** Under overcommit: fewer iterations (each hart gets a share of a host thread). */
const OVERCOMMIT_ITERATIONS = 200_000;

test("8 harts on 2 host threads: Zawrs offered, counters exact under overcommit, steal and waits accounted", { skip: tools.skip, timeout: BOOT_TIMEOUT_MS + 3 * PROGRAM_TIMEOUT_MS }, async () => {
  await withGuest(
    8,
    async (session) => {
      const isa = await session.run("grep -m1 '^isa' /proc/cpuinfo");
      assert.match(isa.text, /_zawrs/, "Zawrs in the ISA line");
      const counters = await runProgram(session, 8, `smp-counters 8 ${OVERCOMMIT_ITERATIONS}`);
      const expected = 8 * OVERCOMMIT_ITERATIONS;
      for (const name of ["amoadd", "lrsc", "mutex"]) assert.equal(field(counters, name), expected, `${name} total`);
      assert.match(counters, /smp-counters: PASS/);
      const perHart = session.machine.ledger().perHart!;
      assert.equal(perHart.length, 8);
      assert.ok(perHart.every((h) => h.instructions > 0 && h.runningNs > 0), "every hart ran");
      assert.ok(perHart.some((h) => h.stealNs > 0), "harts waited for their host thread: steal time");
      assert.ok(perHart.reduce((n, h) => n + h.wrsParks + h.pauseExits, 0) > 0, "spinning harts parked in WRS or left pause loops");
      const dmesg = await session.run("dmesg");
      for (const bad of [/Oops/, /WARNING:/, /BUG:/, /Call Trace/, /rcu_.*stall/]) assert.doesNotMatch(dmesg.text, bad);
    },
    2,
  );
});
