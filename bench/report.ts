/**
 * `npm run bench:report [-- RESULTS.json] [--out FILE] [--results-dir DIR]`:
 * turns a results file of bench/run.ts (the newest in bench/results/ when
 * none is given) into one self-contained HTML page, bench/results/report.html
 * by default: inline CSS and SVG charts drawn here, no script, no network.
 *
 * Sections: the run (machine, versions, load); a summary table of every
 * case and figure with its baseline, ratio and target (met / not met);
 * ratios to baselines as bars; the waypipe comparison (rows of a case or
 * figure named `waypipe`, as grouped bars per unit: series by `group`,
 * bar groups by `x`); scaling curves (rows carrying `x`, one line per
 * `group`, median and p99); and per case its figures' distributions (box
 * and whiskers over a CDF, figure beside baseline, log scale when wide).
 */
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { benchDir, format, formatRatio } from "./lib.ts";
import type { BenchResults, CaseResult } from "./run.ts";

type Row = CaseResult["rows"][number];

const COLORS = ["#1f6fb4", "#e8772e", "#2e9e4f", "#c8363b", "#8c5bb8", "#8a5a44", "#d06bb5", "#6b7280", "#b5a31a"];
const FIGURE_COLOR = COLORS[0] as string;
const BASELINE_COLOR = COLORS[1] as string;

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function cut(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

/** A number as an SVG coordinate. */
function n(x: number): string {
  return Number.isFinite(x) ? String(Math.round(x * 10) / 10) : "0";
}

interface Scale {
  (value: number): number;
  log: boolean;
  ticks: number[];
  /** The pixel range, as given. */
  from: number;
  to: number;
}

/** Maps [lo, hi] to [from, to], logarithmically when asked (and possible). */
function scale(lo: number, hi: number, from: number, to: number, wantLog: boolean): Scale {
  const log = wantLog && lo > 0 && hi > 0;
  if (hi <= lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
    if (log && lo <= 0) lo = hi / 100;
  }
  const f = (v: number): number => (log ? Math.log10(Math.max(v, lo / 1e3)) : v);
  const a = f(lo);
  const b = f(hi);
  const map = ((value: number) => from + ((f(value) - a) / (b - a)) * (to - from)) as Scale;
  map.log = log;
  map.ticks = log ? logTicks(lo, hi) : linearTicks(lo, hi);
  map.from = from;
  map.to = to;
  return map;
}

function linearTicks(lo: number, hi: number): number[] {
  const step0 = (hi - lo) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= step0) ?? magnitude * 10;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const decades = Math.log10(hi / lo);
  const multiples = decades < 1.5 ? [1, 2, 5] : decades < 4 ? [1, 3] : [1];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of multiples) {
      const t = m * 10 ** e;
      if (t >= lo && t <= hi) out.push(t);
    }
  }
  if (out.length < 2) return linearTicks(lo, hi).filter((t) => t > 0);
  return out;
}

/** A tick's label: whole numbers as they are, others as figures. */
function tick(t: number): string {
  return Number.isInteger(t) && Math.abs(t) < 1e6 ? String(t) : format(t);
}

/** Horizontal axis at `y` with tick labels below it and grid lines up to `top`. */
function xAxis(x: Scale, y: number, top: number, unit: string): string {
  const parts = x.ticks.map((t) => {
    const at = n(x(t));
    return `<line x1="${at}" x2="${at}" y1="${n(top)}" y2="${n(y)}" class="grid"/><text x="${at}" y="${n(y + 14)}" text-anchor="middle">${esc(tick(t))}</text>`;
  });
  const [from, to] = [x.from, x.to];
  parts.push(
    `<line x1="${n(Math.min(from, to))}" x2="${n(Math.max(from, to))}" y1="${n(y)}" y2="${n(y)}" class="axis"/>`,
  );
  if (unit !== "")
    parts.push(
      `<text x="${n(Math.max(from, to))}" y="${n(y + 28)}" text-anchor="end" class="muted">${esc(unit)}${x.log ? " (log scale)" : ""}</text>`,
    );
  return parts.join("");
}

