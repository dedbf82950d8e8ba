// Small SVG charts for benchmark results (bar panels and labelled curves), and PNG copies made
// with resvg, for the README. Hand-written rather than a plotting library: the charts need
// little (a few bars, a few points), and SVG text is easy to keep exact and reproducible.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export const COLORS = {
  /** The emulated (trap-and-emulate, firmware) side of a comparison. */
  emulated: "#d95f02",
  /** The paravirtual side. */
  paravirtual: "#1b9e77",
  neutral: "#7570b3",
  grid: "#e3e3e3",
  axis: "#555555",
  text: "#222222",
};

const FONT = "DejaVu Sans, Verdana, sans-serif";

export interface Bar {
  label: string;
  value: number;
  color?: string;
}

export interface BarPanel {
  title: string;
  /** Printed under the title, e.g. "exits per KiB (lower is better)". */
  unit?: string;
  bars: Bar[];
}

export interface BarChart {
  title: string;
  subtitle?: string;
  panels: BarPanel[];
}

export interface CurvePoint {
  x: number;
  y: number;
  label: string;
}

export interface CurvePanel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; color?: string; points: CurvePoint[] }[];
}

export interface CurveChart {
  title: string;
  subtitle?: string;
  panels: CurvePanel[];
}

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** 3 significant digits with k/M/G suffixes: 1234567 -> "1.23M", 0.0123 -> "0.0123". */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e9) return `${trim((v / 1e9).toPrecision(3))}G`;
  if (a >= 1e6) return `${trim((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${trim((v / 1e3).toPrecision(3))}k`;
  if (a >= 100) return v.toFixed(0);
  if (a === 0) return "0";
  return trim(v.toPrecision(3));
}

function trim(s: string): string {
  return s.includes(".") && !s.includes("e") ? s.replace(/\.?0+$/, "") : s;
}

/** A "nice" axis maximum and step (1, 2 or 5 times a power of ten) covering `max` in about `ticks` steps. */
export function niceScale(max: number, ticks = 4): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 0.25 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

/** Rough text width in pixels for DejaVu Sans (average glyph ~0.6 em), to centre and wrap. */
function textWidth(text: string, size: number): number {
  return text.length * size * 0.6;
}

function text(x: number, y: number, content: string, opts: { size?: number; anchor?: "start" | "middle" | "end"; weight?: string; color?: string; rotate?: number } = {}): string {
  const size = opts.size ?? 12;
  const transform = opts.rotate ? ` transform="rotate(${opts.rotate} ${x} ${y})"` : "";
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${FONT}" font-size="${size}" text-anchor="${opts.anchor ?? "start"}"${
    opts.weight ? ` font-weight="${opts.weight}"` : ""
  } fill="${opts.color ?? COLORS.text}"${transform}>${esc(content)}</text>`;
}

function header(title: string, subtitle: string | undefined, width: number): { svg: string; height: number } {
  let svg = text(16, 24, title, { size: 16, weight: "bold" });
  let height = 36;
  if (subtitle) {
    // Wrap the subtitle to the chart's width.
    const words = subtitle.split(" ");
    let line = "";
    let y = 44;
    for (const w of words) {
      const next = line ? `${line} ${w}` : w;
      if (textWidth(next, 11) > width - 32 && line) {
        svg += text(16, y, line, { size: 11, color: COLORS.axis });
        y += 14;
        line = w;
      } else line = next;
    }
    if (line) svg += text(16, y, line, { size: 11, color: COLORS.axis });
    height = y + 10;
  }
  return { svg, height };
}

function wrapSvg(width: number, height: number, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<rect width="${width}" height="${height}" fill="#ffffff"/>${body}</svg>\n`
  );
}

