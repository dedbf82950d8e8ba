// Several harts (2, 4 and 8): Debian's kernel brings them all up through SBI HSM (paravirtual
// boot) or OpenSBI's own HSM (firmware boot), sees them in nproc and /proc/cpuinfo, and takes a
// hart offline and back (CPU hotplug: SBI hart_stop, then hart_start) with nproc following.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { GuestSession } from "./guest-session.ts";

const BOOT_TIMEOUT_MS = 240_000;

let imagePromise: Promise<GuestImage> | undefined;
const image = () => (imagePromise ??= buildGuestImage({ log: (line) => console.log(`image: ${line}`) }));

async function withGuest(opts: { harts: number; firmware?: boolean }, body: (session: GuestSession) => Promise<void>): Promise<void> {
  const session = new GuestSession(await image(), { ...opts, memory: 256 << 20 });
  try {
    await session.shell(BOOT_TIMEOUT_MS);
    await body(session);
    session.machine.sendInput(new TextEncoder().encode("poweroff\n"));
    assert.deepEqual(await session.finished, { reason: "poweroff", code: 0 });
  } finally {
    session.machine.stop();
    await session.finished;
  }
}

async function checkHarts(session: GuestSession, harts: number): Promise<void> {
  assert.equal((await session.run("nproc")).text.trim(), String(harts));
  assert.equal((await session.run("grep -c ^processor /proc/cpuinfo")).text.trim(), String(harts));
  const dmesg = await session.run("dmesg");
  assert.match(dmesg.text, new RegExp(`smp: Brought up 1 node, ${harts} CPUs`));
  for (const bad of [/Oops/, /WARNING:/, /BUG:/, /Call Trace/, /rcu_.*stall/]) assert.doesNotMatch(dmesg.text, bad);
}

test("boots with 2 harts; hart 1 goes offline and back (HSM stop/start)", { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
  await withGuest({ harts: 2 }, async (session) => {
    await checkHarts(session, 2);
    assert.equal((await session.run("echo 0 > /sys/devices/system/cpu/cpu1/online")).status, 0);
    assert.equal((await session.run("nproc")).text.trim(), "1");
    assert.equal((await session.run("cat /sys/devices/system/cpu/online")).text.trim(), "0");
    assert.equal((await session.run("echo 1 > /sys/devices/system/cpu/cpu1/online")).status, 0);
    assert.equal((await session.run("nproc")).text.trim(), "2");
    const ledger = session.machine.ledger();
    assert.equal(ledger.perHart?.length, 2);
    assert.equal(ledger.sbi.byFunction["HSM.hart_start"], 2, "boot and hotplug each started hart 1");
    assert.equal(ledger.sbi.byFunction["HSM.hart_stop"], 1);
    assert.ok(ledger.perHart!.every((hart) => hart.sbiCalls > 0 && hart.ipisReceived > 0 && hart.instructions > 0));
    assert.equal(ledger.instructions, ledger.perHart!.reduce((sum, hart) => sum + hart.instructions, 0));
  });
});

test("boots with 4 harts", { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
  await withGuest({ harts: 4 }, async (session) => {
    await checkHarts(session, 4);
    // Work on every hart at once: the scheduler must share the thread and IPIs must land.
    const parallel = await session.run("for i in 1 2 3 4; do (i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done) & done; wait; echo done");
    assert.equal(parallel.text.trim(), "done");
  });
});

test("boots with 8 harts", { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
  await withGuest({ harts: 8 }, async (session) => {
    await checkHarts(session, 8);
    const ledger = session.machine.ledger();
    assert.equal(ledger.perHart?.length, 8);
    assert.equal(ledger.sbi.byFunction["HSM.hart_start"], 7, "boot started each secondary hart once");
    assert.ok(ledger.perHart!.every((hart) => hart.instructions > 0), "every hart ran");
  });
});

test("boots with 2 harts through OpenSBI (firmware boot)", { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
  await withGuest({ harts: 2, firmware: true }, async (session) => {
    assert.match(session.output, /Platform HART Count\s*: 2/);
    await checkHarts(session, 2);
  });
});
