/**
 * `npr demo` (= `npm start`): the NPR curriculum end to end on the shipped tiny base, beside a
 * sequential-RL baseline with the same RL budget, then every model on the held-out split.
 *
 *   data      train.jsonl (train split) and test.jsonl (held-out split) of the evaluated families
 *   NPR       stage 1 format-follow RL (DAPO, sequential rollouts)          -> npr-zero
 *             stage 2 rejection sampling from NPR-ZERO + parallel SFT from the base -> npr-beta
 *             stage 3 PAPO with native parallel rollouts                     -> npr
 *   SR        RL from the base, sequential prompt and rollouts, as many rollouts as stages 1 + 3
 *   eval      base, npr-zero, sr (sequential) and npr-beta, npr (parallel engine) at k samples
 *   report    summary.json, metrics.jsonl (every stage's steps), report.html + PNG charts
 *
 * Honest by construction: the test problems are drawn from the held-out side of the hash
 * split, never seen by pretraining or RL, and nothing is tuned on them.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type EvalResult, evaluate } from '../eval/evaluate.js';
import { writeReport } from '../eval/report/index.js';
import { Model } from '../model/model.js';
import { PARALLEL_INSTRUCTION } from '../tasks/corpus.js';
import { FAMILIES } from '../tasks/families.js';
import { DEMO_FAMILIES, generateProblems, type TaskItem, toJsonl } from '../tasks/sets.js';
import type { CurriculumConfig, StageConfig } from '../trainer/config.js';
import { Curriculum } from '../trainer/curriculum.js';
import { cpuDescription } from './cpu.js';
import type { Progress } from './progress.js';
import { type DemoOptions, type DemoSettings, resolveDemo } from './settings.js';

export type ModelKey = 'base' | 'npr_zero' | 'npr_beta' | 'sr' | 'npr';

export interface DemoSummary {
  models: Record<ModelKey, Omit<EvalResult, 'families'>>;
  families: Record<string, Record<ModelKey, EvalResult['families'][string]>>;
  k: number;
  test_problems: number;
  wall_s: number;
  cpu: string;
  seed: number;
  quick: boolean;
  speedup_vs_sr: number;
  chance_avg_at_k: Record<string, number>;
  checks: { figure: string; target: string; value: number; met: boolean }[];
  settings: DemoSettings;
}

const rl = (kind: 'format-rl' | 'papo' | 'sr', name: string, b: DemoSettings['stage1'], extra: Partial<StageConfig> = {}): StageConfig =>
  ({
    kind,
    name,
    steps: b.steps,
    prompts: b.prompts,
    samples: b.samples,
    schedule: { kind: 'constant', lr: b.lr, warmupSteps: 0 },
    // Equal budgets: one generation batch per step in every RL stage (no extra DAPO draws).
    dynamicSamplingBatches: kind === 'format-rl' ? 1 : 0,
    ...extra,
  }) as StageConfig;

export function demoCurriculum(s: DemoSettings, data: string): CurriculumConfig {
  return {
    model: resolve(s.model),
    codec: 'tokenizer',
    backend: 'cpu',
    data,
    out: join(resolve(s.out), 'runs'),
    seed: s.seed,
    prompt: { instruction: PARALLEL_INSTRUCTION },
    sampling: { maxNewTokens: s.maxNewTokens, temperature: 1, topP: 1, kvBlocks: 8192, blockTokens: 16, concurrency: 64 },
    stages: [
      rl('format-rl', 'npr-zero', s.stage1),
      { kind: 'rejection', name: 'rejection', maxSamples: s.rejection.maxSamples, maxProblems: s.rejection.maxProblems },
      {
        kind: 'sft',
        name: 'npr-beta',
        from: 'base',
        epochs: s.sft.epochs,
        batch: s.sft.batch,
        schedule: { kind: 'cosine', lr: s.sft.lr, warmupSteps: 0, minLrRatio: 0.1 },
      },
      rl('papo', 'npr', s.stage3),
      rl('sr', 'sr', s.sr, { from: 'base', prompt: { template: '{question}', instruction: '' } }),
    ],
  };
}

export async function runDemo(options: DemoOptions, progress: Progress, signal?: AbortSignal): Promise<DemoSummary> {
  const s = resolveDemo(options);
  const t0 = performance.now();
  const out = resolve(s.out);
  await mkdir(join(out, 'data'), { recursive: true });
  const train = generateProblems(DEMO_FAMILIES, 'train', s.trainProblems, s.seed);
  const test = generateProblems(DEMO_FAMILIES, 'test', s.testProblems, s.seed);
  const trainFile = join(out, 'data', 'train.jsonl');
  await writeFile(trainFile, toJsonl(train));
  await writeFile(join(out, 'data', 'test.jsonl'), toJsonl(test));
  progress.say(`npr demo: ${s.quick ? 'quick miniature' : 'full run'} on ${cpuDescription()}`);
  progress.say(`  base ${s.model}; ${train.length} train / ${test.length} held-out problems (${DEMO_FAMILIES.join(', ')}); out ${out}`);

  const run = new Curriculum(demoCurriculum(s, trainFile));
  run.on('stage-start', (e) => progress.say(`stage ${e.stage} (${e.kind})`));
  run.on('step', (m) => progress.step(m));
  run.on('warning', (e) => {
    if (!/no rollout survived|no update/.test(e.message)) progress.say(`  warning: ${e.message}`);
  });
  const outputs = await run.run(signal ? { signal } : {});
  const dirOf = (name: string) => outputs.find((o) => o.stage === name)?.model as string;

  const items: TaskItem[] = test.map((task) => ({ question: task.question, answer: task.answer, task }));
  const plan: [ModelKey, string, 'ar' | 'parallel', boolean][] = [
    ['base', resolve(s.model), 'ar', false],
    ['npr_zero', dirOf('npr-zero'), 'ar', true],
    ['npr_beta', dirOf('npr-beta'), 'parallel', true],
    ['sr', dirOf('sr'), 'ar', false],
    ['npr', dirOf('npr'), 'parallel', true],
  ];
  const models = {} as DemoSummary['models'];
  const families: DemoSummary['families'] = {};
  for (const [key, dir, mode, instruction] of plan) {
    const te = performance.now();
    const model = await Model.load(dir);
    const r = await evaluate(model, items, {
      k: s.k,
      mode,
      instruction,
      seed: s.seed + 4242,
      maxNewTokens: s.maxNewTokens,
      latencyProblems: s.latencyProblems,
      ...(signal ? { signal } : {}),
    });
    const { families: fam, ...figures } = r;
    models[key] = figures;
    for (const [f, x] of Object.entries(fam)) {
      const row = families[f] ?? ({} as Record<ModelKey, EvalResult['families'][string]>);
      row[key] = x;
      families[f] = row;
    }
    progress.say(
      `eval ${key.padEnd(8)} (${mode.padEnd(8)}) avg@${s.k} ${pct(r.avg_at_k)}  pass@${s.k} ${pct(r.pass_at_k)}  format ${pct(r.format_valid_rate)}  parallel ${pct(r.parallel_rate)}  branches ${pct(r.branch_correct_rate)}  ${r.wall_s_per_problem.toFixed(3)} s/problem  ${((performance.now() - te) / 1000).toFixed(1)} s`,
    );
  }
  const speedup = models.npr.wall_s_per_problem > 0 ? models.sr.wall_s_per_problem / models.npr.wall_s_per_problem : 0;
  const summary: DemoSummary = {
    models,
    families,
    k: s.k,
    test_problems: test.length,
    wall_s: (performance.now() - t0) / 1000,
    cpu: cpuDescription(),
    seed: s.seed,
    quick: s.quick,
    speedup_vs_sr: speedup,
    chance_avg_at_k: Object.fromEntries(FAMILIES.filter((f) => f.evaluated).map((f) => [f.name, f.chance])),
    checks: checks(models, speedup),
    settings: s,
  };
  await writeFile(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const metricsText = await readFile(join(out, 'runs', 'metrics.jsonl'), 'utf8');
  await writeFile(join(out, 'metrics.jsonl'), metricsText);
  const metrics = metricsText
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { stage: string; step: number });
  await writeReport(out, { title: 'NPR demo', summary: summary as never, metrics });
  return summary;
}

const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);

/** The figures, as pass/miss lines (reported, never used to steer the run). */
function checks(m: DemoSummary['models'], speedup: number): DemoSummary['checks'] {
  return [
    {
      figure: 'format-valid rate after stage 1',
      target: '>= 0.90',
      value: m.npr_zero.format_valid_rate,
      met: m.npr_zero.format_valid_rate >= 0.9,
    },
    { figure: 'format-valid rate of NPR', target: '>= 0.95', value: m.npr.format_valid_rate, met: m.npr.format_valid_rate >= 0.95 },
    { figure: 'parallel-trigger rate of NPR', target: '>= 0.95', value: m.npr.parallel_rate, met: m.npr.parallel_rate >= 0.95 },
    { figure: 'parallel-trigger rate of base', target: '0', value: m.base.parallel_rate, met: m.base.parallel_rate === 0 },
    { figure: 'NPR avg@k - SR avg@k', target: '>= 0', value: m.npr.avg_at_k - m.sr.avg_at_k, met: m.npr.avg_at_k >= m.sr.avg_at_k },
    { figure: 'NPR avg@k - base avg@k', target: '> 0', value: m.npr.avg_at_k - m.base.avg_at_k, met: m.npr.avg_at_k > m.base.avg_at_k },
    {
      figure: 'NPR pass@k - NPR-BETA pass@k',
      target: '> 0',
      value: m.npr.pass_at_k - m.npr_beta.pass_at_k,
      met: m.npr.pass_at_k > m.npr_beta.pass_at_k,
    },
    { figure: 'wall-clock speedup of NPR over SR', target: '>= 2', value: speedup, met: speedup >= 2 },
  ];
}
