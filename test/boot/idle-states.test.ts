// CPU idle states in the Debian guest: the device tree describes SBI hart_suspend's two default
// types (src/platform/device-tree.ts, SBI_IDLE_STATES), Linux's own cpuidle-riscv-sbi driver
// registers them next to WFI, and its governor enters them while the guest idles, on two harts
// that each run on a host thread of their own (and, once more, in round robin on one thread). The guest's per-state usage counters and the
// ledger's suspend entries per hart both grow.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { SBI_IDLE_STATES } from "../../src/platform/device-tree.ts";
import { GuestSession } from "./guest-session.ts";

const BOOT_TIMEOUT_MS = 240_000;
const HARTS = 2;

/** `cpuN stateM value` lines for every cpu and state, parsed into value[cpu][state]. */
async function perState(session: GuestSession, file: string): Promise<string[][]> {
  const { text, status } = await session.run(`for f in /sys/devices/system/cpu/cpu[0-9]*/cpuidle/state*/${file}; do c=\${f#*/cpu/cpu}; s=\${f#*/cpuidle/state}; echo "\${c%%/*} \${s%%/*} $(cat $f)"; done`);
  assert.equal(status, 0, text);
  const table: string[][] = [];
  for (const line of text.trim().split("\n")) {
    const match = /^(\d+) (\d+) (.*)$/.exec(line.trim());
    assert.ok(match, `unexpected line ${JSON.stringify(line)} in:\n${text}`);
    (table[Number(match[1])] ??= [])[Number(match[2])] = match[3];
  }
  return table;
}

const usage = async (session: GuestSession) => (await perState(session, "usage")).map((states) => states.map(Number));

let imagePromise: Promise<GuestImage> | undefined;
const image = () => (imagePromise ??= buildGuestImage({ log: (line) => console.log(`image: ${line}`) }));

test(`Linux's cpuidle-riscv-sbi enters the SBI idle states on ${HARTS} harts while the guest idles`, { timeout: BOOT_TIMEOUT_MS + 180_000 }, async () => {
  await idleStatesInGuest({});
});

// The other engine: both harts in round robin on the calling thread.
test(`the same with ${HARTS} harts in round robin on one thread`, { timeout: BOOT_TIMEOUT_MS + 180_000 }, async () => {
  await idleStatesInGuest({ threads: false });
});

async function idleStatesInGuest(opts: { threads?: boolean }): Promise<void> {
  const started = performance.now();
  const session = new GuestSession(await image(), { harts: HARTS, memory: 256 << 20, ...opts });
  try {
    await session.shell(BOOT_TIMEOUT_MS);
    console.log(`shell after ${((performance.now() - started) / 1000).toFixed(1)} s`);
    assert.equal((await session.run("cat /sys/devices/system/cpu/cpuidle/current_driver")).text.trim(), "sbi_cpuidle");
    const dmesg = (await session.run("dmesg | grep -i cpuidle")).text;
    console.log(dmesg.trimEnd());
    assert.match(dmesg, /cpuidle-riscv-sbi: idle driver registered for all CPUs/);

    // State 0 is the driver's own WFI; the others are the device tree's nodes, by node name.
    const names = await perState(session, "name");
    const descs = await perState(session, "desc");
    console.log(`state names: ${JSON.stringify(names)}; descriptions: ${JSON.stringify(descs)}`);
    const expected = ["WFI", ...SBI_IDLE_STATES.map((state) => state.name)];
    assert.equal(names.length, HARTS);
    for (const cpuNames of names) assert.deepEqual(cpuNames, expected);
    for (const cpuDescs of descs) assert.deepEqual(cpuDescs, ["RISC-V WFI", ...SBI_IDLE_STATES.map((state) => state.description)]);
    const latency = await perState(session, "latency");
    assert.deepEqual(latency[0], ["1", ...SBI_IDLE_STATES.map((state) => String(state.entryLatencyUs + state.exitLatencyUs))]);

    const ledgerSuspends = () => session.machine.ledger().perHart!.map((hart) => hart.suspends);
    const ledgerBefore = ledgerSuspends();
    const before = await usage(session);
    // Idle, with short naps in between so that both the shallow and the deep state are picked.
    await session.run("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.01; done; sleep 3");
    const after = await usage(session);
    const ledgerAfter = ledgerSuspends();
    console.log(`usage before ${JSON.stringify(before)}, after ${JSON.stringify(after)}; ledger suspends before ${JSON.stringify(ledgerBefore)}, after ${JSON.stringify(ledgerAfter)}`);
    for (let cpu = 0; cpu < HARTS; cpu++) {
      const sbiStates = (states: number[]) => states.slice(1).reduce((sum, n) => sum + n, 0);
      assert.ok(sbiStates(after[cpu]) > sbiStates(before[cpu]), `cpu${cpu}: SBI idle states entered while idle`);
      assert.ok(ledgerAfter[cpu] > ledgerBefore[cpu], `hart ${cpu}: the ledger counts its suspends`);
    }
    // Over the whole run, each SBI state was used somewhere (the governor picks by expected idle time).
    for (let state = 1; state <= SBI_IDLE_STATES.length; state++) {
      assert.ok(after.some((states) => states[state] > 0), `${expected[state]} was entered`);
    }
    // Every suspend the guest counts is one the hypervisor served (and the hypervisor also serves
    // suspends Linux does not count, e.g. while the counters are read).
    const guestTotal = after.reduce((sum, states) => sum + states.slice(1).reduce((a, b) => a + b, 0), 0);
    const ledgerTotal = ledgerAfter.reduce((a, b) => a + b, 0);
    assert.ok(ledgerTotal >= guestTotal, `ledger ${ledgerTotal} >= guest ${guestTotal}`);

    const bad = (await session.run("dmesg")).text;
    for (const pattern of [/Oops/, /WARNING:/, /BUG:/, /Call Trace/, /rcu_.*stall/]) assert.doesNotMatch(bad, pattern);
    session.machine.sendInput(new TextEncoder().encode("poweroff\n"));
    assert.deepEqual(await session.finished, { reason: "poweroff", code: 0 });
    console.log(`done after ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    session.machine.stop();
    await session.finished;
  }
}
