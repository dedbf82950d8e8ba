// The machine worker: the page's I/O thread. It owns the VirtMachine (device models, the
// console, the disk backend), fetches the guest image, boots it — one hart here on the plain
// engine, or several on hart workers over a shared memory when the page is cross-origin isolated —
// and answers the page's messages (messages.ts). The page's main thread stays free for the terminal.
import { DEFAULT_PAUSE_LOOP_WINDOW, VirtMachine, type MachineExit } from "../machine/virt.ts";
import { DEFAULT_APPEND_HVC } from "../machine/kernel-command-line.ts";
import type { VirtioDevice } from "../virtio/types.ts";
import type { VirtioCoalesce } from "../virtio/transport/mmio.ts";
import { VirtioBlk } from "../virtio/blk/device.ts";
import { VirtioKeyboard } from "../virtio/input/index.ts";
import { webClock } from "../host/web/clock.ts";
import { webHartThreads } from "../host/web/hart-threads.ts";
import { openDataDisk, type DataDisk } from "./data-disk.ts";
import { copyPagesIntoRam, decodeWebSnapshot, encodeWebSnapshot, type DecodedWebSnapshot, type WebMachineShape } from "./snapshot-container.ts";
import type { FromWorker, PageState, ToWorker } from "./messages.ts";
import { concatBytes } from "../platform/bytes.ts";

const LEDGER_INTERVAL_MS = 1000;
/** Console output is sent to the page at most this often, in one message. */
const OUTPUT_FLUSH_MS = 10;

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  crossOriginIsolated?: boolean;
  navigator: { hardwareConcurrency?: number };
  location: { href: string };
};

function post(message: FromWorker, transfer?: Transferable[]): void {
  scope.postMessage(message, transfer);
}

const clock = webClock();

interface BootFiles {
  kernel: Uint8Array;
  initrd: Uint8Array;
}

/** One boot of the guest: its machine, devices, and how it ended. */
interface Boot {
  vm: VirtMachine;
  keyboard: VirtioKeyboard;
  shape: WebMachineShape;
  exited: Promise<MachineExit>;
}

let settings: { baseUrl: string; cpus: number; memoryMiB: number; cols: number; rows: number } | undefined;
let files: BootFiles | undefined;
let disk: DataDisk | undefined;
let current: Boot | undefined;
let state: PageState = "loading";
/** Set while an operation ends the current boot on purpose: its exit is not the guest's doing. */
let replacing = false;
/** Coalescing chosen in the page, by device name: applied to every boot's devices. */
const coalescing = new Map<string, VirtioCoalesce | undefined>();
const modules = new Map<string, Promise<WebAssembly.Module>>();

function setState(next: PageState): void {
  state = next;
  post({ type: "state", state: next, harts: current?.shape.harts });
}

function fail(error: unknown): void {
  post({ type: "error", message: error instanceof Error ? error.message : String(error) });
}

/**
 * Hart workers need shared memory (only on a cross-origin isolated page) and, on this thread,
 * Atomics.waitAsync (hart requests are served without blocking the event loop).
 */
function canShareMemory(): boolean {
  return scope.crossOriginIsolated === true && typeof SharedArrayBuffer !== "undefined" && typeof (Atomics as { waitAsync?: unknown }).waitAsync === "function";
}

