/**
 * A small, realistic report input for the report tests: the demo's five models, two problem
 * families, and metrics lines from each stage kind (format RL, rejection sampling, SFT, parallel
 * RL), shaped like the trainer's metrics.jsonl and the demo's summary.json.
 */
import type { ModelFigures, ReportInput } from '../ts/eval/report/index.js';

const figures = (f: number[]): ModelFigures => ({
  format_valid_rate: f[0] as number,
  parallel_rate: f[1] as number,
  avg_at_k: f[2] as number,
  pass_at_k: f[3] as number,
  branch_correct_rate: f[4] as number,
  tokens_per_s: f[5] as number,
  wall_s_per_problem: f[6] as number,
});

export function sampleReportInput(): ReportInput {
  const metrics: ReportInput['metrics'] = [];
  for (let s = 1; s <= 12; s++) {
    metrics.push({
      stage: 'npr-zero',
      kind: 'format-rl',
      step: s,
      steps: 12,
      reward: -1.6 + s * 0.12,
      accuracy: 0.2 + s * 0.02,
      format_valid_rate: Math.min(1, 0.15 + s * 0.08),
      parallel_rate: 0.1 + s * 0.06,
      loss: 0.05,
      wall_s: s * 2.5,
    });
  }
  for (let s = 1; s <= 3; s++)
    metrics.push({ stage: 'rejection', kind: 'rejection', step: s, steps: 3, acceptance_rate: 0.35 + s * 0.1, wall_s: s });
  for (let s = 1; s <= 8; s++)
    metrics.push({ stage: 'sft', kind: 'sft', step: s, steps: 8, loss: 2.4 * Math.exp(-s / 4) + 0.3, wall_s: s });
  for (let s = 1; s <= 10; s++) {
    metrics.push({
      stage: 'npr',
      kind: 'rl',
      step: s,
      steps: 10,
      reward: 0.3 + s * 0.04,
      accuracy: 0.42 + s * 0.015,
      format_valid_rate: 0.97,
      parallel_rate: 0.95,
      wall_s: s * 3,
    });
  }
  return {
    title: 'NPR demo',
    summary: {
      // Insertion order differs from the report's order on purpose.
      models: {
        npr: figures([0.97, 0.96, 0.41, 0.72, 0.63, 212.5, 3.91]),
        base: figures([0.12, 0, 0.31, 0.66, 0, 180.2, 5.42]),
        sr: figures([0.93, 0.9, 0.37, 0.69, 0.58, 210, 4.0]),
        npr_zero: figures([0.91, 0.8, 0.33, 0.6, 0.5, 205.1, 4.1]),
        npr_beta: figures([0.9, 0.85, 0.35, 0.66, 0.55, 207, 4.05]),
      },
      families: {
        arithmetic: { base: figures([0.1, 0, 0.5, 0.8, 0, 180, 5]), npr: figures([1, 0.95, 0.6, 0.9, 0.7, 210, 3.5]) },
        countdown: { base: figures([0.14, 0, 0.12, 0.5, 0, 181, 5.8]), npr: figures([0.94, 0.97, 0.22, 0.55, 0.56, 214, 4.3]) },
      },
      k: 8,
      test_problems: 64,
      wall_s: 754.2,
      cpu: 'AMD EPYC 9454 (16 threads)',
      seed: 1234,
    },
    metrics,
  };
}