/** Side-by-side panels of vertical bars, each panel with its own linear scale from zero. */
export function barChartSvg(chart: BarChart): string {
  const panelWidth = Math.max(200, ...chart.panels.map((p) => 70 + p.bars.length * 78));
  const width = 16 + chart.panels.length * panelWidth + 16;
  const head = header(chart.title, chart.subtitle, width);
  const top = head.height + 8;
  const plotTop = top + 44;
  const plotHeight = 170;
  const labelSpace = 40;
  const height = plotTop + plotHeight + labelSpace + 8;
  let body = head.svg;
  chart.panels.forEach((panel, pi) => {
    const x0 = 16 + pi * panelWidth;
    const axisX = x0 + 52;
    const plotWidth = panelWidth - 52 - 14;
    body += text(x0 + panelWidth / 2, top + 12, panel.title, { size: 13, anchor: "middle", weight: "bold" });
    if (panel.unit) body += text(x0 + panelWidth / 2, top + 28, panel.unit, { size: 11, anchor: "middle", color: COLORS.axis });
    // A little headroom, so that the value printed above the tallest bar stays inside the panel.
    const scale = niceScale(Math.max(0, ...panel.bars.map((b) => b.value)) * 1.08);
    const yOf = (v: number) => plotTop + plotHeight - (v / scale.max) * plotHeight;
    for (let v = 0; v <= scale.max + 1e-9; v += scale.step) {
      const y = yOf(v);
      body += `<line x1="${axisX}" y1="${y.toFixed(1)}" x2="${axisX + plotWidth}" y2="${y.toFixed(1)}" stroke="${COLORS.grid}" stroke-width="1"/>`;
      body += text(axisX - 6, y + 4, formatValue(v), { size: 10, anchor: "end", color: COLORS.axis });
    }
    body += `<line x1="${axisX}" y1="${plotTop}" x2="${axisX}" y2="${plotTop + plotHeight}" stroke="${COLORS.axis}" stroke-width="1"/>`;
    body += `<line x1="${axisX}" y1="${plotTop + plotHeight}" x2="${axisX + plotWidth}" y2="${plotTop + plotHeight}" stroke="${COLORS.axis}" stroke-width="1"/>`;
    const slot = plotWidth / panel.bars.length;
    const barWidth = Math.min(48, slot * 0.62);
    panel.bars.forEach((bar, bi) => {
      const cx = axisX + slot * (bi + 0.5);
      const y = yOf(Math.max(0, bar.value));
      const h = plotTop + plotHeight - y;
      body += `<rect x="${(cx - barWidth / 2).toFixed(1)}" y="${y.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${Math.max(h, 0.5).toFixed(1)}" fill="${
        bar.color ?? COLORS.neutral
      }"/>`;
      body += text(cx, y - 5, formatValue(bar.value), { size: 11, anchor: "middle", weight: "bold" });
      // Bar labels under the axis, on up to two lines.
      const words = bar.label.split(" ");
      let line1 = "";
      let i = 0;
      while (i < words.length && textWidth(`${line1} ${words[i]}`.trim(), 11) <= slot - 4) line1 = `${line1} ${words[i++]}`.trim();
      if (!line1) line1 = words[i++];
      const line2 = words.slice(i).join(" ");
      body += text(cx, plotTop + plotHeight + 15, line1, { size: 11, anchor: "middle" });
      if (line2) body += text(cx, plotTop + plotHeight + 29, line2, { size: 11, anchor: "middle" });
    });
  });
  return wrapSvg(width, height, body);
}

