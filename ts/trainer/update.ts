/**
 * One optimizer step over a set of sequences: micro-batches packed up to a token budget
 * (gradient accumulation by tokens), per micro-batch one native forward, one native policy-loss
 * call and one native backward; the aggregation divides by the WHOLE step's count so the
 * micro-batches add up to the step's loss; then AdamW with clipping. Also the SFT (NLL) step.
 *
 * Bad numbers never reach the weights: a non-finite logprob or loss throws NonFiniteError
 * before the step (the gradients are zeroed), and the native optimizer refuses a non-finite
 * gradient norm with the weights unchanged. The backend is the model's; nothing here assumes
 * the CPU.
 */
import type { PackedBatch, Structure } from '../model/batch.js';
import type { Model } from '../model/model.js';
import { type LossAggregation, type PolicyLossMetrics, policyLoss } from './algos/policy_loss.js';
import type { TrainSequence } from './rollouts.js';

export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

export interface OptimizerConfig {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999 (verl's AdamW default). */
  beta2?: number;
  eps?: number;
  /** Default 0.1 (the paper). */
  weightDecay?: number;
  /** Global gradient-norm clip; default 1.0. */
  clipNorm?: number;
}

export interface LossConfig {
  kind: 'ppo-clip' | 'papo';
  aggregation: LossAggregation;
  epsLow: number;
  epsHigh: number;
  clipC: number;
  exemptSpecial: boolean;
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  tokens: number;
  metrics: Omit<PolicyLossMetrics, 'loss' | 'tokens'>;
  nativeMs: number;
}

/** Packs sequences (structure depth padded, ids renumbered) into one batch. */
export function packSequences(seqs: readonly TrainSequence[]): PackedBatch & { seqs: readonly TrainSequence[] } {
  const total = seqs.reduce((n, s) => n + s.ids.length, 0);
  const depth = Math.max(1, ...seqs.map((s) => s.structure?.depth ?? 1));
  const anyStructure = seqs.some((s) => s.structure);
  const ids = new Int32Array(total);
  const positions = new Int32Array(total);
  const prev = new Int32Array(total);
  const cuSeqlens = new Int32Array(seqs.length + 1);
  const block = new Int32Array(total * depth).fill(-1);
  const step = new Int32Array(total * depth).fill(-1);
  let t0 = 0;
  let blockBase = 0;
  let stepBase = 0;
  seqs.forEach((s, i) => {
    const n = s.ids.length;
    ids.set(s.ids, t0);
    positions.set(s.positions, t0);
    for (let t = 0; t < n; t++) prev[t0 + t] = (s.prev[t] as number) < 0 ? -1 : t0 + (s.prev[t] as number);
    if (s.structure) {
      const d = s.structure.depth;
      let mb = -1;
      let ms = -1;
      for (let t = 0; t < n; t++)
        for (let l = 0; l < d; l++) {
          const b = s.structure.block[t * d + l] as number;
          if (b < 0) continue;
          const st = s.structure.step[t * d + l] as number;
          block[(t0 + t) * depth + l] = blockBase + b;
          step[(t0 + t) * depth + l] = stepBase + st;
          mb = Math.max(mb, b);
          ms = Math.max(ms, st);
        }
      blockBase += mb + 1;
      stepBase += ms + 1;
    }
    t0 += n;
    cuSeqlens[i + 1] = t0;
  });
  const batch: PackedBatch & { seqs: readonly TrainSequence[] } = { ids, positions, prev, cuSeqlens, seqs };
  if (anyStructure) batch.structure = { depth, block, step } satisfies Structure;
  return batch;
}

/** Splits sequences into micro-batches of at most `maxTokens` tokens (a longer one goes alone). */
export function microBatches<T extends { ids: ArrayLike<number> }>(seqs: readonly T[], maxTokens: number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let n = 0;
  for (const s of seqs) {
    if (cur.length > 0 && n + s.ids.length > maxTokens) {
      out.push(cur);
      cur = [];
      n = 0;
    }
    cur.push(s);
    n += s.ids.length;
  }
  if (cur.length) out.push(cur);
  return out;
}

function concat<A extends Float32Array | Uint8Array>(parts: readonly A[], make: (n: number) => A): A {
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p as never, o);
    o += p.length;
  }
  return out;
}

