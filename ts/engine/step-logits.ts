/**
 * One decode step's logits as the engine reads them: never as a whole on the host, but through
 * the KV cache's step results, computed where the logits are (on the device for a CUDA model):
 * log-probabilities of given tokens, sampled tokens, or copies of rows for a chooser that needs
 * them. Logprob queries are batched: `prefetch` asks for every (row, token) the state machines
 * will want in one call, and `logprobAt` then answers from the cache (or asks alone on a miss).
 * Valid until the next decode of the same cache.
 */
import type { NativeKv, NativeSampleOut, NativeSampleRows, NativeSamplingParams } from '../bindings/native.js';

export class StepLogits {
  private cache = new Map<number, number>();

  constructor(
    private readonly kv: NativeKv,
    /** Logits rows of the step (one per decoded sequence). */
    readonly rows: number,
    readonly vocab: number,
  ) {}

  private key(row: number, token: number): number {
    return row * this.vocab + token;
  }

  /** Logprobs of tokens[i] under row rows[i], batched into one native call for the misses. */
  logprobs(rows: readonly number[], tokens: readonly number[]): Float32Array {
    const out = new Float32Array(rows.length);
    const miss: number[] = [];
    rows.forEach((r, i) => {
      const hit = this.cache.get(this.key(r, tokens[i] as number));
      if (hit === undefined) miss.push(i);
      else out[i] = hit;
    });
    if (miss.length > 0) {
      const got = new Float32Array(miss.length);
      this.kv.logprobs(
        Int32Array.from(miss, (i) => rows[i] as number),
        Int32Array.from(miss, (i) => tokens[i] as number),
        got,
      );
      miss.forEach((i, j) => {
        out[i] = got[j] as number;
        this.cache.set(this.key(rows[i] as number, tokens[i] as number), got[j] as number);
      });
    }
    return out;
  }

  /** Fetches these (row, token) logprobs in one call, for later `logprobAt`s. */
  prefetch(pairs: readonly (readonly [number, number])[]): void {
    if (pairs.length > 0)
      this.logprobs(
        pairs.map(([r]) => r),
        pairs.map(([, t]) => t),
      );
  }

  logprobAt(row: number, token: number): number {
    return this.logprobs([row], [token])[0] as number;
  }

  /** The sampler over the given logits rows (one result per entry of rows.request). */
  sample(logitRows: readonly number[], rows: NativeSampleRows, params: NativeSamplingParams): NativeSampleOut {
    const R = logitRows.length;
    const out = { tokens: new Int32Array(R), logprob: new Float32Array(R), logprobSampling: new Float32Array(R) };
    this.kv.sample(Int32Array.from(logitRows), rows, params, out);
    return out;
  }

  /** Whole rows, (logitRows.length, vocab): for a chooser that looks at every logit. */
  copyRows(logitRows: readonly number[]): Float32Array {
    const out = new Float32Array(logitRows.length * this.vocab);
    this.kv.logitsRows(Int32Array.from(logitRows), out);
    return out;
  }
}
