// The page's URL parameters (?cpus=N&memory=MiB) and their defaults: a small pure function.

export interface PageSettings {
  cpus: number;
  memoryMiB: number;
  /** Parameters that were ignored, and why (shown in the console). */
  problems: string[];
}

export const DEFAULT_MEMORY_MIB = 512;
const MAX_DEFAULT_CPUS = 4;
const MAX_CPUS = 32;
/** wasm32: the machine's memory (RAM and the harts' regions) must stay below 4 GiB. */
const MAX_MEMORY_MIB = 3072;

function wholeNumber(text: string | null, min: number, max: number): number | undefined {
  if (text === null || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/**
 * cpus: default the host's cores up to 4; always 1 without cross-origin isolation (no shared memory
 * for hart workers). memory: default 512 MiB.
 */
export function pageSettings(params: URLSearchParams, host: { isolated: boolean; hardwareConcurrency?: number }): PageSettings {
  const problems: string[] = [];
  let cpus = Math.max(1, Math.min(host.hardwareConcurrency ?? 1, MAX_DEFAULT_CPUS));
  const cpusParam = params.get("cpus");
  if (cpusParam !== null) {
    const asked = wholeNumber(cpusParam, 1, MAX_CPUS);
    if (asked === undefined) problems.push(`cpus=${cpusParam}: expected a whole number from 1 to ${MAX_CPUS}; using ${cpus}`);
    else cpus = asked;
  }
  if (!host.isolated && cpus > 1) {
    if (cpusParam !== null) problems.push(`cpus=${cpusParam}: this page is not cross-origin isolated, so it runs one hart`);
    cpus = 1;
  }
  let memoryMiB = DEFAULT_MEMORY_MIB;
  const memoryParam = params.get("memory");
  if (memoryParam !== null) {
    const asked = wholeNumber(memoryParam, 16, MAX_MEMORY_MIB);
    if (asked === undefined) problems.push(`memory=${memoryParam}: expected a whole number of MiB from 16 to ${MAX_MEMORY_MIB}; using ${memoryMiB}`);
    else memoryMiB = asked;
  }
  return { cpus, memoryMiB, problems };
}
