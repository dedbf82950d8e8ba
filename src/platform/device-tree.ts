// The device tree Parley hands to firmware (OpenSBI) or directly to Linux for its "virt" platform.
// The node and property names follow the Linux devicetree bindings (Documentation/devicetree/
// bindings/...) cited at each node, and the shape of QEMU's riscv virt tree, which both OpenSBI's
// generic platform and Linux are tested against. Pure: configuration in, DTB bytes out.
import { buildFdt, fdtNode, prop, type FdtNode } from "./fdt.ts";
import {
  CLINT_BASE,
  CLINT_SIZE,
  PLIC_BASE,
  PLIC_SIZE,
  PLIC_MAX_HARTS,
  PLIC_NUM_SOURCES,
  RTC_BASE,
  RTC_IRQ,
  RTC_SIZE,
  TEST_BASE,
  TEST_SIZE,
  UART0_BASE,
  UART0_IRQ,
  UART0_SIZE,
  VMGENID_BASE,
  VMGENID_IRQ,
  VMGENID_SIZE,
  VIRTIO_MMIO_SIZE,
  VIRTIO_MMIO_SLOTS,
  virtioIrq,
  virtioMmioBase,
} from "./memory-map.ts";

export interface VirtDeviceTreeConfig {
  harts: number;
  ramBase: number;
  ramSize: number;
  /** Lower-case extension names, single letters and multi-letter ones: ["i","m","a","f","d","c","zicsr",...]. */
  isaExtensions: string[];
  /** mtime ticks per second (10 MHz on QEMU virt). */
  timebaseFrequency: number;
  bootargs: string;
  /** Physical range of the initramfs; end is exclusive (Linux: initrd_end = linux,initrd-end). */
  initrd?: { start: number; end: number };
  /**
   * Which console the machine means to use. Both values point /chosen/stdout-path at the UART:
   * with "hvc" the kernel command line names console=hvc0, which takes precedence over
   * stdout-path (of_console_check() ignores stdout-path once console= is given), while `earlycon`
   * and OpenSBI's console still find the UART through it.
   */
  stdoutPath: "uart" | "hvc";
  virtio: { slot: number }[];
  /** Describe the CLINT: only for the firmware boot path, where OpenSBI runs in M-mode. */
  withClint: boolean;
  mmuType: "riscv,sv39" | "riscv,sv48" | "riscv,sv57";
  /**
   * Describe the SBI HSM suspend types as CPU idle states (IDLE_STATES), which Linux's
   * cpuidle-riscv-sbi driver then offers its governor next to WFI. Only when the SBI
   * implementation serves hart_suspend with both default types; default false.
   */
  idleStates?: boolean;
}

/** One CPU idle state entered through SBI hart_suspend (bindings/cpu/idle-states.yaml). */
export interface SbiIdleState {
  /**
   * The node name, which Linux (dt_idle_states.c) copies as the state's name into a 16-byte
   * buffer: at most 15 characters reach /sys/devices/system/cpu/cpu N/cpuidle/state M/name.
   */
  name: string;
  /** Its `idle-state-name`, Linux's state `desc` (at most 31 characters survive). */
  description: string;
  /** riscv,sbi-suspend-param: the suspend_type argument of SBI hart_suspend (SBI v2.0 §9.4). */
  suspendParam: number;
  entryLatencyUs: number;
  exitLatencyUs: number;
  minResidencyUs: number;
}

/**
 * The two default suspend types of SBI v2.0 §9.4 (table "HSM Hart Suspend Types"), shallow to
 * deep, as the binding orders cpu-idle-states. Latencies are Parley's own cost, not hardware's:
 * either state is a hypercall after which the hart's host thread sleeps (as after WFI) until an
 * interrupt is pending; the non-retentive one also has Linux save its context (cpu_suspend) and
 * come back through its resume entry with the MMU off, which drops the hart's TLB and
 * translations, hence its longer exit latency and the residency needed to be worth it. With
 * harts on threads each suspend and resume is also a round trip to the I/O thread, tens of µs
 * when that thread sleeps: short idles are cheaper in WFI (the driver's state 0), so the
 * residencies keep the suspend states for idles of a millisecond and more (a futex ping-pong
 * between two harts took 330 µs per round trip with 100/2000 µs residencies, 200 µs without
 * idle states).
 *
 * No `local-timer-stop` on either: the timer (SBI set_timer and Sstc stimecmp) keeps running in
 * both and wakes a suspended hart, as it wakes one in WFI, so Linux needs no broadcast timer.
 */
