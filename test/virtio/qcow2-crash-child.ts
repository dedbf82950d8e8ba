// The writer of qcow2-crash.test.ts: writes the operations opsFor(seed) through Parley's qcow2
// backend, flushing every FLUSH_EVERY operations, and reports each completed flush on stdout as
// "flushed N" (operations 0..N-1 are durable), until the parent kills it with SIGKILL.
import { writeSync } from "node:fs";
import { openDiskImage } from "../../src/host/node/disk-image.ts";
import { opsFor, FLUSH_EVERY } from "./qcow2-crash-ops.ts";

const [path, seedText, sizeText] = process.argv.slice(2);
const size = Number(sizeText);
const disk = await openDiskImage(path, { format: "qcow2" });
const ops = opsFor(Number(seedText), size);
for (const [i, op] of ops.entries()) {
  if (op.kind === "write") await disk.write(op.offset, new Uint8Array(op.length).fill(op.fill));
  else await disk.writeZeroes(op.offset, op.length, false);
  if ((i + 1) % FLUSH_EVERY === 0) {
    await disk.flush();
    // Synchronous: the line is in the pipe before the next operation starts.
    writeSync(1, `flushed ${i + 1}\n`);
  }
}
writeSync(1, "done\n");
// Stay alive without closing the image: the parent kills the writer, it never shuts down cleanly.
setInterval(() => {}, 1000);
