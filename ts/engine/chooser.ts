/**
 * How the engine picks the next token of each branch from its logits row: the native sampler
 * (the default), or a script of token streams per branch (tests and benchmarks: a model whose
 * choices are given, decoded through the real model and KV cache so the logprobs are real).
 * Forced tokens never reach a chooser; their logprob comes from `logSoftmaxAt`.
 *
 * Deliberately not here: which tokens are forced (branch.ts), penalties' scope (the engine
 * passes the current step's tokens; the sampler applies them).
 */
import { native } from '../bindings/loader.js';

export interface ChooseRow {
  /** RNG keys: request key, branch id, token index within the branch. */
  request: number;
  branch: number;
  index: number;
  /** Branch name (see BranchStats.key) and how many tokens it has chosen so far (forced ones not counted). */
  key: string;
  choiceIndex: number;
  /** Tokens the repetition penalty applies to, and the penalty (1 = off). */
  penaltyTokens: readonly number[];
  repetitionPenalty: number;
}

export interface Choice {
  token: number;
  /** Under the raw distribution. */
  logprob: number;
  /** Under the sampling distribution. */
  logprobSampling: number;
}

export interface TokenChooser {
  /** logits: (rows.length, vocab), row r for rows[r]. */
  choose(rows: readonly ChooseRow[], logits: Float32Array, vocab: number): Choice[];
}

/** log softmax(logits[offset .. offset + vocab))[token], accumulated in double as the native sampler does. */
export function logSoftmaxAt(logits: Float32Array, offset: number, vocab: number, token: number): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < vocab; i++) m = Math.max(m, logits[offset + i] as number);
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp((logits[offset + i] as number) - m);
  return Math.fround((logits[offset + token] as number) - (m + Math.log(sum)));
}

export interface NativeSamplerOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed: number;
}

/** The addon's sampler (cpp/sampler): counter RNG, step-local repetition penalty, top-k/top-p/min-p. */
export class NativeChooser implements TokenChooser {
  constructor(private readonly params: NativeSamplerOptions) {}

  choose(rows: readonly ChooseRow[], logits: Float32Array): Choice[] {
    const R = rows.length;
    const offsets = new Int32Array(R + 1);
    rows.forEach((r, i) => {
      offsets[i + 1] = (offsets[i] as number) + r.penaltyTokens.length;
    });
    const out = { tokens: new Int32Array(R), logprob: new Float32Array(R), logprobSampling: new Float32Array(R) };
    native().sample(
      logits,
      {
        request: Int32Array.from(rows, (r) => r.request),
        branch: Int32Array.from(rows, (r) => r.branch),
        index: Int32Array.from(rows, (r) => r.index),
        penaltyOffsets: offsets,
        penaltyTokens: Int32Array.from(rows.flatMap((r) => r.penaltyTokens)),
        repetitionPenalty: Float32Array.from(rows, (r) => r.repetitionPenalty),
      },
      this.params,
      out,
    );
    return rows.map((_, i) => ({
      token: out.tokens[i] as number,
      logprob: out.logprob[i] as number,
      logprobSampling: out.logprobSampling[i] as number,
    }));
  }
}

/**
 * Scripted choices: `streams(request)[key]` is the token stream of a branch (key '' = the
 * trunk, across all its blocks; 'f:label' = the step branch for plan `label` of the request's
 * f-th fork, counting from 0). Forced tokens are not in the streams. A stream that runs out
 * yields `fallback` (end-of-sequence, say). Logprobs are the model's, from the real logits.
 */
export class ScriptedChooser implements TokenChooser {
  constructor(
    private readonly streams: (request: number) => Readonly<Record<string, readonly number[]>>,
    private readonly fallback: number,
  ) {}

  choose(rows: readonly ChooseRow[], logits: Float32Array, vocab: number): Choice[] {
    return rows.map((r, i) => {
      const token = this.streams(r.request)[r.key]?.[r.choiceIndex] ?? this.fallback;
      const logprob = logSoftmaxAt(logits, i * vocab, vocab, token);
      return { token, logprob, logprobSampling: logprob };
    });
  }
}
