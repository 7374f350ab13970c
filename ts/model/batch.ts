/**
 * Packed batches: several token sequences back to back with no padding, their explicit
 * position ids, which earlier token predicts each token (`prev`), and the Structure of which
 * keys each query sees. The structure builder (parallel tags) and the engine produce these;
 * `causalBatch` packs plain text.
 *
 * prev[t] is the index whose final hidden state predicts token t, -1 when t is not scored.
 * Plain text: t - 1 inside a sequence. In a parallel block the first token of every step is
 * predicted from the shared context before the block (all siblings from the same state, as
 * the engine samples them), never from the previous sibling.
 */

export interface Structure {
  /** Levels of nesting recorded per token (1 for flat NPR blocks). */
  depth: number;
  /** (tokens * depth) parallel block of the token at each level, -1 outside any step. */
  block: Int32Array;
  /** (tokens * depth) step within that block, -1 outside any step. */
  step: Int32Array;
}

export interface PackedBatch {
  /** (tokens) token ids. */
  ids: Int32Array;
  /** (tokens) position ids (RoPE). */
  positions: Int32Array;
  /** (tokens) predicting index per token, -1 = not scored. */
  prev: Int32Array;
  /** (sequences + 1) boundaries: sequence s is [cuSeqlens[s], cuSeqlens[s + 1]). */
  cuSeqlens: Int32Array;
  /** Omitted: plain causal attention inside each sequence. */
  structure?: Structure;
}

/** Packs plain causal sequences: positions 0.., prev = t - 1, the first token unscored. */
export function causalBatch(sequences: readonly (readonly number[])[]): PackedBatch {
  const total = sequences.reduce((n, s) => n + s.length, 0);
  const ids = new Int32Array(total);
  const positions = new Int32Array(total);
  const prev = new Int32Array(total);
  const cuSeqlens = new Int32Array(sequences.length + 1);
  let t = 0;
  sequences.forEach((seq, s) => {
    seq.forEach((id, i) => {
      ids[t] = id;
      positions[t] = i;
      prev[t] = i === 0 ? -1 : t - 1;
      t++;
    });
    cuSeqlens[s + 1] = t;
  });
  return { ids, positions, prev, cuSeqlens };
}

/** Number of scored tokens (prev >= 0). */
export function scoredCount(batch: PackedBatch): number {
  let n = 0;
  for (const p of batch.prev) if (p >= 0) n++;
  return n;
}
