// Web benchmark: the page (src/web) in Debian's headless Chromium against `parley run` in Node, on
// the same kernel and initramfs (the benchmark image, with 7zip added, as bench/guest-cpu.ts uses):
//
//   - boot to shell: from opening the page (Chromium) or spawning parley (Node) to the guest
//     shell's greeting on the console; the page's time includes fetching the kernel and initramfs
//     from a local server and compiling the engine;
//   - `7z b 1 -mmt1 -md18` typed at the shell: 7-Zip's self-checking LZMA benchmark, its rating.
//
// One hart on both (the page's ?cpus=1, `parley run --cpus 1`), the console on virtio-console
// (hvc0) on both, as the page has it. The page is served by the same server as `parley web`
// (src/cli/web-server.ts), but with the benchmark image's initramfs as image/initrd.
// The goal: the browser within 1.3x of Node (rating ratio >= 0.77, boot ratio <= 1.3).
//
// Options: --reps N (default 3; medians are reported), --memory MiB (default 512).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { Command } from "commander";
import { ensureWebDisk, startWebServer, webRoot } from "../src/cli/web-server.ts";
import { REPO_ROOT } from "../src/host/node/paths.ts";
import { DEFAULT_APPEND_HVC } from "../src/machine/kernel-command-line.ts";
import { buildGuestImage, type GuestImage } from "../src/image/index.ts";
import { CHROMIUM, launchChromium, runInGuest, SHELL_GREETING, waitForShell } from "./web-page.ts";
import { BENCH_PACKAGES, fmt, median, parse7z, sevenZipCommand, type SevenZip } from "./guest-workloads.ts";
import { benchRunInfo, formatRunHeader, wholeNumber, writeBenchJson } from "./report.ts";

const BOOT_MS = 300_000;
const SEVEN_ZIP_MS = 900_000;

interface Options {
  reps: number;
  memoryMiB: number;
}

function parseArgs(argv: string[]): Options {
  const program = new Command("npm run bench -- web")
    .option("--reps <n>", "runs of each host (medians are reported)", wholeNumber(1), 3)
    .option("--memory <MiB>", "guest memory", wholeNumber(64, /M$/i), 512)
    .parse(argv, { from: "user" });
  const { reps, memory } = program.opts<{ reps: number; memory: number }>();
  return { reps, memoryMiB: memory };
}

interface Sample {
  bootS: number;
  sevenZip: SevenZip | undefined;
}

/** `parley run` at its shell: the greeting timed from spawn, then 7z typed on stdin, then poweroff. */
function nodeRun(image: GuestImage, opts: Options, sevenZip: string): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, "dist/parley.mjs"), "run", "--kernel", image.kernel, "--initrd", image.initrd, "--memory", `${opts.memoryMiB}M`,
        "--cpus", "1", "--console", "hvc", "--append", DEFAULT_APPEND_HVC],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    let output = "";
    let bootS: number | undefined;
    const done = /BENCH-DONE-42/;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`parley run: no result within ${(BOOT_MS + SEVEN_ZIP_MS) / 1000} s; output tail:\n${output.slice(-2000)}`));
    }, BOOT_MS + SEVEN_ZIP_MS);
    const onData = (d: Buffer) => {
      output += d.toString("latin1");
      if (bootS === undefined && output.includes(SHELL_GREETING)) {
        bootS = (performance.now() - started) / 1000;
        child.stdin!.write(`${sevenZip}; echo BENCH-DONE-$((40+2))\n`);
      }
      if (bootS !== undefined && done.test(output)) {
        clearTimeout(timer);
        child.kill("SIGKILL");
        resolve({ bootS, sevenZip: parse7z(output.replace(/\r/g, "")) });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (bootS === undefined || !done.test(output)) reject(new Error(`parley run exited (${code}) early; output tail:\n${output.slice(-2000)}`));
    });
  });
}

