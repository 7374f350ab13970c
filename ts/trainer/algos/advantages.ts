/**
 * Advantage estimators: one scalar advantage per sampled response from its reward and its group
 * (the responses to one prompt), registered by name with one signature.
 *
 *   grpo / dapo   (R_i - mean_group) / (std_group + eps)         (DAPO = GRPO's estimator)
 *   papo          (R_i - mean_group) / (std_batch + eps)         (NPR Eq. 5, "Lite-PPO" style)
 *
 * std is the unbiased (n - 1) standard deviation, as torch.std. A group of one has mean 0 and
 * (grpo) std 1, as verl; a PAPO batch with no spread divides by 1. PAPO's batch std is computed ONCE over the raw rewards before any
 * normalisation; NPR's release recomputes it inside the loop while overwriting the scores, which
 * divides later samples by a std of partly-normalised values - deliberately not reproduced.
 *
 * These are plain loops (a batch holds tens to thousands of responses): they are their own
 * reference. Not here: rewards (rewards/), token broadcasting (the stages).
 */

export interface AdvantageInput {
  /** (N) reward per response. */
  rewards: ArrayLike<number>;
  /** (N) group id per response (responses to the same prompt share one). */
  groups: ArrayLike<number>;
}

export interface AdvantageOptions {
  /** Added to the std (default 1e-6, verl's epsilon). */
  eps?: number;
}

/** The one signature of an advantage estimator. */
export type AdvantageEstimator = (input: AdvantageInput, options?: AdvantageOptions) => Float64Array;

function groupStats(input: AdvantageInput): Map<number, { n: number; mean: number; std: number }> {
  const members = new Map<number, number[]>();
  for (let i = 0; i < input.rewards.length; i++) {
    const g = input.groups[i] as number;
    const list = members.get(g) ?? [];
    list.push(input.rewards[i] as number);
    members.set(g, list);
  }
  const out = new Map<number, { n: number; mean: number; std: number }>();
  for (const [g, rs] of members) {
    if (rs.length === 1) {
      out.set(g, { n: 1, mean: 0, std: 1 });
      continue;
    }
    out.set(g, { n: rs.length, mean: mean(rs), std: unbiasedStd(rs) });
  }
  return out;
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i] as number;
  return xs.length ? s / xs.length : 0;
}

/** torch.std: sqrt(sum (x - mean)^2 / (n - 1)); 0 for fewer than 2 values. */
export function unbiasedStd(xs: ArrayLike<number>): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += ((xs[i] as number) - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

function check(input: AdvantageInput): void {
  if (input.rewards.length !== input.groups.length)
    throw new RangeError(`advantages: ${input.rewards.length} rewards but ${input.groups.length} group ids; give one group id per reward`);
  for (let i = 0; i < input.rewards.length; i++)
    if (!Number.isFinite(input.rewards[i] as number)) throw new RangeError(`advantages: reward ${i} is not finite (${input.rewards[i]})`);
}

export const grpoAdvantages: AdvantageEstimator = (input, options = {}) => {
  check(input);
  const eps = options.eps ?? 1e-6;
  const stats = groupStats(input);
  const out = new Float64Array(input.rewards.length);
  for (let i = 0; i < out.length; i++) {
    const s = stats.get(input.groups[i] as number) as { mean: number; std: number };
    out[i] = ((input.rewards[i] as number) - s.mean) / (s.std + eps);
  }
  return out;
};

export const papoAdvantages: AdvantageEstimator = (input, options = {}) => {
  check(input);
  const eps = options.eps ?? 1e-6;
  const stats = groupStats(input);
  // Once, over the raw rewards of the whole batch. A batch whose rewards all agree (or of one
  // response) has no spread to normalise by: divide by 1 rather than by eps.
  const raw = unbiasedStd(input.rewards);
  const std = raw > 0 ? raw : 1;
  const out = new Float64Array(input.rewards.length);
  for (let i = 0; i < out.length; i++) {
    const s = stats.get(input.groups[i] as number) as { mean: number };
    out[i] = ((input.rewards[i] as number) - s.mean) / (std + eps);
  }
  return out;
};

/** Advantage estimators by name. */
export const ADVANTAGE_ESTIMATORS = {
  grpo: grpoAdvantages,
  dapo: grpoAdvantages,
  papo: papoAdvantages,
} as const satisfies Record<string, AdvantageEstimator>;

export type AdvantageEstimatorName = keyof typeof ADVANTAGE_ESTIMATORS;

export function advantageEstimator(name: string): AdvantageEstimator {
  const fn = (ADVANTAGE_ESTIMATORS as Record<string, AdvantageEstimator>)[name];
  if (!fn) throw new RangeError(`no advantage estimator '${name}'; known: ${Object.keys(ADVANTAGE_ESTIMATORS).join(', ')}`);
  return fn;
}
