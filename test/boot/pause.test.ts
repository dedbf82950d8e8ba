// Pausing a running Debian guest (VirtMachine.pause/resume, PATCH /vm): the harts stop, guest
// time stops with them (no jump by the pause's length in CLOCK_MONOTONIC), the pause is not
// steal time, and the guest goes on afterwards, busy harts included — on one hart and on four
// harts on threads of their own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { GuestSession } from "./guest-session.ts";

const BOOT_TIMEOUT_MS = 240_000;
const PAUSE_MS = 3000;

let imagePromise: Promise<GuestImage> | undefined;
const image = () => (imagePromise ??= buildGuestImage({ log: (line) => console.log(`image: ${line}`) }));

/** Guest uptime (CLOCK_BOOTTIME) in seconds, and the total steal time in USER_HZ ticks from /proc/stat. */
async function clocks(session: GuestSession): Promise<{ uptime: number; steal: number }> {
  const out = await session.run("cut -d' ' -f1 /proc/uptime; head -1 /proc/stat");
  const [uptimeLine, statLine] = out.text.trim().split("\n");
  const fields = statLine.trim().split(/\s+/);
  assert.equal(fields[0], "cpu", statLine);
  return { uptime: Number(uptimeLine), steal: Number(fields[8]) };
}

async function pauseCheck(harts: number): Promise<void> {
  const session = new GuestSession(await image(), { harts, memory: 256 << 20 });
  try {
    await session.shell(BOOT_TIMEOUT_MS);
    // Busy harts must stop too: a shell loop on every hart keeps them running through the pause.
    await session.run(`for i in $(seq ${harts}); do (while :; do :; done) & done`);
    const before = await clocks(session);
    const hostBefore = performance.now();
    await session.machine.pause();
    assert.equal(session.machine.paused, true);
    const instructionsPaused = session.machine.ledger().instructions;
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    assert.equal(session.machine.ledger().instructions, instructionsPaused, "no hart ran while paused");
    await session.machine.resume();
    assert.equal(session.machine.paused, false);
    const after = await clocks(session);
    const hostElapsedS = (performance.now() - hostBefore) / 1000;
    const guestElapsedS = after.uptime - before.uptime;
    console.log(`${harts} hart(s): host ${hostElapsedS.toFixed(2)} s, guest ${guestElapsedS.toFixed(2)} s, steal +${after.steal - before.steal} ticks`);
    assert.ok(guestElapsedS >= 0, `guest time went backwards: ${guestElapsedS} s`);
    assert.ok(guestElapsedS < hostElapsedS - (PAUSE_MS / 1000) * 0.8, `guest time ran on through the pause: guest ${guestElapsedS} s of host ${hostElapsedS} s`);
    // USER_HZ is 100: the pause (3 s on each of the harts) would be hundreds of ticks of steal.
    assert.ok(after.steal - before.steal < 50 * harts, `the pause was counted as steal: +${after.steal - before.steal} ticks`);
    assert.equal(session.machine.ledger().lifecycle?.pauses, 1);
    // The guest carries on: kill the spinners, run a command, and power off cleanly.
    assert.equal((await session.run("kill $(jobs -p); wait; echo ok")).text.trim().split("\n").pop(), "ok");
    session.machine.sendInput(new TextEncoder().encode("poweroff\n"));
    assert.deepEqual(await session.finished, { reason: "poweroff", code: 0 });
  } finally {
    session.machine.stop();
    await session.finished;
  }
}

test("pause and resume on one hart: guest time stops, no steal", { timeout: BOOT_TIMEOUT_MS + 120_000 }, () => pauseCheck(1));

test("pause and resume with 4 harts on threads: busy harts stop, guest time stops, no steal", { timeout: BOOT_TIMEOUT_MS + 120_000 }, () => pauseCheck(4));
