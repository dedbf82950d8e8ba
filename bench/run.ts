// `npm run bench`: every benchmark (cpu, boot, virtio, guest-cpu) in one invocation, or those
// named; `npm run bench -- pv [--quick] ...` the paravirtual comparisons (long, so only when named).
const which = process.argv.slice(2);
const all = which.length === 0;
if (all || which.includes("cpu")) {
  process.argv = [process.argv[0], process.argv[1]];
  await import("./cpu.ts");
}
if (all || which.includes("boot")) {
  process.argv = [process.argv[0], process.argv[1]];
  await import("./boot.ts");
}
if (all || which.includes("virtio")) {
  process.argv = [process.argv[0], process.argv[1]];
  await import("./virtio.ts");
}
if (all || which.includes("guest-cpu")) {
  process.argv = [process.argv[0], process.argv[1]];
  await import("./guest-cpu.ts");
}
if (which[0] === "pv") {
  process.argv = [process.argv[0], process.argv[1], ...which.slice(1)];
  await import("./pv.ts");
}
