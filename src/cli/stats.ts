// Formats the run statistics printed by --stats.

/** Exception and interrupt names by cause number (privileged ISA table 3.6). */
const EXCEPTION_NAMES: Record<number, string> = {
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
};
const INTERRUPT_NAMES: Record<number, string> = {
  1: "supervisor software interrupt",
  3: "machine software interrupt",
  5: "supervisor timer interrupt",
  7: "machine timer interrupt",
  9: "supervisor external interrupt",
  11: "machine external interrupt",
};

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

/** What `parley run --stats` prints for a Linux machine: speed, exits by device, hypercalls, traps. */
export function formatMachineStats(machine: {
  cpu: { instret: bigint; trapCounts(): bigint[] };
  bus: { exits: { byDevice: Map<string, { loads: number; stores: number }>; unmapped: number } };
  sbi?: { counters: { total: number; byFunction: Map<string, number> } };
  startedAt: number;
}): string {
  const seconds = (globalThis.performance.now() - machine.startedAt) / 1000;
  let exits = 0;
  for (const d of machine.bus.exits.byDevice.values()) exits += d.loads + d.stores;
  const lines = [
    formatStats({ instructions: machine.cpu.instret, seconds, trapCounts: machine.cpu.trapCounts(), mmioExits: exits }),
    "MMIO exits by device",
  ];
  for (const [name, d] of machine.bus.exits.byDevice) {
    if (d.loads + d.stores > 0) lines.push(`  ${name.padEnd(10)} ${String(d.loads).padStart(10)} loads ${String(d.stores).padStart(10)} stores`);
  }
  if (machine.bus.exits.unmapped) lines.push(`  unmapped   ${machine.bus.exits.unmapped}`);
  if (machine.sbi) {
    lines.push(`SBI calls             ${machine.sbi.counters.total}`);
    for (const [fn, count] of [...machine.sbi.counters.byFunction].sort((a, b) => b[1] - a[1])) {
      lines.push(`  ${fn.padEnd(30)} ${count}`);
    }
  }
  return lines.join("\n");
}
