/**
 * How the engine picks the next token of each branch from its logits row: the native sampler
 * (the default), or a script of token streams per branch (tests and benchmarks: a model whose
 * choices are given, decoded through the real model and KV cache so the logprobs are real).
 * Choosers read the step's logits through StepLogits, where they are (on the device for a CUDA
 * model): the sampler runs there and only tokens and logprobs come back. Forced tokens never
 * reach a chooser; their logprob comes from StepLogits too (`logSoftmaxAt` is its reference).
 *
 * Deliberately not here: which tokens are forced (branch.ts), penalties' scope (the engine
 * passes the current step's tokens; the sampler applies them).
 */
import type { StepLogits } from './step-logits.js';

export interface ChooseRow {
  /** The branch's logits row in the step. */
  row: number;
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
  /** One choice per row; rows[r].row is its row of `logits` (StepLogits.copyRows gives whole rows). */
  choose(rows: readonly ChooseRow[], logits: StepLogits): Choice[];
}

/**
 * log softmax(logits[offset .. offset + vocab))[token], accumulated in double as the native
 * sampler does: the plain reference of StepLogits.logprobs (native, where the logits are).
 */
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

  choose(rows: readonly ChooseRow[], logits: StepLogits): Choice[] {
    const R = rows.length;
    const offsets = new Int32Array(R + 1);
    rows.forEach((r, i) => {
      offsets[i + 1] = (offsets[i] as number) + r.penaltyTokens.length;
    });
    const out = logits.sample(
      rows.map((r) => r.row),
      {
        request: Int32Array.from(rows, (r) => r.request),
        branch: Int32Array.from(rows, (r) => r.branch),
        index: Int32Array.from(rows, (r) => r.index),
        penaltyOffsets: offsets,
        penaltyTokens: Int32Array.from(rows.flatMap((r) => r.penaltyTokens)),
        repetitionPenalty: Float32Array.from(rows, (r) => r.repetitionPenalty),
      },
      this.params,
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

  choose(rows: readonly ChooseRow[], logits: StepLogits): Choice[] {
    const tokens = rows.map((r) => this.streams(r.request)[r.key]?.[r.choiceIndex] ?? this.fallback);
    const lp = logits.logprobs(
      rows.map((r) => r.row),
      tokens,
    );
    return tokens.map((token, i) => ({ token, logprob: lp[i] as number, logprobSampling: lp[i] as number }));
  }
}
