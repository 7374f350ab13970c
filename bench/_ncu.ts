/**
 * Nsight Compute (ncu) helpers for the kernel benchmarks: finding the binary, shortening kernel
 * names, and reading its two CSV layouts.
 *
 * - `--csv` with `--metrics` (the "details" page): one row per (launch, metric) with the columns
 *   "Kernel Name", "Metric Name", "Metric Unit", "Metric Value".
 * - `--csv --page raw`: one header row of metric names, one row of their units, then one row per
 *   launch with every metric ncu collected as a column.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The ncu binary on PATH or in the toolkit's usual place, or null. */
export function findNcu(): string | null {
  for (const c of ['ncu', '/usr/local/cuda/bin/ncu']) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return c;
  }
  return null;
}

/**
 * Runs this Node script again under ncu with `scriptArgs`, profiling only inside its
 * cudaProfilerStart/Stop range, clocks left alone, CSV in base units; `ncuArgs` pick what ncu
 * collects (`--metrics ...`, or `--set full --page raw`).
 */
export function runUnderNcu(ncu: string, ncuArgs: string[], scriptArgs: string[]): SpawnSyncReturns<string> {
  const args = ['--profile-from-start', 'off', '--target-processes', 'all', '--clock-control', 'none', ...ncuArgs];
  args.push('--csv', '--print-units', 'base', process.execPath, process.argv[1] as string, ...scriptArgs);
  return spawnSync(ncu, args, { encoding: 'utf8', maxBuffer: 256 << 20, timeout: 600_000 });
}

/** "void npr::(anonymous namespace)::skinny_linear_kernel<1, true, float>(float *, ...)" -> "skinny_linear_kernel<1,true,float>" */
export function shortName(full: string): string {
  const head =
    full
      .replace(/^void /, '')
      .replace(/\(anonymous namespace\)::/g, '')
      .split('(')[0] ?? full;
  const parts = head.split('::');
  return (parts[parts.length - 1] ?? head).replace(/\s+/g, '');
}

/** Base-unit value of an ncu metric cell (`--print-units base`; scaled units tolerated). */
export function baseValue(value: string | undefined, unit: string | undefined): number {
  const v = Number((value ?? '').replace(/,/g, ''));
  const scale: Record<string, number> = { nsecond: 1, ns: 1, usecond: 1e3, us: 1e3, msecond: 1e6, ms: 1e6 };
  const bytes: Record<string, number> = { byte: 1, Kbyte: 1e3, Mbyte: 1e6, Gbyte: 1e9 };
  return v * (scale[unit ?? 'ns'] ?? bytes[unit ?? 'byte'] ?? 1);
}

/** The cells of one CSV line whose every cell is double-quoted ("a","b,c",""). */
export function csvCells(line: string): string[] {
  const cells: string[] = [];
  const re = /"((?:[^"]|"")*)"(?:,|$)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) cells.push((m[1] ?? '').replace(/""/g, '"'));
  return cells;
}

/** One row of the details page: a launch's metric. */
export interface NcuMetricRow {
  kernel: string;
  metric: string;
  unit: string;
  value: string;
}

/** The rows of a details-page CSV (lines not starting with a quote, ncu's notes, are skipped). */
export function parseDetailsCsv(text: string): NcuMetricRow[] {
  const lines = text.split('\n').filter((l) => l.startsWith('"'));
  const header = csvCells(lines.shift() ?? '');
  const col = (name: string) => header.indexOf(name);
  const [nameCol, metricCol, unitCol, valueCol] = [col('Kernel Name'), col('Metric Name'), col('Metric Unit'), col('Metric Value')];
  if (nameCol < 0 || metricCol < 0 || valueCol < 0) return [];
  return lines.map((line) => {
    const cells = csvCells(line);
    return { kernel: cells[nameCol] ?? '?', metric: cells[metricCol] ?? '', unit: cells[unitCol] ?? '', value: cells[valueCol] ?? '' };
  });
}

/** One launch of the raw page: its kernel's full name and metric name -> { unit, value }. */
export interface NcuRawLaunch {
  kernel: string;
  metrics: Map<string, { unit: string; value: string }>;
}

/**
 * The launches of a raw-page CSV. The row after the header holds units when its "Kernel Name"
 * cell is empty (ncu's layout); a file without that row is read with empty units.
 */