/** Vertical axis at `x0` with labels left of it and grid lines across to `x1`. */
function yAxis(y: Scale, x0: number, x1: number, unit: string): string {
  const parts = y.ticks.map((t) => {
    const at = n(y(t));
    return `<line x1="${n(x0)}" x2="${n(x1)}" y1="${at}" y2="${at}" class="grid"/><text x="${n(x0 - 5)}" y="${at}" text-anchor="end" dominant-baseline="middle">${esc(tick(t))}</text>`;
  });
  parts.push(`<text x="${n(x0)}" y="10" class="muted">${esc(unit)}${y.log ? " (log scale)" : ""}</text>`);
  return parts.join("");
}

function legend(entries: Array<{ label: string; color: string; dashed?: boolean }>, x: number, y: number): string {
  return entries
    .map((entry, i) => {
      const at = y + i * 16;
      return `<line x1="${n(x)}" x2="${n(x + 18)}" y1="${n(at)}" y2="${n(at)}" stroke="${entry.color}" stroke-width="3"${entry.dashed === true ? ' stroke-dasharray="4 3"' : ""}/><text x="${n(x + 24)}" y="${n(at)}" dominant-baseline="middle">${esc(cut(entry.label, 60))}</text>`;
    })
    .join("");
}

function svg(width: number, height: number, body: string, label: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${n(height)}" viewBox="0 0 ${width} ${n(height)}" role="img" aria-label="${esc(label)}">${body}</svg>`;
}

/** The q-quantile of ascending samples. */
function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(q * sorted.length)))] as number;
}

/** Box and whiskers (p25–p75, median, p1–p99 whiskers, min and max dots) over a CDF, figure beside baseline. */
function distributionChart(row: Row): string {
  const series: Array<{ label: string; color: string; samples: number[] }> = [];
  if (row.samples !== undefined && row.samples.length > 1)
    series.push({ label: "figure", color: FIGURE_COLOR, samples: row.samples });
  if (row.baseline?.samples !== undefined && row.baseline.samples.length > 1)
    series.push({ label: `baseline: ${row.baseline.name}`, color: BASELINE_COLOR, samples: row.baseline.samples });
  if (series.length === 0) return "";
  const width = 560;
  const left = 16;
  const right = width - 16;
  const all = series.flatMap((s) => s.samples);
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const x = scale(lo, hi, left, right, lo > 0 && hi / lo >= 20);
  const boxTop = 14;
  const boxHeight = 14;
  const boxGap = 30;
  const cdfTop = boxTop + series.length * boxGap;
  const cdfHeight = 100;
  const cdfBottom = cdfTop + cdfHeight;
  const parts: string[] = [];
  parts.push(xAxis(x, cdfBottom, boxTop, row.unit));
  series.forEach((s, i) => {
    const sorted = s.samples;
    const y = boxTop + i * boxGap;
    const mid = y + boxHeight / 2;
    const [p1, p25, p50, p75, p99] = [0.01, 0.25, 0.5, 0.75, 0.99].map((q) => x(quantile(sorted, q))) as [
      number,
      number,
      number,
      number,
      number,
    ];
    parts.push(
      `<g><title>${esc(s.label)}: min ${format(sorted[0] as number)}, p25 ${format(quantile(sorted, 0.25))}, median ${format(quantile(sorted, 0.5))}, p75 ${format(quantile(sorted, 0.75))}, p99 ${format(quantile(sorted, 0.99))}, max ${format(sorted.at(-1) as number)} ${esc(row.unit)} (${sorted.length} samples kept)</title>`,
      `<line x1="${n(p1)}" x2="${n(p25)}" y1="${n(mid)}" y2="${n(mid)}" stroke="${s.color}"/>`,
      `<line x1="${n(p75)}" x2="${n(p99)}" y1="${n(mid)}" y2="${n(mid)}" stroke="${s.color}"/>`,
      `<line x1="${n(p1)}" x2="${n(p1)}" y1="${n(y + 3)}" y2="${n(y + boxHeight - 3)}" stroke="${s.color}"/>`,
      `<line x1="${n(p99)}" x2="${n(p99)}" y1="${n(y + 3)}" y2="${n(y + boxHeight - 3)}" stroke="${s.color}"/>`,
      `<rect x="${n(p25)}" y="${n(y)}" width="${n(Math.max(1, p75 - p25))}" height="${boxHeight}" fill="${s.color}" fill-opacity="0.25" stroke="${s.color}"/>`,
      `<line x1="${n(p50)}" x2="${n(p50)}" y1="${n(y)}" y2="${n(y + boxHeight)}" stroke="${s.color}" stroke-width="2.5"/>`,
      `<circle cx="${n(x(sorted[0] as number))}" cy="${n(mid)}" r="2" fill="${s.color}"/>`,
      `<circle cx="${n(x(sorted.at(-1) as number))}" cy="${n(mid)}" r="2" fill="${s.color}"/>`,
      `<text x="${n(p50)}" y="${n(y - 3)}" text-anchor="middle" class="small">${esc(format(quantile(sorted, 0.5)))}</text></g>`,
    );
    // The CDF: one point per kept sample, as steps.
    const points = sorted.map((v, k) => `${n(x(v))},${n(cdfBottom - ((k + 1) / sorted.length) * cdfHeight)}`);
    parts.push(
      `<polyline points="${n(x(sorted[0] as number))},${n(cdfBottom)} ${points.join(" ")}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`,
    );
  });
  for (const q of [0.5, 0.99]) {
    const y = cdfBottom - q * cdfHeight;
    parts.push(
      `<line x1="${left}" x2="${right}" y1="${n(y)}" y2="${n(y)}" class="grid" stroke-dasharray="3 3"/><text x="${right}" y="${n(y - 3)}" text-anchor="end" class="small muted">${q === 0.5 ? "median" : "p99"}</text>`,
    );
  }
  parts.push(legend(series, left, cdfBottom + 44));
  return svg(width, cdfBottom + 44 + series.length * 16, parts.join(""), `distribution of ${row.name}`);
}

