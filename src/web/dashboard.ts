// PLACEHOLDER with the shared contract's signature (the ledger as a few numbers), until the real
// dashboard (charts, coalescing controls) is merged; the merge replaces this file whole.
import type { Ledger } from "../machine/ledger.ts";

export interface DashboardOptions {
  onCoalescingChange(device: string, c: { maxCompletions: number; maxDelayUs: number } | undefined): void;
}

export function createDashboard(container: HTMLElement, _options: DashboardOptions): { update(ledger: Ledger, at: number): void } {
  const text = container.ownerDocument.createElement("pre");
  container.append(text);
  return {
    update(ledger) {
      text.textContent = `instructions ${ledger.instructions.toLocaleString()}\nwall ${ledger.wallSeconds.toFixed(1)} s`;
    },
  };
}