export function parseRawCsv(text: string): NcuRawLaunch[] {
  const lines = text.split('\n').filter((l) => l.startsWith('"'));
  const header = csvCells(lines.shift() ?? '');
  const nameCol = header.indexOf('Kernel Name');
  if (nameCol < 0) return [];
  let units: string[] = [];
  if (lines.length > 0 && (csvCells(lines[0] as string)[nameCol] ?? '') === '') units = csvCells(lines.shift() as string);
  return lines.map((line) => {
    const cells = csvCells(line);
    const metrics = new Map<string, { unit: string; value: string }>();
    header.forEach((name, i) => {
      if (i !== nameCol && name !== '') metrics.set(name, { unit: units[i] ?? '', value: cells[i] ?? '' });
    });
    return { kernel: cells[nameCol] ?? '?', metrics };
  });
}

/** A metric of a raw launch as a number (commas dropped), or null when absent or not numeric. */
export function rawNumber(launch: NcuRawLaunch, metric: string): number | null {
  const cell = launch.metrics.get(metric);
  if (!cell || cell.value.trim() === '') return null;
  const v = Number(cell.value.replace(/,/g, ''));
  return Number.isFinite(v) ? v : null;
}

/** One instruction of a source-page CSV with its warp-stall samples. */
export interface NcuHotInstruction {
  address: string;
  source: string;
  samples: number;
  /** Of the samples of every instruction in the page. */
  share: number;
}

/**
 * The n instructions with the most warp-stall samples in a source-page CSV (`ncu --import
 * REPORT --csv --page source --print-source sass`). Its layout differs between ncu versions, so
 * the header is found by its cells: a column whose name starts with "Warp Stall Sampling (All"
 * (samples) and one named "Source" (the SASS text; "Address" too where present). Rows with the
 * header's number of cells are instructions; a repeated header starts another kernel's listing,
 * all counted together. Null when no such header is found (the caller shows the text instead).
 */
export function hottestInstructions(text: string, n: number): NcuHotInstruction[] | null {
  let samplesCol = -1;
  let sourceCol = -1;
  let addressCol = -1;
  let width = 0;
  const rows: Array<{ address: string; source: string; samples: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('"')) continue;
    const cells = csvCells(line);
    const stall = cells.findIndex((c) => c.startsWith('Warp Stall Sampling (All'));
    if (stall >= 0 && cells.includes('Source')) {
      [samplesCol, sourceCol, addressCol, width] = [stall, cells.indexOf('Source'), cells.indexOf('Address'), cells.length];
      continue;
    }
    if (samplesCol < 0 || cells.length !== width) continue;
    const samples = Number((cells[samplesCol] ?? '').replace(/,/g, ''));
    if (!Number.isFinite(samples)) continue;
    rows.push({ address: addressCol >= 0 ? (cells[addressCol] ?? '') : '', source: (cells[sourceCol] ?? '').trim(), samples });
  }
  if (samplesCol < 0) return null;
  const total = rows.reduce((a, r) => a + r.samples, 0);
  return rows
    .sort((a, b) => b.samples - a.samples)
    .slice(0, n)
    .map((r) => ({ ...r, share: total > 0 ? r.samples / total : 0 }));
}

/**
 * Runs this script under ncu with `scriptArgs`, collecting the source counters of the first
 * launch of the kernel whose name matches `kernelRegex`, and prints its `n` instructions with
 * the most warp-stall samples (their share of all its samples) under `title`: which instruction
 * a kernel waits at, where the stall reasons say only why. The report goes to a temporary
 * directory; a failed run or an unreadable page prints a note instead.
 */
export function printHottest(ncu: string, kernelRegex: string, scriptArgs: string[], title: string, n: number): void {
  const dir = mkdtempSync(join(tmpdir(), 'npr-ncu-'));
  try {
    const report = join(dir, 'source');
    const ncuArgs = ['--section', 'SourceCounters', '--kernel-name', `regex:${kernelRegex}`, '--launch-count', '1', '-o', report, '-f'];
    const r = runUnderNcu(ncu, ncuArgs, scriptArgs);
    if (r.status !== 0) {
      console.log(`note: ncu (source counters) failed for ${title} (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').slice(-800)}`);
      return;
    }
    const page = spawnSync(ncu, ['--import', `${report}.ncu-rep`, '--csv', '--page', 'source', '--print-source', 'sass'], {
      encoding: 'utf8',
      maxBuffer: 256 << 20,
      timeout: 300_000,
    });
    const text = page.stdout ?? '';
    const hot = page.status === 0 ? hottestInstructions(text, n) : null;
    console.log(`\n${title}: the instructions with the most warp-stall samples (share of all its samples):`);
    if (hot === null) {
      console.log(
        `  (no source page read: exit ${page.status ?? page.signal}; its first lines follow)\n${(text || page.stderr || '').slice(0, 3000)}`,
      );
      return;
    }
    for (const h of hot) console.log(`  ${(100 * h.share).toFixed(1).padStart(5)}%  ${h.address.padEnd(8)} ${h.source}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
