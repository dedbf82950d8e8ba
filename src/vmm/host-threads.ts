// How many host threads run a machine's harts: shared by the machine (src/vmm/machine.ts) and the
// command's launcher (src/cli/launch-plan.ts), which sizes V8's compiler threads by it before the
// machine exists. No imports: the launcher loads it before anything heavy.

/**
 * One hart runs on the caller's thread. Several run each on a thread of their own, at most one per
 * host core, unless machine-config's host_threads (--host-threads) says how many.
 */
export function hartThreadCount(vcpuCount: number, hostThreads: number | undefined, hostCores: number): number {
  return vcpuCount > 1 ? (hostThreads ?? Math.min(vcpuCount, hostCores)) : 1;
}
