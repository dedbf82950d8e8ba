// The paravirtualization ledger: what a run cost in the currency of a hypervisor -- exits from
// the CPU core to device models, hypercalls (SBI), interrupts injected, virtqueue notifications
// and used-buffer interrupts sent or avoided, bytes moved per device, instructions, wall time.
//
// collectLedger() reads the counters the machine's parts keep anyway and returns a plain,
// JSON-serializable snapshot; it changes nothing. Everything that counts on a hot path counts
// by number (the bus by device and offset); names are made here, once per collection.
// It is typed against the little it reads, so the Linux machine (VirtMachine), the bare-metal
// machine and tests with hand-made parts can all provide one.
import type { HostClock } from "../platform/clock.ts";
import { exitKey, type ExitCounts } from "./bus.ts";
import type { VirtqueueCounters } from "../virtio/types.ts";
import type { TranslatorCounters } from "../cpu/cpu.ts";
import type { VirtioCoalesce } from "../virtio/transport/coalesce.ts";

/** Version of the ledger's shape, for readers of `--stats-json` files. */
export const LEDGER_VERSION = 1;

export interface Ledger {
  version: typeof LEDGER_VERSION;
  /** From the machine's construction to the end of its run (or to now, while it runs). */
  wallSeconds: number;
  /** Guest instructions retired (minstret). */
  instructions: number;
  exits: LedgerExits;
  sbi: LedgerSbi;
  /** Interrupts the hart took (by cause), and interrupt requests devices raised (by source). */
  interrupts: LedgerInterrupts;
  /** Exceptions the hart took, by cause (ECALLs served by the hypervisor never trap). */
  exceptions: { total: number; byCause: Record<string, number> };
  /** By virtio device (transport) name. */
  virtio: Record<string, LedgerVirtio>;
  /** The RISC-V -> wasm translator's counters; absent when it is off. */
  translator?: TranslatorCounters;
  /** By device: bytes into the guest (`in`: disk reads, received frames, console input, entropy) and out of it. */
  bytes: Record<string, { in: number; out: number }>;
  /**
   * By hart (index = hart id), on machines with more than one; the totals above are their sums
   * (exits and interrupts by source are the machine's, not split by hart).
   */
  perHart?: LedgerHart[];
  /**
   * The machine's lifecycle (VirtMachine only): pauses (PATCH /vm, snapshots, migration) and the
   * host time they took, and dirty-page logging for migration.
   */
  lifecycle?: LedgerLifecycle;
}

export interface LedgerLifecycle {
  pauses: number;
  pausedMs: number;
  /** Dirty-page log (live migration): harvests, pages they reported, stores that took the slow path to mark a page. */
  dirtyLogHarvests: number;
  dirtyPagesHarvested: number;
  dirtyPageFaults: number;
}

export interface LedgerHart {
  instructions: number;
  /** Interrupt and exception traps the hart took. */
  interrupts: number;
  exceptions: number;
  /** SBI calls the hart made, IPIs sent to it, remote fences it was asked to perform. */
  sbiCalls: number;
  ipisReceived: number;
  remoteFences: number;
  /** Loads and stores of this hart that left the core for a device model (MMIO exits). */
  mmioExits: number;
  /**
   * Where the hart's wall time went on its host thread (harts on threads; 0 otherwise): running,
   * steal (runnable while another hart of its thread ran), halted (WFI, stopped), suspended (SBI
   * HSM), parked (waiting in WRS). Nanoseconds.
   */
  runningNs: number;
  stealNs: number;
  haltedNs: number;
  suspendedNs: number;
  parkedNs: number;
  /** WRS waits (Zawrs): parks, those that ended by timeout rather than a write or interrupt, and their total length. */
  wrsParks: number;
  wrsTimeouts: number;
  wrsWaitNs: number;
  /** Slices ended by pause-loop exiting, and slices given up (WRS, pause loop) to another hart of the thread. */
  pauseExits: number;
  directedYields: number;
  /** SBI hart_suspend calls the hart entered (its idle states, with Linux's cpuidle-riscv-sbi). */
  suspends: number;
}

export interface LedgerExits {
  /** Every load or store that left the core for the host, including `unmapped` ones. */
  total: number;
  /** Accesses to no device (the guest gets an access fault). */
  unmapped: number;
  /** By device name in address-map order, every mapped device listed. */
  byDevice: Record<string, { loads: number; stores: number; byRegister: Record<string, number> }>;
}

