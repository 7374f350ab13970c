/**
 * The trainer's typed events (typed-emitter map) for library users, the CLI's progress bars and
 * the metrics file. One `step` event per optimizer step (or rejection round) carries the same
 * object as its metrics.jsonl line.
 */
export interface StepMetrics {
  stage: string;
  kind: string;
  step: number;
  steps: number;
  /** Mean reward, accuracy, format-valid rate, parallel rate over the rollouts used. */
  reward?: number;
  accuracy?: number;
  format_valid_rate?: number;
  parallel_rate?: number;
  mean_branches?: number;
  /** Mean and max response length (tokens, all branches). */
  response_length?: number;
  response_length_max?: number;
  rollouts?: number;
  filtered?: number;
  loss?: number;
  grad_norm?: number;
  lr?: number;
  clip_frac?: number;
  clip_frac_lower?: number;
  special_clip_frac?: number;
  ratio_mean?: number;
  tokens_per_s?: number;
  rollout_ms?: number;
  train_ms?: number;
  wall_s: number;
  [key: string]: unknown;
}

export type TrainerEvents = {
  'stage-start': (e: { stage: string; kind: string; index: number; steps: number; resumedAt: number }) => void;
  step: (m: StepMetrics) => void;
  checkpoint: (e: { stage: string; step: number; dir: string }) => void;
  'stage-end': (e: { stage: string; kind: string; output: string }) => void;
  warning: (e: { stage?: string; message: string }) => void;
};
