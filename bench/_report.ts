/**
 * Shared output for benchmarks: a readable table, then the machine-readable JSON object as the
 * LAST line of stdout (`{"bench": name, ...figures}`, units in the key names).
 */

export type Figures = Record<string, number | string | boolean | null>;

/** Rounds to `digits` significant decimals for display and JSON (ratios keep 3). */
export function round(x: number | null, digits = 3): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The median of xs (the upper one of an even count), the figure the benches quote of repeated timings. */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export function printTable(rows: Array<Record<string, string | number | null>>): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0] as object);
  const cell = (v: string | number | null | undefined) => (v === null || v === undefined ? '-' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padStart(widths[i] as number)).join('  ');
  console.log(line(cols));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
}

/** Must be the last thing a benchmark prints. */
export function printJson(bench: string, figures: Figures): void {
  console.log(JSON.stringify({ bench, ...figures }));
}

export function argFlag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
