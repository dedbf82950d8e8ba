// The root disk builder's pure parts: what it reads from debootstrap, what it writes into the disk.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { aptSourcesText, parseDebpaths, secondStageBootArgs, secondStageProgress, secondStageScript, securityMirrorFor, SECOND_STAGE_DONE, SECOND_STAGE_PATH } from "./rootfs.ts";

test("debpaths: package -> version, epochs decoded, odd lines ignored", () => {
  const text = [
    "base-files /target/var/cache/apt/archives/base-files_13.8+deb13u1_riscv64.deb",
    "bash /target/var/cache/apt/archives/bash_5.2.37-2+b5_riscv64.deb",
    "openssh-server /target/var/cache/apt/archives/openssh-server_1%3a10.0p1-7+deb13u4_riscv64.deb",
    "tzdata /x/tzdata_2025b-4+deb13u1_all.deb",
    "mismatch /x/other_1.0_all.deb",
    "garbage",
    "",
  ].join("\n");
  assert.deepEqual(parseDebpaths(text), {
    "base-files": "13.8+deb13u1",
    bash: "5.2.37-2+b5",
    "openssh-server": "1:10.0p1-7+deb13u4",
    tzdata: "2025b-4+deb13u1",
  });
});

test("the guest's apt sources: the build's mirror, and the security archive beside it", () => {
  assert.equal(securityMirrorFor("http://deb.debian.org/debian/"), "http://deb.debian.org/debian-security");
  assert.equal(securityMirrorFor("http://mirror.example/ubuntu"), undefined, "no guess for a mirror not laid out as Debian's");
  const text = aptSourcesText("http://deb.debian.org/debian");
  assert.match(text, /^URIs: http:\/\/deb\.debian\.org\/debian\nSuites: trixie trixie-updates\n/m);
  assert.match(text, /^URIs: http:\/\/deb\.debian\.org\/debian-security\nSuites: trixie-security\n/m);
  assert.doesNotMatch(aptSourcesText("http://mirror.example/pool"), /security/);
});

test("second stage progress counts each package unpacked and configured", () => {
  const log = ["I: Installing core packages...", "I: Unpacking required packages...", "I: Unpacking libc6...", "I: Unpacking bash...", "I: Configuring required packages...", "I: Configuring libc6..."].join("\n");
  assert.equal(secondStageProgress(log, 2), 3 / 4);
  assert.equal(secondStageProgress("", 2), 0);
  assert.equal(secondStageProgress(log, 0), 0);
  assert.equal(secondStageProgress(log + "\nI: Configuring bash...\nI: Configuring x...", 2), 1, "never above 100%");
});

test("the second stage boots the disk with its script as init, and the script is valid sh", () => {
  assert.match(secondStageBootArgs(), new RegExp(`root=/dev/vda rw init=${SECOND_STAGE_PATH}( |$)`));
  const script = secondStageScript({ kernelVersion: "6.12.1+deb13-riscv64", mirror: "http://deb.debian.org/debian" });
  assert.ok(script.startsWith("#!/bin/sh\n"));
  assert.ok(script.includes(`echo "${SECOND_STAGE_DONE}"`));
  assert.ok(script.includes("depmod -a 6.12.1+deb13-riscv64"));
  assert.ok(script.includes("/debootstrap/debootstrap --second-stage"));
  const check = spawnSync("sh", ["-n"], { input: script });
  assert.equal(check.status, 0, `sh -n: ${check.stderr}`);
});