/** Side-by-side panels of labelled points joined in order (e.g. latency against throughput per setting). */
export function curveChartSvg(chart: CurveChart): string {
  const panelWidth = 400;
  const width = 16 + chart.panels.length * panelWidth + 16;
  const head = header(chart.title, chart.subtitle, width);
  const top = head.height + 8;
  const plotTop = top + 30;
  const plotHeight = 220;
  const height = plotTop + plotHeight + 52;
  let body = head.svg;
  chart.panels.forEach((panel, pi) => {
    const x0 = 16 + pi * panelWidth;
    const axisX = x0 + 62;
    const plotWidth = panelWidth - 62 - 30;
    body += text(x0 + panelWidth / 2, top + 12, panel.title, { size: 13, anchor: "middle", weight: "bold" });
    const points = panel.series.flatMap((s) => s.points);
    // Headroom keeps the outermost points and their labels off the frame.
    const xs = niceScale(Math.max(0, ...points.map((p) => p.x)) * 1.08);
    const ys = niceScale(Math.max(0, ...points.map((p) => p.y)) * 1.12);
    const xOf = (v: number) => axisX + (v / xs.max) * plotWidth;
    const yOf = (v: number) => plotTop + plotHeight - (v / ys.max) * plotHeight;
    for (let v = 0; v <= ys.max + 1e-9; v += ys.step) {
      body += `<line x1="${axisX}" y1="${yOf(v).toFixed(1)}" x2="${axisX + plotWidth}" y2="${yOf(v).toFixed(1)}" stroke="${COLORS.grid}"/>`;
      body += text(axisX - 6, yOf(v) + 4, formatValue(v), { size: 10, anchor: "end", color: COLORS.axis });
    }
    for (let v = 0; v <= xs.max + 1e-9; v += xs.step) {
      body += `<line x1="${xOf(v).toFixed(1)}" y1="${plotTop}" x2="${xOf(v).toFixed(1)}" y2="${plotTop + plotHeight}" stroke="${COLORS.grid}"/>`;
      body += text(xOf(v), plotTop + plotHeight + 14, formatValue(v), { size: 10, anchor: "middle", color: COLORS.axis });
    }
    body += `<rect x="${axisX}" y="${plotTop}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="${COLORS.axis}"/>`;
    body += text(axisX + plotWidth / 2, plotTop + plotHeight + 32, panel.xLabel, { size: 11, anchor: "middle" });
    body += text(x0 + 14, plotTop + plotHeight / 2, panel.yLabel, { size: 11, anchor: "middle", rotate: -90 });
    panel.series.forEach((series, si) => {
      const color = series.color ?? [COLORS.paravirtual, COLORS.emulated, COLORS.neutral][si % 3];
      const path = series.points.map((p, i) => `${i ? "L" : "M"}${xOf(p.x).toFixed(1)},${yOf(p.y).toFixed(1)}`).join(" ");
      body += `<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>`;
      series.points.forEach((p, i) => {
        body += `<circle cx="${xOf(p.x).toFixed(1)}" cy="${yOf(p.y).toFixed(1)}" r="4" fill="${color}"/>`;
        // Labels go left of points near the right edge so they stay inside the plot, and
        // alternate above and below the line so that neighbouring points' labels do not collide.
        const right = xOf(p.x) > axisX + plotWidth - 70;
        const dy = i % 2 ? 16 : -6;
        body += text(xOf(p.x) + (right ? -7 : 7), yOf(p.y) + dy, p.label, { size: 10, anchor: right ? "end" : "start" });
      });
      if (panel.series.length > 1) body += text(axisX + 8, plotTop + 16 + si * 14, series.name, { size: 11, color });
    });
  });
  return wrapSvg(width, height, body);
}

/** Writes `base`.svg and `base`.png (rasterised by resvg at 1.5x, white background). */
export async function writeChart(svg: string, base: string): Promise<{ svg: string; png: string }> {
  mkdirSync(dirname(base), { recursive: true });
  writeFileSync(`${base}.svg`, svg);
  // Loaded only here: a native module that the rest of the CLI does not need.
  const { Resvg } = await import("@resvg/resvg-js");
  const width = Number(/width="(\d+)"/.exec(svg)![1]);
  const png = new Resvg(svg, {
    fitTo: { mode: "width", value: Math.round(width * 1.5) },
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
    background: "#ffffff",
  })
    .render()
    .asPng();
  writeFileSync(`${base}.png`, png);
  return { svg: `${base}.svg`, png: `${base}.png` };
}
