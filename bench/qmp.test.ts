// The QMP client of the lifecycle benchmark: the parsing on traffic recorded from
// qemu-system-riscv64 7.2, and the client against a scripted QMP server on a Unix socket
// (negotiation first, answers matched by id even out of order, events kept until waited for).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { classifyQmpMessage, parseQmpLines, QmpClient, QmpError } from "./qmp.ts";

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}';
const MIGRATE_COMPLETED =
  '{"return": {"expected-downtime": 20, "status": "completed", "setup-time": 0, "downtime": 33, "total-time": 812, ' +
  '"ram": {"total": 537403392, "postcopy-requests": 0, "dirty-sync-count": 3, "multifd-bytes": 0, "pages-per-second": 143470, ' +
  '"downtime-bytes": 0, "page-size": 4096, "remaining": 0, "postcopy-bytes": 0, "mbps": 1024.8, "transferred": 80611309, ' +
  '"dirty-sync-missed-zero-copy": 0, "precopy-bytes": 80611309, "duplicate": 111778, "dirty-pages-rate": 0, "skipped": 0, ' +
  '"normal-bytes": 79527936, "normal": 19416}}, "id": "c3"}';

test("QMP lines: CRLF and LF ends, a message split across chunks, blank lines dropped", () => {
  const first = parseQmpLines(`${GREETING}\r\n{"return": {}, "id": "c1"}\r\n\r\n{"event": "STO`);
  assert.deepEqual(first.lines, [GREETING, '{"return": {}, "id": "c1"}']);
  assert.equal(first.rest, '{"event": "STO');
  const second = parseQmpLines(`${first.rest}P", "timestamp": {"seconds": 1765075200, "microseconds": 250000}}\n`);
  assert.deepEqual(second.lines, ['{"event": "STOP", "timestamp": {"seconds": 1765075200, "microseconds": 250000}}']);
  assert.equal(second.rest, "");
});

test("QMP messages: greeting, return, error and event", () => {
  assert.deepEqual(classifyQmpMessage(GREETING), { kind: "greeting", version: "7.2.22", capabilities: ["oob"] });
  const completed = classifyQmpMessage(MIGRATE_COMPLETED);
  assert.equal(completed.kind, "return");
  if (completed.kind !== "return") return;
  assert.equal(completed.id, "c3");
  const info = completed.value as { status: string; downtime: number; "total-time": number; ram: { transferred: number; "dirty-sync-count": number } };
  assert.equal(info.status, "completed");
  assert.equal(info["total-time"], 812);
  assert.equal(info.downtime, 33);
  assert.equal(info.ram.transferred, 80611309);
  assert.equal(info.ram["dirty-sync-count"], 3);
  assert.deepEqual(classifyQmpMessage('{"return": {}}'), { kind: "return", id: undefined, value: {} });
  assert.deepEqual(classifyQmpMessage('{"id": "c9", "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}'), {
    kind: "error",
    id: "c9",
    errorClass: "CommandNotFound",
    description: "The command nope has not been found",
  });
  assert.deepEqual(classifyQmpMessage('{"timestamp": {"seconds": 10, "microseconds": 500000}, "event": "MIGRATION", "data": {"status": "completed"}}'), {
    kind: "event",
    event: "MIGRATION",
    data: { status: "completed" },
    timestampS: 10.5,
  });
});

test("QMP messages: what is not one is refused with the line quoted", () => {
  assert.throws(() => classifyQmpMessage("QEMU 7.2 monitor"), (err: Error) => err instanceof QmpError && /not JSON: QEMU 7.2 monitor/.test(err.message));
  assert.throws(() => classifyQmpMessage("[1, 2]"), /expected an object/);
  assert.throws(() => classifyQmpMessage('{"hello": 1}'), /neither greeting, answer nor event/);
});

/** A scripted QMP server: greets, then answers each command line with what `answer` returns. */
async function fakeQemu(answer: (command: { execute: string; id: string; arguments?: Record<string, unknown> }, socket: Socket) => void) {
  const dir = mkdtempSync(join(tmpdir(), "parley-qmp-test-"));
  const path = join(dir, "qmp.sock");
  const received: string[] = [];
  const server = createServer((socket) => {
    socket.write(`${GREETING}\r\n`);
    let rest = "";
    socket.on("data", (chunk) => {
      const { lines, rest: r } = parseQmpLines(rest + chunk.toString());
      rest = r;
      for (const line of lines) {
        const command = JSON.parse(line);
        received.push(command.execute);
        answer(command, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    received,
    close: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test("QMP client: negotiates first, matches answers by id, rejects errors, keeps events", async () => {
  const held: { id: string; socket: Socket }[] = [];
  const qemu = await fakeQemu((command, socket) => {
    if (command.execute === "qmp_capabilities") socket.write(`{"return": {}, "id": "${command.id}"}\r\n`);
    else if (command.execute === "slow") held.push({ id: command.id, socket });
    else if (command.execute === "query-status") {
      // An event before the answer, then the held answer of "slow" after this one's.
      socket.write(`{"event": "RESUME", "data": {}, "timestamp": {"seconds": 1, "microseconds": 0}}\r\n`);
      socket.write(`{"return": {"status": "running", "running": true}, "id": "${command.id}"}\r\n`);
      for (const h of held.splice(0)) h.socket.write(`{"return": {"slow": true}, "id": "${h.id}"}\r\n`);
    } else socket.write(`{"error": {"class": "CommandNotFound", "desc": "The command ${command.execute} has not been found"}, "id": "${command.id}"}\r\n`);
  });
  const client = await QmpClient.connect(qemu.path, 5000);
  try {
    assert.equal(client.version, "7.2.22");
    assert.deepEqual(qemu.received, ["qmp_capabilities"]);
    const slow = client.execute("slow");
    const status = await client.execute<{ running: boolean }>("query-status");
    assert.equal(status.running, true);
    assert.deepEqual(await slow, { slow: true });
    await assert.rejects(client.execute("nope"), /CommandNotFound: The command nope has not been found/);
    const resume = await client.waitForEvent("RESUME", 1000);
    assert.equal(resume.timestampS, 1);
    await assert.rejects(client.waitForEvent("STOP", 50), /no STOP event within 50 ms/);
  } finally {
    client.close();
    qemu.close();
  }
});

test("QMP client: a connection that closes fails the commands waiting on it", async () => {
  const qemu = await fakeQemu((command, socket) => {
    if (command.execute === "qmp_capabilities") socket.write(`{"return": {}, "id": "${command.id}"}\r\n`);
    else socket.destroy();
  });
  const client = await QmpClient.connect(qemu.path, 5000);
  try {
    await assert.rejects(client.execute("quit"), /QMP connection closed/);
    await assert.rejects(client.execute("query-status"), /QMP connection closed/);
  } finally {
    client.close();
    qemu.close();
  }
});
