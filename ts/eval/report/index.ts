/**
 * The demo's report writer: `writeReport(dir, input)` draws every chart of planCharts(input) as
 * a PNG and the page that shows them as report.html, all in `dir`. Each file is written to
 * `<name>.tmp` and renamed into place, so a reader never sees half a file; the PNGs go first and
 * the page last, so the page never points at a chart that is not there yet.
 *
 * Deliberately not here: reading metrics files or running evaluations (the demo does that and
 * passes the parsed objects), and any npm dependency: PNG, raster, font and charts are in this
 * directory.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderReportHtml } from './html.js';
import { planCharts } from './plan.js';
import { checkInput, type ReportInput } from './types.js';

export { type BarChartSpec, barChart, type LineChartSpec, lineChart } from './charts.js';
export { PixelBufferError, ReportInputError, ReportSizeError } from './errors.js';
export { escapeHtml, renderReportHtml } from './html.js';
export { type PlannedChart, planCharts, sanitiseStage } from './plan.js';
export { encodePng } from './png.js';
export { type Color, Raster } from './raster.js';
export { MODEL_FIGURES, MODEL_ORDER, type ModelFigures, orderedModels, type ReportInput } from './types.js';

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes report.html and its PNG charts into `dir` (created if missing).
 * @returns the path of report.html and the paths of the charts, in page order
 */
export async function writeReport(dir: string, input: ReportInput): Promise<{ html: string; charts: string[] }> {
  checkInput(input);
  const plan = planCharts(input);
  const page = renderReportHtml(input, plan);
  await mkdir(dir, { recursive: true });
  const charts: string[] = [];
  for (const chart of plan) {
    const path = join(dir, chart.file);
    await writeAtomic(path, chart.render());
    charts.push(path);
  }
  const html = join(dir, 'report.html');
  await writeAtomic(html, page);
  return { html, charts };
}
