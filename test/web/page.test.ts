// The web page (src/web, served by `parley web`) in Debian's headless Chromium, driven through
// Playwright as a user would meet it: the guest boots to a shell on 2 harts, typed commands run,
// the terminal shows colours, copies and pastes, and the guest's tty size follows the window,
// the dashboard counts, a coalescing change reaches the running disk, a file written to the data
// disk survives a reload (the OPFS overlay), and a server without the cross-origin-isolation
// headers still gets a working page, on one hart, that says why.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "@playwright/test";
import { REPO_ROOT } from "../../src/host/node/paths.ts";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ensureWebDisk, startWebServer, webRoot } from "../../src/cli/web-server.ts";
import { buildGuestImage } from "../../src/image/index.ts";
import type { Ledger } from "../../src/machine/ledger.ts";
import { hostGate, missingHostTools } from "../support/host-tools.ts";
import {
  dashboardCanvases, describePage, distWebReady, launchChromium, ledger, pageState, runInGuest, startParleyWeb, waitFor, waitForShell, type WebServer,
} from "../../bench/web-page.ts";

const gate = hostGate(missingHostTools(["chromium", "mkfs.ext4"]) ?? distWebReady());
/** A boot to the shell in the browser: a few tens of seconds here; generous for a loaded CI host. */
const BOOT_MS = 240_000;
const SCREENSHOT = join(REPO_ROOT, "docs/web-screenshot.png");
const BLK = "virtio-blk0";

/** Completions and used-buffer interrupts of a virtio device, summed over its queues. */
function blkCounters(l: Ledger | undefined): { chains: number; interrupts: number; coalesced: number; batches: number } {
  const dev = l?.virtio[BLK];
  if (!dev) throw new Error(`the ledger has no ${BLK} (devices: ${Object.keys(l?.virtio ?? {}).join(", ") || "none"})`);
  return {
    chains: dev.perQueue.reduce((sum, q) => sum + q.chainsUsed, 0),
    interrupts: dev.usedInterruptsSent,
    coalesced: dev.coalescedCompletions,
    batches: dev.coalesceBatchesByCount + dev.coalesceBatchesByTimer,
  };
}

/** xterm.js's input element: keys, paste and copy events go through it. */
const TERMINAL_INPUT = "#terminal .xterm-helper-textarea";

/**
 * The terminal as a user meets it: keys typed into it, colours, the guest's idea of its size
 * following the window, and copy and paste.
 */
