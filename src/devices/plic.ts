// RISC-V Platform-Level Interrupt Controller, per the RISC-V PLIC Specification v1.0.0, with the
// SiFive register layout that QEMU's virt machine, OpenSBI and Linux's irq-sifive-plic use.
//
// Model (spec chapter "Interrupt Gateways" and "Interrupt Flow"):
//   device level --> gateway --(request)--> IP (pending) bit --> per-context selection --> EIP
//   A gateway forwards one request for a level-triggered source and then holds further requests
//   until the context that claimed it writes the completion; if the level is still asserted at
//   that point, a new request is forwarded at once. A request cannot be retracted: a source that
//   deasserts while pending stays pending until claimed (the handler then finds nothing to do).
import type { MmioAccess, MmioDevice } from "./mmio-device.ts";
import type { InterruptTarget } from "./clint.ts";
import { MIP_MEIP, MIP_SEIP } from "../cpu/interrupts.ts";
import { SnapshotError, stateArray, stateBool, stateInt, stateObject, type VersionedState } from "../platform/persist.ts";

/** Register map (spec chapter "Memory Map"). */
export const PLIC_PRIORITY_BASE = 0x00_0000; // 4 bytes per source; source 0 reserved
export const PLIC_PENDING_BASE = 0x00_1000; // 1 bit per source, 32 sources per word
export const PLIC_ENABLE_BASE = 0x00_2000; // per context: 1 bit per source
export const PLIC_ENABLE_STRIDE = 0x80;
export const PLIC_CONTEXT_BASE = 0x20_0000; // per context: threshold, claim/complete
export const PLIC_CONTEXT_STRIDE = 0x1000;
const PLIC_THRESHOLD_OFFSET = 0x0;
const PLIC_CLAIM_COMPLETE_OFFSET = 0x4;
/** The architecture allows up to 1023 sources and 15872 contexts. */
const PLIC_MAX_SOURCES = 1023;
const PLIC_MAX_CONTEXTS = 15872;

/**
 * Priorities are WARL with an implementation-defined width. We implement 3 bits (0..7) like
 * QEMU's virt (VIRT_IRQCHIP_NUM_PRIORITIES = 7) and SiFive's FU540; writes keep the low 3 bits.
 * Thresholds have the same width. Priority 0 means "never interrupt".
 */
export const PLIC_PRIORITY_BITS = 3;
const PRIORITY_MASK = (1 << PLIC_PRIORITY_BITS) - 1;

/** mip bits driven by the PLIC: context 2N is hart N's M-mode, 2N+1 its S-mode external interrupt. */
export { MIP_MEIP, MIP_SEIP };
export const PLIC_CONTEXTS_PER_HART = 2;

export interface PlicCounters {
  /** Successful claims (a source ID was returned), per context. */
  claims: number[];
  /** Claims that returned 0 (nothing pending above threshold), per context. */
  emptyClaims: number[];
  /** Accepted completions, per context. */
  completes: number[];
  /** Requests forwarded by each source's gateway (index = source ID). */
  raised: number[];
  /** Claims of a source whose level had already dropped: the guest's handler will find no work. */
  staleClaims: number;
  /** Accesses to reserved space or to registers of contexts that do not exist. */
  reservedAccesses: number;
}

/**
 * The PLIC's programmer-visible and gateway state. Arrays of 32-bit words hold one bit per source
 * (bit s of word s >> 5), as the pending registers do. The EIP lines are not saved: they follow
 * from the rest, and restoreState drives them.
 */
export interface PlicState extends VersionedState {
  version: 1;
  /** Configuration the state belongs to: a restore onto a differently sized PLIC is refused. */
  sources: number;
  contexts: number;
  /** Per source 0..sources (source 0 is always 0). */
  priority: number[];
  /** Each source's input level, per source 0..sources. */
  level: boolean[];
  /** IP bits. */
  pending: number[];
  /** Claimed and not yet completed (the gateway holds the source). */
  inFlight: number[];
  /** Per context, its enable words. */
  enable: number[][];
  /** Per context. */
  threshold: number[];
}

const PLIC_STATE_VERSIONS = [1] as const;

