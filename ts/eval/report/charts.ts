/**
 * The report's two chart kinds, drawn with raster.ts and returned as PNG bytes:
 * - lineChart: one line per series over a shared x axis (training curves);
 * - barChart: grouped bars, one group per category, one bar per series, a value over each bar.
 *
 * Bad data never throws: points with a NaN or infinite coordinate are skipped, a series with
 * one point is drawn as a dot, flat data gets an axis around its value, and a chart without any
 * finite value says "NO DATA". Only an impossible size throws (ReportSizeError).
 *
 * Deliberately not here: which charts a report has (plan.ts) or any file output (index.ts).
 */
import { AXIS, axes, BACKGROUND, chartSize, clipText, colourOf, frame, INK, MUTED, noData } from './frame.js';
import { Raster, textHeight, textWidth } from './raster.js';
import { formatTick, formatValue, niceTicks, spanOf, type Ticks } from './ticks.js';

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: [number, number][] }[];
  /** Fixed value axis [lo, hi]; ignored unless both are finite and lo < hi. */
  yRange?: [number, number];
  /** Pixels; defaults 800 x 440. */
  width?: number;
  height?: number;
}

export interface BarChartSpec {
  title: string;
  categories: string[];
  series: { name: string; values: number[] }[];
  /** Fixed value axis [lo, hi]; ignored unless both are finite and lo < hi. */
  yRange?: [number, number];
  yLabel?: string;
  /** Pixels; defaults 800 x 440. */
  width?: number;
  height?: number;
}

const DEFAULT_W = 800;
const DEFAULT_H = 440;
/** Series with at most this many points get a dot on each point. */
const DOTS_UP_TO = 40;
/** Widest bar in pixels, so that one series over few categories does not draw slabs. */
const MAX_BAR = 72;

const usableRange = (r: [number, number] | undefined): r is [number, number] =>
  Array.isArray(r) && Number.isFinite(r[0]) && Number.isFinite(r[1]) && r[0] < r[1];

function valueTicks(values: readonly number[], fixed: [number, number] | undefined, withZero: boolean): Ticks {
  if (usableRange(fixed)) return niceTicks(fixed[0], fixed[1], 5, true);
  const span = spanOf(withZero && values.some(Number.isFinite) ? [0, ...values] : values);
  if (!span) return niceTicks(0, 1, 5);
  // A flat all-zero bar chart would otherwise straddle zero; bars read better on [0, 1].
  if (withZero && span[0] === -1 && span[1] === 1 && values.every((v) => !Number.isFinite(v) || v === 0)) return niceTicks(0, 1, 5);
  return niceTicks(span[0], span[1], 5);
}

export function lineChart(spec: LineChartSpec): Buffer {
  const { width, height } = chartSize(spec, DEFAULT_W, DEFAULT_H);
  const r = new Raster(width, height, BACKGROUND);
  const series = (spec.series ?? []).map((s) => ({
    name: String(s.name),
    points: (s.points ?? []).filter((p) => Number.isFinite(p?.[0]) && Number.isFinite(p?.[1])).sort((a, b) => a[0] - b[0]),
  }));
  const all = series.flatMap((s) => s.points);
  const yt = valueTicks(
    all.map((p) => p[1]),
    spec.yRange,
    false,
  );
  const xSpan = spanOf(all.map((p) => p[0])) ?? [0, 1];
  const xt = niceTicks(xSpan[0], xSpan[1], 6, false, all.every((p) => Number.isInteger(p[0])) ? 1 : 0);
  const { plot, yOf } = frame(r, {
    title: String(spec.title ?? ''),
    legend: series.map((s) => s.name),
    yTicks: yt,
    yLabel: spec.yLabel,
    below: textHeight() + 8,
    xLabel: spec.xLabel,
  });
  const xOf = (v: number) => plot.x + ((v - xt.lo) / (xt.hi - xt.lo)) * plot.w;

  // x tick marks and labels, thinned so that neighbouring labels never overlap.
  const xLabels = xt.values.map((v) => formatTick(v, xt.step));
  const widest = Math.max(0, ...xLabels.map((l) => textWidth(l)));
  const every = Math.max(1, Math.ceil((widest + 8) / (plot.w / Math.max(1, xt.values.length - 1))));
  xt.values.forEach((v, i) => {
    const x = Math.round(xOf(v));
    r.fillRect(x, plot.y + plot.h, 1, 4, AXIS);
    if (i % every === 0) r.text(x - textWidth(xLabels[i] as string) / 2, plot.y + plot.h + 7, xLabels[i] as string, INK);
  });

  if (all.length === 0) noData(r, plot);
  // Lines may reach a few pixels past the plot so that values on a fixed range's edge stay whole.
  r.clipped(plot.x - 4, plot.y - 4, plot.w + 8, plot.h + 8, () => {
    series.forEach((s, i) => {
      const c = colourOf(i);
      const pts = s.points.map(([x, y]) => [xOf(x), yOf(y)] as const);
      for (let k = 1; k < pts.length; k++) {
        const [a, b] = [pts[k - 1], pts[k]] as [readonly [number, number], readonly [number, number]];
        r.line(a[0], a[1], b[0], b[1], c, 2);
      }
      if (pts.length <= DOTS_UP_TO) for (const [x, y] of pts) r.circle(x, y, 3, c);
    });
  });
  axes(r, plot);
  return r.toPng();
}

