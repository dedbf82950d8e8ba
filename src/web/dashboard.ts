// The page's dashboard: live charts of the paravirtualization ledger (exits, hypercalls,
// interrupts, virtio notifications and interrupts sent vs suppressed, per-hart instructions and
// steal) drawn with uPlot, and a coalescing control per virtio device. The numbers come from
// ledger-series.ts (pure, tested in Node); this file only makes DOM elements and hands data over.
import uPlot from "uplot";
import type { Ledger } from "../machine/ledger.ts";
import type { VirtioCoalesce } from "../virtio/transport/coalesce.ts";
import { LedgerHistory, coalescingByDevice, describeCoalescing, formatRate, parseCoalescingInput, type ChartSeries } from "./ledger-series.ts";

export interface DashboardOptions {
  /** The user asked for a new coalescing setting on `device` (undefined: off). */
  onCoalescingChange(device: string, c: VirtioCoalesce | undefined): void;
}

export interface Dashboard {
  /** A ledger collected at `at` (milliseconds, one clock for every call); about once a second. */
  update(ledger: Ledger, at: number): void;
}

/** Series colours, in order of appearance (distinguishable, also for the common colour blindnesses). */
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const CHART_HEIGHT = 160;
const MIN_CHART_WIDTH = 290;

export function createDashboard(container: HTMLElement, options: DashboardOptions): Dashboard {
  const history = new LedgerHistory();
  container.classList.add("parley-dashboard");
  const chartsBox = element("div", "parley-dashboard-charts");
  const controlsBox = element("div", "parley-dashboard-coalescing");
  controlsBox.append(element("h3", "", "Used-buffer interrupt coalescing"));
  container.append(chartsBox, controlsBox);

  const charts = new Map<string, LiveChart>();
  const controls = new Map<string, CoalescingControl>();

  const resize = (): void => {
    for (const chart of charts.values()) chart.plot.setSize({ width: chartWidth(chart.box), height: CHART_HEIGHT });
  };
  new ResizeObserver(resize).observe(chartsBox);

  return {
    update(ledger: Ledger, at: number): void {
      history.push(ledger, at);
      for (const series of history.charts()) {
        if (series.series.length === 0) continue; // nothing happened yet (no SBI call, no interrupt)
        let chart = charts.get(series.id);
        // uPlot fixes its series at construction: a new label means a new chart (rare).
        if (chart && chart.labels.join("\n") !== series.series.map((s) => s.label).join("\n")) {
          chart.plot.destroy();
          chart.box.remove();
          chart = undefined;
        }
        if (!chart) {
          const ids = [...charts.keys()];
          // Placed before uPlot measures it: the grid cell gives the width.
          chart = createChart(series, (box) => insertInOrder(chartsBox, box, ids, series.id, charts));
          charts.set(series.id, chart);
        }
        chart.plot.setData([series.times, ...series.series.map((s) => s.values)]);
      }
      for (const { device, coalesce } of coalescingByDevice(ledger)) {
        let control = controls.get(device);
        if (!control) {
          control = createCoalescingControl(device, options);
          controls.set(device, control);
          controlsBox.append(control.row);
        }
        control.current.textContent = describeCoalescing(coalesce);
      }
    },
  };
}

interface LiveChart {
  box: HTMLElement;
  plot: uPlot;
  labels: string[];
}

function createChart(series: ChartSeries, place: (box: HTMLElement) => void): LiveChart {
  const box = element("figure", "parley-chart");
  box.dataset.chart = series.id;
  place(box);
  const format = series.unit === "% of wall time" ? (v: number) => `${formatRate(v)}%` : (v: number) => `${formatRate(v)}/s`;
  const plot = new uPlot(
    {
      title: series.title,
      width: chartWidth(box),
      height: CHART_HEIGHT,
      // x is "seconds ago", not a date.
      scales: { x: { time: false }, y: series.unit === "% of wall time" ? { range: [0, 100] } : { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        { values: (_u, splits) => splits.map((s) => `${s}s`) },
        { values: (_u, splits) => splits.map(format), size: 60 },
      ],
      series: [
        { label: "seconds ago" },
        ...series.series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          value: (_u: uPlot, v: number | null) => (v === null ? "–" : format(v)),
        })),
      ],
    },
    [series.times, ...series.series.map((s) => s.values)],
    box,
  );
  return { box, plot, labels: series.series.map((s) => s.label) };
}

/** Keeps charts in the order history.charts() first gave them, when one is re-created. */
function insertInOrder(parent: HTMLElement, box: HTMLElement, ids: string[], id: string, charts: Map<string, LiveChart>): void {
  const after = ids.indexOf(id);
  const next = after >= 0 ? ids.slice(after + 1).map((i) => charts.get(i)?.box).find((b) => b?.parentElement === parent) : undefined;
  parent.insertBefore(box, next ?? null);
}

/** The chart's grid cell, less its padding. */
function chartWidth(box: HTMLElement): number {
  return Math.max(MIN_CHART_WIDTH, box.clientWidth - 8);
}

interface CoalescingControl {
  row: HTMLElement;
  current: HTMLElement;
}

/** A device's row: its setting in force, two fields and Apply / Off. The fields are the user's: updates never overwrite them. */
function createCoalescingControl(device: string, options: DashboardOptions): CoalescingControl {
  const row = element("form", "parley-coalescing-row");
  row.dataset.device = device;
  const name = element("span", "parley-coalescing-device", device);
  const current = element("span", "parley-coalescing-current");
  const completions = numberInput("max completions", "8");
  const delay = numberInput("max delay (µs)", "200");
  const apply = element("button", "", "Apply") as HTMLButtonElement;
  apply.type = "submit";
  const off = element("button", "", "Off") as HTMLButtonElement;
  off.type = "button";
  const error = element("span", "parley-coalescing-error");
  error.setAttribute("role", "alert");

  row.addEventListener("submit", (event) => {
    event.preventDefault();
    const parsed = parseCoalescingInput(completions.input.value, delay.input.value);
    if ("error" in parsed) {
      error.textContent = parsed.error;
      return;
    }
    error.textContent = "";
    options.onCoalescingChange(device, parsed.coalesce);
  });
  off.addEventListener("click", () => {
    error.textContent = "";
    options.onCoalescingChange(device, undefined);
  });
  row.append(name, current, completions.label, delay.label, apply, off, error);
  return { row, current };
}

function numberInput(caption: string, placeholder: string): { label: HTMLLabelElement; input: HTMLInputElement } {
  const label = element("label", "", `${caption} `) as HTMLLabelElement;
  const input = document.createElement("input");
  input.type = "number";
  input.min = "0";
  input.step = "1";
  input.placeholder = placeholder;
  label.append(input);
  return { label, input };
}

function element(tag: string, className: string, text?: string): HTMLElement {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}