export interface LedgerSbi {
  total: number;
  /** "TIME" -> calls; calls to extensions Parley lacks count as "unknown". */
  byExtension: Record<string, number>;
  /** "TIME.set_timer" -> calls, most frequent first. */
  byFunction: Record<string, number>;
  /** Failed calls by SBI error name ("SBI_ERR_NOT_SUPPORTED"). */
  errors: Record<string, number>;
}

export interface LedgerInterrupts {
  /** Interrupt traps taken by the hart. */
  total: number;
  /** "supervisor timer" -> interrupt traps taken. */
  byCause: Record<string, number>;
  /**
   * Device name -> interrupt requests its PLIC gateway forwarded (each is one claim for the
   * guest). Every wired source is listed; an unwired source appears as "source N" if it fired.
   */
  bySource: Record<string, number>;
}

export interface LedgerVirtio {
  /** QueueNotify writes (kicks) naming an existing queue, including those ignored. */
  notificationsReceived: number;
  /** Kicks ignored: before DRIVER_OK, after a failure, for unknown or unready queues. */
  notificationsIgnored: number;
  /**
   * Kicks avoided: summed over queues, max(0, chains popped - kicks received while the queue was
   * live), i.e. how many fewer notifications the driver sent than one per chain. EVENT_IDX
   * (avail_event) and VIRTQ_USED_F_NO_NOTIFY are what make the driver skip them; a driver that
   * batches several chains per kick saves the same way and is counted too.
   */
  notificationsSuppressed: number;
  /** Used-buffer interrupts raised, and used-buffer signals the driver's suppression made unnecessary. */
  usedInterruptsSent: number;
  usedInterruptsSuppressed: number;
  /** Configuration-change interrupts raised (including DEVICE_NEEDS_RESET). */
  configInterrupts: number;
  /** Rising edges of the transport's interrupt line (raised interrupts coalesce until acknowledged). */
  irqAssertions: number;
  /** The used-buffer interrupt coalescing in force now; null when off (one interrupt decision per completion). */
  coalesce: VirtioCoalesce | null;
  /**
   * Completions gathered into coalesced batches, and the batches ended by reaching maxCompletions
   * or by the maxDelayUs timer: completions per batch is what coalescing saved (0 when it was never on).
   */
  coalescedCompletions: number;
  coalesceBatchesByCount: number;
  coalesceBatchesByTimer: number;
  perQueue: LedgerVirtqueue[];
}

/**
 * One virtqueue. notificationsReceived counts for the whole run; the other fields come from
 * the queue object the driver set up last (they restart when it resets the device or the queue).
 */
export interface LedgerVirtqueue {
  queue: number;
  notificationsReceived: number;
  notificationsSuppressed: number;
  chainsPopped: number;
  chainsUsed: number;
  usedInterruptsSent: number;
  usedInterruptsSuppressed: number;
}

/** The parts of a machine the ledger reads. Optional parts are absent on machines without them. */
export interface LedgerMachine {
  readonly cpu: { readonly instret: bigint; trapCounts(): readonly bigint[]; translatorCounters?(): TranslatorCounters | undefined };
  readonly bus: { readonly exits: ExitCounts };
  /** performance.now() at construction, and when run() returned (undefined while running). */
  readonly startedAt: number;
  /** The clock startedAt and stoppedAt come from; the ledger reads "now" from it. */
  readonly clock?: HostClock;
  readonly stoppedAt?: number;
  readonly sbi?: {
    readonly counters: {
      readonly total: number;
      readonly byExtension: ReadonlyMap<string, number>;
      readonly byFunction: ReadonlyMap<string, number>;
      readonly byError: ReadonlyMap<string, number>;
    };
  };
  readonly plic?: { readonly counters: { readonly raised: readonly number[] } };
  /** PLIC source number -> name of the device wired to it. */
  readonly interruptSources?: ReadonlyMap<number, string>;
  readonly uart?: { readonly name: string; readonly counters: { readonly bytesIn: number; readonly bytesOut: number } };
  readonly virtio?: readonly LedgerVirtioTransport[];
  /** Bytes through the SBI debug console (legacy putchar/getchar, DBCN): `in` to the guest. */
  readonly sbiConsoleBytes?: { readonly in: number; readonly out: number };
  /** Every hart when there are several (`cpu` is then hart 0), with its counters by index. */
  readonly cpus?: readonly { readonly instret: bigint; trapCounts(): readonly bigint[] }[];
  readonly hartCounters?: readonly { readonly sbiCalls: number; readonly ipisReceived: number; readonly remoteFences: number; readonly mmioExits?: number; readonly stealNs?: number; readonly suspends?: number }[];
  /** Per hart, what its host thread's scheduler counted (harts on threads). */
  hartSchedulerStats?(): readonly LedgerSchedulerStats[] | undefined;
  pauseCounters?: { readonly pauses: number; readonly pausedMs: number };
  readonly dirtyLogStats?: { readonly harvests: number; readonly pagesHarvested: number; readonly dirtyPageFaults: number };
  /** The translator's counters summed over every hart (else hart 0's, through `cpu`). */
  translatorCounters?(): TranslatorCounters | undefined;
}

