// The Markdown section of the pv comparisons (pv-results.md): what each comparison does, its
// tables and its charts, for the README.
import { IDLE_SETTLE_S } from "./contention.ts";
import { COMPARISONS, type PvResults } from "./results.ts";
import { NET_DATAGRAM, STREAM_BLOCK_KIB, STREAM_READERS } from "./workloads.ts";

type Tables = Record<string, string>;
/** The Markdown image of a chart. */
type Image = (name: string) => string;

interface SectionContext {
  r: PvResults;
  tables: Tables;
  img: Image;
}

/** Sections in order, each written when its first table is present. */
const SECTIONS: { table: string; lines: (context: SectionContext) => string[] }[] = [
  { table: "console", lines: consoleSection },
  { table: "timer", lines: timerSection },
  { table: "boot", lines: bootSection },
  { table: "plic", lines: plicSection },
  { table: "coalesceBlk", lines: coalesceSection },
  { table: "contention", lines: contentionSection },
];

export function formatMarkdown(r: PvResults, tables: Tables, chartDir: string, command: string): string {
  const img: Image = (name) => `![${name}](${chartDir}${name}.png)`;
  const parts: string[] = [
    "## Paravirtual paths against their emulated counterparts",
    "",
    `Measured with \`${command}\` (${r.date.slice(0, 10)}, Debian ${r.kernel}, Node ${r.host.node}, ${r.host.cpus} host CPUs, ` +
      `host load average ${r.host.loadStart.toFixed(1)} at the start and ${(r.host.loadEnd ?? NaN).toFixed(1)} at the end` +
      `${r.quick ? ", quick mode: reduced sizes" : ""}). Each comparison runs Linux doing the same work both ways, in one run; ` +
      "the guests are driven from the host, which reads the machine's counters (MMIO exits, hypercalls, traps, device " +
      "interrupts, instructions retired) in the output callbacks of two markers the guest prints right before and right " +
      "after each measured command, so every number below belongs to one workload. Guest-side times come from a small static program " +
      "(`guest/pv/pvbench.c`) using `clock_gettime`, which Linux serves from the vDSO by reading the `time` CSR. " +
      "An exit is a guest access that leaves the CPU core for the hypervisor: an MMIO access to a device model or an SBI call (hypercall).",
    "",
  ];
  for (const section of SECTIONS) if (tables[section.table]) parts.push(...section.lines({ r, tables, img }));
  const measured = COMPARISONS.filter((c) => r[c] !== undefined);
  const stored = measured.length < COMPARISONS.length ? `pv-results-${measured.join("+")}` : "pv-results";
  parts.push(`Raw results: \`cache/bench/${r.quick ? "pv-quick" : "pv"}/${stored}.json\`.`, "");
  return parts.join("\n");
}

function consoleSection({ r, tables, img }: SectionContext): string[] {
  return [
    "### Console: 16550 against virtio-console",
    "",
    "One guest booted with `--console hvc` writes the same payload (staged in tmpfs, both ttys in raw output mode with " +
      "`stty -opost`) to `/dev/ttyS0` and to `/dev/hvc0`, alternating, " +
      (r.console!.runs > 1 ? `${r.console!.runs} times each (the run with the median time is shown). ` : "once each. ") +
      "`pvbench write` times 4 KiB `write`s and a final `tcdrain` (until the driver has handed every byte to the device). " +
      "The counters of the same command with an empty file are subtracted, so starting the program and the markers are " +
      "charged to neither side. Instructions include the guest's timer ticks during the transfer, so the slower path pays more of them.",
    "",
    tables.console,
    "",
    img("pv-console"),
    "",
    "The kernel's boot log from the first line to \"Run /init\", through each early console (`console=hvc0`, so that the early " +
      "console carries the whole log), median of the runs:",
    "",
    tables.earlycon,
    "",
    img("pv-earlycon"),
    "",
  ];
}

function timerSection({ tables, img }: SectionContext): string[] {
  return [
    "### Timer: SBI set_timer against Sstc",
    "",
    "Two guests, `sstc: false` (Linux programs its timer with the SBI `set_timer` hypercall) and `sstc: true` (Linux writes " +
      "`stimecmp`; the core raises the interrupt itself, no exit). Idle is `sleep`, busy is a spin loop in the guest; the " +
      "exits of an empty phase (printing its end marker on hvc0) are subtracted. Timer lateness " +
      "is cyclictest's method: a thread sleeps with `clock_nanosleep(TIMER_ABSTIME)` to the next point of a 1 ms grid and " +
      "records how late it woke; busy runs the same with a CPU hog competing for the only hart. Lateness depends little on " +
      "the timer path: in both modes the core takes the timer interrupt at the start of an execution slice (the run loop " +
      "shortens the slice that spans the next deadline, from `stimecmp` or the SBI deadline alike), and a hart asleep in " +
      "WFI is woken by the machine's clock, which on Node (`nodeClock`) keeps sub-millisecond deadlines: it sleeps with " +
      "`setTimeout` until the last 1.5 ms and then checks the clock from the event loop.",
    "",
    tables.timer,
    "",
    img("pv-timer"),
    "",
  ];
}