export class Plic implements MmioDevice {
  readonly name = "plic";
  readonly sources: number;
  readonly contexts: number;
  readonly counters: PlicCounters;
  private readonly words: number; // 32-bit words of pending/enable bits, covering source 0..sources
  private readonly priority: Uint8Array;
  private readonly level: Uint8Array;
  private readonly pending: Uint32Array;
  /** Claimed and not yet completed: the gateway holds further requests (spec "Interrupt Gateways"). */
  private readonly inFlight: Uint32Array;
  private readonly enable: Uint32Array; // contexts * words
  private readonly threshold: Uint8Array;
  /** Last EIP value delivered to each context, so targets only hear about changes. */
  private readonly line: Uint8Array;

  constructor(
    private readonly harts: InterruptTarget[],
    options: { sources?: number } = {},
  ) {
    this.sources = options.sources ?? 95;
    if (!Number.isInteger(this.sources) || this.sources < 1 || this.sources > PLIC_MAX_SOURCES) {
      throw new RangeError(`PLIC source count ${this.sources} is outside 1..${PLIC_MAX_SOURCES}`);
    }
    this.contexts = harts.length * PLIC_CONTEXTS_PER_HART;
    if (this.contexts === 0 || this.contexts > PLIC_MAX_CONTEXTS) throw new RangeError(`PLIC needs 1..${PLIC_MAX_CONTEXTS / 2} harts`);
    this.words = (this.sources + 1 + 31) >> 5;
    this.priority = new Uint8Array(this.sources + 1);
    this.level = new Uint8Array(this.sources + 1);
    this.pending = new Uint32Array(this.words);
    this.inFlight = new Uint32Array(this.words);
    this.enable = new Uint32Array(this.contexts * this.words);
    this.threshold = new Uint8Array(this.contexts);
    this.line = new Uint8Array(this.contexts);
    this.counters = {
      claims: new Array<number>(this.contexts).fill(0),
      emptyClaims: new Array<number>(this.contexts).fill(0),
      completes: new Array<number>(this.contexts).fill(0),
      raised: new Array<number>(this.sources + 1).fill(0),
      staleClaims: 0,
      reservedAccesses: 0,
    };
  }

  /** A device's interrupt output (level-triggered). Throws on a source the PLIC does not have: that is a wiring bug. */
  setLevel(source: number, asserted: boolean): void {
    if (!Number.isInteger(source) || source < 1 || source > this.sources) {
      throw new RangeError(`PLIC source ${source} is outside 1..${this.sources}`);
    }
    this.level[source] = asserted ? 1 : 0;
    if (asserted) this.gatewayRequest(source);
    this.update();
  }

  /** Source `source` is asserted and not held by its gateway: forward a request (sets IP). */
  private gatewayRequest(source: number): void {
    const w = source >> 5;
    const bit = 1 << (source & 31);
    if ((this.inFlight[w] & bit) !== 0 || (this.pending[w] & bit) !== 0) return;
    this.pending[w] |= bit;
    this.counters.raised[source]++;
  }

