// The guest that the PLIC and coalescing comparisons share: a virtio-blk disk with real contents
// and a virtio-net link to an in-process responder (ARP, UDP echo, discard), warmed up, then swept
// over the coalescing settings.
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBlockFile } from "../../src/host/node/block-file.ts";
import { VirtioBlk } from "../../src/virtio/blk/device.ts";
import { VirtioNet } from "../../src/virtio/net/device.ts";
import type { VirtioCoalesce } from "../../src/virtio/transport/mmio.ts";
import { MODULES, type PvGuest } from "./guest.ts";
import { ResponderBackend } from "./responder.ts";
import { bootShell, type BenchImage, type Log } from "./session.ts";
import { coalescePoints, sweepCoalescing } from "./coalesce.ts";
import { plicResults } from "./plic.ts";
import type { CoalescePoint, PlicResult } from "./results.ts";
import { GUEST_IP, HOST_IP, NET_DATAGRAM, STREAM_READERS, streamCommand, type WorkloadSizes } from "./workloads.ts";

export async function ioComparison(
  img: BenchImage,
  size: WorkloadSizes,
  settings: VirtioCoalesce[],
  passes: number,
  log: Log,
): Promise<{ plic: PlicResult[]; coalesce: CoalescePoint[] }> {
  const dir = mkdtempSync(join(tmpdir(), "parley-bench-pv-"));
  const diskPath = join(dir, "disk.img");
  // A little larger than the streaming read.
  writeDiskImage(diskPath, size.streamMiB + 8);
  const backend = await openBlockFile(diskPath, { id: "bench" });
  const responder = new ResponderBackend({ ip: HOST_IP, mac: Uint8Array.of(0x52, 0x54, 0, 0, 0, 2) });
  const blk = new VirtioBlk({ backend, name: "virtio-blk0" });
  const net = new VirtioNet({ backend: responder, mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56), name: "virtio-net0" });
  log("plic/coalesce: booting a guest with virtio-blk and virtio-net (in-process UDP responder)");
  let guest: PvGuest | undefined;
  try {
    // Coalescing starts off; the sweep sets it between phases (setCoalesce), timed by the
    // machine's clock (the session passes nodeClock), which honours delays below a millisecond.
    guest = await bootShell(img, { virtio: [blk, net], modules: MODULES.io });
    const host = HOST_IP.join(".");
    await bringUpNetwork(guest, host);
    const blkT = guest.machine.virtio.find((t) => t.name === "virtio-blk0")!;
    const netT = guest.machine.virtio.find((t) => t.name === "virtio-net0")!;
    await warmUp(guest, host);
    const runs = await sweepCoalescing({ guest, blk: blkT, net: netT, host }, size, settings, passes, log);
    const coalesce = coalescePoints(settings, runs);
    const plic = plicResults(settings, runs);
    blkT.setCoalesce(undefined);
    netT.setCoalesce(undefined);
    return { plic, coalesce };
  } finally {
    await guest?.stop();
    await blk.drain?.();
    await backend.close();
    await responder.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A disk with real contents (not a sparse file): a repeating byte pattern. */
function writeDiskImage(path: string, mib: number): void {
  const fd = openSync(path, "w");
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 131 + 7) & 0xff;
  for (let i = 0; i < mib; i++) writeSync(fd, chunk);
  closeSync(fd);
}

async function bringUpNetwork(guest: PvGuest, host: string): Promise<void> {
  // The first datagram also resolves the responder's address (ARP).
  const up = await guest.run(`ip link set eth0 up && ip addr add ${GUEST_IP}/24 dev eth0 && pvbench udprr ${host} 7 3 16`);
  if (up.status !== 0 || !/rtt_n=3/.test(up.text)) throw new Error(`network setup failed: ${up.text}`);
}

/**
 * Every workload once, unmeasured: the first run of each also pays for the host's JIT compiling
 * the device paths and the guest faulting in its programs, which would favour later settings.
 */
async function warmUp(guest: PvGuest, host: string): Promise<void> {
  for (const warm of [
    `pvbench readlat /dev/vda 200 4096`,
    streamCommand(STREAM_READERS),
    `pvbench udprr ${host} 7 200 64`,
    `pvbench udptx ${host} 9 2000 ${NET_DATAGRAM}`,
  ]) {
    await guest.measure(warm);
  }
}
