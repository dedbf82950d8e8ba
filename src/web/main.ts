// The page's main thread: the terminal (xterm.js) on the guest's console, the dashboard, the
// controls, and window.parleyPage for tests. The machine runs in machine-worker.ts; this thread
// only relays keys, sizes and buttons to it and shows what comes back.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import type { Ledger } from "../machine/ledger.ts";
import { createDashboard } from "./dashboard.ts";
import type { Coalesce, FromWorker, PageState, ToWorker } from "./messages.ts";
import { pageSettings } from "./page-settings.ts";

export interface ParleyPage {
  state: PageState;
  harts: number;
  crossOriginIsolated: boolean;
  terminalText(): string;
  /** The terminal's size in character cells (what the guest's `stty size` should say). */
  terminalSize(): { cols: number; rows: number };
  /**
   * Where the last occurrence of `text` on the terminal's screen is: the page coordinates of the
   * middle of its first cell, and the colour of its foreground (a palette index, -1 for the
   * default colour); undefined when it is not on the screen.
   */
  findOnScreen(text: string): { x: number; y: number; foreground: number } | undefined;
  /** The terminal's selected text (what copying takes). */
  selection(): string;
  type(text: string): void;
  ledger(): Ledger | undefined;
  setCoalescing(device: string, c: Coalesce | undefined): Promise<void>;
  error?: string;
}

declare global {
  interface Window {
    parleyPage: ParleyPage;
    parleyMachineWorker?: Worker;
  }
}

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const isolated = window.crossOriginIsolated === true && typeof SharedArrayBuffer !== "undefined";
/** The machine worker serves hart workers with Atomics.waitAsync (src/machine/hart-control.ts). */
const threadsPossible = isolated && typeof (Atomics as { waitAsync?: unknown }).waitAsync === "function";
const settings = pageSettings(new URLSearchParams(location.search), { isolated: threadsPossible, hardwareConcurrency: navigator.hardwareConcurrency });

const warning = element("isolation-warning");
if (!isolated) {
  warning.hidden = false;
  warning.textContent =
    "This page is not cross-origin isolated (the server did not send Cross-Origin-Opener-Policy: same-origin and " +
    "Cross-Origin-Embedder-Policy: require-corp), so SharedArrayBuffer is unavailable: the guest runs with one hart " +
    "on the single-threaded engine.";
} else if (!threadsPossible) {
  warning.hidden = false;
  warning.textContent = "This browser has no Atomics.waitAsync, which hart threads need: the guest runs with one hart on the single-threaded engine.";
}
for (const problem of settings.problems) console.warn(`parley: ${problem}`);

// The machine worker, started by index.html before this script loaded (it fetches the guest's
// kernel and initramfs meanwhile), or here when the page was built without that.
const worker: Worker = window.parleyMachineWorker ?? new Worker(new URL("machine-worker.js", import.meta.url), { type: "module", name: "machine" });

// convertEol: a line feed also returns the carriage, as a host terminal's ONLCR does for `parley
// start` (Node's raw mode keeps it): the kernel's early console (SBI DBCN) writes bare LFs.
const terminal = new Terminal({ convertEol: true, scrollback: 5000, fontFamily: "monospace", cursorBlink: true });
const fit = new FitAddon();
terminal.loadAddon(fit);
terminal.open(element("terminal"));
fit.fit();

const send = (message: ToWorker, transfer?: Transferable[]) => worker.postMessage(message, transfer ?? []);
const encoder = new TextEncoder();

let latestLedger: Ledger | undefined;
const page: ParleyPage = {
  state: "loading",
  harts: settings.cpus,
  crossOriginIsolated: isolated,
  terminalText() {
    const buffer = terminal.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? "");
    return lines.join("\n");
  },
  terminalSize: () => ({ cols: terminal.cols, rows: terminal.rows }),
  findOnScreen(text) {
    const buffer = terminal.buffer.active;
    for (let row = terminal.rows - 1; row >= 0; row--) {
      const line = buffer.getLine(buffer.viewportY + row);
      const col = line?.translateToString(true).lastIndexOf(text) ?? -1;
      if (!line || col < 0) continue;
      const cell = line.getCell(col);
      const screen = element("terminal").querySelector(".xterm-screen")!.getBoundingClientRect();
      const width = screen.width / terminal.cols, height = screen.height / terminal.rows;
      return {
        x: screen.left + (col + 0.5) * width,
        y: screen.top + (row + 0.5) * height,
        foreground: cell?.isFgPalette() ? cell.getFgColor() : -1,
      };
    }
    return undefined;
  },
  selection: () => terminal.getSelection(),
  type(text) {
    send({ type: "input", bytes: encoder.encode(text) });
  },
  ledger: () => latestLedger,
  async setCoalescing(device, c) {
    send({ type: "set-coalescing", device, coalesce: c });
  },
};
window.parleyPage = page;