/** The bound of a `≤ 2` / `≥ 0.5` target. */
function targetBound(target: string | undefined): number | undefined {
  const match = /^\s*(?:≤|<=|<|≥|>=|>)\s*([0-9.]+)/.exec(target ?? "");
  return match === null ? undefined : Number(match[1]);
}

/** Ratios to baselines as bars from 1 on a log scale, coloured by their target. */
function ratioChart(cases: CaseResult[]): string {
  const rows = cases.flatMap((c) => c.rows.filter((row) => row.ratio !== undefined).map((row) => ({ c, row })));
  if (rows.length === 0) return `<p class="muted">No figure of this run has a baseline.</p>`;
  const labelWidth = 460;
  const width = 960;
  const left = labelWidth + 8;
  const right = width - 60;
  const rowHeight = 20;
  const top = 24;
  const ratios = rows.map(({ row }) => row.ratio as number).filter((r) => r > 0);
  const bounds = rows.map(({ row }) => targetBound(row.target)).filter((b): b is number => b !== undefined && b > 0);
  const lo = Math.min(0.5, ...ratios, ...bounds) / 1.3;
  const hi = Math.max(2, ...ratios, ...bounds) * 1.3;
  const x = scale(lo, hi, left, right, true);
  const bottom = top + rows.length * rowHeight;
  const parts: string[] = [xAxis(x, bottom + 4, top - 6, "figure ÷ baseline (medians)")];
  parts.push(`<line x1="${n(x(1))}" x2="${n(x(1))}" y1="${top - 10}" y2="${n(bottom + 4)}" class="axis"/>`);
  rows.forEach(({ c, row }, i) => {
    const r = row.ratio as number;
    const y = top + i * rowHeight;
    const cls = row.targetMet === undefined ? "bar-none" : row.targetMet ? "bar-met" : "bar-unmet";
    const [a, b] = [x(1), x(Math.max(r, lo))].sort((p, q) => p - q) as [number, number];
    const label = `${c.name}: ${row.name}`;
    parts.push(
      `<g><title>${esc(label)}: ratio ${r.toFixed(3)}${row.target !== undefined ? `, target ${esc(row.target)}` : ""}${row.better !== undefined ? `, ${row.better} is better` : ""}</title>`,
      `<text x="${labelWidth}" y="${n(y + rowHeight / 2)}" text-anchor="end" dominant-baseline="middle">${esc(cut(label, 72))}</text>`,
      `<rect x="${n(a)}" y="${n(y + 3)}" width="${n(Math.max(1, b - a))}" height="${rowHeight - 6}" class="${cls}"/>`,
      r >= 1 || a - left < 40
        ? `<text x="${n(b + 4)}" y="${n(y + rowHeight / 2)}" dominant-baseline="middle" class="small">${formatRatio(r)}</text>`
        : `<text x="${n(a - 4)}" y="${n(y + rowHeight / 2)}" text-anchor="end" dominant-baseline="middle" class="small">${formatRatio(r)}</text>`,
    );
    const bound = targetBound(row.target);
    if (bound !== undefined)
      parts.push(
        `<line x1="${n(x(bound))}" x2="${n(x(bound))}" y1="${n(y + 1)}" y2="${n(y + rowHeight - 1)}" stroke="#111" stroke-width="2"><title>target ${esc(row.target ?? "")}</title></line>`,
      );
    parts.push(`</g>`);
  });
  return svg(width, bottom + 40, parts.join(""), "ratios to baselines");
}