export const SBI_IDLE_STATES: readonly SbiIdleState[] = [
  { name: "cpu-retentive", description: "SBI retentive suspend", suspendParam: 0x0000_0000, entryLatencyUs: 50, exitLatencyUs: 100, minResidencyUs: 1000 },
  { name: "cpu-nonret", description: "SBI non-retentive suspend", suspendParam: 0x8000_0000, entryLatencyUs: 100, exitLatencyUs: 300, minResidencyUs: 5000 },
];

/** UART input clock as on QEMU virt (hw/riscv/virt.c): 3.6864 MHz, the classic 16550 crystal. */
export const UART0_CLOCK_FREQUENCY = 3_686_400;
/** sifive,test0 finisher codes written by syscon-poweroff / syscon-reboot (see syscon-test.ts). */
const FINISHER_PASS = 0x5555;
const FINISHER_RESET = 0x7777;

/** RISC-V interrupt numbers as the riscv,cpu-intc specifier (privileged spec, mip/mie bits). */
const IRQ_M_SOFT = 3;
const IRQ_M_TIMER = 7;
const IRQ_S_EXT = 9;
const IRQ_M_EXT = 11;

export const SOC_PATH = "/soc";
export const UART0_PATH = `${SOC_PATH}/serial@${UART0_BASE.toString(16)}`;

/**
 * Canonical order of single-letter extensions in an ISA string (unprivileged spec, chapter
 * "ISA Extension Naming Conventions", table "Standard ISA extension names").
 */
const SINGLE_LETTER_ORDER = "imafdqlcbkjtpvh";

function letterRank(c: string): number {
  const r = SINGLE_LETTER_ORDER.indexOf(c);
  return r < 0 ? SINGLE_LETTER_ORDER.length : r;
}

/**
 * The legacy `riscv,isa` string, e.g. "rv64imafdc_zicsr_zifencei_zihintpause_sstc": single-letter
 * extensions in canonical order, then multi-letter ones separated by underscores, Z extensions
 * first (by the category letter that follows the Z, then alphabetically), then S, then X
 * (same chapter, "Multi-letter extensions ... ordering").
 */
export function riscvIsaString(xlen: 32 | 64, extensions: readonly string[]): string {
  const single = extensions.filter((e) => e.length === 1).sort((a, b) => letterRank(a) - letterRank(b));
  const multiRank = (e: string): number[] => {
    if (e.startsWith("z")) return [0, letterRank(e[1])];
    if (e.startsWith("s")) return [1, 0];
    return [2, 0]; // "x..." vendor extensions last
  };
  const multi = extensions
    .filter((e) => e.length > 1)
    .sort((a, b) => {
      const [ka, kb] = [multiRank(a), multiRank(b)];
      return ka[0] - kb[0] || ka[1] - kb[1] || (a < b ? -1 : a > b ? 1 : 0);
    });
  return [`rv${xlen}${single.join("")}`, ...multi].join("_");
}