/** One policy-gradient optimizer step over `seqs` (advantages already set). */
export async function policyStep(
  model: Model,
  seqs: readonly TrainSequence[],
  loss: LossConfig,
  optimizer: OptimizerConfig & { lr: number },
  microTokens: number,
): Promise<StepResult> {
  let masked = 0;
  let live = 0;
  for (const s of seqs) {
    let c = 0;
    for (const m of s.lossMask) c += m;
    masked += c;
    if (c > 0) live++;
  }
  const denominator = loss.aggregation === 'token-mean' ? masked : live;
  const fn = policyLoss(loss.kind);
  const acc = {
    loss: 0,
    specialTokens: 0,
    clip: 0,
    lower: 0,
    specialClip: 0,
    ratioSum: 0,
    ratioMin: Infinity,
    ratioMax: -Infinity,
    kl: 0,
    tokens: 0,
  };
  let nativeMs = 0;
  model.zeroGrad();
  try {
    for (const mb of microBatches(seqs, microTokens)) {
      const batch = packSequences(mb);
      let t = performance.now();
      const { logprob } = await model.forward(batch);
      nativeMs += performance.now() - t;
      const advantages = concat(
        mb.map((s) => new Float32Array(s.ids.length).fill(s.advantage)),
        (n) => new Float32Array(n),
      );
      const dlogprob = new Float32Array(batch.ids.length);
      t = performance.now();
      const m = fn(
        {
          logprob,
          oldLogprob: concat(
            mb.map((s) => s.oldLogprob),
            (n) => new Float32Array(n),
          ),
          advantages,
          lossMask: concat(
            mb.map((s) => s.lossMask),
            (n) => new Float32Array(n),
          ),
          specialMask: concat(
            mb.map((s) => s.specialMask),
            (n) => new Uint8Array(n),
          ),
          cuSeqlens: batch.cuSeqlens,
        },
        { ...loss, denominator },
        dlogprob,
      );
      if (!Number.isFinite(m.loss)) throw new NonFiniteError(`the policy loss is ${m.loss}; the step was skipped`);
      await model.backward(dlogprob);
      nativeMs += performance.now() - t;
      acc.loss += m.loss;
      acc.tokens += m.tokens;
      acc.specialTokens += m.specialTokens;
      acc.clip += m.clipFrac * m.tokens;
      acc.lower += m.clipFracLower * m.tokens;
      acc.specialClip += m.specialClipFrac * m.specialTokens;
      acc.ratioSum += m.ratioMean * m.tokens;
      acc.kl += m.approxKl * m.tokens;
      if (m.tokens > 0) {
        acc.ratioMin = Math.min(acc.ratioMin, m.ratioMin);
        acc.ratioMax = Math.max(acc.ratioMax, m.ratioMax);
      }
    }
  } catch (e) {
    model.zeroGrad();
    if (e instanceof RangeError && /non-finite/.test(e.message)) throw new NonFiniteError(`${e.message}; the step was skipped`);
    throw e;
  }
  const t = performance.now();
  const { gradNorm } = stepOptimizer(model, optimizer);
  nativeMs += performance.now() - t;
  const n = acc.tokens || 1;
  return {
    loss: acc.loss,
    gradNorm,
    tokens: acc.tokens,
    nativeMs,
    metrics: {
      specialTokens: acc.specialTokens,
      clipFrac: acc.clip / n,
      clipFracLower: acc.lower / n,
      specialClipFrac: acc.specialTokens ? acc.specialClip / acc.specialTokens : 0,
      ratioMean: acc.ratioSum / n,
      ratioMin: acc.tokens ? acc.ratioMin : 0,
      ratioMax: acc.tokens ? acc.ratioMax : 0,
      approxKl: acc.kl / n,
    },
  };
}

/** AdamW with the paper's defaults; a non-finite gradient norm becomes a NonFiniteError (weights unchanged). */
export function stepOptimizer(model: Model, o: OptimizerConfig & { lr: number }): { gradNorm: number } {
  try {
    const r = model.step({
      lr: o.lr,
      beta1: o.beta1 ?? 0.9,
      beta2: o.beta2 ?? 0.999,
      eps: o.eps ?? 1e-8,
      weightDecay: o.weightDecay ?? 0.1,
      clipNorm: o.clipNorm ?? 1.0,
    });
    return { gradNorm: r.gradNorm };
  } catch (e) {
    model.zeroGrad();
    if (e instanceof Error && /gradient norm/.test(e.message)) throw new NonFiniteError(e.message);
    throw e;
  }
}

/** One SFT step: token-mean NLL over the loss tokens of every sequence. Returns the mean NLL. */
export async function sftStep(
  model: Model,
  seqs: readonly TrainSequence[],
  optimizer: OptimizerConfig & { lr: number },
  microTokens: number,
): Promise<StepResult> {
  let total = 0;
  for (const s of seqs) for (const m of s.lossMask) total += m;
  let nll = 0;
  let nativeMs = 0;
  model.zeroGrad();
  try {
    for (const mb of microBatches(seqs, microTokens)) {
      const batch = packSequences(mb);
      let t = performance.now();
      const { logprob } = await model.forward(batch);
      nativeMs += performance.now() - t;
      const mask = concat(
        mb.map((s) => s.lossMask),
        (n) => new Float32Array(n),
      );
      // NLL = -sum m_t logp_t / total: dNLL/dlogp_t = -m_t / total.
      const d = new Float32Array(mask.length);
      for (let i = 0; i < mask.length; i++) {
        if (!((mask[i] as number) > 0)) continue;
        const lp = logprob[i] as number;
        if (!Number.isFinite(lp)) throw new NonFiniteError(`logprob ${lp} at token ${i}; the step was skipped`);
        nll -= ((mask[i] as number) * lp) / total;
        d[i] = -(mask[i] as number) / total;
      }
      t = performance.now();
      await model.backward(d);
      nativeMs += performance.now() - t;
    }
  } catch (e) {
    model.zeroGrad();
    throw e;
  }
  const t = performance.now();
  const { gradNorm } = stepOptimizer(model, optimizer);
  nativeMs += performance.now() - t;
  return {
    loss: nll,
    gradNorm,
    tokens: total,
    nativeMs,
    metrics: { specialTokens: 0, clipFrac: 0, clipFracLower: 0, specialClipFrac: 0, ratioMean: 1, ratioMin: 1, ratioMax: 1, approxKl: 0 },
  };
}
