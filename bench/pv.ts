// `npm run bench -- pv` (or `node --import tsx bench/pv.ts [--quick] [--out docs/] [--only LIST] [--render FILE]`):
// the paravirtual-against-emulated comparisons of `parley bench pv`, run from the sources.
import { benchPv, parseComparisons } from "./pv/comparisons.ts";

const args = process.argv.slice(2);
const value = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const only = value("--only");
const reps = value("--reps");
await benchPv({
  quick: args.includes("--quick"),
  out: value("--out"),
  json: value("--json"),
  only: only ? parseComparisons(only) : undefined,
  reps: reps ? Number(reps) : undefined,
  render: value("--render"),
});
