// `npm run bench`: every benchmark (cpu, boot, virtio, guest-cpu) in one invocation, or those
// named; `npm run bench -- pv [--quick] ...` the paravirtual comparisons (long, so only when named).
const which = process.argv.slice(2);
if (which[0] === "pv") {
  // Everything after "pv" is its own options (`--only boot` names a comparison, not bench/boot.ts).
  process.argv = [process.argv[0], process.argv[1], ...which.slice(1)];
  await import("./pv.ts");
} else {
  const all = which.length === 0;
  for (const part of ["cpu", "boot", "virtio", "guest-cpu"]) {
    if (!all && !which.includes(part)) continue;
    process.argv = [process.argv[0], process.argv[1]]; // each part parses its own options
    await import(`./${part}.ts`);
  }
}