/** What the ledger reads of a virtio transport (VirtioMmioTransport provides it). */
export interface LedgerVirtioTransport {
  readonly name: string;
  readonly counters: {
    readonly notifications: readonly number[];
    readonly notificationsIgnored: number;
    readonly usedInterrupts: number;
    readonly usedInterruptsSuppressed: number;
    readonly configInterrupts: number;
    readonly irqAssertions: number;
    /** Absent on transports without coalescing. */
    readonly coalescedCompletions?: number;
    readonly coalesceFlushesByCount?: number;
    readonly coalesceFlushesByTimer?: number;
  };
  /** The device model: its `counters`, if it keeps any, are searched for byte counts. */
  readonly device: object;
  queue(index: number): { readonly counters: VirtqueueCounters } | undefined;
  /** The coalescing setting ({ 1, 0 } when off); absent on transports without coalescing. */
  readonly coalescing?: VirtioCoalesce;
}

/** The ledger's name for the SBI debug console in `bytes` (it is not a mapped device). */
export const SBI_CONSOLE_DEVICE = "sbi-console";

/** Exception names by cause (privileged ISA, table "mcause values after trap"). */
export const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  0: "instruction address misaligned",
  1: "instruction access fault",
  2: "illegal instruction",
  3: "breakpoint",
  4: "load address misaligned",
  5: "load access fault",
  6: "store/AMO address misaligned",
  7: "store/AMO access fault",
  8: "environment call from U-mode",
  9: "environment call from S-mode",
  11: "environment call from M-mode",
  12: "instruction page fault",
  13: "load page fault",
  15: "store/AMO page fault",
  18: "software check",
  19: "hardware error",
};

/** Interrupt names by cause (same table; mcause with the interrupt bit set). */
export const INTERRUPT_NAMES: Readonly<Record<number, string>> = {
  1: "supervisor software",
  3: "machine software",
  5: "supervisor timer",
  7: "machine timer",
  9: "supervisor external",
  11: "machine external",
  13: "counter overflow",
};

/**
 * Byte counters of Parley's device models as [into the guest, out of the guest] field pairs, in
 * the order they are looked for. A device whose counters have none of them moves no data
 * (virtio-balloon moves pages, not bytes).
 */
const BYTE_COUNTER_FIELDS: readonly (readonly [string, string | undefined])[] = [
  ["bytesIn", "bytesOut"], // 16550 (RBR reads / THR writes), virtio-console
  ["bytesRead", "bytesWritten"], // virtio-blk: disk reads land in the guest, writes leave it
  ["rxBytes", "txBytes"], // virtio-net
  ["bytesToGuest", "bytesFromGuest"], // virtio-vsock
  ["bytes", undefined], // virtio-rng: entropy into the guest
];

/** A device's bytes moved, from whichever counter pair its counters object has. Pure. */
export function deviceBytes(counters: unknown): { in: number; out: number } | undefined {
  if (typeof counters !== "object" || counters === null) return undefined;
  const c = counters as Record<string, unknown>;
  for (const [inField, outField] of BYTE_COUNTER_FIELDS) {
    if (typeof c[inField] !== "number") continue;
    if (outField !== undefined && typeof c[outField] !== "number") continue;
    return { in: c[inField] as number, out: outField === undefined ? 0 : (c[outField] as number) };
  }
  return undefined;
}

function fromMap(map: ReadonlyMap<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  // Most frequent first (ties by name): the order a reader wants, stable between collections.
  for (const [key, value] of [...map].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) out[key] = value;
  return out;
}

function collectExits(exits: ExitCounts): LedgerExits {
  const byDevice: LedgerExits["byDevice"] = {};
  let total = exits.unmapped;
  for (const [name, d] of exits.byDevice) {
    total += d.loads + d.stores;
    const byRegister: Record<string, number> = {};
    // Register-map order; offsets sharing a name (bytes of one register, per-source PLIC
    // priorities) add up.
    for (const key of [...d.byOffset.keys()].sort((a, b) => a - b)) {
      const { offset, access } = exitKey(key);
      const register = d.registerName(offset, access);
      byRegister[register] = (byRegister[register] ?? 0) + d.byOffset.get(key)!;
    }
    byDevice[name] = { loads: d.loads, stores: d.stores, byRegister };
  }
  return { total, unmapped: exits.unmapped, byDevice };
}

