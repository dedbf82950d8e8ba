// Drives the Parley page (src/web) in Debian's headless Chromium through Playwright: the shared
// part of the page test (test/web/page.test.ts) and the web bench (bench/web.ts). It talks to the
// page only through window.parleyPage (the test surface main.ts exposes) and the DOM.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "@playwright/test";
import type { Ledger } from "../src/machine/ledger.ts";
import { REPO_ROOT } from "../src/host/node/paths.ts";

/** Debian's chromium package: the only browser these tests use (Playwright downloads none). */
export const CHROMIUM = "/usr/bin/chromium";
/**
 * Printed by `parley web` once it accepts connections ("parley web: serving Debian on
 * http://127.0.0.1:PORT/ (Ctrl-C to stop)"); the URL without its query.
 */
export const WEB_LISTENING = /^parley(?: web)?: (?:serving Debian on|web at) (http:\/\/[^\s?]+)/m;
/** The initramfs's console session greets before its first prompt (src/image/initramfs.ts). */
export const SHELL_GREETING = "Type 'exit' or press Ctrl-D to power off.";

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox needs user namespaces or a setuid helper, neither of which root in a
    // container or CI chroot has; the page is our own, served from 127.0.0.1.
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
}

export interface WebServer {
  url: string;
  process: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/** `parley web --port 0 [args]`, resolved once it prints where it listens. */
export function startParleyWeb(args: string[] = [], timeoutMs = 120_000): Promise<WebServer> {
  const child = spawn(process.execPath, [join(REPO_ROOT, "dist/parley.mjs"), "web", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: process.env,
  });
  let stderr = "";
  let stdout = "";
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`parley web printed no "parley: web at URL" within ${timeoutMs / 1000} s; stderr:\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    let listening = false;
    const look = () => {
      const m = listening ? null : WEB_LISTENING.exec(stdout) ?? WEB_LISTENING.exec(stderr);
      if (!m) return;
      listening = true;
      clearTimeout(timer);
      resolve({ url: m[1], process: child, stderr: () => stderr, stop });
    };
    child.stdout!.on("data", (d) => {
      stdout += d;
      look();
    });
    child.stderr!.on("data", (d) => {
      stderr += d;
      look();
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`parley web exited (${code ?? signal}) before listening; stderr:\n${stderr.slice(-2000)}\nstdout:\n${stdout.slice(-1000)}`));
    });
  });
}

/** The page's test surface, as the tests read it (see the web contract in src/web/main.ts). */
export interface PageState {
  state: string;
  harts: number;
  crossOriginIsolated: boolean;
  error?: string;
}

export async function pageState(page: Page): Promise<PageState | undefined> {
  return page.evaluate(() => {
    const p = (window as unknown as { parleyPage?: PageState }).parleyPage;
    return p && { state: p.state, harts: p.harts, crossOriginIsolated: p.crossOriginIsolated, error: p.error };
  });
}

export const terminalText = (page: Page): Promise<string> =>
  page.evaluate(() => (window as unknown as { parleyPage?: { terminalText(): string } }).parleyPage?.terminalText() ?? "");

export const ledger = (page: Page): Promise<Ledger | undefined> =>
  page.evaluate(() => (window as unknown as { parleyPage?: { ledger(): unknown } }).parleyPage?.ledger() as never);

export const typeText = (page: Page, text: string): Promise<void> =>
  page.evaluate((t) => (window as unknown as { parleyPage: { type(t: string): void } }).parleyPage.type(t), text);

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes; `what` names it in the error. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, context?: () => Promise<string>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${context ? `\n${await context()}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** What a failure shows: the page's state and the end of its terminal. */
export async function describePage(page: Page): Promise<string> {
  const state = await pageState(page).catch((e) => `(unreadable: ${e})`);
  const text = await terminalText(page).catch(() => "");
  // Whether the guest still runs: its instructions and each virtio device's completions so far.
  const l = await ledger(page).catch(() => undefined);
  const devices = Object.entries(l?.virtio ?? {}).map(([name, d]) => `${name} ${d.perQueue.reduce((sum, q) => sum + q.chainsUsed, 0)}`);
  const progress = l ? `ledger: ${l.instructions} instructions; completions: ${devices.join(", ")}` : "ledger: none yet";
  return `page state: ${JSON.stringify(state)}\n${progress}\nterminal tail:\n${text.slice(-2500)}`;
}

/**
 * Waits for the page to run the guest up to its shell prompt; returns the milliseconds from
 * `since` (Date.now() when the page was opened) to the greeting. A "failed" page ends the wait.
 */
export async function waitForShell(page: Page, since: number, timeoutMs: number): Promise<number> {
  return waitFor(
    "the guest's shell prompt in the page's terminal",
    async () => {
      const state = await pageState(page);
      if (state?.state === "failed") throw new Error(`the page failed: ${state.error ?? "(no message)"}\n${await describePage(page)}`);
      if (state?.state !== "running") return undefined;
      const text = await terminalText(page);
      const at = text.indexOf(SHELL_GREETING);
      // The prompt ("root@host:~# ") follows the greeting.
      return at >= 0 && /[#$] ?$/m.test(text.slice(at + SHELL_GREETING.length)) ? Date.now() - since : undefined;
    },
    timeoutMs,
    () => describePage(page),
  );
}

let commandSerial = 0;

/**
 * Types `command` into the guest's shell and returns its output. The output is fenced by two
 * markers that the shell computes ($((...))), so the echo of the typed line never matches them.
 */
export async function runInGuest(page: Page, command: string, timeoutMs = 120_000): Promise<string> {
  const n = 1000 + ++commandSerial;
  const begin = `<<${n}>>`;
  const end = `<<${n}:`;
  await typeText(page, `echo "<<$((${n}))>>"; ${command}; echo "<<$((${n})):$?>>"\n`);
  const text = await waitFor(
    `the output of \`${command}\``,
    async () => {
      const t = await terminalText(page);
      const from = t.lastIndexOf(begin);
      return from >= 0 && t.indexOf(end, from) >= 0 ? t.slice(from + begin.length, t.indexOf(end, from)) : undefined;
    },
    timeoutMs,
    () => describePage(page),
  );
  return text.trim();
}

export function dashboardCanvases(page: Page): Promise<number> {
  return page.locator("#dashboard canvas").count();
}

export function distWebReady(): string | undefined {
  return existsSync(join(REPO_ROOT, "dist/web/index.html")) ? undefined : "dist/web/index.html is missing: run `npm run build:web`";
}