async function terminalBehaviour(page: Page): Promise<void> {
  const screenText = (text: string) => waitFor(`"${text}" on the terminal`, () => page.evaluate((t) => window.parleyPage.findOnScreen(t), text), 30_000, () => describePage(page));

  // Keys pressed in the terminal (not parleyPage.type) reach the guest's shell.
  await page.locator("#terminal").click();
  await page.keyboard.type("echo typed-$((6*7))\n");
  await screenText("typed-42");

  // Colours: SGR 31 is palette red (1).
  await runInGuest(page, "printf '\\033[31mcoloured-red\\033[0m\\n'");
  assert.equal((await screenText("coloured-red")).foreground, 1, "the guest's red text is drawn red");

  // Copy: a double click selects the word; Ctrl+Shift+C puts it on the clipboard.
  const word = await screenText("coloured-red");
  await page.mouse.dblclick(word.x, word.y);
  assert.equal(await page.evaluate(() => window.parleyPage.selection()), "coloured-red");
  await page.keyboard.press("Control+Shift+C");
  const copied = await waitFor("the clipboard to hold the selection", async () => {
    const text = await page.evaluate(() => navigator.clipboard.readText());
    return text === "coloured-red" ? text : undefined;
  }, 10_000);
  assert.equal(copied, "coloured-red");

  // Paste: what the browser pastes into the terminal is typed into the guest.
  await page.locator(TERMINAL_INPUT).focus();
  await page.evaluate(([selector, text]) => {
    const data = new DataTransfer();
    data.setData("text/plain", text);
    document.querySelector(selector)!.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  }, [TERMINAL_INPUT, "echo pasted-$((5*5))\n"] as const);
  await screenText("pasted-25");

  // Resize: the guest's tty follows the terminal (virtio-console VIRTIO_CONSOLE_F_SIZE).
  const sizeNow = () => page.evaluate(() => window.parleyPage.terminalSize());
  const initial = await sizeNow();
  assert.equal(await runInGuest(page, "stty size"), `${initial.rows} ${initial.cols}`, "the guest starts with the terminal's size");
  const viewport = page.viewportSize()!;
  await page.setViewportSize({ width: viewport.width - 240, height: viewport.height - 200 });
  const smaller = await waitFor("the terminal to shrink with the window", async () => {
    const size = await sizeNow();
    return size.cols < initial.cols && size.rows < initial.rows ? size : undefined;
  }, 10_000);
  const followed = await waitFor("the guest's stty size to follow the window", async () => {
    const out = await runInGuest(page, "stty size");
    return out === `${smaller.rows} ${smaller.cols}` ? out : undefined;
  }, 20_000);
  assert.equal(followed, `${smaller.rows} ${smaller.cols}`);
  await page.setViewportSize(viewport);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The disk's counters over `ms` of the running workload, from two ledger reads. */
async function diskWindow(page: Page, ms: number): Promise<{ chains: number; ratio: number; coalesced: number; batches: number }> {
  const first = blkCounters(await ledger(page));
  await sleep(ms);
  const second = blkCounters(await ledger(page));
  const chains = second.chains - first.chains;
  return {
    chains,
    ratio: (second.interrupts - first.interrupts) / Math.max(1, chains),
    coalesced: second.coalesced - first.coalesced,
    batches: second.batches - first.batches,
  };
}

describe("the web page in headless Chromium", { skip: gate.skip, timeout: 3 * BOOT_MS + 300_000 }, () => {
  let web: WebServer | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  const token = `kept-${randomBytes(6).toString("hex")}`;

  before(async () => {
    gate.check();
    await buildGuestImage({ log: (line) => console.log(`image: ${line}`) });
    web = await startParleyWeb();
    browser = await launchChromium();
    // One context for the first two tests: its origin storage (OPFS) outlives a reload.
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // Ctrl+Shift+C writes the clipboard, which the test reads back.
    await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  });

  after(async () => {
    await browser?.close();
    await web?.stop();
  });

  test("boots to a shell on 2 harts; commands, the dashboard and disk coalescing work; a file goes to the data disk", { timeout: BOOT_MS + 180_000 }, async () => {
    page = await context!.newPage();
    const opened = Date.now();
    await page.goto(`${web!.url}?cpus=2`);
    const bootMs = await waitForShell(page, opened, BOOT_MS);
    console.log(`web: shell after ${(bootMs / 1000).toFixed(1)} s`);
    const state = await pageState(page);
    assert.equal(state?.crossOriginIsolated, true, "parley web sends the isolation headers");
    assert.equal(state?.harts, 2);
    assert.equal(await page.locator("#isolation-warning").isVisible(), false);

    const out = await runInGuest(page, "uname -m; nproc");
    assert.deepEqual(out.split(/\s+/), ["riscv64", "2"], out);

    // The dashboard: counters that grow and charts drawn from them.
    const before = await ledger(page);
    assert.ok(before, "the page has a ledger once running");
    const grown = await waitFor("the ledger's instructions to grow", async () => {
      const now = await ledger(page!);
      return now && now.instructions > before.instructions ? now : undefined;
    }, 10_000);
    assert.ok(grown.instructions > before.instructions);
    assert.ok((await dashboardCanvases(page)) > 0, "#dashboard draws charts (canvas)");

    mkdirSync(join(REPO_ROOT, "docs"), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });

    await terminalBehaviour(page);

    // Four direct-I/O readers over parts of the disk keep several requests in flight, so batching
    // completions can save interrupts (one reader at a time never has two to batch). They stop on
    // their own after READ_SECONDS, so the shell needs no input while they load the machine.
    const READ_SECONDS = 30;
    await runInGuest(
      page,
      `end=$(($(date +%s)+${READ_SECONDS})); for i in 0 1 2 3; do (while [ $(date +%s) -lt $end ]; do dd if=/dev/vda of=/dev/null bs=4k count=256 skip=$((i*2048)) iflag=direct 2>/dev/null; done) & done`,
    );
    const readersStarted = Date.now();
    await sleep(3_000);
    const plain = await diskWindow(page, 6_000);
    await page.evaluate((device) => window.parleyPage.setCoalescing(device, { maxCompletions: 16, maxDelayUs: 2000 }), BLK);
    await sleep(2_000);
    const coalesced = await diskWindow(page, 6_000);
    const readingFor = Date.now() - readersStarted;
    console.log(
      `web: ${BLK} interrupts per completion ${plain.ratio.toFixed(3)} (${plain.chains} completions) -> ${coalesced.ratio.toFixed(3)} with 16/2000us ` +
        `(${coalesced.chains} completions, ${coalesced.coalesced} coalesced in ${coalesced.batches} batches), measured within ${(readingFor / 1000).toFixed(1)} s of ${READ_SECONDS} s of reading`,
    );
    assert.ok(plain.chains >= 50 && coalesced.chains >= 50, `the readers completed too few requests to compare: ${plain.chains}, ${coalesced.chains}`);
    // Counters, not timing: how many completions happen to settle together without coalescing
    // varies with the host's speed, so the two windows' interrupt ratios are not compared. What
    // must hold is that the setting reached the running disk: no completion is gathered before
    // it, completions are gathered after it, and the batches hold more than one on average (four
    // readers keep up to four requests in flight), each batch one interrupt decision.
    assert.equal(plain.coalesced, 0, "no completion is coalesced before the setting");
    assert.equal(plain.batches, 0);
    assert.ok(coalesced.coalesced >= 50, `completions go through the coalescer once it is on: ${coalesced.coalesced}`);
    assert.ok(coalesced.batches > 0 && coalesced.coalesced > coalesced.batches, `batches gather several completions: ${coalesced.coalesced} in ${coalesced.batches}`);
    // The readers end by themselves; `wait` returns once they have.
    await runInGuest(page, "wait", READ_SECONDS * 1000 + 120_000);

    const write = await runInGuest(page, `mkdir -p /mnt && mount /dev/vda /mnt && echo ${token} > /mnt/kept && sync && umount /mnt && echo written`);
    assert.match(write, /written$/, write);
    // The overlay's writes happen in the machine worker; give them a moment before the reload.
    await sleep(2_000);
  });

  test("after a reload the guest finds the file on the data disk (OPFS overlay)", { timeout: BOOT_MS + 60_000 }, async () => {
    assert.ok(page, "the first test opened the page");
    const opened = Date.now();
    await page.reload();
    await waitForShell(page, opened, BOOT_MS);
    const out = await runInGuest(page, "mkdir -p /mnt && mount /dev/vda /mnt && cat /mnt/kept; umount /mnt");
    assert.match(out, new RegExp(`^${token}$`, "m"), out);
  });

  test("without the isolation headers the page warns and runs one hart", { timeout: BOOT_MS + 60_000 }, async () => {
    const image = await buildGuestImage({ log: () => {} });
    // The same page and image served as a plain static host does: no COOP/COEP.
    let plain: Server | undefined;
    const isolatedDisk = await fetch(new URL("image/disk.img", web!.url), { headers: { Range: "bytes=0-0" } });
    assert.equal(isolatedDisk.status, 206, "parley web serves byte ranges of the disk");
    try {
      plain = await startWebServer({
        root: webRoot(),
        images: { Image: image.kernel, initrd: image.initrd, "disk.img": ensureWebDisk() },
        isolation: false,
        host: "127.0.0.1",
        port: 0,
      });
      const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/`;
      const other = await browser!.newContext();
      const p = await other.newPage();
      const opened = Date.now();
      await p.goto(`${plainUrl}?cpus=2`); // asks for 2: without isolation the page must fall back to 1
      await waitForShell(p, opened, BOOT_MS);
      const state = await pageState(p);
      assert.equal(state?.crossOriginIsolated, false);
      assert.equal(state?.harts, 1);
      assert.equal(await p.locator("#isolation-warning").isVisible(), true, "#isolation-warning is shown");
      assert.match((await p.locator("#isolation-warning").textContent()) ?? "", /Cross-Origin/);
      assert.equal(await runInGuest(p, "nproc"), "1");
      await other.close();
    } finally {
      plain?.closeAllConnections();
      plain?.close();
    }
  });
});