/** A row's series name: its group, else its own name. */
function seriesOf(row: Row): string {
  return row.group ?? row.name;
}

/** Grouped bars of rows of one unit: bar groups by `x` (or figure name), one colour per series, baselines beside. */
function groupedBars(rows: Row[], unit: string): string {
  interface Bar {
    series: string;
    category: string;
    value: number;
    p99: number;
    baseline: boolean;
  }
  const bars: Bar[] = [];
  const categoryOf = (row: Row): string =>
    row.x !== undefined ? `${format(row.x)}${row.xLabel !== undefined ? ` ${row.xLabel}` : ""}` : cut(row.name, 40);
  for (const row of rows) {
    const category = categoryOf(row);
    const series = row.group ?? (row.x !== undefined ? row.name : "figure");
    bars.push({ series, category, value: row.value.median, p99: row.value.p99, baseline: false });
    if (row.baseline !== undefined) {
      bars.push({
        series: row.group !== undefined ? `${row.group}: baseline ${row.baseline.name}` : `baseline`,
        category,
        value: row.baseline.value.median,
        p99: row.baseline.value.p99,
        baseline: true,
      });
    }
  }
  const categories = [...new Set(bars.map((bar) => bar.category))];
  const seriesNames = [...new Set(bars.map((bar) => bar.series))];
  const width = 760;
  const left = 70;
  const right = width - 10;
  const top = 20;
  const bottom = 240;
  const hi = Math.max(...bars.map((bar) => Math.max(bar.value, bar.p99)));
  const y = scale(0, hi * 1.1, bottom, top, false);
  const groupWidth = (right - left) / categories.length;
  const barWidth = Math.min(40, (groupWidth - 12) / seriesNames.length);
  const parts: string[] = [yAxis(y, left, right, unit)];
  for (const bar of bars) {
    const c = categories.indexOf(bar.category);
    const s = seriesNames.indexOf(bar.series);
    const x0 = left + c * groupWidth + (groupWidth - barWidth * seriesNames.length) / 2 + s * barWidth;
    const color = COLORS[s % COLORS.length] as string;
    parts.push(
      `<g><title>${esc(bar.series)}, ${esc(bar.category)}: median ${format(bar.value)} ${esc(unit)}, p99 ${format(bar.p99)}</title>`,
      `<rect x="${n(x0 + 1)}" y="${n(y(bar.value))}" width="${n(barWidth - 2)}" height="${n(bottom - y(bar.value))}" fill="${color}"${bar.baseline ? ' fill-opacity="0.55"' : ""}/>`,
      bar.p99 > bar.value
        ? `<line x1="${n(x0 + barWidth / 2)}" x2="${n(x0 + barWidth / 2)}" y1="${n(y(bar.value))}" y2="${n(y(bar.p99))}" stroke="#333"/>`
        : "",
      `<text x="${n(x0 + barWidth / 2)}" y="${n(y(bar.value) - 3)}" text-anchor="middle" class="small">${esc(format(bar.value))}</text></g>`,
    );
  }
  categories.forEach((category, c) => {
    parts.push(
      `<text x="${n(left + (c + 0.5) * groupWidth)}" y="${bottom + 14}" text-anchor="middle">${esc(cut(category, Math.max(8, Math.floor(groupWidth / 6.5))))}</text>`,
    );
  });
  parts.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" class="axis"/>`);
  parts.push(
    legend(
      seriesNames.map((name, s) => ({ label: name, color: COLORS[s % COLORS.length] as string })),
      left,
      bottom + 36,
    ),
  );
  return svg(width, bottom + 36 + seriesNames.length * 16, parts.join(""), `${unit} by size`);
}

