/**
 * Axis arithmetic for the charts: "nice" tick steps (1, 2 or 5 times a power of ten), a data
 * range widened so that flat or single-valued data still spans an axis, and short number labels.
 *
 * Deliberately not here: time or log axes.
 */

export interface Ticks {
  /** Axis ends: multiples of `step` enclosing the data (unless the caller fixed the range). */
  lo: number;
  hi: number;
  step: number;
  /** Tick positions from lo to hi inclusive. */
  values: number[];
}

/** 1, 2 or 5 times a power of ten, the smallest such not below `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  // 1e-9 slack so that e.g. 0.30000000000000004 / 0.1 is still "3" -> 5, not 10 by rounding noise.
  const m = f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10;
  return m * p;
}

/** The finite values' [min, max], undefined when none; a flat value v widens to v +- |v|/10 (0 to +-1). */
export function spanOf(values: readonly number[]): [number, number] | undefined {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return undefined;
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(lo))) {
    const pad = lo === 0 ? 1 : Math.abs(lo) / 10;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

/**
 * Ticks for [lo, hi] with about `target` intervals. `fixed` keeps lo and hi as given (a caller's
 * yRange) and places ticks at the nice multiples inside; otherwise the ends snap outward.
 * `minStep` keeps the step from going below it (1 for integer data such as steps).
 */
export function niceTicks(lo: number, hi: number, target = 5, fixed = false, minStep = 0): Ticks {
  const step = Math.max(minStep, niceStep((hi - lo) / Math.max(1, target)));
  const a = fixed ? lo : Math.floor(lo / step + 1e-9) * step;
  const b = fixed ? hi : Math.ceil(hi / step - 1e-9) * step;
  const values: number[] = [];
  const first = Math.ceil(a / step - 1e-9);
  const last = Math.floor(b / step + 1e-9);
  // toPrecision(12) drops the binary noise of i * step (3 * 0.2 = 0.6000000000000001).
  for (let i = first; i <= last && values.length < 100; i++) values.push(cleanZero(Number((i * step).toPrecision(12))));
  return { lo: a, hi: b, step, values };
}

const cleanZero = (v: number) => (Object.is(v, -0) || Math.abs(v) < 1e-15 ? 0 : v);

/** A tick label with just enough decimals for `step` (e.g. 0.25 for step 0.05, 1.5K, 2E+06). */
export function formatTick(v: number, step: number): string {
  const a = Math.abs(v);
  if (a >= 1e6 || (a > 0 && a < 1e-4)) return v.toExponential(1).toUpperCase();
  if (a >= 1e4 && step >= 100) return `${trim((v / 1000).toFixed(Math.max(0, decimals(step / 1000))))}K`;
  return v.toFixed(Math.min(6, decimals(step)));
}

/** A value label over a bar: at most three significant digits (two decimals below 10), short enough for a bar. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return 'N/A';
  const a = Math.abs(v);
  if (a >= 1e6 || (a > 0 && a < 0.01)) return v.toExponential(1).toUpperCase();
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return trim(v.toFixed(2));
}

/** Decimals needed to show multiples of `step` exactly (0 for steps >= 1). */
function decimals(step: number): number {
  if (!(step > 0) || step >= 1) return 0;
  return Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
}

const trim = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
