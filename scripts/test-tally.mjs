// A node:test reporter that counts what ran and writes the tally as JSON (for run-tests.mjs,
// which prints the closing "N passed, N failed, N skipped" line and decides the exit code).
// Suites (describe blocks) are not counted, only tests; a file that crashes before its tests
// register shows up as one failed entry at nesting 0, and is counted as a failure.
export default async function* tally(source) {
  const counts = { passed: 0, failed: 0, skipped: 0, todo: 0, failures: [] };
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const data = event.data;
    if (data.details?.type === "suite" && event.type === "test:pass") continue;
    if (data.skip !== undefined && data.skip !== false) counts.skipped++;
    else if (data.todo !== undefined && data.todo !== false) counts.todo++;
    else if (event.type === "test:pass") counts.passed++;
    else {
      // A failing suite is a failure only when its own hooks failed, not for its children.
      const cause = data.details?.error?.failureType;
      if (data.details?.type === "suite" && cause === "subtestsFailed") continue;
      counts.failed++;
      counts.failures.push(`${data.file ?? ""}: ${data.name}`);
    }
  }
  yield JSON.stringify(counts);
}