/** Curves of rows carrying `x`, one line per series (median solid, p99 dashed), baselines grey. */
function curves(rows: Row[], unit: string): string {
  const lines = new Map<string, Array<{ x: number; median: number; p99: number }>>();
  const add = (name: string, x: number, median: number, p99: number): void => {
    const list = lines.get(name) ?? [];
    list.push({ x, median, p99 });
    lines.set(name, list);
  };
  for (const row of rows) {
    if (row.x === undefined) continue;
    add(seriesOf(row), row.x, row.value.median, row.value.p99);
    if (row.baseline !== undefined)
      add(`baseline: ${row.baseline.name}`, row.x, row.baseline.value.median, row.baseline.value.p99);
  }
  if (lines.size === 0) return "";
  const points = [...lines.values()].flat();
  const xs = points.map((p) => p.x);
  const ys = points.flatMap((p) => [p.median, p.p99]);
  const width = 760;
  const left = 70;
  const right = width - 20;
  const top = 20;
  const bottom = 240;
  const xLo = Math.min(...xs);
  const xHi = Math.max(...xs);
  const yLo = Math.min(...ys);
  const yHi = Math.max(...ys);
  const x = scale(xLo, xHi, left, right, xLo > 0 && xHi / xLo >= 20);
  const yLog = yLo > 0 && yHi / yLo >= 30;
  const y = scale(yLog ? yLo / 1.2 : 0, yHi * 1.1, bottom, top, yLog);
  const xLabel = rows.find((row) => row.xLabel !== undefined)?.xLabel ?? "x";
  const parts: string[] = [yAxis(y, left, right, unit), xAxis(x, bottom, top, xLabel)];
  const entries: Array<{ label: string; color: string; dashed?: boolean }> = [];
  [...lines.entries()].forEach(([name, list], i) => {
    list.sort((a, b) => a.x - b.x);
    const isBaseline = name.startsWith("baseline: ");
    const color = isBaseline ? "#888" : (COLORS[i % COLORS.length] as string);
    const path = (key: "median" | "p99"): string => list.map((p) => `${n(x(p.x))},${n(y(p[key]))}`).join(" ");
    parts.push(
      `<polyline points="${path("median")}" fill="none" stroke="${color}" stroke-width="2"${isBaseline ? ' stroke-dasharray="6 3"' : ""}/>`,
    );
    if (list.some((p) => p.p99 !== p.median))
      parts.push(
        `<polyline points="${path("p99")}" fill="none" stroke="${color}" stroke-width="1" stroke-dasharray="2 3" opacity="0.8"/>`,
      );
    for (const p of list)
      parts.push(
        `<circle cx="${n(x(p.x))}" cy="${n(y(p.median))}" r="3" fill="${color}"><title>${esc(name)}, ${format(p.x)} ${esc(xLabel)}: median ${format(p.median)}, p99 ${format(p.p99)} ${esc(unit)}</title></circle>`,
      );
    entries.push({ label: name, color, dashed: isBaseline });
  });
  entries.push({ label: "p99 (dotted)", color: "#555", dashed: true });
  parts.push(legend(entries, left, bottom + 44));
  return svg(width, bottom + 44 + entries.length * 16, parts.join(""), `${unit} by ${xLabel}`);
}

function byUnit(rows: Row[]): Map<string, Row[]> {
  const out = new Map<string, Row[]>();
  for (const row of rows) out.set(row.unit, [...(out.get(row.unit) ?? []), row]);
  return out;
}

