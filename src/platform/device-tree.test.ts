import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildVirtDeviceTree, riscvIsaString, SBI_IDLE_STATES, UART0_PATH, type VirtDeviceTreeConfig } from "./device-tree.ts";
import { parseFdt, findNode, getProperty, decodeU32Cells, decodeString, decodeStrings, decodeU64, type FdtNode } from "./fdt.ts";
import { needsHostTools } from "../../test/support/host-tools.ts";

const EXTENSIONS = ["i", "m", "a", "f", "d", "c", "zicsr", "zifencei", "zicntr", "zihintpause", "sstc"];

function config(overrides: Partial<VirtDeviceTreeConfig> = {}): VirtDeviceTreeConfig {
  return {
    harts: 2,
    ramBase: 0x8000_0000,
    ramSize: 0x1_0000_0000,
    isaExtensions: EXTENSIONS,
    timebaseFrequency: 10_000_000,
    bootargs: "console=ttyS0 earlycon",
    initrd: { start: 0x8800_0000, end: 0x8812_3456 },
    stdoutPath: "uart",
    virtio: [{ slot: 3 }, { slot: 0 }],
    withClint: true,
    mmuType: "riscv,sv39",
    ...overrides,
  };
}

const dtc = needsHostTools("dtc");

function node(root: FdtNode, path: string): FdtNode {
  const n = findNode(root, path);
  assert.ok(n, `missing node ${path}`);
  return n;
}
const cells = (n: FdtNode, name: string): number[] => decodeU32Cells(getProperty(n, name)!);
const str = (n: FdtNode, name: string): string => decodeString(getProperty(n, name)!);
const strs = (n: FdtNode, name: string): string[] => decodeStrings(getProperty(n, name)!);

