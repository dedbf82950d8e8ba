// `parley image build`'s refusals for the root disk's options: each says what to fix, exits with
// code 2 and builds nothing (none of these reaches the network). The command runs as users run it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/host/node/paths.ts";

function parley(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), ...args], { cwd: REPO_ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

test("image build: the root disk's options are checked before anything is built", async () => {
  const dir = mkdtempSync(join(tmpdir(), "parley-image-cli-"));
  // An empty cache: a refusal must come before any download would start.
  const env = { ...process.env, PARLEY_CACHE: join(dir, "cache") };
  const existing = join(dir, "debian.img");
  writeFileSync(existing, "");
  try {
    const cases: [string[], RegExp][] = [
      [["image", "build", "--size", "4G"], /^parley: --size is for --rootfs$/m],
      [["image", "build", "--output", join(dir, "x.img")], /^parley: --output is for --rootfs$/m],
      [["image", "build", "--rootfs", "--add", "hello"], /^parley: --add is for the initramfs; install packages on the root disk with apt-get inside the guest$/m],
      [["image", "build", "--rootfs", "--size", "12X"], /^parley: --size: "12X" is not a size/m],
      [["image", "build", "--rootfs", "--size", "1G"], /^parley: root disk size 1073741824: use a whole number of MiB, at least 2G$/m],
      [["image", "build", "--rootfs", "--output", existing], new RegExp(`^parley: --output ${existing} exists: remove it or name another file$`, "m")],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await parley(args, env);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, message, args.join(" "));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