function anchor(name: string): string {
  return `case-${name.replace(/[^a-zA-Z0-9_-]/g, "-")}`;
}

function summaryTable(cases: CaseResult[]): string {
  const body: string[] = [];
  for (const c of cases) {
    const span = Math.max(1, c.rows.length) + (c.status === "failed" && c.rows.length > 0 ? 1 : 0);
    const caseCell = `<th rowspan="${span}" class="case"><a href="#${anchor(c.name)}">${esc(c.name)}</a><div class="muted small">${(c.wallMs / 1000).toFixed(1)} s</div></th>`;
    let first = true;
    if (c.status === "failed") {
      body.push(
        `<tr>${caseCell}<td colspan="7" class="failed">failed: ${esc((c.error ?? "").split("\n")[0] ?? "")}</td></tr>`,
      );
      first = false;
    }
    for (const row of c.rows) {
      const met =
        row.targetMet === undefined
          ? ""
          : row.targetMet
            ? `<td class="met">met</td>`
            : `<td class="unmet">not met</td>`;
      body.push(
        `<tr>${first ? caseCell : ""}<td>${esc(row.name)}${row.group !== undefined ? ` <span class="tag">${esc(row.group)}</span>` : ""}</td>` +
          `<td class="num">${esc(format(row.value.median))} ${esc(row.unit)}</td><td class="num">${esc(format(row.value.p99))}</td>` +
          `<td>${row.baseline === undefined ? "" : `${esc(row.baseline.name)}<div class="num">${esc(format(row.baseline.value.median))} ${esc(row.unit)}, p99 ${esc(format(row.baseline.value.p99))}</div>`}</td>` +
          `<td class="num">${row.ratio === undefined ? "" : `${formatRatio(row.ratio)}`}</td><td>${esc(row.target ?? "")}</td>${met || "<td></td>"}</tr>`,
      );
      first = false;
    }
  }
  return `<table><thead><tr><th>case</th><th>figure</th><th>median</th><th>p99</th><th>baseline (median, p99)</th><th>ratio</th><th>target</th><th></th></tr></thead><tbody>${body.join("")}</tbody></table>`;
}

function waypipeSection(cases: CaseResult[]): string {
  const rows = cases.flatMap((c) =>
    c.rows.filter((row) => c.name.includes("waypipe") || row.name.toLowerCase().includes("waypipe")),
  );
  if (rows.length === 0)
    return `<p class="muted">No waypipe rows in this run (a case whose file or figure name contains <code>waypipe</code>; its rows' <code>group</code> names the series, e.g. <code>qubes-gui-ts</code> / <code>waypipe</code>, and <code>x</code> the size).</p>`;
  return [...byUnit(rows).entries()]
    .map(
      ([unit, list]) =>
        `<figure><figcaption>${esc(unit)}: median (bar), p99 (whisker)</figcaption>${groupedBars(list, unit)}</figure>`,
    )
    .join("");
}

function scalingSection(cases: CaseResult[]): string {
  const parts: string[] = [];
  for (const c of cases) {
    if (c.name.includes("waypipe")) continue;
    const withX = c.rows.filter((row) => row.x !== undefined);
    if (withX.length === 0) {
      if (c.name.includes("scale") && c.rows.length > 0)
        parts.push(`<p class="muted">${esc(c.name)}: no row carries <code>x</code>, nothing to plot.</p>`);
      continue;
    }
    for (const [unit, list] of byUnit(withX))
      parts.push(
        `<figure><figcaption><a href="#${anchor(c.name)}">${esc(c.name)}</a>: ${esc(unit)} by ${esc(list.find((row) => row.xLabel !== undefined)?.xLabel ?? "x")}, median (solid) and p99 (dotted)</figcaption>${curves(list, unit)}</figure>`,
      );
  }
  if (parts.length === 0)
    return `<p class="muted">No scaling rows in this run (rows carrying <code>x</code>, e.g. of a <code>scale</code> case: <code>x</code> the windows or domains, <code>group</code> the series).</p>`;
  return parts.join("");
}

