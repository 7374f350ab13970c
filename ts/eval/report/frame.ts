/**
 * What every chart shares: the palette, the size check, the title, the legend, and the value
 * axis (grid lines, tick labels, the rotated axis label) around a plot rectangle. charts.ts
 * draws the data inside the rectangle that `frame()` returns.
 *
 * Deliberately not here: data handling. The frame takes ticks already computed (ticks.ts).
 */
import { ReportSizeError } from './errors.js';
import { type Color, type Raster, textHeight, textWidth } from './raster.js';
import { formatTick, type Ticks } from './ticks.js';

/** Series colours in order (cycled past eight); chosen to stay distinct on white. */
export const PALETTE: readonly Color[] = [
  [31, 119, 180],
  [230, 97, 1],
  [44, 160, 44],
  [200, 30, 45],
  [128, 90, 190],
  [140, 86, 60],
  [220, 90, 170],
  [20, 170, 190],
];
export const BACKGROUND: Color = [255, 255, 255];
export const INK: Color = [30, 30, 30];
export const AXIS: Color = [110, 110, 110];
export const GRID: Color = [228, 228, 228];
export const MUTED: Color = [120, 120, 120];

export const colourOf = (i: number): Color => PALETTE[i % PALETTE.length] as Color;

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export const MIN_W = 200;
export const MIN_H = 150;
export const MAX_SIDE = 8192;

/** The chart size in whole pixels, or a ReportSizeError naming the allowed range. */
export function chartSize(spec: { width?: number; height?: number }, defW: number, defH: number): { width: number; height: number } {
  const width = Math.round(spec.width ?? defW);
  const height = Math.round(spec.height ?? defH);
  if (!(width >= MIN_W && width <= MAX_SIDE && height >= MIN_H && height <= MAX_SIDE)) {
    throw new ReportSizeError(
      `chart size must be ${MIN_W}..${MAX_SIDE} x ${MIN_H}..${MAX_SIDE} pixels; got ${spec.width ?? defW} x ${spec.height ?? defH}`,
    );
  }
  return { width, height };
}

/** `text` cut to at most `max` pixels at `scale`, ending in '..' when cut. */
export function clipText(text: string, max: number, scale = 1): string {
  const chars = [...text];
  if (textWidth(text, scale) <= max) return text;
  while (chars.length > 0 && textWidth(`${chars.join('')}..`, scale) > max) chars.pop();
  const kept = chars.join('').trimEnd();
  return kept ? `${kept}..` : '';
}

export interface FrameSpec {
  title: string;
  legend: readonly string[];
  yTicks: Ticks;
  yLabel?: string;
  /** Height reserved between the legend and the plot (room for labels over the tallest bars). */
  above?: number;
  /** Height reserved under the plot for x tick or category labels (without the x label). */
  below: number;
  xLabel?: string;
}

const PAD = 12;
const LEGEND_ROW = 16;
const SWATCH = 10;

/**
 * Draws title, legend, y grid, y tick labels and labels; returns the plot rectangle and the
 * value-to-row mapping of the y axis. Axis lines are drawn by `axes()` after the data.
 */
export function frame(r: Raster, spec: FrameSpec): { plot: Box; yOf: (v: number) => number } {
  const titleScale = textWidth(spec.title, 2) <= r.width - 2 * PAD ? 2 : 1;
  const title = clipText(spec.title, r.width - 2 * PAD, titleScale);
  r.text((r.width - textWidth(title, titleScale)) / 2, PAD, title, INK, titleScale);
  let top = PAD + textHeight(titleScale) + 10;

  top = legend(r, spec.legend, top);

  const yt = spec.yTicks;
  const labels = yt.values.map((v) => formatTick(v, yt.step));
  const labelW = Math.max(0, ...labels.map((l) => textWidth(l)));
  const left = PAD + (spec.yLabel ? textHeight() + 8 : 0) + labelW + 6;
  const bottom = r.height - PAD - (spec.xLabel ? textHeight() + 8 : 0) - spec.below;
  top += 6 + (spec.above ?? 0);
  const plot: Box = { x: left, y: top, w: Math.max(10, r.width - PAD - 8 - left), h: Math.max(10, bottom - top) };
  const span = yt.hi - yt.lo;
  const yOf = (v: number) => plot.y + plot.h - ((v - yt.lo) / span) * plot.h;

  yt.values.forEach((v, i) => {
    const y = Math.round(yOf(v));
    r.fillRect(plot.x, y, plot.w, 1, GRID);
    r.text(left - 6 - textWidth(labels[i] as string), y - 3, labels[i] as string, INK);
  });
  if (spec.yLabel) {
    const label = clipText(spec.yLabel, plot.h);
    r.text(PAD, plot.y + (plot.h + textWidth(label)) / 2, label, INK, 1, true);
  }
  if (spec.xLabel) {
    const label = clipText(spec.xLabel, plot.w);
    r.text(plot.x + (plot.w - textWidth(label)) / 2, r.height - PAD - textHeight(), label, INK);
  }
  return { plot, yOf };
}

/** The left and bottom axis lines of `plot`, over whatever was drawn inside. */
export function axes(r: Raster, plot: Box, baselineY = plot.y + plot.h): void {
  r.fillRect(plot.x - 1, plot.y, 1, plot.h + 1, AXIS);
  r.fillRect(plot.x - 1, Math.round(baselineY), plot.w + 1, 1, AXIS);
}

/** "NO DATA" in the middle of `plot`. */
export function noData(r: Raster, plot: Box): void {
  const t = 'NO DATA';
  r.text(plot.x + (plot.w - textWidth(t, 2)) / 2, plot.y + (plot.h - textHeight(2)) / 2, t, MUTED, 2);
}

/** Swatch-and-name items, left to right, wrapping; returns the y below the last row. */
function legend(r: Raster, names: readonly string[], top: number): number {
  if (names.length === 0) return top;
  let x = PAD;
  let y = top;
  names.forEach((raw, i) => {
    const name = clipText(raw, r.width - 2 * PAD - SWATCH - 6);
    const w = SWATCH + 6 + textWidth(name);
    if (x > PAD && x + w > r.width - PAD) {
      x = PAD;
      y += LEGEND_ROW;
    }
    r.fillRect(x, y, SWATCH, SWATCH, colourOf(i));
    r.text(x + SWATCH + 6, y + 2, name, INK);
    x += w + 18;
  });
  return y + LEGEND_ROW;
}