function collectTraps(trapCounts: readonly bigint[]): { interrupts: Omit<LedgerInterrupts, "bySource">; exceptions: Ledger["exceptions"] } {
  const interrupts = { total: 0, byCause: {} as Record<string, number> };
  const exceptions = { total: 0, byCause: {} as Record<string, number> };
  trapCounts.forEach((count, index) => {
    if (count === 0n) return;
    const n = Number(count);
    const cause = index & 31;
    if (index >= 32) {
      interrupts.total += n;
      interrupts.byCause[INTERRUPT_NAMES[cause] ?? `interrupt ${cause}`] = n;
    } else {
      exceptions.total += n;
      exceptions.byCause[EXCEPTION_NAMES[cause] ?? `exception ${cause}`] = n;
    }
  });
  return { interrupts, exceptions };
}

function collectSources(machine: LedgerMachine): Record<string, number> {
  const bySource: Record<string, number> = {};
  const raised = machine.plic?.counters.raised ?? [];
  const names = machine.interruptSources ?? new Map<number, string>();
  for (const [source, name] of [...names].sort((a, b) => a[0] - b[0])) bySource[name] = raised[source] ?? 0;
  raised.forEach((count, source) => {
    if (count > 0 && !names.has(source)) bySource[`source ${source}`] = count;
  });
  return bySource;
}

/** A setting that changes nothing ({ 1, 0 }: every completion signals at once) is reported as null. Pure. */
export function coalesceInForce(c: VirtioCoalesce | undefined): VirtioCoalesce | null {
  if (!c || c.maxCompletions <= 1 || c.maxDelayUs === 0) return null;
  return { maxCompletions: c.maxCompletions, maxDelayUs: c.maxDelayUs };
}

function collectVirtio(transport: LedgerVirtioTransport): LedgerVirtio {
  const c = transport.counters;
  const perQueue: LedgerVirtqueue[] = c.notifications.map((kicks, queue) => {
    const q = transport.queue(queue)?.counters;
    return {
      queue,
      notificationsReceived: kicks,
      // Both terms from the same queue object, so that a reset cannot make them disagree.
      notificationsSuppressed: q ? Math.max(0, q.popped - q.notificationsReceived) : 0,
      chainsPopped: q?.popped ?? 0,
      chainsUsed: q?.used ?? 0,
      usedInterruptsSent: q?.interruptsSent ?? 0,
      usedInterruptsSuppressed: q?.interruptsSuppressed ?? 0,
    };
  });
  return {
    notificationsReceived: c.notifications.reduce((a, b) => a + b, 0),
    notificationsIgnored: c.notificationsIgnored,
    notificationsSuppressed: perQueue.reduce((a, q) => a + q.notificationsSuppressed, 0),
    usedInterruptsSent: c.usedInterrupts,
    usedInterruptsSuppressed: c.usedInterruptsSuppressed,
    configInterrupts: c.configInterrupts,
    irqAssertions: c.irqAssertions,
    coalesce: coalesceInForce(transport.coalescing),
    coalescedCompletions: c.coalescedCompletions ?? 0,
    coalesceBatchesByCount: c.coalesceFlushesByCount ?? 0,
    coalesceBatchesByTimer: c.coalesceFlushesByTimer ?? 0,
    perQueue,
  };
}

/**
 * The ledger of `machine` as of `now` (performance.now() milliseconds; only wall time depends on
 * it). Pure: reads counters, changes nothing.
 */