function caseSection(c: CaseResult): string {
  const parts: string[] = [
    `<h3 id="${anchor(c.name)}">${esc(c.name)} <span class="muted small">${esc(c.file)}, ${c.status}, ${(c.wallMs / 1000).toFixed(1)} s${c.cpuMs !== undefined ? ` (${(c.cpuMs / 1000).toFixed(1)} s CPU)` : ""} of ${(c.timeLimitMs / 1000).toFixed(0)} s allowed</span></h3>`,
  ];
  if (c.error !== undefined) parts.push(`<pre class="failed">${esc(c.error)}</pre>`);
  parts.push(`<div class="rows">`);
  for (const row of c.rows) {
    parts.push(`<div class="row"><h4>${esc(row.name)}</h4>`);
    const facts = [
      `median ${format(row.value.median)} ${row.unit}, p99 ${format(row.value.p99)}, min ${format(row.value.min)}${row.value.max !== undefined ? `, max ${format(row.value.max)}` : ""}, mean ${format(row.value.mean)}, n=${row.value.n}`,
    ];
    if (row.baseline !== undefined)
      facts.push(
        `baseline ${row.baseline.name}: median ${format(row.baseline.value.median)} ${row.unit}, p99 ${format(row.baseline.value.p99)}, n=${row.baseline.value.n}`,
      );
    if (row.ratio !== undefined)
      facts.push(
        `ratio ${formatRatio(row.ratio)}${row.target !== undefined ? ` (target ${row.target}: ${row.targetMet === true ? "met" : row.targetMet === false ? "not met" : "?"})` : ""}`,
      );
    facts.push(...(row.notes ?? []));
    parts.push(`<ul>${facts.map((fact) => `<li>${esc(fact)}</li>`).join("")}</ul>`);
    parts.push(distributionChart(row));
    parts.push(`</div>`);
  }
  parts.push(`</div>`);
  return parts.join("");
}

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24; margin: 2em auto; max-width: 1200px; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #d0d7de; } h4 { margin: 0.8em 0 0.2em; font-size: 1em; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 6px; vertical-align: top; text-align: left; }
thead th { background: #f3f4f6; } th.case { background: #fafbfc; white-space: nowrap; }
td.num, .num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.met { background: #dcfce7; color: #14532d; } td.unmet { background: #fee2e2; color: #7f1d1d; font-weight: 600; }
.failed { background: #fee2e2; color: #7f1d1d; } pre.failed { padding: 0.6em; overflow-x: auto; white-space: pre-wrap; }
.muted { color: #6b7280; } .small { font-size: 11px; }
.tag { background: #eef2ff; color: #3730a3; border-radius: 3px; padding: 0 4px; font-size: 11px; }
svg { font: 11px system-ui, sans-serif; display: block; margin: 0.4em 0; max-width: 100%; height: auto; }
svg .grid { stroke: #e5e7eb; } svg .axis { stroke: #6b7280; } svg .muted { fill: #6b7280; }
svg .bar-met { fill: #22a05a; } svg .bar-unmet { fill: #d9484f; } svg .bar-none { fill: #9ca3af; }
figure { margin: 1.2em 0; } figcaption { font-weight: 600; font-size: 13px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; } dt { color: #6b7280; } dd { margin: 0; }
nav a { margin-right: 1em; }
.rows { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 0 24px; }
.row { border-top: 1px dashed #e5e7eb; min-width: 0; }
ul { margin: 0.2em 0; padding-left: 1.4em; }
`;

/** The whole page. */
function renderReport(results: BenchResults, source: string): string {
  const { machine, versions, cases } = results;
  const failed = cases.filter((c) => c.status === "failed");
  const rows = cases.flatMap((c) => c.rows);
  const met = rows.filter((row) => row.targetMet === true).length;
  const unmet = rows.filter((row) => row.targetMet === false).length;
  const wall = (Date.parse(results.finished) - Date.parse(results.started)) / 1000;
  const dl = (entries: Array<[string, string]>): string =>
    `<dl>${entries.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Benchmarks, ${esc(results.mode)} run, ${esc(results.started)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${CSS}</style></head><body>
<h1>Benchmarks: ${esc(results.mode)} run of ${esc(results.started.replace("T", " ").replace(/\.\d+Z$/, " UTC"))}</h1>
<p>${cases.length} cases (${failed.length === 0 ? "all ran" : `<span class="failed">${failed.length} failed: ${esc(failed.map((c) => c.name).join(", "))}</span>`}), ${rows.length} figures, targets ${met} met, ${unmet} not met, in ${wall.toFixed(0)} s.${results.mode === "quick" ? " <strong>A quick run: a few iterations per case, the figures are not measurements.</strong>" : ""}</p>
<nav><a href="#summary">Summary</a><a href="#ratios">Ratios</a><a href="#waypipe">Waypipe</a><a href="#scaling">Scaling</a><a href="#cases">Cases</a><a href="#run">Machine</a></nav>
<h2 id="summary">Summary</h2>
${summaryTable(cases)}
<h2 id="ratios">Ratios to baselines</h2>
<p class="muted">Figure median ÷ baseline median, log scale, bars from 1. Time figures (<em>lower is better</em>) want a ratio below their target, rates (<em>higher</em>) above it; black ticks mark the targets. Green: target met, red: not met, grey: no target.</p>
${ratioChart(cases)}
<h2 id="waypipe">Waypipe comparison</h2>
${waypipeSection(cases)}
<h2 id="scaling">Scaling</h2>
${scalingSection(cases)}
<h2 id="cases">Cases</h2>
<p class="muted">Each figure's samples (at most 2000 kept, evenly in rank) beside its baseline's: box p25–p75 with the median, whiskers p1–p99, dots min and max; below, the cumulative distribution. Log scale when the samples span 20× or more.</p>
${cases.map(caseSection).join("\n")}
<h2 id="run">Machine and versions</h2>
${dl([
  ["CPU", `${machine.cpuModel} × ${machine.cpus}`],
  ["memory", `${(machine.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB`],
  ["kernel", `${machine.kernel} (${machine.platform})`],
  [
    "load average",
    `start ${machine.loadAverageStart.map((x) => x.toFixed(2)).join(" ")}, end ${machine.loadAverageEnd.map((x) => x.toFixed(2)).join(" ")}`,
  ],
  ["node", versions.node],
  ["package", versions.package],
  [
    "git",
    versions.gitCommit === null
      ? "unknown"
      : `${versions.gitCommit}${versions.gitDirty === true ? " (with uncommitted changes)" : ""}`,
  ],
  ["waypipe", versions.waypipe ?? "not installed"],
  ["chromium", versions.chromium ?? "not installed"],
  [
    "run",
    `${results.started} to ${results.finished}, ${results.mode}${results.filters.length > 0 ? `, filters: ${results.filters.join(", ")}` : ""}`,
  ],
  ["results file", source],
])}
</body></html>
`;
}

/** The newest results file of a folder (by modification time: the run that ended last). */
function latestResults(dir: string): string {
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((name) => /^\d{4}-\d\d-\d\dT.*\.json$/.test(name));
  } catch {
    // No folder: no results.
  }
  const latest = names
    .map((name) => ({ name, time: statSync(path.join(dir, name)).mtimeMs }))
    .sort((a, b) => a.time - b.time || a.name.localeCompare(b.name))
    .at(-1);
  if (latest === undefined) throw new Error(`no results in ${dir}: run \`npm run bench\` first`);
  return path.join(dir, latest.name);
}

function main(): void {
  const { values, positionals } = parseArgs({
    options: { out: { type: "string" }, "results-dir": { type: "string" } },
    allowPositionals: true,
  });
  const resultsDir = path.resolve(values["results-dir"] ?? path.join(benchDir, "results"));
  try {
    const source = positionals[0] !== undefined ? path.resolve(positionals[0]) : latestResults(resultsDir);
    const results = JSON.parse(readFileSync(source, "utf8")) as BenchResults;
    if (results.schema !== 1 || !Array.isArray(results.cases))
      throw new Error(`${source} is not a results file of bench/run.ts`);
    const out = path.resolve(values.out ?? path.join(resultsDir, "report.html"));
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, renderReport(results, path.basename(source)));
    process.stdout.write(`${out}\n`);
  } catch (error) {
    process.stderr.write(`bench:report: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

main();
