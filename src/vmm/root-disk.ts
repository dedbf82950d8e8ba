// The Debian root disk's second stage runs inside a Parley machine (src/image/rootfs.ts says why):
// this is the runner it is given, and the `parley image build --rootfs` entry point.
import { buildRootfs, type BuildRootfsOptions, type RootDisk, type SecondStageRunner } from "../image/rootfs.ts";
import { ImageBuildError } from "../image/apt.ts";
import { Machine } from "./machine.ts";

/** The second stage may not take longer than this (it takes about 6 minutes on a 2-core host). */
const SECOND_STAGE_LIMIT_MS = 60 * 60 * 1000;

/** Boots the second stage on one hart with 1 GiB and the host's entropy, until it powers off. */
export const runSecondStageInParley: SecondStageRunner = async ({ kernel, initrd, disk, bootArgs, onOutput }) => {
  const decoder = new TextDecoder();
  const machine = await Machine.create(
    {
      "boot-source": { kernel_image_path: kernel, initrd_path: initrd, boot_args: bootArgs },
      "machine-config": { vcpu_count: 1, mem_size_mib: 1024 },
      drives: [{ drive_id: "root", path_on_host: disk }],
      entropy: {},
    },
    {
      output: (bytes) => {
        onOutput(decoder.decode(bytes, { stream: true }));
      },
    },
  );
  const limit = setTimeout(() => machine.stop(), SECOND_STAGE_LIMIT_MS);
  try {
    const exit = await machine.run();
    if (exit.reason !== "poweroff") {
      throw new ImageBuildError(`the second stage's machine ended with ${exit.reason}${"message" in exit ? `: ${exit.message}` : ""} instead of powering off`);
    }
  } finally {
    clearTimeout(limit);
    await machine.close();
  }
};

/** `parley image build --rootfs`: the cached root disk, built when missing or stale. */
export function buildRootDisk(opts: Omit<BuildRootfsOptions, "runSecondStage">): Promise<RootDisk> {
  return buildRootfs({ ...opts, runSecondStage: runSecondStageInParley });
}