function bootSection({ tables, img }: SectionContext): string[] {
  return [
    "### Boot: hypervisor SBI against OpenSBI firmware",
    "",
    "The same kernel, initramfs and command line (`console=ttyS0`) booted on the paravirtual path (the kernel starts in S-mode; " +
      "its SBI calls are hypercalls) and with Debian's OpenSBI `fw_dynamic` in emulated M-mode (SBI calls trap into the " +
      "guest's own firmware; the firmware's timer and console are emulated devices), until Linux prints \"Run /init\"; median of the runs. " +
      "With Sstc (Parley's default) Linux programs its timer without SBI, so the firmware is rarely entered; without Sstc every " +
      "timer programming is an SBI call, which OpenSBI serves by writing the emulated CLINT's mtimecmp. Instruction counts " +
      "and times vary between identical boots (the kernel does time-dependent work while booting, and without Sstc the number " +
      "of timer calls follows the time taken), as the ranges show; differences within those ranges are noise.",
    "",
    tables.boot,
    "",
    img("pv-boot"),
    "",
  ];
}

function plicSection({ tables, img }: SectionContext): string[] {
  return [
    "### Interrupt controller: PLIC exits per virtio interrupt",
    "",
    "Every external interrupt costs Linux's PLIC driver a claim (a load), a second claim that finds nothing and ends its loop, " +
      "and a complete (a store): each an exit to the emulated PLIC, on top of the virtio device's own InterruptStatus read " +
      "and InterruptACK write. Parley has no paravirtual interrupt controller; coalescing (below) is the lever that divides " +
      "these exits among several completions.",
    "",
    tables.plic,
    "",
    img("pv-plic"),
    "",
  ];
}

function coalesceSection({ tables, img }: SectionContext): string[] {
  return [
    "### Interrupt coalescing on virtio-blk and virtio-net",
    "",
    "`--disk path=FILE,coalesce=N/Tus` and `--net ...,coalesce=N/Tus` (or `N/Tms`): the transport raises the used-buffer " +
      "interrupt once N completions are pending or T after the first one, whichever comes first, and asks the driver's " +
      "suppression (flags, `used_event`) at that moment. The settings are swept in one guest (the benchmark changes them " +
      "between phases, after an unmeasured warm-up of every workload). Interrupts are rising edges of the device's interrupt " +
      "line; a UDP round trip completes on two queues (the sent datagram, then the reply), which one coalesced interrupt can " +
      "cover. Latency: `pvbench readlat` (4 KiB `O_DIRECT` reads, one at a time) and `pvbench udprr` (64-byte UDP " +
      `echo from the host); throughput: ${STREAM_READERS} parallel \`dd iflag=direct bs=${STREAM_BLOCK_KIB}k\` readers, each over its own ` +
      `part of the disk, and the guest sending ${NET_DATAGRAM}-byte UDP datagrams as fast as its socket allows (the other end of ` +
      "the link is an in-process responder: ARP, UDP echo, discard). The delay is a host timer that checks the clock between " +
      "the guest's execution slices (`nodeClock` in `src/host/node/clock.ts`), so T is honoured below Node's 1 ms timer granularity.",
    "",
    tables.coalesceBlk,
    "",
    tables.coalesceNet,
    "",
    img("pv-coalesce"),
    "",
  ];
}

function contentionSection({ r, tables, img }: SectionContext): string[] {
  const c = r.contention!;
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  return [
    "### Lock contention under overcommit: Zawrs and pause-loop exiting against spinning",
    "",
    "Whole `parley run` processes (and `qemu-system-riscv64 -smp 4 -accel tcg,thread=multi` for reference) boot the same kernel " +
      `and the 7-Zip/sysbench image with two small programs added (\`guest/smp/contend.c\`, \`guest/smp/wrsping.c\`) on ${c.hostCores} host cores. ` +
      "Parley runs 4 harts and 8 harts on 2 host threads (`--cpus N --host-threads 2`), each with Zawrs and pause-loop exiting " +
      "on (a hart waiting on a lock parks or yields, and its thread runs another hart) and with `--zawrs off --ple off` (plain " +
      `spinning). In each guest, one thread per CPU for ${c.seconds} s: \`${c.workloads.pipe}\` (one byte written into one shared ` +
      "pipe and read back: the pipe mutex), " +
      `\`${c.workloads.file}\` (64-byte \`pwrite\`s into one tmpfs file: the inode lock) and \`${c.workloads.sysbench}\`` +
      `${c.sysbenchVersion ? ` (sysbench ${c.sysbenchVersion})` : ""}; p99 is the 99th percentile of one operation's time (one event for sysbench), from the guest clock.`,
    "",
    tables.contention,
    "",
    "Ratios (throughput: first over second, higher is better; p99 (inverse): second's p99 over first's, higher means a shorter tail for the first). " +
      "The goal of cooperative scheduling is at least 1.3x the throughput of spinning at 2x overcommit (4 harts on 2 threads):",
    "",
    tables.contentionRatios,
    "",
    img("pv-contention"),
    "",
    "Per-hart figures from each Parley run's `--stats-json` ledger (the whole run, boot and the three workloads; steal is time a hart " +
      "was runnable while another hart of its thread ran):",
    "",
    tables.contentionHarts,
    "",
    `Idle: the default image, ${c.idle.harts} harts on ${c.idle.hostThreads} host threads, at its shell prompt (after ${IDLE_SETTLE_S} s), host CPU ` +
      "time of the process (all threads) from `/proc/PID/stat`. WRS wake latency: `" + c.workloads.wake + "` in a 2-hart guest: a thread on " +
      "CPU 1 waits with `lr.d` + `wrs.nto` on a flag; one on CPU 0 stores the time CSR into it after a random 20-100 µs; the waiter " +
      "reads the time CSR when its `lr.d` sees the store.",
    "",
    tables.contentionIdleWake,
    "",
    `Host load average (1, 5, 15 min): ${load(c.loadAverage.start)} before this comparison, ${load(c.loadAverage.end)} after.`,
    "",
  ];
}