export function barChart(spec: BarChartSpec): Buffer {
  const { width, height } = chartSize(spec, DEFAULT_W, DEFAULT_H);
  const r = new Raster(width, height, BACKGROUND);
  const categories = (spec.categories ?? []).map(String);
  const series = (spec.series ?? []).map((s) => ({ name: String(s.name), values: categories.map((_, i) => Number(s.values?.[i])) }));
  const values = series.flatMap((s) => s.values);
  const yt = valueTicks(values, spec.yRange, true);
  const { plot, yOf } = frame(r, {
    title: String(spec.title ?? ''),
    legend: series.map((s) => s.name),
    yTicks: yt,
    yLabel: spec.yLabel,
    above: 2 * (textHeight() + 3),
    below: textHeight() + 8,
  });
  const baseline = Math.round(yOf(Math.min(Math.max(0, yt.lo), yt.hi)));
  const n = categories.length;
  const m = series.length;
  if (n === 0 || m === 0 || !values.some(Number.isFinite)) {
    noData(r, plot);
    axes(r, plot, baseline);
    return r.toPng();
  }

  const group = plot.w / n;
  const gap = m > 1 ? 2 : 0;
  const barW = Math.max(1, Math.min(MAX_BAR, Math.floor((group * 0.8 - gap * (m - 1)) / m)));
  const pitch = barW + gap;
  const labelsCrowd = series.some((s) => s.values.some((v) => textWidth(formatValue(v)) + 2 > pitch));
  categories.forEach((cat, g) => {
    const x0 = plot.x + g * group + (group - (pitch * m - gap)) / 2;
    const label = clipText(cat, group - 4);
    r.text(plot.x + g * group + (group - textWidth(label)) / 2, plot.y + plot.h + 7, label, INK);
    series.forEach((s, k) => {
      const v = s.values[g] as number;
      const x = Math.round(x0 + k * pitch);
      const text = formatValue(v);
      // Crowded labels alternate between two heights so neighbours do not overprint.
      const lift = labelsCrowd && k % 2 === 1 ? textHeight() + 3 : 0;
      const cx = x + barW / 2 - textWidth(text) / 2;
      if (!Number.isFinite(v)) {
        r.text(cx, baseline - textHeight() - 3 - lift, text, MUTED);
        return;
      }
      const y = Math.round(yOf(Math.min(Math.max(v, yt.lo), yt.hi)));
      r.clipped(plot.x, plot.y, plot.w, plot.h + 1, () => r.fillRect(x, Math.min(y, baseline), barW, Math.abs(baseline - y), colourOf(k)));
      // Under a negative bar the label stays inside the plot (over the bar's end if need be).
      const ty =
        v >= 0
          ? Math.min(y, baseline) - textHeight() - 3 - lift
          : Math.min(Math.max(y, baseline) + 3 + lift, plot.y + plot.h - textHeight() - 2);
      r.text(cx, ty, text, INK);
    });
  });
  axes(r, plot, baseline);
  return r.toPng();
}