// Copy and paste as in desktop terminals, where Ctrl+C and Ctrl+V belong to the guest:
// Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes (the browser's own paste, which
// xterm.js turns into input, bracketed when the guest asked for it). Selecting with the mouse
// and the browser's Copy and Paste work as well.
terminal.attachCustomKeyEventHandler((event) => {
  if (event.type === "keydown" && event.ctrlKey && event.shiftKey && event.code === "KeyC") {
    const selected = terminal.getSelection();
    if (selected) void navigator.clipboard?.writeText(selected).catch(() => {});
    event.preventDefault();
    return false;
  }
  // Let the browser paste (its paste event reaches xterm.js); do not send ^V to the guest.
  if (event.type === "keydown" && event.ctrlKey && event.shiftKey && event.code === "KeyV") return false;
  return true;
});
terminal.onData((data) => send({ type: "input", bytes: encoder.encode(data) }));
terminal.onBinary((data) => send({ type: "input", bytes: Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff) }));
terminal.onResize(({ cols, rows }) => send({ type: "resize", cols, rows }));
new ResizeObserver(() => fit.fit()).observe(element("terminal"));

const dashboard = createDashboard(element("dashboard"), { onCoalescingChange: (device, c) => void page.setCoalescing(device, c) });

const progress = element("progress");
const stateLabel = element("state");
const buttons = {
  pause: element<HTMLButtonElement>("pause"),
  resume: element<HTMLButtonElement>("resume"),
  reset: element<HTMLButtonElement>("reset"),
  poweroff: element<HTMLButtonElement>("poweroff"),
  snapshot: element<HTMLButtonElement>("snapshot"),
  discard: element<HTMLButtonElement>("discard-disk"),
};
const restoreInput = element<HTMLInputElement>("restore");

/** Which controls make sense in which state. */
const ENABLED: Record<PageState, (keyof typeof buttons)[]> = {
  loading: [],
  running: ["pause", "reset", "poweroff", "snapshot", "discard"],
  paused: ["resume", "reset", "poweroff", "snapshot", "discard"],
  stopped: ["reset", "discard"],
  failed: ["reset", "discard"],
};

function showState(state: PageState): void {
  page.state = state;
  stateLabel.textContent = state;
  for (const [name, button] of Object.entries(buttons)) button.disabled = !ENABLED[state].includes(name as keyof typeof buttons);
  restoreInput.disabled = state === "loading";
}
showState("loading");

function formatMiB(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

worker.onmessage = (event: MessageEvent<FromWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "progress":
      progress.textContent = message.total
        ? `${message.what}: ${formatMiB(message.loaded)} of ${formatMiB(message.total)} MiB`
        : `${message.what}: ${formatMiB(message.loaded)} MiB`;
      break;
    case "output":
      terminal.write(message.bytes);
      break;
    case "ledger":
      latestLedger = message.ledger;
      dashboard.update(message.ledger, performance.now());
      break;
    case "state":
      if (message.state !== "loading") progress.textContent = "";
      if (message.harts !== undefined) page.harts = message.harts;
      showState(message.state);
      break;
    case "snapshot":
      download(new Blob([message.blob], { type: "application/octet-stream" }), `parley-${new Date().toISOString().replace(/[:.]/g, "-")}.snapshot`);
      break;
    case "error":
      page.error = message.message;
      element("error").textContent = message.message;
      console.error(`parley: ${message.message}`);
      break;
  }
};
worker.onerror = (event) => {
  page.error = event.message || "the machine worker failed to load";
  element("error").textContent = page.error;
  showState("failed");
};

function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

buttons.pause.onclick = () => send({ type: "pause" });
buttons.resume.onclick = () => send({ type: "resume" });
buttons.reset.onclick = () => {
  terminal.reset();
  send({ type: "reset" });
};
buttons.poweroff.onclick = () => send({ type: "poweroff" });
buttons.snapshot.onclick = () => send({ type: "snapshot" });
buttons.discard.onclick = () => {
  if (confirm("Discard the data disk's changes kept in this browser and boot again?")) {
    terminal.reset();
    send({ type: "discard-disk" });
  }
};
restoreInput.onchange = async () => {
  const file = restoreInput.files?.[0];
  restoreInput.value = "";
  if (!file) return;
  const bytes = await file.arrayBuffer();
  send({ type: "restore", file: bytes }, [bytes]);
};

const baseUrl = new URL(".", location.href).href;
send({ type: "start", cpus: settings.cpus, memoryMiB: settings.memoryMiB, baseUrl, cols: terminal.cols, rows: terminal.rows });
terminal.focus();