async function fetchWithProgress(url: string, what: string): Promise<Uint8Array<ArrayBuffer>> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${what}: ${url}: HTTP ${response.status} ${response.statusText}`);
  const total = Number(response.headers.get("content-length") ?? 0);
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  let lastReport = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    if (clock.now() - lastReport > 100) {
      lastReport = clock.now();
      post({ type: "progress", what, loaded, total });
    }
  }
  post({ type: "progress", what, loaded, total: total || loaded });
  return concatBytes(chunks);
}

function engine(baseUrl: string, shared: boolean): Promise<WebAssembly.Module> {
  const file = shared ? "cpu-shared.wasm" : "cpu.wasm";
  let module = modules.get(file);
  if (!module) {
    module = fetchWithProgress(new URL(file, baseUrl).href, file).then((bytes) => WebAssembly.compile(bytes));
    modules.set(file, module);
    // A failed fetch is tried again next time (reset), not remembered.
    module.catch(() => modules.delete(file));
  }
  return module;
}

/** Console output, gathered and sent in one message per flush. */
const output = (() => {
  const pending: Uint8Array[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const bytes = concatBytes(pending.splice(0));
    post({ type: "output", bytes }, [bytes.buffer]);
  };
  return (bytes: Uint8Array) => {
    pending.push(bytes.slice());
    if (!scheduled) {
      scheduled = true;
      clock.setTimer(OUTPUT_FLUSH_MS, flush);
    }
  };
})();

/**
 * The terminal's size to the guest's hvc0 (virtio-console VIRTIO_CONSOLE_F_SIZE); a size the device
 * refuses (out of range, or a console made without the size feature) leaves the guest's as it was.
 */
function resizeConsole(vm: VirtMachine, cols: number, rows: number): void {
  try {
    vm.hvc?.setSize(cols, rows);
  } catch (error) {
    console.warn(`parley: console size ${cols}x${rows}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A machine of `shape`: booting `files`, or empty to restore a snapshot into. */
async function buildMachine(shape: WebMachineShape, boot: BootFiles | undefined): Promise<{ vm: VirtMachine; keyboard: VirtioKeyboard }> {
  const { baseUrl } = settings!;
  const threads = shape.harts > 1 && canShareMemory();
  const module = await engine(baseUrl, threads);
  const devices: VirtioDevice[] = [];
  const transportOptions = new Map<VirtioDevice, { coalesce?: VirtioCoalesce }>();
  if (shape.disk) {
    if (!disk) throw new Error("this snapshot was taken with a data disk, and this page has none");
    const blk = new VirtioBlk({ backend: disk, name: "virtio-blk0", clock });
    devices.push(blk);
  }
  // Last, as `parley start` does: Ctrl-Alt-Del powers the guest off gracefully.
  const keyboard = new VirtioKeyboard();
  devices.push(keyboard);
  for (const device of devices) transportOptions.set(device, { coalesce: coalescing.get(device.name) });
  const hostThreads = threads ? Math.max(1, Math.min(shape.harts, scope.navigator.hardwareConcurrency ?? shape.harts)) : undefined;
  // consoleSize: the terminal's size from the start (the virtio-console then offers
  // VIRTIO_CONSOLE_F_SIZE and setSize() follows the terminal).
  const options: ConstructorParameters<typeof VirtMachine>[0] = {
    consoleSize: { cols: settings!.cols, rows: settings!.rows },
    module,
    hartThreads: threads ? webHartThreads({ workerUrl: new URL("hart-worker.js", baseUrl) }) : undefined,
    harts: shape.harts,
    hostThreads,
    pauseLoopWindow: threads ? DEFAULT_PAUSE_LOOP_WINDOW : 0,
    ramSize: shape.memoryMiB * 2 ** 20,
    fromSnapshot: boot === undefined,
    bootPath: "paravirtual",
    kernel: boot?.kernel,
    initrd: boot?.initrd,
    bootargs: DEFAULT_APPEND_HVC,
    console: "hvc",
    virtio: devices,
    virtioTransport: transportOptions,
    output,
    clock,
  };
  return { vm: new VirtMachine(options), keyboard };
}

function ramOf(vm: VirtMachine): Uint8Array {
  const ram = vm.hostRam;
  return new Uint8Array(ram.memory.buffer, ram.ramWasmBase, ram.ramSize);
}

