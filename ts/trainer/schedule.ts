/**
 * Learning-rate schedules: constant (with optional linear warmup) and cosine with linear warmup
 * decaying to a floor (lr * minLrRatio), as verl's `warmup_style` constant / cosine. Steps are
 * 0-based optimizer steps.
 */
export interface ScheduleConfig {
  kind: 'constant' | 'cosine';
  lr: number;
  /** Linear warmup steps from 0 (default 0). */
  warmupSteps?: number;
  /** Cosine floor as a fraction of lr (default 0). */
  minLrRatio?: number;
}

export function learningRate(s: ScheduleConfig, step: number, totalSteps: number): number {
  const warm = s.warmupSteps ?? 0;
  if (warm > 0 && step < warm) return (s.lr * (step + 1)) / warm;
  if (s.kind === 'constant') return s.lr;
  const floor = s.lr * (s.minLrRatio ?? 0);
  const span = Math.max(1, totalSteps - warm);
  const progress = Math.min(1, Math.max(0, (step - warm) / span));
  return floor + 0.5 * (s.lr - floor) * (1 + Math.cos(Math.PI * progress));
}
