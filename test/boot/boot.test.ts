// Boots Debian's stock riscv64 kernel on both boot paths and checks the running system from its
// own shell: kernel version, ISA, the RTC's time, a clean kernel log, and a clean power-off.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildGuestImage, type GuestImage } from "../../src/image/index.ts";
import { GuestSession } from "./guest-session.ts";

const BOOT_TIMEOUT_MS = 240_000;
const PROMPT = /root@parley:[^\n]*# /;

let imagePromise: Promise<GuestImage> | undefined;
const image = () => (imagePromise ??= buildGuestImage({ log: (line) => console.log(`image: ${line}`) }));

// Both boot paths with the translator (the default), and the paravirtual one on the interpreter
// alone: the reference the translator is checked against.
const BOOTS = [
  ["paravirtual", "on"],
  ["firmware", "on"],
  ["paravirtual", "off"],
] as const;

for (const [path, jit] of BOOTS) {
  test(`boots Debian's kernel to a shell (${path} boot, translator ${jit})`, { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
    const img = await image();
    const session = new GuestSession(img, { firmware: path === "firmware", jit });
    try {
      await session.waitFor(PROMPT, BOOT_TIMEOUT_MS);
      if (path === "firmware") assert.match(session.output, /OpenSBI v\d+\.\d+/, "OpenSBI banner on the firmware path");
      else assert.doesNotMatch(session.output, /OpenSBI/, "no firmware on the paravirtual path");

      const uname = await session.run("uname -r");
      assert.equal(uname.text.trim(), img.kernelVersion);

      const cpuinfo = await session.run("cat /proc/cpuinfo");
      assert.match(cpuinfo.text, /isa\s*:\s*rv64imafdc\w*_zicsr_zifencei/);
      assert.match(cpuinfo.text, /mmu\s*:\s*sv57/);

      // clock_gettime goes through the vDSO, which reads the time CSR from U-mode.
      const timed = await session.run("busybox time -p true 2>&1");
      assert.equal(timed.status, 0, timed.text);
      assert.match(timed.text, /^real \d+\.\d+/m);

      const date = await session.run("date +%s");
      const guestSeconds = Number(date.text.trim());
      assert.ok(Math.abs(guestSeconds - Date.now() / 1000) < 120, `guest time ${guestSeconds} is host time (via the goldfish RTC)`);

      const dmesg = await session.run("dmesg");
      for (const bad of [/Oops/, /WARNING:/, /BUG:/, /Call Trace/, /Unable to handle/, /Initramfs unpacking failed/]) {
        assert.doesNotMatch(dmesg.text, bad, `kernel log contains ${bad}`);
      }
      assert.match(dmesg.text, /Machine model: Parley RISC-V virt|riscv/);
      assert.match(dmesg.text, /10000000\.serial: ttyS0 at MMIO 0x10000000 \(irq = \d+, base_baud = \d+\) is a 16550A/);
      assert.match(dmesg.text, /goldfish_rtc 101000\.rtc: registered as rtc0/);

      session.machine.sendInput(new TextEncoder().encode("poweroff\n"));
      const exit = await session.finished;
      assert.deepEqual(exit, { reason: "poweroff", code: 0 });
    } finally {
      session.machine.stop();
      await session.finished;
    }
  });
}
