// Used-buffer interrupt coalescing for the virtio-mmio transport, as a NIC's rx-frames /
// rx-usecs: completions (used buffers) are gathered and the used-buffer interrupt is raised once
// `maxCompletions` are pending, or `maxDelayUs` microseconds after the first pending one,
// whichever comes first. Fewer interrupts mean fewer exits (PLIC claim/complete,
// InterruptStatus, InterruptACK) and less guest interrupt handling per completion, at the price
// of up to `maxDelayUs` added latency. The delay is a timer of the injected HostClock: while the
// guest executes, host timers run only between execution slices, so a delay can end later than
// asked, never sooner.
import type { HostClock } from "../../platform/clock.ts";

/** { 1, 0 } is no coalescing. */
export interface VirtioCoalesce {
  /** Completions that raise the interrupt at once (1 or more). */
  maxCompletions: number;
  /** Longest wait, in microseconds, after the first pending completion (0: no wait). */
  maxDelayUs: number;
}

/** Throws a RangeError for settings that are not whole, non-negative or that could strand completions. */
export function checkCoalesce(c: VirtioCoalesce): void {
  if (!Number.isSafeInteger(c.maxCompletions) || c.maxCompletions < 1) {
    throw new RangeError(`interrupt coalescing: maxCompletions must be a whole number of at least 1, not ${c.maxCompletions}`);
  }
  if (!Number.isFinite(c.maxDelayUs) || c.maxDelayUs < 0 || c.maxDelayUs > 10_000_000) {
    throw new RangeError(`interrupt coalescing: maxDelayUs must be between 0 and 10000000 microseconds, not ${c.maxDelayUs}`);
  }
  // Without a delay bound, a batch that never reaches maxCompletions (the last requests of a
  // workload) would wait for ever: the driver would hang.
  if (c.maxCompletions > 1 && c.maxDelayUs === 0) {
    throw new RangeError(`interrupt coalescing: ${c.maxCompletions} completions need a delay bound (maxDelayUs > 0)`);
  }
}

/** Why a batch ended: enough completions, the delay bound, a change of the setting, or a pause. */
export type BatchEnd = "count" | "timer" | "change" | "pause";

export interface CoalesceCounters {
  /** Completions gathered, and batches ended by the count or by the timer. */
  coalescedCompletions: number;
  coalesceFlushesByCount: number;
  coalesceFlushesByTimer: number;
}

/** The batch of completions waiting for one interrupt, and its delay timer. */
export class InterruptCoalescer {
  private setting: VirtioCoalesce | undefined;
  /** Completions waiting for the coalesced interrupt, and the queues they are on. */
  private pendingCompletions = 0;
  private readonly pendingQueues = new Set<number>();
  /** Cancels the running delay, if any. */
  private cancelTimer: (() => void) | undefined;
  /** Each queue's counters.used at the last accounting: completions are the difference. */
  private usedSeen: number[] = [];

  /** `signal` is told the queues of each batch that ends with completions on them. */
  constructor(
    private readonly clock: HostClock,
    private readonly counters: CoalesceCounters,
    private readonly signal: (queues: number[]) => void,
  ) {}

  /** The current setting ({ 1, 0 } when off). */
  get coalescing(): VirtioCoalesce {
    return this.setting ? { ...this.setting } : { maxCompletions: 1, maxDelayUs: 0 };
  }

  /**
   * Changes the setting; undefined or { 1, 0 } turns coalescing off. Completions already waiting
   * are signalled at once, so none waits under a bound that no longer applies.
   */
  configure(coalesce: VirtioCoalesce | undefined): void {
    if (coalesce) checkCoalesce(coalesce);
    this.end("change");
    const off = !coalesce || coalesce.maxCompletions === 1 || coalesce.maxDelayUs === 0;
    this.setting = off ? undefined : { ...coalesce };
  }

  /**
   * A device signalled used buffers on queue `index`, which has now returned `used` in all (its
   * counters.used). Returns false when coalescing is off: signal the queue at once. One signal
   * may stand for several used buffers (a device batches what settled together): the buffers
   * count, not the calls.
   */
  add(index: number, used: number): boolean {
    const setting = this.setting;
    const completions = Math.max(0, used - (this.usedSeen[index] ?? 0));
    // Kept up to date while off too, so that coalescing turned on later counts from here.
    this.usedSeen[index] = used;
    if (!setting) return false;
    this.pendingQueues.add(index);
    this.pendingCompletions += completions;
    this.counters.coalescedCompletions += completions;
    if (this.pendingCompletions >= setting.maxCompletions) {
      this.end("count");
    } else if (this.cancelTimer === undefined) {
      this.cancelTimer = this.clock.setTimer(setting.maxDelayUs / 1000, () => {
        this.cancelTimer = undefined;
        this.end("timer");
      });
    }
    return true;
  }

  /** Ends the batch: its queues are signalled (when it has any). */
  end(why: BatchEnd): void {
    const queues = this.takePending();
    if (queues.length === 0) return;
    if (why === "count") this.counters.coalesceFlushesByCount++;
    else if (why === "timer") this.counters.coalesceFlushesByTimer++;
    this.signal(queues);
  }

  /** Whether a batch is waiting (its delay timer is running). */
  get pending(): boolean {
    return this.pendingQueues.size > 0;
  }

  /** A restored queue has returned `used` buffers so far: completions count from there. */
  seen(index: number, used: number): void {
    this.usedSeen[index] = used;
  }

  /** Device reset: the completions belonged to the old activation's rings. */
  drop(): void {
    this.takePending();
    this.usedSeen = [];
  }

  /** Stops the delay and empties the batch; returns the queues it had completions on. */
  private takePending(): number[] {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const queues = [...this.pendingQueues];
    this.pendingQueues.clear();
    this.pendingCompletions = 0;
    return queues;
  }
}
