import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { openHttpOverlayDisk, parseContentRange } from "./http-disk.ts";
import type { HttpOverlayDisk } from "./http-disk.ts";
import { memoryOverlayStore, opfsOverlayStoreIn } from "./overlay-store.ts";
import { FakeDirectory } from "./testing/fake-opfs.ts";
import type { OverlayStore } from "./overlay-store.ts";

/** A deterministic image whose bytes differ from block to block and within blocks. */
function makeImage(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

interface ServedRange {
  first: number;
  last: number;
}

/** What the test server does with a request, switchable mid-test. */
type ServerMode = "ok" | "500" | "ignore-range" | "short" | "wrong-range" | "hang" | "changed";

interface TestServer {
  url: string;
  ranges: ServedRange[];
  bytesServed(): number;
  mode: ServerMode;
  close(): Promise<void>;
}

/** A node:http server with single-range support (RFC 9110, 14.2), counting what it serves. */
async function serve(image: Uint8Array, options: { etag?: string; delayMs?: number } = {}): Promise<TestServer> {
  const ranges: ServedRange[] = [];
  const state: TestServer = {
    url: "",
    ranges,
    bytesServed: () => ranges.reduce((n, r) => n + r.last - r.first + 1, 0),
    mode: "ok",
    close: async () => {},
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const mode = state.mode;
    if (mode === "hang") return; // never answers
    if (mode === "500") {
      res.writeHead(500).end("broken");
      return;
    }
    if (options.etag) res.setHeader("ETag", mode === "changed" ? '"other"' : options.etag);
    res.setHeader("Accept-Ranges", "bytes");
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (!m || mode === "ignore-range") {
      res.writeHead(200, { "Content-Length": image.length }).end(image);
      return;
    }
    const first = Number(m[1]);
    const last = Math.min(Number(m[2]), image.length - 1);
    if (first >= image.length) {
      res.writeHead(416, { "Content-Range": `bytes */${image.length}` }).end();
      return;
    }
    ranges.push({ first, last });
    const headerFirst = mode === "wrong-range" ? first + 512 : first;
    let body = image.subarray(first, last + 1);
    if (mode === "short") body = body.subarray(0, body.length - 1);
    const send = () =>
      res
        .writeHead(206, { "Content-Range": `bytes ${headerFirst}-${last}/${image.length}`, "Content-Length": body.length })
        .end(body);
    if (options.delayMs) setTimeout(send, options.delayMs);
    else send();
  };
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/disk.img`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

async function withDisk(
  image: Uint8Array,
  fn: (disk: HttpOverlayDisk, server: TestServer, overlay: OverlayStore) => Promise<void>,
  options: { overlay?: OverlayStore; etag?: string; delayMs?: number; cacheChunks?: number; timeoutMs?: number } = {},
): Promise<void> {
  const server = await serve(image, options);
  const overlay = options.overlay ?? memoryOverlayStore();
  try {
    const disk = await openHttpOverlayDisk({
      url: server.url,
      overlay,
      cacheChunks: options.cacheChunks,
      timeoutMs: options.timeoutMs,
    });
    server.ranges.length = 0; // only count what the requests below fetch
    try {
      await fn(disk, server, overlay);
    } finally {
      await disk.close();
    }
  } finally {
    await server.close();
  }
}

const KiB = 1024;
const MiB = 1024 * 1024;

test("parseContentRange accepts bytes FIRST-LAST/TOTAL and refuses the rest", () => {
  assert.deepEqual(parseContentRange("bytes 0-0/1048576"), { first: 0, last: 0, total: 1048576 });
  assert.equal(parseContentRange("bytes */1048576"), undefined);
  assert.equal(parseContentRange("bytes 5-4/10"), undefined);
  assert.equal(parseContentRange("bytes 0-10/10"), undefined);
  assert.equal(parseContentRange(null), undefined);
});

test("the size comes from the probe and reads match the image", async () => {
  const image = makeImage(4 * MiB + 512);
  await withDisk(image, async (disk) => {
    assert.equal(disk.size, image.length);
    assert.equal(disk.readOnly, false);
    for (const [offset, length] of [
      [0, 512],
      [4096, 4096],
      [65536 - 512, 1024],
      [3 * MiB + 123 * 512, 200 * KiB],
      [image.length - 512, 512],
      [image.length - 70 * KiB, 70 * KiB],
    ]) {
      const into = new Uint8Array(length);
      await disk.read(offset, into);
      assert.deepEqual(into, image.subarray(offset, offset + length), `read at ${offset}+${length}`);
    }
  });
});

test("only the 64 KiB chunks a read needs are fetched, once while cached", async () => {
  const image = makeImage(8 * MiB);
  await withDisk(image, async (disk, server) => {
    await disk.read(MiB + 512, new Uint8Array(512));
    assert.deepEqual(server.ranges, [{ first: MiB, last: MiB + 64 * KiB - 1 }]);
    await disk.read(MiB + 4096, new Uint8Array(4096)); // same chunk: cached
    assert.equal(server.ranges.length, 1);
    await disk.read(2 * MiB - 512, new Uint8Array(1024)); // straddles two chunks
    assert.deepEqual(server.ranges.slice(1).sort((a, b) => a.first - b.first), [
      { first: 2 * MiB - 64 * KiB, last: 2 * MiB - 1 },
      { first: 2 * MiB, last: 2 * MiB + 64 * KiB - 1 },
    ]);
    assert.equal(server.bytesServed(), 3 * 64 * KiB);
  });
});

test("the chunk cache is bounded (least recently used goes first)", async () => {
  const image = makeImage(MiB);
  await withDisk(
    image,
    async (disk, server) => {
      const chunk = 64 * KiB;
      await disk.read(0, new Uint8Array(512));
      await disk.read(chunk, new Uint8Array(512));
      await disk.read(0, new Uint8Array(512)); // chunk 0 is now the most recent
      await disk.read(2 * chunk, new Uint8Array(512)); // evicts chunk 1
      assert.equal(server.ranges.length, 3);
      await disk.read(0, new Uint8Array(512));
      assert.equal(server.ranges.length, 3);
      await disk.read(chunk, new Uint8Array(512));
      assert.equal(server.ranges.length, 4);
    },
    { cacheChunks: 2 },
  );
});

test("parallel reads of one chunk fetch it once", async () => {
  const image = makeImage(MiB);
  await withDisk(
    image,
    async (disk, server) => {
      const reads = Array.from({ length: 32 }, (_, i) => {
        const into = new Uint8Array(512);
        return disk.read(128 * KiB + i * 1024, into).then(() => into);
      });
      const results = await Promise.all(reads);
      results.forEach((into, i) => assert.deepEqual(into, image.subarray(128 * KiB + i * 1024, 128 * KiB + i * 1024 + 512)));
      assert.deepEqual(server.ranges, [{ first: 128 * KiB, last: 192 * KiB - 1 }]);
    },
    { delayMs: 20 },
  );
});

test("writes stay local and read back; partial-block writes merge with the image", async () => {
  const image = makeImage(MiB);
  const expected = image.slice();
  await withDisk(image, async (disk) => {
    const whole = makeImage(8192, 7);
    await disk.write(16 * KiB, whole);
    expected.set(whole, 16 * KiB);
    const sector = makeImage(512, 9);
    await disk.write(40 * KiB + 1536, sector); // inside block 10
    expected.set(sector, 40 * KiB + 1536);
    const straddling = makeImage(3 * 512, 11);
    await disk.write(100 * KiB - 512, straddling); // ends one block, starts the next
    expected.set(straddling, 100 * KiB - 512);
    const into = new Uint8Array(image.length);
    await disk.read(0, into);
    assert.deepEqual(into, expected);
  });
  assert.notDeepEqual(image, expected, "the server's image is untouched");
});

test("two partial writes to one block in flight both survive", async () => {
  const image = makeImage(256 * KiB);
  await withDisk(
    image,
    async (disk) => {
      const a = new Uint8Array(512).fill(0xaa);
      const b = new Uint8Array(512).fill(0xbb);
      await Promise.all([disk.write(8192, a), disk.write(8192 + 2048, b)]);
      const into = new Uint8Array(4096);
      await disk.read(8192, into);
      const expected = image.slice(8192, 8192 + 4096);
      expected.set(a, 0);
      expected.set(b, 2048);
      assert.deepEqual(into, expected);
    },
    { delayMs: 10 },
  );
});

test("writing whole blocks fetches nothing; writeZeroes reads as zeroes", async () => {
  const image = makeImage(256 * KiB);
  await withDisk(image, async (disk, server) => {
    await disk.write(64 * KiB, makeImage(64 * KiB, 3));
    assert.equal(server.ranges.length, 0);
    await disk.writeZeroes(1024, 8192, false);
    const into = new Uint8Array(12 * KiB);
    await disk.read(0, into);
    const expected = image.slice(0, 12 * KiB);
    expected.fill(0, 1024, 1024 + 8192);
    assert.deepEqual(into, expected);
  });
});

test("flushed writes persist into a new backend over the same overlay; discardOverlay returns to the image", async () => {
  const image = makeImage(MiB);
  const overlay = memoryOverlayStore();
  const server = await serve(image, { etag: '"v1"' });
  try {
    const data = makeImage(3000, 5);
    const first = await openHttpOverlayDisk({ url: server.url, overlay });
    await first.write(5000, data);
    await first.flush();
    await first.write(200 * KiB, new Uint8Array(4096).fill(1)); // never flushed
    await first.close();

    const second = await openHttpOverlayDisk({ url: server.url, overlay });
    const into = new Uint8Array(3000);
    await second.read(5000, into);
    assert.deepEqual(into, data);
    const unflushed = new Uint8Array(4096);
    await second.read(200 * KiB, unflushed);
    assert.deepEqual(unflushed, image.subarray(200 * KiB, 204 * KiB));

    await second.discardOverlay();
    await second.read(5000, into);
    assert.deepEqual(into, image.subarray(5000, 8000));
    await second.close();

    const third = await openHttpOverlayDisk({ url: server.url, overlay });
    await third.read(5000, into);
    assert.deepEqual(into, image.subarray(5000, 8000), "the discard is durable");
    await third.close();
  } finally {
    await server.close();
  }
});

test("an overlay recorded over another image is dropped with a warning", async () => {
  const overlay = memoryOverlayStore();
  const first = await serve(makeImage(MiB), { etag: '"v1"' });
  try {
    const disk = await openHttpOverlayDisk({ url: first.url, overlay });
    await disk.write(0, new Uint8Array(4096).fill(7));
    await disk.flush();
    await disk.close();
  } finally {
    await first.close();
  }
  const image = makeImage(MiB, 2);
  const second = await serve(image, { etag: '"v2"' });
  try {
    const warnings: string[] = [];
    const disk = await openHttpOverlayDisk({ url: second.url, overlay, warn: (m) => warnings.push(m) });
    const into = new Uint8Array(4096);
    await disk.read(0, into);
    assert.deepEqual(into, image.subarray(0, 4096));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /another disk image/);
    await disk.close();
  } finally {
    await second.close();
  }
});

test("opening refuses a server without range support, an HTTP error, an unreachable server and an odd size", async () => {
  const server = await serve(makeImage(64 * KiB));
  try {
    server.mode = "ignore-range";
    await assert.rejects(openHttpOverlayDisk({ url: server.url, overlay: memoryOverlayStore() }), /does not support range requests/);
    server.mode = "500";
    await assert.rejects(openHttpOverlayDisk({ url: server.url, overlay: memoryOverlayStore() }), /HTTP 500/);
  } finally {
    await server.close();
  }
  await assert.rejects(openHttpOverlayDisk({ url: server.url, overlay: memoryOverlayStore() }), /disk http:/);
  const odd = await serve(makeImage(1000));
  try {
    await assert.rejects(openHttpOverlayDisk({ url: odd.url, overlay: memoryOverlayStore() }), /not a multiple of 512/);
  } finally {
    await odd.close();
  }
});

test("server failures reject the request (an I/O error), and a later request retries", async () => {
  const image = makeImage(MiB);
  await withDisk(
    image,
    async (disk, server) => {
      const cases: [ServerMode, RegExp][] = [
        ["500", /HTTP 500/],
        ["ignore-range", /ignored the range/],
        ["short", /short response/],
        ["wrong-range", /answered with range/],
        ["changed", /changed on the server/],
        ["hang", /timed out/],
      ];
      for (const [i, [mode, message]] of cases.entries()) {
        server.mode = mode;
        await assert.rejects(disk.read(i * 64 * KiB, new Uint8Array(512)), message, mode);
        // A partial write needs the image too: it fails and leaves nothing behind.
        await assert.rejects(disk.write(i * 64 * KiB + 512, new Uint8Array(512).fill(9)), message, `${mode} write`);
      }
      server.mode = "ok";
      const into = new Uint8Array(512);
      await disk.read(512, into);
      assert.deepEqual(into, image.subarray(512, 1024));
    },
    { etag: '"v1"', timeoutMs: 300 },
  );
});

test("a request after the server went away is an I/O error, not a crash", async () => {
  const image = makeImage(MiB);
  const server = await serve(image);
  const disk = await openHttpOverlayDisk({ url: server.url, overlay: memoryOverlayStore() });
  await server.close();
  await assert.rejects(disk.read(0, new Uint8Array(512)), /disk http:.*bytes 0-65535/);
  await assert.rejects(disk.read(MiB, new Uint8Array(512)), RangeError);
  await disk.close();
  await assert.rejects(disk.read(0, new Uint8Array(512)), /closed/);
});

test("fuzz: random reads and writes match an in-memory reference", async () => {
  const size = 2 * MiB + 1536; // the last block is partial
  const image = makeImage(size, 42);
  const reference = image.slice();
  let x = 12345;
  const random = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  const overlay = memoryOverlayStore();
  const server = await serve(image);
  try {
    let disk = await openHttpOverlayDisk({ url: server.url, overlay, cacheChunks: 4 });
    for (let step = 0; step < 400; step++) {
      const sectors = 1 + random(40);
      const offset = random(size / 512 - sectors + 1) * 512;
      const length = sectors * 512;
      const op = random(10);
      if (op < 4) {
        const data = makeImage(length, step + 1);
        await disk.write(offset, data);
        reference.set(data, offset);
      } else if (op === 4) {
        await disk.writeZeroes(offset, length, true);
        reference.fill(0, offset, offset + length);
      } else if (op === 5) {
        // Several requests at once, on disjoint ranges (the guest's own ordering rules).
        const half = Math.floor(sectors / 2) * 512;
        const a = makeImage(half, step + 100);
        const into = new Uint8Array(length - half);
        await Promise.all([disk.write(offset, a), disk.read(offset + half, into)]);
        reference.set(a, offset);
        assert.deepEqual(into, reference.subarray(offset + half, offset + length), `step ${step}: parallel read`);
      } else if (op === 6) {
        await disk.flush();
        await disk.close();
        disk = await openHttpOverlayDisk({ url: server.url, overlay, cacheChunks: 4 });
        // Everything was flushed, so the reopened disk holds it all.
      } else {
        const into = new Uint8Array(length);
        await disk.read(offset, into);
        assert.deepEqual(into, reference.subarray(offset, offset + length), `step ${step}: read ${offset}+${length}`);
      }
    }
    const all = new Uint8Array(size);
    await disk.read(0, all);
    assert.deepEqual(all, reference);
    await disk.close();
  } finally {
    await server.close();
  }
});

test("over an OPFS store: flushed writes survive closing the disk and a crash, unflushed ones do not", async () => {
  const image = makeImage(MiB, 3);
  const root = new FakeDirectory();
  const server = await serve(image, { etag: '"v1"' });
  const openDisk = async () => openHttpOverlayDisk({ url: server.url, overlay: await opfsOverlayStoreIn(root, "disk.img") });
  try {
    const first = await openDisk();
    const kept = makeImage(1536, 21);
    await first.write(10 * KiB + 512, kept);
    await first.flush();
    await first.close();

    const second = await openDisk();
    const into = new Uint8Array(1536);
    await second.read(10 * KiB + 512, into);
    assert.deepEqual(into, kept);
    await second.write(300 * KiB, new Uint8Array(4096).fill(5)); // lost in the crash below
    root.crash();

    const third = await openDisk();
    const lost = new Uint8Array(4096);
    await third.read(300 * KiB, lost);
    assert.deepEqual(lost, image.subarray(300 * KiB, 304 * KiB));
    await third.read(10 * KiB + 512, into);
    assert.deepEqual(into, kept);
    await third.discardOverlay();
    await third.read(10 * KiB + 512, into);
    assert.deepEqual(into, image.subarray(10 * KiB + 512, 12 * KiB));
    await third.close();
  } finally {
    await server.close();
  }
});