async function main() {
  const argv = process.argv.slice(2);
  const opts = parseArgs(argv);
  const info = benchRunInfo(["npm run bench -- web", ...argv].join(" "));
  if (!existsSync(CHROMIUM)) throw new Error(`web bench: ${CHROMIUM} is missing: install Debian package chromium (\`npm run setup\` does)`);
  console.log("web: building the benchmark guest image (--add 7zip sysbench) ...");
  const image = await buildGuestImage({ add: BENCH_PACKAGES, progress: false });
  const sevenZip = sevenZipCommand(1);
  const server = await startWebServer({
    root: webRoot(),
    images: { Image: image.kernel, initrd: image.initrd, "disk.img": ensureWebDisk() },
    host: "127.0.0.1",
    port: 0,
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/?cpus=1&memory=${opts.memoryMiB}`;
  const browser = await launchChromium();
  const chromiumVersion = browser.version();
  console.log(formatRunHeader("web", info));
  console.log(`web: Debian ${image.kernelVersion}, ${opts.memoryMiB} MiB, 1 hart, ${opts.reps} run(s) each; Chromium ${chromiumVersion}, Node ${process.version}; \`${sevenZip}\``);
  const samples: Record<"browser" | "node", Sample[]> = { browser: [], node: [] };
  try {
    // Interleaved, so that drifting host load hits both alike.
    for (let r = 0; r < opts.reps; r++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const opened = Date.now();
      await page.goto(url);
      const bootS = (await waitForShell(page, opened, BOOT_MS)) / 1000;
      const out = await runInGuest(page, sevenZip, SEVEN_ZIP_MS);
      const browserSample = { bootS, sevenZip: parse7z(out) };
      await context.close();
      samples.browser.push(browserSample);
      console.log(`  Chromium: shell ${fmt(bootS, 2)} s, 7z rating ${fmt(browserSample.sevenZip?.rating ?? NaN, 0)}`);
      if (!browserSample.sevenZip) {
        console.error(`  Chromium: no 7z result; terminal tail:\n${out.slice(-2000)}`);
        process.exitCode = 1;
      }
      const nodeSample = await nodeRun(image, opts, sevenZip);
      samples.node.push(nodeSample);
      console.log(`  Node: shell ${fmt(nodeSample.bootS, 2)} s, 7z rating ${fmt(nodeSample.sevenZip?.rating ?? NaN, 0)}`);
      if (!nodeSample.sevenZip) process.exitCode = 1;
    }
  } finally {
    await browser.close();
    server.closeAllConnections();
    server.close();
  }

  const summary = (xs: Sample[]) => ({
    bootS: median(xs.map((x) => x.bootS)),
    sevenZipRating: median(xs.map((x) => x.sevenZip?.rating ?? NaN)),
    sevenZipCompressKiBs: median(xs.map((x) => x.sevenZip?.compressKiBs ?? NaN)),
    sevenZipDecompressKiBs: median(xs.map((x) => x.sevenZip?.decompressKiBs ?? NaN)),
  });
  const browserSummary = summary(samples.browser);
  const nodeSummary = summary(samples.node);
  // Both as "how many times slower the browser is": time ratio for the boot, inverse rating ratio for 7z.
  const bootRatio = browserSummary.bootS / nodeSummary.bootS;
  const ratingRatio = nodeSummary.sevenZipRating / browserSummary.sevenZipRating;
  console.log("\n| host | boot to shell (s) | 7z rating | 7z compress KiB/s | 7z decompress KiB/s |");
  console.log("|---|---:|---:|---:|---:|");
  for (const [name, s] of [[`headless Chromium ${chromiumVersion}`, browserSummary], [`Node ${process.version} (parley run)`, nodeSummary]] as const) {
    console.log(`| ${name} | ${fmt(s.bootS, 2)} | ${fmt(s.sevenZipRating, 0)} | ${fmt(s.sevenZipCompressKiBs, 0)} | ${fmt(s.sevenZipDecompressKiBs, 0)} |`);
  }
  const verdict = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)} ${x <= 1.3 ? "(within the goal of 1.3)" : "(OUTSIDE the goal of 1.3)"}` : "-");
  console.log(`browser against Node: boot time ratio ${verdict(bootRatio)}; 7z, Node's rating over the browser's ${verdict(ratingRatio)}`);
  const outFile = writeBenchJson("web", info, {
    chromium: chromiumVersion,
    kernel: image.kernelVersion,
    packages: image.packages,
    memoryMiB: opts.memoryMiB,
    reps: opts.reps,
    workload: sevenZip,
    browser: { ...browserSummary, samples: samples.browser },
    node: { ...nodeSummary, samples: samples.node },
    browserSlowerBy: { boot: bootRatio, sevenZip: ratingRatio },
  });
  console.log(`web: results written to ${outFile}`);
}

await main();
