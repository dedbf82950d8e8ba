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
