// Routes an SBI call to its extension and function (SBI spec v2.0 §3) and counts what the
// guest asked for. Lookups are table-driven: EID -> extension, then FID -> function.
import { decodeSbiId } from "./params.ts";
import {
  SBI_ERR_NOT_SUPPORTED,
  SBI_SUCCESS,
  sbiErrorName,
  sbiFail,
  type SbiCall,
  type SbiExtension,
  type SbiHost,
  type SbiRegistry,
  type SbiResult,
} from "./types.ts";

/** Integer register numbers of the calling convention (RISC-V psABI; SBI spec §3). */
const REG_A0 = 10;
const REG_A1 = 11;
const REG_A6 = 16;
const REG_A7 = 17;
const ARG_COUNT = 6; // a0..a5

/** The part of the CPU the dispatcher needs; Cpu from src/cpu/cpu.ts satisfies it. */
export interface EcallRegisters {
  x(i: number): bigint;
  setX(i: number, value: bigint): void;
}

/**
 * Call counts. Keys are bounded by the extension table: a guest probing millions of EIDs or
 * FIDs lands in the "unknown" buckets rather than growing the maps.
 */
export class SbiCounters {
  total = 0;
  /** "TIME" -> calls; unknown EIDs count as "unknown". */
  readonly byExtension = new Map<string, number>();
  /** "TIME.set_timer" -> calls; unknown FIDs as "TIME.unknown", unknown EIDs as "unknown". */
  readonly byFunction = new Map<string, number>();
  /** Failed calls by error name ("SBI_ERR_INVALID_PARAM"); legacy a0 values are not errors. */
  readonly byError = new Map<string, number>();

  record(extension: string, fn: string, error: bigint | undefined): void {
    this.total++;
    bump(this.byExtension, extension);
    bump(this.byFunction, fn);
    if (error !== undefined && error !== SBI_SUCCESS) bump(this.byError, sbiErrorName(error));
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

const UNKNOWN = "unknown";

/** An extension's EIDs as an inclusive range. */
function eidRange(extension: SbiExtension): readonly [number, number] {
  return typeof extension.eid === "number" ? [extension.eid, extension.eid] : extension.eid;
}

export class SbiDispatcher implements SbiRegistry {
  readonly counters = new SbiCounters();
  private readonly byEid = new Map<number, SbiExtension>();
  private readonly ranged: SbiExtension[] = [];

  constructor(
    extensions: readonly SbiExtension[],
    readonly host: SbiHost,
  ) {
    for (const extension of extensions) {
      const [lo, hi] = eidRange(extension);
      // Two extensions claiming one EID is a table bug, never guest input: fail at construction.
      for (const other of extensions) {
        const [otherLo, otherHi] = eidRange(other);
        if (other !== extension && lo <= otherHi && otherLo <= hi) {
          throw new Error(`SBI extensions ${extension.name} and ${other.name} overlap`);
        }
      }
      if (typeof extension.eid === "number") this.byEid.set(extension.eid, extension);
      else this.ranged.push(extension);
    }
  }

  findExtension(eid: number): SbiExtension | undefined {
    return this.byEid.get(eid) ?? this.ranged.find((e) => eid >= eidRange(e)[0] && eid <= eidRange(e)[1]);
  }

  /**
   * Serves one call. Unknown EID or FID -> SBI_ERR_NOT_SUPPORTED (SBI spec §3: "An ECALL with an
   * unsupported SBI extension ID (EID) or an unsupported SBI function ID (FID) must return the
   * error code SBI_ERR_NOT_SUPPORTED"). Handlers validate their arguments, so nothing here
   * catches: an exception is a Parley bug and should surface.
   */
  handle(call: SbiCall): SbiResult {
    return this.dispatch(call).result;
  }

  /**
   * Serves the ECALL of an S-mode hart whose registers are `cpu`: EID from a7, FID from a6,
   * arguments from a0..a5; writes a0 = error and a1 = value as 64-bit two's complement, or only
   * a0 for legacy extensions (SBI spec §5: "Nothing is returned in a1 register"). All other
   * registers are preserved, as §3 requires. The core resumes the caller at ECALL + 4 by itself
   * (doEcall in src/cpu/wasm/exec.ts), so a pc written during the call is lost: redirections
   * (non-retentive resume, hart_start) must be applied when the hart next runs.
   */
  handleCpuEcall(cpu: EcallRegisters, hartId: number): SbiResult {
    const args: bigint[] = [];
    for (let i = 0; i < ARG_COUNT; i++) args.push(cpu.x(REG_A0 + i));
    const call: SbiCall = { eid: decodeSbiId(cpu.x(REG_A7)), fid: decodeSbiId(cpu.x(REG_A6)), args, hartId };
    const { result, legacy } = this.dispatch(call);
    cpu.setX(REG_A0, BigInt.asUintN(64, result.error));
    if (!legacy) cpu.setX(REG_A1, BigInt.asUintN(64, result.value));
    return result;
  }

  private dispatch(call: SbiCall): { result: SbiResult; legacy: boolean } {
    // Handlers see exactly a0..a5 as unsigned 64-bit values whoever built the call.
    const args = Array.from({ length: ARG_COUNT }, (_, i) => BigInt.asUintN(64, call.args[i] ?? 0n));
    const normalized: SbiCall = { ...call, args };
    const extension = this.findExtension(call.eid);
    if (extension === undefined) {
      const result = sbiFail(SBI_ERR_NOT_SUPPORTED);
      this.counters.record(UNKNOWN, UNKNOWN, result.error);
      return { result, legacy: false };
    }
    const legacy = extension.legacy === true;
    // Legacy extensions are one function per EID and ignore a6 (SBI spec §5).
    const fn = extension.functions.get(legacy ? call.eid : call.fid);
    if (fn === undefined) {
      const result = sbiFail(SBI_ERR_NOT_SUPPORTED);
      this.counters.record(extension.name, `${extension.name}.${UNKNOWN}`, result.error);
      return { result, legacy };
    }
    const result = fn.handler(normalized, this.host, this);
    this.counters.record(extension.name, `${extension.name}.${fn.name}`, legacy ? undefined : result.error);
    return { result, legacy };
  }
}
