// The `parley run` command as a user meets it: piped commands, end of input, power-off and
// panic exit codes, and option errors that say what to fix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runParley } from "../support/parley-cli.ts";
import { buildGuestImage } from "../../src/image/index.ts";

function parley(args: string[], input?: string, timeoutMs = 300_000) {
  return runParley(args, { input, timeoutMs });
}

test("piped commands run, end of input does not stop the guest, poweroff exits 0", { timeout: 360_000 }, async () => {
  await buildGuestImage();
  const run = await parley(["run"], "echo piped-$((6*7))\nsleep 1; echo after-eof\npoweroff\n");
  assert.match(run.stdout, /piped-42/);
  assert.match(run.stdout, /after-eof/);
  assert.match(run.stdout, /reboot: Power down/);
  assert.equal(run.code, 0, run.stderr);
});

test("a kernel panic ends parley with a non-zero code and the panic visible", { timeout: 360_000 }, async () => {
  await buildGuestImage();
  // init that exits at once: the kernel panics with "Attempted to kill init!".
  const run = await parley(["run", "--append", "console=ttyS0 rdinit=/bin/false"], "");
  assert.match(run.stdout, /Kernel panic - not syncing: Attempted to kill init!/);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /guest kernel panicked/);
});

test("option errors say what to fix and exit with 2", async () => {
  const cases: [string[], RegExp][] = [
    [["run", "--memory", "lots"], /--memory: "lots" is not a size/],
    [["run", "--kernel", "/nonexistent/Image"], /--kernel \/nonexistent\/Image: no such file/],
    [["run", "--console", "vga"], /--console vga: use uart or hvc/],
    [["run", "--sstc", "maybe"], /--sstc maybe: use on or off/],
    [["run", "--bogus"], /unknown option '--bogus'/],
    [["run", "--kernel", "/etc/hostname"], /kernel file is \d+ bytes, too small|no RISC-V Image header/],
    [["run-elf", "/etc/passwd"], /not an ELF file/],
    [["run", "--disk", "path=/nonexistent/disk.img"], /drives\[0\]\.path_on_host: \/nonexistent\/disk.img: .*(no such|does not exist|not found)/i],
    [["run", "--disk", "readonly=on"], /--disk readonly=on: path: is required/],
    [["run", "--net", "socket=serve:/tmp/x"], /--net socket=serve:\/tmp\/x: socket: must be listen:PATH or connect:PATH/],
    [["run", "--vsock", "cid=1,uds=/tmp/v"], /--vsock cid=1,uds=\/tmp\/v: cid: must be between 3/],
    [["run", "--rng", "rate=fast"], /--rng rate=fast: rate: must be a whole number/],
    [["run", "--balloon", "target=lots"], /--balloon target=lots: target: must be a size/],
    [["run", "--cpus", "0"], /--cpus: "0" is not a number of harts \(1-32\)/],
    [["run", "--cpus", "33"], /--cpus: "33" is not a number of harts \(1-32\)/],
    [["start", "--cpus", "two"], /--cpus: "two" is not a number of harts \(1-32\)/],
    [["run", "--cpus", "32", "--memory", "3G"], /--cpus 32 with --memory 3072M: .*do not fit in wasm32's 4 GiB/],
  ];
  for (const [args, message] of cases) {
    const run = await parley(args, "", 30_000);
    assert.equal(run.code, 2, `parley ${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message, `parley ${args.join(" ")}`);
  }
});
