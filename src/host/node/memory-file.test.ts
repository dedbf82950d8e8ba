import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MEMORY_FILE_HEADER, MemoryFileError, checkPageRuns, nonZeroPageRuns, openMemoryFile, writeMemoryFile } from "./memory-file.ts";

const MiB = 1 << 20;
const ID = "0123456789abcdef0123456789abcdef";

/** Guest RAM inside a wasm memory at a 2 MiB offset, as the engine lays it out. */
function wasmRam(size: number, shared: boolean): Uint8Array {
  const memory = new WebAssembly.Memory({ initial: (2 * MiB + size) / 65536, maximum: (2 * MiB + size) / 65536, shared });
  return new Uint8Array(memory.buffer, 2 * MiB, size);
}

function fill(ram: Uint8Array): void {
  ram.set([1, 2, 3], 0); // page 0
  ram[4096 * 5 + 17] = 9; // page 5
  ram.fill(0xaa, 4096 * 6, 4096 * 8); // pages 6 and 7
  ram[ram.length - 1] = 0x55; // last page
}

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "parley-memfile-"));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("nonZeroPageRuns finds the runs of non-zero pages", () => {
  const ram = wasmRam(4 * MiB, false);
  assert.deepEqual(nonZeroPageRuns(ram), []);
  fill(ram);
  assert.deepEqual(nonZeroPageRuns(ram), [[0, 1], [5, 3], [1023, 1]]);
});

for (const shared of [false, true]) {
  test(`memory file round trip by read and by map (${shared ? "shared" : "plain"} memory); zero pages are holes`, () => {
    withDir((dir) => {
      const path = join(dir, "mem");
      const ram = wasmRam(8 * MiB, shared);
      fill(ram);
      const { runs, bytesWritten } = writeMemoryFile(path, ram, ID);
      assert.equal(bytesWritten, 5 * 4096);
      assert.equal(statSync(path).size, MEMORY_FILE_HEADER + 8 * MiB);
      assert.ok(statSync(path).blocks * 512 < 1 * MiB, "zero pages take no disk blocks");
      const copy = wasmRam(8 * MiB, shared);
      const file = openMemoryFile(path, ID, 8 * MiB);
      assert.equal(file.read(copy, runs), 5 * 4096);
      assert.deepEqual(copy, ram);
      const mapped = wasmRam(8 * MiB, shared);
      const ok = file.map(mapped);
      file.close();
      if (!ok) {
        assert.ok(file.mapUnavailable, "a refusal says why");
        return;
      }
      assert.deepEqual(mapped, ram, "the mapped image reads as the saved RAM");
      mapped[4096 * 5 + 17] = 10; // copy-on-write: the file keeps its bytes
      assert.equal(readFileSync(path)[MEMORY_FILE_HEADER + 4096 * 5 + 17], 9);
    });
  });
}

test("a memory file of another snapshot, of another size, truncated or foreign is refused", () => {
  withDir((dir) => {
    const path = join(dir, "mem");
    const ram = wasmRam(4 * MiB, false);
    fill(ram);
    writeMemoryFile(path, ram, ID);
    assert.throws(() => openMemoryFile(path, "f".repeat(32), 4 * MiB), /belongs to snapshot/);
    assert.throws(() => openMemoryFile(path, ID, 8 * MiB), /RAM/);
    truncateSync(path, MEMORY_FILE_HEADER + 4 * MiB - 4096);
    assert.throws(() => openMemoryFile(path, ID, 4 * MiB), MemoryFileError);
    writeFileSync(path, "not a memory file");
    assert.throws(() => openMemoryFile(path, ID, 4 * MiB), /too short|not a Parley/);
    assert.throws(() => openMemoryFile(join(dir, "missing"), ID, 4 * MiB), MemoryFileError);
  });
});

test("page runs from a state file are checked against RAM", () => {
  assert.deepEqual(checkPageRuns([[0, 2], [4, 1]], 8 * 4096, "runs"), [[0, 2], [4, 1]]);
  for (const bad of [{}, [[0]], [[0, 0]], [[2, 1], [1, 1]], [[0, 9]], [[-1, 1]], [[0.5, 1]], [[0, 2], [1, 1]]]) {
    assert.throws(() => checkPageRuns(bad, 8 * 4096, "runs"), MemoryFileError, JSON.stringify(bad));
  }
});
