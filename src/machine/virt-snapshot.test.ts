// VirtMachine.saveState/restoreState at the machine level, with a tiny kernel: the state is plain
// JSON, a restored machine (built fromSnapshot, RAM copied) continues the guest exactly where it
// stopped, and a state that does not fit the machine, or is damaged, is refused with a
// SnapshotError naming the field before the machine is touched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtMachine, type VirtMachineOptions } from "./virt.ts";
import { loadCoreModule } from "../host/node/core-module.ts";
import { aluImm, jal, store, uType, OP, iType } from "../../test/diff/encode.ts";
import { kernelImage } from "../../test/support/guest-kernel.ts";
import { SnapshotError } from "../platform/persist.ts";
import { VirtioRngDevice } from "../virtio/rng/device.ts";

const T0 = 5, T1 = 6;
const RAM_SIZE = 16 << 20;

/** t0 = 1 MiB past the code; forever: t1 = [t0] + 1; [t0] = t1. */
function counterKernel(): Uint8Array {
  return kernelImage([
    uType(OP.AUIPC, T0, 0x100),
    iType(0x03, 3, T1, T0, 0), // ld t1, 0(t0)
    aluImm("addi", T1, T1, 1),
    store("sd", T0, T1, 0),
    jal(0, -12),
  ]);
}

function machine(extra: Partial<VirtMachineOptions> = {}): VirtMachine {
  return new VirtMachine({ module: loadCoreModule(), ramSize: RAM_SIZE, kernel: counterKernel(), bootargs: "", output: () => {}, jit: false, ...extra });
}

function counterAddress(): number {
  // The kernel sits at RAM base + 2 MiB (text_offset); its first instruction's auipc adds 1 MiB.
  return 0x200000 + 64 + 0x100000;
}

function counter(vm: VirtMachine): bigint {
  return new DataView(vm.cpu.ram.buffer, vm.cpu.ram.byteOffset + counterAddress()).getBigUint64(0, true);
}

async function runFor(vm: VirtMachine, ms: number): Promise<void> {
  const finished = vm.run();
  await new Promise((resolve) => setTimeout(resolve, ms));
  await vm.pause();
  void finished;
}

test("a restored machine continues the guest from the saved state (plain JSON, RAM copied)", async () => {
  const vm = machine();
  await runFor(vm, 100);
  const saved = JSON.parse(JSON.stringify(vm.saveState()));
  const before = counter(vm);
  assert.ok(before > 0n, "the guest counted");
  const ram = vm.cpu.ram.slice();
  vm.stop();

  const restored = machine({ fromSnapshot: true, kernel: undefined });
  restored.cpu.ram.set(ram);
  restored.restoreState(saved);
  assert.equal(counter(restored), before);
  assert.equal(restored.cpu.pc, BigInt(saved.cpus[0].pc));
  const finished = restored.run();
  await restored.resume();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(counter(restored) > before, "the counter goes on from where it was");
  restored.stop();
  assert.deepEqual(await finished, { reason: "stopped" });
  assert.throws(() => restored.restoreState(saved), /restored already/);
});

test("states that do not fit the machine, or are damaged, are refused naming the field", async () => {
  const vm = machine({ virtio: [new VirtioRngDevice({ entropy: (b) => b.fill(1) })] });
  await runFor(vm, 20);
  const good = JSON.parse(JSON.stringify(vm.saveState()));
  vm.stop();
  const rng = () => [new VirtioRngDevice({ entropy: (b: Uint8Array) => b.fill(1) })];
  const cases: [string, (s: any) => void, Partial<VirtMachineOptions>, RegExp][] = [
    ["another version", (s) => (s.version = 2), {}, /machine\.version/],
    ["more harts", () => {}, { harts: 2 }, /machine\.harts/],
    ["less RAM", () => {}, { ramSize: 8 << 20 }, /machine\.ramSize/],
    ["other devices", () => {}, { virtio: [] }, /machine\.virtioDevices/],
    ["firmware boot", () => {}, { bootPath: "firmware" }, /machine\.bootPath/],
    ["a bad pc", (s) => (s.cpus[0].pc = "0xnothex"), {}, /machine\.cpus\[0\]\.pc/],
    ["a privilege level 2", (s) => (s.cpus[0].priv = 2), {}, /machine\.cpus\[0\]\.priv/],
    ["a missing CSR", (s) => delete s.cpus[0].csrs.satp, {}, /machine\.cpus\[0\]\.csrs\.satp/],
    ["an HSM state out of range", (s) => (s.hsm[0] = 9), {}, /machine\.hsm\[0\]/],
    ["a negative guest time", (s) => (s.guestTime = -5), {}, /machine\.guestTime/],
    ["a PLIC of another size", (s) => (s.plic.sources = 3), {}, /plic/],
    ["a damaged virtio transport", (s) => (s.virtio[0] = { version: 1 }), {}, /virtio|transport/i],
    ["not an object", (s) => Object.keys(s).forEach((k) => delete s[k]), {}, /machine\.version/],
  ];
  for (const [name, damage, options, message] of cases) {
    const state = structuredClone(good);
    damage(state);
    const target = machine({ fromSnapshot: true, kernel: undefined, virtio: rng(), ...options });
    assert.throws(() => target.restoreState(state), (err: unknown) => err instanceof SnapshotError && message.test(err.message), name);
  }
  assert.throws(() => machine().restoreState(good), /fromSnapshot/);
});