  /** The highest-priority pending, enabled source above the context's threshold; ties go to the lowest ID. */
  private best(ctx: number): number {
    let bestSource = 0;
    let bestPriority = this.threshold[ctx];
    const base = ctx * this.words;
    for (let w = 0; w < this.words; w++) {
      let bits = this.pending[w] & this.enable[base + w];
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits); // lowest set bit first, so ties keep the lowest ID
        bits &= bits - 1;
        const source = (w << 5) | b;
        if (this.priority[source] > bestPriority) {
          bestPriority = this.priority[source];
          bestSource = source;
        }
      }
    }
    return bestSource;
  }

  /** Recomputes every context's EIP and tells the hart when it changes (spec "Interrupt Notifications"). */
  private update(): void {
    for (let ctx = 0; ctx < this.contexts; ctx++) {
      const eip = this.best(ctx) !== 0 ? 1 : 0;
      if (eip === this.line[ctx]) continue;
      this.line[ctx] = eip;
      this.harts[ctx >> 1].setPendingInterrupt((ctx & 1) === 0 ? MIP_MEIP : MIP_SEIP, eip === 1);
    }
  }

  private claim(ctx: number): number {
    const source = this.best(ctx);
    if (source === 0) {
      this.counters.emptyClaims[ctx]++;
      return 0;
    }
    const w = source >> 5;
    const bit = 1 << (source & 31);
    this.pending[w] &= ~bit;
    this.inFlight[w] |= bit;
    this.counters.claims[ctx]++;
    if (!this.level[source]) this.counters.staleClaims++;
    this.update();
    return source;
  }

  private complete(ctx: number, source: number): void {
    // Spec "Interrupt Completion": an ID that is not enabled for this context is silently ignored.
    if (source < 1 || source > this.sources) return;
    const w = source >> 5;
    const bit = 1 << (source & 31);
    if ((this.enable[ctx * this.words + w] & bit) === 0) return;
    if ((this.inFlight[w] & bit) === 0) return;
    this.inFlight[w] &= ~bit;
    this.counters.completes[ctx]++;
    if (this.level[source]) this.gatewayRequest(source);
    this.update();
  }

  /** Decodes an offset into a register; undefined means reserved space. */
  private decode(offset: number): { kind: "priority" | "pending"; index: number } | { kind: "enable" | "threshold" | "claim"; ctx: number; index: number } | undefined {
    if (offset < PLIC_PENDING_BASE) return { kind: "priority", index: offset >> 2 };
    if (offset < PLIC_ENABLE_BASE) return { kind: "pending", index: (offset - PLIC_PENDING_BASE) >> 2 };
    if (offset < PLIC_CONTEXT_BASE) {
      const rel = offset - PLIC_ENABLE_BASE;
      return { kind: "enable", ctx: Math.floor(rel / PLIC_ENABLE_STRIDE), index: (rel % PLIC_ENABLE_STRIDE) >> 2 };
    }
    const rel = offset - PLIC_CONTEXT_BASE;
    const ctx = Math.floor(rel / PLIC_CONTEXT_STRIDE);
    const reg = rel % PLIC_CONTEXT_STRIDE;
    if (reg === PLIC_THRESHOLD_OFFSET) return { kind: "threshold", ctx, index: 0 };
    if (reg === PLIC_CLAIM_COMPLETE_OFFSET) return { kind: "claim", ctx, index: 0 };
    return undefined;
  }

  /**
   * For the exit ledger: registers by kind, with the context as hart and mode where there is one
   * ("claim[hart0.S]"); priorities and pending words are not told apart by source, which keeps
   * the number of ledger lines (and Prometheus series) small.
   */
  registerName(offset: number, access: MmioAccess): string | undefined {
    const r = this.decode(offset);
    if (r === undefined) return undefined;
    if (!("ctx" in r)) return r.kind;
    if (r.ctx >= this.contexts) return undefined;
    const context = `hart${r.ctx >> 1}.${(r.ctx & 1) === 0 ? "M" : "S"}`;
    const kind = r.kind === "claim" && access === "store" ? "complete" : r.kind;
    return `${kind}[${context}]`;
  }

  /** All PLIC registers are 32 bits wide and naturally aligned; anything else is an access fault. */
  load(offset: number, size: number): number | bigint | undefined {
    if (size !== 4 || (offset & 3) !== 0) return undefined;
    const r = this.decode(offset);
    if (r === undefined || ("ctx" in r && r.ctx >= this.contexts)) return this.reserved(0);
    switch (r.kind) {
      case "priority":
        return r.index <= this.sources ? this.priority[r.index] : this.reserved(0);
      case "pending":
        return r.index < this.words ? this.pending[r.index] >>> 0 : this.reserved(0);
      case "enable":
        return r.index < this.words ? this.enable[r.ctx * this.words + r.index] >>> 0 : this.reserved(0);
      case "threshold":
        return this.threshold[r.ctx];
      case "claim":
        return this.claim(r.ctx);
    }
  }

  store(offset: number, size: number, value: number | bigint): boolean {
    if (size !== 4 || (offset & 3) !== 0) return false;
    const v = Number(BigInt.asUintN(32, BigInt(value)));
    const r = this.decode(offset);
    if (r === undefined || ("ctx" in r && r.ctx >= this.contexts)) return this.reserved(true);
    switch (r.kind) {
      case "priority":
        if (r.index === 0 || r.index > this.sources) return this.reserved(true); // source 0 does not exist
        this.priority[r.index] = v & PRIORITY_MASK;
        break;
      case "pending":
        // The pending array is read-only: IP bits change only through gateways and claims.
        return this.reserved(true);
      case "enable": {
        if (r.index >= this.words) return this.reserved(true);
        this.enable[r.ctx * this.words + r.index] = v & this.validBits(r.index);
        break;
      }
      case "threshold":
        this.threshold[r.ctx] = v & PRIORITY_MASK;
        break;
      case "claim":
        this.complete(r.ctx, v);
        return true;
    }
    this.update();
    return true;
  }

  saveState(): PlicState {
    return {
      version: 1,
      sources: this.sources,
      contexts: this.contexts,
      priority: Array.from(this.priority),
      level: Array.from(this.level, (l) => l !== 0),
      pending: Array.from(this.pending),
      inFlight: Array.from(this.inFlight),
      enable: Array.from({ length: this.contexts }, (_, ctx) => Array.from(this.enable.subarray(ctx * this.words, (ctx + 1) * this.words))),
      threshold: Array.from(this.threshold),
    };
  }

  /**
   * Checks the whole state, then applies it and drives every context's EIP line to match it (each
   * target hears its current value, asserted or not, so a hart's mip agrees with the PLIC whatever
   * it held before). Source levels are restored as saved; devices restored afterwards that drive
   * their line again change nothing, since a source that is asserted is already pending or claimed.
   */
  restoreState(state: unknown): void {
    const s = stateObject(state, "plic", PLIC_STATE_VERSIONS);
    stateInt(s.sources, "plic.sources", this.sources, this.sources);
    stateInt(s.contexts, "plic.contexts", this.contexts, this.contexts);
    const priority = stateArray(s.priority, "plic.priority", this.sources + 1).map((p, i) => stateInt(p, `plic.priority[${i}]`, 0, i === 0 ? 0 : PRIORITY_MASK));
    const level = stateArray(s.level, "plic.level", this.sources + 1).map((l, i) => stateBool(l, `plic.level[${i}]`));
    if (level[0]) throw snapshotError("plic.level[0]", "source 0 does not exist and cannot be asserted");
    const sourceWords = (value: unknown, where: string) =>
      stateArray(value, where, this.words).map((word, w) => {
        const v = stateInt(word, `${where}[${w}]`, 0, 0xffff_ffff);
        if ((v & ~this.validBits(w)) !== 0) throw snapshotError(`${where}[${w}]`, `0x${v.toString(16)} sets bits of sources this PLIC does not have`);
        return v;
      });
    const pending = sourceWords(s.pending, "plic.pending");
    const inFlight = sourceWords(s.inFlight, "plic.inFlight");
    const enable = stateArray(s.enable, "plic.enable", this.contexts).map((words, ctx) => sourceWords(words, `plic.enable[${ctx}]`));
    const threshold = stateArray(s.threshold, "plic.threshold", this.contexts).map((t, ctx) => stateInt(t, `plic.threshold[${ctx}]`, 0, PRIORITY_MASK));

    this.priority.set(priority);
    this.level.set(level.map((l) => (l ? 1 : 0)));
    this.pending.set(pending);
    this.inFlight.set(inFlight);
    enable.forEach((words, ctx) => this.enable.set(words, ctx * this.words));
    this.threshold.set(threshold);
    for (let ctx = 0; ctx < this.contexts; ctx++) {
      const eip = this.best(ctx) !== 0 ? 1 : 0;
      this.line[ctx] = eip;
      this.harts[ctx >> 1].setPendingInterrupt((ctx & 1) === 0 ? MIP_MEIP : MIP_SEIP, eip === 1);
    }
  }

  /** The bits of word `w` that name sources 1..sources (source 0 is hard-wired off). */
  private validBits(w: number): number {
    let mask = 0xffff_ffff;
    if (w === 0) mask &= ~1;
    const lastBit = this.sources - (w << 5); // highest valid bit in this word
    if (lastBit < 31) mask &= (2 ** (lastBit + 1) - 1) | 0;
    return mask >>> 0;
  }

  private reserved<T>(result: T): T {
    this.counters.reservedAccesses++;
    return result;
  }
}

function snapshotError(where: string, why: string): SnapshotError {
  return new SnapshotError(`${where}: ${why}`);
}