export function collectLedger(machine: LedgerMachine, now: number = machine.clock?.now() ?? machine.stoppedAt ?? machine.startedAt): Ledger {
  const harts = machine.cpus !== undefined && machine.cpus.length > 1 ? machine.cpus : undefined;
  const trapsByHart = harts?.map((cpu) => cpu.trapCounts());
  // Read once: harts on threads keep counting while the ledger is collected, and the total must
  // be the sum of the per-hart figures it shows.
  const instretByHart = harts?.map((cpu) => Number(cpu.instret));
  const { interrupts, exceptions } = collectTraps(trapsByHart ? sumTrapCounts(trapsByHart) : machine.cpu.trapCounts());
  const sbiCounters = machine.sbi?.counters;
  const virtio: Record<string, LedgerVirtio> = {};
  const bytes: Record<string, { in: number; out: number }> = {};
  if (machine.uart) bytes[machine.uart.name] = { in: machine.uart.counters.bytesIn, out: machine.uart.counters.bytesOut };
  if (machine.sbiConsoleBytes) bytes[SBI_CONSOLE_DEVICE] = { in: machine.sbiConsoleBytes.in, out: machine.sbiConsoleBytes.out };
  for (const transport of machine.virtio ?? []) {
    virtio[transport.name] = collectVirtio(transport);
    const moved = deviceBytes((transport.device as { counters?: unknown }).counters);
    if (moved) bytes[transport.name] = moved;
  }
  return {
    version: LEDGER_VERSION,
    wallSeconds: Math.max(0, ((machine.stoppedAt ?? now) - machine.startedAt) / 1000),
    instructions: instretByHart ? instretByHart.reduce((sum, n) => sum + n, 0) : Number(machine.cpu.instret),
    exits: collectExits(machine.bus.exits),
    sbi: {
      total: sbiCounters?.total ?? 0,
      byExtension: fromMap(sbiCounters?.byExtension ?? new Map()),
      byFunction: fromMap(sbiCounters?.byFunction ?? new Map()),
      errors: fromMap(sbiCounters?.byError ?? new Map()),
    },
    interrupts: { ...interrupts, bySource: collectSources(machine) },
    exceptions,
    virtio,
    ...translatorPart(machine),
    bytes,
    ...(machine.pauseCounters ? { lifecycle: collectLifecycle(machine.pauseCounters, machine.dirtyLogStats) } : {}),
    ...(instretByHart && trapsByHart ? { perHart: collectHarts(instretByHart, trapsByHart, machine.hartCounters, machine.hartSchedulerStats?.()) } : {}),
  };
}

function collectLifecycle(
  pauses: { readonly pauses: number; readonly pausedMs: number },
  dirty: { readonly harvests: number; readonly pagesHarvested: number; readonly dirtyPageFaults: number } | undefined,
): LedgerLifecycle {
  return {
    pauses: pauses.pauses,
    pausedMs: pauses.pausedMs,
    dirtyLogHarvests: dirty?.harvests ?? 0,
    dirtyPagesHarvested: dirty?.pagesHarvested ?? 0,
    dirtyPageFaults: dirty?.dirtyPageFaults ?? 0,
  };
}

function sumTrapCounts(byHart: readonly (readonly bigint[])[]): bigint[] {
  return byHart[0].map((_, cause) => byHart.reduce((sum, counts) => sum + counts[cause], 0n));
}

function collectHarts(
  instretByHart: readonly number[],
  trapsByHart: readonly (readonly bigint[])[],
  counters: LedgerMachine["hartCounters"],
  scheduler: readonly LedgerSchedulerStats[] | undefined,
): LedgerHart[] {
  return instretByHart.map((instructions, hart) => {
    const { interrupts, exceptions } = collectTraps(trapsByHart[hart]);
    const c = counters?.[hart];
    return {
      instructions,
      interrupts: interrupts.total,
      exceptions: exceptions.total,
      sbiCalls: c?.sbiCalls ?? 0,
      ipisReceived: c?.ipisReceived ?? 0,
      remoteFences: c?.remoteFences ?? 0,
      mmioExits: c?.mmioExits ?? 0,
      ...schedulerPart(scheduler?.[hart], c?.stealNs),
      suspends: c?.suspends ?? 0,
    };
  });
}

/** The scheduler's figures a hart thread publishes (src/machine/hart-control.ts). */
export interface LedgerSchedulerStats {
  readonly runningNs: number;
  readonly stealNs: number;
  readonly haltedNs: number;
  readonly suspendedNs: number;
  readonly parkedNs: number;
  readonly wrsParks: number;
  readonly wrsTimeouts: number;
  readonly wrsWaitNs: number;
  readonly pauseExits: number;
  readonly directedYields: number;
}

const SCHEDULER_FIELDS = [
  "runningNs", "stealNs", "haltedNs", "suspendedNs", "parkedNs", "wrsParks", "wrsTimeouts", "wrsWaitNs", "pauseExits", "directedYields",
] as const satisfies readonly (keyof LedgerSchedulerStats)[];

/** A hart's scheduling figures: from its host thread, else (round robin) only the steal the machine measured. */
function schedulerPart(s: LedgerSchedulerStats | undefined, roundRobinStealNs: number | undefined): LedgerSchedulerStats {
  const part = Object.fromEntries(SCHEDULER_FIELDS.map((field) => [field, s?.[field] ?? 0])) as Record<keyof LedgerSchedulerStats, number>;
  if (!s) part.stealNs = roundRobinStealNs ?? 0;
  return part;
}

function translatorPart(machine: LedgerMachine): { translator?: TranslatorCounters } {
  const translator = machine.translatorCounters ? machine.translatorCounters() : machine.cpu.translatorCounters?.();
  return translator ? { translator } : {};
}