test("round-trips through dtc (dtb -> dts -> dtb) without errors", { skip: dtc.skip }, () => {
  dtc.check();
  const dir = mkdtempSync(join(tmpdir(), "parley-dt-"));
  try {
    for (const variant of [config(), config({ idleStates: true }), config({ harts: 1, idleStates: true, withClint: false, initrd: undefined, virtio: [], stdoutPath: "hvc", mmuType: "riscv,sv48" }), config({ harts: 8, virtio: [0, 1, 2, 3, 4, 5, 6, 7].map((slot) => ({ slot })) })]) {
      const blob = buildVirtDeviceTree(variant);
      writeFileSync(join(dir, "a.dtb"), blob);
      const toDts = spawnSync("dtc", ["-I", "dtb", "-O", "dts", "-o", join(dir, "a.dts"), join(dir, "a.dtb")], { encoding: "utf8" });
      assert.equal(toDts.status, 0, toDts.stderr);
      // dtc runs its full set of semantic checks (unit addresses, simple-bus reg, interrupt
      // providers, phandle references, ...) on the tree we produced: it must have nothing to say.
      assert.equal(toDts.stderr, "", `dtc warnings on our DTB:\n${toDts.stderr}`);
      const back = spawnSync("dtc", ["-I", "dts", "-O", "dtb", "-o", join(dir, "b.dtb"), join(dir, "a.dts")], { encoding: "utf8" });
      assert.equal(back.status, 0, back.stderr);
      // The only warnings allowed on the way back are dtc's complaint that a decompiled
      // interrupts-extended holds raw numbers instead of &label references (decompilation lost
      // the labels; any dumped DTB, QEMU's included, shows it).
      const unexpected = back.stderr
        .split("\n")
        .filter((line) => line.trim() !== "" && !/Warning \(interrupts_extended_property\).*is not a phandle reference/.test(line));
      assert.deepEqual(unexpected, []);
      const again = parseFdt(readFileSync(join(dir, "b.dtb")));
      assert.deepEqual(again.root, parseFdt(blob).root);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("cpus, memory and chosen carry what Linux and OpenSBI read", () => {
  const { root } = parseFdt(buildVirtDeviceTree(config()));
  assert.deepEqual(cells(root, "#address-cells"), [2]);
  const cpus = node(root, "/cpus");
  assert.deepEqual(cells(cpus, "timebase-frequency"), [10_000_000]);
  assert.deepEqual(cells(cpus, "#address-cells"), [1]);
  assert.deepEqual(cells(cpus, "#size-cells"), [0]);
  for (const hart of [0, 1]) {
    const cpu = node(root, `/cpus/cpu@${hart}`);
    assert.equal(str(cpu, "device_type"), "cpu");
    assert.deepEqual(cells(cpu, "reg"), [hart]);
    assert.equal(str(cpu, "status"), "okay");
    assert.equal(str(cpu, "compatible"), "riscv");
    assert.equal(str(cpu, "riscv,isa"), "rv64imafdc_zicntr_zicsr_zifencei_zihintpause_sstc");
    assert.equal(str(cpu, "riscv,isa-base"), "rv64i");
    assert.deepEqual(strs(cpu, "riscv,isa-extensions"), EXTENSIONS);
    assert.equal(str(cpu, "mmu-type"), "riscv,sv39");
    const intc = node(cpu, "/interrupt-controller");
    assert.equal(str(intc, "compatible"), "riscv,cpu-intc");
    assert.deepEqual(cells(intc, "#interrupt-cells"), [1]);
    assert.ok(getProperty(intc, "interrupt-controller"));
    const core = node(root, `/cpus/cpu-map/cluster0/core${hart}`);
    assert.deepEqual(cells(core, "cpu"), cells(cpu, "phandle"));
  }
  const mem = node(root, "/memory@80000000");
  assert.equal(str(mem, "device_type"), "memory");
  assert.deepEqual(cells(mem, "reg"), [0, 0x8000_0000, 1, 0]);
  const chosen = node(root, "/chosen");
  assert.equal(str(chosen, "bootargs"), "console=ttyS0 earlycon");
  assert.equal(str(chosen, "stdout-path"), UART0_PATH);
  assert.equal(decodeU64(getProperty(chosen, "linux,initrd-start")!), 0x8800_0000n);
  assert.equal(decodeU64(getProperty(chosen, "linux,initrd-end")!), 0x8812_3456n);
  assert.equal(str(node(root, "/aliases"), "serial0"), UART0_PATH);
  assert.ok(findNode(root, UART0_PATH));
});

test("soc devices: PLIC contexts, CLINT, UART, RTC, finisher, virtio", () => {
  const { root } = parseFdt(buildVirtDeviceTree(config()));
  const soc = node(root, "/soc");
  assert.deepEqual(strs(soc, "compatible"), ["simple-bus"]);
  assert.equal(getProperty(soc, "ranges")!.length, 0);
  const intc0 = cells(node(root, "/cpus/cpu@0/interrupt-controller"), "phandle")[0];
  const intc1 = cells(node(root, "/cpus/cpu@1/interrupt-controller"), "phandle")[0];

  const plic = node(root, "/soc/plic@c000000");
  assert.deepEqual(strs(plic, "compatible"), ["sifive,plic-1.0.0", "riscv,plic0"]);
  assert.deepEqual(cells(plic, "reg"), [0, 0x0c00_0000, 0, 0x60_0000]);
  assert.deepEqual(cells(plic, "riscv,ndev"), [95]);
  assert.deepEqual(cells(plic, "#interrupt-cells"), [1]);
  assert.deepEqual(cells(plic, "#address-cells"), [0]);
  assert.deepEqual(cells(plic, "interrupts-extended"), [intc0, 11, intc0, 9, intc1, 11, intc1, 9]);
  const plicPhandle = cells(plic, "phandle")[0];

  const clint = node(root, "/soc/clint@2000000");
  assert.deepEqual(strs(clint, "compatible"), ["sifive,clint0", "riscv,clint0"]);
  assert.deepEqual(cells(clint, "interrupts-extended"), [intc0, 3, intc0, 7, intc1, 3, intc1, 7]);

  const uart = node(root, "/soc/serial@10000000");
  assert.equal(str(uart, "compatible"), "ns16550a");
  assert.deepEqual(cells(uart, "clock-frequency"), [3_686_400]);
  assert.deepEqual(cells(uart, "interrupts"), [10]);
  assert.deepEqual(cells(uart, "interrupt-parent"), [plicPhandle]);

  const rtc = node(root, "/soc/rtc@101000");
  assert.equal(str(rtc, "compatible"), "google,goldfish-rtc");
  assert.deepEqual(cells(rtc, "interrupts"), [11]);

  const vmgenid = node(root, "/soc/rng@102000");
  assert.equal(str(vmgenid, "compatible"), "microsoft,vmgenid");
  assert.deepEqual(cells(vmgenid, "reg"), [0, 0x0010_2000, 0, 0x1000]);
  assert.deepEqual(cells(vmgenid, "interrupts"), [12]);
  assert.deepEqual(cells(vmgenid, "interrupt-parent"), [plicPhandle]);

  const testDev = node(root, "/soc/test@100000");
  assert.deepEqual(strs(testDev, "compatible"), ["sifive,test1", "sifive,test0", "syscon"]);
  const testPhandle = cells(testDev, "phandle")[0];
  const poweroff = node(root, "/poweroff");
  assert.equal(str(poweroff, "compatible"), "syscon-poweroff");
  assert.deepEqual(cells(poweroff, "regmap"), [testPhandle]);
  assert.deepEqual(cells(poweroff, "value"), [0x5555]);
  const reboot = node(root, "/reboot");
  assert.equal(str(reboot, "compatible"), "syscon-reboot");
  assert.deepEqual(cells(reboot, "value"), [0x7777]);

  const virtio = soc.children.filter((c) => c.name.startsWith("virtio_mmio@"));
  assert.deepEqual(virtio.map((c) => c.name), ["virtio_mmio@10001000", "virtio_mmio@10004000"]);
  assert.deepEqual(cells(virtio[1], "interrupts"), [4]);
  assert.deepEqual(cells(virtio[1], "reg"), [0, 0x1000_4000, 0, 0x1000]);
  assert.equal(str(virtio[1], "compatible"), "virtio,mmio");
});

test("options: no CLINT, no initrd, sv48", () => {
  const { root } = parseFdt(buildVirtDeviceTree(config({ withClint: false, initrd: undefined, mmuType: "riscv,sv48", harts: 1 })));
  assert.equal(findNode(root, "/soc/clint@2000000"), undefined);
  assert.ok(findNode(root, "/soc/rng@102000"), "the paravirtual path has the vmgenid node too");
  assert.equal(getProperty(node(root, "/chosen"), "linux,initrd-start"), undefined);
  assert.equal(str(node(root, "/cpus/cpu@0"), "mmu-type"), "riscv,sv48");
  assert.equal(findNode(root, "/cpus/cpu@1"), undefined);
});

test("invalid configurations are refused", () => {
  assert.throws(() => buildVirtDeviceTree(config({ harts: 0 })), RangeError);
  assert.throws(() => buildVirtDeviceTree(config({ harts: 33 })), RangeError);
  assert.throws(() => buildVirtDeviceTree(config({ virtio: [{ slot: 8 }] })), RangeError);
  assert.throws(() => buildVirtDeviceTree(config({ virtio: [{ slot: 1 }, { slot: 1 }] })), RangeError);
  assert.throws(() => buildVirtDeviceTree(config({ isaExtensions: ["m", "a"] })), /base "i"/);
  assert.throws(() => buildVirtDeviceTree(config({ isaExtensions: ["i", "Zicsr"] })), RangeError);
  assert.throws(() => buildVirtDeviceTree(config({ initrd: { start: 0x100, end: 0x200 } })), /not inside RAM/);
});

test("idle states: SBI hart_suspend's default types as the idle-states binding describes them", () => {
  const { root } = parseFdt(buildVirtDeviceTree(config({ idleStates: true, harts: 3 })));
  const states = node(root, "/cpus/idle-states");
  assert.deepEqual(
    states.children.map((c) => c.name),
    ["cpu-retentive", "cpu-nonret"],
  );
  const retentive = node(root, "/cpus/idle-states/cpu-retentive");
  const nonRetentive = node(root, "/cpus/idle-states/cpu-nonret");
  for (const state of [retentive, nonRetentive]) {
    assert.deepEqual(strs(state, "compatible"), ["riscv,idle-state"]);
    // Linux copies the node name into a 16-byte buffer (CPUIDLE_NAME_LEN) and the description
    // into a 32-byte one: both must fit, or /sys shows them cut short.
    assert.ok(state.name.length <= 15, state.name);
    assert.ok(str(state, "idle-state-name").length <= 31);
    // idle-states.yaml: entry + exit latency must not exceed the minimum residency.
    const [entry, exit, residency] = ["entry-latency-us", "exit-latency-us", "min-residency-us"].map((name) => cells(state, name)[0]);
    assert.ok(entry > 0 && exit > 0 && entry + exit <= residency, `${state.name}: ${entry} + ${exit} <= ${residency}`);
    // The timer keeps running and wakes a suspended hart (SBI timer and Sstc): no broadcast needed.
    assert.equal(getProperty(state, "local-timer-stop"), undefined);
  }
  // SBI v2.0 §9.4: 0x00000000 default retentive, 0x80000000 default non-retentive.
  assert.deepEqual(cells(retentive, "riscv,sbi-suspend-param"), [0x0000_0000]);
  assert.deepEqual(cells(nonRetentive, "riscv,sbi-suspend-param"), [0x8000_0000]);
  assert.equal(str(retentive, "idle-state-name"), "SBI retentive suspend");
  assert.ok(cells(nonRetentive, "min-residency-us")[0] > cells(retentive, "min-residency-us")[0], "deeper state, longer residency");
  const phandles = [retentive, nonRetentive].map((state) => cells(state, "phandle")[0]);
  for (const hart of [0, 1, 2]) {
    // Shallowest first, the same list on every cpu (Linux's dt_init_idle_driver insists).
    assert.deepEqual(cells(node(root, `/cpus/cpu@${hart}`), "cpu-idle-states"), phandles);
  }
  // Phandles stay unique across the tree.
  const all: number[] = [];
  const walk = (n: FdtNode) => {
    const p = getProperty(n, "phandle");
    if (p) all.push(decodeU32Cells(p)[0]);
    n.children.forEach(walk);
  };
  walk(root);
  assert.equal(new Set(all).size, all.length);
  assert.equal(SBI_IDLE_STATES.length, 2);
});

test("idle states: left out unless asked for", () => {
  const { root } = parseFdt(buildVirtDeviceTree(config()));
  assert.equal(findNode(root, "/cpus/idle-states"), undefined);
  assert.equal(getProperty(node(root, "/cpus/cpu@0"), "cpu-idle-states"), undefined);
  const off = parseFdt(buildVirtDeviceTree(config({ idleStates: false }))).root;
  assert.equal(findNode(off, "/cpus/idle-states"), undefined);
});

test("riscv,isa string ordering", () => {
  assert.equal(riscvIsaString(64, ["c", "i", "a", "m", "d", "f"]), "rv64imafdc");
  assert.equal(riscvIsaString(64, ["sstc", "i", "zba", "xfoo", "zifencei", "m", "zicsr", "svpbmt"]), "rv64im_zicsr_zifencei_zba_sstc_svpbmt_xfoo");
});
