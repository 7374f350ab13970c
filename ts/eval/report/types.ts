/**
 * The report's input: the evaluation summary (one ModelFigures per model, optionally per problem
 * family) and the trainer's metrics.jsonl lines. Re-exported from index.ts.
 */
import { ReportInputError } from './errors.js';

/** One model's evaluation figures; rates are fractions in 0..1. */
export interface ModelFigures {
  format_valid_rate: number;
  parallel_rate: number;
  avg_at_k: number;
  pass_at_k: number;
  branch_correct_rate: number;
  tokens_per_s: number;
  wall_s_per_problem: number;
  [key: string]: unknown;
}

/** The figures every model of a summary carries (summary.json's contract). */
export const MODEL_FIGURES = [
  'format_valid_rate',
  'parallel_rate',
  'avg_at_k',
  'pass_at_k',
  'branch_correct_rate',
  'tokens_per_s',
  'wall_s_per_problem',
] as const;

export interface ReportInput {
  /** Page heading (default "NPR demo report"). */
  title?: string;
  summary: {
    models: Record<string, ModelFigures>;
    k: number;
    test_problems: number;
    /** Whole evaluation wall time, seconds. */
    wall_s: number;
    /** CPU model or kind the run used. */
    cpu?: string;
    seed?: number;
    /** family -> model -> figures. */
    families?: Record<string, Record<string, ModelFigures>>;
    [key: string]: unknown;
  };
  /** metrics.jsonl lines; those of one `stage` form one training curve. */
  metrics: Array<{ stage: string; step: number; [key: string]: unknown }>;
}

/** Models in the demo's order (base, npr_zero, npr_beta, sr, npr), any others after in their own order. */
export const MODEL_ORDER = ['base', 'npr_zero', 'npr_beta', 'sr', 'npr'] as const;

export function orderedModels(models: Record<string, unknown>): string[] {
  const names = Object.keys(models);
  const known: string[] = MODEL_ORDER.filter((m) => names.includes(m));
  return [...known, ...names.filter((n) => !known.includes(n))];
}

/** Throws ReportInputError unless `input` has a summary with a models object. */
export function checkInput(input: ReportInput): void {
  const models = (input as { summary?: { models?: unknown } } | undefined)?.summary?.models;
  if (typeof models !== 'object' || models === null || Array.isArray(models)) {
    throw new ReportInputError(
      `report input: summary.models must be an object mapping model name to its figures; got ${models === null ? 'null' : Array.isArray(models) ? 'an array' : typeof models}`,
    );
  }
}
