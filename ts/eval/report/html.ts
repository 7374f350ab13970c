/**
 * The report page: one standalone HTML file (inline CSS, no scripts, no external resources)
 * with the run facts, a summary table (one row per model), optional per-family tables, and a
 * <figure> per chart that points at the PNG beside it. Every piece of input text is escaped.
 *
 * Deliberately not here: drawing or writing files (charts.ts, index.ts).
 */
import { type PlannedChart, planCharts } from './plan.js';
import { checkInput, type ModelFigures, orderedModels, type ReportInput } from './types.js';

/** Escapes text for HTML element content and double- or single-quoted attributes. */
export const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const e = (v: unknown) => escapeHtml(String(v));
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** Shown for a missing or non-finite figure (an en dash; needs no escaping). */
const DASH = '\u2013';

/** The table's columns: field, heading, and how a value shows. */
const COLUMNS: [keyof ModelFigures, string, (v: number) => string][] = [
  ['format_valid_rate', 'format-valid', pct],
  ['parallel_rate', 'parallel', pct],
  ['avg_at_k', 'avg@k', pct],
  ['pass_at_k', 'pass@k', pct],
  ['branch_correct_rate', 'branch-correct', pct],
  ['tokens_per_s', 'tokens/s', (v) => v.toFixed(1)],
  ['wall_s_per_problem', 'wall s/problem', (v) => v.toFixed(2)],
];

function pct(v: number): string {
  return `${(v * 100).toFixed(1)}%`;
}

/** "95.3 s" or "754.2 s (12 min 34 s)" or "(2 h 05 min)". */
export function formatWall(s: unknown): string {
  if (!num(s)) return DASH;
  const base = `${s.toFixed(1)} s`;
  if (s < 60) return base;
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  return h > 0 ? `${base} (${h} h ${String(m).padStart(2, '0')} min)` : `${base} (${m} min ${t % 60} s)`;
}

function table(models: Record<string, ModelFigures>, k: unknown): string {
  const head = COLUMNS.map(([field, label]) => `<th scope="col">${e(label.replace('@k', `@${k}`))}<br><code>${e(field)}</code></th>`).join(
    '',
  );
  const rows = orderedModels(models).map((name) => {
    const figures = (models[name] ?? {}) as Partial<ModelFigures>;
    const cells = COLUMNS.map(([field, , show]) => {
      const v = figures[field];
      return `<td>${num(v) ? e(show(v)) : DASH}</td>`;
    }).join('');
    return `<tr><th scope="row">${e(name)}</th>${cells}</tr>`;
  });
  const body = rows.length > 0 ? rows.join('\n') : `<tr><td colspan="${COLUMNS.length + 1}">no models</td></tr>`;
  return `<table>\n<thead><tr><th scope="col">model</th>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

function figure(c: Pick<PlannedChart, 'file' | 'title' | 'caption' | 'width' | 'height'>): string {
  return `<figure><img src="${e(c.file)}" alt="${e(c.title)}" width="${c.width}" height="${c.height}"><figcaption>${e(c.caption)}</figcaption></figure>`;
}

const CSS = `
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1e1e1e; background: #fff; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 16px; }
h2 { font-size: 20px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 8px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #d4d4d4; padding: 5px 10px; text-align: right; vertical-align: bottom; }
thead th { background: #f3f3f3; font-weight: 600; }
th[scope="row"] { text-align: left; }
th code { font-size: 11px; color: #666; font-weight: 400; }
figure { margin: 20px 0; }
figure img { display: block; border: 1px solid #e2e2e2; }
figcaption { color: #555; font-size: 14px; margin-top: 6px; max-width: 800px; }
`;

/**
 * The report page for `input`. `charts` defaults to planCharts(input), the list writeReport
 * writes; pass another list only to describe files written some other way.
 */
export function renderReportHtml(
  input: ReportInput,
  charts?: readonly Pick<PlannedChart, 'file' | 'title' | 'caption' | 'width' | 'height'>[],
): string {
  checkInput(input);
  const figures = charts ?? planCharts(input);
  const s = input.summary;
  const title = input.title ?? 'NPR demo report';
  const facts: [string, string][] = [
    ['CPU', s.cpu ? e(s.cpu) : 'unknown'],
    ['Wall time', e(formatWall(s.wall_s))],
    ['k (samples per problem)', num(s.k) ? e(s.k) : DASH],
    ['Test problems', num(s.test_problems) ? e(s.test_problems) : DASH],
    ['Seed', num(s.seed) ? e(s.seed) : DASH],
  ];
  const families = Object.entries(s.families ?? {}).filter(([, m]) => typeof m === 'object' && m !== null);
  const parts = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${e(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<main>',
    `<h1>${e(title)}</h1>`,
    '<section>',
    '<h2>Run</h2>',
    `<dl class="facts">${facts.map(([k, v]) => `<dt>${e(k)}</dt><dd>${v}</dd>`).join('')}</dl>`,
    '</section>',
    '<section>',
    '<h2>Summary</h2>',
    table(s.models, s.k),
    '</section>',
  ];
  const checks = Array.isArray(s.checks) ? (s.checks as unknown[]).filter(isCheck) : [];
  if (checks.length > 0) {
    const rows = checks.map(
      (c) =>
        `<tr><td>${c.met ? 'met' : '<strong>missed</strong>'}</td><td>${e(c.figure)}</td><td>${e(c.target)}</td><td>${e(c.value.toFixed(3))}</td></tr>`,
    );
    parts.push(
      '<section>',
      '<h2>Target figures</h2>',
      `<table><thead><tr><th>status</th><th>figure</th><th>target</th><th>measured</th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
      '</section>',
    );
  }
  if (families.length > 0) {
    parts.push('<section>', '<h2>By problem family</h2>');
    for (const [family, models] of families) parts.push(`<h3>${e(family)}</h3>`, table(models, s.k));
    parts.push('</section>');
  }
  parts.push('<section>', '<h2>Charts</h2>', ...figures.map(figure), '</section>', '</main>', '</body>', '</html>', '');
  return parts.join('\n');
}

interface Check {
  figure: string;
  target: string;
  value: number;
  met: boolean;
}

function isCheck(c: unknown): c is Check {
  const o = c as Partial<Check> | null;
  return typeof o?.figure === 'string' && typeof o.target === 'string' && typeof o.value === 'number' && typeof o.met === 'boolean';
}
