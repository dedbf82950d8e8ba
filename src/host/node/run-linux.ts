// Boots Linux on the virt machine from Node: finds or builds the guest image, attaches the
// console to the terminal, and turns the machine's end into a process exit code.
import { existsSync, readFileSync } from "node:fs";
import { VirtMachine, type MachineExit } from "../../machine/virt.ts";
import { loadCoreModule } from "./core-module.ts";
import { attachConsole } from "./console.ts";
import { buildGuestImage, cachedGuestImage, type GuestImage } from "./image/index.ts";
import { UsageError } from "../../cli/options.ts";
import { formatMachineStats } from "../../cli/stats.ts";

export const DEFAULT_MEMORY = 512 << 20;
export const DEFAULT_APPEND = "console=ttyS0 earlycon=sbi";

export interface RunLinuxOptions {
  memory: number;
  kernel?: string;
  initrd?: string;
  append?: string;
  /** "none": the hypervisor is the SBI implementation; "opensbi": Debian's OpenSBI; or a fw_dynamic binary path. */
  firmware: string;
  console: "uart" | "hvc";
  sstc: boolean;
  stats: boolean;
  reboot: boolean;
}

function readInput(path: string, what: string): Uint8Array {
  if (!existsSync(path)) throw new UsageError(`${what} ${path}: no such file`);
  return new Uint8Array(readFileSync(path));
}

async function guestImage(): Promise<GuestImage> {
  const cached = await cachedGuestImage();
  if (cached) return cached;
  process.stderr.write("parley: no guest image in the cache yet; building it from Debian's trixie riscv64 archive\n");
  return buildGuestImage({ progress: true });
}

/** Runs until the guest powers off (or the user quits); returns the exit code for the process. */
export async function runLinux(options: RunLinuxOptions): Promise<number> {
  if (options.console === "hvc") {
    throw new UsageError("--console hvc needs the virtio-console device, which this build does not have yet; use --console uart");
  }
  let kernel: Uint8Array;
  let initrd: Uint8Array | undefined;
  let firmware: Uint8Array | undefined;
  const needsImage = options.kernel === undefined || options.firmware === "opensbi";
  const image = needsImage ? await guestImage() : undefined;
  if (options.kernel !== undefined) {
    kernel = readInput(options.kernel, "--kernel");
    initrd = options.initrd === undefined ? undefined : readInput(options.initrd, "--initrd");
  } else {
    kernel = readInput(image!.kernel, "kernel");
    initrd = readInput(options.initrd ?? image!.initrd, options.initrd ? "--initrd" : "initrd");
  }
  if (options.firmware === "opensbi") {
    const path = image!.opensbi.fwDynamic;
    if (!path) throw new UsageError("the guest image has no OpenSBI fw_dynamic firmware; rebuild it with `parley image build --force`");
    firmware = readInput(path, "firmware");
  } else if (options.firmware !== "none") {
    firmware = readInput(options.firmware, "--firmware");
  }

  let machine: VirtMachine | undefined;
  const consoleAttachment = attachConsole({
    onInput: (bytes) => machine?.sendInput(bytes),
    onQuit: () => machine?.stop(),
  });
  try {
    for (;;) {
      machine = new VirtMachine({
        module: loadCoreModule(),
        ramSize: options.memory,
        kernel,
        initrd,
        firmware,
        bootargs: options.append ?? DEFAULT_APPEND,
        sstc: options.sstc,
        output: (bytes) => process.stdout.write(bytes),
      });
      const exit = await machine.run();
      if (options.stats) process.stderr.write("\n" + formatMachineStats(machine) + "\n");
      if (exit.reason === "reboot" && options.reboot) {
        process.stderr.write("\r\nparley: guest rebooted; starting it again (--no-reboot to exit instead)\r\n");
        continue;
      }
      return exitCode(exit);
    }
  } finally {
    consoleAttachment.detach();
  }
}

function exitCode(exit: MachineExit): number {
  switch (exit.reason) {
    case "poweroff":
      return exit.code;
    case "reboot":
    case "stopped":
      return 0;
    case "panic":
      process.stderr.write("\r\nparley: the guest kernel panicked\r\n");
      return 1;
    case "halted":
      process.stderr.write(`\r\nparley: ${exit.message}\r\n`);
      return 1;
  }
}