function checkConfig(config: VirtDeviceTreeConfig): void {
  const { harts, ramBase, ramSize, isaExtensions, initrd, virtio } = config;
  if (!Number.isInteger(harts) || harts < 1 || harts > PLIC_MAX_HARTS) {
    throw new RangeError(`harts must be 1..${PLIC_MAX_HARTS} (the PLIC window holds ${2 * PLIC_MAX_HARTS} contexts), got ${harts}`);
  }
  if (!Number.isSafeInteger(ramBase) || !Number.isSafeInteger(ramSize) || ramSize <= 0 || ramBase < 0) {
    throw new RangeError(`invalid RAM range 0x${ramBase.toString(16)} + 0x${ramSize.toString(16)}`);
  }
  if (!Number.isInteger(config.timebaseFrequency) || config.timebaseFrequency <= 0 || config.timebaseFrequency > 0xffff_ffff) {
    throw new RangeError(`invalid timebase frequency ${config.timebaseFrequency}`);
  }
  const seen = new Set<string>();
  for (const ext of isaExtensions) {
    if (!/^[a-z][a-z0-9]*$/.test(ext)) throw new RangeError(`ISA extension name ${JSON.stringify(ext)} must be lower-case letters and digits`);
    if (seen.has(ext)) throw new RangeError(`ISA extension ${ext} is listed twice`);
    seen.add(ext);
  }
  if (!seen.has("i")) throw new RangeError('isaExtensions must include the base "i"');
  if (initrd && (initrd.end < initrd.start || initrd.start < ramBase || initrd.end > ramBase + ramSize)) {
    throw new RangeError(`initrd 0x${initrd.start.toString(16)}..0x${initrd.end.toString(16)} is not inside RAM`);
  }
  const slots = new Set<number>();
  for (const { slot } of virtio) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= VIRTIO_MMIO_SLOTS) throw new RangeError(`virtio slot ${slot} is outside 0..${VIRTIO_MMIO_SLOTS - 1}`);
    if (slots.has(slot)) throw new RangeError(`virtio slot ${slot} is used twice`);
    slots.add(slot);
  }
}

/** `reg` for a parent with #address-cells = #size-cells = 2. */
const reg64 = (base: number, size: number): Uint8Array => prop.u64(base, size);
const hex = (n: number): string => n.toString(16);

/** The phandles nodes refer to each other by: per hart its cpu and its interrupt controller. */
interface Phandles {
  readonly cpu: readonly number[];
  readonly intc: readonly number[];
  readonly plic: number;
  readonly test: number;
  /** One per SBI_IDLE_STATES entry (allocated whether or not the tree holds them). */
  readonly idleStates: readonly number[];
}

function allocatePhandles(harts: number): Phandles {
  let next = 1;
  const cpu: number[] = [];
  const intc: number[] = [];
  for (let hart = 0; hart < harts; hart++) {
    cpu.push(next++);
    intc.push(next++);
  }
  const plic = next++;
  const test = next++;
  return { cpu, intc, plic, test, idleStates: SBI_IDLE_STATES.map(() => next++) };
}

export function buildVirtDeviceTree(config: VirtDeviceTreeConfig): Uint8Array {
  checkConfig(config);
  const phandles = allocatePhandles(config.harts);
  const root = fdtNode(
    "",
    {
      "#address-cells": prop.u32(2),
      "#size-cells": prop.u32(2),
      compatible: prop.strings(["parley,virt", "riscv-virtio"]),
      model: prop.string("Parley RISC-V virt"),
    },
    [
      chosenNode(config),
      fdtNode("aliases", { serial0: prop.string(UART0_PATH) }),
      fdtNode(`memory@${hex(config.ramBase)}`, {
        device_type: prop.string("memory"),
        reg: reg64(config.ramBase, config.ramSize),
      }),
      cpusNode(config, phandles),
      // bindings/power/reset/syscon-poweroff.yaml and syscon-reboot.yaml
      fdtNode("poweroff", {
        compatible: prop.string("syscon-poweroff"),
        regmap: prop.phandle(phandles.test),
        offset: prop.u32(0),
        value: prop.u32(FINISHER_PASS),
      }),
      fdtNode("reboot", {
        compatible: prop.string("syscon-reboot"),
        regmap: prop.phandle(phandles.test),
        offset: prop.u32(0),
        value: prop.u32(FINISHER_RESET),
      }),
      socNode(config, phandles),
    ],
  );
  return buildFdt({ root, bootCpuId: 0 });
}

