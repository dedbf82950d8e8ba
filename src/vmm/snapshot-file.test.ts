import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeSnapshotFile, encodeSnapshotFile, newSnapshotId, SnapshotFileError, type SnapshotBody } from "./snapshot-file.ts";

const body: SnapshotBody = {
  id: newSnapshotId(),
  createdAt: "2026-12-07T00:00:00.000Z",
  config: { "machine-config": { vcpu_count: 2, mem_size_mib: 64 } },
  machine: { version: 1, anything: [1, "two"] },
  memory: { ramSize: 64 << 20, runs: [[0, 10], [100, 3]] },
};

test("a state file round-trips", () => {
  assert.deepEqual(decodeSnapshotFile(encodeSnapshotFile(body)), body);
});

test("truncated, corrupted, wrong-version and foreign state files are refused with a reason", () => {
  const bytes = encodeSnapshotFile(body);
  assert.throws(() => decodeSnapshotFile(bytes.subarray(0, bytes.length - 1)), /truncated/);
  const flipped = bytes.slice();
  flipped[flipped.length - 5] ^= 1;
  assert.throws(() => decodeSnapshotFile(flipped), /checksum mismatch/);
  const text = new TextDecoder().decode(bytes).replace('"version":1', '"version":2');
  assert.throws(() => decodeSnapshotFile(new TextEncoder().encode(text)), /version 2/);
  assert.throws(() => decodeSnapshotFile(new TextEncoder().encode("hello\n{}")), /not a Parley snapshot/);
  assert.throws(() => decodeSnapshotFile(new Uint8Array(0)), /no header line/);
  const badRuns = encodeSnapshotFile({ ...body, memory: { ramSize: 64 << 20, runs: [[5, 1], [0, 1]] } });
  assert.throws(() => decodeSnapshotFile(badRuns), /memory\.runs\[1\]/);
  const badId = encodeSnapshotFile({ ...body, id: "xyz" });
  assert.throws(() => decodeSnapshotFile(badId), /id/);
});

test("fuzz: random damage to a state file is always a SnapshotFileError, never anything else", () => {
  const bytes = encodeSnapshotFile(body);
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 2000; i++) {
    const damaged = bytes.slice(0, Math.floor(random() * (bytes.length + 1)));
    const flips = Math.floor(random() * 4);
    for (let f = 0; f < flips && damaged.length > 0; f++) damaged[Math.floor(random() * damaged.length)] = Math.floor(random() * 256);
    try {
      decodeSnapshotFile(damaged);
    } catch (err) {
      assert.ok(err instanceof SnapshotFileError, String(err));
    }
  }
});
