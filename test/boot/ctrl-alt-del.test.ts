// Ctrl-Alt-Del from the host, the paravirtual way: the guest's virtio_input driver binds the
// virtio keyboard, the kernel's VT keyboard handler turns the chord into ctrl_alt_del(), busybox
// init (which disabled the kernel's own C-A-D reboot) gets SIGINT and runs the inittab's
// ctrlaltdel action, poweroff, and the machine ends with a clean power-off.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildGuestImage } from "../../src/image/index.ts";
import { VirtioKeyboard } from "../../src/virtio/input/index.ts";
import { GuestSession } from "./guest-session.ts";

const BOOT_TIMEOUT_MS = 240_000;

test("Ctrl-Alt-Del on the virtio keyboard powers the guest off gracefully", { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
  const image = await buildGuestImage({ log: (line) => console.log(`image: ${line}`) });
  const keyboard = new VirtioKeyboard();
  const session = new GuestSession(image, { virtio: [keyboard] });
  try {
    await session.shell(BOOT_TIMEOUT_MS);
    const devices = await session.run("cat /proc/bus/input/devices");
    assert.equal(devices.status, 0, devices.text);
    assert.match(devices.text, /^N: Name="Parley keyboard"$/m, "virtio_input registered the keyboard");
    assert.match(devices.text, /^I: Bus=0006 Vendor=5250 Product=0001 Version=0001$/m);
    assert.match(devices.text, /^U: Uniq=parley-kbd0$/m);
    // "kbd" is the VT keyboard handler, the one that turns Ctrl-Alt-Del into ctrl_alt_del().
    assert.match(devices.text, /^H: Handlers=.*\bkbd\b/m);
    const driver = await session.run("ls /sys/bus/virtio/drivers/virtio_input/");
    assert.match(driver.text, /virtio\d+/, "a virtio device is bound to virtio_input");

    const from = session.output.length;
    assert.equal(keyboard.sendCtrlAltDel(), true);
    const exit = await session.finished;
    assert.deepEqual(exit, { reason: "poweroff", code: 0 });
    assert.equal(keyboard.counters.eventsSent, 8);
    assert.equal(keyboard.pendingEvents, 0);
    const shutdown = session.output.slice(from);
    assert.match(shutdown, /The system is going down NOW!/, "busybox init's shutdown");
    // init's later lines ("Requesting system poweroff") may still be in the tty's buffer when the
    // kernel powers off (with several harts they often are), so they are not waited for.
    assert.match(shutdown, /reboot: Power down/);
  } finally {
    session.machine.stop();
    await session.finished;
  }
});
