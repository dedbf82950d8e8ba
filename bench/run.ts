// `npm run bench`: every benchmark (cpu, boot, virtio, user-net, ninep, guest-cpu, smp, lifecycle, web, rootfs) in one invocation, or those
// named; `npm run bench -- PART --option ...` runs one part with its own options (e.g.
// `npm run bench -- smp --only idle`); `npm run bench -- pv [--quick] ...` the paravirtual
// comparisons (long, so only when named).
const PARTS = ["cpu", "boot", "virtio", "user-net", "ninep", "guest-cpu", "smp", "lifecycle", "web", "rootfs"];
const which = process.argv.slice(2);
if (which[0] === "pv") {
  // Everything after "pv" is its own options (`--only boot` names a comparison, not bench/boot.ts).
  process.argv = [process.argv[0], process.argv[1], ...which.slice(1)];
  await import("./pv.ts");
} else {
  const all = which.length === 0;
  // Options (and their values) after a single named part belong to that part.
  const single = which.length > 0 && PARTS.includes(which[0]) && !which.slice(1).some((a) => PARTS.includes(a));
  for (const part of PARTS) {
    if (!all && !which.includes(part)) continue;
    process.argv = [process.argv[0], process.argv[1], ...(single ? which.slice(1) : [])]; // each part parses its own options
    await import(`./${part}.ts`);
  }
}