/** Runs a built machine (a restored one is resumed) and follows it to its end. */
function launch(vm: VirtMachine, keyboard: VirtioKeyboard, shape: WebMachineShape, restored: boolean): Boot {
  resizeConsole(vm, settings!.cols, settings!.rows);
  const exited = vm.run();
  const boot: Boot = { vm, keyboard, shape, exited };
  current = boot;
  if (restored) {
    void vm.resume().then(() => setState("running"), fail);
  } else {
    setState("running");
  }
  exited.then(
    (exit) => void ended(boot, exit),
    (error) => {
      fail(error);
      if (current === boot) setState("failed");
    },
  );
  return boot;
}

async function ended(boot: Boot, exit: MachineExit): Promise<void> {
  if (current !== boot || replacing) return;
  if (exit.reason === "reboot") {
    // The guest asked for it: a fresh machine, as `parley start` boots again.
    await bootFresh().catch(failed);
    return;
  }
  if (exit.reason === "failed" || exit.reason === "halted") post({ type: "error", message: exit.message });
  if (exit.reason === "panic") post({ type: "error", message: "the guest kernel panicked" });
  setState(exit.reason === "poweroff" || exit.reason === "stopped" ? "stopped" : "failed");
}

function failed(error: unknown): void {
  fail(error);
  setState("failed");
}

function defaultShape(): WebMachineShape {
  const { cpus, memoryMiB } = settings!;
  return { harts: canShareMemory() ? cpus : 1, memoryMiB, disk: disk !== undefined };
}

async function bootFresh(): Promise<void> {
  const shape = defaultShape();
  const { vm, keyboard } = await buildMachine(shape, files);
  launch(vm, keyboard, shape, false);
}

/** Ends the current boot (if any) on purpose and waits for its threads to return. */
async function endCurrent(): Promise<void> {
  const boot = current;
  if (!boot) return;
  replacing = true;
  try {
    boot.vm.stop();
    await boot.exited.catch(() => undefined);
  } finally {
    replacing = false;
    current = undefined;
  }
}

function fetchGuestFiles(baseUrl: string): Promise<[Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>]> {
  return Promise.all([
    fetchWithProgress(new URL("image/Image", baseUrl).href, "kernel"),
    fetchWithProgress(new URL("image/initrd", baseUrl).href, "initrd"),
  ]);
}

/**
 * The kernel and initramfs, fetched from the moment this worker loads: it sits beside the page
 * (dist/web), so it knows where they are before the page's start message arrives, and their
 * download overlaps the page setting up its terminal and dashboard. Used by the first boot from
 * that directory; any later fetch (after a failure) starts afresh.
 */
let earlyFetch: { baseUrl: string; files: Promise<[Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>]> } | undefined = (() => {
  const baseUrl = new URL(".", scope.location.href).href;
  const files = fetchGuestFiles(baseUrl);
  files.catch(() => {}); // reported when the start message uses it
  return { baseUrl, files };
})();

function guestFiles(baseUrl: string): Promise<[Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>]> {
  const early = earlyFetch;
  earlyFetch = undefined;
  return early?.baseUrl === baseUrl ? early.files : fetchGuestFiles(baseUrl);
}

async function start(message: Extract<ToWorker, { type: "start" }>): Promise<void> {
  settings = { baseUrl: message.baseUrl, cpus: message.cpus, memoryMiB: message.memoryMiB, cols: message.cols, rows: message.rows };
  await loadAndBoot();
}

/** Fetches the guest image (again, after a failed fetch), opens the data disk, boots. */
async function loadAndBoot(): Promise<void> {
  const message = settings!;
  setState("loading");
  const shared = defaultShape().harts > 1;
  const [[kernel, initrd]] = await Promise.all([guestFiles(message.baseUrl), engine(message.baseUrl, shared)]);
  files = { kernel, initrd };
  try {
    disk ??= await openDataDisk(message.baseUrl);
  } catch (error) {
    post({ type: "error", message: `booting without the data disk: ${error instanceof Error ? error.message : String(error)}` });
  }
  await bootFresh();
}

