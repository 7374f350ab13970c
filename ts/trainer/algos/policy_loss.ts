/**
 * Policy losses and loss aggregation, registered by name with one declared signature: each entry
 * has the native version (the fused addon kernel, what training runs) and a plain TS loop
 * reference (what tests compare it with). Both write dLoss/dlogprob per token and return the
 * loss with its metrics.
 *
 *   ppo-clip   DAPO's token-level PPO: clip-higher (eps_low 0.2, eps_high 0.28), dual clip
 *              c = 10 for negative advantages; `exemptSpecial` keeps the 8 tags out of the eps
 *              clip (their gradient is never masked away).
 *   papo       ratio pi / stop_grad(pi): 1 in value, gradient grad log pi, no clipping, strictly
 *              on-policy (old logprobs are not read).
 *
 * Aggregations (LOSS_AGGREGATIONS): token-mean (default), seq-mean-token-sum,
 * seq-mean-token-mean; `denominator` replaces the local count so that micro-batches of one
 * optimizer step add up to the mini-batch's loss (gradient accumulation by token budget).
 */
import { native } from '../../bindings/loader.js';
import type { NativePolicyLossMetrics } from '../../bindings/native.js';

export const LOSS_AGGREGATIONS = ['token-mean', 'seq-mean-token-sum', 'seq-mean-token-mean'] as const;
export type LossAggregation = (typeof LOSS_AGGREGATIONS)[number];

export interface PolicyLossInput {
  /** (T) current logprobs. */
  logprob: Float32Array;
  /** (T) behaviour logprobs (ppo-clip only). */
  oldLogprob?: Float32Array;
  /** (T) per-token advantages. */
  advantages: Float32Array;
  /** (T) 0/1 loss weights. */
  lossMask: Float32Array;
  /** (T) 1 on tag tokens. */
  specialMask?: Uint8Array;
  /** (S + 1) sequence boundaries. */
  cuSeqlens: Int32Array;
}

export interface PolicyLossConfig {
  aggregation?: LossAggregation;
  /** Default 0.2. */
  epsLow?: number;
  /** Default 0.28 (clip-higher). */
  epsHigh?: number;
  /** Dual clip; default 10, <= 1 off. */
  clipC?: number;
  exemptSpecial?: boolean;
  /** > 0: the count the aggregation divides by (default: the local count). */
  denominator?: number;
}

export type PolicyLossMetrics = NativePolicyLossMetrics;

/** The one signature of a policy loss: writes `dlogprob` (T), returns loss and metrics. */
export type PolicyLossFn = (input: PolicyLossInput, config: PolicyLossConfig, dlogprob: Float32Array) => PolicyLossMetrics;

export type PolicyLossName = 'ppo-clip' | 'papo';

const nativeLoss =
  (kind: PolicyLossName): PolicyLossFn =>
  (input, config, dlogprob) =>
    native().policyLoss(input, { ...config, kind }, dlogprob);

/** Per-token loss and its derivative in lp, by the formulas as they read. */
function tokenTerms(kind: PolicyLossName, input: PolicyLossInput, config: PolicyLossConfig) {
  const T = input.logprob.length;
  const lo = 1 - (config.epsLow ?? 0.2);
  const hi = 1 + (config.epsHigh ?? 0.28);
  const c = config.clipC ?? 10;
  const loss = new Float64Array(T);
  const grad = new Float64Array(T);
  const m = {
    tokens: 0,
    specialTokens: 0,
    clipped: 0,
    lower: 0,
    specialClipped: 0,
    ratioSum: 0,
    klSum: 0,
    rmin: Infinity,
    rmax: -Infinity,
  };
  for (let t = 0; t < T; t++) {
    if (!((input.lossMask[t] as number) > 0)) continue;
    const a = input.advantages[t] as number;
    const special = (input.specialMask?.[t] ?? 0) !== 0;
    m.tokens++;
    if (special) m.specialTokens++;
    if (kind === 'papo') {
      loss[t] = -a;
      grad[t] = -a;
      m.ratioSum += 1;
      m.rmin = Math.min(m.rmin, 1);
      m.rmax = Math.max(m.rmax, 1);
      continue;
    }
    const d = Math.min(20, Math.max(-20, (input.logprob[t] as number) - ((input.oldLogprob as Float32Array)[t] as number)));
    const r = Math.exp(d);
    m.ratioSum += r;
    m.klSum -= d;
    m.rmin = Math.min(m.rmin, r);
    m.rmax = Math.max(m.rmax, r);
    const pg1 = -a * r;
    const pg2 = -a * Math.min(Math.max(r, lo), hi);
    let l = pg1;
    let g = -a * r;
    let clipped = false;
    if (!(special && config.exemptSpecial) && pg2 > pg1) {
      l = pg2;
      g = 0;
      clipped = true;
    }
    let lower = false;
    if (c > 1 && a < 0 && -a * c < l) {
      l = -a * c;
      g = 0;
      lower = true;
    }
    if (clipped) m.clipped++;
    if (lower) m.lower++;
    if (special && (clipped || lower)) m.specialClipped++;
    loss[t] = l;
    grad[t] = g;
  }
  return { loss, grad, m };
}

