// Formats the run statistics printed by --stats: the paravirtualization ledger as tables
// (formatLedger), and the short summary of `parley demo` (formatStats).
import { EXCEPTION_NAMES, INTERRUPT_NAMES, type Ledger } from "../machine/ledger.ts";

export interface RunStats {
  instructions: bigint;
  seconds: number;
  trapCounts: bigint[];
  mmioExits: number;
}

export function formatStats(stats: RunStats): string {
  const lines: string[] = [];
  const mips = stats.seconds > 0 ? Number(stats.instructions) / stats.seconds / 1e6 : 0;
  lines.push(`instructions retired  ${stats.instructions}`);
  lines.push(`wall time             ${stats.seconds.toFixed(3)} s`);
  lines.push(`speed                 ${mips.toFixed(1)} MIPS`);
  lines.push(`MMIO exits            ${stats.mmioExits}`);
  const traps = stats.trapCounts
    .map((count, index) => ({ count, index }))
    .filter((t) => t.count > 0n);
  lines.push(`traps                 ${traps.reduce((sum, t) => sum + t.count, 0n)}`);
  for (const { count, index } of traps) {
    const isInterrupt = index >= 32;
    const cause = index & 31;
    const name = (isInterrupt ? INTERRUPT_NAMES[cause] : EXCEPTION_NAMES[cause]) ?? "reserved";
    lines.push(`  ${isInterrupt ? "interrupt" : "exception"} ${String(cause).padStart(2)} ${name.padEnd(32)} ${count}`);
  }
  return lines.join("\n");
}

/** A table row: its depth (0 = section heading, 1 = item, 2 = sub-item) and its cells. */
type Row = { depth: number; cells: (string | number)[] };

/**
 * Lays out one section: the first column left-aligned and indented by depth, the others
 * right-aligned, every column as wide as its widest cell. Pure.
 */
export function renderTable(rows: readonly Row[]): string[] {
  const text = rows.map((r) => r.cells.map(String));
  const first = Math.max(...rows.map((r, i) => 2 * r.depth + text[i][0].length));
  const columns = Math.max(...text.map((t) => t.length));
  const widths: number[] = [];
  for (let c = 1; c < columns; c++) widths.push(Math.max(...text.map((t) => (t[c] ?? "").length)));
  return rows.map((r, i) => {
    let line = (" ".repeat(2 * r.depth) + text[i][0]).padEnd(first);
    for (let c = 1; c < columns; c++) line += "  " + (text[i][c] ?? "").padStart(widths[c - 1]);
    return line.trimEnd();
  });
}

function entries(record: Record<string, number>): [string, number][] {
  return Object.entries(record);
}

/** What `--stats` prints at exit: the ledger of the run, section by section. */
export function formatLedger(ledger: Ledger): string {
  return LEDGER_SECTIONS.map((section) => section(ledger))
    .filter((rows): rows is Row[] => rows !== undefined)
    .map((rows) => renderTable(rows).join("\n"))
    .join("\n\n");
}

/** Each section of the --stats output; undefined leaves a section out (nothing to show). */
const LEDGER_SECTIONS: ((ledger: Ledger) => Row[] | undefined)[] = [runRows, hartRows, schedulingRows, translatorRows, exitRows, sbiRows, interruptRows, virtioRows, byteRows];

function runRows(ledger: Ledger): Row[] {
  const mips = ledger.wallSeconds > 0 ? ledger.instructions / ledger.wallSeconds / 1e6 : 0;
  return [
    { depth: 0, cells: ["Run"] },
    { depth: 1, cells: ["wall time (s)", ledger.wallSeconds.toFixed(3)] },
    { depth: 1, cells: ["instructions retired", ledger.instructions] },
    { depth: 1, cells: ["speed (MIPS)", mips.toFixed(1)] },
  ];
}

/** Only on machines with several harts (the ledger has perHart then). */
function hartRows(ledger: Ledger): Row[] | undefined {
  if (!ledger.perHart) return undefined;
  const rows: Row[] = [{ depth: 0, cells: ["Harts", "instructions", "interrupts", "exceptions", "SBI calls", "MMIO exits", "IPIs in", "fences in", "suspends", "steal (ms)"] }];
  ledger.perHart.forEach((h, hart) =>
    rows.push({ depth: 1, cells: [`hart ${hart}`, h.instructions, h.interrupts, h.exceptions, h.sbiCalls, h.mmioExits, h.ipisReceived, h.remoteFences, h.suspends, (h.stealNs / 1e6).toFixed(1)] }),
  );
  return rows;
}

/** With harts on host threads: where each hart's time went and how it waited (ms, µs). */
function schedulingRows(ledger: Ledger): Row[] | undefined {
  if (!ledger.perHart || !ledger.perHart.some((h) => h.runningNs + h.haltedNs + h.suspendedNs > 0)) return undefined;
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  const rows: Row[] = [
    { depth: 0, cells: ["Hart time (ms)", "running", "steal", "halted", "suspended", "WRS parked", "WRS waits", "timeouts", "pause exits", "yields"] },
  ];
  ledger.perHart.forEach((h, hart) =>
    rows.push({
      depth: 1,
      cells: [`hart ${hart}`, ms(h.runningNs), ms(h.stealNs), ms(h.haltedNs), ms(h.suspendedNs), ms(h.parkedNs), h.wrsParks, h.wrsTimeouts, h.pauseExits, h.directedYields],
    }),
  );
  return rows;
}

