// The VM generation ID in the Debian guest: Linux's vmgenid driver (drivers/virt/vmgenid.c, built
// in on Debian's kernel) binds to the device tree's "microsoft,vmgenid" node, and when the host
// takes a new ID (machine.vmgenid.regenerate(), what a restored or cloned machine does) the
// driver's interrupt handler runs, sees the ID changed and reseeds the kernel RNG
// (add_vmfork_randomness, which says so in the kernel log once the RNG is initialized). The
// driver of this kernel sends no uevent (its DT support came after the uevent was dropped).
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildGuestImage } from "../../src/image/index.ts";
import { GuestSession } from "./guest-session.ts";
import { VMGENID_BASE } from "../../src/platform/memory-map.ts";

const BOOT_TIMEOUT_MS = 240_000;

/** The vmgenid line's count in /proc/interrupts (summed over CPUs), or undefined without one. */
function vmgenidInterrupts(procInterrupts: string): number | undefined {
  const line = procInterrupts.split("\n").find((l) => /\bvmgenid\b/.test(l));
  if (line === undefined) return undefined;
  // "IRQ:  <count per CPU>...  <chip>  <hwirq>  <type>  vmgenid": the per-CPU columns come first.
  const fields = line.trim().split(/\s+/).slice(1);
  const perCpu = fields.slice(0, fields.findIndex((field) => !/^\d+$/.test(field)));
  return perCpu.reduce((sum, n) => sum + Number(n), 0);
}

test("Linux's vmgenid driver binds and reacts to a new generation ID", { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
  const image = await buildGuestImage({ log: (line) => console.log(`image: ${line}`) });
  const session = new GuestSession(image, { memory: 256 << 20 });
  try {
    await session.shell(BOOT_TIMEOUT_MS);
    const device = `${VMGENID_BASE.toString(16)}.rng`;
    const bound = await session.run("ls /sys/bus/platform/drivers/vmgenid/");
    assert.equal(bound.status, 0, bound.text);
    assert.match(bound.text, new RegExp(`\\b${device}\\b`), "the driver is bound to the device-tree node");
    const reads = session.machine.vmgenid.counters.reads;
    assert.ok(reads > 0, "the driver read the ID at probe");

    const interruptsText = (await session.run("cat /proc/interrupts")).text;
    console.log(interruptsText.split("\n").find((l) => l.includes("vmgenid")));
    const interruptsBefore = vmgenidInterrupts(interruptsText);
    assert.equal(interruptsBefore, 0, "the driver requested its interrupt, which has not fired yet");
    // The reseed (and its log line) happens only once the RNG is initialized: wait for that.
    const ready = await session.run("head -c 1 /dev/random > /dev/null && dmesg | grep -c 'crng init done'");
    assert.equal(ready.status, 0, ready.text);
    assert.equal((await session.run("dmesg | grep -c 'virtual machine fork'")).text.trim(), "0");

    session.machine.vmgenid.regenerate();
    // The interrupt is taken as soon as the hart runs; give the shell a moment anyway.
    await session.run("sleep 0.2");
    const interruptsAfter = vmgenidInterrupts((await session.run("cat /proc/interrupts")).text);
    assert.equal(interruptsAfter, 1, "one interrupt for one new ID");
    assert.ok(session.machine.vmgenid.counters.reads > reads, "the handler read the new ID");
    const reseeded = (await session.run("dmesg | grep 'virtual machine fork'")).text;
    console.log(reseeded.trim());
    assert.match(reseeded, /crng reseeded due to virtual machine fork/, "the driver saw a new ID and reseeded the RNG");
    assert.equal(reseeded.trim().split("\n").length, 1, "once");

    const bad = (await session.run("dmesg")).text;
    for (const pattern of [/Oops/, /WARNING:/, /BUG:/, /Call Trace/, /vmgenid.*(fail|error)/i]) assert.doesNotMatch(bad, pattern);
    session.machine.sendInput(new TextEncoder().encode("poweroff\n"));
    assert.deepEqual(await session.finished, { reason: "poweroff", code: 0 });
  } finally {
    session.machine.stop();
    await session.finished;
  }
});
