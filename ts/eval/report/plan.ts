/**
 * Which charts a report has, decided from its input alone: one training curve per stage found in
 * the metrics (curve-<stage>.png), then final-accuracy.png, final-speed.png and
 * final-throughput.png over the models. Each entry can render its PNG; html.ts uses the same list
 * for its <figure>s, so the page and the files always agree.
 *
 * Curve series per stage: reward, accuracy, format_valid_rate, parallel_rate where present;
 * loss from lines that have no reward (SFT); acceptance_rate (rejection sampling); x = step.
 */
import { barChart, lineChart } from './charts.js';
import { checkInput, type ModelFigures, orderedModels, type ReportInput } from './types.js';

export interface PlannedChart {
  /** File name inside the report directory, e.g. "curve-rl.png". */
  file: string;
  title: string;
  caption: string;
  width: number;
  height: number;
  render: () => Buffer;
}

const WIDTH = 800;
const HEIGHT = 440;
const RATES = new Set(['accuracy', 'format_valid_rate', 'parallel_rate', 'acceptance_rate']);

/** Lower case, runs of anything but [a-z0-9-] become one '-', no '-' at the ends; "stage" if empty. */
export const sanitiseStage = (stage: string): string =>
  stage
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '') || 'stage';

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The series of one stage's lines, in a fixed field order, empty ones left out. */
export function stageSeries(lines: ReportInput['metrics']): { name: string; points: [number, number][] }[] {
  const fields: [string, (l: Record<string, unknown>) => boolean][] = [
    ['reward', () => true],
    ['accuracy', () => true],
    ['format_valid_rate', () => true],
    ['parallel_rate', () => true],
    ['loss', (l) => !num(l.reward)],
    ['acceptance_rate', () => true],
  ];
  return fields
    .map(([name, use]) => ({
      name,
      points: lines.filter((l) => num(l.step) && num(l[name]) && use(l)).map((l): [number, number] => [l.step, l[name] as number]),
    }))
    .filter((s) => s.points.length > 0);
}

function curves(metrics: ReportInput['metrics']): PlannedChart[] {
  const byStage = new Map<string, ReportInput['metrics']>();
  for (const line of Array.isArray(metrics) ? metrics : []) {
    if (typeof line !== 'object' || line === null) continue;
    const stage = String(line.stage ?? 'unknown');
    const list = byStage.get(stage);
    if (list) list.push(line);
    else byStage.set(stage, [line]);
  }
  const used = new Set<string>();
  return [...byStage].map(([stage, lines]) => {
    let base = `curve-${sanitiseStage(stage)}`;
    for (let i = 2; used.has(base); i++) base = `curve-${sanitiseStage(stage)}-${i}`;
    used.add(base);
    const series = stageSeries(lines);
    const kind = lines.find((l) => typeof l.kind === 'string')?.kind as string | undefined;
    const onlyRates = series.length > 0 && series.every((s) => RATES.has(s.name) && s.points.every(([, y]) => y >= 0 && y <= 1));
    const title = `Training stage ${stage}${kind && kind !== stage ? ` (${kind})` : ''}`;
    return {
      file: `${base}.png`,
      title,
      caption: `${title}: ${series.length > 0 ? series.map((s) => s.name).join(', ') : 'no numeric metrics'} by optimizer step (${lines.length} metrics lines).`,
      width: WIDTH,
      height: HEIGHT,
      render: () =>
        lineChart({
          title,
          xLabel: 'step',
          yLabel: onlyRates ? 'rate' : 'value',
          series,
          yRange: onlyRates ? [0, 1] : undefined,
          width: WIDTH,
          height: HEIGHT,
        }),
    };
  });
}

function bars(input: ReportInput): PlannedChart[] {
  const { models, k, test_problems: n, cpu } = input.summary;
  const names = orderedModels(models);
  const column = (f: keyof ModelFigures) => names.map((m) => Number((models[m] as ModelFigures | null | undefined)?.[f]));
  const on = cpu ? ` on ${cpu}` : '';
  const chart = (file: string, title: string, caption: string, draw: (title: string) => Buffer): PlannedChart => ({
    file,
    title,
    caption,
    width: WIDTH,
    height: HEIGHT,
    render: () => draw(title),
  });
  return [
    chart(
      'final-accuracy.png',
      `Final accuracy, k = ${k}, ${n} test problems`,
      `Rates per model over ${n} test problems with k = ${k} samples each (0 to 1).`,
      (title) =>
        barChart({
          title,
          categories: names,
          series: [
            { name: `avg@${k}`, values: column('avg_at_k') },
            { name: `pass@${k}`, values: column('pass_at_k') },
            { name: 'format-valid rate', values: column('format_valid_rate') },
            { name: 'parallel rate', values: column('parallel_rate') },
            { name: 'branch-correct rate', values: column('branch_correct_rate') },
          ],
          yRange: [0, 1],
          yLabel: 'rate',
          width: WIDTH,
          height: HEIGHT,
        }),
    ),
    chart(
      'final-speed.png',
      'Wall time per problem',
      `Seconds of wall time per test problem (all k samples)${on}; lower is faster.`,
      (title) =>
        barChart({
          title,
          categories: names,
          series: [{ name: 'wall s / problem', values: column('wall_s_per_problem') }],
          yLabel: 'seconds',
          width: WIDTH,
          height: HEIGHT,
        }),
    ),
    chart('final-throughput.png', 'Generation throughput', `Generated tokens per second${on}; higher is faster.`, (title) =>
      barChart({
        title,
        categories: names,
        series: [{ name: 'tokens / s', values: column('tokens_per_s') }],
        yLabel: 'tokens per second',
        width: WIDTH,
        height: HEIGHT,
      }),
    ),
  ];
}

/** Every chart of the report, curves first, in a stable order. */
export function planCharts(input: ReportInput): PlannedChart[] {
  checkInput(input);
  return [...curves(input.metrics), ...bars(input)];
}