function translatorRows(ledger: Ledger): Row[] | undefined {
  const t = ledger.translator;
  if (!t) return undefined;
  const share = ledger.instructions > 0 ? (100 * t.instructionsTranslatedRetired) / ledger.instructions : 0;
  return [
    { depth: 0, cells: ["Translator (RISC-V -> wasm)", ""] },
    { depth: 1, cells: ["instructions retired in translated code", `${t.instructionsTranslatedRetired} (${share.toFixed(1)}%)`] },
    { depth: 1, cells: ["calls into translated code", t.entries] },
    { depth: 1, cells: ["CSR instructions in translated code (left after)", `${t.csrAccesses} (${t.csrExits})`] },
    { depth: 1, cells: ["pages translated", t.pagesTranslated] },
    { depth: 1, cells: ["guest instructions translated", t.instructionsTranslated] },
    { depth: 1, cells: ["translations dropped (code written)", t.drops] },
    { depth: 1, cells: ["decoded pages dropped (code written)", t.codePagesDropped] },
    { depth: 1, cells: ["writes to data in code pages (nothing dropped)", t.codePageDataWrites] },
    { depth: 1, cells: ["wasm modules compiled", `${t.modules} (${(t.wasmBytes / 1024).toFixed(0)} KiB)`] },
    { depth: 1, cells: ["host time translating / compiling (ms)", `${t.translateMs.toFixed(0)} / ${t.compileMs.toFixed(0)}`] },
    ...(t.cacheHits + t.cacheMisses + t.cacheStores > 0
      ? [
          {
            depth: 1,
            cells: ["translation cache: hits / misses / stored / evicted / refused", `${t.cacheHits} / ${t.cacheMisses} / ${t.cacheStores} / ${t.cacheEvictions} / ${t.cacheRejected}`],
          } as Row,
        ]
      : []),
    ...(t.failures ? [{ depth: 1, cells: ["pages left to the interpreter (translation failed)", t.failures] } as Row] : []),
  ];
}

function exitRows(ledger: Ledger): Row[] {
  const exits: Row[] = [{ depth: 0, cells: ["MMIO exits (core -> device models)", "loads", "stores", "total"] }];
  for (const [device, d] of Object.entries(ledger.exits.byDevice)) {
    if (d.loads + d.stores === 0) continue;
    exits.push({ depth: 1, cells: [device, d.loads, d.stores, d.loads + d.stores] });
    for (const [register, count] of entries(d.byRegister)) exits.push({ depth: 2, cells: [register, "", "", count] });
  }
  if (ledger.exits.unmapped) exits.push({ depth: 1, cells: ["(unmapped)", "", "", ledger.exits.unmapped] });
  exits.push({ depth: 1, cells: ["all devices", "", "", ledger.exits.total] });
  return exits;
}

function sbiRows(ledger: Ledger): Row[] | undefined {
  if (ledger.sbi.total === 0) return undefined;
  const sbi: Row[] = [{ depth: 0, cells: ["SBI calls (hypercalls)", "calls"] }];
  for (const [fn, count] of entries(ledger.sbi.byFunction)) sbi.push({ depth: 1, cells: [fn, count] });
  for (const [error, count] of entries(ledger.sbi.errors)) sbi.push({ depth: 1, cells: [`failed: ${error}`, count] });
  sbi.push({ depth: 1, cells: ["all calls", ledger.sbi.total] });
  return sbi;
}

function interruptRows(ledger: Ledger): Row[] {
  const interrupts: Row[] = [{ depth: 0, cells: ["Interrupts taken", "count"] }];
  for (const [cause, count] of entries(ledger.interrupts.byCause)) interrupts.push({ depth: 1, cells: [cause, count] });
  interrupts.push({ depth: 1, cells: ["all interrupts", ledger.interrupts.total] });
  const sources = entries(ledger.interrupts.bySource);
  if (sources.length) {
    interrupts.push({ depth: 0, cells: ["Interrupt requests by source (PLIC)", ""] });
    for (const [source, count] of sources) interrupts.push({ depth: 1, cells: [source, count] });
  }
  if (ledger.exceptions.total > 0) {
    interrupts.push({ depth: 0, cells: ["Exceptions taken", ""] });
    for (const [cause, count] of entries(ledger.exceptions.byCause)) interrupts.push({ depth: 1, cells: [cause, count] });
  }
  return interrupts;
}

function virtioRows(ledger: Ledger): Row[] | undefined {
  const virtio = Object.entries(ledger.virtio);
  if (!virtio.length) return undefined;
  const rows: Row[] = [{ depth: 0, cells: ["Virtio", "kicks", "kicks avoided", "chains", "used irqs", "used irqs avoided", "config irqs"] }];
  for (const [device, v] of virtio) {
    const chains = v.perQueue.reduce((a, q) => a + q.chainsPopped, 0);
    rows.push({
      depth: 1,
      cells: [device, v.notificationsReceived, v.notificationsSuppressed, chains, v.usedInterruptsSent, v.usedInterruptsSuppressed, v.configInterrupts],
    });
    for (const q of v.perQueue) {
      if (q.notificationsReceived + q.chainsPopped === 0) continue;
      rows.push({
        depth: 2,
        cells: [`queue ${q.queue}`, q.notificationsReceived, q.notificationsSuppressed, q.chainsPopped, q.usedInterruptsSent, q.usedInterruptsSuppressed, ""],
      });
    }
  }
  return rows;
}

function byteRows(ledger: Ledger): Row[] | undefined {
  const bytes = Object.entries(ledger.bytes);
  if (!bytes.length) return undefined;
  const rows: Row[] = [{ depth: 0, cells: ["Bytes moved", "to guest", "from guest"] }];
  for (const [device, b] of bytes) rows.push({ depth: 1, cells: [device, b.in, b.out] });
  return rows;
}