async function snapshot(): Promise<void> {
  const boot = current;
  if (!boot) throw new Error("snapshot: no machine is running");
  const wasRunning = !boot.vm.paused;
  if (wasRunning) await boot.vm.pause();
  try {
    const file = encodeWebSnapshot({ shape: boot.shape, state: boot.vm.saveState(), ram: ramOf(boot.vm) });
    post({ type: "snapshot", blob: file.buffer as ArrayBuffer }, [file.buffer as ArrayBuffer]);
  } finally {
    if (wasRunning) await boot.vm.resume();
  }
}

/**
 * Checks the file, builds a machine of its shape and restores into it while the current machine
 * only waits paused: a file that any part refuses changes nothing, and the current machine goes on.
 */
async function restore(file: ArrayBuffer): Promise<void> {
  const decoded: DecodedWebSnapshot = decodeWebSnapshot(new Uint8Array(file));
  const old = current;
  const wasRunning = old !== undefined && !old.vm.paused && state === "running";
  if (wasRunning) await old.vm.pause();
  let built: { vm: VirtMachine; keyboard: VirtioKeyboard };
  try {
    built = await buildMachine(decoded.header.shape, undefined);
    copyPagesIntoRam(ramOf(built.vm), decoded);
    built.vm.restoreState(decoded.header.state);
    built.vm.vmgenid.regenerate();
  } catch (error) {
    if (wasRunning) await old.vm.resume();
    throw error;
  }
  await endCurrent();
  launch(built.vm, built.keyboard, decoded.header.shape, true);
}

async function pause(): Promise<void> {
  if (!current || state !== "running") return;
  await current.vm.pause();
  setState("paused");
}

async function resume(): Promise<void> {
  if (!current || state !== "paused") return;
  await current.vm.resume();
  setState("running");
}

/** Ctrl-Alt-Del on the guest's keyboard (its init powers off); a machine that cannot take it is stopped. */
function powerOff(): void {
  const boot = current;
  if (!boot) return;
  if (state === "running" && boot.keyboard.sendCtrlAltDel()) return;
  boot.vm.stop();
}

function setCoalescing(device: string, coalesce: VirtioCoalesce | undefined): void {
  const transport = current?.vm.virtio.find((t) => t.name === device || t.device.name === device);
  if (!transport) throw new Error(`set-coalescing: no virtio device named "${device}"`);
  transport.setCoalesce(coalesce);
  coalescing.set(transport.device.name, coalesce);
}

/** Operations that replace or stop machines run one at a time, in the order the page asked. */
let queue: Promise<void> = Promise.resolve();
function serially(operation: () => Promise<void>, onError: (error: unknown) => void = fail): void {
  queue = queue.then(operation).catch(onError);
}

scope.onmessage = (event) => {
  const message = event.data;
  switch (message.type) {
    case "start":
      serially(() => start(message), failed);
      break;
    case "input":
      current?.vm.sendInput(message.bytes);
      break;
    case "resize":
      if (settings) Object.assign(settings, { cols: message.cols, rows: message.rows });
      if (current) resizeConsole(current.vm, message.cols, message.rows);
      break;
    case "pause":
      serially(pause);
      break;
    case "resume":
      serially(resume);
      break;
    case "reset":
      serially(async () => {
        if (!settings) return;
        await endCurrent();
        // A page whose guest image never arrived tries to fetch it again.
        if (!files) await loadAndBoot();
        else await bootFresh();
      }, failed);
      break;
    case "poweroff":
      powerOff();
      break;
    case "set-coalescing":
      try {
        setCoalescing(message.device, message.coalesce);
      } catch (error) {
        fail(error);
      }
      break;
    case "snapshot":
      serially(snapshot);
      break;
    case "restore":
      serially(() => restore(message.file));
      break;
    case "discard-disk":
      serially(async () => {
        if (!disk) throw new Error("discard-disk: this page has no data disk");
        await endCurrent();
        await disk.discardOverlay();
        if (!files) await loadAndBoot();
        else await bootFresh();
      }, failed);
      break;
  }
};

setInterval(() => {
  if (current) post({ type: "ledger", ledger: current.vm.ledger() });
}, LEDGER_INTERVAL_MS);