/** /cpus (bindings/riscv/cpus.yaml, riscv/extensions.yaml, interrupt-controller/riscv,cpu-intc.yaml). */
function cpusNode(config: VirtDeviceTreeConfig, { cpu: cpuPhandles, intc: intcPhandles, idleStates: idlePhandles }: Phandles): FdtNode {
  const isa = riscvIsaString(64, config.isaExtensions);
  const cpuNodes: FdtNode[] = [];
  for (let hart = 0; hart < config.harts; hart++) {
    cpuNodes.push(
      fdtNode(
        `cpu@${hex(hart)}`,
        {
          phandle: prop.phandle(cpuPhandles[hart]),
          device_type: prop.string("cpu"),
          reg: prop.u32(hart), // the hart ID
          status: prop.string("okay"),
          compatible: prop.string("riscv"),
          "riscv,isa": prop.string(isa),
          "riscv,isa-base": prop.string("rv64i"),
          "riscv,isa-extensions": prop.strings(config.isaExtensions),
          "mmu-type": prop.string(config.mmuType),
          // bindings/cpu/idle-states.yaml: the states this cpu may enter, shallowest first.
          "cpu-idle-states": config.idleStates ? prop.concat(...idlePhandles.map((phandle) => prop.phandle(phandle))) : undefined,
        },
        [
          fdtNode("interrupt-controller", {
            phandle: prop.phandle(intcPhandles[hart]),
            compatible: prop.string("riscv,cpu-intc"),
            "#interrupt-cells": prop.u32(1),
            "#address-cells": prop.u32(0), // interrupt providers state it (dtc's interrupt_provider check)
            "interrupt-controller": prop.empty(),
          }),
        ],
      ),
    );
  }
  // bindings/cpu/cpu-topology.txt: one cluster whose cores are the harts.
  const cpuMap = fdtNode("cpu-map", {}, [
    fdtNode(
      "cluster0",
      {},
      cpuPhandles.map((phandle, hart) => fdtNode(`core${hart}`, { cpu: prop.phandle(phandle) })),
    ),
  ]);
  return fdtNode(
    "cpus",
    {
      "#address-cells": prop.u32(1),
      "#size-cells": prop.u32(0),
      "timebase-frequency": prop.u32(config.timebaseFrequency),
    },
    [...cpuNodes, cpuMap, ...(config.idleStates ? [idleStatesNode(idlePhandles)] : [])],
  );
}

/**
 * /cpus/idle-states (bindings/cpu/idle-states.yaml; riscv/cpus.yaml refers to it for
 * cpu-idle-states): each state compatible "riscv,idle-state" with the SBI suspend_type that
 * enters it, which drivers/cpuidle/cpuidle-riscv-sbi.c passes to hart_suspend. RISC-V needs no
 * entry-method (that is ARM's "psci").
 */
function idleStatesNode(phandles: readonly number[]): FdtNode {
  return fdtNode(
    "idle-states",
    {},
    SBI_IDLE_STATES.map((state, i) =>
      fdtNode(state.name, {
        phandle: prop.phandle(phandles[i]),
        compatible: prop.string("riscv,idle-state"),
        "idle-state-name": prop.string(state.description),
        "riscv,sbi-suspend-param": prop.u32(state.suspendParam),
        "entry-latency-us": prop.u32(state.entryLatencyUs),
        "exit-latency-us": prop.u32(state.exitLatencyUs),
        "min-residency-us": prop.u32(state.minResidencyUs),
      }),
    ),
  );
}