/** Aggregation weight of every token: Loss = sum_t w_t l_t. */
export function aggregationWeights(input: Pick<PolicyLossInput, 'lossMask' | 'cuSeqlens'>, config: PolicyLossConfig): Float64Array {
  const T = input.lossMask.length;
  const S = input.cuSeqlens.length - 1;
  const w = new Float64Array(T);
  const mode = config.aggregation ?? 'token-mean';
  if (mode === 'token-mean') {
    let n = 0;
    for (let t = 0; t < T; t++) if ((input.lossMask[t] as number) > 0) n++;
    const D = (config.denominator ?? 0) > 0 ? (config.denominator as number) : n;
    for (let t = 0; t < T; t++) if ((input.lossMask[t] as number) > 0 && D > 0) w[t] = (input.lossMask[t] as number) / D;
    return w;
  }
  const counts: number[] = [];
  for (let s = 0; s < S; s++) {
    let c = 0;
    for (let t = input.cuSeqlens[s] as number; t < (input.cuSeqlens[s + 1] as number); t++)
      if ((input.lossMask[t] as number) > 0) c += input.lossMask[t] as number;
    counts.push(c);
  }
  const live = counts.filter((c) => c > 0).length;
  const D = (config.denominator ?? 0) > 0 ? (config.denominator as number) : live;
  for (let s = 0; s < S; s++) {
    const per = mode === 'seq-mean-token-mean' ? ((counts[s] as number) > 0 ? 1 / (counts[s] as number) : 0) : 1;
    for (let t = input.cuSeqlens[s] as number; t < (input.cuSeqlens[s + 1] as number); t++)
      if ((input.lossMask[t] as number) > 0 && D > 0) w[t] = ((input.lossMask[t] as number) * per) / D;
  }
  return w;
}

const referenceLoss =
  (kind: PolicyLossName): PolicyLossFn =>
  (input, config, dlogprob) => {
    const { loss, grad, m } = tokenTerms(kind, input, config);
    const w = aggregationWeights(input, config);
    let total = 0;
    for (let t = 0; t < loss.length; t++) {
      total += (w[t] as number) * (loss[t] as number);
      dlogprob[t] = (w[t] as number) * (grad[t] as number);
    }
    const n = m.tokens;
    return {
      loss: total,
      tokens: n,
      specialTokens: m.specialTokens,
      clipFrac: n ? m.clipped / n : 0,
      clipFracLower: n ? m.lower / n : 0,
      specialClipFrac: m.specialTokens ? m.specialClipped / m.specialTokens : 0,
      ratioMean: n ? m.ratioSum / n : 0,
      ratioMin: n ? m.rmin : 0,
      ratioMax: n ? m.rmax : 0,
      approxKl: n ? m.klSum / n : 0,
    };
  };

/** Policy losses by name: the native kernel and its TS loop reference. */
export const POLICY_LOSSES: Record<PolicyLossName, { native: PolicyLossFn; reference: PolicyLossFn }> = {
  'ppo-clip': { native: nativeLoss('ppo-clip'), reference: referenceLoss('ppo-clip') },
  papo: { native: nativeLoss('papo'), reference: referenceLoss('papo') },
};

export function policyLoss(name: string): PolicyLossFn {
  const entry = (POLICY_LOSSES as Record<string, { native: PolicyLossFn }>)[name];
  if (!entry) throw new RangeError(`no policy loss '${name}'; known: ${Object.keys(POLICY_LOSSES).join(', ')}`);
  return entry.native;
}