/** /soc: a simple-bus with an identity `ranges`, holding every memory-mapped device. */
function socNode(config: VirtDeviceTreeConfig, { intc: intcPhandles, plic: plicPhandle, test: testPhandle }: Phandles): FdtNode {
  const perHart = (pair: (hart: number) => [number, number]): Uint8Array =>
    prop.concat(
      ...intcPhandles.flatMap((intc, hart) => {
        const [a, b] = pair(hart);
        return [prop.u32(intc, a), prop.u32(intc, b)];
      }),
    );
  const socChildren: FdtNode[] = [];
  // bindings/interrupt-controller/sifive,plic-1.0.0.yaml: context 2N is hart N's M-mode external
  // interrupt (cause 11), context 2N+1 its S-mode one (cause 9), in that order.
  socChildren.push(
    fdtNode(`plic@${hex(PLIC_BASE)}`, {
      phandle: prop.phandle(plicPhandle),
      compatible: prop.strings(["sifive,plic-1.0.0", "riscv,plic0"]),
      reg: reg64(PLIC_BASE, PLIC_SIZE),
      "#address-cells": prop.u32(0),
      "#interrupt-cells": prop.u32(1),
      "interrupt-controller": prop.empty(),
      "interrupts-extended": perHart(() => [IRQ_M_EXT, IRQ_S_EXT]),
      "riscv,ndev": prop.u32(PLIC_NUM_SOURCES),
    }),
  );
  if (config.withClint) {
    // bindings/timer/sifive,clint.yaml: per hart, the M-mode software and timer interrupts.
    socChildren.push(
      fdtNode(`clint@${hex(CLINT_BASE)}`, {
        compatible: prop.strings(["sifive,clint0", "riscv,clint0"]),
        reg: reg64(CLINT_BASE, CLINT_SIZE),
        "interrupts-extended": perHart(() => [IRQ_M_SOFT, IRQ_M_TIMER]),
      }),
    );
  }
  // bindings/power/reset/syscon-{poweroff,reboot}.yaml regmap this node; sifive,test1 is the
  // QEMU finisher that also accepts FINISHER_RESET.
  socChildren.push(
    fdtNode(`test@${hex(TEST_BASE)}`, {
      phandle: prop.phandle(testPhandle),
      compatible: prop.strings(["sifive,test1", "sifive,test0", "syscon"]),
      reg: reg64(TEST_BASE, TEST_SIZE),
    }),
  );
  // bindings/rtc/trivial-rtc.yaml lists google,goldfish-rtc.
  socChildren.push(
    fdtNode(`rtc@${hex(RTC_BASE)}`, {
      compatible: prop.string("google,goldfish-rtc"),
      reg: reg64(RTC_BASE, RTC_SIZE),
      "interrupt-parent": prop.phandle(plicPhandle),
      interrupts: prop.u32(RTC_IRQ),
    }),
  );
  // bindings/rng/microsoft,vmgenid.yaml (node name as in its example): the ID is in the first 16
  // bytes of the region; the interrupt says a new one is there.
  socChildren.push(
    fdtNode(`rng@${hex(VMGENID_BASE)}`, {
      compatible: prop.string("microsoft,vmgenid"),
      reg: reg64(VMGENID_BASE, VMGENID_SIZE),
      "interrupt-parent": prop.phandle(plicPhandle),
      interrupts: prop.u32(VMGENID_IRQ),
    }),
  );
  // bindings/serial/8250.yaml: byte registers (reg-shift 0, reg-io-width 1 are the defaults).
  socChildren.push(
    fdtNode(`serial@${hex(UART0_BASE)}`, {
      compatible: prop.string("ns16550a"),
      reg: reg64(UART0_BASE, UART0_SIZE),
      "clock-frequency": prop.u32(UART0_CLOCK_FREQUENCY),
      "interrupt-parent": prop.phandle(plicPhandle),
      interrupts: prop.u32(UART0_IRQ),
    }),
  );
  // bindings/virtio/mmio.yaml. Sorted by slot so the tree does not depend on argument order.
  for (const { slot } of [...config.virtio].sort((a, b) => a.slot - b.slot)) {
    const base = virtioMmioBase(slot);
    socChildren.push(
      fdtNode(`virtio_mmio@${hex(base)}`, {
        compatible: prop.string("virtio,mmio"),
        reg: reg64(base, VIRTIO_MMIO_SIZE),
        "interrupt-parent": prop.phandle(plicPhandle),
        interrupts: prop.u32(virtioIrq(slot)),
      }),
    );
  }
  return fdtNode(
    "soc",
    {
      "#address-cells": prop.u32(2),
      "#size-cells": prop.u32(2),
      compatible: prop.string("simple-bus"),
      ranges: prop.empty(),
    },
    socChildren,
  );
}

/** /chosen (DTSpec 3.6; Linux: linux,initrd-* may be one or two cells, we use two). */
function chosenNode(config: VirtDeviceTreeConfig): FdtNode {
  return fdtNode("chosen", {
    bootargs: prop.string(config.bootargs),
    "stdout-path": prop.string(UART0_PATH),
    "linux,initrd-start": config.initrd ? prop.u64(config.initrd.start) : undefined,
    "linux,initrd-end": config.initrd ? prop.u64(config.initrd.end) : undefined,
  });
}
